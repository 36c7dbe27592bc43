//! PMU tests: the guest's own PMUv3 (hyp/src/pmu.rs gives it the CPU's
//! counters, switched lazily at its first access).
//!
//! | mode | name | x2 | result (SET_STATUS) |
//! |---|---|---|---|
//! | 30 | pmu-count | iterations (0: [`DEFAULT_ITERATIONS`]) | 0, or a bitmask of failed [`count_check`]s: the instruction event (0x08) and the cycle counter count a known loop, and loops of `hvc`s answered at EL2 and by the host count only the guest's own instructions |
//! | 31 | pmu-overflow | – | 0, or a bitmask of failed [`overflow_check`]s: an event counter preset near overflow raises PPI 23, taken once per overflow by the guest's handler |
//! | 32 | pmu-isolation | pattern | 0, or a bitmask of failed [`isolation_check`]s: a stopped counter, its event type and PMSELR keep the values this VM wrote across HOST_PINGs while another VM runs, and its running counter counts only its own instructions |
//!
//! The counting checks need QEMU's instruction event, which QEMU has only
//! under `-icount` (PMCEID0_EL0 bit 8 says whether it is there).

use core::arch::asm;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};
use spevisor_abi::guest::machine::PMU_INTID;
use spevisor_abi::guest::test;

pub const MODE_PMU_COUNT: u64 = 30;
pub const MODE_PMU_OVERFLOW: u64 = 31;
pub const MODE_PMU_ISOLATION: u64 = 32;

/// Iterations of each counted loop when x2 is 0.
pub const DEFAULT_ITERATIONS: u64 = 1000;

/// REPORT tags: instructions counted by the compute loop, the EL2 (HYP_PING)
/// loop, the host (HOST_PING) loop; cycles of the compute loop.
const REPORT_INSTRUCTIONS_COMPUTE: u64 = 30;
const REPORT_INSTRUCTIONS_HYP: u64 = 31;
const REPORT_INSTRUCTIONS_HOST: u64 = 32;
const REPORT_CYCLES_COMPUTE: u64 = 33;

/// ID_AA64DFR0_EL1.PMUVer and the first version guests get (PMUv3p1).
const PMUVER_SHIFT: u64 = 8;
const PMUVER_V3P1: u64 = 0b0100;
/// PMCR_EL0 bits.
const PMCR_E: u64 = 1 << 0;
const PMCR_P: u64 = 1 << 1;
const PMCR_C: u64 = 1 << 2;
const PMCR_LC: u64 = 1 << 6;
const PMCR_N_SHIFT: u64 = 11;
const PMCR_N_MASK: u64 = 0x1f;
/// Event numbers: instructions retired, CPU cycles.
const EVENT_INST_RETIRED: u64 = 0x08;
const EVENT_CPU_CYCLES: u64 = 0x11;
/// PMEVTYPER/PMCCFILTR: NSH = 1 asks to count at EL2 too. The hypervisor
/// must prohibit it (MDCR_EL2.HPMD, PMCR.DP): the checks set it on purpose.
const FILTER_NSH: u64 = 1 << 27;
/// PMCNTENSET/PMINTENSET/PMOVSCLR bits.
const COUNTER0: u64 = 1 << 0;
const COUNTER1: u64 = 1 << 1;
const CYCLE_COUNTER: u64 = 1 << 31;
/// Instructions per iteration of the counted loops (see the asm).
const COMPUTE_LOOP_INSNS: u64 = 3;
const HVC_LOOP_INSNS: u64 = 4;
/// Instructions around a loop the counters may see (the isb after the
/// enable, the disable itself).
const EDGE_SLACK: u64 = 8;
/// Cycles may differ from instructions (QEMU's cycle counter follows
/// virtual time: with `-icount shift=0`, one nanosecond per instruction of
/// the whole machine while the guest counts): at most this factor above.
const CYCLE_FACTOR: u64 = 2;
/// How far below overflow the overflow test starts its counter (cycles).
const OVERFLOW_DISTANCE: u64 = 20_000;
/// How long the overflow test waits for an interrupt, and then watches for
/// a spurious second one (counter ticks: ms × CNTFRQ / 1000).
const OVERFLOW_WAIT_MS: u64 = 500;
const QUIET_MS: u64 = 20;

