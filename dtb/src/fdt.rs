//! A small, validating reader for the flattened device tree format
//! (Devicetree Specification v0.4, chapter 5).
//!
//! [`Fdt::new`] checks the header and walks the whole structure block once:
//! every token, name and property length is bounds-checked, nesting is
//! balanced and limited to [`MAX_DEPTH`]. All later accessors still read
//! through `get`, so even a logic error cannot index out of bounds; every
//! loop advances by at least one token, so nothing can spin.

use crate::error::{Block, DtbError, Malformation, NodeName};

/// `magic` of every FDT header.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// The version this reader understands (and the newest in use).
pub const FDT_VERSION: u32 = 17;
/// Size of a version-17 header in bytes.
pub const HEADER_SIZE: usize = 40;
/// Deepest node nesting accepted (the root is depth 1).
pub const MAX_DEPTH: usize = 32;

const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_NOP: u32 = 0x4;
const FDT_END: u32 = 0x9;

/// Default `#address-cells` when a node has none (Devicetree spec 2.3.5).
const DEFAULT_ADDRESS_CELLS: u32 = 2;
/// Default `#size-cells` when a node has none.
const DEFAULT_SIZE_CELLS: u32 = 1;
/// Widest address or size this reader converts to `u64`, in 32-bit cells.
const MAX_CELLS: u32 = 2;

/// Reads a big-endian `u32` at `off`, if it is in bounds.
pub(crate) fn be32(bytes: &[u8], off: usize) -> Option<u32> {
    let end = off.checked_add(4)?;
    let b = bytes.get(off..end)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be64(bytes: &[u8], off: usize) -> Option<u64> {
    let hi = be32(bytes, off)?;
    let lo = be32(bytes, off.checked_add(4)?)?;
    Some(u64::from(hi) << 32 | u64::from(lo))
}

/// Reads `cells` (0..=2) big-endian cells at `off` as one number.
fn read_cells(bytes: &[u8], off: usize, cells: u32) -> Option<u64> {
    match cells {
        0 => Some(0),
        1 => be32(bytes, off).map(u64::from),
        2 => be64(bytes, off),
        _ => None,
    }
}

fn align4(off: usize) -> Option<usize> {
    Some(off.checked_add(3)? & !3)
}

/// The fields of an FDT header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Size of the whole blob in bytes.
    pub totalsize: u32,
    /// Offset of the structure block.
    pub off_dt_struct: u32,
    /// Offset of the strings block.
    pub off_dt_strings: u32,
    /// Offset of the memory reservation map.
    pub off_mem_rsvmap: u32,
    /// Format version.
    pub version: u32,
    /// Oldest version this blob is compatible with.
    pub last_comp_version: u32,
    /// Physical id of the boot CPU.
    pub boot_cpuid_phys: u32,
    /// Size of the strings block.
    pub size_dt_strings: u32,
    /// Size of the structure block.
    pub size_dt_struct: u32,
}

impl Header {
    /// Parses and checks the header at the start of `dtb`: magic, version,
    /// `totalsize` against `dtb.len()`, and every block against `totalsize`.
    pub fn parse(dtb: &[u8]) -> Result<Self, DtbError> {
        let word = |i: usize| be32(dtb, i * 4).ok_or(DtbError::TooShortForHeader { len: dtb.len() });
        let magic = word(0)?;
        if magic != FDT_MAGIC {
            return Err(DtbError::BadMagic { found: magic });
        }
        if dtb.len() < HEADER_SIZE {
            return Err(DtbError::TooShortForHeader { len: dtb.len() });
        }
        let h = Header {
            totalsize: word(1)?,
            off_dt_struct: word(2)?,
            off_dt_strings: word(3)?,
            off_mem_rsvmap: word(4)?,
            version: word(5)?,
            last_comp_version: word(6)?,
            boot_cpuid_phys: word(7)?,
            size_dt_strings: word(8)?,
            size_dt_struct: word(9)?,
        };
        if h.version < FDT_VERSION || h.last_comp_version > FDT_VERSION {
            return Err(DtbError::UnsupportedVersion { version: h.version, last_comp_version: h.last_comp_version });
        }
        if (h.totalsize as usize) < HEADER_SIZE {
            return Err(DtbError::BadTotalSize { totalsize: h.totalsize });
        }
        if h.totalsize as usize > dtb.len() {
            return Err(DtbError::TotalSizeExceedsBuffer { totalsize: h.totalsize, len: dtb.len() });
        }
        h.check_block(Block::Struct, h.off_dt_struct, h.size_dt_struct, 4)?;
        h.check_block(Block::Strings, h.off_dt_strings, h.size_dt_strings, 1)?;
        // The map's size is implied by its terminator; its header entry must fit.
        h.check_block(Block::MemReserve, h.off_mem_rsvmap, 16, 8)?;
        Ok(h)
    }

