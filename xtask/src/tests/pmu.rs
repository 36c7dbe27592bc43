//! QEMU tests of the guests' PMU (hyp/src/pmu.rs, guest/src/pmu.rs): the
//! counts, the overflow interrupt, two VMs' counters kept apart, and the
//! host's own SPE profile untouched by any of it.

use super::*;

/// Under `-icount shift=0` QEMU counts instructions (event 0x08), and the
/// guest's cycle counter follows them.
fn icount(mut m: Machine) -> Machine {
    m.extra = vec!["-icount".into(), "shift=0,sleep=off".into()];
    m
}

/// Iterations of each loop in pmu-count (the guest's default).
const ITERATIONS: i64 = 1000;
/// Instructions per iteration: the compute loop, the `hvc` loops.
const COMPUTE_INSNS: i64 = 3;
const HVC_INSNS: i64 = 4;
/// The guest's own slack at the edges of a loop (guest/src/pmu.rs EDGE_SLACK).
const EDGE_SLACK: i64 = 8;

/// The guest's `report tag=T value=V` line's value.
fn report(output: &str, vm: &str, tag: u64) -> Result<i64, String> {
    let prefix = format!("[{vm}] report tag={tag} value=0x");
    let line = output.lines().find(|l| l.starts_with(&prefix)).ok_or_else(|| format!("no {prefix:?} line"))?;
    i64::from_str_radix(&line[prefix.len()..], 16).map_err(|e| format!("{line}: {e}"))
}

fn within(what: &str, got: i64, want: i64) -> Result<(), String> {
    if (want..=want + EDGE_SLACK).contains(&got) {
        Ok(())
    } else {
        Err(format!("{what}: {got} instructions counted, expected the guest's own {want} (+{EDGE_SLACK})"))
    }
}

/// pmu-count: status 0, and the counts it reported are the guest's own
/// instructions (none of EL2's for the HYP_PINGs, none of the host's for
/// the HOST_PINGs); the host's profile is clean.
pub fn check_count(b: &Boot) -> Result<(), String> {
    expect_exit(b, status::OK)?;
    check_guest_line(b, "pmu-count", "off", 0)?;
    within("compute loop", report(&b.output, "pmu-count", 30)?, ITERATIONS * COMPUTE_INSNS)?;
    within("HYP_PING loop", report(&b.output, "pmu-count", 31)?, ITERATIONS * HVC_INSNS)?;
    within("HOST_PING loop", report(&b.output, "pmu-count", 32)?, ITERATIONS * HVC_INSNS)?;
    if report(&b.output, "pmu-count", 33)? <= 0 {
        return Err("the cycle counter did not count".into());
    }
    check_spe_clean(b, 1).map(|_| ())
}

/// pmu-overflow: status 0 (two overflows, two interrupts, nothing spurious),
/// the host's profile clean.
pub fn check_overflow(b: &Boot) -> Result<(), String> {
    expect_exit(b, status::OK)?;
    check_guest_line(b, "pmu-overflow", "off", 0)?;
    if !b.output.lines().any(|l| l == "[pmu-overflow] guest: pmu-overflow: interrupts=2 overflows=2 status=0x0") {
        return Err("the guest did not take exactly its two overflow interrupts".into());
    }
    check_spe_clean(b, 1).map(|_| ())
}

/// pmu-vms: both VMs end with status 0 after alternating; the host's
/// profile clean.
pub fn check_vms(b: &Boot) -> Result<(), String> {
    expect_exit(b, status::OK)?;
    let f = fields(&b.output, "pmu-vms:")?;
    expect_num(&f, "a_status", 0)?;
    expect_num(&f, "b_status", 0)?;
    expect_eq("a_ending", field(&f, "a_ending")?, "off")?;
    expect_eq("b_ending", field(&f, "b_ending")?, "off")?;
    if num(&f, "alternations")? < 100 {
        return Err("the two VMs did not alternate through their loops".into());
    }
    check_spe_clean(b, 1).map(|_| ())
}

/// The QEMU tests of this module.
pub fn qemu_tests() -> Vec<(&'static str, Check)> {
    vec![
        ("guest_pmu_counts_only_its_own_instructions", |c| {
            let b = boot(c, &c.image, icount(scenario("pmu-count")))?;
            with_output(&b, check_count(&b))
        }),
        ("guest_pmu_overflow_raises_ppi_23", |c| {
            let b = boot(c, &c.image, scenario("pmu-overflow"))?;
            with_output(&b, check_overflow(&b))
        }),
        ("two_vms_pmu_counters_stay_their_own", |c| {
            let b = boot(c, &c.image, icount(scenario("pmu-vms")))?;
            with_output(&b, check_vms(&b))
        }),
    ]
}

#[cfg(test)]
mod unit {
    use super::*;

    const SPE: &str = "spe: backend=model samples=5 records=5 produced=5 bytes=320 buffer_full_irqs=0 faults=0 misdirected=0 lost=0 decode_errors=0 regime_checks=7301 misdirected_regimes=0\n\
        spe: by_el el0=0 el1=5 el2=0 guest_pc=0 buffer_pa=0x41450000\n\
        trbe: backend=model packets=3 collected=48 written=48 bad_packets=0 pending=0 faults=0 misdirected=0 lost=0 regime_checks=9 misdirected_regimes=0\n\
        spevisor: status=ok trbe_misdirected=0 trbe_lost=0\n";

    fn b(output: &str) -> Boot {
        Boot { exit: Some(0), output: output.into(), timed_out: false }
    }

    fn count_output(hyp: u64) -> String {
        format!(
            "[pmu-count] report tag=30 value=0xbba\n[pmu-count] report tag=33 value=0xbba\n\
             [pmu-count] report tag=31 value={hyp:#x}\n[pmu-count] report tag=32 value=0xfa2\n\
             pmu-count: ending=off status=0 exits=10 cntfrq=62500000\n{SPE}"
        )
    }

    #[test]
    fn count_check_rejects_el2_instructions_and_a_dirty_profile() {
        check_count(&b(&count_output(0xfa2))).unwrap();
        // EL2's HYP_PING handling counted (about 150 instructions each).
        assert!(check_count(&b(&count_output(0xfa2 + 150 * 1000))).is_err());
        assert!(check_count(&b(&count_output(0xfa2).replace("guest_pc=0", "guest_pc=3"))).is_err());
        assert!(check_count(&b(&count_output(0xfa2).replace("status=0 exits", "status=32 exits"))).is_err());
        assert!(check_count(&b(&count_output(0xfa2).replace("tag=33 value=0xbba", "tag=33 value=0x0"))).is_err());
    }

    #[test]
    fn overflow_check_needs_both_interrupts() {
        let good = format!(
            "[pmu-overflow] guest: pmu-overflow: interrupts=2 overflows=2 status=0x0\n\
             pmu-overflow: ending=off status=0 exits=100 cntfrq=62500000\n{SPE}"
        );
        check_overflow(&b(&good)).unwrap();
        assert!(check_overflow(&b(&good.replace("interrupts=2", "interrupts=3"))).is_err());
        assert!(check_overflow(&b(&good.replace("misdirected=0 lost", "misdirected=1 lost"))).is_err());
    }

    #[test]
    fn vms_check_needs_both_statuses_and_alternation() {
        let good = format!("pmu-vms: a_status=0 b_status=0 a_ending=off b_ending=off alternations=402\n{SPE}");
        check_vms(&b(&good)).unwrap();
        assert!(check_vms(&b(&good.replace("b_status=0", "b_status=4"))).is_err());
        assert!(check_vms(&b(&good.replace("alternations=402", "alternations=3"))).is_err());
    }
}
