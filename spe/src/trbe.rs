//! A software model of a Trace Buffer Extension (TRBE) unit, beside the SPE
//! model ([`crate::model`]), for machines without TRBE (QEMU).
//!
//! The host feeds the model trace data (what an ETE trace unit would emit);
//! the model keeps it in an internal buffer until a drain (`tsb csync`,
//! [`TrbeModel::drain`]), which writes it at TRBPTR_EL1 through whichever
//! regime owns the trace buffer *at that instant* (MDCR_EL2.E2TB: 0b00 is
//! EL2's regime, else the EL1&0 regime, through stage 2 when HCR_EL2.VM),
//! using the same [`BufferWriter`] as SPE. Like the SPE model, every write
//! that resolves anywhere but the host's buffer is counted as misdirected
//! and not performed, and the regime is judged at every register write
//! made with [`TrbeModel::write_judged`] and at every drain, empty or not.
//!
//! Hardware rules modelled (Arm ARM, FEAT_TRBE):
//! * trace is generated at EL0/EL1 only when TRFCR_EL1.E0TRE/E1TRE allow it
//!   ("prohibited" otherwise: nothing is produced);
//! * the buffer collects only with TRBLIMITR_EL1.E == 1 and TRBSR_EL1.S == 0;
//!   trace generated otherwise is lost;
//! * fill mode: data that does not fit below TRBLIMITR_EL1.LIMIT raises a
//!   buffer management event (TRBSR_EL1.S = 1, IRQ = 1, EC = 0, BSC =
//!   buffer filled) and stays in the unit until the buffer is re-armed; the
//!   wrap and circular modes are modelled as fill mode;
//! * a faulting buffer write sets TRBSR_EL1 (S = 1, EC = stage 1/2 data
//!   abort, FSC) and the pending data is lost;
//! * LIMIT and BASE are page granular; RES0 bits read as zero.
//!
//! Trace data moves in [`TRACE_CHUNK`]-byte units (the host's synthetic
//! trace packets), never split across the limit.

use crate::model::{lands_in_intended, BufferWriter, FaultStage, IntendedBuffer, PAGE_SIZE};

/// Unit of trace data the model stores and writes.
pub const TRACE_CHUNK: usize = 16;
/// Capacity of the internal buffer in bytes.
pub const TRBE_PENDING_CAPACITY: usize = 1024;

/// TRBLIMITR_EL1.E: the trace buffer unit is enabled.
pub const TRBLIMITR_E: u64 = 1 << 0;
/// TRBLIMITR_EL1.FM (fill mode 0b00, wrap 0b01, circular 0b11).
pub const TRBLIMITR_FM_MASK: u64 = 0b11 << 1;
/// TRBLIMITR_EL1.LIMIT, page granular.
pub const TRBLIMITR_LIMIT_MASK: u64 = !(PAGE_SIZE - 1);
/// TRBBASER_EL1.BASE.
pub const TRBBASER_BASE_MASK: u64 = !(PAGE_SIZE - 1);
/// TRBSR_EL1.S: collection stopped.
pub const TRBSR_S: u64 = 1 << 17;
/// TRBSR_EL1.IRQ: the management interrupt is asserted.
pub const TRBSR_IRQ: u64 = 1 << 22;
/// TRBSR_EL1.EC, bits [31:26].
pub const TRBSR_EC_SHIFT: u64 = 26;
/// TRBSR_EL1.BSC/FSC, bits [5:0].
pub const TRBSR_BSC_MASK: u64 = 0x3f;
const TRBSR_MASK: u64 = TRBSR_S | TRBSR_IRQ | (0x3f << TRBSR_EC_SHIFT) | TRBSR_BSC_MASK | (0b111 << 18);
/// TRFCR_EL1.E0TRE: trace allowed at EL0.
pub const TRFCR_E0TRE: u64 = 1 << 0;
/// TRFCR_EL1.E1TRE: trace allowed at EL1.
pub const TRFCR_E1TRE: u64 = 1 << 1;
const TRFCR_MASK: u64 = TRFCR_E0TRE | TRFCR_E1TRE | (0b11 << 5);
const EC_BUFFER_MANAGEMENT: u64 = 0;
const EC_STAGE1_DATA_ABORT: u64 = 0b10_0100;
const EC_STAGE2_DATA_ABORT: u64 = 0b10_0101;
const BSC_BUFFER_FILLED: u64 = 0b00_0001;

