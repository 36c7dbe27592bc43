//! SPE system registers: bitfields, encodings and pure decoders.
//!
//! Field names follow the Arm ARM (DDI 0487). The bitfield definitions use
//! tock-registers so that both the hardware backend (`hw`, aarch64 only)
//! and the software model ([`crate::model`]) interpret values the same way.
//!
//! Assemblers do not always know the SPE register names, so every register
//! also has its generic `S3_<op1>_C<n>_C<m>_<op2>` name in [`SysRegEncoding`].

use tock_registers::fields::Field;
use tock_registers::{LocalRegisterCopy, RegisterLongName};

pub use bitfields::*;

#[cfg(target_arch = "aarch64")]
pub mod hw;

/// The tock-registers definitions (re-exported at the module root).
mod bitfields {
    // The macro generates undocumented helper items.
    #![allow(missing_docs)]
    use tock_registers::register_bitfields;

    register_bitfields! {u64,
        /// ID_AA64DFR0_EL1 (only the SPE version field is described here).
        pub ID_AA64DFR0_EL1 [
            /// Statistical Profiling Extension version.
            PMSVer OFFSET(32) NUMBITS(4) [
                NotImplemented = 0,
                SPE = 1,
                SPEv1p1 = 2,
                SPEv1p2 = 3,
                SPEv1p3 = 4,
                SPEv1p4 = 5
            ]
        ],

        /// Statistical Profiling Control Register (EL1).
        pub PMSCR_EL1 [
            /// Physical timestamp select (with PMSCR_EL2.PCT).
            PCT OFFSET(6) NUMBITS(2) [],
            /// Timestamp enable: records end with a TIMESTAMP packet.
            TS OFFSET(5) NUMBITS(1) [],
            /// Physical address sample enable.
            PA OFFSET(4) NUMBITS(1) [],
            /// CONTEXTIDR_EL1 sample enable.
            CX OFFSET(3) NUMBITS(1) [],
            /// EL1 sample enable.
            E1SPE OFFSET(1) NUMBITS(1) [],
            /// EL0 sample enable.
            E0SPE OFFSET(0) NUMBITS(1) []
        ],

        /// Statistical Profiling Control Register (EL2).
        pub PMSCR_EL2 [
            /// Physical timestamp select.
            PCT OFFSET(6) NUMBITS(2) [],
            /// Timestamp enable.
            TS OFFSET(5) NUMBITS(1) [],
            /// Physical address sample enable (also gates EL1/EL0).
            PA OFFSET(4) NUMBITS(1) [],
            /// CONTEXTIDR_EL2 sample enable.
            CX OFFSET(3) NUMBITS(1) [],
            /// EL2 sample enable.
            E2SPE OFFSET(1) NUMBITS(1) [],
            /// EL0 sample enable when HCR_EL2.TGE == 1.
            E0HSPE OFFSET(0) NUMBITS(1) []
        ],

        /// Sampling Interval Counter Register.
        pub PMSICR_EL1 [
            /// Secondary sample count (SPEv1p2).
            ECOUNT OFFSET(56) NUMBITS(8) [],
            /// Current value of the sample interval counter.
            COUNT OFFSET(0) NUMBITS(32) []
        ],

        /// Sampling Interval Reload Register.
        pub PMSIRR_EL1 [
            /// Reload value for PMSICR_EL1.COUNT, in units of 256 operations.
            INTERVAL OFFSET(8) NUMBITS(24) [],
            /// Add (pseudo-)random jitter to the interval.
            RND OFFSET(0) NUMBITS(1) []
        ],

        /// Sampling Filter Control Register.
        pub PMSFCR_EL1 [
            /// Filter on store operations.
            ST OFFSET(18) NUMBITS(1) [],
            /// Filter on load operations.
            LD OFFSET(17) NUMBITS(1) [],
            /// Filter on branch operations.
            B OFFSET(16) NUMBITS(1) [],
            /// Filter by data source (SPEv1p4).
            FDS OFFSET(4) NUMBITS(1) [],
            /// Filter by inverse event mask (SPEv1p2).
            FnE OFFSET(3) NUMBITS(1) [],
            /// Filter by latency (PMSLATFR_EL1).
            FL OFFSET(2) NUMBITS(1) [],
            /// Filter by operation type (B/LD/ST).
            FT OFFSET(1) NUMBITS(1) [],
            /// Filter by events (PMSEVFR_EL1).
            FE OFFSET(0) NUMBITS(1) []
        ],

        /// Sampling Event Filter Register: a record is kept only if every
        /// event selected here occurred.
        pub PMSEVFR_EL1 [
            /// Not-taken conditional branch (SPEv1p1 adds misc. events above).
            E18 OFFSET(18) NUMBITS(1) [],
            /// Partial predicate (SVE).
            E17 OFFSET(17) NUMBITS(1) [],
            /// Alignment (SPEv1p1).
            E11 OFFSET(11) NUMBITS(1) [],
            /// Mispredicted branch.
            E7 OFFSET(7) NUMBITS(1) [],
            /// Not taken.
            E6 OFFSET(6) NUMBITS(1) [],
            /// TLB walk.
            E5 OFFSET(5) NUMBITS(1) [],
            /// Level 1 data cache refill.
            E3 OFFSET(3) NUMBITS(1) [],
            /// Architecturally retired.
            E1 OFFSET(1) NUMBITS(1) []
        ],

        /// Sampling Latency Filter Register.
        pub PMSLATFR_EL1 [
            /// Minimum total latency for a record to be kept.
            MINLAT OFFSET(0) NUMBITS(16) []
        ],

        /// Sampling Profiling ID Register (read-only).
        pub PMSIDR_EL1 [
            /// Previous branch target address packet supported.
            PBT OFFSET(24) NUMBITS(1) [],
            /// Record format version.
            Format OFFSET(20) NUMBITS(4) [],
            /// Counter size: 0b0010 = 12-bit saturating, 0b0011 = 16-bit.
            CountSize OFFSET(16) NUMBITS(4) [],
            /// Log2 of the maximum record size in bytes.
            MaxSize OFFSET(12) NUMBITS(4) [],
            /// Recommended minimum sampling interval (encoded).
            Interval OFFSET(8) NUMBITS(4) [],
            /// Filtering by inverse events supported.
            FnE OFFSET(6) NUMBITS(1) [],
            /// PMSIRR_EL1.RND supported.
            ERnd OFFSET(5) NUMBITS(1) [],
            /// Data source packet supported.
            LDS OFFSET(4) NUMBITS(1) [],
            /// Architectural instruction sampling.
            ArchInst OFFSET(3) NUMBITS(1) [],
            /// Filtering by latency supported.
            FL OFFSET(2) NUMBITS(1) [],
            /// Filtering by operation type supported.
            FT OFFSET(1) NUMBITS(1) [],
            /// Filtering by events supported.
            FE OFFSET(0) NUMBITS(1) []
        ],

        /// Profiling Buffer Limit Address Register.
        pub PMBLIMITR_EL1 [
            /// Limit address bits [63:12]: first byte after the buffer.
            LIMIT OFFSET(12) NUMBITS(52) [],
            /// Freeze PMU on buffer management event (SPEv1p2).
            PMFZ OFFSET(5) NUMBITS(1) [],
            /// Fill mode.
            FM OFFSET(1) NUMBITS(2) [
                /// Stop collection and raise the maintenance interrupt when full.
                Fill = 0b00,
                /// Discard all output (SPEv1p2).
                Discard = 0b10
            ],
            /// Profiling buffer enable.
            E OFFSET(0) NUMBITS(1) []
        ],

        /// Profiling Buffer Write Pointer Register.
        pub PMBPTR_EL1 [
            /// Virtual address of the next byte to write.
            PTR OFFSET(0) NUMBITS(64) []
        ],

        /// Profiling Buffer Status/syndrome Register.
        pub PMBSR_EL1 [
            /// Exception class of the last buffer management event.
            EC OFFSET(26) NUMBITS(6) [
                BufferManagement = 0b000000,
                GranuleProtectionCheck = 0b011110,
                ImpDefFault = 0b011111,
                Stage1DataAbort = 0b100100,
                Stage2DataAbort = 0b100101
            ],
            /// Partial record lost.
            DL OFFSET(19) NUMBITS(1) [],
            /// External abort.
            EA OFFSET(18) NUMBITS(1) [],
            /// Service: collection stopped, buffer management interrupt asserted.
            S OFFSET(17) NUMBITS(1) [],
            /// Collision detected.
            COLL OFFSET(16) NUMBITS(1) [],
            /// Management event specific syndrome.
            MSS OFFSET(0) NUMBITS(16) [],
            /// Buffer status code (EC == BufferManagement).
            BSC OFFSET(0) NUMBITS(6) [
                NotFilled = 0b000000,
                BufferFilled = 0b000001
            ],
            /// Fault status code (EC == Stage1/Stage2 data abort).
            FSC OFFSET(0) NUMBITS(6) []
        ],

        /// Profiling Buffer ID Register (read-only).
        pub PMBIDR_EL1 [
            /// External abort handling (SPEv1p2).
            EA OFFSET(8) NUMBITS(4) [],
            /// Flag updates: hardware manages the access flag and dirty state.
            F OFFSET(5) NUMBITS(1) [],
            /// Programming not allowed: the buffer is owned by a higher EL.
            P OFFSET(4) NUMBITS(1) [],
            /// Log2 of the PMBPTR_EL1 alignment constraint in bytes.
            Align OFFSET(0) NUMBITS(4) []
        ]
    }
}

