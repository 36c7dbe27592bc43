//! The world switch: `vcpu_run` runs a vcpu until the host must see an exit.
//!
//! The order is the contract of docs/design.md ("The world switch contract"),
//! and the point of this hypervisor: the host's SPE buffer is drained and
//! disabled (`save_host_buffers`) while the host's own translation regime is
//! still the live one, before any guest state is loaded, and re-enabled
//! (`restore_host_buffers`) only after every piece of host state is back.
//! The same order is written down as data in [`PLAN_FIXED`]; the unit tests
//! check the plan against the rules in `spevisor_abi::check_switch_order`,
//! and the steps `vcpu_run` actually executes are recorded ([`Trace`]) so the
//! host can check them on a real run: each register-changing operation
//! records itself where it runs (`steps.rs`, `spe::save_host_buffers`), so a
//! moved operation moves its record too.
//!
//! The `switch-order-pre-2021` feature builds Linux's pre-2021 nVHE order
//! instead (the drain inside the debug switch, after the guest's registers,
//! stage-2 and traps are live): the checks must catch it. Never the default.
//! The `switch-order-broken-*` features move one operation each (the
//! ordering checks' own tests, `docs/ordering-checks.md`). Never shipped.

use spevisor_abi::Step;

/// The correct order of one round trip (docs/design.md, "The world switch contract").
pub const PLAN_FIXED: [Step; 14] = [
    Step::SaveHostSysregs,
    Step::SaveHostBuffers,
    Step::DsbNsh,
    Step::RestoreGuestSysregs,
    Step::LoadStage2,
    Step::ActivateGuestTraps,
    Step::RestoreGuestGicTimer,
    Step::EnterGuest,
    Step::SaveGuestState,
    Step::DsbNsh,
    Step::DeactivateTraps,
    Step::UnloadStage2,
    Step::RestoreHostSysregs,
    Step::RestoreHostBuffers,
];

/// Linux nVHE before "KVM: arm64: nVHE: Save the SPE context early" (2021):
/// the host's buffer was drained in `__debug_switch_to_guest`, after
/// `__activate_vm`, `__activate_traps` and `__sysreg_restore_state_nvhe(guest)`.
pub const PLAN_PRE_2021: [Step; 14] = [
    Step::SaveHostSysregs,
    Step::DsbNsh,
    Step::RestoreGuestSysregs,
    Step::LoadStage2,
    Step::ActivateGuestTraps,
    Step::RestoreGuestGicTimer,
    Step::SaveHostBuffers,
    Step::EnterGuest,
    Step::SaveGuestState,
    Step::DsbNsh,
    Step::DeactivateTraps,
    Step::UnloadStage2,
    Step::RestoreHostSysregs,
    Step::RestoreHostBuffers,
];

/// The plan this build runs.
pub const PLAN: [Step; 14] = if cfg!(feature = "switch-order-pre-2021") { PLAN_PRE_2021 } else { PLAN_FIXED };

/// Round trips recorded step by step (the first ones after boot).
pub const TRACE_RUNS: usize = 4;
const TRACE_LEN: usize = TRACE_RUNS * PLAN.len();

/// The steps `vcpu_run` executed on its first [`TRACE_RUNS`] round trips.
pub struct Trace {
    steps: [u8; TRACE_LEN],
    len: usize,
}

impl Trace {
    pub const fn new() -> Self {
        Self { steps: [0; TRACE_LEN], len: 0 }
    }

    /// Records `s` if the record is not full yet (one compare on the hot path).
    #[inline(always)]
    pub fn record(&mut self, s: Step) {
        if self.len < TRACE_LEN {
            self.steps[self.len] = s as u8;
            self.len += 1;
        }
    }

    pub fn steps(&self) -> &[u8] {
        &self.steps[..self.len]
    }

    /// Whether every slot is used (later runs are not recorded).
    pub fn full(&self) -> bool {
        self.len == TRACE_LEN
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_arch = "aarch64")]
pub use imp::*;

