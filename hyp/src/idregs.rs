//! What guests see of the CPU's ID registers. HCR_EL2.TID3 traps guest reads
//! of the "ID group 3" space (op0 = 3, op1 = 0, CRn = 0, CRm = 1..=7); EL2
//! answers from a table read once at boot, with the features guests do not
//! get hidden, so guest software never probes them:
//!
//! - the PMU (MDCR_EL2.TPM traps it; the host profiles itself, not guests),
//! - SPE and TRBE (the buffer belongs to the host; MDCR_EL2.E2PB/TPMS trap),
//! - SVE and SME (CPTR_EL2.TZ/TSM trap them),
//! - trace, BRBE, AMU, MPAM, MTE, GCS, LS64, MOPS and the TCR2/SCTLR2/
//!   permission-indirection family: not context-switched. Trace, the trace
//!   filter and the activity monitors are also trapped where they exist
//!   (CPTR_EL2.TTA/TAM, MDCR_EL2.TTRF: `traps.rs`), so a guest that ignores
//!   its ID registers still cannot reach the host's; MTE and the HCRX_EL2
//!   family stay disabled for EL1 (HCR_EL2.ATA clear, HCRX_EL2 = 0).
//!
//! The debug fields stay: BRPs, WRPs and CTX_CMPs are what guests really
//! get (every comparator is switched, `debug.rs`, and the host uses none),
//! DebugVer and DoubleLock as the CPU has them (the OS double lock is
//! emulated where it exists).
//!
//! Pure: the table is built from a reader the caller provides.

/// Number of (CRm, op2) slots: CRm 1..=7, op2 0..=7.
const SLOTS: usize = 7 * 8;

/// A 4-bit ID field at `shift`.
const fn field(shift: u32) -> u64 {
    0xf << shift
}

/// (CRm, op2, fields cleared) for each register that hides something.
/// Anything whose registers the world switch does not carry, or whose
/// enables EL2 keeps off (HCRX_EL2 = 0, no fine-grained traps lifted:
/// `arch::init_el2_controls`), reads as absent.
const HIDDEN: &[(u8, u8, u64)] = &[
    // ID_DFR0_EL1 (AArch32 view): PerfMon, MMapTrc, CopTrc.
    (1, 2, field(24) | field(16) | field(12)),
    // ID_AA64PFR0_EL1: SVE, MPAM, AMU, RME.
    (4, 0, field(32) | field(40) | field(44) | field(52)),
    // ID_AA64PFR1_EL1: MTE, MPAM_frac, SME, NMI, GCS, THE.
    (4, 1, field(8) | field(16) | field(24) | field(36) | field(44) | field(48)),
    // ID_AA64PFR2_EL1 (FPMR, MTE extensions, ...): all.
    (4, 2, u64::MAX),
    // ID_AA64ZFR0_EL1 (SVE) and ID_AA64SMFR0_EL1 (SME): all.
    (4, 4, u64::MAX),
    (4, 5, u64::MAX),
    // ID_AA64DFR0_EL1: TraceVer, PMUVer, PMSS, SEBEP, PMSVer, TraceFilt,
    // TraceBuffer, MTPMU, BRBE, ExtTrcBuff, HPMN0.
    (
        5,
        0,
        field(4)
            | field(8)
            | field(16)
            | field(24)
            | field(32)
            | field(40)
            | field(44)
            | field(48)
            | field(52)
            | field(56)
            | field(60),
    ),
    // ID_AA64DFR1_EL1: all.
    (5, 1, u64::MAX),
    // ID_AA64ISAR1_EL1: LS64 (needs HCRX_EL2 enables).
    (6, 1, field(60)),
    // ID_AA64ISAR2_EL1: MOPS (needs HCRX_EL2.MSCEn), SYSREG_128.
    (6, 2, field(16) | field(32)),
    // ID_AA64MMFR3_EL1 (TCR2, SCTLR2, permission indirection and overlays,
    // ...: EL1 registers the world switch does not carry): all.
    (7, 3, u64::MAX),
];

