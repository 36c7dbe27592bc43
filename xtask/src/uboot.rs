//! Booting the image through Debian's U-Boot (`u-boot-qemu`, its
//! `qemu_arm64` build as QEMU's `-bios`), the way a board boots it: U-Boot's
//! distro boot finds `boot.scr` on the first partition of a disk, and the
//! script loads `spevisor.Image` and starts it with `booti` and U-Boot's own
//! device tree (`${fdtcontroladdr}`).
//!
//! Everything the disk needs is written here: the script in U-Boot's legacy
//! image format (what `mkimage -A arm64 -T script -C none` writes, so
//! u-boot-tools is not needed), an MBR with one bootable Linux partition, and
//! an ext2 file system made by `mke2fs -d` (e2fsprogs, in every Debian).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The boot script: what a board's `boot.scr` holds too (docs/boards.md).
/// `devtype`, `devnum` and `distro_bootpart` are set by distro boot.
pub const BOOT_SCRIPT: &str =
    "echo spevisor-boot: loading spevisor.Image from ${devtype} ${devnum}:${distro_bootpart}\n\
load ${devtype} ${devnum}:${distro_bootpart} ${kernel_addr_r} spevisor.Image\n\
booti ${kernel_addr_r} - ${fdtcontroladdr}\n\
echo spevisor-boot: booti returned\n";

/// The line the script prints before it loads the image.
pub const SCRIPT_MARK: &str = "spevisor-boot: loading spevisor.Image from virtio 0:1";

/// A 16550 console the way a board's U-Boot hands one over: QEMU's
/// `pci-serial` (a real 16550 model behind a PCI I/O BAR) at a fixed slot,
/// U-Boot's `pci enum` assigns its BAR and enables I/O decoding, and the
/// script describes it in a copy of U-Boot's device tree (`ns16550a`,
/// `reg-shift`, `reg-io-width`) and points `/chosen/stdout-path` at it.
/// Nothing of QEMU's `virt` tree names the device: only the path spevisor
/// reads (`stdout-path`) can lead it there.
pub mod ns16550 {
    /// PCI slot the test puts `pci-serial` in (`-device pci-serial,addr=2`).
    pub const PCI_SLOT: u32 = 2;
    /// QEMU virt's high PCIe ECAM (hw/arm/virt.c `VIRT_HIGH_PCIE_ECAM`, what
    /// its device tree's `pcie@10000000` `reg` names on a 64-bit CPU).
    const ECAM: u64 = 0x40_1000_0000;
    /// ECAM: device number at bit 15; BAR0 at configuration offset 0x10.
    const ECAM_DEVICE_SHIFT: u32 = 15;
    const BAR0: u64 = 0x10;
    /// QEMU virt's PCI I/O window (`VIRT_PCIE_PIO`): bus I/O address 0 is here.
    pub const PIO_BASE: u64 = 0x3eff_0000;
    /// A 16550's eight byte-wide registers (reg-shift 0, reg-io-width 1).
    const REG_SIZE: u64 = 8;
    /// The 16550's input clock (1.8432 MHz, the PC UART crystal).
    const CLOCK_HZ: u64 = 1_843_200;
    /// What the script prints once the node is written.
    pub const MARK: &str = "spevisor-boot: console ns16550a at ";

    /// The script lines before `load`: find the BAR, write the node.
    pub fn script() -> String {
        let bar0 = ECAM + (u64::from(PCI_SLOT) << ECAM_DEVICE_SHIFT) + BAR0;
        // U-Boot's setexpr works in hex without a prefix; BAR bit 0 is the
        // I/O-space indicator.
        format!(
            "pci enum\n\
setexpr.l bar *{bar0:#x}\n\
setexpr uart ${{bar}} - 1\n\
setexpr uart ${{uart}} + {PIO_BASE:x}\n\
fdt move ${{fdtcontroladdr}} ${{fdt_addr}} 100000\n\
fdt addr ${{fdt_addr}}\n\
fdt mknode / serial@${{uart}}\n\
fdt set /serial@${{uart}} compatible \"ns16550a\"\n\
fdt set /serial@${{uart}} reg <0x0 0x${{uart}} 0x0 {REG_SIZE:#x}>\n\
fdt set /serial@${{uart}} reg-shift <0x0>\n\
fdt set /serial@${{uart}} reg-io-width <0x1>\n\
fdt set /serial@${{uart}} clock-frequency <{CLOCK_HZ:#x}>\n\
fdt set /chosen stdout-path \"/serial@${{uart}}\"\n\
echo {MARK}${{uart}}\n"
        )
    }