/// Bits of the pmu-count result.
pub mod count_check {
    /// ID_AA64DFR0_EL1.PMUVer is below PMUv3p1 (no PMU offered).
    pub const NO_PMU: u64 = 1 << 0;
    /// PMCR_EL0.N is 0.
    pub const NO_COUNTERS: u64 = 1 << 1;
    /// PMCEID0_EL0 has no instruction event (QEMU without -icount).
    pub const NO_INSTRUCTION_EVENT: u64 = 1 << 2;
    /// The compute loop's instruction count is off.
    pub const COMPUTE_INSTRUCTIONS: u64 = 1 << 3;
    /// The compute loop's cycle count is 0 or far above its instructions.
    pub const COMPUTE_CYCLES: u64 = 1 << 4;
    /// The HYP_PING loop counted more than the guest's own instructions
    /// (EL2's were counted) or fewer.
    pub const HYP_INSTRUCTIONS: u64 = 1 << 5;
    /// The HOST_PING loop counted the host's (or EL2's) instructions.
    pub const HOST_INSTRUCTIONS: u64 = 1 << 6;
    /// A HYP_PING or HOST_PING answer was wrong.
    pub const PING: u64 = 1 << 7;
    /// The HYP/HOST_PING loops' cycle counts include EL2's or the host's.
    pub const EXIT_CYCLES: u64 = 1 << 8;
}

/// Bits of the pmu-overflow result.
pub mod overflow_check {
    pub const NO_PMU: u64 = 1 << 0;
    /// No PMU interrupt within [`super::OVERFLOW_WAIT_MS`].
    pub const NOT_TAKEN: u64 = 1 << 1;
    /// The handler did not find counter 0's overflow flag.
    pub const NO_OVERFLOW_FLAG: u64 = 1 << 2;
    /// More interrupts than overflows (the line did not drop).
    pub const SPURIOUS: u64 = 1 << 3;
    /// The second overflow (after the first was handled) was not taken.
    pub const SECOND_NOT_TAKEN: u64 = 1 << 4;
}

/// Bits of the pmu-isolation result.
pub mod isolation_check {
    pub const NO_PMU: u64 = 1 << 0;
    /// Fewer than two event counters.
    pub const TOO_FEW_COUNTERS: u64 = 1 << 1;
    /// The stopped counter 1 changed.
    pub const STOPPED_COUNTER: u64 = 1 << 2;
    /// PMEVTYPER1_EL0 changed.
    pub const EVENT_TYPE: u64 = 1 << 3;
    /// PMSELR_EL0 changed.
    pub const SELECT: u64 = 1 << 4;
    /// Counter 0 counted more (or less) than this VM's own instructions.
    pub const OWN_INSTRUCTIONS: u64 = 1 << 5;
    /// A HOST_PING answer was wrong.
    pub const PING: u64 = 1 << 6;
    /// PMCEID0_EL0 has no instruction event.
    pub const NO_INSTRUCTION_EVENT: u64 = 1 << 7;
}

macro_rules! write_sysreg {
    ($name:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: a PMU register of this guest's own PMU (the hypervisor
        // traps the first access and loads it); the isb puts the write in
        // force before the next instruction.
        unsafe { asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) v, options(nomem, nostack, preserves_flags)) };
    }};
}

/// Whether the guest was offered a PMU (ID_AA64DFR0_EL1.PMUVer ≥ PMUv3p1,
/// not IMPLEMENTATION DEFINED).
pub fn offered() -> bool {
    let v = (read_sysreg!("id_aa64dfr0_el1") >> PMUVER_SHIFT) & 0xf;
    (PMUVER_V3P1..0xf).contains(&v)
}

/// PMCR_EL0.N.
pub fn counters() -> u64 {
    (read_sysreg!("pmcr_el0") >> PMCR_N_SHIFT) & PMCR_N_MASK
}

