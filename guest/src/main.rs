//! A tiny bare-metal guest for spevisor's "virt-like" guest machine.
//!
//! Linked at 0x4000_0000 (guest RAM base), entry `_start` at the first byte.
//! The hypervisor starts it at EL1 with the MMU off and
//! x0 = mode, x1 = RAM size in bytes (at least 2 MiB), x2 = argument.
//! start.S sets up a stack, zeroes .bss, installs the vectors and turns on the
//! guest's own stage-1 MMU (mmu.rs), then calls [`guest_main`].
//!
//! Modes (x0):
//!
//! | mode | name | x2 | result (SET_STATUS) |
//! |---|---|---|---|
//! | 0 | selftest | – | 0, or a bitmask of failed checks ([`check`]) |
//! | 1 | fill | pattern | 0 after writing `pattern ^ address` to every 64-bit word of RAM from 1 MiB to the end |
//! | 2 | check | pattern | fill as mode 1, HOST_PING once, then the number of words that changed (0 = isolated) |
//! | 3 | read-outside | – | loads from IPA 0x2_0000_0000 + 0x18: 0 if the guest took an external data abort there and went on, else 0xbad |
//! | 4 | ping-loop | N | N HOST_PINGs; the number of wrong answers |
//! | 5 | sysreg-loop | N | N reads of ACTLR_EL1 (trapped to EL2 by HCR_EL2.TACR, injected as UNDEF); N - UNDEFs seen |
//! | 6 | bench | N | every single-VM benchmark loop ([`bench`]); wrong answers |
//! | 7 | bench-switch | N | the two-VM alternation benchmark loop ([`bench`]); wrong answers |
//! | 19 | reset | – | none: PSCI SYSTEM_RESET at once |
//! | 50 | hostile case | case | the hostile-guest suite's case ([`hostile_suite`]; 31..=38 from AArch32 EL0: [`hostile32`]) |
//! | 40..=44 | debug | pattern (44) | breakpoints, watchpoints, single step, OS lock, comparators across switches ([`debug`]) |
//! | 10, 20..=22 | exec-outside, aborts, abort-on-vector, abort-loop | – | unbacked IPAs: see `aborts.rs` |
//! | 23 | ptimer | N | the EL1 physical timer: see `ptimer.rs` |
//! | 30..=32 | pmu-count, pmu-overflow, pmu-isolation | see [`pmu`] | bitmasks of failed checks |
//! | other | – | – | 0xbadbad |
//!
//! Any unexpected exception (or a panic) prints ESR/ELR/FAR on the PL011 and
//! ends with SET_STATUS(0xdead). Every mode ends with PSCI SYSTEM_OFF (a
//! guest entered by the boot protocol ends as its command line's
//! `spevisor.end=` says: `endings.rs`). The loops stay silent so they can
//! be measured.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use spevisor_abi::guest::{psci, smccc};
use spevisor_pl011::{fr, reg};

/// Prints a line on the PL011.
macro_rules! println {
    ($($arg:tt)*) => {{
        // Console::write_str never fails.
        let _ = writeln!(crate::uart::Console, $($arg)*);
    }};
}

/// Reads a system register by name.
macro_rules! read_sysreg {
    ($name:literal) => {{
        let value: u64;
        // SAFETY: reading an EL1-accessible system register has no side
        // effects (only registers that cannot trap are read this way; the
        // UNDEF probes use `probe_undef`).
        unsafe {
            asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack, preserves_flags));
        }
        value
    }};
}

mod aborts;
mod bench;
mod debug;
mod dtb;
mod endings;
mod fp;
mod gic_v2;
mod hostile32;
mod hostile_suite;
mod hvc;
mod irqs;
mod mmu;
mod pauth;
mod pmu;
mod ptimer;
mod uart;

/// Boot stack size (in .bss). The debug build's device-tree parse
/// (`dtb-check`) needs more than 16 KiB; a guest has no guard page.
const STACK_SIZE: usize = 64 * 1024;
/// Bytes start.S saves per exception: x0..x18, x29, x30 (21 registers),
/// rounded up to keep SP 16-byte aligned.
const EXCEPTION_FRAME_SIZE: usize = 176;

