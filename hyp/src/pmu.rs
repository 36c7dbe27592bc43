//! The guests' PMUv3: the CPU's own counters, switched lazily.
//!
//! **What a guest gets.** ID_AA64DFR0_EL1.PMUVer as the CPU's, capped at
//! PMUv3p5 (`idregs.rs`), and every event counter the CPU has (PMCR_EL0.N =
//! MDCR_EL2.HPMN = the CPU's N) plus the cycle counter. The host reserves
//! no event counter: its profiler uses the cycle counter only
//! (`host/src/pmu.rs`), which HPMN cannot partition, so the cycle counter
//! is time-shared (saved and restored) like everything else.
//!
//! **Lazy.** A vcpu starts with MDCR_EL2.TPM/TPMCR set: its first access to
//! a PMU register traps ([`classify`] says [`PmuAccess::FirstUse`]), the
//! world switch parks the host's PMU registers and loads the vcpu's
//! ([`GuestPmu`]), clears TPM and lets the instruction run again. From then
//! on the vcpu is a PMU user: its state is loaded at every entry and saved
//! at every exit (its counters must go on counting across runs). A vcpu
//! that never touched the PMU costs the switch one byte test at entry and
//! one at exit.
//!
//! **Only the guest's own execution counts.** Its counters are enabled
//! only between its entry and its exit, and while it runs MDCR_EL2.HPMD
//! (FEAT_PMUv3p1) prohibits event counting at EL2 and, with PMCR_EL0.DP
//! forced to 1 in the CPU, cycle counting too (MDCR_EL2.HCCD as well where
//! FEAT_PMUv3p5 has it), whatever filters (PMEVTYPER/PMCCFILTR.NSH) the
//! guest writes. That is why PMCR_EL0 stays trapped (TPMCR) after the first
//! use: EL2 keeps the guest's view ([`GuestPmu::pmcr`], with N and DP as
//! the guest wrote them) and writes the CPU with DP forced. A CPU with
//! PMUv3 but without PMUv3p1 (no HPMD) gives guests no PMU.
//!
//! **Overflow interrupts.** The guest's overflow raises the CPU's PMU
//! interrupt (PPI 23 on QEMU virt); with HCR_EL2.IMO it ends the run as an
//! IRQ exit. At every exit of a PMU user EL2 writes the guest's interrupt
//! line (PMCR.E and any PMOVSSET bit with its PMINTENSET bit) into the
//! vcpu's shared page ([`overflow_level`]); the host makes virtual INTID
//! 23 pending while it is high (level semantics), tied to the physical PPI
//! as the virtual timer is.
//!
//! Pure except for the `imp` module (the register moves).

use spevisor_armv8::esr::{Direction, SysRegIss};

/// PMCR_EL0 bits (Arm ARM D23.5).
pub mod pmcr {
    pub const E: u64 = 1 << 0;
    /// Event counter reset (write-only action).
    pub const P: u64 = 1 << 1;
    /// Cycle counter reset (write-only action).
    pub const C: u64 = 1 << 2;
    pub const D: u64 = 1 << 3;
    pub const X: u64 = 1 << 4;
    /// Disable the cycle counter where event counting is prohibited.
    pub const DP: u64 = 1 << 5;
    pub const LC: u64 = 1 << 6;
    /// 64-bit event counters (FEAT_PMUv3p5).
    pub const LP: u64 = 1 << 7;
    pub const N_SHIFT: u64 = 11;
    pub const N_MASK: u64 = 0x1f;
    /// N, IDCODE and IMP: read-only identification the guest sees as the CPU's.
    pub const ID_MASK: u64 = (N_MASK << N_SHIFT) | (0xff << 16) | (0xff << 24);
}

/// MDCR_EL2 bits this module adds for a PMU user.
pub mod mdcr {
    /// Prohibit event counting (and, with PMCR.DP, cycle counting) at EL2
    /// for the counters below HPMN (FEAT_PMUv3p1).
    pub const HPMD: u64 = 1 << 17;
    /// Prohibit cycle counting at EL2 (FEAT_PMUv3p5).
    pub const HCCD: u64 = 1 << 23;
}

/// The cycle counter's bit in PMCNTENSET/PMINTENSET/PMOVSSET.
pub const CYCLE_COUNTER: u64 = 1 << 31;
/// Event counters a PMUv3 can have (PMEVCNTR0..30).
pub const MAX_EVENT_COUNTERS: usize = 31;

