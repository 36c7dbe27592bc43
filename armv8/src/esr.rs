//! Exception Syndrome Register (ESR_ELx) decoding.

use core::fmt;

use crate::sysreg::SysRegEnc;

/// Shift of ESR.EC\[31:26\].
pub const EC_SHIFT: u32 = 26;
/// Mask of ESR.EC after shifting.
pub const EC_MASK: u64 = 0x3f;
/// ESR.IL: the trapped instruction was 32 bits long.
pub const IL: u64 = 1 << 25;
/// Mask of ESR.ISS\[24:0\].
pub const ISS_MASK: u64 = (1 << 25) - 1;

const fn bit(v: u32, n: u32) -> bool {
    v >> n & 1 != 0
}

const fn field(v: u32, lo: u32, width: u32) -> u32 {
    v >> lo & ((1 << width) - 1)
}

macro_rules! exception_classes {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $text:literal;)*) => {
        /// ESR.EC: why the exception was taken.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ExceptionClass {
            $($(#[$doc])* $name,)*
            /// A value this crate does not name (reserved or newer).
            Unknown(u8),
        }

        impl ExceptionClass {
            /// Decodes a 6-bit EC value (higher bits are ignored).
            #[inline]
            pub const fn from_raw(ec: u8) -> Self {
                match ec & 0x3f {
                    $($code => ExceptionClass::$name,)*
                    other => ExceptionClass::Unknown(other),
                }
            }

            /// The 6-bit EC value.
            pub const fn raw(self) -> u8 {
                match self {
                    $(ExceptionClass::$name => $code,)*
                    ExceptionClass::Unknown(v) => v,
                }
            }

            /// A short description for crash reports.
            pub const fn description(self) -> &'static str {
                match self {
                    $(ExceptionClass::$name => $text,)*
                    ExceptionClass::Unknown(_) => "unallocated exception class",
                }
            }
        }
    };
}

