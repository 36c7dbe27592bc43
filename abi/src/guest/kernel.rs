//! What a guest kernel file is and where it goes in guest RAM. Pure, shared
//! by `cargo xtask run --guest` (which refuses a bad file before QEMU starts)
//! and the host (which trusts nothing it is handed and checks again).
//!
//! Two kinds boot:
//!
//! - an arm64 Linux `Image` (Documentation/arch/arm64/booting.rst): the
//!   64-byte header with "ARM\x64" at offset 56; loaded at RAM +
//!   `text_offset`, needing `image_size` bytes from there;
//! - a raw binary: anything else that is not a recognisable container or
//!   compressed file; loaded at RAM + [`RAW_TEXT_OFFSET`], as QEMU's `virt`
//!   machine loads a raw `-kernel`.
//!
//! Both are entered at their load address with x0 = the device tree's IPA
//! and x1..x3 = 0. An initrd goes as high in RAM as it fits: page aligned,
//! just below the device tree slot ([`super::machine::DTB_SLOT`]), above the
//! kernel's footprint ([`plan`]).

use super::machine::DTB_SLOT;

/// Where a raw binary is loaded, from the RAM base (QEMU `virt`'s offset
/// for a raw `-kernel`, and the legacy Linux `text_offset`).
pub const RAW_TEXT_OFFSET: u64 = 0x8_0000;
/// Guest page size: the initrd starts on a page boundary.
pub const PAGE_SIZE: u64 = 4096;

/// Linux Image header fields, by byte offset.
const TEXT_OFFSET: usize = 8;
const IMAGE_SIZE: usize = 16;
const FLAGS: usize = 24;
/// flags bit 0: the kernel is big-endian.
const FLAG_BE: u64 = 1;
const MAGIC: usize = 56;
/// "ARM\x64", little-endian.
const ARM64_MAGIC: u32 = 0x644d_5241;
/// Bytes of the Linux Image header.
pub const HEADER_LEN: usize = 64;
/// What booting.rst says to assume when `image_size` is 0 (kernels before 3.17).
const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;

/// Where and how big, from a Linux Image header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinuxImage {
    /// Offset from a 2 MiB-aligned RAM base to load the image at.
    pub text_offset: u64,
    /// Bytes the kernel occupies from its load address, `.bss` and early
    /// page tables included (at least the file's size).
    pub image_size: u64,
}

/// Why an image cannot be booted as Linux.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Shorter than the 64-byte header.
    TooShort { len: usize },
    /// No "ARM\x64" at offset 56.
    BadMagic { found: u32 },
    /// `text_offset` not 4 KiB aligned, or the sizes overflow.
    BadHeader,
    /// A big-endian kernel (guests start little-endian).
    BigEndian,
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "{len} bytes: shorter than an arm64 Image header"),
            Self::BadMagic { found } => {
                write!(f, "not an arm64 Image (magic {found:#010x}, expected {ARM64_MAGIC:#010x})")
            }
            Self::BadHeader => write!(f, "arm64 Image header with an unaligned text_offset or overflowing sizes"),
            Self::BigEndian => write!(f, "a big-endian arm64 Image (guests start little-endian)"),
        }
    }
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Whether `image` carries the arm64 Image magic at offset 56.
pub fn has_linux_magic(image: &[u8]) -> bool {
    image.len() >= HEADER_LEN && image[MAGIC..MAGIC + 4] == ARM64_MAGIC.to_le_bytes()
}

/// Reads the Linux Image header of `image`.
pub fn parse_linux(image: &[u8]) -> Result<LinuxImage, ImageError> {
    if image.len() < HEADER_LEN {
        return Err(ImageError::TooShort { len: image.len() });
    }
    let magic = u32::from_le_bytes([image[MAGIC], image[MAGIC + 1], image[MAGIC + 2], image[MAGIC + 3]]);
    if magic != ARM64_MAGIC {
        return Err(ImageError::BadMagic { found: magic });
    }
    let (text_offset, image_size) = match le64(image, IMAGE_SIZE) {
        // flags exist only where image_size does (kernels from 3.17).
        size if size != 0 && le64(image, FLAGS) & FLAG_BE != 0 => return Err(ImageError::BigEndian),
        0 => (LEGACY_TEXT_OFFSET, 0),
        size => (le64(image, TEXT_OFFSET), size),
    };
    let image_size = image_size.max(image.len() as u64);
    if !text_offset.is_multiple_of(PAGE_SIZE) || text_offset.checked_add(image_size).is_none() {
        return Err(ImageError::BadHeader);
    }
    Ok(LinuxImage { text_offset, image_size })
}

