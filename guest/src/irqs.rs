//! Interrupt tests: the guest's GICv3 (distributor, its redistributor and
//! the ICC system registers, which the hypervisor backs with the virtual CPU
//! interface) or, when its device tree names one, its GICv2 (`gic_v2.rs`),
//! the virtual timer, SGIs between vcpus, PSCI CPU_ON/OFF.
//!
//! | mode | name | x2 | result (SET_STATUS) |
//! |---|---|---|---|
//! | 14 | vtimer | ms | 0 if a virtual-timer interrupt arrives no earlier than `ms` and within [`TIMER_SLACK_MS`] of it (REPORT tag 10: ticks late) |
//! | 15 | vgic | – | 0, or a bitmask of failed [`vgic`] checks |
//! | 16 | smp | rounds | 0, or a bitmask of failed [`smp`] checks (vcpu 1: SGI ping-pong `rounds` times; `rounds` = 0: vcpu 1 spins in `b .` with IRQs masked) |
//! | 17 | spin | – | never: `b .` with IRQs masked |
//! | 18 | vgic-nest | – | 0, or a bitmask of failed [`nest_check`]s: 16 interrupts nested, more active at once than any CPU has list registers |

use core::arch::asm;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};
use spevisor_abi::guest::machine::{GICD_IPA, GICR_IPA, GICR_SIZE, VTIMER_INTID};
use spevisor_abi::guest::psci;

pub const MODE_VTIMER: u64 = 14;
pub const MODE_VGIC: u64 = 15;
pub const MODE_SMP: u64 = 16;
pub const MODE_SPIN: u64 = 17;
pub const MODE_VGIC_NEST: u64 = 18;

/// Vector entry of an IRQ taken at EL1 on SP_EL1.
pub const VECTOR_CURRENT_EL_SPX_IRQ: u64 = 5;

/// How late the timer may fire: the host's scheduling and exits in between.
const TIMER_SLACK_MS: u64 = 5;
const REPORT_TIMER_LATE: u64 = 10;
const REPORT_SGI_ORDER: u64 = 11;
/// Benchmarks (`cargo xtask bench`): total CNTVCT ticks of the SGI
/// ping-pong rounds (smp), of the virtual-timer interrupt loop (vtimer).
pub const REPORT_PING_PONG_TICKS: u64 = 12;
pub const REPORT_VTIMER_LOOP_TICKS: u64 = 13;

// GICD/GICR registers (offsets).
const GICD_CTLR: u64 = 0x0;
const CTLR_ENABLE_GRP1: u32 = 1 << 1;
const GICR_WAKER: u64 = 0x14;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
pub(crate) const SGI_FRAME: u64 = 0x1_0000;
const IGROUPR0: u64 = 0x080;
const ISENABLER0: u64 = 0x100;
const ICENABLER0: u64 = 0x180;
pub(crate) const ISPENDR0: u64 = 0x200;
const ISACTIVER0: u64 = 0x300;
const IPRIORITYR: u64 = 0x400;
/// ICC_IAR1_EL1 answer when nothing is pending.
const INTID_SPURIOUS: u64 = 1023;
/// CNTV_CTL_EL0.
const CNTV_ENABLE: u64 = 1;
const CNTV_IMASK: u64 = 2;

pub(crate) fn mmio_read(addr: u64) -> u32 {
    // SAFETY: a GIC register of the guest machine, mapped Device-nGnRE.
    unsafe { (addr as *const u32).read_volatile() }
}

fn mmio_write(addr: u64, v: u32) {
    // SAFETY: as in `mmio_read`.
    unsafe { (addr as *mut u32).write_volatile(v) }
}

fn cpu_index() -> u64 {
    read_sysreg!("mpidr_el1") & 0xff
}

pub(crate) fn gicr(cpu: u64) -> u64 {
    GICR_IPA + cpu * GICR_SIZE
}

/// The SGI/PPI registers of this vcpu: its redistributor's SGI frame, or
/// on a GICv2 the distributor's banked ones (same offsets).
pub(crate) fn private_regs(cpu: u64) -> u64 {
    if crate::gic_v2::detect() {
        crate::gic_v2::private_regs()
    } else {
        gicr(cpu) + SGI_FRAME
    }
}