exception_classes! {
    /// Unknown reason (also: UNDEFINED instructions).
    UnknownReason = 0x00, "unknown reason";
    /// Trapped WFI/WFE/WFIT/WFET.
    Wfx = 0x01, "trapped WFI/WFE";
    /// Trapped AArch32 MCR/MRC, coproc 0b1111.
    Cp15Mcr = 0x03, "trapped AArch32 MCR/MRC (CP15)";
    /// Trapped AArch32 MCRR/MRRC, coproc 0b1111.
    Cp15Mcrr = 0x04, "trapped AArch32 MCRR/MRRC (CP15)";
    /// Trapped AArch32 MCR/MRC, coproc 0b1110.
    Cp14Mcr = 0x05, "trapped AArch32 MCR/MRC (CP14)";
    /// Trapped AArch32 LDC/STC.
    Cp14Ldc = 0x06, "trapped AArch32 LDC/STC (CP14)";
    /// Access to SVE, Advanced SIMD or floating point trapped.
    FpAsimd = 0x07, "trapped SVE/SIMD/FP access";
    /// Trapped AArch32 VMRS (ID group).
    Cp10Id = 0x08, "trapped AArch32 VMRS (ID group)";
    /// Trapped pointer authentication instruction.
    PointerAuth = 0x09, "trapped pointer authentication instruction";
    /// Other trapped instruction (LD64B/ST64B*, ...).
    OtherTrap = 0x0a, "trapped LD64B/ST64B or other instruction";
    /// Trapped AArch32 MRRC, coproc 0b1110.
    Cp14Mrrc = 0x0c, "trapped AArch32 MRRC (CP14)";
    /// Branch target exception.
    BranchTarget = 0x0d, "branch target exception";
    /// Illegal execution state.
    IllegalState = 0x0e, "illegal execution state";
    /// SVC in AArch32.
    Svc32 = 0x11, "SVC (AArch32)";
    /// HVC in AArch32.
    Hvc32 = 0x12, "HVC (AArch32)";
    /// SMC in AArch32.
    Smc32 = 0x13, "SMC (AArch32)";
    /// SVC in AArch64.
    Svc64 = 0x15, "SVC (AArch64)";
    /// HVC in AArch64.
    Hvc64 = 0x16, "HVC (AArch64)";
    /// SMC in AArch64.
    Smc64 = 0x17, "SMC (AArch64)";
    /// Trapped MSR/MRS/system instruction in AArch64.
    SysReg = 0x18, "trapped MSR/MRS/system instruction";
    /// Trapped SVE access.
    Sve = 0x19, "trapped SVE access";
    /// Trapped ERET/ERETAA/ERETAB.
    Eret = 0x1a, "trapped ERET";
    /// Trapped TSTART (transactional memory).
    Tstart = 0x1b, "trapped TSTART";
    /// Pointer authentication failure.
    PacFail = 0x1c, "pointer authentication failure";
    /// Trapped SME access.
    Sme = 0x1d, "trapped SME access";
    /// IMPLEMENTATION DEFINED exception to EL3.
    ImpDef = 0x1f, "implementation defined exception";
    /// Instruction abort from a lower EL.
    InstrAbortLower = 0x20, "instruction abort, lower EL";
    /// Instruction abort from the same EL.
    InstrAbortSame = 0x21, "instruction abort, same EL";
    /// PC alignment fault.
    PcAlignment = 0x22, "PC alignment fault";
    /// Data abort from a lower EL.
    DataAbortLower = 0x24, "data abort, lower EL";
    /// Data abort from the same EL.
    DataAbortSame = 0x25, "data abort, same EL";
    /// SP alignment fault.
    SpAlignment = 0x26, "SP alignment fault";
    /// Memory operation (CPY*/SET*) exception.
    MemOp = 0x27, "memory operation exception";
    /// Trapped AArch32 floating-point exception.
    Fp32 = 0x28, "floating-point exception (AArch32)";
    /// Trapped AArch64 floating-point exception.
    Fp64 = 0x2c, "floating-point exception (AArch64)";
    /// Guarded control stack exception.
    Gcs = 0x2d, "guarded control stack exception";
    /// SError interrupt.
    SError = 0x2f, "SError";
    /// Breakpoint from a lower EL.
    BreakpointLower = 0x30, "breakpoint, lower EL";
    /// Breakpoint from the same EL.
    BreakpointSame = 0x31, "breakpoint, same EL";
    /// Software step from a lower EL.
    SoftwareStepLower = 0x32, "software step, lower EL";
    /// Software step from the same EL.
    SoftwareStepSame = 0x33, "software step, same EL";
    /// Watchpoint from a lower EL.
    WatchpointLower = 0x34, "watchpoint, lower EL";
    /// Watchpoint from the same EL.
    WatchpointSame = 0x35, "watchpoint, same EL";
    /// AArch32 BKPT.
    Bkpt32 = 0x38, "BKPT (AArch32)";
    /// AArch32 vector catch.
    VectorCatch32 = 0x3a, "vector catch (AArch32)";
    /// AArch64 BRK.
    Brk64 = 0x3c, "BRK (AArch64)";
}

impl fmt::Display for ExceptionClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// A raw ESR_ELx value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Esr(pub u64);

impl Esr {
    /// Assembles an ESR from class, IL and ISS.
    pub const fn new(ec: ExceptionClass, il32: bool, iss: u32) -> Self {
        let il = if il32 { IL } else { 0 };
        Esr((ec.raw() as u64) << EC_SHIFT | il | (iss as u64 & ISS_MASK))
    }

    /// ESR.EC.
    #[inline]
    pub const fn ec(self) -> ExceptionClass {
        ExceptionClass::from_raw((self.0 >> EC_SHIFT & EC_MASK) as u8)
    }

    /// ESR.IL: `true` for a 32-bit instruction (or where IL is RES1).
    pub const fn il(self) -> bool {
        self.0 & IL != 0
    }

    /// Length in bytes of the trapped instruction (2 or 4).
    pub const fn instruction_len(self) -> u64 {
        if self.il() {
            4
        } else {
            2
        }
    }

    /// ESR.ISS\[24:0\].
    pub const fn iss(self) -> u32 {
        (self.0 & ISS_MASK) as u32
    }