    /// The boot script with the 16550 written into the device tree.
    pub fn boot_script() -> String {
        super::BOOT_SCRIPT
            .replace("booti ${kernel_addr_r} - ${fdtcontroladdr}", "booti ${kernel_addr_r} - ${fdt_addr}")
            .replacen("load ", &format!("{}load ", script()), 1)
    }

    /// The boot went through U-Boot and the script (on the PL011, QEMU's
    /// stdout), and spevisor's own output, from EL2's first line on the
    /// console to the summary and the guest's, came out of the 16550
    /// (`uart`, its chardev's file) and not out of the PL011.
    pub fn check(boot: &crate::qemu::Boot, uart: &str) -> Result<(), String> {
        let on_uart = || format!("--- 16550 output ---\n{uart}\n--- PL011 output ---\n{}", boot.output);
        let fail = |e: String| format!("{e}\n{}", on_uart());
        let stdout = &boot.output;
        if !stdout.lines().any(|l| l.starts_with("U-Boot ")) || !stdout.contains(super::SCRIPT_MARK) {
            return Err(fail("U-Boot did not run boot.scr from the virtio disk".into()));
        }
        let Some(base) = stdout.lines().find_map(|l| l.split_once(MARK).map(|(_, b)| b.trim().to_string())) else {
            return Err(fail(format!("the script did not write the 16550 node (no `{MARK}`)")));
        };
        let base = u64::from_str_radix(&base, 16).map_err(|_| fail(format!("bad 16550 address `{base}`")))?;
        if !(PIO_BASE..PIO_BASE + 0x1_0000).contains(&base) {
            return Err(fail(format!("the 16550 at {base:#x} is outside virt's PCI I/O window")));
        }
        if stdout.contains("spevisor: status=") || stdout.contains("[host]") {
            return Err(fail("spevisor printed on the PL011: it did not follow stdout-path to the 16550".into()));
        }
        let console = crate::board_tests::report_line(uart, "console").map_err(fail)?;
        let want = [("kind", "ns16550".to_string()), ("base", format!("{base:#x}")), ("reg_io_width", "1".into())];
        for (k, v) in want {
            if console.get(k) != Some(&v) {
                return Err(fail(format!("report console: {k}={:?}, expected {v}", console.get(k))));
            }
        }
        let summary = uart
            .lines()
            .find(|l| l.starts_with("spevisor: status="))
            .ok_or_else(|| fail("no summary on the 16550".into()))?;
        if !summary.contains("status=ok") || !summary.contains("el2=yes") {
            return Err(fail(format!("summary on the 16550: {summary}")));
        }
        if !uart.contains("[host]") {
            return Err(fail("no host output on the 16550".into()));
        }
        Ok(())
    }

    /// QEMU options: the 16550 in its slot, its output to `log`.
    pub fn qemu_extra(log: &std::path::Path) -> Vec<String> {
        vec![
            "-chardev".into(),
            format!("file,id=uart16550,path={}", log.display()),
            "-device".into(),
            format!("pci-serial,chardev=uart16550,addr={PCI_SLOT}"),
        ]
    }
}

/// U-Boot legacy image header (include/image.h, `struct legacy_img_hdr`):
/// 64 bytes, big-endian.
mod legacy {
    pub const MAGIC: u32 = 0x2705_1956;
    pub const HEADER_SIZE: usize = 64;
    pub const NAME_SIZE: usize = 32;
    /// `ih_os`: IH_OS_LINUX.
    pub const OS_LINUX: u8 = 5;
    /// `ih_arch`: IH_ARCH_ARM64.
    pub const ARCH_ARM64: u8 = 22;
    /// `ih_type`: IH_TYPE_SCRIPT.
    pub const TYPE_SCRIPT: u8 = 6;
    /// `ih_comp`: IH_COMP_NONE.
    pub const COMP_NONE: u8 = 0;
    /// Offsets of the fields this code fills.
    pub const HCRC_OFFSET: usize = 4;
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xedb88320): what U-Boot's
/// `crc32()` and zlib compute.
pub fn crc32(data: &[u8]) -> u32 {
    const POLY: u32 = 0xedb8_8320;
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ POLY } else { crc >> 1 };
        }
    }
    !crc
}

