//! What the guest sees when it touches an IPA that neither RAM nor a device
//! backs: a synchronous external abort at its own vector, as on a machine
//! where nothing answers at that address (the host answers such an exit
//! with `Completion::Abort`, EL2 injects it).
//!
//! | mode | name | result (SET_STATUS) |
//! |---|---|---|
//! | 20 | aborts | a load from and a branch to unbacked IPAs, each at EL1 and at EL0: 0, or a bit per case whose abort was not as expected ([`case`]) |
//! | 21 | abort-on-vector | VBAR_EL1 at an unbacked IPA, then a load from one: the abort's own vector faults; the VM must be stopped (0xbad if it ever returns) |
//! | 22 | abort-loop | VBAR_EL1 at a table whose synchronous entries load from an unbacked IPA: every abort aborts again; the VM must be stopped (0xbad if it ever returns) |
//!
//! The EL0 cases go down to EL0 with an `eret` to code the stage-1 maps
//! user-executable at another VA (`mmu.rs`, entry 2), touch the address
//! through a user-accessible alias (entry 9), and come back with `svc #0`.

use core::arch::{asm, global_asm};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

pub const MODE_ABORTS: u64 = 20;
pub const MODE_ABORT_ON_VECTOR: u64 = 21;
pub const MODE_ABORT_LOOP: u64 = 22;

/// Failure bits of mode 20, one per case.
pub mod case {
    pub const EL1_LOAD: u64 = 1 << 0;
    pub const EL1_BRANCH: u64 = 1 << 1;
    pub const EL0_LOAD: u64 = 1 << 2;
    pub const EL0_BRANCH: u64 = 1 << 3;
}

/// IPA 16 MiB into the block the guest maps as RAM, past any RAM a test
/// VM has: executable in the guest's stage 1, nothing at stage 2.
pub const UNBACKED_CODE_IPA: u64 = 0x4100_0000;
/// The offset into [`crate::mmu::OUTSIDE_IPA`] the loads use: FAR_EL1 must
/// carry the low bits too.
const LOAD_OFFSET: u64 = 0x18;

/// Vector entries (start.S's index, 0..15) of synchronous exceptions from
/// EL1 with SP_EL1 and from EL0 in AArch64.
const VECTOR_EL1_SYNC: u64 = 4;
const VECTOR_EL0_SYNC: u64 = 8;
/// ESR_EL1 fields.
const EC_SHIFT: u64 = 26;
const EC_MASK: u64 = 0x3f;
const EC_IABT_LOWER: u64 = 0x20;
const EC_IABT_SAME: u64 = 0x21;
const EC_DABT_LOWER: u64 = 0x24;
const EC_DABT_SAME: u64 = 0x25;
const EC_SVC64: u64 = 0x15;
const ESR_IL: u64 = 1 << 25;
const ESR_ISV: u64 = 1 << 24;
const ESR_WNR: u64 = 1 << 6;
const ESR_FSC_MASK: u64 = 0x3f;
/// FSC: synchronous external abort, not on a translation table walk.
const FSC_SYNC_EXTERNAL: u64 = 0x10;
/// SPSR.M[3:0]: EL0t and EL1h.
const SPSR_M_MASK: u64 = 0xf;
const M_EL0T: u64 = 0b0000;
const M_EL1H: u64 = 0b0101;
/// SPSR.DAIF: all four masked.
const SPSR_DAIF: u64 = 0xf << 6;
/// What a wrong mode-21/22 guest reports if the VM was not stopped.
const RETURNED: u64 = 0xbad;

