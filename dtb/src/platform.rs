//! The typed platform description the hypervisor boots with.

use crate::error::DtbError;
use crate::fdt::{Fdt, Node, Property};

/// Most RAM regions kept in a [`Platform`].
pub const MAX_MEMORY_REGIONS: usize = 16;
/// Most memory reservation map entries kept.
pub const MAX_RESERVED_REGIONS: usize = 16;
/// Most GICv3 redistributor regions kept.
pub const MAX_REDIST_REGIONS: usize = 8;
/// Most CPUs whose MPIDR is kept.
pub const MAX_CPUS: usize = 64;

/// First INTID of the private peripheral interrupts.
pub const PPI_BASE: u32 = 16;
/// First INTID of the shared peripheral interrupts.
pub const SPI_BASE: u32 = 32;
/// First INTID of the GICv3.1 extended PPI range.
pub const EPPI_BASE: u32 = 1056;
/// First INTID of the GICv3.1 extended SPI range.
pub const ESPI_BASE: u32 = 4096;

/// GIC binding interrupt type cell: shared peripheral interrupt.
const GIC_TYPE_SPI: u32 = 0;
/// GIC binding interrupt type cell: private peripheral interrupt.
const GIC_TYPE_PPI: u32 = 1;
/// GIC binding interrupt type cell: extended SPI (GICv3.1).
const GIC_TYPE_ESPI: u32 = 2;
/// GIC binding interrupt type cell: extended PPI (GICv3.1).
const GIC_TYPE_EPPI: u32 = 3;
/// Mask of the trigger type in the GIC binding's flags cell.
const IRQ_TYPE_MASK: u32 = 0xf;

const GICV3_COMPATIBLES: &[&str] = &["arm,gic-v3"];
const GICV2_COMPATIBLES: &[&str] =
    &["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a9-gic", "arm,cortex-a7-gic", "arm,pl390"];
const TIMER_COMPATIBLES: &[&str] = &["arm,armv8-timer", "arm,armv7-timer"];
const PMU_GENERIC_COMPATIBLE: &str = "arm,armv8-pmuv3";
const SPE_COMPATIBLES: &[&str] = &["arm,statistical-profiling-extension-v1"];
const PSCI_COMPATIBLES: &[&str] = &["arm,psci-1.0", "arm,psci-0.2", "arm,psci"];
const PL011_COMPATIBLE: &str = "arm,pl011";

/// A physical address range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// One past the last byte (cannot overflow: checked at parse time).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether `[addr, addr + len)` lies inside this region.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.base && addr.checked_add(len).is_some_and(|e| e <= self.end())
    }
}

/// A fixed-capacity list of regions.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RegionList<const N: usize> {
    items: [Region; N],
    len: usize,
}

impl<const N: usize> Default for RegionList<N> {
    fn default() -> Self {
        Self { items: [Region::default(); N], len: 0 }
    }
}

impl<const N: usize> RegionList<N> {
    /// The regions, in tree order.
    pub fn as_slice(&self) -> &[Region] {
        &self.items[..self.len]
    }

    fn push(&mut self, r: Region, what: &'static str) -> Result<(), DtbError> {
        let slot = self.items.get_mut(self.len).ok_or(DtbError::TooMany { what, capacity: N })?;
        *slot = r;
        self.len += 1;
        Ok(())
    }
}

impl<const N: usize> core::fmt::Debug for RegionList<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// The MPIDR affinity values (`reg`) of the CPU nodes, in tree order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CpuList {
    mpidrs: [u64; MAX_CPUS],
    len: usize,
}

impl CpuList {
    /// The MPIDR values.
    pub fn mpidrs(&self) -> &[u64] {
        &self.mpidrs[..self.len]
    }

    /// Number of CPUs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no CPU node was found.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl core::fmt::Debug for CpuList {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.mpidrs()).finish()
    }
}

/// A GIC interrupt ID (INTID): SGIs 0-15, PPIs 16-31, SPIs 32-1019, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IntId(pub u32);

impl IntId {
    /// The INTID of PPI `n` (`16 + n`).
    pub const fn ppi(n: u32) -> Self {
        IntId(PPI_BASE + n)
    }

    /// The INTID of SPI `n` (`32 + n`).
    pub const fn spi(n: u32) -> Self {
        IntId(SPI_BASE + n)
    }

    /// Whether this is a private (per-CPU) interrupt.
    pub const fn is_ppi(self) -> bool {
        (self.0 >= PPI_BASE && self.0 < SPI_BASE) || (self.0 >= EPPI_BASE && self.0 < EPPI_BASE + 64)
    }
}

