//! `cargo xtask`: build, run, test and benchmark spevisor.
//!
//! ```text
//! cargo xtask build [--release] [--test-hooks] [--switch-order=fixed|pre-2021]
//! cargo xtask run   [--gdb] [--switch-order=...] [-- <extra QEMU options>]
//! cargo xtask run   --guest FILE|linux [--initrd FILE] [--append "..."] [--vcpus N] [--mem MiB]
//! cargo xtask test  [--quick] [NAME...]   host tests, fmt, clippy, QEMU boots
//! cargo xtask help  [COMMAND]        usage (also COMMAND --help)
//! cargo xtask bench [--iterations N] [--json FILE] [--debug]   world-switch costs
//! cargo xtask fuzz  TARGET [--seconds N] | all | --list   libFuzzer targets (fuzz/)
//! cargo xtask spe-report <args>      offline SPE dump/profile tool
//! ```
//!
//! Each command installs what it needs on a fresh Debian machine (rustup
//! targets and components; QEMU via apt-get when running as root) or says
//! exactly what to install.

mod bench;
mod board_tests;
mod cli;
mod cpio;
mod elf;
mod fuzz;
mod guest;
mod machine_code;
mod qemu;
#[cfg(test)]
mod repo;
mod setup;
mod tests;
mod uboot;
mod uefi;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Target of the hypervisor image and the guests.
pub const BARE_TARGET: &str = "aarch64-unknown-none-softfloat";

/// What `cargo xtask run --report` appends: the image prints the board
/// report and stops (the hypervisor's `report::REPORT_ONLY_ARG`).
pub const REPORT_ONLY_ARG: &str = "spevisor.report=only";

/// The variable naming the guest binary the host kernel embeds.
pub const GUEST_ENV: &str = "SPEVISOR_GUEST_BIN";

/// Options of a build of the image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildOpts {
    pub release: bool,
    pub test_hooks: bool,
    pub pre_2021: bool,
    /// For boards: no semihosting exit, no QEMU fallback console.
    pub board: bool,
    /// SPE's hardware world-switch path on stand-in EL2 registers (bench).
    pub spe_hw_standin: bool,
    /// A world switch broken on purpose, for the ordering checks' own tests.
    pub broken: Option<Broken>,
}

/// World-switch breakages the ordering checks must catch (each one a cargo
/// feature of the hypervisor that moves real code; see `hyp/src/switch.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// `restore_host_buffers` runs before the host's EL1 registers are back:
    /// the host's buffer is re-enabled under the guest's EL1 regime.
    RestoreEarly,
    /// `save_host_buffers` runs after the stage-2 load (VTTBR_EL2 live).
    DrainLate,
    /// Only the trace buffer (TRBE model) is drained after the stage-2 load.
    TrbeLate,
}

impl Broken {
    pub const ALL: [Broken; 3] = [Broken::RestoreEarly, Broken::DrainLate, Broken::TrbeLate];

    /// The `--switch-order=` value and the image flavour suffix.
    pub fn name(self) -> &'static str {
        match self {
            Broken::RestoreEarly => "broken-restore-early",
            Broken::DrainLate => "broken-drain-late",
            Broken::TrbeLate => "broken-trbe-late",
        }
    }

    fn feature(self) -> &'static str {
        match self {
            Broken::RestoreEarly => "switch-order-broken-restore-early",
            Broken::DrainLate => "switch-order-broken-drain-late",
            Broken::TrbeLate => "switch-order-broken-trbe-late",
        }
    }
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Runs a command, failing with its command line if it fails.
pub fn run_cmd(cmd: &mut Command) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("command failed ({status}): {cmd:?}"))
    }
}

/// Builds the tiny guest and returns its flat binary (loaded at IPA 0x4000_0000).
pub fn build_guest(release: bool) -> Result<PathBuf, String> {
    build_guest_at(release, 0)
}

/// The variable guest/build.rs reads: the guest's load offset in RAM.
const GUEST_LOAD_OFFSET_ENV: &str = "SPEVISOR_GUEST_LOAD_OFFSET";

