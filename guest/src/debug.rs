//! Self-hosted debug inside the guest: hardware breakpoints, watchpoints and
//! software step, each at EL1 and at EL0, the OS lock, and the comparators
//! across world switches. The hypervisor traps the debug registers until
//! the first access and then loads this vcpu's own (hyp/src/debug.rs); each
//! exception must come to this guest's EL1 with the right ESR_EL1.EC (and
//! FAR_EL1 for a watchpoint), be handled here, and the code go on.
//!
//! EL0 runs through an alias of RAM: [`enter_el0`] switches TTBR0_EL1 to a
//! copy of the guest's table (mmu.rs) with one more level-1 block, VA
//! [`EL0_ALIAS`] = IPA [`mmu::RAM_BASE`], readable, writable and executable
//! at EL0 (the EL1 map of RAM stays EL1-only). EL0 code ends with `svc #0`,
//! which the exception hook turns into a return to the EL1 caller.
//!
//! | mode | checks (status: bitmask of failed [`fail`] bits, 0 = all passed) |
//! |---|---|
//! | 40 | breakpoint at EL1 (EC 0x31, ELR = the address) and at EL0 (EC 0x30) |
//! | 41 | watchpoint at EL1 (EC 0x35) and at EL0 (EC 0x34), FAR = the address |
//! | 42 | software step at EL1 (EC 0x33, one step per instruction, also over an instruction EL2 emulates) and at EL0 (EC 0x32) |
//! | 43 | OS lock: locked at reset; while locked (or double-locked) an armed breakpoint does not fire, opened it does; MDSCR_EL1 reads back as written |
//! | 44 | x2 = pattern: every comparator written from it (MDSCR_EL1.MDE set, all disabled), HOST_PING (another VM runs), read back; the number of registers that changed |

use crate::{hvc, mmu};
use core::arch::{asm, global_asm};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

pub const MODE_BREAKPOINT: u64 = 40;
pub const MODE_WATCHPOINT: u64 = 41;
pub const MODE_STEP: u64 = 42;
pub const MODE_OS_LOCK: u64 = 43;
pub const MODE_REGS: u64 = 44;

/// Status bits of modes 40..=43: one per failed check.
pub mod fail {
    pub const EL1: u64 = 1 << 0;
    pub const EL0: u64 = 1 << 1;
    /// OS lock: OSLSR_EL1 did not read as locked at reset.
    pub const RESET_LOCKED: u64 = 1 << 2;
    /// OS lock: a breakpoint fired while locked.
    pub const FIRED_LOCKED: u64 = 1 << 3;
    /// OS lock: no breakpoint once opened.
    pub const SILENT_OPEN: u64 = 1 << 4;
    /// OS lock: MDSCR_EL1 did not read back as written.
    pub const MDSCR_READBACK: u64 = 1 << 5;
    /// OS double lock: a breakpoint fired while double-locked.
    pub const FIRED_DOUBLE_LOCKED: u64 = 1 << 6;
}

/// ESR_EL1.EC of the debug exceptions (lower EL, same EL) and of SVC.
mod ec {
    pub const BREAKPOINT_LOWER: u64 = 0x30;
    pub const BREAKPOINT_SAME: u64 = 0x31;
    pub const STEP_LOWER: u64 = 0x32;
    pub const STEP_SAME: u64 = 0x33;
    pub const WATCHPOINT_LOWER: u64 = 0x34;
    pub const WATCHPOINT_SAME: u64 = 0x35;
    pub const SVC64: u64 = 0x15;
}

/// Vector entries (start.S order): lower EL AArch64 synchronous.
const VECTOR_LOWER_SYNC: u64 = 8;

