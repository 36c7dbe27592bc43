//! A software model of one SPE unit, for machines without SPE (QEMU).
//!
//! The model holds the SPE registers the host programs, turns each sample
//! it is given (e.g. from a PMUv3 overflow interrupt) into a fixed-size SPE
//! record kept in an internal pending buffer, exactly like hardware's
//! internal buffering, and writes those records to memory only when
//! [`SpeModel::drain`] is called: on `psb csync`, and whenever the
//! embedding code wants the model to behave like an eagerly writing unit.
//!
//! A drain writes at PMBPTR_EL1 through whichever translation regime owns
//! the buffer *at that instant* (the [`BufferWriter`] does the `at s1e2w` /
//! `at s1e1w` / `at s12e1w`). The host tells the model where it meant its
//! buffer to be ([`SpeModel::set_intended_buffer`]); a write that resolves
//! anywhere else is a *misdirected write*: counted and never performed, so
//! the model cannot corrupt memory even when the world switch is wrong.
//!
//! Real hardware may write through an enabled buffer at any instant, not
//! only at a drain, so the model also *judges the regime* without moving a
//! byte ([`SpeModel::judge_regime`]): it resolves PMBPTR_EL1 through the
//! live regime and counts anything but the host's buffer as misdirected.
//! [`SpeModel::write_judged`] does that around every register write made by
//! code that may run under another regime (EL2's world switch), and
//! [`SpeModel::drain`] does it even when nothing is pending.
//!
//! Hardware rules modelled:
//! * sampling needs PMSCR_EL1.E0SPE/E1SPE (EL0/EL1) or PMSCR_EL2.E2SPE (EL2),
//!   PMBLIMITR_EL1.E == 1 and PMBSR_EL1.S == 0;
//! * PMSFCR_EL1 filtering by events (PMSEVFR_EL1), type (B/LD/ST) and
//!   latency (PMSLATFR_EL1);
//! * PMSCR.TS selects TIMESTAMP vs END, PMSCR.PA (with PMSCR_EL2.PA for
//!   EL0/EL1) the physical address packet, PMSCR.CX the context packet;
//! * fill mode: a record that does not fit below PMBLIMITR_EL1.LIMIT raises
//!   a buffer management event (PMBSR_EL1.S = 1, EC = buffer management,
//!   BSC = buffer filled), asserts the interrupt and stops collection;
//!   the remaining buffered records are lost. Discard mode (FM = 0b10)
//!   discards output. Reserved FM values behave as fill mode;
//! * a translation fault on a buffer write sets PMBSR_EL1 (S = 1, EC =
//!   stage 1 / stage 2 data abort, FSC) and stops collection;
//! * the host acknowledges by writing PMBSR_EL1 with S = 0;
//! * RES0 bits read as zero, PMBLIMITR_EL1.LIMIT is page granular, ID
//!   registers ignore writes.
//!
//! The sampling interval (PMSIRR_EL1) is stored for read-back only: each
//! [`SpeModel::sample`] call is an operation already selected for sampling
//! (the interval is realised by the PMU overflow period upstream).

use crate::encode::encode_padded;
use crate::packet::{op, CodeAddress, Events, OpClass, OpType, PhysAddress};
use crate::record::Record;
use crate::regs::{
    field_mask, SpeReg, PMBIDR_EL1, PMBLIMITR_EL1, PMBSR_EL1, PMSCR_EL1, PMSCR_EL2, PMSEVFR_EL1, PMSFCR_EL1,
    PMSICR_EL1, PMSIDR_EL1, PMSIRR_EL1, PMSLATFR_EL1,
};

/// Size of every record the model produces (a power of two, like the
/// 64-byte records of common implementations).
pub const RECORD_SIZE: usize = 64;
/// Capacity of the internal pending buffer in bytes.
pub const PENDING_CAPACITY: usize = 4096;
/// Records the pending buffer holds.
pub const PENDING_RECORDS: usize = PENDING_CAPACITY / RECORD_SIZE;
/// Translation granule used to split buffer writes.
pub const PAGE_SIZE: u64 = 4096;
/// PMSVer the model implements (SPEv1p2: discard mode, PMFZ).
pub const MODEL_PMSVER: u8 = 3;

const RECORD_SIZE_LOG2: u64 = RECORD_SIZE.trailing_zeros() as u64;
const COUNT_SIZE_16BIT: u64 = 0b0011;

/// PMSIDR_EL1 the model reports: event, type and latency filtering,
/// 64-byte maximum record, 16-bit counters, minimum interval 256.
pub const MODEL_PMSIDR: u64 = PMSIDR_EL1::FE.val(1).value
    | PMSIDR_EL1::FT.val(1).value
    | PMSIDR_EL1::FL.val(1).value
    | PMSIDR_EL1::MaxSize.val(RECORD_SIZE_LOG2).value
    | PMSIDR_EL1::CountSize.val(COUNT_SIZE_16BIT).value;
/// PMBIDR_EL1 the model reports: PMBPTR aligned to the record size,
/// programming allowed, no hardware flag updates.
pub const MODEL_PMBIDR: u64 = PMBIDR_EL1::Align.val(RECORD_SIZE_LOG2).value;

