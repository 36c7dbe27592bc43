//! A guest's self-hosted debug state: its breakpoint and watchpoint
//! registers, MDSCR_EL1 and the OS lock, switched lazily.
//!
//! - **Trapped until touched.** Guests run with MDCR_EL2.TDA, TDOSA and TDRA
//!   set. The first access to a TDA register (MDSCR_EL1, DBGB{V,C}R<n>,
//!   DBGW{V,C}R<n>, the claim tags, the DCC registers) while the OS lock is
//!   open is not emulated: the world switch saves the host's comparators,
//!   loads the vcpu's, clears TDA (`traps::allow_guest_debug`) and lets the
//!   access run again on the real registers ([`Access::Load`]). Until the
//!   vcpu exits to the host it is *debug loaded*; at the exit its values are
//!   saved and the host's put back exactly (`switch_to_host`).
//! - **Loaded at entry while armed.** A vcpu whose MDSCR_EL1 has MDE or KDE
//!   set (and whose OS lock is open) may have breakpoints enabled: its
//!   comparators are loaded at every entry ([`VcpuDebug::armed`], one byte
//!   tested on the entry path). Any other vcpu pays only that test.
//! - **MDSCR_EL1** is an EL1 register the EL1 context switch carries
//!   (`el1ctx.S`); `El1Context::mdscr` holds the value the CPU runs the
//!   guest with ([`VcpuDebug::effective_mdscr`]), [`VcpuDebug::mdscr`] the
//!   guest's own. They differ only while the OS lock blocks debug.
//! - **OS lock and OS double lock: emulated per vcpu**, never given to the
//!   hardware (TDOSA stays set): the physical lock is the whole CPU's, the
//!   host's included. While the guest's lock blocks debug
//!   ([`VcpuDebug::blocked`]: OSLSR_EL1.OSLK = 1, or OSDLR_EL1.DLK = 1 with
//!   DBGPRCR_EL1.CORENPDRQ = 0, as the Arm ARM's `DoubleLockStatus()`), the
//!   CPU runs the guest with MDSCR_EL1.MDE, KDE and SS clear: breakpoint,
//!   watchpoint and software-step exceptions cannot happen (BRK still does,
//!   as the architecture says), and every debug register access is trapped
//!   and emulated on the saved values (the guest reads back what it wrote).
//!   The lock is locked at vcpu creation (OSLK resets to 1 on a cold reset);
//!   Linux opens it at boot. OSDLR_EL1 holds DLK only where the CPU has
//!   FEAT_DoubleLock (ID_AA64DFR0_EL1.DoubleLock = 0), else it is RAZ/WI.
//! - **Counts.** ID_AA64DFR0_EL1.BRPs/WRPs/CTX_CMPs reach guests unchanged:
//!   every comparator is switched, and the host uses none of its own.
//!
//! Not switched: the claim tags (DBGCLAIMSET/CLR_EL1; QEMU 7.2 does not
//! implement them, so EL2 cannot touch them there) and the DCC registers:
//! a loaded guest reaches the CPU's own. MDRAR_EL1 reads as 0 (no ROM table).
//!
//! The pure part (state, emulation) is tested on the development machine;
//! `imp` moves the registers.

use spevisor_armv8::sysreg::{self, DebugPointReg, SysRegEnc};

/// Breakpoint and watchpoint registers the architecture allows (BRPs and
/// WRPs are 4-bit "count - 1" fields).
pub const MAX_POINTS: usize = 16;

/// MDSCR_EL1 bits.
pub mod mdscr {
    /// Software step enable.
    pub const SS: u64 = 1 << 0;
    /// Trap EL0 accesses to the DCC registers.
    pub const TDCC: u64 = 1 << 12;
    /// Debug exceptions at the debug target EL itself (EL1).
    pub const KDE: u64 = 1 << 13;
    /// Breakpoint and watchpoint exceptions.
    pub const MDE: u64 = 1 << 15;
    /// What the OS lock takes away from the CPU's copy.
    pub const DEBUG_ENABLES: u64 = MDE | KDE | SS;
    /// The bits an emulated write (OS lock locked) keeps.
    pub const EMULATED: u64 = SS | TDCC | KDE | MDE;
}

