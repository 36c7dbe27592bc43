//! The GICv2 virtual interface control frame (GICH, Arm IHI 0048B 5.3): the
//! memory-mapped twin of GICv3's ICH_* registers. EL2 maps its first page
//! (device memory, identity) at boot on a GICv2 host and switches, per
//! vcpu, GICH_HCR, GICH_VMCR, GICH_APR and the list registers in use,
//! exactly as `sysregs::restore_gic_timer`/`save_gic_timer` do for GICv3.
//!
//! List registers travel in the GICv3 layout in `VgicState` and the shared
//! page (the host's vGIC core is the same for both versions);
//! `spevisor_abi::vgic::lr_v2` sanitises and converts them here.

use crate::vcpu::{Vcpu, MAX_LRS};
use core::sync::atomic::{AtomicUsize, Ordering};
use spevisor_abi::vgic::lr_v2;

/// GICH register offsets.
const GICH_HCR: usize = 0x000;
const GICH_VTR: usize = 0x004;
const GICH_VMCR: usize = 0x008;
const GICH_APR: usize = 0x0f0;
const GICH_LR0: usize = 0x100;
/// Bytes per list register.
const LR_STRIDE: usize = 4;
/// GICH_HCR.En: the virtual CPU interface is on while a guest runs.
const GICH_HCR_EN: u32 = 1;
/// GICH_VTR.ListRegs (bits [5:0]): list registers minus one.
const VTR_LIST_REGS_MASK: u32 = 0x3f;
/// The frame's bytes EL2 uses (HCR..the last of 64 list registers).
pub const GICH_MAPPED: u64 = 0x1000;

fn read(gich: usize, off: usize) -> u32 {
    // SAFETY: `gich` is the GICH frame EL2 identity-mapped as device memory
    // at boot (`boot::map_gich`), `off` one of its registers in the first
    // page; a 32-bit aligned access, which the frame takes.
    unsafe { ((gich + off) as *const u32).read_volatile() }
}

fn write(gich: usize, off: usize, v: u32) {
    // SAFETY: as in `read`.
    unsafe { ((gich + off) as *mut u32).write_volatile(v) }
}

/// The mapped GICH frame (0: none, or GICv3), set once at boot
/// ([`set_frame`]) before the host runs; read in the world switch from
/// here rather than from `HostContext`, so the GICv3 path carries no extra
/// live value (`hvc_host` stays at its instruction count).
static GICH: AtomicUsize = AtomicUsize::new(0);

/// Records the frame `boot` mapped.
pub fn set_frame(gich: usize) {
    GICH.store(gich, Ordering::Relaxed);
}

/// GICH_VTR (the board report decodes it).
pub fn vtr(gich: usize) -> u32 {
    read(gich, GICH_VTR)
}

/// List registers guests get: GICH_VTR.ListRegs + 1, at most `MAX_LRS`.
pub fn list_regs(gich: usize) -> usize {
    ((vtr(gich) & VTR_LIST_REGS_MASK) as usize + 1).min(MAX_LRS)
}

/// The virtual interface off with no list register valid (boot: no
/// maintenance interrupt for the host).
pub fn reset(gich: usize) {
    write(gich, GICH_HCR, 0);
    for i in 0..list_regs(gich) {
        write(gich, GICH_LR0 + i * LR_STRIDE, 0);
    }
}

/// Loads the vcpu's VMCR and, when it uses any, its list registers and
/// active priorities; turns the virtual interface on.
#[cold]
#[inline(never)]
pub fn restore(vcpu: &Vcpu) {
    let gich = GICH.load(Ordering::Relaxed);
    if gich == 0 {
        return;
    }
    let g = &vcpu.vgic;
    write(gich, GICH_VMCR, g.vmcr as u32);
    let n = g.used_lrs.min(MAX_LRS);
    if n == 0 {
        write(gich, GICH_HCR, GICH_HCR_EN);
        return;
    }
    for (i, lr) in g.lrs[..n].iter().enumerate() {
        // Sanitised again on the way in: what reaches the frame never
        // holds a field the host may not set.
        write(gich, GICH_LR0 + i * LR_STRIDE, lr_v2::from_v3(*lr));
    }
    // GICv2 has one active-priorities register (the GICv3 path's AP0R0).
    write(gich, GICH_APR, g.ap0r[0] as u32);
    let flags = g.hcr_flags & spevisor_abi::vgic::hcr::HW_MASK;
    write(gich, GICH_HCR, GICH_HCR_EN | flags);
}

/// Saves the vcpu's VMCR, list registers in use (cleared behind it, so the
/// next vcpu or the host never sees them) and active priorities; EOIcount
/// when the host asked; turns the virtual interface off.
#[cold]
#[inline(never)]
pub fn save(vcpu: &mut Vcpu) {
    let gich = GICH.load(Ordering::Relaxed);
    if gich == 0 {
        return;
    }
    let g = &mut vcpu.vgic;
    g.vmcr = u64::from(read(gich, GICH_VMCR));
    let n = g.used_lrs.min(MAX_LRS);
    if n != 0 {
        if g.hcr_flags & spevisor_abi::vgic::hcr::REPORT_EOICOUNT != 0 {
            use spevisor_abi::vgic::hcr::{EOICOUNT_MASK, EOICOUNT_SHIFT};
            g.eoicount = ((u64::from(read(gich, GICH_HCR)) >> EOICOUNT_SHIFT) & EOICOUNT_MASK) as u32;
        }
        g.ap0r[0] = u64::from(read(gich, GICH_APR));
        write(gich, GICH_APR, 0);
        for i in 0..n {
            g.lrs[i] = lr_v2::to_v3(read(gich, GICH_LR0 + i * LR_STRIDE));
            write(gich, GICH_LR0 + i * LR_STRIDE, 0);
        }
    }
    write(gich, GICH_HCR, 0);
}
