//! The hostile-guest suite (`spevisor.scenario=hostile-suite`): each case
//! of guest mode 50 (guest/src/hostile_suite.rs) runs in a VM of its own
//! beside a well-behaved VM, on one CPU. A case is contained when its VM
//! meets the fate [`CASES`] documents, the other VM finishes its work
//! (status 0), and EL2's and the host's free pages come back exactly. The
//! host's SPE profile of the whole suite is checked by the summary line.

use crate::hprintln;
use crate::hyp;
use crate::scenarios::{self, mode, Totals};
use crate::vmm::{host_free_pages, run_all, Ending};
use spevisor_abi::InfoItem;

/// What must become of a hostile VM.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// It runs its case to the end and reports status 0: the machine
    /// behaved (an abort or UNDEF where due, writes ignored, answers).
    Passes,
    /// The hypervisor stops it (nothing the guest could be given).
    Stopped,
    /// The host stops it: nothing will ever wake it.
    Killed,
    /// The host stops it: its exit budget is spent (it never gives the
    /// CPU back by itself, so only preemption ends its runs).
    OutOfBudget,
}

impl Fate {
    fn name(self) -> &'static str {
        match self {
            Fate::Passes => "passes",
            Fate::Stopped => "stopped",
            Fate::Killed => "killed",
            Fate::OutOfBudget => "out-of-budget",
        }
    }
}

/// The cases of guest mode 50, in its order, with the fate each must meet.
pub const CASES: &[(&str, Fate)] = &[
    ("load-outside-ipa-space", Fate::Passes),
    ("store-outside-ipa-space", Fate::Passes),
    ("load-at-hyp-image-pa", Fate::Passes),
    ("store-at-hyp-pool-pa", Fate::Passes),
    ("load-at-host-pa", Fate::Passes),
    ("execute-at-host-pa", Fate::Passes),
    ("execute-mmio", Fate::Passes),
    ("spe-registers", Fate::Passes),
    ("trace-registers", Fate::Passes),
    ("amu-registers", Fate::Passes),
    ("ras-registers", Fate::Passes),
    ("set-way-tlbi-ic-storm", Fate::Passes),
    ("every-psci-function-by-hvc-and-smc", Fate::Passes),
    ("unknown-hypercalls-garbage-arguments", Fate::Passes),
    ("mmio-every-size", Fate::Passes),
    ("mmio-unaligned", Fate::Passes),
    ("mmio-load-pair", Fate::Stopped),
    ("mmio-exclusive", Fate::Stopped),
    ("mmio-atomic", Fate::Stopped),
    ("wfi-forever-nothing-pending", Fate::Killed),
    ("spin-with-interrupts-masked", Fate::OutOfBudget),
    ("sgi-storm-to-itself", Fate::Passes),
    ("timer-always-due-never-acknowledged", Fate::Passes),
    ("cpu-on-invalid-targets", Fate::Passes),
    ("gic-read-only-registers", Fate::Passes),
    ("exception-vector-loop", Fate::Stopped),
    ("debug-registers-all-ones", Fate::Passes),
    ("pmu-counting-everything-everywhere", Fate::Passes),
    ("smc-to-services-nobody-offers", Fate::Passes),
    ("gic-reserved-offsets-every-size", Fate::Passes),
    ("cache-maintenance-outside-ram", Fate::Passes),
    // AArch32 EL0 (guest/src/hostile32.rs): skipped, and said so, where the
    // CPU has none.
    ("a32-el0-pmu-cp15-emulated-or-undef", Fate::Passes),
    ("a32-el0-trapped-conditions-fail-skipped", Fate::Passes),
    ("t32-el0-trap-in-it-block-advances-it", Fate::Passes),
    ("t32-el0-16bit-mmio-load-pc-by-il", Fate::Passes),
    ("a32-el0-cp14-debug-ldc-stc", Fate::Passes),
    ("a32-t32-el0-udf-bkpt-hvc-smc-to-own-el1", Fate::Passes),
    ("a32-el0-alignment-permission-to-own-el1", Fate::Passes),
    ("a32-el0-outside-ipa-external-abort", Fate::Passes),
];

/// The status an AArch32 case reports on a CPU without AArch32 EL0
/// (`SKIPPED_NO_AARCH32_EL0` in guest/src/hostile32.rs).
pub const SKIPPED_NO_AARCH32_EL0: u64 = 0xa32_5c1d;

/// Exits a hostile VM may take (the budget is checked once a slice).
const HOSTILE_EXIT_BUDGET: u64 = 200_000;
/// The budget of the case that only spins: every exit is a slice's end.
const SPIN_EXIT_BUDGET: u64 = 3;
/// HOST_PINGs of the well-behaved VM beside each case.
const NEIGHBOUR_PINGS: u64 = 200;

fn fate_of(ending: Ending, status: Option<u64>) -> Option<Fate> {
    match ending {
        Ending::Off if status == Some(0) => Some(Fate::Passes),
        Ending::Stopped(_) => Some(Fate::Stopped),
        Ending::Killed => Some(Fate::Killed),
        Ending::OutOfBudget => Some(Fate::OutOfBudget),
        _ => None,
    }
}

/// Runs the suite; prints a `hostile-case:` line per case and the
/// `hostile-suite:` totals.
pub fn run(t: &mut Totals) {
    let free = || (hyp::info(InfoItem::HypFreePages).unwrap_or(0), host_free_pages());
    let before = free();
    let (mut contained, mut neighbours_ok, mut leaks, mut skips) = (0, 0, 0, 0);
    for (case, &(name, want)) in CASES.iter().enumerate() {
        let (Some(mut bad), Some(mut good)) = (
            scenarios::make("hostile", [crate::hostile_suite::MODE, 0, case as u64]),
            scenarios::make("neighbour", [mode::PING_LOOP, 0, NEIGHBOUR_PINGS]),
        ) else {
            return;
        };
        bad.max_exits = if want == Fate::OutOfBudget { SPIN_EXIT_BUDGET } else { HOSTILE_EXIT_BUDGET };
        run_all(&mut [&mut bad, &mut good]);
        let skipped = bad.ending == Some(Ending::Off) && bad.status == Some(SKIPPED_NO_AARCH32_EL0);
        let got = if skipped { Some(want) } else { bad.ending.and_then(|e| fate_of(e, bad.status)) };
        let neighbour = good.ending == Some(Ending::Off) && good.status == Some(0);
        let (status, ending) = (bad.status, bad.ending);
        scenarios::finish(bad, t);
        scenarios::finish(good, t);
        let same = free() == before;
        let ok = got == Some(want) && neighbour && same;
        contained += u64::from(ok);
        skips += u64::from(skipped);
        neighbours_ok += u64::from(neighbour);
        leaks += u64::from(!same);
        hprintln!(
            "hostile-case: n={case} name={name} want={} got={} status={} neighbour={} pages_back={same} contained={}",
            want.name(),
            if skipped { "skipped: no AArch32 EL0" } else { got.map_or(scenarios::ending_name(ending), Fate::name) },
            status.map_or(-1, |s| s as i64),
            if neighbour { "ok" } else { "HARMED" },
            if ok { "yes" } else { "NO" }
        );
    }
    let after = free();
    hprintln!(
        "hostile-suite: cases={} contained={contained} skipped={skips} neighbours_ok={neighbours_ok} leaks={leaks} hyp_free_before={} hyp_free_after={} host_free_before={} host_free_after={}",
        CASES.len(),
        before.0,
        after.0,
        before.1,
        after.1
    );
}

/// Guest mode of the suite's cases (guest/src/hostile_suite.rs).
pub const MODE: u64 = 50;