/// Trigger type from the flags cell of a GIC interrupt specifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Not given (0).
    Unspecified,
    /// Rising edge (1).
    EdgeRising,
    /// Falling edge (2).
    EdgeFalling,
    /// Active-high level (4).
    LevelHigh,
    /// Active-low level (8).
    LevelLow,
    /// Any other value of the low four bits.
    Other(u8),
}

impl Trigger {
    fn from_flags(flags: u32) -> Self {
        match flags & IRQ_TYPE_MASK {
            0 => Trigger::Unspecified,
            1 => Trigger::EdgeRising,
            2 => Trigger::EdgeFalling,
            4 => Trigger::LevelHigh,
            8 => Trigger::LevelLow,
            other => Trigger::Other(other as u8),
        }
    }

    /// Whether the interrupt is edge-triggered.
    pub fn is_edge(self) -> bool {
        matches!(self, Trigger::EdgeRising | Trigger::EdgeFalling)
    }
}

/// An interrupt routed to the GIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupt {
    /// Its INTID.
    pub intid: IntId,
    /// Its trigger type.
    pub trigger: Trigger,
}

/// GIC architecture version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv2 (memory-mapped CPU interface).
    V2,
    /// GICv3 or later (system-register CPU interface, redistributors).
    V3,
}

/// The interrupt controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gic {
    /// Architecture version.
    pub version: GicVersion,
    /// Distributor (GICD) frame.
    pub distributor: Region,
    /// Redistributor (GICR) regions; empty on GICv2.
    pub redistributors: RegionList<MAX_REDIST_REGIONS>,
    /// `redistributor-stride`, if given (GICv3).
    pub redistributor_stride: Option<u64>,
    /// CPU interface (GICC) frame: always on GICv2, optional legacy on GICv3.
    pub cpu_interface: Option<Region>,
    /// Virtual interface control (GICH) frame.
    pub hyp_interface: Option<Region>,
    /// Virtual CPU interface (GICV) frame.
    pub vcpu_interface: Option<Region>,
    /// Virtual-interface maintenance interrupt.
    pub maintenance: Option<Interrupt>,
}

/// The generic timer's per-CPU interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    /// Secure EL1 physical timer.
    pub secure_phys: Interrupt,
    /// Non-secure EL1 physical timer.
    pub nonsecure_phys: Interrupt,
    /// EL1 virtual timer.
    pub virt: Interrupt,
    /// EL2 physical timer.
    pub hyp_phys: Interrupt,
    /// EL2 virtual timer (Armv8.1 VHE), if listed.
    pub hyp_virt: Option<Interrupt>,
    /// `clock-frequency`, for firmware that leaves CNTFRQ_EL0 unset.
    pub clock_frequency: Option<u32>,
}

/// How to call PSCI firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciConduit {
    /// `smc #0`.
    Smc,
    /// `hvc #0`.
    Hvc,
}

/// The PSCI binding the firmware claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PsciVersion {
    /// `arm,psci`: function IDs come from the node.
    V0_1,
    /// `arm,psci-0.2`: standard function IDs.
    V0_2,
    /// `arm,psci-1.0`.
    V1_0,
}

/// PSCI firmware interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Psci {
    /// Call instruction.
    pub conduit: PsciConduit,
    /// Newest binding listed in `compatible`.
    pub version: PsciVersion,
}

/// Which UART programming model the console has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartKind {
    /// Arm PrimeCell PL011.
    Pl011,
    /// 8250/16550-compatible (`ns16550a`, `snps,dw-apb-uart`, ...).
    Ns16550,
    /// Broadcom BCM2835 auxiliary "mini UART".
    Bcm2835Aux,
}

/// The console UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uart<'a> {
    /// Programming model.
    pub kind: UartKind,
    /// Register frame.
    pub region: Region,
    /// `reg-shift` (register stride is `1 << reg_shift`), 0 if absent.
    pub reg_shift: u32,
    /// `reg-io-width` in bytes, 1 if absent.
    pub reg_io_width: u32,
    /// Options after `:` in `stdout-path` (`115200n8`), if any.
    pub options: Option<&'a str>,
}

