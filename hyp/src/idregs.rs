//! What guests see of the CPU's ID registers. HCR_EL2.TID3 traps guest reads
//! of the "ID group 3" space (op0 = 3, op1 = 0, CRn = 0, CRm = 1..=7); EL2
//! answers from a table built once at boot.
//!
//! **An allowlist.** Every field a guest sees is one listed in [`OFFERED`]
//! with the highest value offered; a field not listed (a feature added to
//! the architecture after this table, or one guests do not get) reads as
//! "not implemented", and a register not listed reads as 0. So a new CPU
//! feature is hidden until someone decides to offer it. Each field is one
//! of:
//!
//! - [`Kind::Unsigned`]: 0 = absent, higher values add to lower ones; the
//!   guest sees `min(cpu, max)`;
//! - [`Kind::Signed`]: 0xF = not implemented (FP, AdvSIMD, TGran4, TGran64,
//!   DoubleLock); the guest sees 0xF if the CPU says so, else `min(cpu, max)`;
//! - [`Kind::Pmu`]: a PMU version where 0xF is IMPLEMENTATION DEFINED (not
//!   PMUv3): [`crate::pmu::offered_pmuver`] decides (nothing below PMUv3p1,
//!   at most PMUv3p5).
//!
//! Not offered (absent from the table): SVE and SME (CPTR_EL2.TZ/TSM trap
//! them), SPE and TRBE (the buffers belong to the host; MDCR_EL2.E2PB/TPMS
//! trap), trace, BRBE, AMU, MPAM, MTE, GCS, LS64, MOPS, TME, LORegions, the
//! TCR2/SCTLR2/permission-indirection family (ID_AA64MMFR3), ID_AA64PFR2,
//! ID_AA64DFR1/2, ID_AA64ISAR3, ID_AA64MMFR4, the auxiliary feature
//! registers, and EL2-only features a guest at EL1 cannot use (nested
//! virtualisation, FWB, EVT, FGT, HCX): not context-switched, and the
//! trapped ones (trace and activity monitors: CPTR_EL2.TTA/TAM; MDCR_EL2.
//! TTRF; LORegions: HCR_EL2.TLOR) give UNDEF. The PMU is offered
//! (`pmu.rs`). The AArch32 registers (CRm 1..=3) describe AArch32 EL0,
//! which guests keep: the AArch32 ID space no longer grows, so they are
//! offered field by field as the CPU has them, except the debug view
//! (ID_DFR0_EL1: PerfMon like PMUVer, no trace).
//!
//! The debug fields stay: BRPs, WRPs and CTX_CMPs are what guests really
//! get (every comparator is switched, `debug.rs`, and the host uses none),
//! DebugVer and DoubleLock as the CPU has them (the OS double lock is
//! emulated where it exists).
//!
//! Pure: the table is built from a reader the caller provides.

use crate::pmu::offered_pmuver;

/// Number of (CRm, op2) slots: CRm 1..=7, op2 0..=7.
const SLOTS: usize = 7 * 8;

/// How a field's value is read ([module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Unsigned,
    Signed,
    Pmu,
}

/// One 4-bit field offered to guests: at `shift`, at most `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub shift: u32,
    pub max: u64,
    pub kind: Kind,
}

/// Not implemented, for a [`Kind::Signed`] field.
pub const SIGNED_ABSENT: u64 = 0xf;

const fn u(shift: u32, max: u64) -> Field {
    Field { shift, max, kind: Kind::Unsigned }
}

const fn s(shift: u32, max: u64) -> Field {
    Field { shift, max, kind: Kind::Signed }
}

/// Every 4-bit field of a 32-bit register (fields 0..=7), offered as the
/// CPU has it: the AArch32 registers ([module docs](self)).
const AARCH32_ALL: &[Field] =
    &[u(0, 0xf), u(4, 0xf), u(8, 0xf), u(12, 0xf), u(16, 0xf), u(20, 0xf), u(24, 0xf), u(28, 0xf)];