fn has_instruction_event() -> bool {
    read_sysreg!("pmceid0_el0") & (1 << EVENT_INST_RETIRED) != 0
}

/// Counter 0 counts `event` (filter: EL1, and NSH asking for EL2 too),
/// the cycle counter likewise; all reset, PMCR.E on.
fn setup(event: u64) {
    write_sysreg!("pmcntenclr_el0", u64::from(u32::MAX));
    write_sysreg!("pmintenclr_el1", u64::from(u32::MAX));
    write_sysreg!("pmovsclr_el0", u64::from(u32::MAX));
    write_sysreg!("pmevtyper0_el0", event | FILTER_NSH);
    write_sysreg!("pmccfiltr_el0", FILTER_NSH);
    write_sysreg!("pmcr_el0", PMCR_E | PMCR_P | PMCR_C | PMCR_LC);
}

/// (counter 0, cycle counter) after `iterations` of a 3-instruction loop
/// with both counting.
fn count_compute(iterations: u64) -> (u64, u64) {
    write_sysreg!("pmevcntr0_el0", 0);
    write_sysreg!("pmccntr_el0", 0);
    let en = COUNTER0 | CYCLE_COUNTER;
    // SAFETY: PMU enables and a register-only loop; x9/x10 are scratch.
    unsafe {
        asm!(
            "msr pmcntenset_el0, {en}",
            "isb",
            "1:",
            "add {acc}, {acc}, #1",
            "subs {n}, {n}, #1",
            "b.ne 1b",
            "msr pmcntenclr_el0, {en}",
            "isb",
            en = in(reg) en,
            acc = inout(reg) 0u64 => _,
            n = inout(reg) iterations.max(1) => _,
            options(nomem, nostack),
        );
    }
    (read_sysreg!("pmevcntr0_el0"), read_sysreg!("pmccntr_el0"))
}

/// (counter 0, cycle counter, wrong answers) after `iterations` of
/// `hvc #0` with function `id` (HYP_PING: answered at EL2; HOST_PING: by
/// the host), 4 guest instructions an iteration.
fn count_hvc(id: u64, iterations: u64) -> (u64, u64, u64) {
    write_sysreg!("pmevcntr0_el0", 0);
    write_sysreg!("pmccntr_el0", 0);
    let en = COUNTER0 | CYCLE_COUNTER;
    let mut wrong: u64 = 0;
    // SAFETY: the test ABI's ping: the answer is x0 = 0, x1 = x1 + 1; x2..x17
    // may be clobbered by the call convention (declared). The PMU enables
    // bracket the loop.
    unsafe {
        asm!(
            "msr pmcntenset_el0, {en}",
            "isb",
            "1:",
            "mov x0, {id}",
            "hvc #0",
            "subs {n}, {n}, #1",
            "b.ne 1b",
            "msr pmcntenclr_el0, {en}",
            "isb",
            "cmp x0, #0",
            "cinc {wrong}, {wrong}, ne",
            en = in(reg) en,
            id = in(reg) id,
            n = inout(reg) iterations.max(1) => _,
            wrong = inout(reg) wrong,
            out("x0") _, out("x1") _, out("x2") _, out("x3") _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack),
        );
    }
    (read_sysreg!("pmevcntr0_el0"), read_sysreg!("pmccntr_el0"), wrong)
}

/// Whether `counted` is the loop's own `expect` instructions (plus the
/// edges): nothing of EL2's or the host's.
fn own(counted: u64, expect: u64) -> bool {
    (expect..=expect + EDGE_SLACK).contains(&counted)
}

/// Whether `cycles` is plausible for `instructions` of the guest's own.
fn plausible_cycles(cycles: u64, instructions: u64) -> bool {
    cycles > 0 && cycles <= instructions * CYCLE_FACTOR + EDGE_SLACK
}

