//! The board report: what this machine is, as EL2 sees it at boot.
//!
//! Printed at info level on every boot (`[el2] INFO  report: ...` lines),
//! and alone by `cargo xtask run --report` (the image stops after it when
//! the command line has [`REPORT_ONLY_ARG`]). The raw values are read by
//! `arch::report_regs` and the device tree; everything here is pure
//! decoding and formatting, tested on the development machine.
//!
//! Field positions are from the Arm ARM (DDI 0487) register descriptions:
//! MIDR_EL1, ID_AA64PFR0_EL1, ID_AA64MMFR0_EL1, ID_AA64MMFR1_EL1,
//! ID_AA64DFR0_EL1, PMCR_EL0, ICH_VTR_EL2; the PSCI version word is from
//! the PSCI specification (DEN 0022) and SPE's ID registers are decoded by
//! `spevisor_spe::regs`.

use core::fmt;
use spevisor_dtb::{GicVersion, Interrupt, Platform, PsciConduit, PsciVersion, UartKind};
use spevisor_spe::regs::SpeId;

/// The command-line argument that makes the image stop after the report
/// (status 0): what `cargo xtask run --report` appends.
pub const REPORT_ONLY_ARG: &str = "spevisor.report=only";

/// Whether the kernel command line asks for the report alone.
pub fn report_only(bootargs: &str) -> bool {
    bootargs.split_ascii_whitespace().any(|a| a == REPORT_ONLY_ARG)
}

/// A bit field `[shift + width - 1 : shift]` of a register.
#[derive(Clone, Copy, Debug)]
struct Field {
    shift: u32,
    width: u32,
}

impl Field {
    const fn of(self, v: u64) -> u64 {
        (v >> self.shift) & ((1u64 << self.width) - 1)
    }
}

const fn field(shift: u32, width: u32) -> Field {
    Field { shift, width }
}

/// MIDR_EL1 fields.
mod midr {
    use super::{field, Field};
    pub const IMPLEMENTER: Field = field(24, 8);
    pub const VARIANT: Field = field(20, 4);
    pub const ARCHITECTURE: Field = field(16, 4);
    pub const PART_NUM: Field = field(4, 12);
    pub const REVISION: Field = field(0, 4);
}

/// ID_AA64PFR0_EL1: EL0..EL3 support, 4 bits each from bit 0.
const PFR0_EL_FIELD_WIDTH: u32 = 4;
/// ID_AA64PFR0_EL1.ELx = 0: the exception level is not implemented.
const EL_NOT_IMPLEMENTED: u64 = 0;
/// ID_AA64PFR0_EL1.ELx = 1: AArch64 only.
const EL_AARCH64_ONLY: u64 = 1;
/// ID_AA64PFR0_EL1.ELx = 2: AArch64 and AArch32.
const EL_AARCH64_AND_32: u64 = 2;

/// ID_AA64MMFR0_EL1.PARange.
const MMFR0_PARANGE: Field = field(0, 4);
/// ID_AA64MMFR1_EL1.VMIDBits.
const MMFR1_VMIDBITS: Field = field(4, 4);
/// VMIDBits = 0b0010: 16-bit VMIDs.
const VMIDBITS_16: u64 = 0b0010;

/// ID_AA64DFR0_EL1 fields.
mod dfr0 {
    use super::{field, Field};
    pub const PMUVER: Field = field(8, 4);
    pub const TRACEBUFFER: Field = field(44, 4);
    pub const BRBE: Field = field(52, 4);
}
/// PMCR_EL0.N: the number of event counters.
const PMCR_N: Field = field(11, 5);

/// ICH_VTR_EL2 fields (each holds the count minus one).
mod ich_vtr {
    use super::{field, Field};
    pub const LIST_REGS: Field = field(0, 5);
    pub const PRE_BITS: Field = field(26, 3);
    pub const PRI_BITS: Field = field(29, 3);
}