/// MDSCR_EL1 bits.
const MDSCR_SS: u64 = 1 << 0;
const MDSCR_KDE: u64 = 1 << 13;
const MDSCR_MDE: u64 = 1 << 15;
/// SPSR.SS (bit 21): step the instruction the `eret` returns to.
const SPSR_SS: u64 = 1 << 21;
/// SPSR for EL0t with A, I, F masked and D clear (D does not mask debug
/// exceptions from EL0 to EL1 anyway).
const SPSR_EL0T: u64 = 0x1c0;
/// SPSR for the return to the EL1 caller after EL0's `svc`: EL1h, DAIF masked.
const SPSR_EL1H_MASKED: u64 = 0x3c5;
/// OSLSR_EL1.OSLK.
const OSLSR_OSLK: u64 = 1 << 1;
/// ID_AA64DFR0_EL1 fields: BRPs, WRPs, DoubleLock.
const DFR0_BRPS_SHIFT: u64 = 12;
const DFR0_WRPS_SHIFT: u64 = 20;
const DFR0_DOUBLELOCK_SHIFT: u64 = 36;
const FIELD_MASK: u64 = 0xf;

/// DBGBCR: E, PMC (bits 2:1), BAS = 0b1111 (an A64 instruction).
const BCR_E: u64 = 1;
const BCR_PMC_EL1: u64 = 0b01 << 1;
const BCR_PMC_EL0: u64 = 0b10 << 1;
const BCR_BAS_A64: u64 = 0b1111 << 5;
/// DBGWCR: E, PAC (bits 2:1), LSC = loads and stores (bits 4:3), BAS =
/// all eight bytes of the doubleword.
const WCR_E: u64 = 1;
const WCR_PAC_EL1: u64 = 0b01 << 1;
const WCR_PAC_EL0: u64 = 0b10 << 1;
const WCR_LSC_LOAD_STORE: u64 = 0b11 << 3;
const WCR_BAS_8: u64 = 0xff << 5;

/// Where EL0 sees RAM: level-1 entry 2 (VA 2 GiB).
pub const EL0_ALIAS: u64 = 2 * mmu::BLOCK_SIZE;
const EL0_ALIAS_ENTRY: usize = 2;
/// Level-1 block descriptor for the alias: Normal (MAIR index 1), AP =
/// 0b01 (read/write at EL1 and EL0; this makes it PXN for EL1, which never
/// executes through it), inner shareable, access flag, EL0-executable.
const ALIAS_DESC: u64 = mmu::RAM_BASE | 0b01 | (1 << 2) | (0b01 << 6) | (0b11 << 8) | (1 << 10) | (1 << 53);
const TABLE_ENTRIES: usize = 512;

/// Software steps each step test takes.
const STEPS: usize = 6;
const EL0_STEPS: usize = 3;

/// Set while a debug mode runs: only then does [`handle`] claim exceptions.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Debug exceptions taken, the last one's EC, ELR_EL1, FAR_EL1.
static HITS: AtomicU64 = AtomicU64::new(0);
static LAST_EC: AtomicU64 = AtomicU64::new(0);
static LAST_ELR: AtomicU64 = AtomicU64::new(0);
static LAST_FAR: AtomicU64 = AtomicU64::new(0);
/// ELR_EL1 of each software-step exception, and how many to take.
static STEP_ELRS: [AtomicU64; STEPS] = [const { AtomicU64::new(0) }; STEPS];
static STEP_LIMIT: AtomicU64 = AtomicU64::new(0);
/// Where EL0's `svc` returns to at EL1 (set by [`enter_el0`]).
static EL0_RETURN: AtomicU64 = AtomicU64::new(0);
/// A doubleword the watchpoints watch (8-byte aligned).
static WATCHED: AtomicU64 = AtomicU64::new(0x5a5a);

/// The EL0 copy of the guest's level-1 table.
#[repr(C, align(4096))]
struct Table([u64; TABLE_ENTRIES]);
static mut EL0_TABLE: Table = Table([0; TABLE_ENTRIES]);

