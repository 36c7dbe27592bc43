//! System-register encodings (`op0, op1, CRn, CRm, op2`) and the classes
//! the hypervisor traps them by.

use core::fmt;

/// The encoding of an `MRS`/`MSR` system register operand, as in the
/// assembler's generic name `S<op0>_<op1>_C<n>_C<m>_<op2>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SysRegEnc {
    /// op0 (2 for debug/trace, 3 for the rest; 0 and 1 are instructions).
    pub op0: u8,
    /// op1 (0-7; mostly the lowest EL that may access it: 0/1 = EL1, 3 = EL0, 4 = EL2, 5 = EL12).
    pub op1: u8,
    /// CRn (0-15).
    pub crn: u8,
    /// CRm (0-15).
    pub crm: u8,
    /// op2 (0-7).
    pub op2: u8,
}

impl SysRegEnc {
    /// Builds an encoding; fields are masked to their widths.
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Self {
        Self { op0: op0 & 0b11, op1: op1 & 0b111, crn: crn & 0xf, crm: crm & 0xf, op2: op2 & 0b111 }
    }

    /// The class the hypervisor handles this register by.
    pub const fn class(self) -> SysRegClass {
        classify(self)
    }

    /// The architectural name, for registers this module names.
    pub fn name(self) -> Option<&'static str> {
        NAMED.iter().find(|(e, _)| *e == self).map(|(_, n)| *n)
    }

    /// If this is PMEVCNTR<n>_EL0, returns `n`.
    pub const fn pmevcntr_index(self) -> Option<u8> {
        if self.op0 == 3 && self.op1 == 3 && self.crn == 14 && self.crm >= 8 && self.crm < 12 {
            let n = (self.crm - 8) << 3 | self.op2;
            if n < PMU_EVENT_COUNTERS {
                return Some(n);
            }
        }
        None
    }

    /// If this is PMEVTYPER<n>_EL0, returns `n` (PMCCFILTR_EL0 is `None`).
    pub const fn pmevtyper_index(self) -> Option<u8> {
        if self.op0 == 3 && self.op1 == 3 && self.crn == 14 && self.crm >= 12 {
            let n = (self.crm - 12) << 3 | self.op2;
            if n < PMU_EVENT_COUNTERS {
                return Some(n);
            }
        }
        None
    }

    /// If this is one of DBGB{V,C}R<n>_EL1 / DBGW{V,C}R<n>_EL1, returns
    /// which kind and `n`.
    pub const fn debug_breakpoint(self) -> Option<(DebugPointReg, u8)> {
        if self.op0 != 2 || self.op1 != 0 || self.crn != 0 {
            return None;
        }
        let kind = match self.op2 {
            4 => DebugPointReg::Bvr,
            5 => DebugPointReg::Bcr,
            6 => DebugPointReg::Wvr,
            7 => DebugPointReg::Wcr,
            _ => return None,
        };
        Some((kind, self.crm))
    }
}

impl fmt::Display for SysRegEnc {
    /// The name if known (`PMSCR_EL1`, `PMEVCNTR3_EL0`, `DBGBVR2_EL1`),
    /// else the generic `S3_0_C9_C9_0` spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.name() {
            return f.write_str(name);
        }
        if let Some(n) = self.pmevcntr_index() {
            return write!(f, "PMEVCNTR{n}_EL0");
        }
        if let Some(n) = self.pmevtyper_index() {
            return write!(f, "PMEVTYPER{n}_EL0");
        }
        if let Some((kind, n)) = self.debug_breakpoint() {
            let k = match kind {
                DebugPointReg::Bvr => "BVR",
                DebugPointReg::Bcr => "BCR",
                DebugPointReg::Wvr => "WVR",
                DebugPointReg::Wcr => "WCR",
            };
            return write!(f, "DBG{k}{n}_EL1");
        }
        write!(f, "S{}_{}_C{}_C{}_{}", self.op0, self.op1, self.crn, self.crm, self.op2)
    }
}

/// Breakpoint/watchpoint register kinds (op0=2, op1=0, CRn=0, CRm=n).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugPointReg {
    /// DBGBVR<n>_EL1, breakpoint value.
    Bvr,
    /// DBGBCR<n>_EL1, breakpoint control.
    Bcr,
    /// DBGWVR<n>_EL1, watchpoint value.
    Wvr,
    /// DBGWCR<n>_EL1, watchpoint control.
    Wcr,
}

