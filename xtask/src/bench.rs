//! `cargo xtask bench [--iterations N] [--json FILE] [--debug]`: world-switch
//! costs in instructions, and the SPE decoder's throughput.
//!
//! The image (release build unless `--debug`) boots under
//! `qemu-system-aarch64 -icount shift=0,sleep=off` with `spevisor.scenario=bench`
//! (`host/src/bench.rs`, `guest/src/bench.rs`). With `shift=0` every
//! instruction advances virtual time by 1 ns, so counter ticks convert to
//! instructions as `ticks * 1e9 / CNTFRQ` (QEMU 10: CNTFRQ = 1 GHz, one tick
//! per instruction; QEMU 7.2: 62.5 MHz, 16 instructions per tick). Each figure
//! is `(loop ticks - baseline ticks) / N`, the baseline being the same loop
//! with the trapping instruction replaced by a `nop`.
//!
//! To add a metric, add a [`Metric`] to [`METRICS`]. `spe_switch` is the
//! difference between two boots: `hvc_host` with the host's SPE model enabled
//! (no sampling interrupt) and with the profiler off. `spe_switch_hw` is the
//! same difference on SPE's hardware path, which QEMU cannot run: the
//! `--spe-hw-standin` image sends the hardware path's PMSCR_EL1/PMBLIMITR_EL1
//! accesses to two spare EL2 registers (`hyp/src/spe.rs`, `hw_standin`), and
//! boots twice, with the stand-in buffer enabled and idle (E = 0: a board's
//! host with SPE that does not profile). `spe_switch_hw_vs_none` compares the
//! enabled boot with the normal image on a CPU without SPE instead.

use crate::qemu::{self, Machine};
use crate::setup::{self, Qemu};
use crate::{build_image, cargo, root, BuildOpts};
use std::collections::HashMap;
use std::time::Duration;

/// Iterations of every guest loop unless `--iterations` says otherwise.
pub const DEFAULT_ITERATIONS: u64 = 10_000;
/// The minimum for the published figures.
const MIN_PUBLISHED_ITERATIONS: u64 = 10_000;
/// The bench boot, icount included, takes a few seconds.
const BENCH_TIMEOUT: Duration = Duration::from_secs(120);
/// Nanoseconds per second: with `-icount shift=0`, instructions per second.
const INSTRUCTIONS_PER_SECOND: f64 = 1e9;
/// Size of the SPE records the decoder benchmark generates, in MiB.
const SPE_DECODE_MIB: u32 = 64;

/// Where a metric's figure comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A `bench-metric:` line of the guest VM `vm` with `name=`.
    Guest { vm: &'static str, name: &'static str },
    /// Instructions from reset to the first instruction of the guest VM `vm`.
    Boot { vm: &'static str },
    /// The decoder (`spe/examples/decode_throughput.rs`), MB/s.
    SpeDecode,
    /// A plain memory copy measured in the same run, MB/s.
    MemCopy,
    /// `hvc_host` with the host's SPE (model) enabled minus with it off.
    SpeSwitch,
    /// `hvc_host` of the SPE hardware-path stand-in image, buffer enabled
    /// minus buffer idle.
    SpeSwitchHw,
    /// The same, enabled stand-in minus the normal image (no SPE at all).
    SpeSwitchHwVsNone,
    /// A loop the guest times itself in host scenario `scenario`
    /// (`spevisor.iterations=N`), reporting its total ticks with REPORT
    /// `tag` ("[vm] report tag=T value=TICKS"): per iteration, no baseline;
    /// on QEMU's GIC version `gic`.
    Report { scenario: &'static str, vm: &'static str, tag: u64, gic: u32 },
    /// Reset to the first console line of Debian's Linux guest's init
    /// (`--guest linux`, the host's `console-mark:` line).
    LinuxBoot,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    pub name: &'static str,
    pub what: &'static str,
    pub source: Source,
    /// Target: at most this many instructions.
    pub target: Option<u64>,
    /// The comparison figures for this row.
    pub bar: &'static str,
}