global_asm!(
    // EL1 breakpoint target: a function that only returns.
    ".global debug_el1_target",
    "debug_el1_target:",
    "    nop",
    "    ret",
    // EL0 code (run through the alias): x0 = a watched address. The first
    // instruction is the breakpoint target, the load the watchpoint's;
    // returns x0 = the loaded value + 1 through `svc #0`. Uses x0/x1 only.
    ".global debug_el0_code",
    "debug_el0_code:",
    "    nop",
    "    ldr x1, [x0]",
    "    add x1, x1, #1",
    "    nop",
    "    nop",
    "    mov x0, x1",
    "    svc #0",
    "    b .",
);

extern "C" {
    fn debug_el1_target();
    fn debug_el0_code();
}

/// The address of an assembly routine of this image.
fn addr_of(f: unsafe extern "C" fn()) -> u64 {
    f as *const () as u64
}

/// Runs a debug mode; returns its status.
pub fn run(mode: u64, arg: u64) -> u64 {
    ACTIVE.store(true, Relaxed);
    let status = if mode == MODE_OS_LOCK {
        os_lock()
    } else if !open_lock() {
        println!("guest: debug: OSLAR_EL1 = 0 did not open the OS lock");
        u64::MAX
    } else {
        match mode {
            MODE_BREAKPOINT => breakpoints(),
            MODE_WATCHPOINT => watchpoints(),
            MODE_STEP => steps(),
            _ => regs(arg),
        }
    };
    ACTIVE.store(false, Relaxed);
    status
}

macro_rules! msr {
    ($reg:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: a debug system register of this vcpu (trapped to EL2 at
        // first, then the vcpu's own); the isb makes the write take effect
        // before the code that tests it.
        unsafe { asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) v, options(nostack)) };
    }};
}

macro_rules! mrs {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reads a debug or ID register of this vcpu; no side effects.
        unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nostack)) };
        v
    }};
}

/// Opens the OS lock (locked at reset); true if OSLSR_EL1 then reads open.
fn open_lock() -> bool {
    msr!("oslar_el1", 0);
    mrs!("oslsr_el1") & OSLSR_OSLK == 0
}

fn reset_counters() {
    HITS.store(0, Relaxed);
    LAST_EC.store(0, Relaxed);
    LAST_ELR.store(0, Relaxed);
    LAST_FAR.store(0, Relaxed);
}

/// Runs `f` with PSTATE.D clear (EL1 debug exceptions unmasked).
fn with_debug_unmasked(f: impl FnOnce()) {
    // SAFETY: only PSTATE.D changes; the guest's own handler takes what
    // fires (`handle`).
    unsafe { asm!("msr daifclr, #8", options(nomem, nostack)) };
    f();
    // SAFETY: as above.
    unsafe { asm!("msr daifset, #8", options(nomem, nostack)) };
}

fn call_el1_target() {
    // SAFETY: `debug_el1_target` is `nop; ret` (clobbers nothing else).
    unsafe { asm!("blr {t}", t = in(reg) addr_of(debug_el1_target), out("x30") _, options(nostack)) };
}

/// One debug exception with this EC at this ELR (and FAR, if given)?
fn hit_once(what: &str, ec: u64, elr: u64, far: Option<u64>) -> bool {
    let (n, got_ec, got_elr, got_far) =
        (HITS.load(Relaxed), LAST_EC.load(Relaxed), LAST_ELR.load(Relaxed), LAST_FAR.load(Relaxed));
    let far_ok = far.is_none_or(|f| f == got_far);
    let ok = n == 1 && got_ec == ec && got_elr == elr && far_ok;
    println!(
        "guest: debug {what}: hits={n} ec={got_ec:#x} (want {ec:#x}) elr={got_elr:#x} (want {elr:#x}) far={got_far:#x} (want {:#x}) {}",
        far.unwrap_or(got_far),
        if ok { "ok" } else { "FAIL" }
    );
    ok
}

