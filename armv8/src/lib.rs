//! Pure AArch64 architecture definitions shared by the EL2 hypervisor and
//! the EL1 host kernel: ESR/ISS decoding ([`esr`]), exception injection
//! into EL1 guests ([`inject`]), system-register encodings and trap classes
//! ([`sysreg`]) and PSTATE/SPSR bits ([`pstate`]).
//!
//! Nothing here touches a register; the values come from (and go to) the
//! thin `mrs`/`msr` shims of the callers, so everything is host-testable.
//! Facts follow the Arm Architecture Reference Manual (DDI 0487).
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod esr;
pub mod inject;
pub mod pstate;
pub mod sysreg;

pub use esr::{
    Cp32Iss, Cp64Iss, DataAbortIss, Direction, Esr, ExceptionClass, FaultStatus, HvcIss, InstrAbortIss, LdcIss, SmcIss,
    SysRegIss, TrapCondition, WfxIss, WfxKind,
};
pub use inject::{GuestContext, GuestFeatures, InjectError, Injection, InstrLen, Source};
pub use sysreg::{classify, SysRegClass, SysRegEnc};