/// This vcpu's redistributor awake, every SGI/PPI group 1 at priority
/// 0x80, the CPU interface on (priority mask open, group 1 enabled).
/// GICv2: `gic_v2::cpu_init`.
pub(crate) fn gic_cpu_init() {
    if crate::gic_v2::detect() {
        return crate::gic_v2::cpu_init();
    }
    let r = gicr(cpu_index());
    mmio_write(r + GICR_WAKER, mmio_read(r + GICR_WAKER) & !WAKER_PROCESSOR_SLEEP);
    mmio_write(r + SGI_FRAME + IGROUPR0, u32::MAX);
    for word in 0..8 {
        mmio_write(r + SGI_FRAME + IPRIORITYR + 4 * word, 0x8080_8080);
    }
    // SAFETY: the GIC's CPU interface registers (virtual under EL2); each
    // write is followed by an isb so it is in effect before interrupts.
    unsafe {
        asm!("msr icc_pmr_el1, {}", in(reg) 0xffu64, options(nomem, nostack));
        asm!("msr icc_igrpen1_el1, {}", "isb", in(reg) 1u64, options(nomem, nostack));
    }
}

pub(crate) fn gic_dist_init() {
    if crate::gic_v2::detect() {
        return crate::gic_v2::dist_init();
    }
    mmio_write(GICD_IPA + GICD_CTLR, mmio_read(GICD_IPA + GICD_CTLR) | CTLR_ENABLE_GRP1);
}

pub(crate) fn enable_private(intid: u32, priority: u8) {
    let r = private_regs(cpu_index());
    // SAFETY: one byte of this vcpu's priority array.
    unsafe { ((r + IPRIORITYR + intid as u64) as *mut u8).write_volatile(priority) };
    mmio_write(r + ISENABLER0, 1 << intid);
}

/// The GIC ready for private interrupt `intid` of this vcpu (the PMU test).
pub fn pmu_irq_setup(intid: u32) {
    gic_dist_init();
    gic_cpu_init();
    enable_private(intid, 0x80);
}

/// IRQs unmasked / masked (for the tests in other modules).
pub fn on() {
    irqs_on();
}

pub fn off() {
    irqs_off();
}

pub(crate) fn irqs_on() {
    // SAFETY: handlers are installed (start.S vectors, `handle`).
    unsafe { asm!("msr daifclr, #2", options(nomem, nostack)) };
}

pub(crate) fn irqs_off() {
    // SAFETY: masks IRQs only.
    unsafe { asm!("msr daifset, #2", options(nomem, nostack)) };
}

pub(crate) fn wfi() {
    // SAFETY: waits for an interrupt.
    unsafe { asm!("wfi", options(nomem, nostack)) };
}

/// Sends SGI `intid` to the vcpus in `targets` (Aff0 bit mask).
fn send_sgi(intid: u64, targets: u64) {
    if crate::gic_v2::detect() {
        return crate::gic_v2::send_sgi(intid, targets);
    }
    let v = intid << 24 | (targets & 0xffff);
    // SAFETY: ICC_SGI1R_EL1 (trapped by EL2, delivered by the host).
    unsafe { asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) v, options(nomem, nostack)) };
}

/// Interrupts taken, per vcpu and INTID (bit set per INTID seen) and in order.
static SEEN: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
pub(crate) static COUNT: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
/// The order INTIDs were taken on vcpu 0 (4 bits each, first in the low bits).
static ORDER: AtomicU64 = AtomicU64::new(0);
/// CNTVCT when the timer's interrupt was taken.
static TIMER_AT: AtomicU64 = AtomicU64::new(0);
/// Bit n: the handler saw INTID n active in GICR_ISACTIVER0 while handling it.
static ACTIVE_SEEN: AtomicU64 = AtomicU64::new(0);
/// smp: SGI ping-pong rounds left, and whether vcpu 1 answers.
static ROUNDS: AtomicU64 = AtomicU64::new(0);
static PONG: AtomicU64 = AtomicU64::new(0);
/// Whether the handler reads GICR_ISACTIVER0 (an MMIO exit) for the tests;
/// off in the benchmark loops.
pub(crate) static CHECK_ACTIVE: AtomicU64 = AtomicU64::new(1);

