//! SPE packet decoder.
//!
//! A packet is a one- or two-byte header followed by a little-endian payload
//! of `1 << hdr[5:4]` bytes (see the header constants in [`hdr`]).
//! [`decode`] never panics and never reads outside the given slice: a
//! truncated or unknown packet is reported as a [`DecodeError`] carrying its
//! offset, and the caller resumes by skipping one byte ([`Packets`] does).

use core::fmt;

/// Header byte values, masks and field positions.
pub mod hdr {
    /// Padding (one byte, no payload).
    pub const PAD: u8 = 0x00;
    /// End of record (one byte, no payload).
    pub const END: u8 = 0x01;
    /// Timestamp (8-byte payload); also ends a record.
    pub const TIMESTAMP: u8 = 0x71;
    /// Mask selecting the class bits of events / data source headers.
    pub const EVENTS_MASK: u8 = 0xcf;
    /// Events packet (class bits; size in bits 5:4).
    pub const EVENTS: u8 = 0x42;
    /// Data source packet (class bits; size in bits 5:4).
    pub const DATA_SOURCE: u8 = 0x43;
    /// Mask selecting context / operation type / extended headers.
    pub const CLASS_MASK: u8 = 0xfc;
    /// Context packet; index in bits 1:0.
    pub const CONTEXT: u8 = 0x64;
    /// Operation type packet; class in bits 1:0.
    pub const OP_TYPE: u8 = 0x48;
    /// First byte of an extended (two-byte) header; index bits 4:3 in 1:0.
    pub const EXTENDED: u8 = 0x20;
    /// Mask selecting address / counter headers.
    pub const INDEXED_MASK: u8 = 0xf8;
    /// Address packet; index bits 2:0 in 2:0.
    pub const ADDRESS: u8 = 0xb0;
    /// Counter packet; index bits 2:0 in 2:0.
    pub const COUNTER: u8 = 0x98;
    /// Position of the payload size field.
    pub const SIZE_SHIFT: u32 = 4;
    /// Width mask of the payload size field.
    pub const SIZE_MASK: u8 = 0x3;
    /// Mask of the index bits in a short (or second extended) header byte.
    pub const SHORT_INDEX_MASK: u8 = 0x7;
    /// Mask of the high index bits in the first extended header byte.
    pub const EXT_INDEX_MASK: u8 = 0x3;
    /// Position of the high index bits within the full index.
    pub const EXT_INDEX_SHIFT: u32 = 3;
    /// Mask of the context index / operation class bits.
    pub const SUBTYPE_MASK: u8 = 0x3;
    /// Largest packet: two header bytes and an 8-byte payload.
    pub const MAX_PACKET_LEN: usize = 10;
}

/// Event bits of the events packet payload.
pub mod event {
    /// Generated an exception.
    pub const EXCEPTION_GEN: u64 = 1 << 0;
    /// Architecturally retired.
    pub const RETIRED: u64 = 1 << 1;
    /// Level 1 data cache access.
    pub const L1D_ACCESS: u64 = 1 << 2;
    /// Level 1 data cache refill.
    pub const L1D_REFILL: u64 = 1 << 3;
    /// TLB access.
    pub const TLB_ACCESS: u64 = 1 << 4;
    /// TLB walk (refill).
    pub const TLB_WALK: u64 = 1 << 5;
    /// Conditional instruction failed its condition / branch not taken.
    pub const NOT_TAKEN: u64 = 1 << 6;
    /// Mispredicted branch.
    pub const MISPRED: u64 = 1 << 7;
    /// Last level cache access.
    pub const LLC_ACCESS: u64 = 1 << 8;
    /// Last level cache miss.
    pub const LLC_MISS: u64 = 1 << 9;
    /// Remote access.
    pub const REMOTE_ACCESS: u64 = 1 << 10;
    /// Misaligned access.
    pub const ALIGNMENT: u64 = 1 << 11;
}