/// How the hypervisor handles a trapped register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysRegClass {
    /// PMUv3 (trapped by MDCR_EL2.TPM/TPMCR, HPMN).
    Pmu,
    /// Statistical Profiling Extension (PMS*, PMB*; MDCR_EL2.TPMS, E2PB).
    Spe,
    /// Self-hosted debug and trace: every op0 = 2 register, plus TRBE
    /// (MDCR_EL2.TDA, TDOSA, TDRA, TTRF, E2TB).
    Debug,
    /// LORegions (HCR_EL2.TLOR).
    Lor,
    /// Anything else.
    Other,
}

/// Event counters PMEVCNTR<n>_EL0 / PMEVTYPER<n>_EL0 exist for n = 0..=30.
pub const PMU_EVENT_COUNTERS: u8 = 31;

const fn enc(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> SysRegEnc {
    SysRegEnc::new(op0, op1, crn, crm, op2)
}

/// PMCR_EL0, performance monitors control.
pub const PMCR_EL0: SysRegEnc = enc(3, 3, 9, 12, 0);
/// PMCNTENSET_EL0, counter enable set.
pub const PMCNTENSET_EL0: SysRegEnc = enc(3, 3, 9, 12, 1);
/// PMCNTENCLR_EL0, counter enable clear.
pub const PMCNTENCLR_EL0: SysRegEnc = enc(3, 3, 9, 12, 2);
/// PMOVSCLR_EL0, overflow status clear.
pub const PMOVSCLR_EL0: SysRegEnc = enc(3, 3, 9, 12, 3);
/// PMSWINC_EL0, software increment.
pub const PMSWINC_EL0: SysRegEnc = enc(3, 3, 9, 12, 4);
/// PMSELR_EL0, event counter selection.
pub const PMSELR_EL0: SysRegEnc = enc(3, 3, 9, 12, 5);
/// PMCEID0_EL0, common event identification 0.
pub const PMCEID0_EL0: SysRegEnc = enc(3, 3, 9, 12, 6);
/// PMCEID1_EL0, common event identification 1.
pub const PMCEID1_EL0: SysRegEnc = enc(3, 3, 9, 12, 7);
/// PMCCNTR_EL0, cycle counter.
pub const PMCCNTR_EL0: SysRegEnc = enc(3, 3, 9, 13, 0);
/// PMXEVTYPER_EL0, selected event type.
pub const PMXEVTYPER_EL0: SysRegEnc = enc(3, 3, 9, 13, 1);
/// PMXEVCNTR_EL0, selected event count.
pub const PMXEVCNTR_EL0: SysRegEnc = enc(3, 3, 9, 13, 2);
/// PMUSERENR_EL0, EL0 access enable.
pub const PMUSERENR_EL0: SysRegEnc = enc(3, 3, 9, 14, 0);
/// PMINTENSET_EL1, overflow interrupt enable set.
pub const PMINTENSET_EL1: SysRegEnc = enc(3, 0, 9, 14, 1);
/// PMINTENCLR_EL1, overflow interrupt enable clear.
pub const PMINTENCLR_EL1: SysRegEnc = enc(3, 0, 9, 14, 2);
/// PMOVSSET_EL0, overflow status set.
pub const PMOVSSET_EL0: SysRegEnc = enc(3, 3, 9, 14, 3);
/// PMMIR_EL1, machine identification.
pub const PMMIR_EL1: SysRegEnc = enc(3, 0, 9, 14, 6);
/// PMCCFILTR_EL0, cycle counter filter (the n = 31 slot of PMEVTYPER).
pub const PMCCFILTR_EL0: SysRegEnc = enc(3, 3, 14, 15, 7);

/// PMEVCNTR<n>_EL0 for n in 0..=30.
pub const fn pmevcntr_el0(n: u8) -> SysRegEnc {
    enc(3, 3, 14, 0b1000 | (n >> 3 & 0b11), n & 0b111)
}

/// PMEVTYPER<n>_EL0 for n in 0..=30.
pub const fn pmevtyper_el0(n: u8) -> SysRegEnc {
    enc(3, 3, 14, 0b1100 | (n >> 3 & 0b11), n & 0b111)
}

/// PMSCR_EL1, SPE sampling control (EL1).
pub const PMSCR_EL1: SysRegEnc = enc(3, 0, 9, 9, 0);
/// PMSNEVFR_EL1, SPE inverted event filter (FEAT_SPEv1p2).
pub const PMSNEVFR_EL1: SysRegEnc = enc(3, 0, 9, 9, 1);
/// PMSICR_EL1, SPE sampling interval counter.
pub const PMSICR_EL1: SysRegEnc = enc(3, 0, 9, 9, 2);
/// PMSIRR_EL1, SPE sampling interval reload.
pub const PMSIRR_EL1: SysRegEnc = enc(3, 0, 9, 9, 3);
/// PMSFCR_EL1, SPE sampling filter control.
pub const PMSFCR_EL1: SysRegEnc = enc(3, 0, 9, 9, 4);
/// PMSEVFR_EL1, SPE sampling event filter.
pub const PMSEVFR_EL1: SysRegEnc = enc(3, 0, 9, 9, 5);
/// PMSLATFR_EL1, SPE sampling latency filter.
pub const PMSLATFR_EL1: SysRegEnc = enc(3, 0, 9, 9, 6);
/// PMSIDR_EL1, SPE sampling ID.
pub const PMSIDR_EL1: SysRegEnc = enc(3, 0, 9, 9, 7);
/// PMBLIMITR_EL1, SPE buffer limit (bit 0: E).
pub const PMBLIMITR_EL1: SysRegEnc = enc(3, 0, 9, 10, 0);
/// PMBPTR_EL1, SPE buffer write pointer.
pub const PMBPTR_EL1: SysRegEnc = enc(3, 0, 9, 10, 1);
/// PMBSR_EL1, SPE buffer status/syndrome.
pub const PMBSR_EL1: SysRegEnc = enc(3, 0, 9, 10, 3);
/// PMBIDR_EL1, SPE buffer ID.
pub const PMBIDR_EL1: SysRegEnc = enc(3, 0, 9, 10, 7);
/// PMSCR_EL2, SPE sampling control (EL2).
pub const PMSCR_EL2: SysRegEnc = enc(3, 4, 9, 9, 0);
/// PMSCR_EL12, EL1's PMSCR accessed from EL2 with E2H.
pub const PMSCR_EL12: SysRegEnc = enc(3, 5, 9, 9, 0);

/// TRBLIMITR_EL1, trace buffer limit (TRBE).
pub const TRBLIMITR_EL1: SysRegEnc = enc(3, 0, 9, 11, 0);
/// TRBPTR_EL1, trace buffer write pointer.
pub const TRBPTR_EL1: SysRegEnc = enc(3, 0, 9, 11, 1);
/// TRBBASER_EL1, trace buffer base.
pub const TRBBASER_EL1: SysRegEnc = enc(3, 0, 9, 11, 2);
/// TRBSR_EL1, trace buffer status.
pub const TRBSR_EL1: SysRegEnc = enc(3, 0, 9, 11, 3);
/// TRBMAR_EL1, trace buffer memory attributes.
pub const TRBMAR_EL1: SysRegEnc = enc(3, 0, 9, 11, 4);
/// TRBTRG_EL1, trace buffer trigger counter.
pub const TRBTRG_EL1: SysRegEnc = enc(3, 0, 9, 11, 6);
/// TRBIDR_EL1, trace buffer ID.
pub const TRBIDR_EL1: SysRegEnc = enc(3, 0, 9, 11, 7);

/// OSDTRRX_EL1, OS lock data transfer (receive).
pub const OSDTRRX_EL1: SysRegEnc = enc(2, 0, 0, 0, 2);
/// MDCCINT_EL1, debug comms channel interrupt enable.
pub const MDCCINT_EL1: SysRegEnc = enc(2, 0, 0, 2, 0);
/// MDSCR_EL1, monitor debug system control.
pub const MDSCR_EL1: SysRegEnc = enc(2, 0, 0, 2, 2);
/// OSDTRTX_EL1, OS lock data transfer (transmit).
pub const OSDTRTX_EL1: SysRegEnc = enc(2, 0, 0, 3, 2);
/// OSECCR_EL1, OS lock exception catch control.
pub const OSECCR_EL1: SysRegEnc = enc(2, 0, 0, 6, 2);
/// MDRAR_EL1, debug ROM address.
pub const MDRAR_EL1: SysRegEnc = enc(2, 0, 1, 0, 0);
/// OSLAR_EL1, OS lock access.
pub const OSLAR_EL1: SysRegEnc = enc(2, 0, 1, 0, 4);
/// OSLSR_EL1, OS lock status.
pub const OSLSR_EL1: SysRegEnc = enc(2, 0, 1, 1, 4);
/// OSDLR_EL1, OS double lock.
pub const OSDLR_EL1: SysRegEnc = enc(2, 0, 1, 3, 4);
/// DBGPRCR_EL1, debug power/reset control.
pub const DBGPRCR_EL1: SysRegEnc = enc(2, 0, 1, 4, 4);
/// DBGCLAIMSET_EL1, claim tag set.
pub const DBGCLAIMSET_EL1: SysRegEnc = enc(2, 0, 7, 8, 6);
/// DBGCLAIMCLR_EL1, claim tag clear.
pub const DBGCLAIMCLR_EL1: SysRegEnc = enc(2, 0, 7, 9, 6);
/// DBGAUTHSTATUS_EL1, authentication status.
pub const DBGAUTHSTATUS_EL1: SysRegEnc = enc(2, 0, 7, 14, 6);
/// MDCCSR_EL0, debug comms channel status.
pub const MDCCSR_EL0: SysRegEnc = enc(2, 3, 0, 1, 0);
/// DBGDTR_EL0, debug data transfer (half-duplex).
pub const DBGDTR_EL0: SysRegEnc = enc(2, 3, 0, 4, 0);
/// DBGDTRRX_EL0 (read) / DBGDTRTX_EL0 (write).
pub const DBGDTRRX_EL0: SysRegEnc = enc(2, 3, 0, 5, 0);
/// DBGVCR32_EL2, AArch32 vector catch.
pub const DBGVCR32_EL2: SysRegEnc = enc(2, 4, 0, 7, 0);

/// DBGBVR<n>_EL1 for n in 0..=15.
pub const fn dbgbvr_el1(n: u8) -> SysRegEnc {
    enc(2, 0, 0, n, 4)
}
/// DBGBCR<n>_EL1 for n in 0..=15.
pub const fn dbgbcr_el1(n: u8) -> SysRegEnc {
    enc(2, 0, 0, n, 5)
}
/// DBGWVR<n>_EL1 for n in 0..=15.
pub const fn dbgwvr_el1(n: u8) -> SysRegEnc {
    enc(2, 0, 0, n, 6)
}
/// DBGWCR<n>_EL1 for n in 0..=15.
pub const fn dbgwcr_el1(n: u8) -> SysRegEnc {
    enc(2, 0, 0, n, 7)
}

/// LORSA_EL1, LORegion start address.
pub const LORSA_EL1: SysRegEnc = enc(3, 0, 10, 4, 0);
/// LOREA_EL1, LORegion end address.
pub const LOREA_EL1: SysRegEnc = enc(3, 0, 10, 4, 1);
/// LORN_EL1, LORegion number.
pub const LORN_EL1: SysRegEnc = enc(3, 0, 10, 4, 2);
/// LORC_EL1, LORegion control.
pub const LORC_EL1: SysRegEnc = enc(3, 0, 10, 4, 3);
/// LORID_EL1, LORegion ID.
pub const LORID_EL1: SysRegEnc = enc(3, 0, 10, 4, 7);

/// Registers with a fixed name, for [`SysRegEnc::name`].
const NAMED: &[(SysRegEnc, &str)] = &[
    (PMCR_EL0, "PMCR_EL0"),
    (PMCNTENSET_EL0, "PMCNTENSET_EL0"),
    (PMCNTENCLR_EL0, "PMCNTENCLR_EL0"),
    (PMOVSCLR_EL0, "PMOVSCLR_EL0"),
    (PMSWINC_EL0, "PMSWINC_EL0"),
    (PMSELR_EL0, "PMSELR_EL0"),
    (PMCEID0_EL0, "PMCEID0_EL0"),
    (PMCEID1_EL0, "PMCEID1_EL0"),
    (PMCCNTR_EL0, "PMCCNTR_EL0"),
    (PMXEVTYPER_EL0, "PMXEVTYPER_EL0"),
    (PMXEVCNTR_EL0, "PMXEVCNTR_EL0"),
    (PMUSERENR_EL0, "PMUSERENR_EL0"),
    (PMINTENSET_EL1, "PMINTENSET_EL1"),
    (PMINTENCLR_EL1, "PMINTENCLR_EL1"),
    (PMOVSSET_EL0, "PMOVSSET_EL0"),
    (PMMIR_EL1, "PMMIR_EL1"),
    (PMCCFILTR_EL0, "PMCCFILTR_EL0"),
    (PMSCR_EL1, "PMSCR_EL1"),
    (PMSNEVFR_EL1, "PMSNEVFR_EL1"),
    (PMSICR_EL1, "PMSICR_EL1"),
    (PMSIRR_EL1, "PMSIRR_EL1"),
    (PMSFCR_EL1, "PMSFCR_EL1"),
    (PMSEVFR_EL1, "PMSEVFR_EL1"),
    (PMSLATFR_EL1, "PMSLATFR_EL1"),
    (PMSIDR_EL1, "PMSIDR_EL1"),
    (PMBLIMITR_EL1, "PMBLIMITR_EL1"),
    (PMBPTR_EL1, "PMBPTR_EL1"),
    (PMBSR_EL1, "PMBSR_EL1"),
    (PMBIDR_EL1, "PMBIDR_EL1"),
    (PMSCR_EL2, "PMSCR_EL2"),
    (PMSCR_EL12, "PMSCR_EL12"),
    (TRBLIMITR_EL1, "TRBLIMITR_EL1"),
    (TRBPTR_EL1, "TRBPTR_EL1"),
    (TRBBASER_EL1, "TRBBASER_EL1"),
    (TRBSR_EL1, "TRBSR_EL1"),
    (TRBMAR_EL1, "TRBMAR_EL1"),
    (TRBTRG_EL1, "TRBTRG_EL1"),
    (TRBIDR_EL1, "TRBIDR_EL1"),
    (OSDTRRX_EL1, "OSDTRRX_EL1"),
    (MDCCINT_EL1, "MDCCINT_EL1"),
    (MDSCR_EL1, "MDSCR_EL1"),
    (OSDTRTX_EL1, "OSDTRTX_EL1"),
    (OSECCR_EL1, "OSECCR_EL1"),
    (MDRAR_EL1, "MDRAR_EL1"),
    (OSLAR_EL1, "OSLAR_EL1"),
    (OSLSR_EL1, "OSLSR_EL1"),
    (OSDLR_EL1, "OSDLR_EL1"),
    (DBGPRCR_EL1, "DBGPRCR_EL1"),
    (DBGCLAIMSET_EL1, "DBGCLAIMSET_EL1"),
    (DBGCLAIMCLR_EL1, "DBGCLAIMCLR_EL1"),
    (DBGAUTHSTATUS_EL1, "DBGAUTHSTATUS_EL1"),
    (MDCCSR_EL0, "MDCCSR_EL0"),
    (DBGDTR_EL0, "DBGDTR_EL0"),
    (DBGDTRRX_EL0, "DBGDTRRX_EL0"),
    (DBGVCR32_EL2, "DBGVCR32_EL2"),
    (LORSA_EL1, "LORSA_EL1"),
    (LOREA_EL1, "LOREA_EL1"),
    (LORN_EL1, "LORN_EL1"),
    (LORC_EL1, "LORC_EL1"),
    (LORID_EL1, "LORID_EL1"),
];

/// Classifies a register by the trap group the hypervisor handles it in.
///
/// - PMU: op0=3 op1=3 CRn=9 CRm=12..=14 (PMCR ... PMOVSSET), op0=3 op1=0
///   CRn=9 CRm=14 op2=1/2/6 (PMINTENSET/CLR, PMMIR), and op0=3 op1=3
///   CRn=14 CRm=8..=15 (PMEVCNTR<n>, PMEVTYPER<n>, PMCCFILTR).
/// - SPE: op0=3 CRn=9 CRm=9 or 10 with op1=0 (EL1), 4 (PMSCR_EL2) or 5
///   (PMSCR_EL12) (Arm ARM D24, "Statistical Profiling Extension registers").
/// - Debug: all of op0=2, and the TRBE registers (op0=3 op1=0 CRn=9 CRm=11).
/// - LOR: op0=3 op1=0 CRn=10 CRm=4.
pub const fn classify(e: SysRegEnc) -> SysRegClass {
    match (e.op0, e.op1, e.crn, e.crm, e.op2) {
        (3, 3, 9, 12..=14, _) | (3, 0, 9, 14, 1 | 2 | 6) | (3, 3, 14, 8..=15, _) => SysRegClass::Pmu,
        (3, 0 | 4 | 5, 9, 9 | 10, _) => SysRegClass::Spe,
        (2, _, _, _, _) | (3, 0, 9, 11, _) => SysRegClass::Debug,
        (3, 0, 10, 4, _) => SysRegClass::Lor,
        _ => SysRegClass::Other,
    }
}