    /// ESR.ISS2\[55:32\] (FEAT_LS64, FEAT_THE, ...).
    pub const fn iss2(self) -> u32 {
        (self.0 >> 32 & 0xff_ffff) as u32
    }

    /// The data abort ISS, for EC 0x24/0x25.
    pub const fn data_abort(self) -> Option<DataAbortIss> {
        match self.ec() {
            ExceptionClass::DataAbortLower | ExceptionClass::DataAbortSame => Some(DataAbortIss(self.iss())),
            _ => None,
        }
    }

    /// The instruction abort ISS, for EC 0x20/0x21.
    pub const fn instr_abort(self) -> Option<InstrAbortIss> {
        match self.ec() {
            ExceptionClass::InstrAbortLower | ExceptionClass::InstrAbortSame => Some(InstrAbortIss(self.iss())),
            _ => None,
        }
    }

    /// The system register ISS, for EC 0x18.
    pub const fn sysreg(self) -> Option<SysRegIss> {
        match self.ec() {
            ExceptionClass::SysReg => Some(SysRegIss(self.iss())),
            _ => None,
        }
    }

    /// The HVC ISS, for EC 0x12/0x16.
    pub const fn hvc(self) -> Option<HvcIss> {
        match self.ec() {
            ExceptionClass::Hvc32 | ExceptionClass::Hvc64 => Some(HvcIss(self.iss())),
            _ => None,
        }
    }

    /// The SMC ISS, for EC 0x13/0x17.
    pub const fn smc(self) -> Option<SmcIss> {
        match self.ec() {
            ExceptionClass::Smc32 | ExceptionClass::Smc64 => Some(SmcIss(self.iss())),
            _ => None,
        }
    }

    /// The WFx ISS, for EC 0x01.
    pub const fn wfx(self) -> Option<WfxIss> {
        match self.ec() {
            ExceptionClass::Wfx => Some(WfxIss(self.iss())),
            _ => None,
        }
    }
}

impl fmt::Display for Esr {
    /// `ESR 0x96000045 EC=0x25 (data abort, same EL) IL=32-bit ISS=0x45 DFSC=translation fault level 1, WnR=1, ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ec = self.ec();
        write!(
            f,
            "ESR {:#x} EC={:#04x} ({}) IL={}-bit ISS={:#x}",
            self.0,
            ec.raw(),
            ec,
            if self.il() { 32 } else { 16 },
            self.iss()
        )?;
        if let Some(da) = self.data_abort() {
            write!(f, " {da}")
        } else if let Some(ia) = self.instr_abort() {
            write!(f, " {ia}")
        } else if let Some(sr) = self.sysreg() {
            write!(f, " {sr}")
        } else if let Some(h) = self.hvc() {
            write!(f, " imm={:#x}", h.imm16())
        } else if let Some(s) = self.smc() {
            write!(f, " imm={:#x}", s.imm16())
        } else if let Some(w) = self.wfx() {
            write!(f, " {w}")
        } else {
            Ok(())
        }
    }
}

/// DFSC/IFSC: the fault status code of an abort. `level` is the
/// translation table level (-1 only with FEAT_LPA2).
#[allow(missing_docs)] // `level` fields, documented above
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultStatus {
    /// Address size fault at a translation level (-1..=3).
    AddressSize { level: i8 },
    /// Translation fault at a level (-1..=3).
    Translation { level: i8 },
    /// Access flag fault at a level (0..=3).
    AccessFlag { level: i8 },
    /// Permission fault at a level (0..=3).
    Permission { level: i8 },
    /// Synchronous external abort, not on a table walk.
    SyncExternal,
    /// Synchronous tag check fault (MTE).
    TagCheck,
    /// Synchronous external abort on a table walk at a level (-1..=3).
    SyncExternalOnWalk { level: i8 },
    /// Synchronous parity/ECC error, not on a table walk.
    SyncParity,
    /// Synchronous parity/ECC error on a table walk at a level (-1..=3).
    SyncParityOnWalk { level: i8 },
    /// Alignment fault.
    Alignment,
    /// Granule protection fault on a table walk at a level (-1..=3).
    GranuleProtectionOnWalk { level: i8 },
    /// Granule protection fault, not on a table walk.
    GranuleProtection,
    /// TLB conflict abort.
    TlbConflict,
    /// Unsupported atomic hardware update.
    UnsupportedAtomicUpdate,
    /// IMPLEMENTATION DEFINED fault (lockdown 0x34, exclusive 0x35).
    ImplementationDefined(u8),
    /// A reserved code.
    Reserved(u8),
}

