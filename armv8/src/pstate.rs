//! PSTATE as saved in SPSR_ELx (AArch64 format).

/// Mask of SPSR.M\[3:0\] (exception level and stack pointer selection).
pub const M_MASK: u64 = 0xf;
/// M\[3:0\]: EL0 with SP_EL0.
pub const M_EL0T: u64 = 0b0000;
/// M\[3:0\]: EL1 with SP_EL0.
pub const M_EL1T: u64 = 0b0100;
/// M\[3:0\]: EL1 with SP_EL1.
pub const M_EL1H: u64 = 0b0101;
/// M\[3:0\]: EL2 with SP_EL0.
pub const M_EL2T: u64 = 0b1000;
/// M\[3:0\]: EL2 with SP_EL2.
pub const M_EL2H: u64 = 0b1001;
/// M\[4\] (nRW): the interrupted state was AArch32.
pub const NRW: u64 = 1 << 4;
/// FIQ mask.
pub const F: u64 = 1 << 6;
/// IRQ mask.
pub const I: u64 = 1 << 7;
/// SError (asynchronous abort) mask.
pub const A: u64 = 1 << 8;
/// Debug exception mask.
pub const D: u64 = 1 << 9;
/// All four DAIF masks.
pub const DAIF: u64 = D | A | I | F;
/// BTYPE\[1:0\] (FEAT_BTI).
pub const BTYPE_MASK: u64 = 0b11 << 10;
/// Speculative Store Bypass Safe (FEAT_SSBS).
pub const SSBS: u64 = 1 << 12;
/// All interrupts mask (FEAT_NMI).
pub const ALLINT: u64 = 1 << 13;
/// Illegal Execution state.
pub const IL: u64 = 1 << 20;
/// Software step.
pub const SS: u64 = 1 << 21;
/// Privileged Access Never (FEAT_PAN).
pub const PAN: u64 = 1 << 22;
/// User Access Override (FEAT_UAO).
pub const UAO: u64 = 1 << 23;
/// Data Independent Timing (FEAT_DIT).
pub const DIT: u64 = 1 << 24;
/// Tag Check Override (FEAT_MTE).
pub const TCO: u64 = 1 << 25;
/// Overflow flag.
pub const V: u64 = 1 << 28;
/// Carry flag.
pub const C: u64 = 1 << 29;
/// Zero flag.
pub const Z: u64 = 1 << 30;
/// Negative flag.
pub const N: u64 = 1 << 31;

/// The execution state and exception level an SPSR describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// AArch64 EL0.
    El0t,
    /// AArch64 EL1 using SP_EL0.
    El1t,
    /// AArch64 EL1 using SP_EL1.
    El1h,
    /// AArch64 EL2 using SP_EL0.
    El2t,
    /// AArch64 EL2 using SP_EL2.
    El2h,
    /// Any AArch32 mode (M\[4\] set), with its M\[3:0\].
    Aarch32(u8),
    /// An M\[3:0\] value that is reserved or names EL3.
    Other(u8),
}

impl Mode {
    /// Decodes SPSR.M\[4:0\].
    pub const fn from_spsr(spsr: u64) -> Self {
        let m = (spsr & M_MASK) as u8;
        if spsr & NRW != 0 {
            return Mode::Aarch32(m);
        }
        match spsr & M_MASK {
            M_EL0T => Mode::El0t,
            M_EL1T => Mode::El1t,
            M_EL1H => Mode::El1h,
            M_EL2T => Mode::El2t,
            M_EL2H => Mode::El2h,
            _ => Mode::Other(m),
        }
    }
}
