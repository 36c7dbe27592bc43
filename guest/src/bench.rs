//! Benchmark modes (`cargo xtask bench`): what one exit of each kind costs,
//! in CNTVCT_EL0 ticks (instructions under `qemu -icount shift=0` with a
//! 1 GHz counter).
//!
//! Every measured loop is bracketed with `isb; mrs cntvct_el0` and followed by
//! a baseline loop of exactly the same shape with the trapping instruction
//! replaced by a `nop`; the host reports both and xtask subtracts. Each loop
//! runs [`WARMUP`] untimed iterations first, so one-off work (the
//! hypervisor's first recorded round trips) stays out of the figures.
//!
//! Results are written as u64 words at RAM + [`RESULTS_OFFSET`] (the host
//! reads them after the run, `host/src/bench.rs`, which keeps the same layout):
//!
//! | word | contents |
//! |---|---|
//! | 0 | [`RESULTS_MAGIC`] |
//! | 1 | number of entries |
//! | 2 | CNTFRQ_EL0 |
//! | 3 | CNTVCT_EL0 at the guest's first instruction (start.S) |
//! | 4 + 5k .. | entry k: metric id, iterations, ticks, baseline ticks, errors |

use crate::mmu::RAM_BASE;
use crate::{UNDEFS_SEEN, UNDEF_EXPECTED};
use core::arch::asm;
use core::sync::atomic::Ordering::Relaxed;
use spevisor_abi::guest::test;
use spevisor_pl011::{fr, reg};

/// Mode: every single-VM metric, one after the other (x2 = iterations).
pub const MODE_BENCH: u64 = 6;
/// Mode: a HOST_PING loop meant to run in two VMs the host alternates
/// between at every exit (x2 = iterations).
pub const MODE_BENCH_SWITCH: u64 = 7;

/// Where the results block starts, from the RAM base (above the guest's own
/// image, stack and .bss, which the linker script keeps below 1 MiB).
pub const RESULTS_OFFSET: u64 = 1 << 20;
/// First word of a results block ("benchres").
pub const RESULTS_MAGIC: u64 = u64::from_be_bytes(*b"benchres");
/// Words before the first entry, and per entry.
const HEADER_WORDS: usize = 4;
const ENTRY_WORDS: usize = 5;

/// Metric ids (host/src/bench.rs names them).
pub mod metric {
    /// HOST_PING: answered by the host at EL1 (full world switch).
    pub const HVC_HOST: u64 = 1;
    /// HYP_PING: answered at EL2 inside `vcpu_run`.
    pub const HVC_EL2: u64 = 2;
    /// A load of the emulated PL011's FR register (MMIO exit to the host).
    pub const MMIO_HOST: u64 = 3;
    /// An ACTLR_EL1 read: trapped (HCR_EL2.TACR), UNDEF injected by EL2,
    /// handled by the guest (a PMCR_EL0 read until guests had a PMU).
    pub const SYSREG_TRAP: u64 = 4;
    /// A `udf` at EL1: the guest's own UNDEF handler, no EL2 involved.
    pub const UDF_EL1: u64 = 5;
    /// One alternation of two VMs (this VM's HOST_PING, then the other's).
    pub const VM_SWITCH: u64 = 6;
    /// HOST_PING after an FP instruction: the lazy FP switch's full cost.
    pub const HVC_HOST_FP: u64 = 7;
    /// HOST_PING of a vcpu that uses its PMU (cycle counter running): the
    /// PMU switched at every entry and exit.
    pub const HVC_HOST_PMU: u64 = 8;
}

/// Untimed iterations before each measured loop (and after the switch loop).
const WARMUP: u64 = 16;
/// Capacity of the results block.
const MAX_ENTRIES: usize = 8;

/// IPA of the emulated PL011's flag register.
const PL011_FR: u64 = crate::uart::PL011_BASE + reg::FR;

/// One measured loop: its ticks and the iterations whose answer was wrong.
#[derive(Clone, Copy, Default)]
struct Timed {
    ticks: u64,
    errors: u64,
}

