//! The GICv2 register front end of the guest's distributor: what a guest on
//! a GICv2 host reads and writes in its GICD frame
//! (`spevisor_abi::guest::machine::GICD_IPA`), over the same interrupt
//! state, list-register flush and fold as the GICv3 front end (`vgic.rs`).
//! Its CPU interface is the hardware's virtual one (GICV, mapped by
//! stage-2 at `GICC_IPA`), fed by those list registers.
//!
//! GICv2 without the Security Extensions (GICD_TYPER.SecurityExtn = 0):
//! GICD_CTLR bit 0 enables group 0, bit 1 group 1. The registers of
//! INTIDs 0..31 (group, enable, pending, active, priority, targets,
//! configuration) are banked per vcpu: the accessing one's. SPIs go to
//! the lowest-numbered vcpu of their GICD_ITARGETSR byte (vcpu 0 for an
//! empty one). SGIs keep one pending bit per target vcpu, not one per
//! source: GICD_SPENDSGIR/CPENDSGIR show a pending SGI as sent by vcpu 0,
//! and the guest reads source CPU 0 from GICC_IAR.

use super::{check, GicAccessError, Vgic, IIDR, NR_INTIDS, NR_PRIVATE, NR_SGIS};

/// GICD_CTLR: group enables.
const CTLR_ENABLES: u32 = super::CTLR_ENABLE_GRP0 | super::CTLR_ENABLE_GRP1;
/// GICD_TYPER: ITLinesNumber (bits [4:0]) and CPUNumber (bits [7:5]).
const TYPER_CPU_SHIFT: u32 = 5;
/// PIDR2 with ArchRev = 2 (GICv2) and the JEP106 bits Arm's GICs report.
const PIDR2_GICV2: u32 = 0x2b;
/// GICD_ITARGETSR: one byte per INTID.
const ITARGETSR: u64 = 0x800;
const ITARGETSR_END: u64 = 0xc00;
/// GICD_SGIR and its fields.
const SGIR: u64 = 0xf00;
const SGIR_FILTER_SHIFT: u32 = 24;
const SGIR_FILTER_MASK: u32 = 0x3;
const SGIR_FILTER_LIST: u32 = 0;
const SGIR_FILTER_OTHERS: u32 = 1;
const SGIR_FILTER_SELF: u32 = 2;
const SGIR_TARGETS_SHIFT: u32 = 16;
const SGIR_TARGETS_MASK: u32 = 0xff;
const SGIR_INTID_MASK: u32 = 0xf;
/// GICD_CPENDSGIRn / GICD_SPENDSGIRn: one byte per SGI (a bit per source).
const CPENDSGIR: u64 = 0xf10;
const SPENDSGIR: u64 = 0xf20;
const PENDSGIR_END: u64 = 0xf30;
/// The source-CPU bit a pending SGI is shown with (see the module comment).
const SGI_SOURCE_SHOWN: u32 = 1;
/// GICD_ITARGETSR bits of an SPI kept in its `route` (Aff2, which the
/// GICv3 front end's routing ignores): the mask as written, read back.
const TARGETS_SHIFT: u64 = 32;
/// IPRIORITYR and ITARGETSR of INTIDs 0..NR_INTIDS.
const PRIORITY_END: u64 = 0x400 + NR_INTIDS as u64;

impl Vgic {
    /// The vcpus that exist, as a GICv2 CPU mask.
    fn cpu_mask(&self) -> u32 {
        (1u32 << self.nr_vcpus) - 1
    }

