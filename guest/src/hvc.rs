//! Calls to the hypervisor (`hvc #0`, SMCCC register convention): PSCI,
//! SMCCC architecture calls and spevisor's guest test ABI.

use core::arch::asm;
use spevisor_abi::guest::{psci, smccc, test};

/// `hvc #0` with function ID `id` and arguments x1..x3; returns x0..x3.
///
/// x4..x17 are declared clobbered: SMCCC 1.0 callees may use them, and the
/// guest must not depend on what an unfinished hypervisor preserves.
pub fn call(id: u64, a1: u64, a2: u64, a3: u64) -> [u64; 4] {
    let (r0, r1, r2, r3);
    // SAFETY: the hypervisor (or the host behind it) answers in x0..x3 and
    // returns to the next instruction; it does not touch guest memory the
    // compiler knows about, and the stack is not used.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") id => r0,
            inout("x1") a1 => r1,
            inout("x2") a2 => r2,
            inout("x3") a3 => r3,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack),
        );
    }
    [r0, r1, r2, r3]
}

pub fn psci_version() -> u64 {
    call(psci::VERSION, 0, 0, 0)[0]
}

pub fn psci_features(function: u64) -> u64 {
    call(psci::FEATURES, function, 0, 0)[0]
}

pub fn smccc_version() -> u64 {
    call(smccc::VERSION, 0, 0, 0)[0]
}

/// HOST_PING: (x0, x1); the host answers x1 = value + 1.
pub fn host_ping(value: u64) -> (u64, u64) {
    let r = call(test::HOST_PING, value, 0, 0);
    (r[0], r[1])
}

/// HYP_PING: (x0, x1); EL2 answers x1 = value + 1, or x0 = NOT_SUPPORTED.
pub fn hyp_ping(value: u64) -> (u64, u64) {
    let r = call(test::HYP_PING, value, 0, 0);
    (r[0], r[1])
}

pub fn set_status(status: u64) {
    call(test::SET_STATUS, status, 0, 0);
}

pub fn report(tag: u64, value: u64) {
    call(test::REPORT, tag, value, 0);
}

/// PSCI SYSTEM_OFF. Waits forever should the call ever return.
pub fn system_off() -> ! {
    call(psci::SYSTEM_OFF, 0, 0, 0);
    crate::park()
}
