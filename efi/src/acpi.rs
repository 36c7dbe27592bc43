//! The few ACPI tables an Arm server describes itself with, read
//! defensively: RSDP → XSDT → MADT (GIC frames, CPUs, PMU/SPE/maintenance
//! interrupts in the GICC entries), GTDT (timer PPIs), SPCR (console) and
//! FADT (PSCI conduit). Every length is checked against the table that holds
//! it and every checksum is verified; a bad table is an [`AcpiError`] naming
//! the table and the fault, never a hang or a read past the table.
//!
//! Layouts: ACPI 6.5, sections 5.2.5 (RSDP), 5.2.8 (XSDT), 5.2.9 (FADT,
//! `ARM_BOOT_ARCH` at offset 129), 5.2.12 (MADT; GICC 5.2.12.14, GICD
//! 5.2.12.15, GICR 5.2.12.17), 5.2.25 (GTDT); SPCR from Microsoft's Serial
//! Port Console Redirection Table specification.
//!
//! Why not the rust-osdev `acpi` crate: spevisor needs five tables read from
//! byte slices, with no allocator and no AML, on the host for unit tests and
//! under libFuzzer; the crate is built around a mapping handler and an AML
//! context, and its SPCR and GTDT coverage would have had to be checked
//! version by version. About 400 lines here, each field named after the
//! specification, were the smaller risk.

use core::fmt;

/// Physical memory as the parser sees it: `len` bytes at `addr`, or `None`
/// if they cannot be read. The EFI stub reads UEFI's identity map; tests
/// read a byte vector.
pub trait PhysMem {
    /// The bytes at `[addr, addr + len)`.
    fn bytes(&self, addr: u64, len: usize) -> Option<&[u8]>;
}

/// Largest table accepted (QEMU's are a few KiB; a big server's MADT with
/// hundreds of GICC entries stays well below).
pub const MAX_TABLE_LEN: u32 = 1 << 20;
/// Most CPUs kept (as many as the device tree parser keeps).
pub const MAX_CPUS: usize = spevisor_dtb::MAX_CPUS;
/// Most GICR discovery ranges kept.
pub const MAX_GICR: usize = spevisor_dtb::MAX_REDIST_REGIONS;

/// The common description header (5.2.6).
const SDT_HEADER_LEN: usize = 36;
const RSDP_SIGNATURE: &[u8; 8] = b"RSD PTR ";
/// ACPI 1.0 RSDP: the part the first checksum covers.
const RSDP_V1_LEN: usize = 20;
/// ACPI 2.0+ RSDP with the XSDT address and the extended checksum.
const RSDP_V2_LEN: usize = 36;
const RSDP_REVISION: usize = 15;
const RSDP_LENGTH: usize = 20;
const RSDP_XSDT: usize = 24;

const MADT_ENTRIES: usize = 44;
const MADT_GICC: u8 = 0x0b;
const MADT_GICD: u8 = 0x0c;
const MADT_GICR: u8 = 0x0e;
/// GICC entry: ACPI 6.0 length (through the efficiency class), and the
/// offsets read from it.
const GICC_LEN_MIN: usize = 76;
const GICC_FLAGS: usize = 12;
const GICC_PERF_GSIV: usize = 20;
const GICC_BASE: usize = 32;
const GICV_BASE: usize = 40;
const GICH_BASE: usize = 48;
const GICC_VGIC_MAINT_GSIV: usize = 56;
const GICC_MPIDR: usize = 68;
/// ACPI 6.3: SPE overflow interrupt (2 bytes, 0 = none) in what ACPI 6.0
/// left reserved (zero) before the entry's 80th byte.
const GICC_SPE_GSIV: usize = 78;
const GICC_FLAG_ENABLED: u32 = 1 << 0;
const GICC_FLAG_PERF_EDGE: u32 = 1 << 1;
const GICC_FLAG_VGIC_EDGE: u32 = 1 << 2;
/// Affinity fields of MPIDR (Aff3 in bits 39:32, Aff2..0 in 23:0).
const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;
const GICD_LEN: usize = 24;
const GICD_BASE: usize = 8;
const GICD_VERSION: usize = 20;
const GICR_LEN: usize = 16;
const GICR_BASE: usize = 4;
const GICR_LENGTH: usize = 12;

