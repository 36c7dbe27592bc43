//! Trees written by the test builder: SPE, HVC conduit, buses with
//! `ranges`, aliases, and the errors for missing pieces.

mod common;

use common::{board, ppi, FdtBuilder};
use spevisor_dtb::{parse, DtbError, GicVersion, IntId, PsciConduit, PsciVersion, Region, Trigger};

#[test]
fn spe_board_with_hvc_conduit() {
    let dtb = board(true, |_| {});
    let p = parse(&dtb).unwrap();
    assert_eq!(p.model, Some("Hand-made SPE board"));
    assert_eq!(p.compatible, Some("spevisor,test-board"));
    assert_eq!(
        p.ram(),
        &[Region { base: 0x8000_0000, size: 0x4000_0000 }, Region { base: 0x8_8000_0000, size: 0x8000_0000 },]
    );
    assert_eq!(p.ram_base(), 0x8000_0000);
    assert_eq!(p.ram_size(), 0xC000_0000);
    assert_eq!(p.largest_ram(), Region { base: 0x8_8000_0000, size: 0x8000_0000 });
    assert_eq!(p.reserved.as_slice(), &[Region { base: 0x4800_0000, size: 0x1000 }]);

    assert_eq!(p.spe.map(|i| i.intid), Some(IntId::ppi(5)));
    assert_eq!(p.spe.map(|i| i.intid), Some(IntId(21)));
    assert_eq!(p.pmu.map(|i| i.intid), Some(IntId(23)), "core-specific arm,*-pmu");
    let psci = p.psci.unwrap();
    assert_eq!(psci.conduit, PsciConduit::Hvc);
    assert_eq!(psci.version, PsciVersion::V0_2);

    // stdout-path "serial0:115200n8" -> alias -> /soc/serial@1000, translated by /soc ranges.
    let uart = p.console.unwrap();
    assert_eq!(uart.region, Region { base: 0x1c00_1000, size: 0x1000 });
    assert_eq!(uart.options, Some("115200n8"));

    assert_eq!(p.gic.version, GicVersion::V3);
    assert_eq!(
        p.gic.redistributors.as_slice(),
        &[Region { base: 0x2f10_0000, size: 0x8_0000 }, Region { base: 0x3f10_0000, size: 0x8_0000 },]
    );
    assert_eq!(p.gic.cpu_interface.map(|r| r.base), Some(0x2c00_0000));
    assert_eq!(p.gic.hyp_interface.map(|r| r.base), Some(0x2c01_0000));
    assert_eq!(p.gic.vcpu_interface.map(|r| r.base), Some(0x2c02_f000));
    assert_eq!(p.timer.virt.intid, IntId(27));
    assert_eq!(p.timer.virt.trigger, Trigger::LevelLow);
    assert_eq!(p.timer.hyp_virt, None);
    assert_eq!(p.timer.clock_frequency, Some(25_000_000));
    assert_eq!(p.cpus.mpidrs(), &[0, 1, 0x100, 0x101]);
    assert_eq!(p.bootargs, Some("spevisor.spe=off quiet"));
    assert_eq!(p.initrd, Some(Region { base: 0x4900_0000, size: 0x100_0000 }), "one- and two-cell forms");
}

#[test]
fn missing_memory_is_a_specific_error() {
    let dtb = board(false, |_| {});
    assert_eq!(parse(&dtb), Err(DtbError::NoMemory));
    assert_eq!(DtbError::NoMemory.to_string(), "DTB has no /memory node with a non-empty reg");
}

#[test]
fn disabled_and_empty_memory_do_not_count() {
    let dtb = board(false, |b| {
        b.begin("memory@0").prop_str("device_type", "memory").prop_str("status", "disabled").reg2(&[(0, 0x1000)]).end();
        b.begin("memory@1000").prop_str("device_type", "memory").reg2(&[(0x1000, 0)]).end();
    });
    assert_eq!(parse(&dtb), Err(DtbError::NoMemory));
}