global_asm!(
    include_str!("start.S"),
    MAIR = const mmu::MAIR_EL1,
    TCR = const mmu::TCR_EL1,
    SCTLR = const mmu::SCTLR_EL1,
    FRAME_SIZE = const EXCEPTION_FRAME_SIZE,
    STACK_SIZE = const STACK_SIZE,
    L1_TABLE = sym mmu::L1_TABLE,
    guest_main = sym guest_main,
    secondary_main = sym irqs::secondary_main,
    exception = sym exception,
);

extern "C" {
    /// The exception vector table (start.S).
    static guest_vectors: u8;
}

/// Modes (x0 at entry).
mod mode {
    pub const SELFTEST: u64 = 0;
    pub const FILL: u64 = 1;
    pub const CHECK: u64 = 2;
    pub const READ_OUTSIDE: u64 = 3;
    pub const PING_LOOP: u64 = 4;
    pub const SYSREG_LOOP: u64 = 5;
}

/// SET_STATUS values other than counts and the selftest bitmask.
mod status {
    pub const OK: u64 = 0;
    /// An exception the guest did not expect, or a panic.
    pub const UNEXPECTED_EXCEPTION: u64 = 0xdead;
    /// read-outside/exec-outside: the access outside RAM and every device
    /// did not give the external abort expected.
    pub const READ_OUTSIDE_RETURNED: u64 = 0xbad;
    pub const UNKNOWN_MODE: u64 = 0xbad_bad;
}

/// Selftest status bits: one per failed check.
mod check {
    /// CurrentEL is not 1.
    pub const CURRENT_EL: u64 = 1 << 0;
    /// PSCI_VERSION is not 1.1.
    pub const PSCI_VERSION: u64 = 1 << 1;
    /// PSCI_FEATURES(PSCI_VERSION) is not SUCCESS.
    pub const PSCI_FEATURES: u64 = 1 << 2;
    /// HOST_PING(41) did not answer x0 = 0, x1 = 42.
    pub const HOST_PING: u64 = 1 << 3;
    /// HYP_PING(41) answered neither (0, 42) nor NOT_SUPPORTED.
    pub const HYP_PING: u64 = 1 << 4;
    /// PL011 PERIPH_ID0 is not 0x11.
    pub const PL011_ID: u64 = 1 << 5;
    /// PL011 FR does not have TXFE set.
    pub const PL011_FR: u64 = 1 << 6;
    /// Reading PMBIDR_EL1 (SPE) did not UNDEF.
    pub const SPE_UNDEF: u64 = 1 << 7;
    /// The PMU is not what the ID registers say: offered (PMUVer ≥ PMUv3p1)
    /// but PMCR_EL0 UNDEFs or has no counter, or not offered and PMCR_EL0
    /// does not UNDEF.
    pub const PMU: u64 = 1 << 8;
    /// The compute loop's checksum differs from the compile-time value.
    pub const COMPUTE: u64 = 1 << 9;
    /// After all the world switches, the guest's EL1 MMU/vector registers
    /// (SCTLR_EL1.M/C/I, TCR_EL1, MAIR_EL1, TTBR0_EL1, VBAR_EL1) are not what
    /// it set.
    pub const EL1_SYSREGS: u64 = 1 << 10;
}

/// REPORT tags (x1) the selftest uses.
mod tag {
    /// x2 = compute loop checksum.
    pub const COMPUTE_CHECKSUM: u64 = 1;
    /// x2 = SMCCC_VERSION's answer.
    pub const SMCCC_VERSION: u64 = 2;
    /// x2 = 1 if HYP_PING was answered at EL2, 0 if NOT_SUPPORTED.
    pub const HYP_PING_ANSWERED: u64 = 3;
}

/// Where fill/check start, from the RAM base (the guest lives below).
const FILL_OFFSET: u64 = 1 << 20;
const WORD_BYTES: u64 = 8;

