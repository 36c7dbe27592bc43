//! Packet dump in the `perf report -D` style used by the test vectors.
//!
//! One packet per line:
//!
//! ```text
//! .  00000000:  b0 e0 43 21 bf fd 7f 00 80                       PC 0x7ffdbf2143e0 el0 ns=1
//! ```
//!
//! that is `.`, two spaces, the offset as 8 hex digits, `:`, then ` xx` per
//! byte padded to [`BYTES_PER_LINE`] bytes, two spaces and the description.
//! Consecutive padding bytes share one line (up to 16 bytes). Undecodable
//! bytes are shown one per line as `Bad packet!`. A buffer dump starts with
//! a `== <name> (<n> bytes)` header line. Everything goes through
//! [`core::fmt::Write`], so it works without `std`.

use crate::packet::{decode, hdr, Address, AddressIndex, Counter, CounterIndex, OpClass, OpType, Packet};
use core::fmt::{self, Write};

/// Raw byte columns per line.
pub const BYTES_PER_LINE: usize = 16;
/// Text shown for undecodable bytes.
pub const BAD_PACKET: &str = "Bad packet!";

/// Events known by name, in print order (bit, name).
const EVENT_NAMES: [(u32, &str); 22] = [
    (0, "EXCEPTION-GEN"),
    (1, "RETIRED"),
    (2, "L1D-ACCESS"),
    (3, "L1D-REFILL"),
    (4, "TLB-ACCESS"),
    (5, "TLB-REFILL"),
    (6, "NOT-TAKEN"),
    (7, "MISPRED"),
    (8, "LLC-ACCESS"),
    (9, "LLC-REFILL"),
    (10, "REMOTE-ACCESS"),
    (11, "ALIGNMENT"),
    (16, "TXN"),
    (17, "SVE-PARTIAL-PRED"),
    (18, "SVE-EMPTY-PRED"),
    (19, "L2D-ACCESS"),
    (20, "L2D-MISS"),
    (21, "HITM"),
    (22, "LFB"),
    (23, "SNOOPED"),
    (24, "STREAMING-SVE"),
    (25, "SMCU"),
];

/// Names of the address indices that have one.
const ADDRESS_NAMES: [&str; 5] = ["PC", "TGT", "VA", "PA", "PBT"];

// Operation type payload decoding (Arm ARM operation type packet).
const OTHER_SUBCLASS_MASK: u8 = 0xf8;
const SVE_SME_SELECT: u8 = 0x89;
const OTHER_SVE: u8 = 0x08;
const OTHER_SME: u8 = 0x88;
const OTHER_ASE: u8 = 1 << 2;
const OTHER_FP: u8 = 1 << 1;
const OTHER_COND: u8 = 1 << 0;
const SVE_FP: u8 = 1 << 1;
const SVE_PRED: u8 = 1 << 2;
const SVE_SG: u8 = 1 << 7;
const SVE_EVL_SHIFT: u32 = 4;
const SVE_EVL_MASK: u8 = 0x7;
const SVE_EVL_UNIT: u32 = 32;
const SME_ETS_UNIT: u32 = 128;
const SME_ETS_LOW_BIT: u8 = 1 << 2;
const LDST_ST: u8 = 1 << 0;
const LDST_SUBCLASS_MASK: u8 = 0xfe;
const LDST_EXT_SELECT: u8 = 0xe2;
const LDST_EXT: u8 = 0x02;
const LDST_AT: u8 = 1 << 2;
const LDST_EXCL: u8 = 1 << 3;
const LDST_AR: u8 = 1 << 4;
const LDST_SIMD_FP: u8 = 0x04;
const LDST_GP_REG: u8 = 0x00;
const LDST_UNSPEC_REG: u8 = 0x10;
const LDST_NV_SYSREG: u8 = 0x30;
const LDST_MTE_TAG: u8 = 0x14;
const LDST_MEMCPY: u8 = 0x20;
const LDST_MEMSET: u8 = 0x25;
const LDST_SVE_SELECT: u8 = 0x0a;
const LDST_SVE: u8 = 0x08;
const LDST_GCS_SELECT: u8 = 0xfa;
const LDST_GCS: u8 = 0x40;
const LDST_GCS_COMM: u8 = 1 << 2;
const BR_COND: u8 = 1 << 0;
const BR_IND: u8 = 1 << 1;
const BR_GCS: u8 = 1 << 2;
const BR_CR_SHIFT: u32 = 3;
const BR_CR_MASK: u8 = 0x3;
const BR_CR_NAMES: [&str; 4] = ["", " CR-BL", " CR-RET", " CR-NON-BL-RET"];

