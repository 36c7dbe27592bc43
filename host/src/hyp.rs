//! Typed calls into the hypervisor (the host side of `spevisor-abi`).

use crate::arch::hvc;
use spevisor_abi::{Call, InfoItem, Status, TestFault};

/// A refused or malformed answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HypError {
    /// The hypervisor refused with this status.
    Refused(Status),
    /// x0 held a value the ABI does not define.
    Unknown(u64),
}

impl core::fmt::Display for HypError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Refused(s) => write!(f, "{s}"),
            Self::Unknown(x) => write!(f, "undefined status {:#x}", x),
        }
    }
}

/// Issues a raw call; `Ok(x1..x7)` on SUCCESS.
pub fn call_raw(id: u64, args: [u64; 7]) -> Result<[u64; 7], HypError> {
    let r = hvc([id, args[0], args[1], args[2], args[3], args[4], args[5], args[6]]);
    if r[0] == Status::Success.to_reg() {
        Ok([r[1], r[2], r[3], r[4], r[5], r[6], r[7]])
    } else {
        Err(refusal(r[0]))
    }
}

/// What a status other than SUCCESS means (off the hot path).
#[cold]
fn refusal(x0: u64) -> HypError {
    match Status::from_reg(x0) {
        Some(s) => HypError::Refused(s),
        None => HypError::Unknown(x0),
    }
}

pub fn call(c: Call, args: [u64; 7]) -> Result<[u64; 7], HypError> {
    call_raw(c.id(), args)
}

pub fn version() -> Result<u64, HypError> {
    call(Call::Version, [0; 7]).map(|r| r[0])
}

pub fn info(item: InfoItem) -> Result<u64, HypError> {
    call(Call::Info, [item as u64, 0, 0, 0, 0, 0, 0]).map(|r| r[0])
}

/// Round trip: returns (the three complemented values, CurrentEL seen at EL2).
pub fn ping(a: u64, b: u64, c: u64) -> Result<([u64; 3], u64), HypError> {
    call(Call::Ping, [a, b, c, 0, 0, 0, 0]).map(|r| ([r[0], r[1], r[2]], r[3]))
}

pub fn shutdown(status: u64) -> ! {
    let _ = call(Call::Shutdown, [status, 0, 0, 0, 0, 0, 0]);
    // Only reached if the hypervisor refused: nothing else can stop the machine.
    loop {
        aarch64_cpu::asm::wfe();
    }
}

pub fn test_fault(f: TestFault) -> Result<(), HypError> {
    call(Call::TestFault, [f as u64, 0, 0, 0, 0, 0, 0]).map(|_| ())
}