/// Mask of DFSC/IFSC in the ISS.
pub const FSC_MASK: u32 = 0x3f;
/// Fault status code of a synchronous external abort (not on a walk).
pub const FSC_SYNC_EXTERNAL: u8 = 0x10;

impl FaultStatus {
    /// Decodes a 6-bit DFSC/IFSC.
    pub const fn from_raw(fsc: u8) -> Self {
        let level = (fsc & 0b11) as i8;
        match fsc & 0x3f {
            0x00..=0x03 => FaultStatus::AddressSize { level },
            0x04..=0x07 => FaultStatus::Translation { level },
            0x08..=0x0b => FaultStatus::AccessFlag { level },
            0x0c..=0x0f => FaultStatus::Permission { level },
            0x10 => FaultStatus::SyncExternal,
            0x11 => FaultStatus::TagCheck,
            0x13 => FaultStatus::SyncExternalOnWalk { level: -1 },
            0x14..=0x17 => FaultStatus::SyncExternalOnWalk { level },
            0x18 => FaultStatus::SyncParity,
            0x1b => FaultStatus::SyncParityOnWalk { level: -1 },
            0x1c..=0x1f => FaultStatus::SyncParityOnWalk { level },
            0x21 => FaultStatus::Alignment,
            0x23 => FaultStatus::GranuleProtectionOnWalk { level: -1 },
            0x24..=0x27 => FaultStatus::GranuleProtectionOnWalk { level },
            0x28 => FaultStatus::GranuleProtection,
            0x29 => FaultStatus::AddressSize { level: -1 },
            0x2b => FaultStatus::Translation { level: -1 },
            0x30 => FaultStatus::TlbConflict,
            0x31 => FaultStatus::UnsupportedAtomicUpdate,
            c @ (0x34 | 0x35) => FaultStatus::ImplementationDefined(c),
            other => FaultStatus::Reserved(other),
        }
    }

    /// The translation level, for faults that have one.
    pub const fn level(self) -> Option<i8> {
        match self {
            FaultStatus::AddressSize { level }
            | FaultStatus::Translation { level }
            | FaultStatus::AccessFlag { level }
            | FaultStatus::Permission { level }
            | FaultStatus::SyncExternalOnWalk { level }
            | FaultStatus::SyncParityOnWalk { level }
            | FaultStatus::GranuleProtectionOnWalk { level } => Some(level),
            _ => None,
        }
    }
}

impl fmt::Display for FaultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            FaultStatus::AddressSize { .. } => "address size fault",
            FaultStatus::Translation { .. } => "translation fault",
            FaultStatus::AccessFlag { .. } => "access flag fault",
            FaultStatus::Permission { .. } => "permission fault",
            FaultStatus::SyncExternal => "synchronous external abort",
            FaultStatus::TagCheck => "tag check fault",
            FaultStatus::SyncExternalOnWalk { .. } => "synchronous external abort on table walk",
            FaultStatus::SyncParity => "synchronous parity/ECC error",
            FaultStatus::SyncParityOnWalk { .. } => "synchronous parity/ECC error on table walk",
            FaultStatus::Alignment => "alignment fault",
            FaultStatus::GranuleProtectionOnWalk { .. } => "granule protection fault on table walk",
            FaultStatus::GranuleProtection => "granule protection fault",
            FaultStatus::TlbConflict => "TLB conflict abort",
            FaultStatus::UnsupportedAtomicUpdate => "unsupported atomic hardware update",
            FaultStatus::ImplementationDefined(c) => return write!(f, "implementation defined fault {c:#04x}"),
            FaultStatus::Reserved(c) => return write!(f, "reserved fault status {c:#04x}"),
        };
        f.write_str(name)?;
        if let Some(level) = self.level() {
            write!(f, " level {level}")?;
        }
        Ok(())
    }
}

