//! `cargo xtask test`: formatting, lints, host unit tests and QEMU boots.
//!
//! Every QEMU test boots the real image, reads the serial console and the
//! exit status, and checks values (not just that a line exists): for example
//! the hypercall round trip is verified here from the numbers the host sent
//! and received.

use crate::qemu::{self, Boot, Machine};
use crate::setup::{self, Qemu};
use crate::{build_image, cargo, root, run_cmd, BuildOpts, BARE_TARGET};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod gicv2;
mod pmu;

/// Crates built for the bare-metal target (clippy runs there for them).
const BARE_CRATES: &[&str] = &[
    "spevisor-image",
    "spevisor-hyp",
    "spevisor-host",
    "spevisor-guest",
    "spevisor-spe",
    "spevisor-dtb",
    "spevisor-efi",
    "spevisor-armv8",
    "spevisor-pgtable",
    "spevisor-pl011",
    "spevisor-abi",
];

/// Generous: a boot takes about a second; CI machines are shared.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// Exit statuses the image uses.
pub mod status {
    pub const OK: i32 = 0;
    pub const FATAL_BOOT: i32 = 1;
    pub const HYP_CRASH: i32 = 3;
    pub const HOST_CRASH: i32 = 4;
    pub const GUEST_FAILED: i32 = 5;
    /// The `guest` scenario refused its bundle (host/src/kmain.rs).
    pub const GUEST_REFUSED: i32 = 6;
    /// The guest was stopped, reset itself, used up its exit budget
    /// (host/src/ending.rs).
    pub const GUEST_STOPPED: i32 = 7;
    pub const GUEST_RESET: i32 = 8;
    pub const GUEST_OUT_OF_BUDGET: i32 = 9;
}

/// The endings of a `--guest` run (the raw test guest's `spevisor.end=`,
/// guest/src/endings.rs; extra host options), what the summary must say
/// (`status=`, `guest_status=`, None: not checked) and QEMU's exit status.
const GUEST_ENDINGS: &[(&str, &str, &str, Option<&str>, i32)] = &[
    ("status:0", "", "ok", Some("0"), status::OK),
    ("status:3", "", "guest-failed", Some("3"), status::GUEST_FAILED),
    ("exit:0", "", "ok", Some("0"), status::OK),
    ("exit:42", "", "guest-failed", Some("42"), status::GUEST_FAILED),
    ("exit32:9", "", "guest-failed", Some("9"), status::GUEST_FAILED),
    ("reset", "", "guest-reset", None, status::GUEST_RESET),
    ("reset2", "", "guest-reset", None, status::GUEST_RESET),
    ("stop", "", "guest-stopped", None, status::GUEST_STOPPED),
    ("spin", " spevisor.max_exits=3000", "guest-out-of-budget", None, status::GUEST_OUT_OF_BUDGET),
];

/// One `--guest` ending: its exit status and the summary.
fn check_guest_ending(b: &Boot, summary_status: &str, guest_status: Option<&str>, exit: i32) -> Result<(), String> {
    expect_exit(b, exit)?;
    let s = summary(&b.output).ok_or("no summary line")?;
    expect_eq("status", field(&s, "status")?, summary_status)?;
    match guest_status {
        Some(g) => expect_eq("guest_status", field(&s, "guest_status")?, g),
        None => Ok(()),
    }
}

/// `key=value` fields of the `spevisor:` summary line.
pub fn summary(output: &str) -> Option<HashMap<String, String>> {
    let line = output.lines().rev().find(|l| l.starts_with("spevisor: "))?;
    let mut fields = HashMap::new();
    let mut rest = line["spevisor: ".len()..].trim_start();
    while let Some((key, after)) = rest.split_once('=') {
        let (value, next) = match after.strip_prefix('"') {
            Some(q) => q.split_once('"').unwrap_or((q, "")),
            None => after.split_once(' ').unwrap_or((after, "")),
        };
        fields.insert(key.trim().to_string(), value.to_string());
        rest = next.trim_start();
    }
    Some(fields)
}

fn field<'a>(s: &'a HashMap<String, String>, k: &str) -> Result<&'a str, String> {
    s.get(k).map(|v| v.as_str()).ok_or_else(|| format!("summary has no {k}="))
}

fn expect_eq(what: &str, got: &str, want: &str) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: expected {want:?}, got {got:?}"))
    }
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("not a number: {s:?}"))
}

fn expect_exit(boot: &Boot, want: i32) -> Result<(), String> {
    if boot.timed_out {
        return Err("QEMU timed out (the image hung)".into());
    }
    if boot.exit != Some(want) {
        return Err(format!("exit status {:?}, expected {want}", boot.exit));
    }
    Ok(())
}

/// The standard healthy boot.
fn check_boot_ok(boot: &Boot, gic: &str) -> Result<(), String> {
    expect_exit(boot, status::OK)?;
    let s = summary(&boot.output).ok_or("no summary line")?;
    expect_eq("status", field(&s, "status")?, "ok")?;
    expect_eq("el2", field(&s, "el2")?, "yes")?;
    expect_eq("host_el", field(&s, "host_el")?, "1")?;
    expect_eq("gic", field(&s, "gic")?, gic)?;
    // QEMU has no SPE: the profiler runs on the model by default, on
    // either GIC (its sampling interrupt is the PMU's overflow PPI).
    expect_eq("spe", field(&s, "spe")?, "model")?;
    expect_eq("spe_hw", field(&s, "spe_hw")?, "absent")?;
    let free = parse_u64(field(&s, "free_pages")?)?;
    if free == 0 {
        return Err("free_pages=0: the hypervisor's pool is empty".into());
    }
    Ok(())
}

/// The demo's guest ran and passed its self-test.
fn check_demo_guest_passed(boot: &Boot) -> Result<(), String> {
    let s = summary(&boot.output).ok_or("no summary line")?;
    expect_eq("vms", field(&s, "vms")?, "1")?;
    expect_eq("guest_status", field(&s, "guest_status")?, "0")?;
    if !boot.output.contains("[guest0] guest: selftest status=0") {
        return Err("the guest's self-test line is missing".into());
    }
    Ok(())
}

/// A `--report` boot: exit 0 right after the report, before the host.
fn check_report_only(boot: &Boot) -> Result<(), String> {
    expect_exit(boot, status::OK)?;
    let s = summary(&boot.output).ok_or("no summary line")?;
    expect_eq("status", field(&s, "status")?, "ok")?;
    expect_eq("report", field(&s, "report")?, "only")?;
    if boot.output.contains("[host]") {
        return Err("the host ran: --report must stop after the report".into());
    }
    Ok(())
}

/// The host sends three values; the hypervisor must answer their complements
/// and say it runs at EL2.
fn check_ping(boot: &Boot) -> Result<(), String> {
    let line = boot.output.lines().find(|l| l.starts_with("hvc ping:")).ok_or("no hvc ping line")?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let sent: Vec<u64> = words[3..6].iter().map(|w| parse_u64(w)).collect::<Result<_, _>>()?;
    let got: Vec<u64> = words[7..10].iter().map(|w| parse_u64(w)).collect::<Result<_, _>>()?;
    for (s, g) in sent.iter().zip(&got) {
        if *g != !*s {
            return Err(format!("ping answer {g:#x} is not the complement of {s:#x}"));
        }
    }
    expect_eq("hyp_el", words.get(10).copied().unwrap_or(""), "hyp_el=2")
}

fn check_unknown_refused(boot: &Boot) -> Result<(), String> {
    let line = boot.output.lines().find(|l| l.starts_with("hvc unknown id")).ok_or("no unknown-id line")?;
    if line.contains("refused with NOT_SUPPORTED (-1)") {
        Ok(())
    } else {
        Err(format!("unknown hypercall not refused with NOT_SUPPORTED: {line}"))
    }
}

/// An EL2 crash report for a data abort taken at EL2 on `text_start`.
fn check_hyp_text_write(boot: &Boot) -> Result<(), String> {
    expect_exit(boot, status::HYP_CRASH)?;
    let s = summary(&boot.output).ok_or("no summary line")?;
    expect_eq("status", field(&s, "status")?, "crash")?;
    let esr = parse_u64(field(&s, "esr")?)?;
    let ec = esr >> 26;
    if ec != 0x25 {
        return Err(format!("ESR {esr:#x}: EC {ec:#x}, expected 0x25 (data abort at EL2)"));
    }
    let dfsc = esr & 0x3f;
    if !(0x0d..=0x0f).contains(&dfsc) {
        return Err(format!("DFSC {dfsc:#x} is not a permission fault"));
    }
    if esr & (1 << 6) == 0 {
        return Err("WnR clear: the fault was not a write".into());
    }
    let far_line = boot.output.lines().find(|l| l.contains("FAR_EL2=")).ok_or("no FAR in report")?;
    let far = parse_u64(far_line.split("FAR_EL2=").nth(1).unwrap().split_whitespace().next().unwrap())?;
    let hook = boot
        .output
        .lines()
        .find(|l| l.contains("writing to hypervisor text at"))
        .ok_or("the hook did not say where it wrote")?;
    let target = parse_u64(hook.rsplit(' ').next().unwrap())?;
    if far != target {
        return Err(format!("FAR {far:#x} is not the text address {target:#x}"));
    }
    Ok(())
}

fn check_crash_ec(boot: &Boot, exit: i32, want_ec: u64, who: &str) -> Result<(), String> {
    expect_exit(boot, exit)?;
    let s = summary(&boot.output).ok_or("no summary line")?;
    expect_eq("status", field(&s, "status")?, "crash")?;
    let esr = parse_u64(field(&s, "esr")?)?;
    if esr >> 26 != want_ec {
        return Err(format!("ESR {esr:#x}: EC {:#x}, expected {want_ec:#x}", esr >> 26));
    }
    if !boot.output.contains(&format!("[{who}] CRASH")) {
        return Err(format!("no [{who}] CRASH report"));
    }
    Ok(())
}

