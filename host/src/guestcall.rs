//! What the host answers to a guest's `hvc`/`smc`: PSCI 1.1, SMCCC and
//! spevisor's guest test ABI. Pure, so it is tested on the development
//! machine; `vmm.rs` applies the outcome to the VM.

use spevisor_abi::guest::{psci, smccc, test};

/// The outcome of one guest call (an explicit tag, `repr(u8)`: matching
/// it then costs one compare, not a niche computation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Outcome {
    /// Resume the guest with these x0..x3.
    Answer([u64; 4]),
    /// Resume with x0..x3 after recording the guest's status (SET_STATUS).
    Status { status: u64, answer: [u64; 4] },
    /// Resume after printing a value the guest reported (REPORT).
    Report { tag: u64, value: u64, answer: [u64; 4] },
    /// The VM powers off (SYSTEM_OFF).
    Off,
    /// The VM resets (SYSTEM_RESET, or SYSTEM_RESET2's warm reset).
    Reset,
    /// The VM ends with `status` as its own (SYSTEM_RESET2 with spevisor's
    /// vendor type `RESET2_SPEVISOR_EXIT`, the status in its cookie).
    Exit { status: u64 },
    /// PSCI CPU_OFF: the calling vcpu stops (the VM with its last one).
    CpuOff,
    /// PSCI CPU_ON of the vcpu with MPIDR `target` at `entry`, x0 = `context`.
    CpuOn { target: u64, entry: u64, context: u64 },
    /// PSCI AFFINITY_INFO of `target` at affinity level `level`.
    AffinityInfo { target: u64, level: u64 },
    /// PSCI CPU_SUSPEND: a standby, as WFI (the call then returns SUCCESS).
    Suspend,
}

/// The PSCI functions this host implements (PSCI_FEATURES answers 0 for them).
const PSCI_IMPLEMENTED: [u64; 15] = [
    psci::VERSION,
    psci::FEATURES,
    psci::SYSTEM_OFF,
    psci::SYSTEM_RESET,
    psci::SYSTEM_RESET2_32,
    psci::SYSTEM_RESET2_64,
    psci::CPU_OFF,
    psci::CPU_ON_32,
    psci::CPU_ON_64,
    psci::CPU_SUSPEND_32,
    psci::CPU_SUSPEND_64,
    psci::AFFINITY_INFO_32,
    psci::AFFINITY_INFO_64,
    psci::MIGRATE_INFO_TYPE,
    smccc::VERSION,
];

/// Clears the upper half of an SMC32 call's argument (SMCCC: W registers).
const fn arg32(id: u64, v: u64) -> u64 {
    const SMC64: u64 = 1 << 30;
    if id & SMC64 == 0 {
        v & 0xffff_ffff
    } else {
        v
    }
}

/// SMCCC function IDs: the owning service, bits [29:24].
const OWNER_SHIFT: u64 = 24;
const OWNER_MASK: u64 = 0x3f;
/// Vendor-specific hypervisor service: spevisor's guest test ABI.
const OWNER_VENDOR_HYP: u64 = 6;

/// Decides the answer to a guest call with x0..x3 = `r`, dispatching on
/// the SMCCC owner first: the test ABI (the benchmarks' calls) stays a
/// couple of compares away, PSCI and the SMCCC architecture calls are
/// decided out of line.
#[inline(always)]
pub fn handle(r: [u64; 4]) -> Outcome {
    if let Some(a) = stateless(r) {
        return Outcome::Answer(a);
    }
    if (r[0] >> OWNER_SHIFT) & OWNER_MASK == OWNER_VENDOR_HYP {
        return vendor(r);
    }
    standard(r)
}

/// The answer to a call that needs no state at all (HOST_PING), or `None`:
/// the run loop answers these without building an [`Outcome`].
#[inline(always)]
pub fn stateless(r: [u64; 4]) -> Option<[u64; 4]> {
    (r[0] == test::HOST_PING).then(|| [0, r[1].wrapping_add(1), r[2], r[3]])
}

