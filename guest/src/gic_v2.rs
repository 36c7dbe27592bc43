//! The test guest's GICv2 path, taken when its device tree names a GICv2
//! (a guest on a GICv2 host, `host/src/guest_dtb.rs`): the distributor's
//! banked registers stand in for the GICv3 redistributor's SGI frame (same
//! offsets), the memory-mapped CPU interface (GICC, the hardware's GICV
//! under EL2) for the ICC_* system registers, GICD_SGIR for ICC_SGI1R_EL1.
//! Interrupts stay in group 0 (GICD_IGROUPR's reset value), which GICC_CTLR
//! signals as IRQs (FIQEn = 0); EOImode 0 (EOIR drops and deactivates).
//!
//! [`detect`] reads the tree once, from the top of RAM, the first time an
//! interrupt test asks which GIC it has.

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};
use spevisor_abi::guest::machine::{GICC_IPA, GICD_IPA};

/// GICD_CTLR.EnableGrp0 (GICv2 without the Security Extensions).
const GICD_CTLR_ENABLE_GRP0: u32 = 1 << 0;
const GICD_CTLR: u64 = 0x000;
const GICD_IPRIORITYR: u64 = 0x400;
const GICD_SGIR: u64 = 0xf00;
const SGIR_TARGETS_SHIFT: u64 = 16;
const SGIR_TARGETS_MASK: u64 = 0xff;
/// GICC registers.
const GICC_CTLR: u64 = 0x000;
const GICC_CTLR_ENABLE_GRP0: u32 = 1 << 0;
const GICC_PMR: u64 = 0x004;
const GICC_BPR: u64 = 0x008;
const GICC_IAR: u64 = 0x00c;
const GICC_EOIR: u64 = 0x010;
const GICC_RPR: u64 = 0x014;
/// GICC_IAR.InterruptID; bits [12:10] are an SGI's source CPU, which the
/// EOIR write must give back.
const IAR_INTID_MASK: u64 = 0x3ff;
/// GICC_PMR: every priority through.
const PMR_ALLOW_ALL: u32 = 0xff;
/// Priority of every SGI/PPI after `cpu_init` (as the GICv3 path's).
const PRIVATE_PRIORITIES: u32 = 0x8080_8080;
/// Words of IPRIORITYR for INTIDs 0..31.
const PRIVATE_PRIORITY_WORDS: u64 = 8;

/// 0: not read yet; 3 or 2: the GIC version the device tree names.
static VERSION: AtomicU64 = AtomicU64::new(0);
/// This guest's RAM size (from its entry registers), where the tree's
/// place follows from.
static RAM_SIZE: AtomicU64 = AtomicU64::new(0);

/// Records the RAM size at entry (the tree is at its top).
pub fn set_ram_size(bytes: u64) {
    RAM_SIZE.store(bytes, SeqCst);
}

/// Whether the guest's device tree names a GICv2 (read once).
pub fn detect() -> bool {
    let v = match VERSION.load(SeqCst) {
        0 => {
            let ipa = spevisor_abi::guest::machine::dtb_ipa(RAM_SIZE.load(SeqCst));
            let v = match crate::dtb::gic_version(ipa) {
                Some(spevisor_dtb::GicVersion::V2) => 2,
                _ => 3,
            };
            VERSION.store(v, SeqCst);
            v
        }
        v => v,
    };
    v == 2
}

fn read(addr: u64) -> u32 {
    crate::irqs::mmio_read(addr)
}

fn write(addr: u64, v: u32) {
    // SAFETY: a GIC register of the guest machine, mapped Device-nGnRE.
    unsafe { (addr as *mut u32).write_volatile(v) }
}

/// The distributor forwards group 0.
pub fn dist_init() {
    write(GICD_IPA + GICD_CTLR, read(GICD_IPA + GICD_CTLR) | GICD_CTLR_ENABLE_GRP0);
}

/// This vcpu's SGIs/PPIs at priority 0x80, its CPU interface on.
pub fn cpu_init() {
    for word in 0..PRIVATE_PRIORITY_WORDS {
        write(GICD_IPA + GICD_IPRIORITYR + 4 * word, PRIVATE_PRIORITIES);
    }
    write(GICC_IPA + GICC_PMR, PMR_ALLOW_ALL);
    write(GICC_IPA + GICC_CTLR, GICC_CTLR_ENABLE_GRP0);
}

/// The banked SGI/PPI registers (ISENABLER0, ISPENDR0, ISACTIVER0, ...,
/// IPRIORITYR at the GICv3 SGI frame's offsets).
pub fn private_regs() -> u64 {
    GICD_IPA
}

/// SGI `intid` to the vcpus in `targets` (GICD_SGIR, target-list filter 0).
pub fn send_sgi(intid: u64, targets: u64) {
    write(GICD_IPA + GICD_SGIR, ((targets & SGIR_TARGETS_MASK) << SGIR_TARGETS_SHIFT | intid) as u32);
}

/// Acknowledges: (INTID, the raw IAR value `eoi` needs).
pub fn ack() -> (u64, u64) {
    let iar = u64::from(read(GICC_IPA + GICC_IAR));
    (iar & IAR_INTID_MASK, iar)
}

/// Ends the interrupt `ack` returned `raw` for.
pub fn eoi(raw: u64) {
    write(GICC_IPA + GICC_EOIR, raw as u32);
}

/// The running priority (GICC_RPR).
pub fn running_priority() -> u64 {
    u64::from(read(GICC_IPA + GICC_RPR)) & 0xff
}

/// The finest binary point the interface takes (it keeps its minimum).
pub fn finest_binary_point() {
    write(GICC_IPA + GICC_BPR, 0);
}