// The EL0 excursion. `aborts_el0_call(pc, x0)` saves the callee-saved
// registers on the EL1 stack and `eret`s to `pc` at EL0t (DAIF masked, so
// nothing interrupts it) with x0; the EL0 code ends with `svc #0`, which
// `handle` turns into a return to `aborts_el0_return` at EL1h. SP_EL1 is
// then what it was at the `eret` (the vector's frame is popped before its
// own `eret`), so the saved registers are found where they were left.
// The EL0 snippets only use x0, x1 and x30 and no stack; they run at their
// EL0 alias (mmu::EL0_RAM_ALIAS).
global_asm!(
    ".section .text, \"ax\"",
    ".global aborts_el0_call",
    "aborts_el0_call:",
    "    stp x29, x30, [sp, #-96]!",
    "    stp x19, x20, [sp, #16]",
    "    stp x21, x22, [sp, #32]",
    "    stp x23, x24, [sp, #48]",
    "    stp x25, x26, [sp, #64]",
    "    stp x27, x28, [sp, #80]",
    "    msr elr_el1, x0",
    "    mov x2, #{spsr_el0}",
    "    msr spsr_el1, x2",
    "    mov x0, x1",
    "    eret",
    ".global aborts_el0_return",
    "aborts_el0_return:",
    "    ldp x19, x20, [sp, #16]",
    "    ldp x21, x22, [sp, #32]",
    "    ldp x23, x24, [sp, #48]",
    "    ldp x25, x26, [sp, #64]",
    "    ldp x27, x28, [sp, #80]",
    "    ldp x29, x30, [sp], #96",
    "    ret",
    // EL0: a load from x0, then back to EL1.
    ".global aborts_el0_load",
    "aborts_el0_load:",
    "    ldr x1, [x0]",
    "    svc #0",
    // EL0: a branch to x0; the abort handler resumes at the svc.
    ".global aborts_el0_branch",
    "aborts_el0_branch:",
    "    blr x0",
    ".global aborts_el0_branch_resume",
    "aborts_el0_branch_resume:",
    "    svc #0",
    // Mode 22's vectors: every synchronous entry loads from an unbacked
    // IPA (the second instruction, so ELR is never the vector itself).
    ".balign 2048",
    ".global aborts_loop_vectors",
    "aborts_loop_vectors:",
    ".rept 16",
    "    .balign 128",
    "    movz x0, #{outside_hi}, lsl #32",
    "    ldr x1, [x0]",
    "    b .",
    ".endr",
    spsr_el0 = const M_EL0T | SPSR_DAIF,
    outside_hi = const crate::mmu::OUTSIDE_IPA >> 32,
);
const _: () = assert!(crate::mmu::OUTSIDE_IPA & 0xffff_ffff == 0 && crate::mmu::OUTSIDE_IPA >> 32 <= 0xffff);

extern "C" {
    fn aborts_el0_call(pc: u64, x0: u64) -> u64;
    static aborts_el0_return: u8;
    static aborts_el0_load: u8;
    static aborts_el0_branch: u8;
    static aborts_el0_branch_resume: u8;
    static aborts_loop_vectors: u8;
}

/// Set while an abort is expected: the handler records it.
static EXPECTING: AtomicBool = AtomicBool::new(false);
/// Set while the guest is down at EL0: its `svc #0` comes back to EL1.
static IN_EL0: AtomicBool = AtomicBool::new(false);
/// Where the handler resumes after an instruction abort (0: after a data
/// abort, the instruction after the faulting one).
static RESUME: AtomicU64 = AtomicU64::new(0);
/// What the handler saw: vector index, ESR_EL1, FAR_EL1, ELR_EL1, SPSR_EL1.
static SEEN: [AtomicU64; 5] = [const { AtomicU64::new(u64::MAX) }; 5];

/// Called first by the guest's exception handler: `true` if this was an
/// expected abort (recorded, and the guest resumes past it) or the `svc`
/// ending an EL0 excursion.
pub fn handle(vector: u64) -> bool {
    if !EXPECTING.load(Relaxed) && !IN_EL0.load(Relaxed) {
        return false;
    }
    let esr = read_sysreg!("esr_el1");
    let ec = esr >> EC_SHIFT & EC_MASK;
    if vector == VECTOR_EL0_SYNC && ec == EC_SVC64 && IN_EL0.load(Relaxed) {
        IN_EL0.store(false, Relaxed);
        // SAFETY: `aborts_el0_return` is EL1 code expecting SP_EL1 as it
        // was at the `eret` to EL0, which it is once start.S pops this
        // vector's frame; EL1h with DAIF masked, as the caller runs.
        unsafe {
            let back = core::ptr::addr_of!(aborts_el0_return) as u64;
            asm!("msr elr_el1, {}", "msr spsr_el1, {}", in(reg) back, in(reg) M_EL1H | SPSR_DAIF,
                 options(nomem, nostack, preserves_flags));
        }
        return true;
    }
    if !EXPECTING.load(Relaxed) || !matches!(ec, EC_IABT_LOWER | EC_IABT_SAME | EC_DABT_LOWER | EC_DABT_SAME) {
        return false;
    }
    EXPECTING.store(false, Relaxed);
    let elr = read_sysreg!("elr_el1");
    for (slot, v) in SEEN.iter().zip([vector, esr, read_sysreg!("far_el1"), elr, read_sysreg!("spsr_el1")]) {
        slot.store(v, Relaxed);
    }
    let next = match RESUME.load(Relaxed) {
        0 => elr + crate::INSTRUCTION_BYTES,
        r => r,
    };
    // SAFETY: ELR_EL1 is this exception's return address (start.S's eret):
    // past the aborted load, or the resume point the case set up.
    unsafe { asm!("msr elr_el1, {}", in(reg) next, options(nomem, nostack, preserves_flags)) };
    true
}

