//! Device-tree discovery of the platform the hypervisor boots on.
//!
//! Firmware (QEMU, U-Boot `booti`, ...) enters the image at EL2 with the
//! physical address of a flattened device tree (DTB) in `x0`. This crate
//! turns that blob into a typed [`Platform`]: RAM, console UART, GIC frames,
//! timer/PMU/SPE interrupts as GIC INTIDs, PSCI conduit, CPUs.
//!
//! ```no_run
//! # fn boot(x0: usize) -> Result<(), spevisor_dtb::DtbError> {
//! // SAFETY: firmware guarantees a mapped, immutable DTB at x0.
//! let blob = unsafe { spevisor_dtb::from_raw(x0 as *const u8)? };
//! let platform = spevisor_dtb::parse(blob)?;
//! let ram = platform.largest_ram();
//! # let _ = ram; Ok(()) }
//! ```
//!
//! # Why not the `fdt` crate
//!
//! The hypervisor parses the DTB at EL2 before anything can report a crash
//! well, from memory the previous boot stage may have corrupted, so the
//! parser must turn any input into a value or a clear [`DtbError`]. `fdt`
//! 0.1.5 checks the header and `totalsize` but not the structure block: in a
//! probe with 3000 copies of a QEMU `virt` DTB with four random bit flips
//! each, about 87% panicked (`assertion failed: bad node`, `unwrap()` on
//! `None`, "/chosen is required"). A validating FDT reader is small
//! ([`fdt`]: one linear pass over the structure block checks every token,
//! length, string offset and the nesting, after which every accessor still
//! reads through bounds-checked `get`s), so the crate carries its own and
//! has no dependencies.
//!
//! # Guarantees
//!
//! No allocation, no recursion, no panics on any input; every walk moves
//! forward by at least one token, so no input can make it loop. The tests
//! feed it every truncation and thousands of random corruptions of real
//! QEMU DTBs.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod error;
pub mod fdt;
pub mod platform;
pub mod writer;

pub use error::{Block, DtbError, Malformation, NodeName};
pub use fdt::{Fdt, Header, Node, Property, FDT_MAGIC, HEADER_SIZE, MAX_DEPTH};
pub use platform::{
    CpuList, Gic, GicVersion, IntId, Interrupt, Platform, Psci, PsciConduit, PsciVersion, Region, RegionList, Timer,
    Trigger, Uart, UartKind, MAX_CPUS, MAX_MEMORY_REGIONS, MAX_REDIST_REGIONS, MAX_RESERVED_REGIONS,
};

/// Largest `totalsize` [`from_raw`] accepts: the arm64 boot protocol caps
/// the DTB at 2 MiB, and the cap keeps a corrupt header from describing a
/// slice that runs over unmapped memory.
pub const MAX_TOTALSIZE: usize = 2 << 20;

/// Alignment the arm64 boot protocol requires of the DTB's address.
pub const DTB_ALIGN: usize = 8;

/// Parses a device tree blob into a [`Platform`].
///
/// Needs RAM (`/memory`), a GIC and the generic timer; the console, PMU,
/// SPE and PSCI are optional.
pub fn parse(dtb: &[u8]) -> Result<Platform<'_>, DtbError> {
    Platform::parse(dtb)
}

/// Makes a slice of the DTB at `ptr`, sized by its header's `totalsize`,
/// after checking the magic and that `totalsize` is plausible
/// (header size ..= [`MAX_TOTALSIZE`]). The contents are validated by
/// [`parse`], not here.
///
/// # Safety
///
/// `ptr` must be null or point to readable memory holding at least the 8
/// bytes of `magic` and `totalsize`; if those are valid, `totalsize` bytes
/// from `ptr` must be mapped, readable and never written for `'static`.
pub unsafe fn from_raw(ptr: *const u8) -> Result<&'static [u8], DtbError> {
    if ptr.is_null() {
        return Err(DtbError::NullPointer);
    }
    // SAFETY: the caller guarantees the first 8 bytes are readable; the
    // boot protocol aligns the DTB to 8 bytes, but do not rely on it.
    let (magic, totalsize) = unsafe {
        (
            u32::from_be(core::ptr::read_unaligned(ptr.cast::<u32>())),
            u32::from_be(core::ptr::read_unaligned(ptr.add(4).cast::<u32>())),
        )
    };
    if magic != FDT_MAGIC {
        return Err(DtbError::BadMagic { found: magic });
    }
    let size = totalsize as usize;
    if !(HEADER_SIZE..=MAX_TOTALSIZE).contains(&size) || (ptr as usize).checked_add(size).is_none() {
        return Err(DtbError::BadTotalSize { totalsize });
    }
    // SAFETY: the caller guarantees `totalsize` bytes are mapped and
    // immutable for 'static; the range does not wrap (checked above).
    Ok(unsafe { core::slice::from_raw_parts(ptr, size) })
}

/// The DTB's `totalsize`, read with two aligned 32-bit loads only, for code
/// that runs with the MMU off (all memory is Device there, so an unaligned
/// access faults) and must know how much to map before parsing.
///
/// `None` if `addr` is 0 or not 8-byte aligned (the boot protocol requires
/// it), the magic is wrong, or `totalsize` is implausible.
///
/// # Safety
/// If `addr` is non-zero and 8-byte aligned, its first 8 bytes must be readable.
pub unsafe fn early_totalsize(addr: usize) -> Option<usize> {
    if addr == 0 || !addr.is_multiple_of(DTB_ALIGN) {
        return None;
    }
    let p = addr as *const u32;
    // SAFETY: the caller guarantees the first 8 bytes are readable; both
    // loads are 4-byte aligned.
    let (magic, size) = unsafe { (u32::from_be(p.read_volatile()), u32::from_be(p.add(1).read_volatile())) };
    let size = size as usize;
    (magic == FDT_MAGIC && (HEADER_SIZE..=MAX_TOTALSIZE).contains(&size)).then_some(size)
}
