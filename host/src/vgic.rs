//! The guest's GICv3 distributor and redistributor, as registers: what a
//! guest reads and writes through the frames its device tree names
//! (`spevisor_abi::guest::machine::GICD_IPA`/`GICR_IPA`). One vcpu, one
//! security state (GICD_CTLR.DS = 1), affinity routing always on, no LPIs,
//! SPIs 32..63.
//!
//! This is the register state only: which interrupts are enabled, pending,
//! active, their priorities, groups and routes. Nothing is delivered from
//! it yet (injection through the list registers is the next step), so a
//! guest sees a GIC that configures correctly and never interrupts.
//! Pure, so every register is unit-tested here.

/// Number of interrupt IDs modelled: SGIs 0..15, PPIs 16..31, SPIs 32..63.
pub const NR_INTIDS: usize = 64;
/// GICD_TYPER.ITLinesNumber: 32 * (N + 1) INTIDs.
const IT_LINES: u32 = (NR_INTIDS as u32 / 32) - 1;
/// GICD_TYPER.IDbits: 10 INTID bits (the field holds bits - 1).
const ID_BITS: u32 = 9;
/// GICD_CTLR / GICR: Register Write Pending (always 0: writes complete at once).
const CTLR_DS: u32 = 1 << 6;
const CTLR_ARE: u32 = 1 << 4;
const CTLR_ENABLE_GRP1: u32 = 1 << 1;
const CTLR_ENABLE_GRP0: u32 = 1 << 0;
/// GICR_WAKER: ProcessorSleep, ChildrenAsleep.
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// GICR_TYPER.Last: the only redistributor of the frame.
const GICR_TYPER_LAST: u64 = 1 << 4;
/// Implementer JEP106 code of Arm (0x43B), product 0, revision 0.
const IIDR: u32 = 0x0000_043b;
/// PIDR2 with ArchRev = 3 (GICv3) and the JEP106 bits Arm's GICs report.
const PIDR2_GICV3: u32 = 0x3b;

/// Frame sizes: the distributor, and the redistributor (RD + SGI frames).
pub const GICD_SIZE: u64 = 0x1_0000;
pub const GICR_SIZE: u64 = 0x2_0000;
/// Offset of the SGI frame in the redistributor.
const SGI_BASE: u64 = 0x1_0000;

/// Per-INTID state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Irq {
    group1: bool,
    enabled: bool,
    pending: bool,
    active: bool,
    priority: u8,
    /// ICFGR: edge-triggered (2 bits per INTID, bit 1 of the pair).
    edge: bool,
    /// GICD_IROUTERn (SPIs only).
    route: u64,
}

/// Why an access was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicAccessError {
    /// A size the register does not take (or a misaligned access).
    BadAccess { offset: u64, size: u8 },
}

/// The distributor and the redistributor of vcpu 0.
#[derive(Clone, Debug)]
pub struct Vgic {
    irqs: [Irq; NR_INTIDS],
    gicd_ctlr: u32,
    waker_sleep: bool,
}

impl Default for Vgic {
    fn default() -> Self {
        Self::new()
    }
}

impl Vgic {
    /// A GIC out of reset: everything disabled, group 0, priority 0,
    /// processor asleep (GICR_WAKER.ProcessorSleep = 1). SGIs are edge.
    pub fn new() -> Self {
        let mut irqs = [Irq::default(); NR_INTIDS];
        for irq in &mut irqs[..16] {
            irq.edge = true;
        }
        Self { irqs, gicd_ctlr: CTLR_DS | CTLR_ARE, waker_sleep: true }
    }

    /// Whether INTID `n` is enabled (the tests and, later, injection).
    pub fn enabled(&self, n: usize) -> bool {
        self.irqs.get(n).is_some_and(|i| i.enabled)
    }

    /// Whether the distributor forwards group 1 interrupts.
    pub fn group1_enabled(&self) -> bool {
        self.gicd_ctlr & CTLR_ENABLE_GRP1 != 0
    }

