//! Framed buffer dumps over a text console.
//!
//! The host kernel prints raw SPE buffers on the serial console in frames
//! that survive being mixed with other log output:
//!
//! ```text
//! SPEDUMP BEGIN len=<n> crc32=<8 hex digits>
//! <lowercase hex, at most 64 bytes (128 digits) per line>
//! ...
//! SPEDUMP END
//! ```
//!
//! * `len` is the payload length in decimal, `crc32` the CRC-32/IEEE
//!   (the zlib/Ethernet CRC) of the payload.
//! * The `SPEDUMP` markers may be preceded by other text on their line (a
//!   log prefix); data lines are hex only, surrounding whitespace (and a
//!   `\r`) is ignored.
//! * A reader extracts every frame from a whole log, ignoring the lines
//!   outside frames, and must check the length and the CRC.
//!
//! Both sides are `no_std` and allocation free: [`write_frame`] formats into
//! any [`core::fmt::Write`], [`Frames`] finds frames in a log and
//! [`Frame::decode_into`] checks and decodes one into a caller buffer.

use core::fmt::{self, Write};

/// Marker that starts a frame header.
pub const BEGIN_MARKER: &str = "SPEDUMP BEGIN";
/// Marker that ends a frame.
pub const END_MARKER: &str = "SPEDUMP END";
/// Payload bytes per data line.
pub const BYTES_PER_LINE: usize = 64;
const LEN_KEY: &str = "len=";
const CRC_KEY: &str = "crc32=";
const HEX_RADIX: u32 = 16;
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
const NIBBLE_BITS: u32 = 4;
const NIBBLE_MASK: u8 = 0xf;

/// Reflected CRC-32/IEEE polynomial.
const CRC32_POLY: u32 = 0xedb8_8320;
const CRC32_INIT: u32 = 0xffff_ffff;

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < table.len() {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < u8::BITS {
            c = if c & 1 != 0 { CRC32_POLY ^ (c >> 1) } else { c >> 1 };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC32_TABLE: [u32; 256] = crc32_table();

/// Incremental CRC-32/IEEE.
#[derive(Clone, Copy, Debug)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// A fresh CRC.
    pub const fn new() -> Self {
        Self(CRC32_INIT)
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = CRC32_TABLE[usize::from((self.0 as u8) ^ b)] ^ (self.0 >> u8::BITS);
        }
    }

    /// The CRC of everything added so far.
    pub const fn finish(&self) -> u32 {
        !self.0
    }
}

/// CRC-32/IEEE of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(bytes);
    c.finish()
}

/// Writes one frame holding the concatenation of `parts` (e.g. the two
/// halves of a wrapped ring buffer).
pub fn write_frame_parts<W: Write>(w: &mut W, parts: &[&[u8]]) -> fmt::Result {
    let mut crc = Crc32::new();
    let mut len = 0usize;
    for p in parts {
        crc.update(p);
        len += p.len();
    }
    writeln!(w, "{BEGIN_MARKER} {LEN_KEY}{len} {CRC_KEY}{:08x}", crc.finish())?;
    let mut in_line = 0;
    for b in parts.iter().flat_map(|p| p.iter()) {
        w.write_char(char::from(HEX_DIGITS[usize::from(b >> NIBBLE_BITS)]))?;
        w.write_char(char::from(HEX_DIGITS[usize::from(b & NIBBLE_MASK)]))?;
        in_line += 1;
        if in_line == BYTES_PER_LINE {
            w.write_char('\n')?;
            in_line = 0;
        }
    }
    if in_line != 0 {
        w.write_char('\n')?;
    }
    writeln!(w, "{END_MARKER}")
}

/// Writes one frame holding `data`.
pub fn write_frame<W: Write>(w: &mut W, data: &[u8]) -> fmt::Result {
    write_frame_parts(w, &[data])
}

/// What is wrong with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameErrorKind {
    /// The BEGIN line lacks a valid `len=` or `crc32=`.
    BadHeader,
    /// The log ends (or a new frame begins) before `SPEDUMP END`.
    MissingEnd,
    /// A data line holds a non-hex character or an odd number of digits.
    BadHex,
    /// A data line holds more than [`BYTES_PER_LINE`] bytes.
    LineTooLong,
    /// The payload length differs from `len=`.
    LengthMismatch {
        /// Announced length.
        expected: usize,
        /// Decoded length.
        actual: usize,
    },
    /// The payload CRC differs from `crc32=`.
    CrcMismatch {
        /// Announced CRC.
        expected: u32,
        /// Computed CRC.
        actual: u32,
    },
    /// The output buffer is smaller than the payload.
    OutputTooSmall,
}