/// Everything the hypervisor needs to know about the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platform<'a> {
    /// Root `model`.
    pub model: Option<&'a str>,
    /// First root `compatible` string.
    pub compatible: Option<&'a str>,
    /// RAM from every enabled `/memory` node (never empty).
    pub memory: RegionList<MAX_MEMORY_REGIONS>,
    /// Memory reservation map entries.
    pub reserved: RegionList<MAX_RESERVED_REGIONS>,
    /// Console UART, if one could be found.
    pub console: Option<Uart<'a>>,
    /// Interrupt controller.
    pub gic: Gic,
    /// Generic timer interrupts.
    pub timer: Timer,
    /// PMU overflow interrupt (first listed), if a PMU node exists.
    pub pmu: Option<Interrupt>,
    /// SPE buffer-management interrupt, if an SPE node exists.
    pub spe: Option<Interrupt>,
    /// PSCI firmware, if described.
    pub psci: Option<Psci>,
    /// The `device_type = "cpu"` nodes under `/cpus`.
    pub cpus: CpuList,
    /// `/chosen/bootargs`, the kernel command line, if present and a string.
    pub bootargs: Option<&'a str>,
    /// `/chosen/linux,initrd-start` .. `linux,initrd-end` (what QEMU's
    /// `-initrd` loaded), if both are present and the range is not empty.
    pub initrd: Option<Region>,
    /// `/chosen/spevisor,acpi-rsdp`: the tree was written by spevisor's EFI
    /// stub from the ACPI tables whose RSDP is here (efi/src/dt.rs), not
    /// given by firmware.
    pub acpi_rsdp: Option<u64>,
}

impl<'a> Platform<'a> {
    /// RAM regions, in tree order.
    pub fn ram(&self) -> &[Region] {
        self.memory.as_slice()
    }

    /// Total RAM in bytes.
    pub fn ram_size(&self) -> u64 {
        self.ram().iter().fold(0, |t, r| t.saturating_add(r.size))
    }

    /// Lowest RAM address.
    pub fn ram_base(&self) -> u64 {
        self.ram().iter().map(|r| r.base).min().unwrap_or(0)
    }

    /// The largest RAM region (first of equals).
    pub fn largest_ram(&self) -> Region {
        self.ram().iter().copied().reduce(|a, b| if b.size > a.size { b } else { a }).unwrap_or_default()
    }

    /// Whether `[addr, addr + len)` lies inside one RAM region.
    pub fn ram_contains(&self, addr: u64, len: u64) -> bool {
        self.ram().iter().any(|r| r.contains(addr, len))
    }

    /// Number of CPUs described.
    pub fn cpu_count(&self) -> usize {
        self.cpus.len()
    }

    /// Parses `dtb` (see [`crate::parse`]).
    pub fn parse(dtb: &'a [u8]) -> Result<Self, DtbError> {
        let fdt = Fdt::new(dtb)?;
        let root = fdt.root();
        let str_prop = |n: &Node<'a>, name| n.property(name).and_then(|p: Property<'a>| p.as_str());

        let mut reserved = RegionList::default();
        for (base, size) in fdt.reserved_entries() {
            reserved.push(Region { base, size }, "reserved-memory entries")?;
        }

        let gic_node = fdt
            .find_compatible(GICV3_COMPATIBLES)
            .or_else(|| fdt.find_compatible(GICV2_COMPATIBLES))
            .ok_or(DtbError::NoGic)?;
        let ctx = Ctx { fdt, gic: gic_node };
        let gic = ctx.gic()?;
        let timer = ctx.timer()?;
        let pmu = match ctx.pmu_node() {
            Some(n) => Some(ctx.first_interrupt(&n)?),
            None => None,
        };
        let spe = match fdt.find_compatible(SPE_COMPATIBLES) {
            Some(n) => Some(ctx.first_interrupt(&n)?),
            None => None,
        };

        ctx.reserved_memory(&mut reserved)?;
        let chosen = fdt.find_node("/chosen");
        Ok(Platform {
            model: str_prop(&root, "model"),
            compatible: str_prop(&root, "compatible"),
            memory: ctx.memory()?,
            reserved,
            console: ctx.console()?,
            gic,
            timer,
            pmu,
            spe,
            psci: ctx.psci()?,
            cpus: ctx.cpus()?,
            bootargs: chosen.as_ref().and_then(|c| str_prop(c, "bootargs")),
            initrd: chosen.as_ref().and_then(|c| {
                let start = c.property("linux,initrd-start")?.as_u64()?;
                let end = c.property("linux,initrd-end")?.as_u64()?;
                (end > start).then(|| Region { base: start, size: end - start })
            }),
            acpi_rsdp: chosen.as_ref().and_then(|c| c.property("spevisor,acpi-rsdp")?.as_u64()),
        })
    }
}