pub const METRICS: &[Metric] = &[
    Metric {
        name: "hvc_host",
        what: "guest hvc answered by the host at EL1 (HOST_PING), full world switch out and back",
        source: Source::Guest { vm: "bench", name: "hvc_host" },
        target: Some(600),
        bar: "KVM 6.12 nVHE 2,432 / VHE 1,894 per hvc round trip",
    },
    Metric {
        name: "hvc_host_fp",
        what: "hvc_host after an FP instruction: lazy FP switch (FP trap, host FP out, guest FP in, and back)",
        source: Source::Guest { vm: "bench", name: "hvc_host_fp" },
        target: None,
        bar: "",
    },
    Metric {
        name: "hvc_host_pmu",
        what: "hvc_host of a vcpu using its PMU (cycle counter on): the host's PMU parked and the guest's loaded at entry, and back at exit",
        source: Source::Guest { vm: "bench", name: "hvc_host_pmu" },
        target: None,
        bar: "",
    },
    Metric {
        name: "hvc_el2",
        what: "guest hvc answered at EL2 (HYP_PING), no full world switch",
        source: Source::Guest { vm: "bench", name: "hvc_el2" },
        target: Some(150),
        bar: "Xen 4.17: 416 (hvc answered at EL2)",
    },
    Metric {
        name: "mmio_host",
        what: "read of the emulated PL011 FR (0x0900_0018), emulated by the host",
        source: Source::Guest { vm: "bench", name: "mmio_host" },
        target: Some(1_200),
        bar: "KVM 6.12 nVHE 6,066 / VHE 6,395 per MMIO exit to userspace",
    },
    Metric {
        name: "sysreg_trap",
        what: "ACTLR_EL1 read: trapped (HCR_EL2.TACR), UNDEF injected by EL2; includes the guest's UNDEF handler (udf_el1)",
        source: Source::Guest { vm: "bench", name: "sysreg_trap" },
        target: None,
        bar: "",
    },
    Metric {
        name: "udf_el1",
        what: "udf at EL1 handled by the guest, no EL2 involvement (sysreg_trap's handler share)",
        source: Source::Guest { vm: "bench", name: "udf_el1" },
        target: None,
        bar: "",
    },
    Metric {
        name: "vm_switch",
        what: "two VMs alternating at every exit (HOST_PING each): per alternation A->B->A",
        source: Source::Guest { vm: "switch-a", name: "vm_switch" },
        target: None,
        bar: "",
    },
    Metric {
        name: "vtimer_irq",
        what: "virtual timer armed already due, its interrupt taken by the guest's handler and EOIed (IRQ exit, injection, guest vector and handler)",
        source: Source::Report { scenario: "vtimer", vm: "vtimer", tag: 13, gic: 3 },
        target: None,
        bar: "",
    },
    Metric {
        name: "vtimer_irq_gicv2",
        what: "vtimer_irq on a GICv2 host: the list registers switched through the memory-mapped GICH frame, the guest's GICV (GICC_IAR/EOIR) instead of ICC_* registers",
        source: Source::Report { scenario: "vtimer", vm: "vtimer", tag: 13, gic: 2 },
        target: None,
        bar: "",
    },
    Metric {
        name: "ptimer_irq",
        what: "EL1 physical timer (emulated by the host) armed already due: two trapped writes (CVAL, CTL) answered by the host, INTID 30 raised in the vGIC, taken by the guest's handler, which reads CTL and masks it (two more trapped accesses), EOIed",
        source: Source::Report { scenario: "ptimer", vm: "ptimer", tag: 22, gic: 3 },
        target: None,
        bar: "",
    },
    Metric {
        name: "sgi_pingpong",
        what: "SGI round trip between two vcpus of a VM (ping and pong: two trapped ICC_SGI1R writes, two WFI wake-ups, two handlers)",
        source: Source::Report { scenario: "smp", vm: "smp", tag: 12, gic: 3 },
        target: None,
        bar: "",
    },
    Metric {
        name: "sgi_pingpong_gicv2",
        what: "sgi_pingpong on a GICv2 host: each SGI a GICD_SGIR write emulated by the host (an MMIO exit, not a trapped system register)",
        source: Source::Report { scenario: "smp", vm: "smp", tag: 12, gic: 2 },
        target: None,
        bar: "",
    },
    Metric {
        name: "linux_boot",
        what: "reset to Debian's Linux guest's init line (spevisor-init: hello), 1 vcpu, host SPE off: boots spevisor, the host, the VM and Linux",
        source: Source::LinuxBoot,
        target: None,
        bar: "",
    },
    Metric {
        name: "boot",
        what: "reset to the bench guest's first instruction (its CNTVCT_EL0 read)",
        source: Source::Boot { vm: "bench" },
        target: None,
        bar: "",
    },
    Metric {
        name: "spe_switch",
        what: "extra per hvc_host round trip, host SPE model enabled vs off: EL2's save/restore_host_buffers and the host's poll",
        source: Source::SpeSwitch,
        target: None,
        bar: "",
    },
    Metric {
        name: "spe_switch_hw",
        what: "EL2's save/restore_host_buffers on SPE's hardware path, buffer enabled vs idle (stand-in EL2 registers)",
        source: Source::SpeSwitchHw,
        target: Some(20),
        bar: "",
    },
    Metric {
        name: "spe_switch_hw_vs_none",
        what: "SPE's hardware path, buffer enabled, vs a CPU without SPE (adds the backend dispatch)",
        source: Source::SpeSwitchHwVsNone,
        target: None,
        bar: "",
    },
    Metric {
        name: "spe_decode",
        what: "SPE record decoder (RecordAssembler), 64 MiB of encoded records, wall clock, release",
        source: Source::SpeDecode,
        target: None,
        bar: "",
    },
    Metric {
        name: "memcpy",
        what: "plain memory copy of the same buffer, same run",
        source: Source::MemCopy,
        target: None,
        bar: "",
    },
];