/// OSLSR_EL1: OSLM = 0b10 (OSLM[1], bit 3: the OS lock is implemented) and
/// OSLK (bit 1).
const OSLSR_OSLM_IMPLEMENTED: u64 = 1 << 3;
const OSLSR_OSLK_SHIFT: u64 = 1;
/// OSLAR_EL1.OSLK, OSDLR_EL1.DLK, DBGPRCR_EL1.CORENPDRQ: bit 0 each.
const LOCK_BIT: u64 = 1;

/// ID_AA64DFR0_EL1 fields.
const DFR0_BRPS_SHIFT: u64 = 12;
const DFR0_WRPS_SHIFT: u64 = 20;
const DFR0_DOUBLELOCK_SHIFT: u64 = 36;
const FIELD_MASK: u64 = 0xf;

/// What the CPU implements of self-hosted debug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugFeatures {
    /// Breakpoints (BRPs + 1).
    pub brps: u8,
    /// Watchpoints (WRPs + 1).
    pub wrps: u8,
    /// FEAT_DoubleLock (DoubleLock = 0b0000).
    pub double_lock: bool,
}

impl DebugFeatures {
    pub const fn from_dfr0(dfr0: u64) -> Self {
        Self {
            brps: ((dfr0 >> DFR0_BRPS_SHIFT) & FIELD_MASK) as u8 + 1,
            wrps: ((dfr0 >> DFR0_WRPS_SHIFT) & FIELD_MASK) as u8 + 1,
            double_lock: (dfr0 >> DFR0_DOUBLELOCK_SHIFT) & FIELD_MASK == 0,
        }
    }
}

/// The comparators: DBGBVR/DBGBCR<n>_EL1 and DBGWVR/DBGWCR<n>_EL1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Points {
    pub bvr: [u64; MAX_POINTS],
    pub bcr: [u64; MAX_POINTS],
    pub wvr: [u64; MAX_POINTS],
    pub wcr: [u64; MAX_POINTS],
}

/// A vcpu's debug state while it is not loaded (and its lock state always).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuDebug {
    pub points: Points,
    /// MDSCR_EL1 as the guest wrote it.
    pub mdscr: u64,
    /// OSLSR_EL1.OSLK.
    pub oslk: bool,
    /// OSDLR_EL1.DLK.
    pub dlk: bool,
    /// DBGPRCR_EL1.CORENPDRQ.
    pub corenpdrq: bool,
    /// Load the comparators at entry: MDE or KDE set and not blocked
    /// (kept up to date by [`VcpuDebug::settle`]).
    pub armed: bool,
}

impl Default for VcpuDebug {
    fn default() -> Self {
        Self::new()
    }
}

impl VcpuDebug {
    /// The state at vcpu creation (a cold reset): everything zero, the OS
    /// lock locked.
    pub const fn new() -> Self {
        Self {
            points: Points { bvr: [0; MAX_POINTS], bcr: [0; MAX_POINTS], wvr: [0; MAX_POINTS], wcr: [0; MAX_POINTS] },
            mdscr: 0,
            oslk: true,
            dlk: false,
            corenpdrq: false,
            armed: false,
        }
    }

    /// Debug exceptions other than BRK are disabled by the OS lock or the
    /// OS double lock.
    pub const fn blocked(&self) -> bool {
        self.oslk || (self.dlk && !self.corenpdrq)
    }

    /// MDSCR_EL1 as the CPU must hold it while this guest runs.
    pub const fn effective_mdscr(&self) -> u64 {
        if self.blocked() {
            self.mdscr & !mdscr::DEBUG_ENABLES
        } else {
            self.mdscr
        }
    }

    /// Recomputes [`VcpuDebug::armed`]; returns [`VcpuDebug::effective_mdscr`].
    pub fn settle(&mut self) -> u64 {
        self.armed = !self.blocked() && self.mdscr & (mdscr::MDE | mdscr::KDE) != 0;
        self.effective_mdscr()
    }
}

/// What a trapped debug register access needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Load the vcpu's debug state, lift the trap, run the access again.
    Load,
    /// Not a register this CPU has (a comparator beyond BRPs/WRPs, a write
    /// to a read-only register): UNDEF.
    Undef,
    /// A read, answered with this value; the access is complete.
    Read(u64),
    /// A write, done on the saved state; nothing else changes.
    Written,
    /// MDSCR_EL1 written (emulated): the CPU's copy must follow.
    MdscrWritten,
    /// The OS lock or double lock changed whether debug is blocked.
    LockChanged,
}

