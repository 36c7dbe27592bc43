//! The host's SPE buffer across the world switch: `save_host_buffers` and
//! `restore_host_buffers`, whatever the backend.

use spevisor_spe::regs::{SavedSpe, SpeId};

/// Which SPE unit the host profiles with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// No SPE (or not owned by the host): nothing to drain.
    None,
    /// The CPU's SPE registers.
    Hardware,
}

/// What the world switch knows about the host's SPE.
#[derive(Clone, Copy, Debug)]
pub struct HostSpe {
    pub backend: Backend,
    pub id: SpeId,
}

impl HostSpe {
    pub const fn none() -> Self {
        Self { backend: Backend::None, id: SpeId::NONE }
    }
}

/// Drains and disables the host's profiling buffer if the host owns an
/// enabled one (PMSVer != 0, PMBIDR_EL1.P == 0, PMBLIMITR_EL1.E == 1):
/// PMSCR_EL1 = 0, isb, psb csync, dsb nsh, PMBLIMITR_EL1.E = 0, isb.
/// Returns what `restore_host_buffers` must put back.
#[inline(always)]
pub fn save_host_buffers(h: &mut HostSpe) -> Option<SavedSpe> {
    match h.backend {
        Backend::None => None,
        #[cfg(target_arch = "aarch64")]
        Backend::Hardware => {
            use spevisor_spe::regs::hw;
            // SAFETY: Backend::Hardware is chosen only when PMSVer != 0, so the
            // buffer registers exist; reading PMBLIMITR_EL1 has no side effects.
            let limit = unsafe { hw::read_pmblimitr_el1() };
            if !h.id.host_owns_enabled_buffer(limit) {
                return None;
            }
            // SAFETY: the host owns an enabled buffer and the host's regime is
            // still live (the caller's ordering), so the drain lands where the
            // host put the buffer.
            Some(unsafe { hw::disable_and_drain() })
        }
        #[cfg(not(target_arch = "aarch64"))]
        Backend::Hardware => None,
    }
}

/// Puts back what `save_host_buffers` disabled: isb, PMBLIMITR_EL1, isb,
/// PMSCR_EL1. Called only once every host register is back.
#[inline(always)]
pub fn restore_host_buffers(h: &mut HostSpe, saved: Option<SavedSpe>) {
    let Some(saved) = saved else { return };
    match h.backend {
        Backend::None => {}
        #[cfg(target_arch = "aarch64")]
        // SAFETY: `saved` came from `disable_and_drain` on this CPU and the
        // host's regime (TTBRs, HCR_EL2, MDCR_EL2) is live again.
        Backend::Hardware => unsafe { spevisor_spe::regs::hw::restore(saved) },
        #[cfg(not(target_arch = "aarch64"))]
        Backend::Hardware => {
            let _ = saved;
        }
    }
}
