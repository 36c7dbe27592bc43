//! Mode 23 (`ptimer`): the EL1 physical timer, which the host emulates per
//! vcpu (`host/src/ptimer.rs`): every CNTP_CTL/CVAL/TVAL_EL0 access here
//! traps to EL2 and is answered by the host; INTID 30 comes through the
//! vGIC. x2 = loops of the benchmark (0: none).
//!
//! | bit of the status | check |
//! |---|---|
//! | [`bad::REGS`] | CTL reads 0 out of reset; CVAL reads back; TVAL writes set CVAL = counter + TVAL and read back CVAL - counter; ISTATUS is read-only and set once the counter passes CVAL, masked or not |
//! | [`bad::LEVEL`] | with IRQs masked, INTID 30 is pending in GICR_ISPENDR0 while the timer is due, enabled and unmasked, and not once it is masked or disabled |
//! | [`bad::SLEEP`] | armed for 10 ms and waited for in WFI: taken no earlier, and at most [`SLEEP_SLACK_MS`] later |
//! | [`bad::RUNNING`] | armed for 3 ms while the vcpu spins without exits: taken at most [`RUN_SLACK_US`] late (the host's timer fires at the earlier of the slice's end and the deadline) |
//! | [`bad::ISTATUS`] | the handler read ISTATUS set |
//! | [`bad::LOST`] | a benchmark interrupt never came |

use core::arch::asm;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};
use spevisor_abi::guest::machine::PTIMER_INTID;

use crate::irqs;

pub const MODE_PTIMER: u64 = 23;

/// Failed checks.
pub mod bad {
    pub const REGS: u64 = 1 << 0;
    pub const LEVEL: u64 = 1 << 1;
    pub const SLEEP: u64 = 1 << 2;
    pub const RUNNING: u64 = 1 << 3;
    pub const ISTATUS: u64 = 1 << 4;
    pub const LOST: u64 = 1 << 5;
}

/// REPORT tags: ticks late in WFI, ticks late while running, and the
/// benchmark loop's total ticks.
const REPORT_SLEEP_LATE: u64 = 20;
const REPORT_RUNNING_LATE: u64 = 21;
pub const REPORT_PTIMER_LOOP_TICKS: u64 = 22;

const SLEEP_MS: u64 = 10;
const SLEEP_SLACK_MS: u64 = 5;
const RUN_MS: u64 = 3;
const RUN_SLACK_US: u64 = 1000;
/// How long the running check spins at most before it gives up.
const RUN_GIVE_UP_MS: u64 = 50;
/// A compare value far in the future.
const FAR_FUTURE: u64 = u64::MAX / 2;

/// CNTP_CTL_EL0 fields.
const CTL_ENABLE: u64 = 1 << 0;
const CTL_IMASK: u64 = 1 << 1;
const CTL_ISTATUS: u64 = 1 << 2;

/// CNTVCT when the handler took INTID 30 (0: not yet), and CTL it read.
static TAKEN_AT: AtomicU64 = AtomicU64::new(0);
static TAKEN_CTL: AtomicU64 = AtomicU64::new(0);
static TAKEN: AtomicU64 = AtomicU64::new(0);

fn ctl() -> u64 {
    let v: u64;
    // SAFETY: trapped to EL2 and answered by the host.
    unsafe { asm!("mrs {}, cntp_ctl_el0", out(reg) v, options(nomem, nostack)) };
    v
}

fn set_ctl(v: u64) {
    // SAFETY: trapped to EL2, emulated by the host; the isb as on hardware.
    unsafe { asm!("msr cntp_ctl_el0, {}", "isb", in(reg) v, options(nomem, nostack)) };
}

fn cval() -> u64 {
    let v: u64;
    // SAFETY: as in `ctl`.
    unsafe { asm!("mrs {}, cntp_cval_el0", out(reg) v, options(nomem, nostack)) };
    v
}

fn set_cval(v: u64) {
    // SAFETY: as in `set_ctl`.
    unsafe { asm!("msr cntp_cval_el0, {}", "isb", in(reg) v, options(nomem, nostack)) };
}

fn tval() -> u64 {
    let v: u64;
    // SAFETY: as in `ctl`.
    unsafe { asm!("mrs {}, cntp_tval_el0", out(reg) v, options(nomem, nostack)) };
    v
}

fn set_tval(v: u64) {
    // SAFETY: as in `set_ctl`.
    unsafe { asm!("msr cntp_tval_el0, {}", "isb", in(reg) v, options(nomem, nostack)) };
}

fn ticks_ms(ms: u64) -> u64 {
    read_sysreg!("cntfrq_el0") / 1000 * ms
}

/// Called by the IRQ handler for INTID 30: records when, reads CTL, and
/// masks the timer (its line drops, so the EOI does not re-take it).
pub fn taken() {
    TAKEN_AT.store(read_sysreg!("cntvct_el0"), SeqCst);
    TAKEN_CTL.store(ctl(), SeqCst);
    TAKEN.fetch_add(1, SeqCst);
    set_ctl(CTL_ENABLE | CTL_IMASK);
}