#[cfg(target_arch = "aarch64")]
mod imp {
    use super::Trace;
    use crate::arch::{self, exit_kind, sysregs};
    use crate::debug;
    use crate::idregs::IdRegs;
    use crate::pmu;
    use crate::spe::{self, HostSpe};
    use crate::steps;
    use crate::traps;
    use crate::vcpu::{handle_sync, lazy, Action, FpRegs, Vcpu};
    use crate::vm::VmMem;
    use spevisor_abi::{Exit, Step, StopReason};

    /// Host state the world switch saves and restores around a vcpu run.
    pub struct HostContext {
        pub el1: crate::vcpu::El1Context,
        pub fp: FpRegs,
        pub spe: HostSpe,
        /// MDCR_EL2 while the host runs (HPMN, E2PB = 0b11), and for guests
        /// (`traps::mdcr_guest`).
        pub mdcr: u64,
        pub mdcr_guest: u64,
        /// CPTR_EL2 for guests on this CPU (`traps::cptr_guest`).
        pub cptr_guest: u64,
        /// HCR_EL2 for the host and for guests on this CPU (`traps::hcr_values`).
        pub hcr_host: u64,
        pub hcr_guest: u64,
        /// The host's pointer-authentication keys while a guest has its own loaded.
        pub pauth: crate::vcpu::PauthKeys,
        /// The host's breakpoints/watchpoints while a guest's are loaded,
        /// and how many the CPU has (`debug.rs`).
        pub debug: crate::debug::HostDebug,
        /// The host's PMU registers while a PMU user runs (`pmu.rs`).
        pub pmu: crate::pmu::PmuRegs,
        /// VMPIDR_EL2 while the host runs (its own MPIDR_EL1).
        pub vmpidr: u64,
        pub gic_v3: bool,
        /// The GICv2 virtual interface control frame (GICH, identity-mapped
        /// at EL2), 0 on GICv3 or without one (`arch::gich`).
        pub gich: usize,
        /// The GICv2 virtual CPU interface (GICV) frame's PA, which EL2
        /// maps into every guest at `GICC_IPA`; 0 on GICv3.
        pub gicv: u64,
        /// List registers guests get, GICv3 or GICv2 (0 without a virtual
        /// interface).
        pub nr_lrs: usize,
    }

    /// Runs `vcpu` of `vm` until an exit the host must handle. EL2, with the
    /// host's interrupts masked (we came here through `hvc`).
    ///
    /// The first round trips record every step they execute ([`Trace`]);
    /// once the record is full the same code runs without the recording
    /// (one body, two monomorphic copies).
    #[inline(always)]
    pub fn vcpu_run(
        vm: &VmMem,
        vcpu_idx: usize,
        vcpu: &mut Vcpu,
        ids: &IdRegs,
        host: &mut HostContext,
        trace: &mut Trace,
    ) -> Exit {
        if trace.full() {
            run::<false>(vm, vcpu_idx, vcpu, ids, host, trace)
        } else {
            run::<true>(vm, vcpu_idx, vcpu, ids, host, trace)
        }
    }

    /// Records a step that is not one of the register-changing operations
    /// (those record themselves, `steps.rs`); nothing in untraced runs.
    use crate::steps::record as step;