/// The compute loop: iterations and the xorshift seed.
const COMPUTE_ITERATIONS: u32 = 200_000;
const COMPUTE_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
/// What the compute loop must produce (evaluated by the compiler).
const COMPUTE_EXPECTED: u64 = xorshift_checksum(COMPUTE_SEED, COMPUTE_ITERATIONS);

/// Exception vector entry of a synchronous exception from EL1 on SP_EL1.
const VECTOR_CURRENT_EL_SPX_SYNC: u64 = 4;
/// ESR_EL1.EC.
const ESR_EC_SHIFT: u64 = 26;
const ESR_EC_MASK: u64 = 0x3f;
/// EC 0: unknown reason (what an injected UNDEF looks like).
const EC_UNKNOWN: u64 = 0;
/// Every A64 instruction is 4 bytes.
const INSTRUCTION_BYTES: u64 = 4;
/// CurrentEL.EL.
const CURRENT_EL_SHIFT: u64 = 2;
const CURRENT_EL_MASK: u64 = 0b11;

/// Set while the guest executes instructions that must UNDEF.
static UNDEF_EXPECTED: AtomicBool = AtomicBool::new(false);
/// UNDEFs taken while [`UNDEF_EXPECTED`] was set.
static UNDEFS_SEEN: AtomicU64 = AtomicU64::new(0);
/// Set once the guest is giving up (unexpected exception or panic).
static DYING: AtomicBool = AtomicBool::new(false);

/// First Rust code, with the MMU on (start.S). `entry_counter` is CNTVCT_EL0
/// as read by the guest's first instruction.
extern "C" fn guest_main(mode: u64, ram_size: u64, arg: u64, entry_counter: u64) -> ! {
    gic_v2::set_ram_size(ram_size);
    let status = match mode {
        // The arm64 boot protocol (a raw `--guest` payload): x0 = the
        // device tree, an IPA in RAM, where no mode number reaches.
        dtb_ipa if dtb_ipa >= mmu::RAM_BASE => dtb::boot_protocol(dtb_ipa),
        mode::SELFTEST => selftest(ram_size),
        mode::FILL => {
            fill(ram_size, arg);
            status::OK
        }
        mode::CHECK => {
            fill(ram_size, arg);
            hvc::host_ping(0);
            mismatches(ram_size, arg)
        }
        mode::READ_OUTSIDE => read_outside(),
        mode::PING_LOOP => ping_loop(arg),
        mode::SYSREG_LOOP => sysreg_loop(arg),
        fp::MODE_FP_CHECK => fp::check(arg),
        MODE_EXEC_OUTSIDE => exec_outside(),
        MODE_HOSTILE => hostile(),
        MODE_RESET => reset(),
        hostile_suite::MODE_HOSTILE_CASE => hostile_suite::run(arg),
        pauth::MODE_PAUTH_CHECK => pauth::check(arg),
        bench::MODE_BENCH => bench::run(arg, entry_counter),
        bench::MODE_BENCH_SWITCH => bench::switch(arg, entry_counter),
        dtb::MODE_DTB_CHECK => dtb::check(ram_size),
        irqs::MODE_VTIMER => irqs::vtimer(arg),
        irqs::MODE_VGIC => irqs::vgic(),
        irqs::MODE_SMP => irqs::smp(arg),
        irqs::MODE_SPIN => irqs::spin(),
        irqs::MODE_VGIC_NEST => irqs::vgic_nest(),
        debug::MODE_BREAKPOINT..=debug::MODE_REGS => debug::run(mode, arg),
        aborts::MODE_ABORTS => aborts::run(),
        ptimer::MODE_PTIMER => ptimer::run(arg),
        aborts::MODE_ABORT_ON_VECTOR | aborts::MODE_ABORT_LOOP => aborts::no_progress(mode),
        pmu::MODE_PMU_COUNT => pmu::count(arg),
        pmu::MODE_PMU_OVERFLOW => pmu::overflow(),
        pmu::MODE_PMU_ISOLATION => pmu::isolation(arg),
        _ => {
            println!("guest: unknown mode {mode}");
            status::UNKNOWN_MODE
        }
    };
    hvc::set_status(status);
    hvc::system_off()
}

