//! `cargo xtask run --guest FILE|linux [--initrd FILE] [--append "..."]
//! [--vcpus N] [--mem MiB]`: any arm64 kernel as spevisor's guest.
//!
//! xtask checks the kernel (`spevisor_abi::guest::kernel`: a Linux Image or
//! a raw binary, refused by name otherwise, refused with the sizes when it
//! does not fit), packs it with the initrd, command line, vcpus and RAM into
//! one bundle (`spevisor_abi::guest::bundle`), and QEMU loads the bundle as
//! `-initrd` for the host's `guest` scenario, which checks it all again.
//!
//! `--guest linux` is Debian's arm64 cloud kernel with a tiny initramfs
//! (Debian's static busybox and an `/init` script, [`LINUX_INIT`]), both
//! fetched once and cached under `target/`.

use crate::cpio::Cpio;
use spevisor_abi::guest::{bundle, kernel, machine::MAX_VCPUS};
use std::path::{Path, PathBuf};

/// The guest's command line unless `--append` says otherwise.
pub const DEFAULT_APPEND: &str = "console=ttyAMA0 earlycon=pl011,0x09000000 panic=-1";
/// Guest RAM unless `--mem` says otherwise.
pub const DEFAULT_MEM_MIB: u32 = 256;
/// The host kernel options that select the guest scenario.
pub const HOST_APPEND: &str = "spevisor.scenario=guest";

/// What the guest runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kernel {
    File(PathBuf),
    /// Debian's cloud kernel with the busybox initramfs.
    DebianLinux,
}

/// `--guest` and its companions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestOpts {
    pub kernel: Kernel,
    pub initrd: Option<PathBuf>,
    pub append: Option<String>,
    pub vcpus: u32,
    pub mem_mib: u32,
}

impl GuestOpts {
    pub fn new(kernel: Kernel) -> Self {
        Self { kernel, initrd: None, append: None, vcpus: 1, mem_mib: DEFAULT_MEM_MIB }
    }
}

/// Takes `--guest X`, `--initrd X`, `--append X`, `--vcpus N`, `--mem N`
/// (or `--opt=X`) out of `args` (up to a `--`); `--linux` is `--guest
/// linux`. Returns the options (None without `--guest`) and the rest.
pub fn take_opts(args: &[String]) -> Result<(Option<GuestOpts>, Vec<String>), String> {
    let mut rest = vec![];
    let (mut kernel, mut initrd, mut append, mut vcpus, mut mem) = (None, None, None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            rest.push(a.clone());
            rest.extend(it.by_ref().cloned());
            break;
        }
        if a == "--linux" {
            kernel = Some("linux".to_string());
            continue;
        }
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        let slot = match key {
            "--guest" => &mut kernel,
            "--initrd" => &mut initrd,
            "--append" => &mut append,
            "--vcpus" => &mut vcpus,
            "--mem" => &mut mem,
            _ => {
                rest.push(a.clone());
                continue;
            }
        };
        let value = match inline {
            Some(v) => v,
            None => it.next().cloned().ok_or_else(|| format!("{key} needs a value"))?,
        };
        *slot = Some(value);
    }
    let Some(kernel) = kernel else {
        if let Some(k) = [("--initrd", &initrd), ("--append", &append), ("--vcpus", &vcpus), ("--mem", &mem)]
            .iter()
            .find_map(|(k, v)| v.as_ref().map(|_| k))
        {
            return Err(format!("{k} goes with --guest FILE|linux"));
        }
        return Ok((None, rest));
    };
    let mut o = GuestOpts::new(if kernel == "linux" { Kernel::DebianLinux } else { Kernel::File(kernel.into()) });
    o.initrd = initrd.map(PathBuf::from);
    o.append = append;
    if let Some(v) = vcpus {
        o.vcpus = v.parse().map_err(|_| format!("--vcpus {v}: not a number"))?;
        if !(1..=MAX_VCPUS).contains(&o.vcpus) {
            return Err(format!("--vcpus {v}: a guest has 1 to {MAX_VCPUS} vcpus"));
        }
    }
    if let Some(m) = mem {
        o.mem_mib = m.parse().map_err(|_| format!("--mem {m}: not a number of MiB"))?;
        if !(1..=bundle::MAX_MEM_MIB).contains(&o.mem_mib) {
            return Err(format!("--mem {m}: guest RAM is 1 to {} MiB", bundle::MAX_MEM_MIB));
        }
    }
    Ok((Some(o), rest))
}