/// A file that is neither a Linux Image nor a plausible raw binary: what
/// it is instead, recognised by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotBootable {
    Empty,
    Elf,
    Gzip,
    Xz,
    Zstd,
    Bzip2,
    Lz4,
    /// A U-Boot legacy image (`mkimage` header).
    UImage,
}

/// Leading bytes of the formats refused by name.
const SIGNATURES: [(&[u8], NotBootable); 7] = [
    (b"\x7fELF", NotBootable::Elf),
    (b"\x1f\x8b", NotBootable::Gzip),
    (b"\xfd7zXZ\x00", NotBootable::Xz),
    (b"\x28\xb5\x2f\xfd", NotBootable::Zstd),
    (b"BZh", NotBootable::Bzip2),
    (b"\x04\x22\x4d\x18", NotBootable::Lz4),
    (b"\x27\x05\x19\x56", NotBootable::UImage),
];

impl NotBootable {
    /// The format's name, for messages and test assertions.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Elf => "ELF",
            Self::Gzip => "gzip-compressed",
            Self::Xz => "xz-compressed",
            Self::Zstd => "zstd-compressed",
            Self::Bzip2 => "bzip2-compressed",
            Self::Lz4 => "lz4-compressed",
            Self::UImage => "a U-Boot uImage",
        }
    }

    const fn hint(self) -> &'static str {
        match self {
            Self::Empty => "nothing to boot",
            Self::Elf => "give the raw binary (objcopy -O binary) or a kernel's arch/arm64/boot/Image",
            Self::Gzip | Self::Xz | Self::Zstd | Self::Bzip2 | Self::Lz4 => "decompress it first",
            Self::UImage => "strip the 64-byte mkimage header (or give the Image inside)",
        }
    }
}

impl core::fmt::Display for NotBootable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} file, neither an arm64 Linux Image nor a raw binary: {}", self.name(), self.hint())
    }
}

/// How a kernel file boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    Linux(LinuxImage),
    Raw,
}

impl KernelKind {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Linux(_) => "arm64 Linux Image",
            Self::Raw => "raw binary",
        }
    }
}

/// Why a kernel cannot go into a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelError {
    NotBootable(NotBootable),
    /// The Linux Image magic is there but the header is bad.
    BadLinux(ImageError),
    /// Kernel, initrd and device tree do not fit in the guest's RAM.
    TooBig {
        /// Where the kernel's footprint ends, from the RAM base.
        kernel_end: u64,
        initrd_len: u64,
        ram: u64,
    },
}

impl core::fmt::Display for KernelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotBootable(n) => n.fmt(f),
            Self::BadLinux(e) => e.fmt(f),
            Self::TooBig { kernel_end, initrd_len, ram } => write!(
                f,
                "too big for the guest's RAM: the kernel needs {kernel_end:#x} bytes from the RAM base (load offset \
                 included), the initrd {initrd_len:#x}, the device tree {DTB_SLOT:#x}; RAM is {ram:#x} bytes \
                 ({} MiB)",
                ram >> 20
            ),
        }
    }
}

/// What `kernel` is: a Linux Image (header checked), a raw binary, or
/// refused by name.
pub fn classify(kernel: &[u8]) -> Result<KernelKind, KernelError> {
    if kernel.is_empty() {
        return Err(KernelError::NotBootable(NotBootable::Empty));
    }
    if has_linux_magic(kernel) {
        return parse_linux(kernel).map(KernelKind::Linux).map_err(KernelError::BadLinux);
    }
    match SIGNATURES.iter().find(|(sig, _)| kernel.starts_with(sig)) {
        Some((_, what)) => Err(KernelError::NotBootable(*what)),
        None => Ok(KernelKind::Raw),
    }
}