/// Emulates or classifies a trapped access to an op0 = 2 register.
/// `write` is the value written, `None` for a read.
pub fn access(d: &mut VcpuDebug, f: DebugFeatures, enc: SysRegEnc, write: Option<u64>) -> Access {
    let was_blocked = d.blocked();
    let lock_write = |d: &mut VcpuDebug, set: fn(&mut VcpuDebug, bool), v: u64| {
        set(d, v & LOCK_BIT != 0);
        if d.blocked() != was_blocked {
            Access::LockChanged
        } else {
            Access::Written
        }
    };
    let lock_bit = |b: bool| Access::Read(u64::from(b));
    match (enc, write) {
        // The OS lock group (TDOSA), always emulated.
        (sysreg::OSLAR_EL1, Some(v)) => lock_write(d, |d, b| d.oslk = b, v),
        (sysreg::OSLSR_EL1, None) => Access::Read(OSLSR_OSLM_IMPLEMENTED | u64::from(d.oslk) << OSLSR_OSLK_SHIFT),
        (sysreg::OSLAR_EL1, None) | (sysreg::OSLSR_EL1, Some(_)) => Access::Undef,
        (sysreg::OSDLR_EL1, Some(v)) if f.double_lock => lock_write(d, |d, b| d.dlk = b, v),
        (sysreg::OSDLR_EL1, None) if f.double_lock => lock_bit(d.dlk),
        (sysreg::DBGPRCR_EL1, Some(v)) => lock_write(d, |d, b| d.corenpdrq = b, v),
        (sysreg::DBGPRCR_EL1, None) => lock_bit(d.corenpdrq),
        (sysreg::OSDLR_EL1 | sysreg::OSDTRRX_EL1 | sysreg::OSDTRTX_EL1 | sysreg::OSECCR_EL1, None) => Access::Read(0),
        (sysreg::OSDLR_EL1 | sysreg::OSDTRRX_EL1 | sysreg::OSDTRTX_EL1 | sysreg::OSECCR_EL1, Some(_)) => {
            Access::Written
        }
        // TDRA: no debug ROM table.
        (sysreg::MDRAR_EL1, None) => Access::Read(0),
        (sysreg::MDRAR_EL1, Some(_)) => Access::Undef,
        _ => tda_access(d, f, enc, write),
    }
}

/// The TDA group: loaded lazily while the OS lock is open, emulated on the
/// saved values while it blocks debug; any other op0 = 2 register reads as
/// zero and ignores writes (as before this module: trace and the like).
fn tda_access(d: &mut VcpuDebug, f: DebugFeatures, enc: SysRegEnc, write: Option<u64>) -> Access {
    if let Some((kind, n)) = enc.debug_breakpoint() {
        let blocked = d.blocked();
        let (regs, count) = match kind {
            DebugPointReg::Bvr => (&mut d.points.bvr, f.brps),
            DebugPointReg::Bcr => (&mut d.points.bcr, f.brps),
            DebugPointReg::Wvr => (&mut d.points.wvr, f.wrps),
            DebugPointReg::Wcr => (&mut d.points.wcr, f.wrps),
        };
        if n >= count || usize::from(n) >= MAX_POINTS {
            return Access::Undef;
        }
        if !blocked {
            return Access::Load;
        }
        return match write {
            Some(v) => {
                regs[usize::from(n)] = v;
                Access::Written
            }
            None => Access::Read(regs[usize::from(n)]),
        };
    }
    let tda = matches!(
        enc,
        sysreg::MDSCR_EL1
            | sysreg::MDCCINT_EL1
            | sysreg::DBGCLAIMSET_EL1
            | sysreg::DBGCLAIMCLR_EL1
            | sysreg::DBGAUTHSTATUS_EL1
            | sysreg::MDCCSR_EL0
            | sysreg::DBGDTR_EL0
            | sysreg::DBGDTRRX_EL0
    );
    if tda && !d.blocked() {
        return Access::Load;
    }
    match (enc, write) {
        (sysreg::MDSCR_EL1, Some(v)) => {
            d.mdscr = v & mdscr::EMULATED;
            Access::MdscrWritten
        }
        (sysreg::MDSCR_EL1, None) => Access::Read(d.mdscr),
        (_, Some(_)) => Access::Written,
        (_, None) => Access::Read(0),
    }
}