    /// The priority of INTID `n`.
    pub fn priority(&self, n: usize) -> Option<u8> {
        self.irqs.get(n).map(|i| i.priority)
    }

    /// A bitmap register over INTIDs `32 * word ..`: one bit from each.
    fn bits(&self, word: usize, f: impl Fn(&Irq) -> bool) -> u32 {
        let mut v = 0;
        for b in 0..32 {
            if self.irqs.get(word * 32 + b).is_some_and(&f) {
                v |= 1 << b;
            }
        }
        v
    }

    /// Applies `f` to each INTID of word `word` whose bit is set in `v`.
    fn each_set(&mut self, word: usize, v: u32, f: impl Fn(&mut Irq)) {
        for b in 0..32 {
            if v & (1 << b) != 0 {
                if let Some(irq) = self.irqs.get_mut(word * 32 + b) {
                    f(irq);
                }
            }
        }
    }

    /// The shared register block of the distributor (SPIs) and of the SGI
    /// frame (SGIs and PPIs: `word` 0): group, enable, pend, active,
    /// priority, configuration. `off` is from the block's base layout
    /// (GICD_IGROUPR at 0x080, ...). `None` if `off` is not one of them.
    fn read_common(&self, off: u64, word_base: usize) -> Option<u32> {
        let word = |base: u64| word_base + ((off - base) / 4) as usize;
        Some(match off {
            0x080..=0x0fc => self.bits(word(0x080), |i| i.group1),
            0x100..=0x17c | 0x180..=0x1fc => self.bits(word(off & !0x7f), |i| i.enabled),
            0x200..=0x27c | 0x280..=0x2fc => self.bits(word(off & !0x7f), |i| i.pending),
            0x300..=0x37c | 0x380..=0x3fc => self.bits(word(off & !0x7f), |i| i.active),
            0x400..=0x7f8 => {
                let first = word_base * 32 + (off - 0x400) as usize;
                (0..4)
                    .map(|k| self.irqs.get(first + k).map_or(0, |i| i.priority) as u32)
                    .rev()
                    .fold(0, |a, p| a << 8 | p)
            }
            0xc00..=0xcfc => {
                let first = word_base * 32 + ((off - 0xc00) * 4) as usize;
                (0..16).fold(0, |a, k| a | (self.irqs.get(first + k).is_some_and(|i| i.edge) as u32) << (2 * k + 1))
            }
            0xd00..=0xd7c => 0, // IGRPMODR: RAZ (one security state).
            _ => return None,
        })
    }

    fn write_common(&mut self, off: u64, word_base: usize, v: u32) -> bool {
        let word = |base: u64| word_base + ((off - base) / 4) as usize;
        match off {
            0x080..=0x0fc => {
                let w = word(0x080);
                for b in 0..32 {
                    if let Some(irq) = self.irqs.get_mut(w * 32 + b) {
                        irq.group1 = v & (1 << b) != 0;
                    }
                }
            }
            0x100..=0x17c => self.each_set(word(0x100), v, |i| i.enabled = true),
            0x180..=0x1fc => self.each_set(word(0x180), v, |i| i.enabled = false),
            0x200..=0x27c => self.each_set(word(0x200), v, |i| i.pending = true),
            0x280..=0x2fc => self.each_set(word(0x280), v, |i| i.pending = false),
            0x300..=0x37c => self.each_set(word(0x300), v, |i| i.active = true),
            0x380..=0x3fc => self.each_set(word(0x380), v, |i| i.active = false),
            0x400..=0x7f8 => {
                let first = word_base * 32 + (off - 0x400) as usize;
                for k in 0..4 {
                    if let Some(irq) = self.irqs.get_mut(first + k) {
                        irq.priority = (v >> (8 * k)) as u8;
                    }
                }
            }
            0xc00..=0xcfc => {
                let first = word_base * 32 + ((off - 0xc00) * 4) as usize;
                for k in 0..16 {
                    // SGIs are always edge-triggered (ICFGR0 is read-only).
                    if let Some(irq) = self.irqs.get_mut(first + k).filter(|_| first + k >= 16) {
                        irq.edge = v & (1 << (2 * k + 1)) != 0;
                    }
                }
            }
            0xd00..=0xd7c => {}
            _ => return false,
        }
        true
    }