/// GICH_VTR fields (GICv2; each holds the count minus one): ListRegs is
/// six bits wide here.
mod gich_vtr {
    use super::{field, Field};
    pub const LIST_REGS: Field = field(0, 6);
    pub const PRE_BITS: Field = field(26, 3);
    pub const PRI_BITS: Field = field(29, 3);
}

/// The PSCI_VERSION result: major in bits [30:16], minor in [15:0].
const PSCI_MAJOR: Field = field(16, 15);
const PSCI_MINOR: Field = field(0, 16);
/// Bit 31 of the PSCI_VERSION result: set in an error code (negative).
const PSCI_ERROR_BIT: u32 = 1 << 31;

/// The CPU registers the report decodes, read at EL2 on the boot CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuRegs {
    pub midr: u64,
    pub revidr: u64,
    pub mpidr: u64,
    pub pfr0: u64,
    pub mmfr0: u64,
    pub mmfr1: u64,
    pub dfr0: u64,
    pub pmcr: u64,
    pub cntfrq: u64,
    /// ICH_VTR_EL2, when the GICv3 system-register interface is there.
    pub ich_vtr: Option<u64>,
    /// GICH_VTR, when EL2 mapped a GICv2 virtual interface (`arch::gich`).
    pub gich_vtr: Option<u64>,
    /// CurrentEL.EL.
    pub current_el: u64,
}

/// Everything the report needs.
pub struct Report<'a, 'p> {
    pub cpu: CpuRegs,
    pub platform: &'a Platform<'p>,
    pub spe: SpeId,
    /// The PA size spevisor's tables use (PARange capped at what they support).
    pub pa_bits_used: u32,
    /// The IPA size stage-2 uses for guests.
    pub ipa_bits: u32,
    /// PSCI_VERSION's answer, when it was asked (only over `smc`: an `hvc`
    /// from EL2 would trap to spevisor itself).
    pub psci_version: Option<u32>,
    /// The other cores of the device tree, each woken once to read its own
    /// identification registers (`arch::cpu_probe`); empty when there are
    /// none or PSCI cannot be called.
    pub others: &'a [OtherCpu],
}

/// The identification registers one core read of itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreIds {
    pub midr: u64,
    pub revidr: u64,
    pub mpidr: u64,
    /// CurrentEL.EL the core was started at.
    pub el: u64,
}

/// Why another core's registers could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// PSCI CPU_ON refused, with its status.
    CpuOn(i32),
    /// The core was started but never wrote its registers.
    NoAnswer,
}

/// One of the other cores, as the probe found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OtherCpu {
    /// Its `reg` in the device tree (MPIDR affinity fields).
    pub dt_mpidr: u64,
    pub result: Result<CoreIds, ProbeError>,
    /// Whether PSCI AFFINITY_INFO saw it off again afterwards.
    pub off_again: bool,
}

/// VMID width spevisor programs (VTTBR_EL2.VMID, 8 bits: VTCR_EL2.VS = 0).
pub const VMID_BITS_USED: u32 = 8;

/// MIDR_EL1.Implementer codes spevisor names (the Arm ARM's list, in part).
fn implementer_name(code: u64) -> &'static str {
    match code {
        0x00 => "software (QEMU/models)",
        0x41 => "Arm",
        0x42 => "Broadcom",
        0x43 => "Cavium",
        0x46 => "Fujitsu",
        0x48 => "HiSilicon",
        0x4e => "NVIDIA",
        0x50 => "Applied Micro",
        0x51 => "Qualcomm",
        0x61 => "Apple",
        0xc0 => "Ampere",
        _ => "unknown",
    }
}

/// An exception level's support as ID_AA64PFR0_EL1 says it.
pub fn el_support(pfr0: u64, el: u32) -> &'static str {
    match field(el * PFR0_EL_FIELD_WIDTH, PFR0_EL_FIELD_WIDTH).of(pfr0) {
        EL_NOT_IMPLEMENTED => "absent",
        EL_AARCH64_ONLY => "aarch64",
        EL_AARCH64_AND_32 => "aarch64+aarch32",
        _ => "unknown",
    }
}

