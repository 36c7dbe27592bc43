//! Booting the image as an EFI application through Debian's EDK2
//! (`qemu-efi-aarch64`'s `QEMU_EFI.fd` as QEMU's `-bios`): EDK2's
//! ArmVirtQemu loads QEMU's `-kernel` file with LoadImage and passes
//! `-append` as the load options, the way a UEFI server's boot manager or
//! GRUB's `chainloader` would start `spevisor.Image` from an EFI system
//! partition. `acpi=off` gives the firmware a device tree only; `acpi=on`
//! (with firmware) an ACPI-only machine: EDK2 then installs no device tree.

use crate::board_tests::report_line;
use std::collections::HashMap;
use std::path::Path;

/// QEMU options: EDK2 as the firmware.
pub fn qemu_extra(firmware: &Path) -> Vec<String> {
    vec!["-bios".into(), firmware.display().to_string()]
}

/// `-M virt` options: which description EDK2 hands over.
pub const DT_ONLY: &str = ",acpi=off";
pub const ACPI_ONLY: &str = ",acpi=on";

/// The stub's lines (efi/src/stub.rs).
const STUB_ENTRY: &str = "spevisor: EFI application at ";
const STUB_DT: &str = "spevisor: device tree from the EFI configuration table";
const STUB_ACPI: &str = "spevisor: ACPI tables (RSDP ";
const STUB_COPIED: &str = "spevisor: image copied to ";
/// EDK2's banner on the serial console.
const EDK2_BANNER: &str = "UEFI firmware (version";

const IMAGE_ALIGN: u64 = 2 << 20;

/// The boot went through EDK2 and the stub, at EL2, from the firmware's
/// `acpi` or device-tree description, and the image that ran is the stub's
/// 2 MiB aligned copy: the EL2 line names the address the stub printed.
pub fn check_through_uefi(output: &str, acpi: bool) -> Result<(), String> {
    if !output.contains(EDK2_BANNER) {
        return Err("no EDK2 banner: QEMU did not start the UEFI firmware".into());
    }
    let entry = output
        .lines()
        .find_map(|l| l.split_once(STUB_ENTRY).map(|(_, r)| r))
        .ok_or("the image was not entered as an EFI application (no stub line)")?;
    if !entry.trim_end().ends_with(", EL2") {
        return Err(format!("the EFI application was not entered at EL2: `{entry}`"));
    }
    let (want, other) = if acpi { (STUB_ACPI, STUB_DT) } else { (STUB_DT, STUB_ACPI) };
    if !output.contains(want) || output.contains(other) {
        return Err(format!("expected the stub to use `{want}` only"));
    }
    let copied = output
        .lines()
        .find_map(|l| l.split_once(STUB_COPIED).map(|(_, r)| r))
        .and_then(|r| r.split_whitespace().next())
        .ok_or("the stub did not copy the image (no `image copied to` line)")?;
    let dest = u64::from_str_radix(copied.trim_start_matches("0x"), 16).map_err(|e| format!("{copied}: {e}"))?;
    if dest % IMAGE_ALIGN != 0 {
        return Err(format!("the copy at {dest:#x} is not 2 MiB aligned"));
    }
    let want_el2 = format!("image {dest:#x}..");
    if !output.lines().any(|l| l.contains("spevisor EL2: ") && l.contains(&want_el2)) {
        return Err(format!("EL2 did not run from the stub's copy (no `{want_el2}` in the EL2 line)"));
    }
    let fw = firmware_line(output).ok_or("no `report: firmware=` line")?;
    let firmware = fw.get("firmware").map(String::as_str).unwrap_or("");
    match (acpi, firmware) {
        (true, "acpi") if fw.contains_key("rsdp") => Ok(()),
        (false, "dt") if !fw.contains_key("rsdp") => Ok(()),
        _ => Err(format!("report: firmware={firmware} {fw:?} on a {} machine", if acpi { "ACPI-only" } else { "DT" })),
    }
}