/// INTID 30 pending in this vcpu's redistributor.
fn pending() -> bool {
    let r = irqs::private_regs(0) + irqs::ISPENDR0;
    irqs::mmio_read(r) & (1 << PTIMER_INTID) != 0
}

fn regs() -> bool {
    let mut ok = ctl() == 0;
    set_cval(0x1234_5678);
    ok &= cval() == 0x1234_5678;
    let t = ticks_ms(SLEEP_MS);
    let before = irqs::counter();
    set_tval(t);
    let after = irqs::counter();
    let c = cval();
    ok &= (before + t..=after + t).contains(&c);
    let left = tval();
    ok &= left > 0 && left <= t;
    // ISTATUS is read-only; clear while the counter is below CVAL.
    set_ctl(CTL_ENABLE | CTL_ISTATUS | CTL_IMASK);
    ok &= ctl() == CTL_ENABLE | CTL_IMASK;
    set_cval(irqs::counter() - 1);
    ok &= ctl() == CTL_ENABLE | CTL_IMASK | CTL_ISTATUS;
    ok &= tval() >> 31 & 1 == 1 && tval() >> 32 == 0;
    set_ctl(0);
    println!("guest: ptimer registers: {}", if ok { "ok" } else { "FAIL" });
    ok
}

fn level() -> bool {
    irqs::irqs_off();
    set_cval(irqs::counter());
    set_ctl(CTL_ENABLE);
    let due = pending();
    set_ctl(CTL_ENABLE | CTL_IMASK);
    let masked = pending();
    set_ctl(CTL_ENABLE);
    let again = pending();
    set_cval(FAR_FUTURE);
    let reprogrammed = pending();
    set_ctl(0);
    let ok = due && !masked && again && !reprogrammed;
    println!(
        "guest: ptimer level: pending when due {due}, masked {masked}, unmasked {again}, reprogrammed {reprogrammed}"
    );
    ok
}

/// Arms the timer `ms` from now and waits (in WFI, or spinning); returns
/// the deadline and when the interrupt was taken.
fn wait(ms: u64, sleep: bool) -> (u64, u64) {
    TAKEN_AT.store(0, SeqCst);
    let deadline = irqs::counter() + ticks_ms(ms);
    set_cval(deadline);
    set_ctl(CTL_ENABLE);
    irqs::irqs_on();
    let give_up = deadline + ticks_ms(RUN_GIVE_UP_MS);
    while TAKEN_AT.load(SeqCst) == 0 {
        if sleep {
            irqs::wfi();
        } else if irqs::counter() > give_up {
            break;
        }
    }
    irqs::irqs_off();
    (deadline, TAKEN_AT.load(SeqCst))
}

/// Mode 23: the checks above, then `loops` benchmark interrupts (a timer
/// due at once, taken, masked by the handler, EOIed).
pub fn run(loops: u64) -> u64 {
    irqs::gic_dist_init();
    irqs::gic_cpu_init();
    irqs::enable_private(PTIMER_INTID, 0xa0);
    let mut failed = 0;
    if !regs() {
        failed |= bad::REGS;
    }
    if !level() {
        failed |= bad::LEVEL;
    }
    let (deadline, at) = wait(SLEEP_MS, true);
    let late = at.wrapping_sub(deadline);
    crate::hvc::report(REPORT_SLEEP_LATE, late);
    let slack = ticks_ms(SLEEP_SLACK_MS);
    println!("guest: ptimer {SLEEP_MS} ms in WFI: fired {late} ticks late (at most {slack})");
    if at < deadline || late > slack {
        failed |= bad::SLEEP;
    }
    if TAKEN_CTL.load(SeqCst) & CTL_ISTATUS == 0 {
        failed |= bad::ISTATUS;
    }
    // Straight after the wake-up: a fresh slice, whose end is well after
    // this deadline.
    let (deadline, at) = wait(RUN_MS, false);
    let late = at.wrapping_sub(deadline);
    crate::hvc::report(REPORT_RUNNING_LATE, late);
    let slack = read_sysreg!("cntfrq_el0") / 1_000_000 * RUN_SLACK_US;
    println!("guest: ptimer {RUN_MS} ms while running: fired {late} ticks late (at most {slack})");
    if at == 0 || at < deadline || late > slack {
        failed |= bad::RUNNING;
    }
    if loops > 0 {
        irqs::CHECK_ACTIVE.store(0, SeqCst);
        let mut lost = 0;
        irqs::irqs_on();
        let start = irqs::counter();
        for _ in 0..loops {
            let before = TAKEN.load(SeqCst);
            set_cval(0);
            set_ctl(CTL_ENABLE);
            let mut spins = 0u64;
            while TAKEN.load(SeqCst) == before && spins < 1 << 24 {
                spins += 1;
            }
            lost += u64::from(TAKEN.load(SeqCst) == before);
        }
        let ticks = irqs::counter() - start;
        irqs::irqs_off();
        crate::hvc::report(REPORT_PTIMER_LOOP_TICKS, ticks);
        println!("guest: ptimer loop: {loops} interrupts, {lost} lost");
        if lost != 0 {
            failed |= bad::LOST;
        }
    }
    set_ctl(0);
    println!("guest: ptimer status={failed}");
    failed
}
