//! The hostile-guest suite: mode 50, x2 = the case. Each case does one
//! thing a hostile or broken guest might, and reports what it saw
//! (SET_STATUS): 0 when the machine behaved as the architecture and
//! spevisor's documentation say (an abort or UNDEF where one is due,
//! registers unchanged where writes must be ignored, answers to every
//! call), else the bits of what went wrong. Cases whose containment is the
//! VM's end (a stop, the budget, nothing left to wake it) never report.
//! The host's `hostile-suite` scenario (host/src/hostile_suite.rs) runs each
//! case beside a well-behaved VM and holds the fate it expects of it.

use crate::hvc;
use core::arch::asm;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};
use spevisor_abi::guest::machine::{GICD_IPA, GICR_IPA};
use spevisor_abi::guest::{psci, smccc};

pub const MODE_HOSTILE_CASE: u64 = 50;

/// Set while a case expects synchronous exceptions at EL1: the handler
/// records them and resumes at [`RECOVER`] (if set) or after the
/// faulting instruction.
static EXPECTING: AtomicU64 = AtomicU64::new(0);
/// Exceptions taken while expecting, and the last one's ESR and FAR.
static TAKEN: AtomicU64 = AtomicU64::new(0);
static LAST_ESR: AtomicU64 = AtomicU64::new(0);
static LAST_FAR: AtomicU64 = AtomicU64::new(0);
/// Where to resume after an instruction abort (0: after the instruction).
static RECOVER: AtomicU64 = AtomicU64::new(0);

/// Exception classes (ESR_EL1.EC) and fault status codes the cases expect.
const EC_UNKNOWN: u64 = 0x00;
const EC_IABT_SAME_EL: u64 = 0x21;
const EC_DABT_SAME_EL: u64 = 0x25;
const ESR_EC_SHIFT: u64 = 26;
const ESR_EC_MASK: u64 = 0x3f;
const ESR_FSC_MASK: u64 = 0x3f;
/// DFSC: alignment fault.
const FSC_ALIGNMENT: u64 = 0x21;
/// SET_STATUS bits.
const WRONG_EXCEPTION: u64 = 1 << 0;
const NO_EXCEPTION: u64 = 1 << 1;
const WRONG_FAR: u64 = 1 << 2;
const WRONG_ANSWER: u64 = 1 << 3;
const CHANGED: u64 = 1 << 4;
/// Returned by a case whose containment is the VM's end, if it ever
/// comes back.
const SURVIVED: u64 = 0xbad;

/// Addresses a guest must not reach: outside its IPA space's RAM and
/// devices, where the hypervisor's image and pool and the host's memory
/// are physically (as IPAs, nothing of this VM is there).
const OUTSIDE_IPA: u64 = crate::mmu::OUTSIDE_IPA;
const HYP_IMAGE_PA: u64 = 0x4020_0000;
const HYP_POOL_PA: u64 = 0x4060_0000;
const HOST_PA: u64 = 0x5000_0000;
const UART: u64 = crate::uart::PL011_BASE;
/// Calls and maintenance operations per storm.
const STORM: u64 = 10_000;
/// SGIs a storm sends itself.
const SGI_STORM: u64 = 20_000;

/// Called by the guest's exception vector for synchronous exceptions at
/// EL1 (main.rs); `true` if a case expected it.
pub fn on_exception(esr: u64, elr: u64, far: u64) -> bool {
    if EXPECTING.load(SeqCst) == 0 {
        return false;
    }
    TAKEN.fetch_add(1, SeqCst);
    LAST_ESR.store(esr, SeqCst);
    LAST_FAR.store(far, SeqCst);
    let recover = RECOVER.swap(0, SeqCst);
    let next = if recover != 0 { recover } else { elr + 4 };
    // SAFETY: the return address of this exception (eret in start.S).
    unsafe { asm!("msr elr_el1, {}", in(reg) next, options(nomem, nostack, preserves_flags)) };
    true
}

fn ec(esr: u64) -> u64 {
    esr >> ESR_EC_SHIFT & ESR_EC_MASK
}

