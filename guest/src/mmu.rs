//! The guest's own stage-1 translation: an identity map of the low 9 GiB of
//! IPA space in 1 GiB blocks, one level-1 table (4 KiB granule, T0SZ = 25:
//! 39-bit VAs, the walk starts at level 1). start.S programs the registers
//! with the values below and turns the MMU on before any Rust code runs.
//!
//! | L1 entry | VA = IPA | memory type |
//! |---|---|---|
//! | 0 | 0 .. 1 GiB | Device-nGnRE (PL011 and the other devices) |
//! | 1 | 1 .. 2 GiB | Normal write-back (RAM, from 0x4000_0000) |
//! | 2 | 2 .. 3 GiB | the RAM block again (IPA 1 .. 2 GiB), read-only and executable at EL0 only: the EL0 code of `aborts.rs` |
//! | 3 | 3 .. 4 GiB | entry 0's IPAs again (devices, 0 .. 1 GiB), Device-nGnRE, read/write at EL0: what AArch32 EL0 (32-bit VAs) reaches of the PL011 and of unbacked IPAs (`hostile32.rs`) |
//! | 8 | 8 .. 9 GiB | Device-nGnRE (nothing there: `read-outside` probes it) |
//! | 9 | 9 .. 10 GiB | entry 8's IPAs again (8 .. 9 GiB), Device-nGnRE, read/write at EL0 |
//!
//! Entries 2 and 9 are aliases at other VAs, so an abort from EL0 reports a
//! FAR (the VA) that differs from the IPA the hypervisor saw.

/// Size of the region one level-1 block maps.
pub const BLOCK_SIZE: u64 = 1 << 30;
/// Level-1 entries in a 4 KiB table.
const ENTRIES: usize = 512;

/// Guest RAM base (IPA) and the largest RAM the map covers (one block).
pub const RAM_BASE: u64 = 0x4000_0000;
pub const RAM_MAPPED: u64 = BLOCK_SIZE;
/// An IPA outside RAM and every device of the guest machine.
pub const OUTSIDE_IPA: u64 = 0x2_0000_0000;

/// Where EL0 sees the RAM block (entry 2): VA = IPA - RAM_BASE + this.
pub const EL0_RAM_ALIAS: u64 = 2 * BLOCK_SIZE;
/// Where EL0 sees the device block (entry 3), below 4 GiB for AArch32:
/// VA = IPA + this.
pub const EL0_DEVICE_ALIAS: u64 = 3 * BLOCK_SIZE;
/// Where EL0 sees the block of [`OUTSIDE_IPA`] (entry 9).
pub const EL0_OUTSIDE_ALIAS: u64 = 9 * BLOCK_SIZE;

const DEVICE_ENTRY: usize = 0;
const RAM_ENTRY: usize = (RAM_BASE / BLOCK_SIZE) as usize;
const OUTSIDE_ENTRY: usize = (OUTSIDE_IPA / BLOCK_SIZE) as usize;
const EL0_RAM_ENTRY: usize = (EL0_RAM_ALIAS / BLOCK_SIZE) as usize;
const EL0_DEVICE_ENTRY: usize = (EL0_DEVICE_ALIAS / BLOCK_SIZE) as usize;
const EL0_OUTSIDE_ENTRY: usize = (EL0_OUTSIDE_ALIAS / BLOCK_SIZE) as usize;
const _: () = assert!(RAM_ENTRY == 1 && OUTSIDE_ENTRY == 8 && EL0_RAM_ENTRY == 2 && EL0_OUTSIDE_ENTRY == 9);
const _: () = assert!(OUTSIDE_IPA.is_multiple_of(BLOCK_SIZE), "the EL0 alias maps OUTSIDE_IPA at its base");
const _: () = assert!(crate::uart::PL011_BASE < BLOCK_SIZE, "PL011 in entry 0");

// MAIR_EL1: attribute 0 = Device-nGnRE, attribute 1 = Normal, inner and
// outer write-back non-transient, read- and write-allocate.
const ATTR_DEVICE_NGNRE: u64 = 0x04;
const ATTR_NORMAL_WB: u64 = 0xff;
const ATTR_IDX_DEVICE: u64 = 0;
const ATTR_IDX_NORMAL: u64 = 1;
/// Bits per MAIR attribute field.
const MAIR_FIELD_BITS: u64 = 8;
pub const MAIR_EL1: u64 =
    ATTR_DEVICE_NGNRE << (MAIR_FIELD_BITS * ATTR_IDX_DEVICE) | ATTR_NORMAL_WB << (MAIR_FIELD_BITS * ATTR_IDX_NORMAL);

