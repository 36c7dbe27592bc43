//! End-to-end tests of the report tool on the SPE test vectors in
//! `spe/tests/vectors/`.

use spe_report::{parse_args, run, Command, Error};
use spevisor_spe::encode::encode_padded;
use spevisor_spe::frame::write_frame;
use spevisor_spe::packet::{CodeAddress, Events};
use spevisor_spe::record::Record;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

const VECTORS: [(&str, &str); 4] = [
    ("spe-b1-ts0.data", "spe-b1-ts0.expected.txt"),
    ("spe-b1-ts1.data", "spe-b1-ts1.expected.txt"),
    ("spe-parser-frame-ld.bin", "spe-parser-frame-ld.expected.txt"),
    ("quipper-2rec.bin", "quipper-2rec.expected.txt"),
];

fn vector(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spe/tests/vectors").join(name);
    assert!(p.exists(), "missing test vector {}", p.display());
    p
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("spe-report-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn run_ok(cmd: &Command) -> (String, String) {
    let (mut out, mut warn) = (Vec::new(), Vec::new());
    run(cmd, &mut out, &mut warn).unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (String::from_utf8(out).unwrap(), String::from_utf8(warn).unwrap())
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn dump_matches_expected_files() {
    for (data, expected) in VECTORS {
        let (out, warn) = run_ok(&Command::Dump { file: vector(data) });
        let want = std::fs::read_to_string(vector(expected)).unwrap();
        assert_eq!(out, want, "{data}");
        assert!(warn.is_empty());
    }
}

#[test]
fn framed_console_log_dumps_like_the_raw_buffers() {
    let mut log = String::from("U-Boot 2024.01\nBooting spevisor...\n");
    for (data, _) in &VECTORS[2..] {
        let bytes = std::fs::read(vector(data)).unwrap();
        log.push_str("[host] profiler: dumping buffer\n");
        write_frame(&mut log, &bytes).unwrap();
    }
    log.push_str("[host] done\n");
    let path = scratch("console.log");
    std::fs::write(&path, &log).unwrap();
    let (out, _) = run_ok(&Command::Dump { file: path });
    let mut expected = String::new();
    for (i, (_, exp)) in VECTORS[2..].iter().enumerate() {
        let text = std::fs::read_to_string(vector(exp)).unwrap();
        let (header, body) = text.split_once('\n').unwrap();
        let size = header.rsplit_once('(').unwrap().1;
        expected.push_str(&format!("== console.log frame {i} ({size}\n{body}"));
    }
    assert_eq!(out, expected);
}

#[test]
fn corrupted_frame_is_an_error() {
    let bytes = std::fs::read(vector("quipper-2rec.bin")).unwrap();
    let mut log = String::new();
    write_frame(&mut log, &bytes).unwrap();
    // Flip one hex digit of the payload.
    let pos = log.find('\n').unwrap() + 5;
    let mut corrupted = log.into_bytes();
    corrupted[pos] = if corrupted[pos] == b'0' { b'1' } else { b'0' };
    let path = scratch("corrupted.log");
    std::fs::write(&path, &corrupted).unwrap();
    let err = run(&Command::Dump { file: path.clone() }, &mut Vec::new(), &mut Vec::new()).unwrap_err();
    assert!(matches!(err, Error::Frame { .. }));
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("corrupted frame: crc32"), "{err}");

    // Same through the binary: non-zero exit and a clear message.
    let o = Process::new(env!("CARGO_BIN_EXE_spe-report")).args(["dump", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("corrupted.log: line 1: corrupted frame"), "{stderr}");
}

#[test]
fn records_json() {
    let (out, warn) = run_ok(&Command::Records { file: vector("quipper-2rec.bin"), json: true });
    assert!(warn.is_empty());
    let recs: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["pc"], "0xffffba66eda1c2d0");
    assert_eq!(recs[0]["el"], 2);
    assert_eq!(recs[0]["ns"], true);
    assert_eq!(recs[0]["timestamp"], 44731163950u64);
    assert_eq!(recs[0]["total_latency"], 12);
    assert_eq!(recs[0]["op"], "LD GP-REG");
    assert_eq!(recs[0]["data_va"], "0xff0e3703096b28");
    assert_eq!(recs[0]["context_el2"], 0x5f80);
    assert_eq!(recs[1]["offset"], 64);
    assert_eq!(recs[1]["branch_target"]["addr"], "0xffffba66edefb0e4");
    assert_eq!(recs[1]["events_text"], "EV RETIRED NOT-TAKEN");
    let (text, _) = run_ok(&Command::Records { file: vector("spe-b1-ts1.data"), json: false });
    assert_eq!(text, "spe-b1-ts1.data+0x0: pc=0x7ffdbf2143e0 el0 op=B COND lat=42 ts=3913207673451\n");
}

#[test]
fn records_report_decode_errors_as_warnings() {
    let path = scratch("bad.bin");
    std::fs::write(&path, [0x02, 0x42, 0x02, 0x01]).unwrap();
    let (out, warn) = run_ok(&Command::Records { file: path, json: true });
    assert_eq!(out.lines().count(), 1);
    assert!(warn.contains("unknown packet header 0x02 at offset 0x0"), "{warn}");
}

/// The marker whose address the profile must attribute samples to.
#[no_mangle]
#[inline(never)]
pub extern "C" fn spe_report_profile_marker(x: u64) -> u64 {
    x.wrapping_mul(3).rotate_left(7) ^ 0x5a5a
}

#[test]
fn profile_by_el_and_symbol() {
    // Use this test executable as the ELF: find the marker's link address.
    let exe = std::env::current_exe().unwrap();
    let syms = spe_report::SymbolTable::from_file(&exe).unwrap();
    let data = std::fs::read(&exe).unwrap();
    let marker = {
        use object::{Object, ObjectSymbol};
        let f = object::File::parse(&*data).unwrap();
        f.symbols().find(|s| s.name() == Ok("spe_report_profile_marker")).expect("marker symbol").address()
    };
    assert_eq!(syms.lookup(marker), Some("spe_report_profile_marker"));
    assert!(spe_report_profile_marker(1) != 0);
    // Samples: 3 in the marker (EL1, loaded 0x10000 higher), 1 unknown EL0.
    let load = 0x1_0000u64;
    let mut buf = Vec::new();
    let mut push = |pc: u64, el: u8| {
        let r = Record { pc: Some(CodeAddress::new(pc, el, true)), events: Some(Events(2)), ..Record::default() };
        let mut slot = [0u8; 64];
        encode_padded(&r, &mut slot, 64).unwrap();
        buf.extend_from_slice(&slot);
    };
    for _ in 0..3 {
        push(marker + load, 1);
    }
    push(0x10, 0);
    let path = scratch("profile.bin");
    std::fs::write(&path, &buf).unwrap();
    let cmd = parse_args(&args(&[
        "profile",
        path.to_str().unwrap(),
        "--elf",
        exe.to_str().unwrap(),
        "--load-offset",
        "0x10000",
    ]))
    .unwrap();
    let (out, _) = run_ok(&cmd);
    assert!(out.contains("samples: 4"), "{out}");
    assert!(out.contains("EL1          3  75.00%"), "{out}");
    assert!(out.contains("EL0          1  25.00%"), "{out}");
    let top: Vec<&str> = out.lines().skip_while(|l| !l.ends_with("%  symbol")).collect();
    assert!(top[1].ends_with("spe_report_profile_marker"), "{out}");
    assert!(top[2].ends_with("[unknown]"), "{out}");
}

#[test]
fn argument_errors() {
    for bad in [
        &[][..],
        &["frobnicate", "x"],
        &["dump"],
        &["dump", "a", "b"],
        &["dump", "a", "--json"],
        &["profile", "a"],
        &["profile", "a", "--elf"],
        &["profile", "a", "--elf", "e", "--load-offset", "zz"],
        &["records", "a", "--bogus"],
    ] {
        let e = parse_args(&args(bad)).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{bad:?}");
    }
    assert_eq!(
        parse_args(&args(&["records", "f", "--json"])).unwrap(),
        Command::Records { file: "f".into(), json: true }
    );
    assert_eq!(parse_args(&args(&["--help"])).unwrap(), Command::Help);
    let exe = env!("CARGO_BIN_EXE_spe-report");
    let o = Process::new(exe).arg("dump").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing FILE"));
    let o = Process::new(exe).args(["dump", "/nonexistent/spe.bin"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("reading /nonexistent/spe.bin"));
    let o = Process::new(exe)
        .args(["profile", vector("quipper-2rec.bin").to_str().unwrap(), "--elf"])
        .arg(vector("quipper-2rec.bin"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a usable ELF file"));
    let o = Process::new(exe).args(["dump", vector("spe-b1-ts0.data").to_str().unwrap()]).output().unwrap();
    assert!(o.status.success());
    assert_eq!(o.stdout, std::fs::read(vector("spe-b1-ts0.expected.txt")).unwrap());
}

/// The software model's buffer, framed like the host kernel prints it,
/// decodes back to the samples through the tool.
#[test]
fn model_buffer_through_console_frame() {
    use spevisor_spe::model::{BufferWriter, ModelReg, OpKind, Sample, SpeModel, TranslationFault, RECORD_SIZE};
    struct Flat(Vec<u8>);
    impl BufferWriter for Flat {
        fn translate(&mut self, va: u64) -> Result<u64, TranslationFault> {
            Ok(va) // identity: VA == PA for this test
        }
        fn write(&mut self, pa: u64, bytes: &[u8]) {
            let o = pa as usize;
            self.0[o..o + bytes.len()].copy_from_slice(bytes);
        }
    }
    let mut m = SpeModel::new();
    let size = 4096u64;
    m.set_intended_buffer(0, 0, size);
    m.write(ModelReg::PmbptrEl1, 0);
    m.write(ModelReg::PmblimitrEl1, size | 1);
    m.write(ModelReg::PmscrEl1, 0b10_0011); // E0SPE, E1SPE, TS
    for i in 0..3u64 {
        let s = Sample {
            pc: 0xffff_8000_0008_0000 + 4 * i,
            el: 1,
            ns: true,
            timestamp: 100 + i,
            op: OpKind::Other,
            events: 2,
            total_latency: 7,
            issue_latency: 1,
            context: None,
        };
        m.sample(&s);
    }
    let mut mem = Flat(vec![0; size as usize]);
    assert_eq!(m.drain(&mut mem).records_written, 3);
    let mut log = String::from("host: spe model buffer\n");
    write_frame(&mut log, &mem.0[..3 * RECORD_SIZE]).unwrap();
    let path = scratch("model.log");
    std::fs::write(&path, log).unwrap();
    let (out, warn) = run_ok(&Command::Records { file: path, json: true });
    assert!(warn.is_empty());
    let recs: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(recs.len(), 3);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["frame"], 0);
        assert_eq!(r["pc"], format!("{:#x}", 0xffff_8000_0008_0000u64 + 4 * i as u64));
        assert_eq!(r["el"], 1);
        assert_eq!(r["timestamp"], 100 + i as u64);
        assert_eq!(r["op"], "OTHER INSN-OTHER");
    }
}