/// Why a kernel file cannot be a guest, said before QEMU starts. The same
/// checks the host makes (`kernel::plan`).
pub fn check_kernel(path: &Path, kernel: &[u8], initrd_len: u64, mem_mib: u32) -> Result<kernel::Plan, String> {
    let ram = u64::from(mem_mib) << 20;
    kernel::plan(ram, kernel, initrd_len).map_err(|e| match e {
        kernel::KernelError::TooBig { .. } => format!("{}: {e}; give the guest more with --mem MiB", path.display()),
        _ => format!("{}: {e}", path.display()),
    })
}

/// The init script of `--guest linux`: what the QEMU test looks for.
pub const LINUX_INIT: &str = "#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo 'spevisor-init: hello from Linux'
/bin/busybox uname -a
/bin/busybox cat /proc/cpuinfo
/bin/busybox sleep 1
/bin/busybox cat /proc/interrupts
echo \"spevisor-init: cpus=$(/bin/busybox grep -c ^processor /proc/cpuinfo)\"
echo 'spevisor-init: powering off'
# poweroff -f does not wait for the console's tty to drain: give the
# UART (115200 baud) time to send what is queued.
/bin/busybox sleep 1
/bin/busybox poweroff -f
";

/// The initramfs of `--guest linux`: busybox, a shell link, /proc, /dev
/// with the console, and [`LINUX_INIT`].
pub fn linux_initramfs(busybox: &[u8]) -> Vec<u8> {
    const CONSOLE_MAJOR: u32 = 5;
    const CONSOLE_MINOR: u32 = 1;
    let mut c = Cpio::new();
    c.dir("bin", 0o755)
        .file("bin/busybox", 0o755, busybox)
        .symlink("bin/sh", "busybox")
        .dir("proc", 0o755)
        .dir("dev", 0o755)
        .char_dev("dev/console", 0o600, CONSOLE_MAJOR, CONSOLE_MINOR)
        .file("init", 0o755, LINUX_INIT.as_bytes());
    c.finish()
}

/// The kernel and initrd files of `o` (`linux`: fetched and built).
fn inputs(o: &GuestOpts) -> Result<(PathBuf, Option<PathBuf>), String> {
    match &o.kernel {
        Kernel::File(k) => Ok((k.clone(), o.initrd.clone())),
        Kernel::DebianLinux => {
            let k = crate::setup::guest_kernel().map_err(|e| e.to_string())?;
            let initrd = match &o.initrd {
                Some(i) => i.clone(),
                None => {
                    let bb = crate::setup::guest_busybox().map_err(|e| e.to_string())?;
                    let bytes = std::fs::read(&bb).map_err(|e| format!("{}: {e}", bb.display()))?;
                    let out = crate::root().join("target").join("guest-busybox").join("initramfs.cpio");
                    std::fs::write(&out, linux_initramfs(&bytes)).map_err(|e| format!("{}: {e}", out.display()))?;
                    out
                }
            };
            Ok((k, Some(initrd)))
        }
    }
}