/// Runs `f` expecting exactly one exception of class `want_ec` (and, if
/// given, FAR = `want_far` and DFSC = `want_fsc`).
fn expect_one(want_ec: u64, want_far: Option<u64>, want_fsc: Option<u64>, f: impl FnOnce()) -> u64 {
    TAKEN.store(0, SeqCst);
    EXPECTING.store(1, SeqCst);
    f();
    EXPECTING.store(0, SeqCst);
    let esr = LAST_ESR.load(SeqCst);
    match TAKEN.load(SeqCst) {
        0 => NO_EXCEPTION,
        1 if ec(esr) != want_ec || want_fsc.is_some_and(|s| esr & ESR_FSC_MASK != s) => {
            println!("guest: hostile: ESR {esr:#x}, expected EC {want_ec:#x}");
            WRONG_EXCEPTION
        }
        1 if want_far.is_some_and(|a| LAST_FAR.load(SeqCst) != a) => WRONG_FAR,
        1 => 0,
        _ => WRONG_EXCEPTION,
    }
}

fn load(addr: u64) {
    // SAFETY: a deliberate load the case expects to abort; if it does not,
    // it reads a word the guest may read.
    unsafe { asm!("ldr {v}, [{a}]", a = in(reg) addr, v = out(reg) _, options(nostack)) };
}

fn store(addr: u64) {
    // SAFETY: as `load`, a store the case expects to abort.
    unsafe { asm!("str xzr, [{a}]", a = in(reg) addr, options(nostack)) };
}

/// Branches to `target`; the instruction abort resumes after the branch.
fn branch(target: u64) {
    // SAFETY: the branch faults at `target` (expected), and the handler
    // resumes at label 1 through RECOVER; x30 and the C-ABI registers are
    // declared clobbered in case anything there ever ran.
    unsafe {
        asm!("adr x9, 1f", "str x9, [{rec}]", "blr {t}", "1:",
             rec = in(reg) RECOVER.as_ptr(), t = in(reg) target,
             out("x9") _, out("x30") _, clobber_abi("C"))
    };
}

/// An outside-RAM access: an external abort, injected as KVM does.
fn abort_at(addr: u64, write: bool) -> u64 {
    expect_one(EC_DABT_SAME_EL, Some(addr), None, || if write { store(addr) } else { load(addr) })
}

macro_rules! undef {
    ($($insn:literal),+) => {{
        let mut bad = 0;
        $(
            bad |= expect_one(EC_UNKNOWN, None, None, || {
                // SAFETY: a system-register access the hypervisor hides:
                // it UNDEFs (expected) or does nothing.
                unsafe { asm!($insn, out("x0") _, options(nostack)) }
            });
        )+
        bad
    }};
}

fn storm_cache_tlb() -> u64 {
    for set in 0..STORM {
        // SAFETY: set/way and TLB/IC maintenance by this VM on itself;
        // EL2 traps or upgrades what would reach beyond it.
        unsafe {
            asm!("dc isw, {sw}", "dc csw, {sw}", "dc cisw, {sw}", "tlbi vmalle1is", "ic iallu", "ic ialluis",
                 "dsb ish", "isb", sw = in(reg) (set & 0x7f) << 6, options(nostack))
        };
    }
    0
}

/// PSCI's most negative error code (INVALID_ADDRESS).
const PSCI_LAST_ERROR: i64 = -9;

/// Every PSCI function (32- and 64-bit IDs) by HVC and SMC with garbage
/// arguments, except those that would end or park this vcpu.
fn psci_all() -> u64 {
    const ENDING: [u64; 6] = [0x1, 0x2, 0x8, 0x9, 0x12, 0x15];
    let mut wrong = 0;
    for base in [0x8400_0000u64, 0xc400_0000] {
        for f in (0..0x20).filter(|f| !ENDING.contains(f)) {
            for smc in [false, true] {
                let r = if smc { smc_call(base + f) } else { hvc::call(base + f, u64::MAX, 0xdead_beef, 1 << 63)[0] };
                // Every answer is a result or one of PSCI's errors (-1..-9).
                if (r as i64) < PSCI_LAST_ERROR {
                    wrong += 1;
                }
            }
        }
    }
    u64::from(wrong != 0) * WRONG_ANSWER
}