const PMSCR_EL1_MASK: u64 = field_mask(PMSCR_EL1::E0SPE)
    | field_mask(PMSCR_EL1::E1SPE)
    | field_mask(PMSCR_EL1::CX)
    | field_mask(PMSCR_EL1::PA)
    | field_mask(PMSCR_EL1::TS)
    | field_mask(PMSCR_EL1::PCT);
const PMSCR_EL2_MASK: u64 = field_mask(PMSCR_EL2::E0HSPE)
    | field_mask(PMSCR_EL2::E2SPE)
    | field_mask(PMSCR_EL2::CX)
    | field_mask(PMSCR_EL2::PA)
    | field_mask(PMSCR_EL2::TS)
    | field_mask(PMSCR_EL2::PCT);
const PMSICR_MASK: u64 = field_mask(PMSICR_EL1::COUNT) | field_mask(PMSICR_EL1::ECOUNT);
const PMSIRR_MASK: u64 = field_mask(PMSIRR_EL1::INTERVAL) | field_mask(PMSIRR_EL1::RND);
const PMSFCR_MASK: u64 = field_mask(PMSFCR_EL1::FE)
    | field_mask(PMSFCR_EL1::FT)
    | field_mask(PMSFCR_EL1::FL)
    | field_mask(PMSFCR_EL1::B)
    | field_mask(PMSFCR_EL1::LD)
    | field_mask(PMSFCR_EL1::ST);
/// IMPLEMENTATION DEFINED event bits of PMSEVFR_EL1 (12-15, 24-31, 48-63).
const PMSEVFR_IMPDEF_MASK: u64 = 0xffff_0000_ff00_f000;
const PMSEVFR_MASK: u64 = field_mask(PMSEVFR_EL1::E1)
    | field_mask(PMSEVFR_EL1::E3)
    | field_mask(PMSEVFR_EL1::E5)
    | field_mask(PMSEVFR_EL1::E6)
    | field_mask(PMSEVFR_EL1::E7)
    | field_mask(PMSEVFR_EL1::E11)
    | field_mask(PMSEVFR_EL1::E17)
    | field_mask(PMSEVFR_EL1::E18)
    | PMSEVFR_IMPDEF_MASK;
const PMSLATFR_MASK: u64 = field_mask(PMSLATFR_EL1::MINLAT);
const PMBLIMITR_MASK: u64 = field_mask(PMBLIMITR_EL1::LIMIT)
    | field_mask(PMBLIMITR_EL1::PMFZ)
    | field_mask(PMBLIMITR_EL1::FM)
    | field_mask(PMBLIMITR_EL1::E);
const PMBSR_MASK: u64 = field_mask(PMBSR_EL1::EC)
    | field_mask(PMBSR_EL1::DL)
    | field_mask(PMBSR_EL1::EA)
    | field_mask(PMBSR_EL1::S)
    | field_mask(PMBSR_EL1::COLL)
    | field_mask(PMBSR_EL1::MSS);
const FM_DISCARD: u64 = 0b10;
const EC_BUFFER_MANAGEMENT: u64 = 0b00_0000;
const EC_STAGE1_DATA_ABORT: u64 = 0b10_0100;
const EC_STAGE2_DATA_ABORT: u64 = 0b10_0101;
const BSC_BUFFER_FILLED: u64 = 0b00_0001;
const FSC_MASK: u8 = 0x3f;
const FSC_TRANSLATION_LEVEL0: u8 = 0b00_0100;
const FSC_PERMISSION_LEVEL0: u8 = 0b00_1100;
const FSC_LEVEL_MASK: u8 = 0x3;

/// A register of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelReg {
    /// PMSCR_EL1 (also reached through PMSCR_EL12).
    PmscrEl1,
    /// PMSCR_EL2.
    PmscrEl2,
    /// PMSICR_EL1.
    PmsicrEl1,
    /// PMSIRR_EL1.
    PmsirrEl1,
    /// PMSFCR_EL1.
    PmsfcrEl1,
    /// PMSEVFR_EL1.
    PmsevfrEl1,
    /// PMSLATFR_EL1.
    PmslatfrEl1,
    /// PMSIDR_EL1 (read-only).
    PmsidrEl1,
    /// PMBLIMITR_EL1.
    PmblimitrEl1,
    /// PMBPTR_EL1.
    PmbptrEl1,
    /// PMBSR_EL1.
    PmbsrEl1,
    /// PMBIDR_EL1 (read-only).
    PmbidrEl1,
}

impl ModelReg {
    /// The modelled register behind an architectural one (`None` for
    /// registers the model does not implement, which read as zero).
    pub const fn from_spe_reg(reg: SpeReg) -> Option<Self> {
        Some(match reg {
            SpeReg::PmscrEl1 | SpeReg::PmscrEl12 => ModelReg::PmscrEl1,
            SpeReg::PmscrEl2 => ModelReg::PmscrEl2,
            SpeReg::PmsnevfrEl1 => return None,
            SpeReg::PmsicrEl1 => ModelReg::PmsicrEl1,
            SpeReg::PmsirrEl1 => ModelReg::PmsirrEl1,
            SpeReg::PmsfcrEl1 => ModelReg::PmsfcrEl1,
            SpeReg::PmsevfrEl1 => ModelReg::PmsevfrEl1,
            SpeReg::PmslatfrEl1 => ModelReg::PmslatfrEl1,
            SpeReg::PmsidrEl1 => ModelReg::PmsidrEl1,
            SpeReg::PmblimitrEl1 => ModelReg::PmblimitrEl1,
            SpeReg::PmbptrEl1 => ModelReg::PmbptrEl1,
            SpeReg::PmbsrEl1 => ModelReg::PmbsrEl1,
            SpeReg::PmbidrEl1 => ModelReg::PmbidrEl1,
        })
    }