/// What the world switch does for a debug access `vcpu.rs` could not
/// finish alone ([`imp::apply`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuWork {
    /// [`Access::Load`]: load, lift TDA, run the access again.
    Load,
    /// MDSCR_EL1 emulated (OS lock blocking): `el1.mdscr` into the CPU.
    MdscrWritten,
    /// [`Access::LockChanged`]: [`imp::relock`].
    LockChanged,
}

#[cfg(target_arch = "aarch64")]
pub use imp::*;

#[cfg(target_arch = "aarch64")]
mod imp {
    use super::{CpuWork, DebugFeatures, Points, VcpuDebug};
    use crate::vcpu::Vcpu;
    use core::arch::asm;

    /// The host's comparators while a guest's are loaded, and the counts.
    #[derive(Clone, Copy, Debug)]
    pub struct HostDebug {
        pub points: Points,
        pub features: DebugFeatures,
    }

    impl HostDebug {
        pub fn new(features: DebugFeatures) -> Self {
            Self { points: Points::default(), features }
        }
    }

    /// Moves comparator `n` of each kind in or out, for every `n` below the
    /// counts. Straight-line compares, no jump table: `msr`/`mrs` need the
    /// register number in the instruction.
    macro_rules! each_point {
        ($f:expr, $body:ident) => {
            each_point!(@one $f, $body, 0, "0");
            each_point!(@one $f, $body, 1, "1");
            each_point!(@one $f, $body, 2, "2");
            each_point!(@one $f, $body, 3, "3");
            each_point!(@one $f, $body, 4, "4");
            each_point!(@one $f, $body, 5, "5");
            each_point!(@one $f, $body, 6, "6");
            each_point!(@one $f, $body, 7, "7");
            each_point!(@one $f, $body, 8, "8");
            each_point!(@one $f, $body, 9, "9");
            each_point!(@one $f, $body, 10, "10");
            each_point!(@one $f, $body, 11, "11");
            each_point!(@one $f, $body, 12, "12");
            each_point!(@one $f, $body, 13, "13");
            each_point!(@one $f, $body, 14, "14");
            each_point!(@one $f, $body, 15, "15");
        };
        (@one $f:expr, $body:ident, $n:literal, $s:literal) => {
            if $n < $f.brps {
                $body!("dbgbvr", $s, bvr, $n);
                $body!("dbgbcr", $s, bcr, $n);
            }
            if $n < $f.wrps {
                $body!("dbgwvr", $s, wvr, $n);
                $body!("dbgwcr", $s, wcr, $n);
            }
        };
    }

    /// Reads the CPU's comparators into `p`.
    #[inline(never)]
    pub fn save_points(p: &mut Points, f: DebugFeatures) {
        macro_rules! save {
            ($r:literal, $s:literal, $field:ident, $n:literal) => {
                // SAFETY: comparator $n exists ($n < BRPs/WRPs + 1); reading
                // it at EL2 has no side effects.
                unsafe {
                    asm!(concat!("mrs {}, ", $r, $s, "_el1"), out(reg) p.$field[$n], options(nomem, nostack, preserves_flags))
                };
            };
        }
        each_point!(f, save);
    }

    /// Writes `p` into the CPU's comparators. No barrier: the `eret` to
    /// the guest (or the host) synchronises them, and they cannot fire at
    /// EL2 (MDCR_EL2.TDE = 0: the debug target is EL1, and debug
    /// exceptions are never enabled at an EL above it).
    #[inline(never)]
    pub fn load_points(p: &Points, f: DebugFeatures) {
        macro_rules! load {
            ($r:literal, $s:literal, $field:ident, $n:literal) => {
                // SAFETY: comparator $n exists; it only affects EL1/EL0
                // (see above).
                unsafe {
                    asm!(concat!("msr ", $r, $s, "_el1, {}"), in(reg) p.$field[$n], options(nomem, nostack, preserves_flags))
                };
            };
        }
        each_point!(f, load);
    }

