//! Pointer-authentication keys across world switches: the guest writes all
//! ten key registers from a pattern (the first access traps to EL2, which
//! loads this vcpu's keys lazily), lets the host run (another VM may load its
//! own keys meanwhile), then reads them back.

use crate::hvc;
use core::arch::asm;

/// Mode 12: `arg` = pattern. Returns the number of key registers that changed.
pub const MODE_PAUTH_CHECK: u64 = 12;

macro_rules! key_rw {
    ($($enc:literal),*) => {
        /// Writes the keys from `v` (in the order of the encodings).
        fn write_keys(v: &[u64; 10]) {
            let mut i = 0;
            $(
                // SAFETY: writes one EL1 key register (S3 encoding: no
                // assembler extension needed); keys only affect PAC results.
                unsafe { asm!(concat!("msr ", $enc, ", {}"), in(reg) v[i], options(nomem, nostack)) };
                i += 1;
            )*
            let _ = i;
        }
        /// Reads the keys back.
        fn read_keys() -> [u64; 10] {
            let mut out = [0u64; 10];
            let mut i = 0;
            $(
                // SAFETY: reads one EL1 key register.
                unsafe { asm!(concat!("mrs {}, ", $enc), out(reg) out[i], options(nomem, nostack)) };
                i += 1;
            )*
            let _ = i;
            out
        }
    };
}

key_rw!(
    "S3_0_C2_C1_0",
    "S3_0_C2_C1_1",
    "S3_0_C2_C1_2",
    "S3_0_C2_C1_3",
    "S3_0_C2_C2_0",
    "S3_0_C2_C2_1",
    "S3_0_C2_C2_2",
    "S3_0_C2_C2_3",
    "S3_0_C2_C3_0",
    "S3_0_C2_C3_1"
);

/// Fills the keys, pings the host, checks; returns the mismatches.
pub fn check(pattern: u64) -> u64 {
    let want: [u64; 10] = core::array::from_fn(|i| pattern.rotate_left(7 * i as u32) ^ i as u64);
    write_keys(&want);
    hvc::host_ping(0);
    read_keys().iter().zip(want.iter()).filter(|(g, w)| g != w).count() as u64
}
