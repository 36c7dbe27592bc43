//! The PL011 the host shows to guests at IPA 0x0900_0000.
//!
//! Pure register logic, no I/O: the host calls [`Pl011Model::read`] and
//! [`Pl011Model::write`] for every trapped access to the 4 KiB frame, and bytes
//! written to DR come out through a callback. The model is what a polling
//! driver and Linux's `amba-pl011` (polling console and interrupt-driven
//! tty) need:
//!
//! - The transmit FIFO has a level: [`TX_FIFO_DEPTH`] entries with FIFOs
//!   enabled (LCR_H.FEN), one without (the PL011's holding register). FR
//!   reads TXFF when it is full, TXFE when it is empty, BUSY while it holds
//!   anything. A byte written while it is full is lost, as on the hardware
//!   (counted: [`Pl011Model::tx_dropped`]). An accepted byte reaches the
//!   callback at once; the level only paces the guest.
//! - The FIFO drains at the line's rate in the host's counter time
//!   ([`Pl011Model::advance`]): one character per frame (start bit, 5 to 8
//!   data bits, parity, 1 or 2 stop bits, as LCR_H says) at the baud rate
//!   IBRD/FBRD make of the UART clock ([`Pl011Model::set_clocks`]). The host
//!   advances the model before every access and whenever the guest stops
//!   for something else, and asks it when the transmit interrupt is next
//!   due ([`Pl011Model::next_tx_interrupt`]) to wake a guest that sleeps
//!   until then. One shortcut: a guest that reads FR twice in a row, with no
//!   other UART access between, is polling for the transmitter, and the
//!   second read delivers the whole FIFO before it answers
//!   ([`Pl011Model::deliver`]): a polling console costs two exits per FIFO,
//!   not one per poll. So a polling driver sees the FIFO fill and then
//!   empty, and a driver that fills it and waits for the transmit interrupt
//!   gets that interrupt when a real line would have sent the bytes.
//! - The transmit interrupt (RIS.TX) follows the PL011 TRM: it is raised
//!   when the FIFO drains from above its IFLS trigger level to at or below it
//!   (without FIFOs: when the holding register empties), and cleared by ICR
//!   or by a write that takes the level above the trigger. It is a
//!   transition, not a level: an empty FIFO out of reset raises nothing.
//!   MIS = RIS & IMSC.
//! - Nothing is ever received: RXFE always, DR reads zero.
//! - IBRD, FBRD, LCR_H, CR, IFLS, IMSC, DMACR hold what was written, masked to
//!   their widths. Bytes are sent whether or not CR enables the UART, so a
//!   guest that never programs it still gets its output out.
//! - The peripheral and PrimeCell ID registers identify a PL011 r1p5
//!   (revision 3: the revision with 32-entry FIFOs; Linux sizes its FIFO
//!   from this revision).
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

/// Line control bits.
pub mod lcr_h {
    /// FIFOs enabled.
    pub const FEN: u32 = 1 << 4;
    /// Parity enabled.
    pub const PEN: u32 = 1 << 1;
    /// Two stop bits.
    pub const STP2: u32 = 1 << 3;
    /// Word length: data bits - 5.
    pub const WLEN_SHIFT: u32 = 5;
    pub const WLEN_MASK: u32 = 3 << WLEN_SHIFT;
    /// 8 data bits.
    pub const WLEN_8: u32 = 3 << WLEN_SHIFT;
}

/// A frame's start bit and its shortest word (LCR_H.WLEN = 0).
const START_BITS: u32 = 1;
const MIN_DATA_BITS: u32 = 5;
/// The baud rate generator ticks 16 times per bit (UARTCLK / 16 / divisor).
const OVERSAMPLING: u128 = 16;
/// FBRD is the divisor's fraction in 64ths.
const FBRD_BITS: u32 = 6;

/// Control register bits.
pub mod cr {
    /// UART enabled.
    pub const UARTEN: u32 = 1 << 0;
    /// Transmit enabled.
    pub const TXE: u32 = 1 << 8;
    /// Receive enabled.
    pub const RXE: u32 = 1 << 9;
}

/// Entries of the transmit FIFO with FIFOs enabled (PL011 r1p5).
pub const TX_FIFO_DEPTH: u32 = 32;
/// Without FIFOs, the transmitter has a one-byte holding register.
const TX_HOLDING_DEPTH: u32 = 1;

