//! The real SPE captures in `spe/tests/vectors/` (provenance and licences in
//! its README) must dump exactly to their `*.expected.txt` and decode to the
//! records the `.csv` files describe.

use spevisor_spe::dump::{dump_buffer, write_header};
use spevisor_spe::packet::{event, op, OpClass};
use spevisor_spe::record::{RecordAssembler, RecordEnd};
use std::path::PathBuf;

const VECTORS: [&str; 4] = ["spe-b1-ts0.data", "spe-b1-ts1.data", "spe-parser-frame-ld.bin", "quipper-2rec.bin"];

fn vector_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors"))
}

fn read(name: &str) -> Vec<u8> {
    let path = vector_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read test vector {}: {e}", path.display()))
}

fn read_text(name: &str) -> String {
    String::from_utf8(read(name)).expect("vector text is UTF-8")
}

fn expected_name(data: &str) -> String {
    let stem = data.rsplit_once('.').map(|(s, _)| s).unwrap_or(data);
    format!("{stem}.expected.txt")
}

#[test]
fn dumps_match_expected_line_for_line() {
    for name in VECTORS {
        let data = read(name);
        let mut out = String::new();
        write_header(&mut out, name, data.len()).unwrap();
        let summary = dump_buffer(&mut out, &data).unwrap();
        assert_eq!(summary.bad_bytes, 0, "{name}");
        let expected = read_text(&expected_name(name));
        let got: Vec<&str> = out.lines().collect();
        let want: Vec<&str> = expected.lines().collect();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{name}: line {} differs", i + 1);
        }
        assert_eq!(got.len(), want.len(), "{name}: line count");
    }
}

/// spe-parser's CSV: cpu,op,pc,el,condition,indirect,event,issue_lat,
/// total_lat,br_tgt,br_tgt_lvl,pbt,pbt_lvl,context,ts
#[test]
fn csv_record_level_decode() {
    for (data_name, csv_name) in [("spe-b1-ts0.data", "spe-b1-ts0.csv"), ("spe-b1-ts1.data", "spe-b1-ts1.csv")] {
        let data = read(data_name);
        let csv = read_text(csv_name);
        let row: Vec<&str> = csv.lines().nth(1).expect("csv row").split(',').collect();
        let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
        let recs: Vec<_> = RecordAssembler::new(&data).collect();
        assert_eq!(recs.len(), 1, "{data_name}");
        let rec = recs[0].unwrap();
        let r = rec.record;
        assert_eq!(rec.len, data.len());
        assert_eq!(row[1], "B");
        let opt = r.op.unwrap();
        assert_eq!(opt.class, OpClass::Branch);
        let pc = r.pc.unwrap();
        assert_eq!(pc.addr, hex(row[2]));
        assert_eq!(pc.el.to_string(), row[3]);
        assert_eq!(opt.subclass & op::BR_COND != 0, row[4] == "true");
        assert_eq!(opt.subclass & op::BR_INDIRECT != 0, row[5] == "true");
        assert_eq!(row[6], "RETIRED");
        assert_eq!(r.events.unwrap().0, event::RETIRED);
        assert_eq!(r.issue_latency.unwrap().to_string(), row[7]);
        assert_eq!(r.total_latency.unwrap().to_string(), row[8]);
        let tgt = r.branch_target.unwrap();
        assert_eq!(tgt.addr, hex(row[9]));
        assert_eq!(tgt.el.to_string(), row[10]);
        assert!(row[11].is_empty() && r.prev_branch_target.is_none());
        assert!(row[13].is_empty() && r.context_el1.is_none());
        assert_eq!(r.timestamp.unwrap_or(0).to_string(), row[14]);
        let end = if r.timestamp.is_some() { RecordEnd::Timestamp } else { RecordEnd::End };
        assert_eq!(rec.end, end);
    }
}

#[test]
fn multi_record_vectors() {
    let q = read("quipper-2rec.bin");
    let recs: Vec<_> = RecordAssembler::new(&q).map(Result::unwrap).collect();
    assert_eq!(recs.len(), 2);
    let (a, b) = (recs[0].record, recs[1].record);
    assert_eq!(a.pc.unwrap().el, 2);
    assert_eq!(a.context_el2, Some(0x5f80));
    assert_eq!(a.data_va, Some(0x00ff_0e37_0309_6b28));
    assert_eq!(a.translation_latency, Some(1));
    assert_eq!(a.data_source, Some(0));
    assert_eq!(a.timestamp, Some(44731163950));
    assert_eq!(b.branch_target.unwrap().addr, 0xffba66edefb0e4);
    assert_eq!(b.events.unwrap().0, event::RETIRED | event::NOT_TAKEN);
    assert_eq!((recs[1].offset, recs[1].len), (0x40, 0x40));

    let f = read("spe-parser-frame-ld.bin");
    let recs: Vec<_> = RecordAssembler::new(&f).map(Result::unwrap).collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].record.timestamp, Some(13196304120239));
    assert_eq!(recs[0].end, RecordEnd::Timestamp);
    assert_eq!(recs[1].end, RecordEnd::Truncated);
    let ld = recs[1].record;
    assert_eq!(ld.data_pa.unwrap().addr, 0x8032c955a43);
    assert!(ld.data_pa.unwrap().ns);
    assert_eq!(ld.total_latency, Some(8));
}

#[test]
fn vectors_reencode_to_equal_records() {
    for name in VECTORS {
        let data = read(name);
        for rec in RecordAssembler::new(&data).map(Result::unwrap) {
            let mut out = [0u8; spevisor_spe::encode::MAX_RECORD_LEN];
            let n = spevisor_spe::encode(&rec.record, &mut out).unwrap();
            let back: Vec<_> = RecordAssembler::new(&out[..n]).map(Result::unwrap).collect();
            assert_eq!(back.len(), 1);
            assert_eq!(back[0].record, rec.record, "{name} @ {:#x}", rec.offset);
        }
    }
}
