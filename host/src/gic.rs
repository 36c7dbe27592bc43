//! The host's GIC, version 3 or 2 (`gic_v2.rs`), behind one small
//! interface ([`Gic`]): the distributor (and on GICv3 this CPU's
//! redistributor) brought up just enough to receive private peripheral
//! interrupts (the PMU overflow, the host's timer, the virtual timer of the
//! guest that ran, the GIC's maintenance interrupt), and the CPU interface:
//! ICC_* system registers on GICv3, the memory-mapped GICC frame on GICv2.
//!
//! Both CPU interfaces run with EOImode = 1: ending an interrupt is two
//! steps, the priority drop (`eoi`) and the deactivation (`deactivate`), so
//! the host can leave the virtual timer's physical interrupt active for the
//! guest to deactivate through its list register.

use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

/// GICD_CTLR and its bits (single security state).
const GICD_CTLR: usize = 0x0000;
const GICD_CTLR_ENABLE_GRP1: u32 = 1 << 1;
const GICD_CTLR_ARE: u32 = 1 << 4;
const GICD_CTLR_RWP: u32 = 1 << 31;
/// GICR_WAKER and its bits.
const GICR_WAKER: usize = 0x0014;
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// The SGI/PPI frame follows the redistributor's RD frame.
const GICR_SGI_FRAME: usize = 0x1_0000;
const GICR_IGROUPR0: usize = 0x0080;
const GICR_ISENABLER0: usize = 0x0100;
const GICR_IPRIORITYR: usize = 0x0400;
const GICR_ISACTIVER0: usize = 0x0300;
const GICR_ICACTIVER0: usize = 0x0380;
/// ICC_CTLR_EL1.EOImode: EOIR drops the priority only, DIR deactivates.
const ICC_CTLR_EOIMODE: u64 = 1 << 1;
/// Priority given to the host's interrupts (lower is more urgent).
pub(crate) const HOST_IRQ_PRIORITY: u8 = 0x80;
/// ICC_PMR_EL1: let every priority through.
const PMR_ALLOW_ALL: u64 = 0xff;
/// INTIDs 1020..1023 are special (spurious).
pub const SPURIOUS_FIRST: u32 = 1020;
/// Polls before giving up on a register that should settle.
pub(crate) const SETTLE_POLLS: usize = 1_000_000;

/// The host's GIC: which version, and where its per-CPU private-interrupt
/// registers are.
pub enum Gic {
    /// GICv3: this CPU's redistributor (its RD frame).
    V3 { redist: usize },
    /// GICv2: the distributor (whose banked registers hold this CPU's
    /// private interrupts) and the CPU interface.
    V2(crate::gic_v2::GicV2),
}

/// The GICv2 CPU interface (GICC) frame, or 0 when the CPU interface is
/// GICv3's system registers: `ack`, `eoi` and `deactivate` run from the
/// interrupt handler without taking the GIC's lock.
static GICC_BASE: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn read32(addr: usize) -> u32 {
    // SAFETY: `addr` is a GIC register in a frame the host mapped as device
    // memory (Gic::new's contract).
    unsafe { (addr as *const u32).read_volatile() }
}

pub(crate) fn write32(addr: usize, v: u32) {
    // SAFETY: as in `read32`.
    unsafe { (addr as *mut u32).write_volatile(v) }
}

pub(crate) fn wait_clear(addr: usize, bit: u32) -> bool {
    (0..SETTLE_POLLS).any(|_| read32(addr) & bit == 0)
}

