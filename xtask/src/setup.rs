//! Installs what the commands need on a fresh machine, or says what to install.

use std::process::Command;
use std::sync::OnceLock;

fn installed(list_args: &[&str]) -> String {
    Command::new("rustup")
        .args(list_args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// `rustup target add` / `component add` for what rust-toolchain.toml lists
/// (RUSTUP_AUTO_INSTALL=0 machines do not install them on their own).
pub fn rust_targets() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let targets = installed(&["target", "list", "--installed"]);
        if !targets.lines().any(|l| l.trim() == crate::BARE_TARGET) {
            eprintln!("xtask: installing Rust target {}", crate::BARE_TARGET);
            crate::run_cmd(Command::new("rustup").args(["target", "add", crate::BARE_TARGET]))
                .map_err(|e| format!("{e}\ninstall it with: rustup target add {}", crate::BARE_TARGET))?;
        }
        Ok(())
    })
    .clone()
}

pub fn rust_components() -> Result<(), String> {
    let comps = installed(&["component", "list", "--installed"]);
    for c in ["rustfmt", "clippy"] {
        if !comps.lines().any(|l| l.starts_with(c)) {
            eprintln!("xtask: installing Rust component {c}");
            crate::run_cmd(Command::new("rustup").args(["component", "add", c]))
                .map_err(|e| format!("{e}\ninstall it with: rustup component add {c}"))?;
        }
    }
    Ok(())
}

/// QEMU as found: its path and version.
#[derive(Clone, Debug)]
pub struct Qemu {
    pub bin: String,
    pub version: (u32, u32),
    pub version_text: String,
}

fn probe_qemu() -> Option<Qemu> {
    let out = Command::new("qemu-system-aarch64").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).lines().next()?.to_string();
    let ver = text.split("version ").nth(1)?.split_whitespace().next()?;
    let mut parts = ver.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next()?, parts.next().unwrap_or(0));
    Some(Qemu { bin: "qemu-system-aarch64".into(), version, version_text: text })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

const INSTALL_HINT: &str = "install QEMU with: sudo apt-get install qemu-system-arm \
     (Debian bookworm: 7.2; bookworm-backports: 10.0, add -t bookworm-backports)";

/// The Debian package holding `qemu-system-aarch64`.
const QEMU_PACKAGE: &str = "qemu-system-arm";
/// The suite with the newer QEMU (10.0), used when configured.
const BACKPORTS_SUITE: &str = "bookworm-backports";

/// Whether `apt-cache policy PACKAGE` output lists a version of the package
/// from `suite` (a source line such as
/// `500 http://deb.debian.org/debian bookworm-backports/main amd64 Packages`).
fn suite_offers(policy: &str, suite: &str) -> bool {
    let prefix = format!("{suite}/");
    policy.lines().any(|l| l.split_whitespace().any(|w| w.starts_with(&prefix)))
}

/// Finds QEMU, installing it with apt-get when missing and we are root on Debian.
pub fn qemu() -> Result<Qemu, String> {
    if let Some(q) = probe_qemu() {
        return check_version(q);
    }
    let apt = std::path::Path::new("/usr/bin/apt-get").exists();
    if !(apt && is_root()) {
        return Err(format!("qemu-system-aarch64 not found; {INSTALL_HINT}"));
    }
    eprintln!("xtask: qemu-system-aarch64 missing: installing qemu-system-arm with apt-get");
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    let _ = crate::run_cmd(Command::new("apt-get").args(["update", "-qq"]).envs(env));
    let base = ["install", "-y", "-qq", "--no-install-recommends"];
    // Prefer bookworm-backports (QEMU 10), but only where that suite is
    // configured and offers the package: asking apt-get for a suite it does
    // not know prints an `E:` line (and fails) before the fallback.
    let policy = Command::new("apt-cache")
        .args(["policy", QEMU_PACKAGE])
        .envs(env)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let backports = suite_offers(&policy, BACKPORTS_SUITE)
        && Command::new("apt-get")
            .args(base)
            .args(["-t", BACKPORTS_SUITE, QEMU_PACKAGE])
            .envs(env)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if !backports {
        crate::run_cmd(Command::new("apt-get").args(base).arg(QEMU_PACKAGE).envs(env))
            .map_err(|e| format!("{e}\n{INSTALL_HINT}"))?;
    }
    let q = probe_qemu().ok_or_else(|| format!("QEMU still missing after install; {INSTALL_HINT}"))?;
    check_version(q)
}

fn check_version(q: Qemu) -> Result<Qemu, String> {
    if q.version < (7, 2) {
        return Err(format!("{} is too old: spevisor needs QEMU 7.2 or later; {INSTALL_HINT}", q.version_text));
    }
    Ok(q)
}

