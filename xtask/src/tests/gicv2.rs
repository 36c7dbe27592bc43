//! QEMU tests on a GICv2 host (`-M virt,gic-version=2`): the host's GICv2
//! driver (host/src/gic_v2.rs), EL2's GICH switch (hyp/src/arch/gich.rs),
//! the guests' GICv2 distributor (host/src/vgic/v2.rs) with the hardware's
//! GICV as their CPU interface, the test guest's GICv2 path
//! (guest/src/gic_v2.rs) and Linux's GICv2 driver. The GICv3 twins of the
//! tiny-guest tests are in tests.rs.

use super::*;

/// `m` on a GICv2 machine.
fn gicv2(mut m: Machine) -> Machine {
    m.gic_version = 2;
    m
}

/// `m` under `-icount` (timeouts measured in guest time).
fn icount(mut m: Machine) -> Machine {
    m.extra = vec!["-icount".into(), "shift=0,sleep=off".into()];
    m
}

/// The host reported a GICv2 and the guest ran on it.
fn check_v2_host(b: &Boot) -> Result<(), String> {
    let s = summary(&b.output).ok_or("no summary line")?;
    expect_eq("gic", field(&s, "gic")?, "v2")
}

pub(super) fn qemu_tests() -> Vec<(&'static str, Check)> {
    vec![
        ("gicv2_virtual_timer_interrupt_fires_on_time", |c| {
            let b = boot(c, &c.image, gicv2(icount(scenario("vtimer"))))?;
            with_output(&b, check_v2_host(&b))?;
            with_output(&b, check_guest_line(&b, "vtimer", "off", 0).and_then(|_| check_spe_clean(&b, 1).map(|_| ())))
        }),
        ("gicv2_physical_timer_is_emulated_and_fires_on_time", |c| {
            let mut m = gicv2(icount(scenario("ptimer")));
            m.append.push_str(" spevisor.iterations=50");
            let b = boot(c, &c.image, m)?;
            with_output(&b, check_v2_host(&b))?;
            with_output(&b, check_guest_line(&b, "ptimer", "off", 0).and_then(|_| check_spe_clean(&b, 1).map(|_| ())))
        }),
        ("gicv2_vgic_enable_priority_states_eoi_and_more_than_list_registers", |c| {
            let b = boot(c, &c.image, gicv2(scenario("vgic")))?;
            with_output(&b, check_v2_host(&b))?;
            with_output(&b, check_guest_line(&b, "vgic", "off", 0))
        }),
        ("gicv2_vgic_nested_deeper_than_list_registers_ends_by_eoicount", |c| {
            // Two VMs alternating at every exit: each vcpu's GICH state
            // (list registers, active priorities, VMCR) switched back
            // exactly for the next.
            let b = boot(c, &c.image, gicv2(scenario("vgic-nest")))?;
            with_output(&b, check_v2_host(&b))?;
            with_output(&b, check_vgic_nest(&b))
        }),
        ("gicv2_smp_cpu_on_psci_errors_and_sgi_ping_pong", |c| {
            let b = boot(c, &c.image, gicv2(scenario("smp")))?;
            with_output(&b, check_v2_host(&b))?;
            with_output(&b, check_guest_line(&b, "smp", "off", 0).and_then(|_| check_spe_clean(&b, 1).map(|_| ())))
        }),
        ("linux_guest_runs_init_gicv2_1_vcpu", |c| linux_init_test_on(c, 1, 2)),
        ("linux_guest_runs_init_gicv2_2_vcpus", |c| linux_init_test_on(c, 2, 2)),
    ]
}