/// A register of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrbeReg {
    /// TRFCR_EL1 (the trace filter: prohibits trace at EL0/EL1).
    TrfcrEl1,
    /// TRBLIMITR_EL1.
    TrblimitrEl1,
    /// TRBPTR_EL1.
    TrbptrEl1,
    /// TRBBASER_EL1.
    TrbbaserEl1,
    /// TRBSR_EL1.
    TrbsrEl1,
}

/// What happened to trace data offered to the unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceOutcome {
    /// Kept for the next drain.
    Collected,
    /// Trace prohibited at that EL (TRFCR_EL1): nothing generated.
    Prohibited,
    /// Generated but not collected (unit disabled or stopped, or the
    /// internal buffer full): lost.
    Lost,
}

/// Cumulative counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrbeStats {
    /// Trace bytes the unit collected.
    pub bytes_collected: u64,
    /// Trace bytes written to memory.
    pub bytes_written: u64,
    /// Trace bytes lost (not collected, or dropped after a fault).
    pub lost: u64,
    /// Chunks (or regime judgements) that resolved anywhere but the host's buffer.
    pub misdirected: u64,
    /// Faulting buffer writes.
    pub faults: u64,
    /// Buffer-full management events.
    pub buffer_full_events: u64,
    /// Regime judgements without data moving.
    pub regime_checks: u64,
    /// Of those, the wrong ones (also in `misdirected`).
    pub misdirected_regimes: u64,
}

/// The TRBE model. Plain integers only: it lives in memory the host can
/// write (see `SpeModel`); `repr(C)` with `pending` last, as `SpeModel`.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct TrbeModel {
    trfcr: u64,
    trblimitr: u64,
    trbptr: u64,
    trbbaser: u64,
    trbsr: u64,
    intended: IntendedBuffer,
    intended_set: u64,
    pending_len: usize,
    stats: TrbeStats,
    /// Last, as in `SpeModel` ([`TrbeModel::load`]).
    pending: [u8; TRBE_PENDING_CAPACITY],
}

impl Default for TrbeModel {
    fn default() -> Self {
        Self::new()
    }
}

impl TrbeModel {
    /// A unit in its reset state.
    pub const fn new() -> Self {
        Self {
            trfcr: 0,
            trblimitr: 0,
            trbptr: 0,
            trbbaser: 0,
            trbsr: 0,
            intended: IntendedBuffer { va_base: 0, pa_base: 0, size: 0 },
            intended_set: 0,
            pending: [0; TRBE_PENDING_CAPACITY],
            pending_len: 0,
            stats: TrbeStats {
                bytes_collected: 0,
                bytes_written: 0,
                lost: 0,
                misdirected: 0,
                faults: 0,
                buffer_full_events: 0,
                regime_checks: 0,
                misdirected_regimes: 0,
            },
        }
    }

    /// Reads a register.
    pub fn read(&self, reg: TrbeReg) -> u64 {
        match reg {
            TrbeReg::TrfcrEl1 => self.trfcr,
            TrbeReg::TrblimitrEl1 => self.trblimitr,
            TrbeReg::TrbptrEl1 => self.trbptr,
            TrbeReg::TrbbaserEl1 => self.trbbaser,
            TrbeReg::TrbsrEl1 => self.trbsr,
        }
    }