fn breakpoints() -> u64 {
    let mut status = 0;
    let target = addr_of(debug_el1_target);
    reset_counters();
    msr!("mdscr_el1", MDSCR_MDE | MDSCR_KDE);
    msr!("dbgbvr0_el1", target);
    msr!("dbgbcr0_el1", BCR_E | BCR_PMC_EL1 | BCR_BAS_A64);
    with_debug_unmasked(call_el1_target);
    if !hit_once("breakpoint EL1", ec::BREAKPOINT_SAME, target, None) {
        status |= fail::EL1;
    }

    reset_counters();
    let code = el0_va(addr_of(debug_el0_code));
    msr!("dbgbvr0_el1", code);
    msr!("dbgbcr0_el1", BCR_E | BCR_PMC_EL0 | BCR_BAS_A64);
    let r = enter_el0(code, el0_va(WATCHED.as_ptr() as u64), 0);
    if !hit_once("breakpoint EL0", ec::BREAKPOINT_LOWER, code, None) || r != WATCHED.load(Relaxed) + 1 {
        status |= fail::EL0;
    }
    msr!("mdscr_el1", 0);
    status
}

fn watchpoints() -> u64 {
    let mut status = 0;
    let addr = WATCHED.as_ptr() as u64;
    reset_counters();
    msr!("mdscr_el1", MDSCR_MDE | MDSCR_KDE);
    msr!("dbgwvr0_el1", addr);
    msr!("dbgwcr0_el1", WCR_E | WCR_PAC_EL1 | WCR_LSC_LOAD_STORE | WCR_BAS_8);
    let mut pc = 0u64;
    with_debug_unmasked(|| {
        // SAFETY: a load from the static; `adr` gives the load's address
        // (the watchpoint's ELR).
        unsafe {
            asm!("adr {pc}, 1f", "1: ldr {v}, [{a}]", pc = out(reg) pc, v = out(reg) _, a = in(reg) addr, options(nostack))
        };
    });
    if !hit_once("watchpoint EL1", ec::WATCHPOINT_SAME, pc, Some(addr)) {
        status |= fail::EL1;
    }

    reset_counters();
    let alias = el0_va(addr);
    let code = el0_va(addr_of(debug_el0_code));
    msr!("dbgwvr0_el1", alias);
    msr!("dbgwcr0_el1", WCR_E | WCR_PAC_EL0 | WCR_LSC_LOAD_STORE | WCR_BAS_8);
    let r = enter_el0(code, alias, 0);
    // The load is the EL0 code's second instruction.
    if !hit_once("watchpoint EL0", ec::WATCHPOINT_LOWER, code + 4, Some(alias)) || r != WATCHED.load(Relaxed) + 1 {
        status |= fail::EL0;
    }
    msr!("mdscr_el1", 0);
    status
}

