//! The guest bundle: one file carrying everything `cargo xtask run --guest`
//! hands the host for one guest (kernel, optional initrd, command line,
//! vcpus, RAM). xtask builds it ([`write`]) and passes it to QEMU as
//! `-initrd`; the host finds it through `/chosen/linux,initrd-*`, keeps it
//! out of its allocators, maps it read-only, and parses it ([`parse`]) in
//! its `guest` scenario. The parser trusts nothing: every offset, size and
//! sum is checked, and a bad bundle is refused with the reason.
//!
//! # Format, version 1
//!
//! All integers little-endian. The header is [`HEADER_SIZE`] bytes:
//!
//! | offset | size | field | rule |
//! |---|---|---|---|
//! | 0 | 8 | magic | `b"SPVGUEST"` ([`MAGIC`]) |
//! | 8 | 4 | version | [`VERSION`] (1) |
//! | 12 | 4 | header_size | [`HEADER_SIZE`] (96) |
//! | 16 | 8 | total_size | bytes of the whole bundle; at most the file's size |
//! | 24 | 4 | vcpus | `1..=`[`MAX_VCPUS`](super::machine::MAX_VCPUS) |
//! | 28 | 4 | mem_mib | guest RAM in MiB, `1..=`[`MAX_MEM_MIB`] |
//! | 32 | 8 | kernel_offset | section of the kernel (an arm64 Linux Image or a raw binary, [`super::kernel`]) |
//! | 40 | 8 | kernel_size | not 0 |
//! | 48 | 8 | initrd_offset | section of the initrd |
//! | 56 | 8 | initrd_size | 0: no initrd (its offset must then be 0 too) |
//! | 64 | 8 | cmdline_offset | section of the guest's command line |
//! | 72 | 8 | cmdline_size | UTF-8, no NUL, at most [`MAX_CMDLINE`] bytes (0: empty) |
//! | 80 | 16 | reserved | must be 0 |
//!
//! Every non-empty section lies in `[header_size, total_size)` and no two
//! overlap. [`write`] puts the sections in this order, each at a
//! [`SECTION_ALIGN`]-aligned offset (the parser does not require it).

use super::machine::MAX_VCPUS;

/// The first 8 bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"SPVGUEST";
/// The format version this parser reads and [`write`] writes.
pub const VERSION: u32 = 1;
/// Bytes of the version-1 header.
pub const HEADER_SIZE: usize = 96;
/// The largest guest RAM a bundle may ask for (64 GiB: well inside the
/// smallest, 39-bit, IPA space above the RAM base).
pub const MAX_MEM_MIB: u32 = 64 << 10;
/// The longest command line (Linux's arm64 COMMAND_LINE_SIZE is 2048).
pub const MAX_CMDLINE: usize = 2048;
/// Alignment [`write`] gives each section.
pub const SECTION_ALIGN: usize = 4096;

/// Header fields, by byte offset.
mod field {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const HEADER_SIZE: usize = 12;
    pub const TOTAL_SIZE: usize = 16;
    pub const VCPUS: usize = 24;
    pub const MEM_MIB: usize = 28;
    pub const KERNEL: usize = 32;
    pub const INITRD: usize = 48;
    pub const CMDLINE: usize = 64;
    pub const RESERVED: usize = 80;
}

/// A parsed bundle: borrowed slices of the bytes it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bundle<'a> {
    pub vcpus: u32,
    pub mem_mib: u32,
    pub kernel: &'a [u8],
    pub initrd: Option<&'a [u8]>,
    pub cmdline: &'a str,
}

impl Bundle<'_> {
    /// Guest RAM in bytes.
    pub const fn mem_bytes(&self) -> u64 {
        (self.mem_mib as u64) << 20
    }
}

/// The sections, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Kernel,
    Initrd,
    Cmdline,
}

impl Section {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Kernel => "kernel",
            Self::Initrd => "initrd",
            Self::Cmdline => "command line",
        }
    }
}

