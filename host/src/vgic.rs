//! The guest's GICv3 distributor and redistributors: what a guest reads and
//! writes through the frames its device tree names
//! (`spevisor_abi::guest::machine::GICD_IPA`/`GICR_IPA`, one redistributor
//! of `GICR_SIZE` bytes per vcpu), and where its interrupts' pending and
//! active state lives. One security state (GICD_CTLR.DS = 1), affinity
//! routing always on, no LPIs, SPIs 32..63.
//!
//! Delivery goes through the list registers (`flush` before a run, `fold`
//! after it, through the vcpu's page shared with EL2): active interrupts
//! first (their EOIs must find them), then pending ones by priority. When
//! more are pending than the CPU has list registers, `flush` asks for an
//! underflow maintenance interrupt (ICH_HCR_EL2.UIE), which ends the run
//! when the list registers run low so the next `flush` refills them; when
//! more are active than fit, it asks EL2 for ICH_HCR_EL2.EOIcount and
//! `fold` deactivates that many of the active interrupts no list register
//! held, most urgent first (the order the guest must EOI them in).
//!
//! The virtual timer's PPI is tied to the physical one (list register
//! HW = 1): the host leaves the physical interrupt active when it takes it,
//! and the guest's deactivation deactivates it, so the level-sensitive
//! timer cannot fire again before the guest has handled it (KVM's choice).
//! Pure, so every register and the list-register bookkeeping are
//! unit-tested here.

mod v2;

use spevisor_abi::guest::machine::{gicr_size, GICR_SIZE};

/// vcpus whose state the model holds.
const MAX_VCPUS: usize = spevisor_abi::guest::machine::MAX_VCPUS as usize;
use spevisor_abi::vgic::{hcr, lr, VcpuShared, MAX_LRS};

/// Number of interrupt IDs modelled: SGIs 0..15, PPIs 16..31, SPIs 32..63.
pub const NR_INTIDS: usize = 64;
/// SGIs and PPIs: banked per vcpu.
const NR_PRIVATE: usize = 32;
const NR_SGIS: u32 = 16;
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
/// GICR_TYPER.Last: the last redistributor of the region.
const GICR_TYPER_LAST: u64 = 1 << 4;
/// GICR_TYPER.Processor_Number and the affinity value (Aff0 = vcpu).
const GICR_TYPER_PROC_SHIFT: u64 = 8;
const GICR_TYPER_AFF_SHIFT: u64 = 32;
/// Implementer JEP106 code of Arm (0x43B), product 0, revision 0.
const IIDR: u32 = 0x0000_043b;
/// PIDR2 with ArchRev = 3 (GICv3) and the JEP106 bits Arm's GICs report.
const PIDR2_GICV3: u32 = 0x3b;

/// The distributor frame's size (one vcpu's redistributor frames: `GICR_SIZE`).
pub const GICD_SIZE: u64 = 0x1_0000;
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
    /// The input line of a level-sensitive interrupt a device model drives.
    level: bool,
    /// Tied to the physical PPI of the same INTID (list register HW = 1).
    hw: bool,
}

/// Why an access was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicAccessError {
    /// A size the register does not take (or a misaligned access).
    BadAccess { offset: u64, size: u8 },
}

/// The INTIDs a vcpu's list registers hold since the last `flush`.
#[derive(Clone, Copy, Debug, Default)]
struct Loaded {
    intids: [u8; MAX_LRS],
    n: usize,
}

/// The distributor and the redistributors of a VM's vcpus.
#[derive(Clone, Debug)]
pub struct Vgic {
    spis: [Irq; NR_INTIDS - NR_PRIVATE],
    private: [[Irq; NR_PRIVATE]; MAX_VCPUS],
    gicd_ctlr: u32,
    waker_sleep: [bool; MAX_VCPUS],
    nr_vcpus: usize,
    loaded: [Loaded; MAX_VCPUS],
    /// Set once any interrupt may have become active (a list register
    /// came back active, or the guest wrote ISACTIVER): until then, with
    /// both groups disabled, `needs_flush` answers without a scan.
    maybe_active: bool,
    /// EOIs of interrupts no list register held, as EOIcount reported them.
    eoicount_total: u64,
}

impl Default for Vgic {
    fn default() -> Self {
        Self::new(1)
    }
}

impl Vgic {
    /// A GIC out of reset for `nr_vcpus` vcpus (1..=MAX_VCPUS): everything
    /// disabled, group 0, priority 0, processors asleep
    /// (GICR_WAKER.ProcessorSleep = 1). SGIs are edge.
    pub fn new(nr_vcpus: usize) -> Self {
        let mut private = [[Irq::default(); NR_PRIVATE]; MAX_VCPUS];
        for cpu in &mut private {
            for irq in &mut cpu[..NR_SGIS as usize] {
                irq.edge = true;
            }
        }
        Self {
            spis: [Irq::default(); NR_INTIDS - NR_PRIVATE],
            private,
            gicd_ctlr: CTLR_DS | CTLR_ARE,
            waker_sleep: [true; MAX_VCPUS],
            nr_vcpus: nr_vcpus.clamp(1, MAX_VCPUS),
            loaded: [Loaded::default(); MAX_VCPUS],
            maybe_active: false,
            eoicount_total: 0,
        }
    }

    /// Bytes of redistributor frames the VM's vcpus have.
    pub fn redist_size(&self) -> u64 {
        gicr_size(self.nr_vcpus as u32)
    }