/// The contiguous in-register mask of a tock-registers field.
pub const fn field_mask<R: RegisterLongName>(field: Field<u64, R>) -> u64 {
    field.mask << field.shift
}

/// A system register encoding as used by `mrs`/`msr` and by ESR_ELx.ISS for
/// trapped accesses (EC 0x18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegEncoding {
    /// Register name in the Arm ARM.
    pub name: &'static str,
    /// Generic assembler name `S3_<op1>_C<n>_C<m>_<op2>`.
    pub generic: &'static str,
    /// op0 field.
    pub op0: u8,
    /// op1 field.
    pub op1: u8,
    /// CRn field.
    pub crn: u8,
    /// CRm field.
    pub crm: u8,
    /// op2 field.
    pub op2: u8,
}

impl SysRegEncoding {
    /// True when the encoding fields are equal.
    pub const fn matches(&self, op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> bool {
        self.op0 == op0 && self.op1 == op1 && self.crn == crn && self.crm == crm && self.op2 == op2
    }
}

/// Identifies one SPE register (plus ID_AA64DFR0_EL1, used to probe SPE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpeReg {
    /// PMSCR_EL1.
    PmscrEl1,
    /// PMSCR_EL2.
    PmscrEl2,
    /// PMSCR_EL12 (VHE alias of PMSCR_EL1).
    PmscrEl12,
    /// PMSNEVFR_EL1 (SPEv1p2).
    PmsnevfrEl1,
    /// PMSICR_EL1.
    PmsicrEl1,
    /// PMSIRR_EL1.
    PmsirrEl1,
    /// PMSFCR_EL1.
    PmsfcrEl1,
    /// PMSEVFR_EL1.
    PmsevfrEl1,
    /// PMSLATFR_EL1.
    PmslatfrEl1,
    /// PMSIDR_EL1.
    PmsidrEl1,
    /// PMBLIMITR_EL1.
    PmblimitrEl1,
    /// PMBPTR_EL1.
    PmbptrEl1,
    /// PMBSR_EL1.
    PmbsrEl1,
    /// PMBIDR_EL1.
    PmbidrEl1,
}

