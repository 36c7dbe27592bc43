//! Polling output through the guest machine's PL011 (emulated by the host).
//!
//! Every access is one 32-bit `ldr`/`str` with a plain base register, so a
//! trapped access always carries a valid syndrome (no writeback, no pair) for
//! the hypervisor to decode.

use core::arch::asm;
use spevisor_pl011::{fr, reg};

/// IPA (and, identity-mapped, VA) of the PL011 register frame.
pub const PL011_BASE: u64 = 0x0900_0000;

/// Reads the 32-bit register at `offset` in the PL011 frame.
pub fn read(offset: u64) -> u32 {
    let addr = PL011_BASE + offset;
    let value: u32;
    // SAFETY: the PL011 frame is mapped Device-nGnRE by the guest's stage 1
    // (mmu.rs, entry 0) before Rust runs; `offset` is a register offset below
    // the 4 KiB frame size, 4-byte aligned. A load has no side effects
    // besides the device's own.
    unsafe {
        asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) value, options(nostack, preserves_flags));
    }
    value
}

/// Writes the 32-bit register at `offset` in the PL011 frame.
pub fn write(offset: u64, value: u32) {
    let addr = PL011_BASE + offset;
    // SAFETY: as in `read`; the store changes only device state.
    unsafe {
        asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) value, options(nostack, preserves_flags));
    }
}

/// FR reads a waiting guest makes before it gives up on the transmitter.
const IDLE_POLLS: u32 = 1000;

/// Waits until the transmitter is idle (FR.BUSY clear: the FIFO sent all
/// it held); the flags it last read, BUSY still set if it never became idle.
pub fn wait_idle() -> u32 {
    let mut flags = read(reg::FR);
    for _ in 0..IDLE_POLLS {
        if flags & fr::BUSY == 0 {
            break;
        }
        core::hint::spin_loop();
        flags = read(reg::FR);
    }
    flags
}

/// Sends one byte, waiting while the transmit FIFO is full.
pub fn put(byte: u8) {
    while read(reg::FR) & fr::TXFF != 0 {
        core::hint::spin_loop();
    }
    write(reg::DR, byte.into());
}

/// `core::fmt` sink: '\n' goes out as "\r\n".
pub struct Console;

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                put(b'\r');
            }
            put(b);
        }
        Ok(())
    }
}