/// The guest's view of the ID group 3 registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdRegs {
    values: [u64; SLOTS],
}

impl IdRegs {
    /// Builds the table: `read(crm, op2)` is the CPU's register (0 where
    /// nothing is allocated), then the hidden fields are cleared.
    pub fn new(read: impl Fn(u8, u8) -> u64) -> Self {
        let mut values = [0; SLOTS];
        for (i, v) in values.iter_mut().enumerate() {
            let (crm, op2) = ((i / 8) as u8 + 1, (i % 8) as u8);
            let hide = HIDDEN.iter().find(|h| h.0 == crm && h.1 == op2).map_or(0, |h| h.2);
            *v = read(crm, op2) & !hide;
        }
        Self { values }
    }

    /// An all-zero table (before boot has read the CPU).
    pub const fn empty() -> Self {
        Self { values: [0; SLOTS] }
    }

    /// The guest's value of (op0 3, op1 0, CRn 0, `crm`, `op2`); `None`
    /// outside the group.
    pub fn get(&self, crm: u8, op2: u8) -> Option<u64> {
        if !(1..=7).contains(&crm) || op2 > 7 {
            return None;
        }
        Some(self.values[(crm as usize - 1) * 8 + op2 as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_features_read_as_absent_the_rest_as_the_cpu() {
        // Every register all ones, so each cleared field shows.
        let t = IdRegs::new(|_, _| u64::MAX);
        let dfr0 = t.get(5, 0).unwrap();
        assert_eq!((dfr0 >> 8) & 0xf, 0, "PMUVer");
        assert_eq!((dfr0 >> 32) & 0xf, 0, "PMSVer");
        assert_eq!((dfr0 >> 44) & 0xf, 0, "TraceBuffer");
        assert_eq!(dfr0 & 0xf, 0xf, "DebugVer stays");
        assert_eq!((dfr0 >> 12) & 0xf, 0xf, "BRPs stay");
        assert_eq!((dfr0 >> 20) & 0xf, 0xf, "WRPs stay");
        assert_eq!((dfr0 >> 28) & 0xf, 0xf, "CTX_CMPs stay");
        assert_eq!((dfr0 >> 36) & 0xf, 0xf, "DoubleLock stays");
        let pfr0 = t.get(4, 0).unwrap();
        assert_eq!((pfr0 >> 32) & 0xf, 0, "SVE");
        assert_eq!(pfr0 & 0xffff, 0xffff, "EL0..EL3 fields stay");
        assert_eq!(t.get(4, 4), Some(0), "ZFR0");
        assert_eq!((t.get(4, 1).unwrap() >> 8) & 0xf, 0, "MTE");
        assert_eq!(t.get(7, 3), Some(0), "MMFR3: no TCR2/SCTLR2/permission indirection");
        assert_eq!((t.get(6, 2).unwrap() >> 16) & 0xf, 0, "ISAR2.MOPS");
        assert_eq!((t.get(4, 1).unwrap() >> 44) & 0xf, 0, "PFR1.GCS");
        assert_eq!(t.get(4, 2), Some(0), "PFR2");
        assert_eq!(t.get(7, 0), Some(u64::MAX), "MMFR0 untouched");
        assert_eq!(t.get(6, 1), Some(u64::MAX >> 4), "ISAR1: pointer authentication stays, LS64 goes");
    }

    #[test]
    fn the_table_covers_the_group_and_nothing_else() {
        let t = IdRegs::new(|crm, op2| (crm as u64) << 8 | op2 as u64);
        assert_eq!(t.get(7, 7), Some(0x707));
        assert_eq!(t.get(1, 0), Some(0x100));
        assert_eq!(t.get(0, 0), None, "MIDR and friends are not trapped by TID3");
        assert_eq!(t.get(8, 0), None);
        assert_eq!(t.get(1, 8), None);
    }
}