/// A frame error at a 1-based line of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameError {
    /// Line of the log where the problem is (1-based).
    pub line: usize,
    /// What is wrong.
    pub kind: FrameErrorKind,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        match self.kind {
            FrameErrorKind::BadHeader => f.write_str("malformed SPEDUMP BEGIN line"),
            FrameErrorKind::MissingEnd => f.write_str("frame not terminated by SPEDUMP END"),
            FrameErrorKind::BadHex => f.write_str("invalid hex data line"),
            FrameErrorKind::LineTooLong => {
                write!(f, "data line longer than {BYTES_PER_LINE} bytes")
            }
            FrameErrorKind::LengthMismatch { expected, actual } => {
                write!(f, "corrupted frame: length {actual} bytes, header says {expected}")
            }
            FrameErrorKind::CrcMismatch { expected, actual } => {
                write!(f, "corrupted frame: crc32 {actual:08x}, header says {expected:08x}")
            }
            FrameErrorKind::OutputTooSmall => f.write_str("output buffer too small for frame"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

/// A frame found in a log (not yet checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// 1-based line of the BEGIN marker.
    pub begin_line: usize,
    /// Announced payload length.
    pub len: usize,
    /// Announced CRC-32.
    pub crc32: u32,
    /// The data lines (between BEGIN and END, exclusive).
    body: &'a str,
}

fn hex_val(c: u8) -> Option<u8> {
    char::from(c).to_digit(HEX_RADIX).map(|d| d as u8)
}

impl Frame<'_> {
    /// Upper bound of the payload length the body can hold (lets a caller
    /// size its buffer without trusting `len`).
    pub fn max_payload_len(&self) -> usize {
        self.body.len() / 2
    }

    /// Decodes the payload into `out`, checking hex, length and CRC.
    /// Returns the payload length.
    pub fn decode_into(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let mut n = 0usize;
        let mut crc = Crc32::new();
        for (i, raw) in self.body.lines().enumerate() {
            let line = self.begin_line + 1 + i;
            let err = |kind| FrameError { line, kind };
            let digits = raw.trim().as_bytes();
            if digits.len() % 2 != 0 {
                return Err(err(FrameErrorKind::BadHex));
            }
            if digits.len() / 2 > BYTES_PER_LINE {
                return Err(err(FrameErrorKind::LineTooLong));
            }
            for pair in digits.chunks_exact(2) {
                let (Some(hi), Some(lo)) = (hex_val(pair[0]), hex_val(pair[1])) else {
                    return Err(err(FrameErrorKind::BadHex));
                };
                let byte = (hi << NIBBLE_BITS) | lo;
                if n < out.len() {
                    out[n] = byte;
                } else if n < self.len {
                    return Err(err(FrameErrorKind::OutputTooSmall));
                }
                crc.update(&[byte]);
                n += 1;
            }
        }
        let err = |kind| FrameError { line: self.begin_line, kind };
        if n != self.len {
            return Err(err(FrameErrorKind::LengthMismatch { expected: self.len, actual: n }));
        }
        if crc.finish() != self.crc32 {
            return Err(err(FrameErrorKind::CrcMismatch { expected: self.crc32, actual: crc.finish() }));
        }
        Ok(n)
    }
}

fn parse_header(rest: &str) -> Option<(usize, u32)> {
    let mut len = None;
    let mut crc = None;
    for word in rest.split_whitespace() {
        if let Some(v) = word.strip_prefix(LEN_KEY) {
            len = v.parse::<usize>().ok();
        } else if let Some(v) = word.strip_prefix(CRC_KEY) {
            crc = u32::from_str_radix(v, HEX_RADIX).ok();
        }
    }
    Some((len?, crc?))
}