fn sve_evl(payload: u8) -> u32 {
    SVE_EVL_UNIT << ((payload >> SVE_EVL_SHIFT) & SVE_EVL_MASK)
}

fn sme_ets(payload: u8) -> u32 {
    let exp = (u32::from((payload >> SVE_EVL_SHIFT) & SVE_EVL_MASK) << 1) | u32::from(payload & SME_ETS_LOW_BIT != 0);
    SME_ETS_UNIT << exp
}

fn write_events<W: Write>(w: &mut W, bits: u64) -> fmt::Result {
    w.write_str("EV")?;
    let mut rest = bits;
    for (bit, name) in EVENT_NAMES {
        if rest & (1 << bit) != 0 {
            write!(w, " {name}")?;
        }
        rest &= !(1 << bit);
    }
    if rest != 0 {
        w.write_str(" IMPDEF:")?;
        let mut first = true;
        while rest != 0 {
            let bit = rest.trailing_zeros();
            if !first {
                w.write_char(',')?;
            }
            write!(w, "{bit}")?;
            first = false;
            rest &= rest - 1;
        }
    }
    Ok(())
}

/// Writes the operation type text; returns `Ok(false)` when the class is
/// reserved (the caller then prints the raw form).
fn write_op_type<W: Write>(w: &mut W, op: &OpType) -> Result<bool, fmt::Error> {
    let p = op.subclass;
    match op.class {
        OpClass::Other => {
            if p & SVE_SME_SELECT == OTHER_SVE {
                write!(w, "SVE-OTHER EVLEN {}", sve_evl(p))?;
                if p & SVE_FP != 0 {
                    w.write_str(" FP")?;
                }
                if p & SVE_PRED != 0 {
                    w.write_str(" PRED")?;
                }
            } else if p & SVE_SME_SELECT == OTHER_SME {
                write!(w, "SME-OTHER ETS {}", sme_ets(p))?;
                if p & OTHER_FP != 0 {
                    w.write_str(" FP")?;
                }
            } else if p & OTHER_SUBCLASS_MASK == 0 {
                w.write_str("OTHER")?;
                if p & OTHER_ASE != 0 {
                    w.write_str(" ASE")?;
                }
                if p & OTHER_FP != 0 {
                    w.write_str(" FP")?;
                }
                let kind = if p & OTHER_COND != 0 { " COND-SELECT" } else { " INSN-OTHER" };
                w.write_str(kind)?;
            }
        }
        OpClass::LoadStore => {
            w.write_str(if p & LDST_ST != 0 { "ST" } else { "LD" })?;
            let sub = p & LDST_SUBCLASS_MASK;
            if p & LDST_EXT_SELECT == LDST_EXT {
                if p & LDST_AT != 0 {
                    w.write_str(" AT")?;
                }
                if p & LDST_EXCL != 0 {
                    w.write_str(" EXCL")?;
                }
                if p & LDST_AR != 0 {
                    w.write_str(" AR")?;
                }
            } else if sub == LDST_SIMD_FP {
                w.write_str(" SIMD-FP")?;
            } else if sub == LDST_GP_REG {
                w.write_str(" GP-REG")?;
            } else if sub == LDST_UNSPEC_REG {
                w.write_str(" UNSPEC-REG")?;
            } else if sub == LDST_NV_SYSREG {
                w.write_str(" NV-SYSREG")?;
            } else if sub == LDST_MTE_TAG {
                w.write_str(" MTE-TAG")?;
            } else if sub == LDST_MEMCPY {
                w.write_str(" MEMCPY")?;
            } else if p == LDST_MEMSET {
                w.write_str(" MEMSET")?;
            } else if p & LDST_SVE_SELECT == LDST_SVE {
                write!(w, " SVE-SME-REG EVLEN {}", sve_evl(p))?;
                if p & SVE_PRED != 0 {
                    w.write_str(" PRED")?;
                }
                if p & SVE_SG != 0 {
                    w.write_str(" SG")?;
                }
            } else if p & LDST_GCS_SELECT == LDST_GCS {
                w.write_str(" GCS")?;
                if p & LDST_GCS_COMM != 0 {
                    w.write_str(" COMM")?;
                }
            }
        }
        OpClass::Branch => {
            w.write_str("B")?;
            if p & BR_COND != 0 {
                w.write_str(" COND")?;
            }
            if p & BR_IND != 0 {
                w.write_str(" IND")?;
            }
            if p & BR_GCS != 0 {
                w.write_str(" GCS")?;
            }
            w.write_str(BR_CR_NAMES[usize::from((p >> BR_CR_SHIFT) & BR_CR_MASK)])?;
        }
        OpClass::Reserved => return Ok(false),
    }
    Ok(true)
}

