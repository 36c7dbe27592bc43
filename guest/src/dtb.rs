//! Mode `dtb-check`: reads the device tree the host wrote into the top of
//! RAM (`spevisor_abi::guest::machine::DTB_SLOT`, `host/src/guest_dtb.rs`)
//! with the parser the hypervisor boots with, and checks that it describes
//! the machine this guest runs on. Prints the command line it found (the
//! QEMU test compares it with the host's).
//!
//! Entered by the arm64 boot protocol instead (x0 = the tree's IPA, the
//! guest built to run at RAM + 0x80000 as a raw `cargo xtask run --guest`
//! payload), [`boot_protocol`] checks the same tree found through x0, and
//! prints where it runs, the cpus and a checksum of the initrd the tree
//! names, for the QEMU test to compare with what it packed; then it ends as
//! its command line's `spevisor.end=` says (`endings.rs`).

use crate::mmu::RAM_BASE;
use core::fmt::Write;
use spevisor_abi::guest::machine;
use spevisor_dtb::{GicVersion, IntId, PsciConduit, Region, UartKind};

/// Guest mode number (host/src/scenarios.rs, `spevisor.guest_mode=13`).
pub const MODE_DTB_CHECK: u64 = 13;

/// One status bit per failed check.
mod bad {
    pub const PARSE: u64 = 1 << 0;
    pub const RAM: u64 = 1 << 1;
    pub const UART: u64 = 1 << 2;
    pub const GIC: u64 = 1 << 3;
    pub const TIMER: u64 = 1 << 4;
    pub const PSCI: u64 = 1 << 5;
    pub const BOOTARGS: u64 = 1 << 6;
    pub const CPUS: u64 = 1 << 7;
    pub const INITRD: u64 = 1 << 8;
}

/// Parses the tree at `ipa`.
fn read_tree(ipa: u64) -> Result<spevisor_dtb::Platform<'static>, u64> {
    if !(RAM_BASE..RAM_BASE + crate::mmu::RAM_MAPPED).contains(&ipa) {
        println!("dtb: {ipa:#x} is outside this guest's RAM map");
        return Err(bad::PARSE);
    }
    // SAFETY: `ipa` is in guest RAM, identity mapped Normal by mmu.rs and
    // never written; the header is checked before the rest is read, within
    // MAX_TOTALSIZE.
    let parsed = unsafe { spevisor_dtb::from_raw(ipa as *const u8) }.and_then(spevisor_dtb::parse);
    parsed.map_err(|e| {
        println!("dtb: no valid device tree at {ipa:#x}: {e}");
        bad::PARSE
    })
}

/// The GIC version the tree at `ipa` names (`None`: no valid tree).
pub fn gic_version(ipa: u64) -> Option<GicVersion> {
    read_tree(ipa).ok().map(|p| p.gic.version)
}

/// Checks the tree of a guest with `ram_size` bytes of RAM; 0 if it is right.
pub fn check(ram_size: u64) -> u64 {
    let ipa = machine::dtb_ipa(ram_size);
    match read_tree(ipa) {
        Ok(p) => check_tree(&p, ipa, ram_size),
        Err(bits) => bits,
    }
}

/// 64-bit FNV-1a: the initrd's checksum the QEMU test recomputes.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |h, b| (h ^ *b as u64).wrapping_mul(PRIME))
}

/// The arm64 boot protocol's entry: x0 = the device tree. Checks it as
/// [`check`] does (RAM size from the tree's memory node, the tree at the
/// top of it), then prints the load address, the cpus and the initrd.
pub fn boot_protocol(dtb_ipa: u64) -> u64 {
    let entry: u64;
    // SAFETY: computes _start's address PC-relatively (where the guest was
    // actually loaded); no memory access.
    unsafe { core::arch::asm!("adr {}, _start", out(reg) entry, options(nomem, nostack, preserves_flags)) };
    println!("guest: entered at {entry:#x} by the boot protocol, x0 = {dtb_ipa:#x}");
    let p = match read_tree(dtb_ipa) {
        Ok(p) => p,
        Err(bits) => return bits,
    };
    let ram_size = p.ram().first().map_or(0, |r| r.size);
    let mut failed = check_tree(&p, dtb_ipa, ram_size);
    if dtb_ipa != machine::dtb_ipa(ram_size) {
        println!("dtb: FAIL the tree is not at the top of RAM ({:#x})", machine::dtb_ipa(ram_size));
        failed |= bad::RAM;
    }
    let mpidrs = p.cpus.mpidrs();
    let in_order = mpidrs.iter().enumerate().all(|(i, m)| *m == i as u64);
    if !in_order {
        println!("dtb: FAIL cpu reg values are not 0..{}", mpidrs.len());
        failed |= bad::CPUS;
    }
    match p.initrd {
        Some(r) if r.base >= RAM_BASE && r.base.saturating_add(r.size) <= dtb_ipa => {
            // SAFETY: inside guest RAM below the tree (checked just above),
            // identity mapped Normal, not written by anyone while read.
            let bytes = unsafe { core::slice::from_raw_parts(r.base as *const u8, r.size as usize) };
            println!(
                "dtb: cpus={} initrd={:#x}..{:#x} initrd_fnv1a64={:#x}",
                mpidrs.len(),
                r.base,
                r.base + r.size,
                fnv1a64(bytes)
            );
        }
        Some(r) => {
            println!("dtb: FAIL initrd {:#x}+{:#x} is not in RAM below the tree", r.base, r.size);
            failed |= bad::INITRD;
        }
        None => println!("dtb: cpus={} initrd=none", mpidrs.len()),
    }
    crate::endings::finish(p.bootargs.unwrap_or(""), failed)
}

/// The checks common to both entries.
fn check_tree(p: &spevisor_dtb::Platform, ipa: u64, ram_size: u64) -> u64 {
    let mut failed = 0;
    let mut expect = |ok: bool, bit: u64, what: &str| {
        if !ok {
            println!("dtb: FAIL {what}");
            failed |= bit;
        }
    };
    expect(p.ram() == [Region { base: RAM_BASE, size: ram_size }], bad::RAM, "memory is not this guest's RAM");
    expect(
        p.console.is_some_and(|u| u.kind == UartKind::Pl011 && u.region.base == crate::uart::PL011_BASE),
        bad::UART,
        "stdout-path is not the PL011",
    );
    let v3 = p.gic.version == GicVersion::V3
        && p.gic.redistributors.as_slice()
            == [Region { base: machine::GICR_IPA, size: machine::gicr_size(p.cpus.len() as u32) }];
    // On a GICv2 host: the distributor and the CPU interface (GICV).
    let v2 = p.gic.version == GicVersion::V2
        && p.gic.cpu_interface == Some(Region { base: machine::GICC_IPA, size: machine::GICC_SIZE });
    expect(
        (v3 || v2) && p.gic.distributor.base == machine::GICD_IPA,
        bad::GIC,
        "the GIC is not the guest machine's GICv3 or GICv2",
    );
    expect(p.timer.virt.intid == IntId(27), bad::TIMER, "the virtual timer is not INTID 27");
    expect(p.psci.is_some_and(|c| c.conduit == PsciConduit::Hvc), bad::PSCI, "PSCI is not over hvc");
    expect(p.bootargs.is_some(), bad::BOOTARGS, "no /chosen/bootargs");
    println!("dtb: at {ipa:#x}, model {:?}, bootargs \"{}\"", p.model.unwrap_or(""), p.bootargs.unwrap_or(""));
    failed
}
