use super::*;
use crate::packet::event;
use crate::record::{RecordAssembler, RecordEnd};
use std::vec;
use std::vec::Vec;

const VA_BASE: u64 = 0xffff_8000_1000_0000;
const PA_BASE: u64 = 0x4800_0000;
const BUF_SIZE: u64 = 2 * PAGE_SIZE;

/// Guest-memory stand-in: a contiguous PA window and a programmable
/// translation (identity offset, optional redirect or fault).
struct Mem {
    mem: Vec<u8>,
    /// Added to the correct PA (simulates the wrong regime being live).
    redirect: u64,
    fault: Option<TranslationFault>,
    writes: Vec<(u64, usize)>,
}

impl Mem {
    fn new() -> Self {
        Self { mem: vec![0; BUF_SIZE as usize], redirect: 0, fault: None, writes: Vec::new() }
    }
}

impl BufferWriter for Mem {
    fn translate(&mut self, va: u64) -> Result<u64, TranslationFault> {
        match self.fault {
            Some(f) => Err(f),
            None => Ok(va.wrapping_sub(VA_BASE).wrapping_add(PA_BASE) + self.redirect),
        }
    }

    fn write(&mut self, pa: u64, bytes: &[u8]) {
        let off = (pa - PA_BASE) as usize;
        self.mem[off..off + bytes.len()].copy_from_slice(bytes);
        self.writes.push((pa, bytes.len()));
    }
}

fn el1_sample(i: u64) -> Sample {
    Sample {
        pc: 0xffff_8000_0010_0000 + 4 * i,
        el: 1,
        ns: true,
        timestamp: 1000 + i,
        op: OpKind::Load { va: 0xffff_0000_2000_0000 + 8 * i, pa: 0x4100_0000 + 8 * i, xlat_latency: 3 },
        events: (event::RETIRED | event::L1D_ACCESS) as u32,
        total_latency: 20 + i as u16,
        issue_latency: 4,
        context: Some(42),
    }
}

/// A model profiling EL1 with timestamps into the intended buffer.
fn armed() -> SpeModel {
    let mut m = SpeModel::new();
    m.set_intended_buffer(VA_BASE, PA_BASE, BUF_SIZE);
    m.write(ModelReg::PmbptrEl1, VA_BASE);
    m.write(ModelReg::PmblimitrEl1, (VA_BASE + BUF_SIZE) | 1);
    m.write(ModelReg::PmscrEl1, PMSCR_EL1::E1SPE.val(1).value | PMSCR_EL1::TS.val(1).value);
    m
}

#[test]
fn register_semantics() {
    let mut m = SpeModel::new();
    for reg in [ModelReg::PmscrEl1, ModelReg::PmblimitrEl1, ModelReg::PmbsrEl1] {
        assert_eq!(m.read(reg), 0);
    }
    m.write(ModelReg::PmscrEl1, u64::MAX);
    assert_eq!(m.read(ModelReg::PmscrEl1), 0xfb);
    m.write(ModelReg::PmblimitrEl1, u64::MAX);
    assert_eq!(m.read(ModelReg::PmblimitrEl1), 0xffff_ffff_ffff_f027);
    m.write(ModelReg::PmblimitrEl1, 0x1234_5678 | 1);
    assert_eq!(m.limit(), 0x1234_5000, "LIMIT is page granular");
    m.write(ModelReg::PmbsrEl1, u64::MAX);
    assert_eq!(m.read(ModelReg::PmbsrEl1), 0xfc0f_ffff);
    m.write(ModelReg::PmsirrEl1, u64::MAX);
    assert_eq!(m.read(ModelReg::PmsirrEl1), 0xffff_ff01);
    m.write(ModelReg::PmsidrEl1, 0);
    assert_eq!(m.read(ModelReg::PmsidrEl1), MODEL_PMSIDR);
    m.write(ModelReg::PmbidrEl1, u64::MAX);
    assert_eq!(m.read(ModelReg::PmbidrEl1), MODEL_PMBIDR);
    let idr = crate::regs::PmsIdr::from_bits(MODEL_PMSIDR);
    assert_eq!(idr.max_record_bytes() as usize, RECORD_SIZE);
    assert_eq!(crate::regs::PmbIdr::from_bits(MODEL_PMBIDR).align_bytes(), 64);
    assert_eq!(ModelReg::from_encoding(3, 0, 9, 10, 3), Some(ModelReg::PmbsrEl1));
    assert_eq!(ModelReg::from_encoding(3, 5, 9, 9, 0), Some(ModelReg::PmscrEl1));
    assert_eq!(ModelReg::from_encoding(3, 0, 9, 9, 1), None);
    // A static model is possible.
    static _MODEL: SpeModel = SpeModel::new();
}

