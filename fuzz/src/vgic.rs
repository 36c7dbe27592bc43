//! `vgic`: the host's GICv3 distributor/redistributor model.
//!
//! A program of guest register accesses (any offset and size, biased to
//! the implemented registers), device lines, private injections, SGIs,
//! list-register flushes and folds with whatever state the hardware left
//! in the list registers. Properties: accesses of a size or alignment the
//! frame does not take are refused, others answer; a priority byte written
//! reads back (through the byte and the word), an enable bit set reads back
//! set; `flush` loads at most the list registers it was given, each INTID
//! once, active ones before pending ones and pending ones by priority, only
//! interrupts that are active or deliverable, accounts for every candidate
//! it left out (and asks for UIE / EOIcount exactly then), and finds work
//! only when `needs_flush` said so; `has_work` implies `needs_flush`; an
//! SGI reaches only existing vcpus. The GICv2 front end (`vgic/v2.rs`,
//! accesses by any vcpu number) answers the same way: bad sizes refused,
//! word accesses taken, a GICD_SGIR write reaching only existing vcpus.

use crate::Input;
use spevisor_abi::guest::machine::{GICR_SIZE, MAX_VCPUS};
use spevisor_abi::vgic::{hcr, lr, VcpuShared, MAX_LRS};
use spevisor_host::vgic::{Vgic, GICD_SIZE, NR_INTIDS};

const MAX_OPS: usize = 128;
/// The SGI frame of a redistributor, and its register block's offsets.
const SGI_BASE: u64 = 0x1_0000;
const ISENABLER: u64 = 0x100;
const IPRIORITYR: u64 = 0x400;
/// First SPI.
const SPI_FIRST: usize = 32;

fn offset(i: &mut Input, frame: u64) -> u64 {
    match i.u8() % 4 {
        // The register blocks, word-aligned.
        0 => u64::from(i.u16() % 0x1000) & !3,
        1 => SGI_BASE + (u64::from(i.u16() % 0x1000) & !3),
        2 => 0x6000 + u64::from(i.u16() % 0x400),
        _ => u64::from(i.u32()) % (frame + 0x100),
    }
}

fn size(i: &mut Input) -> u8 {
    [4, 4, 1, 8, 2, 3, 16, 0][usize::from(i.u8() % 8)]
}

fn size_ok(off: u64, size: u8) -> bool {
    matches!(size, 1 | 4 | 8) && off.is_multiple_of(u64::from(size))
}

fn check_flush(g: &mut Vgic, cpu: usize, nr_lrs: usize, nr_vcpus: usize) -> VcpuShared {
    let needs = g.needs_flush(cpu);
    let work = g.has_work(cpu);
    assert!(!work || needs, "has_work without needs_flush");
    let mut s = VcpuShared::default();
    let over = g.flush(cpu, &mut s, nr_lrs);
    let n = s.nr_lrs as usize;
    assert!(n <= nr_lrs.min(MAX_LRS), "{n} list registers loaded, {nr_lrs} given");
    assert!(n == 0 || needs, "flush loaded interrupts needs_flush did not see");
    assert!(n > 0 || over.pending + over.active == 0 || nr_lrs == 0, "left out candidates with room");
    assert!(cpu < nr_vcpus || n == 0, "flush for a vcpu that does not exist");
    let mut seen = [false; NR_INTIDS];
    let mut last: Option<(bool, u8)> = None;
    for &v in &s.lrs[..n] {
        let intid = lr::vintid(v) as usize;
        assert!(intid < NR_INTIDS, "INTID {intid}");
        assert!(!seen[intid], "INTID {intid} loaded twice");
        seen[intid] = true;
        let st = lr::state(v);
        assert!(st != 0, "an empty list register for INTID {intid}");
        let active = st & lr::ACTIVE != 0;
        let prio = ((v & lr::PRIORITY_MASK) >> lr::PRIORITY_SHIFT) as u8;
        if let Some((last_active, last_prio)) = last {
            // Most urgent first; at equal priority, active before pending.
            assert!(last_prio <= prio, "priority order");
            assert!(
                last_prio < prio || last_active || !active,
                "a pending interrupt before an active one of its priority"
            );
        }
        last = Some((active, prio));
        assert!(g.priority(intid).is_some());
        if v & lr::HW != 0 {
            let p = (v & lr::PINTID_MASK) >> lr::PINTID_SHIFT;
            assert_eq!(p as usize, intid, "a tied interrupt is tied to its own number");
        }
    }
    let want = if over.pending > 0 { hcr::UIE } else { 0 } | if over.active > 0 { hcr::REPORT_EOICOUNT } else { 0 };
    assert_eq!(s.hcr_flags, want, "UIE/EOIcount requests do not match what was left out");
    s
}

