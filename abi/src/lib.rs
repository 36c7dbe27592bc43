//! The hypercall ABI between the host kernel (EL1) and spevisor's hypervisor (EL2).
//!
//! This crate is the one place the ABI is written down. The host issues `hvc #0`
//! with an SMCCC function ID in `x0` and arguments in `x1..=x7`; the hypervisor
//! answers in `x0..=x7`. IDs live in the SMCCC *Vendor Specific Hypervisor
//! Service* range (owner 6), as fast SMC64 calls: `0xC600_0000 | n`.
//!
//! `x0` of every answer is a [`Status`]: 0 on success, or a negative error
//! code. SMCCC's `NOT_SUPPORTED` (-1) answers any unknown function ID. Every
//! other refusal has its own code so the host can print exactly why.
//!
//! | ID | name | arguments | results |
//! |---|---|---|---|
//! | `0xC600_0000` | [`Call::Version`] | – | x1 = [`ABI_VERSION`] |
//! | `0xC600_0001` | [`Call::Info`] | x1 = [`InfoItem`] | x1 = value |
//! | `0xC600_0002` | [`Call::Ping`] | x1..x3 | x1..x3 = bitwise NOT of the arguments, x4 = CurrentEL seen by the hyp |
//! | `0xC600_0003` | [`Call::Shutdown`] | x1 = exit status | does not return |
//! | `0xC600_0010` | [`Call::VmCreate`] | – | x1 = VM handle |
//! | `0xC600_0011` | [`Call::VmDonate`] | x1 = VM, x2 = host PA, x3 = guest IPA, x4 = pages | – |
//! | `0xC600_0012` | [`Call::VcpuCreate`] | x1 = VM, x2 = entry IPA, x3..x5 = guest x0..x2 | x1 = vcpu index |
//! | `0xC600_0013` | [`Call::VcpuRun`] | x1 = VM, x2 = vcpu (\| [`VCPU_RUN_GIC`]), x3..x7 = [`Completion`] | x1..x7 = [`Exit`] |
//! | `0xC600_0014` | [`Call::VmDestroy`] | x1 = VM | – |
//! | `0xC600_0015` | [`Call::SwitchTrace`] | x1 = chunk | x1 = steps in record, x2..x5 = 8 step codes each |
//! | `0xC600_0016` | [`Call::SpeModelAttach`] | x1 = PA of the host's SPE model, x2 = its size in bytes (the models' intended buffers set first: EL2 latches them); x1 = x2 = 0 detaches | – |
//! | `0xC600_0017` | [`Call::VcpuShare`] | x1 = VM, x2 = vcpu, x3 = PA of a host page holding a [`vgic::VcpuShared`] | – |
//! | `0xC600_0018` | [`Call::VcpuReset`] | x1 = VM, x2 = vcpu, x3 = entry IPA, x4 = guest x0 | – |
//! | `0xC600_00F0` | [`Call::TestFault`] | x1 = [`TestFault`] | test builds only |
#![cfg_attr(not(test), no_std)]

/// ABI version: major in bits [31:16], minor in [15:0].
pub const ABI_VERSION: u64 = abi_version(0, 5);

/// Packs an ABI version.
pub const fn abi_version(major: u16, minor: u16) -> u64 {
    ((major as u64) << 16) | minor as u64
}

/// Base of spevisor's function IDs: fast call, SMC64, owner 6 (vendor hypervisor).
pub const FUNCTION_BASE: u64 = 0xC600_0000;

/// Number of argument/result registers the ABI uses (x0..=x7).
pub const REGS: usize = 8;

/// VCPU_RUN x2 flag: the vcpu's shared page holds list registers for this
/// run ([`vgic::VcpuShared`]); EL2 loads them and writes their state back.
/// Without it EL2 does not look at the page (the common case costs one
/// test).
pub const VCPU_RUN_GIC: u64 = 1 << 63;

/// Pages of host memory EL2 sets aside for the host's first page tables. At
/// host entry (EL1, MMU off) x0 = the DTB, x1..x2 = host memory `[start,
/// end)`, x3 = the start of this many pages inside it that hold neither the
/// DTB nor any firmware reservation: EL2 has parsed the DTB with its MMU on,
/// the host cannot before it has built tables somewhere.
pub const HOST_BOOT_TABLE_PAGES: u64 = 64;

/// The hypercalls, by function ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Call {
    Version = FUNCTION_BASE,
    Info = FUNCTION_BASE + 0x01,
    Ping = FUNCTION_BASE + 0x02,
    Shutdown = FUNCTION_BASE + 0x03,
    VmCreate = FUNCTION_BASE + 0x10,
    VmDonate = FUNCTION_BASE + 0x11,
    VcpuCreate = FUNCTION_BASE + 0x12,
    VcpuRun = FUNCTION_BASE + 0x13,
    VmDestroy = FUNCTION_BASE + 0x14,
    SwitchTrace = FUNCTION_BASE + 0x15,
    SpeModelAttach = FUNCTION_BASE + 0x16,
    VcpuShare = FUNCTION_BASE + 0x17,
    VcpuReset = FUNCTION_BASE + 0x18,
    TestFault = FUNCTION_BASE + 0xF0,
}

impl Call {
    #[cfg(test)]
    const ALL: [Call; 14] = [
        Call::Version,
        Call::Info,
        Call::Ping,
        Call::Shutdown,
        Call::VmCreate,
        Call::VmDonate,
        Call::VcpuCreate,
        Call::VcpuRun,
        Call::VmDestroy,
        Call::SwitchTrace,
        Call::SpeModelAttach,
        Call::VcpuShare,
        Call::VcpuReset,
        Call::TestFault,
    ];

    /// The call for a function ID; `None` for anything spevisor does not define.
    #[inline]
    pub fn from_id(id: u64) -> Option<Self> {
        const BASE: u64 = FUNCTION_BASE;
        Some(match id.checked_sub(BASE)? {
            0x00 => Call::Version,
            0x01 => Call::Info,
            0x02 => Call::Ping,
            0x03 => Call::Shutdown,
            0x10 => Call::VmCreate,
            0x11 => Call::VmDonate,
            0x12 => Call::VcpuCreate,
            0x13 => Call::VcpuRun,
            0x14 => Call::VmDestroy,
            0x15 => Call::SwitchTrace,
            0x16 => Call::SpeModelAttach,
            0x17 => Call::VcpuShare,
            0x18 => Call::VcpuReset,
            0xF0 => Call::TestFault,
            _ => return None,
        })
    }

    pub const fn id(self) -> u64 {
        self as u64
    }
}