#[test]
fn enabling_rules() {
    let mut m = SpeModel::new();
    let s = el1_sample(0);
    assert_eq!(m.sample(&s), SampleOutcome::Disabled);
    m.write(ModelReg::PmscrEl1, PMSCR_EL1::E1SPE.val(1).value);
    assert_eq!(m.sample(&s), SampleOutcome::Disabled, "buffer not enabled");
    m.write(ModelReg::PmblimitrEl1, (VA_BASE + BUF_SIZE) | 1);
    assert_eq!(m.sample(&s), SampleOutcome::Recorded);
    let el0 = Sample { el: 0, ..s };
    assert_eq!(m.sample(&el0), SampleOutcome::Disabled, "E0SPE clear");
    let el2 = Sample { el: 2, ..s };
    assert_eq!(m.sample(&el2), SampleOutcome::Disabled, "E2SPE clear");
    m.write(ModelReg::PmscrEl2, PMSCR_EL2::E2SPE.val(1).value);
    assert_eq!(m.sample(&el2), SampleOutcome::Recorded);
    m.write(ModelReg::PmbsrEl1, PMBSR_EL1::S.val(1).value);
    assert!(m.irq_pending());
    assert_eq!(m.sample(&s), SampleOutcome::Disabled, "collection stopped");
    m.acknowledge();
    assert!(!m.irq_pending());
    assert_eq!(m.sample(&s), SampleOutcome::Recorded);
    let el3 = Sample { el: 3, ..s };
    assert_eq!(m.sample(&el3), SampleOutcome::Disabled);
    let st = m.stats();
    assert_eq!((st.samples, st.disabled, st.records_produced), (9, 6, 3));
}

#[test]
fn drain_writes_exact_bytes_at_pmbptr() {
    let mut m = armed();
    let mut mem = Mem::new();
    let samples: Vec<Sample> = (0..3).map(el1_sample).collect();
    for s in &samples {
        assert_eq!(m.sample(s), SampleOutcome::Recorded);
    }
    assert_eq!(mem.writes.len(), 0, "nothing is written before a drain");
    let rep = m.drain(&mut mem);
    assert_eq!(rep.records_written, 3);
    assert_eq!(rep.bytes_written, 3 * RECORD_SIZE as u64);
    assert_eq!((rep.lost, rep.misdirected, rep.stop), (0, 0, None));
    assert_eq!(m.read(ModelReg::PmbptrEl1), VA_BASE + 3 * RECORD_SIZE as u64);
    assert_eq!(m.pending_records(), 0);
    for (i, s) in samples.iter().enumerate() {
        let mut expect = [0u8; RECORD_SIZE];
        encode_padded(&m.record_for(s), &mut expect, RECORD_SIZE).unwrap();
        assert_eq!(&mem.mem[i * RECORD_SIZE..(i + 1) * RECORD_SIZE], &expect);
        assert_eq!(mem.writes[i], (PA_BASE + (i * RECORD_SIZE) as u64, RECORD_SIZE));
    }
    assert!(mem.mem[3 * RECORD_SIZE..].iter().all(|&b| b == 0));
    // A second drain with nothing pending writes nothing.
    assert_eq!(m.drain(&mut mem), DrainReport::default());
}