/// Why bytes are not a bundle this parser accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// Fewer bytes than a header.
    TooShort {
        len: usize,
    },
    BadMagic,
    UnsupportedVersion {
        found: u32,
    },
    BadHeaderSize {
        found: u32,
    },
    /// total_size is below the header or beyond the bytes there are.
    BadTotalSize {
        claimed: u64,
        available: usize,
    },
    VcpusOutOfRange {
        found: u32,
    },
    MemOutOfRange {
        found_mib: u32,
    },
    /// A section starts inside the header, runs past total_size, or its
    /// end overflows.
    SectionOutOfBounds {
        section: Section,
        offset: u64,
        size: u64,
        total: u64,
    },
    /// Two sections share bytes.
    SectionsOverlap {
        a: Section,
        b: Section,
    },
    EmptyKernel,
    /// No initrd, but a non-zero initrd offset.
    StrayInitrdOffset {
        offset: u64,
    },
    CmdlineTooLong {
        len: u64,
    },
    CmdlineNotUtf8,
    CmdlineHasNul,
    ReservedNotZero,
}

impl core::fmt::Display for BundleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::TooShort { len } => write!(f, "{len} bytes: shorter than a guest bundle header ({HEADER_SIZE})"),
            Self::BadMagic => write!(f, "no SPVGUEST magic: not a guest bundle (cargo xtask run --guest makes them)"),
            Self::UnsupportedVersion { found } => {
                write!(f, "bundle version {found}; this host reads version {VERSION}")
            }
            Self::BadHeaderSize { found } => write!(f, "header size {found}, expected {HEADER_SIZE}"),
            Self::BadTotalSize { claimed, available } => {
                write!(f, "total size {claimed} bytes, but {available} bytes are there (header {HEADER_SIZE})")
            }
            Self::VcpusOutOfRange { found } => write!(f, "{found} vcpus: a guest has 1 to {MAX_VCPUS}"),
            Self::MemOutOfRange { found_mib } => write!(f, "{found_mib} MiB of RAM: 1 to {MAX_MEM_MIB} MiB"),
            Self::SectionOutOfBounds { section, offset, size, total } => write!(
                f,
                "{} section at offset {offset:#x}, {size:#x} bytes: outside the bundle's data [{HEADER_SIZE:#x}, {total:#x})",
                section.name()
            ),
            Self::SectionsOverlap { a, b } => write!(f, "the {} and {} sections overlap", a.name(), b.name()),
            Self::EmptyKernel => write!(f, "the kernel section is empty"),
            Self::StrayInitrdOffset { offset } => write!(f, "initrd size 0 with offset {offset:#x} (must be 0)"),
            Self::CmdlineTooLong { len } => write!(f, "command line of {len} bytes: at most {MAX_CMDLINE}"),
            Self::CmdlineNotUtf8 => write!(f, "the command line is not UTF-8"),
            Self::CmdlineHasNul => write!(f, "the command line contains a NUL byte"),
            Self::ReservedNotZero => write!(f, "reserved header bytes are not zero"),
        }
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// A section's `[start, end)` within the bundle, checked against `total`.
fn section(b: &[u8], at: usize, which: Section, total: u64) -> Result<(u64, u64), BundleError> {
    let (offset, size) = (le64(b, at), le64(b, at + 8));
    if size == 0 {
        return Ok((0, 0));
    }
    let out = BundleError::SectionOutOfBounds { section: which, offset, size, total };
    let end = offset.checked_add(size).ok_or(out)?;
    if offset < HEADER_SIZE as u64 || end > total {
        return Err(out);
    }
    Ok((offset, end))
}