/// Packs the guest `o` describes into a bundle file under
/// `target/guest-bundle/` (named `name`) and returns its path, after the
/// checks the host will make again.
pub fn make_bundle(o: &GuestOpts, name: &str) -> Result<PathBuf, String> {
    let (kpath, ipath) = inputs(o)?;
    let kernel = std::fs::read(&kpath).map_err(|e| format!("{}: {e}", kpath.display()))?;
    let initrd = match &ipath {
        Some(p) => Some(std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    let plan = check_kernel(&kpath, &kernel, initrd.as_ref().map_or(0, |i| i.len() as u64), o.mem_mib)?;
    let b = bundle::Bundle {
        vcpus: o.vcpus,
        mem_mib: o.mem_mib,
        kernel: &kernel,
        initrd: initrd.as_deref().filter(|i| !i.is_empty()),
        cmdline: o.append.as_deref().unwrap_or(DEFAULT_APPEND),
    };
    let mut out = vec![0u8; bundle::encoded_len(&b).ok_or("guest bundle too big")?];
    bundle::write(&mut out, &b).map_err(|e| format!("guest bundle: {e}"))?;
    let dir = crate::root().join("target").join("guest-bundle");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{name}.bundle"));
    std::fs::write(&path, out).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!(
        "xtask: guest {} ({}, {} bytes at RAM + {:#x}), initrd {}, {} vcpus, {} MiB: {}",
        kpath.display(),
        plan.kind.name(),
        kernel.len(),
        plan.kernel_offset,
        ipath.as_ref().map_or("none".to_string(), |p| p.display().to_string()),
        o.vcpus,
        o.mem_mib,
        path.display()
    );
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn options_are_taken_and_the_rest_left() {
        let (o, rest) =
            take_opts(&args(&["--guest", "k.bin", "--vcpus=2", "--append", "a b", "--release", "--", "--mem", "1"]))
                .unwrap();
        let o = o.unwrap();
        assert_eq!(o.kernel, Kernel::File("k.bin".into()));
        assert_eq!((o.vcpus, o.mem_mib, o.append.as_deref()), (2, DEFAULT_MEM_MIB, Some("a b")));
        assert_eq!(rest, args(&["--release", "--", "--mem", "1"]), "nothing after -- is ours");
        let (o, _) = take_opts(&args(&["--linux", "--mem", "512", "--initrd", "i"])).unwrap();
        let o = o.unwrap();
        assert_eq!((o.kernel, o.mem_mib, o.initrd), (Kernel::DebianLinux, 512, Some("i".into())));
        assert_eq!(take_opts(&args(&["--release"])).unwrap(), (None, args(&["--release"])));
    }

    #[test]
    fn bad_options_are_refused() {
        for (a, want) in [
            (&["--guest", "k", "--vcpus", "0"][..], "1 to 8 vcpus"),
            (&["--guest", "k", "--vcpus", "9"][..], "1 to 8 vcpus"),
            (&["--guest", "k", "--vcpus", "two"][..], "not a number"),
            (&["--guest", "k", "--mem", "0"][..], "guest RAM is 1 to"),
            (&["--guest"][..], "needs a value"),
            (&["--vcpus", "2"][..], "goes with --guest"),
        ] {
            let e = take_opts(&args(a)).unwrap_err();
            assert!(e.contains(want), "{a:?}: {e}");
        }
    }

    #[test]
    fn kernels_are_refused_by_name_and_size() {
        let p = Path::new("k");
        let e = check_kernel(p, b"\x7fELF\x02\x01\x01", 0, 16).unwrap_err();
        assert!(e.starts_with("k: ELF file"), "{e}");
        let e = check_kernel(p, b"\x1f\x8b\x08\x00", 0, 16).unwrap_err();
        assert!(e.starts_with("k: gzip-compressed file"), "{e}");
        let e = check_kernel(p, b"", 0, 16).unwrap_err();
        assert!(e.starts_with("k: empty file"), "{e}");
        let e = check_kernel(p, &vec![0x14; 3 << 20], 0, 2).unwrap_err();
        assert!(
            e.contains("too big for the guest's RAM") && e.contains("0x380000 bytes") && e.contains("--mem"),
            "{e}"
        );
        assert_eq!(check_kernel(p, &[0x14; 64], 0, 2).unwrap().kernel_offset, kernel::RAW_TEXT_OFFSET);
    }

    #[test]
    fn the_initramfs_holds_busybox_and_init() {
        let a = linux_initramfs(b"BUSYBOX");
        let text = String::from_utf8_lossy(&a);
        for want in ["bin/busybox", "bin/sh", "dev/console", "init", "TRAILER!!!", "spevisor-init: hello from Linux"] {
            assert!(text.contains(want), "{want}");
        }
        assert!(LINUX_INIT.contains("poweroff -f") && LINUX_INIT.contains("/proc/interrupts"));
    }
}