/// Result codes in `x0`. Negative values are errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum Status {
    Success = 0,
    /// SMCCC NOT_SUPPORTED: unknown function ID (or a test hook in a normal build).
    NotSupported = -1,
    /// SMCCC INVALID_PARAMETER: an argument is not of the call's form.
    InvalidParameter = -3,
    /// An address or size is not page aligned.
    Unaligned = -16,
    /// Host pages outside the memory the host owns.
    OutOfBounds = -17,
    /// The IPA range overlaps memory the VM already has, or exceeds its IPA space.
    IpaOverlap = -18,
    /// The pages belong to the hypervisor itself.
    HypOwned = -19,
    /// The pages were already given to a VM.
    AlreadyDonated = -20,
    /// No VM with that handle.
    NoSuchVm = -21,
    /// No vcpu with that index in the VM.
    NoSuchVcpu = -22,
    /// Every VM slot (or VMID) is in use.
    TooManyVms = -23,
    /// The hypervisor ran out of pages for its own bookkeeping (stage-2 tables).
    NoMemory = -24,
    /// The VM has its maximum number of vcpus.
    TooManyVcpus = -25,
    /// The VM was stopped after a fatal guest fault and cannot run again.
    VmStopped = -26,
    /// The completion passed to VCPU_RUN does not match the vcpu's last exit.
    BadCompletion = -27,
    /// The entry IPA is outside the VM's memory.
    BadEntry = -28,
    /// The pages are shared with the hypervisor (a vcpu's shared page or
    /// the SPE model) and cannot be given or shared again.
    InUse = -29,
}

impl Status {
    #[cfg(test)]
    const ALL: [Status; 17] = [
        Status::Success,
        Status::NotSupported,
        Status::InvalidParameter,
        Status::Unaligned,
        Status::OutOfBounds,
        Status::IpaOverlap,
        Status::HypOwned,
        Status::AlreadyDonated,
        Status::NoSuchVm,
        Status::NoSuchVcpu,
        Status::TooManyVms,
        Status::NoMemory,
        Status::TooManyVcpus,
        Status::VmStopped,
        Status::BadCompletion,
        Status::BadEntry,
        Status::InUse,
    ];

    /// The status a register value holds; `None` for codes this ABI never uses.
    #[inline]
    pub fn from_reg(x0: u64) -> Option<Self> {
        Some(match x0 as i64 {
            0 => Status::Success,
            -1 => Status::NotSupported,
            -3 => Status::InvalidParameter,
            -16 => Status::Unaligned,
            -17 => Status::OutOfBounds,
            -18 => Status::IpaOverlap,
            -19 => Status::HypOwned,
            -20 => Status::AlreadyDonated,
            -21 => Status::NoSuchVm,
            -22 => Status::NoSuchVcpu,
            -23 => Status::TooManyVms,
            -24 => Status::NoMemory,
            -25 => Status::TooManyVcpus,
            -26 => Status::VmStopped,
            -27 => Status::BadCompletion,
            -28 => Status::BadEntry,
            -29 => Status::InUse,
            _ => return None,
        })
    }

    pub const fn to_reg(self) -> u64 {
        self as i64 as u64
    }

    /// A name for logs ("HYP_OWNED").
    pub const fn name(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::NotSupported => "NOT_SUPPORTED",
            Status::InvalidParameter => "INVALID_PARAMETER",
            Status::Unaligned => "UNALIGNED",
            Status::OutOfBounds => "OUT_OF_BOUNDS",
            Status::IpaOverlap => "IPA_OVERLAP",
            Status::HypOwned => "HYP_OWNED",
            Status::AlreadyDonated => "ALREADY_DONATED",
            Status::NoSuchVm => "NO_SUCH_VM",
            Status::NoSuchVcpu => "NO_SUCH_VCPU",
            Status::TooManyVms => "TOO_MANY_VMS",
            Status::NoMemory => "NO_MEMORY",
            Status::TooManyVcpus => "TOO_MANY_VCPUS",
            Status::VmStopped => "VM_STOPPED",
            Status::BadCompletion => "BAD_COMPLETION",
            Status::BadEntry => "BAD_ENTRY",
            Status::InUse => "IN_USE",
        }
    }
}

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.name(), *self as i64)
    }
}

/// What [`Call::Info`] can report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum InfoItem {
    /// The exception level the hypervisor runs at (2).
    HypEl = 0,
    /// Physical address bits (from ID_AA64MMFR0_EL1.PARange).
    PaBits = 1,
    /// GIC architecture version (2 or 3; 0 if none was found).
    GicVersion = 2,
    /// [`SpeState`] bits.
    Spe = 3,
    /// ID_AA64DFR0_EL1.PMSVer.
    PmsVer = 4,
    /// ID_AA64DFR0_EL1.PMUVer.
    PmuVer = 5,
    /// Free pages in the hypervisor's own page pool.
    HypFreePages = 6,
    /// IPA bits of guests' stage-2 (from PARange).
    IpaBits = 7,
    /// Which world-switch order this build runs ([`SwitchOrder`]).
    SwitchOrder = 8,
    /// GICv3 list registers guests get (ICH_VTR_EL2.ListRegs + 1; 0 without
    /// a GICv3 virtual interface).
    ListRegs = 9,
    /// Times EL2 found the SPE model's shared area in a state it had to
    /// repair before use (a pending length out of range, an intended
    /// buffer other than the one latched at `SPE_MODEL_ATTACH`).
    SpeModelRepairs = 10,
}

impl InfoItem {
    pub fn from_reg(x: u64) -> Option<Self> {
        Some(match x {
            0 => Self::HypEl,
            1 => Self::PaBits,
            2 => Self::GicVersion,
            3 => Self::Spe,
            4 => Self::PmsVer,
            5 => Self::PmuVer,
            6 => Self::HypFreePages,
            7 => Self::IpaBits,
            8 => Self::SwitchOrder,
            9 => Self::ListRegs,
            10 => Self::SpeModelRepairs,
            _ => return None,
        })
    }
}

/// Bits of [`InfoItem::Spe`].
pub mod spe_state {
    /// The CPU implements SPE (PMSVer != 0).
    pub const PRESENT: u64 = 1 << 0;
    /// The profiling buffer is usable by the host (PMBIDR_EL1.P == 0 with
    /// MDCR_EL2.E2PB giving it to EL1).
    pub const HOST_OWNED: u64 = 1 << 1;
}

/// The world-switch orders a build can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum SwitchOrder {
    /// Drain the host's SPE buffer before any guest state is loaded (correct).
    Fixed = 0,
    /// The pre-2021 Linux order: drain inside the debug switch, after the
    /// guest's system registers and traps are live. Kept to prove the checks.
    Pre2021 = 1,
}

/// Test-only fault injection ([`Call::TestFault`]), present in test builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum TestFault {
    /// The hypervisor writes to its own text: must take a permission fault.
    WriteHypText = 1,
    /// The hypervisor executes an undefined instruction.
    Undefined = 2,
}

impl TestFault {
    pub fn from_reg(x: u64) -> Option<Self> {
        match x {
            1 => Some(Self::WriteHypText),
            2 => Some(Self::Undefined),
            _ => None,
        }
    }
}

/// How the host completes the vcpu's previous exit when it runs it again
/// (VCPU_RUN x3..x7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Nothing to complete (first run, or an exit that needs no answer).
    None,
    /// Answer to an [`Exit::Hvc`]: the guest's x0..x3 become these values.
    Hvc([u64; 4]),
    /// Answer to an [`Exit::Mmio`] read: the loaded value (zero-/sign-extended
    /// by the hypervisor as the instruction asks).
    MmioRead(u64),
    /// Answer to an [`Exit::Mmio`] write: it was performed.
    MmioWrite,
    /// Answer to an [`Exit::Mmio`] or an [`Exit::Abort`]: nothing is there,
    /// the guest takes a synchronous external abort (a data or instruction
    /// abort, FSC 0x10, FAR_EL1 = the faulting VA) at its own vector, as it
    /// would on a machine where that address has nothing behind it. EL2
    /// stops the VM instead when the guest cannot make progress
    /// ([`StopReason::AbortOnVector`], [`StopReason::AbortLoop`]).
    Abort,
}

