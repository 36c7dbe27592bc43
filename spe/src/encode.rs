//! Encoder: records (and single packets) to SPE packet bytes.
//!
//! The encoder emits packets in the order real implementations use (PC,
//! context, operation type, events, latencies, addresses, data source) and
//! ends the record with TIMESTAMP when the record has a timestamp, END
//! otherwise. Variable-size payloads (events, data source) use the smallest
//! size that holds the value. `decode(encode(r)) == r` for every valid
//! record (see [`validate`]).

use crate::packet::{
    hdr, Address, AddressIndex, CodeAddress, Counter, CounterIndex, Events, Packet, PhysAddress, ADDR_MASK,
    CONTEXT_EL1, CONTEXT_EL2,
};
use crate::record::Record;
use core::fmt;

/// Upper bound of an encoded record's length (every packet once).
pub const MAX_RECORD_LEN: usize = 128;

/// Largest index an (extended) address or counter header can carry.
pub const MAX_EXTENDED_INDEX: u8 = 31;
const SHORT_INDEX_LIMIT: u8 = 8;
const MAX_EL: u8 = 3;
const MAX_PAT: u8 = 15;
const MAX_CONTEXT_INDEX: u8 = 3;
const SIZE_CODE_8: u8 = 3;
const CONTEXT_SIZE_CODE: u8 = 2;
const COUNTER_SIZE_CODE: u8 = 1;

/// Why encoding failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// `out` is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A field does not fit its packet (named).
    InvalidField(&'static str),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed, available } => {
                write!(f, "output buffer too small: need {needed} bytes, have {available}")
            }
            EncodeError::InvalidField(name) => write!(f, "field `{name}` out of range"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}

/// The bytes of one encoded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketBytes {
    bytes: [u8; hdr::MAX_PACKET_LEN],
    len: usize,
}

impl PacketBytes {
    fn new() -> Self {
        Self { bytes: [0; hdr::MAX_PACKET_LEN], len: 0 }
    }

    fn push(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    fn push_le(&mut self, value: u64, size: usize) {
        for b in &value.to_le_bytes()[..size] {
            self.push(*b);
        }
    }

    /// The encoded bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Smallest payload size code (0..=3 for 1, 2, 4, 8 bytes) holding `v`.
const fn size_code(v: u64) -> u8 {
    if v <= u8::MAX as u64 {
        0
    } else if v <= u16::MAX as u64 {
        1
    } else if v <= u32::MAX as u64 {
        2
    } else {
        SIZE_CODE_8
    }
}

fn indexed_header(out: &mut PacketBytes, class: u8, index: u8) -> Result<(), EncodeError> {
    if index > MAX_EXTENDED_INDEX {
        return Err(EncodeError::InvalidField("index"));
    }
    if index >= SHORT_INDEX_LIMIT {
        out.push(hdr::EXTENDED | (index >> hdr::EXT_INDEX_SHIFT));
    }
    out.push(class | (index & hdr::SHORT_INDEX_MASK));
    Ok(())
}

/// Encodes one packet.
pub fn encode_packet(packet: &Packet) -> Result<PacketBytes, EncodeError> {
    let mut p = PacketBytes::new();
    let sized = |p: &mut PacketBytes, class: u8, v: u64| {
        let code = size_code(v);
        p.push(class | (code << hdr::SIZE_SHIFT));
        p.push_le(v, 1 << code);
    };
    match *packet {
        Packet::Pad => p.push(hdr::PAD),
        Packet::End => p.push(hdr::END),
        Packet::Timestamp(t) => {
            p.push(hdr::TIMESTAMP);
            p.push_le(t, 1 << SIZE_CODE_8);
        }
        Packet::Events(Events(e)) => sized(&mut p, hdr::EVENTS, e),
        Packet::DataSource(d) => sized(&mut p, hdr::DATA_SOURCE, d),
        Packet::Context { index, id } => {
            if index > MAX_CONTEXT_INDEX {
                return Err(EncodeError::InvalidField("context index"));
            }
            p.push(hdr::CONTEXT | index);
            p.push_le(u64::from(id), 1 << CONTEXT_SIZE_CODE);
        }
        Packet::OpType(op) => {
            p.push(hdr::OP_TYPE | op.class as u8);
            p.push(op.subclass);
        }
        Packet::Address(Address { index, payload }) => {
            indexed_header(&mut p, hdr::ADDRESS, index.0)?;
            p.push_le(payload, 1 << SIZE_CODE_8);
        }
        Packet::Counter(Counter { index, value }) => {
            if value > u64::from(u16::MAX) {
                return Err(EncodeError::InvalidField("counter value"));
            }
            indexed_header(&mut p, hdr::COUNTER, index.0)?;
            p.push_le(value, 1 << COUNTER_SIZE_CODE);
        }
    }
    Ok(p)
}

fn check_code(c: &Option<CodeAddress>, name: &'static str) -> Result<(), EncodeError> {
    match c {
        Some(c) if c.addr > ADDR_MASK || c.el > MAX_EL => Err(EncodeError::InvalidField(name)),
        _ => Ok(()),
    }
}

fn check_phys(p: &Option<PhysAddress>) -> Result<(), EncodeError> {
    match p {
        Some(p) if p.addr > ADDR_MASK || p.pat > MAX_PAT => Err(EncodeError::InvalidField("data_pa")),
        _ => Ok(()),
    }
}

/// Checks that every field fits its packet, so the record round-trips.
pub fn validate(r: &Record) -> Result<(), EncodeError> {
    check_code(&r.pc, "pc")?;
    check_code(&r.branch_target, "branch_target")?;
    check_code(&r.prev_branch_target, "prev_branch_target")?;
    check_phys(&r.data_pa)
}

/// Calls `f` with each packet of `r` except the terminator, in order.
fn for_each_body_packet(r: &Record, mut f: impl FnMut(Packet) -> Result<(), EncodeError>) -> Result<(), EncodeError> {
    let addr = |index, payload| Packet::Address(Address { index, payload });
    let lat = |index, v: u16| Packet::Counter(Counter { index, value: u64::from(v) });
    if let Some(pc) = r.pc {
        f(addr(AddressIndex::PC, pc.to_payload()))?;
    }
    if let Some(id) = r.context_el1 {
        f(Packet::Context { index: CONTEXT_EL1, id })?;
    }
    if let Some(id) = r.context_el2 {
        f(Packet::Context { index: CONTEXT_EL2, id })?;
    }
    if let Some(op) = r.op {
        f(Packet::OpType(op))?;
    }
    if let Some(e) = r.events {
        f(Packet::Events(e))?;
    }
    if let Some(v) = r.issue_latency {
        f(lat(CounterIndex::ISSUE, v))?;
    }
    if let Some(v) = r.total_latency {
        f(lat(CounterIndex::TOTAL, v))?;
    }
    if let Some(t) = r.branch_target {
        f(addr(AddressIndex::BRANCH_TARGET, t.to_payload()))?;
    }
    if let Some(t) = r.prev_branch_target {
        f(addr(AddressIndex::PREV_BRANCH_TARGET, t.to_payload()))?;
    }
    if let Some(va) = r.data_va {
        f(addr(AddressIndex::DATA_VIRTUAL, va))?;
    }
    if let Some(v) = r.translation_latency {
        f(lat(CounterIndex::TRANSLATION, v))?;
    }
    if let Some(pa) = r.data_pa {
        f(addr(AddressIndex::DATA_PHYSICAL, pa.to_payload()))?;
    }
    if let Some(d) = r.data_source {
        f(Packet::DataSource(d))?;
    }
    Ok(())
}

fn terminator(r: &Record) -> Packet {
    match r.timestamp {
        Some(t) => Packet::Timestamp(t),
        None => Packet::End,
    }
}

/// Length of `r` once encoded (unpadded).
pub fn encoded_len(r: &Record) -> Result<usize, EncodeError> {
    validate(r)?;
    let mut len = 0;
    for_each_body_packet(r, |p| {
        len += encode_packet(&p)?.len;
        Ok(())
    })?;
    Ok(len + encode_packet(&terminator(r))?.len)
}

struct Out<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let available = self.buf.len();
        let end = self.pos + bytes.len();
        let dst = self.buf.get_mut(self.pos..end).ok_or(EncodeError::BufferTooSmall { needed: end, available })?;
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }
}