/// A register: (CRm, op2, fields offered).
type Offer = (u8, u8, &'static [Field]);

/// The offered fields of each ID group 3 register; registers not here read
/// as 0. Maxima are the highest value the architecture defined when the
/// entry was written, so a later feature level stays hidden.
pub const OFFERED: &[Offer] = &[
    // AArch32: ID_PFR0 (State0..3, CSV2, DIT, RAS; not AMU), ID_PFR1,
    // ID_MMFR0..3, ID_ISAR0..5, ID_MMFR4, ID_ISAR6, MVFR0..2, ID_PFR2
    // (CSV3, SSBS, RAS_frac), ID_MMFR5. Not ID_AFR0 (IMPLEMENTATION
    // DEFINED) or ID_DFR1 (MTPMU, HPMN0).
    (1, 0, &[u(0, 0xf), u(4, 0xf), u(8, 0xf), u(12, 0xf), u(16, 0xf), u(24, 0xf), u(28, 0xf)]),
    (1, 1, AARCH32_ALL),
    // ID_DFR0_EL1: CopDbg, CopSDbg, MMapDbg, PerfMon (like PMUVer); not
    // CopTrc, MMapTrc, MProfDbg, TraceFilt.
    (1, 2, &[u(0, 0xf), u(4, 0xf), u(8, 0xf), Field { shift: 24, max: 0, kind: Kind::Pmu }]),
    (1, 4, AARCH32_ALL),
    (1, 5, AARCH32_ALL),
    (1, 6, AARCH32_ALL),
    (1, 7, AARCH32_ALL),
    (2, 0, AARCH32_ALL),
    (2, 1, AARCH32_ALL),
    (2, 2, AARCH32_ALL),
    (2, 3, AARCH32_ALL),
    (2, 4, AARCH32_ALL),
    (2, 5, AARCH32_ALL),
    (2, 6, AARCH32_ALL),
    (2, 7, AARCH32_ALL),
    (3, 0, AARCH32_ALL),
    (3, 1, AARCH32_ALL),
    (3, 2, AARCH32_ALL),
    (3, 4, &[u(0, 0xf), u(4, 0xf), u(8, 0xf)]),
    (3, 6, AARCH32_ALL),
    // ID_AA64PFR0_EL1: EL0, EL1, EL2, EL3, FP, AdvSIMD, GIC (the vGIC is a
    // GICv3: at most 1; 0 on a GICv2 host, whose CPU says 0), RAS, SEL2,
    // DIT, CSV2, CSV3. Not SVE, MPAM, AMU, RME.
    (
        4,
        0,
        &[
            u(0, 2),
            u(4, 2),
            u(8, 2),
            u(12, 2),
            s(16, 1),
            s(20, 1),
            u(24, 1),
            u(28, 3),
            u(36, 1),
            u(48, 1),
            u(56, 3),
            u(60, 1),
        ],
    ),
    // ID_AA64PFR1_EL1: BT, SSBS, RAS_frac, RNDR_trap, CSV2_frac. Not MTE,
    // MPAM_frac, SME, NMI, MTE_frac, GCS, THE, MTEX, DF2, PFAR.
    (4, 1, &[u(0, 1), u(4, 2), u(12, 1), u(28, 1), u(32, 2)]),
    // ID_AA64DFR0_EL1: DebugVer, PMUVer, BRPs, WRPs, CTX_CMPs, DoubleLock.
    // Not TraceVer, PMSS, SEBEP, PMSVer, TraceFilt, TraceBuffer, MTPMU,
    // BRBE, ExtTrcBuff, HPMN0.
    (5, 0, &[u(0, 0xb), Field { shift: 8, max: 0, kind: Kind::Pmu }, u(12, 0xf), u(20, 0xf), u(28, 0xf), s(36, 0)]),
    // ID_AA64ISAR0_EL1: AES, SHA1, SHA2, CRC32, Atomic, RDM, SHA3, SM3,
    // SM4, DP, FHM, TS, TLB, RNDR. Not TME.
    (
        6,
        0,
        &[
            u(4, 2),
            u(8, 1),
            u(12, 2),
            u(16, 1),
            u(20, 3),
            u(28, 1),
            u(32, 1),
            u(36, 1),
            u(40, 1),
            u(44, 1),
            u(48, 1),
            u(52, 2),
            u(56, 2),
            u(60, 1),
        ],
    ),
    // ID_AA64ISAR1_EL1: DPB, APA, API, JSCVT, FCMA, LRCPC, GPA, GPI,
    // FRINTTS, SB, SPECRES, BF16, DGH, I8MM, XS. Not LS64.
    (
        6,
        1,
        &[
            u(0, 2),
            u(4, 5),
            u(8, 5),
            u(12, 1),
            u(16, 1),
            u(20, 3),
            u(24, 1),
            u(28, 1),
            u(32, 1),
            u(36, 1),
            u(40, 2),
            u(44, 2),
            u(48, 1),
            u(52, 1),
            u(56, 1),
        ],
    ),
    // ID_AA64ISAR2_EL1: WFxT, RPRES, GPA3, APA3, BC, PAC_frac, CLRBHB. Not
    // MOPS (HCRX_EL2.MSCEn), SYSREG_128, SYSINSTR_128 and later fields.
    (6, 2, &[u(0, 2), u(4, 1), u(8, 1), u(12, 5), u(20, 1), u(24, 1), u(28, 1)]),
    // ID_AA64MMFR0_EL1: PARange, ASIDBits, BigEnd, SNSMem, BigEndEL0,
    // TGran16 (0 = absent), TGran64 and TGran4 (signed: 0 = present, 0xF =
    // absent), TGran16_2/64_2/4_2 (stage 2), ExS, ECV (at most the
    // self-synchronising counter views). Not FGT (EL2's).
    (
        7,
        0,
        &[
            u(0, 6),
            u(4, 2),
            u(8, 1),
            u(12, 1),
            u(16, 1),
            u(20, 2),
            s(24, 0),
            s(28, 1),
            u(32, 3),
            u(36, 2),
            u(40, 3),
            u(44, 1),
            u(60, 1),
        ],
    ),
    // ID_AA64MMFR1_EL1: HAFDBS, VMIDBits, VH, HPDS, PAN, SpecSEI, XNX, TWED,
    // ETS, AFP, nTLBPA, TIDCP1, CMOW, ECBHB. Not LO (HCR_EL2.TLOR traps the
    // registers), HCX.
    (
        7,
        1,
        &[
            u(0, 2),
            u(4, 2),
            u(8, 1),
            u(12, 2),
            u(20, 3),
            u(24, 1),
            u(28, 1),
            u(32, 1),
            u(36, 2),
            u(44, 1),
            u(48, 1),
            u(52, 1),
            u(56, 1),
            u(60, 1),
        ],
    ),
    // ID_AA64MMFR2_EL1: CnP, UAO, LSM, IESB, VARange, CCIDX, ST, AT, IDS,
    // TTL, BBM, E0PD. Not NV, FWB, EVT (EL2's).
    (
        7,
        2,
        &[
            u(0, 1),
            u(4, 1),
            u(8, 1),
            u(12, 1),
            u(16, 2),
            u(20, 1),
            u(28, 1),
            u(32, 1),
            u(36, 1),
            u(48, 1),
            u(52, 2),
            u(60, 1),
        ],
    ),
];

/// The value guests see of field `f` whose CPU value is `cpu` (4 bits).
pub const fn offer_field(f: Field, cpu: u64) -> u64 {
    match f.kind {
        Kind::Unsigned => {
            if cpu < f.max {
                cpu
            } else {
                f.max
            }
        }
        Kind::Signed => {
            if cpu == SIGNED_ABSENT {
                SIGNED_ABSENT
            } else if cpu < f.max {
                cpu
            } else {
                f.max
            }
        }
        Kind::Pmu => offered_pmuver(cpu),
    }
}

/// The guest's value of a register whose CPU value is `cpu`, offering
/// `fields`: each from the CPU, capped; every other field absent (0).
pub fn offer_register(fields: &[Field], cpu: u64) -> u64 {
    fields.iter().fold(0, |v, f| v | offer_field(*f, (cpu >> f.shift) & 0xf) << f.shift)
}

/// The guest's view of the ID group 3 registers, and the PMU it gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdRegs {
    values: [u64; SLOTS],
    pmu: crate::pmu::PmuConfig,
}