/// Records the selftest's checks.
struct Checks {
    failed: u64,
}

impl Checks {
    fn check(&mut self, ok: bool, bit: u64, what: core::fmt::Arguments) {
        let verdict = if ok { "ok  " } else { "FAIL" };
        println!("guest: {verdict} {what}");
        if !ok {
            self.failed |= bit;
        }
    }
}

/// The demo: every check prints one line; returns the bitmask of failed
/// checks ([`check`]).
fn selftest(ram_size: u64) -> u64 {
    let mut c = Checks { failed: 0 };
    println!("guest: hello from EL1");
    println!("guest: selftest, RAM {ram_size:#x} bytes at {:#x}", mmu::RAM_BASE);

    let el = read_sysreg!("currentel") >> CURRENT_EL_SHIFT & CURRENT_EL_MASK;
    c.check(el == 1, check::CURRENT_EL, format_args!("CurrentEL = {el}"));

    let v = hvc::psci_version();
    let ok = v == psci::VERSION_1_1;
    c.check(ok, check::PSCI_VERSION, format_args!("PSCI_VERSION = {v:#x}"));

    let v = hvc::smccc_version();
    if v == smccc::NOT_SUPPORTED {
        println!("guest: info SMCCC_VERSION = NOT_SUPPORTED");
    } else {
        println!("guest: info SMCCC_VERSION = {v:#x}");
    }
    hvc::report(tag::SMCCC_VERSION, v);

    let v = hvc::psci_features(psci::VERSION);
    let ok = v == psci::SUCCESS;
    let what = format_args!("PSCI_FEATURES(PSCI_VERSION) = {v:#x}");
    c.check(ok, check::PSCI_FEATURES, what);

    let (x0, x1) = hvc::host_ping(41);
    let what = format_args!("HOST_PING(41) = {x1} (x0 = {x0:#x})");
    c.check(x0 == 0 && x1 == 42, check::HOST_PING, what);

    let (x0, x1) = hvc::hyp_ping(41);
    let answered = x0 == 0 && x1 == 42;
    if x0 == smccc::NOT_SUPPORTED {
        c.check(true, check::HYP_PING, format_args!("HYP_PING: NOT_SUPPORTED"));
    } else {
        let what = format_args!("HYP_PING(41) = {x1} at EL2 (x0 = {x0:#x})");
        c.check(answered, check::HYP_PING, what);
    }
    hvc::report(tag::HYP_PING_ANSWERED, answered.into());

    let id = uart::read(reg::PERIPH_ID0);
    let what = format_args!("PL011 PERIPH_ID0 = {id:#x}");
    c.check(id == 0x11, check::PL011_ID, what);
    // What was printed may still be in the transmit FIFO: wait it out.
    let flags = uart::wait_idle();
    let what = format_args!("PL011 FR = {flags:#x} (TXFE once idle)");
    c.check(flags & fr::TXFE != 0, check::PL011_FR, what);

    let undef = probe_undef(read_pmbidr);
    c.check(undef, check::SPE_UNDEF, format_args!("PMBIDR_EL1 read UNDEFs"));
    if pmu::offered() {
        let undef = probe_undef(read_pmcr);
        let n = if undef { 0 } else { pmu::counters() };
        c.check(!undef && n > 0, check::PMU, format_args!("PMU offered: PMCR_EL0 reads, N = {n}"));
    } else {
        let undef = probe_undef(read_pmcr);
        c.check(undef, check::PMU, format_args!("no PMU offered: PMCR_EL0 read UNDEFs"));
    }

    let sum = xorshift_checksum(core::hint::black_box(COMPUTE_SEED), core::hint::black_box(COMPUTE_ITERATIONS));
    hvc::report(tag::COMPUTE_CHECKSUM, sum);
    let what = format_args!("compute {COMPUTE_ITERATIONS} iterations: checksum {sum:#x}");
    c.check(sum == COMPUTE_EXPECTED, check::COMPUTE, what);

    let ok = el1_sysregs_intact();
    let what = format_args!("EL1 MMU and vector registers kept across world switches");
    c.check(ok, check::EL1_SYSREGS, what);

    // guest_main reports it with SET_STATUS and powers off.
    let status = c.failed;
    println!("guest: selftest status={status}");
    status
}

