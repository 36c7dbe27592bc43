//! `dtb_roundtrip`: the device-tree writer fed the trees the reader parses.
//!
//! For every input [`Fdt::new`] accepts, the tree is written again with
//! [`FdtWriter`] (same nodes, properties and reservations, in order). The
//! writer must succeed whenever the tree is expressible (UTF-8 names, no
//! empty property name, property names within the strings table), the
//! written bytes must parse, and parse(write(parse(x))) == parse(x); writing
//! the re-parsed tree again gives the same bytes.

use spevisor_dtb::writer::{FdtWriter, WriteError, MAX_STRINGS};
use spevisor_dtb::{Fdt, Node};

/// A parsed tree in document order: (depth, name, properties).
type Flat = Vec<(usize, Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>)>;

fn flatten(node: Node, depth: usize, out: &mut Flat) {
    let props = node.properties().map(|p| (p.name.to_vec(), p.value.to_vec())).collect();
    out.push((depth, node.name().to_vec(), props));
    for child in node.children() {
        flatten(child, depth + 1, out);
    }
}

fn parse(data: &[u8]) -> Option<(Flat, Vec<(u64, u64)>)> {
    let fdt = Fdt::new(data).ok()?;
    let mut flat = vec![];
    flatten(fdt.root(), 0, &mut flat);
    Some((flat, fdt.reserved_entries().collect()))
}

/// Why the writer must refuse `flat`, if it must: the first name, in
/// document order, that it cannot take (the writer's first error sticks).
fn expected_refusal(flat: &Flat) -> Option<WriteError> {
    let mut names: Vec<&[u8]> = vec![];
    let mut strings = 0;
    for (_, name, props) in flat {
        if std::str::from_utf8(name).is_err() {
            return Some(WriteError::BadName);
        }
        for (p, _) in props {
            if p.is_empty() || std::str::from_utf8(p).is_err() {
                return Some(WriteError::BadName);
            }
            if !names.contains(&p.as_slice()) {
                strings += p.len() + 1;
                if strings > MAX_STRINGS {
                    return Some(WriteError::StringsFull);
                }
                names.push(p);
            }
        }
    }
    None
}

/// Writes `flat` into `buf`; the tree's size or the writer's error.
fn write(flat: &Flat, reserved: &[(u64, u64)], buf: &mut [u8]) -> Result<usize, WriteError> {
    let mut w = FdtWriter::new(buf, reserved);
    let mut open = 0;
    for (depth, name, props) in flat {
        while open > *depth {
            w.end_node();
            open -= 1;
        }
        w.begin_node(std::str::from_utf8(name).unwrap_or("\0"));
        open += 1;
        for (p, v) in props {
            w.prop(std::str::from_utf8(p).unwrap_or("\0"), v);
        }
    }
    while open > 0 {
        w.end_node();
        open -= 1;
    }
    w.finish()
}

/// Bytes of the tree `flat` as version 17 lays it out: header, reservation
/// map (with its terminator), structure block, strings (each name once).
fn written_size(flat: &Flat, reserved: usize) -> usize {
    const HEADER: usize = 40;
    const RSV_ENTRY: usize = 16;
    const TOKEN: usize = 4;
    let mut size = HEADER + (reserved + 1) * RSV_ENTRY + TOKEN; // FDT_END
    let mut names: Vec<&[u8]> = vec![];
    for (_, name, props) in flat {
        size += TOKEN + (name.len() + 1).next_multiple_of(4) + TOKEN; // BEGIN_NODE name .. END_NODE
        for (p, v) in props {
            size += 3 * TOKEN + v.len().next_multiple_of(4);
            if !names.contains(&p.as_slice()) {
                names.push(p);
            }
        }
    }
    size + names.iter().map(|n| n.len() + 1).sum::<usize>()
}

pub fn run(data: &[u8]) {
    let Some((flat, reserved)) = parse(data) else { return };
    let size = written_size(&flat, reserved.len());
    let mut buf = vec![0u8; size];
    let written = write(&flat, &reserved, &mut buf);
    if let Some(e) = expected_refusal(&flat) {
        // A name the writer cannot take: it must say so, not write garbage.
        assert_eq!(written, Err(e), "writer accepted a tree it cannot express");
        return;
    }
    let len = written.unwrap_or_else(|e| panic!("writer refused an expressible tree: {e:?}"));
    assert_eq!(len, size, "the tree's size is not the sum of its parts");
    let out = &buf[..len];
    let (flat2, reserved2) = parse(out).expect("the writer's tree must parse");
    assert_eq!(flat2, flat, "parse(write(parse(x))) != parse(x)");
    assert_eq!(reserved2, reserved, "reservations changed");
    let mut buf2 = vec![0u8; len + 64];
    let len2 = write(&flat2, &reserved2, &mut buf2).expect("a written tree writes again");
    assert_eq!(&buf2[..len2], out, "writing is not deterministic");
}