impl IdRegs {
    /// Builds the table: `read(crm, op2)` is the CPU's register (0 where
    /// nothing is allocated), of which guests see what [`OFFERED`] offers.
    /// No PMU until [`with_pmu`](Self::with_pmu).
    pub fn new(read: impl Fn(u8, u8) -> u64) -> Self {
        let mut values = [0; SLOTS];
        for &(crm, op2, fields) in OFFERED {
            values[slot(crm, op2)] = offer_register(fields, read(crm, op2));
        }
        Self { values, pmu: crate::pmu::PmuConfig::none() }
    }

    /// Gives guests the PMU `cfg` describes (its PMUVer is the one the
    /// table offers: both come from [`offered_pmuver`]).
    pub fn with_pmu(mut self, cfg: crate::pmu::PmuConfig) -> Self {
        self.pmu = cfg;
        self
    }

    /// An all-zero table (before boot has read the CPU).
    pub const fn empty() -> Self {
        Self { values: [0; SLOTS], pmu: crate::pmu::PmuConfig::none() }
    }

    /// The guest's value of (op0 3, op1 0, CRn 0, `crm`, `op2`); `None`
    /// outside the group.
    pub fn get(&self, crm: u8, op2: u8) -> Option<u64> {
        if !(1..=7).contains(&crm) || op2 > 7 {
            return None;
        }
        Some(self.values[slot(crm, op2)])
    }