fn smc_call(id: u64) -> u64 {
    let r: u64;
    // SAFETY: an SMC (trapped by EL2, answered like an HVC); x0..x17 may
    // change (SMCCC).
    unsafe {
        asm!("smc #0", inout("x0") id => r, inout("x1") u64::MAX => _, inout("x2") 0xdead_beefu64 => _,
             inout("x3") 1u64 << 63 => _, clobber_abi("C"))
    };
    r
}

/// Hypercalls with IDs no service owns and garbage arguments.
fn hvc_garbage() -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut wrong = 0;
    for _ in 0..STORM / 10 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Fast calls of the vendor-specific-hypervisor range's top IDs and
        // of owners nobody implements (Trusted OS 50..63).
        let id = 0xf200_0000 | (x & 0x00ff_ffff);
        if hvc::call(id, x, !x, x.rotate_left(7))[0] != smccc::NOT_SUPPORTED {
            wrong += 1;
        }
    }
    u64::from(wrong != 0) * WRONG_ANSWER
}

/// MMIO of every size (1, 2, 4, 8 bytes) to the UART: the registers that
/// take the size answer, the others read as zero; nothing stops the VM.
fn mmio_sizes() -> u64 {
    let a = UART + spevisor_pl011::reg::FR;
    // SAFETY: loads of the UART's flag register (no side effect but the
    // model's polling shortcut) and stores of NULs to its data register.
    unsafe {
        asm!("ldrb {v:w}, [{a}]", "ldrh {v:w}, [{a}]", "ldr {v:w}, [{a}]", "ldr {v}, [{a}]",
             "strb wzr, [{d}]", "strh wzr, [{d}]", "str wzr, [{d}]", "str xzr, [{d}]",
             a = in(reg) a, d = in(reg) UART, v = out(reg) _, options(nostack))
    };
    0
}

/// A misaligned load from Device memory: the guest's own alignment fault
/// (stage 1) where the CPU raises it; where it does not (QEMU's TCG lets
/// it through), the access reaches the host, which refuses the misaligned
/// access (reads as zero) and the guest goes on.
fn mmio_unaligned() -> u64 {
    match expect_one(EC_DABT_SAME_EL, Some(UART + 2), Some(FSC_ALIGNMENT), || {
        // SAFETY: faults (expected) before any access, or reads a register.
        unsafe { asm!("ldr {v:w}, [{a}]", a = in(reg) UART + 2, v = out(reg) _, options(nostack)) }
    }) {
        NO_EXCEPTION => 0,
        other => other,
    }
}

fn mmio_pair() -> u64 {
    // SAFETY: a load pair from the UART: no instruction syndrome, the VM is
    // stopped (expected) and nothing after it runs.
    unsafe { asm!("ldp {a}, {b}, [{p}]", p = in(reg) UART, a = out(reg) _, b = out(reg) _, options(nostack)) };
    SURVIVED
}

fn mmio_exclusive() -> u64 {
    // SAFETY: a load-exclusive from the UART: no syndrome, stopped.
    unsafe { asm!("ldxr {v}, [{p}]", "clrex", p = in(reg) UART, v = out(reg) _, options(nostack)) };
    SURVIVED
}

fn mmio_atomic() -> u64 {
    // SAFETY: an atomic add to the UART (FEAT_LSE): no syndrome, stopped.
    unsafe {
        asm!(".arch_extension lse", "ldadd {s}, {v}, [{p}]", p = in(reg) UART, s = in(reg) 1u64, v = out(reg) _, options(nostack))
    };
    SURVIVED
}

fn wfi_forever() -> u64 {
    // SAFETY: masks interrupts and waits: nothing is armed, nothing can
    // wake this vcpu; the host stops the VM (expected).
    unsafe { asm!("msr daifset, #0xf", "1: wfi", "b 1b", options(nomem, nostack, noreturn)) }
}

