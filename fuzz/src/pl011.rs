//! `pl011`: the PL011 model the host shows to guests.
//!
//! A program of guest loads and stores (any offset and size, biased to the
//! register frame) and host deliveries. Properties, against a small
//! reference of the transmit path kept here: an access is taken exactly
//! when it is a 32-bit access at a word offset, a 16-bit one at a word
//! offset, or an 8-bit one at DR, inside the 4 KiB frame; a load returns no
//! more bits than its size; every byte written to DR either comes out (in
//! order, its low 8 bits) or is counted as dropped, and dropped exactly
//! when the FIFO (32 entries with LCR_H.FEN, else 1) is full; FR shows
//! TXFE/BUSY/TXFF/RXFE as the level says; a delivery empties the FIFO; the
//! interrupt line is MIS != 0; the raise counter only grows, by at most
//! one a delivery.

use crate::Input;
use spevisor_pl011::model::{lcr_h, Pl011Model, TX_FIFO_DEPTH};
use spevisor_pl011::{fr, reg};

const MAX_OPS: usize = 256;
/// The registers, by the high nibble of an operation.
pub const REGS: [u64; 13] = [
    reg::DR,
    reg::RSR_ECR,
    reg::FR,
    reg::IBRD,
    reg::FBRD,
    reg::LCR_H,
    reg::CR,
    reg::IFLS,
    reg::IMSC,
    reg::RIS,
    reg::MIS,
    reg::ICR,
    reg::DMACR,
];
/// Register width (bytes) and the one-entry holding register without FIFOs.
const WORD: u64 = 4;
const HOLDING: u32 = 1;

fn taken(off: u64, size: u8) -> bool {
    let inside = off.checked_add(u64::from(size)).is_some_and(|e| e <= reg::FRAME_SIZE);
    inside && off.is_multiple_of(WORD) && (size == 4 || size == 2 || (size == 1 && off == reg::DR))
}

fn size_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1 << (8 * u32::from(size))) - 1
    }
}

pub fn run(data: &[u8]) {
    let mut i = Input::new(data);
    let mut m = if i.bool() { Pl011Model::firmware_configured() } else { Pl011Model::new() };
    let mut level = 0u32;
    let (mut sent, mut expected_sent, mut dropped) = (Vec::new(), Vec::new(), 0u64);
    let mut raised = m.tx_raised();
    for _ in 0..MAX_OPS {
        if i.is_empty() {
            break;
        }
        let op = i.u8();
        let off = match usize::from(op >> 4) {
            r @ 0..=12 => REGS[r],
            13 => reg::PERIPH_ID0 + u64::from(i.u8() % 8) * WORD,
            14 => reg::FRAME_SIZE - u64::from(i.u8() % 8),
            _ => u64::from(i.u16()),
        };
        let size = [4, 4, 4, 2, 1, 8, 3, 0][usize::from(i.u8() % 8)];
        let lcr = m.read(reg::LCR_H, 4).unwrap() as u32;
        let depth = if lcr & lcr_h::FEN != 0 { TX_FIFO_DEPTH } else { HOLDING };
        match op % 4 {
            0 | 1 => {
                let value = i.u64() & size_mask(size);
                let r = m.write(off, size, value, &mut |b| sent.push(b));
                assert_eq!(r.is_ok(), taken(off, size), "store {size}@{off:#x}: {r:?}");
                if r.is_ok() && off == reg::DR {
                    if level >= depth {
                        dropped += 1;
                    } else {
                        expected_sent.push(value as u8);
                        level += 1;
                    }
                }
            }
            2 => {
                let fr_before = level;
                let r = m.read(off, size);
                assert_eq!(r.is_ok(), taken(off, size), "load {size}@{off:#x}: {r:?}");
                if let Ok(v) = r {
                    assert_eq!(v & !size_mask(size), 0, "a {size}-byte load returned {v:#x}");
                }
                if off == reg::FR && size == 4 {
                    // A second FR poll in a row delivers first.
                    level = m.tx_level();
                    assert!(level == fr_before || level == 0);
                    let f = r.unwrap() as u32;
                    assert_eq!(f & fr::RXFE, fr::RXFE, "nothing is ever received");
                    assert_eq!(f & fr::TXFE != 0, level == 0, "TXFE at level {level}");
                    assert_eq!(f & fr::BUSY != 0, level != 0, "BUSY at level {level}");
                    assert_eq!(f & fr::TXFF != 0, level >= depth, "TXFF at level {level} of {depth}");
                }
                if off == reg::DR && r.is_ok() {
                    assert_eq!(r, Ok(0), "DR reads empty");
                }
            }
            _ => {
                let had = m.deliver();
                assert_eq!(had, level != 0);
                level = 0;
            }
        }
        assert_eq!(m.tx_level(), level, "FIFO level");
        assert!(level <= TX_FIFO_DEPTH);
        assert_eq!(m.tx_dropped(), dropped, "dropped bytes");
        assert_eq!(sent, expected_sent, "bytes sent");
        let now = m.tx_raised();
        assert!(now == raised || now == raised + 1, "raise counter {raised} -> {now}");
        raised = now;
        let mis = m.clone().read(reg::MIS, 4).unwrap();
        assert_eq!(m.irq_pending(), mis != 0, "interrupt line vs MIS");
    }
}