/// ID_AA64DFR0_EL1.PMUVer values.
pub mod pmuver {
    /// FEAT_PMUv3p1: the first with MDCR_EL2.HPMD, which guests need.
    pub const V3P1: u64 = 0b0100;
    /// FEAT_PMUv3p5: the most guests are offered (64-bit event counters,
    /// MDCR_EL2.HCCD).
    pub const V3P5: u64 = 0b0110;
    /// IMPLEMENTATION DEFINED PMU (not PMUv3).
    pub const IMP_DEF: u64 = 0b1111;
}

/// The PMU level guests are offered on a CPU whose ID_AA64DFR0_EL1.PMUVer is
/// `hw`: 0 (none) without PMUv3p1 or with an IMPLEMENTATION DEFINED PMU,
/// else `hw` capped at PMUv3p5.
pub const fn offered_pmuver(hw: u64) -> u64 {
    if hw < pmuver::V3P1 || hw == pmuver::IMP_DEF {
        0
    } else if hw > pmuver::V3P5 {
        pmuver::V3P5
    } else {
        hw
    }
}

/// What guests get on this CPU, decided once at boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PmuConfig {
    /// The PMUVer guests see (0: no PMU, accesses UNDEF as before).
    pub pmuver: u64,
    /// Event counters guests get (the CPU's PMCR_EL0.N = MDCR_EL2.HPMN).
    pub counters: usize,
    /// PMCR_EL0's identification fields (N, IDCODE, IMP) as guests read them.
    pub pmcr_id: u64,
    /// MDCR_EL2 for a PMU user: the guest value without TPM, with HPMD
    /// (and HCCD on PMUv3p5).
    pub mdcr_user: u64,
    /// PMCR_EL0 bits a guest may set (LP only on PMUv3p5).
    pub pmcr_writable: u64,
}

impl PmuConfig {
    /// From the CPU's PMUVer, PMCR_EL0 and the guests' MDCR_EL2 (`mdcr_guest`,
    /// with TPM/TPMCR and HPMN = the CPU's N).
    pub fn new(hw_pmuver: u64, hw_pmcr: u64, mdcr_guest: u64) -> Self {
        let pmuver = offered_pmuver(hw_pmuver);
        let counters = (((hw_pmcr >> pmcr::N_SHIFT) & pmcr::N_MASK) as usize).min(MAX_EVENT_COUNTERS);
        let p5 = pmuver >= pmuver::V3P5;
        let mdcr_user = (mdcr_guest & !crate::traps::mdcr::TPM) | mdcr::HPMD | if p5 { mdcr::HCCD } else { 0 };
        let pmcr_writable = pmcr::E | pmcr::D | pmcr::X | pmcr::DP | pmcr::LC | if p5 { pmcr::LP } else { 0 };
        Self { pmuver, counters, pmcr_id: hw_pmcr & pmcr::ID_MASK, mdcr_user, pmcr_writable }
    }

    /// No PMU for guests.
    pub const fn none() -> Self {
        Self { pmuver: 0, counters: 0, pmcr_id: 0, mdcr_user: 0, pmcr_writable: 0 }
    }

    /// Whether guests have a PMU at all.
    pub const fn offered(&self) -> bool {
        self.pmuver != 0
    }

    /// PMCNTENSET/PMINTENSET/PMOVSSET bits of the counters guests own.
    pub const fn counter_mask(&self) -> u64 {
        CYCLE_COUNTER | ((1u64 << self.counters) - 1)
    }
}

/// One side's PMU registers (a vcpu's, or the host's while a PMU user runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmuRegs {
    /// PMCR_EL0 as the CPU holds it (for a guest: with DP forced).
    pub pmcr: u64,
    pub cntenset: u64,
    pub intenset: u64,
    pub ovsset: u64,
    pub selr: u64,
    pub userenr: u64,
    pub ccntr: u64,
    pub ccfiltr: u64,
    pub evcntr: [u64; MAX_EVENT_COUNTERS],
    pub evtyper: [u64; MAX_EVENT_COUNTERS],
}

impl PmuRegs {
    pub const fn new() -> Self {
        Self {
            pmcr: 0,
            cntenset: 0,
            intenset: 0,
            ovsset: 0,
            selr: 0,
            userenr: 0,
            ccntr: 0,
            ccfiltr: 0,
            evcntr: [0; MAX_EVENT_COUNTERS],
            evtyper: [0; MAX_EVENT_COUNTERS],
        }
    }
}

impl Default for PmuRegs {
    fn default() -> Self {
        Self::new()
    }
}

