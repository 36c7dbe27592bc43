//! The error type: what was wrong with the device tree, and where.

use core::fmt;

/// Longest node name kept in an error (longer names are cut, marked `...`).
pub const NODE_NAME_CAPACITY: usize = 40;

/// A node's name, copied out of the blob so errors need no lifetime.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NodeName {
    bytes: [u8; NODE_NAME_CAPACITY],
    len: u8,
    truncated: bool,
}

impl NodeName {
    /// Copies `name` (the root node's empty name is shown as `/`).
    pub fn new(name: &[u8]) -> Self {
        let name = if name.is_empty() { b"/" as &[u8] } else { name };
        let len = name.len().min(NODE_NAME_CAPACITY);
        let mut bytes = [0; NODE_NAME_CAPACITY];
        bytes[..len].copy_from_slice(&name[..len]);
        Self { bytes, len: len as u8, truncated: name.len() > NODE_NAME_CAPACITY }
    }

    /// The (possibly cut) name as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.as_bytes() {
            let c = if b.is_ascii_graphic() { b as char } else { '?' };
            write!(f, "{c}")?;
        }
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// One of the blocks the FDT header points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// The memory reservation map.
    MemReserve,
    /// The structure block (nodes and properties).
    Struct,
    /// The strings block (property names).
    Strings,
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Block::MemReserve => "memory reservation map",
            Block::Struct => "structure block",
            Block::Strings => "strings block",
        })
    }
}

/// What is wrong inside the structure block.
#[allow(missing_docs)] // variant fields are named for what they hold; see Display
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformation {
    /// A token value that the specification does not define.
    UnknownToken(u32),
    /// The block ends in the middle of a token or before `FDT_END`.
    UnexpectedEnd,
    /// A node name runs to the end of the block without a NUL.
    UnterminatedNodeName,
    /// A property's length runs past the end of the block.
    PropertyOverrun { len: u32 },
    /// A property's name offset is outside the strings block.
    BadNameOffset(u32),
    /// A property name runs to the end of the strings block without a NUL.
    UnterminatedPropertyName,
    /// `FDT_END_NODE` without a matching `FDT_BEGIN_NODE`.
    UnbalancedEndNode,
    /// `FDT_END` while nodes are still open.
    UnclosedNode,
    /// A property outside of any node.
    PropertyOutsideNode,
    /// A property after a child node (the specification puts them first).
    PropertyAfterChild,
    /// More than one top-level node.
    MultipleRoots,
    /// No root node at all.
    NoRoot,
    /// Nodes nested deeper than [`crate::MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for Malformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformation::UnknownToken(t) => write!(f, "unknown token {t:#x}"),
            Malformation::UnexpectedEnd => f.write_str("block ends before FDT_END"),
            Malformation::UnterminatedNodeName => f.write_str("node name without NUL"),
            Malformation::PropertyOverrun { len } => {
                write!(f, "property of {len} bytes runs past the block")
            }
            Malformation::BadNameOffset(o) => {
                write!(f, "property name offset {o:#x} outside the strings block")
            }
            Malformation::UnterminatedPropertyName => f.write_str("property name without NUL"),
            Malformation::UnbalancedEndNode => f.write_str("FDT_END_NODE without an open node"),
            Malformation::UnclosedNode => f.write_str("FDT_END with nodes still open"),
            Malformation::PropertyOutsideNode => f.write_str("property outside any node"),
            Malformation::PropertyAfterChild => f.write_str("property after a child node"),
            Malformation::MultipleRoots => f.write_str("more than one root node"),
            Malformation::NoRoot => f.write_str("no root node"),
            Malformation::TooDeep => write!(f, "nodes nested deeper than {}", crate::MAX_DEPTH),
        }
    }
}