/// Where everything goes in a guest's RAM (offsets from the RAM base).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub kind: KernelKind,
    /// Load (and entry) offset of the kernel.
    pub kernel_offset: u64,
    /// End of the kernel's footprint (`.bss` included for Linux).
    pub kernel_end: u64,
    /// Offset of the initrd, if there is one: page aligned, ending at most
    /// at the device tree slot, at or above `kernel_end`.
    pub initrd_offset: Option<u64>,
    /// Offset of the device tree slot (the last [`DTB_SLOT`] bytes).
    pub dtb_offset: u64,
}

/// Places `kernel` and an initrd of `initrd_len` bytes (0: none) in `ram`
/// bytes of guest RAM, or says why they cannot go there.
pub fn plan(ram: u64, kernel: &[u8], initrd_len: u64) -> Result<Plan, KernelError> {
    let kind = classify(kernel)?;
    let (kernel_offset, footprint) = match kind {
        KernelKind::Linux(h) => (h.text_offset, h.image_size),
        KernelKind::Raw => (RAW_TEXT_OFFSET, kernel.len() as u64),
    };
    let too_big = KernelError::TooBig { kernel_end: kernel_offset.saturating_add(footprint), initrd_len, ram };
    let kernel_end = kernel_offset.checked_add(footprint).ok_or(too_big)?;
    let dtb_offset = ram.checked_sub(DTB_SLOT).ok_or(too_big)?;
    if kernel_end > dtb_offset {
        return Err(too_big);
    }
    let initrd_offset = match initrd_len {
        0 => None,
        len => {
            let start = dtb_offset.checked_sub(len).ok_or(too_big)? & !(PAGE_SIZE - 1);
            if start < kernel_end {
                return Err(too_big);
            }
            Some(start)
        }
    };
    Ok(Plan { kind, kernel_offset, kernel_end, initrd_offset, dtb_offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn header(text_offset: u64, image_size: u64, len: usize) -> Vec<u8> {
        let mut h = vec![0u8; len];
        h[TEXT_OFFSET..TEXT_OFFSET + 8].copy_from_slice(&text_offset.to_le_bytes());
        h[IMAGE_SIZE..IMAGE_SIZE + 8].copy_from_slice(&image_size.to_le_bytes());
        h[MAGIC..MAGIC + 4].copy_from_slice(b"ARM\x64");
        h
    }

    #[test]
    fn a_modern_header() {
        let img = parse_linux(&header(0, 0x1ba_0000, 4096)).unwrap();
        assert_eq!(img, LinuxImage { text_offset: 0, image_size: 0x1ba_0000 });
    }

    #[test]
    fn a_legacy_header_loads_at_512_kib() {
        let img = parse_linux(&header(0x1234, 0, 8192)).unwrap();
        assert_eq!(img, LinuxImage { text_offset: LEGACY_TEXT_OFFSET, image_size: 8192 });
    }

    #[test]
    fn the_file_size_is_a_floor() {
        assert_eq!(parse_linux(&header(0, 100, 4096)).unwrap().image_size, 4096);
    }

    #[test]
    fn bad_linux_headers_are_refused_with_a_reason() {
        assert_eq!(parse_linux(&[0; 10]), Err(ImageError::TooShort { len: 10 }));
        let mut not_linux = header(0, 0x1000, 4096);
        not_linux[MAGIC] = b'X';
        assert!(matches!(parse_linux(&not_linux), Err(ImageError::BadMagic { .. })));
        assert_eq!(parse_linux(&header(0x800, 0x1000, 4096)), Err(ImageError::BadHeader), "unaligned text_offset");
        assert_eq!(parse_linux(&header(0x1000, u64::MAX, 4096)), Err(ImageError::BadHeader), "overflow");
        let mut be = header(0, 0x1000, 4096);
        be[FLAGS] = 1;
        assert_eq!(parse_linux(&be), Err(ImageError::BigEndian));
        assert!(parse_linux(&header(0, 0x20_0000, 64)).is_ok());
    }

    #[test]
    fn files_are_classified_by_their_first_bytes() {
        assert_eq!(
            classify(&header(0, 0x1000, 4096)),
            Ok(KernelKind::Linux(LinuxImage { text_offset: 0, image_size: 0x1000 }))
        );
        // A Linux Image with an EFI stub starts with "MZ": still Linux.
        let mut efi = header(0, 0x1000, 4096);
        efi[..2].copy_from_slice(b"MZ");
        assert!(matches!(classify(&efi), Ok(KernelKind::Linux(_))));
        let mut be = header(0, 0x1000, 4096);
        be[FLAGS] = 1;
        assert_eq!(classify(&be), Err(KernelError::BadLinux(ImageError::BigEndian)));
        assert_eq!(classify(&[]), Err(KernelError::NotBootable(NotBootable::Empty)));
        for (sig, what) in SIGNATURES {
            let mut f = sig.to_vec();
            f.resize(4096, 0);
            assert_eq!(classify(&f), Err(KernelError::NotBootable(what)), "{}", what.name());
        }
        // Raw code: a branch instruction, a few bytes, no header.
        assert_eq!(classify(&[0x00, 0x00, 0x00, 0x14]), Ok(KernelKind::Raw));
        assert_eq!(classify(&[0x5a; 64 << 10]), Ok(KernelKind::Raw));
        let msg = format!("{}", KernelError::NotBootable(NotBootable::Gzip));
        assert!(msg.starts_with("gzip-compressed file"), "{msg}");
    }

    #[test]
    fn the_initrd_goes_high_and_page_aligned() {
        let raw = [0x14u8; 0x1234];
        let p = plan(16 * MIB, &raw, 0x3001).unwrap();
        assert_eq!(p.kind, KernelKind::Raw);
        assert_eq!(p.kernel_offset, RAW_TEXT_OFFSET);
        assert_eq!(p.kernel_end, RAW_TEXT_OFFSET + 0x1234);
        assert_eq!(p.dtb_offset, 16 * MIB - DTB_SLOT);
        let start = p.initrd_offset.unwrap();
        assert_eq!(start % PAGE_SIZE, 0);
        assert!(start + 0x3001 <= p.dtb_offset && start + 0x3001 + PAGE_SIZE > p.dtb_offset, "{start:#x}");
        assert_eq!(plan(16 * MIB, &raw, 0).unwrap().initrd_offset, None);
        let linux = plan(256 * MIB, &header(0, 0x1ba_0000, 4096), 0x10_0000).unwrap();
        assert_eq!((linux.kernel_offset, linux.kernel_end), (0, 0x1ba_0000));
    }

    #[test]
    fn too_big_is_refused_with_the_sizes() {
        let raw = vec![0x14u8; 2 * MIB as usize];
        // 2 MiB from 0x80000 plus the DTB slot does not fit in 2 MiB.
        let e = plan(2 * MIB, &raw, 0).unwrap_err();
        assert_eq!(e, KernelError::TooBig { kernel_end: RAW_TEXT_OFFSET + 2 * MIB, initrd_len: 0, ram: 2 * MIB });
        assert!(format!("{e}").contains("0x280000 bytes"), "{e}");
        // Fits alone, not with the initrd.
        assert!(plan(4 * MIB, &raw, 0).is_ok());
        assert!(matches!(plan(4 * MIB, &raw, 3 * MIB / 2), Err(KernelError::TooBig { .. })));
        // Exactly fits: kernel end = initrd start = DTB slot - initrd.
        let end = RAW_TEXT_OFFSET + 2 * MIB;
        let initrd = 4 * MIB - DTB_SLOT - end;
        assert_eq!(plan(4 * MIB, &raw, initrd).unwrap().initrd_offset, Some(end));
        assert!(plan(4 * MIB, &raw, initrd + 1).is_err());
        // RAM smaller than the DTB slot, huge initrd, Linux image_size overflow.
        assert!(plan(DTB_SLOT - 1, &[1], 0).is_err());
        assert!(plan(4 * MIB, &raw, u64::MAX).is_err());
        assert!(plan(256 * MIB, &header(0x20_0000, u64::MAX - 0x10_0000, 4096), 0).is_err());
    }
}