    fn check_block(&self, block: Block, offset: u32, size: u32, align: u32) -> Result<(), DtbError> {
        let in_range =
            offset as usize >= HEADER_SIZE && offset.checked_add(size).is_some_and(|end| end <= self.totalsize);
        if !in_range {
            return Err(DtbError::BlockOutOfRange { block, offset, size, totalsize: self.totalsize });
        }
        if !offset.is_multiple_of(align) {
            return Err(DtbError::MisalignedBlock { block, offset });
        }
        Ok(())
    }
}

/// One structure-block token with its payload.
#[derive(Clone, Copy, Debug)]
enum Token<'a> {
    Begin { name: &'a [u8] },
    End,
    Prop { name_off: u32, value: &'a [u8] },
    Nop,
    Finish,
}

/// A validated device tree blob.
#[derive(Clone, Copy, Debug)]
pub struct Fdt<'a> {
    header: Header,
    data: &'a [u8],
    structs: &'a [u8],
    strings: &'a [u8],
}

impl<'a> Fdt<'a> {
    /// Checks the header and the whole structure block of `dtb`.
    pub fn new(dtb: &'a [u8]) -> Result<Self, DtbError> {
        let header = Header::parse(dtb)?;
        let data = dtb.get(..header.totalsize as usize).unwrap_or_default();
        let slice = |off: u32, size: u32| data.get(off as usize..off as usize + size as usize).unwrap_or_default();
        let fdt = Fdt {
            header,
            data,
            structs: slice(header.off_dt_struct, header.size_dt_struct),
            strings: slice(header.off_dt_strings, header.size_dt_strings),
        };
        fdt.validate_structure()?;
        fdt.validate_reservations()?;
        Ok(fdt)
    }