/// Iterator over the frames of a console log. Lines outside frames are
/// ignored; a malformed header or a frame without END is an error (the
/// search then continues after the offending line).
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Frames<'a> {
    /// Scans `text`.
    pub const fn new(text: &'a str) -> Self {
        Self { text, pos: 0, line: 0 }
    }

    /// Next line and its byte range, or `None` at the end.
    fn next_line(&mut self) -> Option<(&'a str, usize, usize)> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.text[start..];
        let (line, advance) = match rest.find('\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += advance;
        self.line += 1;
        Some((line, start, start + line.len()))
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Find a BEGIN line.
        let (begin_line, header) = loop {
            let (line, _, _) = self.next_line()?;
            if let Some(i) = line.find(BEGIN_MARKER) {
                break (self.line, &line[i + BEGIN_MARKER.len()..]);
            }
        };
        let Some((len, crc32)) = parse_header(header) else {
            return Some(Err(FrameError { line: begin_line, kind: FrameErrorKind::BadHeader }));
        };
        let body_start = self.pos;
        loop {
            let before = (self.pos, self.line);
            let Some((line, start, _)) = self.next_line() else {
                return Some(Err(FrameError { line: begin_line, kind: FrameErrorKind::MissingEnd }));
            };
            if line.contains(END_MARKER) {
                return Some(Ok(Frame { begin_line, len, crc32, body: &self.text[body_start..start] }));
            }
            if line.contains(BEGIN_MARKER) {
                // Let the next call see this BEGIN line again.
                (self.pos, self.line) = before;
                return Some(Err(FrameError { line: begin_line, kind: FrameErrorKind::MissingEnd }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec;

    #[test]
    fn crc_known_values() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b"The quick brown fox jumps over the lazy dog"), 0x414f_a339);
    }

    fn decode_all(log: &str) -> std::vec::Vec<Result<std::vec::Vec<u8>, FrameError>> {
        Frames::new(log)
            .map(|f| {
                let f = f?;
                let mut out = vec![0; f.max_payload_len()];
                let n = f.decode_into(&mut out)?;
                out.truncate(n);
                Ok(out)
            })
            .collect()
    }

    #[test]
    fn round_trip_in_noisy_log() {
        let data: std::vec::Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
        let mut log = String::from("boot: hello\n[  0.1] noise SPEDUMP\n");
        write_frame(&mut log, &data).unwrap();
        log.push_str("more noise\n");
        write_frame_parts(&mut log, &[&data[..10], &data[10..20]]).unwrap();
        write_frame(&mut log, &[]).unwrap();
        let frames = decode_all(&log);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].as_ref().unwrap(), &data);
        assert_eq!(frames[1].as_ref().unwrap(), &data[..20]);
        assert!(frames[2].as_ref().unwrap().is_empty());
        // 200 bytes: 3 full lines + 1 partial.
        assert_eq!(log.lines().filter(|l| l.len() == 2 * BYTES_PER_LINE).count(), 3);
    }

    #[test]
    fn corruption_detected() {
        let mut log = String::new();
        write_frame(&mut log, b"abcdef").unwrap();
        let flipped = log.replacen("616263", "616264", 1);
        let r = decode_all(&flipped);
        assert!(matches!(r[0], Err(FrameError { line: 1, kind: FrameErrorKind::CrcMismatch { .. } })));
        let short = log.replacen("616263646566", "6162636465", 1);
        assert!(matches!(
            decode_all(&short)[0],
            Err(FrameError { kind: FrameErrorKind::LengthMismatch { expected: 6, actual: 5 }, .. })
        ));
        let bad_hex = log.replacen("616263", "61zz63", 1);
        assert_eq!(decode_all(&bad_hex)[0], Err(FrameError { line: 2, kind: FrameErrorKind::BadHex }));
        let no_end = log.replace(END_MARKER, "");
        assert_eq!(decode_all(&no_end)[0], Err(FrameError { line: 1, kind: FrameErrorKind::MissingEnd }));
        let bad_header = log.replace("crc32=", "crc=");
        assert_eq!(decode_all(&bad_header)[0].as_ref().unwrap_err().kind, FrameErrorKind::BadHeader);
        // A truncated frame followed by a good one: the good one survives.
        let mut two = String::from("SPEDUMP BEGIN len=4 crc32=0\n0102\n");
        two.push_str(&log);
        let r = decode_all(&two);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].as_ref().unwrap_err().kind, FrameErrorKind::MissingEnd);
        assert_eq!(r[1].as_ref().unwrap(), b"abcdef");
        // Output too small is reported, not a panic.
        let f = Frames::new(&log).next().unwrap().unwrap();
        let mut tiny = [0u8; 2];
        assert_eq!(f.decode_into(&mut tiny).unwrap_err().kind, FrameErrorKind::OutputTooSmall);
    }
}