const COMPLETION_NONE: u64 = 0;
const COMPLETION_HVC: u64 = 1;
const COMPLETION_MMIO_READ: u64 = 2;
const COMPLETION_MMIO_WRITE: u64 = 3;
const COMPLETION_ABORT: u64 = 4;

impl Completion {
    /// Registers x3..x7 of VCPU_RUN.
    #[inline]
    pub fn to_regs(self) -> [u64; 5] {
        match self {
            Completion::None => [COMPLETION_NONE, 0, 0, 0, 0],
            Completion::Hvc(r) => [COMPLETION_HVC, r[0], r[1], r[2], r[3]],
            Completion::MmioRead(v) => [COMPLETION_MMIO_READ, v, 0, 0, 0],
            Completion::MmioWrite => [COMPLETION_MMIO_WRITE, 0, 0, 0, 0],
            Completion::Abort => [COMPLETION_ABORT, 0, 0, 0, 0],
        }
    }

    #[inline]
    pub fn from_regs(r: [u64; 5]) -> Option<Self> {
        Some(match r[0] {
            COMPLETION_NONE => Completion::None,
            COMPLETION_HVC => Completion::Hvc([r[1], r[2], r[3], r[4]]),
            COMPLETION_MMIO_READ => Completion::MmioRead(r[1]),
            COMPLETION_MMIO_WRITE => Completion::MmioWrite,
            COMPLETION_ABORT => Completion::Abort,
            _ => return None,
        })
    }
}

/// Why a VM was stopped by the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum StopReason {
    /// A data abort without a valid syndrome (ISV=0, a load pair for
    /// example) on an emulated device: the host cannot tell what was
    /// accessed, so it stops the VM. (Outside RAM and every device the
    /// guest gets an external abort instead: [`Completion::Abort`].)
    MmioNoSyndrome = 1,
    // 2 was "instruction abort outside guest RAM": the guest now takes an
    // external abort for it ([`Exit::Abort`]).
    /// An exception class the hypervisor does not emulate.
    Unhandled = 3,
    /// The host told the VM it cannot continue (for example an access outside
    /// every device) and the VM was stopped.
    HostRequest = 4,
    /// The guest caused an SError (collected at EL2 on its exit).
    SError = 5,
    /// An external abort to inject would be reported at the very address
    /// it would send the guest to (ELR == the abort vector): the vector
    /// itself is unbacked, the guest can never make progress.
    AbortOnVector = 6,
    /// [`MAX_ABORTS_IN_A_ROW`] external aborts injected with no other exit
    /// between them: the guest's abort handler faults again each time.
    AbortLoop = 7,
}

/// External aborts EL2 injects into a vcpu back to back (no other exit
/// between them) before it gives up on the guest ([`StopReason::AbortLoop`]).
pub const MAX_ABORTS_IN_A_ROW: u32 = 256;

impl StopReason {
    pub fn from_reg(x: u64) -> Option<Self> {
        Some(match x {
            1 => Self::MmioNoSyndrome,
            3 => Self::Unhandled,
            4 => Self::HostRequest,
            5 => Self::SError,
            6 => Self::AbortOnVector,
            7 => Self::AbortLoop,
            _ => return None,
        })
    }
    pub const fn name(self) -> &'static str {
        match self {
            Self::MmioNoSyndrome => "data abort without syndrome on an emulated device",
            Self::Unhandled => "unhandled exception class",
            Self::HostRequest => "stopped at the host's request",
            Self::SError => "SError caused by the guest",
            Self::AbortOnVector => "external abort on the guest's own abort vector (no progress possible)",
            Self::AbortLoop => {
                "external aborts injected back to back without progress (the guest's abort handler faults)"
            }
        }
    }
}

/// An MMIO access the host must emulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    pub ipa: u64,
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    pub write: bool,
    /// The value written (zero for reads).
    pub value: u64,
}

/// Why VCPU_RUN returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// The guest called `hvc` with a function the hypervisor leaves to the host.
    /// Complete with [`Completion::Hvc`].
    Hvc { imm: u16, regs: [u64; 4] },
    /// A guest access to an unmapped IPA with a valid syndrome. Complete
    /// with [`Completion::MmioRead`]/[`Completion::MmioWrite`], or
    /// [`Completion::Abort`] when no device is there.
    Mmio(MmioAccess),
    /// A stage-2 abort outside guest RAM that EL2 cannot turn into an
    /// [`Exit::Mmio`]: an instruction fetch (`instr`), or a data access
    /// without a valid syndrome (ISV=0; `write` = WnR). `far` is the
    /// guest's faulting VA. The host completes it with
    /// [`Completion::Abort`], or stops the VM (a data access on one of its
    /// devices it cannot decode: [`StopReason::MmioNoSyndrome`]).
    Abort { ipa: u64, far: u64, instr: bool, write: bool },
    /// A trapped access to a system register the host emulates
    /// ([`guest_sysreg::host_emulated`]: the EL1 physical timer), `reg`
    /// encoded by [`guest_sysreg::id`]; `value` is what a write writes.
    /// Completed like an MMIO access: [`Completion::MmioRead`] (the value
    /// for the register) or [`Completion::MmioWrite`]; the PC then moves
    /// past the instruction.
    SysReg { reg: u32, write: bool, value: u64 },
    /// A physical interrupt arrived for the host while the guest ran.
    Irq,
    /// The guest executed WFI/WFE.
    Wfx,
    /// The guest wrote an SGI generation register (ICC_SGI1R_EL1 or
    /// ICC_ASGI1R_EL1: `group1`; ICC_SGI0R_EL1: group 0); `value` is what it
    /// wrote. The write is complete (PC past it).
    Sgi { value: u64, group1: bool },
    /// The hypervisor stopped the VM; it cannot run again.
    Stopped { reason: StopReason, esr: u64, far: u64, elr: u64 },
}

const EXIT_HVC: u64 = 1;
const EXIT_MMIO: u64 = 2;
const EXIT_IRQ: u64 = 3;
const EXIT_WFX: u64 = 4;
const EXIT_STOPPED: u64 = 5;
const EXIT_SGI: u64 = 6;
const EXIT_ABORT: u64 = 7;
const EXIT_SYSREG: u64 = 8;
const MMIO_WRITE_FLAG: u64 = 1 << 8;
const ABORT_WRITE_FLAG: u64 = 1 << 0;
const ABORT_INSTR_FLAG: u64 = 1 << 1;