fn steps() -> u64 {
    let mut status = 0;
    reset_counters();
    STEP_LIMIT.store(STEPS as u64, Relaxed);
    msr!("mdscr_el1", MDSCR_KDE | MDSCR_SS);
    let first: u64;
    // SAFETY: clearing PSTATE.D with MDSCR_EL1.SS and KDE set starts
    // stepping (active-pending: the first step exception comes before the
    // next instruction); `handle` steps on until STEPS exceptions, then
    // clears MDSCR_EL1.SS. The `mrs` of an ID register traps to EL2 (TID3),
    // which completes it: still one step. x9 only is written.
    unsafe {
        asm!(
            "adr {first}, 1f",
            "msr daifclr, #8",
            "1: nop",
            "mrs x9, id_aa64mmfr0_el1",
            "nop",
            "nop",
            "nop",
            "nop",
            "nop",
            "nop",
            "msr daifset, #8",
            first = out(reg) first,
            out("x9") _,
            options(nostack),
        )
    };
    let elrs: [u64; STEPS] = core::array::from_fn(|i| STEP_ELRS[i].load(Relaxed));
    let want: [u64; STEPS] = core::array::from_fn(|i| first + 4 * i as u64);
    let ok = HITS.load(Relaxed) == STEPS as u64 && LAST_EC.load(Relaxed) == ec::STEP_SAME && elrs == want;
    println!(
        "guest: debug step EL1: hits={} ec={:#x} elrs={:x?} want={:x?} {}",
        HITS.load(Relaxed),
        LAST_EC.load(Relaxed),
        elrs,
        want,
        if ok { "ok" } else { "FAIL" }
    );
    if !ok {
        status |= fail::EL1;
    }

    reset_counters();
    STEP_LIMIT.store(EL0_STEPS as u64, Relaxed);
    let code = el0_va(addr_of(debug_el0_code));
    msr!("mdscr_el1", MDSCR_SS);
    let r = enter_el0(code, el0_va(WATCHED.as_ptr() as u64), SPSR_SS);
    let elrs: [u64; EL0_STEPS] = core::array::from_fn(|i| STEP_ELRS[i].load(Relaxed));
    let want: [u64; EL0_STEPS] = core::array::from_fn(|i| code + 4 * (i as u64 + 1));
    let ok = HITS.load(Relaxed) == EL0_STEPS as u64
        && LAST_EC.load(Relaxed) == ec::STEP_LOWER
        && elrs == want
        && r == WATCHED.load(Relaxed) + 1;
    println!(
        "guest: debug step EL0: hits={} ec={:#x} elrs={:x?} want={:x?} {}",
        HITS.load(Relaxed),
        LAST_EC.load(Relaxed),
        elrs,
        want,
        if ok { "ok" } else { "FAIL" }
    );
    if !ok {
        status |= fail::EL0;
    }
    msr!("mdscr_el1", 0);
    status
}

/// Arms an EL1 breakpoint on the target, calls it; true if it fired.
fn el1_breakpoint_fires() -> bool {
    reset_counters();
    msr!("dbgbvr0_el1", addr_of(debug_el1_target));
    msr!("dbgbcr0_el1", BCR_E | BCR_PMC_EL1 | BCR_BAS_A64);
    with_debug_unmasked(call_el1_target);
    msr!("dbgbcr0_el1", 0);
    HITS.load(Relaxed) != 0
}

fn os_lock() -> u64 {
    let mut status = 0;
    let oslsr = mrs!("oslsr_el1");
    println!("guest: debug OSLSR_EL1 at reset = {oslsr:#x}");
    if oslsr & OSLSR_OSLK == 0 {
        status |= fail::RESET_LOCKED;
    }
    msr!("oslar_el1", 1);
    msr!("mdscr_el1", MDSCR_MDE | MDSCR_KDE);
    let mdscr = mrs!("mdscr_el1");
    if mdscr & (MDSCR_MDE | MDSCR_KDE) != MDSCR_MDE | MDSCR_KDE {
        status |= fail::MDSCR_READBACK;
    }
    let locked = el1_breakpoint_fires();
    msr!("oslar_el1", 0);
    let open = el1_breakpoint_fires();
    msr!("oslar_el1", 1);
    let relocked = el1_breakpoint_fires();
    msr!("oslar_el1", 0);
    println!("guest: debug OS lock: fired locked={locked} open={open} relocked={relocked} mdscr={mdscr:#x}");
    if locked || relocked {
        status |= fail::FIRED_LOCKED;
    }
    if !open {
        status |= fail::SILENT_OPEN;
    }
    // The OS double lock, where the CPU has it (DoubleLock = 0b0000).
    let dfr0 = mrs!("id_aa64dfr0_el1");
    if (dfr0 >> DFR0_DOUBLELOCK_SHIFT) & FIELD_MASK == 0 {
        msr!("osdlr_el1", 1);
        let double_locked = el1_breakpoint_fires();
        msr!("osdlr_el1", 0);
        let reopened = el1_breakpoint_fires();
        println!("guest: debug OS double lock: fired double-locked={double_locked} reopened={reopened}");
        if double_locked {
            status |= fail::FIRED_DOUBLE_LOCKED;
        }
        if !reopened {
            status |= fail::SILENT_OPEN;
        }
    } else {
        println!("guest: debug OS double lock: not implemented (DFR0.DoubleLock = {:#x})", (dfr0 >> 36) & 0xf);
    }
    msr!("mdscr_el1", 0);
    status
}