#[test]
fn console_falls_back_to_first_pl011_and_handles_full_paths() {
    // No usable stdout-path target: the alias points nowhere.
    let dtb = {
        let d = board(true, |_| {});
        // Rewrite the alias target in place: same length, different name.
        let needle = b"/soc/serial@1000";
        let pos = d.windows(needle.len()).position(|w| w == needle).unwrap();
        let mut d = d;
        d[pos..pos + needle.len()].copy_from_slice(b"/soc/serial@2000");
        d
    };
    let p = parse(&dtb).unwrap();
    assert_eq!(p.console.unwrap().region.base, 0x1c00_1000);
    assert_eq!(p.console.unwrap().options, None, "fallback has no options");

    // A full path with options, to an ns16550 with reg-shift.
    let dtb = board(true, |b| {
        b.begin("chosen").end();
        b.begin("serial@3000000")
            .prop_str("compatible", "snps,dw-apb-uart")
            .reg2(&[(0x300_0000, 0x100)])
            .prop_u32("reg-shift", 2)
            .prop_u32("reg-io-width", 4)
            .end();
    });
    // The first /chosen (from `board`) wins lookups; patch its stdout-path.
    let needle = b"serial0:115200n8\0";
    let pos = dtb.windows(needle.len()).position(|w| w == needle).unwrap();
    let mut dtb = dtb;
    dtb[pos..pos + needle.len()].copy_from_slice(b"/serial@3000000\0\0");
    let p = parse(&dtb).unwrap();
    let uart = p.console.unwrap();
    assert_eq!(uart.kind, spevisor_dtb::UartKind::Ns16550);
    assert_eq!(uart.region, Region { base: 0x300_0000, size: 0x100 });
    assert_eq!((uart.reg_shift, uart.reg_io_width), (2, 4));
}

#[test]
fn stdout_path_to_a_mini_uart_falls_back_to_the_pl011() {
    // Raspberry Pi firmware may name the BCM2835 mini UART (no driver):
    // the first PL011 is the console then.
    let dtb = board(true, |b| {
        b.begin("serial@7e215040").prop_str("compatible", "brcm,bcm2835-aux-uart").reg2(&[(0x7e21_5040, 0x40)]).end();
    });
    let needle = b"serial0:115200n8\0";
    let pos = dtb.windows(needle.len()).position(|w| w == needle).unwrap();
    let mut dtb = dtb;
    dtb[pos..pos + needle.len()].copy_from_slice(b"/serial@7e215040\0");
    let p = parse(&dtb).unwrap();
    let uart = p.console.unwrap();
    assert_eq!(uart.kind, spevisor_dtb::UartKind::Pl011);
    assert_eq!(uart.region.base, 0x1c00_1000);
}

#[test]
fn gicv2_spi_and_interrupt_parent_checks() {
    let mut b = FdtBuilder::new();
    b.begin("").prop_u32("#address-cells", 1).prop_u32("#size-cells", 1).prop_u32("interrupt-parent", 7);
    b.begin("memory").prop_str("device_type", "memory").prop_cells("reg", &[0, 0x1000_0000]).end();
    b.begin("gic@1000")
        .prop_strs("compatible", &["arm,gic-400"])
        .prop_u32("#interrupt-cells", 3)
        .prop_cells("reg", &[0x1000, 0x1000, 0x2000, 0x2000])
        .prop_u32("phandle", 7)
        .end();
    b.begin("other-intc").prop_u32("phandle", 8).end();
    let mut timer = Vec::new();
    for n in [13, 14, 11, 10] {
        timer.extend(ppi(n, 0xf08));
    }
    b.begin("timer").prop_str("compatible", "arm,armv7-timer").prop_cells("interrupts", &timer).end();
    b.begin("pmu").prop_str("compatible", "arm,armv8-pmuv3").prop_cells("interrupts", &[0, 120, 4, 0, 121, 4]).end();
    b.begin("spe")
        .prop_str("compatible", "arm,statistical-profiling-extension-v1")
        .prop_u32("interrupt-parent", 8)
        .prop_cells("interrupts", &ppi(5, 4))
        .end();
    b.end();
    let dtb = b.finish();
    let err = parse(&dtb).unwrap_err();
    assert!(matches!(err, DtbError::InterruptParentNotGic { .. }), "{err}");
    assert_eq!(err.to_string(), "DTB node spe: interrupt parent is not the GIC");

    // Same tree without the foreign interrupt parent: SPIs and a v2 GIC.
    let dtb = {
        let mut d = dtb.clone();
        // Point the SPE node's interrupt-parent at the GIC (phandle 8 -> 7).
        let fdt = spevisor_dtb::Fdt::new(&dtb).unwrap();
        let value = fdt.find_node("/spe").unwrap().property("interrupt-parent").unwrap().value;
        let pos = value.as_ptr() as usize - dtb.as_ptr() as usize;
        d[pos + 3] = 7;
        d
    };
    let p = parse(&dtb).unwrap();
    assert_eq!(p.gic.version, GicVersion::V2);
    assert_eq!(p.gic.cpu_interface, Some(Region { base: 0x2000, size: 0x2000 }));
    assert_eq!(p.gic.hyp_interface, None);
    assert_eq!(p.gic.maintenance, None);
    assert_eq!(p.pmu.map(|i| i.intid), Some(IntId::spi(120)));
    assert_eq!(p.pmu.map(|i| i.intid), Some(IntId(152)));
    assert!(!IntId(152).is_ppi());
    assert_eq!(p.timer.secure_phys.intid, IntId(29));
    assert_eq!(p.timer.secure_phys.trigger, Trigger::LevelLow);
    assert_eq!(p.console, None);
    assert_eq!(p.psci, None);
    assert_eq!(p.cpu_count(), 0);
}

