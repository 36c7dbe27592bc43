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

/// AArch32 state (SPSR.M\[4\] set), as SPSR_EL2 holds it for an exception
/// taken from AArch32 EL0.
pub mod aarch32 {
    use super::{C, N, NRW, SS, V, Z};

    /// SPSR.M\[4:0\] of AArch32 User mode.
    pub const M_USR: u64 = NRW;
    /// T32 state (SPSR.T, bit 5).
    pub const T: u64 = 1 << 5;
    /// ITSTATE\[1:0\] in SPSR\[26:25\].
    pub const IT_LOW_SHIFT: u64 = 25;
    /// ITSTATE\[7:2\] in SPSR\[15:10\].
    pub const IT_HIGH_SHIFT: u64 = 10;
    /// All eight ITSTATE bits in the SPSR.
    pub const IT_MASK: u64 = 0b11 << IT_LOW_SHIFT | 0x3f << IT_HIGH_SHIFT;
    /// The NZCV flags' position (SPSR\[31:28\]).
    pub const NZCV_SHIFT: u64 = 28;
    /// The NZCV flags.
    pub const NZCV: u64 = N | Z | C | V;

    /// ITSTATE\[7:0\] from an AArch32 SPSR.
    pub const fn it_state(spsr: u64) -> u8 {
        ((spsr >> IT_HIGH_SHIFT & 0x3f) << 2 | (spsr >> IT_LOW_SHIFT & 0b11)) as u8
    }

    /// `spsr` with ITSTATE replaced by `it`.
    pub const fn with_it_state(spsr: u64, it: u8) -> u64 {
        let it = it as u64;
        spsr & !IT_MASK | (it >> 2) << IT_HIGH_SHIFT | (it & 0b11) << IT_LOW_SHIFT
    }

    /// ITSTATE after one instruction of an IT block completes (Arm ARM
    /// "ITAdvance"): the block ends when IT\[2:0\] is zero, else IT\[4:0\]
    /// shifts left by one (the next instruction's condition and mask).
    pub const fn it_advance(it: u8) -> u8 {
        if it & 0b111 == 0 {
            0
        } else {
            it & 0b1110_0000 | (it << 1) & 0b1_1111
        }
    }

    /// Whether condition code `cond` (0..=15) passes with the flags of
    /// `spsr` (Arm ARM "ConditionHolds"; 0b1111 passes like AL).
    pub const fn condition_holds(cond: u8, spsr: u64) -> bool {
        let (n, z, c, v) = (spsr & N != 0, spsr & Z != 0, spsr & C != 0, spsr & V != 0);
        let base = match cond >> 1 {
            0 => z,
            1 => c,
            2 => n,
            3 => v,
            4 => c && !z,
            5 => n == v,
            6 => n == v && !z,
            _ => return true,
        };
        // Odd codes are the inverse of the even ones below them.
        base != (cond & 1 != 0)
    }

    /// Whether a trapped AArch32 instruction with syndrome condition
    /// `cond` passed its condition (KVM's `kvm_condition_valid32` rules:
    /// CV = 0 means the condition is the IT block's, IT\[7:4\]; no IT block
    /// means unconditional).
    pub const fn trap_condition_passed(cond: crate::esr::TrapCondition, spsr: u64) -> bool {
        use crate::esr::TrapCondition;
        match cond {
            TrapCondition::Always => true,
            TrapCondition::Code(c) => condition_holds(c, spsr),
            TrapCondition::FromItState => match it_state(spsr) {
                0 => true,
                it => condition_holds(it >> 4, spsr),
            },
        }
    }

    /// The guest's PC and SPSR after EL2 completes (or skips) the AArch32
    /// instruction at `pc`, `len` bytes long (ESR.IL: 2 for a 16-bit T32
    /// instruction, else 4): the PC moves past it, ITSTATE advances in T32
    /// (an instruction inside an IT block consumes its slot whether it ran
    /// or was skipped) and PSTATE.SS is cleared (a step completed). PCs of
    /// AArch32 state are 32-bit and wrap as the CPU's do.
    pub const fn step(pc: u64, spsr: u64, len: u64) -> (u64, u64) {
        let pc = pc.wrapping_add(len) & 0xffff_ffff;
        let mut spsr = spsr & !SS;
        if spsr & T != 0 {
            spsr = with_it_state(spsr, it_advance(it_state(spsr)));
        }
        (pc, spsr)
    }
}
