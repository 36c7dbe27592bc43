//! Arm PrimeCell UART (PL011).
//!
//! - [`Pl011`]: a polling transmit-only driver for the hypervisor's and the
//!   host's console (no interrupts, no locking: callers serialise).
//! - [`model`]: the emulated PL011 the host shows to guests (pure logic).
//! - [`ns16550`]: the same transmit-only driver for 8250/16550 UARTs, and
//!   [`console`]: whichever of the two the device tree names.
#![cfg_attr(not(test), no_std)]

pub mod console;
pub mod model;
pub mod ns16550;

/// Register offsets (PL011 TRM, table 3-1).
pub mod reg {
    /// Data register.
    pub const DR: u64 = 0x000;
    /// Receive status / error clear.
    pub const RSR_ECR: u64 = 0x004;
    /// Flag register.
    pub const FR: u64 = 0x018;
    /// Integer baud rate divisor.
    pub const IBRD: u64 = 0x024;
    /// Fractional baud rate divisor.
    pub const FBRD: u64 = 0x028;
    /// Line control.
    pub const LCR_H: u64 = 0x02c;
    /// Control.
    pub const CR: u64 = 0x030;
    /// Interrupt FIFO level select.
    pub const IFLS: u64 = 0x034;
    /// Interrupt mask set/clear.
    pub const IMSC: u64 = 0x038;
    /// Raw interrupt status.
    pub const RIS: u64 = 0x03c;
    /// Masked interrupt status.
    pub const MIS: u64 = 0x040;
    /// Interrupt clear.
    pub const ICR: u64 = 0x044;
    /// DMA control.
    pub const DMACR: u64 = 0x048;
    /// First of the peripheral/PrimeCell ID registers.
    pub const PERIPH_ID0: u64 = 0xfe0;
    /// Size of the register frame.
    pub const FRAME_SIZE: u64 = 0x1000;
}

/// Flag register bits.
pub mod fr {
    /// Transmit FIFO full.
    pub const TXFF: u32 = 1 << 5;
    /// Receive FIFO empty.
    pub const RXFE: u32 = 1 << 4;
    /// Transmit FIFO empty.
    pub const TXFE: u32 = 1 << 7;
    /// UART busy transmitting.
    pub const BUSY: u32 = 1 << 3;
}

/// A PL011 reached at `base` through a device mapping.
pub struct Pl011 {
    base: usize,
}

impl Pl011 {
    /// # Safety
    /// `base` must be the virtual address of a PL011 register frame mapped as
    /// device memory for as long as the driver is used, and no other code may
    /// program the UART concurrently.
    pub const unsafe fn new(base: usize) -> Self {
        Self { base }
    }

    pub fn base(&self) -> usize {
        self.base
    }

    /// Sends one byte, waiting while the transmit FIFO is full.
    pub fn put(&mut self, byte: u8) {
        let fr = (self.base + reg::FR as usize) as *const u32;
        let dr = (self.base + reg::DR as usize) as *mut u32;
        // SAFETY: `new`'s contract: FR and DR are device registers of a mapped
        // PL011; 32-bit volatile accesses are what the device expects.
        unsafe {
            while fr.read_volatile() & fr::TXFF != 0 {
                core::hint::spin_loop();
            }
            dr.write_volatile(byte as u32);
        }
    }
}

impl core::fmt::Write for Pl011 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
        Ok(())
    }
}