fn write_address<W: Write>(w: &mut W, a: &Address) -> fmt::Result {
    match a.index {
        AddressIndex::PC | AddressIndex::BRANCH_TARGET | AddressIndex::PREV_BRANCH_TARGET => {
            let c = a.code();
            let name = ADDRESS_NAMES[usize::from(a.index.0)];
            write!(w, "{} {:#x} el{} ns={}", name, c.addr, c.el, u8::from(c.ns))
        }
        AddressIndex::DATA_VIRTUAL => write!(w, "VA {:#x}", a.payload),
        AddressIndex::DATA_PHYSICAL => {
            let p = a.phys();
            write!(w, "PA {:#x} ns={} ch={} pat={:x}", p.addr, u8::from(p.ns), u8::from(p.ch), p.pat)
        }
        AddressIndex(other) => write!(w, "ADDR {:#x} ({})", a.payload, other),
    }
}

fn write_counter<W: Write>(w: &mut W, c: &Counter) -> fmt::Result {
    // perf prints the count as a 16-bit value, then the counter name.
    write!(w, "LAT {} ", c.value as u16)?;
    match c.index {
        CounterIndex::TOTAL => w.write_str("TOT"),
        CounterIndex::ISSUE => w.write_str("ISSUE"),
        CounterIndex::TRANSLATION => w.write_str("XLAT"),
        _ => Ok(()),
    }
}

/// Writes the description of one packet (the text after the raw bytes).
pub fn describe<W: Write>(w: &mut W, packet: &Packet) -> fmt::Result {
    match packet {
        Packet::Pad => w.write_str("PAD"),
        Packet::End => w.write_str("END"),
        // perf prints these payloads as signed 64-bit values.
        Packet::Timestamp(t) => write!(w, "TS {}", *t as i64),
        Packet::DataSource(d) => write!(w, "DATA-SOURCE {}", *d as i64),
        Packet::Events(e) => write_events(w, e.0),
        Packet::Context { index, id } => {
            write!(w, "CONTEXT {:#x} el{}", id, u32::from(*index) + 1)
        }
        Packet::OpType(op) => {
            // Render into a scratch buffer first: a reserved class prints
            // the raw form instead of a partial line.
            let mut s = LineBuf::new();
            if write_op_type(&mut s, op)? {
                w.write_str(s.as_str())
            } else {
                write!(w, "OP-TYPE {:#x} ({})", op.subclass, op.class as u8)
            }
        }
        Packet::Address(a) => write_address(w, a),
        Packet::Counter(c) => write_counter(w, c),
    }
}

/// [`Display`](fmt::Display) adapter for [`describe`].
#[derive(Clone, Copy, Debug)]
pub struct Describe<'a>(pub &'a Packet);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe(f, self.0)
    }
}

/// Writes the `== <name> (<n> bytes)` header line.
pub fn write_header<W: Write>(w: &mut W, name: &str, len: usize) -> fmt::Result {
    writeln!(w, "== {name} ({len} bytes)")
}

/// Writes one dump line: offset, raw bytes (at most [`BYTES_PER_LINE`] are
/// shown) and the description (`None`: a bad packet).
pub fn write_line<W: Write>(w: &mut W, offset: usize, bytes: &[u8], packet: Option<&Packet>) -> fmt::Result {
    write!(w, ".  {offset:08x}: ")?;
    let shown = &bytes[..bytes.len().min(BYTES_PER_LINE)];
    for b in shown {
        write!(w, " {b:02x}")?;
    }
    for _ in shown.len()..BYTES_PER_LINE {
        w.write_str("   ")?;
    }
    w.write_str("  ")?;
    match packet {
        Some(p) => describe(w, p)?,
        None => w.write_str(BAD_PACKET)?,
    }
    w.write_char('\n')
}

