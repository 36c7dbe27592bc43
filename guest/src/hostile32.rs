//! The hostile-guest suite's AArch32 EL0 cases (mode 50, cases 31..=38):
//! the guest (EL1, AArch64) drops to an AArch32 User-mode task, A32 or T32,
//! which does what reaches EL2 (coprocessor accesses EL2 traps, trapped
//! instructions with failed conditions or inside an IT block, a 16-bit
//! T32 MMIO load, an access outside the IPA space) or must stay with the
//! guest's own EL1 (UDF, BKPT, HVC and SMC at EL0, alignment and
//! permission faults). Every exception from the task arrives at VBAR_EL1 +
//! 0x600 (lower EL, AArch32); [`on_exception`] records it and resumes after
//! the instruction, and the task's closing `svc #0` returns to EL1.
//!
//! Where the CPU has no AArch32 EL0 (ID_AA64PFR0_EL1.EL0 = 0b0001) every
//! case reports [`SKIPPED_NO_AARCH32_EL0`] and the host prints it as
//! skipped. The A32/T32 code is kept as bytes (the guest is assembled for
//! AArch64); each line names its instruction.

use core::arch::{asm, global_asm};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

/// Reported by every case on a CPU without AArch32 EL0 (the host's
/// `hostile_suite.rs` knows it by the same name).
pub const SKIPPED_NO_AARCH32_EL0: u64 = 0xa32_5c1d;
/// Vector entry (start.S's index) of synchronous exceptions from a lower
/// EL in AArch32: VBAR_EL1 + 0x600.
pub const VECTOR_LOWER_A32_SYNC: u64 = 12;

/// ID_AA64PFR0_EL1.EL0 = 0b0010: EL0 in AArch64 and AArch32.
const PFR0_EL0_MASK: u64 = 0xf;
const PFR0_EL0_AARCH32: u64 = 0b0010;
/// SPSR for AArch32 User mode (M = 0b10000), A, I, F masked (bits 8:6;
/// bit 9 is E, little-endian), T32 (bit 5) where asked, flags N Z C V.
const SPSR_USR: u64 = 0b1_0000;
const SPSR_AIF: u64 = 0b111 << 6;
const SPSR_T: u64 = 1 << 5;
const SPSR_Z: u64 = 1 << 30;
/// SPSR for the return to EL1: EL1h, DAIF masked.
const SPSR_EL1H_DAIF: u64 = 0x3c5;
/// ESR_EL1 fields and the classes the cases expect.
const EC_SHIFT: u64 = 26;
const EC_MASK: u64 = 0x3f;
const ESR_IL: u64 = 1 << 25;
const ESR_WNR: u64 = 1 << 6;
const FSC_MASK: u64 = 0x3f;
const EC_UNKNOWN: u64 = 0x00;
const EC_SVC32: u64 = 0x11;
const EC_DABT_LOWER: u64 = 0x24;
const EC_BKPT32: u64 = 0x38;
/// DFSCs: synchronous external abort, alignment fault, permission fault
/// (any level: 0b0011xx).
const FSC_EXTERNAL: u64 = 0x10;
const FSC_ALIGNMENT: u64 = 0x21;
const FSC_PERMISSION_ANY_LEVEL: u64 = 0b00_1100;
const FSC_LEVEL_MASK: u64 = 0b11;
/// CNTKCTL_EL1.EL0PTEN: EL0 may use the physical timer (then
/// CNTHCTL_EL2.EL1PCEN traps it to EL2). CNTP_CTL_EL0.IMASK.
const CNTKCTL_EL0PTEN: u64 = 1 << 9;
const CNTP_CTL_IMASK: u64 = 1 << 1;
/// PMUSERENR_EL0.EN: EL0 may use the PMU.
const PMUSERENR_EN: u64 = 1;
/// A value no emulated register gives: a register that must not change.
const UNTOUCHED: u64 = 0x5a5a_a5a5;
/// Exceptions recorded per task.
const MAX_SEEN: usize = 8;
/// An unbacked IPA in the device block (no device of the guest machine
/// there) and the PL011, as AArch32 EL0 sees them.
const UNBACKED_IPA: u64 = 0x3000_0000;
const OUTSIDE_VA: u64 = crate::mmu::EL0_DEVICE_ALIAS + UNBACKED_IPA;
const UART_VA: u64 = crate::mmu::EL0_DEVICE_ALIAS + crate::uart::PL011_BASE;
const _: () = assert!(OUTSIDE_VA < 1 << 32 && UART_VA < 1 << 32, "AArch32 VAs are 32-bit");
/// A32 and T32 instruction sizes.
const A32_BYTES: u64 = 4;
const T16_BYTES: u64 = 2;