/// IFLS TXIFLSEL (bits 2:0): the trigger level in eighths of the FIFO,
/// for encodings 0..=4 (<= 1/8, 1/4, 1/2, 3/4, 7/8 full).
const TX_TRIGGER_EIGHTHS: [u32; 5] = [1, 2, 4, 6, 7];
/// TXIFLSEL's field mask.
const IFLS_TX_SEL: u32 = 0x7;
/// Encodings 5..=7 are reserved: they act as the reset level (1/2).
const TX_TRIGGER_RESERVED_EIGHTHS: u32 = 4;

/// What firmware leaves programmed for the guest's boot loader and kernel:
/// 115200 baud 8N1 from the device tree's 24 MHz clock, FIFOs on, UART,
/// transmitter and receiver enabled (what U-Boot's PL011 setup writes).
mod firmware {
    /// 24 MHz / (16 * 115200) = 13.02: integer part ...
    pub const IBRD: u32 = 13;
    /// ... and the fraction in 64ths (0.02 * 64, rounded).
    pub const FBRD: u32 = 1;
    pub const LCR_H: u32 = super::lcr_h::WLEN_8 | super::lcr_h::FEN;
    pub const CR: u32 = super::cr::UARTEN | super::cr::TXE | super::cr::RXE;
}

/// Reset values (PL011 TRM, table 3-1).
mod reset {
    /// TXE and RXE set, UART disabled.
    pub const CR: u32 = 0x0300;
    /// Both FIFO trigger levels at half full.
    pub const IFLS: u32 = 0x12;
}

/// The peripheral ID (PERIPH_ID0..3) and PrimeCell ID (PCELL_ID0..3) bytes,
/// at 0xFE0, 0xFE4, ... 0xFFC. PERIPH_ID2's revision field (bits 7:4) is 3:
/// r1p5, whose FIFOs are [`TX_FIFO_DEPTH`] deep.
pub const ID_BYTES: [u8; 8] = [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

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
    /// Bytes in the transmit FIFO.
    tx_level: u32,
    /// Bytes written while the FIFO was full (lost).
    tx_dropped: u64,
    /// The last access was a read of FR (a second one delivers the FIFO).
    fr_polled: bool,
    /// Times the transmit interrupt was raised.
    tx_raised: u64,
    /// The UART's reference clock (UARTCLK) and the host's counter
    /// frequency, in Hz; 0: untimed (the FIFO drains only when delivered).
    uartclk_hz: u64,
    counter_hz: u64,
    /// Counter time at which the character at the head of the FIFO started
    /// on the line (the last advance, while the FIFO was empty).
    tx_since: u64,
    /// [`Self::char_ticks`], kept up to date by the writes that change it
    /// (its 128-bit division stays off the access path).
    char_ticks: Option<u64>,
}

impl Default for Pl011Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011Model {
    /// A UART in its reset state.
    pub const fn new() -> Self {
        Self {
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: reset::CR,
            ifls: reset::IFLS,
            imsc: 0,
            ris: 0,
            dmacr: 0,
            tx_level: 0,
            tx_dropped: 0,
            fr_polled: false,
            tx_raised: 0,
            uartclk_hz: 0,
            counter_hz: 0,
            tx_since: 0,
            char_ticks: None,
        }
    }

    /// A UART as firmware hands it to a guest: 115200 8N1, FIFOs enabled,
    /// UART and transmitter on; interrupts masked, FIFO empty.
    pub const fn firmware_configured() -> Self {
        let mut m = Self::new();
        m.ibrd = firmware::IBRD;
        m.fbrd = firmware::FBRD;
        m.lcr_h = firmware::LCR_H;
        m.cr = firmware::CR;
        m
    }

    /// Bytes the transmit FIFO holds.
    pub fn tx_level(&self) -> u32 {
        self.tx_level
    }

    /// Bytes written while the transmit FIFO was full (lost, as on the
    /// hardware).
    pub fn tx_dropped(&self) -> u64 {
        self.tx_dropped
    }

    /// Times the transmit interrupt was raised (RIS.TX set by a drain).
    pub fn tx_raised(&self) -> u64 {
        self.tx_raised
    }

    /// Entries of the transmit FIFO as LCR_H.FEN configures it.
    fn tx_depth(&self) -> u32 {
        if self.lcr_h & lcr_h::FEN != 0 {
            TX_FIFO_DEPTH
        } else {
            TX_HOLDING_DEPTH
        }
    }