    /// For a trapped MRS/MSR: the modelled register with this encoding.
    pub fn from_encoding(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Option<Self> {
        SpeReg::from_encoding(op0, op1, crn, crm, op2).and_then(Self::from_spe_reg)
    }
}

/// Kind of the sampled operation, with its operation-specific data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Any other operation.
    Other,
    /// A general-purpose register load.
    Load {
        /// Data virtual address.
        va: u64,
        /// Data physical address.
        pa: u64,
        /// Translation latency.
        xlat_latency: u16,
    },
    /// A general-purpose register store.
    Store {
        /// Data virtual address.
        va: u64,
        /// Data physical address.
        pa: u64,
        /// Translation latency.
        xlat_latency: u16,
    },
    /// A branch.
    Branch {
        /// Target address (same EL and security state as the branch).
        target: u64,
        /// Conditional branch.
        conditional: bool,
        /// Indirect branch.
        indirect: bool,
    },
}

/// One sampled operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Virtual address of the sampled instruction.
    pub pc: u64,
    /// Exception level it ran at (0, 1 or 2).
    pub el: u8,
    /// Non-secure state.
    pub ns: bool,
    /// Timestamp (e.g. CNTVCT/CNTPCT) at sampling.
    pub timestamp: u64,
    /// Operation.
    pub op: OpKind,
    /// Events bitmask ([`crate::packet::event`]).
    pub events: u32,
    /// Total latency in cycles.
    pub total_latency: u16,
    /// Issue latency in cycles.
    pub issue_latency: u16,
    /// CONTEXTIDR of the sample's regime (EL1 for EL0/EL1, EL2 for EL2).
    pub context: Option<u32>,
}

/// What happened to a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleOutcome {
    /// Encoded into the pending buffer.
    Recorded,
    /// Profiling is not enabled for the sample's EL, the buffer is
    /// disabled, or collection is stopped (PMBSR_EL1.S == 1).
    Disabled,
    /// Removed by PMSFCR_EL1 filtering.
    Filtered,
    /// The pending buffer was full; the record is lost.
    Lost,
}

/// Stage of a translation fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultStage {
    /// Stage 1 (the owning regime's own tables).
    Stage1,
    /// Stage 2 (the hypervisor's tables for a guest regime).
    Stage2,
}

/// A buffer write that could not be translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TranslationFault {
    /// Which stage faulted.
    pub stage: FaultStage,
    /// Fault status code (DFSC encoding, 6 bits).
    pub fsc: u8,
}

impl TranslationFault {
    /// A translation fault at `level` (0..=3).
    pub const fn translation(stage: FaultStage, level: u8) -> Self {
        Self { stage, fsc: FSC_TRANSLATION_LEVEL0 | (level & FSC_LEVEL_MASK) }
    }

    /// A permission fault at `level` (0..=3).
    pub const fn permission(stage: FaultStage, level: u8) -> Self {
        Self { stage, fsc: FSC_PERMISSION_LEVEL0 | (level & FSC_LEVEL_MASK) }
    }
}

/// PAR_EL1.F: the address translation instruction faulted.
const PAR_F: u64 = 1 << 0;
/// PAR_EL1.S (when F = 1): the fault was at stage 2.
const PAR_S: u64 = 1 << 9;
/// PAR_EL1.FST (when F = 1), bits [6:1].
const PAR_FST_SHIFT: u64 = 1;
/// PAR_EL1.PA (when F = 0), bits [47:12].
const PAR_PA_MASK: u64 = 0x0000_ffff_ffff_f000;

/// Turns the PAR_EL1 value left by an `at` instruction for `va` into the
/// physical address, or the fault it reported. Shared by every writer that
/// translates with `at` (EL2's and the host's).
pub fn par_to_pa(par: u64, va: u64) -> Result<u64, TranslationFault> {
    if par & PAR_F != 0 {
        let stage = if par & PAR_S != 0 { FaultStage::Stage2 } else { FaultStage::Stage1 };
        let fsc = ((par >> PAR_FST_SHIFT) & 0x3f) as u8;
        return Err(TranslationFault { stage, fsc });
    }
    Ok((par & PAR_PA_MASK) | (va & (PAGE_SIZE - 1)))
}

/// How a drain reaches memory: translation through the regime that owns
/// the buffer right now, and physical writes.
pub trait BufferWriter {
    /// Translates a buffer virtual address for a write (`at s1e2w`,
    /// `at s1e1w` or `at s12e1w` depending on the owning regime).
    fn translate(&mut self, va: u64) -> Result<u64, TranslationFault>;
    /// Writes `bytes` at physical address `pa` (never crosses a page).
    fn write(&mut self, pa: u64, bytes: &[u8]);
}

