//! Records: the packets of one sampled operation, grouped.
//!
//! A record ends with an END packet or with a TIMESTAMP packet (when
//! timestamps are enabled the timestamp replaces END). Padding between and
//! inside records is skipped.

use crate::packet::{
    AddressIndex, CodeAddress, CounterIndex, DecodeError, Events, OpType, Packet, Packets, PhysAddress, CONTEXT_EL1,
    CONTEXT_EL2,
};

/// One decoded SPE record. Fields absent from the record are `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Record {
    /// Sampled instruction address with its EL and NS bits.
    pub pc: Option<CodeAddress>,
    /// Branch target.
    pub branch_target: Option<CodeAddress>,
    /// Previous branch target.
    pub prev_branch_target: Option<CodeAddress>,
    /// Data virtual address (64 bits, top byte holds the tag).
    pub data_va: Option<u64>,
    /// Data physical address.
    pub data_pa: Option<PhysAddress>,
    /// Events bitmask.
    pub events: Option<Events>,
    /// Operation type.
    pub op: Option<OpType>,
    /// Data source.
    pub data_source: Option<u64>,
    /// CONTEXTIDR_EL1.
    pub context_el1: Option<u32>,
    /// CONTEXTIDR_EL2.
    pub context_el2: Option<u32>,
    /// Timestamp (the record ended with a TIMESTAMP packet).
    pub timestamp: Option<u64>,
    /// Total latency in cycles.
    pub total_latency: Option<u16>,
    /// Issue latency in cycles.
    pub issue_latency: Option<u16>,
    /// Translation latency in cycles.
    pub translation_latency: Option<u16>,
}

/// What `Record::apply` did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Stored in the record.
    Stored,
    /// Padding: nothing to store.
    Padding,
    /// The packet ends the record.
    Terminator,
    /// A packet with an index the record has no field for.
    Ignored,
}

impl Record {
    /// Adds one packet to the record.
    pub fn apply(&mut self, packet: &Packet) -> Applied {
        match *packet {
            Packet::Pad => return Applied::Padding,
            Packet::End => return Applied::Terminator,
            Packet::Timestamp(t) => {
                self.timestamp = Some(t);
                return Applied::Terminator;
            }
            Packet::Events(e) => self.events = Some(e),
            Packet::DataSource(d) => self.data_source = Some(d),
            Packet::Context { index, id } => match index {
                CONTEXT_EL1 => self.context_el1 = Some(id),
                CONTEXT_EL2 => self.context_el2 = Some(id),
                _ => return Applied::Ignored,
            },
            Packet::OpType(op) => self.op = Some(op),
            Packet::Address(a) => match a.index {
                AddressIndex::PC => self.pc = Some(a.code()),
                AddressIndex::BRANCH_TARGET => self.branch_target = Some(a.code()),
                AddressIndex::PREV_BRANCH_TARGET => self.prev_branch_target = Some(a.code()),
                AddressIndex::DATA_VIRTUAL => self.data_va = Some(a.payload),
                AddressIndex::DATA_PHYSICAL => self.data_pa = Some(a.phys()),
                _ => return Applied::Ignored,
            },
            Packet::Counter(c) => {
                let v = c.value as u16;
                match c.index {
                    CounterIndex::TOTAL => self.total_latency = Some(v),
                    CounterIndex::ISSUE => self.issue_latency = Some(v),
                    CounterIndex::TRANSLATION => self.translation_latency = Some(v),
                    _ => return Applied::Ignored,
                }
            }
        }
        Applied::Stored
    }
}

/// How a record ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordEnd {
    /// END packet.
    End,
    /// TIMESTAMP packet.
    Timestamp,
    /// The buffer ended first (the record may be incomplete).
    Truncated,
}

/// A record with its position in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssembledRecord {
    /// Offset of the record's first non-padding packet.
    pub offset: usize,
    /// Bytes from `offset` to the end of its terminator.
    pub len: usize,
    /// The record.
    pub record: Record,
    /// How it ended.
    pub end: RecordEnd,
    /// Packets with indices the record has no field for.
    pub ignored_packets: u32,
}

/// Groups the packets of a buffer into records.
///
/// On a decode error the partial record is dropped, the error is yielded
/// (with its offset) and assembly resumes one byte after the bad byte.
#[derive(Clone, Debug)]
pub struct RecordAssembler<'a> {
    packets: Packets<'a>,
    len: usize,
}

impl<'a> RecordAssembler<'a> {
    /// Assembles records from `buf`.
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { packets: Packets::new(buf), len: buf.len() }
    }
}

impl Iterator for RecordAssembler<'_> {
    type Item = Result<AssembledRecord, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut current: Option<AssembledRecord> = None;
        for item in self.packets.by_ref() {
            let located = match item {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            if located.packet == Packet::Pad && current.is_none() {
                continue;
            }
            let rec = current.get_or_insert(AssembledRecord {
                offset: located.offset,
                len: 0,
                record: Record::default(),
                end: RecordEnd::Truncated,
                ignored_packets: 0,
            });
            rec.len = located.offset + located.len - rec.offset;
            match rec.record.apply(&located.packet) {
                Applied::Terminator => {
                    rec.end = if located.packet == Packet::End { RecordEnd::End } else { RecordEnd::Timestamp };
                    return current.map(Ok);
                }
                Applied::Ignored => rec.ignored_packets += 1,
                Applied::Stored | Applied::Padding => {}
            }
        }
        if let Some(rec) = current.as_mut() {
            rec.len = self.len - rec.offset;
        }
        current.map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{DecodeErrorKind, OpClass};

    #[test]
    fn groups_records() {
        // PAD, PC, B COND, TS | PAD PAD | EV, END | trailing LAT
        let buf = [
            0x00, 0xb0, 0x10, 0, 0, 0, 0, 0, 0, 0x20, 0x4a, 0x01, 0x71, 5, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x42, 0x02,
            0x01, 0x98, 0x07, 0x00,
        ];
        let recs: std::vec::Vec<_> = RecordAssembler::new(&buf).collect();
        assert_eq!(recs.len(), 3);
        let r0 = recs[0].unwrap();
        assert_eq!((r0.offset, r0.len, r0.end), (1, 20, RecordEnd::Timestamp));
        assert_eq!(r0.record.pc, Some(CodeAddress::new(0x10, 1, false)));
        assert_eq!(r0.record.op.unwrap().class, OpClass::Branch);
        assert_eq!(r0.record.timestamp, Some(5));
        let r1 = recs[1].unwrap();
        assert_eq!((r1.offset, r1.len, r1.end), (23, 3, RecordEnd::End));
        assert_eq!(r1.record.events, Some(Events(2)));
        let r2 = recs[2].unwrap();
        assert_eq!((r2.offset, r2.len, r2.end), (26, 3, RecordEnd::Truncated));
        assert_eq!(r2.record.total_latency, Some(7));
    }

    #[test]
    fn resumes_after_errors() {
        let buf = [0x42, 0x02, 0x05, 0x01, 0x71, 1];
        let recs: std::vec::Vec<_> = RecordAssembler::new(&buf).collect();
        // EV (dropped by the error), bad 0x05, END, truncated TS, then the
        // TS payload byte 0x01 resynchronises as an END.
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[0].unwrap_err().offset, 2);
        assert_eq!(recs[1].unwrap().end, RecordEnd::End);
        assert_eq!(recs[1].unwrap().offset, 3);
        let e = recs[2].unwrap_err();
        assert_eq!(e.offset, 4);
        assert!(matches!(e.kind, DecodeErrorKind::Truncated { .. }));
        assert_eq!(recs[3].unwrap().offset, 5);
    }
}
