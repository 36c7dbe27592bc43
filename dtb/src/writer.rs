//! Writing a flattened device tree (version 17) into a caller's buffer, for
//! the trees the host hands its guests.
//!
//! No allocation: the structure block grows from the front of the buffer
//! (after the header and the reservation map) and property names collect in
//! a fixed strings table, copied behind the structure block by
//! [`FdtWriter::finish`]. Every call checks the space it needs, and the first
//! error sticks: later calls do nothing and `finish` returns it, so a caller
//! can write a whole tree and check once.
//!
//! ```
//! use spevisor_dtb::writer::FdtWriter;
//! let mut buf = [0u8; 512];
//! let mut w = FdtWriter::new(&mut buf, &[]);
//! w.begin_node("");
//! w.prop_u32("#address-cells", 2);
//! w.begin_node("chosen");
//! w.prop_str("bootargs", "console=ttyAMA0");
//! w.end_node();
//! w.end_node();
//! let len = w.finish().unwrap();
//! let fdt = spevisor_dtb::Fdt::new(&buf[..len]).unwrap();
//! assert!(fdt.find_node("/chosen").is_some());
//! ```

use crate::fdt::{FDT_MAGIC, HEADER_SIZE, MAX_DEPTH};

/// Room for property names (each stored once): QEMU virt's tree, which the
/// UEFI path copies (efi/src/dt.rs), uses 488 bytes.
pub const MAX_STRINGS: usize = 1024;

const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_END: u32 = 0x9;
const VERSION: u32 = 17;
const LAST_COMP_VERSION: u32 = 16;
/// One reservation-map entry: address and size, 8 bytes each.
const RSV_ENTRY: usize = 16;

/// Why a tree could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The buffer cannot hold the tree.
    BufferTooSmall,
    /// The property names exceed [`MAX_STRINGS`] bytes.
    StringsFull,
    /// `end_node` without a node open, nodes still open at `finish`, a
    /// property outside any node, or nesting deeper than [`MAX_DEPTH`].
    Unbalanced,
    /// A node or property name containing a NUL byte.
    BadName,
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::BufferTooSmall => "the buffer is too small for the device tree",
            Self::StringsFull => "too many property names for the strings table",
            Self::Unbalanced => "device tree nodes do not nest",
            Self::BadName => "a device tree name contains a NUL byte",
        })
    }
}

/// Writes one tree into a buffer; see the module documentation.
pub struct FdtWriter<'a> {
    buf: &'a mut [u8],
    /// Start of the structure block, and the write position in it.
    off_struct: usize,
    pos: usize,
    strings: [u8; MAX_STRINGS],
    strings_len: usize,
    depth: usize,
    /// Whether the root node has been closed (nothing may follow it).
    closed: bool,
    error: Option<WriteError>,
}

impl<'a> FdtWriter<'a> {
    /// Starts a tree in `buf` with `reserved` as its `/memreserve/` entries
    /// (address, size).
    pub fn new(buf: &'a mut [u8], reserved: &[(u64, u64)]) -> Self {
        let rsv_start = HEADER_SIZE.next_multiple_of(8);
        let off_struct = rsv_start + (reserved.len() + 1) * RSV_ENTRY;
        let mut w = Self {
            buf,
            off_struct,
            pos: off_struct,
            strings: [0; MAX_STRINGS],
            strings_len: 0,
            depth: 0,
            closed: false,
            error: None,
        };
        if w.buf.len() < off_struct {
            w.error = Some(WriteError::BufferTooSmall);
            return w;
        }
        w.buf[..off_struct].fill(0);
        for (i, &(addr, size)) in reserved.iter().enumerate() {
            let at = rsv_start + i * RSV_ENTRY;
            w.buf[at..at + 8].copy_from_slice(&addr.to_be_bytes());
            w.buf[at + 8..at + 16].copy_from_slice(&size.to_be_bytes());
        }
        w
    }

