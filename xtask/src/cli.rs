//! Command-line pieces shared by the subcommands: usage texts, `--help`, and
//! `cargo xtask test`'s arguments and test-name filter. Pure, unit-tested.

/// The subcommands, in the order `cargo xtask help` lists them (the usage
/// test walks this list).
#[cfg(test)]
pub const COMMANDS: &[&str] = &["build", "run", "test", "bench", "fuzz", "spe-report", "help"];

/// One line per subcommand, for `cargo xtask help`.
const SUMMARY: &str = "usage: cargo xtask <command> [options]    (cargo xtask <command> --help for one command)\n\
\n\
commands:\n\
\x20 build       build the image and print its path\n\
\x20 run         build the image and boot it in QEMU, console on this terminal\n\
\x20 test        fmt, clippy, host unit tests and QEMU boots (or only the tests NAME matches)\n\
\x20 bench       world-switch costs in instructions, under QEMU with -icount\n\
\x20 fuzz        coverage-guided fuzzing of the parsers and device models (libFuzzer)\n\
\x20 hostile     the isolation report: hostile guests, a hostile host, every fuzz target, stress\n\
\x20 spe-report  offline SPE dump, profile and JSON records\n\
\x20 check-switch-code ELF  the machine-code ordering check on one built image (cargo xtask test runs it on all)\n\
\x20 help        this text, or `help COMMAND` for one command";

const BUILD: &str = "usage: cargo xtask build [--release] [--board] [--test-hooks] [--switch-order=fixed|pre-2021]\n\
\x20                        [--spe-hw-standin]\n\
\n\
Builds the test guest and the image, and prints the path of the arm64 Image\n\
(target/spevisor-<flavour>.Image; the ELF beside it has the symbols).\n\
\n\
\x20 --release            optimised build (fat LTO)\n\
\x20 --board              for boards: no semihosting exit, no QEMU fallback console\n\
\x20 --test-hooks         accept spevisor.test=<fault> on the command line (tests only)\n\
\x20 --switch-order=O     fixed (default) or pre-2021 (Linux's pre-2021 order, on purpose)\n\
\x20 --spe-hw-standin     SPE's hardware world-switch path on stand-in EL2 registers (QEMU bench only)";

const RUN: &str =
    "usage: cargo xtask run [build options] [--gdb] [--spe=auto|hw|model|off] [--scenario=NAME] [--linux] [--report]\n\
\x20                      [-- <QEMU options>]\n\
\n\
Builds the image and boots it in QEMU (installed with apt-get when missing and\n\
run as root); the exit status is QEMU's: 0 ok, 1 boot could not proceed,\n\
3 EL2 crash, 4 host crash, 5 the guest failed (its own status not 0), 6 the guest\n\
bundle was refused, 7 the guest was stopped by the hypervisor, 8 the guest reset,\n\
9 the guest used up its exit budget.\n\
\n\
\x20 --spe=B              the host's SPE backend (auto: hardware if the host owns it, else the model)\n\
\x20 --scenario=NAME      a host scenario (host/src/scenarios.rs), e.g. two-vms\n\
\x20 --guest FILE|linux   any arm64 Image or raw binary as the guest, or Debian's cloud kernel with a\n\
\x20                      busybox initramfs (fetched once into target/); with --initrd FILE,\n\
\x20                      --append \"...\", --vcpus 1..8, --mem MiB (--linux = --guest linux)\n\
\x20 --max-exits=N        stop a --guest guest after N exits (exit status 9; default 1000000)\n\
\x20 --report             print the board report (CPU, ELs, PA/IPA, GIC, timer, PMU, SPE, PSCI) and exit 0\n\
\x20 --gdb                QEMU waits for gdb on localhost:1234 (xtask prints the command)\n\
\x20 -- ARGS              pass ARGS to QEMU, e.g. -- -m 2G -smp 4, or -- -append \"spevisor.spe_period=200000\"\n\
\x20 build options        as for `cargo xtask build` (--release, --switch-order=..., ...)";

const TEST: &str = "usage: cargo xtask test [--quick] [NAME...]\n\
\n\
Runs cargo fmt --check, clippy -D warnings, the host unit tests, a few seconds\n\
of each fuzz target (fuzz_TARGET) and the QEMU boot tests (the ones CI runs).\n\
Installs what it needs when it can.\n\
\n\
\x20 --quick              skip fmt and clippy\n\
\x20 NAME...              only the tests whose names contain a NAME: host unit tests\n\
\x20                      through cargo test's filter, QEMU tests by substring\n\
\x20                      (fmt and clippy are skipped; QEMU is not started when no\n\
\x20                      QEMU test matches)";

const BENCH: &str = "usage: cargo xtask bench [--iterations N] [--json FILE] [--debug]\n\
\n\
Boots the release image under QEMU with -icount shift=0,sleep=off and prints\n\
each world-switch cost in instructions per round trip (docs/benchmarks.md).\n\
\n\
\x20 --iterations N       iterations per loop (default 10,000)\n\
\x20 --json FILE          also write one JSON object per metric to FILE\n\
\x20 --debug              the debug image instead of the release one";

