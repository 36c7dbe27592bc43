//! The thin layer that executes EL2-only instructions. Everything else in the
//! hypervisor is plain Rust over values.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::*;
use core::arch::{asm, global_asm};

pub mod cpu_probe;
pub mod gich;
pub mod report_regs;
pub mod semihosting;
pub mod sysregs;

use crate::vcpu::{FpRegs, GuestRegs, PauthKeys, Syndrome};

global_asm!(include_str!("vectors.S"));
global_asm!(include_str!("fp.S"));

/// A host (or unexpected) exception's saved registers, as `vectors.S` lays
/// them out on the EL2 stack.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

/// Where an unexpected exception came from (`vectors.S` codes / 4).
pub const ORIGINS: [&str; 4] = ["EL2 with SP_EL0", "EL2 with SP_EL2", "a lower EL (AArch64)", "a lower EL (AArch32)"];
/// The exception kinds (`vectors.S` codes % 4).
pub const KINDS: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];

/// Exit kinds returned by [`guest_enter`].
pub mod exit_kind {
    pub const SYNC: u64 = 0;
    pub const IRQ: u64 = 1;
    pub const FIQ: u64 = 2;
    pub const SERROR: u64 = 3;
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 272);

extern "C" {
    static el2_vectors: u8;
    fn __guest_enter(regs: *mut GuestRegs) -> u64;
    fn __fp_save(regs: *mut FpRegs);
    fn __fp_restore(regs: *const FpRegs);
    fn __pauth_save(keys: *mut PauthKeys);
    fn __pauth_restore(keys: *const PauthKeys);
}

/// Saves the five pointer-authentication key pairs.
pub fn pauth_save(keys: &mut PauthKeys) {
    // SAFETY: writes one PauthKeys; the key registers exist (the guest
    // trapped on pointer authentication, so the CPU implements it).
    unsafe { __pauth_save(keys) }
}

/// Loads the five pointer-authentication key pairs.
pub fn pauth_restore(keys: &PauthKeys) {
    // SAFETY: as for `pauth_save`; keys are EL1 state EL2 does not use.
    unsafe { __pauth_restore(keys) }
}

/// ID_AA64ISAR1_EL1 says address or generic pointer authentication exists.
pub fn has_pauth() -> bool {
    // APA [7:4], API [11:8], GPA [27:24], GPI [31:28]; ISAR2.APA3/GPA3 also.
    let isar1 = ID_AA64ISAR1_EL1.get();
    let isar2: u64;
    // SAFETY: reading an ID register has no side effects (ID_AA64ISAR2_EL1
    // reads as zero where unimplemented, FEAT_IDST aside: encoded by number).
    unsafe { asm!("mrs {}, S3_0_C0_C6_2", out(reg) isar2, options(nomem, nostack, preserves_flags)) };
    const FIELDS1: [u64; 4] = [4, 8, 24, 28];
    const FIELDS2: [u64; 2] = [8, 12];
    FIELDS1.iter().any(|s| (isar1 >> s) & 0xf != 0) || FIELDS2.iter().any(|s| (isar2 >> s) & 0xf != 0)
}

/// ID_AA64MMFR1_EL1.LO: LORegions exist (HCR_EL2.TLOR is RES0 otherwise).
pub fn has_lor() -> bool {
    const LO_SHIFT: u64 = 16;
    has_field(ID_AA64MMFR1_EL1.get(), LO_SHIFT)
}

/// `dsb nsh`: this CPU's outstanding memory accesses and table walks complete.
#[inline(always)]
pub fn dsb_nsh() {
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::NSH);
}

/// Where `eret` will resume the guest.
#[inline(always)]
pub fn set_guest_pc(pc: u64, pstate: u64) {
    ELR_EL2.set(pc);
    SPSR_EL2.set(pstate);
}