/// A measured row.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Instructions per iteration over `iterations`.
    Instructions { iterations: u64, per_iteration: f64 },
    /// Throughput in MB/s (10^6 bytes) over `bytes`.
    Throughput { bytes: u64, mb_per_s: f64 },
    /// The run did not produce it (why).
    Missing(String),
}

/// What one bench boot printed.
#[derive(Debug, Default)]
pub struct GuestRun {
    /// (vm, name) -> (n, ticks, baseline, errors).
    pub metrics: HashMap<(String, String), [u64; 4]>,
    /// vm -> (status, cntfrq, entry counter).
    pub vms: HashMap<String, (i64, u64, u64)>,
    pub done: bool,
}

fn words(line: &str) -> HashMap<&str, &str> {
    line.split_whitespace().filter_map(|w| w.split_once('=')).collect()
}

fn num<T: std::str::FromStr>(f: &HashMap<&str, &str>, k: &str) -> Result<T, String> {
    let v = f.get(k).ok_or_else(|| format!("no {k}="))?;
    v.parse().map_err(|_| format!("{k}={v} is not a number"))
}

/// Parses the `bench:` and `bench-metric:` lines of a boot's console.
pub fn parse(output: &str) -> Result<GuestRun, String> {
    let mut run = GuestRun::default();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("bench-metric: ") {
            let f = words(rest);
            let vm = f.get("vm").ok_or("bench-metric without vm=")?.to_string();
            let name = f.get("name").ok_or("bench-metric without name=")?.to_string();
            let v = [num(&f, "n")?, num(&f, "ticks")?, num(&f, "baseline")?, num(&f, "errors")?];
            run.metrics.insert((vm, name), v);
        } else if let Some(rest) = line.strip_prefix("bench: ") {
            if rest.trim() == "done" {
                run.done = true;
                continue;
            }
            let f = words(rest);
            let vm = f.get("vm").ok_or("bench line without vm=")?.to_string();
            if f.get("results") == Some(&"missing") {
                return Err(format!("VM {vm} wrote no results (status {:?})", f.get("status")));
            }
            run.vms.insert(vm, (num(&f, "status")?, num(&f, "cntfrq")?, num(&f, "entry_counter")?));
        }
    }
    if !run.done {
        return Err("the bench scenario did not finish (no `bench: done`)".into());
    }
    Ok(run)
}

/// Instructions per counter tick (`-icount shift=0`: 1 instruction per ns).
fn instructions_per_tick(cntfrq: u64) -> f64 {
    INSTRUCTIONS_PER_SECOND / cntfrq as f64
}