#[test]
fn written_records_decode_back_to_samples() {
    let mut m = armed();
    m.write(
        ModelReg::PmscrEl1,
        0xff, // everything, incl. PA and CX
    );
    m.write(ModelReg::PmscrEl2, PMSCR_EL2::PA.val(1).value);
    let mut mem = Mem::new();
    let mut samples: Vec<Sample> = (0..4).map(el1_sample).collect();
    samples.push(Sample {
        el: 0,
        pc: 0x0000_aaaa_e4a9_b600,
        op: OpKind::Branch { target: 0x0000_aaaa_e4a9_b000, conditional: true, indirect: false },
        events: (event::RETIRED | event::NOT_TAKEN) as u32,
        ..el1_sample(9)
    });
    samples.push(Sample { op: OpKind::Other, ..el1_sample(10) });
    for s in &samples {
        assert_eq!(m.sample(s), SampleOutcome::Recorded);
    }
    m.drain(&mut mem);
    let used = samples.len() * RECORD_SIZE;
    let recs: Vec<_> = RecordAssembler::new(&mem.mem[..used]).map(|r| r.expect("model output decodes")).collect();
    assert_eq!(recs.len(), samples.len());
    for (rec, s) in recs.iter().zip(&samples) {
        assert_eq!(rec.end, RecordEnd::Timestamp);
        assert_eq!(rec.len, RECORD_SIZE);
        let r = &rec.record;
        assert_eq!(r, &m.record_for(s));
        let pc = r.pc.unwrap();
        assert_eq!((pc.virtual_address(), pc.el, pc.ns), (s.pc, s.el, s.ns));
        assert_eq!(r.timestamp, Some(s.timestamp));
        assert_eq!(r.total_latency, Some(s.total_latency));
        assert_eq!(r.events.unwrap().0, u64::from(s.events));
        assert_eq!(r.context_el1, s.context);
        match s.op {
            OpKind::Load { va, pa, .. } => {
                assert_eq!(r.data_va, Some(va));
                assert_eq!(r.data_pa.unwrap().addr, pa);
                assert_eq!(r.op.unwrap().class, OpClass::LoadStore);
            }
            OpKind::Branch { target, .. } => {
                assert_eq!(r.branch_target.unwrap().virtual_address(), target);
                assert_eq!(r.op.unwrap().subclass, op::BR_COND);
            }
            _ => assert_eq!(r.op.unwrap().class, OpClass::Other),
        }
    }
}

#[test]
fn end_packet_without_timestamps_and_pa_gated_by_el2() {
    let mut m = armed();
    m.write(ModelReg::PmscrEl1, PMSCR_EL1::E1SPE.val(1).value | PMSCR_EL1::PA.val(1).value);
    let r = m.record_for(&el1_sample(0));
    assert_eq!(r.timestamp, None);
    assert_eq!(r.data_pa, None, "PMSCR_EL2.PA clear hides PAs from EL1");
    assert_eq!(r.context_el1, None, "CX clear");
    m.sample(&el1_sample(0));
    let mut mem = Mem::new();
    m.drain(&mut mem);
    assert_eq!(mem.mem[RECORD_SIZE - 1], crate::packet::hdr::END);
}

#[test]
fn buffer_full_stops_collection_until_rearmed() {
    let mut m = armed();
    let mut mem = Mem::new();
    let limit = VA_BASE + BUF_SIZE;
    m.write(ModelReg::PmbptrEl1, limit - 2 * RECORD_SIZE as u64);
    for i in 0..5 {
        assert_eq!(m.sample(&el1_sample(i)), SampleOutcome::Recorded);
    }
    let rep = m.drain(&mut mem);
    assert_eq!(rep.records_written, 2);
    assert_eq!(rep.lost, 0, "records that did not fit wait in the internal buffer");
    assert_eq!(m.pending_records(), 3);
    assert_eq!(rep.stop, Some(StopReason::BufferFull));
    assert!(m.irq_pending());
    let pmbsr = m.read(ModelReg::PmbsrEl1);
    assert!(PMBSR_EL1::S.is_set(pmbsr));
    assert_eq!(PMBSR_EL1::EC.read(pmbsr), EC_BUFFER_MANAGEMENT);
    assert_eq!(PMBSR_EL1::BSC.read(pmbsr), BSC_BUFFER_FILLED);
    assert_eq!(m.read(ModelReg::PmbptrEl1), limit);
    assert_eq!(m.sample(&el1_sample(5)), SampleOutcome::Disabled);
    assert_eq!(m.stats().buffer_full_events, 1);
    // Host services the interrupt: moves PMBPTR back, clears PMBSR.
    m.write(ModelReg::PmbptrEl1, VA_BASE);
    m.write(ModelReg::PmbsrEl1, 0);
    assert!(!m.irq_pending());
    assert_eq!(m.sample(&el1_sample(6)), SampleOutcome::Recorded);
    let rep = m.drain(&mut mem);
    assert_eq!(rep.records_written, 4, "the 3 retained records, then the new one");
    assert_eq!(mem.writes[2], (PA_BASE, RECORD_SIZE), "retained records go first, at the re-armed pointer");
    assert_eq!(*mem.writes.last().unwrap(), (PA_BASE + 3 * RECORD_SIZE as u64, RECORD_SIZE));
    let st = m.stats();
    assert_eq!((st.records_written, st.lost, st.misdirected), (6, 0, 0));
}

