//! The PL011 the host shows to guests at IPA 0x0900_0000.
//!
//! Pure register logic, no I/O: the host calls [`Pl011Model::read`] and
//! [`Pl011Model::write`] for every trapped access to the 4 KiB frame, and bytes
//! written to DR come out through a callback. The model is what a polling
//! driver and Linux's `amba-pl011` probe need:
//!
//! - TX never fills: FR always reads TXFE (and RXFE: nothing is ever received),
//!   TXFF and BUSY are clear. Bytes are sent whether or not CR enables the
//!   UART, so a guest that never programs it still gets its output out.
//! - IBRD, FBRD, LCR_H, CR, IFLS, IMSC, DMACR hold what was written, masked to
//!   their widths.
//! - Interrupts: the transmit interrupt (RIS.TX) is raised after every DR
//!   write (the FIFO drains at once, so it falls below any trigger level) and
//!   cleared through ICR. MIS = RIS & IMSC.
//! - The peripheral and PrimeCell ID registers identify a PL011.
//! - DR takes 8-, 16- and 32-bit accesses; every other register 16- and
//!   32-bit accesses at its own offset (its low half: Linux's `amba-pl011`
//!   uses 16-bit accesses, as real PL011s on a 16-bit-capable bus allow).
//!   Other reserved offsets in the frame read as zero and ignore writes, like
//!   writes to the read-only registers.

use crate::reg;

/// Why an access was refused (the host stops or faults the guest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError {
    /// The access does not lie inside the 4 KiB register frame.
    OutOfFrame { offset: u64, size: u8 },
    /// The offset is not a multiple of the access size.
    Misaligned { offset: u64, size: u8 },
    /// A size the register does not take (or not 1, 2, 4 or 8 at all).
    BadSize { offset: u64, size: u8 },
}

impl core::fmt::Display for AccessError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::OutOfFrame { offset, size } => {
                write!(f, "{size}-byte access at {offset:#x} outside the PL011 frame")
            }
            Self::Misaligned { offset, size } => {
                write!(f, "misaligned {size}-byte PL011 access at {offset:#x}")
            }
            Self::BadSize { offset, size } => {
                write!(f, "{size}-byte PL011 access at {offset:#x} not supported")
            }
        }
    }
}

/// Register widths (PL011 TRM, section 3.3): writes are masked to these.
mod width {
    pub const IBRD: u32 = 0xffff;
    pub const FBRD: u32 = 0x3f;
    pub const LCR_H: u32 = 0xff;
    pub const CR: u32 = 0xffff;
    pub const IFLS: u32 = 0x3f;
    /// Interrupt mask, RIS, MIS and ICR: 11 interrupt bits.
    pub const INTERRUPTS: u32 = 0x7ff;
    pub const DMACR: u32 = 0x7;
    /// Data bits of DR.
    pub const DATA: u64 = 0xff;
}

/// Interrupt bits (IMSC, RIS, MIS, ICR).
pub mod int {
    /// Receive interrupt.
    pub const RX: u32 = 1 << 4;
    /// Transmit interrupt.
    pub const TX: u32 = 1 << 5;
}

/// Reset values (PL011 TRM, table 3-1).
mod reset {
    /// TXE and RXE set, UART disabled.
    pub const CR: u32 = 0x0300;
    /// Both FIFO trigger levels at half full.
    pub const IFLS: u32 = 0x12;
}

/// The peripheral ID (PERIPH_ID0..3) and PrimeCell ID (PCELL_ID0..3) bytes,
/// at 0xFE0, 0xFE4, ... 0xFFC.
pub const ID_BYTES: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// Bytes between two ID registers.
const ID_STRIDE: u64 = 4;

/// Size in bytes of the registers other than DR.
const REG_SIZE: u8 = 4;

/// The emulated UART's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pl011Model {
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    ris: u32,
    dmacr: u32,
}

impl Default for Pl011Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011Model {
    /// A UART in its reset state.
    pub const fn new() -> Self {
        Self { ibrd: 0, fbrd: 0, lcr_h: 0, cr: reset::CR, ifls: reset::IFLS, imsc: 0, ris: 0, dmacr: 0 }
    }