    /// The level at or below which the transmit interrupt is raised (IFLS;
    /// without FIFOs: empty).
    fn tx_trigger(&self) -> u32 {
        if self.lcr_h & lcr_h::FEN == 0 {
            return 0;
        }
        let sel = (self.ifls & IFLS_TX_SEL) as usize;
        let eighths = TX_TRIGGER_EIGHTHS.get(sel).copied().unwrap_or(TX_TRIGGER_RESERVED_EIGHTHS);
        TX_FIFO_DEPTH * eighths / 8
    }

    /// The host delivers what the transmit FIFO holds: it empties, and if
    /// that takes it from above the trigger level to at or below it, the
    /// transmit interrupt is raised. Returns whether anything was there (the
    /// interrupt line may have changed).
    pub fn deliver(&mut self) -> bool {
        self.drain(self.tx_level)
    }

    /// Sends `n` characters of the FIFO (at most what it holds); raises
    /// the transmit interrupt if the level falls through the trigger.
    fn drain(&mut self, n: u32) -> bool {
        let n = n.min(self.tx_level);
        if n == 0 {
            return false;
        }
        let trigger = self.tx_trigger();
        if self.tx_level > trigger && self.tx_level - n <= trigger {
            self.ris |= int::TX;
            self.tx_raised += 1;
        }
        self.tx_level -= n;
        true
    }

    /// Times the transmitter: `uartclk_hz` is the UART's reference clock
    /// (the device tree's `uartclk`), `counter_hz` the frequency of the
    /// counter the host passes to [`Self::advance`]. Either 0: untimed.
    pub fn set_clocks(&mut self, uartclk_hz: u64, counter_hz: u64) {
        self.uartclk_hz = uartclk_hz;
        self.counter_hz = counter_hz;
        self.char_ticks = self.frame_ticks();
    }

    /// Counter ticks one character takes on the line, at least 1; `None`
    /// if untimed. Baud rate = UARTCLK / (16 × (IBRD + FBRD/64)); a divisor
    /// below 1 (IBRD 0, which the TRM forbids) counts as 1.
    pub fn char_ticks(&self) -> Option<u64> {
        self.char_ticks
    }

    /// [`Self::char_ticks`] computed from the clocks, IBRD, FBRD and LCR_H.
    fn frame_ticks(&self) -> Option<u64> {
        if self.uartclk_hz == 0 || self.counter_hz == 0 {
            return None;
        }
        let divisor_64ths = u128::from((self.ibrd << FBRD_BITS) | self.fbrd).max(1 << FBRD_BITS);
        let frame_bits = u128::from(self.frame_bits());
        let ticks = frame_bits * OVERSAMPLING * divisor_64ths * u128::from(self.counter_hz)
            / (u128::from(self.uartclk_hz) << FBRD_BITS);
        Some(u64::try_from(ticks).unwrap_or(u64::MAX).max(1))
    }

    /// Bits of one frame on the line: start bit, data bits (LCR_H.WLEN),
    /// parity bit (LCR_H.PEN), 1 or 2 stop bits (LCR_H.STP2).
    fn frame_bits(&self) -> u32 {
        let data = MIN_DATA_BITS + ((self.lcr_h & lcr_h::WLEN_MASK) >> lcr_h::WLEN_SHIFT);
        let parity = u32::from(self.lcr_h & lcr_h::PEN != 0);
        let stop = if self.lcr_h & lcr_h::STP2 != 0 { 2 } else { 1 };
        START_BITS + data + parity + stop
    }

    /// The host's counter reads `now`: the characters whose frames ended
    /// by then have left the FIFO (the transmit interrupt may be raised).
    /// Returns whether the FIFO's level changed (the interrupt line may
    /// have). Untimed, or with the FIFO empty, it only notes the time.
    pub fn advance(&mut self, now: u64) -> bool {
        let Some(per) = self.char_ticks().filter(|_| self.tx_level != 0) else {
            self.tx_since = now;
            return false;
        };
        let sent = now.saturating_sub(self.tx_since) / per;
        let n = u32::try_from(sent).unwrap_or(u32::MAX).min(self.tx_level);
        self.tx_since += u64::from(n) * per;
        self.drain(n)
    }