/// Copies bytes `[offset, offset + len)` of a model between shared memory
/// and a private working copy ([`SpeModel::load`], [`SpeModel::store`] and
/// the TRBE model's). A plain copy (a volatile read of a whole struct is
/// done byte by byte); the fences keep the compiler from touching the
/// source again in place of the copy.
///
/// # Safety
/// `from` and `to` point to distinct models of the same `repr(C)` type
/// whose bytes `[offset, offset + len)` are plain integers, readable at
/// `from` and writable at `to`.
pub(crate) unsafe fn copy_model(from: *const u8, to: *mut u8, offset: usize, len: usize) {
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    // The header (offset 0, a multiple of 8 bytes at 8-byte aligned models)
    // word by word, inline: a few hundred bytes at every world switch, where
    // a `memcpy` call costs about three times as much. The volatile read
    // keeps the loop from being turned back into a `memcpy` call.
    if offset == 0 && len.is_multiple_of(8) && (from as usize | to as usize).is_multiple_of(8) {
        let (f, t) = (from.cast::<u64>(), to.cast::<u64>());
        for i in 0..len / 8 {
            // SAFETY: forwarded from the caller; aligned (checked above).
            unsafe { t.add(i).write(f.add(i).read_volatile()) };
        }
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { core::ptr::copy_nonoverlapping(from.add(offset), to.add(offset), len) };
    }
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// Where the host meant its buffer to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntendedBuffer {
    /// Virtual base address in the owner's regime.
    pub va_base: u64,
    /// Physical address `va_base` maps to (contiguous).
    pub pa_base: u64,
    /// Size in bytes.
    pub size: u64,
}

impl IntendedBuffer {
    /// The intended PA of `[va, va + len)`, or `None` if outside.
    pub fn pa_of(&self, va: u64, len: u64) -> Option<u64> {
        let off = va.checked_sub(self.va_base)?;
        (off.checked_add(len)? <= self.size).then(|| self.pa_base.wrapping_add(off))
    }
}

/// Whether the regime live for `w` translates the buffer pointer `ptr` to
/// where the host meant it (`intended`): the judgement the SPE and TRBE
/// models make at every enable, EL2 write and drain.
pub fn lands_in_intended<W: BufferWriter>(intended: Option<IntendedBuffer>, ptr: u64, w: &mut W) -> bool {
    let want = intended.and_then(|b| b.pa_of(ptr, 1));
    matches!(w.translate(ptr), Ok(pa) if want == Some(pa))
}

/// Why collection stopped during a drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The next record did not fit below the limit.
    BufferFull,
    /// A buffer write faulted.
    Fault(TranslationFault),
}

/// Result of one drain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Records written to memory.
    pub records_written: u64,
    /// Bytes written to memory.
    pub bytes_written: u64,
    /// Records lost (buffer disabled, stopped, full or faulted).
    pub lost: u64,
    /// Records discarded in discard mode.
    pub discarded: u64,
    /// Records that would have been written somewhere else.
    pub misdirected: u64,
    /// The buffer management event raised, if any.
    pub stop: Option<StopReason>,
}

/// Cumulative counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Calls to [`SpeModel::sample`].
    pub samples: u64,
    /// Samples ignored because profiling was not enabled.
    pub disabled: u64,
    /// Samples removed by filters.
    pub filtered: u64,
    /// Records encoded into the pending buffer.
    pub records_produced: u64,
    /// Records written to memory.
    pub records_written: u64,
    /// Bytes written to memory.
    pub bytes_written: u64,
    /// Records lost (pending buffer full, or dropped by a drain).
    pub lost: u64,
    /// Records discarded in discard mode.
    pub discarded: u64,
    /// Writes that resolved outside the intended buffer (or faulted).
    pub misdirected: u64,
    /// Buffer-full management events.
    pub buffer_full_events: u64,
    /// Faulting buffer writes.
    pub faults: u64,
    /// Times the live regime was judged without a record to write (a
    /// register write or an empty drain while the buffer was enabled).
    pub regime_checks: u64,
    /// Of those, the ones that resolved PMBPTR_EL1 anywhere but the host's
    /// buffer (also counted in `misdirected`).
    pub misdirected_regimes: u64,
}

/// The SPE model. `const`-constructible so it can live in a `static`.
/// `repr(C)`: every field is a plain integer (no padding, any bit pattern
/// valid) and `pending` comes last ([`copy_model`]).
#[derive(Clone, Debug)]
#[repr(C)]
pub struct SpeModel {
    pmscr_el1: u64,
    pmscr_el2: u64,
    pmsicr: u64,
    pmsirr: u64,
    pmsfcr: u64,
    pmsevfr: u64,
    pmslatfr: u64,
    pmblimitr: u64,
    pmbptr: u64,
    pmbsr: u64,
    /// Where the host meant its buffer to be; valid when `intended_set` != 0.
    /// (Plain integers only: the model may live in memory another exception
    /// level can write, so no field may have invalid bit patterns.)
    intended: IntendedBuffer,
    intended_set: u64,
    pending_len: usize,
    stats: ModelStats,
    /// Last: a copy of the model to or from shared memory moves the fields
    /// above and only the `pending_len` bytes in use of this
    /// ([`SpeModel::load`]).
    pending: [u8; PENDING_CAPACITY],
}