/// ID_AA64MMFR1_EL1.VMIDBits as a width.
pub fn vmid_bits(mmfr1: u64) -> u32 {
    if MMFR1_VMIDBITS.of(mmfr1) == VMIDBITS_16 {
        16
    } else {
        8
    }
}

/// ID_AA64DFR0_EL1.PMUVer's name.
pub fn pmu_version_name(pmuver: u64) -> &'static str {
    match pmuver {
        0x0 => "none",
        0x1 => "PMUv3",
        0x4 => "PMUv3p1",
        0x5 => "PMUv3p4",
        0x6 => "PMUv3p5",
        0x7 => "PMUv3p7",
        0x8 => "PMUv3p8",
        0x9 => "PMUv3p9",
        0xf => "IMPLEMENTATION DEFINED",
        _ => "unknown",
    }
}

/// ID_AA64DFR0_EL1.PMSVer's name.
pub fn spe_version_name(pmsver: u8) -> &'static str {
    match pmsver {
        0 => "none",
        1 => "SPEv1",
        2 => "SPEv1p1",
        3 => "SPEv1p2",
        4 => "SPEv1p3",
        5 => "SPEv1p4",
        _ => "unknown",
    }
}

/// PMSIDR_EL1.CountSize's meaning.
fn count_size_name(v: u8) -> &'static str {
    match v {
        0b0010 => "12-bit saturating",
        0b0011 => "16-bit saturating",
        _ => "reserved",
    }
}

/// MIDR_EL1 split into its fields, and REVIDR_EL1.
struct Midr {
    midr: u64,
    revidr: u64,
}

impl fmt::Display for Midr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.midr;
        let imp = midr::IMPLEMENTER.of(m);
        write!(
            f,
            "midr={:#010x} implementer={:#04x}({}) variant={:#x} architecture={:#x} part={:#05x} revision={:#x} revidr={:#x}",
            m,
            imp,
            implementer_name(imp),
            midr::VARIANT.of(m),
            midr::ARCHITECTURE.of(m),
            midr::PART_NUM.of(m),
            midr::REVISION.of(m),
            self.revidr
        )
    }
}

struct Irq(Option<Interrupt>);

impl fmt::Display for Irq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(i) if i.intid.is_ppi() => write!(f, "{}", i.intid.0),
            Some(i) => write!(f, "{}(not a PPI)", i.intid.0),
            None => f.write_str("none"),
        }
    }
}

struct Frame(Option<spevisor_dtb::Region>);

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(r) => write!(f, "{:#x}+{:#x}", r.base, r.size),
            None => f.write_str("none"),
        }
    }
}

/// `rsdp=0x... ` when the platform came from ACPI, else nothing.
struct Rsdp(Option<u64>);

impl fmt::Display for Rsdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(r) => write!(f, "rsdp={r:#x} "),
            None => Ok(()),
        }
    }
}

