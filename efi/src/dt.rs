//! The one device tree the rest of the boot reads, written by the EFI stub.
//!
//! - [`from_fdt`]: the firmware's tree (EFI configuration table) copied
//!   node by node, with its `/memory` nodes replaced by RAM from the UEFI
//!   memory map and `/chosen/bootargs` by the image's load options.
//! - [`from_acpi`]: on an ACPI-only machine, a tree written from the ACPI
//!   facts: exactly the nodes `spevisor_dtb::Platform` reads (memory, CPUs,
//!   GIC, timer, PMU, SPE, PSCI, console, chosen), with
//!   `/chosen/spevisor,acpi-rsdp` saying where they came from (the board
//!   report's `firmware=acpi`).

use crate::acpi::{AcpiFacts, Irq};
use spevisor_dtb::fdt::{Fdt, Node};
use spevisor_dtb::writer::{FdtWriter, WriteError};
use spevisor_dtb::DtbError;

/// `/chosen` property naming the RSDP the tree was written from.
pub const ACPI_RSDP_PROPERTY: &str = "spevisor,acpi-rsdp";

/// GIC binding (interrupt-controller/arm,gic*.yaml): specifier types and
/// trigger flags.
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
const IRQ_EDGE_RISING: u32 = 1;
const IRQ_EDGE_FALLING: u32 = 2;
const IRQ_LEVEL_HIGH: u32 = 4;
const IRQ_LEVEL_LOW: u32 = 8;
/// The phandle given to the GIC node of a tree written from ACPI.
const GIC_PHANDLE: u32 = 1;
/// Frame sizes the MADT does not give: 64 KiB each (GICv3's GICD is 64 KiB;
/// GICv2's 4 and 8 KiB frames sit in 64 KiB pages on SBSA systems, as on
/// QEMU virt, whose device tree says 0x10000 for each).
const GIC_FRAME_SIZE: u64 = 0x1_0000;
/// A UART's register frame: one page.
const UART_FRAME_SIZE: u64 = 0x1000;

/// Why the tree could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtError {
    /// The firmware's tree is not a valid FDT.
    Source(DtbError),
    /// The firmware's tree has a node or property name that is not UTF-8.
    BadName,
    /// The output did not fit, or was malformed.
    Write(WriteError),
    /// An interrupt ACPI gave cannot be written as a GIC specifier.
    Interrupt(u32),
}

impl core::fmt::Display for DtError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DtError::Source(e) => write!(f, "the firmware's device tree: {e}"),
            DtError::BadName => f.write_str("the firmware's device tree has a name that is not UTF-8"),
            DtError::Write(e) => write!(f, "writing the device tree: {e}"),
            DtError::Interrupt(g) => write!(f, "ACPI interrupt GSIV {g} is neither a PPI nor an SPI"),
        }
    }
}

fn memory_node(w: &mut FdtWriter<'_>, ram: &[(u64, u64)]) {
    let Some(&(base, _)) = ram.first() else { return };
    let mut name = NameBuf::new();
    name.push_str("memory@");
    name.push_hex(base);
    w.begin_node(name.as_str());
    w.prop_str("device_type", "memory");
    let mut reg = [0u64; 2 * crate::memmap::MAX_REGIONS];
    for (i, &(b, s)) in ram.iter().take(crate::memmap::MAX_REGIONS).enumerate() {
        reg[2 * i] = b;
        reg[2 * i + 1] = s;
    }
    w.prop_u64s("reg", &reg[..2 * ram.len().min(crate::memmap::MAX_REGIONS)]);
    w.end_node();
}

fn is_memory(n: &Node<'_>) -> bool {
    n.property("device_type").and_then(|p| p.as_str()) == Some("memory") || n.base_name() == b"memory"
}

fn copy_node(
    w: &mut FdtWriter<'_>,
    n: &Node<'_>,
    depth: usize,
    ram: &[(u64, u64)],
    bootargs: Option<&str>,
) -> Result<(), DtError> {
    let name = core::str::from_utf8(n.name()).map_err(|_| DtError::BadName)?;
    let chosen = depth == 1 && name == "chosen";
    w.begin_node(name);
    for p in n.properties() {
        let pname = core::str::from_utf8(p.name).map_err(|_| DtError::BadName)?;
        if chosen && bootargs.is_some() && pname == "bootargs" {
            continue;
        }
        w.prop(pname, p.value);
    }
    if chosen {
        if let Some(b) = bootargs {
            w.prop_str("bootargs", b);
        }
    }
    let mut saw_chosen = false;
    for c in n.children() {
        if depth == 0 && is_memory(&c) {
            continue;
        }
        saw_chosen |= depth == 0 && c.name() == b"chosen";
        copy_node(w, &c, depth + 1, ram, bootargs)?;
    }
    if depth == 0 {
        memory_node(w, ram);
        if !saw_chosen {
            w.begin_node("chosen");
            if let Some(b) = bootargs {
                w.prop_str("bootargs", b);
            }
            w.end_node();
        }
    }
    w.end_node();
    Ok(())
}