fn spin_masked() -> u64 {
    // SAFETY: spins with interrupts masked; preemption and the exit budget
    // end the VM (expected).
    unsafe { asm!("msr daifset, #0xf", "1: b 1b", options(nomem, nostack, noreturn)) }
}

/// SGIs to itself with IRQs masked (they stay pending, nothing else).
fn sgi_storm() -> u64 {
    for _ in 0..SGI_STORM {
        // SAFETY: ICC_SGI1R_EL1 (trapped, delivered by the host): SGI 3 to
        // this vcpu (Aff0 target 0). IRQs stay masked.
        unsafe { asm!("msr icc_sgi1r_el1, {}", in(reg) 3u64 << 24 | 1, options(nomem, nostack)) };
    }
    0
}

/// A virtual timer that is always due and never acknowledged (IRQs
/// masked) while the guest keeps calling the host: no interrupt storm
/// holds the machine (the host makes the physical interrupt active).
fn timer_storm() -> u64 {
    // SAFETY: this vcpu's own timer, enabled with a compare value of 0.
    unsafe { asm!("msr cntv_cval_el0, xzr", "msr cntv_ctl_el0, {}", "isb", in(reg) 1u64, options(nomem, nostack)) };
    let mut wrong = 0;
    for i in 0..STORM / 10 {
        if hvc::host_ping(i) != (0, i + 1) {
            wrong += 1;
        }
    }
    u64::from(wrong != 0) * WRONG_ANSWER
}

/// CPU_ON of vcpus this one-vcpu VM does not have, and of entry points
/// outside RAM or misaligned: each its PSCI error.
fn cpu_on_bad() -> u64 {
    let ram = crate::mmu::RAM_BASE;
    let cases = [
        (1u64, ram, psci::INVALID_PARAMETERS),
        (0xff, ram, psci::INVALID_PARAMETERS),
        (1 << 8, ram, psci::INVALID_PARAMETERS),
        (u64::MAX, ram, psci::INVALID_PARAMETERS),
        (1, 0, psci::INVALID_PARAMETERS),
        (0, ram, psci::ALREADY_ON),
    ];
    let wrong = cases.iter().filter(|(t, e, want)| hvc::call(psci::CPU_ON_64, *t, *e, 0)[0] != *want).count();
    u64::from(wrong != 0) * WRONG_ANSWER
}

/// Writes to the GIC's read-only registers are ignored.
fn gic_read_only() -> u64 {
    const GICD_TYPER: u64 = 0x4;
    const GICD_IIDR: u64 = 0x8;
    const GICR_IIDR: u64 = 0x4;
    const GICR_TYPER: u64 = 0x8;
    let regs = [GICD_IPA + GICD_TYPER, GICD_IPA + GICD_IIDR, GICR_IPA + GICR_IIDR, GICR_IPA + GICR_TYPER];
    let mut changed = 0;
    for r in regs {
        // SAFETY: the guest machine's GIC frames, mapped Device.
        unsafe {
            let before = (r as *const u32).read_volatile();
            (r as *mut u32).write_volatile(!before);
            if (r as *const u32).read_volatile() != before {
                changed += 1;
            }
        }
    }
    u64::from(changed != 0) * CHANGED
}

/// VBAR_EL1 pointing at memory the VM does not have, then an exception:
/// the vector fetch aborts, which needs the vector again. The hypervisor
/// must stop this VM (a loop no guest can leave), not hang.
fn vector_loop() -> u64 {
    // SAFETY: deliberately unrecoverable: the new vector base is mapped
    // Normal by the guest's stage 1 but absent at stage 2; udf takes the
    // exception there.
    unsafe { asm!("msr vbar_el1, {v}", "isb", "udf #0", v = in(reg) HOST_PA, options(nostack)) };
    SURVIVED
}

