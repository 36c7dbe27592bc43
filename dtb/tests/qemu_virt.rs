//! Exact values from the DTBs QEMU 10 `virt` generates
//! (regenerate with `scripts/dump-dtbs.sh`).

mod common;

use spevisor_dtb::{parse, GicVersion, IntId, PsciConduit, PsciVersion, Region, Trigger, UartKind};

const RAM_BASE: u64 = 0x4000_0000;
const MIB: u64 = 1 << 20;

/// (gic version, cpus, RAM bytes) encoded in a fixture's file name.
fn expected(name: &str) -> (GicVersion, usize, u64) {
    let gic = if name.contains("gicv3") { GicVersion::V3 } else { GicVersion::V2 };
    let cpus = if name.contains("smp4") { 4 } else { 1 };
    let ram = if name.contains("-2G") { 2048 * MIB } else { 256 * MIB };
    (gic, cpus, ram)
}

#[test]
fn every_fixture_parses_to_the_virt_memory_map() {
    for (name, dtb) in common::fixtures() {
        let p = parse(&dtb).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (gic, cpus, ram) = expected(&name);

        assert_eq!(p.model, Some("linux,dummy-virt"), "{name}");
        assert_eq!(p.ram(), &[Region { base: RAM_BASE, size: ram }], "{name}");
        assert_eq!(p.ram_base(), RAM_BASE, "{name}");
        assert_eq!(p.ram_size(), ram, "{name}");
        assert!(p.ram_contains(RAM_BASE + ram - 8, 8), "{name}");
        assert!(!p.ram_contains(RAM_BASE + ram - 4, 8), "{name}");
        assert!(p.reserved.as_slice().is_empty(), "{name}");

        let uart = p.console.expect("console");
        assert_eq!(uart.kind, UartKind::Pl011, "{name}");
        assert_eq!(uart.region, Region { base: 0x0900_0000, size: 0x1000 }, "{name}");
        assert_eq!(uart.options, None, "{name}");

        assert_eq!(p.gic.version, gic, "{name}");
        assert_eq!(p.gic.distributor, Region { base: 0x0800_0000, size: 0x1_0000 }, "{name}");
        match gic {
            GicVersion::V3 => {
                assert_eq!(p.gic.redistributors.as_slice(), &[Region { base: 0x080a_0000, size: 0xf6_0000 }], "{name}");
                assert_eq!(p.gic.cpu_interface, None, "{name}");
            }
            GicVersion::V2 => {
                assert!(p.gic.redistributors.as_slice().is_empty(), "{name}");
                let frame = |base| Some(Region { base, size: 0x1_0000 });
                assert_eq!(p.gic.cpu_interface, frame(0x0801_0000), "{name}");
                assert_eq!(p.gic.hyp_interface, frame(0x0803_0000), "{name}");
                assert_eq!(p.gic.vcpu_interface, frame(0x0804_0000), "{name}");
            }
        }
        assert_eq!(p.gic.maintenance.map(|i| i.intid), Some(IntId(25)), "{name}");

        let t = p.timer;
        let ids = [t.secure_phys, t.nonsecure_phys, t.virt, t.hyp_phys].map(|i| i.intid);
        assert_eq!(ids, [IntId(29), IntId(30), IntId(27), IntId(26)], "{name}");
        // QEMU lists the EL2 virtual timer when the CPU has FEAT_VHE (-cpu max).
        assert_eq!(t.hyp_virt.map(|i| i.intid), Some(IntId(28)), "{name}");
        assert_eq!(t.virt.trigger, Trigger::LevelHigh, "{name}");
        assert!(t.virt.intid.is_ppi(), "{name}");

        assert_eq!(p.pmu.map(|i| i.intid), Some(IntId(23)), "{name}");
        assert_eq!(p.spe, None, "{name}");
        let psci = p.psci.expect("psci");
        assert_eq!(psci.conduit, PsciConduit::Smc, "{name}");
        assert_eq!(psci.version, PsciVersion::V1_0, "{name}");

        assert_eq!(p.cpu_count(), cpus, "{name}");
        let mpidrs: Vec<u64> = (0..cpus as u64).collect();
        assert_eq!(p.cpus.mpidrs(), mpidrs.as_slice(), "{name}");
    }
}

#[test]
fn low_level_reader_walks_the_tree() {
    let (_, dtb) = &common::fixtures()[0];
    let fdt = spevisor_dtb::Fdt::new(dtb).unwrap();
    assert_eq!(fdt.header().version, 17);
    assert_eq!(fdt.root().name(), b"");
    let uart = fdt.find_node("/pl011@9000000").expect("by full name");
    assert_eq!(fdt.find_node("/pl011").map(|n| n.offset()), Some(uart.offset()));
    assert!(fdt.find_node("/no-such-node").is_none());
    assert_eq!(fdt.parent(&uart).map(|n| n.offset()), Some(fdt.root().offset()));
    assert_eq!(fdt.ancestry(&uart).len(), 2);
    let compat: Vec<&[u8]> = uart.property("compatible").unwrap().strings().collect();
    assert_eq!(compat, [b"arm,pl011" as &[u8], b"arm,primecell"]);
    let phandle = fdt.root().property("interrupt-parent").unwrap().as_u32().unwrap();
    let gic = fdt.node_by_phandle(phandle).unwrap();
    assert!(gic.base_name() == b"intc");
    assert!(fdt.nodes().count() > 30);
}

#[test]
fn from_raw_reads_totalsize() {
    let (_, dtb) = &common::fixtures()[0];
    let leaked: &'static [u8] = Box::leak(dtb.clone().into_boxed_slice());
    let blob = unsafe { spevisor_dtb::from_raw(leaked.as_ptr()) }.unwrap();
    assert_eq!(blob.len(), dtb.len());
    assert!(parse(blob).is_ok());

    let mut bad = dtb.clone();
    bad[0] = 0;
    let bad: &'static [u8] = Box::leak(bad.into_boxed_slice());
    assert!(matches!(
        unsafe { spevisor_dtb::from_raw(bad.as_ptr()) },
        Err(spevisor_dtb::DtbError::BadMagic { found: 0x000d_feed })
    ));
    let mut huge = dtb.clone();
    huge[4..8].copy_from_slice(&0x1000_0000u32.to_be_bytes());
    let huge: &'static [u8] = Box::leak(huge.into_boxed_slice());
    assert!(matches!(
        unsafe { spevisor_dtb::from_raw(huge.as_ptr()) },
        Err(spevisor_dtb::DtbError::BadTotalSize { totalsize: 0x1000_0000 })
    ));
    assert_eq!(unsafe { spevisor_dtb::from_raw(core::ptr::null()) }, Err(spevisor_dtb::DtbError::NullPointer));
}

#[test]
fn early_totalsize_needs_alignment_and_magic() {
    let (_, dtb) = &common::fixtures()[0];
    // u64 storage gives the 8-byte alignment the boot protocol promises.
    let mut words = vec![0u64; dtb.len().div_ceil(8) + 1];
    let bytes: &mut [u8] = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 8) };
    bytes[..dtb.len()].copy_from_slice(dtb);
    let addr = bytes.as_ptr() as usize;
    assert_eq!(unsafe { spevisor_dtb::early_totalsize(addr) }, Some(dtb.len()));
    assert_eq!(unsafe { spevisor_dtb::early_totalsize(addr + 4) }, None, "misaligned");
    assert_eq!(unsafe { spevisor_dtb::early_totalsize(0) }, None);
    bytes[0] = 0;
    assert_eq!(unsafe { spevisor_dtb::early_totalsize(addr) }, None, "bad magic");
}