/// Writes the report, one line per call of `out` (no newline, no prefix).
pub fn write(r: &Report<'_, '_>, out: &mut dyn FnMut(fmt::Arguments)) {
    let c = &r.cpu;
    let p = r.platform;
    // `acpi`: the tree was written by the EFI stub from the ACPI tables
    // (efi/src/dt.rs marks it with the RSDP); `dt`: firmware gave a tree.
    let (firmware, rsdp) = match p.acpi_rsdp {
        Some(r) => ("acpi", Some(r)),
        None => ("dt", None),
    };
    out(format_args!(
        "report: firmware={} {}model=\"{}\" cpus={} (spevisor runs on the boot CPU; {} other(s) woken once to read their IDs)",
        firmware,
        Rsdp(rsdp),
        p.model.unwrap_or("?"),
        p.cpu_count(),
        r.others.len()
    ));
    out(format_args!("report: cpu boot mpidr={:#x} {}", c.mpidr, Midr { midr: c.midr, revidr: c.revidr }));
    for o in r.others {
        match o.result {
            Ok(ids) => out(format_args!(
                "report: cpu other mpidr={:#x} {} el={} off_again={}",
                ids.mpidr,
                Midr { midr: ids.midr, revidr: ids.revidr },
                ids.el,
                if o.off_again { "yes" } else { "no" }
            )),
            Err(ProbeError::CpuOn(status)) => {
                out(format_args!("report: cpu other mpidr={:#x} not-read=cpu_on({status})", o.dt_mpidr))
            }
            Err(ProbeError::NoAnswer) => out(format_args!(
                "report: cpu other mpidr={:#x} not-read=no-answer off_again={}",
                o.dt_mpidr,
                if o.off_again { "yes" } else { "no" }
            )),
        }
    }
    out(format_args!(
        "report: el el0={} el1={} el2={} el3={} current=el{}",
        el_support(c.pfr0, 0),
        el_support(c.pfr0, 1),
        el_support(c.pfr0, 2),
        el_support(c.pfr0, 3),
        c.current_el
    ));
    let parange = MMFR0_PARANGE.of(c.mmfr0);
    match spevisor_pgtable::regs::pa_bits_from_parange(parange) {
        Some(bits) => out(format_args!(
            "report: memory pa_bits={} pa_bits_used={} ipa_bits={} vmid_bits={} vmid_bits_used={}",
            bits,
            r.pa_bits_used,
            r.ipa_bits,
            vmid_bits(c.mmfr1),
            VMID_BITS_USED
        )),
        None => out(format_args!(
            "report: memory pa_bits=unknown(PARange {:#x}) pa_bits_used={} ipa_bits={} vmid_bits={} vmid_bits_used={}",
            parange,
            r.pa_bits_used,
            r.ipa_bits,
            vmid_bits(c.mmfr1),
            VMID_BITS_USED
        )),
    }
    write_gic(r, out);
    let t = &p.timer;
    out(format_args!(
        "report: timer cntfrq={} dt_clock_frequency={} ppi_sec_phys={} ppi_phys={} ppi_virt={} ppi_hyp_phys={} ppi_hyp_virt={}",
        c.cntfrq,
        t.clock_frequency.map_or(0, u64::from),
        Irq(Some(t.secure_phys)),
        Irq(Some(t.nonsecure_phys)),
        Irq(Some(t.virt)),
        Irq(Some(t.hyp_phys)),
        Irq(t.hyp_virt)
    ));
    let pmuver = dfr0::PMUVER.of(c.dfr0);
    out(format_args!(
        "report: pmu pmuver={:#x}({}) counters={} ppi={}",
        pmuver,
        pmu_version_name(pmuver),
        if pmuver == 0 { 0 } else { PMCR_N.of(c.pmcr) },
        Irq(p.pmu)
    ));
    write_spe(r, out);
    out(format_args!(
        "report: trace trbe={} brbe={}",
        if dfr0::TRACEBUFFER.of(c.dfr0) != 0 { "present" } else { "absent" },
        if dfr0::BRBE.of(c.dfr0) != 0 { "present" } else { "absent" }
    ));
    let conduit = match p.psci.map(|x| x.conduit) {
        Some(PsciConduit::Smc) => "smc",
        Some(PsciConduit::Hvc) => "hvc",
        None => "none",
    };
    let binding = match p.psci.map(|x| x.version) {
        Some(PsciVersion::V0_1) => "arm,psci",
        Some(PsciVersion::V0_2) => "arm,psci-0.2",
        Some(PsciVersion::V1_0) => "arm,psci-1.0",
        None => "none",
    };
    match r.psci_version {
        Some(v) if v & PSCI_ERROR_BIT != 0 => {
            out(format_args!("report: psci version=error({}) conduit={} binding={}", v as i32, conduit, binding))
        }
        Some(v) => out(format_args!(
            "report: psci version={}.{} conduit={} binding={}",
            PSCI_MAJOR.of(u64::from(v)),
            PSCI_MINOR.of(u64::from(v)),
            conduit,
            binding
        )),
        None => out(format_args!("report: psci version=not-asked conduit={} binding={}", conduit, binding)),
    }
    write_console(r, out);
}