/// The abort one case expects.
struct Expect {
    vector: u64,
    ec: u64,
    far: u64,
    elr: u64,
    mode: u64,
}

/// Checks what the handler recorded against `want`; prints and returns
/// `fail_bit` on any difference.
fn verdict(name: &str, want: Expect, fail_bit: u64) -> u64 {
    let [vector, esr, far, elr, spsr] = SEEN.each_ref().map(|s| s.load(Relaxed));
    let ok = vector == want.vector
        && esr >> EC_SHIFT & EC_MASK == want.ec
        && esr & ESR_IL != 0
        && esr & (ESR_ISV | ESR_WNR) == 0
        && esr & ESR_FSC_MASK == FSC_SYNC_EXTERNAL
        && far == want.far
        && elr == want.elr
        && spsr & SPSR_M_MASK == want.mode;
    let v = if ok { "ok  " } else { "FAIL" };
    println!(
        "guest: {v} {name}: vector {vector} ESR_EL1={esr:#x} FAR_EL1={far:#x} ELR_EL1={elr:#x} SPSR_EL1={spsr:#x}"
    );
    if !ok {
        println!(
            "guest:      expected vector {} EC {:#x} IL FSC 0x10 FAR {:#x} ELR {:#x} M {:#x}",
            want.vector, want.ec, want.far, want.elr, want.mode
        );
        return fail_bit;
    }
    0
}

/// Arms the handler for one abort, resuming at `resume` (0: past it).
fn expect(resume: u64) {
    for s in &SEEN {
        s.store(u64::MAX, Relaxed);
    }
    RESUME.store(resume, Relaxed);
    EXPECTING.store(true, Relaxed);
}

/// EL0's VA of EL1 code at `addr` (the RAM alias).
fn el0_va(addr: u64) -> u64 {
    addr - crate::mmu::RAM_BASE + crate::mmu::EL0_RAM_ALIAS
}

/// A load at EL1 from an IPA nothing backs: a data abort from the current
/// EL at VBAR_EL1 + 0x200, FAR = the address, ELR = the load; the guest
/// skips the load. Returns 0 or [`case::EL1_LOAD`].
pub fn el1_load() -> u64 {
    let addr = crate::mmu::OUTSIDE_IPA + LOAD_OFFSET;
    expect(0);
    let (pc, value): (u64, u64);
    // SAFETY: a load from a Device mapping (mmu.rs entry 8) where nothing is
    // at stage 2: the abort is taken by `handle`, which skips the `ldr`;
    // `value` keeps the sentinel it had. `adr` names the load's address.
    unsafe {
        asm!("adr {pc}, 1f", "1: ldr {v}, [{a}]", pc = out(reg) pc, a = in(reg) addr,
             v = inout(reg) RETURNED => value, options(nostack))
    };
    EXPECTING.store(false, Relaxed);
    let want = Expect { vector: VECTOR_EL1_SYNC, ec: EC_DABT_SAME, far: addr, elr: pc, mode: M_EL1H };
    let bad = verdict("EL1 load from an unbacked IPA", want, case::EL1_LOAD);
    if value != RETURNED {
        println!("guest: FAIL the aborted load wrote its register ({value:#x})");
        return case::EL1_LOAD;
    }
    bad
}