/// A script as a legacy `IH_TYPE_SCRIPT` image: the header, then the
/// multi-image size table (the script's length, a 0 terminator) and the
/// script padded to 4 bytes, as `mkimage -T script` lays it out.
pub fn script_image(script: &str, name: &str) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(&(script.len() as u32).to_be_bytes());
    data.extend_from_slice(&0u32.to_be_bytes());
    data.extend_from_slice(script.as_bytes());
    while data.len() % 4 != 0 {
        data.push(0);
    }
    let mut h = Vec::with_capacity(legacy::HEADER_SIZE);
    h.extend_from_slice(&legacy::MAGIC.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes()); // ih_hcrc, filled below
    h.extend_from_slice(&0u32.to_be_bytes()); // ih_time: 0, reproducible
    h.extend_from_slice(&(data.len() as u32).to_be_bytes()); // ih_size
    h.extend_from_slice(&0u32.to_be_bytes()); // ih_load
    h.extend_from_slice(&0u32.to_be_bytes()); // ih_ep
    h.extend_from_slice(&crc32(&data).to_be_bytes()); // ih_dcrc
    h.extend_from_slice(&[legacy::OS_LINUX, legacy::ARCH_ARM64, legacy::TYPE_SCRIPT, legacy::COMP_NONE]);
    let mut n = [0u8; legacy::NAME_SIZE];
    let len = name.len().min(legacy::NAME_SIZE - 1);
    n[..len].copy_from_slice(&name.as_bytes()[..len]);
    h.extend_from_slice(&n);
    debug_assert_eq!(h.len(), legacy::HEADER_SIZE);
    let hcrc = crc32(&h);
    h[legacy::HCRC_OFFSET..legacy::HCRC_OFFSET + 4].copy_from_slice(&hcrc.to_be_bytes());
    h.extend_from_slice(&data);
    h
}

/// MBR layout.
mod mbr {
    pub const SECTOR: usize = 512;
    pub const TABLE_OFFSET: usize = 446;
    pub const SIGNATURE_OFFSET: usize = 510;
    pub const SIGNATURE: [u8; 2] = [0x55, 0xaa];
    pub const ACTIVE: u8 = 0x80;
    pub const TYPE_LINUX: u8 = 0x83;
    /// First partition at 1 MiB, as partitioning tools place it.
    pub const FIRST_LBA: u32 = 2048;
}

/// An MBR with one active Linux partition of `sectors` from [`mbr::FIRST_LBA`]
/// (CHS fields zero: U-Boot reads the LBA fields).
pub fn mbr_one_partition(sectors: u32) -> [u8; mbr::SECTOR] {
    let mut m = [0u8; mbr::SECTOR];
    let e = &mut m[mbr::TABLE_OFFSET..mbr::TABLE_OFFSET + 16];
    e[0] = mbr::ACTIVE;
    e[4] = mbr::TYPE_LINUX;
    e[8..12].copy_from_slice(&mbr::FIRST_LBA.to_le_bytes());
    e[12..16].copy_from_slice(&sectors.to_le_bytes());
    m[mbr::SIGNATURE_OFFSET..].copy_from_slice(&mbr::SIGNATURE);
    m
}

/// Size of the boot partition (the debug image is about 1.5 MiB).
const PARTITION_MIB: usize = 16;

/// Writes `dir/disk.img`: an MBR disk whose first partition is ext2 with
/// `boot.scr` (`script`) and `spevisor.Image` at its root.
pub fn boot_disk(image: &Path, dir: &Path, script: &str) -> Result<PathBuf, String> {
    let files = dir.join("files");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(&files).map_err(|e| format!("{}: {e}", files.display()))?;
    std::fs::write(files.join("boot.scr"), script_image(script, "spevisor boot script")).map_err(|e| e.to_string())?;
    std::fs::copy(image, files.join("spevisor.Image")).map_err(|e| format!("{}: {e}", image.display()))?;
    let part = dir.join("part.img");
    crate::run_cmd(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext2", "-d"])
            .arg(&files)
            .arg(&part)
            .arg(format!("{PARTITION_MIB}M"))
            .stdout(std::process::Stdio::null()),
    )
    .map_err(|e| format!("{e} (mke2fs is in e2fsprogs: apt-get install e2fsprogs)"))?;
    let fs = std::fs::read(&part).map_err(|e| e.to_string())?;
    let sectors = u32::try_from(fs.len() / mbr::SECTOR).map_err(|_| "partition too big")?;
    let mut disk = mbr_one_partition(sectors).to_vec();
    disk.resize(mbr::FIRST_LBA as usize * mbr::SECTOR, 0);
    disk.extend_from_slice(&fs);
    let out = dir.join("disk.img");
    std::fs::write(&out, disk).map_err(|e| e.to_string())?;
    Ok(out)
}

/// QEMU options: U-Boot as the firmware and the disk on virtio (no
/// `-kernel`: with one, U-Boot's `qfw` target would boot it first).
pub fn qemu_extra(uboot: &Path, disk: &Path) -> Vec<String> {
    vec![
        "-bios".into(),
        uboot.display().to_string(),
        "-drive".into(),
        format!("if=none,file={},format=raw,id=boot", disk.display()),
        "-device".into(),
        "virtio-blk-device,drive=boot".into(),
    ]
}