/// A vcpu's PMU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestPmu {
    /// The vcpu has used the PMU: its state is loaded at every entry.
    pub in_use: bool,
    /// PMCR_EL0 as the guest reads it (N/IDCODE/IMP from [`PmuConfig`], DP as
    /// it wrote it; P and C read as 0).
    pub pmcr: u64,
    /// Its registers while it does not run (`regs.pmcr` is the CPU's value).
    pub regs: PmuRegs,
}

impl GuestPmu {
    /// First use: the PMU out of reset (counters stopped, interrupts off),
    /// with the identification fields `cfg` gives.
    pub fn start(&mut self, cfg: &PmuConfig) {
        self.in_use = true;
        // LC is RES1 where AArch32 is absent; reset value UNKNOWN elsewhere.
        self.pmcr = cfg.pmcr_id | pmcr::LC;
        self.regs = PmuRegs { pmcr: cpu_pmcr(self.pmcr), ..PmuRegs::new() };
    }

    /// A guest write of `v` to PMCR_EL0: its view keeps the writable bits;
    /// returns what the CPU gets (DP forced, X never set; P and C passed on
    /// as the reset actions they are).
    pub fn write_pmcr(&mut self, v: u64, cfg: &PmuConfig) -> u64 {
        self.pmcr = (self.pmcr & !cfg.pmcr_writable) | (v & cfg.pmcr_writable);
        self.regs.pmcr = cpu_pmcr(self.pmcr);
        self.regs.pmcr | (v & (pmcr::P | pmcr::C))
    }

    /// After its registers were saved: PMCR_EL0's E, D, LC and LP as the
    /// CPU held them join the guest's view. A CPU that does not honour
    /// MDCR_EL2.TPMCR once TPM is clear (QEMU 7.2) lets the guest write
    /// PMCR_EL0 itself; then the CPU's value is the truth.
    pub fn saved(&mut self) {
        const LIVE: u64 = pmcr::E | pmcr::D | pmcr::LC | pmcr::LP;
        self.pmcr = (self.pmcr & !LIVE) | (self.regs.pmcr & LIVE);
    }

    /// The guest's overflow interrupt line at its exit, from the registers
    /// saved then: enabled (PMCR.E) and some counter overflowed with its
    /// interrupt enabled.
    pub fn overflow_level(&self) -> bool {
        overflow_level(self.regs.pmcr, self.regs.intenset, self.regs.ovsset)
    }
}

/// What the CPU holds for a guest's PMCR_EL0 view `view`: DP forced (no
/// cycle counting at EL2), X clear (no event export).
pub const fn cpu_pmcr(view: u64) -> u64 {
    (view & (pmcr::E | pmcr::D | pmcr::LC | pmcr::LP)) | pmcr::DP
}

/// PMU overflow interrupt request: PMCR.E and (PMOVSSET & PMINTENSET) != 0.
pub const fn overflow_level(pmcr_v: u64, intenset: u64, ovsset: u64) -> bool {
    pmcr_v & pmcr::E != 0 && intenset & ovsset != 0
}

/// A trapped guest access to a PMU register, as EL2 treats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmuAccess {
    /// Not a PMU register.
    NotPmu,
    /// Guests have no PMU on this CPU: UNDEF.
    Undef,
    /// The vcpu's first use: load its PMU, then the instruction runs again.
    FirstUse,
    /// PMCR_EL0 of a PMU user (TPMCR stays set): emulated.
    Pmcr,
}

/// PMCR_EL0: op0 3, op1 3, CRn 9, CRm 12, op2 0.
const PMCR_ENC: (u8, u8, u8, u8, u8) = (3, 3, 9, 12, 0);

