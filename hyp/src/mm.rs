//! Memory: how RAM is split between the hypervisor and the host, the
//! hypervisor's page pool, and the EL2 heap.
//!
//! RAM (the DTB region holding the image) is split at boot:
//!
//! ```text
//!  ram.start      image          image_end   pool_end                  ram.end
//!  |  (DTB, ...)  | spevisor image | EL2 pool |   host memory           |
//! ```
//!
//! The host owns `[pool_end, ram.end)` and may donate pages from it to VMs.
//! Everything from the image start to `pool_end` belongs to the hypervisor and
//! is refused as donation. Pages below the image (where firmware put the DTB)
//! belong to neither and are refused too.

pub use spevisor_pgtable::pool::PagePool;

/// 2 MiB: block size, and the alignment of the pool and host memory.
pub const BLOCK_2M: u64 = 2 << 20;
/// Size of the hypervisor's own page pool (page tables, VM state, heap).
pub const HYP_POOL_SIZE: u64 = 16 << 20;

pub use spevisor_pgtable::range::Range;

const fn align_up(x: u64, a: u64) -> u64 {
    (x + a - 1) & !(a - 1)
}

/// How RAM is shared out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub ram: Range,
    pub image: Range,
    pub pool: Range,
    pub host: Range,
}

/// Why RAM could not be shared out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// No memory region of the DTB holds the image.
    ImageNotInRam,
    /// Not enough RAM after the image for the pool and some host memory.
    TooSmall { need: u64, have: u64 },
}

impl core::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::ImageNotInRam => write!(f, "the image is not inside any DTB memory region"),
            Self::TooSmall { need, have } => {
                write!(f, "RAM after the image too small: need {need:#x} bytes, have {have:#x}")
            }
        }
    }
}

/// Minimum host memory: enough for the host's tables, stacks and a guest.
pub const MIN_HOST_MEMORY: u64 = 16 << 20;

impl Layout {
    /// Shares out the RAM region that holds `image`. The pool is placed at the
    /// first 2 MiB boundary after the image that overlaps none of `reserved`
    /// (the DTB, firmware reservations).
    pub fn new(ram_regions: &[Range], image: Range, reserved: &[Range]) -> Result<Self, LayoutError> {
        let ram = *ram_regions
            .iter()
            .find(|r| r.contains_range(image.start, image.size()))
            .ok_or(LayoutError::ImageNotInRam)?;
        let mut pool_start = align_up(image.end, BLOCK_2M);
        while let Some(r) = reserved.iter().find(|r| r.overlaps(pool_start, HYP_POOL_SIZE)) {
            pool_start = align_up(r.end, BLOCK_2M);
        }
        let pool_end = pool_start + HYP_POOL_SIZE;
        let need = pool_end - image.end + MIN_HOST_MEMORY;
        let have = ram.end.saturating_sub(image.end);
        if have < need {
            return Err(LayoutError::TooSmall { need, have });
        }
        Ok(Self { ram, image, pool: Range::new(pool_start, pool_end), host: Range::new(pool_end, ram.end) })
    }
}

impl Layout {
    /// Where the host builds its first page tables (`pages` pages, passed in
    /// x3 at host entry, `spevisor_abi::HOST_BOOT_TABLE_PAGES`): the first
    /// window of host memory clear of every `reserved` range. The host
    /// cannot read the DTB's reservations before it has tables to turn its
    /// MMU on with; EL2 has read them.
    pub fn host_boot_tables(&self, reserved: &[Range], pages: u64) -> Option<u64> {
        let want = pages.checked_mul(spevisor_pgtable::PAGE_SIZE)?;
        let (free, n) = spevisor_pgtable::range::subtract(self.host, reserved);
        free[..n].iter().find(|r| r.size() >= want).map(|r| r.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn host_boot_tables_avoid_the_dtb_and_reservations() {
        let ram = [Range::new(0x4000_0000, 0x8000_0000)];
        let l = Layout::new(&ram, Range::new(0x4020_0000, 0x4023_5000), &[]).unwrap();
        let host = l.host.start;
        assert_eq!(l.host_boot_tables(&[], 64), Some(host));
        // A reservation at the very start of host memory, then a gap too small.
        let fw = Range::new(host, host + 0x1000);
        let small_gap_end = host + 0x1000 + 63 * 0x1000;
        let dtb = Range::new(small_gap_end, small_gap_end + 0x10_0000);
        assert_eq!(l.host_boot_tables(&[fw, dtb], 64), Some(dtb.end));
        assert_eq!(l.host_boot_tables(&[l.host], 64), None, "all of host memory reserved");
        assert_eq!(l.host_boot_tables(&[], u64::MAX), None, "no overflow");
    }

    #[test]
    fn layout_splits_ram_after_the_image() {
        let ram = [Range::new(0x4000_0000, 0x5000_0000)];
        let image = Range::new(0x4020_0000, 0x4023_5000);
        let l = Layout::new(&ram, image, &[]).unwrap();
        assert_eq!(l.pool, Range::new(0x4040_0000, 0x4040_0000 + HYP_POOL_SIZE));
        assert_eq!(l.host, Range::new(0x4040_0000 + HYP_POOL_SIZE, 0x5000_0000));
        assert_eq!(l.ram, ram[0]);
    }

    #[test]
    fn pool_skips_the_dtb_and_reservations() {
        let ram = [Range::new(0x4000_0000, 0x8000_0000)];
        let image = Range::new(0x4020_0000, 0x4023_5000);
        let dtb = Range::new(0x4040_0000, 0x4050_0000);
        let l = Layout::new(&ram, image, &[dtb]).unwrap();
        assert_eq!(l.pool.start, 0x4060_0000);
        assert!(!l.pool.overlaps(dtb.start, dtb.size()));
        let fw = Range::new(0x4060_1000, 0x4060_2000);
        let l = Layout::new(&ram, image, &[dtb, fw]).unwrap();
        assert_eq!(l.pool.start, 0x4080_0000);
    }

    #[test]
    fn layout_refuses_image_outside_ram_or_small_ram() {
        let ram = [Range::new(0x4000_0000, 0x4100_0000)];
        assert_eq!(Layout::new(&ram, Range::new(0x8000_0000, 0x8010_0000), &[]), Err(LayoutError::ImageNotInRam));
        let err = Layout::new(&ram, Range::new(0x4020_0000, 0x4030_0000), &[]).unwrap_err();
        assert!(matches!(err, LayoutError::TooSmall { .. }));
        // Exactly enough: pool + minimum host memory.
        let big = [Range::new(0x4000_0000, 0x4040_0000 + HYP_POOL_SIZE + MIN_HOST_MEMORY)];
        assert!(Layout::new(&big, Range::new(0x4020_0000, 0x4030_0000), &[]).is_ok());
        let short = [Range::new(0x4000_0000, 0x4040_0000 + HYP_POOL_SIZE + MIN_HOST_MEMORY - MIB)];
        assert!(Layout::new(&short, Range::new(0x4020_0000, 0x4030_0000), &[]).is_err());
    }
}