    /// A read of `size` bytes at `off` in the distributor frame.
    pub fn read_dist(&self, off: u64, size: u8) -> Result<u64, GicAccessError> {
        check(off, size)?;
        if (0x400..0x800).contains(&off) && size == 1 {
            let n = (off - 0x400) as usize;
            return Ok(self.irqs.get(n).filter(|_| n >= 32).map_or(0, |i| i.priority) as u64);
        }
        if (0x6100..0x6100 + 8 * NR_INTIDS as u64).contains(&off) {
            // GICD_IROUTERn, n >= 32 (0x6000 + 8n); 64-bit or either half.
            let n = ((off - 0x6000) / 8) as usize;
            let route = self.irqs.get(n).map_or(0, |i| i.route);
            return Ok(if off % 8 == 4 {
                route >> 32
            } else if size == 8 {
                route
            } else {
                route & 0xffff_ffff
            });
        }
        if size != 4 {
            return Err(GicAccessError::BadAccess { offset: off, size });
        }
        let v = match off {
            0x0000 => self.gicd_ctlr,
            0x0004 => ID_BITS << 19 | IT_LINES,
            0x0008 => IIDR,
            0xffe8 => PIDR2_GICV3,
            // SGIs and PPIs live in the redistributor when ARE = 1.
            o if is_word0(o) => 0,
            0x400..=0x41c => 0,
            _ => self.read_common(off, 0).unwrap_or(0),
        };
        Ok(v as u64)
    }

    /// A write of `size` bytes at `off` in the distributor frame.
    pub fn write_dist(&mut self, off: u64, size: u8, v: u64) -> Result<(), GicAccessError> {
        check(off, size)?;
        if (0x400..0x800).contains(&off) && size == 1 {
            let n = (off - 0x400) as usize;
            if let Some(irq) = self.irqs.get_mut(n).filter(|_| n >= 32) {
                irq.priority = v as u8;
            }
            return Ok(());
        }
        if (0x6100..0x6100 + 8 * NR_INTIDS as u64).contains(&off) {
            let n = ((off - 0x6000) / 8) as usize;
            if let Some(irq) = self.irqs.get_mut(n) {
                irq.route = match (size, off % 8) {
                    (8, _) => v,
                    (_, 4) => (irq.route & 0xffff_ffff) | (v << 32),
                    _ => (irq.route & !0xffff_ffff) | (v & 0xffff_ffff),
                };
            }
            return Ok(());
        }
        if size != 4 {
            return Err(GicAccessError::BadAccess { offset: off, size });
        }
        let v = v as u32;
        match off {
            0x0000 => self.gicd_ctlr = CTLR_DS | CTLR_ARE | (v & (CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1)),
            o if is_word0(o) => {}
            0x400..=0x41c => {}
            _ => {
                // Everything else is read-only or reserved: writes ignored.
                let _ = self.write_common(off, 0, v);
            }
        }
        Ok(())
    }