/// U-Boot's `kernel_addr_r` on `qemu_arm64` (RAM + 4 MiB, include/configs/qemu-arm.h).
pub const QEMU_ARM64_KERNEL_ADDR_R: u64 = 0x4040_0000;

/// The boot went through U-Boot and the script: U-Boot's banner, the
/// script's line, and the image where the script's `booti` put it.
pub fn check_through_uboot(output: &str) -> Result<(), String> {
    if !output.lines().any(|l| l.starts_with("U-Boot ")) {
        return Err("no U-Boot banner: QEMU did not start U-Boot".into());
    }
    if !output.contains(SCRIPT_MARK) {
        return Err(format!("U-Boot did not run boot.scr from the virtio disk (no `{SCRIPT_MARK}`)"));
    }
    if output.contains("spevisor-boot: booti returned") {
        return Err("booti refused the image (the script went on after it)".into());
    }
    let want = format!("image {QEMU_ARM64_KERNEL_ADDR_R:#x}..");
    if !output.lines().any(|l| l.contains("spevisor EL2: ") && l.contains(&want)) {
        return Err(format!("the image did not run from kernel_addr_r (no `{want}` in the EL2 line)"));
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn script_image_has_mkimage_layout_and_checksums() {
        let img = script_image("echo hi\n", "name");
        let be = |o: usize| u32::from_be_bytes(img[o..o + 4].try_into().unwrap());
        assert_eq!(be(0), legacy::MAGIC);
        let mut h = img[..legacy::HEADER_SIZE].to_vec();
        h[4..8].fill(0);
        assert_eq!(be(4), crc32(&h), "header CRC over the header with ih_hcrc = 0");
        let data = &img[legacy::HEADER_SIZE..];
        assert_eq!(be(12) as usize, data.len());
        assert_eq!(be(24), crc32(data));
        assert_eq!(&img[28..32], &[5, 22, 6, 0], "Linux, arm64, script, uncompressed");
        assert_eq!(&img[32..36], b"name");
        assert_eq!(be(64), 8, "size table: the script's length");
        assert_eq!(be(68), 0, "size table terminator");
        assert_eq!(&data[8..16], b"echo hi\n");
        assert_eq!(data.len() % 4, 0);
    }

    #[test]
    fn the_16550_script_writes_the_node_before_load_and_boots_with_that_tree() {
        let s = ns16550::boot_script();
        let at = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("no `{needle}` in {s}"));
        assert!(at("pci enum") < at("fdt set /chosen stdout-path"));
        assert!(at("fdt set /chosen stdout-path") < at("load ${devtype}"));
        assert!(s.contains("setexpr.l bar *0x4010010010\n"), "BAR0 of slot 2 in virt's high ECAM: {s}");
        assert!(s.contains("booti ${kernel_addr_r} - ${fdt_addr}\n"));
        assert!(!s.contains("${fdtcontroladdr}\nload") && !s.contains("- ${fdtcontroladdr}"));
    }

    #[test]
    fn mbr_has_one_active_linux_partition() {
        let m = mbr_one_partition(32768);
        assert_eq!(&m[510..], &[0x55, 0xaa]);
        assert_eq!(m[446], 0x80);
        assert_eq!(m[450], 0x83);
        assert_eq!(u32::from_le_bytes(m[454..458].try_into().unwrap()), 2048);
        assert_eq!(u32::from_le_bytes(m[458..462].try_into().unwrap()), 32768);
        assert!(m[462..510].iter().all(|&b| b == 0), "one partition only");
    }

    #[test]
    fn the_check_needs_uboot_the_script_and_the_load_address() {
        let ok = "U-Boot 2023.01+dfsg-2+deb12u3 (Apr 1 2025)\nspevisor-boot: loading spevisor.Image from virtio 0:1\n\
                  [el2] INFO  spevisor EL2: image 0x40400000..0x40577000, DTB 0x7ee00000\n";
        check_through_uboot(ok).unwrap();
        assert!(check_through_uboot(&ok.replace("U-Boot 2023", "X")).is_err());
        assert!(check_through_uboot(&ok.replace("spevisor-boot", "x")).is_err());
        assert!(check_through_uboot(&ok.replace("0x40400000", "0x40200000")).is_err(), "-kernel, not booti");
        assert!(check_through_uboot(&format!("{ok}spevisor-boot: booti returned\n")).is_err());
    }
}