impl Exit {
    /// Registers x1..x7 of the VCPU_RUN answer.
    #[inline]
    pub fn to_regs(self) -> [u64; 7] {
        match self {
            Exit::Hvc { imm, regs } => [EXIT_HVC, imm as u64, regs[0], regs[1], regs[2], regs[3], 0],
            Exit::Mmio(m) => {
                let flags = m.size as u64 | if m.write { MMIO_WRITE_FLAG } else { 0 };
                [EXIT_MMIO, m.ipa, flags, m.value, 0, 0, 0]
            }
            Exit::Irq => [EXIT_IRQ, 0, 0, 0, 0, 0, 0],
            Exit::Wfx => [EXIT_WFX, 0, 0, 0, 0, 0, 0],
            Exit::Sgi { value, group1 } => [EXIT_SGI, value, group1 as u64, 0, 0, 0, 0],
            Exit::Stopped { reason, esr, far, elr } => [EXIT_STOPPED, reason as u64, esr, far, elr, 0, 0],
            Exit::Abort { ipa, far, instr, write } => {
                let flags = if write { ABORT_WRITE_FLAG } else { 0 } | if instr { ABORT_INSTR_FLAG } else { 0 };
                [EXIT_ABORT, ipa, far, flags, 0, 0, 0]
            }
            Exit::SysReg { reg, write, value } => [EXIT_SYSREG, reg as u64, write as u64, value, 0, 0, 0],
        }
    }

    #[inline]
    pub fn from_regs(r: [u64; 7]) -> Option<Self> {
        Some(match r[0] {
            EXIT_HVC => Exit::Hvc { imm: u16::try_from(r[1]).ok()?, regs: [r[2], r[3], r[4], r[5]] },
            EXIT_MMIO => {
                let size = (r[2] & 0xff) as u8;
                if !matches!(size, 1 | 2 | 4 | 8) {
                    return None;
                }
                Exit::Mmio(MmioAccess { ipa: r[1], size, write: r[2] & MMIO_WRITE_FLAG != 0, value: r[3] })
            }
            EXIT_IRQ => Exit::Irq,
            EXIT_WFX => Exit::Wfx,
            EXIT_SGI => Exit::Sgi { value: r[1], group1: r[2] != 0 },
            EXIT_STOPPED => Exit::Stopped { reason: StopReason::from_reg(r[1])?, esr: r[2], far: r[3], elr: r[4] },
            EXIT_ABORT => Exit::Abort {
                ipa: r[1],
                far: r[2],
                instr: r[3] & ABORT_INSTR_FLAG != 0,
                write: r[3] & ABORT_WRITE_FLAG != 0,
            },
            EXIT_SYSREG => Exit::SysReg { reg: u32::try_from(r[1]).ok()?, write: r[2] != 0, value: r[3] },
            _ => return None,
        })
    }
}

/// Steps of the world switch, as recorded by the hypervisor for
/// [`Call::SwitchTrace`] (one byte each). The host checks the executed order
/// against the same rules the unit tests apply to the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Step {
    SaveHostSysregs = 1,
    SaveHostBuffers = 2,
    DsbNsh = 3,
    RestoreGuestSysregs = 4,
    LoadStage2 = 5,
    ActivateGuestTraps = 6,
    RestoreGuestGicTimer = 7,
    EnterGuest = 8,
    SaveGuestState = 9,
    DeactivateTraps = 10,
    UnloadStage2 = 11,
    RestoreHostSysregs = 12,
    RestoreHostBuffers = 13,
}

impl Step {
    pub const ALL: [Step; 13] = [
        Step::SaveHostSysregs,
        Step::SaveHostBuffers,
        Step::DsbNsh,
        Step::RestoreGuestSysregs,
        Step::LoadStage2,
        Step::ActivateGuestTraps,
        Step::RestoreGuestGicTimer,
        Step::EnterGuest,
        Step::SaveGuestState,
        Step::DeactivateTraps,
        Step::UnloadStage2,
        Step::RestoreHostSysregs,
        Step::RestoreHostBuffers,
    ];

    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u8 == v)
    }

    pub const fn name(self) -> &'static str {
        match self {
            Step::SaveHostSysregs => "save_host_sysregs",
            Step::SaveHostBuffers => "save_host_buffers",
            Step::DsbNsh => "dsb_nsh",
            Step::RestoreGuestSysregs => "restore_guest_sysregs",
            Step::LoadStage2 => "load_stage2",
            Step::ActivateGuestTraps => "activate_guest_traps",
            Step::RestoreGuestGicTimer => "restore_guest_gic_timer",
            Step::EnterGuest => "enter_guest",
            Step::SaveGuestState => "save_guest_state",
            Step::DeactivateTraps => "deactivate_traps",
            Step::UnloadStage2 => "unload_stage2",
            Step::RestoreHostSysregs => "restore_host_sysregs",
            Step::RestoreHostBuffers => "restore_host_buffers",
        }
    }
}

/// Steps packed per register in a [`Call::SwitchTrace`] answer.
pub const TRACE_STEPS_PER_REG: usize = 8;
/// Registers of steps per answer (x2..x5).
pub const TRACE_REGS: usize = 4;

/// Packs up to 8 steps into a register, first step in the low byte.
pub fn pack_steps(steps: &[u8]) -> u64 {
    steps.iter().take(TRACE_STEPS_PER_REG).enumerate().fold(0, |acc, (i, s)| acc | (*s as u64) << (8 * i))
}

/// Unpacks a register of steps; zero bytes end the list.
pub fn unpack_steps(reg: u64, out: &mut [u8; TRACE_STEPS_PER_REG]) -> usize {
    let mut n = 0;
    for (i, slot) in out.iter_mut().enumerate() {
        let b = (reg >> (8 * i)) as u8;
        if b == 0 {
            break;
        }
        *slot = b;
        n += 1;
    }
    n
}

/// Guest-facing calls (PSCI 1.x and spevisor's small guest test ABI), made by
/// guests with `hvc #0`.
pub mod guest {
    /// The guest machine's memory map (docs/design.md, "The guest machine"):
    /// QEMU `virt`'s addresses. The host describes it in a device tree
    /// (`host/src/guest_dtb.rs`) written into the last [`machine::DTB_SLOT`]
    /// bytes of guest RAM.
    pub mod machine {
        /// Guest RAM IPA.
        pub const RAM_IPA: u64 = 0x4000_0000;
        /// The emulated PL011.
        pub const UART_IPA: u64 = 0x0900_0000;
        /// GICv3 distributor frame.
        pub const GICD_IPA: u64 = 0x0800_0000;
        pub const GICD_SIZE: u64 = 0x1_0000;
        /// GICv2 CPU interface of a guest on a GICv2 host: the hardware's
        /// virtual CPU interface (GICV), mapped by EL2's stage-2 (8 KiB:
        /// GICC_DIR is in the second page). QEMU `virt`'s GICC address.
        pub const GICC_IPA: u64 = 0x0801_0000;
        pub const GICC_SIZE: u64 = 0x2000;
        /// GICv3 redistributor frames: vcpu `n`'s (RD and SGI, 64 KiB
        /// each, [`GICR_SIZE`] together) at `GICR_IPA + n * GICR_SIZE`.
        pub const GICR_IPA: u64 = 0x080a_0000;
        /// The redistributor frames of one vcpu.
        pub const GICR_SIZE: u64 = 0x2_0000;
        /// The most vcpus a guest may have (the redistributor region of 8
        /// ends at 0x081a_0000, clear of everything else in the map).
        pub const MAX_VCPUS: u32 = 8;

        /// Bytes of the redistributor region of a guest with `vcpus` vcpus.
        pub const fn gicr_size(vcpus: u32) -> u64 {
            vcpus as u64 * GICR_SIZE
        }
        /// Bytes at the top of guest RAM holding the device tree.
        pub const DTB_SLOT: u64 = 64 << 10;
        /// INTIDs of the guest machine: the virtual timer's and the EL1
        /// physical timer's PPIs, the PMU's, the GIC maintenance interrupt's,
        /// and the PL011's SPI (QEMU `virt`'s numbers).
        pub const VTIMER_INTID: u32 = 27;
        pub const PTIMER_INTID: u32 = 30;
        pub const PMU_INTID: u32 = 23;
        pub const MAINTENANCE_INTID: u32 = 25;
        pub const UART_INTID: u32 = 33;