/// The rest of the test ABI.
#[inline(never)]
fn vendor(r: [u64; 4]) -> Outcome {
    match r[0] {
        test::SET_STATUS => Outcome::Status { status: r[1], answer: [0, r[1], r[2], r[3]] },
        test::REPORT => Outcome::Report { tag: r[1], value: r[2], answer: [0, r[1], r[2], r[3]] },
        _ => Outcome::Answer([smccc::NOT_SUPPORTED, r[1], r[2], r[3]]),
    }
}

/// PSCI and the SMCCC architecture calls (and anything unknown).
#[inline(never)]
fn standard(r: [u64; 4]) -> Outcome {
    let ok = |v: u64| Outcome::Answer([v, r[1], r[2], r[3]]);
    match r[0] {
        psci::VERSION => ok(psci::VERSION_1_1),
        psci::FEATURES if PSCI_IMPLEMENTED.contains(&r[1]) => ok(psci::SUCCESS),
        psci::FEATURES => ok(psci::NOT_SUPPORTED),
        psci::SYSTEM_OFF => Outcome::Off,
        psci::CPU_OFF => Outcome::CpuOff,
        psci::SYSTEM_RESET => Outcome::Reset,
        psci::SYSTEM_RESET2_32 | psci::SYSTEM_RESET2_64 => reset2(r),
        psci::CPU_ON_32 | psci::CPU_ON_64 => {
            let id = r[0];
            Outcome::CpuOn { target: arg32(id, r[1]), entry: arg32(id, r[2]), context: arg32(id, r[3]) }
        }
        psci::AFFINITY_INFO_32 | psci::AFFINITY_INFO_64 => {
            Outcome::AffinityInfo { target: arg32(r[0], r[1]), level: arg32(r[0], r[2]) }
        }
        psci::CPU_SUSPEND_32 | psci::CPU_SUSPEND_64 => Outcome::Suspend,
        psci::MIGRATE_INFO_TYPE => ok(psci::TOS_NOT_PRESENT),
        smccc::VERSION => ok(smccc::VERSION_1_1),
        // SMCCC_ARCH_FEATURES: the call itself exists; no firmware
        // workaround is offered (guests see NOT_SUPPORTED for each).
        smccc::ARCH_FEATURES if r[1] == smccc::ARCH_FEATURES => ok(0),
        smccc::ARCH_FEATURES => ok(smccc::NOT_SUPPORTED),
        _ => ok(smccc::NOT_SUPPORTED),
    }
}