    /// A GICv2 read of `size` bytes at `off` in the distributor frame by
    /// vcpu `cpu`.
    pub fn read_dist_v2(&self, cpu: usize, off: u64, size: u8) -> Result<u64, GicAccessError> {
        check(off, size)?;
        if cpu >= self.nr_vcpus {
            return Ok(0);
        }
        if size == 1 {
            return Ok(self.read_byte_v2(cpu, off).ok_or(GicAccessError::BadAccess { offset: off, size })?.into());
        }
        if size != 4 {
            return Err(GicAccessError::BadAccess { offset: off, size });
        }
        let v = match off {
            0x000 => self.gicd_ctlr & CTLR_ENABLES,
            0x004 => (self.nr_vcpus as u32 - 1) << TYPER_CPU_SHIFT | super::IT_LINES,
            0x008 => IIDR,
            0xfe8 => PIDR2_GICV2,
            o if (0x400..PRIORITY_END).contains(&o) || (ITARGETSR..ITARGETSR_END).contains(&o) => {
                (0..4).rev().fold(0, |a, k| a << 8 | u32::from(self.read_byte_v2(cpu, o + k).unwrap_or(0)))
            }
            o if (CPENDSGIR..PENDSGIR_END).contains(&o) => {
                let first = ((o - CPENDSGIR) % 0x10) as usize;
                (0..4).rev().fold(0, |a, k| a << 8 | self.sgi_sources(cpu, first + k))
            }
            SGIR => 0, // write-only
            _ => self.read_common(cpu, off, 0).unwrap_or(0),
        };
        Ok(v.into())
    }

    /// The byte-accessible registers: IPRIORITYR and ITARGETSR.
    fn read_byte_v2(&self, cpu: usize, off: u64) -> Option<u8> {
        match off {
            o if (0x400..0x800).contains(&o) => Some(self.irq(cpu, (o - 0x400) as usize).map_or(0, |i| i.priority)),
            o if (ITARGETSR..ITARGETSR_END).contains(&o) => {
                let n = (o - ITARGETSR) as usize;
                Some(if n < NR_PRIVATE {
                    // Read-only: the accessing vcpu itself.
                    1 << cpu
                } else {
                    self.irq(cpu, n).map_or(0, |i| (i.route >> TARGETS_SHIFT) as u8)
                })
            }
            _ => None,
        }
    }

    /// SGI `n`'s byte of GICD_SPENDSGIR/CPENDSGIR for vcpu `cpu`.
    fn sgi_sources(&self, cpu: usize, n: usize) -> u32 {
        self.irq(cpu, n).filter(|i| i.pending && n < NR_SGIS as usize).map_or(0, |_| SGI_SOURCE_SHOWN)
    }

    /// A GICv2 write of `size` bytes at `off` in the distributor frame by
    /// vcpu `cpu`. Returns the vcpus an SGI was sent to (GICD_SGIR), as a
    /// bit mask; 0 for every other register.
    pub fn write_dist_v2(&mut self, cpu: usize, off: u64, size: u8, v: u64) -> Result<u32, GicAccessError> {
        check(off, size)?;
        if cpu >= self.nr_vcpus {
            return Ok(0);
        }
        if size == 1 {
            return match self.write_byte_v2(cpu, off, v as u8) {
                true => Ok(0),
                false => Err(GicAccessError::BadAccess { offset: off, size }),
            };
        }
        if size != 4 {
            return Err(GicAccessError::BadAccess { offset: off, size });
        }
        let v = v as u32;
        match off {
            0x000 => self.gicd_ctlr = (self.gicd_ctlr & !CTLR_ENABLES) | (v & CTLR_ENABLES),
            SGIR => return Ok(self.sgir(cpu, v)),
            o if (0x400..PRIORITY_END).contains(&o) || (ITARGETSR..ITARGETSR_END).contains(&o) => {
                for k in 0..4 {
                    self.write_byte_v2(cpu, o + k, (v >> (8 * k)) as u8);
                }
            }
            o if (CPENDSGIR..PENDSGIR_END).contains(&o) => {
                let set = o >= SPENDSGIR;
                let first = ((o - CPENDSGIR) % 0x10) as usize;
                for k in 0..4 {
                    let n = first + k;
                    if (v >> (8 * k)) & 0xff != 0 && n < NR_SGIS as usize {
                        self.private[cpu][n].pending = set;
                    }
                }
            }
            _ => {
                // Everything else is read-only or reserved: writes ignored.
                let _ = self.write_common(cpu, off, 0, v);
            }
        }
        Ok(0)
    }

