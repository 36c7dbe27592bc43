//! RAM from the UEFI memory map (UEFI 2.10, 7.2 `GetMemoryMap()`).
//!
//! After `ExitBootServices()` the regions the firmware lent to boot
//! services and to loaders (this image, its copy, the device tree it
//! writes) are free RAM again, as is conventional memory. Runtime services
//! code and data, ACPI tables and NVS, reserved, unusable, MMIO and
//! persistent memory are not RAM spevisor may hand out: they are left out of
//! the `/memory` node altogether.

/// `EFI_MEMORY_DESCRIPTOR`: Type (u32), pad, PhysicalStart, VirtualStart,
/// NumberOfPages, Attribute; the firmware's DescriptorSize may be larger.
const DESC_TYPE: usize = 0;
const DESC_PHYS_START: usize = 8;
const DESC_PAGES: usize = 24;
/// The smallest descriptor (UEFI 2.0).
pub const DESC_MIN_SIZE: usize = 40;
/// UEFI pages are 4 KiB whatever the CPU's granule.
pub const EFI_PAGE_SIZE: u64 = 4096;

/// Memory types usable as RAM once boot services are gone.
const EFI_LOADER_CODE: u32 = 1;
const EFI_LOADER_DATA: u32 = 2;
const EFI_BOOT_SERVICES_CODE: u32 = 3;
const EFI_BOOT_SERVICES_DATA: u32 = 4;
const EFI_CONVENTIONAL_MEMORY: u32 = 7;

/// Most RAM regions passed on (what the device-tree parser keeps).
pub const MAX_REGIONS: usize = spevisor_dtb::MAX_MEMORY_REGIONS;

/// Whether memory of this type is RAM after `ExitBootServices()`.
pub fn usable(kind: u32) -> bool {
    matches!(
        kind,
        EFI_LOADER_CODE | EFI_LOADER_DATA | EFI_BOOT_SERVICES_CODE | EFI_BOOT_SERVICES_DATA | EFI_CONVENTIONAL_MEMORY
    )
}

/// Why the map could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// DescriptorSize smaller than a descriptor.
    DescriptorSize(usize),
    /// A region wraps around the address space.
    Wraps { start: u64 },
    /// No usable RAM at all.
    NoRam,
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MapError::DescriptorSize(s) => write!(f, "UEFI memory map: descriptor size {s} < {DESC_MIN_SIZE}"),
            MapError::Wraps { start } => write!(f, "UEFI memory map: region at {start:#x} wraps around"),
            MapError::NoRam => f.write_str("UEFI memory map: no usable RAM"),
        }
    }
}

/// Usable RAM: the map's usable descriptors, sorted and merged where they
/// touch. Beyond [`MAX_REGIONS`] the smallest regions are dropped
/// (`dropped` counts them) rather than failing the boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ram {
    pub regions: [(u64, u64); MAX_REGIONS],
    pub len: usize,
    pub dropped: usize,
}

impl Ram {
    /// (base, size) of each region, by address.
    pub fn as_slice(&self) -> &[(u64, u64)] {
        &self.regions[..self.len]
    }
}

/// Reads the map (`map`: the bytes GetMemoryMap wrote, `desc_size`: its
/// DescriptorSize).
pub fn usable_ram(map: &[u8], desc_size: usize) -> Result<Ram, MapError> {
    if desc_size < DESC_MIN_SIZE {
        return Err(MapError::DescriptorSize(desc_size));
    }
    // Merged regions as (start, end), kept sorted; one more slot than kept
    // so that an insertion can happen before the smallest is dropped.
    let mut list = [(0u64, 0u64); MAX_REGIONS + 1];
    let mut len = 0;
    let mut dropped = 0;
    for d in map.chunks_exact(desc_size) {
        let field = |o: usize| u64::from_le_bytes(d[o..o + 8].try_into().unwrap_or([0; 8]));
        let kind = u32::from_le_bytes(d[DESC_TYPE..DESC_TYPE + 4].try_into().unwrap_or([0; 4]));
        let (start, pages) = (field(DESC_PHYS_START), field(DESC_PAGES));
        if !usable(kind) || pages == 0 {
            continue;
        }
        let end =
            pages.checked_mul(EFI_PAGE_SIZE).and_then(|s| start.checked_add(s)).ok_or(MapError::Wraps { start })?;
        // Insert sorted, then merge with neighbours that touch or overlap.
        let at = list[..len].iter().position(|r| r.0 > start).unwrap_or(len);
        list.copy_within(at..len, at + 1);
        list[at] = (start, end);
        len += 1;
        let mut i = 0;
        while i + 1 < len {
            if list[i].1 >= list[i + 1].0 {
                list[i].1 = list[i].1.max(list[i + 1].1);
                list.copy_within(i + 2..len, i + 1);
                len -= 1;
            } else {
                i += 1;
            }
        }
        if len > MAX_REGIONS {
            let smallest = (0..len).min_by_key(|&i| list[i].1 - list[i].0).unwrap_or(0);
            list.copy_within(smallest + 1..len, smallest);
            len -= 1;
            dropped += 1;
        }
    }
    if len == 0 {
        return Err(MapError::NoRam);
    }
    let mut regions = [(0, 0); MAX_REGIONS];
    for (out, r) in regions.iter_mut().zip(&list[..len]) {
        *out = (r.0, r.1 - r.0);
    }
    Ok(Ram { regions, len, dropped })
}