/// Runs `probe` with UNDEFs expected; true if it took exactly one.
fn probe_undef(probe: fn()) -> bool {
    let before = UNDEFS_SEEN.load(Relaxed);
    UNDEF_EXPECTED.store(true, Relaxed);
    probe();
    UNDEF_EXPECTED.store(false, Relaxed);
    UNDEFS_SEEN.load(Relaxed) == before + 1
}

/// Reads PMBIDR_EL1 (SPE); under spevisor this must UNDEF.
fn read_pmbidr() {
    let _value: u64;
    // SAFETY: a system register read; if it traps, the injected UNDEF is
    // handled by `exception` (skips the instruction). No `nomem`: the
    // compiler must not move the UNDEF bookkeeping across it.
    unsafe { asm!("mrs {}, S3_0_C9_C10_7", out(reg) _value, options(nostack)) };
}

/// Reads PMCR_EL0 (PMU): UNDEFs under spevisor unless the ID registers
/// offer a PMU.
fn read_pmcr() {
    let _value: u64;
    // SAFETY: as in `read_pmbidr`.
    unsafe { asm!("mrs {}, pmcr_el0", out(reg) _value, options(nostack)) };
}

/// Reads ACTLR_EL1 (HCR_EL2.TACR traps it; the hypervisor injects UNDEF).
pub fn read_actlr() {
    let _value: u64;
    // SAFETY: as in `read_pmbidr`.
    unsafe { asm!("mrs {}, actlr_el1", out(reg) _value, options(nostack)) };
}

/// Whether the EL1 registers start.S programmed still hold its values.
fn el1_sysregs_intact() -> bool {
    let mmu_on = mmu::SCTLR_M | mmu::SCTLR_C | mmu::SCTLR_I;
    let table = core::ptr::addr_of!(mmu::L1_TABLE) as u64;
    let vectors = core::ptr::addr_of!(guest_vectors) as u64;
    read_sysreg!("sctlr_el1") & mmu_on == mmu_on
        && read_sysreg!("tcr_el1") == mmu::TCR_EL1
        && read_sysreg!("mair_el1") == mmu::MAIR_EL1
        && read_sysreg!("ttbr0_el1") == table
        && read_sysreg!("vbar_el1") == vectors
}

/// xorshift64 with a rotating sum of every state.
const fn xorshift_checksum(seed: u64, iterations: u32) -> u64 {
    let mut x = seed;
    let mut sum: u64 = 0;
    let mut i = 0;
    while i < iterations {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum = sum.rotate_left(1).wrapping_add(x);
        i += 1;
    }
    sum
}

/// The words fill/check use: RAM from [`FILL_OFFSET`] to the end (at most
/// what the stage-1 map covers), as `[start, end)` addresses.
fn fill_range(ram_size: u64) -> (u64, u64) {
    let start = mmu::RAM_BASE + FILL_OFFSET;
    let size = ram_size.min(mmu::RAM_MAPPED) & !(WORD_BYTES - 1);
    (start, (mmu::RAM_BASE + size).max(start))
}

fn fill(ram_size: u64, pattern: u64) {
    let (mut addr, end) = fill_range(ram_size);
    while addr < end {
        // SAFETY: `addr` is an 8-byte aligned address of guest RAM above the
        // guest's image, stack and .bss (which the linker script keeps below
        // RAM + 1 MiB), identity-mapped as Normal memory.
        unsafe { (addr as *mut u64).write_volatile(pattern ^ addr) };
        addr += WORD_BYTES;
    }
}

