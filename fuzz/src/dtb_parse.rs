//! `dtb_parse`: the hypervisor's device-tree reader on any bytes.
//!
//! Properties: [`spevisor_dtb::parse`] and [`Fdt::new`] never panic;
//! whatever a validated tree hands out (names, values, reservations) lies
//! inside the input; every node's ancestry ends at the node itself and
//! starts at the root; a tree [`spevisor_dtb::parse`] accepts is one
//! [`Fdt::new`] accepts, and its RAM regions neither wrap nor are empty.

use spevisor_dtb::{Fdt, MAX_DEPTH};

/// Whether `part` is a sub-slice of `whole` (same memory).
fn inside(part: &[u8], whole: &[u8]) -> bool {
    let (w0, p0) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    part.is_empty() || (p0 >= w0 && p0 + part.len() <= w0 + whole.len())
}

pub fn run(data: &[u8]) {
    let fdt = Fdt::new(data);
    if let Ok(fdt) = fdt {
        assert!(inside(fdt.as_bytes(), data));
        for (addr, size) in fdt.reserved_entries() {
            assert!((addr, size) != (0, 0), "the terminator is not an entry");
        }
        let root = fdt.root();
        assert!(root.name().is_empty() || fdt.nodes().next().is_some());
        for (i, node) in fdt.nodes().enumerate().take(4096) {
            assert!(inside(node.name(), data));
            for p in node.properties() {
                assert!(inside(p.name, data) && inside(p.value, data));
                let _ = (p.as_u32(), p.as_u64(), p.as_str(), p.cells().count(), p.strings().count());
            }
            let chain = fdt.ancestry(&node);
            assert!(chain.len() <= MAX_DEPTH);
            if chain.len() < MAX_DEPTH {
                let leaf = chain.nth_from_leaf(0).expect("a node's ancestry holds the node");
                assert_eq!(leaf.offset(), node.offset(), "ancestry must end at the node");
            }
            if i == 0 {
                assert_eq!(node.offset(), root.offset(), "the first node is the root");
                assert!(fdt.parent(&node).is_none(), "the root has no parent");
            }
            let _ = node.children().take(256).count();
            let _ = (node.is_enabled(), node.phandle(), node.is_compatible("arm,pl011"));
            if let Ok(reg) = fdt.raw_reg(&node) {
                let _ = reg;
            }
            let _ = fdt.translate(&node, 0x1000);
            if let Some(h) = node.phandle() {
                assert!(fdt.node_by_phandle(h).is_some());
            }
        }
        let _ = fdt.find_node("/memory");
        let _ = fdt.find_node("/cpus/cpu@0");
    }
    if let Ok(p) = spevisor_dtb::parse(data) {
        assert!(fdt.is_ok(), "the platform parser accepted a tree the reader refuses");
        assert!(!p.ram().is_empty(), "a platform has RAM");
        for r in p.ram() {
            assert!(r.size > 0 && r.base.checked_add(r.size).is_some(), "RAM region {r:?} empty or wrapping");
        }
        let largest = p.largest_ram();
        assert!(p.ram().iter().all(|r| r.size <= largest.size));
        assert!(p.ram_size() >= largest.size);
    }
}
