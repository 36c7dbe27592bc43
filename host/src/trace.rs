//! The host's second buffer: self-hosted trace through the TRBE model
//! (`spevisor_spe::trbe`), attached with the SPE model (`profiler.rs`).
//!
//! QEMU has no trace unit, so the host makes the trace itself: every
//! profiler sample also emits one [`TRACE_CHUNK`]-byte trace packet (a
//! magic word, the exception level and the PC) at EL1 through the model.
//! The model keeps the packets until a drain (`tsb csync`): the host's own
//! (through `at s1e1w`), or EL2's in the world switch, where the owning
//! regime decides where they land. The buffer is mapped in TTBR1_EL1 at
//! [`TRACE_BUFFER_VA`], unlike its PA and anything EL2 maps, so a drain
//! under the wrong regime shows up as misdirected.

use spevisor_spe::model::BufferWriter;
use spevisor_spe::trbe::{TrbeModel, TrbeReg, TRACE_CHUNK, TRBLIMITR_E, TRBSR_EC_SHIFT, TRBSR_S, TRFCR_E1TRE};

/// Where the host maps its trace buffer (TTBR1_EL1, above the SPE buffer).
pub const TRACE_BUFFER_VA: u64 = 0xffff_8000_4000_0000;
/// The trace buffer's size.
pub const TRACE_BUFFER_SIZE: u64 = 16 * 1024;
/// First word of every packet the host emits.
const PACKET_MAGIC: u32 = 0x5452_4345;
/// Drain from EL1 once this many bytes wait.
const EAGER_DRAIN_BYTES: usize = 512;
/// TRBSR_EL1.EC of a buffer-management event (buffer full).
const EC_BUFFER_MANAGEMENT: u64 = 0;

/// The host's trace buffer state and report.
pub struct HostTrace {
    model: &'static mut TrbeModel,
    stopped: bool,
    pub packets: u64,
    pub bad_packets: u64,
    pub buffer_full_irqs: u64,
    pub faults: u64,
}

impl HostTrace {
    /// Programs the buffer (`[TRACE_BUFFER_VA, +TRACE_BUFFER_SIZE)` mapped
    /// at `pa`) and allows trace at EL1.
    pub fn start(model: &'static mut TrbeModel, pa: u64) -> Self {
        model.set_intended_buffer(TRACE_BUFFER_VA, pa, TRACE_BUFFER_SIZE);
        model.write(TrbeReg::TrbbaserEl1, TRACE_BUFFER_VA);
        model.write(TrbeReg::TrbptrEl1, TRACE_BUFFER_VA);
        model.write(TrbeReg::TrbsrEl1, 0);
        model.write(TrbeReg::TrblimitrEl1, (TRACE_BUFFER_VA + TRACE_BUFFER_SIZE) | TRBLIMITR_E);
        model.write(TrbeReg::TrfcrEl1, TRFCR_E1TRE);
        Self { model, stopped: false, packets: 0, bad_packets: 0, buffer_full_irqs: 0, faults: 0 }
    }

    /// One trace packet for code that ran at `el`, `pc`.
    pub fn emit<W: BufferWriter>(&mut self, el: u8, pc: u64, w: &mut W) {
        self.service();
        let mut chunk = [0u8; TRACE_CHUNK];
        chunk[..4].copy_from_slice(&PACKET_MAGIC.to_le_bytes());
        chunk[4] = el;
        chunk[8..].copy_from_slice(&pc.to_le_bytes());
        self.model.trace(&chunk, el);
        if self.model.pending_bytes() >= EAGER_DRAIN_BYTES {
            self.model.drain(w);
            self.service();
        }
    }

    /// Services a buffer-management event: buffer full is consumed and
    /// re-armed; a fault stops trace (the data so far is kept).
    pub fn service(&mut self) {
        let trbsr = self.model.read(TrbeReg::TrbsrEl1);
        if trbsr & TRBSR_S == 0 || self.stopped {
            return;
        }
        if trbsr >> TRBSR_EC_SHIFT == EC_BUFFER_MANAGEMENT {
            self.buffer_full_irqs += 1;
            self.consume();
            self.model.write(TrbeReg::TrbsrEl1, 0);
        } else {
            self.faults += 1;
            self.stopped = true;
            self.model.write(TrbeReg::TrfcrEl1, 0);
            self.consume();
        }
    }

    /// Counts the packets in `[TRACE_BUFFER_VA, TRBPTR)` and re-arms.
    fn consume(&mut self) {
        let ptr = self.model.read(TrbeReg::TrbptrEl1);
        let used = ptr.saturating_sub(TRACE_BUFFER_VA).min(TRACE_BUFFER_SIZE) as usize;
        // SAFETY: the buffer is mapped at TRACE_BUFFER_VA for
        // TRACE_BUFFER_SIZE bytes and the unit is stopped or disabled.
        let data = unsafe { core::slice::from_raw_parts(TRACE_BUFFER_VA as *const u8, used) };
        for p in data.chunks_exact(TRACE_CHUNK) {
            if p[..4] == PACKET_MAGIC.to_le_bytes() {
                self.packets += 1;
            } else {
                self.bad_packets += 1;
            }
        }
        self.model.write(TrbeReg::TrbptrEl1, TRACE_BUFFER_VA);
    }

    /// Prohibits trace, drains, decodes the rest, disables the unit and
    /// prints the `trbe:` line. Returns (misdirected, lost).
    pub fn finish<W: BufferWriter>(&mut self, w: &mut W) -> (u64, u64) {
        self.model.write(TrbeReg::TrfcrEl1, 0);
        const MAX_ROUNDS: usize = 64;
        for _ in 0..MAX_ROUNDS {
            self.model.drain(w);
            if self.model.read(TrbeReg::TrbsrEl1) & TRBSR_S == 0 || self.stopped {
                break;
            }
            self.service();
        }
        if !self.stopped {
            self.consume();
        }
        let limit = self.model.read(TrbeReg::TrblimitrEl1);
        self.model.write(TrbeReg::TrblimitrEl1, limit & !TRBLIMITR_E);
        let st = self.model.stats();
        crate::hprintln!(
            "trbe: backend=model packets={} bad_packets={} collected={} written={} pending={} buffer_full_irqs={} faults={} misdirected={} lost={} regime_checks={} misdirected_regimes={}",
            self.packets,
            self.bad_packets,
            st.bytes_collected,
            st.bytes_written,
            self.model.pending_bytes(),
            self.buffer_full_irqs,
            self.faults,
            st.misdirected,
            st.lost,
            st.regime_checks,
            st.misdirected_regimes
        );
        (st.misdirected, st.lost)
    }
}