        /// Where the device tree of a guest with `ram_size` bytes of RAM is.
        pub const fn dtb_ipa(ram_size: u64) -> u64 {
            RAM_IPA + ram_size - DTB_SLOT
        }
    }

    pub mod bundle;
    pub mod kernel;

    /// PSCI function IDs (SMC32/SMC64 as PSCI 1.1 defines them).
    pub mod psci {
        pub const VERSION: u64 = 0x8400_0000;
        pub const CPU_OFF: u64 = 0x8400_0002;
        pub const FEATURES: u64 = 0x8400_000A;
        pub const SYSTEM_OFF: u64 = 0x8400_0008;
        pub const SYSTEM_RESET: u64 = 0x8400_0009;
        pub const CPU_ON_64: u64 = 0xC400_0003;
        pub const CPU_ON_32: u64 = 0x8400_0003;
        pub const CPU_SUSPEND_32: u64 = 0x8400_0001;
        pub const CPU_SUSPEND_64: u64 = 0xC400_0001;
        pub const AFFINITY_INFO_32: u64 = 0x8400_0004;
        pub const AFFINITY_INFO_64: u64 = 0xC400_0004;
        pub const MIGRATE_INFO_TYPE: u64 = 0x8400_0006;
        /// SYSTEM_RESET2 (PSCI 1.1, optional): x1 = reset type, x2 = cookie.
        pub const SYSTEM_RESET2_32: u64 = 0x8400_0012;
        pub const SYSTEM_RESET2_64: u64 = 0xC400_0012;
        /// SYSTEM_RESET2 reset types: bit 31 clear, architectural (only
        /// 0, a warm reset, is defined); set, vendor-specific.
        pub const RESET2_WARM: u64 = 0;
        pub const RESET2_VENDOR: u64 = 1 << 31;
        /// spevisor's one vendor reset type: the VM ends (as by SYSTEM_OFF)
        /// with the cookie as its status, the way a guest passes its own
        /// status out (docs/abi.md; the cookie is 32 bits wide in the
        /// SMC32 call, 64 in the SMC64 one).
        pub const RESET2_SPEVISOR_EXIT: u64 = RESET2_VENDOR;
        /// MIGRATE_INFO_TYPE: no Trusted OS needs migrating.
        pub const TOS_NOT_PRESENT: u64 = 2;
        /// AFFINITY_INFO answers.
        pub const AFFINITY_ON: u64 = 0;
        pub const AFFINITY_OFF: u64 = 1;
        pub const AFFINITY_ON_PENDING: u64 = 2;
        pub const DENIED: u64 = -3i64 as u64;
        pub const ALREADY_ON: u64 = -4i64 as u64;
        pub const INVALID_ADDRESS: u64 = -9i64 as u64;
        /// PSCI 1.1.
        pub const VERSION_1_1: u64 = 0x0001_0001;
        pub const SUCCESS: u64 = 0;
        pub const NOT_SUPPORTED: u64 = -1i64 as u64;
        pub const INVALID_PARAMETERS: u64 = -2i64 as u64;
    }
    /// SMCCC architecture calls.
    pub mod smccc {
        pub const VERSION: u64 = 0x8000_0000;
        /// SMCCC 1.1.
        pub const VERSION_1_1: u64 = 0x0001_0001;
        pub const NOT_SUPPORTED: u64 = -1i64 as u64;
        pub const ARCH_FEATURES: u64 = 0x8000_0001;
    }
    /// spevisor's guest test ABI (vendor hypervisor range, SMC64 fast calls).
    pub mod test {
        /// Answered by the host: x1 = x1 + 1.
        pub const HOST_PING: u64 = 0xC600_1000;
        /// Answered at EL2 without a world switch: x1 = x1 + 1.
        pub const HYP_PING: u64 = 0xC600_1001;
        /// The guest reports a status before powering off: x1 = status
        /// (the last one counts; a `--guest` run fails with a non-zero one).
        pub const SET_STATUS: u64 = 0xC600_1002;
        /// The guest reports a value for the host to print: x1 = tag, x2 = value.
        pub const REPORT: u64 = 0xC600_1003;
    }
}

/// Guest system registers the host emulates ([`Exit::SysReg`]): the EL1
/// physical timer, which the host owns on the CPU (its own scheduling
/// timer) and keeps per vcpu (`host/src/ptimer.rs`). CNTHCTL_EL2.EL1PCEN =
/// 0 traps these; EL1PCTEN = 1 leaves counter reads (CNTPCT_EL0) to the
/// guest: with CNTVOFF_EL2 = 0 it reads what CNTVCT_EL0 reads.
pub mod guest_sysreg {
    /// A register's ID: op0, op1, CRn, CRm, op2 packed (2, 3, 4, 4, 3 bits).
    pub const fn id(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> u32 {
        ((op0 as u32 & 0x3) << 14)
            | ((op1 as u32 & 0x7) << 11)
            | ((crn as u32 & 0xf) << 7)
            | ((crm as u32 & 0xf) << 3)
            | (op2 as u32 & 0x7)
    }
    pub const CNTP_TVAL_EL0: u32 = id(3, 3, 14, 2, 0);
    pub const CNTP_CTL_EL0: u32 = id(3, 3, 14, 2, 1);
    pub const CNTP_CVAL_EL0: u32 = id(3, 3, 14, 2, 2);

    /// Whether EL2 hands a trapped access to `reg` to the host.
    pub const fn host_emulated(reg: u32) -> bool {
        matches!(reg, CNTP_TVAL_EL0 | CNTP_CTL_EL0 | CNTP_CVAL_EL0)
    }
}

/// The guest interrupt state a vcpu shares with EL2 ([`Call::VcpuShare`]):
/// the host's GIC model decides what the list registers hold, EL2 loads
/// them on entry and writes their state back on exit.
pub mod vgic {
    /// GICv3 list registers at most (ICH_VTR_EL2.ListRegs + 1 <= 16).
    pub const MAX_LRS: usize = 16;

    /// ICH_LR<n>_EL2 fields (Arm IHI 0069, 12.4.6).
    pub mod lr {
        pub const VINTID_MASK: u64 = 0xffff_ffff;
        pub const PINTID_SHIFT: u64 = 32;
        pub const PINTID_MASK: u64 = 0x1fff << PINTID_SHIFT;
        /// HW = 0: a maintenance interrupt when the guest EOIs it.
        pub const EOI: u64 = 1 << 41;
        pub const PRIORITY_SHIFT: u64 = 48;
        pub const PRIORITY_MASK: u64 = 0xff << PRIORITY_SHIFT;
        pub const GROUP1: u64 = 1 << 60;
        /// The virtual interrupt is tied to physical `pINTID`: the guest's
        /// deactivation deactivates it.
        pub const HW: u64 = 1 << 61;
        pub const STATE_SHIFT: u64 = 62;
        pub const PENDING: u64 = 1 << 62;
        pub const ACTIVE: u64 = 1 << 63;
        pub const STATE_MASK: u64 = PENDING | ACTIVE;
        /// INTIDs from 1020 are special: never a list register's vINTID.
        pub const SPECIAL_FIRST: u64 = 1020;
        /// PPIs (16..32): the only physical interrupts a list register may
        /// be tied to.
        pub const PPI_FIRST: u64 = 16;
        pub const PPI_END: u64 = 32;

