//! 8250/16550-compatible UARTs (`ns16550a`, `ns16550`, `snps,dw-apb-uart`):
//! a polling transmit-only driver for the consoles, like [`crate::Pl011`].
//!
//! Registers are 8 bits wide, `1 << reg_shift` bytes apart, and accessed
//! with `reg_io_width`-byte loads and stores (the device tree's
//! `reg-shift`/`reg-io-width`: many SoCs' DesignWare UARTs need 2 and 4).
//! The firmware has set the baud rate and line format; the driver only
//! makes sure the divisor latch is closed (so offset 0 is THR, not DLL),
//! then, per byte, waits for LSR.THRE and writes THR. Register layout and
//! bits from the National Semiconductor PC16550D data sheet.

/// Register indices (multiplied by the stride for an offset).
pub mod reg {
    /// Transmit holding register (write, DLAB = 0).
    pub const THR: u64 = 0;
    /// Line control register.
    pub const LCR: u64 = 3;
    /// Line status register.
    pub const LSR: u64 = 5;
    /// The highest register the driver touches.
    pub const LAST_USED: u64 = LSR;
}

/// LCR bits.
pub mod lcr {
    /// Divisor latch access: offsets 0 and 1 are DLL/DLM while set.
    pub const DLAB: u32 = 1 << 7;
}

/// LSR bits.
pub mod lsr {
    /// Transmit holding register empty: THR may be written.
    pub const THRE: u32 = 1 << 5;
}

/// Access width of the registers (`reg-io-width`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoWidth {
    /// 8-bit loads and stores (the default).
    Byte,
    /// 32-bit loads and stores.
    Word,
}

impl IoWidth {
    /// From `reg-io-width` in bytes: 1 or 4 (2 and 8 are not supported).
    pub const fn from_bytes(n: u32) -> Option<Self> {
        match n {
            1 => Some(IoWidth::Byte),
            4 => Some(IoWidth::Word),
            _ => None,
        }
    }

    pub const fn bytes(self) -> u64 {
        match self {
            IoWidth::Byte => 1,
            IoWidth::Word => 4,
        }
    }
}

/// The largest `reg-shift` accepted (stride 16 bytes; boards use 0 or 2).
pub const MAX_REG_SHIFT: u32 = 4;

/// Register access: MMIO on the machine, a model in tests.
pub trait Bus {
    /// Reads the register at byte offset `off` with `width`.
    fn read(&mut self, off: u64, width: IoWidth) -> u32;
    /// Writes the register at byte offset `off` with `width`.
    fn write(&mut self, off: u64, width: IoWidth, value: u32);
}

/// Device memory at a virtual address.
pub struct Mmio {
    base: usize,
}

impl Mmio {
    /// # Safety
    /// `base` must be the virtual address of the UART's register frame,
    /// mapped as device memory for as long as it is used, covering every
    /// register the driver touches (`Ns16550::span`), and no other code may
    /// program the UART concurrently.
    pub const unsafe fn new(base: usize) -> Self {
        Self { base }
    }
}

impl Bus for Mmio {
    fn read(&mut self, off: u64, width: IoWidth) -> u32 {
        let a = self.base + off as usize;
        // SAFETY: `new`'s contract: a mapped device register of the
        // frame; the access width is the one the device tree asks for.
        unsafe {
            match width {
                IoWidth::Byte => u32::from((a as *const u8).read_volatile()),
                IoWidth::Word => (a as *const u32).read_volatile(),
            }
        }
    }
    fn write(&mut self, off: u64, width: IoWidth, value: u32) {
        let a = self.base + off as usize;
        // SAFETY: as in `read`.
        unsafe {
            match width {
                IoWidth::Byte => (a as *mut u8).write_volatile(value as u8),
                IoWidth::Word => (a as *mut u32).write_volatile(value),
            }
        }
    }
}

/// A 16550 on `B`.
pub struct Ns16550<B: Bus> {
    bus: B,
    reg_shift: u32,
    width: IoWidth,
}

/// Why a 16550's description cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ns16550Error {
    /// `reg-io-width` other than 1 or 4.
    IoWidth(u32),
    /// `reg-shift` above [`MAX_REG_SHIFT`].
    RegShift(u32),
    /// A word access on registers closer than 4 bytes apart.
    WordOnByteStride,
}

impl core::fmt::Display for Ns16550Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::IoWidth(w) => write!(f, "reg-io-width {w} is not supported (1 or 4)"),
            Self::RegShift(s) => write!(f, "reg-shift {s} is too large (at most {MAX_REG_SHIFT})"),
            Self::WordOnByteStride => f.write_str("reg-io-width 4 needs reg-shift 2 or more"),
        }
    }
}

/// Checks `reg-shift` and `reg-io-width`.
pub fn check(reg_shift: u32, reg_io_width: u32) -> Result<IoWidth, Ns16550Error> {
    let width = IoWidth::from_bytes(reg_io_width).ok_or(Ns16550Error::IoWidth(reg_io_width))?;
    if reg_shift > MAX_REG_SHIFT {
        return Err(Ns16550Error::RegShift(reg_shift));
    }
    if (1u64 << reg_shift) < width.bytes() {
        return Err(Ns16550Error::WordOnByteStride);
    }
    Ok(width)
}

