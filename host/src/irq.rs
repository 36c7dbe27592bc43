//! The host's interrupts: the GIC, the handler every IRQ enters, and the
//! host's own timer.
//!
//! The host owns the EL1 physical timer (CNTP, PPI 30): it is its
//! preemption and wake-up timer. Guests cannot touch it (CNTHCTL_EL2 traps
//! their CNTP accesses, and the host emulates a CNTP per vcpu: `ptimer.rs`;
//! the host's timer then also fires at the running vcpu's deadline). While a
//! guest runs, HCR_EL2.IMO/FMO send every physical IRQ to EL2, which ends
//! the run with an IRQ exit; the interrupt stays pending and the host takes
//! it here as soon as VCPU_RUN has returned (the host calls with IRQs
//! unmasked).
//!
//! The handler only records events (`take_events`); the run loop in
//! `vmm.rs` acts on them with the state of the vcpu that ran.

use crate::gic::Gic;
use core::sync::atomic::{AtomicU32, Ordering};
use spevisor_abi::guest::machine::{MAINTENANCE_INTID, PMU_INTID, PTIMER_INTID, VTIMER_INTID};
use spin::Mutex;

/// Events the handler records for the run loop.
pub mod event {
    /// The virtual timer of the vcpu that ran fired (its physical PPI is
    /// left active: the guest deactivates it through its list register).
    pub const VTIMER: u32 = 1 << 0;
    /// The host's timer fired: the time slice or a wake-up deadline is due.
    pub const HOST_TIMER: u32 = 1 << 1;
}

static EVENTS: AtomicU32 = AtomicU32::new(0);
/// The host's GIC is a GICv2 (its guests get one too: `guest_dtb.rs`).
static GIC_V2: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
static GIC: Mutex<Option<Gic>> = Mutex::new(None);

/// Takes the GIC (its frames mapped) and enables the interrupts the host
/// and its guests need; IRQs are unmasked from here on.
pub fn init(gic: Gic) {
    // PMU_INTID: a guest's counter overflow ends its run (its PMU, `pmu.rs`
    // at EL2) whether or not the host profiles itself with the PMU.
    for intid in [PTIMER_INTID, VTIMER_INTID, MAINTENANCE_INTID, PMU_INTID] {
        gic.enable_ppi(intid);
    }
    timer::stop();
    GIC_V2.store(matches!(gic, Gic::V2(_)), Ordering::Relaxed);
    *GIC.lock() = Some(gic);
    crate::arch::unmask_irqs();
}

/// Whether the GIC is up (the run loop needs it for timers and guests'
/// interrupts; without it guests run without any).
pub fn ready() -> bool {
    GIC.lock().is_some()
}

/// Whether the host's GIC is a GICv2.
pub fn gic_v2() -> bool {
    GIC_V2.load(Ordering::Relaxed)
}

/// Enables private interrupt `intid` (the profiler's PMU or SPE interrupt).
pub fn enable_ppi(intid: u32) {
    if let Some(g) = GIC.lock().as_ref() {
        g.enable_ppi(intid);
    }
}

/// What the host last made of the physical virtual-timer PPI's active
/// state (`set_vtimer_active`); the guest's deactivation may have cleared
/// it since, so `true` here is "maybe active".
static VTIMER_ACTIVE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Sets the physical virtual-timer PPI's active state (see `vmm.rs`: it
/// follows the vcpu that is loaded). Clearing a state the host never set
/// costs nothing.
pub fn set_vtimer_active(active: bool) {
    if !active && !VTIMER_ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    VTIMER_ACTIVE.store(active, Ordering::Relaxed);
    if let Some(g) = GIC.lock().as_ref() {
        g.set_ppi_active(VTIMER_INTID, active);
    }
}

/// Whether the host made the physical PMU PPI active for the vcpu about to
/// run (`set_pmu_active`).
static PMU_ACTIVE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Sets the physical PMU PPI's active state: active while a vcpu whose
/// virtual INTID 23 (tied to it) is pending or active runs, so its
/// overflow line cannot end every run at once before the guest has handled
/// it; clear again as soon as the run returns, because the host's own
/// profiler samples on the same PPI. Clearing a state the host never set
/// costs nothing.
pub fn set_pmu_active(active: bool) {
    if !active && !PMU_ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    PMU_ACTIVE.store(active, Ordering::Relaxed);
    if let Some(g) = GIC.lock().as_ref() {
        g.set_ppi_active(PMU_INTID, active);
    }
}