pub(crate) fn counter() -> u64 {
    // SAFETY: isb then the virtual counter: earlier instructions are done.
    unsafe { asm!("isb", options(nomem, nostack)) };
    read_sysreg!("cntvct_el0")
}

/// The IRQ vector: acknowledges, records, ends (EOImode 0: drop and
/// deactivate), and answers a ping.
pub fn handle() {
    let (iar, raw) = ack();
    if iar == INTID_SPURIOUS {
        return;
    }
    if NESTING.load(SeqCst) != 0 {
        return nest(iar, raw);
    }
    let cpu = cpu_index().min(1) as usize;
    if iar < 32 && CHECK_ACTIVE.load(SeqCst) != 0 {
        let active = mmio_read(private_regs(cpu as u64) + ISACTIVER0);
        if active & (1 << iar) != 0 {
            ACTIVE_SEEN.fetch_or(1 << iar, SeqCst);
        }
    }
    if iar == spevisor_abi::guest::machine::PTIMER_INTID as u64 {
        crate::ptimer::taken();
    }
    if iar == spevisor_abi::guest::machine::PMU_INTID as u64 {
        crate::pmu::on_irq();
    }
    if iar == VTIMER_INTID as u64 {
        TIMER_AT.store(read_sysreg!("cntvct_el0"), SeqCst);
        // SAFETY: masks this vcpu's own timer (its line drops).
        unsafe { asm!("msr cntv_ctl_el0, {}", "isb", in(reg) CNTV_ENABLE | CNTV_IMASK, options(nomem, nostack)) };
    }
    let n = COUNT[cpu].fetch_add(1, SeqCst);
    if cpu == 0 && n < 16 {
        ORDER.fetch_or((iar & 0xf) << (4 * n), SeqCst);
    }
    SEEN[cpu].fetch_or(1 << (iar & 63), SeqCst);
    // ping-pong: vcpu 1 answers SGI 1 with SGI 2.
    if cpu == 1 && iar == 1 && PONG.load(SeqCst) != 0 && ROUNDS.load(SeqCst) != 0 {
        send_sgi(2, 1);
    }
    eoi(raw);
}

/// Acknowledges the highest-priority pending interrupt: (INTID, the value
/// `eoi` gives back). ICC_IAR1_EL1, or GICC_IAR on a GICv2.
fn ack() -> (u64, u64) {
    if crate::gic_v2::detect() {
        return crate::gic_v2::ack();
    }
    let iar = read_sysreg!("icc_iar1_el1") & 0xff_ffff;
    (iar, iar)
}

/// Ends (EOImode 0: priority drop and deactivation) what `ack` returned.
fn eoi(raw: u64) {
    if crate::gic_v2::detect() {
        return crate::gic_v2::eoi(raw);
    }
    // SAFETY: ends the interrupt just acknowledged.
    unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) raw, options(nomem, nostack)) };
}