/// The console the device tree chose (`/chosen/stdout-path`, else the
/// first PL011), as `spevisor_dtb` parsed it.
fn write_console(r: &Report<'_, '_>, out: &mut dyn FnMut(fmt::Arguments)) {
    match r.platform.console {
        Some(u) => out(format_args!(
            "report: console kind={} base={:#x} reg_shift={} reg_io_width={} options={}",
            match u.kind {
                UartKind::Pl011 => "pl011",
                UartKind::Ns16550 => "ns16550",
                UartKind::Bcm2835Aux => "bcm2835-aux(no driver)",
            },
            u.region.base,
            u.reg_shift,
            u.reg_io_width,
            u.options.unwrap_or("none")
        )),
        None => out(format_args!("report: console kind=none")),
    }
}

fn write_gic(r: &Report<'_, '_>, out: &mut dyn FnMut(fmt::Arguments)) {
    let g = &r.platform.gic;
    match g.version {
        GicVersion::V3 => {
            let redist = g.redistributors.as_slice().first().copied();
            out(format_args!(
                "report: gic version=3 gicd={} gicr={} gicr_regions={} maintenance_ppi={}",
                Frame(Some(g.distributor)),
                Frame(redist),
                g.redistributors.as_slice().len(),
                Irq(g.maintenance)
            ));
        }
        GicVersion::V2 => out(format_args!(
            "report: gic version=2 gicd={} gicc={} gich={} gicv={} maintenance_ppi={}",
            Frame(Some(g.distributor)),
            Frame(g.cpu_interface),
            Frame(g.hyp_interface),
            Frame(g.vcpu_interface),
            Irq(g.maintenance)
        )),
    }
    match (r.cpu.ich_vtr, r.cpu.gich_vtr) {
        (Some(vtr), _) => out(format_args!(
            "report: gic_cpu_if interface=sysregs list_registers={} pri_bits={} pre_bits={}",
            ich_vtr::LIST_REGS.of(vtr) + 1,
            ich_vtr::PRI_BITS.of(vtr) + 1,
            ich_vtr::PRE_BITS.of(vtr) + 1
        )),
        (None, Some(vtr)) => out(format_args!(
            "report: gic_cpu_if interface=memory-mapped list_registers={} pri_bits={} pre_bits={}",
            gich_vtr::LIST_REGS.of(vtr) + 1,
            gich_vtr::PRI_BITS.of(vtr) + 1,
            gich_vtr::PRE_BITS.of(vtr) + 1
        )),
        (None, None) => out(format_args!(
            "report: gic_cpu_if interface=memory-mapped list_registers=not-read (no GICH frame mapped: guests get no interrupts)"
        )),
    }
}