    /// Writes a register (RES0 bits dropped).
    pub fn write(&mut self, reg: TrbeReg, value: u64) {
        match reg {
            TrbeReg::TrfcrEl1 => self.trfcr = value & TRFCR_MASK,
            TrbeReg::TrblimitrEl1 => self.trblimitr = value & (TRBLIMITR_LIMIT_MASK | TRBLIMITR_FM_MASK | TRBLIMITR_E),
            TrbeReg::TrbptrEl1 => self.trbptr = value,
            TrbeReg::TrbbaserEl1 => self.trbbaser = value & TRBBASER_BASE_MASK,
            TrbeReg::TrbsrEl1 => self.trbsr = value & TRBSR_MASK,
        }
    }

    /// Writes a register as code that may run under a foreign regime must
    /// (EL2's world switch): if the buffer was enabled up to this write its
    /// regime is judged as it was; if the write enables it, as it is now.
    pub fn write_judged<W: BufferWriter>(&mut self, reg: TrbeReg, value: u64, w: &mut W) {
        let enabled_before = self.enabled();
        if enabled_before {
            self.judge_regime(w);
        }
        self.write(reg, value);
        if !enabled_before && self.enabled() {
            self.judge_regime(w);
        }
    }

    /// Resolves TRBPTR_EL1 through the regime `w` translates with, without
    /// writing; anything but the host's buffer (or a fault) counts as
    /// misdirected. Nothing is judged while the unit cannot write (disabled,
    /// stopped, or TRBPTR at or past the limit). `false`: judged wrong.
    pub fn judge_regime<W: BufferWriter>(&mut self, w: &mut W) -> bool {
        let ptr = self.trbptr;
        if !self.enabled() || self.stopped() || ptr >= self.limit() {
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

    /// Where the host meant its buffer to be (VA in its regime, PA, size).
    pub fn set_intended_buffer(&mut self, va_base: u64, pa_base: u64, size: u64) {
        self.intended = IntendedBuffer { va_base, pa_base, size };
        self.intended_set = 1;
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

    /// Loads the unit at `shared` into `self`, every field read once
    /// (see [`crate::model::SpeModel::load`]).
    ///
    /// # Safety
    /// `shared` must point to a readable `TrbeModel` distinct from `self`
    /// (any bit pattern is a valid one).
    pub unsafe fn load(&mut self, shared: *const Self) {
        const HEADER: usize = core::mem::offset_of!(TrbeModel, pending);
        let (from, to) = (shared.cast::<u8>(), (self as *mut Self).cast::<u8>());
        // SAFETY: forwarded from the caller (see `SpeModel::load`).
        unsafe {
            crate::model::copy_model(from, to, 0, HEADER);
            crate::model::copy_model(from, to, HEADER, self.pending_len.min(TRBE_PENDING_CAPACITY));
        }
    }

    /// Writes the unit back to `shared`.
    ///
    /// # Safety
    /// `shared` must point to a writable `TrbeModel` distinct from `self`.
    pub unsafe fn store(&self, shared: *mut Self) {
        const HEADER: usize = core::mem::offset_of!(TrbeModel, pending);
        let used = self.pending_len.min(TRBE_PENDING_CAPACITY);
        // SAFETY: forwarded from the caller.
        unsafe { crate::model::copy_model((self as *const Self).cast(), shared.cast(), 0, HEADER + used) }
    }

    /// Replaces the intended buffer (`None`: unset).
    pub fn set_intended(&mut self, b: Option<IntendedBuffer>) {
        match b {
            Some(b) => self.set_intended_buffer(b.va_base, b.pa_base, b.size),
            None => {
                self.intended = IntendedBuffer { va_base: 0, pa_base: 0, size: 0 };
                self.intended_set = 0;
            }
        }
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
    pub const fn stats(&self) -> TrbeStats {
        self.stats
    }

    /// Bytes waiting for a drain.
    pub const fn pending_bytes(&self) -> usize {
        self.pending_len
    }

    /// The management interrupt (TRBSR_EL1.IRQ).
    pub fn irq_pending(&self) -> bool {
        self.trbsr & TRBSR_IRQ != 0
    }

    fn enabled(&self) -> bool {
        self.trblimitr & TRBLIMITR_E != 0
    }

    fn stopped(&self) -> bool {
        self.trbsr & TRBSR_S != 0
    }

    fn limit(&self) -> u64 {
        self.trblimitr & TRBLIMITR_LIMIT_MASK
    }

    /// Whether trace is allowed at `el` by TRFCR_EL1.
    pub fn trace_allowed(&self, el: u8) -> bool {
        match el {
            0 => self.trfcr & TRFCR_E0TRE != 0,
            1 => self.trfcr & TRFCR_E1TRE != 0,
            _ => false,
        }
    }

    /// Repairs the internal length after the host may have written the
    /// model's memory (EL2 calls this before use). Returns whether it had to.
    pub fn sanitize(&mut self) -> bool {
        let ok = self.pending_len <= TRBE_PENDING_CAPACITY && self.pending_len.is_multiple_of(TRACE_CHUNK);
        if !ok {
            self.pending_len = self.pending_len.min(TRBE_PENDING_CAPACITY) / TRACE_CHUNK * TRACE_CHUNK;
        }
        !ok
    }

    /// Offers one chunk of trace generated at `el` to the unit.
    pub fn trace(&mut self, chunk: &[u8; TRACE_CHUNK], el: u8) -> TraceOutcome {
        if !self.trace_allowed(el) {
            return TraceOutcome::Prohibited;
        }
        let end = self.pending_len + TRACE_CHUNK;
        if !self.enabled() || self.stopped() || end > TRBE_PENDING_CAPACITY {
            self.stats.lost = self.stats.lost.wrapping_add(TRACE_CHUNK as u64);
            return TraceOutcome::Lost;
        }
        self.pending[self.pending_len..end].copy_from_slice(chunk);
        self.pending_len = end;
        self.stats.bytes_collected = self.stats.bytes_collected.wrapping_add(TRACE_CHUNK as u64);
        TraceOutcome::Collected
    }

    fn raise(&mut self, ec: u64, bsc: u64) {
        self.trbsr = TRBSR_S | TRBSR_IRQ | (ec << TRBSR_EC_SHIFT) | (bsc & TRBSR_BSC_MASK);
    }

    /// `tsb csync`: writes the collected trace out through the regime that
    /// owns the buffer now. With nothing collected the regime is judged
    /// all the same. Returns the number of misdirected chunks (judgements).
    pub fn drain<W: BufferWriter>(&mut self, w: &mut W) -> u64 {
        if self.pending_len == 0 {
            return u64::from(!self.judge_regime(w));
        }
        let before = self.stats.misdirected;
        let chunks = self.pending_len / TRACE_CHUNK;
        let mut keep_from = None;
        let mut i = 0;
        while i < chunks {
            if !self.enabled() || self.stopped() {
                keep_from = Some(i);
                break;
            }
            let ptr = self.trbptr;
            if ptr.checked_add(TRACE_CHUNK as u64).is_none_or(|end| end > self.limit()) {
                self.raise(EC_BUFFER_MANAGEMENT, BSC_BUFFER_FILLED);
                self.stats.buffer_full_events = self.stats.buffer_full_events.wrapping_add(1);
                keep_from = Some(i);
                break;
            }
            let mut chunk = [0u8; TRACE_CHUNK];
            chunk.copy_from_slice(&self.pending[i * TRACE_CHUNK..(i + 1) * TRACE_CHUNK]);
            match self.write_chunk(w, ptr, &chunk) {
                Err(stage) => {
                    let ec = match stage {
                        FaultStage::Stage1 => EC_STAGE1_DATA_ABORT,
                        FaultStage::Stage2 => EC_STAGE2_DATA_ABORT,
                    };
                    self.raise(ec, 0);
                    self.stats.faults = self.stats.faults.wrapping_add(1);
                    self.stats.misdirected = self.stats.misdirected.wrapping_add(1);
                    self.stats.lost = self.stats.lost.wrapping_add(((chunks - i) * TRACE_CHUNK) as u64);
                    break;
                }
                Ok(true) => self.stats.bytes_written = self.stats.bytes_written.wrapping_add(TRACE_CHUNK as u64),
                Ok(false) => self.stats.misdirected = self.stats.misdirected.wrapping_add(1),
            }
            self.trbptr = ptr + TRACE_CHUNK as u64;
            i += 1;
        }
        match keep_from {
            Some(k) => {
                let from = k * TRACE_CHUNK;
                self.pending.copy_within(from..self.pending_len, 0);
                self.pending_len -= from;
            }
            None => self.pending_len = 0,
        }
        self.stats.misdirected.wrapping_sub(before)
    }

    /// Writes one chunk if every page of it lands where the host meant it.
    fn write_chunk<W: BufferWriter>(&self, w: &mut W, va: u64, bytes: &[u8; TRACE_CHUNK]) -> Result<bool, FaultStage> {
        let mut parts = [(0u64, 0usize, 0usize); 2];
        let mut n = 0;
        let mut off = 0;
        let mut misdirected = false;
        while off < TRACE_CHUNK {
            let cur = va + off as u64;
            let len = ((PAGE_SIZE - cur % PAGE_SIZE) as usize).min(TRACE_CHUNK - off);
            let pa = w.translate(cur).map_err(|f| f.stage)?;
            if self.intended_buffer().and_then(|b| b.pa_of(cur, len as u64)) != Some(pa) {
                misdirected = true;
            }
            parts[n] = (pa, off, len);
            n += 1;
            off += len;
        }
        if misdirected {
            return Ok(false);
        }
        for &(pa, off, len) in &parts[..n] {
            w.write(pa, &bytes[off..off + len]);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TranslationFault;
    use std::vec::Vec;

    const VA: u64 = 0xffff_8000_2000_0000;
    const PA: u64 = 0x4900_0000;
    const SIZE: u64 = PAGE_SIZE;

    struct Mem {
        redirect: u64,
        fault: Option<TranslationFault>,
        writes: Vec<(u64, Vec<u8>)>,
    }

    impl BufferWriter for Mem {
        fn translate(&mut self, va: u64) -> Result<u64, TranslationFault> {
            match self.fault {
                Some(f) => Err(f),
                None => Ok(va - VA + PA + self.redirect),
            }
        }
        fn write(&mut self, pa: u64, bytes: &[u8]) {
            self.writes.push((pa, bytes.to_vec()));
        }
    }

    fn mem() -> Mem {
        Mem { redirect: 0, fault: None, writes: Vec::new() }
    }

    fn armed() -> TrbeModel {
        let mut t = TrbeModel::new();
        t.set_intended_buffer(VA, PA, SIZE);
        t.write(TrbeReg::TrbbaserEl1, VA);
        t.write(TrbeReg::TrbptrEl1, VA);
        t.write(TrbeReg::TrblimitrEl1, (VA + SIZE) | TRBLIMITR_E);
        t.write(TrbeReg::TrfcrEl1, TRFCR_E1TRE);
        t
    }

    #[test]
    fn trace_is_collected_only_when_allowed_and_enabled() {
        let mut t = TrbeModel::new();
        let c = [7u8; TRACE_CHUNK];
        assert_eq!(t.trace(&c, 1), TraceOutcome::Prohibited);
        t.write(TrbeReg::TrfcrEl1, TRFCR_E1TRE);
        assert_eq!(t.trace(&c, 1), TraceOutcome::Lost, "unit disabled");
        assert_eq!(t.trace(&c, 0), TraceOutcome::Prohibited, "E0TRE clear");
        let mut t = armed();
        assert_eq!(t.trace(&c, 1), TraceOutcome::Collected);
        assert_eq!(t.trace(&c, 2), TraceOutcome::Prohibited);
        assert_eq!(t.pending_bytes(), TRACE_CHUNK);
        assert_eq!(t.read(TrbeReg::TrblimitrEl1) & TRBLIMITR_LIMIT_MASK, VA + SIZE);
        t.write(TrbeReg::TrbsrEl1, u64::MAX);
        assert_eq!(t.read(TrbeReg::TrbsrEl1) & !TRBSR_MASK, 0, "RES0 bits read as zero");
    }

    #[test]
    fn a_drain_writes_at_trbptr_and_fills() {
        let mut t = armed();
        let mut m = mem();
        for k in 0..3u8 {
            t.trace(&[k; TRACE_CHUNK], 1);
        }
        assert_eq!(t.drain(&mut m), 0);
        assert_eq!(m.writes.len(), 3);
        assert_eq!(m.writes[2], (PA + 2 * TRACE_CHUNK as u64, vec![2u8; TRACE_CHUNK]));
        assert_eq!(t.read(TrbeReg::TrbptrEl1), VA + 3 * TRACE_CHUNK as u64);
        // Fill mode: the chunk that does not fit stops collection and stays.
        t.write(TrbeReg::TrbptrEl1, VA + SIZE - TRACE_CHUNK as u64);
        t.trace(&[9; TRACE_CHUNK], 1);
        t.trace(&[10; TRACE_CHUNK], 1);
        t.drain(&mut m);
        assert!(t.irq_pending());
        assert_eq!(t.pending_bytes(), TRACE_CHUNK);
        assert_eq!(t.stats().buffer_full_events, 1);
        assert_eq!(t.trace(&[11; TRACE_CHUNK], 1), TraceOutcome::Lost, "stopped");
        let st = t.stats();
        assert_eq!((st.bytes_written, st.misdirected, st.lost), (4 * TRACE_CHUNK as u64, 0, TRACE_CHUNK as u64));
    }

    #[test]
    fn the_wrong_regime_is_misdirected_with_or_without_data() {
        let mut guest = mem();
        guest.redirect = PAGE_SIZE;
        // Data under the wrong regime: counted, not written.
        let mut t = armed();
        t.trace(&[1; TRACE_CHUNK], 1);
        assert_eq!(t.drain(&mut guest), 1);
        assert!(guest.writes.is_empty());
        // An empty drain under the wrong regime.
        assert_eq!(t.drain(&mut guest), 1);
        // The unit re-enabled under the wrong regime.
        let limit = t.read(TrbeReg::TrblimitrEl1);
        t.write_judged(TrbeReg::TrblimitrEl1, limit & !TRBLIMITR_E, &mut mem());
        t.write_judged(TrbeReg::TrblimitrEl1, limit, &mut guest);
        let st = t.stats();
        assert_eq!((st.misdirected, st.misdirected_regimes), (3, 2));
        // A fault stops the unit and loses the data.
        let mut t = armed();
        t.trace(&[1; TRACE_CHUNK], 1);
        guest.fault = Some(TranslationFault::translation(FaultStage::Stage2, 2));
        assert_eq!(t.drain(&mut guest), 1);
        assert_eq!(t.read(TrbeReg::TrbsrEl1) >> TRBSR_EC_SHIFT, EC_STAGE2_DATA_ABORT);
        assert_eq!(t.stats().lost, TRACE_CHUNK as u64);
        // The right regime is clean.
        let mut t = armed();
        t.write_judged(TrbeReg::TrfcrEl1, 0, &mut mem());
        assert_eq!(t.drain(&mut mem()), 0);
        assert_eq!((t.stats().regime_checks, t.stats().misdirected), (2, 0));
    }
}
