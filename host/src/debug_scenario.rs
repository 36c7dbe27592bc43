//! `spevisor.scenario=debug`: guests use hardware breakpoints, watchpoints,
//! single step and the OS lock (guest modes 40..=44, guest/src/debug.rs)
//! while the host keeps values of its own in the same registers, which the
//! hypervisor must give back exactly (hyp/src/debug.rs).
//!
//! The host runs at EL1 with MDCR_EL2.TDA clear, so it reads and writes its
//! debug registers directly. It writes a pattern into breakpoint 0 and the
//! last breakpoint, watchpoint 0 and the last watchpoint (value and control,
//! the controls disabled) and MDSCR_EL1.MDE, reads them back (what the CPU
//! keeps of the pattern), runs the debug guests, and reads them again:
//! `host_same=true` only if nothing changed.

use crate::hprintln;
use crate::scenarios::{ending_name, finish, make, Totals};
use crate::vmm::run_alternately;
use core::arch::asm;

/// Guest modes (guest/src/debug.rs).
mod mode {
    pub const BREAKPOINT: u64 = 40;
    pub const WATCHPOINT: u64 = 41;
    pub const STEP: u64 = 42;
    pub const OS_LOCK: u64 = 43;
    pub const REGS: u64 = 44;
}

/// MDSCR_EL1.MDE: breakpoints and watchpoints enabled for the host (every
/// control below stays disabled, E = 0).
const MDSCR_MDE: u64 = 1 << 15;
/// The host's pattern: an address (bits 47:2) and controls with E = 0 and
/// BAS all ones.
const HOST_BVR: u64 = 0x0000_1234_5678_9abc;
const HOST_BCR: u64 = (0b1111 << 5) | (0b11 << 1);
const HOST_WVR: u64 = 0x0000_0fed_cba9_8760;
const HOST_WCR: u64 = (0xff << 5) | (0b11 << 3) | (0b10 << 1);
const HOST_BVR_LAST: u64 = 0x0000_7654_3210_fed8;
const HOST_WVR_LAST: u64 = 0x0000_0123_4567_89a8;
/// ID_AA64DFR0_EL1.BRPs and WRPs.
const DFR0_BRPS_SHIFT: u64 = 12;
const DFR0_WRPS_SHIFT: u64 = 20;
const FIELD_MASK: u64 = 0xf;

/// The host registers the scenario watches, in print order.
const WATCHED: usize = 9;

macro_rules! sysreg_rw {
    ($($name:literal),*) => {
        /// Writes register `i` of the list.
        fn write_reg(i: usize, v: u64) {
            let mut k = 0;
            $(
                if i == k {
                    // SAFETY: a debug register of the host's own (MDCR_EL2.TDA is
                    // clear while the host runs); every control written keeps E = 0.
                    unsafe { asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) v, options(nostack)) };
                }
                k += 1;
            )*
            let _ = k;
        }
        /// Reads register `i` of the list.
        fn read_reg(i: usize) -> u64 {
            let mut k = 0;
            let mut v = 0;
            $(
                if i == k {
                    // SAFETY: reads a debug register of the host's own.
                    unsafe { asm!(concat!("mrs {}, ", $name), out(reg) v, options(nostack)) };
                }
                k += 1;
            )*
            let _ = k;
            v
        }
    };
}

// 0..=3: breakpoint 0 and watchpoint 0; 4..=7: the last of each (QEMU's
// max CPU has 6 and 4: BVR5/BCR5/WVR3/WCR3); 8: MDSCR_EL1.
sysreg_rw!(
    "dbgbvr0_el1",
    "dbgbcr0_el1",
    "dbgwvr0_el1",
    "dbgwcr0_el1",
    "dbgbvr5_el1",
    "dbgbcr5_el1",
    "dbgwvr3_el1",
    "dbgwcr3_el1",
    "mdscr_el1"
);

/// The registers watched: which exist on this CPU.
fn present(i: usize, brps: u64, wrps: u64) -> bool {
    match i {
        4 | 5 => brps >= 6,
        6 | 7 => wrps >= 4,
        _ => true,
    }
}

fn snapshot(brps: u64, wrps: u64) -> [u64; WATCHED] {
    core::array::from_fn(|i| if present(i, brps, wrps) { read_reg(i) } else { 0 })
}

pub fn run(t: &mut Totals) {
    let dfr0: u64;
    // SAFETY: an ID register read.
    unsafe { asm!("mrs {}, id_aa64dfr0_el1", out(reg) dfr0, options(nomem, nostack)) };
    let brps = ((dfr0 >> DFR0_BRPS_SHIFT) & FIELD_MASK) + 1;
    let wrps = ((dfr0 >> DFR0_WRPS_SHIFT) & FIELD_MASK) + 1;
    let pattern = [HOST_BVR, HOST_BCR, HOST_WVR, HOST_WCR, HOST_BVR_LAST, HOST_BCR, HOST_WVR_LAST, HOST_WCR, MDSCR_MDE];
    let saved = snapshot(brps, wrps);
    for (i, v) in pattern.iter().enumerate() {
        if present(i, brps, wrps) {
            write_reg(i, *v);
        }
    }
    let before = snapshot(brps, wrps);

    let mut statuses = [-1i64; 4];
    for (slot, m) in statuses.iter_mut().zip([mode::BREAKPOINT, mode::WATCHPOINT, mode::STEP, mode::OS_LOCK]) {
        let Some(mut vm) = make("debug", [m, 0, 0]) else { continue };
        vm.run();
        *slot = vm.status.map_or(-1, |s| s as i64);
        t.guest_status = vm.status;
        finish(vm, t);
    }
    const PATTERN_A: u64 = 0x0123_4567_89ab_cdef;
    const PATTERN_B: u64 = 0xfedc_ba98_7654_3210;
    let (Some(mut a), Some(mut b)) =
        (make("dbg-a", [mode::REGS, 0, PATTERN_A]), make("dbg-b", [mode::REGS, 0, PATTERN_B]))
    else {
        return;
    };
    run_alternately(&mut a, &mut b);
    let after = snapshot(brps, wrps);
    hprintln!(
        "debug: brps={} wrps={} breakpoint={} watchpoint={} step={} os_lock={} regs_a={} regs_b={} regs_a_ending={} regs_b_ending={} host_same={}",
        brps,
        wrps,
        statuses[0],
        statuses[1],
        statuses[2],
        statuses[3],
        a.status.map_or(-1, |s| s as i64),
        b.status.map_or(-1, |s| s as i64),
        ending_name(a.ending),
        ending_name(b.ending),
        before == after && before != [0; WATCHED]
    );
    hprintln!("debug-host: before={:x?} after={:x?}", before, after);
    finish(a, t);
    finish(b, t);
    // The host's own values back as they were at boot.
    for (i, v) in saved.iter().enumerate() {
        if present(i, brps, wrps) {
            write_reg(i, *v);
        }
    }
}