/// Parsing context: the tree and its GIC node.
struct Ctx<'a> {
    fdt: Fdt<'a>,
    gic: Node<'a>,
}

impl<'a> Ctx<'a> {
    /// `reg` of `node` as CPU physical regions.
    fn regions(&self, node: &Node<'a>) -> Result<impl Iterator<Item = Result<Region, DtbError>> + '_, DtbError> {
        let node = *node;
        Ok(self.fdt.raw_reg(&node)?.map(move |(addr, size)| {
            let base = self.fdt.translate(&node, addr)?;
            if base.checked_add(size).is_none() {
                return Err(node.bad("reg", "region wraps around the address space"));
            }
            Ok(Region { base, size })
        }))
    }

    /// The `index`th `reg` entry of `node`.
    fn region(&self, node: &Node<'a>, index: usize) -> Result<Option<Region>, DtbError> {
        self.regions(node)?.nth(index).transpose()
    }

    /// Adds the static `/reserved-memory` children (those with `reg`; firmware
    /// carve-outs such as OP-TEE or TF-A, `no-map` or not) to `out`: nothing
    /// may map them as ordinary RAM or hand them out.
    fn reserved_memory(&self, out: &mut RegionList<MAX_RESERVED_REGIONS>) -> Result<(), DtbError> {
        let Some(parent) = self.fdt.find_node("/reserved-memory") else { return Ok(()) };
        for child in parent.children().filter(|c| c.is_enabled()) {
            if child.property("reg").is_none() {
                continue; // dynamically placed (size/alignment only)
            }
            for r in self.regions(&child)? {
                out.push(r?, "reserved-memory entries")?;
            }
        }
        Ok(())
    }

    fn memory(&self) -> Result<RegionList<MAX_MEMORY_REGIONS>, DtbError> {
        let mut list = RegionList::default();
        let root = self.fdt.root();
        for node in root.children() {
            let is_memory = node.property("device_type").and_then(|p| p.as_str()) == Some("memory")
                || node.base_name() == b"memory";
            if !is_memory || !node.is_enabled() {
                continue;
            }
            for region in self.regions(&node)? {
                let region = region?;
                if region.size != 0 {
                    list.push(region, "memory regions")?;
                }
            }
        }
        if list.len == 0 {
            return Err(DtbError::NoMemory);
        }
        Ok(list)
    }

    /// Decodes `node`'s `interrupts`, checking they go to the GIC.
    fn interrupts(&self, node: &Node<'a>) -> Result<impl Iterator<Item = Interrupt> + 'a, DtbError> {
        let chain = self.fdt.ancestry(node);
        let parent_handle = (0..chain.len())
            .rev()
            .filter_map(|d| chain.get(d))
            .find_map(|n| n.property("interrupt-parent"))
            .and_then(|p| p.as_u32());
        let parent = parent_handle.and_then(|h| self.fdt.node_by_phandle(h));
        // A node whose interrupts have no parent at all cannot be routed.
        match parent {
            Some(p) if p.offset() == self.gic.offset() => {}
            _ => return Err(DtbError::InterruptParentNotGic { node: node.error_name() }),
        }
        let cells = self
            .gic
            .u32_property("#interrupt-cells")?
            .ok_or(DtbError::MissingProperty { node: self.gic.error_name(), property: "#interrupt-cells" })?;
        if !(3..=4).contains(&cells) {
            return Err(self.gic.bad("#interrupt-cells", "GIC specifiers need 3 or 4 cells"));
        }
        let prop = node.require("interrupts")?;
        let entry = 4 * cells as usize;
        if prop.value.is_empty() || prop.value.len() % entry != 0 {
            return Err(node.bad("interrupts", "length is not a multiple of the specifier size"));
        }
        for spec in prop.value.chunks_exact(entry) {
            decode_specifier(spec)
                .ok_or(node.bad("interrupts", "unknown GIC interrupt type or number out of range"))?;
        }
        Ok(prop.value.chunks_exact(entry).filter_map(decode_specifier))
    }

    fn first_interrupt(&self, node: &Node<'a>) -> Result<Interrupt, DtbError> {
        self.interrupts(node)?.next().ok_or(node.bad("interrupts", "empty"))
    }

    fn gic(&self) -> Result<Gic, DtbError> {
        let node = &self.gic;
        let version =
            if GICV3_COMPATIBLES.iter().any(|c| node.is_compatible(c)) { GicVersion::V3 } else { GicVersion::V2 };
        let distributor = self.region(node, 0)?.ok_or(node.bad("reg", "no distributor frame"))?;
        let mut redistributors = RegionList::default();
        // Index of the first reg entry after GICD (and GICv3's GICRs).
        let mut next = 1;
        let mut redistributor_stride = None;
        if version == GicVersion::V3 {
            let count = node.u32_property("#redistributor-regions")?.unwrap_or(1) as usize;
            if count == 0 {
                return Err(node.bad("#redistributor-regions", "zero"));
            }
            for i in 0..count {
                let r = self.region(node, 1 + i)?.ok_or(node.bad("reg", "missing redistributor region"))?;
                redistributors.push(r, "redistributor regions")?;
            }
            next = 1 + count;
            redistributor_stride = match node.property("redistributor-stride") {
                None => None,
                Some(p) => Some(p.as_u64().ok_or(node.bad("redistributor-stride", "not 1 or 2 cells"))?),
            };
        }
        let cpu_interface = self.region(node, next)?;
        if version == GicVersion::V2 && cpu_interface.is_none() {
            return Err(node.bad("reg", "GICv2 without a CPU interface frame"));
        }
        let maintenance = match node.property("interrupts") {
            Some(_) => Some(self.first_interrupt(node)?),
            None => None,
        };
        Ok(Gic {
            version,
            distributor,
            redistributors,
            redistributor_stride,
            cpu_interface,
            hyp_interface: self.region(node, next + 1)?,
            vcpu_interface: self.region(node, next + 2)?,
            maintenance,
        })
    }

    fn timer(&self) -> Result<Timer, DtbError> {
        let node = self.fdt.find_compatible(TIMER_COMPATIBLES).ok_or(DtbError::NoTimer)?;
        let mut irqs = self.interrupts(&node)?;
        let mut next = || irqs.next().ok_or(node.bad("interrupts", "fewer than four timer interrupts"));
        Ok(Timer {
            secure_phys: next()?,
            nonsecure_phys: next()?,
            virt: next()?,
            hyp_phys: next()?,
            hyp_virt: next().ok(),
            clock_frequency: node.u32_property("clock-frequency")?,
        })
    }

    /// The generic PMUv3 node, else a CPU-specific `arm,<core>-pmu` one.
    fn pmu_node(&self) -> Option<Node<'a>> {
        self.fdt.find_compatible(&[PMU_GENERIC_COMPATIBLE]).or_else(|| {
            self.fdt.nodes().find(|n| {
                n.is_enabled()
                    && n.property("compatible")
                        .is_some_and(|p| p.strings().any(|s| s.starts_with(b"arm,") && s.ends_with(b"-pmu")))
            })
        })
    }

    fn psci(&self) -> Result<Option<Psci>, DtbError> {
        let Some(node) = self.fdt.find_compatible(PSCI_COMPATIBLES) else {
            return Ok(None);
        };
        let conduit = match node.require("method")?.as_str() {
            Some("smc") => PsciConduit::Smc,
            Some("hvc") => PsciConduit::Hvc,
            _ => return Err(node.bad("method", "neither \"smc\" nor \"hvc\"")),
        };
        let version = if node.is_compatible("arm,psci-1.0") {
            PsciVersion::V1_0
        } else if node.is_compatible("arm,psci-0.2") {
            PsciVersion::V0_2
        } else {
            PsciVersion::V0_1
        };
        Ok(Some(Psci { conduit, version }))
    }

    fn cpus(&self) -> Result<CpuList, DtbError> {
        let mut list = CpuList { mpidrs: [0; MAX_CPUS], len: 0 };
        let Some(cpus) = self.fdt.find_node("/cpus") else {
            return Ok(list);
        };
        for cpu in cpus.children() {
            if cpu.property("device_type").and_then(|p| p.as_str()) != Some("cpu") {
                continue;
            }
            let (mpidr, _) = self.fdt.raw_reg(&cpu)?.next().ok_or(cpu.bad("reg", "empty"))?;
            let slot = list.mpidrs.get_mut(list.len).ok_or(DtbError::TooMany { what: "CPUs", capacity: MAX_CPUS })?;
            *slot = mpidr;
            list.len += 1;
        }
        Ok(list)
    }

    /// The console: `/chosen/stdout-path` if it names a UART we can drive
    /// (a PL011 or a 16550; not the BCM2835 mini UART), else the first
    /// enabled PL011.
    fn console(&self) -> Result<Option<Uart<'a>>, DtbError> {
        let chosen = self.fdt.find_node("/chosen");
        let stdout = chosen.and_then(|c| {
            c.property("stdout-path").or_else(|| c.property("linux,stdout-path")).and_then(|p| p.as_str())
        });
        if let Some(spec) = stdout {
            let (path, options) = match spec.split_once(':') {
                Some((p, o)) => (p, Some(o)),
                None => (spec, None),
            };
            if let Some(node) = self.resolve_path(path) {
                if let Some(uart) = self.uart(&node, options)?.filter(|u| u.kind != UartKind::Bcm2835Aux) {
                    return Ok(Some(uart));
                }
            }
        }
        match self.fdt.find_compatible(&[PL011_COMPATIBLE]) {
            Some(node) => self.uart(&node, None),
            None => Ok(None),
        }
    }