/// vtimer: a 10 ms timeout on the virtual timer, waited for in WFI; then,
/// for the benchmark, `loops` interrupts of a timer armed already due, each
/// taken and EOIed by the handler (total ticks reported).
pub fn vtimer(loops: u64) -> u64 {
    let ms = 10;
    gic_dist_init();
    gic_cpu_init();
    enable_private(VTIMER_INTID, 0xa0);
    let ticks = read_sysreg!("cntfrq_el0") / 1000 * ms;
    let start = read_sysreg!("cntvct_el0");
    let deadline = start + ticks;
    // SAFETY: this vcpu's own timer: compare value, then enable.
    unsafe {
        asm!("msr cntv_cval_el0, {}", "msr cntv_ctl_el0, {}", "isb", in(reg) deadline, in(reg) CNTV_ENABLE, options(nomem, nostack))
    };
    irqs_on();
    while TIMER_AT.load(SeqCst) == 0 {
        wfi();
    }
    irqs_off();
    let at = TIMER_AT.load(SeqCst);
    let late = at.wrapping_sub(deadline);
    crate::hvc::report(REPORT_TIMER_LATE, late);
    let slack = read_sysreg!("cntfrq_el0") / 1000 * TIMER_SLACK_MS;
    let active = ACTIVE_SEEN.load(SeqCst) & (1 << VTIMER_INTID) != 0;
    let in_time = at >= deadline && late <= slack;
    println!("guest: vtimer {ms} ms: fired {late} ticks late (at most {slack}), active while handled: {active}");
    let mut lost = 0;
    if loops > 0 {
        CHECK_ACTIVE.store(0, SeqCst);
        irqs_on();
        let start = counter();
        for _ in 0..loops {
            let before = COUNT[0].load(SeqCst);
            let now = read_sysreg!("cntvct_el0");
            // SAFETY: this vcpu's own timer, due at once.
            unsafe {
                asm!("msr cntv_cval_el0, {}", "msr cntv_ctl_el0, {}", "isb", in(reg) now, in(reg) CNTV_ENABLE, options(nomem, nostack))
            };
            let mut spins = 0u64;
            while COUNT[0].load(SeqCst) == before && spins < 1 << 24 {
                spins += 1;
            }
            lost += u64::from(COUNT[0].load(SeqCst) == before);
        }
        let ticks = counter() - start;
        irqs_off();
        crate::hvc::report(REPORT_VTIMER_LOOP_TICKS, ticks);
        println!("guest: vtimer loop: {loops} interrupts, {lost} lost");
    }
    u64::from(!in_time) | u64::from(!active) << 1 | u64::from(lost != 0) << 2
}

/// vgic check bits.
pub mod vgic_check {
    /// SGIs sent while IRQs were masked did not read as pending.
    pub const PENDING: u64 = 1 << 0;
    /// Not all 8 SGIs were taken (more than the list registers hold).
    pub const ALL_TAKEN: u64 = 1 << 1;
    /// They were not taken most urgent first.
    pub const PRIORITY_ORDER: u64 = 1 << 2;
    /// A disabled SGI was taken.
    pub const DISABLED_TAKEN: u64 = 1 << 3;
    /// Re-enabled, it was not taken.
    pub const ENABLED_NOT_TAKEN: u64 = 1 << 4;
    /// An interrupt did not read as active while handled.
    pub const ACTIVE: u64 = 1 << 5;
    /// After EOI, an SGI still read as active or pending.
    pub const EOI: u64 = 1 << 6;
}

/// vgic: enable/disable, priorities, pending and active states, EOI, and
/// more pending interrupts than list registers (8 SGIs at once).
pub fn vgic() -> u64 {
    use vgic_check::*;
    let mut failed = 0;
    gic_dist_init();
    gic_cpu_init();
    // SGIs 0..7: priorities so that 7 is the most urgent, 0 the least.
    for i in 0..8u32 {
        enable_private(i, 0x80 - 8 * i as u8);
    }
    let me = 1 << cpu_index();
    for i in 0..8 {
        send_sgi(i, me);
    }
    let sgi = private_regs(cpu_index());
    if mmio_read(sgi + ISPENDR0) & 0xff != 0xff {
        failed |= PENDING;
    }
    irqs_on();
    for _ in 0..100 {
        if COUNT[0].load(SeqCst) >= 8 {
            break;
        }
        wfi();
    }
    irqs_off();
    if SEEN[0].load(SeqCst) & 0xff != 0xff || COUNT[0].load(SeqCst) != 8 {
        failed |= ALL_TAKEN;
    }
    let order = ORDER.load(SeqCst);
    crate::hvc::report(REPORT_SGI_ORDER, order);
    if order & 0xffff_ffff != 0x0123_4567 {
        failed |= PRIORITY_ORDER;
    }
    if ACTIVE_SEEN.load(SeqCst) & 0xff != 0xff {
        failed |= ACTIVE;
    }
    if mmio_read(sgi + ISACTIVER0) & 0xff != 0 || mmio_read(sgi + ISPENDR0) & 0xff != 0 {
        failed |= EOI;
    }
    // Disabled: pending but not taken; enabled: taken.
    mmio_write(sgi + ICENABLER0, 1 << 9);
    send_sgi(9, me);
    irqs_on();
    for _ in 0..1000 {
        core::hint::spin_loop();
    }
    irqs_off();
    if SEEN[0].load(SeqCst) & (1 << 9) != 0 {
        failed |= DISABLED_TAKEN;
    }
    mmio_write(sgi + ISENABLER0, 1 << 9);
    irqs_on();
    for _ in 0..100 {
        if SEEN[0].load(SeqCst) & (1 << 9) != 0 {
            break;
        }
        wfi();
    }
    irqs_off();
    if SEEN[0].load(SeqCst) & (1 << 9) == 0 {
        failed |= ENABLED_NOT_TAKEN;
    }
    println!("guest: vgic checks failed={failed:#x} order={order:#x}");
    failed
}