impl Default for SpeModel {
    fn default() -> Self {
        Self::new()
    }
}

/// Maximum number of page chunks one record can span.
const MAX_CHUNKS: usize = RECORD_SIZE / PAGE_SIZE as usize + 2;

impl SpeModel {
    /// A model in its reset state (everything disabled, registers zero).
    pub const fn new() -> Self {
        Self {
            pmscr_el1: 0,
            pmscr_el2: 0,
            pmsicr: 0,
            pmsirr: 0,
            pmsfcr: 0,
            pmsevfr: 0,
            pmslatfr: 0,
            pmblimitr: 0,
            pmbptr: 0,
            pmbsr: 0,
            intended: IntendedBuffer { va_base: 0, pa_base: 0, size: 0 },
            intended_set: 0,
            pending: [0; PENDING_CAPACITY],
            pending_len: 0,
            stats: ModelStats {
                samples: 0,
                disabled: 0,
                filtered: 0,
                records_produced: 0,
                records_written: 0,
                bytes_written: 0,
                lost: 0,
                discarded: 0,
                misdirected: 0,
                buffer_full_events: 0,
                faults: 0,
                regime_checks: 0,
                misdirected_regimes: 0,
            },
        }
    }

    /// Reads a register.
    pub fn read(&self, reg: ModelReg) -> u64 {
        match reg {
            ModelReg::PmscrEl1 => self.pmscr_el1,
            ModelReg::PmscrEl2 => self.pmscr_el2,
            ModelReg::PmsicrEl1 => self.pmsicr,
            ModelReg::PmsirrEl1 => self.pmsirr,
            ModelReg::PmsfcrEl1 => self.pmsfcr,
            ModelReg::PmsevfrEl1 => self.pmsevfr,
            ModelReg::PmslatfrEl1 => self.pmslatfr,
            ModelReg::PmsidrEl1 => MODEL_PMSIDR,
            ModelReg::PmblimitrEl1 => self.pmblimitr,
            ModelReg::PmbptrEl1 => self.pmbptr,
            ModelReg::PmbsrEl1 => self.pmbsr,
            ModelReg::PmbidrEl1 => MODEL_PMBIDR,
        }
    }

    /// Writes a register (RES0 bits dropped, ID registers ignore writes).
    pub fn write(&mut self, reg: ModelReg, value: u64) {
        match reg {
            ModelReg::PmscrEl1 => self.pmscr_el1 = value & PMSCR_EL1_MASK,
            ModelReg::PmscrEl2 => self.pmscr_el2 = value & PMSCR_EL2_MASK,
            ModelReg::PmsicrEl1 => self.pmsicr = value & PMSICR_MASK,
            ModelReg::PmsirrEl1 => self.pmsirr = value & PMSIRR_MASK,
            ModelReg::PmsfcrEl1 => self.pmsfcr = value & PMSFCR_MASK,
            ModelReg::PmsevfrEl1 => self.pmsevfr = value & PMSEVFR_MASK,
            ModelReg::PmslatfrEl1 => self.pmslatfr = value & PMSLATFR_MASK,
            ModelReg::PmblimitrEl1 => self.pmblimitr = value & PMBLIMITR_MASK,
            ModelReg::PmbptrEl1 => self.pmbptr = value,
            ModelReg::PmbsrEl1 => self.pmbsr = value & PMBSR_MASK,
            ModelReg::PmsidrEl1 | ModelReg::PmbidrEl1 => {}
        }
    }

    /// Writes a register the way code that may run under a foreign regime
    /// must (EL2's world switch): if the buffer is enabled before or after
    /// the write, the unit could write through it at that instant, so the
    /// regime live now is judged ([`Self::judge_regime`]). A write that
    /// re-enables the host's buffer while the guest's regime is live is
    /// counted as misdirected even if no record is pending.
    pub fn write_judged<W: BufferWriter>(&mut self, reg: ModelReg, value: u64, w: &mut W) {
        // Enabled up to this instant: judged as it was; enabled by this
        // write: judged as it is now.
        let enabled_before = self.buffer_enabled();
        if enabled_before {
            self.judge_regime(w);
        }
        self.write(reg, value);
        if !enabled_before && self.buffer_enabled() {
            self.judge_regime(w);
        }
    }

    /// Resolves PMBPTR_EL1 through the regime `w` translates with (the one
    /// live now), as a drain would for its first record, without writing:
    /// anything but the host's intended buffer (or a fault) is counted as
    /// misdirected. Nothing is judged while the unit cannot write: buffer
    /// disabled, collection stopped (PMBSR_EL1.S), or PMBPTR_EL1 at or past
    /// the limit (the next record would raise buffer-full instead). Returns
    /// `false` when the regime was judged wrong.
    pub fn judge_regime<W: BufferWriter>(&mut self, w: &mut W) -> bool {
        let ptr = self.pmbptr;
        if !self.buffer_enabled() || self.irq_pending() || ptr >= self.limit() {
            return true;
        }
        self.stats.regime_checks = self.stats.regime_checks.wrapping_add(1);
        let ok = lands_in_intended(self.intended_buffer(), ptr, w);
        if !ok {
            self.stats.misdirected = self.stats.misdirected.wrapping_add(1);
            self.stats.misdirected_regimes = self.stats.misdirected_regimes.wrapping_add(1);
        }
        ok
    }