/// The cycle counter running (the bench's PMU user: `hvc_host_pmu`).
pub fn start_cycle_counter() {
    write_sysreg!("pmccfiltr_el0", 0);
    write_sysreg!("pmcr_el0", PMCR_E | PMCR_C | PMCR_LC);
    write_sysreg!("pmcntenset_el0", CYCLE_COUNTER);
}

/// pmu-count.
pub fn count(iterations: u64) -> u64 {
    use count_check::*;
    let n = if iterations == 0 { DEFAULT_ITERATIONS } else { iterations };
    if !offered() {
        println!("guest: pmu: no PMU offered (ID_AA64DFR0_EL1 {:#x})", read_sysreg!("id_aa64dfr0_el1"));
        return NO_PMU;
    }
    let mut failed = 0;
    let nc = counters();
    if nc == 0 {
        failed |= NO_COUNTERS;
    }
    if !has_instruction_event() {
        println!("guest: pmu: no instruction event (PMCEID0 {:#x}): run under -icount", read_sysreg!("pmceid0_el0"));
        return failed | NO_INSTRUCTION_EVENT;
    }
    setup(EVENT_INST_RETIRED);
    let (insns, cycles) = count_compute(n);
    crate::hvc::report(REPORT_INSTRUCTIONS_COMPUTE, insns);
    crate::hvc::report(REPORT_CYCLES_COMPUTE, cycles);
    let expect = n * COMPUTE_LOOP_INSNS;
    if !own(insns, expect) {
        failed |= COMPUTE_INSTRUCTIONS;
    }
    if !plausible_cycles(cycles, insns) {
        failed |= COMPUTE_CYCLES;
    }
    println!("guest: pmu: {nc} counters; compute loop {n}x{COMPUTE_LOOP_INSNS}: instructions={insns} cycles={cycles}");

    let expect = n * HVC_LOOP_INSNS;
    let (hyp, hyp_cycles, wrong_hyp) = count_hvc(test::HYP_PING, n);
    crate::hvc::report(REPORT_INSTRUCTIONS_HYP, hyp);
    let (host, host_cycles, wrong_host) = count_hvc(test::HOST_PING, n);
    crate::hvc::report(REPORT_INSTRUCTIONS_HOST, host);
    println!(
        "guest: pmu: {n} HYP_PINGs: instructions={hyp} cycles={hyp_cycles}; {n} HOST_PINGs: instructions={host} cycles={host_cycles} (own: {expect})"
    );
    if !own(hyp, expect) {
        failed |= HYP_INSTRUCTIONS;
    }
    if !own(host, expect) {
        failed |= HOST_INSTRUCTIONS;
    }
    if wrong_hyp + wrong_host != 0 {
        failed |= PING;
    }
    if !plausible_cycles(hyp_cycles, hyp) || !plausible_cycles(host_cycles, host) {
        failed |= EXIT_CYCLES;
    }
    println!("guest: pmu-count status={failed:#x}");
    failed
}

/// Interrupts the handler took for the PMU, and overflow flags it found.
static PMU_IRQS: AtomicU64 = AtomicU64::new(0);
static PMU_OVERFLOWS: AtomicU64 = AtomicU64::new(0);

/// The PMU's interrupt (`irqs::handle`, before its EOI): clears the
/// overflow flags so the line drops, and counts.
pub fn on_irq() {
    PMU_IRQS.fetch_add(1, SeqCst);
    let ovs = read_sysreg!("pmovsclr_el0");
    if ovs & COUNTER0 != 0 {
        PMU_OVERFLOWS.fetch_add(1, SeqCst);
    }
    write_sysreg!("pmovsclr_el0", ovs);
}

fn ticks_ms(ms: u64) -> u64 {
    read_sysreg!("cntfrq_el0") / 1000 * ms
}

