//! Malformed blobs: always an error or a value, never a panic or a hang.

mod common;

use common::{board, XorShift};
use spevisor_dtb::{parse, Block, DtbError, Fdt, Malformation, FDT_MAGIC};

fn put32(d: &mut [u8], off: usize, v: u32) {
    d[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

fn get32(d: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(d[off..off + 4].try_into().unwrap())
}

/// Parses and, when it succeeds, reads everything the reader offers.
fn exercise(d: &[u8]) {
    let _ = parse(d).map(|p| (p.ram_size(), p.largest_ram(), p.cpu_count()));
    if let Ok(fdt) = Fdt::new(d) {
        for n in fdt.nodes() {
            let _ = fdt.ancestry(&n).len();
            let _ = fdt.raw_reg(&n).map(|r| r.count());
            let _ = fdt.translate(&n, 0);
            for p in n.properties() {
                let _ = (p.as_str(), p.as_u64(), p.strings().count(), p.cells().count());
            }
            let _ = n.children().count();
        }
        let _ = fdt.reserved_entries().count();
    }
}

fn samples() -> Vec<(String, Vec<u8>)> {
    let mut v = common::fixtures();
    v.push(("board".into(), board(true, |_| {})));
    v
}

#[test]
fn every_truncation_is_rejected() {
    for (name, d) in samples() {
        for len in 0..d.len() {
            let err = parse(&d[..len]).expect_err(&name);
            let expected = if len < spevisor_dtb::HEADER_SIZE {
                matches!(err, DtbError::TooShortForHeader { .. })
            } else {
                matches!(err, DtbError::TotalSizeExceedsBuffer { .. })
            };
            assert!(expected, "{name} cut at {len}: {err}");
        }
    }
}

#[test]
fn every_truncation_with_matching_totalsize_is_safe() {
    // Also shrink totalsize and the block sizes so the structure walk itself
    // meets the cut.
    for (name, d) in samples() {
        let off_struct = get32(&d, 8) as usize;
        let off_strings = get32(&d, 12) as usize;
        for len in 40..d.len() {
            let mut t = d[..len].to_vec();
            put32(&mut t, 4, len as u32);
            let struct_size = len.saturating_sub(off_struct).min(get32(&d, 36) as usize);
            put32(&mut t, 36, struct_size as u32);
            let strings_size = len.saturating_sub(off_strings).min(get32(&d, 32) as usize);
            put32(&mut t, 32, strings_size as u32);
            let r = parse(&t);
            // Cutting only the alignment padding after the strings is harmless.
            let content_end = off_strings + get32(&d, 32) as usize;
            assert!(len >= content_end || r.is_err(), "{name} cut at {len} parsed: {r:?}");
            exercise(&t);
        }
    }
}

#[test]
fn header_corruptions_name_the_problem() {
    let (_, d) = &common::fixtures()[0];
    let with = |off: usize, v: u32| {
        let mut c = d.clone();
        put32(&mut c, off, v);
        parse(&c).unwrap_err()
    };
    assert_eq!(with(0, 0xfeed_d00d), DtbError::BadMagic { found: 0xfeed_d00d });
    assert_eq!(with(20, 16), DtbError::UnsupportedVersion { version: 16, last_comp_version: 16 });
    assert_eq!(with(24, 18), DtbError::UnsupportedVersion { version: 17, last_comp_version: 18 });
    let total = d.len() as u32;
    assert_eq!(with(4, total + 1), DtbError::TotalSizeExceedsBuffer { totalsize: total + 1, len: d.len() });
    assert_eq!(with(4, 8), DtbError::BadTotalSize { totalsize: 8 });
    assert!(matches!(with(8, total), DtbError::BlockOutOfRange { block: Block::Struct, .. }));
    assert!(matches!(with(8, u32::MAX - 3), DtbError::BlockOutOfRange { block: Block::Struct, .. }));
    assert!(matches!(with(36, u32::MAX), DtbError::BlockOutOfRange { block: Block::Struct, .. }));
    assert!(matches!(with(12, total), DtbError::BlockOutOfRange { block: Block::Strings, .. }));
    assert!(matches!(with(16, total), DtbError::BlockOutOfRange { block: Block::MemReserve, .. }));
    assert!(matches!(with(8, get32(d, 8) + 2), DtbError::MisalignedBlock { block: Block::Struct, .. }));
    let err = with(0, 0);
    assert_eq!(err.to_string(), "bad DTB magic 0x00000000 at offset 0 (expected 0xd00dfeed)");
    assert_eq!(
        with(4, total + 1).to_string(),
        format!("DTB header says totalsize {:#x} but only {:#x} bytes are available", total + 1, total)
    );
}

#[test]
fn structure_corruptions_name_offset_and_problem() {
    let (_, d) = &common::fixtures()[0];
    let off_struct = get32(d, 8) as usize;
    // The first token is the root's FDT_BEGIN_NODE.
    let mut c = d.clone();
    put32(&mut c, off_struct, 0x7);
    let err = parse(&c).unwrap_err();
    assert_eq!(err, DtbError::Malformed { offset: off_struct, what: Malformation::UnknownToken(7) });
    assert_eq!(err.to_string(), format!("malformed DTB structure at offset {off_struct:#x}: unknown token 0x7"));
    // Root replaced by FDT_END_NODE.
    put32(&mut c, off_struct, 2);
    assert!(matches!(parse(&c), Err(DtbError::Malformed { what: Malformation::UnbalancedEndNode, .. })));
    // First property of the root: huge length, then bad name offset.
    let prop = off_struct + 8; // BEGIN_NODE + empty name padded to 4
    assert_eq!(get32(d, prop), 3, "expected FDT_PROP after the root name");
    let mut c = d.clone();
    put32(&mut c, prop + 4, 0xffff_fff0);
    assert!(matches!(
        parse(&c),
        Err(DtbError::Malformed { what: Malformation::PropertyOverrun { len: 0xffff_fff0 }, .. })
    ));
    let mut c = d.clone();
    put32(&mut c, prop + 8, 0x00ff_ffff);
    assert!(matches!(parse(&c), Err(DtbError::Malformed { what: Malformation::BadNameOffset(0x00ff_ffff), .. })));
}

#[test]
fn unterminated_reservation_map() {
    // Move the map to the very end of the blob and give it no zero entry.
    let mut d = board(true, |_| {});
    while !d.len().is_multiple_of(8) {
        d.push(0);
    }
    let rsv = d.len() as u32;
    d.extend_from_slice(&[1; 16]);
    let total = d.len() as u32;
    put32(&mut d, 4, total);
    put32(&mut d, 16, rsv);
    assert_eq!(parse(&d), Err(DtbError::UnterminatedReservationMap));
}

#[test]
fn deep_nesting_is_bounded() {
    let mut b = common::FdtBuilder::new();
    for _ in 0..100 {
        b.begin("n");
    }
    for _ in 0..100 {
        b.end();
    }
    let err = parse(&b.finish()).unwrap_err();
    assert!(matches!(err, DtbError::Malformed { what: Malformation::TooDeep, .. }), "{err}");
}

#[test]
fn random_byte_flips_never_panic() {
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    let mut ok = 0;
    let mut err = 0;
    for (_, d) in samples() {
        for _ in 0..1500 {
            let mut c = d.clone();
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(c.len());
                match rng.below(3) {
                    0 => c[i] ^= 1 << rng.below(8),
                    1 => c[i] = rng.next() as u8,
                    _ => c[i] = [0, 0xff, 1, 2, 3, 4, 9][rng.below(7)],
                }
            }
            if parse(&c).is_ok() {
                ok += 1;
            } else {
                err += 1;
            }
            exercise(&c);
        }
    }
    // Both outcomes must occur, or the flips are not reaching the parser.
    assert!(ok > 100 && err > 100, "ok={ok} err={err}");
}

#[test]
fn random_header_words_never_panic() {
    let mut rng = XorShift(0x0dd_ba11);
    let (_, d) = &common::fixtures()[0];
    for _ in 0..5000 {
        let mut c = d.clone();
        let word = rng.below(10);
        let v = match rng.below(3) {
            0 => rng.next() as u32,
            1 => get32(d, word * 4).wrapping_add(rng.below(64) as u32).wrapping_sub(32),
            _ => [0, 1, u32::MAX, d.len() as u32, FDT_MAGIC][rng.below(5)],
        };
        put32(&mut c, word * 4, v);
        exercise(&c);
    }
}

#[test]
fn trailing_buffer_bytes_are_ignored() {
    let (_, d) = &common::fixtures()[0];
    let mut c = d.clone();
    c.extend_from_slice(&[0xff; 64]);
    assert_eq!(parse(&c).unwrap(), parse(d).unwrap());
}