    /// Records where the host meant the buffer to be (VA in the owner's
    /// regime and the PA it maps to, physically contiguous).
    pub fn set_intended_buffer(&mut self, va_base: u64, pa_base: u64, size: u64) {
        self.intended = IntendedBuffer { va_base, pa_base, size };
        self.intended_set = 1;
    }

    /// The intended buffer, if set.
    pub const fn intended_buffer(&self) -> Option<IntendedBuffer> {
        if self.intended_set != 0 {
            Some(self.intended)
        } else {
            None
        }
    }

    /// Cumulative statistics.
    pub const fn stats(&self) -> ModelStats {
        self.stats
    }

    /// Records waiting for a drain.
    pub const fn pending_records(&self) -> usize {
        self.pending_len / RECORD_SIZE
    }

    /// The profiling buffer management interrupt (level: PMBSR_EL1.S).
    pub fn irq_pending(&self) -> bool {
        PMBSR_EL1::S.is_set(self.pmbsr)
    }

    /// Acknowledges a management event like a host driver: clears
    /// PMBSR_EL1 (S = 0), which deasserts the interrupt and resumes
    /// collection.
    pub fn acknowledge(&mut self) {
        self.write(ModelReg::PmbsrEl1, 0);
    }

    fn buffer_enabled(&self) -> bool {
        PMBLIMITR_EL1::E.is_set(self.pmblimitr)
    }

    fn limit(&self) -> u64 {
        self.pmblimitr & field_mask(PMBLIMITR_EL1::LIMIT)
    }

    fn discard_mode(&self) -> bool {
        PMBLIMITR_EL1::FM.read(self.pmblimitr) == FM_DISCARD
    }

    /// True when a sample at `el` would be collected now.
    pub fn profiling_enabled(&self, el: u8) -> bool {
        let el_enabled = match el {
            0 => PMSCR_EL1::E0SPE.is_set(self.pmscr_el1),
            1 => PMSCR_EL1::E1SPE.is_set(self.pmscr_el1),
            2 => PMSCR_EL2::E2SPE.is_set(self.pmscr_el2),
            _ => false,
        };
        el_enabled && self.buffer_enabled() && !self.irq_pending()
    }

    fn filtered_out(&self, s: &Sample) -> bool {
        if PMSFCR_EL1::FE.is_set(self.pmsfcr) && u64::from(s.events) & self.pmsevfr != self.pmsevfr {
            return true;
        }
        if PMSFCR_EL1::FT.is_set(self.pmsfcr) {
            let wanted = match s.op {
                OpKind::Branch { .. } => PMSFCR_EL1::B.is_set(self.pmsfcr),
                OpKind::Load { .. } => PMSFCR_EL1::LD.is_set(self.pmsfcr),
                OpKind::Store { .. } => PMSFCR_EL1::ST.is_set(self.pmsfcr),
                OpKind::Other => false,
            };
            if !wanted {
                return true;
            }
        }
        PMSFCR_EL1::FL.is_set(self.pmsfcr) && u64::from(s.total_latency) < PMSLATFR_EL1::MINLAT.read(self.pmslatfr)
    }

    /// The record the unit produces for `s` under the current controls.
    pub fn record_for(&self, s: &Sample) -> Record {
        let (ts, pa, cx) = if s.el == 2 {
            (
                PMSCR_EL2::TS.is_set(self.pmscr_el2),
                PMSCR_EL2::PA.is_set(self.pmscr_el2),
                PMSCR_EL2::CX.is_set(self.pmscr_el2),
            )
        } else {
            (
                PMSCR_EL1::TS.is_set(self.pmscr_el1),
                PMSCR_EL1::PA.is_set(self.pmscr_el1) && PMSCR_EL2::PA.is_set(self.pmscr_el2),
                PMSCR_EL1::CX.is_set(self.pmscr_el1),
            )
        };
        let mut r = Record {
            pc: Some(CodeAddress::new(s.pc, s.el, s.ns)),
            events: Some(Events(u64::from(s.events))),
            total_latency: Some(s.total_latency),
            issue_latency: Some(s.issue_latency),
            timestamp: ts.then_some(s.timestamp),
            ..Record::default()
        };
        if cx {
            if s.el == 2 {
                r.context_el2 = s.context;
            } else {
                r.context_el1 = s.context;
            }
        }
        let ldst = |store: bool| OpType {
            class: OpClass::LoadStore,
            subclass: op::LDST_GP_REG | if store { op::LDST_ST } else { 0 },
        };
        match s.op {
            OpKind::Other => r.op = Some(OpType { class: OpClass::Other, subclass: 0 }),
            OpKind::Load { va, pa: data_pa, xlat_latency } | OpKind::Store { va, pa: data_pa, xlat_latency } => {
                r.op = Some(ldst(matches!(s.op, OpKind::Store { .. })));
                r.data_va = Some(va);
                r.translation_latency = Some(xlat_latency);
                if pa {
                    r.data_pa =
                        Some(PhysAddress { addr: data_pa & crate::packet::ADDR_MASK, ns: s.ns, ch: false, pat: 0 });
                }
            }
            OpKind::Branch { target, conditional, indirect } => {
                let mut sub = 0;
                if conditional {
                    sub |= op::BR_COND;
                }
                if indirect {
                    sub |= op::BR_INDIRECT;
                }
                r.op = Some(OpType { class: OpClass::Branch, subclass: sub });
                r.branch_target = Some(CodeAddress::new(target, s.el, s.ns));
            }
        }
        r
    }