macro_rules! enc {
    ($name:literal, $op0:literal, $op1:literal, $crn:literal, $crm:literal, $op2:literal) => {
        SysRegEncoding {
            name: $name,
            generic: concat!("S", $op0, "_", $op1, "_C", $crn, "_C", $crm, "_", $op2),
            op0: $op0,
            op1: $op1,
            crn: $crn,
            crm: $crm,
            op2: $op2,
        }
    };
}

/// ID_AA64DFR0_EL1 encoding (not an SPE register; used by the probe).
pub const ID_AA64DFR0_EL1_ENC: SysRegEncoding = enc!("ID_AA64DFR0_EL1", 3, 0, 0, 5, 0);

/// Every SPE register with its encoding, in Arm ARM order.
pub const SPE_REGISTERS: [(SpeReg, SysRegEncoding); 14] = [
    (SpeReg::PmscrEl1, enc!("PMSCR_EL1", 3, 0, 9, 9, 0)),
    (SpeReg::PmscrEl2, enc!("PMSCR_EL2", 3, 4, 9, 9, 0)),
    (SpeReg::PmscrEl12, enc!("PMSCR_EL12", 3, 5, 9, 9, 0)),
    (SpeReg::PmsnevfrEl1, enc!("PMSNEVFR_EL1", 3, 0, 9, 9, 1)),
    (SpeReg::PmsicrEl1, enc!("PMSICR_EL1", 3, 0, 9, 9, 2)),
    (SpeReg::PmsirrEl1, enc!("PMSIRR_EL1", 3, 0, 9, 9, 3)),
    (SpeReg::PmsfcrEl1, enc!("PMSFCR_EL1", 3, 0, 9, 9, 4)),
    (SpeReg::PmsevfrEl1, enc!("PMSEVFR_EL1", 3, 0, 9, 9, 5)),
    (SpeReg::PmslatfrEl1, enc!("PMSLATFR_EL1", 3, 0, 9, 9, 6)),
    (SpeReg::PmsidrEl1, enc!("PMSIDR_EL1", 3, 0, 9, 9, 7)),
    (SpeReg::PmblimitrEl1, enc!("PMBLIMITR_EL1", 3, 0, 9, 10, 0)),
    (SpeReg::PmbptrEl1, enc!("PMBPTR_EL1", 3, 0, 9, 10, 1)),
    (SpeReg::PmbsrEl1, enc!("PMBSR_EL1", 3, 0, 9, 10, 3)),
    (SpeReg::PmbidrEl1, enc!("PMBIDR_EL1", 3, 0, 9, 10, 7)),
];

