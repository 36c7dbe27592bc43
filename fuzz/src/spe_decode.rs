//! `spe_decode`: the SPE packet decoder and record assembler on any buffer.
//!
//! Properties: [`decode`] never reads past the buffer (the same packet
//! decodes from a copy cut right after it, and a copy one byte shorter is
//! `Truncated`); a packet is 1..=10 bytes; every packet that
//! [`encode_packet`] takes decodes back to itself; [`Packets`] advances
//! and stays inside the buffer; [`RecordAssembler`] yields records in
//! order, inside the buffer, not overlapping, and a record that
//! [`validate`] accepts re-encodes to bytes that assemble to the same record.

use spevisor_spe::encode::{encode_packet, validate};
use spevisor_spe::packet::{decode, DecodeErrorKind, Packets};
use spevisor_spe::record::{RecordAssembler, RecordEnd};

/// The longest packet: an extended header (2 bytes) and 8 payload bytes.
const MAX_PACKET: usize = 10;

fn check_decode_at(buf: &[u8], offset: usize) {
    match decode(buf, offset) {
        Ok((packet, len)) => {
            assert!((1..=MAX_PACKET).contains(&len), "packet length {len}");
            assert!(offset + len <= buf.len(), "packet at {offset} of {len} bytes runs past {}", buf.len());
            let exact = &buf[offset..offset + len];
            assert_eq!(decode(exact, 0), Ok((packet, len)), "the packet needs bytes after it");
            let short = decode(&exact[..len - 1], 0);
            if len > 1 {
                assert!(
                    matches!(short, Err(e) if matches!(e.kind, DecodeErrorKind::Truncated { .. })),
                    "a packet cut short decodes: {short:?}"
                );
            }
            if let Ok(bytes) = encode_packet(&packet) {
                assert_eq!(decode(bytes.as_slice(), 0).map(|r| r.0), Ok(packet), "encode/decode disagree");
            }
        }
        Err(e) => {
            assert_eq!(e.offset, offset);
            if let DecodeErrorKind::Truncated { needed, available } = e.kind {
                assert_eq!(available, buf.len().saturating_sub(offset));
                assert!(needed > available, "truncated with {available} of {needed} bytes");
            }
        }
    }
}

pub fn run(buf: &[u8]) {
    for offset in 0..=buf.len() {
        check_decode_at(buf, offset);
    }
    let mut last = None;
    for item in Packets::new(buf) {
        let offset = match item {
            Ok(l) => {
                assert!(l.offset + l.len <= buf.len());
                l.offset
            }
            Err(e) => e.offset,
        };
        assert!(last.is_none_or(|p| offset > p), "packets do not advance");
        last = Some(offset);
    }
    let mut end = 0;
    for item in RecordAssembler::new(buf) {
        let Ok(r) = item else { continue };
        assert!(r.offset >= end, "record at {} overlaps the previous one (ends {end})", r.offset);
        assert!(r.len >= 1 && r.offset + r.len <= buf.len(), "record {}+{} outside the buffer", r.offset, r.len);
        end = r.offset + r.len;
        if r.end != RecordEnd::Truncated && validate(&r.record).is_ok() {
            let mut out = [0u8; 256];
            let n = spevisor_spe::encode(&r.record, &mut out).expect("a valid record encodes");
            let again: Vec<_> = RecordAssembler::new(&out[..n]).collect();
            assert_eq!(again.len(), 1, "one record re-encodes to one record");
            let again = again[0].expect("a re-encoded record decodes");
            assert_eq!(again.record, r.record, "record changed through encode");
        }
    }
}