/// `EfiMemoryMappedIO` and `EfiMemoryMappedIOPortSpace`: device memory.
const EFI_MMIO: u32 = 11;
const EFI_MMIO_PORT_SPACE: u32 = 12;

/// Whether every byte of `[addr, addr + len)` is memory the map describes
/// (of any type but MMIO), possibly over adjacent descriptors: what the
/// EFI stub may read firmware tables from. An address in a hole or in
/// device memory would fault or hang under UEFI's identity map instead of
/// giving an error.
pub fn covered(map: &[u8], desc_size: usize, addr: u64, len: u64) -> bool {
    if desc_size < DESC_MIN_SIZE {
        return false;
    }
    let Some(end) = addr.checked_add(len) else { return false };
    let mut at = addr;
    // Each pass moves `at` to the end of a descriptor holding it; at most
    // one pass per descriptor.
    for _ in 0..=map.len() / desc_size {
        if at >= end {
            return true;
        }
        let holder = map.chunks_exact(desc_size).find_map(|d| {
            let kind = u32::from_le_bytes(d[DESC_TYPE..DESC_TYPE + 4].try_into().ok()?);
            let start = u64::from_le_bytes(d[DESC_PHYS_START..DESC_PHYS_START + 8].try_into().ok()?);
            let pages = u64::from_le_bytes(d[DESC_PAGES..DESC_PAGES + 8].try_into().ok()?);
            let stop = start.checked_add(pages.checked_mul(EFI_PAGE_SIZE)?)?;
            (kind != EFI_MMIO && kind != EFI_MMIO_PORT_SPACE && start <= at && at < stop).then_some(stop)
        });
        match holder {
            Some(stop) => at = stop,
            None => return false,
        }
    }
    at >= end
}