#[test]
fn missing_gic_and_timer_are_reported() {
    let mut b = FdtBuilder::new();
    b.begin("");
    b.begin("memory").prop_str("device_type", "memory").reg2(&[(0, 0x1000)]).end();
    b.end();
    assert_eq!(parse(&b.finish()), Err(DtbError::NoGic));

    let dtb = board(true, |b| {
        b.begin("timer-disabled").end();
    });
    let mut d = dtb;
    let needle = b"arm,armv8-timer";
    let pos = d.windows(needle.len()).position(|w| w == needle).unwrap();
    d[pos..pos + needle.len()].copy_from_slice(b"arm,armv9-timer");
    assert_eq!(parse(&d), Err(DtbError::NoTimer));
}

#[test]
fn bad_properties_name_node_and_property() {
    let dtb = board(true, |b| {
        b.begin("psci2").prop_str("compatible", "arm,psci-1.0").prop_str("method", "svc").end();
    });
    // The board's own psci node comes first; drop its compatible match.
    let mut d = dtb;
    let needle = b"arm,psci-0.2\0arm,psci\0";
    let pos = d.windows(needle.len()).position(|w| w == needle).unwrap();
    d[pos..pos + 4].copy_from_slice(b"xxxx");
    d[pos + 13..pos + 17].copy_from_slice(b"xxxx");
    let err = parse(&d).unwrap_err();
    assert_eq!(err.to_string(), "DTB node psci2: bad `method`: neither \"smc\" nor \"hvc\"");

    // A memory reg whose length is not a whole number of entries.
    let dtb = board(false, |b| {
        b.begin("memory@0").prop_str("device_type", "memory").prop_cells("reg", &[0, 0, 1]).end();
    });
    let err = parse(&dtb).unwrap_err();
    assert_eq!(err.to_string(), "DTB node memory@0: bad `reg`: length is not a multiple of the entry size");

    // A region that wraps the address space.
    let dtb = board(false, |b| {
        b.begin("memory@0").prop_str("device_type", "memory").reg2(&[(u64::MAX - 1, 4)]).end();
    });
    assert!(matches!(parse(&dtb), Err(DtbError::BadProperty { property: "reg", .. })));
}

#[test]
fn untranslatable_bus_address() {
    let dtb = board(true, |b| {
        b.begin("bus")
            .prop_u32("#address-cells", 1)
            .prop_u32("#size-cells", 1)
            .prop_cells("ranges", &[0, 0, 0x5000_0000, 0x1000]);
        b.begin("serial@2000").prop_str("compatible", "arm,pl011").prop_cells("reg", &[0x2000, 0x100]).end();
        b.end();
    });
    // Make the board's own UART something we cannot drive and drop the
    // alias so that the bus UART is the first PL011.
    let mut d = dtb;
    let needle = b"arm,pl011\0arm,primecell";
    let pos = d.windows(needle.len()).position(|w| w == needle).unwrap();
    d[pos..pos + 9].copy_from_slice(b"arm,xxxxx");
    let err = parse(&d).unwrap_err();
    assert_eq!(err, DtbError::Untranslatable { node: spevisor_dtb::NodeName::new(b"serial@2000"), address: 0x2000 });
    assert!(err.to_string().contains("0x2000"));
}

#[test]
fn too_many_memory_regions() {
    let entries: Vec<(u64, u64)> = (0..17u64).map(|i| (i << 32, 0x1000)).collect();
    let dtb = board(false, |b| {
        b.begin("memory@0").prop_str("device_type", "memory").reg2(&entries).end();
    });
    assert_eq!(
        parse(&dtb),
        Err(DtbError::TooMany { what: "memory regions", capacity: spevisor_dtb::MAX_MEMORY_REGIONS })
    );
}

#[test]
fn reserved_memory_nodes_are_reserved() {
    let dtb = board(true, |b| {
        b.begin("reserved-memory").prop_u32("#address-cells", 2).prop_u32("#size-cells", 2).prop("ranges", &[]);
        b.begin("optee@fe000000").reg2(&[(0xfe00_0000, 0x20_0000)]).prop("no-map", &[]).end();
        b.begin("pool").prop_cells("size", &[0, 0x10_0000]).end(); // dynamic: no reg
        b.begin("off@90000000").reg2(&[(0x9000_0000, 0x1000)]).prop_str("status", "disabled").end();
        b.end();
    });
    let p = parse(&dtb).unwrap();
    assert_eq!(
        p.reserved.as_slice(),
        &[Region { base: 0x4800_0000, size: 0x1000 }, Region { base: 0xfe00_0000, size: 0x20_0000 }]
    );
}