/// SET_STATUS bits (as `hostile_suite.rs`'s).
const WRONG_EXCEPTION: u64 = 1 << 0;
const NO_EXCEPTION: u64 = 1 << 1;
const WRONG_FAR: u64 = 1 << 2;
const WRONG_ANSWER: u64 = 1 << 3;
const CHANGED: u64 = 1 << 4;

/// Set while the task runs: its exceptions are this module's.
static IN_A32: AtomicBool = AtomicBool::new(false);
static TAKEN: AtomicU64 = AtomicU64::new(0);
/// ESR, ELR and FAR of the first exceptions.
static SEEN: [[AtomicU64; 3]; MAX_SEEN] = [const { [const { AtomicU64::new(0) }; 3] }; MAX_SEEN];
/// R0..R5 as the task left them (written by `hostile32_return`).
static A32_REGS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];

// The AArch32 excursion. `hostile32_call(pc, spsr, r0..r5)` saves the
// callee-saved registers on the EL1 stack and `eret`s to `pc` in the mode
// `spsr` gives (AArch32 User, A/I/F masked) with R0..R5 = x2..x7; the
// task's `svc #0` comes back through `on_exception` to `hostile32_return`
// at EL1h with SP_EL1 as it was at the `eret` (the vector's frame popped)
// and x0..x5 = R0..R5, which it stores in A32_REGS. x9 is scratch. x18
// is kept with them: X13..X30 hold AArch32's banked registers, which an
// implementation may leave UNKNOWN across the excursion.
global_asm!(
    ".section .text, \"ax\"",
    ".global hostile32_call",
    "hostile32_call:",
    "    stp x29, x30, [sp, #-112]!",
    "    stp x19, x20, [sp, #16]",
    "    stp x21, x22, [sp, #32]",
    "    stp x23, x24, [sp, #48]",
    "    stp x25, x26, [sp, #64]",
    "    stp x27, x28, [sp, #80]",
    "    str x18, [sp, #96]",
    "    msr elr_el1, x0",
    "    msr spsr_el1, x1",
    "    mov x0, x2",
    "    mov x1, x3",
    "    mov x2, x4",
    "    mov x3, x5",
    "    mov x4, x6",
    "    mov x5, x7",
    "    eret",
    ".global hostile32_return",
    "hostile32_return:",
    "    adrp x9, {regs}",
    "    add x9, x9, :lo12:{regs}",
    "    stp x0, x1, [x9]",
    "    stp x2, x3, [x9, #16]",
    "    stp x4, x5, [x9, #32]",
    "    ldp x19, x20, [sp, #16]",
    "    ldp x21, x22, [sp, #32]",
    "    ldp x23, x24, [sp, #48]",
    "    ldp x25, x26, [sp, #64]",
    "    ldp x27, x28, [sp, #80]",
    "    ldr x18, [sp, #96]",
    "    ldp x29, x30, [sp], #112",
    "    ret",
    // The tasks, run through the EL0 alias of RAM (read-only, EL0
    // executable). Encodings as llvm-mc gives them for armv8a.
    // a32_pmu (A32)
    ".balign 4",
    ".global hostile32_a32_pmu",
    "hostile32_a32_pmu:",
    ".byte 0x1c,0x0f,0x19,0xee", // mrc p15, 0, r0, c9, c12, 0
    ".byte 0x1c,0x0f,0x09,0xee", // mcr p15, 0, r0, c9, c12, 0
    ".byte 0x00,0x00,0x00,0xef", // svc #0
    // a32_cond_fail (A32)
    ".balign 4",
    ".global hostile32_a32_cond_fail",
    "hostile32_a32_cond_fail:",
    ".byte 0x1c,0x0f,0x19,0x1e", // mrcne p15, 0, r0, c9, c12, 0
    ".byte 0x32,0x0f,0x1e,0x1e", // mrcne p15, 0, r0, c14, c2, 1
    ".byte 0x2e,0x0f,0x51,0x1c", // mrrcne p15, 2, r0, r1, c14
    ".byte 0x15,0x0e,0x10,0x1e", // mrcne p14, 0, r0, c0, c5, 0
    ".byte 0x00,0x5e,0x92,0x1d", // ldcne p14, c5, [r2]
    ".byte 0x00,0x00,0x00,0xef", // svc #0
    // t32_it_timer (T32)
    ".balign 4",
    ".global hostile32_t32_it_timer",
    "hostile32_t32_it_timer:",
    ".byte 0x0c,0xbf", // ite eq
    ".byte 0x1e,0xee,0x32,0x0f", // mrceq p15, 0, r0, c14, c2, 1
    ".byte 0x01,0x22", // movne r2, #1
    ".byte 0x01,0x33", // adds r3, #1
    ".byte 0x55,0xec,0x2e,0x4f", // mrrc p15, 2, r4, r5, c14
    ".byte 0x45,0xec,0x2e,0x4f", // mcrr p15, 2, r4, r5, c14
    ".byte 0x00,0xdf", // svc #0
    // t32_mmio16 (T32)
    ".balign 4",
    ".global hostile32_t32_mmio16",
    "hostile32_t32_mmio16:",
    ".byte 0x88,0x69", // ldr r0, [r1, #0x18]
    ".byte 0x01,0x33", // adds r3, #1
    ".byte 0x01,0x33", // adds r3, #1
    ".byte 0x00,0xdf", // svc #0
    // a32_cp14 (A32)
    ".balign 4",
    ".global hostile32_a32_cp14",
    "hostile32_a32_cp14:",
    ".byte 0x10,0x0e,0x10,0xee", // mrc p14, 0, r0, c0, c0, 0
    ".byte 0x11,0x1e,0x10,0xee", // mrc p14, 0, r1, c0, c1, 0
    ".byte 0x01,0x2e,0x53,0xec", // mrrc p14, 0, r2, r3, c1
    ".byte 0x15,0x4e,0x10,0xee", // mrc p14, 0, r4, c0, c5, 0
    ".byte 0x15,0x4e,0x00,0xee", // mcr p14, 0, r4, c0, c5, 0
    ".byte 0x00,0x5e,0x95,0xed", // ldc p14, c5, [r5]
    ".byte 0x00,0x5e,0x85,0xed", // stc p14, c5, [r5]
    ".byte 0x00,0x00,0x00,0xef", // svc #0
    // a32_to_el1 (A32)
    ".balign 4",
    ".global hostile32_a32_to_el1",
    "hostile32_a32_to_el1:",
    ".byte 0xf0,0x00,0xf0,0xe7", // udf #0
    ".byte 0x70,0x00,0x20,0xe1", // bkpt #0
    ".byte 0x70,0x00,0x40,0xe1", // hvc #0
    ".byte 0x70,0x00,0x60,0xe1", // smc #0
    ".byte 0x00,0x00,0x00,0xef", // svc #0
    // t32_to_el1 (T32)
    ".balign 4",
    ".global hostile32_t32_to_el1",
    "hostile32_t32_to_el1:",
    ".byte 0x00,0xde", // udf #0
    ".byte 0x00,0xbe", // bkpt #0
    ".byte 0x00,0xdf", // svc #0
    // a32_aborts (A32)
    ".balign 4",
    ".global hostile32_a32_aborts",
    "hostile32_a32_aborts:",
    ".byte 0xd0,0x00,0xc2,0xe1", // ldrd r0, r1, [r2]
    ".byte 0x00,0x00,0x83,0xe5", // str r0, [r3]
    ".byte 0x00,0x00,0x00,0xef", // svc #0
    // a32_outside (A32)
    ".balign 4",
    ".global hostile32_a32_outside",
    "hostile32_a32_outside:",
    ".byte 0x00,0x00,0x91,0xe5", // ldr r0, [r1]
    ".byte 0x00,0x00,0x81,0xe5", // str r0, [r1]
    ".byte 0x00,0x00,0x00,0xef", // svc #0

    regs = sym A32_REGS,
);