    /// Whether the UART's interrupt line is asserted (some unmasked interrupt
    /// is raised).
    pub fn irq_pending(&self) -> bool {
        self.mis() != 0
    }

    fn mis(&self) -> u32 {
        self.ris & self.imsc
    }

    /// Checks an access and returns the offset of its register.
    fn check(offset: u64, size: u8) -> Result<u64, AccessError> {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(AccessError::BadSize { offset, size });
        }
        let end = offset.checked_add(u64::from(size));
        if end.is_none_or(|end| end > reg::FRAME_SIZE) {
            return Err(AccessError::OutOfFrame { offset, size });
        }
        if !offset.is_multiple_of(u64::from(size)) {
            return Err(AccessError::Misaligned { offset, size });
        }
        // Narrow accesses only at a register's own offset: 8-bit for DR (its
        // data byte), 16-bit for every register (its low half).
        let narrow_ok = offset.is_multiple_of(u64::from(REG_SIZE)) && (size == 2 || (size == 1 && offset == reg::DR));
        if size != REG_SIZE && !narrow_ok {
            return Err(AccessError::BadSize { offset, size });
        }
        Ok(offset)
    }

    /// A guest load of `size` bytes at `offset` into the frame.
    pub fn read(&mut self, offset: u64, size: u8) -> Result<u64, AccessError> {
        let register = Self::check(offset, size)?;
        let value = match register {
            // Nothing is ever received: DR reads as zero (no data, no errors).
            reg::DR | reg::RSR_ECR => 0,
            reg::FR => crate::fr::TXFE | crate::fr::RXFE,
            reg::IBRD => self.ibrd,
            reg::FBRD => self.fbrd,
            reg::LCR_H => self.lcr_h,
            reg::CR => self.cr,
            reg::IFLS => self.ifls,
            reg::IMSC => self.imsc,
            reg::RIS => self.ris,
            reg::MIS => self.mis(),
            reg::DMACR => self.dmacr,
            r if r >= reg::PERIPH_ID0 => {
                let index = ((r - reg::PERIPH_ID0) / ID_STRIDE) as usize;
                ID_BYTES[index].into()
            }
            // ICR is write-only; reserved offsets read as zero.
            _ => 0,
        };
        // A narrow read sees the register's low bytes.
        let mask = if size >= REG_SIZE { u32::MAX } else { (1u32 << (8 * size)) - 1 };
        Ok((value & mask).into())
    }

    /// A guest store of `size` bytes of `value` at `offset` into the frame.
    /// Bytes sent through DR are passed to `out`.
    pub fn write(&mut self, offset: u64, size: u8, value: u64, out: &mut impl FnMut(u8)) -> Result<(), AccessError> {
        let register = Self::check(offset, size)?;
        // Every register is 32 bits wide: the upper half of a value is ignored.
        let v = value as u32;
        match register {
            reg::DR => {
                out((value & width::DATA) as u8);
                // The byte left the FIFO at once: it is empty, below any level.
                self.ris |= int::TX;
            }
            reg::IBRD => self.ibrd = v & width::IBRD,
            reg::FBRD => self.fbrd = v & width::FBRD,
            reg::LCR_H => self.lcr_h = v & width::LCR_H,
            reg::CR => self.cr = v & width::CR,
            reg::IFLS => self.ifls = v & width::IFLS,
            reg::IMSC => self.imsc = v & width::INTERRUPTS,
            reg::ICR => self.ris &= !(v & width::INTERRUPTS),
            reg::DMACR => self.dmacr = v & width::DMACR,
            // RSR_ECR (error clear: there are no errors), FR, RIS, MIS, the
            // ID registers and reserved offsets ignore writes.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fr;

    fn no_output(_: u8) {
        panic!("no byte expected");
    }

    fn rd(m: &mut Pl011Model, offset: u64) -> u64 {
        m.read(offset, REG_SIZE).unwrap()
    }

    fn wr(m: &mut Pl011Model, offset: u64, value: u64) {
        m.write(offset, REG_SIZE, value, &mut no_output).unwrap();
    }

    #[test]
    fn dr_sends_bytes_and_reads_empty() {
        let mut m = Pl011Model::new();
        let mut sent = Vec::new();
        for (size, value) in [(4, 0x4142_4341u64), (1, 0x42), (2, 0xff0a)] {
            m.write(reg::DR, size, value, &mut |b| sent.push(b)).unwrap();
        }
        assert_eq!(sent, b"AB\n", "only the low 8 bits are data");
        for size in [1, 2, 4] {
            assert_eq!(m.read(reg::DR, size), Ok(0));
        }
    }

    #[test]
    fn flags_say_tx_empty_rx_empty_never_busy() {
        let mut m = Pl011Model::new();
        let f = rd(&mut m, reg::FR) as u32;
        assert_eq!(f, fr::TXFE | fr::RXFE);
        assert_eq!(f & (fr::TXFF | fr::BUSY), 0);
        wr(&mut m, reg::FR, 0xffff_ffff);
        assert_eq!(rd(&mut m, reg::FR) as u32, fr::TXFE | fr::RXFE, "read-only");
        assert_eq!(rd(&mut m, reg::RSR_ECR), 0);
        wr(&mut m, reg::RSR_ECR, 0xff);
        assert_eq!(rd(&mut m, reg::RSR_ECR), 0);
    }

    #[test]
    fn reset_values() {
        let mut m = Pl011Model::default();
        assert_eq!(rd(&mut m, reg::CR), 0x300);
        assert_eq!(rd(&mut m, reg::IFLS), 0x12);
        for r in [reg::IBRD, reg::FBRD, reg::LCR_H, reg::IMSC, reg::RIS, reg::MIS, reg::DMACR] {
            assert_eq!(rd(&mut m, r), 0, "register {r:#x}");
        }
        assert!(!m.irq_pending());
    }

    #[test]
    fn control_registers_read_back_masked() {
        let cases = [
            (reg::IBRD, 0xffff),
            (reg::FBRD, 0x3f),
            (reg::LCR_H, 0xff),
            (reg::CR, 0xffff),
            (reg::IFLS, 0x3f),
            (reg::IMSC, 0x7ff),
            (reg::DMACR, 0x7),
        ];
        for (r, mask) in cases {
            let mut m = Pl011Model::new();
            wr(&mut m, r, 0x1234_5678_9abc_def0);
            assert_eq!(rd(&mut m, r), 0x9abc_def0 & mask, "register {r:#x}");
            wr(&mut m, r, 0xffff_ffff);
            assert_eq!(rd(&mut m, r), mask, "register {r:#x}");
            wr(&mut m, r, 0);
            assert_eq!(rd(&mut m, r), 0, "register {r:#x}");
        }
    }

    #[test]
    fn tx_interrupt_raised_masked_and_cleared() {
        let mut m = Pl011Model::new();
        m.write(reg::DR, 4, u64::from(b'x'), &mut |_| {}).unwrap();
        assert_eq!(rd(&mut m, reg::RIS) as u32, int::TX);
        assert_eq!(rd(&mut m, reg::MIS), 0, "masked");
        assert!(!m.irq_pending());
        wr(&mut m, reg::IMSC, u64::from(int::TX | int::RX));
        assert_eq!(rd(&mut m, reg::MIS) as u32, int::TX);
        assert!(m.irq_pending());
        // Write-1-to-clear: other bits leave it alone.
        wr(&mut m, reg::ICR, u64::from(int::RX));
        assert_eq!(rd(&mut m, reg::RIS) as u32, int::TX);
        wr(&mut m, reg::ICR, u64::from(int::TX));
        assert_eq!(rd(&mut m, reg::RIS), 0);
        assert_eq!(rd(&mut m, reg::MIS), 0);
        assert!(!m.irq_pending());
        assert_eq!(rd(&mut m, reg::ICR), 0, "write-only");
        // RIS and MIS are read-only.
        wr(&mut m, reg::RIS, 0x7ff);
        wr(&mut m, reg::MIS, 0x7ff);
        assert_eq!(rd(&mut m, reg::RIS), 0);
    }

    #[test]
    fn identifies_as_pl011() {
        let mut m = Pl011Model::new();
        let expected = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];
        for (i, want) in expected.into_iter().enumerate() {
            let offset = reg::PERIPH_ID0 + 4 * i as u64;
            assert_eq!(rd(&mut m, offset), want, "ID register {offset:#x}");
            wr(&mut m, offset, 0xff);
            assert_eq!(rd(&mut m, offset), want, "read-only");
        }
        assert_eq!(reg::PERIPH_ID0 + 4 * 7, 0xffc);
        // The AMBA bus reads the 32-bit ID as four bytes, low byte first.
        let periph: u64 = (0..4).map(|i| rd(&mut m, 0xfe0 + 4 * i) << (8 * i)).sum();
        let cell: u64 = (0..4).map(|i| rd(&mut m, 0xff0 + 4 * i) << (8 * i)).sum();
        assert_eq!(periph, 0x0014_1011);
        assert_eq!(cell, 0xb105_f00d);
    }

    #[test]
    fn reserved_offsets_read_zero_and_ignore_writes() {
        let mut m = Pl011Model::new();
        for offset in [0x008, 0x020, 0x04c, 0x800, 0xfdc] {
            wr(&mut m, offset, 0xffff_ffff);
            assert_eq!(rd(&mut m, offset), 0, "offset {offset:#x}");
        }
        assert_eq!(m, Pl011Model::new());
    }

    #[test]
    fn narrow_accesses_16_bit_everywhere_8_bit_only_to_dr() {
        let mut m = Pl011Model::new();
        for r in [reg::FR, reg::CR, reg::IMSC, reg::PERIPH_ID0] {
            let err = AccessError::BadSize { offset: r, size: 1 };
            assert_eq!(m.read(r, 1), Err(err));
            assert_eq!(m.write(r, 1, 0, &mut no_output), Err(err));
        }
        // 16-bit: the register's low half (Linux's amba-pl011 reads FR so).
        assert_eq!(m.read(reg::FR, 2), Ok((fr::TXFE | fr::RXFE).into()));
        m.write(reg::CR, 2, 0x0301, &mut no_output).unwrap();
        assert_eq!(rd(&mut m, reg::CR), 0x0301);
        // Not at a register's own offset: refused.
        assert_eq!(m.read(reg::FR + 2, 2), Err(AccessError::BadSize { offset: reg::FR + 2, size: 2 }));
        // A byte access into DR's upper bytes is not a DR access.
        assert_eq!(
            m.write(reg::DR + 1, 1, 0x41, &mut no_output),
            Err(AccessError::BadSize { offset: reg::DR + 1, size: 1 })
        );
    }

    #[test]
    fn oversized_and_odd_sizes_refused() {
        let mut m = Pl011Model::new();
        for size in [8, 0, 3, 16] {
            let err = AccessError::BadSize { offset: reg::DR, size };
            assert_eq!(m.read(reg::DR, size), Err(err));
            assert_eq!(m.write(reg::DR, size, 0x41, &mut no_output), Err(err));
        }
    }

    #[test]
    fn misaligned_refused() {
        let mut m = Pl011Model::new();
        for (offset, size) in [(0x19, 4), (0x1a, 4), (0x2, 4), (0x1, 2), (0x46, 4)] {
            let err = AccessError::Misaligned { offset, size };
            assert_eq!(m.read(offset, size), Err(err));
            assert_eq!(m.write(offset, size, 0x41, &mut no_output), Err(err));
        }
    }

    #[test]
    fn outside_frame_refused() {
        let mut m = Pl011Model::new();
        for (offset, size) in [(0x1000, 4), (0xffe, 4), (0x2000, 1), (u64::MAX - 1, 4)] {
            let err = AccessError::OutOfFrame { offset, size };
            assert_eq!(m.read(offset, size), Err(err));
            assert_eq!(m.write(offset, size, 0x41, &mut no_output), Err(err));
        }
        // The last register is inside.
        assert_eq!(m.read(0xffc, 4), Ok(0xb1));
    }

    #[test]
    fn errors_display() {
        let e = AccessError::Misaligned { offset: 0x19, size: 4 };
        assert_eq!(e.to_string(), "misaligned 4-byte PL011 access at 0x19");
    }
}