    /// INTID `n` as vcpu `cpu` sees it (SGIs and PPIs are its own).
    fn irq(&self, cpu: usize, n: usize) -> Option<&Irq> {
        if n < NR_PRIVATE {
            self.private.get(cpu)?.get(n)
        } else {
            self.spis.get(n - NR_PRIVATE)
        }
    }

    fn irq_mut(&mut self, cpu: usize, n: usize) -> Option<&mut Irq> {
        if n < NR_PRIVATE {
            self.private.get_mut(cpu)?.get_mut(n)
        } else {
            self.spis.get_mut(n - NR_PRIVATE)
        }
    }

    /// Whether INTID `n` is enabled (for vcpu 0's private interrupts).
    pub fn enabled(&self, n: usize) -> bool {
        self.irq(0, n).is_some_and(|i| i.enabled)
    }

    /// Whether the distributor forwards group 1 interrupts.
    pub fn group1_enabled(&self) -> bool {
        self.gicd_ctlr & CTLR_ENABLE_GRP1 != 0
    }

    /// The priority of INTID `n` (vcpu 0's for private interrupts).
    pub fn priority(&self, n: usize) -> Option<u8> {
        self.irq(0, n).map(|i| i.priority)
    }

    /// A bitmap register over INTIDs `32 * word ..`: one bit from each.
    fn bits(&self, cpu: usize, word: usize, f: impl Fn(&Irq) -> bool) -> u32 {
        let mut v = 0;
        for b in 0..32 {
            if self.irq(cpu, word * 32 + b).is_some_and(&f) {
                v |= 1 << b;
            }
        }
        v
    }

    /// Applies `f` to each INTID of word `word` whose bit is set in `v`.
    fn each_set(&mut self, cpu: usize, word: usize, v: u32, f: impl Fn(&mut Irq)) {
        for b in 0..32 {
            if v & (1 << b) != 0 {
                if let Some(irq) = self.irq_mut(cpu, word * 32 + b) {
                    f(irq);
                }
            }
        }
    }

    /// The shared register block of the distributor (SPIs) and of the SGI
    /// frame (SGIs and PPIs: `word` 0): group, enable, pend, active,
    /// priority, configuration. `off` is from the block's base layout
    /// (GICD_IGROUPR at 0x080, ...). `None` if `off` is not one of them.
    fn read_common(&self, cpu: usize, off: u64, word_base: usize) -> Option<u32> {
        let word = |base: u64| word_base + ((off - base) / 4) as usize;
        Some(match off {
            0x080..=0x0fc => self.bits(cpu, word(0x080), |i| i.group1),
            0x100..=0x17c | 0x180..=0x1fc => self.bits(cpu, word(off & !0x7f), |i| i.enabled),
            0x200..=0x27c | 0x280..=0x2fc => self.bits(cpu, word(off & !0x7f), |i| i.pending),
            0x300..=0x37c | 0x380..=0x3fc => self.bits(cpu, word(off & !0x7f), |i| i.active),
            0x400..=0x7f8 => {
                let first = word_base * 32 + (off - 0x400) as usize;
                (0..4)
                    .map(|k| self.irq(cpu, first + k).map_or(0, |i| i.priority) as u32)
                    .rev()
                    .fold(0, |a, p| a << 8 | p)
            }
            0xc00..=0xcfc => {
                let first = word_base * 32 + ((off - 0xc00) * 4) as usize;
                (0..16).fold(0, |a, k| a | (self.irq(cpu, first + k).is_some_and(|i| i.edge) as u32) << (2 * k + 1))
            }
            0xd00..=0xd7c => 0, // IGRPMODR: RAZ (one security state).
            _ => return None,
        })
    }