/// vgic-nest: SGIs 0..NEST_LEVELS, each more urgent than the one before,
/// so that each preempts its predecessor's handler.
const NEST_LEVELS: u64 = 16;
/// Priority of SGI 0 and the step between levels: 8 is the coarsest
/// granularity a virtual CPU interface may have (5 priority bits).
const NEST_PRIORITY_BASE: u8 = 0xf0;
const NEST_PRIORITY_STEP: u8 = 8;
/// ICC_RPR_EL1 with no interrupt active (the idle priority).
const RPR_IDLE: u64 = 0xff;
/// Polls a handler waits for its nested interrupt before giving up.
const NEST_WAIT_POLLS: u64 = 1 << 20;
/// Set while vgic-nest runs: the IRQ vector nests instead of `handle`'s
/// usual work.
static NESTING: AtomicU64 = AtomicU64::new(0);
/// Bit n: SGI n's handler ran to its end.
static NEST_DONE: AtomicU64 = AtomicU64::new(0);
/// GICR_ISACTIVER0 read by the deepest handler.
static NEST_ACTIVE_DEEPEST: AtomicU64 = AtomicU64::new(0);

/// vgic-nest check bits.
pub mod nest_check {
    /// Not every level's handler ran to its end.
    pub const ALL_TAKEN: u64 = 1 << 0;
    /// The levels were not taken in order (each preempting the last).
    pub const PREEMPTION_ORDER: u64 = 1 << 1;
    /// At the deepest level, not every SGI read as active.
    pub const ALL_ACTIVE: u64 = 1 << 2;
    /// After every EOI, some SGI still read as active or pending.
    pub const ENDED: u64 = 1 << 3;
    /// After every EOI, the running priority was not idle.
    pub const RUNNING_PRIORITY: u64 = 1 << 4;
}

/// One level of vgic-nest, in the IRQ vector with `intid` acknowledged:
/// sends the next, more urgent SGI to itself and unmasks IRQs, so that it
/// preempts this handler; the deepest level reads which SGIs are active.
/// ELR_EL1/SPSR_EL1 are kept across the nested exception. Ends `intid`
/// (EOImode 0: priority drop and deactivation) last.
fn nest(intid: u64, raw: u64) {
    let n = COUNT[0].fetch_add(1, SeqCst);
    if n < NEST_LEVELS {
        ORDER.fetch_or((intid & 0xf) << (4 * n), SeqCst);
    }
    let next = intid + 1;
    if next < NEST_LEVELS {
        let elr = read_sysreg!("elr_el1");
        let spsr = read_sysreg!("spsr_el1");
        send_sgi(next, 1 << cpu_index());
        irqs_on();
        let mut polls = 0;
        while NEST_DONE.load(SeqCst) & (1 << next) == 0 && polls < NEST_WAIT_POLLS {
            polls += 1;
            core::hint::spin_loop();
        }
        irqs_off();
        // SAFETY: this exception's return state, as it was before the
        // nested one overwrote it (IRQs are masked again).
        unsafe { asm!("msr elr_el1, {}", "msr spsr_el1, {}", in(reg) elr, in(reg) spsr, options(nomem, nostack)) };
    } else {
        let active = mmio_read(private_regs(cpu_index()) + ISACTIVER0);
        NEST_ACTIVE_DEEPEST.store(active.into(), SeqCst);
    }
    NEST_DONE.fetch_or(1 << intid, SeqCst);
    eoi(raw);
}

