//! A writer of the "newc" cpio format (the one Linux unpacks as an
//! initramfs, Documentation/driver-api/early-userspace/buffer-format.rst):
//! for each entry, a 110-byte ASCII header (magic `070701`, then 13 fields
//! of 8 hex digits), the NUL-terminated name, padding to 4 bytes, the data,
//! padding to 4 bytes; the archive ends with an entry named `TRAILER!!!`.
//! Uncompressed: Linux takes it as is.

/// The newc magic (no checksums).
const MAGIC: &str = "070701";
/// Header bytes: the magic and 13 fields of 8 hex digits.
const HEADER_LEN: usize = 6 + 13 * 8;
/// Entries and data are padded to this.
const ALIGN: usize = 4;
/// The name of the last entry.
const TRAILER: &str = "TRAILER!!!";

/// File type bits of `mode` (`S_IF*`).
pub const S_IFDIR: u32 = 0o040_000;
pub const S_IFREG: u32 = 0o100_000;
pub const S_IFLNK: u32 = 0o120_000;
pub const S_IFCHR: u32 = 0o020_000;

/// An archive being written.
pub struct Cpio {
    out: Vec<u8>,
    next_ino: u32,
}

impl Default for Cpio {
    fn default() -> Self {
        Self::new()
    }
}

impl Cpio {
    pub fn new() -> Self {
        Self { out: Vec::new(), next_ino: 1 }
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(ALIGN) {
            self.out.push(0);
        }
    }

    /// One entry: `mode` includes the type bits; `rdev` for device nodes.
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        assert!(!name.is_empty() && !name.contains('\0'), "bad cpio name {name:?}");
        let (ino, nlink) =
            if name == TRAILER { (0, 1) } else { (self.next_ino, if mode & S_IFDIR != 0 { 2 } else { 1 }) };
        self.next_ino += 1;
        let size = u32::try_from(data.len()).expect("cpio newc entries are below 4 GiB");
        let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, (name.len() + 1) as u32, 0];
        let mut header = String::with_capacity(HEADER_LEN);
        header.push_str(MAGIC);
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    /// A directory (`perm` e.g. 0o755).
    pub fn dir(&mut self, name: &str, perm: u32) -> &mut Self {
        self.entry(name, S_IFDIR | perm, &[], (0, 0));
        self
    }

    /// A regular file.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> &mut Self {
        self.entry(name, S_IFREG | perm, data, (0, 0));
        self
    }

    /// A symbolic link to `target` (its data is the target path).
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, S_IFLNK | 0o777, target.as_bytes(), (0, 0));
        self
    }

    /// A character device node.
    pub fn char_dev(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> &mut Self {
        self.entry(name, S_IFCHR | perm, &[], (major, minor));
        self
    }

    /// The archive, trailer included.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry(TRAILER, 0, &[], (0, 0));
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry as read back: name, mode, data, rdev.
    type Entry = (String, u32, Vec<u8>, (u32, u32));

    /// A strict reader (test only): every header, name and data offset
    /// must be where the format says.
    fn read(a: &[u8]) -> Vec<Entry> {
        let mut at = 0;
        let mut out = vec![];
        loop {
            assert_eq!(at % ALIGN, 0, "entry at {at} not aligned");
            assert_eq!(&a[at..at + 6], MAGIC.as_bytes());
            let field = |i: usize| {
                let s = std::str::from_utf8(&a[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            };
            let (mode, size, namesize, rdev) = (field(1), field(6) as usize, field(11) as usize, (field(9), field(10)));
            let name_at = at + HEADER_LEN;
            assert_eq!(a[name_at + namesize - 1], 0, "name not NUL-terminated");
            let name = String::from_utf8(a[name_at..name_at + namesize - 1].to_vec()).unwrap();
            let data_at = (name_at + namesize).next_multiple_of(ALIGN);
            assert!(a[name_at + namesize..data_at].iter().all(|b| *b == 0));
            let data = a[data_at..data_at + size].to_vec();
            at = (data_at + size).next_multiple_of(ALIGN);
            if name == TRAILER {
                assert_eq!(at, a.len(), "bytes after the trailer");
                return out;
            }
            out.push((name, mode, data, rdev));
        }
    }

    #[test]
    fn entries_read_back_exactly() {
        let mut c = Cpio::new();
        c.dir("bin", 0o755).file("bin/busybox", 0o755, b"\x7fELF....x").symlink("bin/sh", "busybox");
        c.char_dev("dev/console", 0o600, 5, 1).file("init", 0o755, b"#!/bin/sh\n").file("empty", 0o644, b"");
        let a = c.finish();
        let e = read(&a);
        let names: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(names, ["bin", "bin/busybox", "bin/sh", "dev/console", "init", "empty"]);
        assert_eq!(e[0].1, S_IFDIR | 0o755);
        assert_eq!((e[1].1, e[1].2.as_slice()), (S_IFREG | 0o755, &b"\x7fELF....x"[..]));
        assert_eq!((e[2].1, e[2].2.as_slice()), (S_IFLNK | 0o777, &b"busybox"[..]));
        assert_eq!((e[3].1, e[3].3), (S_IFCHR | 0o600, (5, 1)));
        assert_eq!(e[5].2, b"");
        assert!(a.starts_with(b"070701"));
    }

    #[test]
    fn every_name_and_data_length_pads_to_four() {
        for n in 1..9 {
            let name = "n".repeat(n);
            let data = vec![7u8; n * 3];
            let mut c = Cpio::new();
            c.file(&name, 0o644, &data);
            let a = c.finish();
            assert_eq!(a.len() % ALIGN, 0);
            assert_eq!(read(&a), vec![(name, S_IFREG | 0o644, data, (0, 0))]);
        }
    }

    #[test]
    fn gnu_cpio_lists_the_archive_when_installed() {
        // A second opinion where GNU cpio exists; the strict reader above
        // is the test that always runs.
        let Ok(mut child) = std::process::Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        else {
            return;
        };
        let mut c = Cpio::new();
        c.dir("bin", 0o755).file("init", 0o755, b"x");
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), &c.finish()).unwrap();
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "bin\ninit\n");
    }
}