    /// The vcpu's comparators in, the host's parked, TDA lifted: the vcpu
    /// is debug loaded until [`switch_to_host`]. After `activate_guest_traps`
    /// (it lifts TDA from the MDCR_EL2 value written there).
    #[cold]
    #[inline(never)]
    pub fn switch_to_guest(host: &mut HostDebug, guest: &VcpuDebug) {
        save_points(&mut host.points, host.features);
        load_points(&guest.points, host.features);
        crate::traps::allow_guest_debug();
    }

    /// After `save_guest_sysregs` (the guest's live MDSCR_EL1 is in
    /// `vcpu.el1.mdscr`): the vcpu's comparators saved, the host's back
    /// exactly as they were. MDCR_EL2 (TDA) is the host's again at
    /// `deactivate_traps`.
    #[cold]
    #[inline(never)]
    pub fn switch_to_host(host: &HostDebug, vcpu: &mut Vcpu) {
        save_points(&mut vcpu.debug.points, host.features);
        load_points(&host.points, host.features);
        vcpu.debug.mdscr = vcpu.el1.mdscr;
        vcpu.el1.mdscr = vcpu.debug.settle();
    }

    /// Does `work` for a trapped debug access (`Action::Debug`); returns
    /// whether the vcpu is debug loaded now.
    #[cold]
    #[inline(never)]
    pub fn apply(work: CpuWork, host: &mut HostDebug, vcpu: &mut Vcpu, loaded: bool) -> bool {
        match work {
            // Already loaded: only TDA came back (an MDCR_EL2 write
            // elsewhere); lift it again, the access runs again.
            CpuWork::Load if loaded => crate::traps::allow_guest_debug(),
            CpuWork::Load => switch_to_guest(host, &vcpu.debug),
            CpuWork::MdscrWritten => crate::arch::sysregs::write_mdscr(vcpu.el1.mdscr),
            CpuWork::LockChanged => return relock(host, vcpu, loaded),
        }
        loaded || work == CpuWork::Load
    }