/// The value of a guest-measured metric.
pub fn guest_value(run: &GuestRun, source: Source) -> Value {
    match source {
        Source::Guest { vm, name } => {
            let Some(&[n, ticks, baseline, errors]) = run.metrics.get(&(vm.to_string(), name.to_string())) else {
                return Value::Missing(format!("no {name} from VM {vm}"));
            };
            let Some(&(_, cntfrq, _)) = run.vms.get(vm) else { return Value::Missing(format!("no VM {vm}")) };
            if errors != 0 {
                return Value::Missing(format!("{errors} wrong answers"));
            }
            let per = ticks.saturating_sub(baseline) as f64 * instructions_per_tick(cntfrq) / n.max(1) as f64;
            Value::Instructions { iterations: n, per_iteration: per }
        }
        Source::Boot { vm } => match run.vms.get(vm) {
            Some(&(_, cntfrq, entry)) => {
                Value::Instructions { iterations: 1, per_iteration: entry as f64 * instructions_per_tick(cntfrq) }
            }
            None => Value::Missing(format!("no VM {vm}")),
        },
        Source::SpeDecode
        | Source::MemCopy
        | Source::SpeSwitch
        | Source::SpeSwitchHw
        | Source::SpeSwitchHwVsNone
        | Source::Report { .. }
        | Source::LinuxBoot => Value::Missing("not a bench-scenario metric".into()),
    }
}

/// The host profiler's settings for a bench boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spe {
    /// No profiler: the world switch has no buffer to drain.
    Off,
    /// The SPE model enabled with no sampling interrupt (period beyond the
    /// run): the cost is save/restore_host_buffers alone.
    ModelQuiet,
    /// No profiler, and the `--spe-hw-standin` image's buffer left disabled.
    StandInIdle,
}

impl Spe {
    fn args(self) -> &'static str {
        match self {
            Spe::Off => "spevisor.spe=off",
            Spe::ModelQuiet => "spevisor.spe=model spevisor.spe_period=4294967295",
            Spe::StandInIdle => "spevisor.spe=off spevisor.spe_standin=idle",
        }
    }
}

/// The QEMU machine of a bench boot with `n` iterations.
pub fn machine(n: u64, spe: Spe) -> Machine {
    Machine {
        append: format!("spevisor.scenario=bench spevisor.iterations={n} {}", spe.args()),
        // sleep=off: virtual time never follows the host's clock (else
        // `boot` varies between runs by a few percent).
        extra: vec!["-icount".into(), "shift=0,sleep=off".into()],
        ..Machine::default()
    }
}

/// Boots the bench scenario and parses what it printed.
pub fn boot(q: &Qemu, image: &std::path::Path, n: u64, spe: Spe) -> Result<(GuestRun, String), String> {
    let b = qemu::run_captured(q, image, &machine(n, spe), BENCH_TIMEOUT)?;
    let console = || format!("\n--- console ---\n{}\n---------------", b.output);
    if b.timed_out || b.exit != Some(0) {
        return Err(format!("bench boot failed (exit {:?}, timed out {}){}", b.exit, b.timed_out, console()));
    }
    let run = parse(&b.output).map_err(|e| format!("{e}{}", console()))?;
    Ok((run, b.output))
}

/// Iterations of the scenario-timed loops (each a few thousand instructions
/// or more per iteration).
const REPORT_ITERATIONS: u64 = 1_000;

/// Boots host scenario `scenario` with `n` iterations under icount on GIC
/// version `gic` and returns the figure its guest reported with `tag`
/// (ticks for all `n`), per iteration in instructions.
fn report_value(q: &Qemu, image: &std::path::Path, what: (&str, &str, u64, u32), n: u64) -> Value {
    let (scenario, vm, tag, gic) = what;
    let m = Machine {
        append: format!("spevisor.scenario={scenario} spevisor.iterations={n} spevisor.spe=off"),
        extra: vec!["-icount".into(), "shift=0,sleep=off".into()],
        gic_version: gic,
        ..Machine::default()
    };
    let b = match qemu::run_captured(q, image, &m, BENCH_TIMEOUT) {
        Ok(b) => b,
        Err(e) => return Value::Missing(e),
    };
    let ok = format!("{scenario}: ending=off status=0");
    let Some(end) = b.output.lines().find(|l| l.starts_with(&ok)) else {
        return Value::Missing(format!("the {scenario} guest did not pass (no {ok:?})"));
    };
    let prefix = format!("[{vm}] report tag={tag} value=");
    let ticks = b
        .output
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| u64::from_str_radix(v.trim().trim_start_matches("0x"), 16).ok());
    let cntfrq = words(end).get("cntfrq").and_then(|v| v.parse::<u64>().ok());
    match (ticks, cntfrq) {
        (Some(t), Some(f)) => {
            Value::Instructions { iterations: n, per_iteration: t as f64 * instructions_per_tick(f) / n as f64 }
        }
        _ => Value::Missing(format!("no {prefix:?} line or CNTFRQ")),
    }
}

