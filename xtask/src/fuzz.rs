//! `cargo xtask fuzz`: the coverage-guided fuzz targets of `fuzz/`
//! (libFuzzer through `libfuzzer-sys`, on stable Rust; docs/fuzzing.md).
//!
//! The targets are built as cargo-fuzz would build them, without cargo-fuzz
//! and without nightly: `cargo build --features libfuzzer` of the
//! `spevisor-fuzz` crate for the host triple given explicitly (so the
//! flags below reach the code under test and not build scripts), with
//! LLVM's SanitizerCoverage pass (`-Cpasses=sancov-module`, a stable
//! codegen option) feeding libFuzzer's edge counters, value-profile
//! comparisons and PC table. No sanitizer runtime: Rust's own checks
//! (bounds, overflow in the `fuzz` profile, `assert!`) are the oracle.
//!
//! `cargo xtask test` runs each target for a few seconds from its
//! committed seeds (`fuzz/corpus/TARGET/`) with a fixed libFuzzer seed;
//! `cargo xtask fuzz TARGET --seconds N` runs one for longer and keeps
//! what it finds: new inputs in `target/fuzz/corpus/TARGET/`, a crasher
//! copied to `fuzz/regressions/TARGET/`, which the ordinary `cargo test`
//! then replays (through `spevisor_fuzz::TARGETS`) until the bug is fixed.

use crate::{cargo, root, run_cmd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The targets: `[[bin]]`s of fuzz/Cargo.toml, in `spevisor_fuzz::TARGETS` order.
pub const TARGETS: [&str; 10] =
    ["dtb_parse", "dtb_roundtrip", "spe_decode", "esr", "mmio", "hcall", "vgic", "pl011", "linux_image", "acpi_tables"];

/// How long `cargo xtask test` runs each target.
pub const SMOKE_SECONDS: u32 = 3;
/// libFuzzer's random seed in `cargo xtask test` (fixed: the same
/// mutations every run, from the same committed corpus).
const SMOKE_SEED: u32 = 1;
/// The longest input libFuzzer makes (the largest seeds are 8 KiB DTBs).
const MAX_LEN: u32 = 16384;
/// An input that runs longer than this (seconds) is a hang, i.e. a finding.
const TIMEOUT_SECONDS: u32 = 10;
/// Memory cap of one target process (MiB).
const RSS_LIMIT_MB: u32 = 2048;

/// The instrumentation cargo-fuzz passes (without `-Zsanitizer`, which
/// needs nightly): coverage of edges (level 4: every edge, critical ones
/// split), 8-bit counters in place, the PC table libFuzzer reports new
/// coverage by, and comparison tracing (libFuzzer learns the constants a
/// branch compares against).
pub const RUSTFLAGS: &str = "-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing";

const USAGE: &str = "usage: cargo xtask fuzz TARGET [--seconds N] [--seed S] [-- LIBFUZZER_ARGS]\n\
\x20      cargo xtask fuzz all [--seconds N]     every target in turn, N seconds each\n\
\x20      cargo xtask fuzz --list                the targets\n\
\n\
Builds the libFuzzer targets of fuzz/ (stable Rust, SanitizerCoverage; a C++\n\
compiler for libFuzzer itself, g++ installed with apt-get when missing and run\n\
as root) and fuzzes TARGET from its seeds (fuzz/corpus/TARGET/) plus what\n\
earlier runs found (target/fuzz/corpus/TARGET/). A crasher is copied to\n\
fuzz/regressions/TARGET/, which `cargo test` replays. See docs/fuzzing.md.\n\
\n\
\x20 --seconds N          how long to fuzz (default 60)\n\
\x20 --seed S             libFuzzer's random seed (default: from the clock)\n\
\x20 -- ARGS              more libFuzzer options, e.g. -- -only_ascii=1";

pub fn usage() -> &'static str {
    USAGE
}

/// What `cargo xtask fuzz` was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuzzArgs {
    /// Empty with `--list`.
    pub targets: Vec<&'static str>,
    pub seconds: u32,
    pub seed: Option<u32>,
    pub extra: Vec<String>,
    pub list: bool,
}

