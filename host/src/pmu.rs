//! PMUv3 cycle counter as the host's sampling clock: it overflows every
//! `period` cycles at EL1 and raises the PMU interrupt (a PPI).

use core::arch::asm;

/// PMCR_EL0.E (enable) and LC (the cycle counter overflows at 64 bits; LC is
/// RES1 on CPUs without AArch32, so 64-bit overflow is what works
/// everywhere). Not C: that would reset the counter just loaded.
const PMCR_E: u64 = 1 << 0;
const PMCR_LC: u64 = 1 << 6;
/// The cycle counter's bit in PMCNTENSET/PMINTENSET/PMOVSCLR.
const CYCLE_COUNTER: u64 = 1 << 31;
/// PMCCFILTR_EL0: U = 1 (not EL0); P = 0 (count EL1); NSH = 0 (not EL2).
const PMCCFILTR_EL1_ONLY: u64 = 1 << 30;
/// The counter value that overflows (64-bit) after `period` cycles.
const fn reload(period: u32) -> u64 {
    0u64.wrapping_sub(period as u64)
}

/// Starts sampling every `period` EL1 cycles.
pub fn start(period: u32) {
    // SAFETY: PMU registers at EL1 (MDCR_EL2.HPMN gives the host every
    // counter, TPM is clear for the host); the isb orders the enable last.
    unsafe {
        asm!("msr pmccfiltr_el0, {}", in(reg) PMCCFILTR_EL1_ONLY, options(nostack));
        asm!("msr pmccntr_el0, {}", in(reg) reload(period), options(nostack));
        asm!("msr pmovsclr_el0, {}", in(reg) CYCLE_COUNTER, options(nostack));
        asm!("msr pmintenset_el1, {}", in(reg) CYCLE_COUNTER, options(nostack));
        asm!("msr pmcntenset_el0, {}", in(reg) CYCLE_COUNTER, options(nostack));
        let pmcr: u64;
        asm!("mrs {}, pmcr_el0", out(reg) pmcr, options(nostack));
        asm!("msr pmcr_el0, {}", "isb", in(reg) pmcr | PMCR_E | PMCR_LC, options(nostack));
    }
}

/// Stops sampling.
pub fn stop() {
    // SAFETY: as in `start`.
    unsafe {
        asm!("msr pmcntenclr_el0, {}", in(reg) CYCLE_COUNTER, options(nostack));
        asm!("msr pmintenclr_el1, {}", "isb", in(reg) CYCLE_COUNTER, options(nostack));
    }
}

/// Handles an overflow: clears it and re-arms the period. `true` if the
/// cycle counter had overflowed.
pub fn overflow(period: u32) -> bool {
    let ovs: u64;
    // SAFETY: as in `start`.
    unsafe { asm!("mrs {}, pmovsclr_el0", out(reg) ovs, options(nostack)) };
    if ovs & CYCLE_COUNTER == 0 {
        return false;
    }
    // SAFETY: as in `start`.
    unsafe {
        asm!("msr pmovsclr_el0, {}", in(reg) CYCLE_COUNTER, options(nostack));
        asm!("msr pmccntr_el0, {}", "isb", in(reg) reload(period), options(nostack));
    }
    true
}