/// Why a device tree could not be used.
#[allow(missing_docs)] // variant fields are named for what they hold; see Display
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtbError {
    /// [`crate::from_raw`] was given a null pointer.
    NullPointer,
    /// The buffer is shorter than the FDT header.
    TooShortForHeader { len: usize },
    /// The first word is not `0xd00dfeed`.
    BadMagic { found: u32 },
    /// The blob is older than version 17 or incompatible with it.
    UnsupportedVersion { version: u32, last_comp_version: u32 },
    /// The header's `totalsize` is smaller than the header or implausibly big.
    BadTotalSize { totalsize: u32 },
    /// The header's `totalsize` is larger than the buffer we were given.
    TotalSizeExceedsBuffer { totalsize: u32, len: usize },
    /// A block lies (partly) outside `totalsize`.
    BlockOutOfRange { block: Block, offset: u32, size: u32, totalsize: u32 },
    /// A block does not start on the alignment the specification requires.
    MisalignedBlock { block: Block, offset: u32 },
    /// The memory reservation map has no terminating all-zero entry.
    UnterminatedReservationMap,
    /// The structure block is malformed at byte `offset` of the blob.
    Malformed { offset: usize, what: Malformation },
    /// No enabled `/memory` node with a non-empty `reg`.
    NoMemory,
    /// No enabled GICv2 or GICv3 node.
    NoGic,
    /// No enabled `arm,armv8-timer` node.
    NoTimer,
    /// A required property is missing.
    MissingProperty { node: NodeName, property: &'static str },
    /// A property has a value that cannot be used.
    BadProperty { node: NodeName, property: &'static str, reason: &'static str },
    /// A node's address is not visible to the CPU (no matching `ranges`).
    Untranslatable { node: NodeName, address: u64 },
    /// A node's interrupts go to a controller other than the GIC.
    InterruptParentNotGic { node: NodeName },
    /// More entries than a fixed-capacity list can hold.
    TooMany { what: &'static str, capacity: usize },
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtbError::NullPointer => f.write_str("DTB pointer is null"),
            DtbError::TooShortForHeader { len } => {
                write!(f, "DTB of {len} bytes is shorter than the 40-byte header")
            }
            DtbError::BadMagic { found } => {
                write!(f, "bad DTB magic {found:#010x} at offset 0 (expected 0xd00dfeed)")
            }
            DtbError::UnsupportedVersion { version, last_comp_version } => {
                write!(f, "unsupported DTB version {version} (last compatible {last_comp_version}); need 17")
            }
            DtbError::BadTotalSize { totalsize } => {
                write!(f, "implausible DTB totalsize {totalsize:#x} in header")
            }
            DtbError::TotalSizeExceedsBuffer { totalsize, len } => {
                write!(f, "DTB header says totalsize {totalsize:#x} but only {len:#x} bytes are available")
            }
            DtbError::BlockOutOfRange { block, offset, size, totalsize } => {
                write!(f, "DTB {block} at {offset:#x}+{size:#x} lies outside totalsize {totalsize:#x}")
            }
            DtbError::MisalignedBlock { block, offset } => {
                write!(f, "DTB {block} at {offset:#x} is misaligned")
            }
            DtbError::UnterminatedReservationMap => f.write_str("DTB memory reservation map has no terminating entry"),
            DtbError::Malformed { offset, what } => {
                write!(f, "malformed DTB structure at offset {offset:#x}: {what}")
            }
            DtbError::NoMemory => f.write_str("DTB has no /memory node with a non-empty reg"),
            DtbError::NoGic => f.write_str("DTB has no enabled GIC (arm,gic-v3, arm,gic-400, arm,cortex-a15-gic)"),
            DtbError::NoTimer => f.write_str("DTB has no enabled arm,armv8-timer node"),
            DtbError::MissingProperty { node, property } => {
                write!(f, "DTB node {node} lacks property `{property}`")
            }
            DtbError::BadProperty { node, property, reason } => {
                write!(f, "DTB node {node}: bad `{property}`: {reason}")
            }
            DtbError::Untranslatable { node, address } => {
                write!(f, "DTB node {node}: address {address:#x} is not translated by any parent `ranges`")
            }
            DtbError::InterruptParentNotGic { node } => {
                write!(f, "DTB node {node}: interrupt parent is not the GIC")
            }
            DtbError::TooMany { what, capacity } => {
                write!(f, "DTB has more {what} than the {capacity} supported")
            }
        }
    }
}