/// Boots `--guest linux` (1 vcpu) under icount with the host's console
/// mark on Linux's init line: instructions from reset to it.
fn linux_boot(q: &Qemu, image: &std::path::Path) -> Value {
    use crate::guest::{make_bundle, GuestOpts, Kernel};
    let bundle = match make_bundle(&GuestOpts::new(Kernel::DebianLinux), "bench-linux") {
        Ok(b) => b,
        Err(e) => return Value::Missing(format!("no Linux guest: {e}")),
    };
    let m = Machine {
        append: format!("{} spevisor.spe=off spevisor.mark=spevisor-init:", crate::guest::HOST_APPEND),
        extra: vec!["-icount".into(), "shift=0,sleep=off".into(), "-initrd".into(), bundle.display().to_string()],
        ..Machine::default()
    };
    let b = match qemu::run_captured(q, image, &m, LINUX_BENCH_TIMEOUT) {
        Ok(b) => b,
        Err(e) => return Value::Missing(e),
    };
    let Some(line) = b.output.lines().find(|l| l.starts_with("console-mark: ")) else {
        return Value::Missing("Linux never printed its init line".into());
    };
    let f = words(line);
    match (num::<u64>(&f, "counter"), num::<u64>(&f, "cntfrq")) {
        (Ok(c), Ok(freq)) => {
            Value::Instructions { iterations: 1, per_iteration: c as f64 * instructions_per_tick(freq) }
        }
        _ => Value::Missing(format!("bad console-mark line {line:?}")),
    }
}

/// Linux under icount takes minutes of wall clock.
const LINUX_BENCH_TIMEOUT: Duration = Duration::from_secs(900);