    /// A read of `size` bytes at `off` in the redistributor (RD then SGI frame).
    pub fn read_redist(&self, off: u64, size: u8) -> Result<u64, GicAccessError> {
        check(off, size)?;
        if off == 0x0008 && size == 8 {
            return Ok(GICR_TYPER_LAST);
        }
        if (SGI_BASE + 0x400..SGI_BASE + 0x420).contains(&off) && size == 1 {
            return Ok(self.irqs[(off - SGI_BASE - 0x400) as usize].priority as u64);
        }
        if size != 4 {
            return Err(GicAccessError::BadAccess { offset: off, size });
        }
        let v = match off {
            0x0000 => 0, // GICR_CTLR: no LPIs, RWP = 0.
            0x0004 => IIDR,
            0x0008 => GICR_TYPER_LAST as u32,
            0x000c => 0, // GICR_TYPER[63:32]: affinity 0.0.0.0.
            0x0014 if self.waker_sleep => WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP,
            0x0014 => 0,
            0xffe8 => PIDR2_GICV3,
            o if o >= SGI_BASE => {
                let o = o - SGI_BASE;
                // Word 0 only: SGIs and PPIs (the priority block up to 0x41c).
                match o {
                    o if is_word0(o) => self.read_common(o, 0).unwrap_or(0),
                    0x400..=0x41c => self.read_common(o, 0).unwrap_or(0),
                    _ => 0,
                }
            }
            _ => 0,
        };
        Ok(v as u64)
    }