/// Replaces every occurrence of `from` with `to` (same length).
fn replace_bytes(d: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= d.len() {
        if &d[i..i + from.len()] == from {
            d[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    n
}

/// QEMU's virt DTB (GICv3, 1 GiB), trimmed to its contents (QEMU dumps it
/// padded to 1 MiB and grows a `-dtb` file further), with `edit` applied.
fn qemu_dtb_variant(q: &Qemu, name: &str, edit: impl Fn(&mut Vec<u8>) -> usize) -> Result<PathBuf, String> {
    const OFF_DT_STRINGS: usize = 12;
    const SIZE_DT_STRINGS: usize = 32;
    let dir = root().join("target").join("dtb-variants");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let raw = dir.join("virt.dtb");
    run_cmd(std::process::Command::new(&q.bin).args([
        "-M",
        &format!("virt,virtualization=on,gic-version=3,dumpdtb={}", raw.display()),
        "-cpu",
        "max",
        "-m",
        "1G",
        "-nographic",
        "-nic",
        "none",
    ]))?;
    let mut d = std::fs::read(&raw).map_err(|e| e.to_string())?;
    let be32 = |o: usize| u32::from_be_bytes(d[o..o + 4].try_into().unwrap()) as usize;
    let end = be32(OFF_DT_STRINGS) + be32(SIZE_DT_STRINGS);
    d.truncate(end);
    d[4..8].copy_from_slice(&(end as u32).to_be_bytes());
    if edit(&mut d) == 0 {
        return Err(format!("DTB variant {name}: the edit changed nothing"));
    }
    let out = dir.join(format!("{name}.dtb"));
    std::fs::write(&out, d).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Adds a `/memreserve/` entry (`base`, `size`) to the DTB `d` in place:
/// 16 bytes inserted at the head of the reservation map, the offsets behind
/// it and the total size moved on. Returns the bytes added.
fn add_memreserve(d: &mut Vec<u8>, base: u64, size: u64) -> usize {
    const TOTALSIZE: usize = 4;
    const OFF_DT_STRUCT: usize = 8;
    const OFF_DT_STRINGS: usize = 12;
    const OFF_MEM_RSVMAP: usize = 16;
    const ENTRY: usize = 16;
    let word = |d: &Vec<u8>, o: usize| u32::from_be_bytes(d[o..o + 4].try_into().unwrap()) as usize;
    let rsv = word(d, OFF_MEM_RSVMAP);
    let mut entry = base.to_be_bytes().to_vec();
    entry.extend_from_slice(&size.to_be_bytes());
    d.splice(rsv..rsv, entry);
    for field in [TOTALSIZE, OFF_DT_STRUCT, OFF_DT_STRINGS] {
        let v = word(d, field);
        if field == TOTALSIZE || v >= rsv {
            d[field..field + 4].copy_from_slice(&((v + ENTRY) as u32).to_be_bytes());
        }
    }
    ENTRY
}

/// A copy of `image` asking to be loaded `offset` bytes above a 2 MiB boundary
/// (the header's text_offset): the image must run wherever it is put.
fn relocated_copy(image: &Path, offset: u64) -> Result<PathBuf, String> {
    const TEXT_OFFSET_FIELD: usize = 8;
    let mut bytes = std::fs::read(image).map_err(|e| e.to_string())?;
    bytes[TEXT_OFFSET_FIELD..TEXT_OFFSET_FIELD + 8].copy_from_slice(&offset.to_le_bytes());
    let out = image.with_extension(format!("at{offset:x}.Image"));
    std::fs::write(&out, bytes).map_err(|e| e.to_string())?;
    Ok(out)
}

fn image_base(boot: &Boot) -> Result<u64, String> {
    let line = boot.output.lines().find(|l| l.contains("spevisor EL2: image ")).ok_or("no image line")?;
    parse_u64(line.split("image ").nth(1).unwrap().split("..").next().unwrap())
}

/// `key=value` words of the first line starting with `prefix`.
fn fields(output: &str, prefix: &str) -> Result<HashMap<String, String>, String> {
    let line = output.lines().find(|l| l.starts_with(prefix)).ok_or_else(|| format!("no {prefix:?} line"))?;
    Ok(line[prefix.len()..]
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// The stand-in SPE registers hold `want` (PMBLIMITR_EL1, PMSCR_EL1) at boot
/// and again at shutdown, after every round trip's drain and restore, and
/// the ping loop completed.
fn check_standin(b: &Boot, want: (&str, &str)) -> Result<(), String> {
    expect_exit(b, status::OK)?;
    let f = fields(&b.output, "ping:")?;
    expect_num(&f, "status", 0)?;
    if num(&f, "exits")? < 200 {
        return Err("fewer than 200 world switches".into());
    }
    let lines: Vec<&str> = b.output.lines().filter(|l| l.contains("spe-hw-standin:")).collect();
    let [at_boot, at_shutdown] = lines[..] else {
        return Err(format!("expected a boot and a shutdown spe-hw-standin line, got {}", lines.len()));
    };
    for (when, line) in [("boot", at_boot), ("shutdown", at_shutdown)] {
        let kv = |k: &str| {
            line.split_whitespace().find_map(|w| w.strip_prefix(k)).ok_or_else(|| format!("no {k} at {when}"))
        };
        let got = (kv("PMBLIMITR_EL1=")?, kv("PMSCR_EL1=")?);
        if got != want {
            return Err(format!("stand-in registers at {when}: {got:?}, expected {want:?}"));
        }
    }
    Ok(())
}

/// Linux got from its first line to the root mount, then reset the VM by
/// PSCI (`panic=-1`), and the run ended normally.
fn check_linux_to_root_mount(b: &Boot) -> Result<(), String> {
    expect_exit(b, status::OK)?;
    for want in [
        "[linux] [    0.000000] Booting Linux on physical CPU 0x0000000000",
        "[linux] [    0.000000] Machine model: spevisor guest",
        "[linux] [    0.000000] Kernel command line: console=ttyAMA0 earlycon=pl011,0x09000000 panic=-1",
        "[linux] [    0.000000] GICv3: CPU0: found redistributor 0 region 0:0x00000000080a0000",
        "[linux] [    0.000000] arch_timer: cp15 timer(s) running at",
    ] {
        if !b.output.lines().any(|l| l.starts_with(want)) {
            return Err(format!("Linux never printed {want:?}"));
        }
    }
    for want in ["printk: console [ttyAMA0] enabled", "Kernel panic - not syncing: VFS: Unable to mount root fs"] {
        if !b.output.lines().any(|l| l.starts_with("[linux] ") && l.contains(want)) {
            return Err(format!("Linux never printed {want:?}"));
        }
    }
    if !b.output.contains("[host] INFO  linux: ended (reset)") {
        return Err("the Linux VM did not end by PSCI SYSTEM_RESET".into());
    }
    Ok(())
}

/// Debian's Linux ran the busybox initramfs's /init on `vcpus` CPUs and
/// powered off by PSCI SYSTEM_OFF; the run ended cleanly.
fn check_linux_init(b: &Boot, vcpus: usize) -> Result<(), String> {
    expect_exit(b, status::OK)?;
    let s = summary(&b.output).ok_or("no summary line")?;
    expect_eq("status", field(&s, "status")?, "ok")?;
    expect_eq("misdirected", field(&s, "misdirected")?, "0")?;
    expect_eq("lost", field(&s, "lost")?, "0")?;
    let guest: Vec<&str> = b.output.lines().filter_map(|l| l.strip_prefix("[guest] ")).collect();
    for want in ["Booting Linux on physical CPU 0x0000000000", "Machine model: spevisor guest"] {
        if !guest.iter().any(|l| l.contains(want)) {
            return Err(format!("Linux never printed {want:?}"));
        }
    }
    if !guest.contains(&"spevisor-init: hello from Linux") {
        return Err("/init never ran (no spevisor-init line)".into());
    }
    let cpuinfo = guest.iter().filter(|l| l.starts_with("processor") && l.contains(':')).count();
    if cpuinfo != vcpus {
        return Err(format!("/proc/cpuinfo lists {cpuinfo} processors, expected {vcpus}"));
    }
    let counted = format!("spevisor-init: cpus={vcpus}");
    if !guest.contains(&counted.as_str()) {
        return Err(format!("no {counted:?} line"));
    }
    // /proc/interrupts: "  NN:  <count per CPU> ... GICv3  27 Level  arch_timer".
    let irq_count = |name: &str| -> Result<u64, String> {
        let line = guest
            .iter()
            .find(|l| {
                l.trim_end().ends_with(name)
                    && l.trim_start().split(':').next().is_some_and(|n| n.trim().parse::<u32>().is_ok())
            })
            .ok_or_else(|| format!("/proc/interrupts has no {name} line"))?;
        let counts = line.split(':').nth(1).unwrap_or("");
        Ok(counts.split_whitespace().take(vcpus).map_while(|w| w.parse::<u64>().ok()).sum())
    };
    for name in ["arch_timer", "uart-pl011"] {
        if irq_count(name)? == 0 {
            return Err(format!("/proc/interrupts: no {name} interrupt was ever taken"));
        }
    }
    if !b.output.contains("[host] INFO  guest: ended (off)") {
        return Err("the Linux VM did not end by PSCI SYSTEM_OFF".into());
    }
    Ok(())
}

/// The raw test guest (linked at RAM + 0x80000) entered by the boot
/// protocol found its device tree in x0, at the top of `mem_mib` MiB, with
/// `vcpus` cpus and the `initrd` the test packed, at a page-aligned place
/// below the tree; the run ended with the guest's status 0.
fn check_raw_guest(b: &Boot, mem_mib: u64, vcpus: usize, append: &str, initrd: &[u8]) -> Result<(), String> {
    use spevisor_abi::guest::{kernel::RAW_TEXT_OFFSET, machine};
    expect_exit(b, status::OK)?;
    let s = summary(&b.output).ok_or("no summary line")?;
    expect_eq("status", field(&s, "status")?, "ok")?;
    expect_eq("guest_status", field(&s, "guest_status")?, "0")?;
    let dtb = machine::dtb_ipa(mem_mib << 20);
    let entered = format!(
        "[guest] guest: entered at {:#x} by the boot protocol, x0 = {dtb:#x}",
        machine::RAM_IPA + RAW_TEXT_OFFSET
    );
    if !b.output.lines().any(|l| l == entered) {
        return Err(format!("no {entered:?} line"));
    }
    let args = format!("[guest] dtb: at {dtb:#x}, model \"spevisor guest\", bootargs \"{append}\"");
    if !b.output.lines().any(|l| l == args) {
        return Err(format!("no {args:?} line"));
    }
    let f = fields(&b.output, "[guest] dtb: cpus=")?;
    let cpus_line = b.output.lines().find(|l| l.starts_with("[guest] dtb: cpus=")).unwrap_or("");
    let cpus = cpus_line["[guest] dtb: cpus=".len()..].split_whitespace().next().unwrap_or("");
    expect_eq("cpus", cpus, &vcpus.to_string())?;
    let range = f.get("initrd").ok_or("no initrd=")?;
    let (start, end) = range.split_once("..").ok_or("initrd= is not a range")?;
    let (start, end) = (parse_u64(start)?, parse_u64(end)?);
    if end - start != initrd.len() as u64 || start % 4096 != 0 || end > dtb || start < machine::RAM_IPA {
        return Err(format!("initrd {start:#x}..{end:#x}: not {} bytes page aligned below {dtb:#x}", initrd.len()));
    }
    let sum = parse_u64(f.get("initrd_fnv1a64").ok_or("no initrd_fnv1a64=")?)?;
    if sum != fnv1a64(initrd) {
        return Err(format!("the guest's initrd checksum {sum:#x} is not the packed file's {:#x}", fnv1a64(initrd)));
    }
    Ok(())
}

/// 64-bit FNV-1a (as guest/src/dtb.rs computes it).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The `guest` scenario refused its bundle with `want` in the reason, and
/// the run failed with GUEST_REFUSED.
fn check_guest_refused(b: &Boot, want: &str) -> Result<(), String> {
    expect_exit(b, status::GUEST_REFUSED)?;
    let s = summary(&b.output).ok_or("no summary line")?;
    expect_eq("status", field(&s, "status")?, "guest-refused")?;
    if !b.output.lines().any(|l| l.contains("[host] ERROR guest: ") && l.contains(want)) {
        return Err(format!("no host error naming {want:?}"));
    }
    Ok(())
}

/// A bundle file written directly (no xtask checks on the kernel: the
/// host's own checks are under test).
fn raw_bundle(
    name: &str,
    b: &spevisor_abi::guest::bundle::Bundle,
    edit: impl Fn(&mut Vec<u8>),
) -> Result<PathBuf, String> {
    use spevisor_abi::guest::bundle;
    let mut v = vec![0u8; bundle::encoded_len(b).ok_or("too big")?];
    bundle::write(&mut v, b).map_err(|e| e.to_string())?;
    edit(&mut v);
    let dir = root().join("target").join("guest-bundle");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{name}.bundle"));
    std::fs::write(&path, v).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Boots the `guest` scenario with `bundle` as QEMU's initrd.
fn boot_bundle(c: &Ctx, bundle: &Path) -> Result<Boot, String> {
    let m = Machine {
        append: crate::guest::HOST_APPEND.into(),
        extra: vec!["-initrd".into(), bundle.display().to_string()],
        ..Machine::default()
    };
    boot(c, &c.image, m)
}

/// The Linux-to-init test for `vcpus` vCPUs. It boots the release image
/// under icount: the guest's PL011 drains at 115200 baud in counter time,
/// and Linux's tty needs the UART's interrupt only when it writes faster
/// than the line sends, which a debug build's exits (tens of thousands of
/// instructions each) never are; icount makes the count of those
/// interrupts the same on every run.
fn linux_init_test(c: &Ctx, vcpus: u32) -> Result<(), String> {
    linux_init_test_on(c, vcpus, Machine::default().gic_version)
}

/// The Linux-to-init test on a host with GIC version `gic` (the guest gets
/// the same version in its device tree).
fn linux_init_test_on(c: &Ctx, vcpus: u32, gic: u32) -> Result<(), String> {
    // As the root-mount test: a machine that cannot have Debian's arm64
    // packages skips unless SPEVISOR_REQUIRE_LINUX=1.
    for fetched in [setup::guest_kernel(), setup::guest_busybox()] {
        match fetched {
            Ok(_) => {}
            Err(setup::KernelError::Unavailable(why))
                if std::env::var("SPEVISOR_REQUIRE_LINUX").as_deref() != Ok("1") =>
            {
                return Err(format!("{SKIPPED}{why}"));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let mut o = crate::guest::GuestOpts::new(crate::guest::Kernel::DebianLinux);
    o.vcpus = vcpus;
    let bundle = crate::guest::make_bundle(&o, &format!("linux-{vcpus}"))?;
    let b = qemu::run_captured(
        &c.q,
        &c.release_image,
        &Machine {
            append: crate::guest::HOST_APPEND.into(),
            extra: vec!["-icount".into(), "shift=0,sleep=off".into(), "-initrd".into(), bundle.display().to_string()],
            gic_version: gic,
            ..Machine::default()
        },
        LINUX_TIMEOUT,
    )?;
    with_output(&b, check_linux_init(&b, vcpus as usize))?;
    if gic == 2 {
        // Linux found the GICv2 of its device tree (not a GICv3).
        with_output(&b, check_linux_gicv2(&b, vcpus as usize))?;
    }
    Ok(())
}

/// Linux's /proc/interrupts (printed by its init) shows its GICv2 driver
/// (irq chip `GIC-0`, not `GICv3`) took virtual-timer interrupts on every
/// vcpu: the GICv2 distributor model, the list registers through GICH and
/// the guest's GICV interface all worked.
fn check_linux_gicv2(b: &Boot, vcpus: usize) -> Result<(), String> {
    if b.output.contains("GICv3") {
        return Err("Linux used a GICv3 on a GICv2 host".into());
    }
    let line = b
        .output
        .lines()
        .find(|l| l.contains(" GIC-0  27 Level") && l.contains("arch_timer"))
        .ok_or("no /proc/interrupts line for the virtual timer on chip GIC-0")?;
    let counts: Vec<u64> = line
        .split_whitespace()
        .skip_while(|w| !w.ends_with(':'))
        .skip(1)
        .take(vcpus)
        .map(|w| w.parse().map_err(|_| format!("{w:?} in {line:?} is not a count")))
        .collect::<Result<_, _>>()?;
    if counts.len() != vcpus || counts.contains(&0) {
        return Err(format!("virtual-timer interrupts per vcpu {counts:?}: each of {vcpus} must have some"));
    }
    Ok(())
}

/// stress-switch on the release image: 50,000 HOST_PINGs in each of two
/// VMs alternating at every exit (over 100,000 exits), then two more beside
/// Debian's Linux to its init (1 vcpu). Where Debian's packages cannot be
/// had, the Linux part is left out (said so in the output), not the test.
fn stress_switch_test(c: &Ctx) -> Result<(), String> {
    let (m, guest) = stress_switch_machine()?;
    let b = qemu::run_captured(&c.q, &c.release_image, &m, LINUX_TIMEOUT)?;
    with_output(&b, check_stress_switch(&b, STRESS_MIN_EXITS, guest))
}

/// Exits the stress-switch run must reach, VM lifecycles of stress-vms,
/// and cases of the hostile-guest suite (guest/src/hostile_suite.rs).
const STRESS_MIN_EXITS: i64 = 100_000;
const STRESS_CYCLES: i64 = 1000;
const HOSTILE_CASES: i64 = 39;

/// The stress-switch machine: with the `--guest linux` bundle as its
/// initrd (`true`) where Debian's packages can be had, without it
/// otherwise (said on stderr), unless `SPEVISOR_REQUIRE_LINUX=1`.
fn stress_switch_machine() -> Result<(Machine, bool), String> {
    let mut m = scenario("stress-switch");
    match setup::guest_kernel().and_then(|_| setup::guest_busybox()) {
        Ok(_) => {
            let o = crate::guest::GuestOpts::new(crate::guest::Kernel::DebianLinux);
            let bundle = crate::guest::make_bundle(&o, "linux-stress")?;
            m.extra = vec!["-initrd".into(), bundle.display().to_string()];
            Ok((m, true))
        }
        Err(setup::KernelError::Unavailable(why)) if std::env::var("SPEVISOR_REQUIRE_LINUX").as_deref() != Ok("1") => {
            eprintln!("xtask: stress-switch without its Linux guest: {why}");
            Ok((m, false))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The stress-vms machine.
fn stress_vms_machine() -> Machine {
    Machine {
        append: format!("spevisor.scenario=stress-vms spevisor.iterations={STRESS_CYCLES}"),
        ..Machine::default()
    }
}

/// A Linux boot to init and back takes tens of seconds under TCG.
const LINUX_TIMEOUT: Duration = Duration::from_secs(240);

fn num(f: &HashMap<String, String>, k: &str) -> Result<i64, String> {
    let v = f.get(k).ok_or_else(|| format!("no {k}="))?;
    v.parse().map_err(|_| format!("{k}={v} is not a number"))
}

fn expect_num(f: &HashMap<String, String>, k: &str, want: i64) -> Result<(), String> {
    let got = num(f, k)?;
    if got == want {
        Ok(())
    } else {
        Err(format!("{k}={got}, expected {want}"))
    }
}

/// `<name>: ending=<ending> status=<status> exits=N` from `scenarios::irq_guest`.
fn check_guest_line(boot: &Boot, name: &str, ending: &str, status: i64) -> Result<(), String> {
    let f = fields(&boot.output, &format!("{name}: "))?;
    expect_eq(&format!("{name} ending"), field(&f, "ending")?, ending)?;
    expect_num(&f, "status", status)
}

/// vgic-nest: the guest nested 16 interrupts and ended them all (status 0:
/// every check of `guest/src/irqs.rs`'s `nest_check`), more than the CPU's
/// list registers, so EOIcount ended some, while a VM running the vgic
/// checks alternated with it at every exit (status 0 too); the profile
/// stayed clean.
fn check_vgic_nest(b: &Boot) -> Result<(), String> {
    /// The guest's nesting depth (`NEST_LEVELS` in guest/src/irqs.rs).
    const LEVELS: i64 = 16;
    check_guest_line(b, "vgic-nest", "off", 0)?;
    check_guest_line(b, "vgic", "off", 0)?;
    let f = fields(&b.output, "vgic-nest: ")?;
    let lrs = num(&f, "lrs")?;
    if !(1..LEVELS).contains(&lrs) {
        return Err(format!("lrs={lrs}: the test needs fewer list registers than its {LEVELS} levels"));
    }
    // Every level that no list register held at its EOI ended by EOIcount.
    let eoicount = num(&f, "eoicount")?;
    if eoicount < LEVELS - lrs {
        return Err(format!("eoicount={eoicount}, expected at least {} ({LEVELS} levels, {lrs} LRs)", LEVELS - lrs));
    }
    check_spe_clean(b, 1).map(|_| ())
}

fn check_selftest(boot: &Boot) -> Result<(), String> {
    expect_exit(boot, status::OK)?;
    let s = summary(&boot.output).ok_or("no summary line")?;
    expect_eq("guest_status", field(&s, "guest_status")?, "0")?;
    expect_eq("vms", field(&s, "vms")?, "1")?;
    if !boot.output.lines().any(|l| l == "[guest0] guest: selftest status=0") {
        return Err("the guest's own output (prefixed) does not report status 0".into());
    }
    Ok(())
}

fn check_two_vms(boot: &Boot) -> Result<(), String> {
    expect_exit(boot, status::OK)?;
    let f = fields(&boot.output, "two-vms:")?;
    for (k, v) in
        [("a_status", 0), ("b_status", 0), ("a_mismatch", 0), ("b_mismatch", 0), ("a_has_b", 0), ("b_has_a", 0)]
    {
        expect_num(&f, k, v)?;
    }
    if num(&f, "alternations")? < 2 {
        return Err("the two VMs did not alternate".into());
    }
    Ok(())
}

/// `scenario=debug`: every debug guest (modes 40..=44) reports status 0,
/// the host's own debug registers came back exactly, and the summary says
/// nothing was misdirected or lost.
fn check_debug(boot: &Boot) -> Result<(), String> {
    expect_exit(boot, status::OK)?;
    let f = fields(&boot.output, "debug:")?;
    for k in ["breakpoint", "watchpoint", "step", "os_lock", "regs_a", "regs_b"] {
        expect_num(&f, k, 0)?;
    }
    expect_eq("regs_a_ending", field(&f, "regs_a_ending")?, "off")?;
    expect_eq("regs_b_ending", field(&f, "regs_b_ending")?, "off")?;
    expect_eq("host_same (the host's debug registers came back)", field(&f, "host_same")?, "true")?;
    if num(&f, "brps")? < 2 || num(&f, "wrps")? < 2 {
        return Err("the CPU should show at least 2 breakpoints and 2 watchpoints".into());
    }
    let s = summary(&boot.output).ok_or("no summary line")?;
    expect_eq("status", field(&s, "status")?, "ok")?;
    expect_eq("misdirected", field(&s, "misdirected")?, "0")?;
    expect_eq("lost", field(&s, "lost")?, "0")
}

/// `bad_vm`'s line `<what>: bad_ending=.. bad_status=.. good_ending=..
/// good_status=..`: the good VM finished with status 0 and the bad one
/// ended `bad_ending` with `bad_status`.
fn check_bad_vm(boot: &Boot, what: &str, bad_ending: &str, bad_status: i64) -> Result<(), String> {
    expect_exit(boot, status::OK)?;
    let f = fields(&boot.output, &format!("{what}:"))?;
    expect_eq("bad_ending", field(&f, "bad_ending")?, bad_ending)?;
    expect_num(&f, "bad_status", bad_status)?;
    expect_eq("good_ending", field(&f, "good_ending")?, "off")?;
    expect_num(&f, "good_status", 0)
}

/// stress-vms: `cycles` VMs, a fifth ending each way (off, reset, stopped
/// by the hypervisor, budget spent, destroyed while running), none
/// otherwise; EL2's and the host's free pages back to the baseline after
/// every cycle; the profile clean.
fn check_stress_vms(boot: &Boot, cycles: i64) -> Result<(), String> {
    /// The ways a stress cycle ends (`StressEnd` in host/src/scenarios.rs).
    const ENDINGS: [&str; 5] = ["off", "reset", "stopped", "budget", "destroyed"];
    expect_exit(boot, status::OK)?;
    let f = fields(&boot.output, "stress-vms: ")?;
    expect_num(&f, "cycles", cycles)?;
    for e in ENDINGS {
        expect_num(&f, e, cycles / ENDINGS.len() as i64)?;
    }
    expect_num(&f, "wrong_endings", 0)?;
    expect_num(&f, "first_leak", -1)?;
    expect_num(&f, "hyp_free_after", num(&f, "hyp_free_before")?)?;
    expect_num(&f, "host_free_after", num(&f, "host_free_before")?)?;
    check_spe_clean(boot, 1).map(|_| ())
}

/// stress-switch: two VMs alternated for at least `min_exits` exits and
/// both passed; with `guest`, the bundle's Linux ran beside two more and
/// powered off; every SPE record produced was decoded, none misdirected
/// or lost.
fn check_stress_switch(boot: &Boot, min_exits: i64, guest: bool) -> Result<(), String> {
    expect_exit(boot, status::OK)?;
    let f = fields(&boot.output, "stress-switch: ")?;
    let exits = num(&f, "exits")?;
    if exits < min_exits {
        return Err(format!("{exits} exits, expected at least {min_exits}"));
    }
    expect_num(&f, "a_status", 0)?;
    expect_num(&f, "b_status", 0)?;
    if guest {
        expect_eq("guest", field(&f, "guest")?, "off")?;
        let g = fields(&boot.output, "stress-switch-guest: ")?;
        expect_eq("c", field(&g, "c")?, "off")?;
        expect_eq("d", field(&g, "d")?, "off")?;
    }
    let s = summary(&boot.output).ok_or("no summary line")?;
    expect_eq("status", field(&s, "status")?, "ok")?;
    check_spe_clean(boot, 1).map(|_| ())
}

/// The bad VM was stopped (no status of its own), for `reason` as the
/// host reported it, and the other VM finished.
fn check_bad_vm_stopped(boot: &Boot, what: &str, reason: &str) -> Result<(), String> {
    check_bad_vm(boot, what, "stopped", -1)?;
    if boot.output.lines().any(|l| l.contains("bad: stopped") && l.contains(reason)) {
        Ok(())
    } else {
        Err(format!("no report of the bad VM stopped for {reason:?}"))
    }
}

/// The bad VM touched an unbacked IPA, the host said so (`host_says`),
/// the guest printed `guest_ok` (its abort was as expected) and went on to
/// status 0, as did the other VM.
fn check_bad_vm_aborted(boot: &Boot, what: &str, host_says: &str, guest_ok: &str) -> Result<(), String> {
    check_bad_vm(boot, what, "off", 0)?;
    if !boot.output.lines().any(|l| l.contains(host_says)) {
        return Err(format!("the host did not report {host_says:?}"));
    }
    if !boot.output.lines().any(|l| l.starts_with("[bad] guest: ok") && l.contains(guest_ok)) {
        return Err(format!("the guest did not print ok for {guest_ok:?}"));
    }
    Ok(())
}

/// `spevisor.guest_mode=20`: every unbacked-IPA case took the guest's own
/// vector as expected (the guest's status and its four ok lines), and the
/// host's SPE profile stayed clean meanwhile.
fn check_aborts_guest(boot: &Boot) -> Result<(), String> {
    expect_exit(boot, status::OK)?;
    let s = summary(&boot.output).ok_or("no summary line")?;
    expect_eq("guest_status", field(&s, "guest_status")?, "0")?;
    expect_eq("misdirected", field(&s, "misdirected")?, "0")?;
    expect_eq("lost", field(&s, "lost")?, "0")?;
    for case in [
        "EL1 load from an unbacked IPA",
        "EL1 branch to an unbacked IPA",
        "EL0 load from an unbacked IPA",
        "EL0 branch to an unbacked IPA",
    ] {
        if !boot.output.lines().any(|l| l.starts_with("[guest0] guest: ok") && l.contains(case)) {
            return Err(format!("no ok line for {case:?}"));
        }
    }
    Ok(())
}

/// hostile-suite: every case contained (its VM met the documented fate,
/// the VM beside it finished with status 0, the free pages came back),
/// at least `min_cases` of them, and the host's profile stayed clean.
fn check_hostile_suite(boot: &Boot, min_cases: i64) -> Result<(), String> {
    expect_exit(boot, status::OK)?;
    if let Some(l) = boot.output.lines().find(|l| l.starts_with("hostile-case:") && l.contains("contained=NO")) {
        return Err(format!("not contained: {l}"));
    }
    let f = fields(&boot.output, "hostile-suite: ")?;
    let cases = num(&f, "cases")?;
    if cases < min_cases {
        return Err(format!("{cases} cases, expected at least {min_cases}"));
    }
    expect_num(&f, "contained", cases)?;
    // QEMU's `-cpu max` has AArch32 EL0: no AArch32 case may be skipped.
    expect_num(&f, "skipped", 0)?;
    expect_num(&f, "neighbours_ok", cases)?;
    expect_num(&f, "leaks", 0)?;
    expect_num(&f, "hyp_free_after", num(&f, "hyp_free_before")?)?;
    expect_num(&f, "host_free_after", num(&f, "host_free_before")?)?;
    let lines = boot.output.lines().filter(|l| l.starts_with("hostile-case:")).count() as i64;
    if lines != cases {
        return Err(format!("{lines} hostile-case lines for {cases} cases"));
    }
    check_spe_clean(boot, 1).map(|_| ())
}

fn check_vm_loop(boot: &Boot, n: i64) -> Result<(), String> {
    expect_exit(boot, status::OK)?;
    let f = fields(&boot.output, "vm-loop:")?;
    expect_num(&f, "iterations", n)?;
    expect_num(&f, "ok", n)?;
    expect_num(&f, "hyp_free_after", num(&f, "hyp_free_before")?)?;
    expect_num(&f, "host_free_after", num(&f, "host_free_before")?)
}

/// What each bad request must be refused with.
/// The hostile host's abuses (host/src/hostile_host.rs) and the status
/// each must get: every one its own reason, never ACCEPTED.
const REFUSALS: &[(&str, &str)] = &[
    ("run-no-vm", "NO_SUCH_VM"),
    ("destroy-no-vm", "NO_SUCH_VM"),
    ("donate-no-vm", "NO_SUCH_VM"),
    ("share-no-vm", "NO_SUCH_VM"),
    ("reset-no-vm", "NO_SUCH_VM"),
    ("donate-hyp-image", "HYP_OWNED"),
    ("donate-unaligned", "UNALIGNED"),
    ("donate-unaligned-ipa", "UNALIGNED"),
    ("donate-outside-ram", "OUT_OF_BOUNDS"),
    ("donate-zero-pages", "INVALID_PARAMETER"),
    ("donate-huge-count", "INVALID_PARAMETER"),
    ("donate-wrapping-count", "INVALID_PARAMETER"),
    ("donate-ipa-beyond-space", "IPA_OVERLAP"),
    ("donate-twice", "ALREADY_DONATED"),
    ("donate-overlapping-pages", "ALREADY_DONATED"),
    ("donate-ipa-overlap", "IPA_OVERLAP"),
    ("donate-to-another-vm", "ALREADY_DONATED"),
    ("vcpu-entry-outside-ram", "BAD_ENTRY"),
    ("vcpu-entry-unaligned", "BAD_ENTRY"),
    ("too-many-vcpus", "TOO_MANY_VCPUS"),
    ("run-no-vcpu", "NO_SUCH_VCPU"),
    ("bad-completion", "INVALID_PARAMETER"),
    ("reset-no-vcpu", "NO_SUCH_VCPU"),
    ("reset-entry-outside-ram", "BAD_ENTRY"),
    ("share-no-vcpu", "NO_SUCH_VCPU"),
    ("share-unaligned", "UNALIGNED"),
    ("share-hyp-image", "HYP_OWNED"),
    ("share-donated-page", "ALREADY_DONATED"),
    ("share-twice", "IN_USE"),
    ("donate-shared-page", "IN_USE"),
    ("spe-attach-wrong-size", "INVALID_PARAMETER"),
    ("spe-attach-unaligned", "UNALIGNED"),
    ("spe-attach-shared-page", "IN_USE"),
    ("spe-attach-donated-page", "ALREADY_DONATED"),
    ("spe-attach-hyp-image", "HYP_OWNED"),
    ("spe-attach-outside-ram", "OUT_OF_BOUNDS"),
    ("too-many-vms", "TOO_MANY_VMS"),
    ("run-destroyed-vm", "NO_SUCH_VM"),
    ("destroy-twice", "NO_SUCH_VM"),
    ("share-destroyed-vm", "NO_SUCH_VM"),
    ("run-stopped-vm", "VM_STOPPED"),
    ("unknown-call", "NOT_SUPPORTED"),
    ("unknown-owner", "NOT_SUPPORTED"),
    ("garbage-id", "NOT_SUPPORTED"),
];

/// VM slots the hypervisor has (`MAX_VMS` in hyp/src/vm.rs) and vcpus per VM.
const MAX_VMS: i64 = 16;
const MAX_VCPUS: i64 = spevisor_abi::guest::machine::MAX_VCPUS as i64;
/// Host pages the hostile host names in its calls (`PAGES`).
const HOSTILE_HOST_PAGES: &str = "5/5";

/// The SPE model's shared area rewritten while EL2 uses it
/// (host/src/hostile_spe.rs): each bad buffer refused with its own status,
/// the buffers never a VM's.
const SPE_ABUSE_REFUSALS: &[(&str, &str)] = &[
    ("spe-buffer-over-the-area", "IN_USE"),
    ("spe-buffer-unaligned", "UNALIGNED"),
    ("spe-buffer-hyp-image", "HYP_OWNED"),
    ("spe-buffer-outside-ram", "OUT_OF_BOUNDS"),
    ("spe-buffer-empty", "INVALID_PARAMETER"),
    ("spe-buffer-wrapping", "INVALID_PARAMETER"),
    ("donate-spe-buffer", "ALREADY_DONATED"),
    ("donate-trace-buffer", "ALREADY_DONATED"),
    ("share-spe-buffer", "IN_USE"),
];
/// VMs the scenario runs: one beside the donation abuse, then its rounds.
const SPE_ABUSE_VMS: i64 = 17;

/// spe-abuse: every refusal by name, the guard pages around the buffers
/// intact, records written into the buffers (the drain ran), EL2 counted
/// repairs, every VM finished, EL2 answers, the model detached and the
/// free pages back.
fn check_spe_abuse(boot: &Boot) -> Result<(), String> {
    expect_exit(boot, status::OK)?;
    check_named_refusals(boot, SPE_ABUSE_REFUSALS)?;
    let f = fields(&boot.output, "spe-abuse: ")?;
    expect_num(&f, "refused", SPE_ABUSE_REFUSALS.len() as i64)?;
    expect_eq("guards_intact", field(&f, "guards_intact")?, "4/4")?;
    if num(&f, "bytes_in_buffers")? == 0 {
        return Err("EL2 wrote no record into the buffers: the drain never ran".into());
    }
    if num(&f, "repairs")? == 0 || num(&f, "rewrites")? == 0 {
        return Err("the area was never rewritten, or EL2 never noticed".into());
    }
    expect_num(&f, "vms_ok", SPE_ABUSE_VMS)?;
    expect_eq("el2_alive", field(&f, "el2_alive")?, "true")?;
    expect_eq("detached", field(&f, "detached")?, "true")?;
    expect_num(&f, "hyp_free_after", num(&f, "hyp_free_before")?)?;
    expect_num(&f, "host_free_after", num(&f, "host_free_before")?)
}

/// Each `refusal NAME: STATUS` line present with its status.
fn check_named_refusals(boot: &Boot, want: &[(&str, &str)]) -> Result<(), String> {
    for (what, want) in want {
        let prefix = format!("refusal {what}: ");
        let line = boot.output.lines().find(|l| l.starts_with(&prefix)).ok_or_else(|| format!("no {prefix:?}"))?;
        let got = line[prefix.len()..].split_whitespace().next().unwrap_or("");
        if got != *want {
            return Err(format!("{what}: {got}, expected {want}"));
        }
    }
    Ok(())
}

fn check_refusals(boot: &Boot) -> Result<(), String> {
    expect_exit(boot, status::OK)?;
    let f = fields(&boot.output, "refusals: ")?;
    // Nothing the refused calls named was written, nothing was lost.
    expect_eq("pages_intact", field(&f, "pages_intact")?, HOSTILE_HOST_PAGES)?;
    expect_num(&f, "hyp_free_after", num(&f, "hyp_free_before")?)?;
    expect_num(&f, "host_free_after", num(&f, "host_free_before")?)?;
    expect_num(&f, "vcpus_made", MAX_VCPUS)?;
    // Two VMs of the scenario's own were alive while it filled the slots.
    expect_num(&f, "extra_vms", MAX_VMS - 2)?;
    for (what, want) in REFUSALS {
        let prefix = format!("refusal {what}: ");
        let line = boot.output.lines().find(|l| l.starts_with(&prefix)).ok_or_else(|| format!("no {prefix:?}"))?;
        let got = line[prefix.len()..].split_whitespace().next().unwrap_or("");
        if got != *want {
            return Err(format!("{what}: {got}, expected {want}"));
        }
    }
    Ok(())
}

/// The steps the hypervisor says it executed, one round trip a line.
fn recorded_steps(output: &str) -> Result<Vec<Vec<spevisor_abi::Step>>, String> {
    let runs: Vec<Vec<spevisor_abi::Step>> = output
        .lines()
        .filter_map(|l| l.strip_prefix("switch-trace: "))
        .map(|l| {
            let list = l.split("steps=").nth(1).unwrap_or("");
            list.split(',')
                .map(|n| {
                    spevisor_abi::Step::ALL
                        .into_iter()
                        .find(|s| s.name() == n)
                        .ok_or_else(|| format!("unknown step {n:?}"))
                })
                .collect()
        })
        .collect::<Result<_, _>>()?;
    if runs.is_empty() {
        return Err("no switch-trace lines".into());
    }
    Ok(runs)
}

/// Re-checks the recorded order here, with the same rules as the unit tests,
/// and compares with what the host concluded.
fn check_recorded_order(boot: &Boot, want_violation: Option<&str>) -> Result<(), String> {
    let runs = recorded_steps(&boot.output)?;
    for (i, run) in runs.iter().enumerate() {
        let r = spevisor_abi::check_switch_order(run).map_err(|v| v.rule());
        match (want_violation, r) {
            (None, Ok(())) => {}
            (None, Err(rule)) => return Err(format!("run {i} breaks rule {rule}")),
            (Some(want), Err(rule)) if rule == want => {}
            (Some(want), other) => return Err(format!("run {i}: expected violation {want}, checker says {other:?}")),
        }
    }
    let f = fields(&boot.output, "switch-order:")?;
    let host_result = f.get("result").map(String::as_str).unwrap_or("");
    match want_violation {
        None => expect_eq("host's order check", host_result, "ok"),
        Some(rule) => {
            expect_eq("host's order check", host_result, "violation")?;
            expect_eq("violated rule", f.get("rule").map(String::as_str).unwrap_or(""), rule)
        }
    }
}

/// The profiler's report must show a clean run: records written = records
/// produced = records decoded, nothing misdirected, lost or faulted, no
/// sample in guest memory, and at least `min_records`.
fn check_spe_clean(boot: &Boot, min_records: i64) -> Result<HashMap<String, String>, String> {
    let f = fields(&boot.output, "spe: backend=")?;
    let records = num(&f, "records")?;
    if records < min_records {
        return Err(format!("only {records} SPE records, expected at least {min_records}"));
    }
    expect_num(&f, "produced", records)?;
    for k in ["misdirected", "lost", "faults", "decode_errors", "misdirected_regimes"] {
        expect_num(&f, k, 0)?;
    }
    // The regime was judged at the world switches' register writes and
    // drains (not only where records moved), and found right every time.
    if num(&f, "regime_checks")? == 0 {
        return Err("the SPE model never judged the regime (regime_checks=0)".into());
    }
    let el = fields(&boot.output, "spe: by_el")?;
    expect_num(&el, "guest_pc", 0)?;
    expect_num(&el, "el1", records)?;
    check_trbe_clean(boot)?;
    Ok(f)
}

/// The trace buffer (TRBE model) beside SPE: every packet collected was
/// written where the host meant it and read back, nothing misdirected or
/// lost, and the regime was judged at the switches.
fn check_trbe_clean(boot: &Boot) -> Result<(), String> {
    let t = fields(&boot.output, "trbe: backend=")?;
    let packets = num(&t, "packets")?;
    if packets == 0 {
        return Err("no trace packets".into());
    }
    expect_num(&t, "collected", packets * 16)?;
    expect_num(&t, "written", packets * 16)?;
    for k in ["bad_packets", "pending", "faults", "misdirected", "lost", "misdirected_regimes"] {
        expect_num(&t, k, 0)?;
    }
    if num(&t, "regime_checks")? == 0 {
        return Err("the TRBE model never judged the regime (regime_checks=0)".into());
    }
    let s = summary(&boot.output).ok_or("no summary line")?;
    expect_eq("summary trbe_misdirected", field(&s, "trbe_misdirected")?, "0")?;
    expect_eq("summary trbe_lost", field(&s, "trbe_lost")?, "0")
}

/// The trace buffer's misdirection, in its own line and in the summary.
fn check_trbe_misdirected(boot: &Boot) -> Result<(), String> {
    let t = fields(&boot.output, "trbe: backend=")?;
    if num(&t, "misdirected")? == 0 {
        return Err("this switch order produced no misdirected trace (trbe misdirected=0)".into());
    }
    let s = summary(&boot.output).ok_or("no summary line")?;
    if parse_u64(field(&s, "trbe_misdirected")?)? == 0 {
        return Err("summary trbe_misdirected=0".into());
    }
    Ok(())
}

/// A broken switch that never let a record reach a drain (`samples=0`):
/// only the model's judging of the regime at EL2's register writes and
/// empty drains can have counted misdirection.
fn check_spe_misdirected_without_records(boot: &Boot) -> Result<(), String> {
    let f = fields(&boot.output, "spe: backend=")?;
    expect_num(&f, "samples", 0)?;
    expect_num(&f, "bytes", 0)?;
    if num(&f, "misdirected_regimes")? == 0 {
        return Err("the model judged no regime wrong (misdirected_regimes=0)".into());
    }
    check_spe_misdirected(boot)
}

fn check_spe_misdirected(boot: &Boot) -> Result<(), String> {
    let f = fields(&boot.output, "spe: backend=")?;
    if num(&f, "misdirected")? == 0 {
        return Err("this switch order produced no misdirected SPE writes".into());
    }
    let s = summary(&boot.output).ok_or("no summary line")?;
    if parse_u64(field(&s, "misdirected")?)? == 0 {
        return Err("summary misdirected=0".into());
    }
    // The trace buffer is saved and restored in the same place: misdirected too.
    check_trbe_misdirected(boot)
}

/// The framed raw buffer on the console decodes (CRC and length checked by
/// the frame parser) to the number of records the host said it dumped, and
/// the offline tool reads the console log.
fn check_spe_dump(boot: &Boot) -> Result<(), String> {
    let f = fields(&boot.output, "spe-dump:")?;
    let frames: Vec<_> = spevisor_spe::frame::Frames::new(&boot.output).collect();
    let frame = (*frames.first().ok_or("no SPEDUMP frame on the console")?).map_err(|e| format!("bad frame: {e:?}"))?;
    let mut data = vec![0u8; frame.max_payload_len()];
    let n = frame.decode_into(&mut data).map_err(|e| format!("frame does not decode: {e:?}"))?;
    expect_num(&f, "bytes", n as i64)?;
    let records = spevisor_spe::record::RecordAssembler::new(&data[..n]).filter(|r| r.is_ok()).count();
    expect_num(&f, "records", records as i64)?;
    if records == 0 {
        return Err("the dumped buffer holds no records".into());
    }
    let log = root().join("target").join("spe-console.log");
    std::fs::write(&log, &boot.output).map_err(|e| e.to_string())?;
    let buffers = spe_report::load_input(&log).map_err(|e| format!("spe-report cannot read the log: {e}"))?;
    let mut dump = Vec::new();
    spe_report::dump(&buffers, &mut dump).map_err(|e| format!("spe-report dump failed: {e}"))?;
    let text = String::from_utf8_lossy(&dump);
    let pcs = text.lines().filter(|l| l.contains("PC 0x") && l.contains("el1")).count();
    if pcs != records {
        return Err(format!("spe-report dump shows {pcs} EL1 PC packets for {records} records"));
    }
    Ok(())
}

struct Ctx {
    q: Qemu,
    image: PathBuf,
    test_image: PathBuf,
    pre2021_image: PathBuf,
    /// `--switch-order=broken-restore-early` and `broken-drain-late`.
    restore_early_image: PathBuf,
    drain_late_image: PathBuf,
    /// `--switch-order=broken-trbe-late`: only the trace buffer drained late.
    trbe_late_image: PathBuf,
    /// SPE's hardware path on stand-in EL2 registers (`--spe-hw-standin`).
    standin_image: PathBuf,
    /// The release build (the Linux-to-init tests).
    release_image: PathBuf,
}

/// A check's error starting with this is a skip, not a failure: only the
/// Linux guest test, when the machine can neither fetch nor find the
/// Debian kernel (it says what to run).
const SKIPPED: &str = "skipped: ";

/// The spe-abuse scenario, with the profiler off: its model is the only
/// one attached.
fn spe_abuse_machine() -> Machine {
    let mut m = scenario("spe-abuse");
    m.append.push_str(" spevisor.spe=off");
    m
}

fn scenario(name: &str) -> Machine {
    Machine { append: format!("spevisor.scenario={name}"), ..Machine::default() }
}

type Check = fn(&Ctx) -> Result<(), String>;

fn boot(c: &Ctx, image: &Path, m: Machine) -> Result<Boot, String> {
    qemu::run_captured(&c.q, image, &m, BOOT_TIMEOUT)
}

fn with_output<T>(boot: &Boot, r: Result<T, String>) -> Result<T, String> {
    r.map_err(|e| format!("{e}\n--- console ---\n{}\n---------------", boot.output))
}

fn qemu_tests() -> Vec<(&'static str, Check)> {
    let mut tests = qemu_tests_main();
    tests.extend(pmu::qemu_tests());
    tests.extend(gicv2::qemu_tests());
    tests
}

fn qemu_tests_main() -> Vec<(&'static str, Check)> {
    vec![
        ("boot_gicv3_summary", |c| {
            let b = boot(c, &c.image, Machine::default())?;
            with_output(&b, check_boot_ok(&b, "v3"))?;
            // The board report is printed on every boot, at info level.
            with_output(&b, crate::board_tests::check_report(&b, 3, c.q.version))
        }),
        ("boot_gicv2_4cpus_2g", |c| {
            let m = Machine { gic_version: 2, smp: 4, memory: "2G", ..Machine::default() };
            let b = boot(c, &c.image, m)?;
            with_output(&b, check_boot_ok(&b, "v2"))?;
            // The profiler's samples come from its PMU overflow interrupt,
            // taken through the host's GICv2 driver.
            let s = summary(&b.output).ok_or("no summary line")?;
            if parse_u64(field(&s, "records")?)? == 0 {
                return with_output(&b, Err("records=0: no SPE-model samples on GICv2".into()));
            }
            with_output(&b, check_demo_guest_passed(&b))?;
            // The other three cores were woken for the report and are off
            // again before the host and its guests ran.
            with_output(&b, crate::board_tests::check_other_cpus(&b, 4))
        }),
        ("board_report_gicv3", |c| {
            let m = Machine { append: crate::REPORT_ONLY_ARG.into(), ..Machine::default() };
            let b = boot(c, &c.image, m)?;
            with_output(&b, check_report_only(&b))?;
            with_output(&b, crate::board_tests::check_report(&b, 3, c.q.version))
        }),
        ("board_report_gicv2", |c| {
            let m = Machine { gic_version: 2, append: crate::REPORT_ONLY_ARG.into(), ..Machine::default() };
            let b = boot(c, &c.image, m)?;
            with_output(&b, check_report_only(&b))?;
            with_output(&b, crate::board_tests::check_report(&b, 2, c.q.version))
        }),
        ("uboot_booti_reaches_the_summary_at_el2", |c| {
            // Debian's U-Boot, fetched once into target/u-boot-qemu/ like
            // the Linux guest's kernel; a machine that cannot have it skips.
            let uboot = match setup::uboot_qemu_arm64() {
                Ok(u) => u,
                Err(setup::KernelError::Unavailable(why)) => return Err(format!("{SKIPPED}{why}")),
                Err(e) => return Err(e.to_string()),
            };
            let disk = crate::uboot::boot_disk(
                &c.image,
                &root().join("target").join("uboot-disk"),
                crate::uboot::BOOT_SCRIPT,
            )?;
            let m = Machine { extra: crate::uboot::qemu_extra(&uboot, &disk), ..Machine::default() };
            let b = boot(c, Path::new(""), m)?;
            with_output(&b, crate::uboot::check_through_uboot(&b.output))?;
            with_output(&b, check_boot_ok(&b, "v3"))?;
            with_output(&b, check_demo_guest_passed(&b))?;
            with_output(&b, crate::board_tests::check_report(&b, 3, c.q.version))
        }),
        ("uboot_ns16550_console_from_stdout_path", |c| {
            // A real 16550 model (QEMU's pci-serial) that only U-Boot's
            // script describes: spevisor must take its console from
            // /chosen/stdout-path, and its output must come out there.
            let uboot = match setup::uboot_qemu_arm64() {
                Ok(u) => u,
                Err(setup::KernelError::Unavailable(why)) => return Err(format!("{SKIPPED}{why}")),
                Err(e) => return Err(e.to_string()),
            };
            let dir = root().join("target").join("uboot-16550");
            let disk = crate::uboot::boot_disk(&c.image, &dir, &crate::uboot::ns16550::boot_script())?;
            let log = dir.join("uart16550.log");
            let mut extra = crate::uboot::qemu_extra(&uboot, &disk);
            extra.extend(crate::uboot::ns16550::qemu_extra(&log));
            let b = boot(c, Path::new(""), Machine { extra, ..Machine::default() })?;
            let uart = std::fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
            crate::uboot::ns16550::check(&b, &uart)?;
            // The healthy-boot checks, on what the 16550 carried.
            let on_uart = crate::qemu::Boot { exit: b.exit, output: uart, timed_out: b.timed_out };
            with_output(&on_uart, check_boot_ok(&on_uart, "v3"))?;
            with_output(&on_uart, check_demo_guest_passed(&on_uart))
        }),
        ("uefi_dt_reaches_the_summary_at_el2", |c| {
            // Debian's EDK2, fetched once into target/qemu-efi-aarch64/
            // like U-Boot; a machine that cannot have it skips.
            let fd = match setup::qemu_efi_aarch64() {
                Ok(f) => f,
                Err(setup::KernelError::Unavailable(why)) => return Err(format!("{SKIPPED}{why}")),
                Err(e) => return Err(e.to_string()),
            };
            let m = Machine {
                smp: 2,
                machine_opts: crate::uefi::DT_ONLY,
                extra: crate::uefi::qemu_extra(&fd),
                ..Machine::default()
            };
            let b = boot(c, &c.image, m)?;
            with_output(&b, crate::uefi::check_through_uefi(&b.output, false))?;
            with_output(&b, check_boot_ok(&b, "v3"))?;
            with_output(&b, check_demo_guest_passed(&b))?;
            with_output(&b, crate::board_tests::check_report(&b, 3, c.q.version))?;
            // The second core, woken after ExitBootServices for the report.
            with_output(&b, crate::board_tests::check_other_cpus(&b, 2))
        }),
        ("uefi_acpi_only_reaches_the_summary_at_el2", |c| {
            let fd = match setup::qemu_efi_aarch64() {
                Ok(f) => f,
                Err(setup::KernelError::Unavailable(why)) => return Err(format!("{SKIPPED}{why}")),
                Err(e) => return Err(e.to_string()),
            };
            // The command line reaches the host only through the load
            // options: the tree written from ACPI has no other.
            const ARGS: &str = "spevisor.scenario=demo";
            let m = Machine {
                smp: 2,
                append: ARGS.into(),
                machine_opts: crate::uefi::ACPI_ONLY,
                extra: crate::uefi::qemu_extra(&fd),
                ..Machine::default()
            };
            let b = boot(c, &c.image, m)?;
            with_output(&b, crate::uefi::check_through_uefi(&b.output, true))?;
            with_output(&b, check_boot_ok(&b, "v3"))?;
            with_output(&b, check_demo_guest_passed(&b))?;
            with_output(&b, crate::board_tests::check_report(&b, 3, c.q.version))?;
            // The second core, from the MADT's GICC entry, woken for the report.
            with_output(&b, crate::board_tests::check_other_cpus(&b, 2))?;
            if !b.output.contains(&format!("[host] INFO  command line: {ARGS}")) {
                return with_output(&b, Err("the load options did not reach the host's command line".into()));
            }
            // The same machine described by its device tree (report only,
            // the command line again from the load options): same report.
            let m = Machine {
                smp: 2,
                append: crate::REPORT_ONLY_ARG.into(),
                machine_opts: crate::uefi::DT_ONLY,
                extra: crate::uefi::qemu_extra(&fd),
                ..Machine::default()
            };
            let dt = boot(c, &c.image, m)?;
            with_output(&dt, crate::uefi::check_through_uefi(&dt.output, false))?;
            with_output(&dt, check_report_only(&dt))?;
            with_output(&b, crate::uefi::same_platform(&dt.output, &b.output))
        }),
        ("uefi_acpi_gicv2_report_matches_the_dt", |c| {
            let fd = match setup::qemu_efi_aarch64() {
                Ok(f) => f,
                Err(setup::KernelError::Unavailable(why)) => return Err(format!("{SKIPPED}{why}")),
                Err(e) => return Err(e.to_string()),
            };
            // GICv2 frames (GICC/GICH/GICV from the MADT's GICC entry), 4
            // CPUs: the report from ACPI and from the device tree.
            let run = |opts: &'static str| {
                let m = Machine {
                    gic_version: 2,
                    smp: 4,
                    append: crate::REPORT_ONLY_ARG.into(),
                    machine_opts: opts,
                    extra: crate::uefi::qemu_extra(&fd),
                    ..Machine::default()
                };
                boot(c, &c.image, m)
            };
            let acpi = run(crate::uefi::ACPI_ONLY)?;
            with_output(&acpi, crate::uefi::check_through_uefi(&acpi.output, true))?;
            with_output(&acpi, check_report_only(&acpi))?;
            with_output(&acpi, crate::board_tests::check_report(&acpi, 2, c.q.version))?;
            let dt = run(crate::uefi::DT_ONLY)?;
            with_output(&dt, crate::uefi::check_through_uefi(&dt.output, false))?;
            with_output(&acpi, crate::uefi::same_platform(&dt.output, &acpi.output))
        }),
        ("boot_256m", |c| {
            let b = boot(c, &c.image, Machine { memory: "256M", ..Machine::default() })?;
            with_output(&b, check_boot_ok(&b, "v3"))
        }),
        ("hypercall_round_trip", |c| {
            let b = boot(c, &c.image, Machine::default())?;
            with_output(&b, check_ping(&b))
        }),
        ("unknown_hypercall_refused", |c| {
            let b = boot(c, &c.image, Machine::default())?;
            with_output(&b, check_unknown_refused(&b))
        }),
        ("image_runs_at_another_2m_boundary", |c| {
            const OFFSET: u64 = 0x0300_0000;
            let moved = relocated_copy(&c.image, OFFSET)?;
            let b = boot(c, &moved, Machine::default())?;
            with_output(&b, check_boot_ok(&b, "v3"))?;
            let base = with_output(&b, image_base(&b))?;
            // QEMU loads at RAM base + text_offset.
            expect_eq("image base", &format!("{base:#x}"), &format!("{:#x}", 0x4000_0000 + OFFSET))
        }),
        ("missing_dtb_is_reported", |c| {
            // No -kernel: QEMU starts the CPU at the image with x0 = 0.
            let m = Machine {
                extra: vec!["-device".into(), format!("loader,file={},addr=0x40200000,cpu-num=0", c.image.display())],
                ..Machine::default()
            };
            let b = boot(c, Path::new(""), m)?;
            with_output(&b, {
                expect_exit(&b, status::FATAL_BOOT).and_then(|_| {
                    let s = summary(&b.output).ok_or("no summary line")?;
                    expect_eq("status", field(&s, "status")?, "error")?;
                    if field(&s, "reason")?.contains("no valid DTB") {
                        Ok(())
                    } else {
                        Err("reason does not name the DTB".into())
                    }
                })
            })
        }),
        ("hyp_text_write_faults", |c| {
            let m = Machine { append: "spevisor.test=write-hyp-text".into(), ..Machine::default() };
            let b = boot(c, &c.test_image, m)?;
            with_output(&b, check_hyp_text_write(&b))
        }),
        ("test_hooks_absent_from_demo_image", |c| {
            let m = Machine { append: "spevisor.test=write-hyp-text".into(), ..Machine::default() };
            let b = boot(c, &c.image, m)?;
            with_output(&b, {
                check_boot_ok(&b, "v3").and_then(|_| {
                    if b.output.contains("refused (NOT_SUPPORTED") {
                        Ok(())
                    } else {
                        Err("the demo image did not refuse the test hook".into())
                    }
                })
            })
        }),
        ("guest_selftest_runs_to_status_0", |c| {
            let b = boot(c, &c.image, Machine::default())?;
            with_output(&b, check_selftest(&b))
        }),
        ("guests_run_on_a_40_bit_pa_cpu", |c| {
            // Cortex-A53: 40-bit PA, where a level-0 stage-2 start is reserved.
            let b = boot(c, &c.image, Machine { cpu: "cortex-a53", ..Machine::default() })?;
            with_output(&b, check_selftest(&b))
        }),
        ("demo_guest_failure_fails_the_run", |c| {
            // An unknown guest mode: the guest reports 0xbadbad, the run ends
            // with status=guest-failed and exit 5 (not 0).
            let m = Machine { append: "spevisor.guest_mode=99".into(), ..Machine::default() };
            let b = boot(c, &c.image, m)?;
            with_output(&b, {
                expect_exit(&b, status::GUEST_FAILED).and_then(|_| {
                    let s = summary(&b.output).ok_or("no summary line")?;
                    expect_eq("status", field(&s, "status")?, "guest-failed")?;
                    expect_eq("guest_status", field(&s, "guest_status")?, &0xbad_badu64.to_string())
                })
            })
        }),
        ("virtual_timer_interrupt_fires_on_time", |c| {
            // icount: the 10 ms timeout and its tolerance in guest time,
            // whatever the load on the machine running QEMU.
            let mut m = scenario("vtimer");
            m.extra = vec!["-icount".into(), "shift=0,sleep=off".into()];
            let b = boot(c, &c.image, m)?;
            with_output(&b, check_guest_line(&b, "vtimer", "off", 0).and_then(|_| check_spe_clean(&b, 1).map(|_| ())))
        }),
        ("physical_timer_is_emulated_and_fires_on_time", |c| {
            // The guest's CNTP (trapped, the host's per-vcpu model): its
            // registers, INTID 30's level in the vGIC, a 10 ms timeout in
            // WFI and a 3 ms one while spinning, both in time (icount), and
            // 50 interrupts due at once.
            let mut m = scenario("ptimer");
            m.append.push_str(" spevisor.iterations=50");
            m.extra = vec!["-icount".into(), "shift=0,sleep=off".into()];
            let b = boot(c, &c.image, m)?;
            with_output(&b, check_guest_line(&b, "ptimer", "off", 0).and_then(|_| check_spe_clean(&b, 1).map(|_| ())))
        }),
        ("vgic_enable_priority_states_eoi_and_more_than_list_registers", |c| {
            let b = boot(c, &c.image, scenario("vgic"))?;
            with_output(&b, check_guest_line(&b, "vgic", "off", 0))
        }),
        ("vgic_nested_deeper_than_list_registers_ends_by_eoicount", |c| {
            let b = boot(c, &c.image, scenario("vgic-nest"))?;
            with_output(&b, check_vgic_nest(&b))
        }),
        ("smp_cpu_on_psci_errors_and_sgi_ping_pong", |c| {
            let b = boot(c, &c.image, scenario("smp"))?;
            with_output(&b, check_guest_line(&b, "smp", "off", 0).and_then(|_| check_spe_clean(&b, 1).map(|_| ())))
        }),
        ("spinning_vcpus_are_preempted_and_others_finish", |c| {
            let b = boot(c, &c.image, scenario("preempt"))?;
            with_output(&b, {
                let f = fields(&b.output, "preempt: ")?;
                expect_eq("smp_spin (its vcpu 1 spins)", field(&f, "smp_spin")?, "off")
                    .and_then(|_| expect_num(&f, "smp_status", 0))
                    .and_then(|_| expect_eq("spinner", field(&f, "spinner")?, "out-of-budget"))
                    .and_then(|_| {
                        // Every exit of a vcpu spinning with IRQs masked is
                        // an interrupt taking the CPU back; the budget (100)
                        // is checked once a slice, which may hold more.
                        let n = num(&f, "spinner_exits")?;
                        if (100..200).contains(&n) {
                            Ok(())
                        } else {
                            Err(format!("spinner_exits={n}, expected 100..200"))
                        }
                    })
                    .and_then(|_| expect_eq("selftest", field(&f, "selftest")?, "off"))
                    .and_then(|_| expect_num(&f, "selftest_status", 0))
                    .and_then(|_| {
                        let p = fields(&b.output, "preempt-pages: ")?;
                        expect_eq("free pages back", field(&p, "same")?, "true")
                    })
                    .and_then(|_| check_spe_clean(&b, 1).map(|_| ()))
            })
        }),
        ("two_vms_alternate_and_stay_isolated", |c| {
            let b = boot(c, &c.image, scenario("two-vms"))?;
            with_output(&b, check_two_vms(&b))
        }),
        ("fp_simd_state_is_switched_between_vms", |c| {
            // Each VM fills q0..q31/FPCR, the other runs, each checks: the
            // status is the number of registers that changed.
            let b = boot(c, &c.image, scenario("fp-vms"))?;
            with_output(&b, {
                expect_exit(&b, status::OK).and_then(|_| {
                    let f = fields(&b.output, "fp-vms:")?;
                    expect_num(&f, "a_status", 0)?;
                    expect_num(&f, "b_status", 0)
                })
            })
        }),
        ("pauth_keys_are_switched_between_vms", |c| {
            // Each VM writes all ten key registers (the first access traps:
            // lazy switch), the other runs, each reads them back: the status
            // is the number of keys that changed.
            let b = boot(c, &c.image, scenario("pauth-vms"))?;
            with_output(&b, {
                expect_exit(&b, status::OK).and_then(|_| {
                    let f = fields(&b.output, "pauth-vms:")?;
                    expect_num(&f, "a_status", 0)?;
                    expect_num(&f, "b_status", 0)
                })
            })
        }),
        ("guest_debug_breakpoints_watchpoints_step_and_os_lock", |c| {
            // Hardware breakpoints, watchpoints and single step fire in the
            // guest at EL1 and EL0 (lazy switch of the debug registers), the
            // OS lock blocks them, two VMs keep their own comparators, and
            // the host's own values survive all of it.
            let b = boot(c, &c.image, scenario("debug"))?;
            with_output(&b, check_debug(&b))
        }),
        ("vm_reading_outside_gets_an_external_abort", |c| {
            // A load from an IPA nothing backs: the guest takes a data
            // abort at its own vector (ESR/FAR checked by the guest), skips
            // the load and finishes; the other VM finishes too.
            let b = boot(c, &c.image, scenario("read-outside"))?;
            with_output(
                &b,
                check_bad_vm_aborted(
                    &b,
                    "read-outside",
                    "bad: read at IPA 0x200000018: no RAM or device there; external abort for the guest",
                    "EL1 load from an unbacked IPA",
                ),
            )
        }),
        ("unbacked_ipas_give_external_aborts_at_el1_and_el0", |c| {
            // The guest's mode 20: loads from and branches to unbacked IPAs
            // at EL1 and at EL0, each taken at the guest's own vector.
            let m = Machine { append: "spevisor.guest_mode=20".into(), ..Machine::default() };
            let b = boot(c, &c.image, m)?;
            with_output(&b, check_aborts_guest(&b))
        }),
        ("abort_on_the_abort_vector_stops_the_vm", |c| {
            // VBAR_EL1 at an unbacked IPA: the abort's vector aborts itself.
            let b = boot(c, &c.image, scenario("abort-on-vector"))?;
            with_output(
                &b,
                check_bad_vm_stopped(&b, "abort-on-vector", "external abort on the guest's own abort vector"),
            )
        }),
        ("aborts_back_to_back_stop_the_vm", |c| {
            // A vector whose handler aborts again: stopped after
            // MAX_ABORTS_IN_A_ROW aborts without another exit between.
            let b = boot(c, &c.image, scenario("abort-loop"))?;
            with_output(&b, check_bad_vm_stopped(&b, "abort-loop", "external aborts injected back to back"))
        }),
        ("hostile_guest_gets_refusals_then_is_stopped", |c| {
            // Unknown hypercalls answered NOT_SUPPORTED and a trapped SMC
            // answered like an HVC (the guest reports 0 wrong answers), then a
            // load pair from the UART (no syndrome) stops only that VM.
            let b = boot(c, &c.image, scenario("hostile"))?;
            with_output(&b, {
                check_bad_vm_stopped(&b, "hostile", "data abort without syndrome on an emulated device").and_then(
                    |_| {
                        if !b.output.lines().any(|l| l == "[bad] report tag=4 value=0x0") {
                            return Err("the hostile guest saw wrong answers to its calls".into());
                        }
                        Ok(())
                    },
                )
            })
        }),
        ("firmware_reservation_in_host_memory_stays_out", |c| {
            // A /memreserve/ in the middle of host memory (not 2 MiB aligned,
            // so the host maps around it with pages): the host must neither
            // map nor hand out those pages, and everything else must work.
            const BASE: u64 = 0x5008_0000;
            const SIZE: u64 = 0x8_0000;
            let dtb = qemu_dtb_variant(&c.q, "memreserve", |d| add_memreserve(d, BASE, SIZE))?;
            let plain = qemu_dtb_variant(&c.q, "plain", |_| 1)?;
            let with =
                |path: &Path| Machine { extra: vec!["-dtb".into(), path.display().to_string()], ..Machine::default() };
            let reserved = boot(c, &c.image, with(&dtb))?;
            let normal = boot(c, &c.image, with(&plain))?;
            with_output(&reserved, {
                check_selftest(&reserved).and_then(|_| check_selftest(&normal)).and_then(|_| {
                    let want = format!(
                        "firmware reservation {BASE:#x}..{:#x} in host memory: not mapped, not allocatable",
                        BASE + SIZE
                    );
                    if !reserved.output.contains(&want) {
                        return Err(format!("no {want:?} line"));
                    }
                    let free = |b: &Boot| -> Result<i64, String> {
                        field(&summary(&b.output).ok_or("no summary line")?, "host_free_pages")?
                            .parse()
                            .map_err(|_| "host_free_pages is not a number".to_string())
                    };
                    let (a, b) = (free(&normal)?, free(&reserved)?);
                    if a - b != (SIZE / 4096) as i64 {
                        return Err(format!(
                            "host free pages {b} with the reservation, {a} without: expected {} fewer",
                            SIZE / 4096
                        ));
                    }
                    Ok(())
                })
            })
        }),
        ("guest_reads_the_device_tree_the_host_wrote", |c| {
            // The demo guest in mode 13 (dtb-check) parses the tree at the
            // top of its RAM and checks it describes its machine.
            let m = Machine { append: "spevisor.guest_mode=13".into(), ..Machine::default() };
            let b = boot(c, &c.image, m)?;
            with_output(&b, {
                expect_exit(&b, status::OK).and_then(|_| {
                    let s = summary(&b.output).ok_or("no summary line")?;
                    expect_eq("guest_status", field(&s, "guest_status")?, "0")?;
                    // 2 MiB of RAM from 0x4000_0000, the tree in its last 64 KiB;
                    // the command line is host/src/vmm.rs's GUEST_BOOTARGS.
                    let want =
                        r#"[guest0] dtb: at 0x401f0000, model "spevisor guest", bootargs "console=ttyAMA0 earlycon""#;
                    if b.output.lines().any(|l| l == want) {
                        Ok(())
                    } else {
                        Err(format!("no {want:?} line"))
                    }
                })
            })
        }),
        ("linux_scenario_refuses_an_initrd_that_is_not_a_kernel", |c| {
            // The `linux` scenario boots what QEMU's -initrd loaded; 64 KiB of
            // 0x5a is no arm64 Image: refused by name, and the run goes on.
            let junk = root().join("target").join("not-an-image.bin");
            std::fs::write(&junk, vec![0x5au8; 64 << 10]).map_err(|e| e.to_string())?;
            let m = Machine {
                append: "spevisor.scenario=linux spevisor.spe=off".into(),
                extra: vec!["-initrd".into(), junk.display().to_string()],
                ..Machine::default()
            };
            let b = boot(c, &c.image, m)?;
            with_output(&b, {
                expect_exit(&b, status::OK).and_then(|_| {
                    let want = "linux: cannot create the VM: guest kernel: not an arm64 Image (magic 0x5a5a5a5a";
                    if b.output.contains(want) {
                        Ok(())
                    } else {
                        Err(format!("no {want:?}"))
                    }
                })
            })
        }),
        ("linux_guest_boots_to_its_root_mount", |c| {
            // Debian's cloud kernel (fetched at test time, cached in
            // target/guest-kernel/) as a guest: through the device tree, the
            // ID and debug registers, the GIC's registers, the timer and the
            // PL011 to the root mount, where it panics (no root file system
            // given) and resets by PSCI: the VM ends, the run goes on.
            // A machine that cannot have Debian's arm64 kernel skips (and
            // says how to get it) unless SPEVISOR_REQUIRE_LINUX=1; a kernel
            // that is there, or that was fetched but is unusable, must pass.
            let kernel = match crate::setup::guest_kernel() {
                Ok(k) => k,
                Err(crate::setup::KernelError::Unavailable(why))
                    if std::env::var("SPEVISOR_REQUIRE_LINUX").as_deref() != Ok("1") =>
                {
                    return Err(format!("{SKIPPED}{why}"));
                }
                Err(e) => return Err(e.to_string()),
            };
            let m = Machine {
                append: "spevisor.scenario=linux spevisor.spe=off".into(),
                extra: vec!["-initrd".into(), kernel.display().to_string()],
                ..Machine::default()
            };
            let b = boot(c, &c.image, m)?;
            with_output(&b, check_linux_to_root_mount(&b))
        }),
        ("raw_binary_guest_boots_by_the_boot_protocol", |c| {
            // The test guest linked at RAM + 0x80000 is a raw binary (no
            // Linux header): xtask packs it with an initrd, 2 vcpus and a
            // command line; the guest reads its tree through x0.
            const MEM_MIB: u32 = 16;
            let raw = crate::build_guest_at(false, spevisor_abi::guest::kernel::RAW_TEXT_OFFSET)?;
            let initrd: Vec<u8> = (0..10_007u32).map(|i| (i * 7 + i / 251) as u8).collect();
            let initrd_path = root().join("target").join("guest-bundle-test-initrd.bin");
            std::fs::write(&initrd_path, &initrd).map_err(|e| e.to_string())?;
            let append = "raw guest says hi";
            let mut o = crate::guest::GuestOpts::new(crate::guest::Kernel::File(raw));
            o.initrd = Some(initrd_path);
            o.append = Some(append.into());
            o.vcpus = 2;
            o.mem_mib = MEM_MIB;
            let bundle = crate::guest::make_bundle(&o, "test-raw")?;
            let b = boot_bundle(c, &bundle)?;
            with_output(&b, check_raw_guest(&b, MEM_MIB.into(), 2, append, &initrd))
        }),
        ("guest_endings_give_distinct_exit_statuses", |c| {
            // The raw test guest (boot protocol) ends as its command line
            // says: SYSTEM_OFF with a status (SET_STATUS, or SYSTEM_RESET2
            // with spevisor's vendor exit type, SMC64 and SMC32), a reset
            // (SYSTEM_RESET, SYSTEM_RESET2 warm), stopped by the hypervisor,
            // out of its exit budget: each its own QEMU exit status.
            let raw = crate::build_guest_at(false, spevisor_abi::guest::kernel::RAW_TEXT_OFFSET)?;
            for (end, host_extra, summary_status, guest_status, exit) in GUEST_ENDINGS {
                let mut o = crate::guest::GuestOpts::new(crate::guest::Kernel::File(raw.clone()));
                o.append = Some(format!("spevisor.end={end}"));
                o.mem_mib = 16;
                let bundle = crate::guest::make_bundle(&o, &format!("test-end-{}", end.replace(':', "-")))?;
                let m = Machine {
                    append: format!("{}{host_extra}", crate::guest::HOST_APPEND),
                    extra: vec!["-initrd".into(), bundle.display().to_string()],
                    ..Machine::default()
                };
                let b = boot(c, &c.image, m)?;
                with_output(&b, check_guest_ending(&b, summary_status, *guest_status, *exit))
                    .map_err(|e| format!("spevisor.end={end}: {e}"))?;
            }
            Ok(())
        }),
        ("unbootable_guest_files_are_refused_by_name", |c| {
            // xtask refuses them before QEMU starts...
            let dir = root().join("target").join("guest-bundle");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let elf = root().join("target/guest").join(BARE_TARGET).join("debug/spevisor-guest");
            let gzip = dir.join("kernel.gz");
            // A gzip member header (magic, deflate, no flags) and junk.
            std::fs::write(&gzip, [&[0x1f, 0x8b, 0x08, 0x00][..], &[0x5a; 4092]].concat())
                .map_err(|e| e.to_string())?;
            let empty = dir.join("empty");
            std::fs::write(&empty, []).map_err(|e| e.to_string())?;
            for (file, want) in [(&elf, "ELF file"), (&gzip, "gzip-compressed file"), (&empty, "empty file")] {
                let o = crate::guest::GuestOpts::new(crate::guest::Kernel::File(file.clone()));
                match crate::guest::make_bundle(&o, "test-refused") {
                    Err(e) if e.contains(want) => {}
                    other => return Err(format!("xtask on {}: {other:?}, expected {want:?}", file.display())),
                }
            }
            // ...and the host, handed them anyway, refuses them too.
            use spevisor_abi::guest::bundle::Bundle;
            for (bytes, want) in [
                (std::fs::read(&elf).map_err(|e| e.to_string())?, "guest kernel: ELF file"),
                (std::fs::read(&gzip).map_err(|e| e.to_string())?, "guest kernel: gzip-compressed file"),
            ] {
                let bundle_b = Bundle { vcpus: 1, mem_mib: 16, kernel: &bytes, initrd: None, cmdline: "" };
                let path = raw_bundle("test-host-refuses", &bundle_b, |_| {})?;
                let b = boot_bundle(c, &path)?;
                with_output(&b, check_guest_refused(&b, want))?;
            }
            Ok(())
        }),
        ("guest_too_big_for_its_ram_is_refused_with_the_sizes", |c| {
            // 3 MiB of raw code for 2 MiB of RAM: xtask and the host both
            // say what does not fit.
            let kernel = vec![0x14u8; 3 << 20];
            let path = root().join("target").join("guest-bundle-too-big.bin");
            std::fs::write(&path, &kernel).map_err(|e| e.to_string())?;
            let mut o = crate::guest::GuestOpts::new(crate::guest::Kernel::File(path));
            o.mem_mib = 2;
            let want = "too big for the guest's RAM: the kernel needs 0x380000 bytes from the RAM base (load offset included), the initrd 0x0, the device tree 0x10000; RAM is 0x200000 bytes (2 MiB)";
            match crate::guest::make_bundle(&o, "test-too-big") {
                Err(e) if e.contains(want) => {}
                other => return Err(format!("xtask: {other:?}, expected {want:?}")),
            }
            let bundle_b = spevisor_abi::guest::bundle::Bundle {
                vcpus: 1,
                mem_mib: 2,
                kernel: &kernel,
                initrd: None,
                cmdline: "",
            };
            let b = boot_bundle(c, &raw_bundle("test-too-big", &bundle_b, |_| {})?)?;
            with_output(&b, check_guest_refused(&b, want))
        }),
        ("bad_guest_bundles_are_refused_by_the_host", |c| {
            // Hand-made headers the host must not trust: a future version,
            // a kernel section running past the end, 9 vcpus, no bundle.
            use spevisor_abi::guest::bundle::Bundle;
            const VERSION_FIELD: usize = 8;
            const KERNEL_SIZE_FIELD: usize = 40;
            const VCPUS_FIELD: usize = 24;
            let kernel = [0x14u8; 4096];
            let good = Bundle { vcpus: 1, mem_mib: 16, kernel: &kernel, initrd: None, cmdline: "x" };
            type Edit = fn(&mut Vec<u8>);
            let cases: [(&str, Edit, &str); 4] = [
                ("version", |v| v[VERSION_FIELD] = 2, "bundle version 2; this host reads version 1"),
                (
                    "kernel-size",
                    |v| v[KERNEL_SIZE_FIELD + 7] = 0x80,
                    "kernel section at offset 0x1000, 0x8000000000001000 bytes",
                ),
                ("vcpus", |v| v[VCPUS_FIELD] = 9, "9 vcpus: a guest has 1 to 8"),
                ("magic", |v| v[0] = b'X', "no SPVGUEST magic"),
            ];
            for (name, edit, want) in cases {
                let b = boot_bundle(c, &raw_bundle(&format!("test-bad-{name}"), &good, edit)?)?;
                with_output(&b, check_guest_refused(&b, want))?;
            }
            // The scenario without any initrd at all.
            let b = boot(c, &c.image, scenario("guest"))?;
            with_output(&b, check_guest_refused(&b, "no guest bundle"))
        }),
        ("stress_1000_vm_lifecycles_end_every_way_and_leak_no_page", |c| {
            let b = boot(c, &c.release_image, stress_vms_machine())?;
            with_output(&b, check_stress_vms(&b, STRESS_CYCLES))
        }),
        ("stress_100000_world_switches_beside_linux_with_spe_sampling", stress_switch_test),
        ("linux_guest_runs_init_1_vcpu", |c| linux_init_test(c, 1)),
        ("linux_guest_runs_init_2_vcpus", |c| linux_init_test(c, 2)),
        ("console_16550_with_bad_reg_io_width_is_reported", |c| {
            // QEMU's DTB with its UART turned into an ns16550a with
            // reg-shift 2 and reg-io-width 3: refused by name, on the
            // fallback console, exit 1 (QEMU virt has no 16550 to drive:
            // the working 16550 path is unit-tested against a model).
            let dtb = qemu_dtb_variant(&c.q, "ns16550-width3", |d| crate::board_tests::virt_uart_as_ns16550(d, 2, 3))?;
            let m = Machine { extra: vec!["-dtb".into(), dtb.display().to_string()], ..Machine::default() };
            let b = boot(c, &c.image, m)?;
            with_output(&b, crate::board_tests::check_console_refused(&b, "reg-io-width 3 is not supported"))
        }),
        ("dtb_without_gic_is_reported", |c| {
            // QEMU's own DTB, trimmed to its contents, with the GIC's
            // compatible string changed: the boot must stop with the reason.
            let dtb = qemu_dtb_variant(&c.q, "nogic", |d| replace_bytes(d, b"arm,gic-v3", b"arm,gic-vX"))?;
            let m = Machine { extra: vec!["-dtb".into(), dtb.display().to_string()], ..Machine::default() };
            let b = boot(c, &c.image, m)?;
            with_output(&b, {
                expect_exit(&b, status::FATAL_BOOT).and_then(|_| {
                    let s = summary(&b.output).ok_or("no summary line")?;
                    expect_eq("status", field(&s, "status")?, "error")?;
                    if field(&s, "reason")?.contains("no enabled GIC") {
                        Ok(())
                    } else {
                        Err("the reason does not name the missing GIC".into())
                    }
                })
            })
        }),
        ("vm_executing_outside_gets_an_external_abort", |c| {
            // A branch to an IPA nothing backs: an instruction abort at the
            // guest's own vector, and the guest goes on after the branch.
            let b = boot(c, &c.image, scenario("exec-outside"))?;
            with_output(
                &b,
                check_bad_vm_aborted(
                    &b,
                    "exec-outside",
                    "bad: instruction fetch at IPA 0x41000000: no RAM or device there; external abort for the guest",
                    "EL1 branch to an unbacked IPA",
                ),
            )
        }),
        ("vm_create_destroy_loop_leaks_nothing", |c| {
            let mut m = scenario("vm-loop");
            m.append.push_str(" spevisor.iterations=40");
            let b = boot(c, &c.image, m)?;
            with_output(&b, check_vm_loop(&b, 40))
        }),
        ("hostile_guests_are_contained_and_their_neighbours_finish", |c| {
            let b = boot(c, &c.image, scenario("hostile-suite"))?;
            with_output(&b, check_hostile_suite(&b, HOSTILE_CASES))
        }),
        ("bad_vm_requests_are_refused_by_name", |c| {
            let b = boot(c, &c.image, scenario("refusals"))?;
            with_output(&b, check_refusals(&b))
        }),
        ("hostile_host_rewrites_the_spe_model_area_while_el2_uses_it", |c| {
            let b = boot(c, &c.image, spe_abuse_machine())?;
            with_output(&b, check_spe_abuse(&b))
        }),
        ("trapped_sysreg_loop_injects_undef", |c| {
            let mut m = scenario("sysreg-loop");
            m.append.push_str(" spevisor.iterations=500");
            let b = boot(c, &c.image, m)?;
            with_output(&b, {
                expect_exit(&b, status::OK).and_then(|_| {
                    let f = fields(&b.output, "sysreg:")?;
                    expect_num(&f, "status", 0)?;
                    expect_num(&f, "n", 500)
                })
            })
        }),
        ("bench_guest_runs_every_metric", |c| {
            const N: u64 = 50;
            let (run, _) = crate::bench::boot(&c.q, &c.image, N, crate::bench::Spe::ModelQuiet)?;
            crate::bench::check_run(&run, N)
        }),
        ("spe_hardware_path_restores_the_host_buffer", |c| {
            // The hardware path of save/restore_host_buffers on stand-in
            // registers: 200 round trips with the buffer enabled, then idle.
            for (extra, want) in [("", ("0x48000001", "0x3")), (" spevisor.spe_standin=idle", ("0x0", "0x0"))] {
                let mut m = scenario("ping-loop");
                m.append.push_str(&format!(" spevisor.iterations=200 spevisor.spe=off{extra}"));
                let b = boot(c, &c.standin_image, m)?;
                with_output(&b, check_standin(&b, want))?;
            }
            Ok(())
        }),
        ("executed_switch_order_follows_the_rules", |c| {
            let b = boot(c, &c.image, Machine::default())?;
            with_output(&b, check_recorded_order(&b, None))
        }),
        ("pre_2021_switch_order_is_caught", |c| {
            let b = boot(c, &c.pre2021_image, Machine::default())?;
            with_output(&b, check_recorded_order(&b, Some("drain-before-guest-state")))
        }),
        ("moved_drain_is_caught_by_the_step_record", |c| {
            // save_host_buffers moved after the stage-2 load: it records
            // itself where it runs, so the record shows the move.
            let b = boot(c, &c.drain_late_image, Machine::default())?;
            with_output(&b, check_recorded_order(&b, Some("drain-before-guest-state")))
        }),
        ("moved_restore_is_caught_by_the_step_record", |c| {
            let b = boot(c, &c.restore_early_image, Machine::default())?;
            with_output(&b, check_recorded_order(&b, Some("restore-after-host-state")))
        }),
        ("spe_model_10k_switches_correct_order_loses_nothing", |c| {
            let mut m = scenario("ping-loop");
            m.append.push_str(" spevisor.iterations=10000");
            let b = boot(c, &c.image, m)?;
            with_output(&b, {
                expect_exit(&b, status::OK).and_then(|_| {
                    let f = fields(&b.output, "ping:")?;
                    expect_num(&f, "status", 0)?;
                    if num(&f, "exits")? < 10_000 {
                        return Err("fewer than 10,000 world switches".into());
                    }
                    check_spe_clean(&b, 20).map(|_| ())
                })
            })
        }),
        ("spe_model_pre_2021_order_misdirects", |c| {
            let mut m = scenario("ping-loop");
            m.append.push_str(" spevisor.iterations=10000");
            let b = boot(c, &c.pre2021_image, m)?;
            with_output(&b, check_spe_misdirected(&b))
        }),
        ("spe_model_catches_the_buffer_reenabled_under_the_guest_regime", |c| {
            // restore_host_buffers moved before the host's EL1 registers are
            // back. No sample is ever taken (period 2^32 cycles), so no record
            // moves: only the judging of every EL2 register write sees it.
            let mut m = scenario("ping-loop");
            m.append.push_str(" spevisor.iterations=2000 spevisor.spe_period=4294967295");
            let b = boot(c, &c.restore_early_image, m)?;
            with_output(&b, check_spe_misdirected_without_records(&b))
        }),
        ("spe_model_catches_the_drain_under_stage2", |c| {
            // save_host_buffers moved after the stage-2 load; an empty drain
            // and the disabling writes are judged under VTTBR_EL2.
            let mut m = scenario("ping-loop");
            m.append.push_str(" spevisor.iterations=2000 spevisor.spe_period=4294967295");
            let b = boot(c, &c.drain_late_image, m)?;
            with_output(&b, check_spe_misdirected_without_records(&b))
        }),
        ("trbe_model_catches_the_trace_buffer_drained_late", |c| {
            // Only the trace buffer's drain moved after the stage-2 load: the
            // SPE buffer stays clean, the trace buffer is misdirected.
            let mut m = scenario("ping-loop");
            m.append.push_str(" spevisor.iterations=2000");
            let b = boot(c, &c.trbe_late_image, m)?;
            with_output(&b, {
                let f = fields(&b.output, "spe: backend=")?;
                expect_num(&f, "misdirected", 0).and_then(|_| check_trbe_misdirected(&b))
            })
        }),
        ("spe_small_buffer_fills_often_loses_nothing", |c| {
            let mut m = scenario("ping-loop");
            m.append.push_str(" spevisor.iterations=10000 spevisor.spe_buffer=8192 spevisor.spe_period=100000");
            let b = boot(c, &c.image, m)?;
            with_output(&b, {
                check_spe_clean(&b, 200).and_then(|f| {
                    if num(&f, "buffer_full_irqs")? < 5 {
                        return Err("the buffer-full path ran fewer than 5 times".into());
                    }
                    Ok(())
                })
            })
        }),
        ("spe_guest_touching_spe_keeps_host_profile_intact", |c| {
            let b = boot(c, &c.image, Machine::default())?;
            with_output(&b, check_selftest(&b).and_then(|_| check_spe_clean(&b, 1).map(|_| ())))
        }),
        ("spe_raw_dump_is_framed_and_decodes_offline", |c| {
            let mut m = scenario("ping-loop");
            m.append.push_str(
                " spevisor.iterations=3000 spevisor.spe_dump=1 spevisor.spe_buffer=8192 spevisor.spe_period=100000",
            );
            let b = boot(c, &c.image, m)?;
            with_output(&b, check_spe_dump(&b))
        }),
        ("el2_unexpected_exception_report", |c| {
            let m = Machine { append: "spevisor.test=el2-undef".into(), ..Machine::default() };
            let b = boot(c, &c.test_image, m)?;
            with_output(&b, check_crash_ec(&b, status::HYP_CRASH, 0x00, "el2"))
        }),
        ("host_trap_to_el2_that_is_not_a_hypercall_is_reported", |c| {
            // An SVE instruction at EL1 traps to EL2 (CPTR_EL2.TZ): EL2's
            // crash report (EC 0x19), exit 3.
            let m = Machine { append: "spevisor.test=host-sve".into(), ..Machine::default() };
            let b = boot(c, &c.test_image, m)?;
            with_output(&b, {
                check_crash_ec(&b, status::HYP_CRASH, 0x19, "el2").and_then(|_| {
                    if b.output.contains("unexpected synchronous exception from a lower EL (AArch64)") {
                        Ok(())
                    } else {
                        Err("the report does not say where the exception came from".into())
                    }
                })
            })
        }),
        ("host_unexpected_exception_report", |c| {
            let m = Machine { append: "spevisor.test=host-undef".into(), ..Machine::default() };
            let b = boot(c, &c.test_image, m)?;
            with_output(&b, check_crash_ec(&b, status::HOST_CRASH, 0x00, "host"))
        }),
    ]
}

fn lint() -> Result<(), String> {
    setup::rust_components()?;
    eprintln!("xtask: cargo fmt --check");
    run_cmd(cargo().current_dir(root()).args(["fmt", "--all", "--", "--check"]))?;
    eprintln!("xtask: cargo clippy (host crates, host target)");
    run_cmd(cargo().current_dir(root()).args([
        "clippy",
        "--quiet",
        "--workspace",
        "--exclude",
        "spevisor-image",
        "--exclude",
        "spevisor-guest",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    eprintln!("xtask: cargo clippy (bare-metal crates, {BARE_TARGET})");
    let guest = crate::build_guest(false)?;
    let mut c = cargo();
    c.current_dir(root()).env(crate::GUEST_ENV, guest).args(["clippy", "--quiet", "--target", BARE_TARGET]);
    for k in BARE_CRATES {
        c.args(["-p", k]);
    }
    c.args(["--features", "spevisor-image/test-hooks", "--", "-D", "warnings"]);
    run_cmd(&mut c)?;
    // The feature builds compile code the default one does not.
    eprintln!("xtask: cargo clippy (image with spe-hw-standin, {BARE_TARGET})");
    let guest = crate::build_guest(false)?;
    run_cmd(cargo().current_dir(root()).env(crate::GUEST_ENV, guest).args([
        "clippy",
        "--quiet",
        "--target",
        BARE_TARGET,
        "-p",
        "spevisor-image",
        "--features",
        "spevisor-image/spe-hw-standin",
        "--",
        "-D",
        "warnings",
    ]))
}

/// The ordering check on the built machine code (`machine_code.rs`): each
/// image must pass or break the rule given, and copies of the correct debug
/// and release images with one barrier of the drain or restore replaced by
/// `nop` must each fail. Returns the number of failures.
fn machine_code_tests(images: &[(&PathBuf, &str, Option<&'static str>)]) -> Result<usize, String> {
    use crate::machine_code::{barrier_cases, run_case, Case, SpeRegs};
    eprintln!("xtask: machine-code ordering checks");
    let objdump = setup::objdump()?;
    let (mut cases, mut barrier) = (vec![], vec![]);
    for &(image, name, want) in images {
        let elf = image.with_extension("elf");
        let spe = if name == "spe_hw_standin" { SpeRegs::STANDIN } else { SpeRegs::REAL };
        let verb = if want.is_some() { "is_caught" } else { "follows_the_order" };
        if want.is_none() && name != "spe_hw_standin" {
            barrier.extend(barrier_cases(&objdump, name, &elf, spe)?);
        }
        cases.push(Case { name: format!("{name}_image_{verb}"), elf, spe, want });
    }
    cases.extend(barrier);
    let mut failed = 0;
    for c in &cases {
        match run_case(&objdump, c) {
            Ok(what) => println!("machine-code test {} ... ok ({what})", c.name),
            Err(e) => {
                failed += 1;
                println!("machine-code test {} ... FAILED\n{e}", c.name);
            }
        }
    }
    Ok(failed)
}

pub fn run_all(args: &crate::cli::TestArgs) -> Result<(), String> {
    setup::rust_targets()?;
    let tests: Vec<_> =
        qemu_tests().into_iter().filter(|(name, _)| crate::cli::selected(name, &args.filters)).collect();
    if args.lint() {
        lint()?;
    }
    eprintln!("xtask: host unit tests");
    run_cmd(cargo().current_dir(root()).args(["test", "--quiet", "--"]).args(&args.filters))?;
    crate::fuzz::smoke_tests(&args.filters)?;
    if tests.is_empty() {
        println!("qemu: no QEMU test name contains {}", args.filters.join(" or "));
        return Ok(());
    }
    let q = setup::qemu()?;
    eprintln!("xtask: using {}", q.version_text);
    eprintln!("xtask: building images");
    let image = build_image(&BuildOpts::default())?;
    let test_image = build_image(&BuildOpts { test_hooks: true, ..BuildOpts::default() })?;
    let pre2021_image = build_image(&BuildOpts { pre_2021: true, ..BuildOpts::default() })?;
    let standin_image = build_image(&BuildOpts { spe_hw_standin: true, ..BuildOpts::default() })?;
    let broken = |b| build_image(&BuildOpts { broken: Some(b), ..BuildOpts::default() });
    let restore_early_image = broken(crate::Broken::RestoreEarly)?;
    let drain_late_image = broken(crate::Broken::DrainLate)?;
    let trbe_late_image = broken(crate::Broken::TrbeLate)?;
    let release_image = build_image(&BuildOpts { release: true, ..BuildOpts::default() })?;
    // The machine-code checks run with the whole suite (no NAME filter).
    let code_failed = if !args.filters.is_empty() {
        0
    } else {
        machine_code_tests(&[
            (&image, "debug", None),
            (&release_image, "release", None),
            (&standin_image, "spe_hw_standin", None),
            (&pre2021_image, "pre_2021", Some("drain-before-guest-state")),
            (&restore_early_image, "broken_restore_early", Some("restore-after-host-state")),
            (&drain_late_image, "broken_drain_late", Some("drain-before-guest-state")),
            (&trbe_late_image, "broken_trbe_late", Some("drain-before-guest-state")),
        ])?
    };
    let ctx = Ctx {
        q,
        image,
        test_image,
        pre2021_image,
        restore_early_image,
        drain_late_image,
        trbe_late_image,
        standin_image,
        release_image,
    };
    let (mut passed, mut failed, mut skipped) = (0, code_failed, 0);
    for (name, check) in &tests {
        match check(&ctx) {
            Ok(()) => {
                passed += 1;
                println!("qemu test {name} ... ok");
            }
            Err(e) if e.starts_with(SKIPPED) => {
                skipped += 1;
                println!("qemu test {name} ... SKIPPED ({})", &e[SKIPPED.len()..]);
            }
            Err(e) => {
                failed += 1;
                println!("qemu test {name} ... FAILED\n{e}");
            }
        }
    }
    if skipped == 0 {
        println!("qemu: {passed} passed, {failed} failed");
    } else {
        println!("qemu: {passed} passed, {failed} failed, {skipped} SKIPPED (see above)");
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} QEMU or machine-code test(s) failed"))
    }
}

/// `cargo xtask hostile [--fuzz-seconds N]`: the isolation report of issue
/// 12 in one place. Runs the hostile-guest suite, the hostile host, every
/// fuzz target for N seconds (default [`HOSTILE_FUZZ_SECONDS`]) and the two
/// stress runs, checks each as `cargo xtask test` does, and prints what
/// ran and what it found. An error if any part failed.
pub fn hostile_report(args: &[String]) -> Result<(), String> {
    let fuzz_seconds = match args {
        [] => HOSTILE_FUZZ_SECONDS,
        [flag, n] if flag == "--fuzz-seconds" => n.parse().map_err(|_| format!("--fuzz-seconds {n}: not a number"))?,
        _ => return Err("usage: cargo xtask hostile [--fuzz-seconds N]".into()),
    };
    setup::rust_targets()?;
    let q = setup::qemu()?;
    let image = build_image(&BuildOpts::default())?;
    let release = build_image(&BuildOpts { release: true, ..BuildOpts::default() })?;
    let run = |img: &Path, m: Machine, timeout| qemu::run_captured(&q, img, &m, timeout);
    let mut report = vec![];
    let mut failed = vec![];
    let mut part = |name: &str, r: Result<String, String>| match r {
        Ok(line) => report.push(format!("  {name}: {line}")),
        Err(e) => {
            report.push(format!("  {name}: FAILED: {e}"));
            failed.push(name.to_string());
        }
    };

    let b = run(&image, scenario("hostile-suite"), BOOT_TIMEOUT)?;
    part(
        "hostile guests",
        check_hostile_suite(&b, HOSTILE_CASES).and_then(|_| {
            let f = fields(&b.output, "hostile-suite: ")?;
            let a32 = b.output.lines().filter(|l| l.starts_with("hostile-case:") && (l.contains(" name=a32-") || l.contains(" name=t32-"))).count();
            Ok(format!(
                "{} cases run ({a32} of them AArch32 EL0, {} skipped), {} contained, the neighbour VM finished {} times, {} leaks",
                num(&f, "cases")?,
                num(&f, "skipped")?,
                num(&f, "contained")?,
                num(&f, "neighbours_ok")?,
                num(&f, "leaks")?
            ))
        }),
    );

    let b = run(&image, scenario("refusals"), BOOT_TIMEOUT)?;
    part(
        "hostile host",
        check_refusals(&b).and_then(|_| {
            let f = fields(&b.output, "refusals: ")?;
            Ok(format!(
                "{} ABI abuses refused with their own status, 0 accepted; pages named intact {}; free pages back",
                REFUSALS.len(),
                field(&f, "pages_intact")?
            ))
        }),
    );

    let b = run(&image, spe_abuse_machine(), BOOT_TIMEOUT)?;
    part(
        "hostile host, SPE model area",
        check_spe_abuse(&b).and_then(|_| {
            let f = fields(&b.output, "spe-abuse: ")?;
            Ok(format!(
                "{} rewrites while {} VMs ran and finished, {} repairs counted by EL2, {} bad buffers refused; guard pages intact {}; free pages back",
                num(&f, "rewrites")?,
                num(&f, "vms_ok")?,
                num(&f, "repairs")?,
                num(&f, "refused")?,
                field(&f, "guards_intact")?
            ))
        }),
    );

    let bins = crate::fuzz::build()?;
    let (mut execs, mut crashes) = (0, vec![]);
    for t in crate::fuzz::TARGETS {
        let o = crate::fuzz::run_scratch(&bins, t, fuzz_seconds, 1)?;
        execs += o.stats.execs;
        println!(
            "xtask: fuzz {t}: {} execs in {:.0} s{}",
            o.stats.execs,
            o.seconds,
            if o.crash.is_some() { ", CRASH" } else { "" }
        );
        if let Some(c) = o.crash {
            crashes.push(format!("{t} ({})", c.display()));
        }
    }
    part(
        "fuzzing",
        if crashes.is_empty() {
            Ok(format!("{} targets, {fuzz_seconds} s each, {execs} inputs run, no crash", crate::fuzz::TARGETS.len()))
        } else {
            Err(format!("crashes: {}", crashes.join(", ")))
        },
    );

    let b = run(&release, stress_vms_machine(), LINUX_TIMEOUT)?;
    part(
        "stress, lifecycles",
        check_stress_vms(&b, STRESS_CYCLES)
            .map(|_| "1,000 VMs, 200 ending each way, free pages back after every one".to_string()),
    );
    let (m, with_linux) = stress_switch_machine()?;
    let b = run(&release, m, LINUX_TIMEOUT)?;
    part(
        "stress, world switches",
        check_stress_switch(&b, STRESS_MIN_EXITS, with_linux).and_then(|()| {
            let f = fields(&b.output, "stress-switch: ")?;
            let s = fields(&b.output, "spe: backend=")?;
            Ok(format!(
                "{} alternated exits{}; SPE records produced {} = decoded {}, misdirected {}, lost {}",
                num(&f, "exits")?,
                if with_linux {
                    ", then more beside Linux to its SYSTEM_OFF"
                } else {
                    " (Linux unavailable: left out)"
                },
                num(&s, "produced")?,
                num(&s, "records")?,
                num(&s, "misdirected")?,
                num(&s, "lost")?
            ))
        }),
    );

    println!("hostile report ({}):", q.version_text);
    for l in &report {
        println!("{l}");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failed.join(", ")))
    }
}

/// Seconds per fuzz target in `cargo xtask hostile`.
const HOSTILE_FUZZ_SECONDS: u32 = 10;

#[cfg(test)]
mod unit {
    use super::*;

    /// The SPE, TRBE and summary lines of a run whose profile is clean.
    const CLEAN_PROFILE: &str = "spe: backend=model samples=5 records=5 produced=5 bytes=320 faults=0 misdirected=0 lost=0 decode_errors=0 regime_checks=9 misdirected_regimes=0\n\
                   spe: by_el el0=0 el1=5 el2=0 guest_pc=0\n\
                   trbe: backend=model packets=5 bad_packets=0 collected=80 written=80 pending=0 faults=0 misdirected=0 lost=0 regime_checks=9 misdirected_regimes=0\n\
                   spevisor: status=ok trbe_misdirected=0 trbe_lost=0\n";

    /// The QEMU tests of `names` that no row of tests/README.md's table names
    /// in its first column (one name, or several separated by commas).
    fn undocumented<'a>(names: &[&'a str], readme: &str) -> Vec<&'a str> {
        let documented: Vec<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix('|')?.split('|').next())
            .flat_map(|cell| cell.split(',').map(str::trim))
            .collect();
        names.iter().copied().filter(|n| !documented.contains(n)).collect()
    }

    #[test]
    fn every_qemu_test_is_in_the_tests_readme() {
        let readme = std::fs::read_to_string(root().join("tests/README.md")).unwrap();
        let names: Vec<&str> = qemu_tests().iter().map(|(n, _)| *n).collect();
        assert_eq!(undocumented(&names, &readme), Vec::<&str>::new(), "add them to tests/README.md");
        // The check can fail: a name the table lacks, one only mentioned
        // in another row's text.
        assert_eq!(undocumented(&["no_such_test", "boot_256m"], &readme), ["no_such_test"]);
        assert_eq!(undocumented(&["x_y"], "| a | b x_y |\n| x_y_z | c |"), ["x_y"]);
    }

    fn b(exit: i32, output: &str) -> Boot {
        Boot { exit: Some(exit), output: output.into(), timed_out: false }
    }

    #[test]
    fn linux_gicv2_check_wants_timer_interrupts_on_gic_0_on_every_vcpu() {
        let ok = "[guest]  12:        223        187 GIC-0  27 Level     arch_timer\n";
        assert_eq!(check_linux_gicv2(&b(0, ok), 2), Ok(()));
        assert_eq!(check_linux_gicv2(&b(0, ok), 1), Ok(()));
        // One vcpu never took its timer.
        let idle = "[guest]  12:        223          0 GIC-0  27 Level     arch_timer\n";
        assert!(check_linux_gicv2(&b(0, idle), 2).is_err());
        // A GICv3 (chip name GICv3), or no timer line at all.
        let v3 = "[guest]  12:        223 GICv3  27 Level     arch_timer\n";
        assert!(check_linux_gicv2(&b(0, v3), 1).is_err());
        assert!(check_linux_gicv2(&b(0, ""), 1).is_err());
        assert!(check_linux_gicv2(&b(0, &format!("{ok}[guest] GICv3: 32 SPIs implemented\n")), 2).is_err());
    }

    #[test]
    fn guest_ending_check_wants_the_exit_status_and_the_summary() {
        let out = |st: &str, g: &str| format!("spevisor: status={st} el2=yes guest_status={g}\n");
        assert!(check_guest_ending(&b(8, &out("guest-reset", "-1")), "guest-reset", None, 8).is_ok());
        assert!(check_guest_ending(&b(5, &out("guest-reset", "-1")), "guest-reset", None, 8).is_err());
        assert!(check_guest_ending(&b(8, &out("guest-failed", "-1")), "guest-reset", None, 8).is_err());
        assert!(check_guest_ending(&b(5, &out("guest-failed", "42")), "guest-failed", Some("42"), 5).is_ok());
        assert!(check_guest_ending(&b(5, &out("guest-failed", "41")), "guest-failed", Some("42"), 5).is_err());
        let codes: Vec<i32> = GUEST_ENDINGS.iter().map(|e| e.4).collect();
        for c in
            [status::OK, status::GUEST_FAILED, status::GUEST_STOPPED, status::GUEST_RESET, status::GUEST_OUT_OF_BUDGET]
        {
            assert!(codes.contains(&c), "every ending's status is exercised: {c}");
        }
    }

    #[test]
    fn bad_vm_checks_tell_an_abort_from_a_stop() {
        let aborted = "bad: read at IPA 0x1: no RAM or device there; external abort for the guest\n\
                       [bad] guest: ok   EL1 load from an unbacked IPA: ...\n\
                       read-outside: bad_ending=off bad_status=0 good_ending=off good_status=0\n";
        let host = "bad: read at IPA 0x1";
        let guest = "EL1 load from an unbacked IPA";
        assert!(check_bad_vm_aborted(&b(0, aborted), "read-outside", host, guest).is_ok());
        // The VM stopped instead (the old behaviour), or the guest's abort wrong.
        let stopped = "[host] ERROR bad: stopped by the hypervisor: external abort on the guest's own abort vector\n\
                       read-outside: bad_ending=stopped bad_status=-1 good_ending=off good_status=0\n";
        assert!(check_bad_vm_aborted(&b(0, stopped), "read-outside", host, guest).is_err());
        let wrong = aborted.replace("guest: ok  ", "guest: FAIL").replace("bad_status=0", "bad_status=2989");
        assert!(check_bad_vm_aborted(&b(0, &wrong), "read-outside", host, guest).is_err());
        let no_host_line = aborted.replace("bad: read at", "bad: rd at");
        assert!(check_bad_vm_aborted(&b(0, &no_host_line), "read-outside", host, guest).is_err());
        // The stop checks: the reason must be the one named.
        let why = "external abort on the guest's own abort vector";
        assert!(check_bad_vm_stopped(&b(0, stopped), "read-outside", why).is_ok());
        assert!(check_bad_vm_stopped(&b(0, stopped), "read-outside", "back to back").is_err());
        assert!(check_bad_vm_stopped(&b(0, aborted), "read-outside", why).is_err());
        assert!(check_bad_vm_stopped(&b(5, stopped), "read-outside", why).is_err(), "exit status");
    }

    #[test]
    fn aborts_guest_check_wants_every_case_and_a_clean_profile() {
        let ok = "[guest0] guest: ok   EL1 load from an unbacked IPA: x\n\
                  [guest0] guest: ok   EL1 branch to an unbacked IPA: x\n\
                  [guest0] guest: ok   EL0 load from an unbacked IPA: x\n\
                  [guest0] guest: ok   EL0 branch to an unbacked IPA: x\n\
                  spevisor: status=ok misdirected=0 lost=0 guest_status=0\n";
        assert!(check_aborts_guest(&b(0, ok)).is_ok());
        assert!(check_aborts_guest(&b(0, &ok.replace("ok   EL0 branch", "FAIL EL0 branch"))).is_err());
        assert!(check_aborts_guest(&b(0, &ok.replace("guest_status=0", "guest_status=8"))).is_err());
        assert!(check_aborts_guest(&b(0, &ok.replace("misdirected=0", "misdirected=3"))).is_err());
        assert!(check_aborts_guest(&b(0, &ok.replace("lost=0", "lost=1"))).is_err());
        assert!(check_aborts_guest(&b(5, ok)).is_err());
    }

    #[test]
    fn summary_parsing() {
        let s = summary("x\nspevisor: status=ok el2=yes reason=\"a b=c\" n=1\n").unwrap();
        assert_eq!(s["status"], "ok");
        assert_eq!(s["el2"], "yes");
        assert_eq!(s["reason"], "a b=c");
        assert_eq!(s["n"], "1");
    }

    #[test]
    fn memreserve_insertion_keeps_the_tree_valid() {
        let fixture = root().join("dtb/tests/fixtures/virt-gicv3-smp1-256M.dtb");
        let orig = std::fs::read(fixture).unwrap();
        let mut d = orig.clone();
        assert_eq!(add_memreserve(&mut d, 0x5008_0000, 0x8_0000), 16);
        let (before, after) = (spevisor_dtb::parse(&orig).unwrap(), spevisor_dtb::parse(&d).unwrap());
        assert!(before.reserved.as_slice().is_empty());
        assert_eq!(after.reserved.as_slice(), &[spevisor_dtb::Region { base: 0x5008_0000, size: 0x8_0000 }]);
        assert_eq!(after.ram(), before.ram());
        assert_eq!(after.cpus.mpidrs(), before.cpus.mpidrs());
        assert_eq!(after.console.map(|u| u.region), before.console.map(|u| u.region));
    }

    #[test]
    fn linux_check_needs_the_boot_lines_the_panic_and_the_reset() {
        let good = "[linux] [    0.000000] Booting Linux on physical CPU 0x0000000000 [0x000f0510]\n\
                    [linux] [    0.000000] Machine model: spevisor guest\n\
                    [linux] [    0.000000] Kernel command line: console=ttyAMA0 earlycon=pl011,0x09000000 panic=-1\n\
                    [linux] [    0.000000] GICv3: CPU0: found redistributor 0 region 0:0x00000000080a0000\n\
                    [linux] [    0.000000] arch_timer: cp15 timer(s) running at 1000.00MHz (virt).\n\
                    [linux] [    1.361700] printk: console [ttyAMA0] enabled\n\
                    [linux] [    3.953723] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n\
                    [host] INFO  linux: ended (reset) after 39100 exits\n";
        assert!(check_linux_to_root_mount(&b(0, good)).is_ok());
        assert!(check_linux_to_root_mount(&b(0, &good.replace("GICv3: CPU0", "GICv3: CPU1"))).is_err());
        assert!(check_linux_to_root_mount(&b(0, &good.replace("Kernel panic", "Oops"))).is_err(), "died elsewhere");
        assert!(check_linux_to_root_mount(&b(0, &good.replace("ended (reset)", "ended (killed)"))).is_err());
        assert!(check_linux_to_root_mount(&b(4, good)).is_err(), "the host crashed");
    }

    #[test]
    fn linux_init_check_needs_init_the_cpus_the_interrupts_and_system_off() {
        let good = "[guest] [    0.000000] Booting Linux on physical CPU 0x0000000000 [0x000f0510]\n\
                    [guest] [    0.000000] Machine model: spevisor guest\n\
                    [guest] spevisor-init: hello from Linux\n\
                    [guest] processor\t: 0\n\
                    [guest] processor\t: 1\n\
                    [guest]            CPU0       CPU1\n\
                    [guest]  11:        310        295     GICv3  27 Level     arch_timer\n\
                    [guest]  13:         41          0     GICv3  33 Level     uart-pl011\n\
                    [guest] spevisor-init: cpus=2\n\
                    [host] INFO  guest: ended (off) after 91234 exits\n\
                    spevisor: status=ok misdirected=0 lost=0\n";
        assert!(check_linux_init(&b(0, good), 2).is_ok());
        assert!(check_linux_init(&b(0, good), 1).is_err(), "two processors listed");
        let no_timer = good.replace("310        295", "0          0");
        assert!(check_linux_init(&b(0, &no_timer), 2).is_err(), "no timer interrupt taken");
        let no_uart = good.replace(" 41          0", "  0          0");
        assert!(check_linux_init(&b(0, &no_uart), 2).is_err(), "no UART interrupt taken");
        assert!(check_linux_init(&b(0, &good.replace("hello from", "bye from")), 2).is_err());
        assert!(check_linux_init(&b(0, &good.replace("ended (off)", "ended (killed)")), 2).is_err());
        assert!(check_linux_init(&b(0, &good.replace("lost=0", "lost=3")), 2).is_err());
        assert!(check_linux_init(&b(5, good), 2).is_err());
    }

    #[test]
    fn raw_guest_check_needs_the_placement_the_tree_and_the_initrd() {
        let initrd = b"initrd bytes";
        let out = |entered: &str, cpus: u32, start: u64, sum: u64| {
            format!(
                "[guest] guest: entered at {entered} by the boot protocol, x0 = 0x40ff0000\n\
                 [guest] dtb: at 0x40ff0000, model \"spevisor guest\", bootargs \"a b\"\n\
                 [guest] dtb: cpus={cpus} initrd={start:#x}..{:#x} initrd_fnv1a64={sum:#x}\n\
                 spevisor: status=ok guest_status=0\n",
                start + initrd.len() as u64
            )
        };
        let sum = fnv1a64(initrd);
        assert!(check_raw_guest(&b(0, &out("0x40080000", 2, 0x40fef000, sum)), 16, 2, "a b", initrd).is_ok());
        assert!(check_raw_guest(&b(0, &out("0x40000000", 2, 0x40fef000, sum)), 16, 2, "a b", initrd).is_err());
        assert!(check_raw_guest(&b(0, &out("0x40080000", 1, 0x40fef000, sum)), 16, 2, "a b", initrd).is_err());
        assert!(check_raw_guest(&b(0, &out("0x40080000", 2, 0x40fef008, sum)), 16, 2, "a b", initrd).is_err());
        assert!(check_raw_guest(&b(0, &out("0x40080000", 2, 0x40fef000, sum ^ 1)), 16, 2, "a b", initrd).is_err());
        assert!(check_raw_guest(&b(0, &out("0x40080000", 2, 0x40fef000, sum)), 16, 2, "a c", initrd).is_err());
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c, "the published FNV-1a 64 value");
    }

    #[test]
    fn refusal_check_needs_the_reason_and_the_status() {
        let out = "[host] ERROR guest: bad guest bundle (10 bytes at 0x1): no SPVGUEST magic\nspevisor: status=guest-refused\n";
        assert!(check_guest_refused(&b(6, out), "no SPVGUEST magic").is_ok());
        assert!(check_guest_refused(&b(6, out), "bundle version").is_err());
        assert!(check_guest_refused(&b(0, out), "no SPVGUEST magic").is_err());
        assert!(check_guest_refused(&b(6, &out.replace("guest-refused", "ok")), "no SPVGUEST magic").is_err());
    }

    #[test]
    fn standin_check_needs_the_registers_back_and_the_loop_done() {
        let out = |shutdown: &str, exits: u32| {
            format!(
                "[el2] INFO  spe-hw-standin: SPE hardware path on stand-in EL2 registers, buffer enabled (instruction counting only), PMBLIMITR_EL1=0x48000001 PMSCR_EL1=0x3\n\
                 ping: n=200 ending=off status=0 exits={exits}\n\
                 [el2] INFO  spe-hw-standin: at shutdown {shutdown}\n"
            )
        };
        let want = ("0x48000001", "0x3");
        assert!(check_standin(&b(0, &out("PMBLIMITR_EL1=0x48000001 PMSCR_EL1=0x3", 202)), want).is_ok());
        // The buffer left disabled by a restore that forgot PMBLIMITR_EL1.
        assert!(check_standin(&b(0, &out("PMBLIMITR_EL1=0x0 PMSCR_EL1=0x3", 202)), want).is_err());
        assert!(check_standin(&b(0, &out("PMBLIMITR_EL1=0x48000001 PMSCR_EL1=0x0", 202)), want).is_err());
        assert!(check_standin(&b(0, &out("PMBLIMITR_EL1=0x48000001 PMSCR_EL1=0x3", 20)), want).is_err());
        assert!(check_standin(&b(1, &out("PMBLIMITR_EL1=0x48000001 PMSCR_EL1=0x3", 202)), want).is_err());
        let no_shutdown_line =
            "[el2] INFO  spe-hw-standin: PMBLIMITR_EL1=0x48000001 PMSCR_EL1=0x3\nping: status=0 exits=202\n";
        assert!(check_standin(&b(0, no_shutdown_line), want).is_err());
    }

    #[test]
    fn ping_check_catches_a_wrong_answer() {
        let good = "hvc ping: sent 0x1 0x2 0x3 got 0xfffffffffffffffe 0xfffffffffffffffd 0xfffffffffffffffc hyp_el=2";
        assert!(check_ping(&b(0, good)).is_ok());
        let bad = good.replace("0xfffffffffffffffd", "0x2");
        assert!(check_ping(&b(0, &bad)).is_err());
        let wrong_el = good.replace("hyp_el=2", "hyp_el=1");
        assert!(check_ping(&b(0, &wrong_el)).is_err());
    }

    #[test]
    fn boot_check_catches_wrong_level_and_exit() {
        let ok = "spevisor: status=ok el2=yes host_el=1 gic=v3 spe=model spe_hw=absent free_pages=10";
        assert!(check_boot_ok(&b(0, ok), "v3").is_ok());
        assert!(check_boot_ok(&b(1, ok), "v3").is_err());
        assert!(check_boot_ok(&b(0, &ok.replace("host_el=1", "host_el=2")), "v3").is_err());
        assert!(check_boot_ok(&b(0, &ok.replace("free_pages=10", "free_pages=0")), "v3").is_err());
    }

    const FIXED: &str = "save_host_sysregs,save_host_buffers,dsb_nsh,restore_guest_sysregs,load_stage2,activate_guest_traps,restore_guest_gic_timer,enter_guest,save_guest_state,dsb_nsh,deactivate_traps,unload_stage2,restore_host_sysregs,restore_host_buffers";
    const OLD: &str = "save_host_sysregs,dsb_nsh,restore_guest_sysregs,load_stage2,activate_guest_traps,restore_guest_gic_timer,save_host_buffers,enter_guest,save_guest_state,dsb_nsh,deactivate_traps,unload_stage2,restore_host_sysregs,restore_host_buffers";

    #[test]
    fn order_check_needs_the_right_record_and_verdict() {
        let out = |steps: &str, verdict: &str| {
            format!("switch-trace: run=0 steps={steps}\nswitch-order: build=x runs=1 {verdict}\n")
        };
        assert!(check_recorded_order(&b(0, &out(FIXED, "result=ok")), None).is_ok());
        assert!(check_recorded_order(&b(0, &out(OLD, "result=ok")), None).is_err(), "harness must re-check");
        assert!(check_recorded_order(&b(0, &out(FIXED, "result=violation rule=x")), None).is_err());
        let v = "result=violation rule=drain-before-guest-state";
        assert!(check_recorded_order(&b(0, &out(OLD, v)), Some("drain-before-guest-state")).is_ok());
        assert!(check_recorded_order(&b(0, &out(FIXED, v)), Some("drain-before-guest-state")).is_err());
        assert!(check_recorded_order(&b(0, "nothing"), None).is_err());
    }

    #[test]
    fn debug_check_catches_a_failed_guest_or_a_changed_host_register() {
        let good = "debug: brps=6 wrps=4 breakpoint=0 watchpoint=0 step=0 os_lock=0 regs_a=0 regs_b=0 regs_a_ending=off regs_b_ending=off host_same=true\n\
                    spevisor: status=ok misdirected=0 lost=0\n";
        assert!(check_debug(&b(0, good)).is_ok());
        assert!(check_debug(&b(0, &good.replace("step=0", "step=1"))).is_err());
        assert!(check_debug(&b(0, &good.replace("regs_b=0", "regs_b=12"))).is_err());
        assert!(check_debug(&b(0, &good.replace("host_same=true", "host_same=false"))).is_err());
        assert!(check_debug(&b(0, &good.replace("lost=0", "lost=2"))).is_err());
        assert!(check_debug(&b(5, good)).is_err());
    }

    #[test]
    fn hostile_suite_check_wants_every_case_contained() {
        let spe = CLEAN_PROFILE;
        let out = format!(
            "hostile-case: n=0 name=a contained=yes\nhostile-case: n=1 name=b contained=yes\n\
             hostile-suite: cases=2 contained=2 skipped=0 neighbours_ok=2 leaks=0 hyp_free_before=3 hyp_free_after=3 host_free_before=4 host_free_after=4\n{spe}"
        );
        assert_eq!(check_hostile_suite(&b(0, &out), 2), Ok(()));
        assert!(check_hostile_suite(&b(0, &out), 3).is_err(), "too few cases");
        for (from, to) in [
            ("name=b contained=yes", "name=b contained=NO"),
            ("contained=2", "contained=1"),
            ("skipped=0", "skipped=1"),
            ("neighbours_ok=2", "neighbours_ok=1"),
            ("leaks=0", "leaks=1"),
            ("host_free_after=4", "host_free_after=3"),
            ("hostile-case: n=1 name=b contained=yes\n", ""),
        ] {
            assert!(check_hostile_suite(&b(0, &out.replacen(from, to, 1)), 2).is_err(), "{to}");
        }
    }

    #[test]
    fn spe_abuse_check_wants_guards_intact_and_everything_back() {
        let mut out: String = SPE_ABUSE_REFUSALS.iter().map(|(w, s)| format!("refusal {w}: {s} (-1)\n")).collect();
        out += "spe-abuse: refused=9 rounds=16 rewrites=768 repairs=1311 guards_intact=4/4 bytes_in_buffers=257 vms_ok=17 el2_alive=true detached=true hyp_free_before=4096 hyp_free_after=4096 host_free_before=9 host_free_after=9\n";
        assert_eq!(check_spe_abuse(&b(0, &out)), Ok(()));
        for (from, to) in [
            ("guards_intact=4/4", "guards_intact=3/4"),
            ("bytes_in_buffers=257", "bytes_in_buffers=0"),
            ("repairs=1311", "repairs=0"),
            ("vms_ok=17", "vms_ok=16"),
            ("el2_alive=true", "el2_alive=false"),
            ("hyp_free_after=4096", "hyp_free_after=4095"),
            ("refusal spe-buffer-unaligned: UNALIGNED", "refusal spe-buffer-unaligned: ACCEPTED"),
        ] {
            assert!(check_spe_abuse(&b(0, &out.replacen(from, to, 1))).is_err(), "{to}");
        }
    }

    #[test]
    fn refusal_check_wants_every_status_and_nothing_lost() {
        let mut out: String = REFUSALS.iter().map(|(w, s)| format!("refusal {w}: {s} (-1)\n")).collect();
        out += "refusals: pages_intact=5/5 hyp_free_before=10 hyp_free_after=10 host_free_before=20 host_free_after=20 vcpus_made=8 extra_vms=14\n";
        assert_eq!(check_refusals(&b(0, &out)), Ok(()));
        for (from, to) in [
            ("refusal donate-twice: ALREADY_DONATED", "refusal donate-twice: ACCEPTED"),
            ("refusal share-twice: IN_USE", "refusal share-twice: ALREADY_DONATED"),
            ("pages_intact=5/5", "pages_intact=4/5"),
            ("hyp_free_after=10", "hyp_free_after=9"),
            ("host_free_after=20", "host_free_after=21"),
            ("extra_vms=14", "extra_vms=15"),
        ] {
            assert!(check_refusals(&b(0, &out.replacen(from, to, 1))).is_err(), "{to}");
        }
        assert!(check_refusals(&b(0, &out.replacen("refusal garbage-id: NOT_SUPPORTED (-1)\n", "", 1))).is_err());
    }

    #[test]
    fn isolation_and_leak_checks_catch_failures() {
        let two = "two-vms: a_status=0 b_status=0 a_ending=off b_ending=off a_mismatch=0 b_mismatch=0 a_has_b=0 b_has_a=0 alternations=3";
        assert!(check_two_vms(&b(0, two)).is_ok());
        assert!(check_two_vms(&b(0, &two.replace("b_mismatch=0", "b_mismatch=3"))).is_err());
        assert!(check_two_vms(&b(0, &two.replace("a_has_b=0", "a_has_b=1"))).is_err());
        assert!(check_two_vms(&b(0, &two.replace("alternations=3", "alternations=1"))).is_err());
        let lp = "vm-loop: iterations=4 ok=4 hyp_free_before=10 hyp_free_after=10 host_free_before=7 host_free_after=7";
        assert!(check_vm_loop(&b(0, lp), 4).is_ok());
        let spe = CLEAN_PROFILE;
        let sv = format!("stress-vms: cycles=10 off=2 reset=2 stopped=2 budget=2 destroyed=2 wrong_endings=0 hyp_free_before=7 hyp_free_after=7 host_free_before=9 host_free_after=9 first_leak=-1\n{spe}");
        assert_eq!(check_stress_vms(&b(0, &sv), 10), Ok(()));
        for (from, to) in [
            ("reset=2", "reset=1"),
            ("wrong_endings=0", "wrong_endings=1"),
            ("first_leak=-1", "first_leak=3"),
            ("hyp_free_after=7", "hyp_free_after=6"),
            ("host_free_after=9", "host_free_after=8"),
            ("lost=0", "lost=1"),
        ] {
            assert!(check_stress_vms(&b(0, &sv.replacen(from, to, 1)), 10).is_err(), "{to}");
        }
        let ss = format!("stress-switch-guest: guest=off c=off d=off\nstress-switch: exits=100714 a_status=0 b_status=0 guest=off\n{spe}");
        assert_eq!(check_stress_switch(&b(0, &ss), 100_000, true), Ok(()));
        assert!(check_stress_switch(&b(0, &ss), 200_000, true).is_err());
        for (from, to) in [
            ("b_status=0", "b_status=3"),
            ("guest=off\n", "guest=none\n"),
            ("produced=5", "produced=6"),
            ("d=off", "d=killed"),
        ] {
            assert!(check_stress_switch(&b(0, &ss.replacen(from, to, 1)), 100_000, true).is_err(), "{to}");
        }
        assert!(check_vm_loop(&b(0, &lp.replace("hyp_free_after=10", "hyp_free_after=9")), 4).is_err());
        assert!(check_vm_loop(&b(0, &lp.replace("host_free_after=7", "host_free_after=5")), 4).is_err());
        assert!(check_vm_loop(&b(0, &lp.replace("ok=4", "ok=3")), 4).is_err());
    }

    #[test]
    fn spe_checks_catch_loss_misdirection_and_guest_pcs() {
        let good = "spe: backend=model samples=9 records=9 produced=9 bytes=576 buffer_full_irqs=6 faults=0 misdirected=0 lost=0 decode_errors=0 regime_checks=40 misdirected_regimes=0\nspe: by_el el0=0 el1=9 el2=0 guest_pc=0 buffer_pa=0x1\n\
                    trbe: backend=model packets=9 bad_packets=0 collected=144 written=144 pending=0 buffer_full_irqs=0 faults=0 misdirected=0 lost=0 regime_checks=40 misdirected_regimes=0\n\
                    spevisor: status=ok misdirected=0 trbe_misdirected=0 trbe_lost=0\n";
        assert!(check_spe_clean(&b(0, good), 5).is_ok());
        // The trace buffer's own checks.
        assert!(check_spe_clean(&b(0, &good.replace("written=144", "written=128")), 1).is_err());
        assert!(check_spe_clean(&b(0, &good.replace("packets=9 bad_packets=0", "packets=9 bad_packets=1")), 1).is_err());
        assert!(check_spe_clean(&b(0, &good.replace("trbe_lost=0", "trbe_lost=16")), 1).is_err());
        assert!(check_spe_clean(&b(0, &good.replace("trbe: backend", "trace: backend")), 1).is_err());
        assert!(check_trbe_misdirected(&b(0, good)).is_err());
        let trbe_bad = good
            .replace(
                "lost=0 regime_checks=40 misdirected_regimes=0\nspevisor",
                "lost=0 regime_checks=40 misdirected_regimes=2\nspevisor",
            )
            .replace(
                "faults=0 misdirected=0 lost=0 regime_checks=40 misdirected_regimes=2",
                "faults=0 misdirected=2 lost=0 regime_checks=40 misdirected_regimes=2",
            );
        assert!(check_trbe_misdirected(&b(0, &trbe_bad)).is_err(), "summary trbe_misdirected=0");
        assert!(check_trbe_misdirected(&b(0, &trbe_bad.replace("trbe_misdirected=0", "trbe_misdirected=2"))).is_ok());
        assert!(check_spe_clean(&b(0, &good.replace("regime_checks=40", "regime_checks=0")), 1).is_err());
        let regime = good.replace("misdirected_regimes=0", "misdirected_regimes=1");
        assert!(check_spe_clean(&b(0, &regime), 1).is_err());
        assert!(check_spe_misdirected_without_records(&b(0, &regime)).is_err(), "samples were taken");
        let quiet = regime.replace("samples=9", "samples=0").replace("bytes=576", "bytes=0");
        assert!(check_spe_misdirected_without_records(&b(0, &quiet)).is_err(), "summary misdirected=0");
        let quiet = quiet.replace("misdirected=0", "misdirected=1");
        assert!(check_spe_misdirected_without_records(&b(0, &quiet)).is_ok());
        assert!(check_spe_misdirected_without_records(&b(
            0,
            &quiet.replace("misdirected_regimes=1", "misdirected_regimes=0")
        ))
        .is_err());
        assert!(check_spe_clean(&b(0, good), 10).is_err(), "too few records");
        assert!(check_spe_clean(&b(0, &good.replace("lost=0", "lost=2")), 1).is_err());
        assert!(check_spe_clean(&b(0, &good.replace("produced=9", "produced=10")), 1).is_err());
        assert!(check_spe_clean(&b(0, &good.replace("guest_pc=0", "guest_pc=1")), 1).is_err());
        assert!(check_spe_misdirected(&b(0, good)).is_err());
        let bad = good.replace("misdirected=0", "misdirected=3");
        assert!(check_spe_misdirected(&b(0, &bad)).is_ok());
    }

    #[test]
    fn text_write_check_needs_a_write_permission_fault_at_the_text() {
        let out = |esr: u64, far: u64| {
            format!(
                "[el2] INFO  test hook: writing to hypervisor text at 0x40200000\n\
                 [el2]   ELR_EL2=0x1 SPSR_EL2=0x2 FAR_EL2={far:#x} HPFAR_EL2=0x0\n\
                 spevisor: status=crash el2=yes esr={esr:#x} elr=0x1\n"
            )
        };
        let good = 0x9600_004f; // EC 0x25, WnR, permission fault level 3
        assert!(check_hyp_text_write(&b(3, &out(good, 0x4020_0000))).is_ok());
        assert!(check_hyp_text_write(&b(3, &out(good, 0x4020_0008))).is_err());
        assert!(check_hyp_text_write(&b(3, &out(0x9600_0007, 0x4020_0000))).is_err(), "translation fault");
        assert!(check_hyp_text_write(&b(3, &out(0x9600_000f, 0x4020_0000))).is_err(), "read");
        assert!(check_hyp_text_write(&b(0, &out(good, 0x4020_0000))).is_err(), "exit 0");
    }
}