/// Where to put the image copy: the lowest `align`-aligned address at
/// which `size` bytes fit inside one conventional-memory descriptor, in the
/// largest descriptor that has one. Low in the largest free region because
/// EL2 places its pool, and the host its memory, after the image in the
/// image's RAM region (hyp/src/mm.rs, `Layout`), as the raw boot does with
/// the image near the start of RAM; UEFI's own allocations sit high.
pub fn placement(map: &[u8], desc_size: usize, size: u64, align: u64) -> Option<u64> {
    if desc_size < DESC_MIN_SIZE || !align.is_power_of_two() {
        return None;
    }
    let mut best: Option<(u64, u64)> = None; // (descriptor size, address)
    for d in map.chunks_exact(desc_size) {
        let kind = u32::from_le_bytes(d[DESC_TYPE..DESC_TYPE + 4].try_into().ok()?);
        let start = u64::from_le_bytes(d[DESC_PHYS_START..DESC_PHYS_START + 8].try_into().ok()?);
        let pages = u64::from_le_bytes(d[DESC_PAGES..DESC_PAGES + 8].try_into().ok()?);
        if kind != EFI_CONVENTIONAL_MEMORY {
            continue;
        }
        let Some(len) = pages.checked_mul(EFI_PAGE_SIZE) else { continue };
        let Some(end) = start.checked_add(len) else { continue };
        let Some(at) = start.checked_next_multiple_of(align) else { continue };
        if at.checked_add(size).is_some_and(|e| e <= end) && best.is_none_or(|(l, _)| len > l) {
            best = Some((len, at));
        }
    }
    best.map(|(_, at)| at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// EDK2's descriptor size (48: 40 bytes and 8 of padding).
    const SIZE: usize = 48;

    fn map(entries: &[(u32, u64, u64)]) -> Vec<u8> {
        let mut m = Vec::new();
        for &(kind, start, pages) in entries {
            let mut d = [0u8; SIZE];
            d[0..4].copy_from_slice(&kind.to_le_bytes());
            d[8..16].copy_from_slice(&start.to_le_bytes());
            d[16..24].copy_from_slice(&start.to_le_bytes());
            d[24..32].copy_from_slice(&pages.to_le_bytes());
            m.extend_from_slice(&d);
        }
        m
    }

    #[test]
    fn runtime_acpi_and_reserved_memory_are_not_ram() {
        // Shaped like ArmVirtQemu's map of 1 GiB at 0x4000_0000.
        let m = map(&[
            (EFI_CONVENTIONAL_MEMORY, 0x4000_0000, 0x1000),
            (EFI_LOADER_CODE, 0x4100_0000, 0x200),
            (EFI_BOOT_SERVICES_DATA, 0x4120_0000, 0x3ce00),
            (5, 0x7e00_0000, 0x10), // runtime services code
            (EFI_BOOT_SERVICES_CODE, 0x7e01_0000, 0x100),
            (9, 0x7e11_0000, 0x4),  // ACPI reclaim
            (6, 0x7e11_4000, 0x10), // runtime services data
            (EFI_CONVENTIONAL_MEMORY, 0x7e12_4000, 0x1edc),
            (0, 0x0400_0000, 0x100), // reserved (flash)
            (11, 0x0900_0000, 1),    // MMIO
        ]);
        let ram = usable_ram(&m, SIZE).unwrap();
        assert_eq!(
            ram.as_slice(),
            &[(0x4000_0000, 0x3e00_0000), (0x7e01_0000, 0x10_0000), (0x7e12_4000, 0x1edc * 0x1000)]
        );
        assert_eq!(ram.dropped, 0);
    }

    #[test]
    fn out_of_order_and_overlapping_descriptors_merge() {
        let m = map(&[(7, 0x8000_0000, 0x10), (7, 0x4000_0000, 0x10), (2, 0x4001_0000, 0x10), (7, 0x4000_8000, 0x10)]);
        assert_eq!(usable_ram(&m, SIZE).unwrap().as_slice(), &[(0x4000_0000, 0x2_0000), (0x8000_0000, 0x1_0000)]);
    }

    #[test]
    fn past_sixteen_regions_the_smallest_are_dropped() {
        let entries: Vec<_> = (0..20u64).map(|i| (7, 0x4000_0000 + i * 0x10_0000, 1 + i)).collect();
        let ram = usable_ram(&map(&entries), SIZE).unwrap();
        assert_eq!(ram.len, MAX_REGIONS);
        assert_eq!(ram.dropped, 4);
        assert_eq!(ram.as_slice()[0], (0x4040_0000, 5 * 0x1000), "the four smallest went");
    }

    #[test]
    fn the_copy_goes_low_in_the_largest_free_region() {
        const MIB2: u64 = 2 << 20;
        let m = map(&[
            (EFI_CONVENTIONAL_MEMORY, 0x4000_0000, 0x100), // 1 MiB: too small
            (EFI_BOOT_SERVICES_DATA, 0x4010_0000, 0x100),
            (EFI_CONVENTIONAL_MEMORY, 0x4020_1000, 0x3_0000), // 768 MiB, unaligned start
            (EFI_CONVENTIONAL_MEMORY, 0x7000_0000, 0x8000),   // 128 MiB
            (EFI_LOADER_CODE, 0x7800_0000, 0x200),
        ]);
        assert_eq!(placement(&m, SIZE, 0x20_0000, MIB2), Some(0x4040_0000));
        assert_eq!(placement(&m, SIZE, 0x4000_0000, MIB2), None, "fits nowhere");
        assert_eq!(placement(&m, SIZE, 0x1000, 3), None, "alignment not a power of two");
    }

    #[test]
    fn tables_are_read_only_from_described_memory() {
        let m = map(&[
            (9, 0x7e11_0000, 1), // ACPI reclaim
            (6, 0x7e11_1000, 2), // runtime data, adjacent
            (EFI_MMIO, 0x0900_0000, 1),
            (EFI_CONVENTIONAL_MEMORY, 0x4000_0000, 1),
        ]);
        assert!(covered(&m, SIZE, 0x7e11_0000, 0x1000));
        assert!(covered(&m, SIZE, 0x7e11_0ff0, 0x100), "across adjacent descriptors");
        assert!(covered(&m, SIZE, 0x4000_0010, 0));
        assert!(!covered(&m, SIZE, 0x7e11_2f00, 0x200), "runs past the end");
        assert!(!covered(&m, SIZE, 0x0900_0000, 4), "device memory");
        assert!(!covered(&m, SIZE, 0x1000, 4), "a hole");
        assert!(!covered(&m, SIZE, u64::MAX, 2), "wraps");
        assert!(!covered(&m, 16, 0x4000_0000, 4), "bad descriptor size");
    }

    #[test]
    fn bad_maps_are_refused() {
        assert_eq!(usable_ram(&map(&[(7, 0, 1)]), 24), Err(MapError::DescriptorSize(24)));
        assert_eq!(
            usable_ram(&map(&[(7, u64::MAX - 0xfff, 2)]), SIZE),
            Err(MapError::Wraps { start: u64::MAX - 0xfff })
        );
        assert_eq!(usable_ram(&map(&[(5, 0x4000_0000, 2)]), SIZE), Err(MapError::NoRam));
        assert_eq!(usable_ram(&[], SIZE), Err(MapError::NoRam));
    }
}