/// The Debian package whose kernel `cargo xtask run --guest linux` boots.
const GUEST_KERNEL_PACKAGE: &str = "linux-image-cloud-arm64:arm64";
const KERNEL_HINT: &str = "as root: dpkg --add-architecture arm64 && apt-get update && \
     apt-get download linux-image-cloud-arm64:arm64 (then its dependency linux-image-<version>-cloud-arm64:arm64) \
     busybox-static:arm64, dpkg-deb -x the .debs, and give the kernel's boot/vmlinuz-* to cargo xtask run --guest";

fn guest_kernel_dir() -> std::path::PathBuf {
    crate::root().join("target").join("guest-kernel")
}

fn cached_guest_kernel(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let boot = dir.join("x").join("boot");
    std::fs::read_dir(boot)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("vmlinuz-")))
}

/// Why the guest kernel cannot be had.
#[derive(Debug)]
pub enum KernelError {
    /// Not here: nothing cached and no way to fetch it (not root, not
    /// Debian, or Debian's arm64 packages unreachable). The Linux test skips.
    Unavailable(String),
    /// Fetched but unusable (extraction failed, no kernel in the package):
    /// a real failure.
    Broken(String),
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(s) | Self::Broken(s) => f.write_str(s),
        }
    }
}

/// Whether this is Debian (whose mirrors carry arm64 packages under the same
/// sources; Ubuntu's, for one, do not, and adding the architecture there
/// breaks `apt-get update`).
fn is_debian() -> bool {
    std::fs::read_to_string("/etc/os-release").is_ok_and(|s| s.lines().any(|l| l.trim() == "ID=debian"))
}

/// Root on Debian (apt-get can download), with the arm64 architecture
/// added to dpkg when `arm64` (added here when missing), or why Debian's
/// packages cannot be had; `hint` says how to fetch by hand.
fn debian_packages_usable(what: &str, dir: &std::path::Path, hint: &str, arm64: bool) -> Result<(), KernelError> {
    use KernelError::Unavailable;
    if !(std::path::Path::new("/usr/bin/apt-get").exists() && is_root() && is_debian()) {
        let why = format!("no {what} in {} and no way to fetch one here (needs root on Debian)", dir.display());
        return Err(Unavailable(format!("{why}; {hint}")));
    }
    if !arm64 {
        return Ok(());
    }
    let unavailable = |e: String| Unavailable(format!("{e}; {hint}"));
    let foreign =
        Command::new("dpkg").arg("--print-foreign-architectures").output().map_err(|e| unavailable(e.to_string()))?;
    if !String::from_utf8_lossy(&foreign.stdout).lines().any(|l| l.trim() == "arm64") {
        eprintln!("xtask: adding the arm64 architecture to dpkg (for the guest's packages)");
        crate::run_cmd(Command::new("dpkg").args(["--add-architecture", "arm64"])).map_err(unavailable)?;
        crate::run_cmd(Command::new("apt-get").args(["update", "-qq"])).map_err(unavailable)?;
    }
    Ok(())
}

fn arm64_packages_usable(what: &str, dir: &std::path::Path) -> Result<(), KernelError> {
    debian_packages_usable(what, dir, KERNEL_HINT, true)
}

/// Downloads `spec` (`name:arm64`) with apt-get and extracts it into
/// `dir/x`, atomically: an interrupted run leaves no half package behind.
fn fetch_deb(spec: &str, dir: &std::path::Path, hint: &str) -> Result<(), KernelError> {
    use KernelError::{Broken, Unavailable};
    let package = spec.split(':').next().unwrap_or(spec).to_string();
    eprintln!("xtask: downloading {spec}");
    let download = dir.join("download");
    let _ = std::fs::remove_dir_all(&download);
    std::fs::create_dir_all(&download).map_err(|e| Broken(e.to_string()))?;
    crate::run_cmd(Command::new("apt-get").current_dir(&download).args(["download", "-qq", spec]))
        .map_err(|e| Unavailable(format!("{e}; {hint}")))?;
    let deb = std::fs::read_dir(&download)
        .map_err(|e| Broken(e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "deb")
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&format!("{package}_")))
        })
        .ok_or_else(|| Broken(format!("apt-get download left no {package}_*.deb")))?;
    let partial = dir.join("x.partial");
    let _ = std::fs::remove_dir_all(&partial);
    crate::run_cmd(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&partial)).map_err(Broken)?;
    let _ = std::fs::remove_dir_all(dir.join("x"));
    std::fs::rename(&partial, dir.join("x")).map_err(|e| Broken(e.to_string()))?;
    let _ = std::fs::remove_dir_all(&download);
    Ok(())
}