        /// A list register for `vintid` in `state` (PENDING/ACTIVE bits).
        pub const fn make(vintid: u32, priority: u8, group1: bool, state: u64) -> u64 {
            vintid as u64 | (priority as u64) << PRIORITY_SHIFT | if group1 { GROUP1 } else { 0 } | (state & STATE_MASK)
        }

        /// The same, tied to physical PPI `pintid` (HW = 1).
        pub const fn make_hw(vintid: u32, pintid: u32, priority: u8, group1: bool, state: u64) -> u64 {
            make(vintid, priority, group1, state) | HW | (pintid as u64) << PINTID_SHIFT
        }

        /// What EL2 loads for a host-supplied value: the architected fields
        /// only; an invalid or special vINTID, or HW with a physical INTID
        /// that is not a PPI, loads an empty (invalid) register instead.
        pub const fn sanitize(v: u64) -> u64 {
            let vintid = v & VINTID_MASK;
            if vintid >= SPECIAL_FIRST || v & STATE_MASK == 0 {
                return 0;
            }
            let keep = vintid | (v & (PRIORITY_MASK | GROUP1 | STATE_MASK));
            if v & HW != 0 {
                let p = (v & PINTID_MASK) >> PINTID_SHIFT;
                if p < PPI_FIRST || p >= PPI_END {
                    return 0;
                }
                keep | HW | (p << PINTID_SHIFT)
            } else {
                keep | (v & EOI)
            }
        }

        pub const fn vintid(v: u64) -> u32 {
            (v & VINTID_MASK) as u32
        }
        pub const fn state(v: u64) -> u64 {
            v & STATE_MASK
        }
    }

    /// GICv2 (GICH_LR<n>, Arm IHI 0048B 5.3.11) list registers. The host
    /// hands EL2 list registers in the GICv3 layout ([`lr`]) on both GIC
    /// versions; on a GICv2 EL2 sanitises them as on GICv3 and converts:
    /// the host's vGIC core is the same for both.
    pub mod lr_v2 {
        use super::lr;
        pub const VIRTUAL_ID_MASK: u32 = 0x3ff;
        pub const PHYSICAL_ID_SHIFT: u32 = 10;
        pub const PHYSICAL_ID_MASK: u32 = 0x3ff << PHYSICAL_ID_SHIFT;
        /// With HW = 0: bit 19 of the PhysicalID field asks for a
        /// maintenance interrupt when the guest EOIs the interrupt.
        pub const EOI: u32 = 1 << 19;
        pub const PRIORITY_SHIFT: u32 = 23;
        /// Priority[27:23]: the top 5 bits of the 8-bit priority.
        pub const PRIORITY_MASK: u32 = 0x1f << PRIORITY_SHIFT;
        /// The 8-bit priority's bits below the five a GICv2 LR keeps.
        pub const PRIORITY_DROPPED_BITS: u32 = 3;
        pub const STATE_SHIFT: u32 = 28;
        pub const PENDING: u32 = 1 << 28;
        pub const ACTIVE: u32 = 1 << 29;
        pub const STATE_MASK: u32 = PENDING | ACTIVE;
        pub const GROUP1: u32 = 1 << 30;
        pub const HW: u32 = 1 << 31;

        /// The GICv2 list register for a host-supplied GICv3-layout value,
        /// sanitised first ([`lr::sanitize`]: no special vINTID, HW only to
        /// a PPI), so every field fits (vINTID < 1020 in 10 bits, pINTID
        /// 16..32). The SGI source-CPU field (CPUID) is 0.
        pub const fn from_v3(v: u64) -> u32 {
            let v = lr::sanitize(v);
            if v == 0 {
                return 0;
            }
            let prio = ((v & lr::PRIORITY_MASK) >> lr::PRIORITY_SHIFT) as u32;
            let state = ((v & lr::STATE_MASK) >> lr::STATE_SHIFT) as u32;
            let mut out = (lr::vintid(v) & VIRTUAL_ID_MASK)
                | ((prio >> PRIORITY_DROPPED_BITS) << PRIORITY_SHIFT)
                | (state << STATE_SHIFT);
            if v & lr::GROUP1 != 0 {
                out |= GROUP1;
            }
            if v & lr::HW != 0 {
                let p = ((v & lr::PINTID_MASK) >> lr::PINTID_SHIFT) as u32;
                out |= HW | (p << PHYSICAL_ID_SHIFT);
            } else if v & lr::EOI != 0 {
                out |= EOI;
            }
            out
        }

        /// The GICv3-layout value of a GICv2 list register read back after
        /// a run (what the host's vGIC folds).
        pub const fn to_v3(v: u32) -> u64 {
            let state = (((v & STATE_MASK) >> STATE_SHIFT) as u64) << lr::STATE_SHIFT;
            let prio = (((v & PRIORITY_MASK) >> PRIORITY_SHIFT) << PRIORITY_DROPPED_BITS) as u64;
            let mut out = (v & VIRTUAL_ID_MASK) as u64 | (prio << lr::PRIORITY_SHIFT) | state;
            if v & GROUP1 != 0 {
                out |= lr::GROUP1;
            }
            if v & HW != 0 {
                out |= lr::HW | ((((v & PHYSICAL_ID_MASK) >> PHYSICAL_ID_SHIFT) as u64) << lr::PINTID_SHIFT);
            } else if v & EOI != 0 {
                out |= lr::EOI;
            }
            out
        }
    }

    /// ICH_HCR_EL2 bits the host may ask for ([`VcpuShared::hcr_flags`]).
    pub mod hcr {
        /// Underflow: a maintenance interrupt (an exit) when at most one
        /// list register is valid, so the host can refill them.
        pub const UIE: u32 = 1 << 1;
        /// Not an ICH_HCR_EL2 bit: asks EL2 to report EOIcount at exit.
        pub const REPORT_EOICOUNT: u32 = 1 << 31;
        /// What reaches ICH_HCR_EL2.
        pub const HW_MASK: u32 = UIE;
        /// ICH_HCR_EL2.EOIcount.
        pub const EOICOUNT_SHIFT: u64 = 27;
        pub const EOICOUNT_MASK: u64 = 0x1f;
    }

    /// One vcpu's shared page (`repr(C)`: the host and EL2 agree on it).
    /// Written by the host before VCPU_RUN (`lrs`, `nr_lrs`, `hcr_flags`)
    /// and by EL2 at exit (`lrs[..nr_lrs]` with their new state,
    /// `eoicount`, and at WFI exits the guest's virtual timer).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct VcpuShared {
        pub lrs: [u64; MAX_LRS],
        /// List registers in use (EL2 loads at most as many as it has).
        pub nr_lrs: u32,
        /// [`hcr`] bits.
        pub hcr_flags: u32,
        /// ICH_HCR_EL2.EOIcount at the last exit (with `REPORT_EOICOUNT`).
        pub eoicount: u32,
        /// 1 if the guest's PMU overflow interrupt was asserted at its last
        /// exit (written at every exit once the vcpu has used its PMU).
        pub pmu_level: u32,
        /// CNTV_CTL_EL0 and CNTV_CVAL_EL0 of the guest at its last WFI or
        /// IRQ exit (the host's wake-up deadline, and whether its timer is
        /// firing; CNTVOFF_EL2 is 0).
        pub cntv_ctl: u64,
        pub cntv_cval: u64,
    }

