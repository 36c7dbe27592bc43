//! A vcpu's saved state and what happens to it at an exit: syndrome decoding,
//! MMIO completion, PC advance and exception injection. Pure: the world switch
//! (`switch.rs`) moves this state in and out of the CPU.

use crate::idregs::IdRegs;
use crate::pmu::PmuAccess;
use spevisor_abi::vgic::VcpuShared;
use spevisor_abi::{guest_sysreg, Completion, Exit, MmioAccess, Status, StopReason};
use spevisor_armv8::esr::{Direction, Esr, ExceptionClass, SysRegIss};
use spevisor_armv8::inject::{self, GuestContext, GuestFeatures};

/// General-purpose registers as `vectors.S` saves and loads them (x0..x30),
/// plus the slot the guest-exit path uses to find the host stack.
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct GuestRegs {
    pub x: [u64; 31],
    /// Written by `__guest_enter` (offset 248, `GUEST_HOST_SP` in vectors.S).
    pub host_sp: u64,
}

const _: () = assert!(core::mem::offset_of!(GuestRegs, host_sp) == 248);

impl GuestRegs {
    /// Register `n` as an instruction sees it (31 = XZR reads as zero).
    pub fn get(&self, n: u8) -> u64 {
        self.x.get(n as usize).copied().unwrap_or(0)
    }
    /// Writes register `n` (31 = XZR: the write is discarded).
    pub fn set(&mut self, n: u8, v: u64) {
        if let Some(r) = self.x.get_mut(n as usize) {
            *r = v;
        }
    }
}

/// The EL1 (and EL0) system registers a world switch saves and restores, for
/// the host and for each vcpu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct El1Context {
    pub sctlr: u64,
    pub ttbr0: u64,
    pub ttbr1: u64,
    pub tcr: u64,
    pub mair: u64,
    pub amair: u64,
    pub vbar: u64,
    pub contextidr: u64,
    pub tpidr_el0: u64,
    pub tpidr_el1: u64,
    pub tpidrro_el0: u64,
    pub esr: u64,
    pub far: u64,
    pub afsr0: u64,
    pub afsr1: u64,
    pub par: u64,
    pub cpacr: u64,
    pub cntkctl: u64,
    pub csselr: u64,
    pub mdscr: u64,
    pub sp_el0: u64,
    pub sp_el1: u64,
    pub elr: u64,
    pub spsr: u64,
    /// The virtual timer (CNTV_CTL_EL0 / CNTV_CVAL_EL0).
    pub cntv_ctl: u64,
    pub cntv_cval: u64,
}

/// FP/SIMD registers (switched lazily: see `switch.rs`).
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default)]
pub struct FpRegs {
    pub q: [u128; 32],
    pub fpsr: u64,
    pub fpcr: u64,
}

/// Pointer-authentication keys (switched lazily, like FP: see `switch.rs`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PauthKeys(pub [u64; 10]);

/// Maximum GICv3 list registers (ICH_VTR_EL2.ListRegs + 1 ≤ 16).
pub const MAX_LRS: usize = spevisor_abi::vgic::MAX_LRS;

/// A vcpu's GICv3 virtual CPU interface state.
#[derive(Clone, Copy, Debug, Default)]
pub struct VgicState {
    pub vmcr: u64,
    pub lrs: [u64; MAX_LRS],
    /// List registers holding state; only these are switched.
    pub used_lrs: usize,
    /// ICH_HCR_EL2 bits besides En while the guest runs (UIE), and whether
    /// the host wants EOIcount back (`spevisor_abi::vgic::hcr`).
    pub hcr_flags: u32,
    /// ICH_HCR_EL2.EOIcount at the last exit (when asked for).
    pub eoicount: u32,
    /// ICH_AP0R<n>_EL2 and ICH_AP1R<n>_EL2: the priorities of the
    /// interrupts the guest has taken and not yet ended (its nested
    /// handlers), switched with the list registers.
    pub ap0r: [u64; 4],
    pub ap1r: [u64; 4],
}

impl VgicState {
    /// Takes the host's list registers for the next run from its shared
    /// page: at most `hw_lrs` of them, each sanitised
    /// (`spevisor_abi::vgic::lr::sanitize`: the host cannot tie a guest
    /// interrupt to anything but a PPI). Returns whether there is GIC work.
    #[inline(always)]
    pub fn load(&mut self, shared: &VcpuShared, hw_lrs: usize) -> bool {
        let n = (shared.nr_lrs as usize).min(hw_lrs);
        self.hcr_flags = shared.hcr_flags;
        if n == 0 && self.used_lrs == 0 {
            return self.hcr_flags != 0;
        }
        for (dst, src) in self.lrs[..n].iter_mut().zip(&shared.lrs) {
            *dst = spevisor_abi::vgic::lr::sanitize(*src);
        }
        self.used_lrs = n;
        true
    }

    /// Gives the list registers' state after a run back to the host; the
    /// next run loads none unless the host gives them again.
    #[inline(always)]
    pub fn store(&mut self, shared: &mut VcpuShared) {
        // `min`: no bounds check, so no panic path in the world switch's
        // function (the machine-code ordering check follows every path).
        let n = self.used_lrs.min(MAX_LRS);
        shared.lrs[..n].copy_from_slice(&self.lrs[..n]);
        shared.nr_lrs = n as u32;
        shared.eoicount = self.eoicount;
        self.used_lrs = 0;
        self.hcr_flags = 0;
        self.eoicount = 0;
    }
}

/// The page a vcpu shares with EL2 (`VCPU_SHARE`), at its PA `pa`.
pub fn shared_page<'a>(pa: u64) -> &'a mut VcpuShared {
    // SAFETY: `Vms::share` checked `pa` (the only way a vcpu gets one): a
    // whole page of host memory, given to no VM and shared with nothing
    // else, which EL2 maps RW at its physical address; the host cannot
    // touch it while EL2 runs (one CPU), and `VcpuShared` (plain integers,
    // 160 bytes) fits a page at its alignment.
    unsafe { &mut *(pa as *mut VcpuShared) }
}

/// SCTLR_EL1 at reset for a guest: RES1 bits only (MMU and caches off).
pub const GUEST_SCTLR_RESET: u64 = (1 << 29) | (1 << 28) | (1 << 23) | (1 << 22) | (1 << 20) | (1 << 11);
/// PSTATE a vcpu starts with: EL1h, D, A, I, F masked.
pub const GUEST_PSTATE_RESET: u64 = 0x3c5;

/// What the host owes the vcpu before it may run again. An explicit tag
/// (`repr(u8)`): matching it is one compare, not a niche decoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Pending {
    #[default]
    None,
    /// An `hvc`/`smc` the host answers (x0..x3).
    Hvc,
    /// An MMIO load into `srt`.
    MmioRead { srt: u8, size: u8, sign_extend: bool, sixty_four: bool },
    /// An MMIO store the host performs.
    MmioWrite,
    /// A stage-2 abort outside RAM the host must decide on
    /// ([`Exit::Abort`]): it can only answer [`Completion::Abort`].
    Abort { instr: bool, write: bool },
}

/// The abort behind the vcpu's last [`Exit::Mmio`] or [`Exit::Abort`],
/// kept for [`Completion::Abort`]: what the injected abort reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LastAbort {
    /// FAR_EL2: the guest's faulting virtual address (FAR_EL1 to be).
    pub far: u64,
    /// ESR_EL2 of the trap (for the report if the VM is stopped instead).
    pub esr: u64,
    /// `Vcpu::exits` when the last external abort was injected, and how
    /// many were injected back to back (each at the exit after the
    /// previous): the loop detector (`MAX_ABORTS_IN_A_ROW`).
    pub injected_at: u64,
    pub in_a_row: u32,
}

