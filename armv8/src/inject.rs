//! Injecting a synchronous exception into an AArch64 EL1 guest.
//!
//! The hypervisor emulates what the CPU would have done had the exception
//! been taken to the guest's EL1 (Arm ARM D1, "Exception entry"): save the
//! guest's PSTATE in SPSR_EL1 and its PC in ELR_EL1, write ESR_EL1 (and
//! FAR_EL1 for aborts), then `eret` to the guest's vector with PSTATE set
//! to EL1h, all of DAIF masked, IL and SS cleared.

use crate::esr::{Esr, ExceptionClass, FSC_SYNC_EXTERNAL};
use crate::pstate::{self, Mode};

/// Offset of the synchronous entry within a vector group.
pub const VECTOR_SYNC: u64 = 0x000;
/// Offset of the IRQ entry within a vector group.
pub const VECTOR_IRQ: u64 = 0x080;
/// Offset of the FIQ entry within a vector group.
pub const VECTOR_FIQ: u64 = 0x100;
/// Offset of the SError entry within a vector group.
pub const VECTOR_SERROR: u64 = 0x180;
/// Vector group: current EL using SP_EL0.
pub const VECTOR_CURRENT_SP0: u64 = 0x000;
/// Vector group: current EL using SP_ELx.
pub const VECTOR_CURRENT_SPX: u64 = 0x200;
/// Vector group: lower EL in AArch64.
pub const VECTOR_LOWER_A64: u64 = 0x400;
/// Vector group: lower EL in AArch32.
pub const VECTOR_LOWER_A32: u64 = 0x600;
/// VBAR_ELx\[10:0\] are RES0 (the table is 2 KiB aligned).
pub const VBAR_ALIGN_MASK: u64 = 0x7ff;

/// SCTLR_EL1.SPAN: when 0, taking an exception to EL1 sets PSTATE.PAN.
pub const SCTLR_SPAN: u64 = 1 << 23;
/// SCTLR_EL1.DSSBS: PSTATE.SSBS on exception entry to EL1.
pub const SCTLR_DSSBS: u64 = 1 << 44;

/// Optional PSTATE features the guest's CPU has; they decide which
/// PSTATE bits exception entry sets (all `false` gives the Armv8.0 rules).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestFeatures {
    /// FEAT_PAN: PAN is set on entry when SCTLR_EL1.SPAN is 0.
    pub pan: bool,
    /// FEAT_SSBS: SSBS is set from SCTLR_EL1.DSSBS.
    pub ssbs: bool,
    /// FEAT_MTE: TCO is set on entry.
    pub mte: bool,
}

/// The guest state at the trap, as EL2 sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestContext {
    /// SPSR_EL2: the guest's PSTATE when it trapped.
    pub spsr_el2: u64,
    /// ELR_EL2: the address the exception is reported for. For traps that
    /// leave ELR_EL2 on the faulting instruction (aborts, MSR/MRS, SMC,
    /// WFx) that is ELR_EL2 itself; after HVC (and SVC) ELR_EL2 already
    /// points past the instruction, so pass ELR_EL2 - 4.
    pub elr_el2: u64,
    /// VBAR_EL1: the guest's vector table base.
    pub vbar_el1: u64,
    /// SCTLR_EL1: read for SPAN and DSSBS.
    pub sctlr_el1: u64,
    /// Which optional PSTATE features the guest has.
    pub features: GuestFeatures,
}

/// The register writes that deliver the exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Injection {
    /// Value for ESR_EL1.
    pub esr_el1: Esr,
    /// Value for ELR_EL1 (the guest's preferred return address).
    pub elr_el1: u64,
    /// Value for SPSR_EL1 (the guest's PSTATE at the trap).
    pub spsr_el1: u64,
    /// Value for FAR_EL1, for aborts.
    pub far_el1: Option<u64>,
    /// New ELR_EL2: the vector entry the guest resumes at.
    pub pc: u64,
    /// New SPSR_EL2: the PSTATE the guest resumes with.
    pub pstate: u64,
}

/// Why an exception cannot be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectError {
    /// The guest was not at EL0 or EL1 (SPSR_EL2 claims EL2/EL3 or a
    /// reserved mode), so there is no EL1 to deliver to.
    UnsupportedMode {
        /// The offending SPSR_EL2.
        spsr: u64,
    },
}

impl core::fmt::Display for InjectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InjectError::UnsupportedMode { spsr } => {
                write!(f, "cannot inject into the guest: SPSR_EL2 {spsr:#x} is not an EL0/EL1 mode")
            }
        }
    }
}

/// Where the guest was when the exception happened, relative to EL1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// EL1 with SP_EL0.
    CurrentSp0,
    /// EL1 with SP_EL1.
    CurrentSpx,
    /// EL0 in AArch64.
    LowerA64,
    /// EL0 in AArch32.
    LowerA32,
}