pub fn run(data: &[u8]) {
    let mut i = Input::new(data);
    let nr_vcpus = usize::from(i.u8()) % MAX_VCPUS as usize + 1;
    let mut g = Vgic::new(nr_vcpus);
    let redist = g.redist_size();
    assert_eq!(redist, nr_vcpus as u64 * GICR_SIZE);
    let mut loaded: Option<(usize, VcpuShared)> = None;
    for _ in 0..MAX_OPS {
        if i.is_empty() {
            break;
        }
        match i.u8() % 11 {
            0 | 1 => {
                let (off, size, v) = (offset(&mut i, GICD_SIZE), size(&mut i), i.u64());
                let w = g.write_dist(off, size, v);
                if !size_ok(off, size) {
                    assert!(w.is_err() && g.read_dist(off, size).is_err(), "bad access {size}@{off:#x} taken");
                }
                let r = g.read_dist(off, size);
                if size_ok(off, size) && size == 4 {
                    assert!(r.is_ok() && w.is_ok(), "a word access at {off:#x} refused");
                }
                if w.is_ok() && size == 1 && (IPRIORITYR..IPRIORITYR + NR_INTIDS as u64).contains(&off) {
                    let n = (off - IPRIORITYR) as usize;
                    if n >= SPI_FIRST {
                        assert_eq!(r, Ok(v & 0xff), "priority byte of INTID {n}");
                        let word = g.read_dist(off & !3, 4).unwrap();
                        assert_eq!(word >> (8 * (off & 3)) & 0xff, v & 0xff, "priority in the word");
                        assert_eq!(g.priority(n), Some(v as u8));
                    }
                }
                if w.is_ok() && size == 4 && (ISENABLER + 4..ISENABLER + NR_INTIDS as u64 / 8).contains(&off) {
                    let now = g.read_dist(off, 4).unwrap();
                    assert_eq!(now & (v & 0xffff_ffff), v & 0xffff_ffff, "ISENABLER bits set read back");
                }
            }
            2 | 3 => {
                let (off, size, v) = (offset(&mut i, redist), size(&mut i), i.u64());
                let w = g.write_redist(off, size, v);
                let r = g.read_redist(off, size);
                if !size_ok(off, size) {
                    assert!(w.is_err() && r.is_err(), "bad access {size}@{off:#x} taken");
                } else if size == 4 {
                    assert!(w.is_ok() && r.is_ok(), "a word access at {off:#x} refused");
                }
            }
            4 => {
                let intid = usize::from(i.u8()) % (NR_INTIDS + 8);
                let t = g.set_level(intid, i.bool());
                assert_eq!(t.is_some(), (SPI_FIRST..NR_INTIDS).contains(&intid));
                assert!(t.is_none_or(|c| c < nr_vcpus), "SPI routed to a vcpu that does not exist");
            }
            5 => {
                let cpu = usize::from(i.u8()) % (nr_vcpus + 1);
                g.inject_private(cpu, usize::from(i.u8()) % 40, i.bool());
            }
            6 => {
                let from = usize::from(i.u8()) % nr_vcpus;
                let hit = g.sgi(from, i.u64(), i.bool());
                assert_eq!(hit >> nr_vcpus, 0, "an SGI reached a vcpu that does not exist");
            }
            7 => {
                let cpu = usize::from(i.u8()) % (nr_vcpus + 1);
                let nr_lrs = usize::from(i.u8()) % (MAX_LRS + 2);
                if let Some((c, mut s)) = loaded.take() {
                    g.fold(c, &mut s);
                }
                loaded = Some((cpu, check_flush(&mut g, cpu, nr_lrs, nr_vcpus)));
            }
            10 => {
                // The GICv2 distributor, by any vcpu (one that does not
                // exist reads 0 and changes nothing).
                let cpu = usize::from(i.u8()) % (nr_vcpus + 1);
                let (off, size, v) = (offset(&mut i, GICD_SIZE), size(&mut i), i.u64());
                let w = g.write_dist_v2(cpu, off, size, v);
                let r = g.read_dist_v2(cpu, off, size);
                if !size_ok(off, size) {
                    assert!(w.is_err() && r.is_err(), "v2: bad access {size}@{off:#x} taken");
                } else if size == 4 {
                    assert!(w.is_ok() && r.is_ok(), "v2: a word access at {off:#x} refused");
                }
                if let Ok(hit) = w {
                    assert_eq!(hit >> nr_vcpus, 0, "a GICD_SGIR write reached a vcpu that does not exist");
                }
            }
            _ => {
                // The run ends: the hardware left any state in the list
                // registers, and an EOIcount.
                if let Some((cpu, mut s)) = loaded.take() {
                    for v in s.lrs[..s.nr_lrs as usize].iter_mut() {
                        *v = (*v & !lr::STATE_MASK) | u64::from(i.u8() & 3) << lr::STATE_SHIFT;
                    }
                    s.eoicount = u32::from(i.u8() % 40);
                    g.fold(cpu, &mut s);
                    if cpu < nr_vcpus {
                        assert_eq!((s.nr_lrs, s.hcr_flags, s.eoicount), (0, 0, 0), "fold leaves the page clean");
                    }
                }
            }
        }
    }
}