impl SpeReg {
    /// The register's encoding.
    pub const fn encoding(self) -> SysRegEncoding {
        let mut i = 0;
        while i < SPE_REGISTERS.len() {
            if SPE_REGISTERS[i].0 as u8 == self as u8 {
                return SPE_REGISTERS[i].1;
            }
            i += 1;
        }
        // Every variant is in the table (checked by a unit test).
        SPE_REGISTERS[0].1
    }

    /// Looks a trapped access's encoding up.
    pub fn from_encoding(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Option<SpeReg> {
        SPE_REGISTERS.iter().find(|(_, e)| e.matches(op0, op1, crn, crm, op2)).map(|(r, _)| *r)
    }

    /// True for the profiling-buffer registers (PMB*), which MDCR_EL2.E2PB
    /// traps; the sampling registers (PMS*) are trapped by MDCR_EL2.TPMS.
    pub const fn is_buffer_register(self) -> bool {
        matches!(self, SpeReg::PmblimitrEl1 | SpeReg::PmbptrEl1 | SpeReg::PmbsrEl1 | SpeReg::PmbidrEl1)
    }
}

/// True when (op0, op1, CRn, CRm, op2) names an SPE register, e.g. for an
/// MSR/MRS access trapped to EL2 by MDCR_EL2.TPMS or E2PB.
pub fn is_spe_register(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> bool {
    SpeReg::from_encoding(op0, op1, crn, crm, op2).is_some()
}

/// Decoded PMBIDR_EL1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmbIdr {
    /// Log2 of the write-pointer alignment in bytes.
    pub align: u8,
    /// Programming not allowed (buffer owned by a higher EL).
    pub programming_prohibited: bool,
    /// Hardware flag updates.
    pub flag_updates: bool,
}

impl PmbIdr {
    /// Decodes a raw register value.
    pub fn from_bits(bits: u64) -> Self {
        let r = LocalRegisterCopy::<u64, PMBIDR_EL1::Register>::new(bits);
        Self {
            align: r.read(PMBIDR_EL1::Align) as u8,
            programming_prohibited: r.is_set(PMBIDR_EL1::P),
            flag_updates: r.is_set(PMBIDR_EL1::F),
        }
    }