const GTDT_SECURE_EL1: usize = 48;
const GTDT_NONSECURE_EL1: usize = 56;
const GTDT_VIRTUAL_EL1: usize = 64;
const GTDT_EL2: usize = 72;
/// Through the EL2 timer's flags (ACPI 5.1).
const GTDT_LEN_MIN: usize = 80;
/// ACPI 6.3: the EL2 virtual timer, after the platform-timer fields.
const GTDT_VIRTUAL_EL2: usize = 96;
const GTDT_LEN_VIRTUAL_EL2: usize = 104;
const GTDT_FLAG_EDGE: u32 = 1 << 0;
const GTDT_FLAG_ACTIVE_LOW: u32 = 1 << 1;

const SPCR_INTERFACE: usize = 36;
const SPCR_BASE_GAS: usize = 40;
const SPCR_LEN_MIN: usize = 52;
/// Generic address structure: space ID, bit width, bit offset, access size,
/// address.
const GAS_SPACE_MEMORY: u8 = 0;
const GAS_BIT_WIDTH: usize = 1;
const GAS_ACCESS_SIZE: usize = 3;
const GAS_ADDRESS: usize = 4;
/// SPCR interface types (the DBG2 port subtypes).
const SPCR_16550: u8 = 0x00;
const SPCR_16450: u8 = 0x01;
const SPCR_PL011: u8 = 0x03;
const SPCR_SBSA_32BIT: u8 = 0x0d;
const SPCR_SBSA: u8 = 0x0e;
const SPCR_16550_GAS: u8 = 0x12;

const FADT_ARM_BOOT_ARCH: usize = 129;
const FADT_ARM_PSCI_COMPLIANT: u16 = 1 << 0;
const FADT_ARM_PSCI_USE_HVC: u16 = 1 << 1;

/// First PPI (GSIV = INTID on Arm).
const GSIV_PPI_FIRST: u32 = 16;

/// Why the tables could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// The RSDP at this address is unreadable or invalid.
    Rsdp { addr: u64, why: &'static str },
    /// A table is unreadable, truncated, or fails its checksum.
    Table { signature: [u8; 4], addr: u64, why: &'static str },
    /// A required table is not in the XSDT.
    Missing([u8; 4]),
}

fn sig(s: &[u8; 4]) -> &str {
    core::str::from_utf8(s).unwrap_or("????")
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcpiError::Rsdp { addr, why } => write!(f, "ACPI RSDP at {addr:#x}: {why}"),
            AcpiError::Table { signature, addr, why } => {
                write!(f, "ACPI table {} at {addr:#x}: {why}", sig(signature))
            }
            AcpiError::Missing(s) => write!(f, "no ACPI {} table in the XSDT", sig(s)),
        }
    }
}

/// An interrupt as ACPI gives it: a GSIV (the INTID on Arm) and its trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq {
    pub gsiv: u32,
    pub edge: bool,
    pub active_low: bool,
}

impl Irq {
    /// Whether the GSIV is a PPI or an SPI (what a device tree specifier can
    /// say with the GIC binding's first two types).
    pub fn is_routable(&self) -> bool {
        (GSIV_PPI_FIRST..spevisor_dtb::platform::EPPI_BASE).contains(&self.gsiv)
    }
}

/// The GIC, from the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GicFacts {
    /// 2 or 3 (3 also for GICv4).
    pub version: u8,
    pub gicd: u64,
    /// GICR discovery ranges (base, length); GICv3 only.
    pub gicr: [(u64, u64); MAX_GICR],
    pub gicr_count: usize,
    /// From the boot CPU's (the first enabled) GICC entry; 0 = absent.
    pub gicc: u64,
    pub gich: u64,
    pub gicv: u64,
    pub maintenance: Option<Irq>,
}

/// The console, from the SPCR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsoleFacts {
    pub pl011: bool,
    pub base: u64,
    /// Register stride `1 << reg_shift` (16550 only).
    pub reg_shift: u32,
    /// Access width in bytes (16550 only).
    pub reg_io_width: u32,
}

/// The generic timer's interrupts, from the GTDT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerFacts {
    pub secure_el1: Irq,
    pub nonsecure_el1: Irq,
    pub virtual_el1: Irq,
    pub el2: Irq,
    pub virtual_el2: Option<Irq>,
}

/// Everything spevisor takes from ACPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcpiFacts {
    pub rsdp: u64,
    /// The MADT's OEM ID and OEM table ID, for the device tree's `model`.
    pub oem: [u8; 14],
    pub gic: GicFacts,
    /// MPIDR affinity of each enabled CPU, in MADT order.
    pub cpus: [u64; MAX_CPUS],
    pub cpu_count: usize,
    /// PMU overflow interrupt (GICC performance interrupt), if given.
    pub pmu: Option<Irq>,
    /// SPE buffer interrupt (GICC, ACPI 6.3+), if given.
    pub spe: Option<Irq>,
    pub timer: TimerFacts,
    pub console: Option<ConsoleFacts>,
    /// PSCI conduit (`true` = HVC), if the FADT says PSCI is there.
    pub psci_hvc: Option<bool>,
}

