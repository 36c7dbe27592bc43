//! Checks of the board report (`cargo xtask run --report`,
//! hyp/src/report.rs) against what QEMU's `virt` machine and `-cpu max`
//! are: values from QEMU's fixed memory map and CPU model, not from
//! spevisor's own parser.

use crate::qemu::Boot;
use std::collections::HashMap;

/// The `key=value` fields of the `report: TOPIC ...` line.
pub fn report_line(output: &str, topic: &str) -> Result<HashMap<String, String>, String> {
    let prefix = format!("report: {topic} ");
    let line = output
        .lines()
        .find_map(|l| l.split_once(&prefix).map(|(_, rest)| rest))
        .ok_or_else(|| format!("no `report: {topic}` line"))?;
    Ok(line
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

fn want(fields: &HashMap<String, String>, topic: &str, key: &str, value: &str) -> Result<(), String> {
    match fields.get(key) {
        Some(v) if v == value => Ok(()),
        Some(v) => Err(format!("report {topic}: {key}={v}, expected {value}")),
        None => Err(format!("report {topic}: no {key}=")),
    }
}

/// QEMU virt's memory map (hw/arm/virt.c, `base_memmap`): GICD, GICC,
/// GICH, GICV and the first redistributor region, each with its size.
const VIRT_GICD: &str = "0x8000000+0x10000";
const VIRT_GICC: &str = "0x8010000+0x10000";
const VIRT_GICH: &str = "0x8030000+0x10000";
const VIRT_GICV: &str = "0x8040000+0x10000";
const VIRT_GICR: &str = "0x80a0000+0xf60000";
/// QEMU virt's PPIs (INTIDs): the architected timer's secure, non-secure
/// physical, virtual and hypervisor timers, the PMU and the GIC maintenance
/// interrupt (`ARCH_TIMER_*_IRQ`, `VIRTUAL_PMU_IRQ`, `ARCH_GIC_MAINT_IRQ`
/// + 16).
const VIRT_PPIS: [(&str, &str); 4] = [("ppi_sec_phys", "29"), ("ppi_phys", "30"), ("ppi_virt", "27"), ("ppi_hyp_phys", "26")];
const VIRT_PMU_PPI: &str = "23";
const VIRT_MAINTENANCE_PPI: &str = "25";
/// `-cpu max`'s MIDR_EL1 (QEMU target/arm: implementer 0, architecture
/// 0xf, part 0x051).
const QEMU_MAX_MIDR: &str = "0x000f0510";
/// QEMU's GICv3 CPU interface: 4 list registers, 5 priority and
/// preemption bits (hw/intc/arm_gicv3_cpuif.c).
const QEMU_GICV3_LRS: &str = "4";
const QEMU_GICV3_PRI_BITS: &str = "5";
/// The counter frequency of QEMU before 9.0 (62.5 MHz); later versions
/// give `-cpu max` 1 GHz.
const QEMU_OLD_CNTFRQ: &str = "62500000";
const QEMU_NEW_CNTFRQ: &str = "1000000000";

/// A `--report` boot on QEMU virt with `-cpu max` and GICv`gic`.
pub fn check_report(boot: &Boot, gic: u32, qemu_version: (u32, u32)) -> Result<(), String> {
    let cpu = report_line(&boot.output, "cpu")?;
    want(&cpu, "cpu", "midr", QEMU_MAX_MIDR)?;
    want(&cpu, "cpu", "part", "0x051")?;
    want(&cpu, "cpu", "architecture", "0xf")?;
    let el = report_line(&boot.output, "el")?;
    want(&el, "el", "current", "el2")?;
    want(&el, "el", "el2", "aarch64+aarch32")?;
    // virtualization=on without secure=on: QEMU has no EL3.
    want(&el, "el", "el3", "absent")?;
    let mem = report_line(&boot.output, "memory")?;
    want(&mem, "memory", "vmid_bits", "16")?;
    want(&mem, "memory", "vmid_bits_used", "8")?;
    let g = report_line(&boot.output, "gic")?;
    want(&g, "gic", "version", &gic.to_string())?;
    want(&g, "gic", "gicd", VIRT_GICD)?;
    want(&g, "gic", "maintenance_ppi", VIRT_MAINTENANCE_PPI)?;
    let cpuif = report_line(&boot.output, "gic_cpu_if")?;
    if gic == 3 {
        want(&g, "gic", "gicr", VIRT_GICR)?;
        want(&cpuif, "gic_cpu_if", "interface", "sysregs")?;
        want(&cpuif, "gic_cpu_if", "list_registers", QEMU_GICV3_LRS)?;
        want(&cpuif, "gic_cpu_if", "pri_bits", QEMU_GICV3_PRI_BITS)?;
    } else {
        want(&g, "gic", "gicc", VIRT_GICC)?;
        want(&g, "gic", "gich", VIRT_GICH)?;
        want(&g, "gic", "gicv", VIRT_GICV)?;
        want(&cpuif, "gic_cpu_if", "interface", "memory-mapped")?;
    }
    let t = report_line(&boot.output, "timer")?;
    want(&t, "timer", "cntfrq", if qemu_version < (9, 0) { QEMU_OLD_CNTFRQ } else { QEMU_NEW_CNTFRQ })?;
    for (k, v) in VIRT_PPIS {
        want(&t, "timer", k, v)?;
    }
    let pmu = report_line(&boot.output, "pmu")?;
    want(&pmu, "pmu", "ppi", VIRT_PMU_PPI)?;
    let counters: u32 = pmu.get("counters").and_then(|c| c.parse().ok()).ok_or("report pmu: no counters=")?;
    if counters == 0 || pmu.get("pmuver").is_some_and(|v| v.starts_with("0x0(")) {
        return Err(format!("report pmu: -cpu max has a PMUv3 with counters, got {pmu:?}"));
    }
    let spe = report_line(&boot.output, "spe")?;
    want(&spe, "spe", "pmsver", "0x0(none)")?;
    want(&spe, "spe", "buffer_owner", "none")?;
    let tr = report_line(&boot.output, "trace")?;
    want(&tr, "trace", "trbe", "absent")?;
    want(&tr, "trace", "brbe", "absent")?;
    let psci = report_line(&boot.output, "psci")?;
    want(&psci, "psci", "conduit", "smc")?;
    if qemu_version < (9, 0) {
        want(&psci, "psci", "version", "1.1")?;
    } else if !psci.get("version").is_some_and(|v| v.starts_with("1.")) {
        return Err(format!("report psci: expected a PSCI 1.x version, got {psci:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn report_lines_are_split_into_fields() {
        let out = "[el2] INFO  report: gic version=3 gicd=0x8000000+0x10000\n[el2] INFO  report: gic_cpu_if interface=sysregs\n";
        let g = report_line(out, "gic").unwrap();
        assert_eq!(g["version"], "3");
        assert_eq!(g["gicd"], "0x8000000+0x10000");
        assert!(!g.contains_key("interface"), "gic_cpu_if is another line");
        assert!(report_line(out, "psci").is_err());
        assert!(want(&g, "gic", "version", "2").is_err());
    }
}