/// A branch at EL1 to an IPA nothing backs: an instruction abort from the
/// current EL, FAR = ELR = the target; the guest resumes after the branch.
pub fn el1_branch() -> u64 {
    let target = UNBACKED_CODE_IPA;
    expect(0);
    // SAFETY: branches where the guest's stage 1 maps executable RAM but
    // stage 2 has nothing: the instruction abort is taken by `handle`, which
    // resumes at label 2 (RESUME, written here through x9 before the
    // branch; `slot` and `t` are inputs, so neither is x9). x30 and the
    // caller-saved registers are declared clobbered.
    unsafe {
        asm!(
            "adr x9, 2f",
            "str x9, [{slot}]",
            "blr {t}",
            "2:",
            slot = in(reg) RESUME.as_ptr(),
            t = in(reg) target,
            out("x9") _,
            out("x30") _,
            clobber_abi("C"),
        )
    };
    EXPECTING.store(false, Relaxed);
    let want = Expect { vector: VECTOR_EL1_SYNC, ec: EC_IABT_SAME, far: target, elr: target, mode: M_EL1H };
    verdict("EL1 branch to an unbacked IPA", want, case::EL1_BRANCH)
}

/// Runs `code` (EL1 address of an EL0 snippet) at EL0 with x0 = `arg`.
fn at_el0(code: u64, arg: u64) {
    IN_EL0.store(true, Relaxed);
    // SAFETY: `aborts_el0_call` returns here through `handle` once the EL0
    // code issues `svc #0`, with the callee-saved registers, SP and LR
    // restored; the caller-saved ones are clobbered (clobber_abi).
    unsafe { aborts_el0_call(el0_va(code), arg) };
    if IN_EL0.swap(false, Relaxed) {
        println!("guest: FAIL came back from EL0 without its svc");
    }
}

/// The load from EL0 through its user alias of the unbacked IPA: a data
/// abort from a lower EL at VBAR_EL1 + 0x400, FAR = the alias VA.
pub fn el0_load() -> u64 {
    let addr = crate::mmu::EL0_OUTSIDE_ALIAS + LOAD_OFFSET;
    let code = core::ptr::addr_of!(aborts_el0_load) as u64;
    expect(0);
    at_el0(code, addr);
    EXPECTING.store(false, Relaxed);
    let want = Expect { vector: VECTOR_EL0_SYNC, ec: EC_DABT_LOWER, far: addr, elr: el0_va(code), mode: M_EL0T };
    verdict("EL0 load from an unbacked IPA", want, case::EL0_LOAD)
}

/// The branch from EL0 to the EL0 alias of the unbacked code IPA: an
/// instruction abort from a lower EL, FAR = ELR = the alias VA.
pub fn el0_branch() -> u64 {
    let target = el0_va(UNBACKED_CODE_IPA);
    expect(el0_va(core::ptr::addr_of!(aborts_el0_branch_resume) as u64));
    at_el0(core::ptr::addr_of!(aborts_el0_branch) as u64, target);
    EXPECTING.store(false, Relaxed);
    let want = Expect { vector: VECTOR_EL0_SYNC, ec: EC_IABT_LOWER, far: target, elr: target, mode: M_EL0T };
    verdict("EL0 branch to an unbacked IPA", want, case::EL0_BRANCH)
}

/// Mode 20: every case; 0 if each took the guest's own vector as expected
/// and the guest went on.
pub fn run() -> u64 {
    println!("guest: aborts: unbacked IPAs at EL1 and EL0");
    let status = el1_load() | el1_branch() | el0_load() | el0_branch();
    println!("guest: aborts status={status}");
    status
}

/// Modes 21 and 22: the guest's abort vector cannot handle the abort (it
/// is unbacked itself, or its handler aborts again); the hypervisor must
/// stop the VM, so nothing after the load runs.
pub fn no_progress(mode: u64) -> u64 {
    let vbar = if mode == MODE_ABORT_ON_VECTOR {
        println!("guest: abort-on-vector: VBAR_EL1 = {UNBACKED_CODE_IPA:#x} (unbacked), then a load from an unbacked IPA; the VM must stop");
        UNBACKED_CODE_IPA
    } else {
        println!("guest: abort-loop: a vector that aborts again, then a load from an unbacked IPA; the VM must stop");
        core::ptr::addr_of!(aborts_loop_vectors) as u64
    };
    // SAFETY: points the guest's vectors away from start.S's on purpose,
    // then aborts: the hypervisor stops the VM, so no code after the load
    // runs (should it, the status says so).
    unsafe {
        asm!("msr vbar_el1, {v}", "isb", "ldr {x}, [{a}]", v = in(reg) vbar, a = in(reg) crate::mmu::OUTSIDE_IPA,
             x = out(reg) _, options(nostack))
    };
    println!("guest: the load returned");
    RETURNED
}