/// ISS of a data abort (EC 0x24/0x25).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAbortIss(pub u32);

impl DataAbortIss {
    /// ISV: bits \[23:14\] (SAS, SSE, SRT, SF, AR) are valid.
    pub const fn isv(self) -> bool {
        bit(self.0, 24)
    }
    /// SAS decoded: access size in bytes (1, 2, 4, 8). Valid if ISV.
    pub const fn access_size(self) -> u8 {
        1 << field(self.0, 22, 2)
    }
    /// SSE: the load sign-extends. Valid if ISV.
    pub const fn sse(self) -> bool {
        bit(self.0, 21)
    }
    /// SRT: the transfer register number (31 = XZR/WZR). Valid if ISV.
    pub const fn srt(self) -> u8 {
        field(self.0, 16, 5) as u8
    }
    /// SF: the register is 64-bit (X), else 32-bit (W). Valid if ISV.
    pub const fn sf(self) -> bool {
        bit(self.0, 15)
    }
    /// AR: acquire/release semantics. Valid if ISV.
    pub const fn ar(self) -> bool {
        bit(self.0, 14)
    }
    /// VNCR: the fault came from a VNCR_EL2 access (FEAT_NV2).
    pub const fn vncr(self) -> bool {
        bit(self.0, 13)
    }
    /// FnV: FAR is not valid.
    pub const fn fnv(self) -> bool {
        bit(self.0, 10)
    }
    /// EA: external abort type (implementation defined).
    pub const fn ea(self) -> bool {
        bit(self.0, 9)
    }
    /// CM: the fault came from a cache maintenance or address translation instruction.
    pub const fn cm(self) -> bool {
        bit(self.0, 8)
    }
    /// S1PTW: stage-2 fault on a stage-1 table walk.
    pub const fn s1ptw(self) -> bool {
        bit(self.0, 7)
    }
    /// WnR: the access was a write.
    pub const fn wnr(self) -> bool {
        bit(self.0, 6)
    }
    /// DFSC decoded.
    pub const fn dfsc(self) -> FaultStatus {
        FaultStatus::from_raw((self.0 & FSC_MASK) as u8)
    }
}

impl fmt::Display for DataAbortIss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DFSC={}, WnR={}", self.dfsc(), u8::from(self.wnr()))?;
        if self.isv() {
            let reg = if self.sf() { 'x' } else { 'w' };
            write!(
                f,
                ", ISV=1 SAS={} bytes SSE={} SRT={reg}{} SF={} AR={}",
                self.access_size(),
                u8::from(self.sse()),
                self.srt(),
                u8::from(self.sf()),
                u8::from(self.ar())
            )?;
        } else {
            f.write_str(", ISV=0")?;
        }
        write!(
            f,
            ", S1PTW={}, CM={}, EA={}, FnV={}",
            u8::from(self.s1ptw()),
            u8::from(self.cm()),
            u8::from(self.ea()),
            u8::from(self.fnv())
        )
    }
}

/// ISS of an instruction abort (EC 0x20/0x21).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstrAbortIss(pub u32);

impl InstrAbortIss {
    /// FnV: FAR is not valid.
    pub const fn fnv(self) -> bool {
        bit(self.0, 10)
    }
    /// EA: external abort type.
    pub const fn ea(self) -> bool {
        bit(self.0, 9)
    }
    /// S1PTW: stage-2 fault on a stage-1 table walk.
    pub const fn s1ptw(self) -> bool {
        bit(self.0, 7)
    }
    /// IFSC decoded.
    pub const fn ifsc(self) -> FaultStatus {
        FaultStatus::from_raw((self.0 & FSC_MASK) as u8)
    }
}

impl fmt::Display for InstrAbortIss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IFSC={}, S1PTW={}, EA={}, FnV={}",
            self.ifsc(),
            u8::from(self.s1ptw()),
            u8::from(self.ea()),
            u8::from(self.fnv())
        )
    }
}

/// Direction of a trapped system register access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// MSR: write to the register from Rt.
    Write,
    /// MRS: read from the register into Rt.
    Read,
}

