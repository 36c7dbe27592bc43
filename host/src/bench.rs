//! The `bench` scenario (`cargo xtask bench`): runs the tiny guest's
//! benchmark modes and prints what they measured, raw, for xtask to turn into
//! instructions (`xtask/src/bench.rs`).
//!
//! 1. One VM in mode [`MODE_BENCH`]: HOST_PING, HYP_PING, an MMIO read, a
//!    trapped PMCR_EL0 read and a guest-only `udf`, each against its own
//!    baseline loop. It is the first VM of the boot, so the counter its first
//!    instruction read is the boot figure.
//! 2. Two VMs in mode [`MODE_BENCH_SWITCH`], stepped alternately (one exit
//!    each per alternation), as in the `two-vms` scenario.
//!
//! Output (one line each):
//!
//! ```text
//! bench: vm=bench status=0 ending=off cntfrq=1000000000 entry_counter=123
//! bench-metric: vm=bench name=hvc_host n=10000 ticks=.. baseline=.. errors=0
//! bench: done
//! ```

use crate::hprintln;
use crate::scenarios::{self, ending_name, finish, Totals};
use crate::vmm::{run_alternately, Vm};

/// Guest modes (guest/src/bench.rs).
const MODE_BENCH: u64 = 6;
const MODE_BENCH_SWITCH: u64 = 7;

/// The guest's results block (guest/src/bench.rs documents the layout).
const RESULTS_OFFSET: u64 = 1 << 20;
const RESULTS_MAGIC: u64 = u64::from_be_bytes(*b"benchres");
const HEADER_WORDS: usize = 4;
const ENTRY_WORDS: usize = 5;
const MAX_ENTRIES: usize = 8;

/// Iterations when the command line gives none.
pub const DEFAULT_ITERATIONS: u64 = 10_000;

/// Metric ids the guest writes, by name.
const METRICS: [(u64, &str); 8] = [
    (1, "hvc_host"),
    (2, "hvc_el2"),
    (3, "mmio_host"),
    (4, "sysreg_trap"),
    (5, "udf_el1"),
    (6, "vm_switch"),
    (7, "hvc_host_fp"),
    (8, "hvc_host_pmu"),
];

fn metric_name(id: u64) -> &'static str {
    METRICS.iter().find(|(i, _)| *i == id).map_or("unknown", |(_, n)| n)
}

/// Prints a finished VM's results block.
fn report(vm: &Vm) {
    let ram = vm.ram();
    let base = (RESULTS_OFFSET / 8) as usize;
    let word = |i: usize| ram.get(base + i).copied().unwrap_or(0);
    let status = vm.status.map_or(-1, |s| s as i64);
    let ending = ending_name(vm.ending);
    if word(0) != RESULTS_MAGIC {
        hprintln!("bench: vm={} status={status} ending={ending} results=missing", vm.name);
        return;
    }
    hprintln!("bench: vm={} status={status} ending={ending} cntfrq={} entry_counter={}", vm.name, word(2), word(3));
    let entries = (word(1) as usize).min(MAX_ENTRIES);
    for k in 0..entries {
        let at = HEADER_WORDS + ENTRY_WORDS * k;
        hprintln!(
            "bench-metric: vm={} name={} n={} ticks={} baseline={} errors={}",
            vm.name,
            metric_name(word(at)),
            word(at + 1),
            word(at + 2),
            word(at + 3),
            word(at + 4)
        );
    }
}

fn make(name: &'static str, mode: u64, n: u64) -> Option<Vm> {
    scenarios::make(name, [mode, 0, n])
}

/// The scenario: `n` iterations of every loop.
pub fn run(t: &mut Totals, n: u64) {
    let Some(mut vm) = make("bench", MODE_BENCH, n) else { return };
    vm.run();
    report(&vm);
    t.guest_status = vm.status;
    finish(vm, t);

    let (Some(mut a), Some(mut b)) = (make("switch-a", MODE_BENCH_SWITCH, n), make("switch-b", MODE_BENCH_SWITCH, n))
    else {
        return;
    };
    // Every exit of either VM switches to the other (as in `two-vms`).
    run_alternately(&mut a, &mut b);
    report(&a);
    report(&b);
    finish(a, t);
    finish(b, t);
    hprintln!("bench: done");
}