/// Operation type packet sub-class bits.
pub mod op {
    /// Load/store: store (else load).
    pub const LDST_ST: u8 = 1 << 0;
    /// Load/store sub-class of a general-purpose register load/store.
    pub const LDST_GP_REG: u8 = 0x00;
    /// Branch: conditional.
    pub const BR_COND: u8 = 1 << 0;
    /// Branch: indirect.
    pub const BR_INDIRECT: u8 = 1 << 1;
    /// Other: conditional select.
    pub const OTHER_COND: u8 = 1 << 0;
}

/// Operation class (operation type header bits 1:0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpClass {
    /// Other operation.
    Other = 0,
    /// Load, store or atomic.
    LoadStore = 1,
    /// Branch or exception return.
    Branch = 2,
    /// Reserved encoding.
    Reserved = 3,
}

impl OpClass {
    /// From the two header bits.
    pub const fn from_bits(bits: u8) -> Self {
        match bits & hdr::SUBTYPE_MASK {
            0 => OpClass::Other,
            1 => OpClass::LoadStore,
            2 => OpClass::Branch,
            _ => OpClass::Reserved,
        }
    }
}

/// Operation type packet contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpType {
    /// Operation class.
    pub class: OpClass,
    /// The one-byte payload (sub-class and flags).
    pub subclass: u8,
}

/// Index of an address packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressIndex(pub u8);

impl AddressIndex {
    /// Instruction virtual address (PC).
    pub const PC: Self = Self(0);
    /// Branch target address.
    pub const BRANCH_TARGET: Self = Self(1);
    /// Data access virtual address.
    pub const DATA_VIRTUAL: Self = Self(2);
    /// Data access physical address.
    pub const DATA_PHYSICAL: Self = Self(3);
    /// Previous branch target address.
    pub const PREV_BRANCH_TARGET: Self = Self(4);
}

/// Index of a counter packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CounterIndex(pub u8);

impl CounterIndex {
    /// Total latency.
    pub const TOTAL: Self = Self(0);
    /// Issue latency.
    pub const ISSUE: Self = Self(1);
    /// Translation latency.
    pub const TRANSLATION: Self = Self(2);
}

/// Context packet index: CONTEXTIDR_EL1.
pub const CONTEXT_EL1: u8 = 0;
/// Context packet index: CONTEXTIDR_EL2.
pub const CONTEXT_EL2: u8 = 1;

/// Mask of the 56 address bits of an address packet payload.
pub const ADDR_MASK: u64 = (1 << 56) - 1;
const NS_SHIFT: u32 = 63;
const EL_SHIFT: u32 = 61;
const EL_MASK: u64 = 0x3;
const CH_SHIFT: u32 = 62;
const PAT_SHIFT: u32 = 56;
const PAT_MASK: u64 = 0xf;
const TOP_BYTE_SHIFT: u32 = 56;
/// Bit 55 of a virtual address selects the upper (TTBR1) range.
const VA_UPPER_RANGE_BIT: u64 = 1 << 55;

/// An instruction address (PC, branch target, previous branch target).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CodeAddress {
    /// Virtual address bits 55:0.
    pub addr: u64,
    /// Exception level (0..=3).
    pub el: u8,
    /// Non-secure state.
    pub ns: bool,
}

impl CodeAddress {
    /// Builds one from a full 64-bit virtual address (bits 63:56 dropped).
    pub const fn new(va: u64, el: u8, ns: bool) -> Self {
        Self { addr: va & ADDR_MASK, el: el & EL_MASK as u8, ns }
    }

    /// Decodes an address packet payload.
    pub const fn from_payload(p: u64) -> Self {
        Self { addr: p & ADDR_MASK, el: ((p >> EL_SHIFT) & EL_MASK) as u8, ns: (p >> NS_SHIFT) & 1 == 1 }
    }

    /// Encodes the address packet payload.
    pub const fn to_payload(&self) -> u64 {
        (self.addr & ADDR_MASK) | ((self.el as u64 & EL_MASK) << EL_SHIFT) | ((self.ns as u64) << NS_SHIFT)
    }