/// A vcpu.
#[derive(Clone, Debug)]
pub struct Vcpu {
    pub regs: GuestRegs,
    pub pc: u64,
    pub pstate: u64,
    pub el1: El1Context,
    pub fp: FpRegs,
    pub pauth: PauthKeys,
    pub vgic: VgicState,
    pub pending: Pending,
    /// Breakpoints, watchpoints, MDSCR_EL1 as the guest wrote it, the OS
    /// lock (`debug.rs`; `el1.mdscr` is what the CPU runs it with).
    pub debug: crate::debug::VcpuDebug,
    /// Exits since creation (all of them, handled at EL2 or by the host).
    pub exits: u64,
    /// PA of the host page shared with this vcpu (`VCPU_SHARE`), 0 if none.
    pub shared: u64,
    /// The last abort the host was asked about (external abort injection).
    pub abort: LastAbort,
    /// Its PMU (`pmu.rs`; loaded at every entry once it has used it).
    pub pmu: crate::pmu::GuestPmu,
    /// Lazily switched state now in the CPU ([`lazy`] bits): FP and PAC
    /// keys within a run (the exit puts the host's back and clears them),
    /// the PMU from its first use on (loaded at every entry). The world
    /// switch tests this one byte at entry and at exit.
    pub lazy: u8,
}

/// Bits of [`Vcpu::lazy`].
pub mod lazy {
    pub const FP: u8 = 1 << 0;
    pub const PAUTH: u8 = 1 << 1;
    pub const PMU: u8 = 1 << 2;
    /// Sticky from creation on a GICv2 host: the world switch switches the
    /// GICH frame for this vcpu (`arch::gich`), behind the same test as the
    /// lazy state.
    pub const GICV2: u8 = 1 << 3;
}

impl Vcpu {
    pub fn new(entry: u64, args: [u64; 3]) -> Self {
        let mut regs = GuestRegs::default();
        regs.x[..3].copy_from_slice(&args);
        Self {
            regs,
            pc: entry,
            pstate: GUEST_PSTATE_RESET,
            el1: El1Context { sctlr: GUEST_SCTLR_RESET, ..El1Context::default() },
            fp: FpRegs::default(),
            pauth: PauthKeys::default(),
            vgic: VgicState::default(),
            pending: Pending::None,
            debug: crate::debug::VcpuDebug::new(),
            exits: 0,
            shared: 0,
            abort: LastAbort::default(),
            pmu: crate::pmu::GuestPmu::default(),
            lazy: 0,
        }
    }

    /// Back to the state `new` gives, at `entry` with x0 = `x0` (PSCI
    /// CPU_ON of a vcpu that was off): the shared page and the exit count
    /// stay.
    pub fn reset(&mut self, entry: u64, x0: u64) {
        // The GICv2 switch is the host's, not the vcpu's state: a vcpu
        // brought up by PSCI CPU_ON on a GICv2 host keeps it.
        let keep = (self.shared, self.exits, self.lazy & lazy::GICV2);
        *self = Self::new(entry, [x0, 0, 0]);
        (self.shared, self.exits, self.lazy) = keep;
    }

    /// Applies the host's answer to the last exit (VCPU_RUN's completion).
    /// [`Uncompleted::Stop`]: the answer was an external abort the guest
    /// cannot make progress with, and the VM must stop instead.
    #[inline(always)]
    pub fn complete(&mut self, c: Completion) -> Result<(), Uncompleted> {
        match (self.pending, c) {
            (Pending::None, Completion::None) => {}
            (Pending::Hvc, Completion::Hvc(r)) => self.regs.x[..4].copy_from_slice(&r),
            (Pending::MmioRead { srt, size, sign_extend, sixty_four }, Completion::MmioRead(v)) => {
                self.regs.set(srt, extend_load(v, size, sign_extend, sixty_four));
                self.step_past();
            }
            // The PC wraps like the CPU's: a guest may trap on the last
            // instruction of the address space (fuzz/regressions/mmio/).
            (Pending::MmioWrite, Completion::MmioWrite) => self.step_past(),
            // The abort answer out of line and last: the hypercall path
            // stays as short as it was (`hvc_host`).
            (_, Completion::Abort) => return self.complete_abort(),
            _ => return Err(Uncompleted::Refused(Status::BadCompletion)),
        }
        self.pending = Pending::None;
        Ok(())
    }

    /// Past the instruction an MMIO or system register exit completed: 4
    /// bytes in AArch64; in AArch32, its length (ESR.IL of the trap, kept
    /// in `abort.esr`) with PSTATE.IT advanced.
    #[inline(always)]
    fn step_past(&mut self) {
        if self.pstate & spevisor_armv8::pstate::NRW == 0 {
            self.pc = self.pc.wrapping_add(4);
        } else {
            self.step_aarch32();
        }
    }

    #[cold]
    #[inline(never)]
    fn step_aarch32(&mut self) {
        crate::aarch32::complete(self, Esr(self.abort.esr));
    }

    /// [`Completion::Abort`]: only for an access outside RAM (an MMIO or
    /// abort exit).
    #[cold]
    #[inline(never)]
    fn complete_abort(&mut self) -> Result<(), Uncompleted> {
        let stop = match self.pending {
            Pending::MmioRead { .. } => self.external_abort(false, false),
            Pending::MmioWrite => self.external_abort(false, true),
            Pending::Abort { instr, write } => self.external_abort(instr, write),
            Pending::None | Pending::Hvc => return Err(Uncompleted::Refused(Status::BadCompletion)),
        };
        stop.map_or(Ok(()), |reason| Err(Uncompleted::Stop(reason)))
    }

    /// Injects a synchronous external abort for the access the last exit
    /// reported (as KVM's `kvm_inject_dabt`/`kvm_inject_pabt`): ESR_EL1 with
    /// EC = data/instruction abort from the same or a lower EL (by the
    /// guest's SPSR), IL = 1 (RES1 for instruction aborts and for data
    /// aborts without syndrome, which the injected one is; every A64 trap's
    /// ESR_EL2.IL is 1 too), FSC = 0x10 (WnR for a write), FAR_EL1 = the
    /// faulting VA, ELR/SPSR_EL1 = where the guest was, PC at its vector
    /// (VBAR_EL1 + 0x200 from EL1, + 0x400 from EL0), PSTATE EL1h with DAIF
    /// masked. The EL1 registers are the ones saved at that exit, so they
    /// are the guest's live VBAR/SCTLR.
    ///
    /// No injection when the guest could not make progress: the fault was
    /// on the vector the abort would send it to ([`StopReason::AbortOnVector`]),
    /// or [`spevisor_abi::MAX_ABORTS_IN_A_ROW`] aborts came back to back
    /// with no other exit between them ([`StopReason::AbortLoop`]).
    fn external_abort(&mut self, instr: bool, write: bool) -> Option<StopReason> {
        self.pending = Pending::None;
        let ctx = GuestContext {
            spsr_el2: self.pstate,
            elr_el2: self.pc,
            vbar_el1: self.el1.vbar,
            sctlr_el1: self.el1.sctlr,
            features: GuestFeatures { pan: false, ssbs: false, mte: false },
        };
        let far = self.abort.far;
        let inj = if instr { inject::instr_abort(&ctx, far) } else { inject::data_abort(&ctx, far, write) };
        // Only EL0/EL1 modes ever trap to EL2 from a guest: a failure here
        // is EL2's bug, reported as an unhandled exit rather than a crash.
        let Ok(inj) = inj else { return Some(StopReason::Unhandled) };
        if inj.pc == self.pc {
            return Some(StopReason::AbortOnVector);
        }
        let a = &mut self.abort;
        a.in_a_row = if a.in_a_row > 0 && self.exits == a.injected_at + 1 { a.in_a_row + 1 } else { 1 };
        a.injected_at = self.exits;
        if a.in_a_row > spevisor_abi::MAX_ABORTS_IN_A_ROW {
            return Some(StopReason::AbortLoop);
        }
        self.el1.esr = inj.esr_el1.0;
        self.el1.elr = inj.elr_el1;
        self.el1.spsr = inj.spsr_el1;
        self.el1.far = far;
        self.pc = inj.pc;
        self.pstate = inj.pstate;
        None
    }
}

/// Why [`Vcpu::complete`] did not complete the exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uncompleted {
    /// The completion does not answer the exit: VCPU_RUN is refused.
    Refused(Status),
    /// The external abort the host asked for would not let the guest make
    /// progress: the VM stops instead.
    Stop(StopReason),
}