#[test]
fn misdirected_writes_are_counted_not_performed() {
    let mut m = armed();
    let mut mem = Mem::new();
    mem.redirect = PAGE_SIZE; // the wrong regime maps the VA elsewhere
    m.sample(&el1_sample(0));
    m.sample(&el1_sample(1));
    let rep = m.drain(&mut mem);
    assert_eq!(rep.misdirected, 2);
    assert_eq!(rep.records_written, 0);
    assert!(mem.writes.is_empty());
    assert!(mem.mem.iter().all(|&b| b == 0));
    assert_eq!(m.read(ModelReg::PmbptrEl1), VA_BASE + 2 * RECORD_SIZE as u64);
    assert!(!m.irq_pending());
    assert_eq!(m.stats().misdirected, 2);

    // Outside the intended window (PMBPTR moved) is misdirected too.
    let mut m = armed();
    let mut mem = Mem::new();
    m.write(ModelReg::PmbptrEl1, VA_BASE - PAGE_SIZE);
    m.sample(&el1_sample(0));
    assert_eq!(m.drain(&mut mem).misdirected, 1);

    // No intended buffer: nothing can be checked, nothing is written.
    let mut m = armed();
    m.intended_set = 0;
    m.sample(&el1_sample(0));
    assert_eq!(m.drain(&mut Mem::new()).misdirected, 1);
}

#[test]
fn translation_fault_sets_pmbsr() {
    let mut m = armed();
    let mut mem = Mem::new();
    mem.fault = Some(TranslationFault::translation(FaultStage::Stage2, 3));
    for i in 0..3 {
        m.sample(&el1_sample(i));
    }
    let rep = m.drain(&mut mem);
    assert_eq!(rep.stop, Some(StopReason::Fault(TranslationFault { stage: FaultStage::Stage2, fsc: 0b00_0111 })));
    assert_eq!((rep.misdirected, rep.lost, rep.records_written), (1, 3, 0));
    let pmbsr = m.read(ModelReg::PmbsrEl1);
    assert!(PMBSR_EL1::S.is_set(pmbsr));
    assert_eq!(PMBSR_EL1::EC.read(pmbsr), EC_STAGE2_DATA_ABORT);
    assert_eq!(PMBSR_EL1::FSC.read(pmbsr), 0b00_0111);
    assert_eq!(m.read(ModelReg::PmbptrEl1), VA_BASE, "faulting write does not advance");
    assert!(m.irq_pending());
    assert_eq!(m.stats().faults, 1);
    let mut m = armed();
    mem.fault = Some(TranslationFault::permission(FaultStage::Stage1, 2));
    m.sample(&el1_sample(0));
    m.drain(&mut mem);
    assert_eq!(PMBSR_EL1::EC.read(m.read(ModelReg::PmbsrEl1)), EC_STAGE1_DATA_ABORT);
}

