//! The checks behind spevisor's fuzz targets, one module per target.
//!
//! Each `run(data)` takes any byte string, feeds it to the code under test
//! and asserts properties of the answer (a panic is a finding). The
//! libFuzzer entry points in `fuzz_targets/` only call these; the unit test
//! at the bottom replays every committed seed (`fuzz/corpus/TARGET/`) and
//! every crasher kept as a regression (`fuzz/regressions/TARGET/`) through
//! them in the ordinary `cargo test`, without instrumentation. How to run
//! a target, and what each one found: docs/fuzzing.md.

pub mod acpi_tables;
pub mod dtb_parse;
pub mod dtb_roundtrip;
pub mod esr;
pub mod hcall;
pub mod linux_image;
pub mod mmio;
pub mod pl011;
#[cfg(test)]
mod seeds;
pub mod spe_decode;
pub mod vgic;

/// A target's check: takes any input, panics on a finding.
pub type Check = fn(&[u8]);

/// Every target: its name (the `[[bin]]`, the corpus directory) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("dtb_parse", dtb_parse::run),
    ("dtb_roundtrip", dtb_roundtrip::run),
    ("spe_decode", spe_decode::run),
    ("esr", esr::run),
    ("mmio", mmio::run),
    ("hcall", hcall::run),
    ("vgic", vgic::run),
    ("pl011", pl011::run),
    ("linux_image", linux_image::run),
    ("acpi_tables", acpi_tables::run),
];

/// Reads fixed-size values from the front of a fuzz input; past its end
/// every value is 0, so any input is a complete program of operations.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next `n` bytes (fewer at the end).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }

    /// What has not been read.
    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }

    pub fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }

    pub fn u16(&mut self) -> u16 {
        self.le(2) as u16
    }

    pub fn u32(&mut self) -> u32 {
        self.le(4) as u32
    }

    pub fn u64(&mut self) -> u64 {
        self.le(8)
    }

    /// `n` (<= 8) bytes, little-endian.
    fn le(&mut self, n: usize) -> u64 {
        self.bytes(n).iter().rev().fold(0, |acc, &b| acc << 8 | u64::from(b))
    }
}

#[cfg(test)]
mod tests {
    use super::TARGETS;
    use std::path::{Path, PathBuf};

    fn fuzz_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
    }

    /// The files of `fuzz/<kind>/<target>/`, sorted (none if it does not exist).
    fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
        let dir = fuzz_dir().join(kind).join(target);
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(d) => d.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
            Err(_) => vec![],
        };
        files.sort();
        files
    }

    /// Every seed and every kept crasher passes its target's checks (a
    /// crasher fails here until its bug is fixed).
    #[test]
    fn fuzz_corpus_and_regressions_replay_clean() {
        let mut seeds = 0;
        for &(name, run) in TARGETS {
            let corpus = inputs("corpus", name);
            assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ has no seed");
            for f in corpus.iter().chain(&inputs("regressions", name)) {
                let data = std::fs::read(f).unwrap();
                let r = std::panic::catch_unwind(|| run(&data));
                assert!(r.is_ok(), "{name}: {} fails its checks", f.display());
                seeds += 1;
            }
        }
        assert!(seeds >= TARGETS.len());
    }

    /// Every corpus and regression directory belongs to a target (a
    /// misspelt directory would silently replay nothing).
    #[test]
    fn fuzz_directories_name_targets() {
        for kind in ["corpus", "regressions"] {
            let Ok(dir) = std::fs::read_dir(fuzz_dir().join(kind)) else { continue };
            for e in dir {
                let name = e.unwrap().file_name().into_string().unwrap();
                assert!(TARGETS.iter().any(|t| t.0 == name), "fuzz/{kind}/{name} is no target");
            }
        }
    }

    #[test]
    fn input_reads_little_endian_and_zeros_past_the_end() {
        let mut i = super::Input::new(&[1, 2, 3]);
        assert_eq!(i.u16(), 0x0201);
        assert_eq!(i.u32(), 3);
        assert_eq!(i.u64(), 0);
        assert!(i.is_empty());
    }
}