    /// A write of `size` bytes at `off` in the redistributor.
    pub fn write_redist(&mut self, off: u64, size: u8, v: u64) -> Result<(), GicAccessError> {
        check(off, size)?;
        if (SGI_BASE + 0x400..SGI_BASE + 0x420).contains(&off) && size == 1 {
            self.irqs[(off - SGI_BASE - 0x400) as usize].priority = v as u8;
            return Ok(());
        }
        if size != 4 {
            return Err(GicAccessError::BadAccess { offset: off, size });
        }
        let v = v as u32;
        match off {
            0x0014 => self.waker_sleep = v & WAKER_PROCESSOR_SLEEP != 0,
            o if o >= SGI_BASE => {
                let o = o - SGI_BASE;
                if is_word0(o) || (0x400..=0x41c).contains(&o) {
                    self.write_common(o, 0, v);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The group/enable/pend/active/configuration registers of INTIDs 0..31
/// (word 0; ICFGR takes two words): banked in the redistributor's SGI frame,
/// RAZ/WI in the distributor under affinity routing.
const fn is_word0(off: u64) -> bool {
    matches!(off, 0x080 | 0x100 | 0x180 | 0x200 | 0x280 | 0x300 | 0x380 | 0xc00 | 0xc04 | 0xd00)
}

/// Sizes the frames take (1, 4 or 8 bytes), naturally aligned.
fn check(off: u64, size: u8) -> Result<(), GicAccessError> {
    if !matches!(size, 1 | 4 | 8) || !off.is_multiple_of(size as u64) {
        return Err(GicAccessError::BadAccess { offset: off, size });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identification_is_a_gicv3_with_64_intids_and_one_security_state() {
        let g = Vgic::new();
        assert_eq!(g.read_dist(0xffe8, 4).unwrap() >> 4 & 0xf, 3, "GICD_PIDR2.ArchRev");
        assert_eq!(g.read_redist(0xffe8, 4).unwrap() >> 4 & 0xf, 3, "GICR_PIDR2.ArchRev");
        let typer = g.read_dist(0x4, 4).unwrap();
        assert_eq!(32 * ((typer & 0x1f) + 1), 64);
        assert_eq!(typer >> 17 & 1, 0, "no LPIs");
        let ctlr = g.read_dist(0, 4).unwrap() as u32;
        assert_eq!(ctlr & (CTLR_DS | CTLR_ARE), CTLR_DS | CTLR_ARE);
        assert_eq!(ctlr >> 31, 0, "RWP");
        assert_eq!(g.read_redist(0x8, 8).unwrap() & GICR_TYPER_LAST, GICR_TYPER_LAST);
    }

    #[test]
    fn the_redistributor_wakes_up() {
        let mut g = Vgic::new();
        assert_ne!(g.read_redist(0x14, 4).unwrap() as u32 & WAKER_CHILDREN_ASLEEP, 0);
        g.write_redist(0x14, 4, 0).unwrap();
        assert_eq!(g.read_redist(0x14, 4).unwrap(), 0, "ChildrenAsleep follows ProcessorSleep");
    }

    #[test]
    fn enables_are_set_and_clear_registers() {
        let mut g = Vgic::new();
        // SPI 33 (the UART) through the distributor, PPI 27 (the virtual
        // timer) through the SGI frame.
        g.write_dist(0x104, 4, 1 << 1).unwrap();
        g.write_redist(SGI_BASE + 0x100, 4, 1 << 27).unwrap();
        assert!(g.enabled(33) && g.enabled(27) && !g.enabled(32));
        assert_eq!(g.read_dist(0x184, 4).unwrap(), 1 << 1, "ICENABLER reads the enables too");
        g.write_dist(0x184, 4, 1 << 1).unwrap();
        assert!(!g.enabled(33));
        assert!(g.enabled(27), "clearing one leaves the others");
        // With ARE, the distributor's word 0 is RAZ/WI.
        g.write_dist(0x100, 4, u32::MAX as u64).unwrap();
        assert_eq!(g.read_dist(0x100, 4).unwrap(), 0);
        assert!(!g.enabled(5));
    }

    #[test]
    fn priorities_by_byte_and_by_word() {
        let mut g = Vgic::new();
        g.write_dist(0x400 + 33, 1, 0xa0).unwrap();
        assert_eq!(g.priority(33), Some(0xa0));
        assert_eq!(g.read_dist(0x420, 4).unwrap(), 0xa0 << 8);
        g.write_redist(SGI_BASE + 0x418, 4, 0x1020_3040).unwrap();
        assert_eq!((g.priority(24), g.priority(27)), (Some(0x40), Some(0x10)));
        assert_eq!(g.read_redist(SGI_BASE + 0x41b, 1).unwrap(), 0x10);
    }

    #[test]
    fn configuration_group_and_route() {
        let mut g = Vgic::new();
        g.write_dist(0xc08, 4, 0b10 << 2).unwrap(); // INTID 33 edge.
        assert_eq!(g.read_dist(0xc08, 4).unwrap(), 0b10 << 2);
        g.write_redist(SGI_BASE + 0xc00, 4, 0).unwrap();
        assert_eq!(g.read_redist(SGI_BASE + 0xc00, 4).unwrap(), 0xaaaa_aaaa, "SGIs stay edge");
        g.write_dist(0x084, 4, u32::MAX as u64).unwrap();
        assert_eq!(g.read_dist(0x084, 4).unwrap(), u32::MAX as u64, "SPIs 32..63 group 1");
        g.write_dist(0x6000 + 8 * 40, 8, 0x0000_0001_0000_0000).unwrap();
        assert_eq!(g.read_dist(0x6000 + 8 * 40, 8).unwrap(), 0x0000_0001_0000_0000);
        assert_eq!(g.read_dist(0x6000 + 8 * 40 + 4, 4).unwrap(), 1, "upper half");
        g.write_dist(0, 4, (CTLR_ENABLE_GRP1 | 0xf000) as u64).unwrap();
        assert!(g.group1_enabled());
        assert_eq!(g.read_dist(0, 4).unwrap() as u32, CTLR_DS | CTLR_ARE | CTLR_ENABLE_GRP1, "only the enables stick");
    }

    #[test]
    fn bad_accesses_are_errors_and_nothing_panics() {
        let mut g = Vgic::new();
        assert!(g.read_dist(0x2, 4).is_err(), "misaligned");
        assert!(g.read_dist(0x0, 2).is_err(), "no 16-bit registers");
        assert!(g.write_dist(0x4, 8, 0).is_err());
        for off in (0..GICD_SIZE).step_by(4) {
            let _ = g.read_dist(off, 4);
            let _ = g.write_dist(off, 4, u32::MAX as u64);
        }
        for off in (0..GICR_SIZE).step_by(4) {
            let _ = g.read_redist(off, 4);
            let _ = g.write_redist(off, 4, u32::MAX as u64);
        }
        for off in 0..GICD_SIZE {
            let _ = g.read_dist(off, 1);
            let _ = g.write_dist(off, 1, 0xff);
        }
    }
}
