//! spevisor's hypervisor core, running at EL2 (nVHE).
//!
//! Nothing in this crate may call host code: the host kernel's entry point is
//! handed to [`boot::start`] as an address to `eret` to, and the host talks to
//! the hypervisor only through the hypercall ABI in `spevisor-abi`.
//!
//! Layout:
//! - [`arch`]: the only code that executes `msr`/`mrs`/`tlbi`/`at`/`eret`
//!   (aarch64 builds only);
//! - [`boot`]: EL2 bring-up, from the first Rust instruction to the host;
//! - [`mm`]: how RAM is shared out and the page pool (a buddy allocator with
//!   free/total counters; EL2 needs no other heap);
//! - [`hcall`]: the hypercall dispatcher (argument checks are pure and tested
//!   on the development machine), [`service`] the work behind each call;
//! - [`vm`], [`vcpu`]: VMs (VMIDs, donations, stage-2) and vcpu state, exit
//!   decoding and exception injection (pure);
//! - [`switch`]: `vcpu_run`, the ordered world switch, and its step plan;
//! - [`traps`]: what EL2 traps for guests and for the host;
//! - [`debug`]: guests' breakpoints, watchpoints and OS lock (lazy switch);
//! - [`aarch32`]: traps from a guest's AArch32 EL0 (coprocessor accesses,
//!   conditions, IT blocks);
//! - [`pmu`]: the guests' PMUv3 (lazy switch, PMCR_EL0 emulation);
//! - [`spe`]: `save_host_buffers`/`restore_host_buffers` for both backends;
//! - [`console`]: the EL2 console and its logging macros;
//! - [`crash`]: the report printed for any unexpected exception.
#![cfg_attr(not(test), no_std)]

pub mod aarch32;
#[cfg(target_arch = "aarch64")]
pub mod arch;
#[cfg(target_arch = "aarch64")]
pub mod boot;
pub mod console;
#[cfg(target_arch = "aarch64")]
pub mod crash;
pub mod debug;
pub mod hcall;
#[cfg(target_arch = "aarch64")]
pub mod hostbuf_hw;
pub mod idregs;
pub mod mm;
pub mod pmu;
pub mod report;
#[cfg(target_arch = "aarch64")]
pub mod service;
pub mod spe;
pub mod steps;
pub mod switch;
pub mod traps;
pub mod vcpu;
pub mod vm;

/// Panic at EL2: print where, then end the run like a crash.
#[cfg(target_arch = "aarch64")]
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    console::print_crash(format_args!("\n[el2] PANIC: {info}\n"));
    console::print_crash(format_args!("spevisor: status=crash el2=yes reason=panic\n"));
    boot::shutdown(crash::CRASH_EXIT_STATUS)
}