/// vgic-nest: 16 interrupts nested, each preempting the last, so more are
/// active at once than the CPU has list registers (QEMU has 4; the
/// architecture allows 16): the hypervisor must keep the most urgent in
/// them, switch the active priorities with them, and end those that did
/// not fit when the guest's EOI comes back as EOIcount.
pub fn vgic_nest() -> u64 {
    use nest_check::*;
    gic_dist_init();
    gic_cpu_init();
    // The finest binary point the interface allows: every priority step
    // of 8 is a preemption level.
    if crate::gic_v2::detect() {
        crate::gic_v2::finest_binary_point();
    } else {
        // SAFETY: the virtual CPU interface's own register.
        unsafe { asm!("msr icc_bpr1_el1, xzr", "isb", options(nomem, nostack)) };
    }
    for i in 0..NEST_LEVELS as u32 {
        enable_private(i, NEST_PRIORITY_BASE - NEST_PRIORITY_STEP * i as u8);
    }
    NESTING.store(1, SeqCst);
    send_sgi(0, 1 << cpu_index());
    irqs_on();
    for _ in 0..100 {
        if NEST_DONE.load(SeqCst) & 1 != 0 {
            break;
        }
        wfi();
    }
    irqs_off();
    NESTING.store(0, SeqCst);
    let all = (1 << NEST_LEVELS) - 1;
    let mut failed = 0;
    if NEST_DONE.load(SeqCst) != all || COUNT[0].load(SeqCst) != NEST_LEVELS {
        failed |= ALL_TAKEN;
    }
    let order = ORDER.load(SeqCst);
    crate::hvc::report(REPORT_SGI_ORDER, order);
    if order != 0xfedc_ba98_7654_3210 {
        failed |= PREEMPTION_ORDER;
    }
    let deepest = NEST_ACTIVE_DEEPEST.load(SeqCst);
    if deepest & all != all {
        failed |= ALL_ACTIVE;
    }
    let sgi = private_regs(cpu_index());
    let (active, pending) = (mmio_read(sgi + ISACTIVER0), mmio_read(sgi + ISPENDR0));
    if u64::from(active | pending) & all != 0 {
        failed |= ENDED;
    }
    let rpr =
        if crate::gic_v2::detect() { crate::gic_v2::running_priority() } else { read_sysreg!("icc_rpr_el1") & 0xff };
    if rpr != RPR_IDLE {
        failed |= RUNNING_PRIORITY;
    }
    println!(
        "guest: vgic-nest failed={failed:#x} order={order:#x} active_at_deepest={deepest:#x} after: active={active:#x} pending={pending:#x} rpr={rpr:#x}"
    );
    failed
}

/// smp check bits.
pub mod smp_check {
    pub const CPU_ON_BAD_ADDRESS: u64 = 1 << 0;
    pub const CPU_ON_BAD_TARGET: u64 = 1 << 1;
    pub const CPU_ON: u64 = 1 << 2;
    pub const ALREADY_ON: u64 = 1 << 3;
    pub const AFFINITY_ON: u64 = 1 << 4;
    pub const PING_PONG: u64 = 1 << 5;
    pub const AFFINITY_OFF: u64 = 1 << 6;
    pub const VCPU1_RAN: u64 = 1 << 7;
}

/// vcpu 1's stack (16-byte aligned, zeroed with .bss by vcpu 0).
#[repr(C, align(16))]
struct Stack([u8; 16 * 1024]);
static mut SECONDARY_STACK: Stack = Stack([0; 16 * 1024]);
/// Set by vcpu 1 once it runs.
static SECONDARY_UP: AtomicU64 = AtomicU64::new(0);

extern "C" {
    fn secondary_start();
}