/// The events recorded since the last call (cleared).
#[inline(always)]
pub fn take_events() -> u32 {
    if EVENTS.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    EVENTS.swap(0, Ordering::Relaxed)
}

/// Every IRQ the host takes: `pc`/`spsr` of the interrupted code.
pub fn handle(pc: u64, spsr: u64) {
    let intid = Gic::ack();
    if intid >= crate::gic::SPURIOUS_FIRST {
        return;
    }
    Gic::eoi(intid);
    match intid {
        VTIMER_INTID => {
            // Left active: the guest's EOI of its virtual INTID 27 (list
            // register HW = 1) deactivates it. Until then it cannot fire
            // again, so the level-sensitive timer does not livelock entry.
            EVENTS.fetch_or(event::VTIMER, Ordering::Relaxed);
            return;
        }
        PTIMER_INTID => {
            crate::hostile_spe::on_host_timer();
            timer::stop();
            EVENTS.fetch_or(event::HOST_TIMER, Ordering::Relaxed);
        }
        // A run that ended because the list registers ran low: the exit
        // itself is what the host wanted (it refills them).
        MAINTENANCE_INTID => {}
        // The host's own sampling interrupt, or a guest's counter overflow
        // that ended its run: EL2 has switched the guest's PMU out (the line
        // dropped) and told the run loop (`pmu_level` in the shared page).
        PMU_INTID => {
            crate::profiler::irq(intid, pc, spsr);
        }
        _ => {
            // Anything else (say the PMU's once the profiler has stopped)
            // has nobody to clear its source: a private one is disabled so
            // a level-sensitive line cannot hold the CPU in this handler.
            if !crate::profiler::irq(intid, pc, spsr) {
                if (16..32).contains(&intid) {
                    if let Some(g) = GIC.lock().as_ref() {
                        g.disable_ppi(intid);
                    }
                }
                log::debug!("interrupt {intid}: no handler, disabled");
            }
        }
    }
    Gic::deactivate(intid);
}

/// The host's timer: CNTP (EL1 physical timer), one deadline at a time.
pub mod timer {
    use core::arch::asm;

    /// CNTP_CTL_EL0.ENABLE.
    const CTL_ENABLE: u64 = 1;

    /// The counter now (CNTPCT_EL0; guests see the same with CNTVOFF 0).
    #[inline(always)]
    pub fn now() -> u64 {
        let v: u64;
        // SAFETY: reads the physical counter (CNTHCTL_EL2.EL1PCTEN is set
        // for the host); the isb orders it after earlier instructions.
        unsafe { asm!("isb", "mrs {}, cntpct_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }

    /// Counter ticks per second (CNTFRQ_EL0).
    pub fn frequency() -> u64 {
        let v: u64;
        // SAFETY: reading CNTFRQ_EL0 has no side effects.
        unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }

    /// Ticks in `us` microseconds.
    pub fn ticks_us(us: u64) -> u64 {
        (frequency() / 1_000).saturating_mul(us) / 1_000
    }

    /// Fires the host timer's interrupt when the counter reaches `deadline`.
    pub fn arm(deadline: u64) {
        // SAFETY: the host owns CNTP (CNTHCTL_EL2.EL1PCEN); CVAL before CTL
        // so the enable never sees a stale compare value.
        unsafe {
            asm!("msr cntp_cval_el0, {}", "msr cntp_ctl_el0, {}", "isb",
                in(reg) deadline, in(reg) CTL_ENABLE, options(nostack, preserves_flags))
        };
    }

    /// Turns the host timer off (its interrupt line drops).
    pub fn stop() {
        // SAFETY: as in `arm`; the isb makes the line drop before the
        // interrupt is deactivated.
        unsafe { asm!("msr cntp_ctl_el0, xzr", "isb", options(nostack, preserves_flags)) };
    }
}