fn le16(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn le32(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn le64(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// Whether the bytes sum to 0 modulo 256 (every ACPI checksum).
pub fn checksum_ok(b: &[u8]) -> bool {
    b.iter().fold(0u8, |s, &x| s.wrapping_add(x)) == 0
}

/// Reads the XSDT address out of the RSDP at `addr` (ACPI 2.0+ only: the
/// 32-bit RSDT of ACPI 1.0 is refused, as Arm's server rules require 2.0+).
pub fn xsdt_address(mem: &dyn PhysMem, addr: u64) -> Result<u64, AcpiError> {
    let bad = |why| AcpiError::Rsdp { addr, why };
    let v1 = mem.bytes(addr, RSDP_V1_LEN).ok_or(bad("not readable"))?;
    if &v1[..8] != RSDP_SIGNATURE {
        return Err(bad("no \"RSD PTR \" signature"));
    }
    if !checksum_ok(v1) {
        return Err(bad("bad checksum (first 20 bytes)"));
    }
    if v1[RSDP_REVISION] < 2 {
        return Err(bad("revision < 2: ACPI 1.0 has no XSDT"));
    }
    let full = mem.bytes(addr, RSDP_V2_LEN).ok_or(bad("not readable"))?;
    let len = le32(full, RSDP_LENGTH).ok_or(bad("truncated"))? as usize;
    if len < RSDP_V2_LEN {
        return Err(bad("length shorter than an ACPI 2.0 RSDP"));
    }
    let full = mem.bytes(addr, len).ok_or(bad("length past readable memory"))?;
    if !checksum_ok(full) {
        return Err(bad("bad extended checksum"));
    }
    let xsdt = le64(full, RSDP_XSDT).ok_or(bad("truncated"))?;
    if xsdt == 0 {
        return Err(bad("no XSDT address"));
    }
    Ok(xsdt)
}

/// The table with the header at `addr`, whole and checked (length within
/// [36, [`MAX_TABLE_LEN`]], readable, checksum, and signature `want` if
/// given).
pub fn table<'m>(mem: &'m dyn PhysMem, addr: u64, want: Option<&[u8; 4]>) -> Result<&'m [u8], AcpiError> {
    let head = mem.bytes(addr, SDT_HEADER_LEN);
    let mut signature = [0u8; 4];
    if let Some(h) = head {
        signature.copy_from_slice(&h[..4]);
    }
    let bad = |why| AcpiError::Table { signature: *want.unwrap_or(&signature), addr, why };
    let head = head.ok_or(bad("header not readable"))?;
    if want.is_some_and(|w| *w != signature) {
        return Err(bad("wrong signature"));
    }
    let len = le32(head, 4).ok_or(bad("truncated"))?;
    if (len as usize) < SDT_HEADER_LEN || len > MAX_TABLE_LEN {
        return Err(bad("length outside 36 bytes..1 MiB"));
    }
    let t = mem.bytes(addr, len as usize).ok_or(bad("length past readable memory"))?;
    if !checksum_ok(t) {
        return Err(bad("bad checksum"));
    }
    Ok(t)
}

/// The XSDT's entries: (signature, address) of each table it lists whose
/// header is readable.
fn find_table<'m>(mem: &'m dyn PhysMem, xsdt: &[u8], sig: &[u8; 4]) -> Result<Option<(u64, &'m [u8])>, AcpiError> {
    for entry in xsdt[SDT_HEADER_LEN..].chunks_exact(8) {
        let addr = u64::from_le_bytes(entry.try_into().unwrap_or([0; 8]));
        match mem.bytes(addr, 4) {
            Some(s) if s == sig => return table(mem, addr, Some(sig)).map(|t| Some((addr, t))),
            _ => {}
        }
    }
    Ok(None)
}

fn gsiv_irq(gsiv: u32, edge: bool, active_low: bool) -> Option<Irq> {
    (gsiv != 0).then_some(Irq { gsiv, edge, active_low })
}