/// Spins until `PMU_IRQS` reaches `n` or `ms` pass; whether it did.
fn wait_irqs(n: u64, ms: u64) -> bool {
    let end = read_sysreg!("cntvct_el0") + ticks_ms(ms);
    while PMU_IRQS.load(SeqCst) < n {
        if read_sysreg!("cntvct_el0") > end {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// Starts counter 0 counting cycles [`OVERFLOW_DISTANCE`] below its 32-bit
/// overflow, with its overflow interrupt enabled.
fn arm_overflow() {
    write_sysreg!("pmcntenclr_el0", COUNTER0);
    write_sysreg!("pmevcntr0_el0", u64::from(u32::MAX) + 1 - OVERFLOW_DISTANCE);
    write_sysreg!("pmintenset_el1", COUNTER0);
    write_sysreg!("pmcntenset_el0", COUNTER0);
}

/// pmu-overflow.
pub fn overflow() -> u64 {
    use overflow_check::*;
    if !offered() {
        return NO_PMU;
    }
    crate::irqs::pmu_irq_setup(PMU_INTID);
    setup(EVENT_CPU_CYCLES);
    let mut failed = 0;
    arm_overflow();
    crate::irqs::on();
    if !wait_irqs(1, OVERFLOW_WAIT_MS) {
        failed |= NOT_TAKEN;
    }
    // The handler cleared the flag: the line is low, nothing more comes.
    let end = read_sysreg!("cntvct_el0") + ticks_ms(QUIET_MS);
    while read_sysreg!("cntvct_el0") < end {
        core::hint::spin_loop();
    }
    let after_first = PMU_IRQS.load(SeqCst);
    if after_first > 1 {
        failed |= SPURIOUS;
    }
    // Again: the physical interrupt was deactivated by the guest's EOI.
    arm_overflow();
    if !wait_irqs(after_first + 1, OVERFLOW_WAIT_MS) {
        failed |= SECOND_NOT_TAKEN;
    }
    crate::irqs::off();
    write_sysreg!("pmcntenclr_el0", COUNTER0);
    let (irqs, ovs) = (PMU_IRQS.load(SeqCst), PMU_OVERFLOWS.load(SeqCst));
    if ovs < 2 || ovs != irqs {
        failed |= NO_OVERFLOW_FLAG;
    }
    println!("guest: pmu-overflow: interrupts={irqs} overflows={ovs} status={failed:#x}");
    failed
}

/// pmu-isolation: this VM's values (from `pattern`) in a stopped counter,
/// its event type and PMSELR survive HOST_PINGs during which another VM
/// runs; its running counter counts only its own instructions.
pub fn isolation(pattern: u64) -> u64 {
    use isolation_check::*;
    const PINGS: u64 = 200;
    if !offered() {
        return NO_PMU;
    }
    if counters() < 2 {
        return TOO_FEW_COUNTERS;
    }
    if !has_instruction_event() {
        return NO_INSTRUCTION_EVENT;
    }
    setup(EVENT_INST_RETIRED);
    let stopped = pattern & u64::from(u32::MAX);
    let event = if pattern & 1 != 0 { EVENT_CPU_CYCLES } else { EVENT_INST_RETIRED };
    let select = pattern & 1;
    write_sysreg!("pmevtyper1_el0", event);
    write_sysreg!("pmevcntr1_el0", stopped);
    write_sysreg!("pmcntenclr_el0", COUNTER1);
    write_sysreg!("pmselr_el0", select);
    let (insns, _, wrong) = count_hvc(test::HOST_PING, PINGS);
    let mut failed = 0;
    if read_sysreg!("pmevcntr1_el0") != stopped {
        failed |= STOPPED_COUNTER;
    }
    if read_sysreg!("pmevtyper1_el0") & 0xffff != event {
        failed |= EVENT_TYPE;
    }
    if read_sysreg!("pmselr_el0") & 0x1f != select {
        failed |= SELECT;
    }
    if !own(insns, PINGS * HVC_LOOP_INSNS) {
        failed |= OWN_INSTRUCTIONS;
    }
    if wrong != 0 {
        failed |= PING;
    }
    println!(
        "guest: pmu-isolation pattern={pattern:#x}: counter1={:#x} instructions={insns} (own {}) status={failed:#x}",
        read_sysreg!("pmevcntr1_el0"),
        PINGS * HVC_LOOP_INSNS
    );
    failed
}