#[test]
fn pending_overflow_is_lost() {
    let mut m = armed();
    let extra = 6;
    for i in 0..(PENDING_RECORDS + extra) as u64 {
        let expect = if (i as usize) < PENDING_RECORDS { SampleOutcome::Recorded } else { SampleOutcome::Lost };
        assert_eq!(m.sample(&el1_sample(i)), expect);
    }
    assert_eq!(m.stats().lost, extra as u64);
    let mut mem = Mem::new();
    let rep = m.drain(&mut mem);
    assert_eq!(rep.records_written, PENDING_RECORDS as u64);
    assert_eq!(m.stats().records_produced, PENDING_RECORDS as u64);
}

#[test]
fn disabled_buffer_at_drain_keeps_records_until_enabled() {
    let mut m = armed();
    m.sample(&el1_sample(0));
    let limit = m.read(ModelReg::PmblimitrEl1);
    m.write(ModelReg::PmblimitrEl1, 0);
    let rep = m.drain(&mut Mem::new());
    assert_eq!((rep.lost, rep.records_written), (0, 0));
    assert_eq!(m.pending_records(), 1);
    m.write(ModelReg::PmblimitrEl1, limit);
    let rep = m.drain(&mut Mem::new());
    assert_eq!((rep.lost, rep.records_written), (0, 1));
}

#[test]
fn discard_mode() {
    let mut m = armed();
    m.write(ModelReg::PmblimitrEl1, (VA_BASE + BUF_SIZE) | (FM_DISCARD << 1) | 1);
    m.sample(&el1_sample(0));
    let mut mem = Mem::new();
    let rep = m.drain(&mut mem);
    assert_eq!((rep.discarded, rep.records_written), (1, 0));
    assert!(mem.writes.is_empty());
    assert_eq!(m.read(ModelReg::PmbptrEl1), VA_BASE);
}

#[test]
fn filters() {
    let mut m = armed();
    let s = el1_sample(0);
    // Events: require MISPRED.
    m.write(ModelReg::PmsfcrEl1, PMSFCR_EL1::FE.val(1).value);
    m.write(ModelReg::PmsevfrEl1, event::MISPRED);
    assert_eq!(m.sample(&s), SampleOutcome::Filtered);
    m.write(ModelReg::PmsevfrEl1, event::RETIRED);
    assert_eq!(m.sample(&s), SampleOutcome::Recorded);
    // Type: branches only.
    m.write(ModelReg::PmsfcrEl1, PMSFCR_EL1::FT.val(1).value | PMSFCR_EL1::B.val(1).value);
    assert_eq!(m.sample(&s), SampleOutcome::Filtered);
    let br = Sample { op: OpKind::Branch { target: 0, conditional: false, indirect: true }, ..s };
    assert_eq!(m.sample(&br), SampleOutcome::Recorded);
    // Latency: at least 100 cycles.
    m.write(ModelReg::PmsfcrEl1, PMSFCR_EL1::FL.val(1).value);
    m.write(ModelReg::PmslatfrEl1, 100);
    assert_eq!(m.sample(&s), SampleOutcome::Filtered);
    let slow = Sample { total_latency: 100, ..s };
    assert_eq!(m.sample(&slow), SampleOutcome::Recorded);
    assert_eq!(m.stats().filtered, 3);
}

#[test]
fn misaligned_pointer_splits_at_page_boundary() {
    let mut m = armed();
    let mut mem = Mem::new();
    let ptr = VA_BASE + PAGE_SIZE - 16;
    m.write(ModelReg::PmbptrEl1, ptr);
    m.sample(&el1_sample(0));
    assert_eq!(m.drain(&mut mem).records_written, 1);
    assert_eq!(mem.writes, vec![(PA_BASE + PAGE_SIZE - 16, 16), (PA_BASE + PAGE_SIZE, 48)]);
}

#[test]
fn largest_record_fits() {
    let mut m = armed();
    m.write(ModelReg::PmscrEl1, 0xff);
    m.write(ModelReg::PmscrEl2, 0xff);
    let s = Sample { events: u32::MAX, total_latency: u16::MAX, ..el1_sample(0) };
    assert_eq!(m.sample(&s), SampleOutcome::Recorded);
    let el2 = Sample { el: 2, ..s };
    assert_eq!(m.sample(&el2), SampleOutcome::Recorded);
    let rec = m.record_for(&el2);
    assert_eq!(rec.context_el2, Some(42));
    assert!(crate::encode::encoded_len(&rec).unwrap() <= RECORD_SIZE);
}