/// Dump statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpSummary {
    /// Lines written (packets, padding runs and bad bytes).
    pub lines: usize,
    /// Bytes that did not decode.
    pub bad_bytes: usize,
}

/// Dumps every packet of `buf`, one per line (no header line).
pub fn dump_buffer<W: Write>(w: &mut W, buf: &[u8]) -> Result<DumpSummary, fmt::Error> {
    let mut summary = DumpSummary::default();
    let mut pos = 0;
    while pos < buf.len() {
        match decode(buf, pos) {
            Ok((packet, mut len)) => {
                if packet == Packet::Pad {
                    while len < BYTES_PER_LINE && buf.get(pos + len) == Some(&hdr::PAD) {
                        len += 1;
                    }
                }
                write_line(w, pos, &buf[pos..pos + len], Some(&packet))?;
                pos += len;
            }
            Err(_) => {
                write_line(w, pos, &buf[pos..pos + 1], None)?;
                summary.bad_bytes += 1;
                pos += 1;
            }
        }
        summary.lines += 1;
    }
    Ok(summary)
}

/// A small fixed-capacity string used to render one description.
struct LineBuf {
    buf: [u8; LINE_BUF_LEN],
    len: usize,
}

const LINE_BUF_LEN: usize = 128;

impl LineBuf {
    const fn new() -> Self {
        Self { buf: [0; LINE_BUF_LEN], len: 0 }
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s are appended, so the contents are UTF-8.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Events, OpType};
    use std::string::String;

    fn desc(p: Packet) -> String {
        let mut s = String::new();
        describe(&mut s, &p).unwrap();
        s
    }

    #[test]
    fn descriptions() {
        assert_eq!(desc(Packet::Events(Events(0x16))), "EV RETIRED L1D-ACCESS TLB-ACCESS");
        assert_eq!(desc(Packet::Events(Events(0x3000))), "EV IMPDEF:12,13");
        assert_eq!(desc(Packet::Events(Events(0x42))), "EV RETIRED NOT-TAKEN");
        let op = |class, subclass| Packet::OpType(OpType { class, subclass });
        assert_eq!(desc(op(OpClass::LoadStore, 0)), "LD GP-REG");
        assert_eq!(desc(op(OpClass::LoadStore, 1)), "ST GP-REG");
        assert_eq!(desc(op(OpClass::LoadStore, 0x1f)), "ST AT EXCL AR");
        assert_eq!(desc(op(OpClass::Branch, 3)), "B COND IND");
        assert_eq!(desc(op(OpClass::Branch, 0x10)), "B CR-RET");
        assert_eq!(desc(op(OpClass::Other, 0)), "OTHER INSN-OTHER");
        assert_eq!(desc(op(OpClass::Other, 1)), "OTHER COND-SELECT");
        assert_eq!(desc(op(OpClass::Other, 0x0a)), "SVE-OTHER EVLEN 32 FP");
        assert_eq!(desc(op(OpClass::Reserved, 5)), "OP-TYPE 0x5 (3)");
        let c = |index, value| Packet::Counter(Counter { index: CounterIndex(index), value });
        assert_eq!(desc(c(0, 12)), "LAT 12 TOT");
        assert_eq!(desc(c(9, 3)), "LAT 3 ");
        let a = |index, payload| Packet::Address(Address { index: AddressIndex(index), payload });
        assert_eq!(desc(a(4, 0x8000_0000_0000_1000)), "PBT 0x1000 el0 ns=1");
        assert_eq!(desc(a(9, 0x10)), "ADDR 0x10 (9)");
        assert_eq!(desc(Packet::Timestamp(u64::MAX)), "TS -1");
        assert_eq!(desc(Packet::Context { index: 0, id: 7 }), "CONTEXT 0x7 el1");
    }

    #[test]
    fn bad_bytes_and_pad_runs() {
        let mut s = String::new();
        let sum = dump_buffer(&mut s, &[0x02, 0, 0, 0x01]).unwrap();
        assert_eq!(sum, DumpSummary { lines: 3, bad_bytes: 1 });
        let lines: std::vec::Vec<&str> = s.lines().collect();
        assert!(lines[0].starts_with(".  00000000:  02 "));
        assert!(lines[0].ends_with("  Bad packet!"));
        assert!(lines[1].ends_with("  PAD"));
        assert_eq!(lines[2].len(), 63 + 3);
    }
}