    /// Resolves an absolute path or an `/aliases` name (optionally followed
    /// by `/more/components`).
    fn resolve_path(&self, path: &str) -> Option<Node<'a>> {
        if path.starts_with('/') {
            return self.fdt.find_node(path);
        }
        let (alias, rest) = path.split_once('/').unwrap_or((path, ""));
        let target = self.fdt.find_node("/aliases")?.property(alias)?.as_str()?;
        let node = self.fdt.find_node(target)?;
        rest.split('/')
            .filter(|c| !c.is_empty())
            .try_fold(node, |n, c| n.children().find(|ch| ch.name() == c.as_bytes() || ch.base_name() == c.as_bytes()))
    }

    fn uart(&self, node: &Node<'a>, options: Option<&'a str>) -> Result<Option<Uart<'a>>, DtbError> {
        let kind = if node.is_compatible(PL011_COMPATIBLE) {
            UartKind::Pl011
        } else if node.is_compatible("brcm,bcm2835-aux-uart") {
            UartKind::Bcm2835Aux
        } else if ["ns16550a", "ns16550", "snps,dw-apb-uart"].iter().any(|c| node.is_compatible(c)) {
            UartKind::Ns16550
        } else {
            return Ok(None);
        };
        if !node.is_enabled() {
            return Ok(None);
        }
        let region = self.region(node, 0)?.ok_or(node.bad("reg", "empty"))?;
        Ok(Some(Uart {
            kind,
            region,
            reg_shift: node.u32_property("reg-shift")?.unwrap_or(0),
            reg_io_width: node.u32_property("reg-io-width")?.unwrap_or(1),
            options,
        }))
    }
}