/// Reads RSDP → XSDT → MADT, GTDT, SPCR, FADT.
pub fn parse(mem: &dyn PhysMem, rsdp: u64) -> Result<AcpiFacts, AcpiError> {
    let xsdt_addr = xsdt_address(mem, rsdp)?;
    let xsdt = table(mem, xsdt_addr, Some(b"XSDT"))?;
    if !(xsdt.len() - SDT_HEADER_LEN).is_multiple_of(8) {
        return Err(AcpiError::Table {
            signature: *b"XSDT",
            addr: xsdt_addr,
            why: "entries not a multiple of 8 bytes",
        });
    }
    let (madt_addr, madt) = find_table(mem, xsdt, b"APIC")?.ok_or(AcpiError::Missing(*b"APIC"))?;
    let (gtdt_addr, gtdt) = find_table(mem, xsdt, b"GTDT")?.ok_or(AcpiError::Missing(*b"GTDT"))?;
    let spcr = find_table(mem, xsdt, b"SPCR")?;
    let fadt = find_table(mem, xsdt, b"FACP")?;

    let mut oem = [0u8; 14];
    oem.copy_from_slice(&madt[10..24]);
    let mut facts = AcpiFacts {
        rsdp,
        oem,
        gic: GicFacts {
            version: 0,
            gicd: 0,
            gicr: [(0, 0); MAX_GICR],
            gicr_count: 0,
            gicc: 0,
            gich: 0,
            gicv: 0,
            maintenance: None,
        },
        cpus: [0; MAX_CPUS],
        cpu_count: 0,
        pmu: None,
        spe: None,
        timer: timer(gtdt, gtdt_addr)?,
        console: match spcr {
            Some((addr, t)) => console(t, addr)?,
            None => None,
        },
        psci_hvc: match fadt {
            Some((_, t)) => psci(t),
            None => None,
        },
    };
    madt_entries(madt, madt_addr, &mut facts)?;
    Ok(facts)
}

fn madt_entries(madt: &[u8], addr: u64, facts: &mut AcpiFacts) -> Result<(), AcpiError> {
    let bad = |why| AcpiError::Table { signature: *b"APIC", addr, why };
    if madt.len() < MADT_ENTRIES {
        return Err(bad("shorter than its fixed fields"));
    }
    let mut gicd_seen = false;
    let mut at = MADT_ENTRIES;
    while at < madt.len() {
        let kind = madt[at];
        let len = *madt.get(at + 1).ok_or(bad("entry header past the table's end"))? as usize;
        if len < 2 {
            return Err(bad("entry of length < 2 (would never end)"));
        }
        let e = madt.get(at..at + len).ok_or(bad("entry past the table's end"))?;
        match kind {
            MADT_GICC => {
                if len < GICC_LEN_MIN {
                    return Err(bad("GICC entry shorter than ACPI 6.0's"));
                }
                let flags = le32(e, GICC_FLAGS).ok_or(bad("GICC"))?;
                if flags & GICC_FLAG_ENABLED == 0 {
                    // Disabled (or only online-capable, ACPI 6.5 bit 3): not
                    // a CPU to boot.
                    at += len;
                    continue;
                }
                let first = facts.cpu_count == 0;
                let slot =
                    facts.cpus.get_mut(facts.cpu_count).ok_or(bad("more enabled CPUs than spevisor keeps (64)"))?;
                *slot = le64(e, GICC_MPIDR).ok_or(bad("GICC"))? & MPIDR_AFFINITY_MASK;
                facts.cpu_count += 1;
                if first {
                    // The boot CPU's entry names the frames and the
                    // per-CPU interrupts (the same PPIs on every CPU).
                    facts.gic.gicc = le64(e, GICC_BASE).ok_or(bad("GICC"))?;
                    facts.gic.gicv = le64(e, GICV_BASE).ok_or(bad("GICC"))?;
                    facts.gic.gich = le64(e, GICH_BASE).ok_or(bad("GICC"))?;
                    let maint = le32(e, GICC_VGIC_MAINT_GSIV).ok_or(bad("GICC"))?;
                    facts.gic.maintenance = gsiv_irq(maint, flags & GICC_FLAG_VGIC_EDGE != 0, false);
                    let perf = le32(e, GICC_PERF_GSIV).ok_or(bad("GICC"))?;
                    facts.pmu = gsiv_irq(perf, flags & GICC_FLAG_PERF_EDGE != 0, false);
                    if len >= GICC_SPE_GSIV + 2 {
                        let spe = le16(e, GICC_SPE_GSIV).ok_or(bad("GICC"))?;
                        // SPE's buffer interrupt is a level-sensitive PPI.
                        facts.spe = gsiv_irq(u32::from(spe), false, false);
                    }
                }
            }
            MADT_GICD => {
                if len < GICD_LEN {
                    return Err(bad("GICD entry shorter than 24 bytes"));
                }
                if gicd_seen {
                    return Err(bad("more than one GICD entry"));
                }
                gicd_seen = true;
                facts.gic.gicd = le64(e, GICD_BASE).ok_or(bad("GICD"))?;
                facts.gic.version = e[GICD_VERSION];
            }
            MADT_GICR => {
                if len < GICR_LEN {
                    return Err(bad("GICR entry shorter than 16 bytes"));
                }
                let base = le64(e, GICR_BASE).ok_or(bad("GICR"))?;
                let size = u64::from(le32(e, GICR_LENGTH).ok_or(bad("GICR"))?);
                if base.checked_add(size).is_none() || size == 0 {
                    return Err(bad("GICR range empty or wrapping"));
                }
                let slot = facts
                    .gic
                    .gicr
                    .get_mut(facts.gic.gicr_count)
                    .ok_or(bad("more GICR ranges than spevisor keeps (8)"))?;
                *slot = (base, size);
                facts.gic.gicr_count += 1;
            }
            _ => {}
        }
        at += len;
    }
    if !gicd_seen {
        return Err(bad("no GICD entry"));
    }
    if facts.cpu_count == 0 {
        return Err(bad("no enabled GICC entry (no CPU)"));
    }
    // GIC version: 1 and 2 are GICv2's programming model, 3 and 4 GICv3's;
    // 0 ("discover it") is decided by the redistributors' presence.
    facts.gic.version = match facts.gic.version {
        0 if facts.gic.gicr_count > 0 => 3,
        0..=2 => 2,
        3 | 4 => 3,
        _ => return Err(bad("unknown GIC version in the GICD entry")),
    };
    if facts.gic.version == 3 && facts.gic.gicr_count == 0 {
        // Redistributors described per CPU (GICC.GICR base) are not kept.
        return Err(bad("GICv3 without a GICR entry (per-CPU GICR bases are not supported)"));
    }
    if facts.gic.version == 2 && facts.gic.gicc == 0 {
        return Err(bad("GICv2 without a CPU interface base in the GICC entry"));
    }
    Ok(())
}

