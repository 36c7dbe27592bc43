//! The arm64 Linux `Image` header (Documentation/arch/arm64/booting.rst):
//! where a kernel wants to be loaded and how much memory it needs. Pure, so
//! a bad guest image is refused with a reason before any VM exists.

/// Header fields, by byte offset.
const TEXT_OFFSET: usize = 8;
const IMAGE_SIZE: usize = 16;
const FLAGS: usize = 24;
/// flags bit 0: the kernel is big-endian.
const FLAG_BE: u64 = 1;
const MAGIC: usize = 56;
/// "ARM\x64", little-endian.
const ARM64_MAGIC: u32 = 0x644d_5241;
const HEADER_LEN: usize = 64;
/// What booting.rst says to assume when `image_size` is 0 (kernels before 3.17).
const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;

/// Where and how big, from the header.
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

/// Reads the header of `image`.
pub fn parse(image: &[u8]) -> Result<LinuxImage, ImageError> {
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
    if !text_offset.is_multiple_of(4096) || text_offset.checked_add(image_size).is_none() {
        return Err(ImageError::BadHeader);
    }
    Ok(LinuxImage { text_offset, image_size })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text_offset: u64, image_size: u64, len: usize) -> Vec<u8> {
        let mut h = vec![0u8; len];
        h[TEXT_OFFSET..TEXT_OFFSET + 8].copy_from_slice(&text_offset.to_le_bytes());
        h[IMAGE_SIZE..IMAGE_SIZE + 8].copy_from_slice(&image_size.to_le_bytes());
        h[MAGIC..MAGIC + 4].copy_from_slice(b"ARM\x64");
        h
    }

    #[test]
    fn a_modern_header() {
        let img = parse(&header(0, 0x1ba_0000, 4096)).unwrap();
        assert_eq!(img, LinuxImage { text_offset: 0, image_size: 0x1ba_0000 });
    }

    #[test]
    fn a_legacy_header_loads_at_512_kib() {
        let img = parse(&header(0x1234, 0, 8192)).unwrap();
        assert_eq!(img, LinuxImage { text_offset: LEGACY_TEXT_OFFSET, image_size: 8192 });
    }

    #[test]
    fn the_file_size_is_a_floor() {
        assert_eq!(parse(&header(0, 100, 4096)).unwrap().image_size, 4096);
    }

    #[test]
    fn bad_images_are_refused_with_a_reason() {
        assert_eq!(parse(&[0; 10]), Err(ImageError::TooShort { len: 10 }));
        let mut not_linux = header(0, 0x1000, 4096);
        not_linux[MAGIC] = b'X';
        assert!(matches!(parse(&not_linux), Err(ImageError::BadMagic { .. })));
        assert_eq!(parse(&header(0x800, 0x1000, 4096)), Err(ImageError::BadHeader), "unaligned text_offset");
        assert_eq!(parse(&header(0x1000, u64::MAX, 4096)), Err(ImageError::BadHeader), "overflow");
        let mut be = header(0, 0x1000, 4096);
        be[FLAGS] = 1;
        assert_eq!(parse(&be), Err(ImageError::BigEndian));
        // The spevisor image itself is an arm64 Image too: accepted.
        assert!(parse(&header(0, 0x20_0000, 64)).is_ok());
    }
}
