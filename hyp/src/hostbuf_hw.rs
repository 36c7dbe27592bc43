//! The host's trace buffer (TRBE) and branch record buffer (BRBE) on the
//! hardware path of `save_host_buffers`/`restore_host_buffers` (`spe.rs`).
//!
//! Order, from Linux's nVHE `debug-sr.c` (`__debug_save_host_buffers_nvhe`:
//! SPE, then BRBE, then trace; the restore in the same order):
//!
//! - BRBE: BRBCR_EL1 saved and written 0 (E0BRE = E1BRE = 0), so nothing a
//!   guest does at EL0/EL1 (branches, its exceptions and returns) is
//!   recorded into the host's branch records; restored after the host's
//!   state is back. BRBCR_EL1 is an EL1 register the guest's EL1 would
//!   otherwise share (nVHE), which is why the Arm ARM's EL1 controls must
//!   be off while the guest runs; the exception return to the guest is the
//!   context synchronisation that makes the write effective.
//! - TRBE: trace prohibited (TRFCR_EL1 = 0), `isb` (the prohibition takes
//!   effect), `tsb csync` (the trace unit's data reaches the buffer), `dsb
//!   nsh` (those writes complete, through the host's regime), unit off
//!   (TRBLIMITR_EL1 = 0), `isb`. Back: TRBLIMITR_EL1, `isb`, TRFCR_EL1.
//!
//! Neither exists under QEMU (ID_AA64DFR0_EL1.TraceBuffer and .BRBE read 0):
//! this path is never taken there. The machine-code check
//! (`xtask/src/machine_code.rs`) checks its order in the built images; the
//! TRBE *model* path (`spe.rs`) is what runs under QEMU.

use crate::spe::DebugUnits;
use core::arch::asm;

/// ID_AA64DFR0_EL1.TraceBuffer, bits [47:44].
const TRACEBUFFER_SHIFT: u64 = 44;
/// ID_AA64DFR0_EL1.TraceFilt, bits [43:40] (TRFCR_EL1).
const TRACEFILT_SHIFT: u64 = 40;
/// ID_AA64DFR0_EL1.BRBE, bits [55:52].
const BRBE_SHIFT: u64 = 52;
/// TRBIDR_EL1.P: programming the trace buffer is prohibited at this EL.
const TRBIDR_P: u64 = 1 << 4;
/// TRBLIMITR_EL1.E.
const TRBLIMITR_E: u64 = 1;
/// BRBCR_EL1.E0BRE and E1BRE.
const BRBCR_EL1_ENABLES: u64 = 0b11;

fn id_field(v: u64, shift: u64) -> bool {
    (v >> shift) & 0xf != 0
}

/// Probes the units (EL2; ID registers only, TRBIDR_EL1 only where TRBE is).
pub fn probe() -> DebugUnits {
    let dfr0 = spevisor_spe::regs::hw::read_id_aa64dfr0_el1();
    let trbe = id_field(dfr0, TRACEBUFFER_SHIFT) && id_field(dfr0, TRACEFILT_SHIFT) && {
        let trbidr: u64;
        // SAFETY: TRBIDR_EL1 (S3_0_C9_C11_7) exists with FEAT_TRBE (checked
        // just above); an ID register read, no side effects, no memory.
        unsafe { asm!("mrs {}, S3_0_C9_C11_7", out(reg) trbidr, options(nomem, nostack, preserves_flags)) };
        trbidr & TRBIDR_P == 0
    };
    DebugUnits { trbe, brbe: id_field(dfr0, BRBE_SHIFT) }
}

/// What the drain parked of the host's TRBE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedTrbeHw {
    pub trfcr_el1: u64,
    pub trblimitr_el1: u64,
}

/// Prohibits trace, drains and disables the host's trace buffer (module
/// doc for the order); `None` if the host neither traces nor has the unit on.
///
/// # Safety
/// FEAT_TRBE and FEAT_TRF implemented ([`probe`]), at EL2 with the host's
/// regime still live.
#[inline(always)]
pub unsafe fn trbe_disable_and_drain() -> Option<SavedTrbeHw> {
    let (trfcr, limit): (u64, u64);
    // SAFETY: two `mrs` of registers that exist (caller); no side effects.
    unsafe {
        asm!("mrs {}, S3_0_C1_C2_1", out(reg) trfcr, options(nostack, preserves_flags));
        asm!("mrs {}, S3_0_C9_C11_0", out(reg) limit, options(nostack, preserves_flags));
    }
    if trfcr == 0 && limit & TRBLIMITR_E == 0 {
        return None;
    }
    // SAFETY: TRFCR_EL1 (S3_0_C1_C2_1) = 0, isb, tsb csync (hint #18), dsb
    // nsh, TRBLIMITR_EL1 (S3_0_C9_C11_0) = 0, isb: one block, in this order
    // (not `nomem`: the unit writes memory, so the compiler keeps memory
    // accesses on their side). Only XZR is read.
    unsafe {
        asm!(
            "msr S3_0_C1_C2_1, xzr",
            "isb",
            "hint #18",
            "dsb nsh",
            "msr S3_0_C9_C11_0, xzr",
            "isb",
            options(nostack, preserves_flags)
        );
    }
    Some(SavedTrbeHw { trfcr_el1: trfcr, trblimitr_el1: limit })
}

/// Inverse of [`trbe_disable_and_drain`]: TRBLIMITR_EL1 back, `isb`,
/// TRFCR_EL1 back.
///
/// # Safety
/// As for [`trbe_disable_and_drain`], with the host's regime live again;
/// `saved` from it on this CPU.
#[inline(always)]
pub unsafe fn trbe_restore(saved: SavedTrbeHw) {
    // SAFETY: TRBLIMITR_EL1 = saved, isb, TRFCR_EL1 = saved; reads the two
    // input registers only.
    unsafe {
        asm!(
            "msr S3_0_C9_C11_0, {limit}",
            "isb",
            "msr S3_0_C1_C2_1, {trfcr}",
            limit = in(reg) saved.trblimitr_el1,
            trfcr = in(reg) saved.trfcr_el1,
            options(nostack, preserves_flags)
        );
    }
}

/// Stops branch recording at EL0/EL1 (BRBCR_EL1 = 0); returns the host's
/// BRBCR_EL1 if it recorded anything.
///
/// # Safety
/// FEAT_BRBE implemented ([`probe`]), at EL2.
#[inline(always)]
pub unsafe fn brbe_pause() -> Option<u64> {
    let brbcr: u64;
    // SAFETY: BRBCR_EL1 (S2_1_C9_C0_0) exists (caller); reading it has no
    // side effects.
    unsafe { asm!("mrs {}, S2_1_C9_C0_0", out(reg) brbcr, options(nostack, preserves_flags)) };
    if brbcr & BRBCR_EL1_ENABLES == 0 {
        return None;
    }
    // SAFETY: BRBCR_EL1 = 0 (XZR); made effective by the `isb`s that follow
    // in `save_host_buffers` and by the exception return to the guest.
    unsafe { asm!("msr S2_1_C9_C0_0, xzr", options(nostack, preserves_flags)) };
    Some(brbcr)
}

/// BRBCR_EL1 back (after the host's state is).
///
/// # Safety
/// As for [`brbe_pause`]; `brbcr` from it on this CPU.
#[inline(always)]
pub unsafe fn brbe_resume(brbcr: u64) {
    // SAFETY: one `msr` of BRBCR_EL1; reads the input register only.
    unsafe { asm!("msr S2_1_C9_C0_0, {}", in(reg) brbcr, options(nostack, preserves_flags)) };
}
