//! Mode `dtb-check`: reads the device tree the host wrote into the top of
//! RAM (`spevisor_abi::guest::machine::DTB_SLOT`, `host/src/guest_dtb.rs`)
//! with the parser the hypervisor boots with, and checks that it describes
//! the machine this guest runs on. Prints the command line it found (the
//! QEMU test compares it with the host's).

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
}

/// Checks the tree of a guest with `ram_size` bytes of RAM; 0 if it is right.
pub fn check(ram_size: u64) -> u64 {
    let ipa = machine::dtb_ipa(ram_size);
    // SAFETY: the slot is guest RAM, identity mapped Normal by mmu.rs; the
    // header is checked before the rest is read, within MAX_TOTALSIZE.
    let parsed = unsafe { spevisor_dtb::from_raw(ipa as *const u8) }.and_then(spevisor_dtb::parse);
    let p = match parsed {
        Ok(p) => p,
        Err(e) => {
            println!("dtb: no valid device tree at {ipa:#x}: {e}");
            return bad::PARSE;
        }
    };
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
    expect(
        p.gic.version == GicVersion::V3
            && p.gic.distributor.base == machine::GICD_IPA
            && p.gic.redistributors.as_slice() == [Region { base: machine::GICR_IPA, size: machine::GICR_SIZE }],
        bad::GIC,
        "the GIC is not the guest machine's GICv3",
    );
    expect(p.timer.virt.intid == IntId(27), bad::TIMER, "the virtual timer is not INTID 27");
    expect(p.psci.is_some_and(|c| c.conduit == PsciConduit::Hvc), bad::PSCI, "PSCI is not over hvc");
    expect(p.bootargs.is_some(), bad::BOOTARGS, "no /chosen/bootargs");
    println!("dtb: at {ipa:#x}, model {:?}, bootargs \"{}\"", p.model.unwrap_or(""), p.bootargs.unwrap_or(""));
    failed
}