/// Copies the firmware's tree `src` into `buf` with RAM `ram` (base, size)
/// as its only `/memory` node and, if given, `bootargs` as
/// `/chosen/bootargs`; returns the new tree's length. The memory
/// reservation map is kept.
pub fn from_fdt(src: &[u8], ram: &[(u64, u64)], bootargs: Option<&str>, buf: &mut [u8]) -> Result<usize, DtError> {
    let fdt = Fdt::new(src).map_err(DtError::Source)?;
    let mut rsv = [(0u64, 0u64); spevisor_dtb::MAX_RESERVED_REGIONS];
    let mut n = 0;
    for e in fdt.reserved_entries() {
        let slot = rsv.get_mut(n).ok_or(DtError::Source(DtbError::TooMany {
            what: "reserved-memory entries",
            capacity: spevisor_dtb::MAX_RESERVED_REGIONS,
        }))?;
        *slot = e;
        n += 1;
    }
    let mut w = FdtWriter::new(buf, &rsv[..n]);
    copy_node(&mut w, &fdt.root(), 0, ram, bootargs)?;
    w.finish().map_err(DtError::Write)
}

/// A GIC binding specifier for `irq`.
fn spec(irq: &Irq) -> Result<[u32; 3], DtError> {
    let flags = match (irq.edge, irq.active_low) {
        (true, false) => IRQ_EDGE_RISING,
        (true, true) => IRQ_EDGE_FALLING,
        (false, false) => IRQ_LEVEL_HIGH,
        (false, true) => IRQ_LEVEL_LOW,
    };
    match irq.gsiv {
        g @ 16..=31 => Ok([GIC_PPI, g - 16, flags]),
        g @ 32..=1019 => Ok([GIC_SPI, g - 32, flags]),
        g => Err(DtError::Interrupt(g)),
    }
}

fn interrupts(w: &mut FdtWriter<'_>, irqs: &[Irq]) -> Result<(), DtError> {
    let mut cells = [0u32; 15];
    for (i, irq) in irqs.iter().enumerate().take(5) {
        cells[3 * i..3 * i + 3].copy_from_slice(&spec(irq)?);
    }
    w.prop_cells("interrupts", &cells[..3 * irqs.len().min(5)]);
    Ok(())
}