impl Direction {
    /// ISS\[0\] of every trapped register access (MRS/MSR, MRC/MCR,
    /// MRRC/MCRR, LDC/STC): 1 = read.
    const fn of_iss(iss: u32) -> Self {
        if bit(iss, 0) {
            Self::Read
        } else {
            Self::Write
        }
    }
}

/// ISS bits \[19:0\], the same in a trapped MSR/MRS (Op2, Op1) and a
/// trapped MCR/MRC (Opc2, Opc1): op2\[19:17\], op1\[16:14\], CRn\[13:10\],
/// Rt\[9:5\], CRm\[4:1\], `read`\[0\].
const fn access_iss(op2: u8, op1: u8, crn: u8, rt: u8, crm: u8, read: u32) -> u32 {
    (op2 as u32 & 0b111) << 17
        | (op1 as u32 & 0b111) << 14
        | (crn as u32 & 0xf) << 10
        | (rt as u32 & 0x1f) << 5
        | (crm as u32 & 0xf) << 1
        | read
}

/// ISS of a trapped MSR/MRS/system instruction (EC 0x18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegIss(pub u32);

impl SysRegIss {
    /// Builds an ISS from an encoding, transfer register and direction.
    pub const fn new(enc: SysRegEnc, rt: u8, dir: Direction) -> Self {
        let read = match dir {
            Direction::Read => 1,
            Direction::Write => 0,
        };
        SysRegIss((enc.op0 as u32 & 0b11) << 20 | access_iss(enc.op2, enc.op1, enc.crn, rt, enc.crm, read))
    }
    /// Op0 (ISS\[21:20\]).
    pub const fn op0(self) -> u8 {
        field(self.0, 20, 2) as u8
    }
    /// Op2 (ISS\[19:17\]).
    pub const fn op2(self) -> u8 {
        field(self.0, 17, 3) as u8
    }
    /// Op1 (ISS\[16:14\]).
    pub const fn op1(self) -> u8 {
        field(self.0, 14, 3) as u8
    }
    /// CRn (ISS\[13:10\]).
    pub const fn crn(self) -> u8 {
        field(self.0, 10, 4) as u8
    }
    /// Rt (ISS\[9:5\]); 31 means XZR.
    pub const fn rt(self) -> u8 {
        field(self.0, 5, 5) as u8
    }
    /// CRm (ISS\[4:1\]).
    pub const fn crm(self) -> u8 {
        field(self.0, 1, 4) as u8
    }
    /// Direction (ISS\[0\]: 1 = read).
    pub const fn direction(self) -> Direction {
        Direction::of_iss(self.0)
    }
    /// The accessed register's encoding.
    pub const fn encoding(self) -> SysRegEnc {
        SysRegEnc::new(self.op0(), self.op1(), self.crn(), self.crm(), self.op2())
    }
}

impl fmt::Display for SysRegIss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (op, arrow) = match self.direction() {
            Direction::Read => ("MRS", "->"),
            Direction::Write => ("MSR", "<-"),
        };
        write!(
            f,
            "{op} {} {arrow} x{} (op0={} op1={} CRn={} CRm={} op2={})",
            self.encoding(),
            self.rt(),
            self.op0(),
            self.op1(),
            self.crn(),
            self.crm(),
            self.op2()
        )
    }
}

/// ISS of a trapped HVC (EC 0x12/0x16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HvcIss(pub u32);

impl HvcIss {
    /// The instruction's 16-bit immediate.
    pub const fn imm16(self) -> u16 {
        self.0 as u16
    }
}

/// ISS of a trapped SMC (EC 0x13/0x17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmcIss(pub u32);

impl SmcIss {
    /// The instruction's 16-bit immediate (AArch64 only).
    pub const fn imm16(self) -> u16 {
        self.0 as u16
    }
}

/// Which wait instruction trapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WfxKind {
    /// WFI.
    Wfi,
    /// WFE.
    Wfe,
    /// WFIT (FEAT_WFxT).
    Wfit,
    /// WFET (FEAT_WFxT).
    Wfet,
}