impl Source {
    /// Derives the source from the guest's SPSR.
    pub const fn from_spsr(spsr: u64) -> Result<Self, InjectError> {
        match Mode::from_spsr(spsr) {
            Mode::El1t => Ok(Source::CurrentSp0),
            Mode::El1h => Ok(Source::CurrentSpx),
            Mode::El0t => Ok(Source::LowerA64),
            // AArch32 user mode (M[3:0] = 0b0000, "usr") is the only
            // AArch32 mode under an AArch64 EL1.
            Mode::Aarch32(0) => Ok(Source::LowerA32),
            _ => Err(InjectError::UnsupportedMode { spsr }),
        }
    }

    /// Offset of this source's vector group from VBAR_EL1.
    pub const fn vector_group(self) -> u64 {
        match self {
            Source::CurrentSp0 => VECTOR_CURRENT_SP0,
            Source::CurrentSpx => VECTOR_CURRENT_SPX,
            Source::LowerA64 => VECTOR_LOWER_A64,
            Source::LowerA32 => VECTOR_LOWER_A32,
        }
    }

    /// Whether the exception came from EL0 (a "lower EL" for ESR.EC).
    pub const fn is_lower(self) -> bool {
        matches!(self, Source::LowerA64 | Source::LowerA32)
    }
}

/// Length of the instruction an exception is reported for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstrLen {
    /// A 16-bit T32 instruction (ESR.IL = 0).
    Bits16,
    /// A 32-bit instruction, every A64 one (ESR.IL = 1).
    Bits32,
}

/// The PSTATE exception entry to EL1 sets, from the guest's old PSTATE.
pub const fn entry_pstate(ctx: &GuestContext) -> u64 {
    let old = ctx.spsr_el2;
    // Kept across entry: the condition flags and DIT.
    let mut new = old & (pstate::N | pstate::Z | pstate::C | pstate::V | pstate::DIT);
    new |= pstate::M_EL1H | pstate::DAIF;
    // Cleared: IL, SS, nRW, BTYPE, UAO, ALLINT (not set: no NMI support).
    if ctx.features.pan {
        new |= old & pstate::PAN;
        if ctx.sctlr_el1 & SCTLR_SPAN == 0 {
            new |= pstate::PAN;
        }
    }
    if ctx.features.ssbs && ctx.sctlr_el1 & SCTLR_DSSBS != 0 {
        new |= pstate::SSBS;
    }
    if ctx.features.mte {
        new |= pstate::TCO;
    }
    new
}

fn deliver(ctx: &GuestContext, esr: Esr, far: Option<u64>) -> Result<Injection, InjectError> {
    let source = Source::from_spsr(ctx.spsr_el2)?;
    Ok(Injection {
        esr_el1: esr,
        elr_el1: ctx.elr_el2,
        spsr_el1: ctx.spsr_el2,
        far_el1: far,
        pc: (ctx.vbar_el1 & !VBAR_ALIGN_MASK) + source.vector_group() + VECTOR_SYNC,
        pstate: entry_pstate(ctx),
    })
}

/// An UNDEFINED instruction exception (EC 0x00) for the instruction at
/// `ctx.elr_el2`. ESR.IL is 1 whatever the instruction's length: the Arm
/// ARM makes IL RES1 for EC 0x00 (a 16-bit T32 UDF taken natively reports
/// IL 1 too), so the guest finds the length from the instruction itself.
pub fn undef(ctx: &GuestContext) -> Result<Injection, InjectError> {
    let esr = Esr::new(ExceptionClass::UnknownReason, true, 0);
    deliver(ctx, esr, None)
}

/// A synchronous external data abort on `address` (DFSC 0x10, ISV = 0,
/// so IL is RES1), reported as a write if `write`.
pub fn data_abort(ctx: &GuestContext, address: u64, write: bool) -> Result<Injection, InjectError> {
    let source = Source::from_spsr(ctx.spsr_el2)?;
    let ec = if source.is_lower() { ExceptionClass::DataAbortLower } else { ExceptionClass::DataAbortSame };
    let wnr = if write { 1 << 6 } else { 0 };
    let esr = Esr::new(ec, true, u32::from(FSC_SYNC_EXTERNAL) | wnr);
    deliver(ctx, esr, Some(address))
}

/// A synchronous external instruction abort on `address` (IFSC 0x10).
pub fn instr_abort(ctx: &GuestContext, address: u64) -> Result<Injection, InjectError> {
    let source = Source::from_spsr(ctx.spsr_el2)?;
    let ec = if source.is_lower() { ExceptionClass::InstrAbortLower } else { ExceptionClass::InstrAbortSame };
    let esr = Esr::new(ec, true, u32::from(FSC_SYNC_EXTERNAL));
    deliver(ctx, esr, Some(address))
}
