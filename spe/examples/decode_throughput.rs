//! Wall-clock throughput of the SPE record decoder on this machine, beside a
//! plain memory copy of the same buffer (`cargo xtask bench` runs it in
//! release mode).
//!
//! ```text
//! cargo run --release -p spevisor-spe --example decode_throughput [-- MIB]
//! ```
//!
//! Generates at least MIB (default 64) MiB of varied records with
//! [`spevisor_spe::encode`], then times [`spevisor_spe::RecordAssembler`]
//! over the whole buffer and a `copy_from_slice` of it, best of
//! [`REPS`] runs each, and prints one line:
//! `spe-throughput: bytes=.. records=.. decode_mb_s=.. memcpy_mb_s=..`
//! (MB = 10^6 bytes).

use spevisor_spe::packet::{event, op, CodeAddress, Events, OpClass, OpType, PhysAddress};
use spevisor_spe::record::Record;
use spevisor_spe::{encode, RecordAssembler};
use std::hint::black_box;
use std::time::Instant;

/// Timed runs of each measurement; the fastest counts.
const REPS: usize = 5;
const DEFAULT_MIB: usize = 64;
const MIB: usize = 1 << 20;
const BYTES_PER_MB: f64 = 1e6;
/// Largest encoded record (every packet once).
const MAX_RECORD: usize = spevisor_spe::encode::MAX_RECORD_LEN;

/// xorshift64: deterministic variety without dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A record shaped like real ones: loads, stores and branches from EL0/EL1,
/// with latencies, events and (for memory operations) data addresses.
fn record(rng: &mut Rng, ts: u64) -> Record {
    let r = rng.next();
    let el = (r & 1) as u8;
    let pc = if el == 0 { 0x0000_5555_0000_0000 } else { 0xffff_8000_0800_0000 } | (r >> 8 & 0xff_fffc);
    let mut rec = Record {
        pc: Some(CodeAddress::new(pc, el, true)),
        context_el1: Some((r >> 40) as u32 & 0xffff),
        events: Some(Events(event::RETIRED | (r >> 20 & (event::L1D_ACCESS | event::TLB_ACCESS | event::MISPRED)))),
        issue_latency: Some((r >> 24) as u16 & 0x3f),
        total_latency: Some((r >> 30) as u16 & 0x1ff),
        timestamp: Some(ts),
        ..Record::default()
    };
    match r >> 60 & 3 {
        0 | 1 => {
            let store = r >> 59 & 1 == 1;
            let subclass = op::LDST_GP_REG | if store { op::LDST_ST } else { 0 };
            let va = 0x0000_7fff_0000_0000 | (rng.next() & 0xffff_fff8);
            rec.op = Some(OpType { class: OpClass::LoadStore, subclass });
            rec.data_va = Some(va);
            rec.data_pa = Some(PhysAddress { addr: 0x4000_0000 | (va & 0x3fff_fff8), ns: true, ch: false, pat: 0 });
            rec.translation_latency = Some((r >> 50) as u16 & 0x1f);
            rec.data_source = Some(r >> 56 & 0xf);
        }
        2 => {
            rec.op = Some(OpType { class: OpClass::Branch, subclass: op::BR_COND });
            rec.branch_target = Some(CodeAddress::new(pc.wrapping_add(r >> 44 & 0xffc), el, true));
        }
        _ => rec.op = Some(OpType { class: OpClass::Other, subclass: 0 }),
    }
    rec
}

/// At least `min_bytes` of encoded records (and how many).
fn generate(min_bytes: usize) -> (Vec<u8>, u64) {
    let mut buf = vec![0u8; min_bytes + MAX_RECORD];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut len, mut records) = (0, 0u64);
    while len < min_bytes {
        let r = record(&mut rng, records * 64);
        len += encode(&r, &mut buf[len..]).expect("generated records are valid");
        records += 1;
    }
    buf.truncate(len);
    (buf, records)
}

/// Best-of-[`REPS`] seconds of `f`.
fn best<T>(mut f: impl FnMut() -> T) -> f64 {
    (0..REPS)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let mib = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(DEFAULT_MIB);
    let (buf, records) = generate(mib * MIB);
    let decode_s = best(|| {
        let (mut n, mut sum) = (0u64, 0u64);
        for r in RecordAssembler::new(black_box(&buf)) {
            let r = r.expect("the buffer decodes");
            n += 1;
            sum = sum.wrapping_add(r.record.pc.map_or(0, |p| p.addr));
        }
        assert_eq!(n, records, "every record decoded");
        sum
    });
    let mut dst = vec![1u8; buf.len()];
    let copy_s = best(|| {
        dst.copy_from_slice(black_box(&buf));
        dst[dst.len() / 2]
    });
    let mb = buf.len() as f64 / BYTES_PER_MB;
    println!(
        "spe-throughput: bytes={} records={} decode_mb_s={:.0} memcpy_mb_s={:.0}",
        buf.len(),
        records,
        mb / decode_s,
        mb / copy_s
    );
}
