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
    Ok(line.split_whitespace().filter_map(|w| w.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
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
const VIRT_PPIS: [(&str, &str); 4] =
    [("ppi_sec_phys", "29"), ("ppi_phys", "30"), ("ppi_virt", "27"), ("ppi_hyp_phys", "26")];
const VIRT_PMU_PPI: &str = "23";
const VIRT_MAINTENANCE_PPI: &str = "25";
/// `-cpu max`'s MIDR_EL1 (QEMU target/arm: implementer 0, architecture
/// 0xf, part 0x051).
const QEMU_MAX_MIDR: &str = "0x000f0510";
/// QEMU's GICv3 CPU interface: 4 list registers, 5 priority and
/// preemption bits (hw/intc/arm_gicv3_cpuif.c).
const QEMU_GICV3_LRS: &str = "4";
const QEMU_GICV3_PRI_BITS: &str = "5";
/// QEMU's GICv2 virtual interface (GICH_VTR, read through the mapped GICH
/// frame): 4 list registers, 5 priority bits.
const QEMU_GICV2_LRS: &str = "4";
const QEMU_GICV2_PRI_BITS: &str = "5";
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
        want(&cpuif, "gic_cpu_if", "list_registers", QEMU_GICV2_LRS)?;
        want(&cpuif, "gic_cpu_if", "pri_bits", QEMU_GICV2_PRI_BITS)?;
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
    // QEMU virt's stdout-path: its PL011 (hw/arm/virt.c `VIRT_UART`).
    let console = report_line(&boot.output, "console")?;
    want(&console, "console", "kind", "pl011")?;
    want(&console, "console", "base", "0x9000000")?;
    let psci = report_line(&boot.output, "psci")?;
    want(&psci, "psci", "conduit", "smc")?;
    if qemu_version < (9, 0) {
        want(&psci, "psci", "version", "1.1")?;
    } else if !psci.get("version").is_some_and(|v| v.starts_with("1.")) {
        return Err(format!("report psci: expected a PSCI 1.x version, got {psci:?}"));
    }
    Ok(())
}

/// The `report: cpu other` lines of a boot with `smp` cores: one per core
/// other than the boot core (MPIDR 0x80000000 + n on QEMU virt), each read
/// by that core itself, started at EL2 and off again afterwards.
pub fn check_other_cpus(boot: &Boot, smp: u32) -> Result<(), String> {
    let prefix = "report: cpu other ";
    let lines: Vec<HashMap<String, String>> = boot
        .output
        .lines()
        .filter_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
        .map(|rest| {
            rest.split_whitespace().filter_map(|w| w.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect()
        })
        .collect();
    if lines.len() != smp as usize - 1 {
        return Err(format!("{} `report: cpu other` lines for -smp {smp}", lines.len()));
    }
    for (n, fields) in (1..).zip(&lines) {
        let topic = "cpu other";
        want(fields, topic, "mpidr", &format!("{:#x}", QEMU_MPIDR_U | n))?;
        want(fields, topic, "midr", QEMU_MAX_MIDR)?;
        want(fields, topic, "el", "2")?;
        want(fields, topic, "off_again", "yes")?;
    }
    Ok(())
}

/// MPIDR_EL1 bit 31 (RES1) as QEMU reads it: the boot
/// core reads 0x80000000, core n 0x80000000 + n.
const QEMU_MPIDR_U: u64 = 0x8000_0000;

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

    #[test]
    fn the_virt_uart_becomes_a_16550_with_its_cells() {
        let mut d = include_bytes!("../../dtb/tests/fixtures/virt-gicv3-smp1-256M.dtb").to_vec();
        let end = be32(&d, fdt::OFF_DT_STRINGS) + be32(&d, fdt::SIZE_DT_STRINGS);
        d.truncate(end);
        set_be32(&mut d, fdt::TOTALSIZE, end);
        let before = spevisor_dtb::parse(&d).unwrap().console.unwrap();
        assert_eq!(before.kind, spevisor_dtb::UartKind::Pl011);
        let before_region = before.region;
        assert!(virt_uart_as_ns16550(&mut d, 2, 3) > 0);
        let p = spevisor_dtb::parse(&d).unwrap();
        let u = p.console.unwrap();
        assert_eq!(u.kind, spevisor_dtb::UartKind::Ns16550);
        assert_eq!((u.reg_shift, u.reg_io_width), (2, 3));
        assert_eq!(u.region, before_region);
        assert_eq!(
            p.gic,
            spevisor_dtb::parse(include_bytes!("../../dtb/tests/fixtures/virt-gicv3-smp1-256M.dtb")).unwrap().gic,
            "the rest intact"
        );
        assert_eq!(virt_uart_as_ns16550(&mut d, 2, 3), 0, "no PL011 left to edit");
    }
}

/// FDT header fields (offsets of big-endian words) and tokens.
mod fdt {
    pub const TOTALSIZE: usize = 4;
    pub const OFF_DT_STRUCT: usize = 8;
    pub const OFF_DT_STRINGS: usize = 12;
    pub const SIZE_DT_STRINGS: usize = 32;
    pub const SIZE_DT_STRUCT: usize = 36;
    pub const FDT_PROP: u32 = 3;
}

fn be32(d: &[u8], o: usize) -> usize {
    u32::from_be_bytes(d[o..o + 4].try_into().unwrap()) as usize
}

fn set_be32(d: &mut [u8], o: usize, v: usize) {
    d[o..o + 4].copy_from_slice(&(v as u32).to_be_bytes());
}

/// QEMU virt's PL011 node and its `compatible` value.
const VIRT_UART_NODE: &[u8] = b"pl011@9000000\0";
const VIRT_UART_COMPATIBLE: &[u8] = b"arm,pl011\0arm,primecell\0";

/// Turns QEMU virt's console node (a DTB trimmed to its contents: strings
/// last) into an `ns16550a` with `reg-shift` and `reg-io-width` cells:
/// the compatible rewritten in place (NUL-padded), the two properties
/// inserted right after the node's name, their names appended to the
/// strings block. Returns the bytes changed (0: the node was not found).
pub fn virt_uart_as_ns16550(d: &mut Vec<u8>, reg_shift: u32, reg_io_width: u32) -> usize {
    let Some(compat) = d.windows(VIRT_UART_COMPATIBLE.len()).position(|w| w == VIRT_UART_COMPATIBLE) else {
        return 0;
    };
    let Some(node) = d.windows(VIRT_UART_NODE.len()).position(|w| w == VIRT_UART_NODE) else {
        return 0;
    };
    let mut c = b"ns16550a".to_vec();
    c.resize(VIRT_UART_COMPATIBLE.len(), 0);
    d[compat..compat + c.len()].copy_from_slice(&c);
    // Strings: append the two names (the strings block ends the blob).
    let strings = be32(d, fdt::OFF_DT_STRINGS);
    let strings_size = be32(d, fdt::SIZE_DT_STRINGS);
    assert_eq!(strings + strings_size, d.len(), "a trimmed DTB ends with its strings");
    let mut names = vec![];
    for name in ["reg-shift", "reg-io-width"] {
        names.push(d.len() - strings);
        d.extend_from_slice(name.as_bytes());
        d.push(0);
    }
    let strings_size = d.len() - strings;
    set_be32(d, fdt::SIZE_DT_STRINGS, strings_size);
    // Struct: two FDT_PROP records after the node name (padded to 4).
    let after_name = (node + VIRT_UART_NODE.len()).next_multiple_of(4);
    let mut props = vec![];
    for (nameoff, value) in names.into_iter().zip([reg_shift, reg_io_width]) {
        for w in [fdt::FDT_PROP, 4, nameoff as u32, value] {
            props.extend_from_slice(&w.to_be_bytes());
        }
    }
    d.splice(after_name..after_name, props.iter().copied());
    assert!(be32(d, fdt::OFF_DT_STRUCT) < after_name);
    let moved = be32(d, fdt::OFF_DT_STRINGS) + props.len();
    set_be32(d, fdt::OFF_DT_STRINGS, moved);
    let size = be32(d, fdt::SIZE_DT_STRUCT) + props.len();
    set_be32(d, fdt::SIZE_DT_STRUCT, size);
    let total = d.len();
    set_be32(d, fdt::TOTALSIZE, total);
    c.len() + props.len()
}

/// The boot stopped on the console: exit 1 (the fatal-boot status) and a
/// summary whose reason names the 16550's `want` problem, on the fallback
/// console.
pub fn check_console_refused(boot: &Boot, want: &str) -> Result<(), String> {
    if boot.timed_out {
        return Err("QEMU timed out (the image hung)".into());
    }
    if boot.exit != Some(crate::tests::status::FATAL_BOOT) {
        return Err(format!("exit status {:?}, expected {}", boot.exit, crate::tests::status::FATAL_BOOT));
    }
    let line = boot.output.lines().rev().find(|l| l.starts_with("spevisor: ")).ok_or("no summary line")?;
    if !line.contains("status=error") || !line.contains("Ns16550 UART at 0x9000000") || !line.contains(want) {
        return Err(format!("the summary does not name the 16550 console's problem ({want}): {line}"));
    }
    if boot.output.contains("[host]") {
        return Err("the host ran on a console EL2 refused".into());
    }
    Ok(())
}