fn target(name: &str) -> Result<&'static str, String> {
    TARGETS
        .iter()
        .copied()
        .find(|t| *t == name)
        .ok_or_else(|| format!("unknown fuzz target {name}: one of {} (or all)\n{USAGE}", TARGETS.join(", ")))
}

pub fn parse_args(args: &[String]) -> Result<FuzzArgs, String> {
    let mut a = FuzzArgs { targets: vec![], seconds: 60, seed: None, extra: vec![], list: false };
    let mut it = args.iter();
    let number = |v: Option<&String>, what: &str| -> Result<u32, String> {
        v.and_then(|s| s.parse().ok()).ok_or_else(|| format!("{what} takes a number\n{USAGE}"))
    };
    while let Some(x) = it.next() {
        match x.as_str() {
            "--list" => a.list = true,
            "--seconds" => a.seconds = number(it.next(), "--seconds")?,
            "--seed" => a.seed = Some(number(it.next(), "--seed")?),
            "--" => {
                a.extra.extend(it.by_ref().cloned());
            }
            s if s.starts_with('-') => return Err(format!("unknown fuzz option {s}\n{USAGE}")),
            "all" => a.targets.extend(TARGETS),
            name => a.targets.push(target(name)?),
        }
    }
    if !a.list && a.targets.is_empty() {
        return Err(format!("which target?\n{USAGE}"));
    }
    if a.seconds == 0 {
        return Err(format!("--seconds must be at least 1\n{USAGE}"));
    }
    Ok(a)
}

/// The host's target triple (the fuzz build names it, so RUSTFLAGS skip
/// build scripts and proc macros).
fn host_triple() -> Result<String, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| "rustc -vV printed no host triple".into())
}

fn fuzz_dir() -> PathBuf {
    root().join("target").join("fuzz")
}

/// Builds every target; returns the directory holding the binaries.
pub fn build() -> Result<PathBuf, String> {
    crate::setup::cxx()?;
    let triple = host_triple()?;
    let started = Instant::now();
    eprintln!("xtask: building the fuzz targets (libFuzzer, SanitizerCoverage, profile fuzz)");
    run_cmd(
        cargo()
            .current_dir(root())
            .env("RUSTFLAGS", RUSTFLAGS)
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .args(["build", "--quiet", "-p", "spevisor-fuzz", "--features", "libfuzzer", "--bins"])
            .args(["--profile", "fuzz", "--target", &triple])
            .arg("--target-dir")
            .arg(fuzz_dir()),
    )?;
    eprintln!("xtask: fuzz targets built in {:.1} s", started.elapsed().as_secs_f64());
    Ok(fuzz_dir().join(triple).join("fuzz"))
}

/// What one run did, from libFuzzer's final statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub execs: u64,
    pub peak_rss_mb: u64,
    /// New coverage units in the final corpus ("cov:" of the last status line).
    pub coverage: u64,
    pub corpus: u64,
}

/// Reads `stat::number_of_executed_units` and friends, and the last
/// `cov: N ft: N corp: N/..` status line, from libFuzzer's stderr.
pub fn parse_stats(log: &str) -> Stats {
    let mut s = Stats::default();
    for line in log.lines() {
        let num = |key: &str| line.split(key).nth(1).and_then(|v| v.split_whitespace().next()?.parse().ok());
        if let Some(n) = num("stat::number_of_executed_units:") {
            s.execs = n;
        }
        if let Some(n) = num("stat::peak_rss_mb:") {
            s.peak_rss_mb = n;
        }
        if let Some(n) = num(" cov: ") {
            s.coverage = n;
        }
        if let Some(n) = line.split(" corp: ").nth(1).and_then(|v| v.split('/').next()?.parse().ok()) {
            s.corpus = n;
        }
    }
    s
}

/// The crasher libFuzzer wrote, from its `Test unit written to PATH` line.
pub fn artifact(log: &str) -> Option<PathBuf> {
    log.lines().find_map(|l| l.split("Test unit written to ").nth(1)).map(|p| PathBuf::from(p.trim()))
}