extern "C" {
    fn hostile32_call(pc: u64, spsr: u64, r0: u64, r1: u64, r2: u64, r3: u64, r4: u64, r5: u64);
    static hostile32_return: u8;
    static hostile32_a32_pmu: u8;
    static hostile32_a32_cond_fail: u8;
    static hostile32_t32_it_timer: u8;
    static hostile32_t32_mmio16: u8;
    static hostile32_a32_cp14: u8;
    static hostile32_a32_to_el1: u8;
    static hostile32_t32_to_el1: u8;
    static hostile32_a32_aborts: u8;
    static hostile32_a32_outside: u8;
}

/// Called by the guest's exception handler for VBAR_EL1 + 0x600: `true`
/// if a task was running (its `svc #0` ends it; anything else is recorded
/// and skipped: ELR + the instruction's length).
pub fn on_exception(esr: u64, elr: u64, far: u64) -> bool {
    if !IN_A32.load(SeqCst) {
        return false;
    }
    let (next, spsr) = if esr >> EC_SHIFT & EC_MASK == EC_SVC32 {
        IN_A32.store(false, SeqCst);
        (core::ptr::addr_of!(hostile32_return) as u64, SPSR_EL1H_DAIF)
    } else {
        let n = TAKEN.fetch_add(1, SeqCst) as usize;
        if let Some(slot) = SEEN.get(n) {
            for (s, v) in slot.iter().zip([esr, elr, far]) {
                s.store(v, SeqCst);
            }
        }
        let spsr = read_spsr();
        (elr + instruction_len(elr, spsr), spsr)
    };
    // SAFETY: the return address and PSTATE of this exception (start.S's
    // eret): past the task's instruction, or EL1 code expecting SP_EL1 as
    // it was at the `eret` to EL0, which it is once start.S pops the frame.
    unsafe {
        asm!("msr elr_el1, {}", "msr spsr_el1, {}", in(reg) next, in(reg) spsr, options(nomem, nostack, preserves_flags))
    };
    true
}