/// An arm64 Linux Image from Debian's cloud kernel, fetched once into
/// `target/guest-kernel/` (downloaded at run time, never committed).
pub fn guest_kernel() -> Result<std::path::PathBuf, KernelError> {
    use KernelError::{Broken, Unavailable};
    let dir = guest_kernel_dir();
    if let Some(k) = cached_guest_kernel(&dir) {
        return Ok(k);
    }
    arm64_packages_usable("guest kernel", &dir)?;
    let unavailable = |e: String| Unavailable(format!("{e}; {KERNEL_HINT}"));
    std::fs::create_dir_all(&dir).map_err(|e| Broken(e.to_string()))?;
    // The meta package names the versioned one (a plain `Depends:` line,
    // not an alternative): download that.
    let deps = Command::new("apt-cache")
        .args(["depends", GUEST_KERNEL_PACKAGE])
        .output()
        .map_err(|e| unavailable(e.to_string()))?;
    let versioned = String::from_utf8_lossy(&deps.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("  Depends: ").map(|v| v.trim().to_string()))
        .ok_or_else(|| unavailable(format!("apt-cache knows no {GUEST_KERNEL_PACKAGE}")))?;
    fetch_deb(&versioned, &dir, KERNEL_HINT)?;
    cached_guest_kernel(&dir).ok_or_else(|| Broken(format!("{versioned} has no boot/vmlinuz-*")))
}

/// The Debian package whose static busybox runs the Linux guest's init.
const BUSYBOX_PACKAGE: &str = "busybox-static:arm64";

/// The file `rel` of the Debian package `spec`, fetched once into
/// `target/<dir_name>/x/` (downloaded at run time, never committed): the
/// cached copy when there is one, else `apt-get download` and `dpkg-deb -x`
/// ([`fetch_deb`]). `arm64`: a `name:arm64` package (dpkg must know the
/// architecture); `hint`: how to fetch it by hand, for the SKIPPED line.
fn debian_package_file(
    spec: &str,
    dir_name: &str,
    rel: &str,
    hint: &str,
    arm64: bool,
) -> Result<std::path::PathBuf, KernelError> {
    let dir = crate::root().join("target").join(dir_name);
    let cached = dir.join("x").join(rel);
    if cached.is_file() {
        return Ok(cached);
    }
    debian_packages_usable(spec, &dir, hint, arm64)?;
    std::fs::create_dir_all(&dir).map_err(|e| KernelError::Broken(e.to_string()))?;
    fetch_deb(spec, &dir, hint)?;
    if cached.is_file() {
        Ok(cached)
    } else {
        Err(KernelError::Broken(format!("{spec} has no {rel}")))
    }
}

/// Debian's static arm64 busybox, fetched once into `target/guest-busybox/`.
pub fn guest_busybox() -> Result<std::path::PathBuf, KernelError> {
    debian_package_file(BUSYBOX_PACKAGE, "guest-busybox", "bin/busybox", KERNEL_HINT, true)
}

/// Debian's U-Boot for QEMU (an `all` package: no arm64 architecture needed).
const UBOOT_PACKAGE: &str = "u-boot-qemu";
/// Its build for QEMU's 64-bit `virt` machine, given to QEMU as `-bios`.
const UBOOT_QEMU_ARM64: &str = "usr/lib/u-boot/qemu_arm64/u-boot.bin";
const UBOOT_HINT: &str =
    "as root on Debian: apt-get download u-boot-qemu && dpkg-deb -x u-boot-qemu_*.deb target/u-boot-qemu/x \
     (the test uses target/u-boot-qemu/x/usr/lib/u-boot/qemu_arm64/u-boot.bin)";

/// Debian's `u-boot-qemu` `qemu_arm64` build, fetched once into
/// `target/u-boot-qemu/` (the U-Boot test boots the image through it).
pub fn uboot_qemu_arm64() -> Result<std::path::PathBuf, KernelError> {
    debian_package_file(UBOOT_PACKAGE, "u-boot-qemu", UBOOT_QEMU_ARM64, UBOOT_HINT, false)
}

/// Debian's EDK2 (ArmVirtQemu) for QEMU's arm64 `virt` machine, an `all`
/// package like u-boot-qemu.
const EDK2_PACKAGE: &str = "qemu-efi-aarch64";
/// Its 2 MiB firmware volume, given to QEMU as `-bios`.
const EDK2_QEMU_EFI: &str = "usr/share/qemu-efi-aarch64/QEMU_EFI.fd";
const EDK2_HINT: &str =
    "as root on Debian: apt-get download qemu-efi-aarch64 && dpkg-deb -x qemu-efi-aarch64_*.deb target/qemu-efi-aarch64/x \
     (the tests use target/qemu-efi-aarch64/x/usr/share/qemu-efi-aarch64/QEMU_EFI.fd)";