/// The guest's PC and PSTATE at its last exit.
#[inline(always)]
pub fn guest_pc() -> (u64, u64) {
    (ELR_EL2.get(), SPSR_EL2.get())
}

/// The syndrome registers of the last guest exception.
#[inline(always)]
pub fn syndrome() -> Syndrome {
    Syndrome { esr: ESR_EL2.get(), far: FAR_EL2.get(), hpfar: HPFAR_EL2.get() }
}

/// Saves q0..q31, FPSR, FPCR.
pub fn fp_save(regs: &mut FpRegs) {
    // SAFETY: `__fp_save` writes exactly one FpRegs (16-byte aligned) and
    // touches no other memory. The caller has cleared CPTR_EL2.TFP, which in
    // nVHE traps EL2's own FP accesses as well.
    unsafe { __fp_save(regs) }
}

/// Loads q0..q31, FPSR, FPCR.
pub fn fp_restore(regs: &FpRegs) {
    // SAFETY: as for `fp_save`; reads one FpRegs.
    unsafe { __fp_restore(regs) }
}

/// Enters the guest whose PC/PSTATE are in ELR_EL2/SPSR_EL2 and whose
/// registers are `regs`; returns the [`exit_kind`] when it traps back.
///
/// # Safety
/// The guest's translation regime, traps and vectors must be fully set up:
/// whatever the guest does must come back to EL2 as an exception.
pub unsafe fn guest_enter(regs: &mut GuestRegs) -> u64 {
    // SAFETY: `__guest_enter` saves and restores all callee-saved registers
    // and SP, so to Rust this is an ordinary extern "C" call; the caller
    // guarantees the guest state.
    unsafe { __guest_enter(regs) }
}

/// Points VBAR_EL2 at the hypervisor's vectors and marks "no guest running".
pub fn install_vectors() {
    let base = core::ptr::addr_of!(el2_vectors) as u64;
    TPIDR_EL2.set(0);
    VBAR_EL2.set(base);
    barrier::isb(barrier::SY);
}

/// Turns on the EL2 MMU and caches with `ttbr0` as the root table.
///
/// # Safety
/// The tables must identity-map the running code, its stack and its data with
/// the attributes the code needs (the identity map keeps the PC valid).
pub unsafe fn enable_mmu(ttbr0: u64, tcr: u64, mair: u64) {
    MAIR_EL2.set(mair);
    TCR_EL2.set(tcr);
    TTBR0_EL2.set(ttbr0);
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
    // SAFETY: invalidating every EL2 TLB entry has no effect on memory; with
    // the MMU off, stale entries from firmware must not be used once it is on.
    unsafe { asm!("tlbi alle2", options(nostack, preserves_flags)) };
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
    SCTLR_EL2.modify(SCTLR_EL2::M::Enable + SCTLR_EL2::C::Cacheable + SCTLR_EL2::I::Cacheable + SCTLR_EL2::SA::Enable);
    // Write-implies-XN: a writable page can never be executed at EL2.
    SCTLR_EL2.set(SCTLR_EL2.get() | SCTLR_WXN);
    barrier::isb(barrier::SY);
}

/// SCTLR_EL2.WXN (bit 19).
const SCTLR_WXN: u64 = 1 << 19;

/// Makes new (previously invalid) EL2 stage-1 entries visible to the walker.
pub fn publish_new_mappings() {
    barrier::dsb(barrier::ISHST);
    barrier::isb(barrier::SY);
}

/// Physical address bits of this CPU (ID_AA64MMFR0_EL1.PARange).
pub fn pa_range() -> u64 {
    ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange)
}

/// CurrentEL as a number.
pub fn current_el() -> u64 {
    CurrentEL.read(CurrentEL::EL)
}