/// Runs the decoder benchmark in release mode: (bytes, decode MB/s, copy MB/s).
fn spe_throughput() -> Result<(u64, f64, f64), String> {
    let out = cargo()
        .current_dir(root())
        .args(["run", "--quiet", "--release", "-p", "spevisor-spe", "--example", "decode_throughput", "--"])
        .arg(SPE_DECODE_MIB.to_string())
        .output()
        .map_err(|e| format!("cannot run the decoder benchmark: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("spe-throughput: "))
        .ok_or_else(|| format!("decoder benchmark failed: {}", String::from_utf8_lossy(&out.stderr)))?;
    let f = words(line);
    Ok((num(&f, "bytes")?, num(&f, "decode_mb_s")?, num(&f, "memcpy_mb_s")?))
}

/// "10.0.2" out of "QEMU emulator version 10.0.2 (Debian ...)".
fn qemu_version(q: &Qemu) -> String {
    q.version_text.split("version ").nth(1).and_then(|v| v.split_whitespace().next()).unwrap_or("?").to_string()
}

fn fmt_instructions(v: f64) -> String {
    let r = v.round() as u64;
    let s = r.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if (v - v.round()).abs() >= 0.05 {
        out.push_str(&format!(" ({v:.1})"));
    }
    out
}

fn cell(v: &Value) -> (String, String) {
    match v {
        Value::Instructions { iterations, per_iteration } => (iterations.to_string(), fmt_instructions(*per_iteration)),
        Value::Throughput { bytes, mb_per_s } => (format!("{bytes} B"), format!("{mb_per_s:.0} MB/s")),
        Value::Missing(why) => ("-".into(), format!("MISSING: {why}")),
    }
}

fn verdict(m: &Metric, v: &Value) -> String {
    match (m.target, v) {
        (Some(t), Value::Instructions { per_iteration, .. }) => {
            let ok = if *per_iteration <= t as f64 { "met" } else { "MISSED" };
            format!("target <= {}: {ok}", fmt_instructions(t as f64))
        }
        (Some(t), _) => format!("target <= {}", fmt_instructions(t as f64)),
        _ => String::new(),
    }
}

/// The table as printed.
pub fn table(rows: &[(Metric, Value)], qemu: &str, cntfrq: u64) -> String {
    let mut s = format!("spevisor bench (QEMU {qemu}, -icount shift=0,sleep=off, CNTFRQ {cntfrq} Hz");
    if cntfrq as f64 != INSTRUCTIONS_PER_SECOND {
        s.push_str(&format!(": {:.0} instructions per tick", instructions_per_tick(cntfrq)));
    }
    s.push_str(")\n\n");
    s.push_str(&format!("{:<21} {:>14} {:>16}  {:<26} {}\n", "metric", "iterations", "instructions", "", "bar"));
    for (m, v) in rows {
        let (iters, value) = cell(v);
        s.push_str(&format!("{:<21} {:>14} {:>16}  {:<26} {}\n", m.name, iters, value, verdict(m, v), m.bar));
    }
    s.push('\n');
    for (m, _) in rows {
        s.push_str(&format!("  {:<21} {}\n", m.name, m.what));
    }
    s
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One JSON object per metric (a JSON array).
pub fn json(rows: &[(Metric, Value)], qemu: &str) -> String {
    let objs: Vec<String> = rows
        .iter()
        .map(|(m, v)| {
            let (iterations, per, extra) = match v {
                Value::Instructions { iterations, per_iteration } => {
                    (iterations.to_string(), format!("{per_iteration:.2}"), String::new())
                }
                Value::Throughput { bytes, mb_per_s } => {
                    ("null".into(), "null".into(), format!(", \"bytes\": {bytes}, \"mb_per_s\": {mb_per_s:.0}"))
                }
                Value::Missing(why) => ("null".into(), "null".into(), format!(", \"status\": {}", json_str(why))),
            };
            let target = m.target.map_or("null".into(), |t| t.to_string());
            format!(
                "  {{\"name\": {}, \"iterations\": {iterations}, \"instructions_per_iteration\": {per}, \
                 \"qemu_version\": {}, \"target\": {target}{extra}}}",
                json_str(m.name),
                json_str(qemu)
            )
        })
        .collect();
    format!("[\n{}\n]\n", objs.join(",\n"))
}

/// The command.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut n = DEFAULT_ITERATIONS;
    let mut json_path = None;
    let mut release = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json_path = Some(it.next().ok_or("--json needs a FILE")?.clone()),
            "--iterations" => {
                let v = it.next().ok_or("--iterations needs a number")?;
                n = v.parse().map_err(|_| format!("--iterations {v}: not a number"))?;
            }
            "--debug" => release = false,
            other => return Err(format!("unknown bench option {other}")),
        }
    }
    if n < MIN_PUBLISHED_ITERATIONS {
        eprintln!("xtask: note: {n} iterations (the published figures use at least {MIN_PUBLISHED_ITERATIONS})");
    }
    let q = setup::qemu()?;
    let qemu = qemu_version(&q);
    let image = build_image(&BuildOpts { release, ..BuildOpts::default() })?;
    eprintln!("xtask: bench: {} (N = {n}) under {}", image.display(), q.version_text);
    let (run, _) = boot(&q, &image, n, Spe::Off)?;
    eprintln!("xtask: bench: again with the host's SPE model enabled (for spe_switch)");
    let (spe_run, _) = boot(&q, &image, n, Spe::ModelQuiet)?;
    let standin = build_image(&BuildOpts { release, spe_hw_standin: true, ..BuildOpts::default() })?;
    eprintln!("xtask: bench: {} (SPE hardware path on stand-in registers, for spe_switch_hw)", standin.display());
    let (hw_run, hw_console) = boot(&q, &standin, n, Spe::Off)?;
    let (hw_idle_run, idle_console) = boot(&q, &standin, n, Spe::StandInIdle)?;
    let spe_switch = hvc_host_difference(&spe_run, &run);
    // Only if the stand-ins were loaded as asked (no FEAT_VHE, say, would
    // leave both boots without SPE and the difference meaningless).
    let (spe_switch_hw, spe_switch_hw_vs_none) =
        match (standin_loaded(&hw_console, "enabled"), standin_loaded(&idle_console, "disabled")) {
            (Ok(()), Ok(())) => (hvc_host_difference(&hw_run, &hw_idle_run), hvc_host_difference(&hw_run, &run)),
            (Err(e), _) | (_, Err(e)) => (Value::Missing(e.clone()), Value::Missing(e)),
        };
    let cntfrq = run.vms.get("bench").map_or(0, |v| v.1);
    if cntfrq == 0 {
        return Err("the bench VM reported no CNTFRQ".into());
    }
    eprintln!("xtask: bench: SPE decoder throughput (release, wall clock)");
    let spe = spe_throughput();
    let rows: Vec<(Metric, Value)> = METRICS
        .iter()
        .map(|m| {
            let v = match (m.source, &spe) {
                (Source::SpeDecode, Ok((bytes, d, _))) => Value::Throughput { bytes: *bytes, mb_per_s: *d },
                (Source::MemCopy, Ok((bytes, _, c))) => Value::Throughput { bytes: *bytes, mb_per_s: *c },
                (Source::SpeDecode | Source::MemCopy, Err(e)) => Value::Missing(e.clone()),
                (Source::SpeSwitch, _) => spe_switch.clone(),
                (Source::SpeSwitchHw, _) => spe_switch_hw.clone(),
                (Source::SpeSwitchHwVsNone, _) => spe_switch_hw_vs_none.clone(),
                (Source::LinuxBoot, _) => {
                    eprintln!("xtask: bench: linux_boot (Debian's kernel and busybox, fetched once)");
                    linux_boot(&q, &image)
                }
                (Source::Report { scenario, vm, tag, gic }, _) => {
                    eprintln!("xtask: bench: {} (scenario {scenario}, GICv{gic}, N = {REPORT_ITERATIONS})", m.name);
                    report_value(&q, &image, (scenario, vm, tag, gic), REPORT_ITERATIONS)
                }
                (s, _) => guest_value(&run, s),
            };
            (*m, v)
        })
        .collect();
    println!("{}", table(&rows, &qemu, cntfrq));
    if let (Some(Value::Instructions { per_iteration: trap, .. }), Some(Value::Instructions { per_iteration: h, .. })) = (
        rows.iter().find(|(m, _)| m.name == "sysreg_trap").map(|r| &r.1),
        rows.iter().find(|(m, _)| m.name == "udf_el1").map(|r| &r.1),
    ) {
        println!("sysreg_trap without the guest's own handler (sysreg_trap - udf_el1): {}", fmt_instructions(trap - h));
    }
    if let Some(path) = json_path {
        std::fs::write(&path, json(&rows, &qemu)).map_err(|e| format!("write {path}: {e}"))?;
        eprintln!("xtask: bench: wrote {path}");
    }
    let missing: Vec<&str> = rows.iter().filter(|(_, v)| matches!(v, Value::Missing(_))).map(|(m, _)| m.name).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("no figure for {}", missing.join(", ")))
    }
}