/// Every comparator this vcpu has, written from `pattern`, then read back
/// after the host ran (and maybe another VM); the count that changed.
fn regs(pattern: u64) -> u64 {
    let dfr0 = mrs!("id_aa64dfr0_el1");
    let brps = ((dfr0 >> DFR0_BRPS_SHIFT) & FIELD_MASK) as usize + 1;
    let wrps = ((dfr0 >> DFR0_WRPS_SHIFT) & FIELD_MASK) as usize + 1;
    println!("guest: debug regs: {brps} breakpoints, {wrps} watchpoints");
    // Values every implementation keeps: addresses below bit 48, word
    // aligned; controls disabled (E = 0) with BAS all ones.
    let value = |i: usize| (pattern.rotate_left(9 * i as u32) ^ i as u64) & 0x0000_ffff_ffff_fff8;
    let bcr = |i: usize| BCR_BAS_A64 | ((pattern >> i) & 1) << 1;
    let wcr = |i: usize| WCR_BAS_8 | WCR_LSC_LOAD_STORE | ((pattern >> i) & 1) << 1;
    msr!("mdscr_el1", MDSCR_MDE);
    for i in 0..brps {
        write_point(0, i, value(i));
        write_point(1, i, bcr(i));
    }
    for i in 0..wrps {
        write_point(2, i, value(i + 16));
        write_point(3, i, wcr(i));
    }
    hvc::host_ping(0);
    let mut changed = (read_point(4, 0) != MDSCR_MDE) as u64;
    for i in 0..brps {
        changed += (read_point(0, i) != value(i)) as u64 + (read_point(1, i) != bcr(i)) as u64;
    }
    for i in 0..wrps {
        changed += (read_point(2, i) != value(i + 16)) as u64 + (read_point(3, i) != wcr(i)) as u64;
    }
    msr!("mdscr_el1", 0);
    changed
}

