//! Property and fuzz-style tests with a tiny deterministic PRNG.

use spevisor_spe::dump::dump_buffer;
use spevisor_spe::encode::{encode, encode_padded, MAX_RECORD_LEN};
use spevisor_spe::packet::{CodeAddress, Events, OpClass, OpType, Packets, PhysAddress, ADDR_MASK};
use spevisor_spe::record::{Record, RecordAssembler, RecordEnd};

/// xorshift64* — small, deterministic, good enough for test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn maybe<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if self.coin() {
            Some(f(self))
        } else {
            None
        }
    }
    /// Values biased towards the size boundaries of variable payloads.
    fn sized(&mut self) -> u64 {
        let bits = [8, 16, 32, 64][self.below(4) as usize];
        let v = self.next();
        if bits == 64 {
            v
        } else {
            v & ((1u64 << bits) - 1)
        }
    }
}

fn code(r: &mut Rng) -> CodeAddress {
    CodeAddress { addr: r.next() & ADDR_MASK, el: r.below(4) as u8, ns: r.coin() }
}

fn random_record(r: &mut Rng) -> Record {
    Record {
        pc: r.maybe(code),
        branch_target: r.maybe(code),
        prev_branch_target: r.maybe(code),
        data_va: r.maybe(Rng::next),
        data_pa: r.maybe(|r| PhysAddress {
            addr: r.next() & ADDR_MASK,
            ns: r.coin(),
            ch: r.coin(),
            pat: r.below(16) as u8,
        }),
        events: r.maybe(|r| Events(r.sized())),
        op: r.maybe(|r| OpType { class: OpClass::from_bits(r.below(4) as u8), subclass: r.next() as u8 }),
        data_source: r.maybe(Rng::sized),
        context_el1: r.maybe(|r| r.next() as u32),
        context_el2: r.maybe(|r| r.next() as u32),
        timestamp: r.maybe(Rng::next),
        total_latency: r.maybe(|r| r.next() as u16),
        issue_latency: r.maybe(|r| r.next() as u16),
        translation_latency: r.maybe(|r| r.next() as u16),
    }
}

#[test]
fn encode_decode_round_trip() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for _ in 0..20_000 {
        let rec = random_record(&mut rng);
        let mut out = [0u8; MAX_RECORD_LEN];
        let n = encode(&rec, &mut out).expect("valid record encodes");
        let got: Vec<_> = RecordAssembler::new(&out[..n]).collect();
        assert_eq!(got.len(), 1, "{rec:?}");
        let a = got[0].expect("decodes");
        assert_eq!(a.record, rec);
        assert_eq!((a.offset, a.len), (0, n));
        let end = if rec.timestamp.is_some() { RecordEnd::Timestamp } else { RecordEnd::End };
        assert_eq!(a.end, end);
    }
}

#[test]
fn streams_of_padded_records_round_trip() {
    let mut rng = Rng(0xfeed_beef);
    for _ in 0..500 {
        let recs: Vec<Record> = (0..rng.below(8) + 1).map(|_| random_record(&mut rng)).collect();
        let mut buf = Vec::new();
        for r in &recs {
            // Random padding between records and a fixed-size slot.
            buf.extend(std::iter::repeat_n(0u8, rng.below(5) as usize));
            let mut slot = [0u8; MAX_RECORD_LEN];
            let n = encode_padded(r, &mut slot, MAX_RECORD_LEN).unwrap();
            buf.extend_from_slice(&slot[..n]);
        }
        let got: Vec<Record> = RecordAssembler::new(&buf).map(|r| r.unwrap().record).collect();
        assert_eq!(got, recs);
    }
}

fn check_no_panic_and_offsets(buf: &[u8]) {
    let mut s = String::new();
    let summary = dump_buffer(&mut s, buf).unwrap();
    assert_eq!(s.lines().count(), summary.lines);
    let mut covered = 0;
    for p in Packets::new(buf) {
        match p {
            Ok(l) => {
                assert_eq!(l.offset, covered);
                assert!(l.offset + l.len <= buf.len());
                covered += l.len;
            }
            Err(e) => {
                assert!(e.offset < buf.len(), "error offset {} out of bounds", e.offset);
                assert_eq!(e.offset, covered);
                covered += 1;
            }
        }
    }
    assert_eq!(covered, buf.len());
    for r in RecordAssembler::new(buf) {
        match r {
            Ok(a) => assert!(a.offset + a.len <= buf.len()),
            Err(e) => assert!(e.offset < buf.len()),
        }
    }
}

#[test]
fn random_buffers_never_panic() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut buf = Vec::with_capacity(64);
    for _ in 0..100_000 {
        buf.clear();
        let len = rng.below(48) as usize;
        for _ in 0..len {
            // Bias towards interesting header bytes.
            let b = match rng.below(4) {
                0 => [0x00, 0x01, 0x71, 0x20, 0x23, 0xb0, 0x98, 0x42][rng.below(8) as usize],
                _ => rng.next() as u8,
            };
            buf.push(b);
        }
        check_no_panic_and_offsets(&buf);
    }
}

#[test]
fn mutated_vectors_never_panic() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/");
    let mut rng = Rng(42);
    for name in ["spe-b1-ts0.data", "spe-b1-ts1.data", "spe-parser-frame-ld.bin", "quipper-2rec.bin"] {
        let orig =
            std::fs::read(format!("{dir}{name}")).unwrap_or_else(|e| panic!("missing test vector {dir}{name}: {e}"));
        for _ in 0..5_000 {
            let mut buf = orig.clone();
            for _ in 0..rng.below(4) + 1 {
                match rng.below(4) {
                    0 if !buf.is_empty() => {
                        let i = rng.below(buf.len() as u64) as usize;
                        buf[i] ^= 1 << rng.below(8);
                    }
                    1 if !buf.is_empty() => {
                        let n = rng.below(buf.len() as u64) as usize;
                        buf.truncate(n);
                    }
                    2 => {
                        let i = rng.below(buf.len() as u64 + 1) as usize;
                        buf.insert(i, rng.next() as u8);
                    }
                    _ if !buf.is_empty() => {
                        let i = rng.below(buf.len() as u64) as usize;
                        buf.remove(i);
                    }
                    _ => {}
                }
            }
            check_no_panic_and_offsets(&buf);
        }
    }
}