/// Encodes `record` into `out`, returning the number of bytes written.
pub fn encode(record: &Record, out: &mut [u8]) -> Result<usize, EncodeError> {
    validate(record)?;
    let mut o = Out { buf: out, pos: 0 };
    for_each_body_packet(record, |p| o.put(encode_packet(&p)?.as_slice()))?;
    o.put(encode_packet(&terminator(record))?.as_slice())?;
    Ok(o.pos)
}

/// Encodes `record` as exactly `size` bytes: padding goes before the
/// terminator, as in fixed-size hardware records.
pub fn encode_padded(record: &Record, out: &mut [u8], size: usize) -> Result<usize, EncodeError> {
    let needed = encoded_len(record)?;
    let available = out.len();
    if needed > size || size > available {
        return Err(EncodeError::BufferTooSmall { needed: needed.max(size), available: available.min(size) });
    }
    let term = encode_packet(&terminator(record))?;
    let body = encode(record, out)? - term.len;
    let term_at = size - term.len;
    out[body..term_at].fill(hdr::PAD);
    out[term_at..size].copy_from_slice(term.as_slice());
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::decode;

    #[test]
    fn packets_round_trip() {
        let samples = [
            Packet::Events(Events(0x1_0000_0000)),
            Packet::DataSource(0x1234),
            Packet::Counter(Counter { index: CounterIndex(17), value: 9 }),
            Packet::Address(Address { index: AddressIndex(12), payload: 42 }),
        ];
        for p in samples {
            let b = encode_packet(&p).unwrap();
            assert_eq!(decode(b.as_slice(), 0), Ok((p, b.as_slice().len())));
        }
    }

    #[test]
    fn padded_layout() {
        let r = Record { pc: Some(CodeAddress::new(0x7ffdbf2143e0, 0, true)), ..Record::default() };
        let mut out = [0xaa; 64];
        assert_eq!(encode_padded(&r, &mut out, 64), Ok(64));
        assert_eq!(out[63], hdr::END);
        assert!(out[9..63].iter().all(|&b| b == 0));
        assert!(matches!(encode_padded(&r, &mut out, 8), Err(EncodeError::BufferTooSmall { .. })));
        let bad = Record { pc: Some(CodeAddress { addr: 1 << 60, el: 0, ns: false }), ..Record::default() };
        assert_eq!(encode(&bad, &mut out), Err(EncodeError::InvalidField("pc")));
    }
}