macro_rules! points {
    ($kind:expr, $i:expr, $op:ident) => {
        match ($kind, $i) {
            (0, 0) => $op!("dbgbvr0_el1"),
            (0, 1) => $op!("dbgbvr1_el1"),
            (0, 2) => $op!("dbgbvr2_el1"),
            (0, 3) => $op!("dbgbvr3_el1"),
            (0, 4) => $op!("dbgbvr4_el1"),
            (0, 5) => $op!("dbgbvr5_el1"),
            (0, 6) => $op!("dbgbvr6_el1"),
            (0, 7) => $op!("dbgbvr7_el1"),
            (0, 8) => $op!("dbgbvr8_el1"),
            (0, 9) => $op!("dbgbvr9_el1"),
            (0, 10) => $op!("dbgbvr10_el1"),
            (0, 11) => $op!("dbgbvr11_el1"),
            (0, 12) => $op!("dbgbvr12_el1"),
            (0, 13) => $op!("dbgbvr13_el1"),
            (0, 14) => $op!("dbgbvr14_el1"),
            (0, 15) => $op!("dbgbvr15_el1"),
            (1, 0) => $op!("dbgbcr0_el1"),
            (1, 1) => $op!("dbgbcr1_el1"),
            (1, 2) => $op!("dbgbcr2_el1"),
            (1, 3) => $op!("dbgbcr3_el1"),
            (1, 4) => $op!("dbgbcr4_el1"),
            (1, 5) => $op!("dbgbcr5_el1"),
            (1, 6) => $op!("dbgbcr6_el1"),
            (1, 7) => $op!("dbgbcr7_el1"),
            (1, 8) => $op!("dbgbcr8_el1"),
            (1, 9) => $op!("dbgbcr9_el1"),
            (1, 10) => $op!("dbgbcr10_el1"),
            (1, 11) => $op!("dbgbcr11_el1"),
            (1, 12) => $op!("dbgbcr12_el1"),
            (1, 13) => $op!("dbgbcr13_el1"),
            (1, 14) => $op!("dbgbcr14_el1"),
            (1, 15) => $op!("dbgbcr15_el1"),
            (2, 0) => $op!("dbgwvr0_el1"),
            (2, 1) => $op!("dbgwvr1_el1"),
            (2, 2) => $op!("dbgwvr2_el1"),
            (2, 3) => $op!("dbgwvr3_el1"),
            (2, 4) => $op!("dbgwvr4_el1"),
            (2, 5) => $op!("dbgwvr5_el1"),
            (2, 6) => $op!("dbgwvr6_el1"),
            (2, 7) => $op!("dbgwvr7_el1"),
            (2, 8) => $op!("dbgwvr8_el1"),
            (2, 9) => $op!("dbgwvr9_el1"),
            (2, 10) => $op!("dbgwvr10_el1"),
            (2, 11) => $op!("dbgwvr11_el1"),
            (2, 12) => $op!("dbgwvr12_el1"),
            (2, 13) => $op!("dbgwvr13_el1"),
            (2, 14) => $op!("dbgwvr14_el1"),
            (2, 15) => $op!("dbgwvr15_el1"),
            (3, 0) => $op!("dbgwcr0_el1"),
            (3, 1) => $op!("dbgwcr1_el1"),
            (3, 2) => $op!("dbgwcr2_el1"),
            (3, 3) => $op!("dbgwcr3_el1"),
            (3, 4) => $op!("dbgwcr4_el1"),
            (3, 5) => $op!("dbgwcr5_el1"),
            (3, 6) => $op!("dbgwcr6_el1"),
            (3, 7) => $op!("dbgwcr7_el1"),
            (3, 8) => $op!("dbgwcr8_el1"),
            (3, 9) => $op!("dbgwcr9_el1"),
            (3, 10) => $op!("dbgwcr10_el1"),
            (3, 11) => $op!("dbgwcr11_el1"),
            (3, 12) => $op!("dbgwcr12_el1"),
            (3, 13) => $op!("dbgwcr13_el1"),
            (3, 14) => $op!("dbgwcr14_el1"),
            (3, 15) => $op!("dbgwcr15_el1"),
            _ => $op!("mdscr_el1"),
        }
    };
}

/// Writes comparator `i` of `kind` (0 BVR, 1 BCR, 2 WVR, 3 WCR); `i` below
/// the count ID_AA64DFR0_EL1 gives.
fn write_point(kind: u8, i: usize, v: u64) {
    macro_rules! w {
        ($r:literal) => {
            msr!($r, v)
        };
    }
    points!(kind, i, w)
}

/// Reads comparator `i` of `kind` (4: MDSCR_EL1).
fn read_point(kind: u8, i: usize) -> u64 {
    points!(kind, i, mrs)
}

/// The EL0 alias of an address in the guest's RAM.
fn el0_va(el1: u64) -> u64 {
    el1 - mmu::RAM_BASE + EL0_ALIAS
}