    /// The PMU guests get.
    pub fn pmu(&self) -> &crate::pmu::PmuConfig {
        &self.pmu
    }
}

/// Index of (CRm, op2) in the table.
const fn slot(crm: u8, op2: u8) -> usize {
    (crm as usize - 1) * 8 + op2 as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(v: u64, shift: u32) -> u64 {
        (v >> shift) & 0xf
    }

    #[test]
    fn all_ones_gives_only_the_offered_fields_at_their_caps() {
        let t = IdRegs::new(|_, _| u64::MAX);
        for crm in 1..=7u8 {
            for op2 in 0..8u8 {
                let v = t.get(crm, op2).unwrap();
                let Some(&(_, _, fields)) = OFFERED.iter().find(|o| o.0 == crm && o.1 == op2) else {
                    assert_eq!(v, 0, "register ({crm}, {op2}) not offered reads 0");
                    continue;
                };
                let mut expect = 0;
                for f in fields {
                    let want = match f.kind {
                        Kind::Unsigned => f.max,
                        Kind::Signed => SIGNED_ABSENT,
                        Kind::Pmu => 0,
                    };
                    assert_eq!(field(v, f.shift), want, "({crm}, {op2}) field at {}", f.shift);
                    expect |= 0xf << f.shift;
                }
                assert_eq!(v & !expect, 0, "({crm}, {op2}): only offered fields");
            }
        }
    }

    #[test]
    fn unknown_fields_and_hidden_features_stay_hidden() {
        let t = IdRegs::new(|_, _| u64::MAX);
        let dfr0 = t.get(5, 0).unwrap();
        assert_eq!(field(dfr0, 8), 0, "PMUVer 0xF is IMPLEMENTATION DEFINED: no PMU");
        assert_eq!(field(dfr0, 32), 0, "PMSVer");
        assert_eq!(field(dfr0, 44), 0, "TraceBuffer");
        assert_eq!(field(dfr0, 4), 0, "TraceVer");
        assert_eq!(field(dfr0, 12), 0xf, "BRPs stay");
        assert_eq!(field(dfr0, 20), 0xf, "WRPs stay");
        assert_eq!(field(dfr0, 28), 0xf, "CTX_CMPs stay");
        let pfr0 = t.get(4, 0).unwrap();
        assert_eq!(field(pfr0, 32), 0, "SVE");
        assert_eq!(field(pfr0, 44), 0, "AMU");
        assert_eq!(t.get(4, 4), Some(0), "ZFR0");
        assert_eq!(t.get(4, 2), Some(0), "PFR2");
        assert_eq!(t.get(7, 3), Some(0), "MMFR3: no TCR2/SCTLR2/permission indirection");
        assert_eq!(t.get(6, 3), Some(0), "ISAR3: a register added later");
        assert_eq!(field(t.get(4, 1).unwrap(), 8), 0, "MTE");
        assert_eq!(field(t.get(4, 1).unwrap(), 44), 0, "GCS");
        assert_eq!(field(t.get(6, 2).unwrap(), 16), 0, "MOPS");
        assert_eq!(field(t.get(6, 1).unwrap(), 60), 0, "LS64");
        assert_eq!(field(t.get(7, 1).unwrap(), 16), 0, "LO: the registers trap");
        // A field no table entry names (ID_AA64ISAR2_EL1 bits [63:60]): the
        // CPU's 0x5 there never reaches a guest.
        let t = IdRegs::new(|crm, op2| if (crm, op2) == (6, 2) { 0x5 << 60 | 0x2 } else { 0 });
        assert_eq!(t.get(6, 2), Some(0x2), "WFxT offered, the unknown field hidden");
    }

    #[test]
    fn offered_fields_are_capped_for_every_cpu_value() {
        for &(crm, op2, fields) in OFFERED {
            for f in fields {
                for cpu in 0..=0xfu64 {
                    let t = IdRegs::new(|c, o| if (c, o) == (crm, op2) { cpu << f.shift } else { 0 });
                    let got = field(t.get(crm, op2).unwrap(), f.shift);
                    match f.kind {
                        Kind::Unsigned => assert_eq!(got, cpu.min(f.max), "({crm},{op2})@{}", f.shift),
                        Kind::Signed if cpu == SIGNED_ABSENT => assert_eq!(got, SIGNED_ABSENT),
                        Kind::Signed => assert_eq!(got, cpu.min(f.max)),
                        Kind::Pmu => assert_eq!(got, offered_pmuver(cpu)),
                    }
                    assert!(got <= f.max || f.kind != Kind::Unsigned);
                    let others = t.get(crm, op2).unwrap() & !(0xf << f.shift);
                    assert_eq!(others, 0, "one field does not leak into another");
                }
            }
        }
    }

    #[test]
    fn fields_whose_absence_is_not_zero_are_in_the_table_as_signed() {
        // TGran4 [31:28] and TGran64 [27:24]: 0 means "supported", so a
        // CPU without them must not read as having them.
        let t = IdRegs::new(|crm, op2| if (crm, op2) == (7, 0) { 0xff << 24 | 5 } else { 0 });
        let mmfr0 = t.get(7, 0).unwrap();
        assert_eq!(field(mmfr0, 28), 0xf, "TGran4 absent stays absent");
        assert_eq!(field(mmfr0, 24), 0xf, "TGran64 absent stays absent");
        assert_eq!(field(mmfr0, 0), 5, "PARange");
        // FP and AdvSIMD: 0xF = absent, 0 = present.
        let t = IdRegs::new(|crm, op2| if (crm, op2) == (4, 0) { 0xff << 16 | 0x11 } else { 0 });
        assert_eq!(field(t.get(4, 0).unwrap(), 16), 0xf);
        assert_eq!(field(t.get(4, 0).unwrap(), 20), 0xf);
        let t = IdRegs::new(|crm, op2| if (crm, op2) == (4, 0) { 0x11 } else { 0 });
        assert_eq!(field(t.get(4, 0).unwrap(), 16), 0, "FP present");
        // The table has them as signed (removing them would read 0 = present).
        let kinds = |crm: u8, op2: u8, shift: u32| {
            OFFERED.iter().find(|o| o.0 == crm && o.1 == op2).unwrap().2.iter().find(|f| f.shift == shift).unwrap().kind
        };
        assert_eq!(kinds(7, 0, 28), Kind::Signed);
        assert_eq!(kinds(7, 0, 24), Kind::Signed);
        assert_eq!(kinds(4, 0, 16), Kind::Signed);
        assert_eq!(kinds(4, 0, 20), Kind::Signed);
    }

    #[test]
    fn the_pmu_is_offered_from_pmuv3p1_up_to_pmuv3p5() {
        let dfr0 = |pmuver: u64| {
            let t = IdRegs::new(|crm, op2| if (crm, op2) == (5, 0) { pmuver << 8 | 0x6 } else { 0 });
            field(t.get(5, 0).unwrap(), 8)
        };
        assert_eq!(dfr0(0b0001), 0, "PMUv3 without HPMD");
        assert_eq!(dfr0(0b0100), 0b0100);
        assert_eq!(dfr0(0b0101), 0b0101, "QEMU 7.2 max: PMUv3p4");
        assert_eq!(dfr0(0b0111), 0b0110, "capped at PMUv3p5");
        let t = IdRegs::new(|crm, op2| if (crm, op2) == (1, 2) { 0x5 << 24 | 0xff << 12 } else { 0 });
        assert_eq!(t.get(1, 2), Some(0x5 << 24), "ID_DFR0: PerfMon as PMUVer, no trace");
    }

    #[test]
    fn every_table_entry_is_a_distinct_register_of_the_group() {
        for (i, a) in OFFERED.iter().enumerate() {
            assert!((1..=7).contains(&a.0) && a.1 <= 7);
            assert!(OFFERED[i + 1..].iter().all(|b| (b.0, b.1) != (a.0, a.1)), "({}, {}) twice", a.0, a.1);
            for (j, f) in a.2.iter().enumerate() {
                assert!(f.shift % 4 == 0 && f.shift < 64 && f.max <= 0xf);
                assert!(a.2[j + 1..].iter().all(|g| g.shift != f.shift));
            }
        }
    }

    #[test]
    fn the_table_covers_the_group_and_nothing_else() {
        let t = IdRegs::new(|crm, op2| (crm as u64) << 8 | op2 as u64);
        assert_eq!(t.get(1, 0), Some(0x100), "AArch32 ID_PFR0 as the CPU's");
        assert_eq!(t.get(0, 0), None, "MIDR and friends are not trapped by TID3");
        assert_eq!(t.get(8, 0), None);
        assert_eq!(t.get(1, 8), None);
    }
}