    /// The 64-bit virtual address (bit 55 sign-extended over the top byte).
    pub const fn virtual_address(&self) -> u64 {
        if self.addr & VA_UPPER_RANGE_BIT != 0 {
            self.addr | !ADDR_MASK
        } else {
            self.addr
        }
    }
}

/// A data physical address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PhysAddress {
    /// Physical address bits 55:0.
    pub addr: u64,
    /// Non-secure.
    pub ns: bool,
    /// Checked access (memory tagging).
    pub ch: bool,
    /// Physical allocation tag (0..=15).
    pub pat: u8,
}

impl PhysAddress {
    /// Decodes an address packet payload.
    pub const fn from_payload(p: u64) -> Self {
        Self {
            addr: p & ADDR_MASK,
            ns: (p >> NS_SHIFT) & 1 == 1,
            ch: (p >> CH_SHIFT) & 1 == 1,
            pat: ((p >> PAT_SHIFT) & PAT_MASK) as u8,
        }
    }

    /// Encodes the address packet payload.
    pub const fn to_payload(&self) -> u64 {
        (self.addr & ADDR_MASK)
            | ((self.pat as u64 & PAT_MASK) << PAT_SHIFT)
            | ((self.ch as u64) << CH_SHIFT)
            | ((self.ns as u64) << NS_SHIFT)
    }
}

/// Address packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// Which address this is.
    pub index: AddressIndex,
    /// The raw 8-byte payload.
    pub payload: u64,
}

impl Address {
    /// Interprets the payload as an instruction address.
    pub const fn code(&self) -> CodeAddress {
        CodeAddress::from_payload(self.payload)
    }

    /// Interprets the payload as a physical address.
    pub const fn phys(&self) -> PhysAddress {
        PhysAddress::from_payload(self.payload)
    }

    /// Top byte (tag) of a data virtual address.
    pub const fn tag(&self) -> u8 {
        (self.payload >> TOP_BYTE_SHIFT) as u8
    }
}

/// Counter packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Counter {
    /// Which counter.
    pub index: CounterIndex,
    /// Raw payload (a 16-bit count).
    pub value: u64,
}

/// Events packet payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Events(pub u64);

impl Events {
    /// True when all bits of `mask` are set.
    pub const fn contains(&self, mask: u64) -> bool {
        self.0 & mask == mask
    }
}

/// One decoded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Packet {
    /// Padding byte.
    Pad,
    /// End of record.
    End,
    /// Timestamp (ends the record).
    Timestamp(u64),
    /// Events.
    Events(Events),
    /// Data source (IMPLEMENTATION DEFINED meaning).
    DataSource(u64),
    /// Context (CONTEXTIDR_ELx value); `index` 0 = EL1, 1 = EL2.
    Context {
        /// Context index.
        index: u8,
        /// CONTEXTIDR value.
        id: u32,
    },
    /// Operation type.
    OpType(OpType),
    /// Address.
    Address(Address),
    /// Counter.
    Counter(Counter),
}

/// Why a packet could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The buffer ends inside the packet.
    Truncated {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes left in the buffer.
        available: usize,
    },
    /// No packet has this header byte.
    UnknownHeader(u8),
    /// An extended header whose second byte is not an address or counter.
    UnknownExtendedHeader(u8, u8),
}

