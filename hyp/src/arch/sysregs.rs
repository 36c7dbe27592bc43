//! Moving EL1 system registers, stage-2 and GIC/timer state in and out of the CPU.

use crate::vcpu::{El1Context, Vcpu};
use crate::vm::VmMem;
use aarch64_cpu::registers::*;
use core::arch::asm;

/// Reads a system register by name with `mrs` (for those aarch64-cpu lacks).
macro_rules! mrs {
    ($name:expr) => {{
        let v: u64;
        // SAFETY: reading an EL1/EL0 system register at EL2 has no side effects.
        unsafe { asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

/// Writes a system register by name with `msr`. No barrier: the callers put
/// one where the ordering matters (before eret/at the end of a switch step).
macro_rules! msr {
    ($name:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the value belongs to the context being loaded; EL1 registers
        // do not affect EL2's own execution.
        unsafe { asm!(concat!("msr ", $name, ", {}"), in(reg) v, options(nostack, preserves_flags)) };
    }};
}

core::arch::global_asm!(include_str!("el1ctx.S"));

extern "C" {
    fn __el1_save(c: *mut El1Context);
    fn __el1_restore(c: *const El1Context);
}

// el1ctx.S stores the fields in declaration order, two at a time.
const _: () = {
    assert!(core::mem::size_of::<El1Context>() == 26 * 8);
    assert!(core::mem::offset_of!(El1Context, sctlr) == 0);
    assert!(core::mem::offset_of!(El1Context, vbar) == 48);
    assert!(core::mem::offset_of!(El1Context, tpidrro_el0) == 80);
    assert!(core::mem::offset_of!(El1Context, cpacr) == 128);
    assert!(core::mem::offset_of!(El1Context, sp_el0) == 160);
    assert!(core::mem::offset_of!(El1Context, cntv_cval) == 200);
};

/// Saves the EL1/EL0 registers of whoever ran at EL1 (host or guest).
#[inline(always)]
pub fn save_el1(c: &mut El1Context) {
    // SAFETY: `__el1_save` writes exactly one El1Context through x0 and
    // clobbers x1/x2 only (declared by the C ABI); reading EL1 registers at
    // EL2 has no side effects.
    unsafe { __el1_save(c) }
}

/// Loads a saved EL1/EL0 context.
#[inline(always)]
pub fn restore_el1(c: &El1Context) {
    // SAFETY: `__el1_restore` reads one El1Context and writes EL1/EL0
    // registers, which EL2 itself does not use; x1/x2 clobbered (C ABI).
    unsafe { __el1_restore(c) }
}

/// The registers an exception injection reads, refreshed from the live guest.
pub fn refresh_injection_regs(c: &mut El1Context) {
    c.vbar = VBAR_EL1.get();
    c.sctlr = SCTLR_EL1.get();
}

/// The registers an exception injection writes.
pub fn write_exception_regs(c: &El1Context) {
    ESR_EL1.set(c.esr);
    ELR_EL1.set(c.elr);
    SPSR_EL1.set(c.spsr);
}

/// MDSCR_EL1 after an emulated guest write (`vcpu::emulate_sysreg`).
pub fn write_mdscr(v: u64) {
    MDSCR_EL1.set(v);
}

/// The live MDSCR_EL1 (a debug-loaded guest writes it directly).
pub fn read_mdscr() -> u64 {
    MDSCR_EL1.get()
}

/// Reads the ID group 3 register (op0 3, op1 0, CRn 0, `crm`, `op2`),
/// CRm 1..=7: the space HCR_EL2.TID3 traps. Unallocated encodings in it are
/// RAZ (Arm ARM D19.1.2); outside it, 0.
pub fn read_id_group3(crm: u8, op2: u8) -> u64 {
    macro_rules! id_space {
        ($($crm:literal),*) => {
            match (crm, op2) {
                $(
                    ($crm, 0) => mrs!(concat!("S3_0_C0_C", $crm, "_0")),
                    ($crm, 1) => mrs!(concat!("S3_0_C0_C", $crm, "_1")),
                    ($crm, 2) => mrs!(concat!("S3_0_C0_C", $crm, "_2")),
                    ($crm, 3) => mrs!(concat!("S3_0_C0_C", $crm, "_3")),
                    ($crm, 4) => mrs!(concat!("S3_0_C0_C", $crm, "_4")),
                    ($crm, 5) => mrs!(concat!("S3_0_C0_C", $crm, "_5")),
                    ($crm, 6) => mrs!(concat!("S3_0_C0_C", $crm, "_6")),
                    ($crm, 7) => mrs!(concat!("S3_0_C0_C", $crm, "_7")),
                )*
                _ => 0,
            }
        };
    }
    id_space!(1, 2, 3, 4, 5, 6, 7)
}

/// VMPIDR_EL2 for vcpu `idx`: what the guest reads as MPIDR_EL1 (Aff0 = idx,
/// bit 31 RES1).
pub fn set_vmpidr(idx: u64) {
    const MPIDR_RES1: u64 = 1 << 31;
    VMPIDR_EL2.set(MPIDR_RES1 | idx);
}

/// VMPIDR_EL2 as is (the host's value on the way back).
#[inline(always)]
pub fn set_vmpidr_raw(v: u64) {
    VMPIDR_EL2.set(v);
}

/// VTCR_EL2 and VTTBR_EL2 (with the VM's VMID) for `vm`.
pub fn load_stage2(vm: &VmMem) {
    VTCR_EL2.set(vm.vtcr);
    VTTBR_EL2.set(vm.vttbr);
}

/// VTTBR_EL2 = 0 (VMID 0, the host's). The host runs with HCR_EL2.VM = 0, so
/// this only keeps a stale VMID out of later TLB maintenance.
pub fn unload_stage2() {
    VTTBR_EL2.set(0);
}

/// List registers this CPU has: ICH_VTR_EL2.ListRegs (bits [4:0]) + 1.
/// Only called with a GICv3 system-register interface.
pub fn list_regs() -> usize {
    const LIST_REGS_MASK: u64 = 0x1f;
    let vtr: u64 = mrs!("ich_vtr_el2");
    ((vtr & LIST_REGS_MASK) as usize + 1).min(crate::vcpu::MAX_LRS)
}

/// ICH_HCR_EL2.En: the virtual CPU interface is on while a guest runs.
const ICH_HCR_EN: u64 = 1;

/// Active-priority registers per group this CPU has (ICH_AP0R<n>_EL2 and
/// ICH_AP1R<n>_EL2): 1, 2 or 4 for 5, 6 or 7 bits of preemption
/// (ICH_VTR_EL2.PREbits + 1); the others UNDEF.
fn active_priority_regs() -> usize {
    const PREBITS_SHIFT: u64 = 26;
    const PREBITS_MASK: u64 = 0x7;
    /// 32 group priorities per register: 5 preemption bits fill one.
    const BITS_PER_REG: u64 = 5;
    const MAX_SHIFT: u64 = 2;
    let vtr: u64 = mrs!("ich_vtr_el2");
    let bits = ((vtr >> PREBITS_SHIFT) & PREBITS_MASK) + 1;
    1 << bits.saturating_sub(BITS_PER_REG).min(MAX_SHIFT)
}

/// Loads a vcpu's active priorities: which priorities its nested
/// handlers hold, what its running priority (ICC_RPR_EL1) derives from.
fn write_aprs(ap0r: &[u64; 4], ap1r: &[u64; 4]) {
    let n = active_priority_regs();
    if n == 4 {
        msr!("ich_ap0r3_el2", ap0r[3]);
        msr!("ich_ap0r2_el2", ap0r[2]);
        msr!("ich_ap1r3_el2", ap1r[3]);
        msr!("ich_ap1r2_el2", ap1r[2]);
    }
    if n >= 2 {
        msr!("ich_ap0r1_el2", ap0r[1]);
        msr!("ich_ap1r1_el2", ap1r[1]);
    }
    msr!("ich_ap0r0_el2", ap0r[0]);
    msr!("ich_ap1r0_el2", ap1r[0]);
}

/// Saves a vcpu's active priorities ([`write_aprs`]).
fn read_aprs(ap0r: &mut [u64; 4], ap1r: &mut [u64; 4]) {
    let n = active_priority_regs();
    if n == 4 {
        ap0r[3] = mrs!("ich_ap0r3_el2");
        ap0r[2] = mrs!("ich_ap0r2_el2");
        ap1r[3] = mrs!("ich_ap1r3_el2");
        ap1r[2] = mrs!("ich_ap1r2_el2");
    }
    if n >= 2 {
        ap0r[1] = mrs!("ich_ap0r1_el2");
        ap1r[1] = mrs!("ich_ap1r1_el2");
    }
    ap0r[0] = mrs!("ich_ap0r0_el2");
    ap1r[0] = mrs!("ich_ap1r0_el2");
}

fn write_lr(i: usize, v: u64) {
    match i {
        0 => msr!("ich_lr0_el2", v),
        1 => msr!("ich_lr1_el2", v),
        2 => msr!("ich_lr2_el2", v),
        3 => msr!("ich_lr3_el2", v),
        4 => msr!("ich_lr4_el2", v),
        5 => msr!("ich_lr5_el2", v),
        6 => msr!("ich_lr6_el2", v),
        7 => msr!("ich_lr7_el2", v),
        8 => msr!("ich_lr8_el2", v),
        9 => msr!("ich_lr9_el2", v),
        10 => msr!("ich_lr10_el2", v),
        11 => msr!("ich_lr11_el2", v),
        12 => msr!("ich_lr12_el2", v),
        13 => msr!("ich_lr13_el2", v),
        14 => msr!("ich_lr14_el2", v),
        _ => msr!("ich_lr15_el2", v),
    }
}

fn read_lr(i: usize) -> u64 {
    match i {
        0 => mrs!("ich_lr0_el2"),
        1 => mrs!("ich_lr1_el2"),
        2 => mrs!("ich_lr2_el2"),
        3 => mrs!("ich_lr3_el2"),
        4 => mrs!("ich_lr4_el2"),
        5 => mrs!("ich_lr5_el2"),
        6 => mrs!("ich_lr6_el2"),
        7 => mrs!("ich_lr7_el2"),
        8 => mrs!("ich_lr8_el2"),
        9 => mrs!("ich_lr9_el2"),
        10 => mrs!("ich_lr10_el2"),
        11 => mrs!("ich_lr11_el2"),
        12 => mrs!("ich_lr12_el2"),
        13 => mrs!("ich_lr13_el2"),
        14 => mrs!("ich_lr14_el2"),
        _ => mrs!("ich_lr15_el2"),
    }
}

/// The guest's GIC virtual interface (VMCR, the list registers in use) and
/// virtual timer offset. Only the LRs the vcpu uses are touched, as KVM does.
#[inline(always)]
pub fn restore_gic_timer(vcpu: &Vcpu, gic_v3: bool) {
    // Guests see the host's counter: CNTVOFF_EL2 = 0 (the timer's CTL/CVAL
    // travel with the EL1 context).
    CNTVOFF_EL2.set(0);
    if gic_v3 {
        let g = &vcpu.vgic;
        msr!("ich_vmcr_el2", g.vmcr);
        if g.used_lrs == 0 {
            // No list register in use (the common case), so no overflow
            // either: the host asks for UIE only with all of them full.
            msr!("ich_hcr_el2", ICH_HCR_EN);
            return;
        }
        for (i, lr) in g.lrs[..g.used_lrs].iter().enumerate() {
            write_lr(i, *lr);
        }
        // The active priorities go with the list registers: a guest with
        // none in use has nothing active (the host loads every active
        // interrupt it can, and leaves some out only with all of them
        // full), so it can neither take nor end an interrupt, and a stale
        // value in the CPU is never seen.
        write_aprs(&g.ap0r, &g.ap1r);
        // UIE (from the host, `VgicState::load`) asks for an exit when the
        // list registers run low: more is pending than they hold.
        let flags = (g.hcr_flags & spevisor_abi::vgic::hcr::HW_MASK) as u64;
        msr!("ich_hcr_el2", ICH_HCR_EN | flags);
    }
}

/// Writes the guest's live CNTV_CTL_EL0/CNTV_CVAL_EL0 into the page it
/// shares with the host (WFI and IRQ exits, while the guest's timer is
/// still the CPU's): the host's wake-up deadline, and whether the timer
/// is firing.
#[cold]
pub fn share_guest_timer(vcpu: &Vcpu) {
    if vcpu.shared == 0 {
        return;
    }
    let page = crate::vcpu::shared_page(vcpu.shared);
    page.cntv_ctl = mrs!("cntv_ctl_el0");
    page.cntv_cval = mrs!("cntv_cval_el0");
}

/// Writes a PMU user's overflow interrupt line into its shared page at
/// every exit (the host keeps virtual INTID 23 pending while it is high).
#[cold]
pub fn share_guest_pmu(vcpu: &Vcpu) {
    if vcpu.shared == 0 {
        return;
    }
    crate::vcpu::shared_page(vcpu.shared).pmu_level = u32::from(vcpu.pmu.overflow_level());
}

/// Saves the guest's GIC state and turns the virtual interface off for the host.
#[inline(always)]
pub fn save_gic_timer(vcpu: &mut Vcpu, gic_v3: bool) {
    if gic_v3 {
        let g = &mut vcpu.vgic;
        g.vmcr = mrs!("ich_vmcr_el2");
        // EOIcount matters only when the list registers were all in use
        // (the host asks for it when active interrupts did not fit).
        if g.used_lrs != 0 && g.hcr_flags & spevisor_abi::vgic::hcr::REPORT_EOICOUNT != 0 {
            // EOIs of interrupts no list register held (more were active
            // than fit): the host deactivates that many in its model.
            let hcr: u64 = mrs!("ich_hcr_el2");
            use spevisor_abi::vgic::hcr::{EOICOUNT_MASK, EOICOUNT_SHIFT};
            g.eoicount = ((hcr >> EOICOUNT_SHIFT) & EOICOUNT_MASK) as u32;
        }
        if g.used_lrs != 0 {
            read_aprs(&mut g.ap0r, &mut g.ap1r);
        }
        for i in 0..g.used_lrs {
            g.lrs[i] = read_lr(i);
            write_lr(i, 0);
        }
        msr!("ich_hcr_el2", 0);
    }
}

/// Stops the host's PMU counters while a guest runs (the host profiles
/// itself, not its guests); returns PMCNTENSET_EL0 to restore.
pub fn pause_host_counters() -> u64 {
    let on = mrs!("pmcntenset_el0");
    if on != 0 {
        msr!("pmcntenclr_el0", on);
    }
    on
}

/// Restarts the counters `pause_host_counters` stopped.
pub fn resume_host_counters(on: u64) {
    if on != 0 {
        msr!("pmcntenset_el0", on);
    }
}
