//! VMSAv8-64 translation tables with the 4 KiB granule.
//!
//! One table walker serves the three regimes spevisor builds:
//! - [`Regime::El2`]: the hypervisor's own stage-1 (TTBR0_EL2, nVHE: one VA range);
//! - [`Regime::El1`]: the host kernel's stage-1 (TTBR0_EL1 / TTBR1_EL1);
//! - [`Regime::Stage2`]: a guest's IPA → PA translation (VTTBR_EL2).
//!
//! The code is pure: table memory comes from a [`PageAllocator`] that also says
//! how to reach a physical page (identity on the target, a `Vec` in host tests),
//! and nothing here touches a system register. Mapping prefers blocks (1 GiB at
//! level 1, 2 MiB at level 2) when addresses and size allow, splits blocks when
//! a smaller change is asked for, and reports conflicts instead of silently
//! replacing an existing mapping.
#![cfg_attr(not(test), no_std)]

pub mod pool;
pub mod range;
pub mod regs;

/// Size of a translation granule and of a page.
pub const PAGE_SIZE: u64 = 4096;
/// Bits resolved by one table level (512 entries of 8 bytes).
const BITS_PER_LEVEL: u32 = 9;
const ENTRIES_PER_TABLE: usize = 1 << BITS_PER_LEVEL;
const PAGE_SHIFT: u32 = 12;
/// The level that holds 4 KiB pages.
const LEAF_LEVEL: usize = 3;

/// Descriptor bits shared by all regimes.
mod desc {
    pub const VALID: u64 = 1 << 0;
    /// At levels 0..=2: next-level table; at level 3: page.
    pub const TABLE_OR_PAGE: u64 = 1 << 1;
    pub const AF: u64 = 1 << 10;
    pub const SH_INNER: u64 = 0b11 << 8;
    pub const SH_OUTER: u64 = 0b10 << 8;
    /// Output address bits [47:12].
    pub const OA_MASK: u64 = 0x0000_ffff_ffff_f000;
    /// Stage-1: AttrIndx[2:0] at bits [4:2].
    pub const S1_ATTRINDX_SHIFT: u32 = 2;
    /// Stage-1 AP[1]: EL0 access (EL1&0 regime); RES1 in the EL2 regime.
    pub const S1_AP_USER: u64 = 1 << 6;
    /// Stage-1 AP[2]: read-only.
    pub const S1_AP_RO: u64 = 1 << 7;
    /// Stage-1 PXN (EL1&0 regime).
    pub const S1_PXN: u64 = 1 << 53;
    /// Stage-1 UXN (EL1&0) / XN (EL2).
    pub const S1_UXN_XN: u64 = 1 << 54;
    /// Stage-2 MemAttr[3:0] at bits [5:2].
    pub const S2_MEMATTR_SHIFT: u32 = 2;
    pub const S2_MEMATTR_NORMAL_WB: u64 = 0b1111;
    pub const S2_MEMATTR_DEVICE_NGNRE: u64 = 0b0001;
    /// Stage-2 S2AP[1:0] at bits [7:6]: bit 6 read, bit 7 write.
    pub const S2AP_R: u64 = 1 << 6;
    pub const S2AP_W: u64 = 1 << 7;
    /// Stage-2 XN[1:0] at bits [54:53]: 0b10 = not executable at EL1 or EL0.
    pub const S2_XN: u64 = 0b10 << 53;
}

/// MAIR indices used by spevisor's stage-1 tables (see [`MAIR_VALUE`]).
pub mod mair {
    /// Attr0: Device-nGnRE.
    pub const DEVICE_NGNRE: u64 = 0;
    /// Attr1: Normal, inner/outer write-back, read/write-allocate, non-transient.
    pub const NORMAL_WB: u64 = 1;
    /// Attr2: Normal, inner/outer non-cacheable.
    pub const NORMAL_NC: u64 = 2;
}
/// MAIR_ELx value matching [`mair`]: Attr0 = 0x04, Attr1 = 0xff, Attr2 = 0x44.
pub const MAIR_VALUE: u64 = 0x04 | (0xff << 8) | (0x44 << 16);