/// A decode failure at `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Offset of the bad packet's first byte.
    pub offset: usize,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DecodeErrorKind::Truncated { needed, available } => {
                write!(f, "truncated packet at offset {:#x}: needs {} bytes, {} left", self.offset, needed, available)
            }
            DecodeErrorKind::UnknownHeader(h) => {
                write!(f, "unknown packet header {:#04x} at offset {:#x}", h, self.offset)
            }
            DecodeErrorKind::UnknownExtendedHeader(h0, h1) => {
                write!(f, "unknown extended header {:#04x} {:#04x} at offset {:#x}", h0, h1, self.offset)
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

/// Payload length encoded in a header byte.
pub const fn payload_len(header: u8) -> usize {
    1 << ((header >> hdr::SIZE_SHIFT) & hdr::SIZE_MASK)
}

/// Reads `len` (1, 2, 4 or 8) bytes little-endian from `buf[start..]`,
/// or reports truncation relative to the packet at `offset`.
fn read_payload(buf: &[u8], offset: usize, header_len: usize, len: usize) -> Result<(u64, usize), DecodeError> {
    let total = header_len + len;
    let available = buf.len().saturating_sub(offset);
    let bytes = offset
        .checked_add(header_len)
        .and_then(|start| buf.get(start..start.checked_add(len)?))
        .ok_or(DecodeError { offset, kind: DecodeErrorKind::Truncated { needed: total, available } })?;
    let value = bytes.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    Ok((value, total))
}

/// Decodes the packet at `buf[offset..]`, returning it and its length.
pub fn decode(buf: &[u8], offset: usize) -> Result<(Packet, usize), DecodeError> {
    let truncated = |needed| DecodeError {
        offset,
        kind: DecodeErrorKind::Truncated { needed, available: buf.len().saturating_sub(offset) },
    };
    let &h0 = buf.get(offset).ok_or(truncated(1))?;
    match h0 {
        hdr::PAD => return Ok((Packet::Pad, 1)),
        hdr::END => return Ok((Packet::End, 1)),
        hdr::TIMESTAMP => {
            let (v, n) = read_payload(buf, offset, 1, payload_len(h0))?;
            return Ok((Packet::Timestamp(v), n));
        }
        _ => {}
    }
    match h0 & hdr::EVENTS_MASK {
        hdr::EVENTS => {
            let (v, n) = read_payload(buf, offset, 1, payload_len(h0))?;
            return Ok((Packet::Events(Events(v)), n));
        }
        hdr::DATA_SOURCE => {
            let (v, n) = read_payload(buf, offset, 1, payload_len(h0))?;
            return Ok((Packet::DataSource(v), n));
        }
        _ => {}
    }
    let sub = h0 & hdr::SUBTYPE_MASK;
    let (h, header_len, high_index) = match h0 & hdr::CLASS_MASK {
        hdr::CONTEXT => {
            let (v, n) = read_payload(buf, offset, 1, payload_len(h0))?;
            let id = v as u32;
            return Ok((Packet::Context { index: sub, id }, n));
        }
        hdr::OP_TYPE => {
            let (v, n) = read_payload(buf, offset, 1, payload_len(h0))?;
            let op = OpType { class: OpClass::from_bits(sub), subclass: v as u8 };
            return Ok((Packet::OpType(op), n));
        }
        hdr::EXTENDED => {
            let &h1 = buf.get(offset + 1).ok_or(truncated(2))?;
            (h1, 2, (h0 & hdr::EXT_INDEX_MASK) << hdr::EXT_INDEX_SHIFT)
        }
        _ => (h0, 1, 0),
    };
    let index = high_index | (h & hdr::SHORT_INDEX_MASK);
    match h & hdr::INDEXED_MASK {
        hdr::ADDRESS => {
            let (payload, n) = read_payload(buf, offset, header_len, payload_len(h))?;
            let index = AddressIndex(index);
            Ok((Packet::Address(Address { index, payload }), n))
        }
        hdr::COUNTER => {
            let (value, n) = read_payload(buf, offset, header_len, payload_len(h))?;
            let index = CounterIndex(index);
            Ok((Packet::Counter(Counter { index, value }), n))
        }
        _ => Err(DecodeError {
            offset,
            kind: if header_len == 2 {
                DecodeErrorKind::UnknownExtendedHeader(h0, h)
            } else {
                DecodeErrorKind::UnknownHeader(h0)
            },
        }),
    }
}

/// A packet with its position in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located {
    /// Offset of the first header byte.
    pub offset: usize,
    /// Encoded length in bytes.
    pub len: usize,
    /// The packet.
    pub packet: Packet,
}