    fn fail(&mut self, e: WriteError) {
        self.error.get_or_insert(e);
    }

    /// Appends `bytes` to the structure block, then zeros up to 4-byte alignment.
    fn put(&mut self, bytes: &[u8]) {
        self.put_parts(&[bytes]);
    }

    /// Appends the `parts` one after the other, then zeros up to 4-byte
    /// alignment.
    fn put_parts(&mut self, parts: &[&[u8]]) {
        if self.error.is_some() {
            return;
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let padded = (self.pos + len).next_multiple_of(4);
        let Some(dst) = self.buf.get_mut(self.pos..padded) else {
            return self.fail(WriteError::BufferTooSmall);
        };
        let mut at = 0;
        for p in parts {
            dst[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        dst[at..].fill(0);
        self.pos = padded;
    }

    fn word(&mut self, w: u32) {
        self.put(&w.to_be_bytes());
    }

    /// Opens a node (the root is `""`).
    pub fn begin_node(&mut self, name: &str) {
        if self.closed || self.depth >= MAX_DEPTH {
            return self.fail(WriteError::Unbalanced);
        }
        if name.as_bytes().contains(&0) {
            return self.fail(WriteError::BadName);
        }
        self.word(FDT_BEGIN_NODE);
        self.put_parts(&[name.as_bytes(), &[0]]);
        self.depth += 1;
    }

    /// Closes the innermost open node.
    pub fn end_node(&mut self) {
        if self.depth == 0 {
            return self.fail(WriteError::Unbalanced);
        }
        self.word(FDT_END_NODE);
        self.depth -= 1;
        self.closed = self.depth == 0;
    }

    /// The offset of `name` in the strings table, adding it if new.
    fn name_offset(&mut self, name: &str) -> Option<u32> {
        let n = name.as_bytes();
        let table = &self.strings[..self.strings_len];
        let mut at = 0;
        while at < table.len() {
            let len = table[at..].iter().position(|&b| b == 0).unwrap_or(table.len() - at);
            if &table[at..at + len] == n {
                return Some(at as u32);
            }
            at += len + 1;
        }
        let end = self.strings_len + n.len() + 1;
        if end > MAX_STRINGS {
            self.fail(WriteError::StringsFull);
            return None;
        }
        let off = self.strings_len;
        self.strings[off..off + n.len()].copy_from_slice(n);
        self.strings[off + n.len()] = 0;
        self.strings_len = end;
        Some(off as u32)
    }

    /// The token, length and name offset every property starts with; `false`
    /// (and the error recorded) if the property cannot be written.
    fn prop_header(&mut self, name: &str, len: usize) -> bool {
        if self.depth == 0 {
            self.fail(WriteError::Unbalanced);
            return false;
        }
        if name.is_empty() || name.as_bytes().contains(&0) {
            self.fail(WriteError::BadName);
            return false;
        }
        let Ok(len) = u32::try_from(len) else {
            self.fail(WriteError::BufferTooSmall);
            return false;
        };
        let Some(off) = self.name_offset(name) else { return false };
        self.word(FDT_PROP);
        self.word(len);
        self.word(off);
        self.error.is_none()
    }

    /// A property with a raw value.
    pub fn prop(&mut self, name: &str, value: &[u8]) {
        if self.prop_header(name, value.len()) {
            self.put(value);
        }
    }

    /// An empty property (a flag such as `interrupt-controller`).
    pub fn prop_empty(&mut self, name: &str) {
        self.prop(name, &[]);
    }

    /// A property of 32-bit cells.
    pub fn prop_cells(&mut self, name: &str, cells: &[u32]) {
        if self.prop_header(name, cells.len().saturating_mul(4)) {
            for &c in cells {
                self.word(c);
            }
        }
    }

    /// A one-cell property.
    pub fn prop_u32(&mut self, name: &str, v: u32) {
        self.prop_cells(name, &[v]);
    }

    /// A property of 64-bit values, each as two cells (high, low): `reg`
    /// with `#address-cells = #size-cells = 2`.
    pub fn prop_u64s(&mut self, name: &str, values: &[u64]) {
        if self.prop_header(name, values.len().saturating_mul(8)) {
            for &v in values {
                self.word((v >> 32) as u32);
                self.word(v as u32);
            }
        }
    }

    /// A string property.
    pub fn prop_str(&mut self, name: &str, s: &str) {
        self.prop_strs(name, &[s]);
    }

    /// A string-list property (`compatible`).
    pub fn prop_strs(&mut self, name: &str, list: &[&str]) {
        if list.iter().any(|s| s.as_bytes().contains(&0)) {
            return self.fail(WriteError::BadName);
        }
        let len: usize = list.iter().map(|s| s.len() + 1).sum();
        if !self.prop_header(name, len) {
            return;
        }
        let end = self.pos + len;
        let padded = end.next_multiple_of(4);
        let Some(dst) = self.buf.get_mut(self.pos..padded) else {
            return self.fail(WriteError::BufferTooSmall);
        };
        let mut at = 0;
        for s in list {
            dst[at..at + s.len()].copy_from_slice(s.as_bytes());
            dst[at + s.len()] = 0;
            at += s.len() + 1;
        }
        dst[at..].fill(0);
        self.pos = padded;
    }

    /// Ends the tree: the end token, the strings, the header. Returns the
    /// tree's total size (its bytes are `buf[..size]`).
    pub fn finish(mut self) -> Result<usize, WriteError> {
        if !self.closed || self.depth != 0 {
            self.fail(WriteError::Unbalanced);
        }
        self.word(FDT_END);
        if let Some(e) = self.error {
            return Err(e);
        }
        let size_struct = self.pos - self.off_struct;
        let off_strings = self.pos;
        let total = off_strings + self.strings_len;
        let dst = self.buf.get_mut(off_strings..total).ok_or(WriteError::BufferTooSmall)?;
        dst.copy_from_slice(&self.strings[..self.strings_len]);
        let header = [
            FDT_MAGIC,
            total as u32,
            self.off_struct as u32,
            off_strings as u32,
            HEADER_SIZE.next_multiple_of(8) as u32,
            VERSION,
            LAST_COMP_VERSION,
            0, // boot_cpuid_phys
            self.strings_len as u32,
            size_struct as u32,
        ];
        for (i, w) in header.iter().enumerate() {
            self.buf[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Fdt;

    fn small_tree(buf: &mut [u8]) -> Result<usize, WriteError> {
        let mut w = FdtWriter::new(buf, &[(0x4800_0000, 0x1000)]);
        w.begin_node("");
        w.prop_u32("#address-cells", 2);
        w.prop_u32("#size-cells", 2);
        w.prop_strs("compatible", &["spevisor,guest", "linux,dummy-virt"]);
        w.begin_node("memory@40000000");
        w.prop_str("device_type", "memory");
        w.prop_u64s("reg", &[0x4000_0000, 0x20_0000]);
        w.end_node();
        w.begin_node("intc");
        w.prop_empty("interrupt-controller");
        w.end_node();
        w.end_node();
        w.finish()
    }

    #[test]
    fn a_written_tree_reads_back() {
        let mut buf = [0u8; 1024];
        let len = small_tree(&mut buf).unwrap();
        let fdt = Fdt::new(&buf[..len]).unwrap();
        let mem = fdt.find_node("/memory").unwrap();
        assert_eq!(mem.property("device_type").unwrap().as_str(), Some("memory"));
        let reg = mem.property("reg").unwrap();
        assert_eq!(reg.value, &[0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0]);
        let root = fdt.root();
        let compat: Vec<&[u8]> = root.property("compatible").unwrap().strings().collect();
        assert_eq!(compat, [&b"spevisor,guest"[..], b"linux,dummy-virt"]);
        assert_eq!(fdt.find_node("/intc").unwrap().property("interrupt-controller").unwrap().value.len(), 0);
        assert_eq!(fdt.reserved_entries().collect::<Vec<_>>(), [(0x4800_0000, 0x1000)]);
    }

    #[test]
    fn property_names_are_stored_once() {
        let mut buf = [0u8; 4096];
        let mut w = FdtWriter::new(&mut buf, &[]);
        w.begin_node("");
        for _ in 0..100 {
            w.begin_node("n");
            w.prop_u32("same-name", 1);
            w.end_node();
        }
        w.end_node();
        let len = w.finish().unwrap();
        let strings = u32::from_be_bytes(buf[32..36].try_into().unwrap());
        assert_eq!(strings as usize, "same-name\0".len(), "one copy of the name");
        assert!(Fdt::new(&buf[..len]).is_ok());
    }

    #[test]
    fn every_short_buffer_is_an_error_not_a_panic() {
        let mut big = [0u8; 1024];
        let need = small_tree(&mut big).unwrap();
        for len in 0..need {
            let mut buf = vec![0u8; len];
            assert_eq!(small_tree(&mut buf), Err(WriteError::BufferTooSmall), "buffer of {len}");
        }
        let mut exact = vec![0u8; need];
        assert_eq!(small_tree(&mut exact), Ok(need));
    }

    #[test]
    fn unbalanced_trees_and_bad_names_are_refused() {
        let mut buf = [0u8; 256];
        let mut w = FdtWriter::new(&mut buf, &[]);
        w.begin_node("");
        assert_eq!(w.finish(), Err(WriteError::Unbalanced), "root left open");

        let mut w = FdtWriter::new(&mut buf, &[]);
        w.prop_u32("x", 1);
        assert_eq!(w.finish(), Err(WriteError::Unbalanced), "property before any node");

        let mut w = FdtWriter::new(&mut buf, &[]);
        w.begin_node("");
        w.end_node();
        w.begin_node("second-root");
        assert_eq!(w.finish(), Err(WriteError::Unbalanced), "a second root");

        let mut w = FdtWriter::new(&mut buf, &[]);
        w.end_node();
        assert_eq!(w.finish(), Err(WriteError::Unbalanced));

        let mut w = FdtWriter::new(&mut buf, &[]);
        w.begin_node("");
        w.prop_str("bootargs", "a\0b");
        w.end_node();
        assert_eq!(w.finish(), Err(WriteError::BadName));

        // Every property kind checks its name (a NUL would alias a prefix
        // in the strings table).
        for bad in ["", "a\0b"] {
            let mut w = FdtWriter::new(&mut buf, &[]);
            w.begin_node("");
            w.prop_u32(bad, 1);
            w.end_node();
            assert_eq!(w.finish(), Err(WriteError::BadName), "prop_u32({bad:?})");
            let mut w = FdtWriter::new(&mut buf, &[]);
            w.begin_node("");
            w.prop_u64s(bad, &[1]);
            w.end_node();
            assert_eq!(w.finish(), Err(WriteError::BadName), "prop_u64s({bad:?})");
            let mut w = FdtWriter::new(&mut buf, &[]);
            w.begin_node("");
            w.prop_strs(bad, &["x"]);
            w.end_node();
            assert_eq!(w.finish(), Err(WriteError::BadName), "prop_strs({bad:?})");
        }
    }

    #[test]
    fn too_many_names_fill_the_strings_table() {
        let mut buf = vec![0u8; 64 * 1024];
        let mut w = FdtWriter::new(&mut buf, &[]);
        w.begin_node("");
        let names: Vec<String> = (0..200).map(|i| format!("property-name-{i}")).collect();
        for n in &names {
            w.prop_u32(n, 0);
        }
        w.end_node();
        assert_eq!(w.finish(), Err(WriteError::StringsFull));
    }
}
