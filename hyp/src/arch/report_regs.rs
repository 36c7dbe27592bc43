//! Reads the registers of the board report (`crate::report`) and asks the
//! firmware its PSCI version. ID registers only: no side effects.

use crate::report::CpuRegs;
use aarch64_cpu::registers::*;
use core::arch::asm;

/// Reads a register by name with `mrs`.
macro_rules! mrs {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: an ID/identification register read at EL2: no side
        // effects, no memory.
        unsafe { asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

/// The report's CPU registers, on the CPU this runs on (EL2).
pub fn read() -> CpuRegs {
    let pmcr: u64 = mrs!("pmcr_el0");
    let ich_vtr = super::has_gic_sysregs().then(|| mrs!("ich_vtr_el2"));
    CpuRegs {
        midr: MIDR_EL1.get(),
        revidr: mrs!("revidr_el1"),
        mpidr: MPIDR_EL1.get(),
        pfr0: ID_AA64PFR0_EL1.get(),
        mmfr0: ID_AA64MMFR0_EL1.get(),
        mmfr1: ID_AA64MMFR1_EL1.get(),
        dfr0: ID_AA64DFR0_EL1.get(),
        pmcr,
        cntfrq: CNTFRQ_EL0.get(),
        ich_vtr,
        // Filled in by `boot` once the GICH frame is mapped.
        gich_vtr: None,
        current_el: super::current_el(),
    }
}

/// SMCCC function ID of PSCI_VERSION (PSCI DEN 0022, 32-bit call).
const PSCI_VERSION: u64 = 0x8400_0000;

/// PSCI_VERSION over `smc` (the only conduit EL2 can use: an `hvc` here
/// would trap to spevisor itself).
pub fn psci_version_smc() -> u32 {
    let mut x0 = PSCI_VERSION;
    // SAFETY: PSCI_VERSION has no side effects; SMCCC lets the firmware
    // clobber x0..x17, all declared here; no memory is passed.
    unsafe {
        asm!("smc #0", inout("x0") x0, out("x1") _, out("x2") _, out("x3") _, out("x4") _, out("x5") _,
             out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
             out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _, options(nostack))
    };
    x0 as u32
}