/// Parses a bundle from `bytes` (which may be longer than the bundle:
/// QEMU's initrd region is the file, but the caller may hand more).
pub fn parse(bytes: &[u8]) -> Result<Bundle<'_>, BundleError> {
    if bytes.len() < HEADER_SIZE {
        return Err(BundleError::TooShort { len: bytes.len() });
    }
    if bytes[field::MAGIC..field::MAGIC + MAGIC.len()] != MAGIC {
        return Err(BundleError::BadMagic);
    }
    let version = le32(bytes, field::VERSION);
    if version != VERSION {
        return Err(BundleError::UnsupportedVersion { found: version });
    }
    let header_size = le32(bytes, field::HEADER_SIZE);
    if header_size as usize != HEADER_SIZE {
        return Err(BundleError::BadHeaderSize { found: header_size });
    }
    if bytes[field::RESERVED..HEADER_SIZE].iter().any(|b| *b != 0) {
        return Err(BundleError::ReservedNotZero);
    }
    let total = le64(bytes, field::TOTAL_SIZE);
    if total < HEADER_SIZE as u64 || total > bytes.len() as u64 {
        return Err(BundleError::BadTotalSize { claimed: total, available: bytes.len() });
    }
    let vcpus = le32(bytes, field::VCPUS);
    if !(1..=MAX_VCPUS).contains(&vcpus) {
        return Err(BundleError::VcpusOutOfRange { found: vcpus });
    }
    let mem_mib = le32(bytes, field::MEM_MIB);
    if !(1..=MAX_MEM_MIB).contains(&mem_mib) {
        return Err(BundleError::MemOutOfRange { found_mib: mem_mib });
    }
    let kernel = section(bytes, field::KERNEL, Section::Kernel, total)?;
    let initrd = section(bytes, field::INITRD, Section::Initrd, total)?;
    let cmdline = section(bytes, field::CMDLINE, Section::Cmdline, total)?;
    if kernel.0 == kernel.1 {
        return Err(BundleError::EmptyKernel);
    }
    if initrd.0 == initrd.1 && le64(bytes, field::INITRD) != 0 {
        return Err(BundleError::StrayInitrdOffset { offset: le64(bytes, field::INITRD) });
    }
    let named = [(Section::Kernel, kernel), (Section::Initrd, initrd), (Section::Cmdline, cmdline)];
    for (i, (a, ra)) in named.iter().enumerate() {
        for (b, rb) in &named[i + 1..] {
            let empty = ra.0 == ra.1 || rb.0 == rb.1;
            if !empty && ra.0 < rb.1 && rb.0 < ra.1 {
                return Err(BundleError::SectionsOverlap { a: *a, b: *b });
            }
        }
    }
    // Every end is <= total <= bytes.len(): the casts and slices hold.
    let slice = |(s, e): (u64, u64)| &bytes[s as usize..e as usize];
    let cmdline_bytes = slice(cmdline);
    if cmdline_bytes.len() > MAX_CMDLINE {
        return Err(BundleError::CmdlineTooLong { len: cmdline_bytes.len() as u64 });
    }
    if cmdline_bytes.contains(&0) {
        return Err(BundleError::CmdlineHasNul);
    }
    let cmdline = core::str::from_utf8(cmdline_bytes).map_err(|_| BundleError::CmdlineNotUtf8)?;
    Ok(Bundle { vcpus, mem_mib, kernel: slice(kernel), initrd: (initrd.0 != initrd.1).then(|| slice(initrd)), cmdline })
}

const fn align_up(v: usize) -> usize {
    v.div_ceil(SECTION_ALIGN) * SECTION_ALIGN
}

/// The offsets [`write`] uses and the bundle's total size; `None` on overflow.
fn layout(b: &Bundle) -> Option<[usize; 4]> {
    let kernel = align_up(HEADER_SIZE);
    let initrd = align_up(kernel.checked_add(b.kernel.len())?);
    let initrd_len = b.initrd.map_or(0, |i| i.len());
    let cmdline = align_up(initrd.checked_add(initrd_len)?);
    let total = cmdline.checked_add(b.cmdline.len())?;
    Some([kernel, if initrd_len == 0 { 0 } else { initrd }, cmdline, total])
}

/// Bytes [`write`] needs for `b`.
pub fn encoded_len(b: &Bundle) -> Option<usize> {
    layout(b).map(|l| l[3])
}