/// Iterator over the packets of a buffer. After an error it resumes one
/// byte further, like `perf`.
#[derive(Clone, Debug)]
pub struct Packets<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Packets<'a> {
    /// Iterates over `buf` from its start.
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Offset of the next packet.
    pub const fn position(&self) -> usize {
        self.pos
    }
}

impl Iterator for Packets<'_> {
    type Item = Result<Located, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let offset = self.pos;
        Some(match decode(self.buf, offset) {
            Ok((packet, len)) => {
                self.pos += len;
                Ok(Located { offset, len, packet })
            }
            Err(e) => {
                self.pos += 1;
                Err(e)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_packets() {
        assert_eq!(decode(&[0], 0), Ok((Packet::Pad, 1)));
        assert_eq!(decode(&[1], 0), Ok((Packet::End, 1)));
        let ts = [0x71, 0x6b, 0x72, 0x5a, 0x1d, 0x8f, 0x03, 0, 0];
        assert_eq!(decode(&ts, 0), Ok((Packet::Timestamp(3913207673451), 9)));
        assert_eq!(decode(&[0x52, 0x16, 0x00], 0), Ok((Packet::Events(Events(0x16)), 3)));
        assert_eq!(decode(&[0x43, 0x07], 0), Ok((Packet::DataSource(7), 2)));
        assert_eq!(decode(&[0x65, 0x80, 0x5f, 0, 0], 0), Ok((Packet::Context { index: CONTEXT_EL2, id: 0x5f80 }, 5)));
        assert_eq!(decode(&[0x4a, 0x01], 0), Ok((Packet::OpType(OpType { class: OpClass::Branch, subclass: 1 }), 2)));
    }

    #[test]
    fn addresses_and_counters() {
        let pc = [0xb0, 0xd0, 0xc2, 0xa1, 0xed, 0x66, 0xba, 0xff, 0xc0];
        let (p, n) = decode(&pc, 0).unwrap();
        assert_eq!(n, 9);
        let Packet::Address(a) = p else { panic!() };
        assert_eq!(a.index, AddressIndex::PC);
        assert_eq!(a.code(), CodeAddress { addr: 0xffba66eda1c2d0, el: 2, ns: true });
        assert_eq!(a.code().virtual_address(), 0xffffba66eda1c2d0);
        // Extended header: index (0b01 << 3) | 2 = 10.
        let ext = [0x21, 0x9a, 0x05, 0x00];
        assert_eq!(decode(&ext, 0), Ok((Packet::Counter(Counter { index: CounterIndex(10), value: 5 }), 4)));
        let ext_addr = [0x23, 0xb4, 1, 2, 3, 4, 5, 6, 7, 8];
        let (p, n) = decode(&ext_addr, 0).unwrap();
        assert_eq!(n, 10);
        assert_eq!(p, Packet::Address(Address { index: AddressIndex(28), payload: 0x0807060504030201 }));
    }

    #[test]
    fn errors() {
        assert_eq!(
            decode(&[0x71, 1, 2], 0),
            Err(DecodeError { offset: 0, kind: DecodeErrorKind::Truncated { needed: 9, available: 3 } })
        );
        assert_eq!(decode(&[0, 0x02], 1), Err(DecodeError { offset: 1, kind: DecodeErrorKind::UnknownHeader(2) }));
        assert_eq!(decode(&[0x20], 0).unwrap_err().kind, DecodeErrorKind::Truncated { needed: 2, available: 1 });
        assert_eq!(decode(&[0x20, 0x00], 0).unwrap_err().kind, DecodeErrorKind::UnknownExtendedHeader(0x20, 0));
        assert!(decode(&[], 0).is_err());
        assert!(decode(&[0], usize::MAX).is_err());
        let all: usize = Packets::new(&[0x02, 0x01, 0xb0]).count();
        assert_eq!(all, 3);
    }
}