#[test]
fn par_decoding() {
    assert_eq!(par_to_pa(0x0000_0000_4812_3000 | 0xf00 << 44, 0xffff_8000_0000_0abc), Ok(0x4812_3abc));
    // F=1, S=1 (stage 2), FST = translation fault level 1 (0b000101).
    let f = par_to_pa(1 | (1 << 9) | (0b000101 << 1), 0).unwrap_err();
    assert_eq!(f, TranslationFault::translation(FaultStage::Stage2, 1));
    let f = par_to_pa(1 | (0b000100 << 1), 0).unwrap_err();
    assert_eq!(f.stage, FaultStage::Stage1);
}

#[test]
fn sanitize_repairs_a_corrupted_length() {
    let mut m = armed();
    m.sample(&el1_sample(0));
    assert!(!m.sanitize(), "a consistent model needs no repair");
    m.pending_len = PENDING_CAPACITY + 3;
    assert!(m.sanitize());
    assert_eq!(m.pending_records(), PENDING_RECORDS);
    m.pending_len = RECORD_SIZE + 1;
    assert!(m.sanitize());
    assert_eq!(m.pending_records(), 1);
    // Draining after a repair never reads past the internal buffer.
    m.drain(&mut Mem::new());
}

#[test]
fn enabling_under_a_foreign_regime_is_misdirected_without_a_record() {
    // The world switch re-enables the host's buffer while the guest's regime
    // is live: no record is pending, but hardware could write at once.
    let mut m = armed();
    let limit = m.read(ModelReg::PmblimitrEl1);
    let pmscr = m.read(ModelReg::PmscrEl1);
    let mut host = Mem::new();
    // Disabled under the right regime: judged, fine.
    m.write_judged(ModelReg::PmscrEl1, 0, &mut host);
    m.write_judged(ModelReg::PmblimitrEl1, limit & !1, &mut host);
    assert_eq!((m.stats().regime_checks, m.stats().misdirected), (2, 0));
    let mut guest = Mem::new();
    guest.redirect = PAGE_SIZE;
    m.write_judged(ModelReg::PmblimitrEl1, limit, &mut guest);
    m.write_judged(ModelReg::PmscrEl1, pmscr, &mut guest);
    let st = m.stats();
    assert_eq!((st.misdirected, st.misdirected_regimes, st.records_written), (2, 2, 0));
    assert!(host.writes.is_empty() && guest.writes.is_empty(), "judging writes nothing");
    // A faulting regime is misdirected too.
    guest.fault = Some(TranslationFault::translation(FaultStage::Stage2, 1));
    m.write_judged(ModelReg::PmscrEl1, pmscr, &mut guest);
    assert_eq!(m.stats().misdirected, 3);
    // The same writes under the host's regime are clean.
    let mut m = armed();
    m.write_judged(ModelReg::PmblimitrEl1, limit, &mut host);
    m.write_judged(ModelReg::PmscrEl1, pmscr, &mut host);
    assert_eq!((m.stats().regime_checks, m.stats().misdirected), (2, 0));
}

#[test]
fn an_empty_drain_judges_the_regime() {
    let mut m = armed();
    let mut guest = Mem::new();
    guest.redirect = PAGE_SIZE;
    assert_eq!(m.pending_records(), 0);
    let rep = m.drain(&mut guest);
    assert_eq!((rep.misdirected, rep.records_written), (1, 0));
    assert_eq!(m.stats().misdirected, 1);
    assert!(guest.writes.is_empty());
    // Under the host's regime an empty drain is clean.
    assert_eq!(m.drain(&mut Mem::new()), DrainReport::default());
    // Nothing is judged while the unit cannot write.
    m.write(ModelReg::PmbsrEl1, PMBSR_EL1::S.val(1).value);
    assert_eq!(m.drain(&mut guest).misdirected, 0);
    m.acknowledge();
    m.write(ModelReg::PmblimitrEl1, 0);
    assert_eq!(m.drain(&mut guest).misdirected, 0);
    assert_eq!(m.stats().misdirected, 1);
}