/// Whether (op0, op1, CRn, CRm, op2) is a PMUv3 register MDCR_EL2.TPM
/// traps: op1 3, CRn 9, CRm 12..=14 (PMCR .. PMOVSSET); op1 0, CRn 9, CRm 14,
/// op2 1, 2, 6 (PMINTENSET/CLR_EL1, PMMIR_EL1); op1 3, CRn 14, CRm 8..=15
/// (PMEVCNTRn, PMEVTYPERn, PMCCFILTR). The SPE (CRm 9, 10) and TRBE (CRm
/// 11) registers in CRn 9 are not.
pub fn is_pmu_register(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> bool {
    op0 == 3
        && match (op1, crn) {
            (3, 9) => (12..=14).contains(&crm),
            (0, 9) => crm == 14 && matches!(op2, 1 | 2 | 6),
            (3, 14) => (8..=15).contains(&crm),
            _ => false,
        }
}

/// How a trapped system register access `iss` concerns the PMU.
pub fn classify(iss: SysRegIss, cfg: &PmuConfig, pmu: &GuestPmu) -> PmuAccess {
    // Every PMU register has CRn 9 or 14: one test for every other trapped
    // register (the sysreg_trap bench path).
    if !matches!(iss.crn(), 9 | 14) {
        return PmuAccess::NotPmu;
    }
    let enc = (iss.op0(), iss.op1(), iss.crn(), iss.crm(), iss.op2());
    if !is_pmu_register(enc.0, enc.1, enc.2, enc.3, enc.4) {
        return PmuAccess::NotPmu;
    }
    if !cfg.offered() {
        return PmuAccess::Undef;
    }
    match (pmu.in_use, enc == PMCR_ENC) {
        (false, _) => PmuAccess::FirstUse,
        (true, true) => PmuAccess::Pmcr,
        // TPM is clear for a PMU user: a trap here is a register the
        // switch does not carry (trapped some other way): UNDEF, never a
        // reload that would trap again forever.
        (true, false) => PmuAccess::Undef,
    }
}

/// Whether `iss` reads (else writes).
pub fn is_read(iss: SysRegIss) -> bool {
    iss.direction() == Direction::Read
}

#[cfg(target_arch = "aarch64")]
pub use imp::*;

#[cfg(target_arch = "aarch64")]
mod imp {
    use super::{PmuConfig, PmuRegs};
    use core::arch::asm;

    /// `mrs` of a PMU register by name.
    macro_rules! mrs {
        ($name:literal) => {{
            let v: u64;
            // SAFETY: reading a PMU register at EL2 has no side effect (none
            // of those read here is a clear-on-read register).
            unsafe { asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack, preserves_flags)) };
            v
        }};
    }

    /// `msr` of a PMU register by name. No barrier: the callers end with an
    /// `isb` where the order matters (PMSELR before PMXEV*, and the enables).
    macro_rules! msr {
        ($name:literal, $v:expr) => {{
            let v: u64 = $v;
            // SAFETY: the PMU registers belong to whoever is being loaded;
            // EL2's own execution does not depend on them.
            unsafe { asm!(concat!("msr ", $name, ", {}"), in(reg) v, options(nomem, nostack, preserves_flags)) };
        }};
    }

    fn isb() {
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }

    /// All counters' bits (PMCNTENCLR, PMINTENCLR, PMOVSCLR): bits of
    /// counters that do not exist are RAZ/WI.
    const ALL_COUNTERS: u64 = 0xffff_ffff;

    /// Selects event counter `i` for PMXEVCNTR/PMXEVTYPER.
    fn select(i: usize) {
        msr!("pmselr_el0", i as u64);
        isb();
    }

    /// Reads the registers of the `n` event counters and the rest into `r`
    /// (not PMCNTENSET: the caller stops the counters and records it).
    fn save(r: &mut PmuRegs, n: usize) {
        r.pmcr = mrs!("pmcr_el0");
        r.intenset = mrs!("pmintenset_el1");
        r.ovsset = mrs!("pmovsset_el0");
        r.selr = mrs!("pmselr_el0");
        r.userenr = mrs!("pmuserenr_el0");
        r.ccntr = mrs!("pmccntr_el0");
        r.ccfiltr = mrs!("pmccfiltr_el0");
        for i in 0..n.min(super::MAX_EVENT_COUNTERS) {
            select(i);
            r.evcntr[i] = mrs!("pmxevcntr_el0");
            r.evtyper[i] = mrs!("pmxevtyper_el0");
        }
    }

    /// Writes `r` into the CPU with the counters stopped (not PMCNTENSET).
    fn load(r: &PmuRegs, n: usize) {
        for i in 0..n.min(super::MAX_EVENT_COUNTERS) {
            select(i);
            msr!("pmxevtyper_el0", r.evtyper[i]);
            msr!("pmxevcntr_el0", r.evcntr[i]);
        }
        msr!("pmselr_el0", r.selr);
        msr!("pmuserenr_el0", r.userenr);
        msr!("pmccfiltr_el0", r.ccfiltr);
        msr!("pmccntr_el0", r.ccntr);
        msr!("pmintenclr_el1", ALL_COUNTERS);
        msr!("pmintenset_el1", r.intenset);
        msr!("pmovsclr_el0", ALL_COUNTERS);
        msr!("pmovsset_el0", r.ovsset);
        msr!("pmcr_el0", r.pmcr);
    }

    /// Entry of a PMU user, after `traps::activate_guest` (the host's
    /// counters are already stopped, `pause_host_counters`): MDCR_EL2 for a
    /// PMU user (HPMD before any guest counter runs), the host's registers
    /// parked in `host`, the guest's loaded, its counters started last.
    pub fn switch_to_guest(cfg: &PmuConfig, host: &mut PmuRegs, guest: &PmuRegs) {
        // SAFETY: MDCR_EL2 only changes traps and counting rules for EL1/EL0
        // and the PMU; the isb puts HPMD in force before counters start.
        unsafe { asm!("msr mdcr_el2, {}", "isb", in(reg) cfg.mdcr_user, options(nomem, nostack, preserves_flags)) };
        save(host, cfg.counters);
        load(guest, cfg.counters);
        msr!("pmcntenset_el0", guest.cntenset & cfg.counter_mask());
        isb();
    }

    /// Exit of a PMU user, before `traps::activate_host` (MDCR_EL2 still
    /// prohibits EL2 counting): the guest's counters stopped first, its
    /// registers saved into `guest`, the host's put back (its counters are
    /// restarted by `resume_host_counters`).
    pub fn switch_to_host(cfg: &PmuConfig, host: &PmuRegs, guest: &mut PmuRegs) {
        guest.cntenset = mrs!("pmcntenset_el0") & cfg.counter_mask();
        msr!("pmcntenclr_el0", ALL_COUNTERS);
        isb();
        save(guest, cfg.counters);
        guest.intenset &= cfg.counter_mask();
        guest.ovsset &= cfg.counter_mask();
        load(host, cfg.counters);
        isb();
    }

    /// A guest's PMCR_EL0 write, emulated (`GuestPmu::write_pmcr` says the
    /// value: DP forced, P/C resets passed on).
    pub fn write_pmcr(v: u64) {
        msr!("pmcr_el0", v);
        isb();
    }

    /// PMCR_EL0 of this CPU (boot: N, IDCODE, IMP).
    pub fn read_pmcr() -> u64 {
        mrs!("pmcr_el0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spevisor_armv8::sysreg::SysRegEnc;

    fn cfg(pmuver: u64, n: u64) -> PmuConfig {
        PmuConfig::new(pmuver, (n << pmcr::N_SHIFT) | (0x41 << 24), crate::traps::mdcr::TPM | 6)
    }

    #[test]
    fn offered_levels_need_hpmd_and_are_capped() {
        assert_eq!(offered_pmuver(0), 0);
        assert_eq!(offered_pmuver(0b0001), 0, "PMUv3 without HPMD");
        assert_eq!(offered_pmuver(0b0011), 0);
        assert_eq!(offered_pmuver(0b0100), 0b0100);
        assert_eq!(offered_pmuver(0b0101), 0b0101);
        assert_eq!(offered_pmuver(0b0110), 0b0110);
        assert_eq!(offered_pmuver(0b1000), 0b0110, "capped at PMUv3p5");
        assert_eq!(offered_pmuver(0b1111), 0, "IMPLEMENTATION DEFINED");
    }

    #[test]
    fn a_pmu_user_runs_without_tpm_with_el2_counting_prohibited() {
        let c = cfg(0b0101, 6);
        assert_eq!(c.mdcr_user & crate::traps::mdcr::TPM, 0);
        assert_ne!(c.mdcr_user & mdcr::HPMD, 0);
        assert_eq!(c.mdcr_user & mdcr::HCCD, 0, "RES0 before PMUv3p5");
        assert_eq!(c.mdcr_user & crate::traps::mdcr::HPMN_MASK, 6);
        assert_ne!(cfg(0b0110, 6).mdcr_user & mdcr::HCCD, 0);
        assert_eq!(c.counter_mask(), CYCLE_COUNTER | 0x3f);
    }

    #[test]
    fn pmcr_keeps_the_guests_view_and_forces_dp_in_the_cpu() {
        let c = cfg(0b0101, 6);
        let mut g = GuestPmu::default();
        g.start(&c);
        assert_eq!((g.pmcr >> pmcr::N_SHIFT) & pmcr::N_MASK, 6, "N = the guest's counters");
        assert_ne!(g.regs.pmcr & pmcr::DP, 0);
        // E | P | C | X, DP clear, and an attempt at N.
        let hw = g.write_pmcr(pmcr::E | pmcr::P | pmcr::C | pmcr::X | (31 << pmcr::N_SHIFT), &c);
        assert_eq!(g.pmcr & (pmcr::E | pmcr::X | pmcr::DP), pmcr::E | pmcr::X, "the guest reads what it wrote");
        assert_eq!((g.pmcr >> pmcr::N_SHIFT) & pmcr::N_MASK, 6, "N is read-only");
        assert_eq!(g.pmcr & (pmcr::P | pmcr::C), 0, "P and C read as 0");
        assert_eq!(hw & (pmcr::E | pmcr::DP | pmcr::P | pmcr::C | pmcr::X), pmcr::E | pmcr::DP | pmcr::P | pmcr::C);
        assert_eq!(g.regs.pmcr & (pmcr::P | pmcr::C), 0, "the actions are not saved");
        assert_eq!(g.write_pmcr(pmcr::LP, &c) & pmcr::LP, 0, "LP only with PMUv3p5");
    }

    #[test]
    fn the_cpus_pmcr_joins_the_view_after_a_save() {
        let c = cfg(0b0101, 6);
        let mut g = GuestPmu::default();
        g.start(&c);
        // The guest wrote PMCR_EL0 itself (a CPU that ignores TPMCR): E on.
        g.regs.pmcr |= pmcr::E;
        g.regs.intenset = 1;
        g.regs.ovsset = 1;
        assert!(g.overflow_level(), "the line follows the CPU's PMCR.E");
        g.saved();
        assert_ne!(g.pmcr & pmcr::E, 0);
        assert_eq!((g.pmcr >> pmcr::N_SHIFT) & pmcr::N_MASK, 6, "identification kept");
    }

    #[test]
    fn the_overflow_line_needs_enable_interrupt_and_overflow() {
        assert!(overflow_level(pmcr::E, CYCLE_COUNTER, CYCLE_COUNTER));
        assert!(!overflow_level(0, CYCLE_COUNTER, CYCLE_COUNTER), "PMCR.E clear");
        assert!(!overflow_level(pmcr::E, 1, CYCLE_COUNTER), "another counter's interrupt");
        assert!(!overflow_level(pmcr::E, CYCLE_COUNTER, 0));
    }

    #[test]
    fn pmu_registers_are_told_from_spe_trbe_and_the_rest() {
        let iss = |op0, op1, crn, crm, op2| SysRegIss::new(SysRegEnc::new(op0, op1, crn, crm, op2), 1, Direction::Read);
        let c = cfg(0b0101, 6);
        let mut g = GuestPmu::default();
        for (op1, crn, crm, op2) in [
            (3, 9, 12, 0),  // PMCR_EL0
            (3, 9, 12, 6),  // PMCEID0_EL0
            (3, 9, 13, 0),  // PMCCNTR_EL0
            (3, 9, 14, 0),  // PMUSERENR_EL0
            (3, 9, 14, 3),  // PMOVSSET_EL0
            (0, 9, 14, 1),  // PMINTENSET_EL1
            (0, 9, 14, 6),  // PMMIR_EL1
            (3, 14, 8, 0),  // PMEVCNTR0_EL0
            (3, 14, 15, 7), // PMCCFILTR_EL0
        ] {
            assert_eq!(classify(iss(3, op1, crn, crm, op2), &c, &g), PmuAccess::FirstUse, "{op1} {crn} {crm} {op2}");
            assert_eq!(classify(iss(3, op1, crn, crm, op2), &PmuConfig::none(), &g), PmuAccess::Undef);
        }
        for (op1, crn, crm, op2) in [
            (0, 9, 10, 7), // PMBIDR_EL1 (SPE)
            (0, 9, 9, 0),  // PMSCR_EL1
            (0, 9, 11, 0), // TRBLIMITR_EL1
            (0, 9, 14, 0), // unallocated
            (0, 1, 0, 1),  // ACTLR_EL1
            (3, 14, 0, 1), // CNTPCT_EL0 (op1 3, CRn 14, CRm 0)
            (3, 14, 2, 1), // CNTP_CTL_EL0
        ] {
            assert_eq!(classify(iss(3, op1, crn, crm, op2), &c, &g), PmuAccess::NotPmu, "{op1} {crn} {crm} {op2}");
        }
        g.start(&c);
        assert_eq!(classify(iss(3, 3, 9, 12, 0), &c, &g), PmuAccess::Pmcr, "PMCR stays trapped");
        assert_eq!(classify(iss(3, 3, 9, 12, 1), &c, &g), PmuAccess::Undef, "no reload loop");
    }
}