    /// Alignment of PMBPTR_EL1 in bytes.
    pub const fn align_bytes(&self) -> u64 {
        1u64 << self.align
    }
}

/// Decoded PMSIDR_EL1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmsIdr {
    /// Event filtering.
    pub fe: bool,
    /// Type filtering.
    pub ft: bool,
    /// Latency filtering.
    pub fl: bool,
    /// Architectural instruction sampling.
    pub arch_inst: bool,
    /// Data source packets.
    pub lds: bool,
    /// Random interval jitter.
    pub ernd: bool,
    /// Inverse event filtering.
    pub fne: bool,
    /// Encoded recommended minimum interval.
    pub interval: u8,
    /// Log2 of the maximum record size.
    pub max_size: u8,
    /// Counter size encoding.
    pub count_size: u8,
    /// Record format.
    pub format: u8,
    /// Previous branch target packets.
    pub pbt: bool,
}

/// Recommended minimum sampling intervals indexed by PMSIDR_EL1.Interval.
pub const PMSIDR_INTERVALS: [u32; 9] = [256, 512, 768, 1024, 1536, 2048, 3072, 4096, 0];

impl PmsIdr {
    /// Decodes a raw register value.
    pub fn from_bits(bits: u64) -> Self {
        let r = LocalRegisterCopy::<u64, PMSIDR_EL1::Register>::new(bits);
        let get = |f| r.read(f) as u8;
        Self {
            fe: r.is_set(PMSIDR_EL1::FE),
            ft: r.is_set(PMSIDR_EL1::FT),
            fl: r.is_set(PMSIDR_EL1::FL),
            arch_inst: r.is_set(PMSIDR_EL1::ArchInst),
            lds: r.is_set(PMSIDR_EL1::LDS),
            ernd: r.is_set(PMSIDR_EL1::ERnd),
            fne: r.is_set(PMSIDR_EL1::FnE),
            interval: get(PMSIDR_EL1::Interval),
            max_size: get(PMSIDR_EL1::MaxSize),
            count_size: get(PMSIDR_EL1::CountSize),
            format: get(PMSIDR_EL1::Format),
            pbt: r.is_set(PMSIDR_EL1::PBT),
        }
    }

    /// Maximum record size in bytes.
    pub const fn max_record_bytes(&self) -> u32 {
        1u32 << (self.max_size & 0xf)
    }

    /// Recommended minimum interval in operations, if the encoding is known.
    pub fn min_interval(&self) -> Option<u32> {
        PMSIDR_INTERVALS.get(usize::from(self.interval)).copied().filter(|&v| v != 0)
    }
}

/// What the SPE probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpeId {
    /// ID_AA64DFR0_EL1.PMSVer (0: no SPE).
    pub pmsver: u8,
    /// PMBIDR_EL1, read only when `pmsver != 0`.
    pub pmbidr: Option<PmbIdr>,
    /// PMSIDR_EL1, read only when `pmsver != 0`.
    pub pmsidr: Option<PmsIdr>,
}

impl SpeId {
    /// The identification of a CPU without SPE.
    pub const NONE: SpeId = SpeId { pmsver: 0, pmbidr: None, pmsidr: None };

    /// Extracts PMSVer from an ID_AA64DFR0_EL1 value.
    pub fn pmsver_from_dfr0(dfr0: u64) -> u8 {
        ID_AA64DFR0_EL1::PMSVer.read(dfr0) as u8
    }

    /// True when SPE is implemented.
    pub const fn implemented(&self) -> bool {
        self.pmsver != 0
    }

    /// Whether the host (EL1) may own the profiling buffer at all: SPE
    /// implemented and PMBIDR_EL1.P == 0 (programming not prohibited by a
    /// higher EL; fixed by EL3, so decided once at boot). The world switch
    /// then only asks whether the buffer is enabled (PMBLIMITR_EL1.E).
    pub fn host_may_own_buffer(&self) -> bool {
        match self.pmbidr {
            Some(id) if self.implemented() => !id.programming_prohibited,
            _ => false,
        }
    }
}

