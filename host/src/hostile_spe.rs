//! A hostile host against the SPE model's shared area
//! (`spevisor.scenario=spe-abuse`, booted with `spevisor.spe=off` so the
//! scenario's model is the only one attached).
//!
//! The scenario attaches a model of its own (`SPE_MODEL_ATTACH`) with its
//! buffers between guard pages, after attaches EL2 must refuse (buffers
//! over the area, unaligned, EL2's, outside RAM, empty), then runs VMs
//! while it rewrites every byte of the area with hostile values: after
//! every VCPU_RUN (the next world switch reads it) and from the host's
//! timer interrupt (the slice end that preempts a guest). The patterns:
//! all ones, pseudo-random bytes (pending lengths, pointers, counts and
//! statistics at once), a sane state with records pending (EL2 drains them
//! into the buffer), and sane states whose pointer, limit or intended
//! buffer aim at the guard page, EL2's image, the area itself, a
//! misaligned or a wrapping address. EL2 runs with interrupts masked on
//! one CPU, so the host cannot write while EL2 reads; the snapshot rule
//! that makes that safe on more CPUs is tested in `hyp/src/spe.rs`.
//!
//! The `spe-abuse:` line reports what must hold: the guard pages intact,
//! records written into the buffer (the path ran), repairs counted by EL2
//! (`HYP_INFO` `SpeModelRepairs`), the buffer refused to VMs, every VM
//! finished, and EL2's and the host's free pages back after the detach.

use crate::hyp;
use crate::scenarios::{self, mode};
use crate::vmm::{alloc_host_pages, free_host_pages, host_free_pages, run_all, Ending};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use spevisor_abi::{Call, InfoItem};
use spevisor_pgtable::PAGE_SIZE;
use spevisor_spe::model::{ModelReg, OpKind, Sample, Units};
use spevisor_spe::regs::{field_mask, PMBLIMITR_EL1, PMSCR_EL1};

/// What the host writes into every page it lays out, and checks after.
const CANARY: u8 = 0xc5;
/// Pages of the SPE and trace buffers.
const SPE_BUF_PAGES: usize = 2;
const TRBE_BUF_PAGES: usize = 1;
/// VMs run (one after the other) and the HOST_PINGs each makes: every
/// ping is a VCPU_RUN, so a world switch that reads the area.
const ROUNDS: u64 = 16;
const PINGS: u64 = 40;
/// Records the sane pattern leaves pending for EL2's drain.
const RECORDS: usize = 4;
/// Hostile patterns, applied in turn.
const PATTERNS: u64 = 8;
/// A physical address beyond any RAM QEMU's virt machine has.
const PA_OUTSIDE_RAM: u64 = 0x10_0000_0000;
/// An IPA for the donation abuse, beyond the guest's RAM.
const IPA_SPARE: u64 = spevisor_abi::guest::machine::RAM_IPA + 0x1000_0000;

/// Set while the scenario runs: the hooks rewrite the area.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The area (`Units`), the SPE buffer and the page after it, and the
/// trace buffer.
static AREA: AtomicU64 = AtomicU64::new(0);
static SPE_BUF: AtomicU64 = AtomicU64::new(0);
static TRBE_BUF: AtomicU64 = AtomicU64::new(0);
/// Rewrites done, and the pseudo-random state.
static REWRITES: AtomicUsize = AtomicUsize::new(0);
static SEED: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);

/// After every VCPU_RUN (`profiler::poll`, only while the scenario runs).
pub fn between_runs() {
    if ACTIVE.load(Relaxed) {
        rewrite();
    }
}

/// From the host's timer interrupt (`irq.rs`).
#[inline]
pub fn on_host_timer() {
    if ACTIVE.load(Relaxed) {
        rewrite();
    }
}