const HELP: &str = "usage: cargo xtask help [COMMAND]";

const HOSTILE: &str = "usage: cargo xtask hostile [--fuzz-seconds N]\n\
\n\
The isolation report (docs/testing.md, \"Hostile guests, a hostile host, fuzzing,\n\
stress\"): boots the hostile-guest suite and the hostile host, runs every fuzz\n\
target N seconds (default 10), boots the two stress runs on the release image,\n\
checks each as cargo xtask test does and prints what ran and what it found.\n\
Exits non-zero if any part failed.";

/// The usage text of `cmd` (`None` for the overview), or `None` if there
/// is no such command.
pub fn usage(cmd: Option<&str>) -> Option<String> {
    Some(
        match cmd {
            None => SUMMARY,
            Some("build") => BUILD,
            Some("run") => RUN,
            Some("test") => TEST,
            Some("bench") => BENCH,
            Some("fuzz") => crate::fuzz::usage(),
            Some("hostile") => HOSTILE,
            Some("spe-report") => spe_report::USAGE,
            Some("help") => HELP,
            Some(_) => return None,
        }
        .to_string(),
    )
}

/// Whether `args` ask for help: `-h` or `--help` before any `--` (after it,
/// arguments belong to QEMU).
pub fn wants_help(args: &[String]) -> bool {
    args.iter().take_while(|a| *a != "--").any(|a| a == "-h" || a == "--help")
}

/// What `cargo xtask test` was asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestArgs {
    /// Skip fmt and clippy.
    pub quick: bool,
    /// Test-name filters; empty: every test.
    pub filters: Vec<String>,
}

impl TestArgs {
    /// Whether fmt and clippy run: a full run only.
    pub fn lint(&self) -> bool {
        !self.quick && self.filters.is_empty()
    }
}

/// Parses `cargo xtask test`'s arguments. An unknown option is an error, not
/// a filter, so a typo cannot silently select nothing.
pub fn parse_test_args(args: &[String]) -> Result<TestArgs, String> {
    let mut t = TestArgs::default();
    for a in args {
        match a.as_str() {
            "--quick" => t.quick = true,
            s if s.starts_with('-') => return Err(format!("unknown test option {s}\n{TEST}")),
            "" => return Err(format!("empty test name\n{TEST}")),
            name => t.filters.push(name.to_string()),
        }
    }
    Ok(t)
}

/// Whether the test `name` is selected: every test without filters, else
/// those whose name contains one of them (cargo test's rule).
pub fn selected(name: &str, filters: &[String]) -> bool {
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

#[cfg(test)]
mod unit {
    use super::*;

    fn s(a: &[&str]) -> Vec<String> {
        a.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn test_args_take_quick_and_names_and_refuse_unknown_options() {
        assert_eq!(parse_test_args(&[]).unwrap(), TestArgs::default());
        let t = parse_test_args(&s(&["--quick", "boot_", "spe"])).unwrap();
        assert_eq!(t, TestArgs { quick: true, filters: s(&["boot_", "spe"]) });
        assert!(!t.lint());
        assert!(parse_test_args(&[]).unwrap().lint(), "a plain run lints");
        assert!(!parse_test_args(&s(&["boot"])).unwrap().lint(), "a filtered run does not");
        let e = parse_test_args(&s(&["--qiuck"])).unwrap_err();
        assert!(e.contains("unknown test option --qiuck"), "{e}");
        assert!(parse_test_args(&s(&[""])).is_err());
    }

    #[test]
    fn filter_selects_by_substring_and_everything_without_filters() {
        let names = ["boot_gicv3_summary", "boot_256m", "spe_small_buffer_fills_often_loses_nothing"];
        let pick = |f: &[&str]| -> Vec<&str> { names.iter().copied().filter(|n| selected(n, &s(f))).collect() };
        assert_eq!(pick(&[]), names);
        assert_eq!(pick(&["boot_"]), ["boot_gicv3_summary", "boot_256m"]);
        assert_eq!(pick(&["256m", "spe_small"]), ["boot_256m", "spe_small_buffer_fills_often_loses_nothing"]);
        assert!(pick(&["no_such_test"]).is_empty());
        assert!(pick(&["BOOT"]).is_empty(), "case-sensitive, like cargo test");
    }

    #[test]
    fn help_is_asked_before_the_qemu_arguments_only() {
        assert!(wants_help(&s(&["--help"])));
        assert!(wants_help(&s(&["--release", "-h"])));
        assert!(!wants_help(&s(&["--release"])));
        assert!(!wants_help(&s(&["--", "--help"])), "after -- it is QEMU's");
    }

    #[test]
    fn every_command_has_a_usage_naming_itself() {
        for c in COMMANDS {
            let u = usage(Some(c)).unwrap_or_else(|| panic!("no usage for {c}"));
            assert!(u.starts_with("usage:"), "{c}: {u}");
            if *c != "spe-report" {
                assert!(u.contains(&format!("cargo xtask {c}")), "{c}: {u}");
            }
            assert!(usage(None).unwrap().contains(&format!("  {c} ")), "overview lacks {c}");
        }
        assert_eq!(usage(Some("nonsense")), None);
    }
}