    /// The world switch itself (see [`vcpu_run`]).
    #[inline(always)]
    fn run<const TRACED: bool>(
        vm: &VmMem,
        vcpu_idx: usize,
        vcpu: &mut Vcpu,
        ids: &IdRegs,
        host: &mut HostContext,
        trace: &mut Trace,
    ) -> Exit {
        // Host EL1 registers first: everything below may overwrite them.
        steps::save_host_sysregs::<TRACED>(&mut host.el1, trace);

        // Drain and disable the host's profiling buffer while the host's
        // regime is the live one: MDCR_EL2.E2PB still gives the buffer to
        // EL1, HCR_EL2.VM is 0 and TTBR0/1_EL1 are the host's, so the last
        // records land at the host's VA, where the host put its buffer.
        #[cfg(not(any(feature = "switch-order-pre-2021", feature = "switch-order-broken-drain-late")))]
        let spe_saved = spe::save_host_buffers::<TRACED>(&mut host.spe, trace);

        // The drain's writes and any table walks it started complete before
        // a single guest register is written.
        steps::dsb_nsh::<TRACED>(trace);

        // Every guest EL1 register before stage-2 is on, so no guest value
        // is ever combined with the host's translation or the other way round.
        steps::restore_guest_sysregs::<TRACED>(vcpu, vcpu_idx, trace);

        steps::load_stage2::<TRACED>(vm, trace);
        // Broken on purpose (ordering-check tests only): the drain under VTTBR_EL2.
        #[cfg(feature = "switch-order-broken-drain-late")]
        let spe_saved = spe::save_host_buffers::<TRACED>(&mut host.spe, trace);
        // Broken on purpose (ordering-check tests only): the trace buffer drained under VTTBR_EL2.
        #[cfg(feature = "switch-order-broken-trbe-late")]
        let spe_saved = {
            let mut parked = spe_saved;
            spe::save_host_trace_late(&host.spe, &mut parked);
            parked
        };

        // HCR_EL2 (VM=1 and the guest traps), MDCR_EL2 (E2PB=0b00: the buffer
        // now belongs to EL2 and EL1 accesses trap; TPMS; PMU/debug traps),
        // CPTR_EL2 (FP trapped for the lazy switch), CNTHCTL_EL2; and the
        // host's PMU counters stop so guest cycles are not charged to it.
        let host_counters = steps::activate_guest_traps::<TRACED>(host, trace);

        sysregs::restore_gic_timer(vcpu, host.gic_v3);
        step::<TRACED>(trace, Step::RestoreGuestGicTimer);

        // A vcpu whose breakpoints may be enabled (MDSCR_EL1.MDE/KDE, OS
        // lock open) gets its comparators before it runs; the others keep
        // them trapped until first touched (`debug::CpuWork::Load`). After the
        // traps are active: this lifts MDCR_EL2.TDA from the value written
        // there. Not a recorded step: like FP and the keys it is lazy, and
        // nothing here changes a translation regime (EL2 never takes a
        // debug exception: MDCR_EL2.TDE = 0 makes EL1 the debug target).
        let mut debug_loaded = false;
        if vcpu.debug.armed {
            debug::switch_to_guest(&mut host.debug, &vcpu.debug);
            debug_loaded = true;
        }

        // Linux's old place for the drain: too late, the guest's regime is live.
        #[cfg(feature = "switch-order-pre-2021")]
        let spe_saved = spe::save_host_buffers::<TRACED>(&mut host.spe, trace);

        // A PMU user gets its counters back at every entry (they count
        // across runs), and a vcpu on a GICv2 host its virtual interface
        // (GICH, `arch::gich`): `vcpu.lazy` holds only these two sticky bits
        // here, one test for both, so the GICv3 path pays nothing.
        if vcpu.lazy != 0 {
            if vcpu.lazy & lazy::PMU != 0 {
                pmu::switch_to_guest(ids.pmu(), &mut host.pmu, &vcpu.pmu.regs);
            }
            if vcpu.lazy & lazy::GICV2 != 0 {
                arch::gich::restore(vcpu);
            }
        }

        step::<TRACED>(trace, Step::EnterGuest);
        let exit = loop {
            arch::set_guest_pc(vcpu.pc, vcpu.pstate);
            // SAFETY: stage-2, traps and the guest's EL1 state are all live
            // (above); every guest exception comes back to EL2's vectors.
            let kind = unsafe { arch::guest_enter(&mut vcpu.regs) };
            let (pc, pstate) = arch::guest_pc();
            vcpu.pc = pc;
            vcpu.pstate = pstate;
            vcpu.exits += 1;
            if kind != exit_kind::SYNC {
                break match kind {
                    exit_kind::SERROR => Exit::Stopped { reason: StopReason::SError, esr: 0, far: 0, elr: pc },
                    _ => {
                        // Maybe its own timer: the host cannot tell once the
                        // host's CNTV is back (the line drops).
                        sysregs::share_guest_timer(vcpu);
                        Exit::Irq
                    }
                };
            }
            let syn = arch::syndrome();
            // An injection (trapped system register) needs the guest's live
            // VBAR_EL1/SCTLR_EL1, not the values it entered with.
            if syn.esr >> crate::vcpu::ESR_EC_SHIFT == crate::vcpu::EC_SYSREG {
                sysregs::refresh_injection_regs(&mut vcpu.el1);
            }
            match handle_sync(vcpu, ids, syn, |ipa| vm.ram_contains(ipa)) {
                // Answered at EL2: no host state is touched, the guest goes on.
                Action::Resume => {}
                Action::Injected => sysregs::write_exception_regs(&vcpu.el1),
                Action::Debug(work) => debug_loaded = debug::apply(work, &mut host.debug, vcpu, debug_loaded),
                Action::FpTrap => {
                    // First FP/SIMD use in this run: park the host's FP state
                    // and give the guest its own, then let it retry.
                    // CPTR_EL2.TFP traps EL2's own FP accesses too (nVHE), so
                    // lift it before touching the registers.
                    traps::allow_guest_fp(host.cptr_guest);
                    if vcpu.lazy & lazy::FP == 0 {
                        arch::fp_save(&mut host.fp);
                        arch::fp_restore(&vcpu.fp);
                        vcpu.lazy |= lazy::FP;
                    }
                }
                Action::PauthTrap => {
                    // First pointer-authentication use in this run: the
                    // guest's keys in, the host's parked, the trap lifted.
                    if vcpu.lazy & lazy::PAUTH == 0 {
                        arch::pauth_save(&mut host.pauth);
                        arch::pauth_restore(&vcpu.pauth);
                        vcpu.lazy |= lazy::PAUTH;
                    }
                    traps::allow_guest_pauth(host.hcr_guest);
                }
                Action::PmuFirstUse => {
                    // First PMU access: park the host's PMU, load the
                    // vcpu's (out of reset), stop trapping; the access runs
                    // again. `classify` never asks twice in a run.
                    if vcpu.lazy & lazy::PMU == 0 {
                        vcpu.pmu.start(ids.pmu());
                        pmu::switch_to_guest(ids.pmu(), &mut host.pmu, &vcpu.pmu.regs);
                        vcpu.lazy |= lazy::PMU;
                    }
                }
                Action::PmcrWrite(v) => pmu::write_pmcr(v),
                Action::ToHost(e) => break e,
                Action::Wfx => {
                    // The host sleeps the vcpu until its timer's deadline.
                    sysregs::share_guest_timer(vcpu);
                    break Exit::Wfx;
                }
                Action::Stop(reason) => {
                    break Exit::Stopped { reason, esr: syn.esr, far: syn.fault_ipa(), elr: pc };
                }
            }
        };

        steps::save_guest_sysregs::<TRACED>(vcpu, trace);
        // The guest's comparators out, the host's back (its MDSCR_EL1 comes
        // back with its EL1 registers).
        if debug_loaded {
            debug::switch_to_host(&host.debug, vcpu);
        }
        sysregs::save_gic_timer(vcpu, host.gic_v3);
        // Lazy state back to the host's behind one test.
        if vcpu.lazy != 0 {
            if vcpu.lazy & lazy::FP != 0 {
                arch::fp_save(&mut vcpu.fp);
                arch::fp_restore(&host.fp);
            }
            if vcpu.lazy & lazy::PAUTH != 0 {
                arch::pauth_save(&mut vcpu.pauth);
                arch::pauth_restore(&host.pauth);
            }
            if vcpu.lazy & lazy::PMU != 0 {
                // Its counters stop here, still under its MDCR_EL2 (HPMD);
                // its overflow line goes to the host (virtual INTID 23).
                pmu::switch_to_host(ids.pmu(), &host.pmu, &mut vcpu.pmu.regs);
                vcpu.pmu.saved();
                sysregs::share_guest_pmu(vcpu);
            }
            // The GICv2 interface state out (its list registers cleared
            // behind it) before the host runs.
            if vcpu.lazy & lazy::GICV2 != 0 {
                arch::gich::save(vcpu);
            }
            // FP and the keys are loaded again on their next use; the PMU
            // and the GICv2 interface stay this vcpu's at every entry.
            vcpu.lazy &= lazy::PMU | lazy::GICV2;
        }

        // The guest's last accesses (and walks through its tables) complete
        // before its regime is taken down.
        steps::dsb_nsh::<TRACED>(trace);

        steps::deactivate_traps::<TRACED>(host, host_counters, trace);

        steps::unload_stage2::<TRACED>(trace);

        // Broken on purpose (ordering-check tests only): the host's buffer
        // re-enabled while the guest's EL1 registers (TTBRs) are live.
        #[cfg(feature = "switch-order-broken-restore-early")]
        spe::restore_host_buffers::<TRACED>(spe_saved, trace);

        steps::restore_host_sysregs::<TRACED>(&host.el1, trace);

        // Only now are the host's TTBRs, HCR_EL2 and MDCR_EL2 back: the buffer
        // may write again, through the host's regime.
        #[cfg(not(feature = "switch-order-broken-restore-early"))]
        spe::restore_host_buffers::<TRACED>(spe_saved, trace);

        exit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spevisor_abi::{check_switch_order, OrderViolation};

    #[test]
    fn the_fixed_plan_follows_every_rule() {
        assert_eq!(check_switch_order(&PLAN_FIXED), Ok(()));
    }

    #[test]
    fn the_pre_2021_plan_is_caught() {
        let v = check_switch_order(&PLAN_PRE_2021).unwrap_err();
        assert_eq!(v, OrderViolation::DrainAfterGuestState { step: Step::RestoreGuestSysregs });
        assert_eq!(v.rule(), "drain-before-guest-state");
    }

    #[test]
    fn each_rule_catches_its_own_breakage() {
        let swap = |a: Step, b: Step| {
            let mut p = PLAN_FIXED.to_vec();
            let i = p.iter().position(|s| *s == a).unwrap();
            let j = p.iter().position(|s| *s == b).unwrap();
            p.swap(i, j);
            check_switch_order(&p).map_err(|v| v.rule())
        };
        // Drain moved after the stage-2 load (VTTBR live).
        let mut p = PLAN_FIXED.to_vec();
        let d = p.remove(1);
        p.insert(4, d);
        assert_eq!(check_switch_order(&p).map_err(|v| v.rule()), Err("drain-before-guest-state"));
        // Buffer restored before the host's sysregs are back.
        assert_eq!(swap(Step::RestoreHostSysregs, Step::RestoreHostBuffers), Err("restore-after-host-state"));
        // Buffer restored before the traps are deactivated (MDCR_EL2.E2PB=0b00).
        let mut p = PLAN_FIXED.to_vec();
        let r = p.pop().unwrap();
        p.insert(10, r);
        assert_eq!(check_switch_order(&p).map_err(|v| v.rule()), Err("restore-after-host-state"));
        // No barrier between the drain and guest state.
        let mut p = PLAN_FIXED.to_vec();
        p.remove(2);
        p.insert(9, Step::DsbNsh);
        assert_eq!(check_switch_order(&p).map_err(|v| v.rule()), Err("dsb-after-drain"));
        // A step missing.
        let p: Vec<Step> = PLAN_FIXED.iter().copied().filter(|s| *s != Step::UnloadStage2).collect();
        assert_eq!(check_switch_order(&p).map_err(|v| v.rule()), Err("each-step-once"));
        // Guest entered before its traps are active.
        assert_eq!(swap(Step::ActivateGuestTraps, Step::EnterGuest), Err("entry-exit-order"));
    }

    #[test]
    fn the_trace_keeps_the_first_runs_only() {
        let mut t = Trace::new();
        for _ in 0..TRACE_RUNS + 2 {
            for s in PLAN {
                t.record(s);
            }
        }
        assert_eq!(t.steps().len(), TRACE_RUNS * PLAN.len());
        for run in t.steps().chunks(PLAN.len()) {
            let steps: Vec<Step> = run.iter().map(|b| Step::from_u8(*b).unwrap()).collect();
            assert_eq!(steps, PLAN);
        }
    }
}