/// The value a load of `size` bytes leaves in its register: zero-extended, or
/// sign-extended to 32 (SF=0, W register) or 64 bits (SF=1).
pub fn extend_load(v: u64, size: u8, sign_extend: bool, sixty_four: bool) -> u64 {
    let bits = u32::from(size) * 8;
    let v = if bits >= 64 { v } else { v & ((1u64 << bits) - 1) };
    if !sign_extend || bits >= 64 {
        return v;
    }
    let shift = 64 - bits;
    let extended = (((v << shift) as i64) >> shift) as u64;
    if sixty_four {
        extended
    } else {
        extended & 0xffff_ffff
    }
}

/// ESR_EL2.EC position, and the class of trapped MSR/MRS (for the one check
/// the world switch makes before `handle_sync`).
pub const ESR_EC_SHIFT: u64 = 26;
pub const EC_SYSREG: u64 = 0x18;

/// Guest test-ABI call answered at EL2 without leaving for the host.
pub const HYP_PING: u64 = spevisor_abi::guest::test::HYP_PING;
/// SMCCC_VERSION, answered at EL2 (SMCCC 1.1) without leaving for the host.
pub const SMCCC_VERSION: u64 = spevisor_abi::guest::smccc::VERSION;
pub const SMCCC_VERSION_1_1: u64 = spevisor_abi::guest::smccc::VERSION_1_1;

/// What the world switch does after a synchronous guest exit. An explicit
/// tag (`repr(u8)`): with `Exit`'s niche reused for the other variants,
/// every match first computed the variant (about ten instructions on the
/// hypercall path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Action {
    /// Handled at EL2: enter the guest again without a full switch.
    Resume,
    /// An exception was injected: ESR/ELR/SPSR_EL1 in the vcpu changed and
    /// must be written to the CPU before resuming.
    Injected,
    /// The guest touched FP/SIMD: switch FP state, then resume.
    FpTrap,
    /// The guest used pointer authentication: switch keys, then resume
    /// (the trapped instruction runs again).
    PauthTrap,
    /// A debug register access that needs the CPU (`debug::apply`): the
    /// first one (load the vcpu's registers, lift MDCR_EL2.TDA, run it
    /// again), an emulated MDSCR_EL1 write, an OS lock change. One variant
    /// for the three: the world switch's match on this enum stays a chain
    /// of compares (a debug build made a jump table of ten variants that
    /// the machine-code check cannot read).
    Debug(crate::debug::CpuWork),
    /// The host must handle it.
    ToHost(Exit),
    /// WFI/WFE (PC past it): to the host with the guest's timer state, so
    /// it can sleep the vcpu until its deadline.
    Wfx,
    /// The VM cannot continue.
    Stop(StopReason),
    /// The guest's first PMU access (MDCR_EL2.TPM): load its PMU, stop
    /// trapping, and let the access run again (`pmu.rs`).
    PmuFirstUse,
    /// An emulated PMCR_EL0 write (PC past it): the CPU gets this value.
    PmcrWrite(u64),
}

/// The registers describing a guest exception at EL2.
#[derive(Clone, Copy, Debug)]
pub struct Syndrome {
    pub esr: u64,
    pub far: u64,
    pub hpfar: u64,
}

impl Syndrome {
    /// The faulting IPA: HPFAR_EL2.FIPA (bits [43:4] = IPA[51:12]) plus the
    /// page offset from FAR_EL2.
    pub fn fault_ipa(&self) -> u64 {
        const FIPA_MASK: u64 = 0x0000_0fff_ffff_fff0;
        ((self.hpfar & FIPA_MASK) << 8) | (self.far & 0xfff)
    }
}

fn stop(reason: StopReason) -> Action {
    Action::Stop(reason)
}

/// Decides what a synchronous exit means and updates the vcpu accordingly
/// (PC advance, register results, injected exceptions, pending completions).
/// `in_ram(ipa)` says whether an IPA is the VM's RAM.
pub fn handle_sync(vcpu: &mut Vcpu, ids: &IdRegs, s: Syndrome, in_ram: impl Fn(u64) -> bool) -> Action {
    let esr = Esr(s.esr);
    match esr.ec() {
        ExceptionClass::Hvc64 => {
            // ELR_EL2 already points past the hvc: no PC change.
            if vcpu.regs.x[0] == HYP_PING {
                vcpu.regs.x[0] = 0;
                vcpu.regs.x[1] = vcpu.regs.x[1].wrapping_add(1);
                return Action::Resume;
            }
            if vcpu.regs.x[0] == SMCCC_VERSION {
                vcpu.regs.x[0] = SMCCC_VERSION_1_1;
                return Action::Resume;
            }
            vcpu.pending = Pending::Hvc;
            let imm = esr.hvc().map_or(0, |h| h.imm16());
            let r = &vcpu.regs.x;
            Action::ToHost(Exit::Hvc { imm, regs: [r[0], r[1], r[2], r[3]] })
        }
        ExceptionClass::Smc64 => {
            // A trapped SMC (HCR_EL2.TSC) leaves ELR_EL2 at the smc itself.
            vcpu.pc = vcpu.pc.wrapping_add(esr.instruction_len());
            vcpu.pending = Pending::Hvc;
            let r = &vcpu.regs.x;
            Action::ToHost(Exit::Hvc { imm: 0, regs: [r[0], r[1], r[2], r[3]] })
        }
        // Out of line: AArch32's conditions and IT blocks (`aarch32.rs`).
        ExceptionClass::Wfx => crate::aarch32::wfx(vcpu, esr),
        ExceptionClass::FpAsimd => Action::FpTrap,
        ExceptionClass::PointerAuth => Action::PauthTrap,
        ExceptionClass::SysReg => {
            // SPE (MDCR_EL2.E2PB=0b00, TPMS), PMU (TPM), debug (TDA/TDOSA/
            // TDRA) and the other trapped registers are not emulated: the guest
            // sees what a CPU without them would give it, UNDEF.
            let Some(iss) = esr.sysreg() else { return stop(StopReason::Unhandled) };
            // Key registers trap (HCR_EL2.APK) until the lazy switch loads
            // this vcpu's keys: switch, then the access runs again.
            if is_pauth_key(iss.op0(), iss.op1(), iss.crn(), iss.crm()) {
                return Action::PauthTrap;
            }
            // SGI generation (HCR_EL2.IMO traps the writes): the host's GIC
            // model delivers it to the target vcpus.
            if let Some(group1) = sgi_register(iss) {
                if iss.direction() == Direction::Write {
                    vcpu.pc = vcpu.pc.wrapping_add(4);
                    return Action::ToHost(Exit::Sgi { value: vcpu.regs.get(iss.rt()), group1 });
                }
                return inject_undef(vcpu);
            }
            // The EL1 physical timer: the host's per-vcpu model.
            if is_cntp(iss) {
                let reg = guest_sysreg::id(iss.op0(), iss.op1(), iss.crn(), iss.crm(), iss.op2());
                if guest_sysreg::host_emulated(reg) {
                    return to_host_sysreg(vcpu, reg, iss);
                }
            }
            // The PMU (MDCR_EL2.TPM until the first use, TPMCR always):
            // all its registers have CRn 9 or 14.
            if matches!(iss.crn(), 9 | 14) {
                if let Some(a) = pmu_access(vcpu, iss, ids) {
                    return a;
                }
            }
            emulate_sysreg(vcpu, iss, ids).unwrap_or_else(|| inject_undef(vcpu))
        }
        ExceptionClass::DataAbortLower => {
            let ipa = s.fault_ipa();
            if in_ram(ipa) {
                // RAM is mapped RWX: a fault there is not the guest's doing.
                return stop(StopReason::Unhandled);
            }
            vcpu.abort.far = s.far;
            vcpu.abort.esr = s.esr;
            let Some(da) = esr.data_abort() else { return stop(StopReason::Unhandled) };
            if !da.isv() {
                // No syndrome (a load pair, say): the host says whether a
                // device is there (the VM stops) or nothing (an abort).
                let write = da.wnr();
                vcpu.pending = Pending::Abort { instr: false, write };
                return Action::ToHost(Exit::Abort { ipa, far: s.far, instr: false, write });
            }
            let size = da.access_size();
            let srt = da.srt();
            let access = if da.wnr() {
                vcpu.pending = Pending::MmioWrite;
                let v = vcpu.regs.get(srt);
                let v = if size >= 8 { v } else { v & ((1u64 << (size * 8)) - 1) };
                MmioAccess { ipa, size, write: true, value: v }
            } else {
                vcpu.pending = Pending::MmioRead { srt, size, sign_extend: da.sse(), sixty_four: da.sf() };
                MmioAccess { ipa, size, write: false, value: 0 }
            };
            Action::ToHost(Exit::Mmio(access))
        }
        ExceptionClass::InstrAbortLower => {
            let ipa = s.fault_ipa();
            if in_ram(ipa) {
                return stop(StopReason::Unhandled);
            }
            // Nothing is executable outside RAM: the host answers with an
            // external abort (its decision, like every access outside RAM).
            vcpu.abort.far = s.far;
            vcpu.abort.esr = s.esr;
            vcpu.pending = Pending::Abort { instr: true, write: false };
            Action::ToHost(Exit::Abort { ipa, far: s.far, instr: true, write: false })
        }
        // AArch32 EL0's coprocessor traps (and HVC/SMC, which cannot come
        // from EL0): emulated or UNDEF, never a stop (`aarch32.rs`). Out of
        // line behind the last arm: the hypercall path (`hvc_host`) keeps
        // the match it had.
        // AArch32 EL0's coprocessor traps (and HVC/SMC, which cannot come
        // from EL0): emulated or UNDEF, never a stop (`aarch32.rs`). Out of
        // line behind the last arm: the hypercall path (`hvc_host`) keeps
        // the match it had.
        _ => crate::aarch32::trap_or_stop(vcpu, ids, esr),
    }
}