// TCR_EL1 fields.
/// 64 - 25 = 39-bit VAs: 512 GiB, the walk starts at level 1.
const T0SZ: u64 = 25;
const TCR_T0SZ_SHIFT: u64 = 0;
/// T1SZ like T0SZ (an in-range value; TTBR1 walks are disabled anyway).
const T1SZ: u64 = 25;
const TCR_T1SZ_SHIFT: u64 = 16;
/// Table walks: inner/outer write-back read/write-allocate, inner shareable.
const TCR_IRGN0_WBWA: u64 = 0b01 << 8;
const TCR_ORGN0_WBWA: u64 = 0b01 << 10;
const TCR_SH0_INNER: u64 = 0b11 << 12;
/// TG0 = 0b00: 4 KiB granule.
const TCR_TG0_4K: u64 = 0b00 << 14;
/// TTBR1 walks disabled (the guest uses no upper-half addresses).
const TCR_EPD1: u64 = 1 << 23;
/// TG1 = 0b10: 4 KiB (a valid value even though TTBR1 walks are off).
const TCR_TG1_4K: u64 = 0b10 << 30;
/// IPS = 0b001: 36-bit intermediate physical addresses (64 GiB) cover
/// everything mapped (up to 9 GiB).
const TCR_IPS_36BIT: u64 = 0b001 << 32;
pub const TCR_EL1: u64 = T0SZ << TCR_T0SZ_SHIFT
    | T1SZ << TCR_T1SZ_SHIFT
    | TCR_IRGN0_WBWA
    | TCR_ORGN0_WBWA
    | TCR_SH0_INNER
    | TCR_TG0_4K
    | TCR_EPD1
    | TCR_TG1_4K
    | TCR_IPS_36BIT;

// SCTLR_EL1.
/// Bits that are RES1 in Armv8.0 (11, 20, 22, 23, 28, 29; later
/// architecture versions give them meanings whose value 1 is the v8.0
/// behaviour: EOS, TSCXT, EIS, SPAN, nTLSMD, LSMAOE).
const SCTLR_RES1: u64 = (1 << 11) | (1 << 20) | (1 << 22) | (1 << 23) | (1 << 28) | (1 << 29);
pub const SCTLR_M: u64 = 1 << 0;
pub const SCTLR_C: u64 = 1 << 2;
/// SP alignment check at EL1.
const SCTLR_SA: u64 = 1 << 3;
pub const SCTLR_I: u64 = 1 << 12;
/// MMU, data and instruction caches on. A (alignment check) and WXN stay off:
/// Rust code may do unaligned accesses to Normal memory.
pub const SCTLR_EL1: u64 = SCTLR_RES1 | SCTLR_M | SCTLR_C | SCTLR_SA | SCTLR_I;

// Level-1 block descriptor fields.
const DESC_BLOCK: u64 = 0b01;
const DESC_ATTR_IDX_SHIFT: u64 = 2;
/// AP = 0b00: read/write at EL1, no EL0 access.
const DESC_AP_EL1_RW: u64 = 0b00 << 6;
/// AP = 0b01: read/write at EL1 and EL0.
const DESC_AP_EL0_RW: u64 = 0b01 << 6;
/// AP = 0b11: read-only at EL1 and EL0.
const DESC_AP_EL0_RO: u64 = 0b11 << 6;
const DESC_SH_INNER: u64 = 0b11 << 8;
/// Access flag set: no access flag faults.
const DESC_AF: u64 = 1 << 10;
const DESC_PXN: u64 = 1 << 53;
const DESC_UXN: u64 = 1 << 54;

const fn device_block(index: usize) -> u64 {
    (index as u64 * BLOCK_SIZE)
        | DESC_BLOCK
        | ATTR_IDX_DEVICE << DESC_ATTR_IDX_SHIFT
        | DESC_AP_EL1_RW
        | DESC_AF
        | DESC_PXN
        | DESC_UXN
}

const fn ram_block(index: usize) -> u64 {
    (index as u64 * BLOCK_SIZE)
        | DESC_BLOCK
        | ATTR_IDX_NORMAL << DESC_ATTR_IDX_SHIFT
        | DESC_AP_EL1_RW
        | DESC_SH_INNER
        | DESC_AF
        | DESC_UXN
}

/// IPA block `ipa_index` as EL0 code: executable at EL0 (never at EL1),
/// read-only at both.
const fn el0_code_block(ipa_index: usize) -> u64 {
    (ipa_index as u64 * BLOCK_SIZE)
        | DESC_BLOCK
        | ATTR_IDX_NORMAL << DESC_ATTR_IDX_SHIFT
        | DESC_AP_EL0_RO
        | DESC_SH_INNER
        | DESC_AF
        | DESC_PXN
}

/// Device block `ipa_index`, read/write from EL0, executable nowhere.
const fn el0_device_block(ipa_index: usize) -> u64 {
    (ipa_index as u64 * BLOCK_SIZE)
        | DESC_BLOCK
        | ATTR_IDX_DEVICE << DESC_ATTR_IDX_SHIFT
        | DESC_AP_EL0_RW
        | DESC_AF
        | DESC_PXN
        | DESC_UXN
}

/// A translation table: 512 descriptors, aligned to its size.
#[repr(C, align(4096))]
pub struct Table([u64; ENTRIES]);

const fn level1() -> Table {
    let mut t = [0; ENTRIES];
    t[DEVICE_ENTRY] = device_block(DEVICE_ENTRY);
    t[RAM_ENTRY] = ram_block(RAM_ENTRY);
    t[OUTSIDE_ENTRY] = device_block(OUTSIDE_ENTRY);
    t[EL0_RAM_ENTRY] = el0_code_block(RAM_ENTRY);
    t[EL0_OUTSIDE_ENTRY] = el0_device_block(OUTSIDE_ENTRY);
    t[EL0_DEVICE_ENTRY] = el0_device_block(DEVICE_ENTRY);
    Table(t)
}

/// The level-1 table TTBR0_EL1 points at. Built at compile time and read-only
/// (the access flag is preset and hardware updates are off), so nothing has to
/// write it while the MMU is off.
pub static L1_TABLE: Table = level1();