    /// The blob's header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The blob itself, `totalsize` bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    fn malformed(&self, struct_off: usize, what: Malformation) -> DtbError {
        DtbError::Malformed { offset: self.header.off_dt_struct as usize + struct_off, what }
    }

    /// Decodes the token at `off`, returning it and the offset of the next.
    fn token(&self, off: usize) -> Result<(Token<'a>, usize), DtbError> {
        let s = self.structs;
        let tag = be32(s, off).ok_or(self.malformed(off, Malformation::UnexpectedEnd))?;
        let body = off + 4;
        match tag {
            FDT_BEGIN_NODE => {
                let rest = s.get(body..).unwrap_or_default();
                let nul =
                    rest.iter().position(|&b| b == 0).ok_or(self.malformed(off, Malformation::UnterminatedNodeName))?;
                let next = align4(body + nul + 1).unwrap_or(usize::MAX);
                Ok((Token::Begin { name: &rest[..nul] }, next))
            }
            FDT_END_NODE => Ok((Token::End, body)),
            FDT_PROP => {
                let len = be32(s, body).ok_or(self.malformed(off, Malformation::UnexpectedEnd))?;
                let name_off = be32(s, body + 4).ok_or(self.malformed(off, Malformation::UnexpectedEnd))?;
                let start = body + 8;
                let value = start
                    .checked_add(len as usize)
                    .and_then(|end| s.get(start..end))
                    .ok_or(self.malformed(off, Malformation::PropertyOverrun { len }))?;
                let next = align4(start + value.len()).unwrap_or(usize::MAX);
                Ok((Token::Prop { name_off, value }, next))
            }
            FDT_NOP => Ok((Token::Nop, body)),
            FDT_END => Ok((Token::Finish, body)),
            other => Err(self.malformed(off, Malformation::UnknownToken(other))),
        }
    }

    /// Token at `off` for an already validated block (`None` cannot happen).
    fn tok(&self, off: usize) -> Option<(Token<'a>, usize)> {
        self.token(off).ok()
    }

    fn string_at(&self, name_off: u32) -> Option<&'a [u8]> {
        let rest = self.strings.get(name_off as usize..)?;
        let nul = rest.iter().position(|&b| b == 0)?;
        rest.get(..nul)
    }

    fn validate_structure(&self) -> Result<(), DtbError> {
        let mut off = 0;
        let mut depth = 0usize;
        let mut seen_root = false;
        // Whether the innermost open node already had a child.
        let mut had_child = false;
        loop {
            let (tok, next) = self.token(off)?;
            match tok {
                Token::Begin { .. } => {
                    if depth == 0 && seen_root {
                        return Err(self.malformed(off, Malformation::MultipleRoots));
                    }
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(self.malformed(off, Malformation::TooDeep));
                    }
                    seen_root = true;
                    had_child = false;
                }
                Token::End => {
                    if depth == 0 {
                        return Err(self.malformed(off, Malformation::UnbalancedEndNode));
                    }
                    depth -= 1;
                    had_child = true;
                }
                Token::Prop { name_off, .. } => {
                    if depth == 0 {
                        return Err(self.malformed(off, Malformation::PropertyOutsideNode));
                    }
                    if had_child {
                        return Err(self.malformed(off, Malformation::PropertyAfterChild));
                    }
                    let rest = self
                        .strings
                        .get(name_off as usize..)
                        .filter(|r| !r.is_empty())
                        .ok_or(self.malformed(off, Malformation::BadNameOffset(name_off)))?;
                    if !rest.contains(&0) {
                        return Err(self.malformed(off, Malformation::UnterminatedPropertyName));
                    }
                }
                Token::Nop => {}
                Token::Finish => {
                    if depth != 0 {
                        return Err(self.malformed(off, Malformation::UnclosedNode));
                    }
                    if !seen_root {
                        return Err(self.malformed(off, Malformation::NoRoot));
                    }
                    return Ok(());
                }
            }
            off = next;
        }
    }

    fn validate_reservations(&self) -> Result<(), DtbError> {
        if self.reservations().any(|r| r.is_none()) {
            return Err(DtbError::UnterminatedReservationMap);
        }
        Ok(())
    }

    /// Entries of the memory reservation map as `(address, size)`. A `None`
    /// item means the map ran off the blob; [`Fdt::new`] rejects such blobs.
    pub(crate) fn reservations(&self) -> impl Iterator<Item = Option<(u64, u64)>> + 'a {
        let data = self.data;
        let mut off = self.header.off_mem_rsvmap as usize;
        let mut done = false;
        core::iter::from_fn(move || {
            if done {
                return None;
            }
            let entry = be64(data, off).zip(be64(data, off + 8));
            off += 16;
            match entry {
                Some((0, 0)) => {
                    done = true;
                    None
                }
                Some(e) => Some(Some(e)),
                None => {
                    done = true;
                    Some(None)
                }
            }
        })
    }

    /// Memory reservation map entries as `(address, size)`.
    pub fn reserved_entries(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        self.reservations().map_while(|e| e)
    }

    fn node_at(&self, off: usize) -> Option<Node<'a>> {
        match self.tok(off)? {
            (Token::Begin { name }, body) => Some(Node { fdt: *self, offset: off, body, name }),
            _ => None,
        }
    }

    /// The root node.
    pub fn root(&self) -> Node<'a> {
        let mut off = 0;
        while let Some((Token::Nop, next)) = self.tok(off) {
            off = next;
        }
        // Validation guarantees a root node; fall back to an empty stand-in.
        self.node_at(off).unwrap_or(Node { fdt: *self, offset: usize::MAX, body: usize::MAX, name: &[] })
    }

    /// Every node, in document order (the root first).
    pub fn nodes(&self) -> impl Iterator<Item = Node<'a>> + 'a {
        let fdt = *self;
        let mut off = 0;
        core::iter::from_fn(move || loop {
            let (tok, next) = fdt.tok(off)?;
            let here = off;
            off = next;
            match tok {
                Token::Begin { .. } => return fdt.node_at(here),
                Token::Finish => return None,
                _ => {}
            }
        })
    }

    /// The first enabled node whose `compatible` has any of `compatibles`.
    pub fn find_compatible(&self, compatibles: &[&str]) -> Option<Node<'a>> {
        self.nodes().find(|n| n.is_enabled() && compatibles.iter().any(|c| n.is_compatible(c)))
    }

    /// The node with `phandle` (or the legacy `linux,phandle`) equal to `handle`.
    pub fn node_by_phandle(&self, handle: u32) -> Option<Node<'a>> {
        self.nodes().find(|n| n.phandle() == Some(handle))
    }

    /// The node at absolute `path` (`/`, `/cpus/cpu@0`, ...). A component
    /// without `@` also matches a name with a unit address, like
    /// `/memory` matching `memory@40000000`.
    pub fn find_node(&self, path: &str) -> Option<Node<'a>> {
        let path = path.strip_prefix('/')?;
        let mut node = self.root();
        for component in path.split('/').filter(|c| !c.is_empty()) {
            node = node.children().find(|c| c.matches_component(component))?;
        }
        Some(node)
    }

    /// The chain of nodes from the root down to `node` (both included).
    pub fn ancestry(&self, node: &Node<'a>) -> Ancestry<'a> {
        let mut stack = [0usize; MAX_DEPTH];
        let mut depth = 0;
        let mut off = 0;
        while let Some((tok, next)) = self.tok(off) {
            match tok {
                Token::Begin { .. } => {
                    if depth < MAX_DEPTH {
                        stack[depth] = off;
                    }
                    depth += 1;
                    if off == node.offset {
                        break;
                    }
                }
                Token::End => depth = depth.saturating_sub(1),
                Token::Finish => {
                    depth = 0;
                    break;
                }
                _ => {}
            }
            off = next;
        }
        Ancestry { fdt: *self, offsets: stack, len: depth.min(MAX_DEPTH) }
    }

    /// The parent of `node` (`None` for the root).
    pub fn parent(&self, node: &Node<'a>) -> Option<Node<'a>> {
        self.ancestry(node).nth_from_leaf(1)
    }

    /// Reads the `reg` of `node` using its parent's cell sizes, without
    /// translating the addresses.
    pub fn raw_reg(&self, node: &Node<'a>) -> Result<Reg<'a>, DtbError> {
        let parent = self.parent(node).unwrap_or(*node);
        let (address_cells, size_cells) = parent.cells(node)?;
        let prop = node.require("reg")?;
        let entry = 4 * (address_cells + size_cells) as usize;
        if prop.value.is_empty() || entry == 0 || prop.value.len() % entry != 0 {
            return Err(node.bad("reg", "length is not a multiple of the entry size"));
        }
        Ok(Reg { value: prop.value, address_cells, size_cells, off: 0 })
    }

    /// Translates `address` in the address space of `node`'s parent bus to
    /// a CPU physical address through every ancestor's `ranges`.
    pub fn translate(&self, node: &Node<'a>, address: u64) -> Result<u64, DtbError> {
        let chain = self.ancestry(node);
        let mut addr = address;
        // Bus `i` (depth from root) maps its children's space to bus `i-1`'s.
        let mut i = chain.len().saturating_sub(1);
        while i >= 2 {
            let bus = chain.get(i - 1).ok_or(DtbError::Untranslatable { node: node.error_name(), address })?;
            let up = chain.get(i - 2).unwrap_or(bus);
            addr = bus
                .translate_through_ranges(&up, addr)
                .ok_or(DtbError::Untranslatable { node: node.error_name(), address })??;
            i -= 1;
        }
        Ok(addr)
    }
}

/// The nodes from the root to a node, as returned by [`Fdt::ancestry`].
#[derive(Clone, Copy, Debug)]
pub struct Ancestry<'a> {
    fdt: Fdt<'a>,
    offsets: [usize; MAX_DEPTH],
    len: usize,
}

impl<'a> Ancestry<'a> {
    /// Number of nodes in the chain (1 for the root itself).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the chain is empty (the node was not found).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The node at `depth` (0 = root).
    pub fn get(&self, depth: usize) -> Option<Node<'a>> {
        if depth >= self.len {
            return None;
        }
        self.fdt.node_at(*self.offsets.get(depth)?)
    }

    /// The node `n` steps up from the last one (0 = the node itself).
    pub fn nth_from_leaf(&self, n: usize) -> Option<Node<'a>> {
        self.get(self.len.checked_sub(n + 1)?)
    }
}