/// Which translation regime a table belongs to: it decides the descriptor format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// EL2 stage-1 (nVHE, no EL0).
    El2,
    /// EL1&0 stage-1.
    El1,
    /// Stage-2 (IPA → PA) for a guest.
    Stage2,
}

/// Memory type of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    /// Normal memory, write-back cacheable, inner shareable.
    Normal,
    /// Device-nGnRE, never executable.
    Device,
}

/// What a mapping allows. Readable is implied (there is no write-only memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attributes {
    pub mem: MemType,
    pub write: bool,
    pub exec: bool,
    /// EL0 accessible (EL1&0 regime only).
    pub user: bool,
}

impl Attributes {
    /// Read-only data, never executable.
    pub const RO: Self = Self { mem: MemType::Normal, write: false, exec: false, user: false };
    /// Read/write data, never executable.
    pub const RW: Self = Self { mem: MemType::Normal, write: true, exec: false, user: false };
    /// Code: read + execute, not writable (W^X).
    pub const RX: Self = Self { mem: MemType::Normal, write: false, exec: true, user: false };
    /// Device registers: read/write, never executable.
    pub const DEVICE: Self = Self { mem: MemType::Device, write: true, exec: false, user: false };
    /// Guest RAM under stage-2: read/write/execute.
    pub const GUEST_RAM: Self = Self { mem: MemType::Normal, write: true, exec: true, user: false };
}

/// Errors from table operations. None of them leaves a half-made mapping
/// visible: checks run before the first descriptor is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// An address or size is not page aligned.
    Unaligned,
    /// The range wraps or passes the regime's input address size.
    OutOfRange,
    /// Part of the range is already mapped (map) or not mapped (unmap).
    Conflict { va: u64 },
    /// Writable and executable at once (W^X), or executable device memory.
    Forbidden,
    /// The page allocator ran out of pages.
    NoMemory,
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unaligned => write!(f, "address or size not 4 KiB aligned"),
            Self::OutOfRange => write!(f, "range outside the input address space"),
            Self::Conflict { va } => write!(f, "range conflicts with existing mapping at {va:#x}"),
            Self::Forbidden => write!(f, "writable+executable or executable device mapping refused"),
            Self::NoMemory => write!(f, "out of pages for translation tables"),
        }
    }
}

/// Where table pages come from and how to reach them.
pub trait PageAllocator {
    /// A zeroed, page-aligned physical page.
    fn alloc_page(&mut self) -> Option<u64>;
    /// Gives a page obtained from `alloc_page` back.
    fn free_page(&mut self, pa: u64);
    /// A pointer through which the current code can read and write `pa`.
    fn table_ptr(&self, pa: u64) -> *mut u64;
}

/// A leaf translation found by [`PageTable::translate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub pa: u64,
    pub level: usize,
    pub descriptor: u64,
}

/// One translation table tree (a root and everything below it).
pub struct PageTable {
    root: u64,
    regime: Regime,
    start_level: usize,
    ia_bits: u32,
}

/// Levels needed for an input-address size with the 4K granule (no concatenation).
pub const fn start_level_for(ia_bits: u32) -> usize {
    // Level 3 resolves bits [20:12], level 2 [29:21], level 1 [38:30], level 0 [47:39].
    if ia_bits > 39 {
        0
    } else if ia_bits > 30 {
        1
    } else {
        2
    }
}

const fn level_shift(level: usize) -> u32 {
    PAGE_SHIFT + BITS_PER_LEVEL * (LEAF_LEVEL - level) as u32
}

const fn level_size(level: usize) -> u64 {
    1 << level_shift(level)
}

impl PageTable {
    /// An empty tree for `regime` covering `ia_bits` of input address (25..=48).
    pub fn new(alloc: &mut impl PageAllocator, regime: Regime, ia_bits: u32) -> Result<Self, MapError> {
        if !(25..=48).contains(&ia_bits) {
            return Err(MapError::OutOfRange);
        }
        let root = alloc.alloc_page().ok_or(MapError::NoMemory)?;
        Ok(Self { root, regime, start_level: start_level_for(ia_bits), ia_bits })
    }

    /// Physical address of the root table (the TTBR/VTTBR base address).
    pub fn root_pa(&self) -> u64 {
        self.root
    }