/// ISS of a trapped WFI/WFE (EC 0x01).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WfxIss(pub u32);

impl WfxIss {
    /// TI (ISS\[1:0\]).
    pub const fn kind(self) -> WfxKind {
        match field(self.0, 0, 2) {
            0 => WfxKind::Wfi,
            1 => WfxKind::Wfe,
            2 => WfxKind::Wfit,
            _ => WfxKind::Wfet,
        }
    }
    /// The timeout register of WFIT/WFET, when RV (ISS\[2\]) is set.
    pub const fn timeout_register(self) -> Option<u8> {
        if bit(self.0, 2) {
            Some(field(self.0, 5, 5) as u8)
        } else {
            None
        }
    }
}

impl fmt::Display for WfxIss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.kind() {
            WfxKind::Wfi => "WFI",
            WfxKind::Wfe => "WFE",
            WfxKind::Wfit => "WFIT",
            WfxKind::Wfet => "WFET",
        };
        f.write_str(name)?;
        if let Some(r) = self.timeout_register() {
            write!(f, " x{r}")?;
        }
        Ok(())
    }
}

/// ISS.CV (bit 24) of the AArch32 trap classes (EC 0x01..=0x0c): the COND
/// field is valid.
pub const ISS_CV: u32 = 1 << 24;
/// ISS.COND (bits 23:20) of the AArch32 trap classes.
pub const ISS_COND_SHIFT: u32 = 20;
/// The condition code AL ("always"): COND = 0b1110.
pub const COND_AL: u8 = 0b1110;
/// Exception classes at or above this one (EC\[5:4\] != 0) carry no
/// condition: every instruction they report was unconditional or passed
/// its condition (Arm ARM D19.2.40, "ISS encoding ... CV, COND").
const FIRST_UNCONDITIONAL_EC: u8 = 0x10;

/// What the syndrome says of a trapped instruction's condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapCondition {
    /// Unconditional, or a class whose instructions always passed their
    /// condition before trapping (EC >= 0x10, or COND = AL).
    Always,
    /// ISS.CV = 1: the instruction's condition code (0..=15).
    Code(u8),
    /// ISS.CV = 0 (allowed for T32): the condition is the IT block's, to
    /// be read from PSTATE.IT.
    FromItState,
}

impl Esr {
    /// The condition of a trapped AArch32 instruction (EC 0x01..=0x0c may
    /// report one that failed: the Arm ARM lets an implementation trap a
    /// conditional instruction before checking its condition, and the
    /// hypervisor must then skip it without effect).
    pub const fn condition(self) -> TrapCondition {
        if self.ec().raw() >= FIRST_UNCONDITIONAL_EC {
            return TrapCondition::Always;
        }
        let iss = self.iss();
        if iss & ISS_CV == 0 {
            return TrapCondition::FromItState;
        }
        match (iss >> ISS_COND_SHIFT & 0xf) as u8 {
            COND_AL => TrapCondition::Always,
            c => TrapCondition::Code(c),
        }
    }

    /// The MCR/MRC ISS, for EC 0x03 (CP15), 0x05 (CP14) and 0x08 (VMRS,
    /// same layout).
    pub const fn cp32(self) -> Option<Cp32Iss> {
        match self.ec() {
            ExceptionClass::Cp15Mcr | ExceptionClass::Cp14Mcr | ExceptionClass::Cp10Id => Some(Cp32Iss(self.iss())),
            _ => None,
        }
    }

    /// The MCRR/MRRC ISS, for EC 0x04 (CP15) and 0x0c (CP14).
    pub const fn cp64(self) -> Option<Cp64Iss> {
        match self.ec() {
            ExceptionClass::Cp15Mcrr | ExceptionClass::Cp14Mrrc => Some(Cp64Iss(self.iss())),
            _ => None,
        }
    }

    /// The LDC/STC ISS, for EC 0x06.
    pub const fn ldc(self) -> Option<LdcIss> {
        match self.ec() {
            ExceptionClass::Cp14Ldc => Some(LdcIss(self.iss())),
            _ => None,
        }
    }
}