    /// CNTV_CTL_EL0 bits.
    pub mod cntv {
        pub const ENABLE: u64 = 1 << 0;
        pub const IMASK: u64 = 1 << 1;
        pub const ISTATUS: u64 = 1 << 2;
    }

    impl VcpuShared {
        /// Whether the guest's virtual timer was asserting its interrupt
        /// (enabled, unmasked, condition met) at its last WFI or IRQ exit.
        pub const fn timer_firing(&self) -> bool {
            self.cntv_ctl & (cntv::ENABLE | cntv::IMASK | cntv::ISTATUS) == cntv::ENABLE | cntv::ISTATUS
        }

        /// When the guest's virtual timer will fire, in counter ticks, if it
        /// is armed (enabled and unmasked) at its last WFI exit.
        pub const fn timer_deadline(&self) -> Option<u64> {
            if self.cntv_ctl & (cntv::ENABLE | cntv::IMASK) == cntv::ENABLE {
                Some(self.cntv_cval)
            } else {
                None
            }
        }
    }
}

/// A world-switch ordering rule that a recorded or planned step sequence broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderViolation {
    /// A step is missing from, or repeated in, one round trip.
    StepCount { step: Step, count: usize },
    /// save_host_buffers ran after `step` had loaded guest state (guest
    /// sysregs, VTTBR, HCR_EL2.VM or MDCR_EL2): the drain would go through the
    /// guest's regime or EL2's.
    DrainAfterGuestState { step: Step },
    /// No `dsb nsh` between the drain and the first guest state.
    NoDsbAfterDrain,
    /// restore_host_buffers ran before `step` had put the host's regime back.
    RestoreBeforeHostState { step: Step },
    /// A host step ran while the guest's state was still loaded, or a guest
    /// step before the host's was saved.
    Misordered { first: Step, then: Step },
}

impl OrderViolation {
    /// The rule's name, for reports and test assertions.
    pub const fn rule(&self) -> &'static str {
        match self {
            Self::StepCount { .. } => "each-step-once",
            Self::DrainAfterGuestState { .. } => "drain-before-guest-state",
            Self::NoDsbAfterDrain => "dsb-after-drain",
            Self::RestoreBeforeHostState { .. } => "restore-after-host-state",
            Self::Misordered { .. } => "entry-exit-order",
        }
    }
}

impl core::fmt::Display for OrderViolation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::StepCount { step, count } => {
                write!(f, "{}: {} ran {} times", self.rule(), step.name(), count)
            }
            Self::DrainAfterGuestState { step } => {
                write!(f, "{}: save_host_buffers after {}", self.rule(), step.name())
            }
            Self::NoDsbAfterDrain => write!(f, "{}: no dsb nsh between the drain and guest state", self.rule()),
            Self::RestoreBeforeHostState { step } => {
                write!(f, "{}: restore_host_buffers before {}", self.rule(), step.name())
            }
            Self::Misordered { first, then } => {
                write!(f, "{}: {} before {}", self.rule(), first.name(), then.name())
            }
        }
    }
}

/// The steps that load guest state the SPE drain must not see.
pub const GUEST_STATE_STEPS: [Step; 3] = [Step::RestoreGuestSysregs, Step::LoadStage2, Step::ActivateGuestTraps];
/// The steps that put the host's regime back before the buffer may restart.
pub const HOST_STATE_STEPS: [Step; 3] = [Step::DeactivateTraps, Step::UnloadStage2, Step::RestoreHostSysregs];

