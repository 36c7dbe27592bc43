//! How the guest ends when entered by the boot protocol (a raw `cargo xtask
//! run --guest` payload): `spevisor.end=` in its command line picks one of
//! the endings the run's exit status tells apart (README.md, "Exit codes"),
//! for the QEMU test of those statuses.
//!
//! | `spevisor.end=` | what the guest does | the run's exit status |
//! |---|---|---|
//! | (absent) | SET_STATUS(its checks), SYSTEM_OFF | 0 if the checks passed, else 5 |
//! | `status:N` | SET_STATUS(N), SYSTEM_OFF | 0 if N = 0, else 5 |
//! | `exit:N` | checks PSCI_FEATURES and the refused reset types of SYSTEM_RESET2, then SYSTEM_RESET2_64(spevisor exit, cookie N) | 0 if N = 0, else 5 |
//! | `exit32:N` | SYSTEM_RESET2_32(spevisor exit, cookie N with bit 32 set: a W register drops it) | as `exit:N` |
//! | `reset` | SYSTEM_RESET | 8 |
//! | `reset2` | SYSTEM_RESET2_64(warm reset) | 8 |
//! | `stop` | faults on its own abort vector (`aborts.rs`) | 7 |
//! | `spin` | HOST_PING forever | 9 (with `spevisor.max_exits=`) |

use core::fmt::Write;
use spevisor_abi::guest::psci;

/// Status a guest reports when SYSTEM_RESET2 did not behave (or returned).
const RESET2_WRONG: u64 = 0xbad2;
/// Bit 32: dropped by the SMC32 call's W-register cookie.
const ABOVE_W: u64 = 1 << 32;

/// Ends as `bootargs` say, or returns the status to power off with
/// (`checks`: the boot protocol's own failed checks).
pub fn finish(bootargs: &str, checks: u64) -> u64 {
    let Some(end) = bootargs.split_whitespace().find_map(|w| w.strip_prefix("spevisor.end=")) else {
        return checks;
    };
    if checks != 0 {
        return checks;
    }
    let (what, n) = end.split_once(':').unwrap_or((end, ""));
    let n: u64 = n.parse().unwrap_or(0);
    println!("guest: ending with {end}");
    match what {
        "status" => n,
        "exit" => exit_by_reset2(psci::SYSTEM_RESET2_64, n),
        "exit32" => exit_by_reset2(psci::SYSTEM_RESET2_32, n | ABOVE_W),
        "reset" => {
            crate::hvc::call(psci::SYSTEM_RESET, 0, 0, 0);
            RESET2_WRONG
        }
        "reset2" => {
            crate::hvc::call(psci::SYSTEM_RESET2_64, psci::RESET2_WARM, 0, 0);
            RESET2_WRONG
        }
        "stop" => crate::aborts::no_progress(crate::aborts::MODE_ABORT_ON_VECTOR),
        "spin" => loop {
            crate::hvc::host_ping(0);
        },
        _ => {
            println!("guest: unknown ending {end:?}");
            crate::status::UNKNOWN_MODE
        }
    }
}

/// SYSTEM_RESET2 with spevisor's vendor exit type and `cookie`, after
/// checking that PSCI_FEATURES offers it and that reset types it does not
/// define are refused (the call returns INVALID_PARAMETERS). Returns only
/// if something was wrong.
fn exit_by_reset2(id: u64, cookie: u64) -> u64 {
    let features = crate::hvc::psci_features(id);
    let bad_arch = crate::hvc::call(id, 1, 0, 0)[0];
    let bad_vendor = crate::hvc::call(id, psci::RESET2_VENDOR | 1, 0, 0)[0];
    if features != psci::SUCCESS || bad_arch != psci::INVALID_PARAMETERS || bad_vendor != psci::INVALID_PARAMETERS {
        println!("guest: SYSTEM_RESET2 {id:#x}: FEATURES {features:#x}, type 1 {bad_arch:#x}, type 0x80000001 {bad_vendor:#x}");
        return RESET2_WRONG;
    }
    crate::hvc::call(id, psci::RESET2_SPEVISOR_EXIT, cookie, 0);
    println!("guest: SYSTEM_RESET2 returned");
    RESET2_WRONG
}