/// ISS of a trapped AArch32 MCR/MRC (and VMRS): Opc2\[19:17\],
/// Opc1\[16:14\], CRn\[13:10\], Rt\[9:5\], CRm\[4:1\], Direction\[0\]
/// (1 = read, MRC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cp32Iss(pub u32);

impl Cp32Iss {
    /// Builds the ISS of an unconditional (CV = 1, COND = AL) access.
    pub const fn new(opc1: u8, crn: u8, crm: u8, opc2: u8, rt: u8, dir: Direction) -> Self {
        let read = match dir {
            Direction::Read => 1,
            Direction::Write => 0,
        };
        Cp32Iss(ISS_CV | (COND_AL as u32) << ISS_COND_SHIFT | access_iss(opc2, opc1, crn, rt, crm, read))
    }
    // Bits [19:0] are laid out as MSR/MRS's ([`access_iss`]): the
    // accessors are SysRegIss's.
    /// Opc2.
    pub const fn opc2(self) -> u8 {
        SysRegIss(self.0).op2()
    }
    /// Opc1.
    pub const fn opc1(self) -> u8 {
        SysRegIss(self.0).op1()
    }
    /// CRn.
    pub const fn crn(self) -> u8 {
        SysRegIss(self.0).crn()
    }
    /// The AArch32 register (0..=14; 15 = APSR_nzcv for MRC).
    pub const fn rt(self) -> u8 {
        SysRegIss(self.0).rt()
    }
    /// CRm.
    pub const fn crm(self) -> u8 {
        SysRegIss(self.0).crm()
    }
    /// Read (MRC/MRRC/LDC) or write (MCR/MCRR/STC).
    pub const fn direction(self) -> Direction {
        Direction::of_iss(self.0)
    }
}

/// ISS of a trapped AArch32 MCRR/MRRC: Opc1\[19:16\], Rt2\[14:10\],
/// Rt\[9:5\], CRm\[4:1\], Direction\[0\] (1 = read, MRRC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cp64Iss(pub u32);

impl Cp64Iss {
    /// Builds the ISS of an unconditional access.
    pub const fn new(opc1: u8, crm: u8, rt: u8, rt2: u8, dir: Direction) -> Self {
        let read = match dir {
            Direction::Read => 1,
            Direction::Write => 0,
        };
        Cp64Iss(
            ISS_CV
                | (COND_AL as u32) << ISS_COND_SHIFT
                | (opc1 as u32 & 0xf) << 16
                | (rt2 as u32 & 0x1f) << 10
                | (rt as u32 & 0x1f) << 5
                | (crm as u32 & 0xf) << 1
                | read,
        )
    }
    /// Opc1.
    pub const fn opc1(self) -> u8 {
        field(self.0, 16, 4) as u8
    }
    /// The register with bits \[63:32\].
    pub const fn rt2(self) -> u8 {
        field(self.0, 10, 5) as u8
    }
    /// The register with bits \[31:0\].
    pub const fn rt(self) -> u8 {
        field(self.0, 5, 5) as u8
    }
    /// CRm.
    pub const fn crm(self) -> u8 {
        field(self.0, 1, 4) as u8
    }
    /// Read (MRC/MRRC/LDC) or write (MCR/MCRR/STC).
    pub const fn direction(self) -> Direction {
        Direction::of_iss(self.0)
    }
}

/// ISS of a trapped AArch32 LDC/STC: imm8\[19:12\], Rn\[9:5\],
/// Offset\[4\], AM\[3:1\], Direction\[0\] (1 = read, LDC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LdcIss(pub u32);

impl LdcIss {
    /// The immediate offset (words).
    pub const fn imm8(self) -> u8 {
        field(self.0, 12, 8) as u8
    }
    /// The base register.
    pub const fn rn(self) -> u8 {
        field(self.0, 5, 5) as u8
    }
    /// Addressing mode (AM\[3:1\]).
    pub const fn addressing_mode(self) -> u8 {
        field(self.0, 1, 3) as u8
    }
    /// Read (MRC/MRRC/LDC) or write (MCR/MCRR/STC).
    pub const fn direction(self) -> Direction {
        Direction::of_iss(self.0)
    }
}
