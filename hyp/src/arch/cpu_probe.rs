//! Reads the other cores' identification registers for the board report.
//!
//! Only a core can read its own MIDR_EL1/REVIDR_EL1/MPIDR_EL1, and
//! spevisor runs on the boot core alone. So the boot core starts each other
//! core once with PSCI CPU_ON at [`spevisor_cpu_probe_entry`], which stores
//! the three registers in a page-sized mailbox with the MMU off and turns
//! itself off again with CPU_OFF. The boot core waits (bounded) for the
//! mailbox and then for PSCI AFFINITY_INFO to say the core is off, so the
//! machine is as firmware left it: every other core off.
//!
//! Cache rule: the secondary writes with its MMU off, so its stores go to
//! memory (Device-nGnRnE), bypassing the caches. The boot core cleans and
//! invalidates the mailbox before CPU_ON (no dirty line may later be evicted
//! over the answer) and invalidates it before every read (a line fetched
//! before the answer arrived would hide it).

use crate::report::{CoreIds, OtherCpu, ProbeError};
use aarch64_cpu::registers::*;
use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;

/// The mailbox's "answer written" marker ("SPEVCPUS"), stored last.
const ANSWERED: u64 = 0x5350_4556_4350_5553;
/// PSCI function IDs (DEN 0022): SMC64 CPU_ON and AFFINITY_INFO, SMC32 CPU_OFF.
const PSCI_CPU_ON_64: u64 = 0xc400_0003;
const PSCI_AFFINITY_INFO_64: u64 = 0xc400_0004;
const PSCI_CPU_OFF: u32 = 0x8400_0002;
/// AFFINITY_INFO's answer for a core that is off.
const AFFINITY_OFF: u64 = 1;
/// How long a core gets to answer, and then to be off again: 100 ms.
const TIMEOUT_DIVISOR: u64 = 10;
/// MPIDR_EL1's affinity fields (Aff3 and Aff2..Aff0): what DT `reg` holds.
const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

// The secondary's entry, PSCI CPU_ON's `entry_point_address`: MMU and caches
// off, at the caller's EL (EL2), x0 = `context_id` = the mailbox's physical
// address (EL2 maps memory VA = PA). Registers: x1..x4 scratch; nothing else
// is touched and no stack is used. Order: the three registers are stored
// before the marker (dmb), and the stores are complete (dsb) before CPU_OFF.
global_asm!(
    ".section .text, \"ax\"",
    ".balign 4",
    ".global spevisor_cpu_probe_entry",
    "spevisor_cpu_probe_entry:",
    "    mrs     x1, midr_el1",
    "    mrs     x2, revidr_el1",
    "    stp     x1, x2, [x0, #8]",
    "    mrs     x3, mpidr_el1",
    "    mrs     x4, CurrentEL",
    "    lsr     x4, x4, #2",
    "    stp     x3, x4, [x0, #24]",
    "    dmb     sy",
    "    movz    x1, #{a0}",
    "    movk    x1, #{a1}, lsl #16",
    "    movk    x1, #{a2}, lsl #32",
    "    movk    x1, #{a3}, lsl #48",
    "    str     x1, [x0]",
    "    dsb     sy",
    "    movz    x0, #{off_lo}",
    "    movk    x0, #{off_hi}, lsl #16",
    "    smc     #0",
    "1:  wfe",
    "    b       1b",
    a0 = const ANSWERED & 0xffff,
    a1 = const (ANSWERED >> 16) & 0xffff,
    a2 = const (ANSWERED >> 32) & 0xffff,
    a3 = const ANSWERED >> 48,
    off_lo = const PSCI_CPU_OFF & 0xffff,
    off_hi = const PSCI_CPU_OFF >> 16,
);

extern "C" {
    fn spevisor_cpu_probe_entry();
}

/// Mailbox layout: marker, MIDR, REVIDR, MPIDR, CurrentEL.EL.
const WORDS: usize = 5;
/// One page: no other data shares its cache lines.
const MAILBOX_BYTES: usize = 4096;

#[repr(C, align(4096))]
struct Mailbox(UnsafeCell<[u64; MAILBOX_BYTES / 8]>);