/// Words of the fill range that do not hold what `fill` wrote.
fn mismatches(ram_size: u64, pattern: u64) -> u64 {
    let (mut addr, end) = fill_range(ram_size);
    let mut bad = 0;
    while addr < end {
        // SAFETY: as in `fill`.
        let value = unsafe { (addr as *const u64).read_volatile() };
        if value != pattern ^ addr {
            bad += 1;
        }
        addr += WORD_BYTES;
    }
    bad
}

/// Mode 3: a load from an IPA outside RAM and every device: the guest
/// takes an external abort at its own vector and skips the load (0, or
/// [`status::READ_OUTSIDE_RETURNED`] if the abort was not as expected).
fn read_outside() -> u64 {
    println!("guest: read-outside: loading from {:#x}; the guest must take an external abort", mmu::OUTSIDE_IPA);
    if aborts::el1_load() == 0 {
        status::OK
    } else {
        status::READ_OUTSIDE_RETURNED
    }
}

/// Mode 10: jumps to guest-physical memory the guest's own stage-1 maps as
/// executable RAM but the VM was never given: the guest takes an external
/// instruction abort and resumes after the branch.
pub const MODE_EXEC_OUTSIDE: u64 = 10;

fn exec_outside() -> u64 {
    println!(
        "guest: exec-outside: branching to {:#x}; the guest must take an external abort",
        aborts::UNBACKED_CODE_IPA
    );
    if aborts::el1_branch() == 0 {
        status::OK
    } else {
        status::READ_OUTSIDE_RETURNED
    }
}

/// Mode 19: PSCI SYSTEM_RESET at once (the stress scenario's way to end
/// a VM by reset).
pub const MODE_RESET: u64 = 19;

fn reset() -> ! {
    hvc::call(spevisor_abi::guest::psci::SYSTEM_RESET, 0, 0, 0);
    park()
}

/// Mode 11: a hostile guest. Unknown hypercall IDs must come back
/// NOT_SUPPORTED, an SMC (trapped, HCR_EL2.TSC) must work like an HVC, then a
/// load pair from the UART (no instruction syndrome) must stop the VM.
pub const MODE_HOSTILE: u64 = 11;

fn hostile() -> u64 {
    let mut wrong = 0;
    for id in [0u64, 0xC600_FFFF, 0x8400_FFFF, u64::MAX] {
        let r = hvc::call(id, 1, 2, 3);
        if r[0] != spevisor_abi::guest::smccc::NOT_SUPPORTED {
            println!("guest: hostile: hvc {id:#x} answered {:#x}", r[0]);
            wrong += 1;
        }
    }
    // CPU_ON of a vcpu this one-vcpu VM does not have, with a garbage entry.
    let r = hvc::call(spevisor_abi::guest::psci::CPU_ON_64, 1, 2, 3);
    if r[0] != spevisor_abi::guest::psci::INVALID_PARAMETERS {
        println!("guest: hostile: CPU_ON of a missing vcpu answered {:#x}", r[0]);
        wrong += 1;
    }
    let version: u64;
    // SAFETY: an SMC trapped to EL2 (HCR_EL2.TSC) and answered like PSCI via
    // HVC; x0..x3 carry the call, x0..x17 may change (SMCCC).
    unsafe {
        asm!("smc #0", inout("x0") spevisor_abi::guest::psci::VERSION => version,
             out("x1") _, out("x2") _, out("x3") _, clobber_abi("C"))
    };
    if version != spevisor_abi::guest::psci::VERSION_1_1 {
        println!("guest: hostile: smc PSCI_VERSION answered {version:#x}");
        wrong += 1;
    }
    hvc::report(4, wrong);
    println!("guest: hostile: ldp from the UART (no syndrome); the VM must stop");
    let (a, b): (u64, u64);
    // SAFETY: a load pair from the PL011 frame, mapped Device by the guest:
    // load pairs have no valid ISS at stage 2, so the hypervisor stops the VM.
    unsafe { asm!("ldp {a}, {b}, [{p}]", p = in(reg) crate::uart::PL011_BASE, a = out(reg) a, b = out(reg) b) };
    println!("guest: hostile: ldp returned {a:#x} {b:#x}");
    status::READ_OUTSIDE_RETURNED
}

