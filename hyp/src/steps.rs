//! The world switch's register-changing operations, each recording its own
//! step where it executes.
//!
//! `vcpu_run` (`switch.rs`) calls these instead of the bare register
//! operations, so the executed-step record ([`Trace`]) is written by the
//! operation itself: an operation moved in the switch moves its record
//! with it, and the record cannot disagree with what ran (a mark placed
//! beside the code could be left behind). `save_host_buffers` and
//! `restore_host_buffers` record themselves the same way (`spe.rs`).
//!
//! `TRACED` is the switch's const-generic split: the copy that runs once
//! the record is full is monomorphised with `TRACED = false`, where
//! [`record`] compiles to nothing.

use crate::switch::Trace;
use spevisor_abi::Step;

/// Records `s` in traced runs; nothing in the others.
#[inline(always)]
pub fn record<const TRACED: bool>(trace: &mut Trace, s: Step) {
    if TRACED {
        trace.record(s);
    }
}

#[cfg(target_arch = "aarch64")]
pub use imp::*;

#[cfg(target_arch = "aarch64")]
mod imp {
    use super::record;
    use crate::arch::{self, sysregs};
    use crate::switch::{HostContext, Trace};
    use crate::traps;
    use crate::vcpu::{El1Context, Vcpu};
    use crate::vm::VmMem;
    use spevisor_abi::Step;

    /// The host's EL1 registers saved (`Step::SaveHostSysregs`).
    #[inline(always)]
    pub fn save_host_sysregs<const TRACED: bool>(host: &mut El1Context, trace: &mut Trace) {
        sysregs::save_el1(host);
        record::<TRACED>(trace, Step::SaveHostSysregs);
    }

    /// `dsb nsh` (`Step::DsbNsh`).
    #[inline(always)]
    pub fn dsb_nsh<const TRACED: bool>(trace: &mut Trace) {
        arch::dsb_nsh();
        record::<TRACED>(trace, Step::DsbNsh);
    }

    /// The guest's EL1 registers and VMPIDR_EL2 loaded (`Step::RestoreGuestSysregs`).
    #[inline(always)]
    pub fn restore_guest_sysregs<const TRACED: bool>(vcpu: &Vcpu, vcpu_idx: usize, trace: &mut Trace) {
        sysregs::restore_el1(&vcpu.el1);
        sysregs::set_vmpidr(vcpu_idx as u64);
        record::<TRACED>(trace, Step::RestoreGuestSysregs);
    }

    /// VTCR_EL2/VTTBR_EL2 for `vm` (`Step::LoadStage2`).
    #[inline(always)]
    pub fn load_stage2<const TRACED: bool>(vm: &VmMem, trace: &mut Trace) {
        sysregs::load_stage2(vm);
        record::<TRACED>(trace, Step::LoadStage2);
    }

    /// HCR_EL2, MDCR_EL2, CPTR_EL2, CNTHCTL_EL2 for the guest, the host's
    /// PMU counters paused (`Step::ActivateGuestTraps`). Returns the paused
    /// counters for [`deactivate_traps`].
    #[inline(always)]
    pub fn activate_guest_traps<const TRACED: bool>(host: &HostContext, trace: &mut Trace) -> u64 {
        traps::activate_guest(host.hcr_guest, host.mdcr_guest, host.cptr_guest);
        let counters = sysregs::pause_host_counters();
        record::<TRACED>(trace, Step::ActivateGuestTraps);
        counters
    }

    /// The guest's EL1 registers saved (`Step::SaveGuestState`; the GIC,
    /// timer, FP and pointer-authentication state follow it in `vcpu_run`).
    #[inline(always)]
    pub fn save_guest_sysregs<const TRACED: bool>(vcpu: &mut Vcpu, trace: &mut Trace) {
        sysregs::save_el1(&mut vcpu.el1);
        record::<TRACED>(trace, Step::SaveGuestState);
    }

    /// The host's HCR_EL2, MDCR_EL2, CPTR_EL2, CNTHCTL_EL2 and VMPIDR_EL2
    /// back, its PMU counters resumed (`Step::DeactivateTraps`).
    #[inline(always)]
    pub fn deactivate_traps<const TRACED: bool>(host: &HostContext, counters: u64, trace: &mut Trace) {
        traps::activate_host(host.mdcr, host.hcr_host);
        sysregs::set_vmpidr_raw(host.vmpidr);
        sysregs::resume_host_counters(counters);
        record::<TRACED>(trace, Step::DeactivateTraps);
    }

    /// VTTBR_EL2 = 0 (`Step::UnloadStage2`).
    #[inline(always)]
    pub fn unload_stage2<const TRACED: bool>(trace: &mut Trace) {
        sysregs::unload_stage2();
        record::<TRACED>(trace, Step::UnloadStage2);
    }

    /// The host's EL1 registers back (`Step::RestoreHostSysregs`).
    #[inline(always)]
    pub fn restore_host_sysregs<const TRACED: bool>(host: &El1Context, trace: &mut Trace) {
        sysregs::restore_el1(host);
        record::<TRACED>(trace, Step::RestoreHostSysregs);
    }
}
