//! The host's GICv2 (GIC-400 and its kind): the distributor's banked
//! registers for this CPU's private interrupts and the memory-mapped CPU
//! interface (GICC). Used through [`crate::gic::Gic`].
//!
//! The layouts read here hold for both views a GICv2 can give the host: a
//! GIC without the Security Extensions (QEMU's `virt` unless `secure=on`:
//! GICD_CTLR/GICC_CTLR bit 0 enables group 0, bit 9 is EOImodeS) and the
//! Non-secure view of one with them (bit 0 enables group 1, which firmware
//! put every interrupt in; bit 9 is EOImodeNS). The host leaves the groups
//! as it finds them, so either way its interrupts are signalled as IRQs and
//! acknowledged through GICC_IAR.

use crate::gic::{read32, write32, HOST_IRQ_PRIORITY};

/// GICD_CTLR: bit 0 enables forwarding (of group 0 without the Security
/// Extensions, of group 1 in the Non-secure view).
const GICD_CTLR: usize = 0x000;
const GICD_CTLR_ENABLE: u32 = 1 << 0;
/// Banked per CPU for INTIDs 0..32.
const GICD_ISENABLER0: usize = 0x100;
const GICD_ICENABLER0: usize = 0x180;
const GICD_ISACTIVER0: usize = 0x300;
const GICD_ICACTIVER0: usize = 0x380;
const GICD_IPRIORITYR: usize = 0x400;

/// GICC_CTLR: bit 0 enables signalling; bit 9 is EOImode (EOIR drops the
/// priority only, DIR deactivates) in both views (see the module comment).
const GICC_CTLR: usize = 0x000;
const GICC_CTLR_ENABLE: u32 = 1 << 0;
const GICC_CTLR_EOIMODE: u32 = 1 << 9;
const GICC_PMR: usize = 0x004;
const GICC_BPR: usize = 0x008;
const GICC_IAR: usize = 0x00c;
const GICC_EOIR: usize = 0x010;
const GICC_DIR: usize = 0x1000;
/// GICC_PMR: let every priority through (the GIC keeps the bits it
/// implements).
const PMR_ALLOW_ALL: u32 = 0xff;
/// GICC_IAR.InterruptID (bits 9:0); bits 12:10 are the SGI source CPU.
const IAR_INTID_MASK: u32 = 0x3ff;

/// A GICv2 brought up for this CPU.
pub struct GicV2 {
    dist: usize,
}

impl GicV2 {
    /// Enables the distributor and this CPU's interface with EOImode = 1.
    ///
    /// # Safety
    /// As `crate::gic::Gic::new_v2`.
    pub unsafe fn new(dist: usize, cpu: usize) -> Result<Self, &'static str> {
        write32(dist + GICD_CTLR, read32(dist + GICD_CTLR) | GICD_CTLR_ENABLE);
        write32(cpu + GICC_PMR, PMR_ALLOW_ALL);
        write32(cpu + GICC_BPR, 0);
        write32(cpu + GICC_CTLR, GICC_CTLR_ENABLE | GICC_CTLR_EOIMODE);
        if read32(cpu + GICC_CTLR) & GICC_CTLR_EOIMODE == 0 {
            return Err("GICC_CTLR.EOImode does not stick");
        }
        Ok(Self { dist })
    }

    /// Enables private interrupt `intid` (16..32) at the host's priority.
    pub fn enable_ppi(&self, intid: u32) {
        // SAFETY: one byte of the banked priority array in the mapped
        // distributor (byte accesses are allowed there).
        unsafe { ((self.dist + GICD_IPRIORITYR + intid as usize) as *mut u8).write_volatile(HOST_IRQ_PRIORITY) };
        write32(self.dist + GICD_ISENABLER0, 1 << intid);
    }

    /// Disables private interrupt `intid` (16..32).
    pub fn disable_ppi(&self, intid: u32) {
        write32(self.dist + GICD_ICENABLER0, 1 << intid);
    }

    /// Sets or clears private interrupt `intid`'s active state.
    pub fn set_ppi_active(&self, intid: u32, active: bool) {
        let reg = if active { GICD_ISACTIVER0 } else { GICD_ICACTIVER0 };
        write32(self.dist + reg, 1 << intid);
    }

    /// Acknowledges the highest-priority pending interrupt (its INTID;
    /// 1020..1023 when none).
    pub fn ack(gicc: usize) -> u32 {
        read32(gicc + GICC_IAR) & IAR_INTID_MASK
    }

    /// The priority drop of `intid` (a private or shared interrupt: the
    /// source-CPU bits of an SGI's IAR value are never needed here, the
    /// host takes no SGIs).
    pub fn eoi(gicc: usize, intid: u32) {
        write32(gicc + GICC_EOIR, intid);
    }

    /// Deactivates `intid` after its `eoi`; the barrier makes the write
    /// reach the GIC before anything that depends on the line being
    /// inactive.
    pub fn deactivate(gicc: usize, intid: u32) {
        write32(gicc + GICC_DIR, intid);
        // SAFETY: a barrier only; `dsb sy` orders the device write above
        // before later accesses.
        unsafe { core::arch::asm!("dsb sy", "isb", options(nostack, preserves_flags)) };
    }
}
