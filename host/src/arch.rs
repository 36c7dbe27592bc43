//! EL1 instructions the host kernel needs: MMU, vectors, `hvc`.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::*;
use core::arch::{asm, global_asm};

global_asm!(include_str!("vectors.S"));

extern "C" {
    static host_vectors: u8;
}

/// Registers saved by the host's exception entry.
#[repr(C)]
pub struct ExceptionFrame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

const _: () = assert!(core::mem::size_of::<ExceptionFrame>() == 272);

pub fn install_vectors() {
    VBAR_EL1.set(core::ptr::addr_of!(host_vectors) as u64);
    barrier::isb(barrier::SY);
}

/// SCTLR_EL1 bits: M, C, SA, I, WXN, plus RES1 bits (29,28,23,22,20,11).
const SCTLR_EL1_ON: u64 = (1 << 0)
    | (1 << 2)
    | (1 << 3)
    | (1 << 12)
    | (1 << 19)
    | (1 << 29)
    | (1 << 28)
    | (1 << 23)
    | (1 << 22)
    | (1 << 20)
    | (1 << 11);

/// Turns on the EL1 MMU with `ttbr0`/`ttbr1`.
///
/// # Safety
/// The tables must identity-map the running code, stack and data.
pub unsafe fn enable_mmu(ttbr0: u64, ttbr1: u64, tcr: u64, mair: u64) {
    MAIR_EL1.set(mair);
    TCR_EL1.set(tcr);
    TTBR0_EL1.set(ttbr0);
    TTBR1_EL1.set(ttbr1);
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
    // SAFETY: invalidating this VMID's EL1 TLB entries only drops cached
    // translations; nothing stale may survive the MMU coming on.
    unsafe { asm!("tlbi vmalle1", options(nostack, preserves_flags)) };
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
    SCTLR_EL1.set(SCTLR_EL1_ON);
    barrier::isb(barrier::SY);
}

pub fn publish_new_mappings() {
    barrier::dsb(barrier::ISHST);
    barrier::isb(barrier::SY);
}

pub fn pa_range() -> u64 {
    ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange)
}

pub fn current_el() -> u64 {
    CurrentEL.read(CurrentEL::EL)
}

/// One `hvc #0` with x0..x7 in and out (SMCCC 1.1: x0..x17 may change; the
/// ABI returns results in x0..x7 and x8..x17 are declared clobbered).
pub fn hvc(regs: [u64; 8]) -> [u64; 8] {
    let mut r = regs;
    // SAFETY: the hypervisor's ABI: x0..x7 carry arguments and results; the
    // other caller-saved registers an SMCCC call may change are clobbered.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") r[0], inout("x1") r[1], inout("x2") r[2], inout("x3") r[3],
            inout("x4") r[4], inout("x5") r[5], inout("x6") r[6], inout("x7") r[7],
            out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
            out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
            options(nostack)
        )
    };
    r
}

/// Masks IRQs; returns the previous DAIF to hand to `restore_irqs`.
pub fn mask_irqs() -> u64 {
    let daif: u64;
    // SAFETY: reads DAIF and sets PSTATE.I; no memory is touched, but the
    // asm is a compiler barrier so accesses stay inside the masked region.
    unsafe { asm!("mrs {}, daif", "msr daifset, #2", out(reg) daif, options(nostack)) };
    daif
}

/// Puts DAIF back as `mask_irqs` found it.
pub fn restore_irqs(daif: u64) {
    // SAFETY: restores the interrupt mask saved by `mask_irqs`.
    unsafe { asm!("msr daif, {}", in(reg) daif, options(nostack)) };
}

/// Lets IRQs in.
pub fn unmask_irqs() {
    // SAFETY: clears PSTATE.I; handlers are installed (VBAR_EL1).
    unsafe { asm!("msr daifclr, #2", options(nostack)) };
}

/// Invalidates the data cache over `[start, end)` to the point of coherency:
/// memory written with the MMU (and so the caches) off may have stale lines
/// that the caches must not serve once they are on.
pub fn invalidate_dcache(start: u64, end: u64) {
    let line = dcache_line();
    let mut a = start & !(line - 1);
    while a < end {
        // SAFETY: `dc ivac` on memory the host owns; the caller guarantees
        // nothing dirty in the cache needs keeping (it wrote with caches off).
        unsafe { asm!("dc ivac, {}", in(reg) a, options(nostack, preserves_flags)) };
        a += line;
    }
    barrier::dsb(barrier::SY);
}

/// The smallest data cache line in bytes (CTR_EL0.DminLine, log2 of words).
pub fn dcache_line() -> u64 {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    4 << ((ctr >> 16) & 0xf)
}