/// Iterator over the `(address, size)` entries of a `reg` property.
#[derive(Clone, Copy, Debug)]
pub struct Reg<'a> {
    value: &'a [u8],
    address_cells: u32,
    size_cells: u32,
    off: usize,
}

impl Iterator for Reg<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        let addr = read_cells(self.value, self.off, self.address_cells)?;
        let size_off = self.off + 4 * self.address_cells as usize;
        let size = read_cells(self.value, size_off, self.size_cells)?;
        self.off = size_off + 4 * self.size_cells as usize;
        Some((addr, size))
    }
}

/// A node of a validated tree.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    fdt: Fdt<'a>,
    offset: usize,
    body: usize,
    name: &'a [u8],
}

impl<'a> Node<'a> {
    /// The node name with its unit address (`pl011@9000000`; empty for the root).
    pub fn name(&self) -> &'a [u8] {
        self.name
    }

    /// Offset of the node's `FDT_BEGIN_NODE` token in the structure block:
    /// a node's identity within its tree.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The name as text, if it is UTF-8.
    pub fn name_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.name).ok()
    }

    /// The name without the unit address (`pl011`).
    pub fn base_name(&self) -> &'a [u8] {
        self.name.split(|&b| b == b'@').next().unwrap_or_default()
    }

    pub(crate) fn error_name(&self) -> NodeName {
        NodeName::new(self.name)
    }

    fn matches_component(&self, component: &str) -> bool {
        let c = component.as_bytes();
        self.name == c || (!c.contains(&b'@') && self.base_name() == c)
    }

    /// The node's properties, in order.
    pub fn properties(&self) -> impl Iterator<Item = Property<'a>> + 'a {
        let fdt = self.fdt;
        let mut off = self.body;
        core::iter::from_fn(move || loop {
            let (tok, next) = fdt.tok(off)?;
            off = next;
            match tok {
                Token::Prop { name_off, value } => {
                    let name = fdt.string_at(name_off)?;
                    return Some(Property { name, value });
                }
                Token::Nop => {}
                _ => return None,
            }
        })
    }

    /// The property called `name`.
    pub fn property(&self, name: &str) -> Option<Property<'a>> {
        self.properties().find(|p| p.name == name.as_bytes())
    }

    /// The property called `name`, or [`DtbError::MissingProperty`].
    pub fn require(&self, name: &'static str) -> Result<Property<'a>, DtbError> {
        self.property(name).ok_or(DtbError::MissingProperty { node: self.error_name(), property: name })
    }

    pub(crate) fn bad(&self, property: &'static str, reason: &'static str) -> DtbError {
        DtbError::BadProperty { node: self.error_name(), property, reason }
    }

    /// Reads a one-cell property; absent gives `Ok(None)`, malformed an error.
    pub fn u32_property(&self, name: &'static str) -> Result<Option<u32>, DtbError> {
        match self.property(name) {
            None => Ok(None),
            Some(p) => p.as_u32().map(Some).ok_or(self.bad(name, "not a single cell")),
        }
    }

    /// The node's direct children, in order.
    pub fn children(&self) -> impl Iterator<Item = Node<'a>> + 'a {
        let fdt = self.fdt;
        let mut off = self.body;
        let mut depth = 0usize;
        core::iter::from_fn(move || loop {
            let (tok, next) = fdt.tok(off)?;
            let here = off;
            off = next;
            match tok {
                Token::Begin { .. } => {
                    depth += 1;
                    if depth == 1 {
                        return fdt.node_at(here);
                    }
                }
                Token::End => {
                    if depth == 0 {
                        return None;
                    }
                    depth -= 1;
                }
                Token::Finish => return None,
                _ => {}
            }
        })
    }

    /// Whether `status` is absent, `"okay"` or `"ok"`.
    pub fn is_enabled(&self) -> bool {
        match self.property("status") {
            None => true,
            Some(p) => matches!(p.as_str(), Some("okay" | "ok")),
        }
    }

    /// Whether `compatible` lists `compatible`.
    pub fn is_compatible(&self, compatible: &str) -> bool {
        self.property("compatible").is_some_and(|p| p.strings().any(|s| s == compatible.as_bytes()))
    }

    /// The node's `phandle` (or `linux,phandle`).
    pub fn phandle(&self) -> Option<u32> {
        self.property("phandle").or_else(|| self.property("linux,phandle")).and_then(|p| p.as_u32())
    }

    /// `#address-cells` and `#size-cells` of this node (the layout of its
    /// children's `reg`), checked to be at most two cells each. `child` is
    /// only used to name the culprit in errors.
    pub fn cells(&self, child: &Node<'a>) -> Result<(u32, u32), DtbError> {
        let a = self.u32_property("#address-cells")?.unwrap_or(DEFAULT_ADDRESS_CELLS);
        let s = self.u32_property("#size-cells")?.unwrap_or(DEFAULT_SIZE_CELLS);
        if a > MAX_CELLS || s > MAX_CELLS {
            return Err(child.bad("reg", "parent #address-cells or #size-cells above 2"));
        }
        Ok((a, s))
    }

    /// Maps `addr` from this bus's child space into `parent`'s space through
    /// `ranges`. `None`: no entry covers it; `Some(Err)`: malformed `ranges`.
    fn translate_through_ranges(&self, parent: &Node<'a>, addr: u64) -> Option<Result<u64, DtbError>> {
        let ranges = self.property("ranges")?;
        if ranges.value.is_empty() {
            return Some(Ok(addr));
        }
        let (child_cells, size_cells) = match self.cells(self) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let (parent_cells, _) = match parent.cells(self) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let entry = 4 * (child_cells + parent_cells + size_cells) as usize;
        if entry == 0 || ranges.value.len() % entry != 0 {
            return Some(Err(self.bad("ranges", "length is not a multiple of the entry size")));
        }
        ranges.value.chunks_exact(entry).find_map(|e| {
            let child = read_cells(e, 0, child_cells)?;
            let parent_base = read_cells(e, 4 * child_cells as usize, parent_cells)?;
            let size = read_cells(e, 4 * (child_cells + parent_cells) as usize, size_cells)?;
            let delta = addr.checked_sub(child)?;
            (delta < size).then(|| parent_base.checked_add(delta)).flatten().map(Ok)
        })
    }
}

/// A property: its name and raw big-endian value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Property<'a> {
    /// The property name.
    pub name: &'a [u8],
    /// The raw value.
    pub value: &'a [u8],
}

impl<'a> Property<'a> {
    /// The value as one cell.
    pub fn as_u32(&self) -> Option<u32> {
        (self.value.len() == 4).then(|| be32(self.value, 0)).flatten()
    }

    /// The value as one or two cells.
    pub fn as_u64(&self) -> Option<u64> {
        match self.value.len() {
            4 => read_cells(self.value, 0, 1),
            8 => read_cells(self.value, 0, 2),
            _ => None,
        }
    }

    /// The value's cells.
    pub fn cells(&self) -> impl Iterator<Item = u32> + 'a {
        self.value.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The first string of a NUL-terminated string (list), if UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        let first = self.strings().next()?;
        core::str::from_utf8(first).ok()
    }

    /// The strings of a string list (without the NULs).
    pub fn strings(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let v = self.value.strip_suffix(&[0]).unwrap_or(self.value);
        let empty = v.is_empty();
        v.split(|&b| b == 0).filter(move |_| !empty)
    }
}