/// Builds the tiny guest linked to run at RAM + `load_offset` (its own
/// target directory when not 0, so the two builds do not evict each other)
/// and returns its flat binary.
pub fn build_guest_at(release: bool, load_offset: u64) -> Result<PathBuf, String> {
    setup::rust_targets()?;
    let suffix = if load_offset == 0 { String::new() } else { format!("-at{load_offset:x}") };
    let dir = root().join("target").join(format!("guest{suffix}"));
    let mut cmd = cargo();
    cmd.current_dir(root())
        .args(["build", "--quiet", "-p", "spevisor-guest", "--target", BARE_TARGET])
        .arg("--target-dir")
        .arg(&dir);
    if load_offset != 0 {
        cmd.env(GUEST_LOAD_OFFSET_ENV, format!("{load_offset:#x}"));
    } else {
        cmd.env_remove(GUEST_LOAD_OFFSET_ENV);
    }
    if release {
        cmd.arg("--release");
    }
    run_cmd(&mut cmd)?;
    let profile = if release { "release" } else { "debug" };
    let elf_path = dir.join(BARE_TARGET).join(profile).join("spevisor-guest");
    let bin = root().join("target").join(format!("guest{suffix}-{profile}.bin"));
    elf::to_image(&elf_path, &bin)?;
    Ok(bin)
}

/// Builds the image and returns the path of the raw arm64 Image.
pub fn build_image(opts: &BuildOpts) -> Result<PathBuf, String> {
    setup::rust_targets()?;
    let guest = build_guest(opts.release)?;
    let target_dir = root().join("target");
    let flavour = format!(
        "{}{}{}{}",
        if opts.release { "release" } else { "debug" },
        if opts.test_hooks { "-test" } else { "" },
        if opts.pre_2021 { "-pre2021" } else { "" },
        if opts.spe_hw_standin { "-spestandin" } else { "" },
    );
    let flavour = if opts.board { format!("{flavour}-board") } else { flavour };
    let flavour = match opts.broken {
        Some(b) => format!("{flavour}-{}", b.name()),
        None => flavour,
    };
    // Each flavour gets its own target dir so switching does not rebuild all;
    // the broken variants share one (only the hypervisor differs).
    let dir = match opts.broken {
        Some(_) => target_dir.join("image").join("broken"),
        None => target_dir.join("image").join(&flavour),
    };
    let mut features = vec![];
    if opts.test_hooks {
        features.push("test-hooks");
    }
    if opts.pre_2021 {
        features.push("switch-order-pre-2021");
    }
    if opts.spe_hw_standin {
        features.push("spe-hw-standin");
    }
    if let Some(b) = opts.broken {
        features.push(b.feature());
    }
    let mut cmd = cargo();
    cmd.current_dir(root())
        .env(GUEST_ENV, &guest)
        .args(["build", "--quiet", "-p", "spevisor-image", "--target", BARE_TARGET])
        .arg("--target-dir")
        .arg(&dir);
    if opts.release {
        cmd.arg("--release");
    }
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    if opts.board {
        cmd.arg("--no-default-features");
    }
    run_cmd(&mut cmd)?;
    let profile = if opts.release { "release" } else { "debug" };
    let elf_path = dir.join(BARE_TARGET).join(profile).join("spevisor-image");
    let image = target_dir.join(format!("spevisor-{flavour}.Image"));
    elf::to_image(&elf_path, &image)?;
    std::fs::copy(&elf_path, target_dir.join(format!("spevisor-{flavour}.elf")))
        .map_err(|e| format!("copy ELF: {e}"))?;
    Ok(image)
}