/// The outcome of one run.
pub struct Outcome {
    pub stats: Stats,
    pub seconds: f64,
    /// `Some(path)`: it crashed (or hung, or ran out of memory) on this input.
    pub crash: Option<PathBuf>,
    pub log: String,
}

/// Runs `bin` for `seconds` from the committed seeds, growing `work`.
fn run_target(
    bins: &Path,
    name: &str,
    seconds: u32,
    seed: Option<u32>,
    work: &Path,
    extra: &[String],
) -> Result<Outcome, String> {
    let seeds = root().join("fuzz").join("corpus").join(name);
    let artifacts = fuzz_dir().join("artifacts").join(name);
    for d in [work, &artifacts] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let mut cmd = Command::new(bins.join(name));
    cmd.arg(format!("-max_total_time={seconds}"))
        .arg(format!("-max_len={MAX_LEN}"))
        .arg(format!("-timeout={TIMEOUT_SECONDS}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()));
    if let Some(s) = seed {
        cmd.arg(format!("-seed={s}"));
    }
    cmd.args(extra).arg(work).arg(&seeds);
    let started = Instant::now();
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let crash = if out.status.success() {
        None
    } else {
        Some(artifact(&log).ok_or_else(|| format!("{name} failed ({}) without a crasher:\n{log}", out.status))?)
    };
    Ok(Outcome { stats: parse_stats(&log), seconds: started.elapsed().as_secs_f64(), crash, log })
}

/// Runs target `name` for `seconds` in a scratch corpus grown from the
/// committed seeds, with libFuzzer's seed `seed` (`cargo xtask hostile`).
pub fn run_scratch(bins: &Path, name: &str, seconds: u32, seed: u32) -> Result<Outcome, String> {
    let work = fuzz_dir().join("hostile").join(name);
    let _ = std::fs::remove_dir_all(&work);
    run_target(bins, name, seconds, Some(seed), &work, &[])
}

fn last_lines(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `cargo xtask fuzz`.
pub fn cli(args: &[String]) -> Result<(), String> {
    let a = parse_args(args)?;
    if a.list {
        for t in TARGETS {
            println!("{t}");
        }
        return Ok(());
    }
    let bins = build()?;
    let mut crashed = vec![];
    for name in &a.targets {
        let work = fuzz_dir().join("corpus").join(name);
        eprintln!("xtask: fuzzing {name} for {} s (corpus {})", a.seconds, work.display());
        let o = run_target(&bins, name, a.seconds, a.seed, &work, &a.extra)?;
        let s = &o.stats;
        println!(
            "fuzz {name}: {} execs in {:.0} s ({:.0}/s), coverage {}, corpus {}, peak RSS {} MiB: {}",
            s.execs,
            o.seconds,
            s.execs as f64 / o.seconds.max(1e-3),
            s.coverage,
            s.corpus,
            s.peak_rss_mb,
            if o.crash.is_some() { "CRASH" } else { "no crash" }
        );
        if let Some(path) = o.crash {
            let keep = root().join("fuzz").join("regressions").join(name);
            std::fs::create_dir_all(&keep).map_err(|e| format!("{}: {e}", keep.display()))?;
            let file = path.file_name().ok_or("crasher without a file name")?;
            std::fs::copy(&path, keep.join(file)).map_err(|e| format!("{}: {e}", path.display()))?;
            println!("{}\nkept as fuzz/regressions/{name}/{}", last_lines(&o.log, 40), file.to_string_lossy());
            crashed.push(*name);
        }
    }
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!("crashes in {} (replay: cargo test -p spevisor-fuzz)", crashed.join(", ")))
    }
}

/// The bounded run inside `cargo xtask test`: each target whose test name
/// (`fuzz_TARGET`) is selected, [`SMOKE_SECONDS`] from the committed
/// seeds with a fixed seed, in a scratch corpus. Returns (passed, failed).
pub fn smoke(filters: &[String]) -> Result<(usize, usize), String> {
    let names: Vec<&str> =
        TARGETS.iter().copied().filter(|t| crate::cli::selected(&format!("fuzz_{t}"), filters)).collect();
    if names.is_empty() {
        return Ok((0, 0));
    }
    let bins = build()?;
    let (mut passed, mut failed) = (0, 0);
    for name in names {
        let work = fuzz_dir().join("smoke").join(name);
        let _ = std::fs::remove_dir_all(&work);
        let o = run_target(&bins, name, SMOKE_SECONDS, Some(SMOKE_SEED), &work, &[])?;
        match o.crash {
            None if o.stats.execs > 0 => {
                passed += 1;
                println!(
                    "fuzz test fuzz_{name} ... ok ({} execs in {:.1} s, coverage {})",
                    o.stats.execs, o.seconds, o.stats.coverage
                );
            }
            None => {
                failed += 1;
                println!("fuzz test fuzz_{name} ... FAILED (no input ran)\n{}", last_lines(&o.log, 20));
            }
            Some(path) => {
                failed += 1;
                println!(
                    "fuzz test fuzz_{name} ... FAILED: crash on {}\n{}\n(keep it: cp {} fuzz/regressions/{name}/)",
                    path.display(),
                    last_lines(&o.log, 40),
                    path.display()
                );
            }
        }
    }
    Ok((passed, failed))
}

/// [`smoke`] with its summary line; an error if a target failed.
pub fn smoke_tests(filters: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let (passed, failed) = smoke(filters)?;
    if passed + failed == 0 {
        return Ok(());
    }
    println!("fuzz: {passed} passed, {failed} failed ({:.0} s with the build)", started.elapsed().as_secs_f64());
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} fuzz target(s) failed"))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn s(a: &[&str]) -> Vec<String> {
        a.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn fuzz_args_name_targets_and_refuse_the_rest() {
        let a = parse_args(&s(&["vgic", "--seconds", "120", "--", "-only_ascii=1"])).unwrap();
        assert_eq!((a.targets, a.seconds, a.extra), (vec!["vgic"], 120, s(&["-only_ascii=1"])));
        assert_eq!(parse_args(&s(&["all"])).unwrap().targets, TARGETS.to_vec());
        assert!(parse_args(&s(&["--list"])).unwrap().list);
        assert!(parse_args(&s(&["vigc"])).unwrap_err().contains("unknown fuzz target vigc"));
        assert!(parse_args(&s(&[])).is_err());
        assert!(parse_args(&s(&["esr", "--seconds", "x"])).is_err());
        assert!(parse_args(&s(&["esr", "--seconds", "0"])).is_err());
        assert!(parse_args(&s(&["esr", "--fast"])).is_err());
    }

    /// The list here, fuzz/Cargo.toml's `[[bin]]`s and fuzz_targets/ agree
    /// (a target missing from one would silently never run).
    #[test]
    fn fuzz_targets_match_the_fuzz_crate() {
        let dir = root().join("fuzz");
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let bins: Vec<&str> = manifest
            .lines()
            .filter_map(|l| l.strip_prefix("name = \""))
            .filter_map(|l| l.strip_suffix('"'))
            .filter(|n| *n != "spevisor-fuzz")
            .collect();
        assert_eq!(bins, TARGETS.to_vec());
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        for t in TARGETS {
            assert!(dir.join("fuzz_targets").join(format!("{t}.rs")).exists(), "no fuzz_targets/{t}.rs");
            assert!(lib.contains(&format!("(\"{t}\", {t}::run)")), "{t} missing from spevisor_fuzz::TARGETS");
        }
    }

    #[test]
    fn libfuzzer_statistics_are_read() {
        let log = "#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                   #4096\tpulse  cov: 57 ft: 80 corp: 9/120b lim: 43 exec/s: 2048 rss: 31Mb\n\
                   Done 20000 runs in 3 second(s)\n\
                   stat::number_of_executed_units: 20000\n\
                   stat::average_exec_per_sec:     6666\n\
                   stat::peak_rss_mb:              33\n";
        assert_eq!(parse_stats(log), Stats { execs: 20000, peak_rss_mb: 33, coverage: 57, corpus: 9 });
        assert_eq!(artifact(log), None);
        let crash = "==1== ERROR: libFuzzer: deadly signal\nartifact_prefix='a/'; Test unit written to a/crash-0f\n";
        assert_eq!(artifact(crash), Some(PathBuf::from("a/crash-0f")));
    }
}
