//! `acpi_tables`: the UEFI path's ACPI reader, memory-map reader and the
//! device tree it writes from them (efi/src), on any bytes.
//!
//! The input is physical memory from [`BASE`], the RSDP at its start.
//! Properties: [`acpi::parse`] never panics, never hangs and never reads
//! outside the memory it was given; facts it accepts have 1..=64 CPUs, a
//! GICv2 or GICv3 with a distributor and, for GICv3, redistributors; a tree
//! [`dt::from_acpi`] writes from them is one the device-tree reader
//! accepts, and when the platform parser accepts it too, it has the CPUs,
//! GIC distributor and command line of the facts. [`memmap::usable_ram`] on
//! the same bytes gives sorted, disjoint, non-empty, non-wrapping regions.

use spevisor_efi::acpi::{self, PhysMem};
use spevisor_efi::{dt, memmap};

/// Where the input sits in "physical memory".
pub const BASE: u64 = 0x7000_0000;

struct Blob<'a>(&'a [u8]);

impl PhysMem for Blob<'_> {
    fn bytes(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let off = usize::try_from(addr.checked_sub(BASE)?).ok()?;
        self.0.get(off..off.checked_add(len)?)
    }
}

/// RAM handed to the tree writer (fixed: the map is fuzzed on its own).
const RAM: &[(u64, u64)] = &[(0x4000_0000, 0x4000_0000)];
const BOOTARGS: &str = "spevisor.scenario=demo";

pub fn run(data: &[u8]) {
    if let Ok(f) = acpi::parse(&Blob(data), BASE) {
        assert!((1..=acpi::MAX_CPUS).contains(&f.cpu_count));
        assert!(f.gic.version == 2 || f.gic.version == 3);
        assert!(f.gic.version == 2 || f.gic.gicr_count > 0);
        let mut buf = vec![0u8; 16 * 1024];
        if let Ok(len) = dt::from_acpi(&f, RAM, BOOTARGS, &mut buf) {
            assert!(spevisor_dtb::Fdt::new(&buf[..len]).is_ok(), "the written tree is not a valid FDT");
            if let Ok(p) = spevisor_dtb::parse(&buf[..len]) {
                assert_eq!(p.cpus.mpidrs(), &f.cpus[..f.cpu_count]);
                assert_eq!(p.gic.distributor.base, f.gic.gicd);
                assert_eq!(p.bootargs, Some(BOOTARGS));
                assert_eq!(p.acpi_rsdp, Some(BASE));
            }
        }
    }
    let desc = memmap::DESC_MIN_SIZE + usize::from(data.first().copied().unwrap_or(0) % 32);
    if let Ok(ram) = memmap::usable_ram(data, desc) {
        let r = ram.as_slice();
        assert!(!r.is_empty() && r.len() <= memmap::MAX_REGIONS);
        for (i, &(base, size)) in r.iter().enumerate() {
            assert!(size > 0 && base.checked_add(size).is_some(), "region {base:#x}+{size:#x}");
            if i > 0 {
                assert!(r[i - 1].0 + r[i - 1].1 < base, "regions out of order, touching or overlapping");
            }
        }
    }
}