    /// Counter time at which the transmit interrupt will be raised if
    /// nothing else happens first: `None` if it is masked (IMSC.TX), the
    /// FIFO is at or below its trigger, or the model is untimed.
    pub fn next_tx_interrupt(&self) -> Option<u64> {
        let trigger = self.tx_trigger();
        if self.imsc & int::TX == 0 || self.tx_level <= trigger {
            return None;
        }
        let per = self.char_ticks()?;
        Some(self.tx_since.saturating_add(u64::from(self.tx_level - trigger).saturating_mul(per)))
    }

    fn flags(&self) -> u32 {
        let mut f = crate::fr::RXFE;
        if self.tx_level == 0 {
            f |= crate::fr::TXFE;
        } else {
            f |= crate::fr::BUSY;
        }
        if self.tx_level >= self.tx_depth() {
            f |= crate::fr::TXFF;
        }
        f
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
        let polled = core::mem::replace(&mut self.fr_polled, register == reg::FR);
        if register == reg::FR && polled {
            // The guest waits for the transmitter: time passes.
            self.deliver();
        }
        let value = match register {
            // Nothing is ever received: DR reads as zero (no data, no errors).
            reg::DR | reg::RSR_ECR => 0,
            reg::FR => self.flags(),
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
        self.fr_polled = false;
        // Every register is 32 bits wide: the upper half of a value is ignored.
        let v = value as u32;
        match register {
            reg::DR => {
                if self.tx_level >= self.tx_depth() {
                    self.tx_dropped += 1;
                } else {
                    out((value & width::DATA) as u8);
                    self.tx_level += 1;
                    if self.tx_level > self.tx_trigger() {
                        self.ris &= !int::TX;
                    }
                }
            }
            reg::IBRD => {
                self.ibrd = v & width::IBRD;
                self.char_ticks = self.frame_ticks();
            }
            reg::FBRD => {
                self.fbrd = v & width::FBRD;
                self.char_ticks = self.frame_ticks();
            }
            reg::LCR_H => {
                self.lcr_h = v & width::LCR_H;
                self.char_ticks = self.frame_ticks();
            }
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

    fn fr(m: &mut Pl011Model) -> u32 {
        rd(m, reg::FR) as u32
    }

    fn send(m: &mut Pl011Model, byte: u8, sent: &mut Vec<u8>) {
        m.write(reg::DR, 4, byte.into(), &mut |b| sent.push(b)).unwrap();
    }

    #[test]
    fn dr_sends_bytes_and_reads_empty() {
        let mut m = Pl011Model::firmware_configured();
        let mut sent = Vec::new();
        for (size, value) in [(4, 0x4142_4341u64), (1, 0x42), (2, 0xff0a)] {
            m.write(reg::DR, size, value, &mut |b| sent.push(b)).unwrap();
        }
        assert_eq!(sent, b"AB\n", "only the low 8 bits are data");
        assert_eq!(m.tx_level(), 3);
        for size in [1, 2, 4] {
            assert_eq!(m.read(reg::DR, size), Ok(0));
        }
    }

    #[test]
    fn flags_follow_the_transmit_fifo_level() {
        let mut m = Pl011Model::firmware_configured();
        let mut sent = Vec::new();
        assert_eq!(fr(&mut m), fr::TXFE | fr::RXFE, "empty, idle");
        for n in 1..=TX_FIFO_DEPTH {
            send(&mut m, b'a', &mut sent);
            let want = if n == TX_FIFO_DEPTH { fr::TXFF | fr::BUSY | fr::RXFE } else { fr::BUSY | fr::RXFE };
            // One read of FR after a write: no delivery.
            assert_eq!(fr(&mut m), want, "{n} bytes in the FIFO");
        }
        // Full: the next byte is lost and counted.
        send(&mut m, b'b', &mut sent);
        assert_eq!((sent.len(), m.tx_dropped(), m.tx_level()), (TX_FIFO_DEPTH as usize, 1, TX_FIFO_DEPTH));
        wr(&mut m, reg::FR, 0xffff_ffff);
        assert_eq!(m.tx_level(), TX_FIFO_DEPTH, "FR is read-only");
        assert!(m.deliver());
        assert!(!m.deliver(), "nothing left");
        assert_eq!(fr(&mut m), fr::TXFE | fr::RXFE);
        assert_eq!(rd(&mut m, reg::RSR_ECR), 0);
        wr(&mut m, reg::RSR_ECR, 0xff);
        assert_eq!(rd(&mut m, reg::RSR_ECR), 0);
    }

    #[test]
    fn without_fifos_one_byte_holding_register() {
        // Out of reset LCR_H.FEN is clear.
        let mut m = Pl011Model::new();
        let mut sent = Vec::new();
        send(&mut m, b'x', &mut sent);
        assert_eq!(fr(&mut m), fr::TXFF | fr::BUSY | fr::RXFE);
        send(&mut m, b'y', &mut sent);
        assert_eq!((sent.as_slice(), m.tx_dropped()), (&b"x"[..], 1));
        // Enabling the FIFOs makes room.
        wr(&mut m, reg::LCR_H, u64::from(lcr_h::FEN));
        send(&mut m, b'z', &mut sent);
        assert_eq!(sent, b"xz");
    }

    #[test]
    fn a_second_fr_read_in_a_row_delivers() {
        let mut m = Pl011Model::firmware_configured();
        let mut sent = Vec::new();
        for _ in 0..TX_FIFO_DEPTH {
            send(&mut m, b'a', &mut sent);
        }
        assert_eq!(fr(&mut m) & fr::TXFF, fr::TXFF, "the first read sees it full");
        assert_eq!(fr(&mut m), fr::TXFE | fr::RXFE, "the second read waited for it");
        // Another access between two FR reads: not a poll.
        send(&mut m, b'b', &mut sent);
        assert_eq!(fr(&mut m) & fr::BUSY, fr::BUSY);
        rd(&mut m, reg::IMSC);
        assert_eq!(fr(&mut m) & fr::BUSY, fr::BUSY);
        wr(&mut m, reg::IMSC, 0);
        assert_eq!(fr(&mut m) & fr::BUSY, fr::BUSY);
        assert_eq!(fr(&mut m), fr::TXFE | fr::RXFE);
        // A refused access changes nothing.
        send(&mut m, b'c', &mut sent);
        assert_eq!(fr(&mut m) & fr::BUSY, fr::BUSY);
        assert!(m.read(reg::FR + 1, 1).is_err());
        assert_eq!(fr(&mut m), fr::TXFE | fr::RXFE);
    }

    #[test]
    fn tx_interrupt_on_draining_through_each_trigger_level() {
        for sel in 0..8u32 {
            let eighths = [1, 2, 4, 6, 7, 4, 4, 4][sel as usize];
            let trigger = TX_FIFO_DEPTH * eighths / 8;
            let mut m = Pl011Model::firmware_configured();
            let mut sent = Vec::new();
            wr(&mut m, reg::IFLS, u64::from(sel));
            // Drained from the trigger level itself: no transition through it.
            for _ in 0..trigger {
                send(&mut m, b'a', &mut sent);
            }
            m.deliver();
            assert_eq!(rd(&mut m, reg::RIS), 0, "IFLS {sel}: drained from {trigger}");
            // From one above: raised.
            for _ in 0..=trigger {
                send(&mut m, b'a', &mut sent);
            }
            m.deliver();
            assert_eq!(rd(&mut m, reg::RIS) as u32, int::TX, "IFLS {sel}: drained from {}", trigger + 1);
            // Writing up to the trigger keeps it; one past clears it.
            for _ in 0..trigger {
                send(&mut m, b'a', &mut sent);
            }
            assert_eq!(rd(&mut m, reg::RIS) as u32, int::TX, "IFLS {sel}: at the trigger");
            send(&mut m, b'a', &mut sent);
            assert_eq!(rd(&mut m, reg::RIS), 0, "IFLS {sel}: past the trigger");
        }
    }

    #[test]
    fn tx_interrupt_is_a_transition_not_a_level() {
        let mut m = Pl011Model::firmware_configured();
        let mut sent = Vec::new();
        wr(&mut m, reg::IMSC, u64::from(int::TX));
        assert!(!m.irq_pending(), "an empty FIFO out of reset raises nothing");
        send(&mut m, b'a', &mut sent);
        // Without FIFOs the holding register emptying raises it.
        let mut h = Pl011Model::new();
        send(&mut h, b'a', &mut sent);
        h.deliver();
        assert_eq!(rd(&mut h, reg::RIS) as u32, int::TX);
        send(&mut h, b'b', &mut sent);
        assert_eq!(rd(&mut h, reg::RIS), 0, "a single write clears it");
        // Cleared by ICR at a level below the trigger: it stays clear.
        for _ in 0..TX_FIFO_DEPTH {
            send(&mut m, b'a', &mut sent);
        }
        m.deliver();
        assert!(m.irq_pending());
        wr(&mut m, reg::ICR, u64::from(int::TX));
        assert!(!m.irq_pending());
        send(&mut m, b'a', &mut sent);
        m.deliver();
        assert!(!m.irq_pending(), "no transition through the trigger");
    }

    /// What Linux's amba-pl011 does (drivers/tty/serial/amba-pl011.c, read
    /// for its logic): start_tx writes while FR says not full and, if bytes
    /// remain, unmasks TXIM; the interrupt handler then writes half a FIFO
    /// per pass without looking at FR, for as long as RIS & IMSC has TX.
    /// With the FIFO modelled, every byte comes out in order, none is lost,
    /// and the interrupt is what moves the rest.
    #[test]
    fn a_linux_like_interrupt_driven_driver_loses_nothing() {
        let text: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut m = Pl011Model::firmware_configured();
        let mut sent = Vec::new();
        let mut next = 0;
        let mut interrupts = 0;
        wr(&mut m, reg::IFLS, 0x12);
        // start_tx (pl011_tx_chars, not from the interrupt).
        while next < text.len() && fr(&mut m) & fr::TXFF == 0 {
            send(&mut m, text[next], &mut sent);
            next += 1;
        }
        assert_eq!(next, TX_FIFO_DEPTH as usize, "start_tx filled the FIFO");
        wr(&mut m, reg::IMSC, u64::from(int::TX));
        while next < text.len() {
            assert!(!m.irq_pending(), "no interrupt before the host delivers");
            m.deliver();
            assert!(m.irq_pending(), "the drain through the trigger interrupts");
            interrupts += 1;
            // pl011_int: passes while RIS & IMSC has TX.
            while rd(&mut m, reg::RIS) as u32 & rd(&mut m, reg::IMSC) as u32 & int::TX != 0 {
                for _ in 0..TX_FIFO_DEPTH / 2 {
                    if next == text.len() {
                        break;
                    }
                    send(&mut m, text[next], &mut sent);
                    next += 1;
                }
                if next == text.len() {
                    wr(&mut m, reg::IMSC, 0); // stop_tx
                }
            }
        }
        assert_eq!(sent, text);
        assert_eq!(m.tx_dropped(), 0);
        assert_eq!(interrupts, (text.len() - 32).div_ceil(32));
        assert_eq!(m.tx_raised(), interrupts as u64);
    }

    /// 24 MHz UARTCLK, QEMU 7.2's 62.5 MHz counter.
    const UARTCLK_HZ: u64 = 24_000_000;
    const COUNTER_HZ: u64 = 62_500_000;

    fn timed() -> Pl011Model {
        let mut m = Pl011Model::firmware_configured();
        m.set_clocks(UARTCLK_HZ, COUNTER_HZ);
        m
    }

    #[test]
    fn a_character_takes_its_frame_time_at_the_programmed_baud_rate() {
        let mut m = timed();
        // 115200 baud (divisor 13 + 1/64), 8N1: 10 bits of 86.8 us, 5423
        // ticks of 16 ns.
        assert_eq!(m.char_ticks(), Some(5423));
        // 7 data bits, parity, 2 stop bits: 11 bits, 5965.5 ticks (rounded down).
        wr(&mut m, reg::LCR_H, u64::from(lcr_h::FEN | 2 << lcr_h::WLEN_SHIFT | lcr_h::PEN | lcr_h::STP2));
        assert_eq!(m.char_ticks(), Some(5965));
        // 9600 baud (divisor 156 + 16/64), 8N1: 1.0417 ms.
        wr(&mut m, reg::LCR_H, u64::from(lcr_h::FEN | lcr_h::WLEN_8));
        wr(&mut m, reg::IBRD, 156);
        wr(&mut m, reg::FBRD, 16);
        assert_eq!(m.char_ticks(), Some(65104));
        // A zero divisor counts as 1: the fastest line, never a division by 0.
        wr(&mut m, reg::IBRD, 0);
        wr(&mut m, reg::FBRD, 0);
        assert_eq!(m.char_ticks(), Some(416));
        assert_eq!(Pl011Model::firmware_configured().char_ticks(), None, "untimed");
    }

    #[test]
    fn the_fifo_drains_at_the_line_rate_and_interrupts_through_the_trigger() {
        let mut m = timed();
        let per = m.char_ticks().unwrap();
        let t0 = 1_000_000;
        m.advance(t0);
        wr(&mut m, reg::IMSC, u64::from(int::TX));
        let mut sent = 0;
        for _ in 0..TX_FIFO_DEPTH {
            m.write(reg::DR, 4, u64::from(b'x'), &mut |_| sent += 1).unwrap();
        }
        assert_eq!((sent, m.tx_level()), (TX_FIFO_DEPTH, TX_FIFO_DEPTH));
        // The trigger is half full: 16 characters must leave first.
        let due = t0 + 16 * per;
        assert_eq!(m.next_tx_interrupt(), Some(due));
        assert!(m.advance(due - per), "15 characters sent");
        assert_eq!(m.tx_level(), 17);
        assert!(!m.irq_pending(), "still above the trigger");
        assert!(!m.advance(due - 1), "the 16th is still on the line");
        assert!(m.advance(due));
        assert_eq!(m.tx_level(), 16);
        assert!(m.irq_pending(), "drained through the trigger");
        assert_eq!(m.next_tx_interrupt(), None, "at the trigger: nothing more to raise");
        // The rest drains; a later advance with the FIFO empty only notes
        // the time, and the next character starts then.
        m.advance(due + 100 * per);
        assert_eq!(m.tx_level(), 0);
        let t1 = due + 1000 * per;
        m.advance(t1);
        wr(&mut m, reg::ICR, u64::from(int::TX));
        for _ in 0..=16 {
            m.write(reg::DR, 4, u64::from(b'y'), &mut |_| {}).unwrap();
        }
        assert_eq!(m.next_tx_interrupt(), Some(t1 + per), "17 queued from t1: one above the trigger");
        // Masked, nothing is due (the line cannot change).
        wr(&mut m, reg::IMSC, 0);
        assert_eq!(m.next_tx_interrupt(), None);
    }

    #[test]
    fn untimed_the_fifo_drains_only_when_delivered() {
        let mut m = Pl011Model::firmware_configured();
        m.advance(0);
        m.write(reg::DR, 4, u64::from(b'x'), &mut |_| {}).unwrap();
        assert!(!m.advance(u64::MAX));
        assert_eq!(m.tx_level(), 1);
        assert!(m.deliver());
        assert_eq!(m.tx_level(), 0);
    }

    /// The Linux-like driver of the test above, on a timed UART: the host
    /// wakes it when [`Pl011Model::next_tx_interrupt`] says, and the
    /// interrupts come at the line's pace, half a FIFO at a time.
    #[test]
    fn a_linux_like_driver_is_paced_by_the_line() {
        let text: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut m = timed();
        let per = m.char_ticks().unwrap();
        let mut now = 0;
        let mut sent = Vec::new();
        let mut next = 0;
        let mut interrupts = 0;
        m.advance(now);
        while next < text.len() && fr(&mut m) & fr::TXFF == 0 {
            send(&mut m, text[next], &mut sent);
            next += 1;
        }
        wr(&mut m, reg::IMSC, u64::from(int::TX));
        while next < text.len() {
            let due = m.next_tx_interrupt().expect("bytes above the trigger, TX unmasked");
            assert!(due > now);
            now = due;
            m.advance(now);
            assert!(m.irq_pending());
            interrupts += 1;
            while rd(&mut m, reg::MIS) as u32 & int::TX != 0 {
                for _ in 0..TX_FIFO_DEPTH / 2 {
                    if next == text.len() {
                        break;
                    }
                    send(&mut m, text[next], &mut sent);
                    next += 1;
                }
                if next == text.len() {
                    wr(&mut m, reg::IMSC, 0);
                }
            }
        }
        assert_eq!(sent, text);
        assert_eq!(m.tx_dropped(), 0);
        assert_eq!(interrupts, (text.len() - 32).div_ceil(16));
        // The line never idled while text remained: the last interrupt came
        // 16 characters after the one before, 16 more after the start.
        assert_eq!(now, per * 16 * interrupts as u64);
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
        m.deliver();
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
        let expected = [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1];
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
        assert_eq!(periph, 0x0034_1011);
        assert_eq!(periph >> 20 & 0xf, 3, "revision r1p5: 32-entry FIFOs");
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