/// Bytes from the frame's base to the end of the last register used.
pub fn span(reg_shift: u32, width: IoWidth) -> u64 {
    (reg::LAST_USED << reg_shift) + width.bytes()
}

impl<B: Bus> Ns16550<B> {
    /// Takes the UART over: closes the divisor latch if the firmware left
    /// it open (the line settings stay the firmware's).
    pub fn new(mut bus: B, reg_shift: u32, width: IoWidth) -> Self {
        let lcr_off = reg::LCR << reg_shift;
        let l = bus.read(lcr_off, width);
        if l & lcr::DLAB != 0 {
            bus.write(lcr_off, width, l & !lcr::DLAB);
        }
        Self { bus, reg_shift, width }
    }

    /// Sends one byte, waiting until THR is empty.
    pub fn put(&mut self, byte: u8) {
        while self.bus.read(reg::LSR << self.reg_shift, self.width) & lsr::THRE == 0 {
            core::hint::spin_loop();
        }
        self.bus.write(reg::THR << self.reg_shift, self.width, u32::from(byte));
    }

    /// The bus (tests read the model back).
    pub fn bus(&self) -> &B {
        &self.bus
    }
}

impl<B: Bus> core::fmt::Write for Ns16550<B> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    /// A 16550 transmitter: THR accepted only while THRE, which drops for
    /// `busy_polls` LSR reads after each byte; DLL aliases THR while DLAB.
    /// Every access is checked against the stride and width given.
    struct Model {
        shift: u32,
        width: IoWidth,
        lcr: u32,
        busy_polls: u32,
        busy: u32,
        sent: Vec<u8>,
        dll_writes: u32,
        overruns: u32,
    }

    impl Model {
        fn new(shift: u32, width: IoWidth, lcr: u32) -> Self {
            Self { shift, width, lcr, busy_polls: 3, busy: 0, sent: vec![], dll_writes: 0, overruns: 0 }
        }
        fn index(&self, off: u64, width: IoWidth) -> u64 {
            assert_eq!(width, self.width, "access width");
            assert_eq!(off % (1 << self.shift), 0, "offset {off:#x} off the stride");
            off >> self.shift
        }
    }

    impl Bus for Model {
        fn read(&mut self, off: u64, width: IoWidth) -> u32 {
            match self.index(off, width) {
                reg::LCR => self.lcr,
                reg::LSR if self.busy > 0 => {
                    self.busy -= 1;
                    0
                }
                reg::LSR => lsr::THRE,
                i => panic!("driver read register {i}"),
            }
        }
        fn write(&mut self, off: u64, width: IoWidth, value: u32) {
            match self.index(off, width) {
                reg::THR if self.lcr & lcr::DLAB != 0 => self.dll_writes += 1,
                reg::THR => {
                    if self.busy > 0 {
                        self.overruns += 1;
                    }
                    self.sent.push(value as u8);
                    self.busy = self.busy_polls;
                }
                reg::LCR => self.lcr = value,
                i => panic!("driver wrote register {i}"),
            }
        }
    }

    #[test]
    fn bytes_go_out_through_thr_only_when_thre_with_the_stride_and_width() {
        for (shift, width) in [(0, IoWidth::Byte), (2, IoWidth::Word), (2, IoWidth::Byte)] {
            let mut u = Ns16550::new(Model::new(shift, width, 0x03), shift, width);
            u.write_str("ok\n").unwrap();
            let m = u.bus();
            assert_eq!(m.sent, b"ok\r\n", "shift {shift}");
            assert_eq!(m.overruns, 0, "THR written while not empty (shift {shift})");
            assert_eq!(m.lcr, 0x03, "line settings kept");
        }
    }

    #[test]
    fn an_open_divisor_latch_is_closed_before_writing() {
        let lcr_8n1_dlab = 0x03 | lcr::DLAB;
        let mut u = Ns16550::new(Model::new(2, IoWidth::Word, lcr_8n1_dlab), 2, IoWidth::Word);
        u.put(b'x');
        assert_eq!(u.bus().lcr, 0x03, "DLAB cleared, the rest kept");
        assert_eq!(u.bus().dll_writes, 0, "no byte went into the divisor");
        assert_eq!(u.bus().sent, b"x");
    }

    #[test]
    fn device_tree_parameters_are_checked() {
        assert_eq!(check(0, 1), Ok(IoWidth::Byte));
        assert_eq!(check(2, 4), Ok(IoWidth::Word));
        assert_eq!(check(2, 2), Err(Ns16550Error::IoWidth(2)));
        assert_eq!(check(5, 1), Err(Ns16550Error::RegShift(5)));
        assert_eq!(check(0, 4), Err(Ns16550Error::WordOnByteStride));
        assert_eq!(check(2, 3).unwrap_err().to_string(), "reg-io-width 3 is not supported (1 or 4)");
        assert_eq!(span(0, IoWidth::Byte), 6);
        assert_eq!(span(2, IoWidth::Word), 0x18);
    }
}