/// ID_AA64DFR0_EL1 fields: (PMUVer, PMSVer).
pub fn debug_features() -> (u64, u64) {
    let dfr0 = ID_AA64DFR0_EL1.get();
    const PMUVER_SHIFT: u64 = 8;
    const PMSVER_SHIFT: u64 = 32;
    ((dfr0 >> PMUVER_SHIFT) & 0xf, (dfr0 >> PMSVER_SHIFT) & 0xf)
}

/// ID_AA64PFR0_EL1.GIC: the GIC system-register interface is implemented.
pub fn has_gic_sysregs() -> bool {
    const GIC_SHIFT: u64 = 24;
    has_field(ID_AA64PFR0_EL1.get(), GIC_SHIFT)
}

/// ID_AA64MMFR1_EL1.VH: FEAT_VHE is implemented.
pub fn has_vhe() -> bool {
    const VH_SHIFT: u64 = 8;
    has_field(ID_AA64MMFR1_EL1.get(), VH_SHIFT)
}

/// Turns FEAT_VHE's EL2 virtual timer off (CNTHV_CTL_EL2 = 0; UNKNOWN out of
/// reset, and unused in nVHE). Nothing to do without FEAT_VHE.
pub fn disable_el2_virtual_timer() {
    if has_vhe() {
        // SAFETY: CNTHV_CTL_EL2 (S3_4_C14_C3_1) exists with FEAT_VHE and is
        // writable at EL2; clearing ENABLE only stops a timer EL2 never uses.
        unsafe { core::arch::asm!("msr S3_4_C14_C3_1, xzr", options(nomem, nostack, preserves_flags)) };
    }
}

/// Whether the 4-bit ID register field at `shift` says "implemented" (non-zero).
fn has_field(id: u64, shift: u64) -> bool {
    (id >> shift) & 0xf != 0
}

/// ID_AA64DFR0_EL1.TraceVer: System register access to trace.
pub fn has_sysreg_trace() -> bool {
    const TRACEVER_SHIFT: u64 = 4;
    has_field(ID_AA64DFR0_EL1.get(), TRACEVER_SHIFT)
}

/// ID_AA64DFR0_EL1.TraceFilt: FEAT_TRF (TRFCR_EL1).
pub fn has_trace_filter() -> bool {
    const TRACEFILT_SHIFT: u64 = 40;
    has_field(ID_AA64DFR0_EL1.get(), TRACEFILT_SHIFT)
}

/// ID_AA64PFR0_EL1.AMU: the activity monitors.
pub fn has_amu() -> bool {
    const AMU_SHIFT: u64 = 44;
    has_field(ID_AA64PFR0_EL1.get(), AMU_SHIFT)
}

/// ID_AA64MMFR1_EL1.HCX and ID_AA64MMFR0_EL1.FGT.
const MMFR1_HCX_SHIFT: u64 = 40;
const MMFR0_FGT_SHIFT: u64 = 56;

/// EL2 controls that are UNKNOWN out of reset and widen what EL1 may do:
/// HCRX_EL2 = 0 (FEAT_HCX: TCR2_EL1, SCTLR2_EL1, MOPS, LS64 and the rest it
/// enables stay off for the host and guests alike; guests' ID registers say
/// these are absent) and the fine-grained trap registers = 0 (FEAT_FGT: no
/// fine-grained trap set; their "n" bits, 0, trap the features they guard,
/// which nobody here uses). Nothing to do where the features are absent.
pub fn init_el2_controls() {
    if has_field(ID_AA64MMFR1_EL1.get(), MMFR1_HCX_SHIFT) {
        // SAFETY: HCRX_EL2 (S3_4_C1_C2_2) exists with FEAT_HCX and is
        // writable at EL2; 0 only disables EL1 features.
        unsafe { core::arch::asm!("msr S3_4_C1_C2_2, xzr", options(nomem, nostack, preserves_flags)) };
    }
    if has_field(ID_AA64MMFR0_EL1.get(), MMFR0_FGT_SHIFT) {
        // SAFETY: HFGRTR/HFGWTR/HFGITR_EL2 and HDFGRTR/HDFGWTR_EL2 exist with
        // FEAT_FGT and are writable at EL2; they only add traps to EL2.
        unsafe {
            core::arch::asm!(
                "msr S3_4_C1_C1_4, xzr",
                "msr S3_4_C1_C1_5, xzr",
                "msr S3_4_C1_C1_6, xzr",
                "msr S3_4_C3_C1_4, xzr",
                "msr S3_4_C3_C1_5, xzr",
                options(nomem, nostack, preserves_flags)
            )
        };
    }
}