/// Debian's `qemu-efi-aarch64` `QEMU_EFI.fd`, fetched once into
/// `target/qemu-efi-aarch64/` (the UEFI tests boot the image through it).
pub fn qemu_efi_aarch64() -> Result<std::path::PathBuf, KernelError> {
    debian_package_file(EDK2_PACKAGE, "qemu-efi-aarch64", EDK2_QEMU_EFI, EDK2_HINT, false)
}

/// The disassembler of the machine-code ordering check: Debian's
/// `binutils-aarch64-linux-gnu` objdump, installed with apt-get when
/// missing and we are root (like QEMU), else the exact command to run.
pub fn objdump() -> Result<String, String> {
    const BIN: &str = "aarch64-linux-gnu-objdump";
    const HINT: &str = "install it with: sudo apt-get install binutils-aarch64-linux-gnu";
    let works = || Command::new(BIN).arg("--version").output().is_ok_and(|o| o.status.success());
    if works() {
        return Ok(BIN.into());
    }
    if !(std::path::Path::new("/usr/bin/apt-get").exists() && is_root()) {
        return Err(format!("{BIN} not found; {HINT}"));
    }
    eprintln!("xtask: {BIN} missing: installing binutils-aarch64-linux-gnu with apt-get");
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    let install = ["install", "-y", "-qq", "--no-install-recommends", "binutils-aarch64-linux-gnu"];
    if crate::run_cmd(Command::new("apt-get").args(install).envs(env)).is_err() {
        // A fresh machine may have no package lists yet.
        let _ = crate::run_cmd(Command::new("apt-get").args(["update", "-qq"]).envs(env));
        crate::run_cmd(Command::new("apt-get").args(install).envs(env)).map_err(|e| format!("{e}\n{HINT}"))?;
    }
    if works() {
        Ok(BIN.into())
    } else {
        Err(format!("{BIN} still missing after install; {HINT}"))
    }
}

/// A C++ compiler, for libFuzzer (which `libfuzzer-sys` compiles with the
/// `cc` crate for `cargo xtask fuzz`): Debian's g++, installed with apt-get
/// when missing and we are root (like QEMU), else the exact command to run.
pub fn cxx() -> Result<(), String> {
    const HINT: &str = "install it with: sudo apt-get install g++";
    let works = || {
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
        Command::new(cxx).arg("--version").output().is_ok_and(|o| o.status.success())
    };
    if works() {
        return Ok(());
    }
    if !(std::path::Path::new("/usr/bin/apt-get").exists() && is_root()) {
        return Err(format!("no C++ compiler (c++) for libFuzzer; {HINT}"));
    }
    eprintln!("xtask: c++ missing: installing g++ with apt-get");
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    let install = ["install", "-y", "-qq", "--no-install-recommends", "g++"];
    if crate::run_cmd(Command::new("apt-get").args(install).envs(env)).is_err() {
        let _ = crate::run_cmd(Command::new("apt-get").args(["update", "-qq"]).envs(env));
        crate::run_cmd(Command::new("apt-get").args(install).envs(env)).map_err(|e| format!("{e}\n{HINT}"))?;
    }
    if works() {
        Ok(())
    } else {
        Err(format!("c++ still missing after install; {HINT}"))
    }
}

#[cfg(test)]
mod unit {
    use super::suite_offers;

    const BOOKWORM_ONLY: &str = "qemu-system-arm:
  Installed: (none)
  Candidate: 1:7.2+dfsg-7+deb12u18+b3
  Version table:
     1:7.2+dfsg-7+deb12u18+b3 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
     1:7.2+dfsg-7+deb12u15 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
";

    const WITH_BACKPORTS: &str = "qemu-system-arm:
  Installed: (none)
  Candidate: 1:7.2+dfsg-7+deb12u18+b3
  Version table:
     1:10.0.2+ds-1~bpo12+1 100
        100 http://deb.debian.org/debian bookworm-backports/main amd64 Packages
     1:7.2+dfsg-7+deb12u18+b3 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
";

    #[test]
    fn backports_is_used_only_where_apt_lists_it() {
        assert!(!suite_offers(BOOKWORM_ONLY, "bookworm-backports"));
        assert!(suite_offers(WITH_BACKPORTS, "bookworm-backports"));
        assert!(suite_offers(BOOKWORM_ONLY, "bookworm"), "bookworm/main is bookworm");
        assert!(!suite_offers("", "bookworm-backports"), "no apt-cache output: no backports");
        assert!(!suite_offers("N: Unable to locate package qemu-system-arm", "bookworm-backports"));
    }
}