// SAFETY: used by the boot core alone, before the host runs (single-threaded
// EL2 boot); the secondary writes it while the boot core only polls.
unsafe impl Sync for Mailbox {}

static MAILBOX: Mailbox = Mailbox(UnsafeCell::new([0; MAILBOX_BYTES / 8]));

/// One SMC64 PSCI call with three arguments.
fn psci(fid: u64, a1: u64, a2: u64, a3: u64) -> u64 {
    let mut x0 = fid;
    // SAFETY: PSCI CPU_ON/AFFINITY_INFO: memory is only what CPU_ON's
    // entry point writes (the mailbox, handled by the caller's cache
    // maintenance); SMCCC lets firmware clobber x0..x17, all declared.
    unsafe {
        asm!("smc #0", inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
             out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
             out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
             options(nostack))
    };
    x0
}

/// Runs `op` over each data cache line of the mailbox's first words.
fn for_each_line(op: fn(usize)) {
    let ctr: u64;
    // SAFETY: an ID register read: no side effects, no memory.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    // CTR_EL0.DminLine: log2 of the smallest line in words.
    let line = 4usize << ((ctr >> 16) & 0xf);
    let start = MAILBOX.0.get() as usize;
    let mut a = start & !(line - 1);
    while a < start + WORDS * 8 {
        op(a);
        a += line;
    }
    // SAFETY: a barrier only; completes the maintenance above.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

fn clean_invalidate(addr: usize) {
    // SAFETY: `addr` is in the mailbox, mapped at EL2; DC CIVAC writes back
    // and discards one line, with no other effect.
    unsafe { asm!("dc civac, {}", in(reg) addr, options(nostack, preserves_flags)) };
}

fn invalidate(addr: usize) {
    // SAFETY: as in `clean_invalidate`; the line holds nothing dirty (it was
    // cleaned before CPU_ON and EL2 does not write it meanwhile).
    unsafe { asm!("dc ivac, {}", in(reg) addr, options(nostack, preserves_flags)) };
}

fn word(i: usize) -> u64 {
    // SAFETY: `i < WORDS`; a volatile read of memory another core writes.
    unsafe { (MAILBOX.0.get() as *const u64).add(i).read_volatile() }
}

/// Polls `done` until it holds or the timeout passes.
fn wait(mut done: impl FnMut() -> bool) -> bool {
    let timeout = CNTFRQ_EL0.get() / TIMEOUT_DIVISOR;
    let start = CNTPCT_EL0.get();
    loop {
        if done() {
            return true;
        }
        if CNTPCT_EL0.get().wrapping_sub(start) > timeout {
            return false;
        }
    }
}

/// Whether `dt_mpidr` names the core this runs on.
pub fn is_self(dt_mpidr: u64) -> bool {
    dt_mpidr & MPIDR_AFFINITY_MASK == MPIDR_EL1.get() & MPIDR_AFFINITY_MASK
}

/// Starts the core `dt_mpidr` once to read its identification registers.
/// Must only be called on the boot core at EL2, with an `smc` PSCI conduit.
pub fn probe(dt_mpidr: u64) -> OtherCpu {
    // SAFETY: nothing else uses the mailbox now (see `Mailbox`).
    unsafe { (&mut *MAILBOX.0.get())[..WORDS].fill(0) };
    for_each_line(clean_invalidate);
    let entry = spevisor_cpu_probe_entry as *const () as usize as u64;
    let status = psci(PSCI_CPU_ON_64, dt_mpidr, entry, MAILBOX.0.get() as u64);
    if status != 0 {
        return OtherCpu { dt_mpidr, result: Err(ProbeError::CpuOn(status as i64 as i32)), off_again: false };
    }
    let answered = wait(|| {
        for_each_line(invalidate);
        word(0) == ANSWERED
    });
    let result = if answered {
        Ok(CoreIds { midr: word(1), revidr: word(2), mpidr: word(3), el: word(4) })
    } else {
        Err(ProbeError::NoAnswer)
    };
    let off_again = wait(|| psci(PSCI_AFFINITY_INFO_64, dt_mpidr, 0, 0) == AFFINITY_OFF);
    OtherCpu { dt_mpidr, result, off_again }
}