impl Gic {
    /// Brings up the distributor, this CPU's redistributor and CPU interface.
    ///
    /// # Safety
    /// `dist` and `redist` must be the GICv3 distributor and this CPU's
    /// redistributor, mapped as device memory; nothing else may drive them.
    pub unsafe fn new_v3(dist: usize, redist: usize) -> Result<Self, &'static str> {
        let g = Self::V3 { redist };
        write32(dist + GICD_CTLR, GICD_CTLR_ARE);
        if !wait_clear(dist + GICD_CTLR, GICD_CTLR_RWP) {
            return Err("GICD_CTLR.RWP stuck");
        }
        write32(dist + GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP1);
        let waker = read32(redist + GICR_WAKER);
        write32(redist + GICR_WAKER, waker & !GICR_WAKER_PROCESSOR_SLEEP);
        if !wait_clear(redist + GICR_WAKER, GICR_WAKER_CHILDREN_ASLEEP) {
            return Err("redistributor does not wake up");
        }
        // SAFETY: the hypervisor set ICC_SRE_EL2.Enable, so EL1 may use the
        // system-register interface; each write is followed by an isb.
        unsafe {
            let sre: u64;
            asm!("mrs {}, icc_sre_el1", out(reg) sre, options(nomem, nostack));
            asm!("msr icc_sre_el1, {}", "isb", in(reg) sre | 1, options(nostack));
            asm!("msr icc_pmr_el1, {}", in(reg) PMR_ALLOW_ALL, options(nostack));
            asm!("msr icc_bpr1_el1, xzr", options(nostack));
            let ctlr: u64;
            asm!("mrs {}, icc_ctlr_el1", out(reg) ctlr, options(nomem, nostack));
            asm!("msr icc_ctlr_el1, {}", in(reg) ctlr | ICC_CTLR_EOIMODE, options(nostack));
            asm!("msr icc_igrpen1_el1, {}", "isb", in(reg) 1u64, options(nostack));
        }
        Ok(g)
    }

    /// Brings up a GICv2: distributor and CPU interface (`gic_v2.rs`).
    ///
    /// # Safety
    /// `dist` and `cpu` must be the GICv2 distributor and CPU interface
    /// frames (the CPU interface at least 8 KiB: GICC_DIR is at 0x1000),
    /// mapped as device memory; nothing else may drive them.
    pub unsafe fn new_v2(dist: usize, cpu: usize) -> Result<Self, &'static str> {
        // SAFETY: the caller's contract, passed on.
        let g = unsafe { crate::gic_v2::GicV2::new(dist, cpu) }?;
        GICC_BASE.store(cpu, Ordering::Release);
        Ok(Self::V2(g))
    }

    /// Enables private interrupt `intid` (16..32) as group 1.
    pub fn enable_ppi(&self, intid: u32) {
        let redist = match self {
            Self::V2(g) => return g.enable_ppi(intid),
            Self::V3 { redist } => *redist,
        };
        let sgi = redist + GICR_SGI_FRAME;
        let bit = 1u32 << intid;
        write32(sgi + GICR_IGROUPR0, read32(sgi + GICR_IGROUPR0) | bit);
        // SAFETY: one byte of the priority array in the mapped SGI frame.
        unsafe { ((sgi + GICR_IPRIORITYR + intid as usize) as *mut u8).write_volatile(HOST_IRQ_PRIORITY) };
        write32(sgi + GICR_ISENABLER0, bit);
    }

    /// Disables private interrupt `intid` (16..32).
    pub fn disable_ppi(&self, intid: u32) {
        const GICR_ICENABLER0: usize = 0x0180;
        match self {
            Self::V2(g) => g.disable_ppi(intid),
            Self::V3 { redist } => write32(redist + GICR_SGI_FRAME + GICR_ICENABLER0, 1 << intid),
        }
    }

    /// Acknowledges the highest-priority pending interrupt.
    pub fn ack() -> u32 {
        let gicc = GICC_BASE.load(Ordering::Relaxed);
        if gicc != 0 {
            return crate::gic_v2::GicV2::ack(gicc);
        }
        let v: u64;
        // SAFETY: reading ICC_IAR1_EL1 acknowledges an interrupt; the caller
        // ends it with `eoi`.
        unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) v, options(nostack)) };
        v as u32 & 0xff_ffff
    }

    /// Drops the running priority of interrupt `intid` (EOImode = 1: it
    /// stays active until `deactivate`).
    pub fn eoi(intid: u32) {
        let gicc = GICC_BASE.load(Ordering::Relaxed);
        if gicc != 0 {
            return crate::gic_v2::GicV2::eoi(gicc, intid);
        }
        // SAFETY: the priority drop of the interrupt `ack` returned.
        unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) intid as u64, options(nostack)) };
    }

    /// Deactivates interrupt `intid` (after its `eoi`).
    pub fn deactivate(intid: u32) {
        let gicc = GICC_BASE.load(Ordering::Relaxed);
        if gicc != 0 {
            return crate::gic_v2::GicV2::deactivate(gicc, intid);
        }
        // SAFETY: deactivates an interrupt the host acknowledged; the isb
        // makes it take effect before anything that depends on it.
        unsafe { asm!("msr icc_dir_el1, {}", "isb", in(reg) intid as u64, options(nostack)) };
    }

    /// Sets or clears the active state of private interrupt `intid` (16..32)
    /// through the redistributor (GICv2: the distributor's banked
    /// registers): the virtual timer's physical interrupt follows the vcpu
    /// that is loaded.
    pub fn set_ppi_active(&self, intid: u32, active: bool) {
        let redist = match self {
            Self::V2(g) => return g.set_ppi_active(intid, active),
            Self::V3 { redist } => *redist,
        };
        let sgi = redist + GICR_SGI_FRAME;
        let reg = if active { GICR_ISACTIVER0 } else { GICR_ICACTIVER0 };
        write32(sgi + reg, 1 << intid);
    }
}