/// Registers the host is entered with.
pub struct HostEntry {
    pub pc: u64,
    pub sp: u64,
    pub args: [u64; 4],
}

/// Drops to the host at EL1h with interrupts masked; never returns (the host
/// comes back only through the vectors).
///
/// # Safety
/// EL1 must be configured to run the host (HCR_EL2, CPTR/MDCR/CNTHCTL).
pub unsafe fn eret_to_host(entry: &HostEntry) -> ! {
    /// SPSR_EL2: EL1h with D, A, I, F masked.
    const SPSR_EL1H_MASKED: u64 = 0x3c5;
    SP_EL1.set(entry.sp);
    ELR_EL2.set(entry.pc);
    SPSR_EL2.set(SPSR_EL1H_MASKED);
    // SAFETY: x0..x3 carry the boot arguments; eret switches to the state set
    // above. Nothing after eret runs.
    unsafe {
        asm!(
            "eret",
            in("x0") entry.args[0],
            in("x1") entry.args[1],
            in("x2") entry.args[2],
            in("x3") entry.args[3],
            options(noreturn)
        )
    }
}

/// PSCI SYSTEM_OFF through the firmware conduit (SMC from EL2).
pub fn psci_system_off() -> ! {
    const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
    // SAFETY: SYSTEM_OFF does not return on a conforming firmware; the loop
    // after it covers one that does. x0..x3 may be clobbered per SMCCC.
    unsafe { asm!("smc #0", inout("x0") PSCI_SYSTEM_OFF => _, out("x1") _, out("x2") _, out("x3") _) };
    park()
}

/// Stops this CPU for good.
pub fn park() -> ! {
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// Executes an undefined instruction (test hook).
pub fn undefined_instruction() {
    // SAFETY: `udf` raises a synchronous exception at EL2 and is meant to:
    // the crash path takes over and never returns here.
    unsafe { asm!("udf #0xdead", options(nostack)) };
}

/// Invalidates every stage-1 and stage-2 TLB entry tagged with `vmid`, on all
/// CPUs of the inner shareable domain, after the VM's tables were emptied.
pub fn flush_vmid(vmid: u8) {
    const VMID_SHIFT: u64 = 48;
    // TLBI VMALLS12E1IS acts on the VMID in VTTBR_EL2: point it there.
    VTTBR_EL2.set((vmid as u64) << VMID_SHIFT);
    barrier::isb(barrier::SY);
    // Table updates visible to walkers before the invalidation.
    barrier::dsb(barrier::ISHST);
    // SAFETY: TLB maintenance only; no memory is accessed.
    unsafe { asm!("tlbi vmalls12e1is", options(nostack, preserves_flags)) };
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
    VTTBR_EL2.set(0);
}

/// VTTBR_EL2 = 0 (VMID 0 is the host's, never given to a VM) and every
/// EL1&0 TLB entry dropped: out of reset VTTBR_EL2 is UNKNOWN, so the host's
/// entries could otherwise carry a VMID a guest gets later.
pub fn reset_stage2_vmid() {
    VTTBR_EL2.set(0);
    barrier::isb(barrier::SY);
    // SAFETY: TLB maintenance only.
    unsafe { asm!("tlbi vmalls12e1", options(nostack, preserves_flags)) };
    barrier::dsb(barrier::NSH);
    barrier::isb(barrier::SY);
}
