//! The host kernel, running at EL1 under spevisor's nVHE hypervisor.
//!
//! It owns the console, VM management, exit handling and device emulation,
//! and profiles itself with SPE. It reaches EL2 only through the hypercall
//! ABI ([`hyp`]); nothing here calls into the hypervisor crate.
#![cfg_attr(not(test), no_std)]

#[cfg(target_arch = "aarch64")]
mod arch;
#[cfg(target_arch = "aarch64")]
mod bench;
pub mod cmdline;
#[cfg(target_arch = "aarch64")]
mod console;
#[cfg(target_arch = "aarch64")]
mod debug_scenario;
pub mod ending;
#[cfg(target_arch = "aarch64")]
mod gic;
#[cfg(target_arch = "aarch64")]
mod gic_v2;
pub mod guest_dtb;
pub mod guestcall;
#[cfg(target_arch = "aarch64")]
mod hostile_host;
#[cfg(target_arch = "aarch64")]
mod hostile_spe;
#[cfg(target_arch = "aarch64")]
mod hostile_suite;
#[cfg(target_arch = "aarch64")]
pub mod hyp;
#[cfg(target_arch = "aarch64")]
mod irq;
#[cfg(target_arch = "aarch64")]
mod kmain;
pub mod linux_image;
pub mod mm;
#[cfg(target_arch = "aarch64")]
mod pmu;
#[cfg(target_arch = "aarch64")]
mod profiler;
pub mod ptimer;
#[cfg(target_arch = "aarch64")]
mod scenarios;
#[cfg(target_arch = "aarch64")]
mod trace;
pub mod vgic;
#[cfg(target_arch = "aarch64")]
mod vmm;

/// What EL2 hands the host in x0..x2.
pub struct BootArgs {
    /// Physical address of the DTB.
    pub dtb: u64,
    /// The host's memory: `[mem_start, mem_end)`.
    pub mem_start: u64,
    pub mem_end: u64,
    /// Start of `spevisor_abi::HOST_BOOT_TABLE_PAGES` pages of host memory
    /// clear of the DTB and every reservation (for the first page tables).
    pub boot_tables: u64,
}

#[cfg(target_arch = "aarch64")]
pub use kmain::{panic, start};