/// Every breakpoint/watchpoint control and value register and MDSCR_EL1
/// written with all ones (KDE off, so nothing fires at EL1): the guest's
/// own registers, switched lazily; nothing reaches the host's.
fn debug_garbage() -> u64 {
    // SAFETY: this vcpu's debug registers (its own once loaded); with
    // MDSCR_EL1.KDE clear and PSTATE.D set no debug exception is taken at
    // EL1, and EL0 never runs here. Cleared again afterwards.
    unsafe {
        asm!("msr daifset, #8",
             "msr dbgbvr0_el1, {o}", "msr dbgbcr0_el1, {o}", "msr dbgwvr0_el1, {o}", "msr dbgwcr0_el1, {o}",
             "msr dbgbvr1_el1, {o}", "msr dbgbcr1_el1, {o}", "msr dbgwvr1_el1, {o}", "msr dbgwcr1_el1, {o}",
             "msr mdscr_el1, {m}", "isb",
             "msr dbgbcr0_el1, xzr", "msr dbgwcr0_el1, xzr", "msr dbgbcr1_el1, xzr", "msr dbgwcr1_el1, xzr",
             "msr mdscr_el1, xzr", "isb", "msr daifclr, #8",
             o = in(reg) u64::MAX, m = in(reg) !(MDSCR_KDE | MDSCR_SS | MDSCR_MDE), options(nostack))
    };
    0
}
const MDSCR_SS: u64 = 1 << 0;
const MDSCR_KDE: u64 = 1 << 13;
const MDSCR_MDE: u64 = 1 << 15;

/// The guest's PMU programmed to count everything everywhere (PMCR all
/// ones, event filters asking for EL2 and EL3, every counter enabled,
/// user access on) while it calls the host: the hypervisor keeps it to
/// the guest (MDCR_EL2.HPMD), and the host's profile stays its own (the
/// QEMU test checks the summary).
fn pmu_garbage() -> u64 {
    // SAFETY: this vcpu's PMU (loaded lazily on the first access); the
    // filter bits only ask, EL2 decides what counts.
    unsafe {
        asm!("msr pmcr_el0, {o}", "msr pmccfiltr_el0, {f}", "msr pmselr_el0, xzr", "msr pmxevtyper_el0, {f}",
             "msr pmcntenset_el0, {o}", "msr pmuserenr_el0, {o}", "msr pmintenclr_el1, {o}", "isb",
             o = in(reg) u64::MAX, f = in(reg) PMEVTYPER_NSH_M, options(nostack))
    };
    let mut wrong = 0;
    for i in 0..STORM / 10 {
        if hvc::host_ping(i) != (0, i + 1) {
            wrong += 1;
        }
    }
    // SAFETY: turns the counters off again.
    unsafe { asm!("msr pmcntenclr_el0, {}", "msr pmcr_el0, xzr", "isb", in(reg) u64::MAX, options(nostack)) };
    u64::from(wrong != 0) * WRONG_ANSWER
}
/// PMEVTYPER/PMCCFILTR: count at EL2 (NSH) and at EL3 (M).
const PMEVTYPER_NSH_M: u64 = (1 << 27) | (1 << 26);

/// SMCs with the IDs of services nobody gives guests (SiP, OEM, standard
/// hypervisor, Trusted OS): NOT_SUPPORTED, never forwarded to firmware.
fn smc_unknown() -> u64 {
    let ids = [0xc200_0000u64, 0x8200_ff00, 0xc300_0001, 0xc500_0000, 0xf200_0001, 0xbf00_0000];
    let wrong = ids.iter().filter(|id| smc_call(**id) != smccc::NOT_SUPPORTED).count();
    u64::from(wrong != 0) * WRONG_ANSWER
}