fn next_random() -> u64 {
    let mut x = SEED.load(Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    SEED.store(x, Relaxed);
    x
}

/// Rewrites the whole area with the next hostile pattern, IRQs masked (a
/// timer interrupt's rewrite never lands inside this one's).
#[cold]
fn rewrite() {
    let daif = crate::arch::mask_irqs();
    rewrite_masked();
    crate::arch::restore_irqs(daif);
}

fn rewrite_masked() {
    let n = REWRITES.fetch_add(1, Relaxed) as u64;
    let area = AREA.load(Relaxed) as *mut Units;
    let buf = SPE_BUF.load(Relaxed);
    let guard = buf + SPE_BUF_PAGES as u64 * PAGE_SIZE;
    let bytes = core::mem::size_of::<Units>();
    let enabled = |limit: u64| limit & field_mask(PMBLIMITR_EL1::LIMIT) | field_mask(PMBLIMITR_EL1::E);
    // SAFETY: the area this scenario allocated and attached: host memory,
    // identity mapped RW; EL2 is not running (one CPU), and every bit
    // pattern is a valid `Units` (plain integers and bytes).
    unsafe {
        match n % PATTERNS {
            0 => core::ptr::write_bytes(area as *mut u8, 0xff, bytes),
            1 => {
                let words = area as *mut u64;
                for i in 0..bytes / 8 {
                    words.add(i).write_volatile(next_random());
                }
            }
            p => {
                // A sane unit with records pending, then (patterns 3..) one
                // thing aimed where EL2 must not write.
                area.write(Units::new());
                let m = &mut (*area).spe;
                m.set_intended_buffer(buf, buf, SPE_BUF_PAGES as u64 * PAGE_SIZE);
                m.write(ModelReg::PmbptrEl1, buf);
                m.write(ModelReg::PmblimitrEl1, enabled(guard));
                m.write(ModelReg::PmscrEl1, field_mask(PMSCR_EL1::E1SPE));
                let s = Sample {
                    pc: n,
                    el: 1,
                    ns: true,
                    timestamp: n,
                    op: OpKind::Other,
                    events: 0,
                    total_latency: 1,
                    issue_latency: 1,
                    context: None,
                };
                for _ in 0..RECORDS {
                    m.sample(&s);
                }
                let image = scenarios::GUEST_IMAGE.as_ptr() as u64 & !(PAGE_SIZE - 1);
                let (ptr, limit, intended) = match p {
                    2 => (buf, guard, buf),
                    3 => (guard, guard + 16 * PAGE_SIZE, guard),
                    4 => (buf + 1, guard, buf),
                    5 => (u64::MAX - 63, u64::MAX, u64::MAX - 63),
                    6 => (area as u64, area as u64 + 4 * PAGE_SIZE, area as u64),
                    _ => (image, image + PAGE_SIZE, image),
                };
                m.write(ModelReg::PmbptrEl1, ptr);
                m.write(ModelReg::PmblimitrEl1, enabled(limit));
                m.set_intended_buffer(intended, intended, 16 * PAGE_SIZE);
                if p == 2 {
                    m.set_intended_buffer(buf, buf, SPE_BUF_PAGES as u64 * PAGE_SIZE);
                }
            }
        }
    }
}

fn fill(pa: u64, pages: usize) {
    // SAFETY: pages this scenario allocated, identity mapped RW.
    unsafe { core::ptr::write_bytes(pa as *mut u8, CANARY, pages * PAGE_SIZE as usize) };
}

fn intact(pa: u64, pages: usize) -> bool {
    // SAFETY: as in `fill`, read only.
    let s = unsafe { core::slice::from_raw_parts(pa as *const u8, pages * PAGE_SIZE as usize) };
    s.iter().all(|b| *b == CANARY)
}

fn changed_bytes(pa: u64, pages: usize) -> usize {
    // SAFETY: as in `fill`, read only.
    let s = unsafe { core::slice::from_raw_parts(pa as *const u8, pages * PAGE_SIZE as usize) };
    s.iter().filter(|b| **b != CANARY).count()
}

/// Attaches with the area's intended buffers set to `spe` (PA, size):
/// prints `refusal NAME: STATUS`, or ACCEPTED.
fn refuse_buffer(what: &str, area: u64, bytes: u64, spe: (u64, u64)) -> bool {
    // SAFETY: the scenario's area (see `rewrite`).
    unsafe {
        let u = area as *mut Units;
        u.write(Units::new());
        (*u).spe.set_intended_buffer(spe.0, spe.0, spe.1);
    }
    match hyp::call(Call::SpeModelAttach, [area, bytes, 0, 0, 0, 0, 0]) {
        Ok(_) => {
            crate::hprintln!("refusal {what}: ACCEPTED");
            let _ = hyp::call(Call::SpeModelAttach, [0; 7]);
            false
        }
        Err(e) => {
            crate::hprintln!("refusal {what}: {e}");
            true
        }
    }
}

/// Runs the scenario; see the module documentation.
pub fn run() {
    let hyp_free = || hyp::info(InfoItem::HypFreePages).unwrap_or(0);
    let before = (hyp_free(), host_free_pages());
    let bytes = core::mem::size_of::<Units>() as u64;
    let area_pages = bytes.div_ceil(PAGE_SIZE) as usize;
    // Guard, area, guard, SPE buffer, guard, trace buffer, guard.
    let total = 4 + area_pages + SPE_BUF_PAGES + TRBE_BUF_PAGES;
    let Some(base) = alloc_host_pages(total) else {
        return log::error!("spe-abuse: no host pages");
    };
    fill(base, total);
    let page = |i: usize| base + i as u64 * PAGE_SIZE;
    let area = page(1);
    let g1 = 1 + area_pages;
    let spe_buf = page(g1 + 1);
    let g2 = g1 + 1 + SPE_BUF_PAGES;
    let trbe_buf = page(g2 + 1);
    let g3 = g2 + 1 + TRBE_BUF_PAGES;
    let guards = [0, g1, g2, g3];
    let spe_size = SPE_BUF_PAGES as u64 * PAGE_SIZE;
    let image = scenarios::GUEST_IMAGE.as_ptr() as u64 & !(PAGE_SIZE - 1);

    // Buffers EL2 must not take.
    let mut refused = 0;
    refused += u32::from(refuse_buffer("spe-buffer-over-the-area", area, bytes, (area, spe_size)));
    refused += u32::from(refuse_buffer("spe-buffer-unaligned", area, bytes, (spe_buf + 8, spe_size)));
    refused += u32::from(refuse_buffer("spe-buffer-hyp-image", area, bytes, (image, spe_size)));
    refused += u32::from(refuse_buffer("spe-buffer-outside-ram", area, bytes, (PA_OUTSIDE_RAM, spe_size)));
    refused += u32::from(refuse_buffer("spe-buffer-empty", area, bytes, (spe_buf, 0)));
    refused += u32::from(refuse_buffer("spe-buffer-wrapping", area, bytes, (!(PAGE_SIZE - 1), 2 * PAGE_SIZE)));

    // The real attach: both buffers declared.
    // SAFETY: the scenario's area (see `rewrite`).
    unsafe {
        let u = area as *mut Units;
        u.write(Units::new());
        (*u).spe.set_intended_buffer(spe_buf, spe_buf, spe_size);
        (*u).trbe.set_intended_buffer(trbe_buf, trbe_buf, TRBE_BUF_PAGES as u64 * PAGE_SIZE);
    }
    if let Err(e) = hyp::call(Call::SpeModelAttach, [area, bytes, 0, 0, 0, 0, 0]) {
        return log::error!("spe-abuse: SPE_MODEL_ATTACH refused: {e}");
    }
    let repairs_before = hyp::info(InfoItem::SpeModelRepairs).unwrap_or(0);
    AREA.store(area, Relaxed);
    SPE_BUF.store(spe_buf, Relaxed);
    TRBE_BUF.store(trbe_buf, Relaxed);

    // The buffers are never a VM's.
    let mut vms_ok = 0;
    if let Some(mut vm) = scenarios::make("spe-abuse-donate", [mode::PING_LOOP, 0, 1]) {
        for (what, call, args) in [
            ("donate-spe-buffer", Call::VmDonate, [vm.handle, spe_buf, IPA_SPARE, 1, 0, 0, 0]),
            ("donate-trace-buffer", Call::VmDonate, [vm.handle, trbe_buf, IPA_SPARE, 1, 0, 0, 0]),
            ("share-spe-buffer", Call::VcpuShare, [vm.handle, 0, spe_buf + PAGE_SIZE, 0, 0, 0, 0]),
        ] {
            match hyp::call(call, args) {
                Ok(_) => crate::hprintln!("refusal {what}: ACCEPTED"),
                Err(e) => {
                    crate::hprintln!("refusal {what}: {e}");
                    refused += 1;
                }
            }
        }
        vms_ok += u64::from(vm.run() == Ending::Off && vm.status == Some(0));
        if let Err(e) = vm.destroy() {
            log::error!("spe-abuse: destroy: {e}");
        }
    }

    // VMs while the area is rewritten after every run and at every host
    // timer interrupt.
    ACTIVE.store(true, Relaxed);
    crate::profiler::after_run_spe_abuse(true);
    for _ in 0..ROUNDS {
        let Some(mut vm) = scenarios::make("spe-abuse", [mode::PING_LOOP, 0, PINGS]) else { break };
        run_all(&mut [&mut vm]);
        vms_ok += u64::from(vm.ending == Some(Ending::Off) && vm.status == Some(0));
        if let Err(e) = vm.destroy() {
            log::error!("spe-abuse: destroy: {e}");
        }
    }
    crate::profiler::after_run_spe_abuse(false);
    ACTIVE.store(false, Relaxed);
    let repairs = hyp::info(InfoItem::SpeModelRepairs).unwrap_or(0) - repairs_before;
    let alive = hyp::info(InfoItem::HypEl) == Ok(2);
    // Detach, then nothing of the layout is EL2's any more.
    let detached = hyp::call(Call::SpeModelAttach, [0; 7]).is_ok();
    let guards_intact = guards.iter().filter(|&&g| intact(page(g), 1)).count();
    let in_buffer = changed_bytes(spe_buf, SPE_BUF_PAGES) + changed_bytes(trbe_buf, TRBE_BUF_PAGES);
    if detached {
        // SAFETY: `alloc_host_pages(total)` gave them; the model is
        // detached and nothing of them was donated or shared.
        unsafe { free_host_pages(base, total) };
    }
    let after = (hyp_free(), host_free_pages());
    crate::hprintln!(
        "spe-abuse: refused={refused} rounds={ROUNDS} rewrites={} repairs={repairs} guards_intact={guards_intact}/{} bytes_in_buffers={in_buffer} vms_ok={vms_ok} el2_alive={alive} detached={detached} hyp_free_before={} hyp_free_after={} host_free_before={} host_free_after={}",
        REWRITES.load(Relaxed),
        guards.len(),
        before.0,
        after.0,
        before.1,
        after.1
    );
}