/// The debug register space (op0 = 2).
const OP0_DEBUG: u8 = 2;
/// SPSR_EL2.SS (PSTATE.SS of the guest): cleared when EL2 completes an
/// instruction for the guest, so a guest single-stepping it takes its step
/// exception before the next one (the software-step state machine moves to
/// active-pending, as if the instruction had run at EL1).
pub const PSTATE_SS: u64 = 1 << 21;

/// ID_AA64DFR0_EL1 in the ID group 3 table (CRm 5, op2 0).
const DFR0_CRM: u8 = 5;
const DFR0_OP2: u8 = 0;

/// Registers EL2 answers itself, the access then complete (PC past it):
///
/// - reads of the ID group 3 space (HCR_EL2.TID3): [`IdRegs`], with what
///   guests do not get (PMU, SPE, trace, SVE, ...) hidden;
/// - the debug registers (MDCR_EL2.TDA/TDOSA/TDRA): the OS lock is
///   emulated, the first other access loads the vcpu's own registers
///   lazily, or, while the OS lock blocks debug, is emulated on them
///   ([`crate::debug::access`]).
///
/// DC set/way operations: op0 1, op1 0, CRn 7, CRm 6 (ISW), 10 (CSW) or
/// 14 (CISW), op2 2.
const OP0_CACHE: u8 = 1;
const CRN_CACHE: u8 = 7;
const CRM_DC_ISW: u8 = 6;
const CRM_DC_CSW: u8 = 10;
const CRM_DC_CISW: u8 = 14;
const OP2_SET_WAY: u8 = 2;

/// `None`: not emulated (the caller injects UNDEF, as for the PMU and SPE
/// registers a guest is told it does not have).
fn emulate_sysreg(vcpu: &mut Vcpu, iss: SysRegIss, ids: &IdRegs) -> Option<Action> {
    let read = iss.direction() == Direction::Read;
    let rt = iss.rt();
    let mut action = Action::Resume;
    match (iss.op0(), iss.op1(), iss.crn(), iss.crm(), iss.op2()) {
        (3, 0, 0, crm, op2) if read => vcpu.regs.set(rt, ids.get(crm, op2)?),
        // DC ISW/CSW/CISW (HCR_EL2.TSW): set/way maintenance reaches the
        // physical caches every world shares, and DC ISW would discard the
        // host's dirty lines. Completed as nothing: a guest's memory is
        // Normal write-back at stage 2 and every device it has is emulated
        // by the host through the same coherent caches, so no agent can see
        // a line the operation would have cleaned (Linux never uses them).
        (OP0_CACHE, 0, CRN_CACHE, CRM_DC_ISW | CRM_DC_CSW | CRM_DC_CISW, OP2_SET_WAY) if !read => {}
        (OP0_DEBUG, ..) => {
            use crate::debug::{access, Access, CpuWork, DebugFeatures};
            let enc = spevisor_armv8::sysreg::SysRegEnc::new(iss.op0(), iss.op1(), iss.crn(), iss.crm(), iss.op2());
            let f = DebugFeatures::from_dfr0(ids.get(DFR0_CRM, DFR0_OP2).unwrap_or(0));
            let write = if read { None } else { Some(vcpu.regs.get(rt)) };
            match access(&mut vcpu.debug, f, enc, write) {
                Access::Load => return Some(Action::Debug(CpuWork::Load)),
                Access::Undef => return None,
                Access::Read(v) => vcpu.regs.set(rt, v),
                Access::Written => {}
                Access::MdscrWritten => {
                    vcpu.el1.mdscr = vcpu.debug.settle();
                    action = Action::Debug(CpuWork::MdscrWritten);
                }
                Access::LockChanged => {
                    vcpu.el1.mdscr = vcpu.debug.settle();
                    action = Action::Debug(CpuWork::LockChanged);
                }
            }
        }
        _ => return None,
    }
    vcpu.pc = vcpu.pc.wrapping_add(4);
    vcpu.pstate &= !PSTATE_SS;
    Some(action)
}

/// Whether a trapped access is to CNTP_* (op0 3, op1 3, CRn 14, CRm 2):
/// one mask on the ISS, so the other trapped registers (the PMU's UNDEF
/// path) do not pay for the full decoding.
#[inline(always)]
fn is_cntp(iss: SysRegIss) -> bool {
    let cntp = SysRegIss::new(spevisor_armv8::sysreg::SysRegEnc::new(3, 3, 14, 2, 0), 0, Direction::Write).0;
    const OP2_RT_DIRECTION: u32 = (0b111 << 17) | (0x1f << 5) | 1;
    iss.0 & !OP2_RT_DIRECTION == cntp
}

/// A trapped access to a register the host emulates: to the host, which
/// completes it like an MMIO access.
#[cold]
fn to_host_sysreg(vcpu: &mut Vcpu, reg: u32, iss: SysRegIss) -> Action {
    let write = iss.direction() == Direction::Write;
    let rt = iss.rt();
    // Completed as an MMIO access is: the value into Xt (64 bits), or the
    // write done; either moves the PC past the instruction.
    vcpu.pending = if write {
        Pending::MmioWrite
    } else {
        Pending::MmioRead { srt: rt, size: 8, sign_extend: false, sixty_four: true }
    };
    let value = if write { vcpu.regs.get(rt) } else { 0 };
    Action::ToHost(Exit::SysReg { reg, write, value })
}

/// A trapped PMU register access (`pmu::classify`); `None` if `iss` is not
/// one. Out of line: the world switch's loop inlines `handle_sync`, and
/// this path is not the hot one.
#[inline(never)]
fn pmu_access(vcpu: &mut Vcpu, iss: SysRegIss, ids: &IdRegs) -> Option<Action> {
    Some(match crate::pmu::classify(iss, ids.pmu(), &vcpu.pmu) {
        PmuAccess::NotPmu => return None,
        PmuAccess::Undef => inject_undef(vcpu),
        PmuAccess::FirstUse => Action::PmuFirstUse,
        PmuAccess::Pmcr => emulate_pmcr(vcpu, iss, ids.pmu()),
    })
}