/// Writes a tree from ACPI facts into `buf`; returns its length.
pub fn from_acpi(f: &AcpiFacts, ram: &[(u64, u64)], bootargs: &str, buf: &mut [u8]) -> Result<usize, DtError> {
    let mut w = FdtWriter::new(buf, &[]);
    let mut name = NameBuf::new();
    w.begin_node("");
    w.prop_u32("#address-cells", 2);
    w.prop_u32("#size-cells", 2);
    w.prop_u32("interrupt-parent", GIC_PHANDLE);
    // `model`: "ACPI <OEM ID> <OEM table ID>" of the MADT, trimmed.
    name.push_str("ACPI ");
    for &b in f.oem.iter() {
        name.push_byte(if b.is_ascii_graphic() || b == b' ' { b } else { b'?' });
    }
    w.prop_str("model", name.as_str().trim_end());
    w.prop_str("compatible", "spevisor,acpi");

    let mut uart_path = NameBuf::new();
    w.begin_node("chosen");
    w.prop_str("bootargs", bootargs);
    w.prop_u64s(ACPI_RSDP_PROPERTY, &[f.rsdp]);
    if let Some(c) = f.console {
        uart_path.push_str("/serial@");
        uart_path.push_hex(c.base);
        w.prop_str("stdout-path", uart_path.as_str());
    }
    w.end_node();

    memory_node(&mut w, ram);

    w.begin_node("cpus");
    w.prop_u32("#address-cells", 2);
    w.prop_u32("#size-cells", 0);
    for &mpidr in &f.cpus[..f.cpu_count] {
        let mut n = NameBuf::new();
        n.push_str("cpu@");
        n.push_hex(mpidr);
        w.begin_node(n.as_str());
        w.prop_str("device_type", "cpu");
        w.prop_str("compatible", "arm,armv8");
        w.prop_u64s("reg", &[mpidr]);
        if f.psci_hvc.is_some() {
            w.prop_str("enable-method", "psci");
        }
        w.end_node();
    }
    w.end_node();

    let g = &f.gic;
    let mut n = NameBuf::new();
    n.push_str("interrupt-controller@");
    n.push_hex(g.gicd);
    w.begin_node(n.as_str());
    let mut reg = [0u64; 2 * (1 + crate::acpi::MAX_GICR + 3)];
    let mut len = 0;
    let mut push = |base: u64, size: u64| {
        reg[len] = base;
        reg[len + 1] = size;
        len += 2;
    };
    push(g.gicd, GIC_FRAME_SIZE);
    if g.version == 3 {
        w.prop_str("compatible", "arm,gic-v3");
        w.prop_u32("#redistributor-regions", g.gicr_count as u32);
        for &(b, s) in &g.gicr[..g.gicr_count] {
            push(b, s);
        }
    } else {
        w.prop_str("compatible", "arm,gic-400");
    }
    // GICC, GICH, GICV in the binding's order, as long as each is given.
    for frame in [g.gicc, g.gich, g.gicv] {
        if frame == 0 {
            break;
        }
        push(frame, GIC_FRAME_SIZE);
    }
    w.prop_u64s("reg", &reg[..len]);
    w.prop_u32("#interrupt-cells", 3);
    w.prop_empty("interrupt-controller");
    w.prop_u32("phandle", GIC_PHANDLE);
    if let Some(m) = g.maintenance {
        interrupts(&mut w, &[m])?;
    }
    w.end_node();

    w.begin_node("timer");
    w.prop_str("compatible", "arm,armv8-timer");
    let t = &f.timer;
    match t.virtual_el2 {
        Some(v) => interrupts(&mut w, &[t.secure_el1, t.nonsecure_el1, t.virtual_el1, t.el2, v])?,
        None => interrupts(&mut w, &[t.secure_el1, t.nonsecure_el1, t.virtual_el1, t.el2])?,
    }
    w.end_node();

    if let Some(p) = f.pmu {
        w.begin_node("pmu");
        w.prop_str("compatible", "arm,armv8-pmuv3");
        interrupts(&mut w, &[p])?;
        w.end_node();
    }
    if let Some(s) = f.spe {
        w.begin_node("spe");
        w.prop_str("compatible", "arm,statistical-profiling-extension-v1");
        interrupts(&mut w, &[s])?;
        w.end_node();
    }
    if let Some(hvc) = f.psci_hvc {
        w.begin_node("psci");
        w.prop_strs("compatible", &["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]);
        w.prop_str("method", if hvc { "hvc" } else { "smc" });
        w.end_node();
    }
    if let Some(c) = f.console {
        w.begin_node(&uart_path.as_str()[1..]);
        if c.pl011 {
            w.prop_strs("compatible", &["arm,pl011", "arm,primecell"]);
        } else {
            w.prop_str("compatible", "ns16550a");
            w.prop_u32("reg-shift", c.reg_shift);
            w.prop_u32("reg-io-width", c.reg_io_width);
        }
        w.prop_u64s("reg", &[c.base, UART_FRAME_SIZE]);
        w.end_node();
    }
    w.end_node();
    w.finish().map_err(DtError::Write)
}

/// A node name or path built without an allocator.
struct NameBuf {
    buf: [u8; 64],
    len: usize,
}

impl NameBuf {
    fn new() -> Self {
        Self { buf: [0; 64], len: 0 }
    }
    fn push_byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }
    fn push_str(&mut self, s: &str) {
        s.bytes().for_each(|b| self.push_byte(b));
    }
    fn push_hex(&mut self, v: u64) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
        for i in (0..digits).rev() {
            self.push_byte(DIGITS[((v >> (4 * i)) & 0xf) as usize]);
        }
    }
    fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::fixtures::{qemu_virt, RSDP};
    use spevisor_dtb::platform::{GicVersion, IntId, PsciConduit, UartKind};

    const RAM: &[(u64, u64)] = &[(0x4000_0000, 0x3e00_0000), (0x7e12_4000, 0x1edc000)];

    #[test]
    fn a_tree_from_acpi_parses_to_qemu_virts_platform() {
        let facts = crate::acpi::parse(&qemu_virt(2), RSDP).unwrap();
        let mut buf = [0u8; 8192];
        let len = from_acpi(&facts, RAM, "spevisor.scenario=demo", &mut buf).unwrap();
        let p = spevisor_dtb::parse(&buf[..len]).unwrap();
        assert_eq!(p.ram().iter().map(|r| (r.base, r.size)).collect::<Vec<_>>(), RAM);
        assert_eq!(p.gic.version, GicVersion::V3);
        assert_eq!(p.gic.distributor.base, 0x0800_0000);
        assert_eq!(p.gic.redistributors.as_slice()[0].base, 0x080a_0000);
        assert_eq!(p.gic.redistributors.as_slice()[0].size, 0x00f6_0000);
        assert_eq!(p.gic.maintenance.map(|i| i.intid), Some(IntId(25)));
        assert_eq!(
            [p.timer.secure_phys.intid, p.timer.nonsecure_phys.intid, p.timer.virt.intid, p.timer.hyp_phys.intid],
            [IntId(29), IntId(30), IntId(27), IntId(26)]
        );
        assert_eq!(p.pmu.map(|i| i.intid), Some(IntId(23)));
        assert_eq!(p.spe, None);
        assert_eq!(p.psci.map(|p| p.conduit), Some(PsciConduit::Smc));
        assert_eq!(p.cpus.mpidrs(), &[0, 1]);
        let uart = p.console.unwrap();
        assert_eq!((uart.kind, uart.region.base), (UartKind::Pl011, 0x0900_0000));
        assert_eq!(p.bootargs, Some("spevisor.scenario=demo"));
        assert_eq!(p.acpi_rsdp, Some(RSDP));
        assert_eq!(p.model, Some("ACPI BOCHS BXPC"));
    }

    /// A firmware's tree: memory, chosen (with bootargs) and a UART, and a
    /// memory reservation.
    fn firmware_tree(buf: &mut [u8]) -> usize {
        let mut w = FdtWriter::new(buf, &[(0x4800_0000, 0x1000)]);
        w.begin_node("");
        w.prop_u32("#address-cells", 2);
        w.prop_u32("#size-cells", 2);
        w.prop_str("model", "linux,dummy-virt");
        w.begin_node("memory@40000000");
        w.prop_str("device_type", "memory");
        w.prop_u64s("reg", &[0x4000_0000, 0x4000_0000]);
        w.end_node();
        w.begin_node("chosen");
        w.prop_str("bootargs", "old");
        w.prop_str("stdout-path", "/pl011@9000000");
        w.end_node();
        w.begin_node("pl011@9000000");
        w.prop_str("compatible", "arm,pl011");
        w.prop_u64s("reg", &[0x0900_0000, 0x1000]);
        w.end_node();
        w.end_node();
        w.finish().unwrap()
    }

    #[test]
    fn the_firmware_tree_gets_uefi_ram_and_the_load_options() {
        let mut src = [0u8; 4096];
        let n = firmware_tree(&mut src);
        let mut out = [0u8; 8192];
        let len = from_fdt(&src[..n], RAM, Some("spevisor.report=only"), &mut out).unwrap();
        let fdt = Fdt::new(&out[..len]).unwrap();
        assert_eq!(fdt.reserved_entries().collect::<Vec<_>>(), [(0x4800_0000, 0x1000)]);
        assert_eq!(fdt.root().children().filter(is_memory).count(), 1, "the firmware's memory node is replaced");
        let mem = fdt.find_node("/memory@40000000").unwrap();
        let reg: Vec<u64> = fdt.raw_reg(&mem).unwrap().flat_map(|(b, s)| [b, s]).collect();
        assert_eq!(reg, [0x4000_0000, 0x3e00_0000, 0x7e12_4000, 0x1edc000]);
        let chosen = fdt.find_node("/chosen").unwrap();
        assert_eq!(chosen.property("bootargs").and_then(|p| p.as_str()), Some("spevisor.report=only"));
        assert_eq!(chosen.property("stdout-path").and_then(|p| p.as_str()), Some("/pl011@9000000"));
        assert_eq!(fdt.root().property("model").and_then(|p| p.as_str()), Some("linux,dummy-virt"));
        assert!(fdt.find_node("/pl011@9000000").is_some());
        assert!(chosen.property(ACPI_RSDP_PROPERTY).is_none());
        // No load options: the firmware's bootargs stay.
        let len = from_fdt(&src[..n], RAM, None, &mut out).unwrap();
        let fdt = Fdt::new(&out[..len]).unwrap();
        assert_eq!(fdt.find_node("/chosen").unwrap().property("bootargs").and_then(|p| p.as_str()), Some("old"));
    }

    #[test]
    fn a_spi_ppi_and_an_out_of_range_gsiv() {
        let irq = |gsiv| Irq { gsiv, edge: false, active_low: false };
        assert_eq!(spec(&irq(23)), Ok([GIC_PPI, 7, IRQ_LEVEL_HIGH]));
        assert_eq!(spec(&Irq { gsiv: 33, edge: true, active_low: false }), Ok([GIC_SPI, 1, IRQ_EDGE_RISING]));
        assert_eq!(spec(&irq(1056)), Err(DtError::Interrupt(1056)));
        assert_eq!(spec(&irq(5)), Err(DtError::Interrupt(5)));
    }
}