fn parse_build_opts(args: &[String]) -> Result<(BuildOpts, Vec<String>), String> {
    let mut opts = BuildOpts::default();
    let mut rest = vec![];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--release" => opts.release = true,
            "--test-hooks" => opts.test_hooks = true,
            "--board" => opts.board = true,
            "--spe-hw-standin" => opts.spe_hw_standin = true,
            "--switch-order=fixed" => (opts.pre_2021, opts.broken) = (false, None),
            "--switch-order=pre-2021" => (opts.pre_2021, opts.broken) = (true, None),
            s if s.starts_with("--switch-order=") => {
                let v = &s["--switch-order=".len()..];
                let b = Broken::ALL.into_iter().find(|b| b.name() == v).ok_or_else(|| {
                    format!(
                        "unknown switch order in {s}: use fixed, pre-2021, broken-restore-early or broken-drain-late"
                    )
                })?;
                (opts.pre_2021, opts.broken) = (false, Some(b));
            }
            "--" => {
                rest.extend(it.cloned());
                break;
            }
            other => rest.push(other.to_string()),
        }
    }
    if opts.board && opts.spe_hw_standin {
        return Err("--spe-hw-standin is a QEMU instruction-counting build; it cannot be a --board image".into());
    }
    Ok((opts, rest))
}

fn usage() -> String {
    cli::usage(None).unwrap_or_default()
}

fn real_main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        return Err(usage());
    };
    let rest = &args[1..];
    if cli::wants_help(rest) {
        let text = cli::usage(Some(cmd)).ok_or_else(|| format!("unknown command {cmd}\n{}", usage()))?;
        println!("{text}");
        return Ok(());
    }
    match cmd.as_str() {
        "build" => {
            let (opts, extra) = parse_build_opts(rest)?;
            if let Some(x) = extra.first() {
                return Err(format!("unknown build option {x}\n{}", usage()));
            }
            let image = build_image(&opts)?;
            println!("{}", image.display());
            Ok(())
        }
        "run" => {
            let gdb = rest.iter().any(|a| a == "--gdb");
            // A guest from outside: checked and packed before anything boots.
            let (guest_opts, rest) = guest::take_opts(rest)?;
            let bundle = guest_opts.map(|o| guest::make_bundle(&o, "run")).transpose()?;
            // Host kernel options: --spe=auto|hw|model|off, --scenario=NAME.
            let mut append = vec![];
            let mut filtered = vec![];
            let mut passthrough = false;
            if bundle.is_some() {
                append.push(guest::HOST_APPEND.to_string());
            }
            for a in &rest {
                passthrough |= a == "--";
                match a.split_once('=') {
                    Some(("--spe", v)) if !passthrough => {
                        if !matches!(v, "auto" | "hw" | "model" | "off") {
                            return Err(format!("--spe={v}: use auto, hw, model or off"));
                        }
                        append.push(format!("spevisor.spe={v}"));
                    }
                    Some(("--scenario", v)) if !passthrough => append.push(format!("spevisor.scenario={v}")),
                    Some(("--max-exits", v)) if !passthrough => {
                        let n: u64 = v.parse().map_err(|_| format!("--max-exits={v}: not a number"))?;
                        append.push(format!("spevisor.max_exits={n}"));
                    }
                    _ if a == "--gdb" && !passthrough => {}
                    // The board report alone (hyp/src/report.rs), exit 0.
                    _ if a == "--report" && !passthrough => append.push(REPORT_ONLY_ARG.to_string()),
                    _ => filtered.push(a.clone()),
                }
            }
            let (opts, mut extra) = parse_build_opts(&filtered)?;
            if let Some(b) = bundle {
                extra.extend(["-initrd".to_string(), b.display().to_string()]);
            }
            let image = build_image(&opts)?;
            let qemu = setup::qemu()?;
            qemu::run_interactive(&qemu, &image, gdb, &append.join(" "), &extra)
        }
        "test" => tests::run_all(&cli::parse_test_args(rest)?),
        "bench" => bench::run(rest),
        "fuzz" => fuzz::cli(rest),
        "hostile" => tests::hostile_report(rest),
        "check-switch-code" => machine_code::cli(rest),
        "spe-report" => {
            let mut c = cargo();
            c.current_dir(root()).args(["run", "--quiet", "-p", "spe-report", "--"]).args(rest);
            run_cmd(&mut c)
        }
        "help" | "--help" | "-h" => {
            let text = match rest.first() {
                None => usage(),
                Some(c) => cli::usage(Some(c)).ok_or_else(|| format!("unknown command {c}\n{}", usage()))?,
            };
            println!("{text}");
            Ok(())
        }
        other => Err(format!("unknown command {other}\n{}", usage())),
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