    fn write_common(&mut self, cpu: usize, off: u64, word_base: usize, v: u32) -> bool {
        let word = |base: u64| word_base + ((off - base) / 4) as usize;
        match off {
            0x080..=0x0fc => {
                let w = word(0x080);
                for b in 0..32 {
                    if let Some(irq) = self.irq_mut(cpu, w * 32 + b) {
                        irq.group1 = v & (1 << b) != 0;
                    }
                }
            }
            0x100..=0x17c => self.each_set(cpu, word(0x100), v, |i| i.enabled = true),
            0x180..=0x1fc => self.each_set(cpu, word(0x180), v, |i| i.enabled = false),
            0x200..=0x27c => self.each_set(cpu, word(0x200), v, |i| i.pending = true),
            0x280..=0x2fc => self.each_set(cpu, word(0x280), v, |i| i.pending = false),
            0x300..=0x37c => {
                self.maybe_active = true;
                self.each_set(cpu, word(0x300), v, |i| i.active = true)
            }
            0x380..=0x3fc => self.each_set(cpu, word(0x380), v, |i| i.active = false),
            0x400..=0x7f8 => {
                let first = word_base * 32 + (off - 0x400) as usize;
                for k in 0..4 {
                    if let Some(irq) = self.irq_mut(cpu, first + k) {
                        irq.priority = (v >> (8 * k)) as u8;
                    }
                }
            }
            0xc00..=0xcfc => {
                let first = word_base * 32 + ((off - 0xc00) * 4) as usize;
                for k in 0..16 {
                    // SGIs are always edge-triggered (ICFGR0 is read-only).
                    if let Some(irq) = self.irq_mut(cpu, first + k).filter(|_| first + k >= 16) {
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
            return Ok(self.irq(0, n).filter(|_| n >= 32).map_or(0, |i| i.priority) as u64);
        }
        if (0x6100..0x6100 + 8 * NR_INTIDS as u64).contains(&off) {
            // GICD_IROUTERn, n >= 32 (0x6000 + 8n); 64-bit or either half.
            let n = ((off - 0x6000) / 8) as usize;
            let route = self.irq(0, n).map_or(0, |i| i.route);
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
            _ => self.read_common(0, off, 0).unwrap_or(0),
        };
        Ok(v as u64)
    }

    /// A write of `size` bytes at `off` in the distributor frame.
    pub fn write_dist(&mut self, off: u64, size: u8, v: u64) -> Result<(), GicAccessError> {
        check(off, size)?;
        if (0x400..0x800).contains(&off) && size == 1 {
            let n = (off - 0x400) as usize;
            if let Some(irq) = self.irq_mut(0, n).filter(|_| n >= 32) {
                irq.priority = v as u8;
            }
            return Ok(());
        }
        if (0x6100..0x6100 + 8 * NR_INTIDS as u64).contains(&off) {
            let n = ((off - 0x6000) / 8) as usize;
            if let Some(irq) = self.irq_mut(0, n).filter(|_| n >= 32) {
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
                let _ = self.write_common(0, off, 0, v);
            }
        }
        Ok(())
    }

    /// GICR_TYPER of vcpu `cpu`'s redistributor: its affinity (Aff0 =
    /// `cpu`), processor number, and Last on the last vcpu's.
    fn gicr_typer(&self, cpu: usize) -> u64 {
        let last = if cpu + 1 == self.nr_vcpus { GICR_TYPER_LAST } else { 0 };
        (cpu as u64) << GICR_TYPER_AFF_SHIFT | (cpu as u64) << GICR_TYPER_PROC_SHIFT | last
    }

    /// The vcpu whose redistributor holds `off` (from the region's base),
    /// and the offset inside it; `None` past the last vcpu's.
    fn redist_of(&self, off: u64) -> Option<(usize, u64)> {
        let cpu = (off / GICR_SIZE) as usize;
        (cpu < self.nr_vcpus).then_some((cpu, off % GICR_SIZE))
    }

    /// A read of `size` bytes at `off` in the redistributor region (each
    /// vcpu's RD then SGI frame, `GICR_SIZE` apart).
    pub fn read_redist(&self, off: u64, size: u8) -> Result<u64, GicAccessError> {
        check(off, size)?;
        let Some((cpu, off)) = self.redist_of(off) else { return Ok(0) };
        if off == 0x0008 && size == 8 {
            return Ok(self.gicr_typer(cpu));
        }
        if (SGI_BASE + 0x400..SGI_BASE + 0x420).contains(&off) && size == 1 {
            return Ok(self.private[cpu][(off - SGI_BASE - 0x400) as usize].priority as u64);
        }
        if size != 4 {
            return Err(GicAccessError::BadAccess { offset: off, size });
        }
        let v = match off {
            0x0000 => 0, // GICR_CTLR: no LPIs, RWP = 0.
            0x0004 => IIDR,
            0x0008 => self.gicr_typer(cpu) as u32,
            0x000c => (self.gicr_typer(cpu) >> 32) as u32,
            0x0014 if self.waker_sleep[cpu] => WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP,
            0x0014 => 0,
            0xffe8 => PIDR2_GICV3,
            o if o >= SGI_BASE => {
                let o = o - SGI_BASE;
                // Word 0 only: SGIs and PPIs (the priority block up to 0x41c).
                match o {
                    o if is_word0(o) => self.read_common(cpu, o, 0).unwrap_or(0),
                    0x400..=0x41c => self.read_common(cpu, o, 0).unwrap_or(0),
                    _ => 0,
                }
            }
            _ => 0,
        };
        Ok(v as u64)
    }

    /// A write of `size` bytes at `off` in the redistributor region.
    pub fn write_redist(&mut self, off: u64, size: u8, v: u64) -> Result<(), GicAccessError> {
        check(off, size)?;
        let Some((cpu, off)) = self.redist_of(off) else { return Ok(()) };
        if (SGI_BASE + 0x400..SGI_BASE + 0x420).contains(&off) && size == 1 {
            self.private[cpu][(off - SGI_BASE - 0x400) as usize].priority = v as u8;
            return Ok(());
        }
        if size != 4 {
            return Err(GicAccessError::BadAccess { offset: off, size });
        }
        let v = v as u32;
        match off {
            0x0014 => self.waker_sleep[cpu] = v & WAKER_PROCESSOR_SLEEP != 0,
            o if o >= SGI_BASE => {
                let o = o - SGI_BASE;
                if is_word0(o) || (0x400..=0x41c).contains(&o) {
                    self.write_common(cpu, o, 0, v);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Why `flush` stopped short of loading every interrupt it could.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overflow {
    /// Pending interrupts that did not fit (UIE asked for).
    pub pending: usize,
    /// Active interrupts that did not fit (EOIcount asked for).
    pub active: usize,
}

impl Vgic {
    /// The vcpu an SPI is delivered to: GICD_IROUTERn.Aff0 (IRM, or a vcpu
    /// that does not exist, gives vcpu 0).
    fn spi_target(&self, irq: &Irq) -> usize {
        const IRM: u64 = 1 << 31;
        let aff0 = (irq.route & 0xff) as usize;
        if irq.route & IRM != 0 || aff0 >= self.nr_vcpus {
            0
        } else {
            aff0
        }
    }

    /// Whether INTID `n` of vcpu `cpu`'s group is enabled in GICD_CTLR.
    fn group_enabled(&self, irq: &Irq) -> bool {
        let bit = if irq.group1 { CTLR_ENABLE_GRP1 } else { CTLR_ENABLE_GRP0 };
        self.gicd_ctlr & bit != 0
    }

    /// Interrupts of vcpu `cpu` (its SGIs/PPIs and the SPIs routed to it),
    /// as (INTID, state).
    fn each_of(&self, cpu: usize) -> impl Iterator<Item = (usize, &Irq)> {
        let private = self.private[cpu].iter().enumerate();
        let spis = self.spis.iter().enumerate().map(|(i, irq)| (i + NR_PRIVATE, irq));
        private.chain(spis.filter(move |(_, irq)| self.spi_target(irq) == cpu))
    }

    fn deliverable(&self, irq: &Irq) -> bool {
        irq.pending && irq.enabled && self.group_enabled(irq)
    }

    /// Whether vcpu `cpu` has an interrupt to take: one pending, enabled
    /// and of an enabled group (what wakes it from WFI).
    pub fn has_work(&self, cpu: usize) -> bool {
        cpu < self.nr_vcpus && self.each_of(cpu).any(|(_, irq)| self.deliverable(irq))
    }

    /// Whether `flush` has anything to load for vcpu `cpu` (pending and
    /// deliverable, or active).
    pub fn needs_flush(&self, cpu: usize) -> bool {
        if self.gicd_ctlr & (CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1) == 0 && !self.maybe_active {
            return false;
        }
        cpu < self.nr_vcpus && self.each_of(cpu).any(|(_, irq)| irq.active || self.deliverable(irq))
    }

    /// Sets the line of level-sensitive SPI `intid` (a device model's
    /// interrupt output). Returns the vcpu it targets.
    pub fn set_level(&mut self, intid: usize, level: bool) -> Option<usize> {
        let irq = self.spis.get_mut(intid.checked_sub(NR_PRIVATE)?)?;
        irq.level = level;
        irq.pending = level || (irq.edge && irq.pending);
        let irq = *irq;
        Some(self.spi_target(&irq))
    }

    /// Sets the line of level-sensitive private interrupt `intid` of vcpu
    /// `cpu` (a per-vcpu device model's output: the EL1 physical timer):
    /// pending while it is high, not once it drops (unless edge-triggered
    /// and already pending). Returns whether the pending state changed.
    pub fn set_private_level(&mut self, cpu: usize, intid: usize, level: bool) -> bool {
        if cpu >= self.nr_vcpus || intid < NR_SGIS as usize {
            return false;
        }
        let Some(irq) = self.private[cpu].get_mut(intid) else { return false };
        let was = irq.pending;
        irq.level = level;
        irq.pending = level || (irq.edge && irq.pending);
        irq.pending != was
    }

    /// Drives the line of level-sensitive private interrupt `intid` of vcpu
    /// `cpu` (the PMU's overflow output, tied to the physical PPI of the
    /// same number): pending while high, not pending once it drops (an
    /// active one stays active). Returns whether it became pending.
    pub fn set_tied_private_level(&mut self, cpu: usize, intid: usize, level: bool) -> bool {
        if cpu >= self.nr_vcpus {
            return false;
        }
        let Some(irq) = self.private[cpu].get_mut(intid) else { return false };
        let rose = level && !irq.level;
        irq.level = level;
        let was = irq.pending;
        irq.pending = if irq.edge { irq.pending || rose } else { level };
        if irq.pending {
            irq.hw = true;
        }
        irq.pending && !was
    }

    /// Makes private interrupt `intid` of vcpu `cpu` pending; `hw` ties it
    /// to the physical PPI of the same number (the virtual timer).
    pub fn inject_private(&mut self, cpu: usize, intid: usize, hw: bool) {
        if cpu >= self.nr_vcpus {
            return;
        }
        if let Some(irq) = self.private[cpu].get_mut(intid) {
            irq.pending = true;
            irq.hw = hw;
        }
    }

    /// EOIs of interrupts that no list register held (EOIcount), so far.
    pub fn eoicount_total(&self) -> u64 {
        self.eoicount_total
    }

    /// Whether vcpu `cpu`'s interrupt `intid` is pending or active: for a
    /// tied one, whether the physical interrupt must stay active while the
    /// vcpu is loaded.
    pub fn in_flight(&self, cpu: usize, intid: usize) -> bool {
        self.irq(cpu, intid).is_some_and(|i| i.pending || i.active)
    }

    /// A guest's write of `value` to ICC_SGI1R_EL1 (`group1`) or
    /// ICC_SGI0R_EL1 from vcpu `from`: the SGI becomes pending on each
    /// target vcpu whose SGI is of that group. Returns the targets as a bit
    /// mask (vcpus are Aff0 = index, Aff1..3 = 0: other affinities and
    /// range selectors reach nobody).
    pub fn sgi(&mut self, from: usize, value: u64, group1: bool) -> u32 {
        const TARGETS: u64 = 0xffff;
        const INTID_SHIFT: u64 = 24;
        const AFF1_MASK: u64 = 0xff << 16;
        const AFF2_MASK: u64 = 0xff << 32;
        const IRM: u64 = 1 << 40;
        const RS_MASK: u64 = 0xf << 44;
        const AFF3_MASK: u64 = 0xff << 48;
        let intid = ((value >> INTID_SHIFT) & 0xf) as usize;
        let mask: u32 = if value & IRM != 0 {
            ((1u32 << self.nr_vcpus) - 1) & !(1 << from)
        } else if value & (AFF1_MASK | AFF2_MASK | AFF3_MASK | RS_MASK) != 0 {
            0
        } else {
            (value & TARGETS) as u32 & ((1u32 << self.nr_vcpus) - 1)
        };
        let mut hit = 0;
        for cpu in 0..self.nr_vcpus {
            let irq = &mut self.private[cpu][intid];
            if mask & (1 << cpu) != 0 && irq.group1 == group1 {
                irq.pending = true;
                hit |= 1 << cpu;
            }
        }
        hit
    }

    /// Fills vcpu `cpu`'s list registers in `shared` (at most `nr_lrs`):
    /// its active and deliverable pending interrupts, most urgent (lowest
    /// priority value) first, active before pending at equal priority.
    /// Urgency, not state, decides (as KVM's ap_list sort): a guest nested
    /// deeper than there are list registers must still see the pending
    /// interrupt that preempts its handlers; the least urgent active ones
    /// wait outside, ended by EOIcount. Returns what did not fit;
    /// `shared.hcr_flags` asks EL2 for UIE or EOIcount accordingly.
    pub fn flush(&mut self, cpu: usize, shared: &mut VcpuShared, nr_lrs: usize) -> Overflow {
        if cpu >= self.nr_vcpus {
            // No such vcpu: nothing to load (and no `loaded` slot to index,
            // fuzz/regressions/vgic/).
            (shared.nr_lrs, shared.hcr_flags, shared.eoicount) = (0, 0, 0);
            return Overflow::default();
        }
        let nr_lrs = nr_lrs.min(MAX_LRS);
        // Candidates: (priority, pending rather than active, INTID).
        let mut cand = [(0u8, false, 0u8); NR_INTIDS];
        let mut n = 0;
        for (intid, irq) in self.each_of(cpu) {
            if irq.active || self.deliverable(irq) {
                cand[n] = (irq.priority, !irq.active, intid as u8);
                n += 1;
            }
        }
        cand[..n].sort_unstable();
        let load = n.min(nr_lrs);
        let mut loaded = Loaded::default();
        for (slot, &(_, _, intid)) in cand[..load].iter().enumerate() {
            let irq = *self.irq(cpu, intid as usize).expect("candidate INTIDs exist");
            let mut state = 0;
            if irq.active {
                state |= lr::ACTIVE;
            }
            // A tied interrupt is never pending and active at once: the
            // physical one is not pending again until it was deactivated.
            if irq.pending && !(irq.hw && irq.active) {
                state |= lr::PENDING;
            }
            shared.lrs[slot] = if irq.hw {
                lr::make_hw(intid as u32, intid as u32, irq.priority, irq.group1, state)
            } else {
                lr::make(intid as u32, irq.priority, irq.group1, state)
            };
            loaded.intids[slot] = intid;
        }
        loaded.n = load;
        self.loaded[cpu] = loaded;
        shared.nr_lrs = load as u32;
        let over = cand[load..n].iter().fold(Overflow::default(), |mut o, c| {
            if c.1 {
                o.pending += 1;
            } else {
                o.active += 1;
            }
            o
        });
        shared.hcr_flags =
            if over.pending > 0 { hcr::UIE } else { 0 } | if over.active > 0 { hcr::REPORT_EOICOUNT } else { 0 };
        shared.eoicount = 0;
        over
    }

    /// Takes vcpu `cpu`'s list registers back from `shared` after a run:
    /// each loaded interrupt gets the state its list register ended in (a
    /// level-sensitive line stays pending while it is high), and
    /// `shared.eoicount` active interrupts that no list register held are
    /// deactivated, most urgent first.
    pub fn fold(&mut self, cpu: usize, shared: &mut VcpuShared) {
        if cpu >= self.nr_vcpus {
            return;
        }
        let loaded = self.loaded[cpu];
        for (slot, &intid) in loaded.intids[..loaded.n].iter().enumerate() {
            let v = shared.lrs[slot];
            self.maybe_active |= lr::state(v) & lr::ACTIVE != 0;
            if let Some(irq) = self.irq_mut(cpu, intid as usize) {
                let st = lr::state(v);
                irq.active = st & lr::ACTIVE != 0;
                irq.pending = st & lr::PENDING != 0 || (!irq.edge && irq.level);
                if !irq.pending && !irq.active {
                    irq.hw = false;
                }
            }
        }
        let mut eoi = shared.eoicount;
        self.eoicount_total += u64::from(eoi);
        while eoi > 0 {
            let held = |intid: usize| loaded.intids[..loaded.n].contains(&(intid as u8));
            let next = self
                .each_of(cpu)
                .filter(|(intid, irq)| irq.active && !held(*intid))
                .min_by_key(|(intid, irq)| (irq.priority, *intid))
                .map(|(intid, _)| intid);
            let Some(intid) = next else { break };
            if let Some(irq) = self.irq_mut(cpu, intid) {
                irq.active = false;
            }
            eoi -= 1;
        }
        self.loaded[cpu] = Loaded::default();
        shared.nr_lrs = 0;
        shared.hcr_flags = 0;
        shared.eoicount = 0;
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
    fn a_private_level_line_is_pending_while_high_and_tied_to_its_ppi() {
        let mut g = enabled_gic(1, &[23], |_| 0x80);
        assert!(g.set_tied_private_level(0, 23, true), "rising: pending");
        assert!(!g.set_tied_private_level(0, 23, true), "still high: nothing new");
        let mut sh = VcpuShared::default();
        g.flush(0, &mut sh, 4);
        assert_eq!(sh.lrs[0], lr::make_hw(23, 23, 0x80, true, lr::PENDING), "tied to the physical PPI");
        // Acknowledged (active), the guest clears its overflow: the line drops.
        sh.lrs[0] = lr::make_hw(23, 23, 0x80, true, lr::ACTIVE);
        g.fold(0, &mut sh);
        assert!(!g.set_tied_private_level(0, 23, false));
        assert!(g.in_flight(0, 23), "still active until its EOI");
        sh.lrs[0] = 0;
        g.flush(0, &mut sh, 4);
        sh.lrs[0] = 0;
        g.fold(0, &mut sh);
        assert!(!g.in_flight(0, 23), "EOI'd with the line low: done");
        // A pending one whose line drops before it is taken is no longer pending.
        g.set_tied_private_level(0, 23, true);
        g.set_tied_private_level(0, 23, false);
        assert!(!g.in_flight(0, 23));
        assert!(!g.set_tied_private_level(1, 23, true), "no such vcpu");
    }

    #[test]
    fn identification_is_a_gicv3_with_64_intids_and_one_security_state() {
        let g = Vgic::new(1);
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
    fn a_private_level_line_is_pending_while_high_and_survives_its_ack() {
        let mut g = Vgic::new(2);
        g.write_dist(0, 4, (CTLR_DS | CTLR_ARE | CTLR_ENABLE_GRP1) as u64).unwrap();
        g.write_redist(SGI_BASE + 0x80, 4, u32::MAX as u64).unwrap();
        g.write_redist(SGI_BASE + 0x100, 4, 1 << 30).unwrap();
        assert!(g.set_private_level(0, 30, true));
        assert!(!g.set_private_level(0, 30, true), "no change");
        assert!(g.has_work(0) && !g.has_work(1), "vcpu 0's own");
        // Taken (active) with the line still high: pending again after it.
        let mut sh = VcpuShared::default();
        g.flush(0, &mut sh, 4);
        assert_eq!(lr::vintid(sh.lrs[0]), 30);
        sh.lrs[0] = lr::make(30, 0, true, lr::ACTIVE);
        g.fold(0, &mut sh);
        assert!(g.in_flight(0, 30) && g.has_work(0), "level still high: pending");
        // The guest masks its timer: the line drops, nothing pending.
        assert!(g.set_private_level(0, 30, false));
        assert!(!g.has_work(0));
        assert!(!g.set_private_level(0, 3, true), "SGIs have no line");
    }

    #[test]
    fn the_redistributor_wakes_up() {
        let mut g = Vgic::new(1);
        assert_ne!(g.read_redist(0x14, 4).unwrap() as u32 & WAKER_CHILDREN_ASLEEP, 0);
        g.write_redist(0x14, 4, 0).unwrap();
        assert_eq!(g.read_redist(0x14, 4).unwrap(), 0, "ChildrenAsleep follows ProcessorSleep");
    }

    #[test]
    fn enables_are_set_and_clear_registers() {
        let mut g = Vgic::new(1);
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
        let mut g = Vgic::new(1);
        g.write_dist(0x400 + 33, 1, 0xa0).unwrap();
        assert_eq!(g.priority(33), Some(0xa0));
        assert_eq!(g.read_dist(0x420, 4).unwrap(), 0xa0 << 8);
        g.write_redist(SGI_BASE + 0x418, 4, 0x1020_3040).unwrap();
        assert_eq!((g.priority(24), g.priority(27)), (Some(0x40), Some(0x10)));
        assert_eq!(g.read_redist(SGI_BASE + 0x41b, 1).unwrap(), 0x10);
    }

    #[test]
    fn configuration_group_and_route() {
        let mut g = Vgic::new(1);
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
        let mut g = Vgic::new(1);
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
    /// A GIC with both groups on and `intids` enabled as group 1 at
    /// priority `prio(intid)` for vcpu `cpu`.
    fn enabled_gic(nr_vcpus: usize, intids: &[usize], prio: impl Fn(usize) -> u8) -> Vgic {
        let mut g = Vgic::new(nr_vcpus);
        g.write_dist(0, 4, (CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1) as u64).unwrap();
        for cpu in 0..nr_vcpus {
            let base = cpu as u64 * GICR_SIZE + SGI_BASE;
            g.write_redist(base + 0x80, 4, u32::MAX as u64).unwrap();
            for &i in intids.iter().filter(|i| **i < 32) {
                g.write_redist(base + 0x100, 4, 1 << i).unwrap();
                g.write_redist(base + 0x400 + i as u64, 1, prio(i) as u64).unwrap();
            }
        }
        g.write_dist(0x84, 4, u32::MAX as u64).unwrap();
        for &i in intids.iter().filter(|i| **i >= 32) {
            g.write_dist(0x100 + 4 * (i as u64 / 32), 4, 1 << (i % 32)).unwrap();
            g.write_dist(0x400 + i as u64, 1, prio(i) as u64).unwrap();
        }
        g
    }

    #[test]
    fn each_vcpu_has_its_redistributor_with_affinity_and_last() {
        let mut g = Vgic::new(3);
        assert_eq!(g.redist_size(), 3 * GICR_SIZE);
        for cpu in 0..3u64 {
            let typer = g.read_redist(cpu * GICR_SIZE + 8, 8).unwrap();
            assert_eq!(typer >> 32, cpu, "Aff0");
            assert_eq!(typer >> 8 & 0xffff, cpu, "processor number");
            assert_eq!(typer & GICR_TYPER_LAST != 0, cpu == 2, "Last only on the last");
        }
        g.write_redist(GICR_SIZE + SGI_BASE + 0x100, 4, 1 << 27).unwrap();
        assert!(!g.enabled(27), "vcpu 0's PPI is its own");
        assert_eq!(g.read_redist(GICR_SIZE + SGI_BASE + 0x100, 4).unwrap(), 1 << 27);
        assert_eq!(g.read_redist(3 * GICR_SIZE + 8, 8).unwrap(), 0, "past the last vcpu: RAZ");
    }

    #[test]
    fn pending_interrupts_go_to_list_registers_by_priority_and_come_back() {
        let mut g = enabled_gic(1, &[27, 33, 40], |i| if i == 40 { 0x10 } else { 0xa0 });
        let mut sh = VcpuShared::default();
        assert!(!g.needs_flush(0));
        g.inject_private(0, 27, true);
        g.set_level(40, true);
        assert!(g.has_work(0) && g.needs_flush(0));
        assert_eq!(g.flush(0, &mut sh, 4), Overflow::default());
        assert_eq!(sh.nr_lrs, 2);
        assert_eq!(sh.lrs[0], lr::make(40, 0x10, true, lr::PENDING), "most urgent first");
        assert_eq!(sh.lrs[1], lr::make_hw(27, 27, 0xa0, true, lr::PENDING), "the timer tied to its PPI");
        // The guest acknowledged 40 and completed the timer's interrupt.
        sh.lrs[0] = lr::make(40, 0x10, true, lr::ACTIVE);
        sh.lrs[1] = 0;
        g.fold(0, &mut sh);
        assert!(!g.in_flight(0, 27), "EOI of the tied interrupt ends it");
        assert!(g.in_flight(0, 40));
        assert_eq!(sh.nr_lrs, 0);
        // The line is still high: active and pending again.
        g.flush(0, &mut sh, 4);
        assert_eq!(sh.lrs[0], lr::make(40, 0x10, true, lr::ACTIVE | lr::PENDING));
        sh.lrs[0] = 0;
        g.set_level(40, false);
        g.fold(0, &mut sh);
        assert!(!g.needs_flush(0), "line low and EOIed: nothing left");
    }

    #[test]
    fn disabled_interrupts_and_groups_wait() {
        let mut g = enabled_gic(1, &[33], |_| 0);
        g.write_dist(0x180 + 4, 4, 1 << 1).unwrap(); // disable 33
        g.set_level(33, true);
        assert!(!g.has_work(0));
        let mut sh = VcpuShared::default();
        g.flush(0, &mut sh, 4);
        assert_eq!(sh.nr_lrs, 0);
        g.write_dist(0x100 + 4, 4, 1 << 1).unwrap();
        assert!(g.has_work(0));
        g.write_dist(0, 4, 0).unwrap(); // both groups off
        assert!(!g.has_work(0), "group 1 disabled in GICD_CTLR");
    }

    #[test]
    fn more_pending_than_list_registers_asks_for_underflow() {
        let sgis: Vec<usize> = (0..8).collect();
        let mut g = enabled_gic(1, &sgis, |i| i as u8 * 8);
        for i in 0..8 {
            g.inject_private(0, i, false);
        }
        let mut sh = VcpuShared::default();
        let over = g.flush(0, &mut sh, 4);
        assert_eq!(over, Overflow { pending: 4, active: 0 });
        assert_eq!(sh.hcr_flags, hcr::UIE);
        let loaded: Vec<u32> = sh.lrs[..4].iter().map(|v| lr::vintid(*v)).collect();
        assert_eq!(loaded, [0, 1, 2, 3]);
        // All four taken and completed; the underflow exit refills.
        sh.lrs[..4].fill(0);
        g.fold(0, &mut sh);
        assert_eq!(g.flush(0, &mut sh, 4), Overflow::default());
        let loaded: Vec<u32> = sh.lrs[..4].iter().map(|v| lr::vintid(*v)).collect();
        assert_eq!(loaded, [4, 5, 6, 7]);
        assert_eq!(sh.hcr_flags, 0);
    }

    #[test]
    fn active_interrupts_that_did_not_fit_end_by_eoicount() {
        let mut g = enabled_gic(1, &[1, 2, 3], |i| 0x40 - i as u8 * 0x10);
        for i in [1, 2, 3] {
            g.write_redist(SGI_BASE + 0x300, 4, 1 << i).unwrap(); // ISACTIVER
        }
        let mut sh = VcpuShared::default();
        let over = g.flush(0, &mut sh, 2);
        assert_eq!(over, Overflow { pending: 0, active: 1 });
        assert_eq!(sh.hcr_flags, hcr::REPORT_EOICOUNT);
        // Loaded: 3 (prio 0x10) and 2 (0x20); 1 (0x30) did not fit.
        assert_eq!([lr::vintid(sh.lrs[0]), lr::vintid(sh.lrs[1])], [3, 2]);
        // The guest EOIed all three: two LRs emptied, one EOIcount.
        sh.lrs[..2].fill(0);
        sh.eoicount = 1;
        g.fold(0, &mut sh);
        assert!(!g.in_flight(0, 1) && !g.in_flight(0, 2) && !g.in_flight(0, 3));
        // Without the count, the one that did not fit would stay active.
        for i in [1, 2, 3] {
            g.write_redist(SGI_BASE + 0x300, 4, 1 << i).unwrap();
        }
        g.flush(0, &mut sh, 2);
        sh.lrs[..2].fill(0);
        g.fold(0, &mut sh);
        assert!(g.in_flight(0, 1), "no EOIcount: still active");
    }

    /// A guest nested as deep as there are list registers: its handlers'
    /// interrupts are all active when a more urgent one becomes pending.
    /// That one must get a list register (the least urgent active one
    /// waits outside), or the guest can never take it.
    #[test]
    fn a_more_urgent_pending_interrupt_displaces_the_least_urgent_active() {
        let mut g = enabled_gic(1, &[0, 1, 2, 3], |i| 0xf0 - i as u8 * 0x10);
        for i in [0, 1] {
            g.write_redist(SGI_BASE + 0x300, 4, 1 << i).unwrap(); // ISACTIVER
        }
        g.sgi(0, 2 << 24 | 1, true);
        let mut sh = VcpuShared::default();
        let over = g.flush(0, &mut sh, 2);
        assert_eq!([lr::vintid(sh.lrs[0]), lr::vintid(sh.lrs[1])], [2, 1], "most urgent first");
        assert_eq!(lr::state(sh.lrs[0]), lr::PENDING);
        assert_eq!(over, Overflow { pending: 0, active: 1 });
        assert_eq!(sh.hcr_flags, hcr::REPORT_EOICOUNT);
        // At equal priority, the active one goes first.
        let mut g = enabled_gic(1, &[4, 5], |_| 0x80);
        g.write_redist(SGI_BASE + 0x300, 4, 1 << 5).unwrap();
        g.sgi(0, 4 << 24 | 1, true);
        let over = g.flush(0, &mut sh, 1);
        assert_eq!((lr::vintid(sh.lrs[0]), over), (5, Overflow { pending: 1, active: 0 }));
    }

    #[test]
    fn sgis_reach_their_targets_in_the_same_vm() {
        let mut g = enabled_gic(4, &[5], |_| 0);
        assert_eq!(g.sgi(0, 5 << 24 | 0b0110, true), 0b0110);
        assert!(!g.has_work(0) && g.has_work(1) && g.has_work(2) && !g.has_work(3));
        assert_eq!(g.sgi(2, 5 << 24 | 1 << 40, true), 0b1011, "IRM: all but the sender");
        assert_eq!(g.sgi(0, 5 << 24 | 1 << 16 | 1, true), 0, "Aff1 = 1: nobody");
        assert_eq!(g.sgi(0, 5 << 24 | 1 << 44 | 1, true), 0, "RS = 1: vcpus 16.., nobody");
        assert_eq!(g.sgi(0, 5 << 24 | 1 << 7, true), 0, "vcpu 7 does not exist");
        assert_eq!(g.sgi(0, 5 << 24 | 1, false), 0, "group 0 SGI to a group 1 interrupt");
        let mut sh = VcpuShared::default();
        g.flush(1, &mut sh, 4);
        assert_eq!(sh.lrs[0], lr::make(5, 0, true, lr::PENDING));
    }

    #[test]
    fn spis_follow_their_route() {
        let mut g = enabled_gic(2, &[33], |_| 0);
        g.write_dist(0x6000 + 8 * 33, 8, 1).unwrap();
        assert_eq!(g.set_level(33, true), Some(1));
        assert!(g.has_work(1) && !g.has_work(0));
        g.write_dist(0x6000 + 8 * 33, 8, 1 << 31).unwrap();
        assert!(g.has_work(0), "IRM: vcpu 0");
        assert_eq!(g.set_level(5, true), None, "not an SPI");
    }

    /// Found by the `vgic` fuzz target: `flush` for a vcpu index past
    /// MAX_VCPUS indexed its bookkeeping out of bounds (a host panic).
    #[test]
    fn flush_for_a_vcpu_that_does_not_exist_loads_nothing() {
        let mut g = Vgic::new(MAX_VCPUS);
        g.write_dist(0x0000, 4, u64::from(CTLR_ENABLE_GRP0)).unwrap();
        let mut sh = VcpuShared { nr_lrs: 3, hcr_flags: hcr::UIE, eoicount: 2, ..VcpuShared::default() };
        for cpu in [MAX_VCPUS, MAX_VCPUS + 1, usize::MAX] {
            assert_eq!(g.flush(cpu, &mut sh, MAX_LRS), Overflow::default());
            assert_eq!((sh.nr_lrs, sh.hcr_flags, sh.eoicount), (0, 0, 0));
            g.fold(cpu, &mut sh);
        }
    }
}
