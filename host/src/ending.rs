//! How a guest run ended, and the exit status the whole run gets from it
//! (README.md, "Exit codes"): QEMU's exit status tells a script what
//! happened to the guest without parsing the console. Pure, so it is
//! tested on the development machine.

use spevisor_abi::StopReason;

/// How a guest run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// PSCI SYSTEM_OFF (or CPU_OFF of its only vcpu, or SYSTEM_RESET2's
    /// spevisor exit with a status).
    Off,
    /// PSCI SYSTEM_RESET (or SYSTEM_RESET2's warm reset).
    Reset,
    /// The hypervisor stopped it, for this reason (EL2, or the host for a
    /// data abort on a device it cannot decode).
    Stopped(StopReason),
    /// The host stopped it (a refused run, every vcpu asleep with nothing
    /// to wake it).
    Killed,
    /// It handled its exit budget (`max_exits`) without ending.
    OutOfBudget,
}

/// Exit statuses of a run (the image's, so QEMU's and `cargo xtask run`'s).
/// 1, 3 and 4 are boot failures and crashes (`kmain.rs`).
pub mod code {
    pub const OK: u64 = 0;
    /// The guest ended with a non-zero status of its own (SET_STATUS, or
    /// SYSTEM_RESET2's spevisor exit), or the demo's reported none.
    pub const GUEST_FAILED: u64 = 5;
    /// The `guest` scenario refused its bundle.
    pub const GUEST_REFUSED: u64 = 6;
    /// The hypervisor or the host stopped the guest (a stop reason was
    /// printed).
    pub const GUEST_STOPPED: u64 = 7;
    /// The guest reset itself (PSCI SYSTEM_RESET or SYSTEM_RESET2 warm).
    pub const GUEST_RESET: u64 = 8;
    /// The guest used up its exit budget (`spevisor.max_exits=`).
    pub const GUEST_OUT_OF_BUDGET: u64 = 9;
}

/// The summary's `status=` and the exit status for a guest that ended
/// `ending` having reported `status` (its own, if any). `status_required`:
/// a guest that powers off without reporting one failed (the demo's
/// self-test must report).
pub fn verdict(ending: Ending, status: Option<u64>, status_required: bool) -> (&'static str, u64) {
    match ending {
        Ending::Off => match status {
            Some(0) => ("ok", code::OK),
            None if !status_required => ("ok", code::OK),
            _ => ("guest-failed", code::GUEST_FAILED),
        },
        Ending::Reset => ("guest-reset", code::GUEST_RESET),
        Ending::Stopped(_) | Ending::Killed => ("guest-stopped", code::GUEST_STOPPED),
        Ending::OutOfBudget => ("guest-out-of-budget", code::GUEST_OUT_OF_BUDGET),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ending_has_its_own_status() {
        assert_eq!(verdict(Ending::Off, Some(0), true), ("ok", 0));
        assert_eq!(verdict(Ending::Off, None, false), ("ok", 0), "a --guest guest need not report");
        assert_eq!(verdict(Ending::Off, None, true), ("guest-failed", 5), "the demo must");
        assert_eq!(verdict(Ending::Off, Some(3), false), ("guest-failed", 5));
        assert_eq!(verdict(Ending::Reset, Some(0), false), ("guest-reset", 8));
        assert_eq!(verdict(Ending::Stopped(StopReason::AbortOnVector), None, false), ("guest-stopped", 7));
        assert_eq!(verdict(Ending::Killed, Some(0), false), ("guest-stopped", 7));
        assert_eq!(verdict(Ending::OutOfBudget, Some(0), false), ("guest-out-of-budget", 9));
        let codes = [
            0,
            code::GUEST_FAILED,
            code::GUEST_REFUSED,
            code::GUEST_STOPPED,
            code::GUEST_RESET,
            code::GUEST_OUT_OF_BUDGET,
        ];
        for (i, a) in codes.iter().enumerate() {
            assert!(codes[i + 1..].iter().all(|b| a != b), "distinct");
            assert!(![1, 3, 4].contains(a), "not a boot failure's or a crash's");
        }
    }
}
