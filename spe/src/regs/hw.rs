//! Thin hardware accessors for the SPE registers (aarch64 only).
//!
//! Every register is named by its generic `S3_<op1>_C<n>_C<m>_<op2>`
//! encoding because assemblers do not all know the SPE names. Each accessor
//! is one `mrs`/`msr`; ordering against other system-register writes is the
//! caller's job (see [`disable_and_drain`] and [`restore`] for the one
//! sequence that matters to the world switch).
//!
//! None of the `asm!` blocks is `pure`, so the compiler keeps them in
//! program order relative to each other; only ID_AA64DFR0_EL1 (a constant)
//! is read with `nomem`.
//!
//! Accessing any PMS*/PMB* register on a CPU without SPE is UNDEFINED, so
//! every accessor is `unsafe` with that precondition; [`probe`] reads the ID
//! registers only when ID_AA64DFR0_EL1.PMSVer != 0.

use super::{PmbIdr, PmsIdr, SavedSpe, SpeId};
use core::arch::asm;

macro_rules! spe_read {
    ($(#[$doc:meta])* $fn:ident, $enc:expr) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// FEAT_SPE must be implemented (see [`probe`]), the caller must run
        /// at EL1 or EL2 and the access must not be trapped to a higher EL.
        #[inline(always)]
        pub unsafe fn $fn() -> u64 {
            let value: u64;
            // SAFETY: one `mrs` of an SPE register; the caller guarantees it
            // exists and is accessible. Writes only the output register; no
            // stack use or flag change. Deliberately not `nomem`: e.g.
            // PMBPTR_EL1 tells how much of the buffer the unit has written,
            // so the compiler must not move buffer reads above this read.
            unsafe {
                asm!(concat!("mrs {}, ", $enc), out(reg) value,
                     options(nostack, preserves_flags));
            }
            value
        }
    };
}

macro_rules! spe_write {
    ($(#[$doc:meta])* $fn:ident, $enc:expr) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// As for the readers, and the value must not make the profiling
        /// unit write memory the caller does not own (buffer pointer and
        /// limit describe memory reserved for profiling data).
        #[inline(always)]
        pub unsafe fn $fn(value: u64) {
            // SAFETY: one `msr` of an SPE register, preconditions from the
            // caller. Not `nomem`: the profiling unit writes memory through
            // the buffer registers, so the compiler must keep memory accesses
            // ordered around it. Context synchronisation (`isb`) is the
            // caller's job.
            unsafe {
                asm!(concat!("msr ", $enc, ", {}"), in(reg) value,
                     options(nostack, preserves_flags));
            }
        }
    };
}

// The two registers the world switch touches. The `hw-standin` feature (a
// QEMU-only instruction-count build, `cargo xtask bench`) names two spare
// EL2 registers instead, so the hardware path runs instruction for
// instruction on a CPU without SPE: CNTHP_CVAL_EL2 (the EL2 physical timer
// stays disabled, CNTHP_CTL_EL2 = 0) and CNTHV_CVAL_EL2 (FEAT_VHE; the EL2
// virtual timer is unused in nVHE). Never on hardware: the host's own SPE
// accesses would then miss the real registers.
#[cfg(not(feature = "hw-standin"))]
macro_rules! pmscr_el1 {
    () => {
        "S3_0_C9_C9_0"
    };
}
#[cfg(feature = "hw-standin")]
macro_rules! pmscr_el1 {
    () => {
        "S3_4_C14_C2_2"
    };
}
#[cfg(not(feature = "hw-standin"))]
macro_rules! pmblimitr_el1 {
    () => {
        "S3_0_C9_C10_0"
    };
}
#[cfg(feature = "hw-standin")]
macro_rules! pmblimitr_el1 {
    () => {
        "S3_4_C14_C3_2"
    };
}

/// Defines `unsafe fn $fn()`: one `msr <reg>, xzr` (no register to zero first).
macro_rules! spe_clear {
    ($(#[$doc:meta])* $fn:ident, $enc:expr) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// As for the readers.
        #[inline(always)]
        pub unsafe fn $fn() {
            // SAFETY: one `msr` of XZR to an SPE register, preconditions from
            // the caller; not `nomem`, as for the writers.
            unsafe {
                asm!(concat!("msr ", $enc, ", xzr"), options(nostack, preserves_flags));
            }
        }
    };
}

spe_read!(/// Reads PMSCR_EL1.
    read_pmscr_el1, pmscr_el1!());
spe_clear!(/// Writes 0 to PMSCR_EL1 (no sampling at EL0/EL1).
    clear_pmscr_el1, pmscr_el1!());
spe_clear!(/// Writes 0 to PMBLIMITR_EL1 (E = 0: buffer disabled).
    clear_pmblimitr_el1, pmblimitr_el1!());
spe_write!(/// Writes PMSCR_EL1.
    write_pmscr_el1, pmscr_el1!());
spe_read!(/// Reads PMSCR_EL2 (EL2 only).
    read_pmscr_el2, "S3_4_C9_C9_0");
spe_write!(/// Writes PMSCR_EL2 (EL2 only).
    write_pmscr_el2, "S3_4_C9_C9_0");
spe_read!(/// Reads PMSICR_EL1.
    read_pmsicr_el1, "S3_0_C9_C9_2");
spe_write!(/// Writes PMSICR_EL1.
    write_pmsicr_el1, "S3_0_C9_C9_2");
spe_read!(/// Reads PMSIRR_EL1.
    read_pmsirr_el1, "S3_0_C9_C9_3");
spe_write!(/// Writes PMSIRR_EL1.
    write_pmsirr_el1, "S3_0_C9_C9_3");
spe_read!(/// Reads PMSFCR_EL1.
    read_pmsfcr_el1, "S3_0_C9_C9_4");
spe_write!(/// Writes PMSFCR_EL1.
    write_pmsfcr_el1, "S3_0_C9_C9_4");
spe_read!(/// Reads PMSEVFR_EL1.
    read_pmsevfr_el1, "S3_0_C9_C9_5");
spe_write!(/// Writes PMSEVFR_EL1.
    write_pmsevfr_el1, "S3_0_C9_C9_5");
spe_read!(/// Reads PMSLATFR_EL1.
    read_pmslatfr_el1, "S3_0_C9_C9_6");
spe_write!(/// Writes PMSLATFR_EL1.
    write_pmslatfr_el1, "S3_0_C9_C9_6");
spe_read!(/// Reads PMSIDR_EL1.
    read_pmsidr_el1, "S3_0_C9_C9_7");
spe_read!(/// Reads PMBLIMITR_EL1.
    read_pmblimitr_el1, pmblimitr_el1!());
spe_write!(/// Writes PMBLIMITR_EL1.
    write_pmblimitr_el1, pmblimitr_el1!());
spe_read!(/// Reads PMBPTR_EL1.
    read_pmbptr_el1, "S3_0_C9_C10_1");
spe_write!(/// Writes PMBPTR_EL1.
    write_pmbptr_el1, "S3_0_C9_C10_1");
spe_read!(/// Reads PMBSR_EL1.
    read_pmbsr_el1, "S3_0_C9_C10_3");
spe_write!(/// Writes PMBSR_EL1.
    write_pmbsr_el1, "S3_0_C9_C10_3");
spe_read!(/// Reads PMBIDR_EL1.
    read_pmbidr_el1, "S3_0_C9_C10_7");

/// Reads ID_AA64DFR0_EL1 (always accessible at EL1 and EL2).
#[inline(always)]
pub fn read_id_aa64dfr0_el1() -> u64 {
    let value: u64;
    // SAFETY: ID registers are readable at EL1/EL2 on every Armv8-A CPU; the
    // `mrs` writes only the output register and touches no memory.
    unsafe {
        asm!("mrs {}, S3_0_C0_C5_0", out(reg) value,
             options(nomem, nostack, preserves_flags));
    }
    value
}

/// `psb csync`: profiling synchronisation barrier (`hint #17`), so older
/// assemblers accept it. Orders buffered profiling data before later
/// `dsb`s; it executes as a NOP without SPE.
#[inline(always)]
pub fn psb_csync() {
    // SAFETY: a hint instruction (NOP where unimplemented). No registers;
    // not `nomem`, so the compiler keeps memory accesses on their side.
    unsafe { asm!("hint #17", options(nostack, preserves_flags)) }
}

/// `isb`: context synchronisation after system register writes.
#[inline(always)]
pub fn isb() {
    // SAFETY: barrier only; no registers. Not `nomem` so it is also a
    // compiler barrier for memory accesses.
    unsafe { asm!("isb", options(nostack, preserves_flags)) }
}

/// `dsb nsh`: completes (this PE's) outstanding memory accesses, including
/// profiling buffer writes ordered by a preceding `psb csync`.
#[inline(always)]
pub fn dsb_nsh() {
    // SAFETY: barrier only; no registers. Not `nomem` (compiler barrier).
    unsafe { asm!("dsb nsh", options(nostack, preserves_flags)) }
}

/// Probes SPE. PMBIDR_EL1 and PMSIDR_EL1 are read only when
/// ID_AA64DFR0_EL1.PMSVer != 0 (they are UNDEFINED otherwise). Must run at
/// EL1 or EL2.
pub fn probe() -> SpeId {
    let pmsver = SpeId::pmsver_from_dfr0(read_id_aa64dfr0_el1());
    if pmsver == 0 {
        return SpeId::NONE;
    }
    // SAFETY: PMSVer != 0, so FEAT_SPE is implemented and the ID registers
    // exist; they are read-only and side-effect free.
    let (pmbidr, pmsidr) = unsafe { (read_pmbidr_el1(), read_pmsidr_el1()) };
    SpeId { pmsver, pmbidr: Some(PmbIdr::from_bits(pmbidr)), pmsidr: Some(PmsIdr::from_bits(pmsidr)) }
}

/// Stops sampling, drains buffered records to memory and disables the
/// buffer, returning what [`restore`] needs (the Linux/KVM nVHE order):
///
/// 1. save PMSCR_EL1, write 0 (no new samples), `isb`;
/// 2. `psb csync` (buffered records are pushed to the buffer writes);
/// 3. `dsb nsh` (those writes complete, through the translation regime that
///    is live *now*: call this while the owner's regime is loaded);
/// 4. write PMBLIMITR_EL1 = 0 (E clear: buffer disabled), `isb`.
///
/// `pmblimitr` is PMBLIMITR_EL1 as the caller just read it to decide that
/// the buffer is enabled (only software writes that register).
///
/// # Safety
/// FEAT_SPE implemented, EL1 buffer not owned by a higher EL, running at
/// EL1 or EL2 with the buffer owner's translation regime still live.
#[inline(always)]
pub unsafe fn disable_and_drain(pmblimitr: u64) -> SavedSpe {
    // SAFETY: preconditions from the caller; each step is a single access.
    unsafe {
        let pmscr_el1 = read_pmscr_el1();
        clear_pmscr_el1();
        isb();
        psb_csync();
        dsb_nsh();
        clear_pmblimitr_el1();
        isb();
        SavedSpe { pmscr_el1, pmblimitr_el1: pmblimitr }
    }
}

/// Inverse of [`disable_and_drain`]: `isb`, restore PMBLIMITR_EL1, `isb`,
/// restore PMSCR_EL1. Call only once the owner's translation regime (its
/// TTBRs) is live again: the first `isb` puts those writes into effect
/// before the buffer is enabled, the second enables the buffer before
/// sampling (the order Linux's SPE driver uses). At EL2 neither is strictly
/// needed, since nothing samples EL2 (PMSCR_EL2 = 0) and the exception
/// return synchronises everything; they stay, as the cheap side of doubt.
///
/// # Safety
/// As for [`disable_and_drain`]; `saved` must come from it on this CPU.
#[inline(always)]
pub unsafe fn restore(saved: SavedSpe) {
    // SAFETY: preconditions from the caller; each step is a single access.
    unsafe {
        isb();
        write_pmblimitr_el1(saved.pmblimitr_el1);
        isb();
        write_pmscr_el1(saved.pmscr_el1);
    }
}