/// The `key=value` words of the report's first line (`report: firmware=...`).
fn firmware_line(output: &str) -> Option<HashMap<String, String>> {
    let rest = output.lines().find_map(|l| l.split_once("report: firmware=").map(|(_, r)| r))?;
    let line = format!("firmware={rest}");
    Some(
        line.split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Report topics whose every field must be the same whether the machine
/// was described by its device tree or by ACPI.
const SAME_TOPICS: &[&str] = &["gic", "gic_cpu_if", "timer", "pmu", "psci", "spe"];

/// The ACPI run's report says what the device-tree run's says: GIC frames
/// and maintenance PPI, timer PPIs, PMU PPI, PSCI, and the CPU count.
pub fn same_platform(dt: &str, acpi: &str) -> Result<(), String> {
    for topic in SAME_TOPICS {
        let (a, b) = (report_line(dt, topic)?, report_line(acpi, topic)?);
        if a != b {
            return Err(format!("report {topic}: device tree {a:?}, ACPI {b:?}"));
        }
    }
    let cpus = |out: &str| firmware_line(out).and_then(|f| f.get("cpus").cloned());
    match (cpus(dt), cpus(acpi)) {
        (Some(a), Some(b)) if a == b => Ok(()),
        (a, b) => Err(format!("CPUs: device tree {a:?}, ACPI {b:?}")),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    const DT_RUN: &str = "UEFI firmware (version  built at 13:10:49 on Nov  5 2024)\n\
        spevisor: EFI application at 0x7c26a000, EL2\n\
        spevisor: device tree from the EFI configuration table (1052672 bytes)\n\
        spevisor: image copied to 0x48000000 (2 MiB aligned); exiting boot services\n\
        [el2] INFO  spevisor EL2: image 0x48000000..0x481d6000, DTB 0x7c159000\n\
        [el2] INFO  report: firmware=dt model=\"linux,dummy-virt\" cpus=2 (spevisor runs on the boot CPU only)\n\
        [el2] INFO  report: gic version=3 gicd=0x8000000+0x10000 gicr=0x80a0000+0xf60000 maintenance_ppi=25\n\
        [el2] INFO  report: gic_cpu_if interface=sysregs list_registers=4\n\
        [el2] INFO  report: timer cntfrq=62500000 ppi_sec_phys=29 ppi_phys=30 ppi_virt=27 ppi_hyp_phys=26\n\
        [el2] INFO  report: pmu pmuver=0x6(PMUv3p5) counters=6 ppi=23\n\
        [el2] INFO  report: psci version=1.1 conduit=smc binding=arm,psci-1.0\n\
        [el2] INFO  report: spe pmsver=0x0(none) buffer_owner=none\n";

    fn acpi_run() -> String {
        DT_RUN
            .replace(
                "device tree from the EFI configuration table (1052672 bytes)",
                "ACPI tables (RSDP 0x7c430018): GICv3",
            )
            .replace(
                "firmware=dt model=\"linux,dummy-virt\"",
                "firmware=acpi rsdp=0x7c430018 model=\"ACPI BOCHS BXPC\"",
            )
    }

    #[test]
    fn the_check_needs_edk2_the_stub_at_el2_its_copy_and_the_firmware_line() {
        check_through_uefi(DT_RUN, false).unwrap();
        check_through_uefi(&acpi_run(), true).unwrap();
        assert!(check_through_uefi(DT_RUN, true).is_err(), "a DT run is not an ACPI run");
        assert!(check_through_uefi(&acpi_run(), false).is_err());
        assert!(check_through_uefi(&DT_RUN.replace("UEFI firmware", "U-Boot"), false).is_err());
        assert!(check_through_uefi(&DT_RUN.replace(", EL2\n", ", EL1\n"), false).is_err());
        assert!(check_through_uefi(&DT_RUN.replace("image 0x48000000..", "image 0x40200000.."), false).is_err());
        assert!(check_through_uefi(&DT_RUN.replace("copied to 0x48000000", "copied to 0x48001000"), false).is_err());
        // The report must not claim DT on the ACPI run (the line the stub's
        // marker drives), nor ACPI on the DT run.
        assert!(check_through_uefi(&acpi_run().replace("firmware=acpi rsdp=0x7c430018", "firmware=dt"), true).is_err());
    }

    #[test]
    fn the_platforms_must_match_field_by_field() {
        same_platform(DT_RUN, &acpi_run()).unwrap();
        assert!(same_platform(DT_RUN, &acpi_run().replace("ppi_virt=27", "ppi_virt=28")).is_err());
        assert!(same_platform(DT_RUN, &acpi_run().replace("cpus=2", "cpus=1")).is_err());
        assert!(
            same_platform(DT_RUN, &acpi_run().replace("gicr=0x80a0000+0xf60000", "gicr=0x80a0000+0x20000")).is_err()
        );
        assert!(same_platform(DT_RUN, &acpi_run().replace("report: pmu", "report: nopmu")).is_err());
    }
}