fn timer(gtdt: &[u8], addr: u64) -> Result<TimerFacts, AcpiError> {
    let bad = |why| AcpiError::Table { signature: *b"GTDT", addr, why };
    if gtdt.len() < GTDT_LEN_MIN {
        return Err(bad("shorter than ACPI 5.1's GTDT"));
    }
    let irq = |o: usize| -> Result<Irq, AcpiError> {
        let gsiv = le32(gtdt, o).ok_or(bad("truncated"))?;
        let flags = le32(gtdt, o + 4).ok_or(bad("truncated"))?;
        let irq = Irq { gsiv, edge: flags & GTDT_FLAG_EDGE != 0, active_low: flags & GTDT_FLAG_ACTIVE_LOW != 0 };
        if !irq.is_routable() {
            return Err(bad("timer interrupt is not a PPI or SPI"));
        }
        Ok(irq)
    };
    let virtual_el2 = if gtdt.len() >= GTDT_LEN_VIRTUAL_EL2 && le32(gtdt, GTDT_VIRTUAL_EL2) != Some(0) {
        Some(irq(GTDT_VIRTUAL_EL2)?)
    } else {
        None
    };
    Ok(TimerFacts {
        secure_el1: irq(GTDT_SECURE_EL1)?,
        nonsecure_el1: irq(GTDT_NONSECURE_EL1)?,
        virtual_el1: irq(GTDT_VIRTUAL_EL1)?,
        el2: irq(GTDT_EL2)?,
        virtual_el2,
    })
}

fn console(spcr: &[u8], addr: u64) -> Result<Option<ConsoleFacts>, AcpiError> {
    let bad = |why| AcpiError::Table { signature: *b"SPCR", addr, why };
    if spcr.len() < SPCR_LEN_MIN {
        return Err(bad("shorter than its base address"));
    }
    let gas = &spcr[SPCR_BASE_GAS..SPCR_BASE_GAS + 12];
    let base = le64(gas, GAS_ADDRESS).ok_or(bad("truncated"))?;
    if gas[0] != GAS_SPACE_MEMORY || base == 0 {
        // An I/O-port UART (x86) or none: no console spevisor can drive.
        return Ok(None);
    }
    let io_width = match gas[GAS_ACCESS_SIZE] {
        3 => 4,
        2 => 2,
        _ => 1,
    };
    let facts = match spcr[SPCR_INTERFACE] {
        SPCR_PL011 | SPCR_SBSA | SPCR_SBSA_32BIT => ConsoleFacts { pl011: true, base, reg_shift: 0, reg_io_width: 4 },
        SPCR_16550 | SPCR_16450 => ConsoleFacts { pl011: false, base, reg_shift: 0, reg_io_width: 1 },
        SPCR_16550_GAS => {
            // Registers `bit width` apart.
            let shift = match gas[GAS_BIT_WIDTH] {
                32 => 2,
                16 => 1,
                _ => 0,
            };
            ConsoleFacts { pl011: false, base, reg_shift: shift, reg_io_width: io_width }
        }
        _ => return Ok(None),
    };
    Ok(Some(facts))
}