    pub fn regime(&self) -> Regime {
        self.regime
    }

    pub fn start_level(&self) -> usize {
        self.start_level
    }

    pub fn ia_bits(&self) -> u32 {
        self.ia_bits
    }

    /// The leaf descriptor bits (everything but the output address and type)
    /// for `attrs` in this regime.
    pub fn leaf_attrs(&self, attrs: Attributes) -> Result<u64, MapError> {
        // W^X holds for spevisor's own stage-1 tables; what a guest does inside
        // its RAM is the guest's business, so stage-2 RAM may be RWX.
        let wx = attrs.exec && attrs.write && self.regime != Regime::Stage2;
        if wx || (attrs.exec && attrs.mem == MemType::Device) {
            return Err(MapError::Forbidden);
        }
        let sh = match attrs.mem {
            MemType::Normal => desc::SH_INNER,
            MemType::Device => desc::SH_OUTER,
        };
        let mut bits = desc::VALID | desc::AF | sh;
        match self.regime {
            Regime::El2 | Regime::El1 => {
                let idx = match attrs.mem {
                    MemType::Normal => mair::NORMAL_WB,
                    MemType::Device => mair::DEVICE_NGNRE,
                };
                bits |= idx << desc::S1_ATTRINDX_SHIFT;
                if !attrs.write {
                    bits |= desc::S1_AP_RO;
                }
                if self.regime == Regime::El2 {
                    // AP[1] is RES1 in the EL2 regime; EL2 XN is bit 54.
                    bits |= desc::S1_AP_USER;
                    if !attrs.exec {
                        bits |= desc::S1_UXN_XN;
                    }
                } else {
                    if attrs.user {
                        bits |= desc::S1_AP_USER;
                    }
                    // Kernel code is never executable from EL0 and user code never
                    // from EL1.
                    if !attrs.exec || !attrs.user {
                        bits |= desc::S1_UXN_XN;
                    }
                    if !attrs.exec || attrs.user {
                        bits |= desc::S1_PXN;
                    }
                }
            }
            Regime::Stage2 => {
                let memattr = match attrs.mem {
                    MemType::Normal => desc::S2_MEMATTR_NORMAL_WB,
                    MemType::Device => desc::S2_MEMATTR_DEVICE_NGNRE,
                };
                bits |= memattr << desc::S2_MEMATTR_SHIFT;
                bits |= desc::S2AP_R;
                if attrs.write {
                    bits |= desc::S2AP_W;
                }
                if !attrs.exec {
                    bits |= desc::S2_XN;
                }
            }
        }
        Ok(bits)
    }