    /// The guest's OS lock (or double lock) changed whether debug is
    /// blocked (emulated write, PC already past it). Takes the live
    /// MDSCR_EL1 if the vcpu is loaded, gives the CPU the effective one,
    /// and unloads (blocked: everything trapped and emulated again) or
    /// loads (open and armed). Returns whether the vcpu is loaded.
    #[cold]
    #[inline(never)]
    pub fn relock(host: &mut HostDebug, vcpu: &mut Vcpu, loaded: bool) -> bool {
        if loaded {
            vcpu.debug.mdscr = crate::arch::sysregs::read_mdscr();
        }
        vcpu.el1.mdscr = vcpu.debug.settle();
        crate::arch::sysregs::write_mdscr(vcpu.el1.mdscr);
        if loaded && vcpu.debug.blocked() {
            save_points(&mut vcpu.debug.points, host.features);
            load_points(&host.points, host.features);
            crate::traps::trap_guest_debug();
            false
        } else if !loaded && vcpu.debug.armed {
            switch_to_guest(host, &vcpu.debug);
            true
        } else {
            loaded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: DebugFeatures = DebugFeatures { brps: 6, wrps: 4, double_lock: true };

    fn open() -> VcpuDebug {
        let mut d = VcpuDebug::new();
        assert_eq!(access(&mut d, F, sysreg::OSLAR_EL1, Some(0)), Access::LockChanged);
        d
    }

    #[test]
    fn features_come_from_dfr0() {
        // QEMU's max CPU: BRPs 5, WRPs 3, DoubleLock 0.
        let f = DebugFeatures::from_dfr0(0x0000_0000_1030_5009 & !(0xf << 36));
        assert_eq!(f, DebugFeatures { brps: 6, wrps: 4, double_lock: true });
        assert!(!DebugFeatures::from_dfr0(0xf << 36).double_lock);
    }

    #[test]
    fn the_os_lock_is_locked_at_reset_and_reported() {
        let mut d = VcpuDebug::new();
        assert!(d.blocked());
        assert_eq!(access(&mut d, F, sysreg::OSLSR_EL1, None), Access::Read(0b1010));
        assert_eq!(access(&mut d, F, sysreg::OSLAR_EL1, Some(0)), Access::LockChanged);
        assert_eq!(access(&mut d, F, sysreg::OSLSR_EL1, None), Access::Read(0b1000));
        assert_eq!(access(&mut d, F, sysreg::OSLAR_EL1, Some(0)), Access::Written, "no change");
        assert_eq!(access(&mut d, F, sysreg::OSLAR_EL1, None), Access::Undef, "write-only");
    }

    #[test]
    fn open_lock_loads_lazily_locked_lock_emulates() {
        let mut d = open();
        let bvr2 = SysRegEnc::new(2, 0, 0, 2, 4);
        assert_eq!(access(&mut d, F, bvr2, Some(0x1000)), Access::Load);
        assert_eq!(access(&mut d, F, sysreg::MDSCR_EL1, None), Access::Load);
        assert_eq!(d.points, Points::default(), "a load changes nothing here");
        assert_eq!(access(&mut d, F, sysreg::OSLAR_EL1, Some(1)), Access::LockChanged);
        assert_eq!(access(&mut d, F, bvr2, Some(0x1000)), Access::Written);
        assert_eq!(access(&mut d, F, bvr2, None), Access::Read(0x1000));
        assert_eq!(d.points.bvr[2], 0x1000);
    }

    #[test]
    fn comparators_beyond_the_cpu_undef() {
        let mut d = open();
        assert_eq!(access(&mut d, F, SysRegEnc::new(2, 0, 0, 6, 5), None), Access::Undef, "DBGBCR6 of 6");
        assert_eq!(access(&mut d, F, SysRegEnc::new(2, 0, 0, 4, 7), None), Access::Undef, "DBGWCR4 of 4");
        assert_eq!(access(&mut d, F, SysRegEnc::new(2, 0, 0, 5, 5), None), Access::Load, "DBGBCR5");
    }

    #[test]
    fn the_lock_takes_the_debug_enables_from_the_cpu_only() {
        let mut d = VcpuDebug::new();
        let all = mdscr::MDE | mdscr::KDE | mdscr::SS | mdscr::TDCC;
        assert_eq!(access(&mut d, F, sysreg::MDSCR_EL1, Some(all | 1 << 14)), Access::MdscrWritten);
        assert_eq!(access(&mut d, F, sysreg::MDSCR_EL1, None), Access::Read(all), "HDE is not the guest's");
        assert_eq!(d.settle(), mdscr::TDCC, "locked: no MDE, KDE, SS in the CPU");
        assert!(!d.armed);
        d.oslk = false;
        assert_eq!(d.settle(), all);
        assert!(d.armed);
        d.mdscr = mdscr::SS;
        d.settle();
        assert!(!d.armed, "single step needs no comparator");
    }

    #[test]
    fn the_double_lock_blocks_unless_a_powerdown_is_requested() {
        let mut d = open();
        assert_eq!(access(&mut d, F, sysreg::OSDLR_EL1, Some(1)), Access::LockChanged);
        assert!(d.blocked());
        assert_eq!(access(&mut d, F, sysreg::OSDLR_EL1, None), Access::Read(1));
        assert_eq!(access(&mut d, F, sysreg::DBGPRCR_EL1, Some(1)), Access::LockChanged);
        assert!(!d.blocked(), "CORENPDRQ: DoubleLockStatus() is FALSE");
        // Without FEAT_DoubleLock, OSDLR_EL1 is RAZ/WI.
        let mut d = open();
        let nf = DebugFeatures { double_lock: false, ..F };
        assert_eq!(access(&mut d, nf, sysreg::OSDLR_EL1, Some(1)), Access::Written);
        assert_eq!(access(&mut d, nf, sysreg::OSDLR_EL1, None), Access::Read(0));
        assert!(!d.blocked());
    }

    #[test]
    fn other_debug_space_reads_as_zero() {
        let mut d = open();
        assert_eq!(access(&mut d, F, sysreg::MDRAR_EL1, None), Access::Read(0));
        // A trace register (op0 2, op1 1): RAZ/WI, never a load (the trap
        // that brought it here is not TDA and would come back forever).
        let trc = SysRegEnc::new(2, 1, 0, 0, 0);
        assert_eq!(access(&mut d, F, trc, None), Access::Read(0));
        assert_eq!(access(&mut d, F, trc, Some(3)), Access::Written);
    }
}