    /// Restores the model's invariants after its memory may have been written
    /// by someone else (the hypervisor calls this before touching a model the
    /// host owns): the internal buffer length is clamped to whole records
    /// within capacity. Returns whether anything had to be repaired.
    pub fn sanitize(&mut self) -> bool {
        let ok = self.pending_len <= PENDING_CAPACITY && self.pending_len.is_multiple_of(RECORD_SIZE);
        if !ok {
            self.pending_len = self.pending_len.min(PENDING_CAPACITY) / RECORD_SIZE * RECORD_SIZE;
        }
        !ok
    }

    /// A copy of the model at `shared` on the stack ([`Self::load`] into a
    /// fresh model): for rare uses (SPE_MODEL_ATTACH), not the world switch.
    ///
    /// # Safety
    /// As [`Self::load`].
    pub unsafe fn snapshot(shared: *const Self) -> Self {
        let mut m = Self::new();
        // SAFETY: forwarded from the caller.
        unsafe { m.load(shared) };
        m
    }

    /// Loads the model at `shared` into `self`, every field read exactly
    /// once, for code that uses a model another exception level can
    /// rewrite at any time (EL2): it checks and uses this private copy,
    /// never the shared memory again (no double fetch), and
    /// [`Self::store`]s the result. Only the pending bytes in use move
    /// (`pending_len`, as read, capped at the buffer).
    ///
    /// # Safety
    /// `shared` must point to a readable `SpeModel` distinct from `self`
    /// (any bit pattern is a valid one: plain integers and bytes).
    pub unsafe fn load(&mut self, shared: *const Self) {
        const HEADER: usize = core::mem::offset_of!(SpeModel, pending);
        let (from, to) = (shared.cast::<u8>(), (self as *mut Self).cast::<u8>());
        // SAFETY: forwarded from the caller; the header once, then as many
        // pending bytes as the length it held says (capped).
        unsafe {
            copy_model(from, to, 0, HEADER);
            copy_model(from, to, HEADER, self.pending_len.min(PENDING_CAPACITY));
        }
    }

    /// Writes the model back to `shared` (see [`Self::load`]).
    ///
    /// # Safety
    /// `shared` must point to a writable `SpeModel` distinct from `self`.
    pub unsafe fn store(&self, shared: *mut Self) {
        const HEADER: usize = core::mem::offset_of!(SpeModel, pending);
        let used = self.pending_len.min(PENDING_CAPACITY);
        // SAFETY: forwarded from the caller; the header and the pending
        // bytes in use are contiguous.
        unsafe { copy_model((self as *const Self).cast(), shared.cast(), 0, HEADER + used) }
    }

    /// Replaces the intended buffer (`None`: unset), as EL2 does with the
    /// one it latched when the model was attached.
    pub fn set_intended(&mut self, b: Option<IntendedBuffer>) {
        match b {
            Some(b) => self.set_intended_buffer(b.va_base, b.pa_base, b.size),
            None => {
                self.intended = IntendedBuffer { va_base: 0, pa_base: 0, size: 0 };
                self.intended_set = 0;
            }
        }
    }

    /// Offers one sampled operation to the unit.
    pub fn sample(&mut self, s: &Sample) -> SampleOutcome {
        self.stats.samples = self.stats.samples.wrapping_add(1);
        if !self.profiling_enabled(s.el) {
            self.stats.disabled = self.stats.disabled.wrapping_add(1);
            return SampleOutcome::Disabled;
        }
        if self.filtered_out(s) {
            self.stats.filtered = self.stats.filtered.wrapping_add(1);
            return SampleOutcome::Filtered;
        }
        let end = self.pending_len + RECORD_SIZE;
        if end > PENDING_CAPACITY {
            self.stats.lost = self.stats.lost.wrapping_add(1);
            return SampleOutcome::Lost;
        }
        let record = self.record_for(s);
        match encode_padded(&record, &mut self.pending[self.pending_len..end], RECORD_SIZE) {
            Ok(_) => {
                self.pending_len = end;
                self.stats.records_produced = self.stats.records_produced.wrapping_add(1);
                SampleOutcome::Recorded
            }
            // Cannot happen: every model record fits RECORD_SIZE (tested);
            // count it as lost rather than panic.
            Err(_) => {
                self.stats.lost = self.stats.lost.wrapping_add(1);
                SampleOutcome::Lost
            }
        }
    }

    fn raise(&mut self, ec: u64, mss: u64) {
        self.pmbsr = PMBSR_EL1::S.val(1).value | PMBSR_EL1::EC.val(ec).value | (mss & field_mask(PMBSR_EL1::MSS));
    }