/// SPE state saved by the drain sequence and restored on the way back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SavedSpe {
    /// PMSCR_EL1 before it was cleared.
    pub pmscr_el1: u64,
    /// PMBLIMITR_EL1 before the buffer was disabled.
    pub pmblimitr_el1: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_names() {
        assert_eq!(SpeReg::PmscrEl1.encoding().generic, "S3_0_C9_C9_0");
        assert_eq!(SpeReg::PmscrEl2.encoding().generic, "S3_4_C9_C9_0");
        assert_eq!(SpeReg::PmblimitrEl1.encoding().generic, "S3_0_C9_C10_0");
        assert_eq!(SpeReg::PmbptrEl1.encoding().generic, "S3_0_C9_C10_1");
        assert_eq!(SpeReg::PmbsrEl1.encoding().generic, "S3_0_C9_C10_3");
        assert_eq!(SpeReg::PmbidrEl1.encoding().generic, "S3_0_C9_C10_7");
        assert_eq!(SpeReg::PmsidrEl1.encoding().generic, "S3_0_C9_C9_7");
        assert_eq!(ID_AA64DFR0_EL1_ENC.generic, "S3_0_C0_C5_0");
    }

    #[test]
    fn table_round_trip() {
        for (reg, enc) in SPE_REGISTERS {
            assert_eq!(reg.encoding(), enc);
            assert_eq!(SpeReg::from_encoding(enc.op0, enc.op1, enc.crn, enc.crm, enc.op2), Some(reg));
            assert!(is_spe_register(enc.op0, enc.op1, enc.crn, enc.crm, enc.op2));
        }
        // PMCR_EL0 (S3_3_C9_C12_0) and ID_AA64DFR0_EL1 are not SPE registers.
        assert!(!is_spe_register(3, 3, 9, 12, 0));
        assert!(!is_spe_register(3, 0, 0, 5, 0));
        assert!(!is_spe_register(3, 0, 9, 10, 2));
        assert!(SpeReg::PmbsrEl1.is_buffer_register());
        assert!(!SpeReg::PmsfcrEl1.is_buffer_register());
    }

    #[test]
    fn field_positions() {
        assert_eq!(field_mask(PMSCR_EL1::E1SPE), 1 << 1);
        assert_eq!(field_mask(PMSCR_EL1::TS), 1 << 5);
        assert_eq!(field_mask(PMBLIMITR_EL1::LIMIT), !0xfffu64);
        assert_eq!(field_mask(PMBSR_EL1::S), 1 << 17);
        assert_eq!(field_mask(PMBSR_EL1::EC), 0x3f << 26);
        assert_eq!(field_mask(PMBPTR_EL1::PTR), u64::MAX);
    }

    #[test]
    fn decode_ids() {
        assert_eq!(SpeId::pmsver_from_dfr0(0x0000_0001_0000_0000), 1);
        assert_eq!(SpeId::pmsver_from_dfr0(0x0000_00f0_1010_6f08), 0);
        let b = PmbIdr::from_bits(0b11_0110);
        assert_eq!(b.align, 6);
        assert!(b.programming_prohibited);
        assert!(b.flag_updates);
        assert_eq!(b.align_bytes(), 64);
        // FE FT FL, Interval 0 (256), MaxSize 6 (64 B), CountSize 2.
        let s = PmsIdr::from_bits(0x0002_6007);
        assert!(s.fe && s.ft && s.fl && !s.lds);
        assert_eq!(s.max_record_bytes(), 64);
        assert_eq!(s.count_size, 2);
        assert_eq!(s.min_interval(), Some(256));
        let id = SpeId { pmsver: 1, pmbidr: Some(PmbIdr::from_bits(6)), pmsidr: Some(s) };
        assert!(id.host_may_own_buffer());
        assert!(!SpeId::NONE.host_may_own_buffer());
        let owned_by_el2 = SpeId { pmbidr: Some(PmbIdr::from_bits(0x16)), ..id };
        assert!(!owned_by_el2.host_may_own_buffer());
        let not_implemented = SpeId { pmsver: 0, ..id };
        assert!(!not_implemented.host_may_own_buffer());
    }
}