/// Whether a `--spe-hw-standin` boot loaded its stand-in buffer as `state`
/// ("enabled" or "disabled"), from EL2's boot line.
fn standin_loaded(console: &str, state: &str) -> Result<(), String> {
    let want = format!("spe-hw-standin: SPE hardware path on stand-in EL2 registers, buffer {state}");
    if console.contains(&want) {
        Ok(())
    } else {
        Err(format!("the --spe-hw-standin boot did not load its registers ({want:?} not printed)"))
    }
}

/// `hvc_host` of the boot `on` minus `hvc_host` of the boot `off`.
fn hvc_host_difference(on: &GuestRun, off: &GuestRun) -> Value {
    let hvc_host = Source::Guest { vm: "bench", name: "hvc_host" };
    match (guest_value(on, hvc_host), guest_value(off, hvc_host)) {
        (Value::Instructions { iterations, per_iteration: a }, Value::Instructions { per_iteration: b, .. }) => {
            Value::Instructions { iterations, per_iteration: a - b }
        }
        (a, b) => Value::Missing(format!("hvc_host with SPE: {a:?}, without: {b:?}")),
    }
}

/// The QEMU test's check: every guest metric present with `n` iterations and
/// no wrong answers, every VM ended with status 0. No timing is asserted.
pub fn check_run(run: &GuestRun, n: u64) -> Result<(), String> {
    for (vm, (status, _, _)) in &run.vms {
        if *status != 0 {
            return Err(format!("VM {vm} ended with status {status}"));
        }
    }
    let mut sources: Vec<Source> = METRICS.iter().map(|m| m.source).collect();
    sources.push(Source::Guest { vm: "switch-b", name: "vm_switch" });
    for s in sources {
        if let Source::Guest { vm, name } = s {
            let Some(&[got_n, _, _, errors]) = run.metrics.get(&(vm.to_string(), name.to_string())) else {
                return Err(format!("no {name} from VM {vm}"));
            };
            if got_n != n || errors != 0 {
                return Err(format!("{vm}/{name}: n={got_n} (expected {n}), errors={errors}"));
            }
        }
        if let v @ Value::Missing(_) = guest_value(run, s) {
            if !matches!(
                s,
                Source::SpeDecode
                    | Source::MemCopy
                    | Source::SpeSwitch
                    | Source::SpeSwitchHw
                    | Source::SpeSwitchHwVsNone
                    | Source::Report { .. }
                    | Source::LinuxBoot
            ) {
                return Err(format!("{v:?}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    const OUT: &str = "bench: vm=bench status=0 ending=off cntfrq=1000000000 entry_counter=5000\n\
        bench-metric: vm=bench name=hvc_host n=10 ticks=10090 baseline=90 errors=0\n\
        bench-metric: vm=bench name=hvc_el2 n=10 ticks=1590 baseline=90 errors=0\n\
        bench-metric: vm=bench name=mmio_host n=10 ticks=2060 baseline=60 errors=0\n\
        bench-metric: vm=bench name=sysreg_trap n=10 ticks=3030 baseline=30 errors=0\n\
        bench-metric: vm=bench name=udf_el1 n=10 ticks=530 baseline=30 errors=0\n\
        bench-metric: vm=bench name=hvc_host_fp n=10 ticks=12090 baseline=90 errors=0\n\
        bench-metric: vm=bench name=hvc_host_pmu n=10 ticks=14090 baseline=90 errors=0\n\
        bench: vm=switch-a status=0 ending=off cntfrq=1000000000 entry_counter=9\n\
        bench-metric: vm=switch-a name=vm_switch n=10 ticks=20090 baseline=90 errors=0\n\
        bench: vm=switch-b status=0 ending=off cntfrq=1000000000 entry_counter=9\n\
        bench-metric: vm=switch-b name=vm_switch n=10 ticks=20090 baseline=90 errors=0\n\
        bench: done\n";

    #[test]
    fn figures_subtract_the_baseline_and_convert_ticks() {
        let run = parse(OUT).unwrap();
        let v = guest_value(&run, Source::Guest { vm: "bench", name: "hvc_host" });
        assert_eq!(v, Value::Instructions { iterations: 10, per_iteration: 1000.0 });
        let v = guest_value(&run, Source::Boot { vm: "bench" });
        assert_eq!(v, Value::Instructions { iterations: 1, per_iteration: 5000.0 });
        // QEMU 7.2: 62.5 MHz, 16 instructions a tick.
        let slow = parse(&OUT.replace("cntfrq=1000000000", "cntfrq=62500000")).unwrap();
        let v = guest_value(&slow, Source::Guest { vm: "bench", name: "hvc_el2" });
        assert_eq!(v, Value::Instructions { iterations: 10, per_iteration: 2400.0 });
    }

    #[test]
    fn the_check_needs_every_metric_and_right_answers() {
        assert_eq!(check_run(&parse(OUT).unwrap(), 10), Ok(()));
        assert!(check_run(&parse(OUT).unwrap(), 11).is_err(), "wrong n");
        let bad = OUT.replace(
            "name=mmio_host n=10 ticks=2060 baseline=60 errors=0",
            "name=mmio_host n=10 ticks=1 baseline=1 errors=2",
        );
        assert!(check_run(&parse(&bad).unwrap(), 10).is_err(), "wrong answers");
        let gone = OUT.replace("name=udf_el1", "name=other");
        assert!(check_run(&parse(&gone).unwrap(), 10).is_err(), "missing metric");
        let status = OUT.replace("vm=switch-b status=0", "vm=switch-b status=3");
        assert!(check_run(&parse(&status).unwrap(), 10).is_err(), "guest status");
        assert!(parse(&OUT.replace("bench: done\n", "")).is_err(), "unfinished");
    }

    #[test]
    fn rows_print_and_json_has_one_object_per_metric() {
        let run = parse(OUT).unwrap();
        let rows: Vec<(Metric, Value)> = METRICS.iter().map(|m| (*m, guest_value(&run, m.source))).collect();
        let t = table(&rows, "10.0.2", 1_000_000_000);
        assert!(t.contains("target <= 600: MISSED"));
        let j = json(&rows, "10.0.2");
        assert_eq!(j.matches("\"name\"").count(), METRICS.len());
        assert!(j.contains("{\"name\": \"hvc_host\", \"iterations\": 10, \"instructions_per_iteration\": 1000.00"));
        assert_eq!(fmt_instructions(1234.0), "1,234");
        assert_eq!(fmt_instructions(1101.72), "1,102 (1101.7)");
    }
}