    /// Writes the pending records out, as `psb csync` does on hardware.
    /// With nothing pending (the common case at a world switch: the host
    /// drains eagerly) no byte moves, but the regime is judged all the same
    /// ([`Self::judge_regime`]): an enabled buffer under the wrong regime is
    /// a bug whether or not a record happened to be waiting.
    #[inline]
    pub fn drain<W: BufferWriter>(&mut self, w: &mut W) -> DrainReport {
        if self.pending_records() == 0 {
            let mut report = DrainReport::default();
            if !self.judge_regime(w) {
                report.misdirected = 1;
            }
            return report;
        }
        self.drain_pending(w)
    }

    fn drain_pending<W: BufferWriter>(&mut self, w: &mut W) -> DrainReport {
        let mut report = DrainReport::default();
        let records = self.pending_records();
        let mut i = 0;
        // Records that cannot be written now (buffer disabled, stopped by a
        // buffer-full event or a fault) stay in the internal buffer, as they
        // do in hardware until the buffer is re-armed; only an overflowing
        // internal buffer loses records (counted in `sample`).
        let mut keep_from = None;
        while i < records {
            if !self.buffer_enabled() || self.irq_pending() {
                keep_from = Some(i);
                break;
            }
            if self.discard_mode() {
                report.discarded += 1;
                i += 1;
                continue;
            }
            let ptr = self.pmbptr;
            let fits = ptr.checked_add(RECORD_SIZE as u64).is_some_and(|end| end <= self.limit());
            if !fits {
                self.raise(EC_BUFFER_MANAGEMENT, BSC_BUFFER_FILLED);
                self.stats.buffer_full_events = self.stats.buffer_full_events.wrapping_add(1);
                report.stop = Some(StopReason::BufferFull);
                keep_from = Some(i);
                break;
            }
            let start = i * RECORD_SIZE;
            let mut bytes = [0u8; RECORD_SIZE];
            bytes.copy_from_slice(&self.pending[start..start + RECORD_SIZE]);
            match self.write_record(w, ptr, &bytes) {
                Err(fault) => {
                    let ec = match fault.stage {
                        FaultStage::Stage1 => EC_STAGE1_DATA_ABORT,
                        FaultStage::Stage2 => EC_STAGE2_DATA_ABORT,
                    };
                    self.raise(ec, u64::from(fault.fsc & FSC_MASK));
                    self.stats.faults = self.stats.faults.wrapping_add(1);
                    report.misdirected += 1;
                    report.stop = Some(StopReason::Fault(fault));
                    report.lost += (records - i) as u64;
                    break;
                }
                Ok(true) => {
                    report.records_written += 1;
                    report.bytes_written += RECORD_SIZE as u64;
                }
                Ok(false) => report.misdirected += 1,
            }
            // Hardware advances the pointer whether or not the write went
            // where the host meant it to.
            self.pmbptr = ptr + RECORD_SIZE as u64;
            i += 1;
        }
        match keep_from {
            Some(k) => {
                let from = k * RECORD_SIZE;
                let len = self.pending_len - from;
                self.pending.copy_within(from..self.pending_len, 0);
                self.pending_len = len;
            }
            None => self.pending_len = 0,
        }
        self.stats.records_written = self.stats.records_written.wrapping_add(report.records_written);
        self.stats.bytes_written = self.stats.bytes_written.wrapping_add(report.bytes_written);
        self.stats.lost = self.stats.lost.wrapping_add(report.lost);
        self.stats.discarded = self.stats.discarded.wrapping_add(report.discarded);
        self.stats.misdirected = self.stats.misdirected.wrapping_add(report.misdirected);
        report
    }

    /// Translates every page chunk of the record first; writes only if all
    /// of them land where the host intended. `Ok(false)`: misdirected.
    fn write_record<W: BufferWriter>(
        &self,
        w: &mut W,
        va: u64,
        bytes: &[u8; RECORD_SIZE],
    ) -> Result<bool, TranslationFault> {
        let mut chunks = [(0u64, 0usize, 0usize); MAX_CHUNKS];
        let mut n = 0;
        let mut off = 0usize;
        let mut misdirected = false;
        while off < RECORD_SIZE {
            let cur = va + off as u64;
            let page_left = (PAGE_SIZE - cur % PAGE_SIZE) as usize;
            let len = page_left.min(RECORD_SIZE - off);
            let pa = w.translate(cur)?;
            let intended = self.intended_buffer().and_then(|b| b.pa_of(cur, len as u64));
            if intended != Some(pa) {
                misdirected = true;
            }
            chunks[n] = (pa, off, len);
            n += 1;
            off += len;
        }
        if misdirected {
            return Ok(false);
        }
        for &(pa, off, len) in &chunks[..n] {
            w.write(pa, &bytes[off..off + len]);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;

/// Everything the host attaches with `SPE_MODEL_ATTACH`: the SPE model and
/// the TRBE model beside it (one page-aligned block of host memory).
#[derive(Clone, Debug, Default)]
pub struct Units {
    /// The profiling unit.
    pub spe: SpeModel,
    /// The trace buffer unit.
    pub trbe: crate::trbe::TrbeModel,
}

impl Units {
    /// Both units in their reset state.
    pub const fn new() -> Self {
        Self { spe: SpeModel::new(), trbe: crate::trbe::TrbeModel::new() }
    }
}