fn ping_loop(n: u64) -> u64 {
    let mut errors = 0;
    for i in 0..n {
        if hvc::host_ping(i) != (0, i.wrapping_add(1)) {
            errors += 1;
        }
    }
    errors
}

fn sysreg_loop(n: u64) -> u64 {
    let before = UNDEFS_SEEN.load(Relaxed);
    UNDEF_EXPECTED.store(true, Relaxed);
    // ACTLR_EL1: trapped to EL2 by HCR_EL2.TACR and injected back as UNDEF,
    // so every iteration is a trip through the hypervisor. (SPE registers on a
    // CPU without SPE UNDEF at EL1 directly and would never reach EL2; PMCR_EL0,
    // used here before guests had a PMU, is now emulated.)
    for _ in 0..n {
        read_actlr();
    }
    UNDEF_EXPECTED.store(false, Relaxed);
    n.wrapping_sub(UNDEFS_SEEN.load(Relaxed) - before)
}

/// Called by start.S for every exception, with the vector entry's index
/// (0..15). Returns only for an expected UNDEF, after skipping the
/// instruction, an interrupt, or an expected abort (`aborts.rs`).
extern "C" fn exception(vector: u64) {
    if vector == irqs::VECTOR_CURRENT_EL_SPX_IRQ {
        irqs::handle();
        return;
    }
    let esr = read_sysreg!("esr_el1");
    let elr = read_sysreg!("elr_el1");
    let ec = esr >> ESR_EC_SHIFT & ESR_EC_MASK;
    // The expected UNDEF first: it is the `udf_el1`/`sysreg_trap`
    // benchmarks' path; no other handler takes EC 0.
    if vector == VECTOR_CURRENT_EL_SPX_SYNC && ec == EC_UNKNOWN && UNDEF_EXPECTED.load(Relaxed) {
        UNDEFS_SEEN.store(UNDEFS_SEEN.load(Relaxed) + 1, Relaxed);
        let next = elr + INSTRUCTION_BYTES;
        // SAFETY: ELR_EL1 is the return address of this exception (eret in
        // start.S); the UNDEF'd instruction is skipped.
        unsafe { asm!("msr elr_el1, {}", in(reg) next, options(nomem, nostack, preserves_flags)) };
        return;
    }
    if aborts::handle(vector) {
        return;
    }
    if vector == VECTOR_CURRENT_EL_SPX_SYNC && hostile_suite::on_exception(esr, elr, read_sysreg!("far_el1")) {
        return;
    }
    if debug::handle(vector, ec, esr, elr) {
        return;
    }
    if vector == hostile32::VECTOR_LOWER_A32_SYNC && hostile32::on_exception(esr, elr, read_sysreg!("far_el1")) {
        return;
    }
    let far = read_sysreg!("far_el1");
    die(format_args!("unexpected exception: vector {vector} ESR_EL1={esr:#x} ELR_EL1={elr:#x} FAR_EL1={far:#x}"))
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    die(format_args!("panic: {info}"))
}

/// Prints why, reports [`status::UNEXPECTED_EXCEPTION`] and powers off. A
/// second failure on the way (say `hvc` itself UNDEFs because there is no
/// EL2) parks the vcpu instead of recursing.
fn die(why: core::fmt::Arguments) -> ! {
    if !DYING.swap(true, Relaxed) {
        println!("guest: {why}");
        hvc::set_status(status::UNEXPECTED_EXCEPTION);
        hvc::system_off()
    }
    park()
}

/// Waits forever with interrupts masked.
pub fn park() -> ! {
    loop {
        // SAFETY: wfi only waits; interrupts are masked, so this parks the vcpu.
        unsafe { asm!("wfi", options(nomem, nostack, preserves_flags)) };
    }
}