/// Checks one round trip of the world switch (entry through exit) against
/// the contract in docs/design.md, "The world switch contract". Used on the
/// plan by unit tests and on the steps the hypervisor actually executed by
/// the host.
pub fn check_switch_order(steps: &[Step]) -> Result<(), OrderViolation> {
    let pos = |s: Step| steps.iter().position(|x| *x == s);
    for s in Step::ALL {
        let count = steps.iter().filter(|x| **x == s).count();
        // DsbNsh appears twice: after the drain and after saving the guest.
        let want = if s == Step::DsbNsh { 2 } else { 1 };
        if count != want {
            return Err(OrderViolation::StepCount { step: s, count });
        }
    }
    let at = |s: Step| pos(s).unwrap_or(usize::MAX);
    let drain = at(Step::SaveHostBuffers);
    for s in GUEST_STATE_STEPS {
        if at(s) < drain {
            return Err(OrderViolation::DrainAfterGuestState { step: s });
        }
    }
    let first_guest = GUEST_STATE_STEPS.iter().map(|s| at(*s)).min().unwrap_or(usize::MAX);
    if !steps[drain..first_guest.min(steps.len())].contains(&Step::DsbNsh) {
        return Err(OrderViolation::NoDsbAfterDrain);
    }
    let restore = at(Step::RestoreHostBuffers);
    for s in HOST_STATE_STEPS {
        if at(s) > restore {
            return Err(OrderViolation::RestoreBeforeHostState { step: s });
        }
    }
    // The skeleton around the buffers: host saved before guest loaded, guest
    // entered after it is loaded, guest saved before host restored.
    let chain = [
        Step::SaveHostSysregs,
        Step::RestoreGuestSysregs,
        Step::LoadStage2,
        Step::EnterGuest,
        Step::SaveGuestState,
        Step::DeactivateTraps,
        Step::RestoreHostSysregs,
    ];
    for w in chain.windows(2) {
        if at(w[0]) > at(w[1]) {
            return Err(OrderViolation::Misordered { first: w[1], then: w[0] });
        }
    }
    for s in [Step::ActivateGuestTraps, Step::RestoreGuestGicTimer] {
        if at(s) > at(Step::EnterGuest) {
            return Err(OrderViolation::Misordered { first: Step::EnterGuest, then: s });
        }
    }
    if at(Step::UnloadStage2) < at(Step::SaveGuestState) {
        return Err(OrderViolation::Misordered { first: Step::UnloadStage2, then: Step::SaveGuestState });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_ids_are_fast_smc64_vendor_hypervisor() {
        for c in Call::ALL {
            let id = c.id();
            assert_eq!(id >> 31 & 1, 1, "{c:?} must be a fast call");
            assert_eq!(id >> 30 & 1, 1, "{c:?} must be SMC64");
            assert_eq!(id >> 24 & 0x3f, 6, "{c:?} must be owner 6");
            assert_eq!(Call::from_id(id), Some(c));
        }
        assert_eq!(Call::from_id(0xC600_0099), None);
        assert_eq!(Call::from_id(0x8400_0000), None);
    }

    #[test]
    fn statuses_round_trip_and_are_distinct() {
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(Status::from_reg(s.to_reg()), Some(*s));
            for t in &Status::ALL[i + 1..] {
                assert_ne!(*s as i64, *t as i64);
                assert_ne!(s.name(), t.name());
            }
        }
        assert_eq!(Status::NotSupported.to_reg(), u64::MAX, "SMCCC NOT_SUPPORTED is -1");
        assert_eq!(Status::from_reg(12345), None);
    }

    #[test]
    fn exits_round_trip() {
        let exits = [
            Exit::Hvc { imm: 0, regs: [0x8400_0000, 1, 2, 3] },
            Exit::Mmio(MmioAccess { ipa: 0x0900_0018, size: 4, write: false, value: 0 }),
            Exit::Mmio(MmioAccess { ipa: 0x0900_0000, size: 1, write: true, value: 0x41 }),
            Exit::Irq,
            Exit::Wfx,
            Exit::Sgi { value: 0x0100_0000_0001, group1: true },
            Exit::Stopped { reason: StopReason::AbortOnVector, esr: 0x8200_0006, far: 0x10, elr: 0x20 },
            Exit::Stopped { reason: StopReason::AbortLoop, esr: 0x9200_0007, far: 0x10, elr: 0x20 },
            Exit::Abort { ipa: 0x2_0000_0000, far: 0x2_4000_0000, instr: false, write: true },
            Exit::Abort { ipa: 0x4100_0000, far: 0x8100_0000, instr: true, write: false },
            Exit::SysReg { reg: guest_sysreg::CNTP_TVAL_EL0, write: true, value: 0x1234 },
            Exit::SysReg { reg: guest_sysreg::CNTP_CTL_EL0, write: false, value: 0 },
        ];
        for e in exits {
            assert_eq!(Exit::from_regs(e.to_regs()), Some(e));
        }
        assert_eq!(Exit::from_regs([99, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(Exit::from_regs([EXIT_MMIO, 0, 3, 0, 0, 0, 0]), None, "size 3 is no access size");
    }

    #[test]
    fn list_registers_are_sanitised() {
        use vgic::lr;
        let ok = lr::make(33, 0xa0, true, lr::PENDING);
        assert_eq!(lr::sanitize(ok), ok);
        assert_eq!(lr::sanitize(ok | lr::EOI), ok | lr::EOI);
        let hw = lr::make_hw(27, 27, 0xa0, true, lr::PENDING);
        assert_eq!(lr::sanitize(hw), hw);
        assert_eq!(lr::sanitize(lr::make_hw(27, 40, 0, true, lr::PENDING)), 0, "HW tied to an SPI");
        assert_eq!(lr::sanitize(lr::make_hw(27, 3, 0, true, lr::PENDING)), 0, "HW tied to an SGI");
        assert_eq!(lr::sanitize(lr::make(1023, 0, true, lr::PENDING)), 0, "special INTID");
        assert_eq!(lr::sanitize(lr::make(5, 0, true, 0)), 0, "no state: empty");
        assert_eq!(lr::sanitize(ok | 1 << 56 | 1 << 58), ok, "reserved bits dropped");
        assert_eq!(lr::sanitize(ok | 5 << 32), ok, "pINTID dropped without HW");
        let s = vgic::VcpuShared { cntv_ctl: 1, cntv_cval: 99, ..Default::default() };
        assert_eq!(s.timer_deadline(), Some(99));
        assert_eq!(vgic::VcpuShared { cntv_ctl: 3, ..s }.timer_deadline(), None, "masked");
        assert_eq!(vgic::VcpuShared { cntv_ctl: 0, ..s }.timer_deadline(), None, "disabled");
        assert!(vgic::VcpuShared { cntv_ctl: 0b101, ..s }.timer_firing());
        assert!(!vgic::VcpuShared { cntv_ctl: 0b111, ..s }.timer_firing(), "masked");
        assert!(!vgic::VcpuShared { cntv_ctl: 0b001, ..s }.timer_firing(), "not yet");
        assert_eq!(core::mem::size_of::<vgic::VcpuShared>(), 16 * 8 + 16 + 16);
    }

    #[test]
    fn gicv2_list_registers_are_sanitised_and_converted() {
        use vgic::{lr, lr_v2};
        // A pending group-0 SPI at priority 0xa0: 5 priority bits kept.
        let spi = lr::make(33, 0xa0, false, lr::PENDING);
        assert_eq!(lr_v2::from_v3(spi), 33 | (0xa0 >> 3) << 23 | lr_v2::PENDING);
        assert_eq!(lr_v2::to_v3(lr_v2::from_v3(spi)), spi);
        // The virtual timer tied to its physical PPI, active and pending, group 1.
        let hw = lr::make_hw(27, 27, 0x80, true, lr::PENDING | lr::ACTIVE);
        let v2 = lr_v2::from_v3(hw);
        assert_eq!(v2, 27 | 27 << 10 | 0x10 << 23 | lr_v2::PENDING | lr_v2::ACTIVE | lr_v2::GROUP1 | lr_v2::HW);
        assert_eq!(lr_v2::to_v3(v2), hw);
        // EOI maintenance request (HW = 0) lands in PhysicalID bit 9.
        assert_eq!(lr_v2::from_v3(spi | lr::EOI), lr_v2::from_v3(spi) | lr_v2::EOI);
        assert_eq!(lr_v2::to_v3(lr_v2::from_v3(spi | lr::EOI)), spi | lr::EOI);
        // Priority bits below the five kept are lost, not carried into State.
        assert_eq!(lr_v2::from_v3(lr::make(40, 0xff, false, lr::PENDING)) & !lr_v2::PRIORITY_MASK, 40 | lr_v2::PENDING);
        // What the host may not hand EL2 loads an empty register.
        assert_eq!(lr_v2::from_v3(lr::make_hw(27, 40, 0, true, lr::PENDING)), 0, "HW tied to an SPI");
        assert_eq!(lr_v2::from_v3(lr::make_hw(27, 3, 0, true, lr::PENDING)), 0, "HW tied to an SGI");
        assert_eq!(lr_v2::from_v3(lr::make(1023, 0, true, lr::PENDING)), 0, "special INTID");
        assert_eq!(lr_v2::from_v3(lr::make(0x4_0021, 0, true, lr::PENDING)), 0, "vINTID beyond 10 bits");
        assert_eq!(lr_v2::from_v3(lr::make(5, 0, true, 0)), 0, "no state: empty");
        // pINTID bits of a non-HW value never reach the CPUID/EOI field.
        assert_eq!(lr_v2::from_v3(spi | 0x1f << 32), lr_v2::from_v3(spi), "pINTID dropped without HW");
    }

    #[test]
    fn completions_round_trip() {
        for c in [
            Completion::None,
            Completion::Hvc([1, 2, 3, 4]),
            Completion::MmioRead(7),
            Completion::MmioWrite,
            Completion::Abort,
        ] {
            assert_eq!(Completion::from_regs(c.to_regs()), Some(c));
        }
        assert_eq!(Completion::from_regs([9, 0, 0, 0, 0]), None);
    }

    #[test]
    fn steps_pack_and_unpack() {
        let steps: [u8; 5] = [1, 2, 3, 4, 13];
        let reg = pack_steps(&steps);
        let mut out = [0; TRACE_STEPS_PER_REG];
        assert_eq!(unpack_steps(reg, &mut out), 5);
        assert_eq!(&out[..5], &steps);
        for s in Step::ALL {
            assert_eq!(Step::from_u8(s as u8), Some(s));
        }
        assert_eq!(Step::from_u8(0), None);
    }
}