/// The length of the AArch32 instruction at `elr` (ESR.IL cannot tell:
/// it is RES1 for EC 0x00 and for aborts): 4 in A32; in T32, 4 when the
/// first halfword's top five bits are 0b11101, 0b11110 or 0b11111, else 2.
fn instruction_len(elr: u64, spsr: u64) -> u64 {
    if spsr & SPSR_T == 0 {
        return A32_BYTES;
    }
    // SAFETY: `elr` is the task's instruction, in the EL0 code alias, which
    // EL1 may read (read-only at both).
    let first = unsafe { (elr as *const u16).read_volatile() };
    if first >> T32_WIDE_SHIFT >= T32_WIDE_MIN {
        A32_BYTES
    } else {
        T16_BYTES
    }
}
/// A T32 instruction is 32-bit when its first halfword's bits [15:11] are
/// at least 0b11101.
const T32_WIDE_SHIFT: u16 = 11;
const T32_WIDE_MIN: u16 = 0b11101;

fn read_spsr() -> u64 {
    let v: u64;
    // SAFETY: reads SPSR_EL1; no side effect.
    unsafe { asm!("mrs {}, spsr_el1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Whether this CPU (as the hypervisor shows it) has AArch32 EL0.
fn has_aarch32_el0() -> bool {
    let pfr0: u64;
    // SAFETY: an ID register read (trapped by HCR_EL2.TID3 and answered by
    // EL2 with the CPU's EL0 field).
    unsafe { asm!("mrs {}, id_aa64pfr0_el1", out(reg) pfr0, options(nomem, nostack, preserves_flags)) };
    pfr0 & PFR0_EL0_MASK == PFR0_EL0_AARCH32
}

/// Where EL0 sees a task.
fn el0_va(task: &u8) -> u64 {
    task as *const u8 as u64 - crate::mmu::RAM_BASE + crate::mmu::EL0_RAM_ALIAS
}

/// What a task saw: its registers after, and its exceptions (ESR, ELR, FAR).
struct Run {
    r: [u64; 6],
    seen: usize,
    exc: [[u64; 3]; MAX_SEEN],
}

impl Run {
    fn ec(&self, i: usize) -> u64 {
        self.exc[i][0] >> EC_SHIFT & EC_MASK
    }
}

/// Runs `task` in AArch32 User mode (T32 if `thumb`) with the NZCV
/// `flags` and R0..R5 = `r`.
fn run(task: &u8, thumb: bool, flags: u64, r: [u64; 6]) -> Run {
    TAKEN.store(0, SeqCst);
    IN_A32.store(true, SeqCst);
    let spsr = SPSR_USR | SPSR_AIF | flags | if thumb { SPSR_T } else { 0 };
    // SAFETY: the task is AArch32 code in the EL0 alias of RAM, ending in
    // `svc #0`, which `on_exception` turns into the return to
    // `hostile32_return`; the callee-saved registers are kept on the stack
    // and every other register is clobbered (declared).
    unsafe {
        hostile32_call(el0_va(task), spsr, r[0], r[1], r[2], r[3], r[4], r[5]);
    }
    let mut out = Run { r: [0; 6], seen: TAKEN.load(SeqCst) as usize, exc: [[0; 3]; MAX_SEEN] };
    for (o, a) in out.r.iter_mut().zip(&A32_REGS) {
        *o = a.load(SeqCst) & 0xffff_ffff;
    }
    for (o, s) in out.exc.iter_mut().zip(&SEEN) {
        *o = [s[0].load(SeqCst), s[1].load(SeqCst), s[2].load(SeqCst)];
    }
    out
}

/// Exactly the exceptions `want` (EC, ELR offset in the task, ESR.IL if
/// the architecture fixes it), in order.
fn expect_exceptions(name: &str, task: &u8, got: &Run, want: &[(u64, u64, Option<bool>)]) -> u64 {
    if got.seen == 0 && !want.is_empty() {
        return NO_EXCEPTION;
    }
    let base = el0_va(task);
    let same = got.seen == want.len()
        && want.iter().enumerate().all(|(i, &(ec, off, il32))| {
            got.ec(i) == ec && got.exc[i][1] == base + off && il32.is_none_or(|il| (got.exc[i][0] & ESR_IL != 0) == il)
        });
    if !same {
        println!("guest: hostile32 {name}: {} exceptions (task at {base:#x}):", got.seen);
        for e in &got.exc[..got.seen.min(MAX_SEEN)] {
            println!("guest:   ESR {:#x} ELR {:#x} FAR {:#x}", e[0], e[1], e[2]);
        }
        return WRONG_EXCEPTION;
    }
    0
}

macro_rules! require_aarch32 {
    () => {
        if !has_aarch32_el0() {
            return SKIPPED_NO_AARCH32_EL0;
        }
    };
}

fn msr_cntkctl(v: u64) {
    // SAFETY: this vcpu's CNTKCTL_EL1 (switched with its EL1 context).
    unsafe { asm!("msr cntkctl_el1, {}", "isb", in(reg) v, options(nomem, nostack, preserves_flags)) };
}

fn cntp_ctl(write: Option<u64>) -> u64 {
    let mut v = write.unwrap_or(0);
    // SAFETY: CNTP_CTL_EL0, trapped to EL2 and emulated by the host per
    // vcpu; the timer stays masked (IMASK) or off.
    unsafe {
        match write {
            Some(w) => asm!("msr cntp_ctl_el0, {}", in(reg) w, options(nomem, nostack, preserves_flags)),
            None => asm!("mrs {}, cntp_ctl_el0", out(reg) v, options(nomem, nostack, preserves_flags)),
        }
    }
    v
}

/// A compare value with bits in both halves (the timer stays masked).
const CVAL: u64 = 0x1234_5678_9abc_def0;

fn cntp_cval(write: Option<u64>) -> u64 {
    let mut v = write.unwrap_or(0);
    // SAFETY: CNTP_CVAL_EL0, trapped to EL2 and emulated by the host per
    // vcpu; the timer is masked (IMASK) while it is set.
    unsafe {
        match write {
            Some(w) => asm!("msr cntp_cval_el0, {}", in(reg) w, options(nomem, nostack, preserves_flags)),
            None => asm!("mrs {}, cntp_cval_el0", out(reg) v, options(nomem, nostack, preserves_flags)),
        }
    }
    v
}

/// Case 31: the PMU's cp15 view from A32 EL0 (MRC and MCR of PMCR). With
/// a PMU offered (EL1's PMCR_EL0 reads) and PMUSERENR_EL0.EN set, EL0's
/// PMCR is EL1's (MDCR_EL2.TPMCR: emulated at EL2, or the loaded PMU);
/// without one, both UNDEF at EL1's AArch32 vector.
pub fn pmu_cp15() -> u64 {
    require_aarch32!();
    let task = unsafe_ref(core::ptr::addr_of!(hostile32_a32_pmu));
    let pmcr = crate::hostile_suite::pmcr_if_offered();
    let r = match pmcr {
        Some(_) => {
            // SAFETY: this vcpu's PMU (loaded on first use): EL0 access on.
            unsafe { asm!("msr pmuserenr_el0, {}", "isb", in(reg) PMUSERENR_EN, options(nomem, nostack)) };
            run(task, false, 0, [UNTOUCHED, 0, 0, 0, 0, 0])
        }
        None => run(task, false, 0, [UNTOUCHED, 0, 0, 0, 0, 0]),
    };
    match pmcr {
        Some(p) => {
            // SAFETY: EL0 access off again.
            unsafe { asm!("msr pmuserenr_el0, xzr", "isb", options(nomem, nostack)) };
            let after = crate::hostile_suite::pmcr_if_offered();
            let mut bad = expect_exceptions("pmu", task, &r, &[]);
            if r.r[0] != p & 0xffff_ffff {
                println!("guest: hostile32 pmu: EL0 PMCR {:#x}, EL1 {p:#x}", r.r[0]);
                bad |= WRONG_ANSWER;
            }
            if after != pmcr {
                bad |= CHANGED;
            }
            bad
        }
        None => {
            let bad =
                expect_exceptions("pmu", task, &r, &[(EC_UNKNOWN, 0, Some(true)), (EC_UNKNOWN, A32_BYTES, Some(true))]);
            bad | (u64::from(r.r[0] != UNTOUCHED) * CHANGED)
        }
    }
}

/// Case 32: trapped instructions whose condition fails (A32, Z set, "ne"):
/// PMU, physical timer (MRC and MRRC), DCC and LDC to cp14. Each is
/// skipped without effect wherever it is caught (the CPU, or EL2 if the
/// CPU traps before checking the condition): no exception, R0/R1 kept.
pub fn conditional_traps_fail() -> u64 {
    require_aarch32!();
    let task = unsafe_ref(core::ptr::addr_of!(hostile32_a32_cond_fail));
    msr_cntkctl(CNTKCTL_EL0PTEN);
    let r = run(task, false, SPSR_Z, [UNTOUCHED, UNTOUCHED, el0_va(task), 0, 0, 0]);
    msr_cntkctl(0);
    expect_exceptions("cond-fail", task, &r, &[]) | (u64::from(r.r[0] != UNTOUCHED || r.r[1] != UNTOUCHED) * CHANGED)
}

/// Case 33: T32 `ite eq; mrceq CNTP_CTL; movne r2, #1; adds r3, #1` with Z
/// set, then `mrrc`/`mcrr` of CNTP_CVAL (R4 = bits 31:0, R5 = 63:32). The
/// MRC (32-bit) traps to EL2 and the host answers; EL2 must move the PC by
/// 4 and advance PSTATE.IT, so the `movne` is skipped (R2 = 0) and the
/// `adds` after the block runs (R3 = 1); R0 = CNTP_CTL as EL1 reads it
/// (IMASK), R4:R5 = CNTP_CVAL as EL1 set it, and the MCRR writes it back
/// unchanged.
pub fn t32_it_block() -> u64 {
    require_aarch32!();
    let task = unsafe_ref(core::ptr::addr_of!(hostile32_t32_it_timer));
    msr_cntkctl(CNTKCTL_EL0PTEN);
    cntp_ctl(Some(CNTP_CTL_IMASK));
    let el1 = cntp_ctl(None);
    cntp_cval(Some(CVAL));
    let r = run(task, true, SPSR_Z, [UNTOUCHED, 0, 0, 0, UNTOUCHED, UNTOUCHED]);
    let cval_after = cntp_cval(None);
    cntp_ctl(Some(0));
    msr_cntkctl(0);
    let mut bad = expect_exceptions("it-block", task, &r, &[]);
    if r.r[4] | r.r[5] << 32 != CVAL || cval_after != CVAL {
        println!("guest: hostile32 it-block: CNTP_CVAL {:#x}:{:#x} at EL0, {cval_after:#x} after", r.r[5], r.r[4]);
        bad |= WRONG_ANSWER;
    }
    if r.r[2] != 0 || r.r[3] != 1 {
        println!("guest: hostile32 it-block: r2={} r3={} (want 0, 1)", r.r[2], r.r[3]);
        bad |= CHANGED;
    }
    if r.r[0] != el1 {
        println!("guest: hostile32 it-block: CNTP_CTL {:#x} at EL0, {el1:#x} at EL1", r.r[0]);
        bad |= WRONG_ANSWER;
    }
    bad
}

/// Case 34: a 16-bit T32 load from the PL011 (ESR.IL = 0), then two
/// 16-bit `adds r3, #1`: the host completes the load and EL2 moves the PC
/// by 2, so both adds run (R3 = 2; by 4, one would be skipped).
pub fn t32_mmio_16bit() -> u64 {
    require_aarch32!();
    let task = unsafe_ref(core::ptr::addr_of!(hostile32_t32_mmio16));
    let r = run(task, true, 0, [UNTOUCHED, UART_VA, 0, 0, 0, 0]);
    let mut bad = expect_exceptions("mmio16", task, &r, &[]);
    if r.r[3] != 2 {
        println!("guest: hostile32 mmio16: r3={} (want 2)", r.r[3]);
        bad |= CHANGED;
    }
    if r.r[0] == UNTOUCHED {
        bad |= WRONG_ANSWER;
    }
    bad
}

/// Case 35: the debug registers EL0 may reach through cp14 (DBGDIDR,
/// DBGDSCRint, DBGDRAR by MRRC, DBGDTRRXint, DBGDTRTXint) and LDC/STC to
/// the DCC. Every access completes or UNDEFs at EL1's AArch32 vector
/// (EC 0, IL 1); LDC and STC always UNDEF; nothing else happens.
pub fn cp14_debug() -> u64 {
    require_aarch32!();
    let task = unsafe_ref(core::ptr::addr_of!(hostile32_a32_cp14));
    let r = run(task, false, 0, [UNTOUCHED, UNTOUCHED, UNTOUCHED, UNTOUCHED, UNTOUCHED, el0_va(task)]);
    /// Offsets of the LDC and STC in the task.
    const LDC: u64 = 5 * A32_BYTES;
    const STC: u64 = 6 * A32_BYTES;
    let base = el0_va(task);
    let undefs: usize = r.seen.min(MAX_SEEN);
    let all_undef = (0..undefs).all(|i| r.ec(i) == EC_UNKNOWN && r.exc[i][0] & ESR_IL != 0);
    let at = |off: u64| (0..undefs).any(|i| r.exc[i][1] == base + off);
    println!(
        "guest: hostile32 cp14: DBGDIDR={:#x} DBGDSCRint={:#x} DBGDRAR={:#x}:{:#x} DBGDTRRX={:#x}, {} UNDEFs",
        r.r[0], r.r[1], r.r[3], r.r[2], r.r[4], r.seen
    );
    (u64::from(!all_undef || r.seen > MAX_SEEN) * WRONG_EXCEPTION) | (u64::from(!at(LDC) || !at(STC)) * NO_EXCEPTION)
}

/// Case 36: UDF, BKPT, HVC and SMC from A32 EL0, UDF and BKPT from T32
/// (16-bit): each goes to the guest's own EL1 (UNDEF, EC 0, IL 1 as
/// always for EC 0; BKPT, EC 0x38), never to EL2.
pub fn to_el1() -> u64 {
    require_aarch32!();
    let a32 = unsafe_ref(core::ptr::addr_of!(hostile32_a32_to_el1));
    let r = run(a32, false, 0, [0; 6]);
    let want = [
        (EC_UNKNOWN, 0, Some(true)),
        (EC_BKPT32, 4, Some(true)),
        (EC_UNKNOWN, 8, Some(true)),
        (EC_UNKNOWN, 12, Some(true)),
    ];
    let mut bad = expect_exceptions("to-el1 a32", a32, &r, &want);
    let t32 = unsafe_ref(core::ptr::addr_of!(hostile32_t32_to_el1));
    let r = run(t32, true, 0, [0; 6]);
    // EC 0x00 reports IL 1 (RES1) even for the 16-bit UDF; a 16-bit
    // BKPT's IL differs between implementations (QEMU 7.2 reports 1).
    bad |= expect_exceptions("to-el1 t32", t32, &r, &[(EC_UNKNOWN, 0, Some(true)), (EC_BKPT32, 2, None)]);
    bad
}

/// Case 37: an unaligned LDRD (alignment fault) and a store to the
/// read-only code alias (permission fault) from A32 EL0: the guest's own
/// stage-1 faults, at its AArch32 vector, with FAR = the address.
pub fn aborts_to_el1() -> u64 {
    require_aarch32!();
    let task = unsafe_ref(core::ptr::addr_of!(hostile32_a32_aborts));
    let code = el0_va(task);
    let r = run(task, false, 0, [0, 0, code + 1, code, 0, 0]);
    let mut bad =
        expect_exceptions("aborts", task, &r, &[(EC_DABT_LOWER, 0, Some(true)), (EC_DABT_LOWER, 4, Some(true))]);
    if bad == 0 {
        let fsc = |i: usize| r.exc[i][0] & FSC_MASK;
        if fsc(0) != FSC_ALIGNMENT || fsc(1) & !FSC_LEVEL_MASK != FSC_PERMISSION_ANY_LEVEL || r.exc[1][0] & ESR_WNR == 0
        {
            println!("guest: hostile32 aborts: ESRs {:#x} {:#x}", r.exc[0][0], r.exc[1][0]);
            bad |= WRONG_EXCEPTION;
        }
        if r.exc[0][2] != code + 1 || r.exc[1][2] != code {
            bad |= WRONG_FAR;
        }
    }
    bad
}

/// Case 38: a load and a store at an IPA where nothing is, from A32 EL0:
/// the host finds no device, EL2 injects a synchronous external abort at
/// VBAR_EL1 + 0x600 (EC 0x24, DFSC 0x10, FAR = the VA, WnR for the store).
pub fn outside_ipa() -> u64 {
    require_aarch32!();
    let task = unsafe_ref(core::ptr::addr_of!(hostile32_a32_outside));
    let r = run(task, false, 0, [0, OUTSIDE_VA, 0, 0, 0, 0]);
    let mut bad =
        expect_exceptions("outside", task, &r, &[(EC_DABT_LOWER, 0, Some(true)), (EC_DABT_LOWER, 4, Some(true))]);
    if bad == 0 {
        let fsc_ok = (0..2).all(|i| r.exc[i][0] & FSC_MASK == FSC_EXTERNAL);
        let wnr_ok = r.exc[0][0] & ESR_WNR == 0 && r.exc[1][0] & ESR_WNR != 0;
        if !fsc_ok || !wnr_ok {
            println!("guest: hostile32 outside: ESRs {:#x} {:#x}", r.exc[0][0], r.exc[1][0]);
            bad |= WRONG_EXCEPTION;
        }
        if r.exc[0][2] != OUTSIDE_VA || r.exc[1][2] != OUTSIDE_VA {
            bad |= WRONG_FAR;
        }
    }
    bad
}

/// A task's first byte (an extern static of the global_asm above).
fn unsafe_ref(p: *const u8) -> &'static u8 {
    // SAFETY: `p` is one of the task labels above, in .text: a valid byte
    // for the program's lifetime, only ever read.
    unsafe { &*p }
}