/// PMCR_EL0 of a PMU user (MDCR_EL2.TPMCR): reads give the guest's view,
/// writes change it and give the CPU its value (`GuestPmu::write_pmcr`).
fn emulate_pmcr(vcpu: &mut Vcpu, iss: SysRegIss, cfg: &crate::pmu::PmuConfig) -> Action {
    let rt = iss.rt();
    vcpu.pc = vcpu.pc.wrapping_add(4);
    if crate::pmu::is_read(iss) {
        vcpu.regs.set(rt, vcpu.pmu.pmcr);
        return Action::Resume;
    }
    let v = vcpu.regs.get(rt);
    Action::PmcrWrite(vcpu.pmu.write_pmcr(v, cfg))
}

/// ICC_SGI1R_EL1 (op1 0, op2 5) and ICC_ASGI1R_EL1 (op1 1, op2 6) raise
/// group 1 SGIs, ICC_SGI0R_EL1 (op1 2, op2 7) group 0 ones: `Some(group1)`.
fn sgi_register(iss: SysRegIss) -> Option<bool> {
    match (iss.op0(), iss.op1(), iss.crn(), iss.crm(), iss.op2()) {
        (3, 0, 12, 11, 5) | (3, 1, 12, 11, 6) => Some(true),
        (3, 2, 12, 11, 7) => Some(false),
        _ => None,
    }
}

/// APIAKeyLo_EL1 .. APGAKeyHi_EL1: op0=3, op1=0, CRn=2, CRm=1..=3.
fn is_pauth_key(op0: u8, op1: u8, crn: u8, crm: u8) -> bool {
    op0 == 3 && op1 == 0 && crn == 2 && (1..=3).contains(&crm)
}