    fn check_range(&self, va: u64, size: u64) -> Result<(), MapError> {
        if !va.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
            return Err(MapError::Unaligned);
        }
        let end = va.checked_add(size).ok_or(MapError::OutOfRange)?;
        if end > 1u64 << self.ia_bits {
            return Err(MapError::OutOfRange);
        }
        Ok(())
    }

    fn entry(alloc: &impl PageAllocator, table: u64, index: usize) -> *mut u64 {
        // Index is always < ENTRIES_PER_TABLE (masked by the caller).
        alloc.table_ptr(table).wrapping_add(index)
    }

    fn read(alloc: &impl PageAllocator, table: u64, index: usize) -> u64 {
        // SAFETY: `table` is a table page this tree owns, reachable through
        // `table_ptr`, and `index` < 512 keeps the access inside it.
        unsafe { Self::entry(alloc, table, index).read_volatile() }
    }

    fn write(alloc: &impl PageAllocator, table: u64, index: usize, value: u64) {
        // SAFETY: as in `read`; volatile so the walker (hardware) sees each
        // descriptor written exactly once, in program order.
        unsafe { Self::entry(alloc, table, index).write_volatile(value) }
    }

    fn index(va: u64, level: usize) -> usize {
        ((va >> level_shift(level)) as usize) & (ENTRIES_PER_TABLE - 1)
    }

    /// Maps `[va, va+size)` to `[pa, pa+size)` with `attrs`. Fails without
    /// changing anything if any page of the range is already mapped.
    pub fn map_range(
        &mut self,
        alloc: &mut impl PageAllocator,
        va: u64,
        pa: u64,
        size: u64,
        attrs: Attributes,
    ) -> Result<(), MapError> {
        self.check_range(va, size)?;
        if !pa.is_multiple_of(PAGE_SIZE) || pa.checked_add(size).is_none() {
            return Err(MapError::Unaligned);
        }
        let leaf = self.leaf_attrs(attrs)?;
        // First pass: refuse overlaps, so a failure changes nothing.
        if let Some(at) = self.first_mapped(alloc, va, va + size) {
            return Err(MapError::Conflict { va: at });
        }
        let mut off = 0;
        while off < size {
            match self.map_one(alloc, va + off, pa + off, size - off, leaf) {
                Ok(step) => off += step,
                Err(e) => {
                    // Take back what was written, so a failure changes nothing
                    // visible (the prefix ends on leaf boundaries: no split).
                    if off != 0 {
                        let _ = self.unmap_range(alloc, va, off);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Maps the largest block or page possible at `va`; returns its size.
    fn map_one(
        &mut self,
        alloc: &mut impl PageAllocator,
        va: u64,
        pa: u64,
        remaining: u64,
        leaf: u64,
    ) -> Result<u64, MapError> {
        let mut table = self.root;
        let mut level = self.start_level;
        loop {
            let size = level_size(level);
            let idx = Self::index(va, level);
            // Blocks exist at levels 1 and 2 with the 4K granule.
            let block_ok =
                (level == 1 || level == 2) && va.is_multiple_of(size) && pa.is_multiple_of(size) && remaining >= size;
            if level == LEAF_LEVEL || block_ok {
                let ty = if level == LEAF_LEVEL { desc::TABLE_OR_PAGE } else { 0 };
                Self::write(alloc, table, idx, (pa & desc::OA_MASK) | leaf | ty);
                return Ok(size);
            }
            let d = Self::read(alloc, table, idx);
            table = if d & desc::VALID == 0 {
                let next = alloc.alloc_page().ok_or(MapError::NoMemory)?;
                Self::write(alloc, table, idx, next | desc::VALID | desc::TABLE_OR_PAGE);
                next
            } else if d & desc::TABLE_OR_PAGE != 0 {
                d & desc::OA_MASK
            } else {
                // Checked by map_range's first pass: a block here means overlap.
                return Err(MapError::Conflict { va });
            };
            level += 1;
        }
    }

    /// Splits the block that maps `va` at `level` into a table of the next level
    /// with the same attributes. Returns the new table.
    fn split_block(
        alloc: &mut impl PageAllocator,
        table: u64,
        idx: usize,
        level: usize,
        block: u64,
    ) -> Result<u64, MapError> {
        let next = alloc.alloc_page().ok_or(MapError::NoMemory)?;
        let child_size = level_size(level + 1);
        let attrs = block & !desc::OA_MASK & !desc::TABLE_OR_PAGE;
        let ty = if level + 1 == LEAF_LEVEL { desc::TABLE_OR_PAGE } else { 0 };
        let base = block & desc::OA_MASK;
        for i in 0..ENTRIES_PER_TABLE {
            Self::write(alloc, next, i, (base + i as u64 * child_size) | attrs | ty);
        }
        Self::write(alloc, table, idx, next | desc::VALID | desc::TABLE_OR_PAGE);
        Ok(next)
    }

    /// Removes the mapping of `[va, va+size)`; blocks partly covered are split.
    /// Fails without changing anything if part of the range is not mapped.
    /// The caller performs the TLB maintenance its regime needs.
    pub fn unmap_range(&mut self, alloc: &mut impl PageAllocator, va: u64, size: u64) -> Result<(), MapError> {
        self.check_range(va, size)?;
        let mut off = 0;
        while off < size {
            match self.walk(alloc, va + off) {
                // Skip to the end of the block or page that maps it.
                Ok(t) => off = ((va + off) & !(level_size(t.level) - 1)) + level_size(t.level) - va,
                Err(_) => return Err(MapError::Conflict { va: va + off }),
            }
        }
        let end = va + size;
        let mut cur = va;
        while cur < end {
            cur += self.unmap_one(alloc, cur, end - cur)?;
        }
        Ok(())
    }

    fn unmap_one(&mut self, alloc: &mut impl PageAllocator, va: u64, remaining: u64) -> Result<u64, MapError> {
        let mut table = self.root;
        let mut level = self.start_level;
        loop {
            let size = level_size(level);
            let idx = Self::index(va, level);
            let d = Self::read(alloc, table, idx);
            let is_leaf = level == LEAF_LEVEL || d & desc::TABLE_OR_PAGE == 0;
            if is_leaf {
                if va.is_multiple_of(size) && remaining >= size {
                    Self::write(alloc, table, idx, 0);
                    return Ok(size);
                }
                table = Self::split_block(alloc, table, idx, level, d)?;
            } else {
                table = d & desc::OA_MASK;
            }
            level += 1;
        }
    }

    /// The first mapped address in `[start, end)`, skipping whole invalid
    /// subtrees (so checking a large empty range costs a few walks, not one
    /// per page).
    fn first_mapped(&self, alloc: &impl PageAllocator, start: u64, end: u64) -> Option<u64> {
        let mut va = start;
        while va < end {
            match self.walk(alloc, va) {
                Ok(_) => return Some(va),
                Err(level) => {
                    // Nothing is mapped up to the end of this level's entry.
                    let span = level_size(level);
                    va = (va & !(span - 1)).checked_add(span)?;
                }
            }
        }
        None
    }

    /// Walks the tree for `va`; `Err(level)` names the level whose entry is
    /// invalid.
    fn walk(&self, alloc: &impl PageAllocator, va: u64) -> Result<Translation, usize> {
        let mut table = self.root;
        let mut level = self.start_level;
        loop {
            let d = Self::read(alloc, table, Self::index(va, level));
            if d & desc::VALID == 0 {
                return Err(level);
            }
            let leaf = level == LEAF_LEVEL || d & desc::TABLE_OR_PAGE == 0;
            if leaf {
                let size = level_size(level);
                let pa = (d & desc::OA_MASK & !(size - 1)) | (va & (size - 1));
                return Ok(Translation { pa, level, descriptor: d });
            }
            table = d & desc::OA_MASK;
            level += 1;
        }
    }

    /// Walks the tree for `va` like the hardware would.
    pub fn translate(&self, alloc: &impl PageAllocator, va: u64) -> Option<Translation> {
        if va >= 1u64 << self.ia_bits {
            return None;
        }
        self.walk(alloc, va).ok()
    }

    /// Frees every table page of the tree (not the memory it maps).
    pub fn destroy(self, alloc: &mut impl PageAllocator) {
        Self::free_table(alloc, self.root, self.start_level);
    }

    fn free_table(alloc: &mut impl PageAllocator, table: u64, level: usize) {
        if level < LEAF_LEVEL {
            for i in 0..ENTRIES_PER_TABLE {
                let d = Self::read(alloc, table, i);
                if d & desc::VALID != 0 && d & desc::TABLE_OR_PAGE != 0 {
                    Self::free_table(alloc, d & desc::OA_MASK, level + 1);
                }
            }
        }
        alloc.free_page(table);
    }
}

/// Descriptor inspection helpers (tests, diagnostics).
pub mod inspect {
    use super::desc;

    pub fn is_writable_s1(d: u64) -> bool {
        d & desc::S1_AP_RO == 0
    }
    pub fn is_exec_el2(d: u64) -> bool {
        d & desc::S1_UXN_XN == 0
    }
    pub fn is_exec_el1(d: u64) -> bool {
        d & desc::S1_PXN == 0
    }
    pub fn s1_attr_index(d: u64) -> u64 {
        (d >> desc::S1_ATTRINDX_SHIFT) & 0b111
    }
    pub fn s2_memattr(d: u64) -> u64 {
        (d >> desc::S2_MEMATTR_SHIFT) & 0b1111
    }
    pub fn s2_writable(d: u64) -> bool {
        d & desc::S2AP_W != 0
    }
    pub fn s2_exec(d: u64) -> bool {
        d & desc::S2_XN == 0
    }
}

#[cfg(test)]
mod tests;
