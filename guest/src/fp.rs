//! FP/SIMD state across world switches: the guest fills q0..q31, FPCR and
//! FPSR with values derived from a pattern, lets the host run (another VM
//! may load its own FP state meanwhile), then checks every register.

use crate::hvc;
use core::arch::asm;

/// Mode 9: `arg` = pattern. Returns the number of registers that changed.
pub const MODE_FP_CHECK: u64 = 9;

/// CPACR_EL1.FPEN = 0b11: EL1 and EL0 FP/SIMD not trapped to EL1.
const CPACR_FPEN: u64 = 0b11 << 20;
/// FPCR bits that are writable on every implementation: the rounding mode
/// (RMode, bits 23:22) and flush-to-zero (FZ, bit 24).
const FPCR_TEST_BITS: u64 = 0b111 << 22;

/// The value the guest puts in q`n` (both halves) for `pattern`.
fn value(pattern: u64, n: u64) -> u64 {
    pattern.rotate_left(n as u32) ^ n
}

/// Writes d`n` (the low half of q`n`) and the high half via `mov v.d[1]`.
macro_rules! set_q {
    ($n:literal, $v:expr) => {
        // SAFETY: only the named FP register is written; FP is enabled at
        // EL1 (CPACR_EL1.FPEN) and the hypervisor switches it lazily.
        unsafe {
            asm!(".arch_extension fp", ".arch_extension simd",
                 concat!("fmov d", $n, ", {v}"), concat!("mov v", $n, ".d[1], {v}"),
                 v = in(reg) $v, options(nomem, nostack))
        }
    };
}

macro_rules! get_q {
    ($n:literal) => {{
        let (lo, hi): (u64, u64);
        // SAFETY: reads the named FP register only.
        unsafe {
            asm!(".arch_extension fp", ".arch_extension simd",
                 concat!("fmov {lo}, d", $n), concat!("mov {hi}, v", $n, ".d[1]"),
                 lo = out(reg) lo, hi = out(reg) hi, options(nomem, nostack))
        };
        (lo, hi)
    }};
}

macro_rules! for_each_q {
    ($m:ident, $($n:literal)*) => { [$($m!($n)),*] };
}

/// Lets EL1 use FP/SIMD (CPACR_EL1.FPEN).
pub fn enable_fp() {
    // SAFETY: sets CPACR_EL1.FPEN so FP instructions do not trap to EL1; the
    // isb makes the change visible to the instructions that follow.
    unsafe {
        let v: u64;
        asm!("mrs {}, cpacr_el1", out(reg) v, options(nomem, nostack));
        asm!("msr cpacr_el1, {}", "isb", in(reg) v | CPACR_FPEN, options(nostack));
    }
}

/// Fills, pings the host, checks; returns the number of mismatches.
pub fn check(pattern: u64) -> u64 {
    enable_fp();
    macro_rules! set {
        ($n:literal) => {
            set_q!($n, value(pattern, $n))
        };
    }
    for_each_q!(set, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
    let fpcr = (pattern << 22) & FPCR_TEST_BITS;
    // SAFETY: FPCR rounding/flush bits only affect this guest's FP arithmetic.
    unsafe { asm!(".arch_extension fp", "msr fpcr, {}", in(reg) fpcr, options(nomem, nostack)) };

    // The host runs (and may run another VM) before we look again.
    hvc::host_ping(0);

    let got = for_each_q!(get_q, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
    let mut bad = got
        .iter()
        .enumerate()
        .filter(|(n, (lo, hi))| {
            let want = value(pattern, *n as u64);
            *lo != want || *hi != want
        })
        .count() as u64;
    let now: u64;
    // SAFETY: reads FPCR.
    unsafe { asm!(".arch_extension fp", "mrs {}, fpcr", out(reg) now, options(nomem, nostack)) };
    if now & FPCR_TEST_BITS != fpcr {
        bad += 1;
    }
    bad
}