/// Decodes one GIC interrupt specifier `<type number flags [...]>`.
fn decode_specifier(spec: &[u8]) -> Option<Interrupt> {
    let cell = |i: usize| crate::fdt::be32(spec, 4 * i);
    let (kind, number, flags) = (cell(0)?, cell(1)?, cell(2)?);
    let (base, limit) = match kind {
        GIC_TYPE_SPI => (SPI_BASE, 988),
        GIC_TYPE_PPI => (PPI_BASE, 16),
        GIC_TYPE_ESPI => (ESPI_BASE, 1024),
        GIC_TYPE_EPPI => (EPPI_BASE, 64),
        _ => return None,
    };
    // `then`, not `then_some`: the sum must not be formed for a number past
    // the limit (it can overflow; fuzz/regressions/dtb_parse/).
    (number < limit).then(|| Interrupt { intid: IntId(base + number), trigger: Trigger::from_flags(flags) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cells: [u32; 3]) -> [u8; 12] {
        let mut b = [0u8; 12];
        for (i, c) in cells.iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&c.to_be_bytes());
        }
        b
    }

    /// Found by the `dtb_parse` fuzz target: an interrupt number near
    /// u32::MAX overflowed while forming an INTID the range check refuses.
    #[test]
    fn interrupt_numbers_past_their_range_are_refused() {
        for kind in [GIC_TYPE_SPI, GIC_TYPE_PPI, GIC_TYPE_ESPI, GIC_TYPE_EPPI] {
            assert_eq!(decode_specifier(&spec([kind, u32::MAX, 4])), None);
            assert_eq!(decode_specifier(&spec([kind, u32::MAX - SPI_BASE + 1, 4])), None);
        }
        let spi = decode_specifier(&spec([GIC_TYPE_SPI, 987, 4])).unwrap();
        assert_eq!(spi.intid, IntId(SPI_BASE + 987));
        assert_eq!(decode_specifier(&spec([GIC_TYPE_SPI, 988, 4])), None);
    }
}