/// The PSCI conduit from the FADT's Arm boot flags (`None`: no PSCI, or an
/// FADT older than ACPI 5.1, which has no such flags).
fn psci(fadt: &[u8]) -> Option<bool> {
    let flags = le16(fadt, FADT_ARM_BOOT_ARCH)?;
    (flags & FADT_ARM_PSCI_COMPLIANT != 0).then_some(flags & FADT_ARM_PSCI_USE_HVC != 0)
}

/// QEMU virt's tables as test and fuzz fixtures (feature `fixtures`).
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures {
    use super::*;
    extern crate std;
    use std::collections::BTreeMap;
    use std::vec;
    use std::vec::Vec;

    /// Physical memory made of a few byte vectors at addresses.
    #[derive(Default)]
    pub struct Mem(pub BTreeMap<u64, Vec<u8>>);

    impl PhysMem for Mem {
        fn bytes(&self, addr: u64, len: usize) -> Option<&[u8]> {
            let (&base, v) = self.0.range(..=addr).next_back()?;
            let off = usize::try_from(addr - base).ok()?;
            v.get(off..off.checked_add(len)?)
        }
    }

    pub fn fix_checksum(t: &mut [u8], at: usize) {
        t[at] = 0;
        let sum = t.iter().fold(0u8, |s, &x| s.wrapping_add(x));
        t[at] = 0u8.wrapping_sub(sum);
    }

    pub fn sdt(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(sig);
        t.extend_from_slice(&((SDT_HEADER_LEN + body.len()) as u32).to_le_bytes());
        t.push(5); // revision
        t.push(0); // checksum
        t.extend_from_slice(b"BOCHS BXPC    ");
        t.extend_from_slice(&[0; 12]);
        t.extend_from_slice(body);
        fix_checksum(&mut t, 9);
        t
    }

    fn put32(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    fn put64(v: &mut Vec<u8>, x: u64) {
        v.extend_from_slice(&x.to_le_bytes());
    }

    pub const RSDP: u64 = 0x7000_0000;
    pub const XSDT: u64 = 0x7000_1000;
    pub const MADT: u64 = 0x7000_2000;
    pub const GTDT: u64 = 0x7000_3000;
    pub const SPCR: u64 = 0x7000_4000;
    pub const FADT: u64 = 0x7000_5000;
    /// The fixture's span from [`RSDP`].
    pub const SPAN: usize = 0x6000;

    impl Mem {
        /// The memory from `base` for `len` bytes as one byte string (gaps
        /// zero).
        pub fn blob(&self, base: u64, len: usize) -> Vec<u8> {
            let mut out = vec![0u8; len];
            for (&at, v) in &self.0 {
                let off = (at - base) as usize;
                out[off..off + v.len()].copy_from_slice(v);
            }
            out
        }
    }

    /// QEMU virt's tables with GICv3, `cpus` CPUs, virtualization on
    /// (hw/arm/virt-acpi-build.c's values).
    pub fn qemu_virt(cpus: u64) -> Mem {
        let mut m = Mem::default();
        let mut rsdp = Vec::new();
        rsdp.extend_from_slice(b"RSD PTR ");
        rsdp.push(0);
        rsdp.extend_from_slice(b"BOCHS ");
        rsdp.push(2);
        put32(&mut rsdp, 0);
        put32(&mut rsdp, RSDP_V2_LEN as u32);
        put64(&mut rsdp, XSDT);
        rsdp.extend_from_slice(&[0; 4]);
        fix_checksum(&mut rsdp[..RSDP_V1_LEN], 8);
        fix_checksum(&mut rsdp, 32);
        m.0.insert(RSDP, rsdp);
        let mut x = Vec::new();
        for a in [FADT, MADT, GTDT, SPCR] {
            put64(&mut x, a);
        }
        m.0.insert(XSDT, sdt(b"XSDT", &x));
        let mut madt = Vec::new();
        put32(&mut madt, 0);
        put32(&mut madt, 0);
        // GICD
        madt.extend_from_slice(&[MADT_GICD, 24, 0, 0]);
        put32(&mut madt, 0);
        put64(&mut madt, 0x0800_0000);
        put32(&mut madt, 0);
        madt.extend_from_slice(&[3, 0, 0, 0]);
        for i in 0..cpus {
            let mut g = vec![MADT_GICC, 80, 0, 0];
            put32(&mut g, i as u32); // CPU interface number
            put32(&mut g, i as u32); // UID
            put32(&mut g, GICC_FLAG_ENABLED);
            put32(&mut g, 0); // parking
            put32(&mut g, 23); // performance interrupt
            put64(&mut g, 0); // parked address
            put64(&mut g, 0x0801_0000); // GICC
            put64(&mut g, 0x0804_0000); // GICV
            put64(&mut g, 0x0803_0000); // GICH
            put32(&mut g, 25); // VGIC maintenance
            put64(&mut g, 0); // GICR base
            put64(&mut g, i); // MPIDR
            g.extend_from_slice(&[0; 4]);
            assert_eq!(g.len(), 80);
            madt.extend_from_slice(&g);
        }
        madt.extend_from_slice(&[MADT_GICR, 16, 0, 0]);
        put64(&mut madt, 0x080a_0000);
        put32(&mut madt, 0x00f6_0000);
        m.0.insert(MADT, sdt(b"APIC", &madt));
        let mut gtdt = Vec::new();
        put64(&mut gtdt, u64::MAX); // CntControlBase
        put32(&mut gtdt, 0);
        for gsiv in [29, 30, 27, 26] {
            put32(&mut gtdt, gsiv);
            put32(&mut gtdt, 0); // level, active high
        }
        put64(&mut gtdt, u64::MAX); // CntReadBase
        put32(&mut gtdt, 0);
        put32(&mut gtdt, 0);
        m.0.insert(GTDT, sdt(b"GTDT", &gtdt));
        let mut spcr = vec![SPCR_PL011, 0, 0, 0];
        spcr.extend_from_slice(&[GAS_SPACE_MEMORY, 32, 0, 3]);
        put64(&mut spcr, 0x0900_0000);
        spcr.extend_from_slice(&[0; 28]);
        m.0.insert(SPCR, sdt(b"SPCR", &spcr));
        let mut fadt = vec![0u8; FADT_ARM_BOOT_ARCH - SDT_HEADER_LEN];
        fadt.extend_from_slice(&FADT_ARM_PSCI_COMPLIANT.to_le_bytes());
        fadt.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        m.0.insert(FADT, sdt(b"FACP", &fadt));
        m
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn qemu_virt_tables_give_what_its_device_tree_gives() {
        let f = parse(&qemu_virt(2), RSDP).unwrap();
        assert_eq!(f.gic.version, 3);
        assert_eq!(f.gic.gicd, 0x0800_0000);
        assert_eq!(&f.gic.gicr[..f.gic.gicr_count], &[(0x080a_0000, 0x00f6_0000)]);
        assert_eq!((f.gic.gicc, f.gic.gich, f.gic.gicv), (0x0801_0000, 0x0803_0000, 0x0804_0000));
        assert_eq!(f.gic.maintenance.map(|i| i.gsiv), Some(25));
        assert_eq!(&f.cpus[..f.cpu_count], &[0, 1]);
        assert_eq!(f.pmu.map(|i| i.gsiv), Some(23));
        assert_eq!(f.spe, None, "QEMU's GICC has 0 (none) in the SPE field");
        let t = f.timer;
        assert_eq!([t.secure_el1.gsiv, t.nonsecure_el1.gsiv, t.virtual_el1.gsiv, t.el2.gsiv], [29, 30, 27, 26]);
        assert_eq!(t.virtual_el2, None);
        assert_eq!(f.console, Some(ConsoleFacts { pl011: true, base: 0x0900_0000, reg_shift: 0, reg_io_width: 4 }));
        assert_eq!(f.psci_hvc, Some(false), "PSCI over SMC");
        assert_eq!(&f.oem, b"BOCHS BXPC    ");
    }

    fn with_table(m: &mut Mem, at: u64, edit: impl FnOnce(&mut Vec<u8>)) {
        let t = m.0.get_mut(&at).unwrap();
        edit(t);
        fix_checksum(t, 9);
    }

    #[test]
    fn bad_checksums_and_lengths_are_named() {
        let mut m = qemu_virt(1);
        m.0.get_mut(&MADT).unwrap()[40] ^= 1;
        let e = parse(&m, RSDP).unwrap_err();
        assert_eq!(e, AcpiError::Table { signature: *b"APIC", addr: MADT, why: "bad checksum" });
        assert_eq!(e.to_string(), "ACPI table APIC at 0x70002000: bad checksum");

        let mut m = qemu_virt(1);
        with_table(&mut m, GTDT, |t| t[4..8].copy_from_slice(&0x10_0000u32.to_le_bytes()));
        assert!(matches!(parse(&m, RSDP), Err(AcpiError::Table { why: "length past readable memory", .. })));

        let mut m = qemu_virt(1);
        with_table(&mut m, GTDT, |t| t[4..8].copy_from_slice(&(MAX_TABLE_LEN + 1).to_le_bytes()));
        assert!(matches!(parse(&m, RSDP), Err(AcpiError::Table { why: "length outside 36 bytes..1 MiB", .. })));

        let mut m = qemu_virt(1);
        m.0.get_mut(&RSDP).unwrap()[0] = b'X';
        assert!(matches!(parse(&m, RSDP), Err(AcpiError::Rsdp { why: "no \"RSD PTR \" signature", .. })));

        let mut m = qemu_virt(1);
        m.0.get_mut(&RSDP).unwrap()[30] ^= 1;
        assert!(matches!(parse(&m, RSDP), Err(AcpiError::Rsdp { why: "bad extended checksum", .. })));
    }

    #[test]
    fn madt_entries_that_would_loop_or_overrun_are_refused() {
        // A zero-length entry would never advance: refused, not a hang.
        let mut m = qemu_virt(1);
        with_table(&mut m, MADT, |t| t[MADT_ENTRIES + 1] = 0);
        assert!(matches!(parse(&m, RSDP), Err(AcpiError::Table { why: "entry of length < 2 (would never end)", .. })));
        // An entry longer than what is left of the table.
        let mut m = qemu_virt(1);
        with_table(&mut m, MADT, |t| {
            let last = t.len() - GICR_LEN;
            t[last + 1] = 200;
        });
        assert!(matches!(parse(&m, RSDP), Err(AcpiError::Table { why: "entry past the table's end", .. })));
        // A GICC shorter than ACPI 6.0's.
        let mut m = qemu_virt(1);
        with_table(&mut m, MADT, |t| t[MADT_ENTRIES + GICD_LEN + 1] = 40);
        assert!(parse(&m, RSDP).is_err());
    }

    #[test]
    fn missing_tables_and_entries_are_named() {
        let mut m = qemu_virt(1);
        with_table(&mut m, GTDT, |t| t[..4].copy_from_slice(b"GTDx"));
        assert_eq!(parse(&m, RSDP).unwrap_err(), AcpiError::Missing(*b"GTDT"));
        assert_eq!(AcpiError::Missing(*b"GTDT").to_string(), "no ACPI GTDT table in the XSDT");
        // No enabled CPU.
        let mut m = qemu_virt(1);
        with_table(&mut m, MADT, |t| t[MADT_ENTRIES + GICD_LEN + GICC_FLAGS] = 0);
        assert!(matches!(parse(&m, RSDP), Err(AcpiError::Table { why: "no enabled GICC entry (no CPU)", .. })));
        // GICv3 without redistributors.
        let mut m = qemu_virt(1);
        with_table(&mut m, MADT, |t| {
            let n = t.len() - GICR_LEN;
            t.truncate(n);
            t[4..8].copy_from_slice(&(n as u32).to_le_bytes());
        });
        assert!(matches!(parse(&m, RSDP), Err(AcpiError::Table { signature: [b'A', b'P', b'I', b'C'], .. })));
    }

    #[test]
    fn gicc_spe_interrupt_disabled_cpus_and_16550_consoles() {
        let mut m = qemu_virt(2);
        with_table(&mut m, MADT, |t| {
            // Second CPU disabled; the first CPU's GICC names an SPE
            // interrupt (ACPI 6.3: bytes 78..80, reserved before; PPI 5 =
            // INTID 21).
            let g1 = MADT_ENTRIES + GICD_LEN;
            t[g1 + 80 + GICC_FLAGS] = 0;
            t[g1 + GICC_SPE_GSIV] = 21;
        });
        with_table(&mut m, SPCR, |t| {
            t[SPCR_INTERFACE] = SPCR_16550_GAS;
            t[SPCR_BASE_GAS + GAS_BIT_WIDTH] = 32;
            t[SPCR_BASE_GAS + GAS_ACCESS_SIZE] = 3;
        });
        let f = parse(&m, RSDP).unwrap();
        assert_eq!(f.cpu_count, 1);
        assert_eq!(f.spe.map(|i| i.gsiv), Some(21));
        assert_eq!(f.console, Some(ConsoleFacts { pl011: false, base: 0x0900_0000, reg_shift: 2, reg_io_width: 4 }));
    }
}
