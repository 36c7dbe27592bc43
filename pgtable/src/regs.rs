//! Encodings of the translation control registers that go with these tables.

use crate::{start_level_for, PageTable, Regime};

/// ID_AA64MMFR0_EL1.PARange → physical address bits.
pub const fn pa_bits_from_parange(parange: u64) -> Option<u32> {
    Some(match parange {
        0b0000 => 32,
        0b0001 => 36,
        0b0010 => 40,
        0b0011 => 42,
        0b0100 => 44,
        0b0101 => 48,
        0b0110 => 52,
        _ => return None,
    })
}

/// Largest PA size these tables can describe (no 52-bit output addresses).
pub const MAX_PA_BITS: u32 = 48;

/// The PARange/PS/IPS encoding for an address size (inverse of
/// [`pa_bits_from_parange`], capped at [`MAX_PA_BITS`]).
pub const fn ps_field(pa_bits: u32) -> u64 {
    match pa_bits {
        0..=32 => 0b000,
        33..=36 => 0b001,
        37..=40 => 0b010,
        41..=42 => 0b011,
        43..=44 => 0b100,
        _ => 0b101,
    }
}

// Fields common to TCR_EL2 and VTCR_EL2 for the TTBR0 / VTTBR walk.
const IRGN0_WBWA: u64 = 0b01 << 8;
const ORGN0_WBWA: u64 = 0b01 << 10;
const SH0_INNER: u64 = 0b11 << 12;
const TG0_4K: u64 = 0b00 << 14;
/// TCR_EL2 (nVHE) RES1 bits 31 and 23.
const TCR_EL2_RES1: u64 = (1 << 31) | (1 << 23);
const TCR_EL2_PS_SHIFT: u32 = 16;
/// VTCR_EL2 RES1 bit 31.
const VTCR_EL2_RES1: u64 = 1 << 31;
const VTCR_SL0_SHIFT: u32 = 6;
const VTCR_PS_SHIFT: u32 = 16;

/// TCR_EL2 for an EL2 stage-1 tree with `va_bits` of VA and `pa_bits` of PA.
pub const fn tcr_el2(va_bits: u32, pa_bits: u32) -> u64 {
    TCR_EL2_RES1
        | (64 - va_bits) as u64
        | IRGN0_WBWA
        | ORGN0_WBWA
        | SH0_INNER
        | TG0_4K
        | (ps_field(pa_bits) << TCR_EL2_PS_SHIFT)
}

/// TCR_EL1 for a host kernel using TTBR0 (low half) and TTBR1 (high half),
/// both with `va_bits` of VA and the 4K granule.
pub const fn tcr_el1(va_bits: u32, pa_bits: u32) -> u64 {
    const IRGN1_WBWA: u64 = 0b01 << 24;
    const ORGN1_WBWA: u64 = 0b01 << 26;
    const SH1_INNER: u64 = 0b11 << 28;
    const TG1_4K: u64 = 0b10 << 30;
    const T1SZ_SHIFT: u32 = 16;
    const IPS_SHIFT: u32 = 32;
    let tsz = (64 - va_bits) as u64;
    tsz | IRGN0_WBWA
        | ORGN0_WBWA
        | SH0_INNER
        | TG0_4K
        | (tsz << T1SZ_SHIFT)
        | IRGN1_WBWA
        | ORGN1_WBWA
        | SH1_INNER
        | TG1_4K
        | (ps_field(pa_bits) << IPS_SHIFT)
}

/// The IPA size for guests on a CPU with `pa_bits` of PA. With the 4K
/// granule, a stage-2 walk may start at level 0 (SL0 = 0b10) only when the
/// PA size is at least 44 bits (Arm ARM, VTCR_EL2.SL0; the encoding is
/// reserved below that), so smaller CPUs get a 39-bit IPA starting at level
/// 1 (no concatenated root tables needed).
pub const fn stage2_ipa_bits(pa_bits: u32) -> u32 {
    const LEVEL0_START_MIN_PA: u32 = 44;
    const LEVEL1_START_MAX_IPA: u32 = 39;
    if pa_bits >= LEVEL0_START_MIN_PA {
        if pa_bits < MAX_PA_BITS {
            pa_bits
        } else {
            MAX_PA_BITS
        }
    } else if pa_bits < LEVEL1_START_MAX_IPA {
        pa_bits
    } else {
        LEVEL1_START_MAX_IPA
    }
}

/// VTCR_EL2 SL0 encoding for the 4K granule: which level the walk starts at.
const fn sl0(start_level: usize) -> u64 {
    match start_level {
        0 => 0b10,
        1 => 0b01,
        _ => 0b00,
    }
}

/// VTCR_EL2 for a stage-2 tree with `ipa_bits` of IPA, on a CPU with `pa_bits`.
pub const fn vtcr_el2(ipa_bits: u32, pa_bits: u32) -> u64 {
    VTCR_EL2_RES1
        | (64 - ipa_bits) as u64
        | (sl0(start_level_for(ipa_bits)) << VTCR_SL0_SHIFT)
        | IRGN0_WBWA
        | ORGN0_WBWA
        | SH0_INNER
        | TG0_4K
        | (ps_field(pa_bits) << VTCR_PS_SHIFT)
}

/// VTTBR_EL2.VMID field position (8-bit VMIDs).
const VTTBR_VMID_SHIFT: u32 = 48;
/// Number of 8-bit VMIDs.
pub const VMID_COUNT: usize = 256;

/// VTTBR_EL2 for a stage-2 tree and its VMID.
pub fn vttbr_el2(table: &PageTable, vmid: u8) -> u64 {
    debug_assert_eq!(table.regime(), Regime::Stage2);
    table.root_pa() | ((vmid as u64) << VTTBR_VMID_SHIFT)
}