/// Defines `fn $name(n, a, m) -> Timed`: `n` (at least 1) iterations of
/// `$setup; $body; $check` timed with `isb; mrs cntvct_el0` on both sides.
///
/// Registers (explicit, so the templates name them): x20 = `a` (a function ID
/// or an address), x25 = `m` (a mask for the check), both kept across the
/// body; x21 = the down-counter (the body sees it as the iteration value);
/// x22 = the error count the check increments; x23/x24 = the two counter
/// reads. x0..x17 are clobbered: SMCCC lets the hypervisor use them, and the
/// UNDEF bodies run the guest's exception handler (which preserves them, but
/// nothing here relies on it). Flags are clobbered. No `nomem`/`nostack`: the
/// exception handler writes its statics and pushes its frame below SP.
macro_rules! timed_loop {
    ($(#[$doc:meta])* $name:ident, [$($setup:literal),*], $body:literal, [$($check:literal),*]) => {
        $(#[$doc])*
        fn $name(n: u64, a: u64, m: u64) -> Timed {
            let (t0, t1, errors): (u64, u64, u64);
            // SAFETY: the loop only touches the registers declared below; the
            // body is a hypervisor call, an MMIO load from the PL011 frame
            // (mapped Device by mmu.rs) or an instruction whose UNDEF the
            // guest's handler skips (UNDEF_EXPECTED is set by the caller).
            // The isb before each counter read keeps it from being taken
            // early (CNTVCT_EL0 reads are not ordered by themselves).
            unsafe {
                asm!(
                    "isb",
                    "mrs x23, cntvct_el0",
                    "2:",
                    $($setup,)*
                    $body,
                    $($check,)*
                    "subs x21, x21, #1",
                    "b.ne 2b",
                    "isb",
                    "mrs x24, cntvct_el0",
                    in("x20") a,
                    in("x25") m,
                    inout("x21") n.max(1) => _,
                    inout("x22") 0u64 => errors,
                    out("x23") t0,
                    out("x24") t1,
                    out("x0") _, out("x1") _, out("x2") _, out("x3") _,
                    out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                    out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                    out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                    out("x16") _, out("x17") _,
                );
            }
            Timed { ticks: t1.wrapping_sub(t0), errors }
        }
    };
}

/// Ping-shaped loops: x0 = function ID (x20), x1 = the counter; the answer
/// must be x0 = 0, x1 = counter + 1 (HOST_PING and HYP_PING both answer so).
macro_rules! ping_loop {
    ($(#[$doc:meta])* $name:ident, $body:literal) => {
        timed_loop!(
            $(#[$doc])* $name,
            ["mov x0, x20", "mov x1, x21"],
            $body,
            ["add x2, x21, #1", "cmp x1, x2", "ccmp x0, #0, #0, eq", "cinc x22, x22, ne"]
        );
    };
}

ping_loop!(
    /// `hvc #0` with x0 = `a`.
    hvc_loop,
    "hvc #0"
);
ping_loop!(
    /// The baseline of [`hvc_loop`].
    hvc_baseline,
    "nop"
);

/// Ping loops that first write d0: every round trip re-enters the guest
/// with FP trapped, so the `fmov` takes the lazy-FP trap once per run.
macro_rules! fp_ping_loop {
    ($(#[$doc:meta])* $name:ident, $body:literal) => {
        timed_loop!(
            $(#[$doc])* $name,
            [".arch_extension fp", "fmov d0, x21", "mov x0, x20", "mov x1, x21"],
            $body,
            ["add x2, x21, #1", "cmp x1, x2", "ccmp x0, #0, #0, eq", "cinc x22, x22, ne"]
        );
    };
}

fp_ping_loop!(
    /// `fmov d0, ..` then `hvc #0`.
    hvc_fp_loop,
    "hvc #0"
);
fp_ping_loop!(
    /// The baseline of [`hvc_fp_loop`] (FP stays enabled: no trap).
    hvc_fp_baseline,
    "nop"
);

// MMIO loops: x20 = the address, x25 = a flag that must be set in the value.
timed_loop!(
    /// `ldr w1, [x20]`: an MMIO read.
    mmio_loop,
    ["mov x1, xzr"],
    "ldr w1, [x20]",
    ["tst x1, x25", "cinc x22, x22, eq"]
);
timed_loop!(
    /// The baseline of [`mmio_loop`].
    mmio_baseline,
    ["mov x1, xzr"],
    "nop",
    ["tst x1, x25", "cinc x22, x22, eq"]
);

// The UNDEF loops: errors are counted from UNDEFS_SEEN by the caller.
timed_loop!(
    /// `mrs x1, actlr_el1`: trapped by HCR_EL2.TACR, UNDEF injected.
    actlr_loop,
    [],
    "mrs x1, actlr_el1",
    []
);
timed_loop!(
    /// `udf #0`: UNDEF taken at EL1 directly.
    udf_loop,
    [],
    "udf #0",
    []
);
timed_loop!(
    /// The baseline of [`actlr_loop`] and [`udf_loop`].
    undef_baseline,
    [],
    "nop",
    []
);

/// The results block in guest RAM.
struct Results {
    entries: usize,
}

impl Results {
    fn base() -> *mut u64 {
        (RAM_BASE + RESULTS_OFFSET) as *mut u64
    }

    fn word(i: usize, v: u64) {
        // SAFETY: RAM + 1 MiB onwards is guest RAM the guest does not
        // otherwise use (linker script), identity-mapped Normal memory, and
        // the block is far smaller than the 1 MiB above it.
        unsafe { Self::base().add(i).write_volatile(v) };
    }

    fn new(entry_counter: u64) -> Self {
        Self::word(0, 0);
        Self::word(1, 0);
        Self::word(2, read_cntfrq());
        Self::word(3, entry_counter);
        Self { entries: 0 }
    }

    fn add(&mut self, id: u64, n: u64, t: Timed, baseline: Timed) {
        if self.entries == MAX_ENTRIES {
            return;
        }
        let at = HEADER_WORDS + ENTRY_WORDS * self.entries;
        for (k, v) in [id, n, t.ticks, baseline.ticks, t.errors].into_iter().enumerate() {
            Self::word(at + k, v);
        }
        self.entries += 1;
        Self::word(1, self.entries as u64);
    }

    /// Marks the block complete (the host ignores one without the magic).
    fn finish(self) {
        Self::word(0, RESULTS_MAGIC);
    }
}

fn read_cntfrq() -> u64 {
    read_sysreg!("cntfrq_el0")
}

/// Runs an UNDEF loop with UNDEFs expected; errors = iterations that did not
/// take exactly one UNDEF.
fn undef_timed(run: fn(u64, u64, u64) -> Timed, n: u64) -> Timed {
    let before = UNDEFS_SEEN.load(Relaxed);
    UNDEF_EXPECTED.store(true, Relaxed);
    let mut t = run(n, 0, 0);
    UNDEF_EXPECTED.store(false, Relaxed);
    t.errors = n.abs_diff(UNDEFS_SEEN.load(Relaxed) - before);
    t
}

/// Mode [`MODE_BENCH`]: every single-VM metric; returns the total errors.
pub fn run(n: u64, entry_counter: u64) -> u64 {
    let n = n.max(1);
    let mut r = Results::new(entry_counter);
    let mut errors = 0;
    let mut pair = |r: &mut Results, id: u64, measure: &dyn Fn(u64) -> Timed, baseline: &dyn Fn(u64) -> Timed| {
        measure(WARMUP);
        let t = measure(n);
        let b = baseline(n);
        errors += t.errors;
        r.add(id, n, t, b);
    };
    let (host, hyp) = (test::HOST_PING, test::HYP_PING);
    let txfe = u64::from(fr::TXFE);
    pair(&mut r, metric::HVC_HOST, &|k| hvc_loop(k, host, 0), &|k| hvc_baseline(k, host, 0));
    pair(&mut r, metric::HVC_EL2, &|k| hvc_loop(k, hyp, 0), &|k| hvc_baseline(k, hyp, 0));
    pair(&mut r, metric::MMIO_HOST, &|k| mmio_loop(k, PL011_FR, txfe), &|k| mmio_baseline(k, PL011_FR, txfe));
    pair(&mut r, metric::SYSREG_TRAP, &|k| undef_timed(actlr_loop, k), &|k| undef_baseline(k, 0, 0));
    pair(&mut r, metric::UDF_EL1, &|k| undef_timed(udf_loop, k), &|k| undef_baseline(k, 0, 0));
    crate::fp::enable_fp();
    pair(&mut r, metric::HVC_HOST_FP, &|k| hvc_fp_loop(k, host, 0), &|k| hvc_fp_baseline(k, host, 0));
    // Last: from its first PMU access on, this vcpu's every round trip
    // switches the PMU (the loops above measured a vcpu that never used it).
    if crate::pmu::offered() {
        crate::pmu::start_cycle_counter();
        pair(&mut r, metric::HVC_HOST_PMU, &|k| hvc_loop(k, host, 0), &|k| hvc_baseline(k, host, 0));
    }
    r.finish();
    errors
}

/// Mode [`MODE_BENCH_SWITCH`]: HOST_PINGs, meant for two VMs the host steps
/// alternately. Both VMs make the same exits in the same order (warm-up,
/// timed loop, cool-down), so while this VM's timed loop runs the other is in
/// its own timed loop too: each iteration is one alternation (this VM's exit,
/// the other VM's run to its next exit, and back).
pub fn switch(n: u64, entry_counter: u64) -> u64 {
    let n = n.max(1);
    let mut r = Results::new(entry_counter);
    let ping = test::HOST_PING;
    hvc_loop(WARMUP, ping, 0);
    let t = hvc_loop(n, ping, 0);
    // Keeps the other VM's timed loop free of this VM's baseline loop.
    hvc_loop(WARMUP, ping, 0);
    let b = hvc_baseline(n, ping, 0);
    r.add(metric::VM_SWITCH, n, t, b);
    r.finish();
    t.errors
}