/// SYSTEM_RESET2: the architectural warm reset, spevisor's vendor exit
/// (cookie = the guest's status), anything else INVALID_PARAMETERS (the
/// call then returns, as PSCI says).
fn reset2(r: [u64; 4]) -> Outcome {
    let (kind, cookie) = (r[1] & 0xffff_ffff, arg32(r[0], r[2]));
    match kind {
        psci::RESET2_WARM => Outcome::Reset,
        psci::RESET2_SPEVISOR_EXIT => Outcome::Exit { status: cookie },
        _ => Outcome::Answer([psci::INVALID_PARAMETERS, r[1], r[2], r[3]]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psci_version_features_and_power() {
        assert_eq!(handle([psci::VERSION, 0, 0, 0]), Outcome::Answer([psci::VERSION_1_1, 0, 0, 0]));
        assert_eq!(handle([psci::FEATURES, psci::SYSTEM_OFF, 0, 0]), Outcome::Answer([0, psci::SYSTEM_OFF, 0, 0]));
        assert_eq!(handle([psci::FEATURES, psci::CPU_ON_64, 0, 0]), Outcome::Answer([0, psci::CPU_ON_64, 0, 0]));
        assert_eq!(
            handle([psci::FEATURES, 0xC400_000E, 0, 0]),
            Outcome::Answer([psci::NOT_SUPPORTED, 0xC400_000E, 0, 0]),
            "SYSTEM_SUSPEND is not offered"
        );
        assert_eq!(
            handle([psci::FEATURES, 0xC400_0015, 0, 0]),
            Outcome::Answer([psci::NOT_SUPPORTED, 0xC400_0015, 0, 0]),
            "SYSTEM_OFF2 (PSCI 1.3) is not offered under PSCI 1.1"
        );
        assert_eq!(handle([psci::SYSTEM_OFF, 0, 0, 0]), Outcome::Off);
        assert_eq!(handle([psci::CPU_OFF, 0, 0, 0]), Outcome::CpuOff);
        assert_eq!(
            handle([psci::CPU_ON_64, 1, 0x4000_1000, 7]),
            Outcome::CpuOn { target: 1, entry: 0x4000_1000, context: 7 }
        );
        assert_eq!(
            handle([psci::CPU_ON_32, 1 | 1 << 32, 0x1_4000_1000, 7]),
            Outcome::CpuOn { target: 1, entry: 0x4000_1000, context: 7 },
            "SMC32: W registers"
        );
        assert_eq!(handle([psci::AFFINITY_INFO_64, 2, 0, 0]), Outcome::AffinityInfo { target: 2, level: 0 });
        assert_eq!(handle([psci::CPU_SUSPEND_64, 0, 0, 0]), Outcome::Suspend);
        assert_eq!(handle([psci::MIGRATE_INFO_TYPE, 0, 0, 0]), Outcome::Answer([2, 0, 0, 0]));
        assert_eq!(
            handle([smccc::ARCH_FEATURES, 0x8000_8000, 0, 0]).clone(),
            Outcome::Answer([smccc::NOT_SUPPORTED, 0x8000_8000, 0, 0])
        );
        assert_eq!(handle([psci::SYSTEM_RESET, 0, 0, 0]), Outcome::Reset);
        assert_eq!(handle([smccc::VERSION, 0, 0, 0]), Outcome::Answer([smccc::VERSION_1_1, 0, 0, 0]));
    }

    #[test]
    fn system_reset2_resets_or_ends_with_the_guests_status() {
        for id in [psci::SYSTEM_RESET2_32, psci::SYSTEM_RESET2_64] {
            assert_eq!(handle([psci::FEATURES, id, 0, 0]), Outcome::Answer([psci::SUCCESS, id, 0, 0]), "{id:#x}");
            assert_eq!(handle([id, psci::RESET2_WARM, 0, 0]), Outcome::Reset);
            assert_eq!(handle([id, psci::RESET2_SPEVISOR_EXIT, 3, 0]), Outcome::Exit { status: 3 });
            for bad in [1, 0x7fff_ffff, psci::RESET2_VENDOR | 1] {
                assert_eq!(handle([id, bad, 0, 0]), Outcome::Answer([psci::INVALID_PARAMETERS, bad, 0, 0]));
            }
        }
        // The SMC32 call's cookie is a W register; the reset type always is.
        let big = 0x1_0000_0007;
        assert_eq!(handle([psci::SYSTEM_RESET2_32, psci::RESET2_SPEVISOR_EXIT, big, 0]), Outcome::Exit { status: 7 });
        assert_eq!(handle([psci::SYSTEM_RESET2_64, psci::RESET2_SPEVISOR_EXIT, big, 0]), Outcome::Exit { status: big });
        assert_eq!(handle([psci::SYSTEM_RESET2_64, 1 << 32, 0, 0]), Outcome::Reset, "type bits above 31 ignored");
    }

    #[test]
    fn test_abi_and_unknown_calls() {
        assert_eq!(handle([test::HOST_PING, 41, 7, 8]), Outcome::Answer([0, 42, 7, 8]));
        assert_eq!(handle([test::HOST_PING, u64::MAX, 0, 0]), Outcome::Answer([0, 0, 0, 0]), "wraps, no panic");
        assert_eq!(handle([test::SET_STATUS, 5, 0, 0]), Outcome::Status { status: 5, answer: [0, 5, 0, 0] });
        assert_eq!(handle([test::REPORT, 1, 9, 0]), Outcome::Report { tag: 1, value: 9, answer: [0, 1, 9, 0] });
        for id in [0, 0xC600_FFFF, test::HYP_PING, u64::MAX] {
            assert_eq!(handle([id, 1, 2, 3]), Outcome::Answer([smccc::NOT_SUPPORTED, 1, 2, 3]), "{id:#x}");
        }
    }
}