fn write_spe(r: &Report<'_, '_>, out: &mut dyn FnMut(fmt::Arguments)) {
    let s = &r.spe;
    let (Some(b), Some(i)) = (s.pmbidr.filter(|_| s.implemented()), s.pmsidr.filter(|_| s.implemented())) else {
        out(format_args!("report: spe pmsver={:#x}({}) buffer_owner=none", s.pmsver, spe_version_name(s.pmsver)));
        return;
    };
    let on = |b: bool| if b { "yes" } else { "no" };
    out(format_args!(
        "report: spe pmsver={:#x}({}) align={}({} bytes) p={} f={} buffer_owner={}",
        s.pmsver,
        spe_version_name(s.pmsver),
        b.align,
        b.align_bytes(),
        u8::from(b.programming_prohibited),
        u8::from(b.flag_updates),
        if b.programming_prohibited { "higher-el" } else { "host" }
    ));
    match i.min_interval() {
        Some(n) => out(format_args!(
            "report: spe_sampling min_interval={} max_record={} filters fe={} ft={} fl={} count_size={:#x}({})",
            n,
            i.max_record_bytes(),
            on(i.fe),
            on(i.ft),
            on(i.fl),
            i.count_size,
            count_size_name(i.count_size)
        )),
        None => out(format_args!(
            "report: spe_sampling min_interval=unknown({:#x}) max_record={} filters fe={} ft={} fl={} count_size={:#x}({})",
            i.interval,
            i.max_record_bytes(),
            on(i.fe),
            on(i.ft),
            on(i.fl),
            i.count_size,
            count_size_name(i.count_size)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spevisor_spe::regs::{PmbIdr, PmsIdr};

    const QEMU_GICV3: &[u8] = include_bytes!("../../dtb/tests/fixtures/virt-gicv3-smp1-256M.dtb");
    const QEMU_GICV2: &[u8] = include_bytes!("../../dtb/tests/fixtures/virt-gicv2-smp1-256M.dtb");

    fn lines(r: &Report<'_, '_>) -> Vec<String> {
        let mut v = vec![];
        write(r, &mut |a| v.push(a.to_string()));
        v
    }

    fn line<'a>(v: &'a [String], topic: &str) -> &'a str {
        let prefix = format!("report: {topic} ");
        v.iter().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {topic} line in {v:#?}"))
    }

    /// Register values of an Arm Neoverse-N1-like CPU (MIDR r3p1).
    fn n1() -> CpuRegs {
        CpuRegs {
            midr: 0x413f_d0c1,
            revidr: 0x1,
            mpidr: 0x8100_0000,
            // EL0/EL1 AArch64+AArch32, EL2/EL3 AArch64 only.
            pfr0: 0x1122,
            // PARange 0b0100 (44 bits).
            mmfr0: 0x4,
            // VMIDBits 0b0010 (16).
            mmfr1: 0x20,
            // PMUVer 0x4, PMSVer 0x1, TraceBuffer 0, BRBE 0.
            dfr0: (0x1 << 32) | (0x4 << 8),
            // N = 6.
            pmcr: 6 << 11,
            cntfrq: 25_000_000,
            // ListRegs 3 (4 LRs), PREbits 4 (5), PRIbits 4 (5).
            ich_vtr: Some((4 << 29) | (4 << 26) | 3),
            gich_vtr: None,
            current_el: 2,
        }
    }

    #[test]
    fn cpu_fields_are_decoded_by_name() {
        let dtb = QEMU_GICV3;
        let p = spevisor_dtb::parse(dtb).unwrap();
        let spe = SpeId {
            pmsver: 1,
            pmbidr: Some(PmbIdr::from_bits(0b0110)),
            // Interval 0b0101 (2048), MaxSize 6 (64 bytes), CountSize 2, FE FT FL.
            pmsidr: Some(PmsIdr::from_bits((2 << 16) | (6 << 12) | (5 << 8) | 0b111)),
        };
        let r = Report {
            cpu: n1(),
            platform: &p,
            spe,
            pa_bits_used: 44,
            ipa_bits: 40,
            psci_version: Some(0x1_0001),
            others: &[],
        };
        let v = lines(&r);
        let cpu = line(&v, "cpu");
        for want in
            ["midr=0x413fd0c1", "implementer=0x41(Arm)", "variant=0x3", "part=0xd0c", "revision=0x1", "revidr=0x1"]
        {
            assert!(cpu.contains(want), "{want} in {cpu}");
        }
        assert_eq!(
            line(&v, "el"),
            "report: el el0=aarch64+aarch32 el1=aarch64+aarch32 el2=aarch64 el3=aarch64 current=el2"
        );
        assert_eq!(
            line(&v, "memory"),
            "report: memory pa_bits=44 pa_bits_used=44 ipa_bits=40 vmid_bits=16 vmid_bits_used=8"
        );
        assert_eq!(
            line(&v, "gic_cpu_if"),
            "report: gic_cpu_if interface=sysregs list_registers=4 pri_bits=5 pre_bits=5"
        );
        assert_eq!(line(&v, "pmu"), "report: pmu pmuver=0x4(PMUv3p1) counters=6 ppi=23");
        assert_eq!(line(&v, "spe"), "report: spe pmsver=0x1(SPEv1) align=6(64 bytes) p=0 f=0 buffer_owner=host");
        assert_eq!(
            line(&v, "spe_sampling"),
            "report: spe_sampling min_interval=2048 max_record=64 filters fe=yes ft=yes fl=yes count_size=0x2(12-bit saturating)"
        );
        assert_eq!(line(&v, "psci"), "report: psci version=1.1 conduit=smc binding=arm,psci-1.0");
        assert_eq!(line(&v, "trace"), "report: trace trbe=absent brbe=absent");
    }

    #[test]
    fn platform_fields_come_from_the_device_tree() {
        let p3 = spevisor_dtb::parse(QEMU_GICV3).unwrap();
        let r = Report {
            cpu: n1(),
            platform: &p3,
            spe: SpeId::NONE,
            pa_bits_used: 44,
            ipa_bits: 40,
            psci_version: None,
            others: &[],
        };
        let v = lines(&r);
        assert_eq!(
            line(&v, "gic"),
            "report: gic version=3 gicd=0x8000000+0x10000 gicr=0x80a0000+0xf60000 gicr_regions=1 maintenance_ppi=25"
        );
        assert_eq!(
            line(&v, "timer"),
            "report: timer cntfrq=25000000 dt_clock_frequency=0 ppi_sec_phys=29 ppi_phys=30 ppi_virt=27 ppi_hyp_phys=26 ppi_hyp_virt=28"
        );
        assert_eq!(line(&v, "spe"), "report: spe pmsver=0x0(none) buffer_owner=none");
        assert_eq!(line(&v, "psci"), "report: psci version=not-asked conduit=smc binding=arm,psci-1.0");
        assert_eq!(
            line(&v, "console"),
            "report: console kind=pl011 base=0x9000000 reg_shift=0 reg_io_width=1 options=none"
        );
        let p2 = spevisor_dtb::parse(QEMU_GICV2).unwrap();
        let cpu = CpuRegs { ich_vtr: None, ..n1() };
        let v = lines(&Report {
            cpu,
            platform: &p2,
            spe: SpeId::NONE,
            pa_bits_used: 44,
            ipa_bits: 40,
            psci_version: None,
            others: &[],
        });
        assert!(
            line(&v, "gic").starts_with("report: gic version=2 gicd=0x8000000+0x10000 gicc=0x8010000+0x10000 gich=")
        );
        assert!(line(&v, "gic_cpu_if").contains("list_registers=not-read"));
        // With the GICH frame mapped: QEMU's GICv2 has 4 list registers and
        // 5 priority/preemption bits; ListRegs is 6 bits wide (not GICv3's 5).
        let cpu = CpuRegs { ich_vtr: None, gich_vtr: Some((4 << 29) | (4 << 26) | 0x23), ..n1() };
        let v = lines(&Report {
            cpu,
            platform: &p2,
            spe: SpeId::NONE,
            pa_bits_used: 44,
            ipa_bits: 40,
            psci_version: None,
            others: &[],
        });
        assert_eq!(
            line(&v, "gic_cpu_if"),
            "report: gic_cpu_if interface=memory-mapped list_registers=36 pri_bits=5 pre_bits=5"
        );
    }

    #[test]
    fn a_prohibited_buffer_belongs_to_a_higher_el_and_unknown_codes_say_so() {
        let p = spevisor_dtb::parse(QEMU_GICV3).unwrap();
        let spe = SpeId {
            pmsver: 3,
            pmbidr: Some(PmbIdr::from_bits((1 << 4) | (1 << 5) | 0b1000)),
            pmsidr: Some(PmsIdr::from_bits((0xf << 8) | (3 << 16))),
        };
        let cpu = CpuRegs { mmfr0: 0xf, pfr0: 0, dfr0: (0x3 << 32) | (1 << 44) | (1 << 52), ..n1() };
        let v =
            lines(&Report { cpu, platform: &p, spe, pa_bits_used: 44, ipa_bits: 40, psci_version: None, others: &[] });
        assert!(line(&v, "spe").ends_with("align=8(256 bytes) p=1 f=1 buffer_owner=higher-el"), "{v:#?}");
        assert!(line(&v, "spe_sampling").starts_with("report: spe_sampling min_interval=unknown(0xf)"));
        assert!(line(&v, "spe_sampling").ends_with("count_size=0x3(16-bit saturating)"));
        assert!(line(&v, "memory").starts_with("report: memory pa_bits=unknown(PARange 0xf)"));
        let not_supported = -1i32 as u32;
        let v = lines(&Report {
            cpu,
            platform: &p,
            spe,
            pa_bits_used: 44,
            ipa_bits: 40,
            psci_version: Some(not_supported),
            others: &[],
        });
        assert_eq!(line(&v, "psci"), "report: psci version=error(-1) conduit=smc binding=arm,psci-1.0");
        assert_eq!(line(&v, "el"), "report: el el0=absent el1=absent el2=absent el3=absent current=el2");
        assert_eq!(line(&v, "trace"), "report: trace trbe=present brbe=present");
        assert_eq!(line(&v, "pmu"), "report: pmu pmuver=0x0(none) counters=0 ppi=23", "no PMU: no counters");
    }

    #[test]
    fn other_cores_get_a_line_each_with_what_they_read_or_why_not() {
        let p = spevisor_dtb::parse(QEMU_GICV3).unwrap();
        let a76 = CoreIds { midr: 0x414f_d0b1, revidr: 0, mpidr: 0x8100_0100, el: 2 };
        let others = [
            OtherCpu { dt_mpidr: 0x100, result: Ok(a76), off_again: true },
            OtherCpu { dt_mpidr: 0x200, result: Err(ProbeError::CpuOn(-2)), off_again: false },
            OtherCpu { dt_mpidr: 0x300, result: Err(ProbeError::NoAnswer), off_again: false },
        ];
        let r = Report {
            cpu: n1(),
            platform: &p,
            spe: SpeId::NONE,
            pa_bits_used: 44,
            ipa_bits: 40,
            psci_version: None,
            others: &others,
        };
        let v = lines(&r);
        let other: Vec<&String> = v.iter().filter(|l| l.starts_with("report: cpu other ")).collect();
        assert_eq!(
            other[0].as_str(),
            "report: cpu other mpidr=0x81000100 midr=0x414fd0b1 implementer=0x41(Arm) variant=0x4 architecture=0xf part=0xd0b revision=0x1 revidr=0x0 el=2 off_again=yes"
        );
        assert_eq!(other[1].as_str(), "report: cpu other mpidr=0x200 not-read=cpu_on(-2)");
        assert_eq!(other[2].as_str(), "report: cpu other mpidr=0x300 not-read=no-answer off_again=no");
        assert!(line(&v, "cpu").starts_with("report: cpu boot mpidr=0x81000000 midr=0x413fd0c1"), "boot line first");
        assert!(v[0].starts_with("report: firmware=") && v[0].contains("3 other(s) woken once"));
    }

    #[test]
    fn only_the_exact_argument_stops_after_the_report() {
        assert!(report_only("console=ttyAMA0 spevisor.report=only"));
        assert!(!report_only("spevisor.report=onl"));
        assert!(!report_only("xspevisor.report=only"));
        assert!(!report_only(""));
    }
}