/// Runs EL0 code at `entry` (an alias address) with x0 = `x0` and SPSR
/// bits `spsr_extra` (SS to step it), on the EL0 table; returns x0 at its
/// `svc #0`.
fn enter_el0(entry: u64, x0: u64, spsr_extra: u64) -> u64 {
    let old_ttbr0 = mrs!("ttbr0_el1");
    // SAFETY: the table is only written here, before TTBR0_EL1 points at it
    // (one vcpu runs this mode); level-1 entries copied from the guest's
    // own table plus the alias.
    let table = unsafe {
        let t = &mut *core::ptr::addr_of_mut!(EL0_TABLE);
        let src = &*(core::ptr::addr_of!(mmu::L1_TABLE) as *const [u64; TABLE_ENTRIES]);
        t.0 = *src;
        t.0[EL0_ALIAS_ENTRY] = ALIAS_DESC;
        t as *const Table as u64
    };
    set_ttbr0(table);
    let ret: u64;
    // SAFETY: erets to EL0 code of this image (mapped EL0-executable by the
    // alias). Its `svc #0` comes back through `handle`, which resumes at
    // label 2 with SP_EL1 as it was at the eret (the exception frame is
    // popped) and x0..x18, x29, x30 as EL0 left them: the EL0 code writes
    // only x0/x1 (clobbered here), never x18/x29/x30. SP_EL0 is unused.
    unsafe {
        asm!(
            "adr x5, 2f",
            "str x5, [x2]",
            "msr elr_el1, x3",
            "msr spsr_el1, x4",
            "isb",
            "eret",
            "2:",
            in("x2") EL0_RETURN.as_ptr(),
            in("x3") entry,
            in("x4") SPSR_EL0T | spsr_extra,
            inout("x0") x0 => ret,
            clobber_abi("C"),
        )
    };
    set_ttbr0(old_ttbr0);
    ret
}

/// TTBR0_EL1 = `ttbr`, no stale translations kept.
fn set_ttbr0(ttbr: u64) {
    // SAFETY: both tables identity-map everything this code uses at EL1;
    // dsb publishes the table writes to the walker, tlbi + dsb + isb drop
    // what the old table cached.
    unsafe {
        asm!(
            "dsb ishst",
            "msr ttbr0_el1, {t}",
            "isb",
            "tlbi vmalle1",
            "dsb nsh",
            "isb",
            t = in(reg) ttbr,
            options(nostack),
        )
    };
}

/// The exception hook (main.rs `exception`): takes debug exceptions and
/// EL0's `svc` while a debug mode runs; false for anything else.
pub fn handle(vector: u64, ec_value: u64, esr: u64, elr: u64) -> bool {
    let _ = esr;
    if !ACTIVE.load(Relaxed) {
        return false;
    }
    match ec_value {
        ec::BREAKPOINT_LOWER | ec::BREAKPOINT_SAME => {
            record(ec_value, elr, 0);
            // Disarm, so the instruction runs when the handler returns.
            msr!("dbgbcr0_el1", 0);
        }
        ec::WATCHPOINT_LOWER | ec::WATCHPOINT_SAME => {
            record(ec_value, elr, mrs!("far_el1"));
            msr!("dbgwcr0_el1", 0);
        }
        ec::STEP_LOWER | ec::STEP_SAME => {
            let n = HITS.load(Relaxed) as usize;
            if let Some(slot) = STEP_ELRS.get(n) {
                slot.store(elr, Relaxed);
            }
            record(ec_value, elr, 0);
            if HITS.load(Relaxed) < STEP_LIMIT.load(Relaxed) {
                // Step one more instruction after the eret.
                msr!("spsr_el1", mrs!("spsr_el1") | SPSR_SS);
            } else {
                msr!("mdscr_el1", mrs!("mdscr_el1") & !MDSCR_SS);
            }
        }
        ec::SVC64 if vector == VECTOR_LOWER_SYNC => {
            msr!("elr_el1", EL0_RETURN.load(Relaxed));
            msr!("spsr_el1", SPSR_EL1H_MASKED);
        }
        _ => return false,
    }
    true
}

fn record(ec_value: u64, elr: u64, far: u64) {
    HITS.store(HITS.load(Relaxed) + 1, Relaxed);
    LAST_EC.store(ec_value, Relaxed);
    LAST_ELR.store(elr, Relaxed);
    LAST_FAR.store(far, Relaxed);
}