/// Makes the trapped instruction raise UNDEF in the guest, as the guest's
/// own EL1 would have seen it: ESR_EL1/ELR_EL1/SPSR_EL1 set, PC at its vector.
pub(crate) fn inject_undef(vcpu: &mut Vcpu) -> Action {
    let ctx = GuestContext {
        spsr_el2: vcpu.pstate,
        elr_el2: vcpu.pc,
        vbar_el1: vcpu.el1.vbar,
        sctlr_el1: vcpu.el1.sctlr,
        features: GuestFeatures { pan: false, ssbs: false, mte: false },
    };
    match inject::undef(&ctx) {
        Ok(inj) => {
            vcpu.el1.esr = inj.esr_el1.0;
            vcpu.el1.elr = inj.elr_el1;
            vcpu.el1.spsr = inj.spsr_el1;
            vcpu.pc = inj.pc;
            vcpu.pstate = inj.pstate;
            Action::Injected
        }
        Err(_) => stop(StopReason::Unhandled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spevisor_armv8::esr::{Direction, SysRegIss};
    use spevisor_armv8::sysreg;

    fn vcpu() -> Vcpu {
        let mut v = Vcpu::new(0x4000_0000, [1, 2, 3]);
        v.el1.vbar = 0x4000_8000;
        v.pc = 0x4000_1000;
        v
    }

    #[test]
    fn a_reset_keeps_the_gicv2_switch_and_drops_the_lazy_state() {
        // PSCI CPU_ON resets a vcpu (VCPU_RESET): on a GICv2 host it must
        // still have its GICH state switched, or it runs on another vcpu's
        // virtual interface (Linux with 2 vcpus on GICv2 hung without it).
        let mut v = vcpu();
        v.lazy = lazy::GICV2 | lazy::FP | lazy::PMU;
        v.reset(0x4000_2000, 7);
        assert_eq!(v.lazy, lazy::GICV2);
        let mut v = vcpu();
        v.lazy = lazy::FP;
        v.reset(0x4000_2000, 7);
        assert_eq!(v.lazy, 0, "GICv3 host: nothing sticky");
    }

    fn da(isv: bool, sas: u64, sse: bool, srt: u64, sf: bool, wnr: bool) -> u64 {
        let ec = 0x24u64 << 26;
        let il = 1 << 25;
        let iss = (isv as u64) << 24
            | sas << 22
            | (sse as u64) << 21
            | srt << 16
            | (sf as u64) << 15
            | (wnr as u64) << 6
            | 0x07;
        ec | il | iss
    }

    fn syn(esr: u64, ipa: u64) -> Syndrome {
        Syndrome { esr, far: ipa & 0xfff | 0xdead_0000_0000, hpfar: (ipa >> 12) << 4 }
    }

    #[test]
    fn mmio_read_completes_with_extension_and_pc_advance() {
        let mut v = vcpu();
        // ldrsb w5, [..] from 0x0900_0018: 1 byte, sign-extended to 32 bits.
        let a = handle_sync(&mut v, &IdRegs::empty(), syn(da(true, 0, true, 5, false, false), 0x0900_0018), |_| false);
        assert_eq!(a, Action::ToHost(Exit::Mmio(MmioAccess { ipa: 0x0900_0018, size: 1, write: false, value: 0 })));
        assert_eq!(v.complete(Completion::MmioWrite), Err(Uncompleted::Refused(Status::BadCompletion)));
        v.complete(Completion::MmioRead(0x1_80)).unwrap();
        assert_eq!(v.regs.x[5], 0xffff_ff80);
        assert_eq!(v.pc, 0x4000_1004);
        assert_eq!(
            v.complete(Completion::MmioRead(1)),
            Err(Uncompleted::Refused(Status::BadCompletion)),
            "nothing pending"
        );
    }

    /// Found by the `mmio` fuzz target: a trapped access on the last
    /// instruction of the address space overflowed the PC step (a panic
    /// at EL2 in debug builds). The PC wraps, as the CPU's does.
    #[test]
    fn pc_steps_wrap_at_the_top_of_the_address_space() {
        const LAST_INSN: u64 = u64::MAX - 3;
        let mut v = vcpu();
        v.pc = LAST_INSN;
        let ipa = 0x0900_0000;
        handle_sync(&mut v, &IdRegs::empty(), syn(da(true, 2, false, 1, false, false), ipa), |_| false);
        v.complete(Completion::MmioRead(7)).unwrap();
        assert_eq!((v.pc, v.regs.x[1]), (0, 7));
        v.pc = LAST_INSN;
        handle_sync(&mut v, &IdRegs::empty(), syn(da(true, 2, false, 1, false, true), ipa), |_| false);
        v.complete(Completion::MmioWrite).unwrap();
        assert_eq!(v.pc, 0);
        v.pc = LAST_INSN;
        let wfi = (0x01u64 << 26) | (1 << 25);
        assert_eq!(handle_sync(&mut v, &IdRegs::empty(), syn(wfi, 0), |_| false), Action::Wfx);
        assert_eq!(v.pc, 0);
        v.pc = LAST_INSN;
        let smc = (0x17u64 << 26) | (1 << 25);
        handle_sync(&mut v, &IdRegs::empty(), syn(smc, 0), |_| false);
        assert_eq!(v.pc, 0);
    }

    #[test]
    fn mmio_write_takes_the_register_value_and_xzr() {
        let mut v = vcpu();
        v.regs.x[3] = 0x1234_5678_9abc_def0;
        let a = handle_sync(&mut v, &IdRegs::empty(), syn(da(true, 1, false, 3, true, true), 0x0900_0000), |_| false);
        assert_eq!(a, Action::ToHost(Exit::Mmio(MmioAccess { ipa: 0x0900_0000, size: 2, write: true, value: 0xdef0 })));
        v.complete(Completion::MmioWrite).unwrap();
        let a = handle_sync(&mut v, &IdRegs::empty(), syn(da(true, 3, false, 31, true, true), 0x0900_0000), |_| false);
        assert_eq!(a, Action::ToHost(Exit::Mmio(MmioAccess { ipa: 0x0900_0000, size: 8, write: true, value: 0 })));
    }

    #[test]
    fn aborts_in_ram_stop_the_vm_and_outside_go_to_the_host() {
        let mut v = vcpu();
        let a =
            handle_sync(&mut v, &IdRegs::empty(), syn(da(false, 0, false, 0, false, true), 0x2_0000_0000), |_| false);
        assert_eq!(
            a,
            Action::ToHost(Exit::Abort { ipa: 0x2_0000_0000, far: 0xdead_0000_0000, instr: false, write: true })
        );
        assert_eq!(v.pending, Pending::Abort { instr: false, write: true });
        assert_eq!(
            v.complete(Completion::MmioWrite),
            Err(Uncompleted::Refused(Status::BadCompletion)),
            "no syndrome: no MMIO answer"
        );
        let a = handle_sync(&mut v, &IdRegs::empty(), syn(da(true, 2, false, 0, false, false), 0x4000_0000), |ipa| {
            ipa >= 0x4000_0000
        });
        assert_eq!(a, Action::Stop(StopReason::Unhandled));
        let iabt = (0x20u64 << 26) | (1 << 25) | 0x07;
        assert_eq!(
            handle_sync(&mut v, &IdRegs::empty(), syn(iabt, 0x4100_0000), |_| false),
            Action::ToHost(Exit::Abort { ipa: 0x4100_0000, far: 0xdead_0000_0000, instr: true, write: false })
        );
        assert_eq!(
            handle_sync(&mut v, &IdRegs::empty(), syn(iabt, 0x4000_1000), |_| true),
            Action::Stop(StopReason::Unhandled),
            "an instruction abort in RAM is not the guest's doing"
        );
    }

    /// A vcpu at `pc` in `pstate` after an exit whose abort the host answers.
    fn aborted(pstate: u64, esr: u64, ipa: u64, far: u64) -> Vcpu {
        let mut v = vcpu();
        v.pstate = pstate;
        v.exits = 10;
        let s = Syndrome { esr, far, hpfar: (ipa >> 12) << 4 };
        assert!(matches!(handle_sync(&mut v, &IdRegs::empty(), s, |_| false), Action::ToHost(_)));
        v
    }

    #[test]
    fn external_data_abort_from_el1_and_el0() {
        // ldr x0, [..] at EL1h, ISV=1: the host found no device.
        let mut v = aborted(0x3c5 & !0x3c0 | 0x5, da(true, 3, false, 0, true, false), 0x2_0000_0000, 0x2_0000_0008);
        assert_eq!(v.complete(Completion::Abort), Ok(()));
        assert_eq!(v.pc, 0x4000_8000 + 0x200, "current EL, SP_ELx, synchronous");
        assert_eq!(v.el1.esr, (0x25 << 26) | (1 << 25) | 0x10, "EC data abort same EL, IL, FSC external");
        assert_eq!((v.el1.far, v.el1.elr, v.el1.spsr), (0x2_0000_0008, 0x4000_1000, 0x5));
        assert_eq!(v.pstate, 0x3c5, "EL1h, DAIF masked");
        assert_eq!(v.pending, Pending::None);
        // str from EL0 with ISV=1: lower EL, WnR.
        let mut v = aborted(0, da(true, 3, false, 0, true, true), 0x2_0000_0000, 0x2_4000_0000);
        assert_eq!(v.complete(Completion::Abort), Ok(()));
        assert_eq!(v.pc, 0x4000_8000 + 0x400, "lower EL AArch64, synchronous");
        assert_eq!(v.el1.esr, (0x24 << 26) | (1 << 25) | (1 << 6) | 0x10);
        assert_eq!((v.el1.far, v.el1.spsr), (0x2_0000_0000 + 0x4000_0000, 0));
        // No syndrome (ldp) from EL0: the same, through Exit::Abort.
        let mut v = aborted(0, da(false, 0, false, 0, false, false), 0x2_0000_0000, 0x2_4000_0010);
        assert_eq!(v.complete(Completion::Abort), Ok(()));
        assert_eq!(v.el1.esr, (0x24 << 26) | (1 << 25) | 0x10);
    }

    #[test]
    fn external_instruction_abort_from_el1_and_el0() {
        let iabt = (0x20u64 << 26) | (1 << 25) | 0x07;
        let mut v = aborted(0x3c5, iabt, 0x4100_0000, 0x4100_0000);
        v.pc = 0x4100_0000;
        assert_eq!(v.complete(Completion::Abort), Ok(()));
        assert_eq!(v.el1.esr, (0x21 << 26) | (1 << 25) | 0x10, "EC instruction abort same EL");
        assert_eq!((v.pc, v.el1.elr, v.el1.far), (0x4000_8200, 0x4100_0000, 0x4100_0000));
        let mut v = aborted(0, iabt, 0x4100_0000, 0x8100_0000);
        v.pc = 0x8100_0000;
        assert_eq!(v.complete(Completion::Abort), Ok(()));
        assert_eq!(v.el1.esr, (0x20 << 26) | (1 << 25) | 0x10, "EC instruction abort lower EL");
        assert_eq!((v.pc, v.el1.far, v.el1.spsr), (0x4000_8400, 0x8100_0000, 0));
        let mut v = aborted(0, iabt, 0x4100_0000, 0x8100_0000);
        assert_eq!(
            v.complete(Completion::Hvc([0; 4])),
            Err(Uncompleted::Refused(Status::BadCompletion)),
            "only an abort answers it"
        );
    }

    #[test]
    fn an_abort_on_the_abort_vector_stops_the_vm() {
        // VBAR_EL1 points where nothing is: the fetch of the vector itself
        // aborts, at the very address the abort would be sent to.
        let iabt = (0x20u64 << 26) | (1 << 25) | 0x07;
        let mut v = aborted(0x3c5, iabt, 0x4000_8200, 0x4000_8200);
        v.pc = 0x4000_8200;
        assert_eq!(v.complete(Completion::Abort), Err(Uncompleted::Stop(StopReason::AbortOnVector)));
        assert_eq!(v.pc, 0x4000_8200, "nothing injected");
    }

    #[test]
    fn aborts_back_to_back_stop_the_vm_but_progress_resets_the_count() {
        let ldr = da(true, 3, false, 1, true, false);
        let mut v = vcpu();
        let s = Syndrome { esr: ldr, far: 0x2_0000_0000, hpfar: (0x2_0000_0000u64 >> 12) << 4 };
        let mut n = 0;
        let stop = loop {
            v.exits += 1;
            v.pc = 0x4000_8208;
            handle_sync(&mut v, &IdRegs::empty(), s, |_| false);
            n += 1;
            if let Err(Uncompleted::Stop(r)) = v.complete(Completion::Abort) {
                break r;
            }
            if n > 1000 {
                panic!("never stopped");
            }
        };
        assert_eq!(stop, StopReason::AbortLoop);
        assert_eq!(n, spevisor_abi::MAX_ABORTS_IN_A_ROW + 1);
        // With another exit between each pair, never.
        let mut v = vcpu();
        for _ in 0..2 * spevisor_abi::MAX_ABORTS_IN_A_ROW {
            v.exits += 2;
            v.pc = 0x4000_8208;
            handle_sync(&mut v, &IdRegs::empty(), s, |_| false);
            assert_eq!(v.complete(Completion::Abort), Ok(()));
        }
    }

    #[test]
    fn hvc_goes_to_the_host_and_smc_advances_the_pc() {
        let mut v = vcpu();
        v.regs.x[..4].copy_from_slice(&[0x8400_0000, 7, 8, 9]);
        let hvc = (0x16u64 << 26) | (1 << 25) | 0x5;
        let a = handle_sync(&mut v, &IdRegs::empty(), syn(hvc, 0), |_| false);
        assert_eq!(a, Action::ToHost(Exit::Hvc { imm: 5, regs: [0x8400_0000, 7, 8, 9] }));
        assert_eq!(v.pc, 0x4000_1000, "no PC change after hvc");
        v.complete(Completion::Hvc([0x10001, 0, 0, 0])).unwrap();
        assert_eq!(v.regs.x[0], 0x10001);
        let smc = (0x17u64 << 26) | (1 << 25);
        handle_sync(&mut v, &IdRegs::empty(), syn(smc, 0), |_| false);
        assert_eq!(v.pc, 0x4000_1004, "smc must be stepped over");
    }

    #[test]
    fn fp_and_pauth_traps_switch_lazily_without_moving_the_pc() {
        let mut v = vcpu();
        let fp = (0x07u64 << 26) | (1 << 25);
        assert_eq!(handle_sync(&mut v, &IdRegs::empty(), syn(fp, 0), |_| false), Action::FpTrap);
        let pac = (0x09u64 << 26) | (1 << 25);
        assert_eq!(handle_sync(&mut v, &IdRegs::empty(), syn(pac, 0), |_| false), Action::PauthTrap);
        // MSR APIAKeyLo_EL1 (trapped by HCR_EL2.APK, EC 0x18).
        let key = SysRegIss::new(spevisor_armv8::sysreg::SysRegEnc::new(3, 0, 2, 1, 0), 4, Direction::Write);
        let esr = Esr::new(ExceptionClass::SysReg, true, key.0);
        assert_eq!(handle_sync(&mut v, &IdRegs::empty(), syn(esr.0, 0), |_| false), Action::PauthTrap);
        assert_eq!(v.pc, 0x4000_1000, "the trapped instruction runs again");
    }

    #[test]
    fn hyp_ping_is_answered_at_el2() {
        let mut v = vcpu();
        v.regs.x[0] = HYP_PING;
        v.regs.x[1] = 41;
        let hvc = (0x16u64 << 26) | (1 << 25);
        assert_eq!(handle_sync(&mut v, &IdRegs::empty(), syn(hvc, 0), |_| false), Action::Resume);
        assert_eq!((v.regs.x[0], v.regs.x[1]), (0, 42));
        assert_eq!(v.pending, Pending::None);
    }

    #[test]
    fn smccc_version_is_answered_at_el2() {
        let mut v = vcpu();
        v.regs.x[..4].copy_from_slice(&[SMCCC_VERSION, 7, 8, 9]);
        let hvc = (0x16u64 << 26) | (1 << 25);
        assert_eq!(handle_sync(&mut v, &IdRegs::empty(), syn(hvc, 0), |_| false), Action::Resume);
        assert_eq!(v.regs.x[..4], [0x1_0001, 7, 8, 9], "x0 = 1.1, x1..x3 untouched");
        assert_eq!(v.pending, Pending::None, "nothing for the host to complete");
        assert_eq!(v.pc, 0x4000_1000, "no PC change after hvc");
    }

    fn sysreg(enc: sysreg::SysRegEnc, rt: u8, dir: Direction) -> Syndrome {
        let iss = SysRegIss::new(enc, rt, dir);
        syn(Esr::new(ExceptionClass::SysReg, true, iss.0).0, 0)
    }

    #[test]
    fn id_register_reads_are_answered_from_the_guest_table() {
        let ids = IdRegs::new(|_, _| u64::MAX);
        let mut v = vcpu();
        // ID_AA64DFR0_EL1 into x7: PMUVer and PMSVer hidden.
        let dfr0 = sysreg::SysRegEnc::new(3, 0, 0, 5, 0);
        assert_eq!(handle_sync(&mut v, &ids, sysreg(dfr0, 7, Direction::Read), |_| false), Action::Resume);
        assert_eq!((v.regs.x[7] >> 8) & 0xf, 0, "no PMU");
        assert_eq!((v.regs.x[7] >> 32) & 0xf, 0, "no SPE");
        assert_eq!(v.pc, 0x4000_1004, "the mrs completed");
        // A write to an ID register is UNDEFINED.
        let a = handle_sync(&mut v, &ids, sysreg(dfr0, 7, Direction::Write), |_| false);
        assert_eq!(a, Action::Injected);
    }

    #[test]
    fn set_way_maintenance_completes_and_never_reaches_the_cpu() {
        let ids = IdRegs::empty();
        let mut v = vcpu();
        for (n, crm) in [CRM_DC_ISW, CRM_DC_CSW, CRM_DC_CISW].into_iter().enumerate() {
            let dc = sysreg::SysRegEnc::new(OP0_CACHE, 0, CRN_CACHE, crm, OP2_SET_WAY);
            assert_eq!(handle_sync(&mut v, &ids, sysreg(dc, 2, Direction::Write), |_| false), Action::Resume);
            assert_eq!(v.pc, 0x4000_1004 + 4 * n as u64, "completed");
        }
        // Another cache operation that traps is still UNDEFINED.
        let other = sysreg::SysRegEnc::new(OP0_CACHE, 0, CRN_CACHE, CRM_DC_ISW, OP2_SET_WAY + 1);
        assert_eq!(handle_sync(&mut v, &ids, sysreg(other, 2, Direction::Write), |_| false), Action::Injected);
    }

    #[test]
    fn mdscr_while_the_os_lock_blocks_debug_is_emulated_without_the_enables() {
        let ids = IdRegs::empty();
        let mut v = vcpu();
        // MDE | KDE | TDCC | SS, with the OS lock locked (reset).
        v.regs.x[3] = (1 << 15) | (1 << 13) | (1 << 12) | 1;
        v.pstate |= PSTATE_SS;
        let w = handle_sync(&mut v, &ids, sysreg(sysreg::MDSCR_EL1, 3, Direction::Write), |_| false);
        assert_eq!(w, Action::Debug(crate::debug::CpuWork::MdscrWritten));
        assert_eq!(v.el1.mdscr, 1 << 12, "locked: MDE, KDE and SS do not reach the CPU");
        assert_eq!(v.pstate & PSTATE_SS, 0, "an instruction EL2 completes is a completed step");
        let r = handle_sync(&mut v, &ids, sysreg(sysreg::MDSCR_EL1, 9, Direction::Read), |_| false);
        assert_eq!(r, Action::Resume);
        assert_eq!(v.regs.x[9], (1 << 15) | (1 << 13) | (1 << 12) | 1, "the guest reads what it wrote");
        assert_eq!(v.pc, 0x4000_1008);
        // Unlocking arms it: the world switch loads the comparators.
        let oslar = sysreg::SysRegEnc::new(2, 0, 1, 0, 4);
        v.regs.x[4] = 0;
        assert_eq!(
            handle_sync(&mut v, &ids, sysreg(oslar, 4, Direction::Write), |_| false),
            Action::Debug(crate::debug::CpuWork::LockChanged)
        );
        assert_eq!(v.el1.mdscr, (1 << 15) | (1 << 13) | (1 << 12) | 1);
        assert!(v.debug.armed);
    }

    #[test]
    fn open_os_lock_makes_debug_accesses_load_lazily() {
        let ids = IdRegs::empty();
        let mut v = vcpu();
        let oslsr = sysreg::SysRegEnc::new(2, 0, 1, 1, 4);
        handle_sync(&mut v, &ids, sysreg(oslsr, 4, Direction::Read), |_| false);
        assert_eq!(v.regs.x[4], 0b1010, "OS lock implemented, locked at reset");
        let oslar = sysreg::SysRegEnc::new(2, 0, 1, 0, 4);
        v.regs.x[4] = 0;
        assert_eq!(
            handle_sync(&mut v, &ids, sysreg(oslar, 4, Direction::Write), |_| false),
            Action::Debug(crate::debug::CpuWork::LockChanged)
        );
        assert_eq!(v.pc, 0x4000_1008);
        // DBGBCR0_EL1 (op0 2, CRn 0, CRm 0, op2 5): load, run it again.
        let bcr0 = sysreg::SysRegEnc::new(2, 0, 0, 0, 5);
        assert_eq!(
            handle_sync(&mut v, &ids, sysreg(bcr0, 2, Direction::Read), |_| false),
            Action::Debug(crate::debug::CpuWork::Load)
        );
        assert_eq!(v.pc, 0x4000_1008, "the access runs again on the real register");
        // DBGBCR1_EL1 on a CPU with one breakpoint (the empty table): UNDEF.
        let bcr1 = sysreg::SysRegEnc::new(2, 0, 0, 1, 5);
        assert_eq!(handle_sync(&mut v, &ids, sysreg(bcr1, 2, Direction::Read), |_| false), Action::Injected);
    }

    #[test]
    fn spe_and_pmu_accesses_inject_undef_at_the_vector() {
        for enc in [sysreg::PMBLIMITR_EL1, sysreg::PMSCR_EL1, sysreg::PMCR_EL0] {
            let mut v = vcpu();
            v.pstate = 0x3c5; // EL1h
            let iss = SysRegIss::new(enc, 2, Direction::Read);
            let esr = Esr::new(ExceptionClass::SysReg, true, iss.0);
            assert_eq!(handle_sync(&mut v, &IdRegs::empty(), syn(esr.0, 0), |_| false), Action::Injected);
            assert_eq!(v.pc, 0x4000_8000 + 0x200, "current EL with SP_ELx, synchronous");
            assert_eq!(v.el1.elr, 0x4000_1000, "ELR_EL1 = the faulting instruction");
            assert_eq!(v.el1.esr >> 26, 0, "EC unknown");
            assert_eq!(v.el1.esr & (1 << 25), 1 << 25, "IL");
            assert_eq!(v.el1.spsr, 0x3c5);
            assert_eq!(v.pstate & 0xf, 0b0101, "EL1h");
        }
    }

    #[test]
    fn physical_timer_accesses_go_to_the_host_and_complete_like_mmio() {
        let mut v = vcpu();
        v.regs.x[5] = 0x1234;
        let tval = sysreg::SysRegEnc::new(3, 3, 14, 2, 0);
        let a = handle_sync(&mut v, &IdRegs::empty(), sysreg(tval, 5, Direction::Write), |_| false);
        assert_eq!(a, Action::ToHost(Exit::SysReg { reg: guest_sysreg::CNTP_TVAL_EL0, write: true, value: 0x1234 }));
        assert_eq!(v.pc, 0x4000_1000, "completed by the host");
        assert_eq!(v.complete(Completion::MmioRead(1)), Err(Uncompleted::Refused(Status::BadCompletion)));
        v.complete(Completion::MmioWrite).unwrap();
        assert_eq!(v.pc, 0x4000_1004);
        let ctl = sysreg::SysRegEnc::new(3, 3, 14, 2, 1);
        let a = handle_sync(&mut v, &IdRegs::empty(), sysreg(ctl, 7, Direction::Read), |_| false);
        assert_eq!(a, Action::ToHost(Exit::SysReg { reg: guest_sysreg::CNTP_CTL_EL0, write: false, value: 0 }));
        v.complete(Completion::MmioRead(5)).unwrap();
        assert_eq!((v.regs.x[7], v.pc), (5, 0x4000_1008));
        // CNTP_CVAL_EL0 too; the virtual timer's registers never trap.
        let cval = sysreg::SysRegEnc::new(3, 3, 14, 2, 2);
        assert!(matches!(
            handle_sync(&mut v, &IdRegs::empty(), sysreg(cval, 1, Direction::Read), |_| false),
            Action::ToHost(Exit::SysReg { reg: guest_sysreg::CNTP_CVAL_EL0, .. })
        ));
    }

    #[test]
    fn pmu_first_use_loads_then_pmcr_is_emulated_and_the_rest_undefs() {
        use crate::pmu::{pmcr, PmuConfig};
        let cfg = PmuConfig::new(0b0101, 6 << pmcr::N_SHIFT, crate::traps::mdcr::TPM);
        let ids = IdRegs::new(|_, _| 0).with_pmu(cfg);
        let mut v = vcpu();
        // MRS x3, PMCR_EL0 before any use: load, and the access runs again.
        let a = handle_sync(&mut v, &ids, sysreg(sysreg::PMCR_EL0, 3, Direction::Read), |_| false);
        assert_eq!(a, Action::PmuFirstUse);
        assert_eq!(v.pc, 0x4000_1000, "not completed: it runs again once loaded");
        v.pmu.start(&cfg);
        let a = handle_sync(&mut v, &ids, sysreg(sysreg::PMCR_EL0, 3, Direction::Read), |_| false);
        assert_eq!(a, Action::Resume);
        assert_eq!((v.regs.x[3] >> pmcr::N_SHIFT) & pmcr::N_MASK, 6);
        assert_eq!(v.pc, 0x4000_1004);
        v.regs.x[4] = pmcr::E | pmcr::C;
        let a = handle_sync(&mut v, &ids, sysreg(sysreg::PMCR_EL0, 4, Direction::Write), |_| false);
        assert_eq!(a, Action::PmcrWrite(pmcr::E | pmcr::C | pmcr::DP), "DP forced, C passed on");
        assert_eq!(v.pc, 0x4000_1008);
        // Another PMU register trapping after the load: UNDEF, never a reload loop.
        let pmccntr = sysreg::SysRegEnc::new(3, 3, 9, 13, 0);
        let a = handle_sync(&mut v, &ids, sysreg(pmccntr, 1, Direction::Read), |_| false);
        assert_eq!(a, Action::Injected);
        // No PMU offered (IdRegs::empty): UNDEF as before.
        let mut v = vcpu();
        let a = handle_sync(&mut v, &IdRegs::empty(), sysreg(sysreg::PMCR_EL0, 3, Direction::Read), |_| false);
        assert_eq!(a, Action::Injected);
    }

    #[test]
    fn sgi_writes_go_to_the_host_and_reads_undef() {
        let mut v = vcpu();
        v.regs.x[4] = 0x0100_0000_0002;
        let sgi1r = sysreg::SysRegEnc::new(3, 0, 12, 11, 5);
        let a = handle_sync(&mut v, &IdRegs::empty(), sysreg(sgi1r, 4, Direction::Write), |_| false);
        assert_eq!(a, Action::ToHost(Exit::Sgi { value: 0x0100_0000_0002, group1: true }));
        assert_eq!(v.pc, 0x4000_1004, "the write is complete");
        let sgi0r = sysreg::SysRegEnc::new(3, 2, 12, 11, 7);
        let a = handle_sync(&mut v, &IdRegs::empty(), sysreg(sgi0r, 4, Direction::Write), |_| false);
        assert_eq!(a, Action::ToHost(Exit::Sgi { value: 0x0100_0000_0002, group1: false }));
        let a = handle_sync(&mut v, &IdRegs::empty(), sysreg(sgi1r, 4, Direction::Read), |_| false);
        assert_eq!(a, Action::Injected, "write-only register");
    }

    #[test]
    fn list_registers_load_sanitised_and_store_back() {
        use spevisor_abi::vgic::lr;
        let mut g = VgicState::default();
        let mut sh = VcpuShared::default();
        assert!(!g.load(&sh, 4), "nothing to do");
        sh.lrs[0] = lr::make(33, 0x80, true, lr::PENDING);
        sh.lrs[1] = lr::make_hw(27, 40, 0x80, true, lr::PENDING);
        sh.lrs[2] = lr::make(34, 0x80, true, lr::PENDING);
        sh.nr_lrs = 16;
        assert!(g.load(&sh, 2));
        assert_eq!(g.used_lrs, 2, "no more than the CPU has");
        assert_eq!(g.lrs[0], sh.lrs[0]);
        assert_eq!(g.lrs[1], 0, "HW tied to an SPI is refused");
        g.lrs[0] = lr::make(33, 0x80, true, lr::ACTIVE);
        g.eoicount = 3;
        let mut out = VcpuShared::default();
        let lr0 = g.lrs[0];
        g.store(&mut out);
        assert_eq!((out.nr_lrs, out.lrs[0], out.eoicount), (2, lr0, 3));
        assert_eq!((g.used_lrs, g.hcr_flags), (0, 0), "nothing is loaded again unless given");
    }

    #[test]
    fn load_extension() {
        assert_eq!(extend_load(0xff, 1, false, true), 0xff);
        assert_eq!(extend_load(0xff, 1, true, true), u64::MAX);
        assert_eq!(extend_load(0x8000, 2, true, false), 0xffff_8000);
        assert_eq!(extend_load(0x1_0000_0001, 4, false, true), 1);
        assert_eq!(extend_load(u64::MAX, 8, true, true), u64::MAX);
    }
}