/// smp: CPU_ON's refusals, then vcpu 1 on, `rounds` SGI ping-pongs
/// (vcpu 0 sends SGI 1, vcpu 1 answers with SGI 2), vcpu 1 off. With
/// `rounds` = 0 vcpu 1 spins in `b .` with IRQs masked instead, and vcpu 0
/// finishes alone (preemption is what lets it).
pub fn smp(rounds: u64) -> u64 {
    use smp_check::*;
    let mut failed = 0;
    gic_dist_init();
    gic_cpu_init();
    enable_private(2, 0x80);
    let entry = secondary_start as *const () as u64;
    let stack_top = core::ptr::addr_of!(SECONDARY_STACK) as u64 + core::mem::size_of::<Stack>() as u64;
    if hvc::call(psci::CPU_ON_64, 1, 0x10, stack_top)[0] != psci::INVALID_ADDRESS {
        failed |= CPU_ON_BAD_ADDRESS;
    }
    if hvc::call(psci::CPU_ON_64, 7, entry, stack_top)[0] != psci::INVALID_PARAMETERS {
        failed |= CPU_ON_BAD_TARGET;
    }
    ROUNDS.store(rounds, SeqCst);
    PONG.store(u64::from(rounds > 0), SeqCst);
    if hvc::call(psci::CPU_ON_64, 1, entry, stack_top)[0] != psci::SUCCESS {
        failed |= CPU_ON;
    }
    if hvc::call(psci::CPU_ON_64, 1, entry, stack_top)[0] != psci::ALREADY_ON {
        failed |= ALREADY_ON;
    }
    if hvc::call(psci::AFFINITY_INFO_64, 1, 0, 0)[0] != psci::AFFINITY_ON {
        failed |= AFFINITY_ON;
    }
    // Wait for vcpu 1: it runs when this vcpu is preempted (no exit here).
    let give_up = read_sysreg!("cntvct_el0") + 2 * read_sysreg!("cntfrq_el0");
    while SECONDARY_UP.load(SeqCst) == 0 && read_sysreg!("cntvct_el0") < give_up {
        core::hint::spin_loop();
    }
    if SECONDARY_UP.load(SeqCst) == 0 {
        failed |= VCPU1_RAN;
    }
    if rounds == 0 {
        println!("guest: vcpu 0 finished beside a spinning vcpu 1 (failed={failed:#x})");
        return failed;
    }
    irqs_on();
    CHECK_ACTIVE.store(0, SeqCst);
    let start = counter();
    for _ in 0..rounds {
        let before = COUNT[0].load(SeqCst);
        send_sgi(1, 1 << 1);
        let mut waits = 0;
        while COUNT[0].load(SeqCst) == before && waits < 1000 {
            wfi();
            waits += 1;
        }
    }
    let ticks = counter() - start;
    irqs_off();
    hvc::report(REPORT_PING_PONG_TICKS, ticks);
    let pongs = COUNT[0].load(SeqCst);
    if pongs != rounds || COUNT[1].load(SeqCst) != rounds {
        failed |= PING_PONG;
    }
    ROUNDS.store(0, SeqCst);
    send_sgi(1, 1 << 1); // vcpu 1: done, power off
                         // vcpu 1 powers off when it next runs (after this vcpu's slice).
    let mut off = false;
    let give_up = read_sysreg!("cntvct_el0") + 2 * read_sysreg!("cntfrq_el0");
    while read_sysreg!("cntvct_el0") < give_up {
        if hvc::call(psci::AFFINITY_INFO_64, 1, 0, 0)[0] == psci::AFFINITY_OFF {
            off = true;
            break;
        }
    }
    if !off {
        failed |= AFFINITY_OFF;
    }
    println!("guest: smp rounds={rounds} pings={} pongs={pongs} failed={failed:#x}", COUNT[1].load(SeqCst));
    failed
}

use crate::hvc;

/// vcpu 1 (smp): spin, or answer pings until told to stop, then CPU_OFF.
pub extern "C" fn secondary_main(_stack_top: u64) -> ! {
    gic_cpu_init();
    enable_private(1, 0x80);
    SECONDARY_UP.store(1, SeqCst);
    if PONG.load(SeqCst) == 0 {
        spin()
    }
    irqs_on();
    loop {
        let seen = COUNT[1].load(SeqCst);
        if ROUNDS.load(SeqCst) == 0 {
            break;
        }
        while COUNT[1].load(SeqCst) == seen && ROUNDS.load(SeqCst) != 0 {
            wfi();
        }
    }
    irqs_off();
    hvc::call(psci::CPU_OFF, 0, 0, 0);
    crate::park()
}

/// `b .` with IRQs masked, forever: only preemption takes the CPU back.
pub fn spin() -> ! {
    irqs_off();
    loop {
        // SAFETY: an empty loop the compiler may not remove.
        unsafe { asm!("", options(nomem, nostack)) };
    }
}