/// Loads and stores of every size at the GIC's reserved and out-of-frame
/// offsets: read as zero, writes ignored (the host warns), the VM goes on.
fn gic_garbage() -> u64 {
    const RESERVED: [u64; 3] = [0xe000, 0xfff8, 0x20];
    for off in RESERVED {
        let a = GICD_IPA + off;
        // SAFETY: the distributor's frame (mapped Device): the host
        // emulates every access, bad ones read zero and change nothing.
        unsafe {
            asm!("ldrb {v:w}, [{a}]", "ldrh {v:w}, [{a}]", "ldr {v:w}, [{a}]", "ldr {v}, [{a}]",
                 "strb wzr, [{a}]", "strh wzr, [{a}]", "str wzr, [{a}]", "str xzr, [{a}]",
                 a = in(reg) a, v = out(reg) _, options(nostack))
        };
    }
    0
}

/// Cache maintenance by VA at an IPA the VM does not have (DC CIVAC):
/// the guest gets an external abort, as for a load, or the operation
/// completes as nothing; it never reaches memory that is not the VM's.
fn cache_op_outside() -> u64 {
    match expect_one(EC_DABT_SAME_EL, Some(HOST_PA), None, || {
        // SAFETY: maintenance of a line the VM does not have (expected to
        // fault or do nothing).
        unsafe { asm!("dc civac, {a}", "dsb sy", a = in(reg) HOST_PA, options(nostack)) }
    }) {
        NO_EXCEPTION => 0,
        other => other,
    }
}

/// PMCR_EL0 as EL1 reads it, or `None` if the read UNDEFs (no PMU
/// offered).
pub fn pmcr_if_offered() -> Option<u64> {
    let mut v = 0u64;
    let r = expect_one(EC_UNKNOWN, None, None, || {
        // SAFETY: reads PMCR_EL0 (emulated at EL2, or UNDEF: expected).
        unsafe { asm!("mrs {}, pmcr_el0", inout(reg) v, options(nostack)) }
    });
    (r == NO_EXCEPTION).then_some(v)
}

/// The cases, in order: x2 selects one.
pub const CASES: &[fn() -> u64] = &[
    || abort_at(OUTSIDE_IPA, false),
    || abort_at(OUTSIDE_IPA, true),
    || abort_at(HYP_IMAGE_PA, false),
    || abort_at(HYP_POOL_PA, true),
    || abort_at(HOST_PA, false),
    || expect_one(EC_IABT_SAME_EL, Some(HOST_PA), None, || branch(HOST_PA)),
    || expect_one(EC_IABT_SAME_EL, Some(UART), None, || branch(UART)),
    // SPE (PMBIDR_EL1, PMSCR_EL1), trace (TRCIDR0), the activity monitors
    // (AMCR_EL0) and RAS error records (ERRSELR_EL1): hidden, UNDEF.
    || undef!("mrs x0, s3_0_c9_c10_7", "msr s3_0_c9_c9_0, x0"),
    || undef!("mrs x0, s2_1_c0_c8_7"),
    || undef!("mrs x0, s3_3_c13_c2_0"),
    || undef!("msr s3_0_c5_c3_1, xzr"),
    storm_cache_tlb,
    psci_all,
    hvc_garbage,
    mmio_sizes,
    mmio_unaligned,
    mmio_pair,
    mmio_exclusive,
    mmio_atomic,
    wfi_forever,
    spin_masked,
    sgi_storm,
    timer_storm,
    cpu_on_bad,
    gic_read_only,
    vector_loop,
    debug_garbage,
    pmu_garbage,
    smc_unknown,
    gic_garbage,
    cache_op_outside,
    // AArch32 EL0 (A32 and T32), where the CPU has it: hostile32.rs.
    crate::hostile32::pmu_cp15,
    crate::hostile32::conditional_traps_fail,
    crate::hostile32::t32_it_block,
    crate::hostile32::t32_mmio_16bit,
    crate::hostile32::cp14_debug,
    crate::hostile32::to_el1,
    crate::hostile32::aborts_to_el1,
    crate::hostile32::outside_ipa,
];

/// Mode 50: runs case `case`; an unknown case number is itself reported.
pub fn run(case: u64) -> u64 {
    match CASES.get(case as usize) {
        Some(f) => f(),
        None => {
            println!("guest: hostile: no case {case}");
            crate::status::UNKNOWN_MODE
        }
    }
}