    /// IPRIORITYR and ITARGETSR by byte; whether `off` is one of them.
    fn write_byte_v2(&mut self, cpu: usize, off: u64, v: u8) -> bool {
        match off {
            o if (0x400..0x800).contains(&o) => {
                if let Some(irq) = self.irq_mut(cpu, (o - 0x400) as usize) {
                    irq.priority = v;
                }
                true
            }
            o if (ITARGETSR..ITARGETSR_END).contains(&o) => {
                let n = (o - ITARGETSR) as usize;
                let mask = u32::from(v) & self.cpu_mask();
                // Read-only for SGIs and PPIs.
                if let Some(irq) = self.irq_mut(cpu, n).filter(|_| n >= NR_PRIVATE) {
                    let first = if mask == 0 { 0 } else { mask.trailing_zeros() };
                    irq.route = u64::from(mask) << TARGETS_SHIFT | u64::from(first);
                }
                true
            }
            _ => false,
        }
    }

    /// GICD_SGIR written by vcpu `from`: the SGI becomes pending on each
    /// vcpu the target-list filter selects (of those that exist). Returns
    /// them as a bit mask.
    fn sgir(&mut self, from: usize, v: u32) -> u32 {
        let intid = (v & SGIR_INTID_MASK) as usize;
        let all = self.cpu_mask();
        let targets = match (v >> SGIR_FILTER_SHIFT) & SGIR_FILTER_MASK {
            SGIR_FILTER_LIST => (v >> SGIR_TARGETS_SHIFT) & SGIR_TARGETS_MASK & all,
            SGIR_FILTER_OTHERS => all & !(1 << from),
            SGIR_FILTER_SELF => 1 << from,
            _ => 0, // reserved
        };
        for cpu in 0..self.nr_vcpus {
            if targets & (1 << cpu) != 0 {
                self.private[cpu][intid].pending = true;
            }
        }
        targets
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use spevisor_abi::vgic::{lr, VcpuShared};

    #[test]
    fn identification_is_a_gicv2_with_the_vcpus_and_no_security_extensions() {
        let g = Vgic::new(3);
        assert_eq!(g.read_dist_v2(0, 0x004, 4), Ok(2 << 5 | 1), "CPUNumber 2, ITLinesNumber 1");
        assert_eq!(g.read_dist_v2(0, 0xfe8, 4), Ok(0x2b));
        assert_eq!(g.read_dist_v2(0, 0x000, 4), Ok(0), "disabled out of reset, no ARE/DS bits");
    }

    #[test]
    fn private_registers_are_banked_and_itargetsr_reads_the_vcpu() {
        let mut g = Vgic::new(2);
        g.write_dist_v2(1, 0x100, 4, 1 << 27).unwrap();
        assert_eq!(g.read_dist_v2(1, 0x100, 4), Ok(1 << 27));
        assert_eq!(g.read_dist_v2(0, 0x100, 4), Ok(0), "vcpu 0's own bank");
        g.write_dist_v2(0, 0x400 + 27, 1, 0xa0).unwrap();
        assert_eq!(g.read_dist_v2(0, 0x418, 4), Ok(0xa0 << 24));
        assert_eq!(g.read_dist_v2(1, 0x418, 4), Ok(0));
        // ITARGETSR0..7: the accessing vcpu's bit in every byte, read-only.
        assert_eq!(g.read_dist_v2(0, 0x800, 4), Ok(0x0101_0101));
        assert_eq!(g.read_dist_v2(1, 0x81c, 4), Ok(0x0202_0202));
        g.write_dist_v2(1, 0x81c, 4, 0xffff_ffff).unwrap();
        assert_eq!(g.read_dist_v2(1, 0x81c, 4), Ok(0x0202_0202));
    }

    #[test]
    fn spis_go_to_their_itargetsr_vcpu() {
        let mut g = Vgic::new(2);
        g.write_dist_v2(0, 0x000, 4, 1).unwrap();
        g.write_dist_v2(0, 0x104, 4, 1 << 1).unwrap(); // INTID 33
        g.write_dist_v2(0, 0x800 + 33, 1, 0b10).unwrap();
        assert_eq!(g.read_dist_v2(0, 0x820, 4), Ok(0b10 << 8));
        // A CPU that does not exist is dropped from the mask.
        g.write_dist_v2(0, 0x800 + 34, 1, 0b1100).unwrap();
        assert_eq!(g.read_dist_v2(1, 0x800 + 34, 1), Ok(0));
        assert_eq!(g.set_level(33, true), Some(1));
        assert!(g.has_work(1) && !g.has_work(0));
    }

    #[test]
    fn sgir_target_list_filter() {
        let mut g = Vgic::new(3);
        g.write_dist_v2(0, 0x000, 4, 1).unwrap();
        for cpu in 0..3 {
            g.write_dist_v2(cpu, 0x100, 4, 0xffff).unwrap();
        }
        // Filter 0: the list (vcpu 3..7 do not exist).
        assert_eq!(g.write_dist_v2(0, 0xf00, 4, 0b1111_0100 << 16 | 5), Ok(0b100));
        assert!(g.private[2][5].pending && !g.private[0][5].pending && !g.private[1][5].pending);
        // Filter 1: everyone but the sender.
        assert_eq!(g.write_dist_v2(1, 0xf00, 4, 1 << 24 | 6), Ok(0b101));
        assert!(g.private[0][6].pending && !g.private[1][6].pending && g.private[2][6].pending);
        // Filter 2: the sender only.
        assert_eq!(g.write_dist_v2(2, 0xf00, 4, 2 << 24 | 7), Ok(0b100));
        assert!(!g.private[0][7].pending && !g.private[1][7].pending && g.private[2][7].pending);
        // Filter 3 is reserved: nobody.
        assert_eq!(g.write_dist_v2(0, 0xf00, 4, 3 << 24 | 8 | 0xff << 16), Ok(0));
        assert!((0..3).all(|c| !g.private[c][8].pending));
        // SPENDSGIR/CPENDSGIR: per vcpu, a byte per SGI.
        assert_eq!(g.read_dist_v2(2, 0xf24, 4), Ok(1 << 8 | 1 << 16 | 1 << 24), "SGIs 5, 6, 7 on vcpu 2");
        assert_eq!(g.read_dist_v2(0, 0xf24, 4), Ok(1 << 16), "SGI 6 on vcpu 0");
    }

    #[test]
    fn pending_sgis_flush_to_list_registers_and_clear() {
        let mut g = Vgic::new(1);
        g.write_dist_v2(0, 0x000, 4, 1).unwrap();
        g.write_dist_v2(0, 0x100, 4, 1 << 3).unwrap();
        g.write_dist_v2(0, 0xf20, 4, 0xff << 24).unwrap(); // SPENDSGIR: SGI 3
        let mut sh = VcpuShared::default();
        g.flush(0, &mut sh, 4);
        assert_eq!((sh.nr_lrs, lr::vintid(sh.lrs[0]), lr::state(sh.lrs[0])), (1, 3, lr::PENDING));
        g.fold(0, &mut sh);
        g.write_dist_v2(0, 0xf10, 4, 1 << 24).unwrap(); // CPENDSGIR
        assert_eq!(g.read_dist_v2(0, 0xf20, 4), Ok(0));
        assert!(!g.has_work(0));
    }

    #[test]
    fn bad_accesses_are_errors_and_nothing_panics() {
        let mut g = Vgic::new(8);
        assert!(g.read_dist_v2(0, 0x002, 2).is_err());
        assert!(g.write_dist_v2(0, 0x001, 4, 0).is_err());
        assert!(g.write_dist_v2(0, 0x000, 1, 0).is_err(), "GICD_CTLR is word-only");
        for off in (0..0x1_0000).step_by(4) {
            for cpu in [0, 7, 8, 100] {
                let _ = g.read_dist_v2(cpu, off, 4);
                let _ = g.write_dist_v2(cpu, off, 4, u64::MAX);
                let _ = g.read_dist_v2(cpu, off, 1);
                let _ = g.write_dist_v2(cpu, off, 1, u64::MAX);
            }
        }
    }
}