/// Writes `b` as a version-1 bundle into `out` (at least
/// [`encoded_len`] bytes, zeroed beyond the header by the caller or not:
/// the padding between sections is written as zeroes here). Refuses what
/// [`parse`] would refuse, so a written bundle always parses back.
pub fn write(out: &mut [u8], b: &Bundle) -> Result<usize, BundleError> {
    let [k, i, c, total] = layout(b).ok_or(BundleError::BadTotalSize { claimed: u64::MAX, available: out.len() })?;
    if out.len() < total {
        return Err(BundleError::BadTotalSize { claimed: total as u64, available: out.len() });
    }
    let out = &mut out[..total];
    out.fill(0);
    out[field::MAGIC..field::MAGIC + MAGIC.len()].copy_from_slice(&MAGIC);
    out[field::VERSION..field::VERSION + 4].copy_from_slice(&VERSION.to_le_bytes());
    out[field::HEADER_SIZE..field::HEADER_SIZE + 4].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
    out[field::TOTAL_SIZE..field::TOTAL_SIZE + 8].copy_from_slice(&(total as u64).to_le_bytes());
    out[field::VCPUS..field::VCPUS + 4].copy_from_slice(&b.vcpus.to_le_bytes());
    out[field::MEM_MIB..field::MEM_MIB + 4].copy_from_slice(&b.mem_mib.to_le_bytes());
    let initrd = b.initrd.unwrap_or(&[]);
    for (at, offset, data) in
        [(field::KERNEL, k, b.kernel), (field::INITRD, i, initrd), (field::CMDLINE, c, b.cmdline.as_bytes())]
    {
        let offset = if data.is_empty() { 0 } else { offset };
        out[at..at + 8].copy_from_slice(&(offset as u64).to_le_bytes());
        out[at + 8..at + 16].copy_from_slice(&(data.len() as u64).to_le_bytes());
        out[offset..offset + data.len()].copy_from_slice(data);
    }
    // The same checks as the reader: a bundle written is a bundle read.
    parse(out)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<u8>, Vec<u8>) {
        ((0..5000u32).map(|i| i as u8).collect(), vec![0xc0; 777])
    }

    fn build(b: &Bundle) -> Vec<u8> {
        let mut v = vec![0xee; encoded_len(b).unwrap()];
        assert_eq!(write(&mut v, b).unwrap(), v.len());
        v
    }

    fn good() -> Vec<u8> {
        let (k, i) = sample();
        build(&Bundle { vcpus: 2, mem_mib: 64, kernel: &k, initrd: Some(&i), cmdline: "console=ttyAMA0" })
    }

    fn put64(v: &mut [u8], at: usize, x: u64) {
        v[at..at + 8].copy_from_slice(&x.to_le_bytes());
    }

    fn put32(v: &mut [u8], at: usize, x: u32) {
        v[at..at + 4].copy_from_slice(&x.to_le_bytes());
    }

    #[test]
    fn round_trip() {
        let (k, i) = sample();
        let want = Bundle { vcpus: 2, mem_mib: 64, kernel: &k, initrd: Some(&i), cmdline: "console=ttyAMA0" };
        let v = build(&want);
        assert_eq!(parse(&v), Ok(want));
        assert_eq!(&v[..8], b"SPVGUEST");
        assert_eq!(le64(&v, field::KERNEL) as usize % SECTION_ALIGN, 0);
        // Longer input (a page-rounded region) is fine.
        let mut longer = v.clone();
        longer.extend_from_slice(&[0xff; 100]);
        assert_eq!(parse(&longer), Ok(want));
        let no_initrd = Bundle { vcpus: 1, mem_mib: 1, kernel: &k, initrd: None, cmdline: "" };
        let v = build(&no_initrd);
        assert_eq!(parse(&v), Ok(no_initrd));
        assert_eq!(le64(&v, field::INITRD), 0);
        assert_eq!(no_initrd.mem_bytes(), 1 << 20);
    }

    #[test]
    fn every_header_field_is_checked() {
        let g = good();
        let bad = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut v = g.clone();
            edit(&mut v);
            parse(&v).unwrap_err()
        };
        assert_eq!(parse(&g[..HEADER_SIZE - 1]), Err(BundleError::TooShort { len: HEADER_SIZE - 1 }));
        assert_eq!(bad(&|v| v[0] = b'X'), BundleError::BadMagic);
        assert_eq!(bad(&|v| put32(v, field::VERSION, 2)), BundleError::UnsupportedVersion { found: 2 });
        assert_eq!(bad(&|v| put32(v, field::HEADER_SIZE, 64)), BundleError::BadHeaderSize { found: 64 });
        assert_eq!(bad(&|v| v[HEADER_SIZE - 1] = 1), BundleError::ReservedNotZero);
        let len = g.len();
        assert_eq!(
            bad(&|v| put64(v, field::TOTAL_SIZE, len as u64 + 1)),
            BundleError::BadTotalSize { claimed: len as u64 + 1, available: len }
        );
        assert!(matches!(bad(&|v| put64(v, field::TOTAL_SIZE, 10)), BundleError::BadTotalSize { .. }));
        // The file cut short: total_size now lies.
        assert!(matches!(parse(&g[..len - 1]), Err(BundleError::BadTotalSize { .. })));
        assert_eq!(bad(&|v| put32(v, field::VCPUS, 0)), BundleError::VcpusOutOfRange { found: 0 });
        assert_eq!(bad(&|v| put32(v, field::VCPUS, MAX_VCPUS + 1)), BundleError::VcpusOutOfRange { found: 9 });
        assert_eq!(bad(&|v| put32(v, field::MEM_MIB, 0)), BundleError::MemOutOfRange { found_mib: 0 });
        assert!(matches!(bad(&|v| put32(v, field::MEM_MIB, MAX_MEM_MIB + 1)), BundleError::MemOutOfRange { .. }));
    }

    #[test]
    fn every_section_is_checked() {
        let g = good();
        let total = g.len() as u64;
        let bad = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut v = g.clone();
            edit(&mut v);
            parse(&v).unwrap_err()
        };
        let oob =
            |e: BundleError, s: Section| matches!(e, BundleError::SectionOutOfBounds { section, .. } if section == s);
        // Past the end, inside the header, and an offset + size that wraps.
        assert!(oob(bad(&|v| put64(v, field::KERNEL + 8, total)), Section::Kernel));
        assert!(oob(bad(&|v| put64(v, field::KERNEL, 8)), Section::Kernel));
        assert!(oob(bad(&|v| put64(v, field::INITRD, u64::MAX - 10)), Section::Initrd));
        assert!(oob(bad(&|v| put64(v, field::CMDLINE + 8, u64::MAX)), Section::Cmdline));
        assert_eq!(bad(&|v| put64(v, field::KERNEL + 8, 0)), BundleError::EmptyKernel);
        assert_eq!(
            bad(&|v| put64(v, field::INITRD + 8, 0)),
            BundleError::StrayInitrdOffset { offset: le64(&g, field::INITRD) }
        );
        let initrd_at = le64(&g, field::INITRD);
        assert_eq!(
            bad(&|v| put64(v, field::KERNEL + 8, initrd_at - le64(&g, field::KERNEL) + 1)),
            BundleError::SectionsOverlap { a: Section::Kernel, b: Section::Initrd }
        );
        assert_eq!(
            bad(&|v| put64(v, field::CMDLINE, initrd_at)),
            BundleError::SectionsOverlap { a: Section::Initrd, b: Section::Cmdline }
        );
        let cmd = le64(&g, field::CMDLINE) as usize;
        assert_eq!(bad(&|v| v[cmd] = 0), BundleError::CmdlineHasNul);
        assert_eq!(bad(&|v| v[cmd] = 0xff), BundleError::CmdlineNotUtf8);
        let (k, _) = sample();
        let long = "x".repeat(MAX_CMDLINE + 1);
        let b = Bundle { vcpus: 1, mem_mib: 1, kernel: &k, initrd: None, cmdline: &long };
        let mut v = vec![0; encoded_len(&b).unwrap()];
        assert_eq!(write(&mut v, &b), Err(BundleError::CmdlineTooLong { len: MAX_CMDLINE as u64 + 1 }));
    }

    #[test]
    fn write_refuses_short_buffers_and_bad_contents() {
        let (k, _) = sample();
        let b = Bundle { vcpus: 9, mem_mib: 1, kernel: &k, initrd: None, cmdline: "" };
        let mut v = vec![0; encoded_len(&b).unwrap()];
        assert_eq!(write(&mut v, &b), Err(BundleError::VcpusOutOfRange { found: 9 }));
        let b = Bundle { vcpus: 1, ..b };
        let mut short = vec![0; encoded_len(&b).unwrap() - 1];
        assert!(matches!(write(&mut short, &b), Err(BundleError::BadTotalSize { .. })));
        let empty = Bundle { kernel: &[], ..b };
        let mut v = vec![0; encoded_len(&empty).unwrap()];
        assert_eq!(write(&mut v, &empty), Err(BundleError::EmptyKernel));
    }

    #[test]
    fn errors_read_well() {
        let e = BundleError::SectionOutOfBounds { section: Section::Initrd, offset: 0x2000, size: 0x10, total: 0x1000 };
        assert_eq!(
            format!("{e}"),
            "initrd section at offset 0x2000, 0x10 bytes: outside the bundle's data [0x60, 0x1000)"
        );
        assert!(format!("{}", BundleError::BadMagic).contains("SPVGUEST"));
    }
}
