//! What the host does with guests: the demo, and the scenarios the QEMU tests
//! select with `spevisor.scenario=<name>` on the command line. Each prints
//! facts (statuses, counts, the recorded world-switch steps) that the test
//! harness checks itself.

use crate::hprintln;
use crate::hyp;
use crate::vmm::{host_free_pages, run_alternately, Boot, Ending, Vm, VmConfig};
use log::{error, info};
use spevisor_abi::{check_switch_order, Call, InfoItem, Step, SwitchOrder, TRACE_REGS, TRACE_STEPS_PER_REG};

/// The tiny guest, built by `cargo xtask` and embedded here.
pub static GUEST_IMAGE: &[u8] = &ALIGNED_GUEST.0;

/// `include_bytes!` promises no alignment; at 16 bytes the copy into guest
/// RAM (page aligned) runs memcpy's fast path whatever the layout of the
/// image around it (misaligned, it cost 240,000 more instructions per VM).
#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);
static ALIGNED_GUEST: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("SPEVISOR_GUEST_BIN")));

/// Guest RAM for the tiny guest.
pub const GUEST_RAM: u64 = 2 << 20;

/// Tiny-guest modes (x0 at entry; see guest/src/main.rs).
pub mod mode {
    pub const SELFTEST: u64 = 0;
    pub const CHECK: u64 = 2;
    pub const READ_OUTSIDE: u64 = 3;
    pub const PING_LOOP: u64 = 4;
    pub const SYSREG_LOOP: u64 = 5;
    pub const FP_CHECK: u64 = 9;
    pub const EXEC_OUTSIDE: u64 = 10;
    pub const HOSTILE: u64 = 11;
    pub const PAUTH_CHECK: u64 = 12;
    pub const VTIMER: u64 = 14;
    pub const VGIC: u64 = 15;
    pub const SMP: u64 = 16;
    pub const SPIN: u64 = 17;
    pub const VGIC_NEST: u64 = 18;
    pub const RESET: u64 = 19;
    pub const ABORT_ON_VECTOR: u64 = 21;
    pub const ABORT_LOOP: u64 = 22;
    pub const PTIMER: u64 = 23;
    /// The guest PMU tests (`guest/src/pmu.rs`).
    pub const PMU_COUNT: u64 = 30;
    pub const PMU_OVERFLOW: u64 = 31;
    pub const PMU_ISOLATION: u64 = 32;
}

/// Runs one test guest in `mode` with `vcpus` vcpus and argument `arg` to
/// its end; prints `<name>: ending=... status=...`.
pub fn irq_guest(t: &mut Totals, name: &'static str, mode: u64, vcpus: u32, arg: u64) {
    let boot = Boot::TestGuest { image: GUEST_IMAGE, args: [mode, GUEST_RAM, arg] };
    let mut vm = match Vm::create_booting(name, boot, VmConfig { ram: GUEST_RAM, vcpus }) {
        Ok(vm) => vm,
        Err(e) => return error!("{name}: cannot create the VM: {e}"),
    };
    let ending = vm.run();
    hprintln!(
        "{name}: ending={} status={} exits={} cntfrq={}",
        ending_name(Some(ending)),
        vm.status.map_or(-1, |s| s as i64),
        vm.exits,
        crate::irq::timer::frequency()
    );
    t.guest_status = vm.status;
    finish(vm, t);
}

/// Preemption: a VM whose vcpu 1 spins in `b .` with IRQs masked (its vcpu
/// 0 must still finish), a VM that only spins (stopped after `spin_exits`
/// exits, every one of them a preemption), and the selftest guest, all on
/// one CPU. The free-page counters must come back.
pub fn preempt(t: &mut Totals, spin_exits: u64) {
    let free = (hyp::info(InfoItem::HypFreePages).unwrap_or(0), host_free_pages());
    let mk = |name, mode, vcpus, arg| {
        let boot = Boot::TestGuest { image: GUEST_IMAGE, args: [mode, GUEST_RAM, arg] };
        Vm::create_booting(name, boot, VmConfig { ram: GUEST_RAM, vcpus })
            .map_err(|e| error!("{name}: cannot create the VM: {e}"))
            .ok()
    };
    let (Some(mut smp), Some(mut spin), Some(mut good)) =
        (mk("smp-spin", mode::SMP, 2, 0), mk("spinner", mode::SPIN, 1, 0), mk("selftest", mode::SELFTEST, 1, 0))
    else {
        return;
    };
    spin.max_exits = spin_exits;
    crate::vmm::run_all(&mut [&mut smp, &mut spin, &mut good]);
    hprintln!(
        "preempt: smp_spin={} smp_status={} spinner={} spinner_exits={} selftest={} selftest_status={}",
        ending_name(smp.ending),
        smp.status.map_or(-1, |s| s as i64),
        ending_name(spin.ending),
        spin.exits,
        ending_name(good.ending),
        good.status.map_or(-1, |s| s as i64)
    );
    for vm in [smp, spin, good] {
        finish(vm, t);
    }
    let after = (hyp::info(InfoItem::HypFreePages).unwrap_or(0), host_free_pages());
    hprintln!("preempt-pages: before={:?} after={:?} same={}", free, after, free == after);
}

/// Where the check mode writes: from 1 MiB into its RAM.
const CHECK_OFFSET: u64 = 1 << 20;

/// Totals for the summary line.
#[derive(Default)]
pub struct Totals {
    pub vms: u64,
    pub exits: u64,
    pub guest_status: Option<u64>,
    /// How the `guest` scenario went (the run's exit status follows it).
    pub guest_outcome: Option<GuestOutcome>,
}

/// How the `guest` scenario went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestOutcome {
    /// No bundle, a bad bundle, or a guest that cannot be made from it.
    Refused,
    /// The VM ran and ended so.
    Ended(Ending),
}

impl Totals {
    fn add(&mut self, vm: &Vm) {
        self.vms += 1;
        self.exits += vm.exits;
    }
}

pub fn make(name: &'static str, args: [u64; 3]) -> Option<Vm> {
    match Vm::create(name, GUEST_IMAGE, GUEST_RAM, [args[0], GUEST_RAM, args[2]]) {
        Ok(vm) => Some(vm),
        Err(e) => {
            error!("{name}: cannot create the VM: {e}");
            None
        }
    }
}

pub fn finish(vm: Vm, t: &mut Totals) {
    t.add(&vm);
    let name = vm.name;
    if let Err(e) = vm.destroy() {
        error!("{name}: destroy failed: {e}");
    }
}

pub fn ending_name(e: Option<Ending>) -> &'static str {
    match e {
        Some(Ending::Off) => "off",
        Some(Ending::Reset) => "reset",
        Some(Ending::Stopped(_)) => "stopped",
        Some(Ending::Killed) => "killed",
        Some(Ending::OutOfBudget) => "out-of-budget",
        None => "running",
    }
}

/// Guest RAM of the `linux` scenario unless `spevisor.guest_ram_mib=` says otherwise.
pub const LINUX_RAM_MIB: u64 = 256;
/// The most `spevisor.guest_ram_mib=` may ask for (the guest map has RAM
/// from 1 GiB; 64 GiB keeps it well inside the smallest, 39-bit, IPA space).
const MAX_LINUX_RAM: u64 = 64 << 30;
/// Exits the `linux` scenario handles before stopping the guest: nothing
/// delivers interrupts yet, so an idle Linux would wait forever.
const LINUX_MAX_EXITS: u64 = 1_000_000;
/// The Linux guest's command line (in its device tree).
const LINUX_BOOTARGS: &str = "console=ttyAMA0 earlycon=pl011,0x09000000 panic=-1";

/// Boots the arm64 kernel QEMU's `-initrd` loaded (`cargo xtask run
/// --linux`) as a guest with `ram_mib` MiB of RAM, and runs it until it ends
/// or is stopped; its console lines are printed with a `[linux]` prefix.
pub fn linux(t: &mut Totals, ram_mib: u64) {
    let Some(initrd) = crate::kmain::HOST.lock().as_ref().and_then(|h| h.initrd) else {
        error!("linux: no guest kernel; boot QEMU with -initrd <arm64 Image> (cargo xtask run --linux)");
        return;
    };
    // SAFETY: QEMU loaded the initrd there; kmain mapped it read-only and
    // nothing writes it.
    let image = unsafe { core::slice::from_raw_parts(initrd.start as *const u8, initrd.size() as usize) };
    let boot = Boot::Linux { image, bootargs: LINUX_BOOTARGS };
    let Some(ram) = ram_mib.checked_mul(1 << 20).filter(|r| *r <= MAX_LINUX_RAM) else {
        error!("linux: spevisor.guest_ram_mib={ram_mib}: at most {} MiB", MAX_LINUX_RAM >> 20);
        return;
    };
    let mut vm = match Vm::create_booting("linux", boot, VmConfig::uni(ram)) {
        Ok(vm) => vm,
        Err(e) => {
            error!("linux: cannot create the VM: {e}");
            return;
        }
    };
    let ending = vm.run_for(LINUX_MAX_EXITS);
    info!("linux: ended ({}) after {} exits", ending_name(Some(ending)), vm.exits);
    t.guest_status = vm.status;
    finish(vm, t);
}

/// Exits the `guest` scenario handles before stopping the guest (as the
/// `linux` scenario's, for the same reason), unless `spevisor.max_exits=`
/// says otherwise.
pub const GUEST_MAX_EXITS: u64 = LINUX_MAX_EXITS;

/// Boots the guest in the bundle QEMU's `-initrd` loaded (`cargo xtask run
/// --guest FILE`, format `spevisor_abi::guest::bundle`): its kernel (a
/// Linux Image or a raw binary), initrd, command line, vcpus and RAM. The
/// bundle is checked here again (the host trusts no file it is handed); a
/// bad one is refused with the reason and the run fails. Console lines of
/// the guest are printed with a `[guest]` prefix.
pub fn guest(t: &mut Totals, max_exits: u64) {
    t.guest_outcome = Some(GuestOutcome::Refused);
    let Some(mut vm) = bundle_vm() else { return };
    let ending = vm.run_for(max_exits);
    info!("guest: ended ({}) after {} exits", ending_name(Some(ending)), vm.exits);
    let (tx_irqs, dropped) = vm.uart_stats();
    info!("guest: uart tx_interrupts_raised={tx_irqs} tx_bytes_lost={dropped}");
    t.guest_status = vm.status;
    t.guest_outcome = Some(GuestOutcome::Ended(ending));
    finish(vm, t);
}

/// Whether QEMU gave the host an initrd (a `--guest` bundle, or a kernel).
fn has_initrd() -> bool {
    crate::kmain::HOST.lock().as_ref().is_some_and(|h| h.initrd.is_some())
}

/// The VM of the guest bundle QEMU gave as its initrd, made and loaded;
/// `None` (with the reason logged) if there is none or it is refused.
fn bundle_vm() -> Option<Vm> {
    let Some(region) = crate::kmain::HOST.lock().as_ref().and_then(|h| h.initrd) else {
        error!("guest: no guest bundle; boot QEMU with -initrd <bundle> (cargo xtask run --guest FILE)");
        return None;
    };
    // SAFETY: QEMU loaded the initrd there; kmain mapped it read-only and
    // nothing writes it.
    let bytes = unsafe { core::slice::from_raw_parts(region.start as *const u8, region.size() as usize) };
    let b = match spevisor_abi::guest::bundle::parse(bytes) {
        Ok(b) => b,
        Err(e) => {
            error!("guest: bad guest bundle ({} bytes at {:#x}): {e}", bytes.len(), region.start);
            return None;
        }
    };
    let kind = spevisor_abi::guest::kernel::classify(b.kernel).map(|k| k.name()).unwrap_or("unbootable file");
    info!(
        "guest: bundle v{}: {kind} of {} bytes, initrd {} bytes, {} vcpus, {} MiB, command line {:?}",
        spevisor_abi::guest::bundle::VERSION,
        b.kernel.len(),
        b.initrd.map_or(0, |i| i.len()),
        b.vcpus,
        b.mem_mib,
        b.cmdline
    );
    let boot = Boot::Kernel { kernel: b.kernel, initrd: b.initrd, bootargs: b.cmdline };
    Vm::create_booting("guest", boot, VmConfig { ram: b.mem_bytes(), vcpus: b.vcpus })
        .map_err(|e| error!("guest: cannot create the VM: {e}"))
        .ok()
}

/// The demo: the tiny guest's self-test (or another mode, `guest_mode`).
pub fn demo(t: &mut Totals, guest_mode: u64) {
    let Some(mut vm) = make("guest0", [guest_mode, 0, 0]) else { return };
    let ending = vm.run();
    info!("guest0: ended ({}) with status {:?} after {} exits", ending_name(Some(ending)), vm.status, vm.exits);
    t.guest_status = vm.status;
    t.guest_outcome = Some(GuestOutcome::Ended(ending));
    finish(vm, t);
}

/// Counts words in `[CHECK_OFFSET, end)` of a VM's RAM that differ from what
/// the check mode writes with `pattern` (value = pattern ^ IPA).
fn pattern_mismatches(vm: &Vm, pattern: u64) -> usize {
    let first = (CHECK_OFFSET / 8) as usize;
    vm.ram()[first..]
        .iter()
        .enumerate()
        .filter(|(i, w)| {
            let ipa = crate::vmm::GUEST_RAM_IPA + CHECK_OFFSET + 8 * *i as u64;
            **w != pattern ^ ipa
        })
        .count()
}

/// Two VMs run alternately (every exit switches), each writes its own
/// pattern and checks it; then the host checks each VM's memory from outside.
pub fn two_vms(t: &mut Totals) {
    const PATTERN_A: u64 = 0xaaaa_5555_0000_0001;
    const PATTERN_B: u64 = 0x5555_aaaa_0000_0002;
    let (Some(mut a), Some(mut b)) =
        (make("vm-a", [mode::CHECK, 0, PATTERN_A]), make("vm-b", [mode::CHECK, 0, PATTERN_B]))
    else {
        return;
    };
    let switches = run_alternately(&mut a, &mut b);
    hprintln!(
        "two-vms: a_status={} b_status={} a_ending={} b_ending={} a_mismatch={} b_mismatch={} a_has_b={} b_has_a={} alternations={}",
        a.status.map_or(-1, |s| s as i64),
        b.status.map_or(-1, |s| s as i64),
        ending_name(a.ending),
        ending_name(b.ending),
        pattern_mismatches(&a, PATTERN_A),
        pattern_mismatches(&b, PATTERN_B),
        (pattern_mismatches(&a, PATTERN_B) == 0) as u8,
        (pattern_mismatches(&b, PATTERN_A) == 0) as u8,
        switches
    );
    finish(a, t);
    finish(b, t);
}

/// A guest nests 16 interrupts (more than the CPU's list registers) while
/// another VM runs the vgic checks, alternating at every exit: each VM's
/// list registers and active priorities must stay its own (the other's
/// handlers exit while their interrupts are active). Prints the
/// `vgic-nest:` line (with the list registers and EOIcount) and `vgic:`.
pub fn vgic_nest(t: &mut Totals) {
    let (Some(mut nest), Some(mut other)) =
        (make("vgic-nest", [mode::VGIC_NEST, 0, 0]), make("vgic", [mode::VGIC, 0, 0]))
    else {
        return;
    };
    run_alternately(&mut nest, &mut other);
    for vm in [&nest, &other] {
        let (lrs, eoicount) = vm.gic_stats();
        hprintln!(
            "{}: ending={} status={} exits={} lrs={lrs} eoicount={eoicount}",
            vm.name,
            ending_name(vm.ending),
            vm.status.map_or(-1, |s| s as i64),
            vm.exits
        );
    }
    t.guest_status = nest.status.max(other.status);
    finish(nest, t);
    finish(other, t);
}

/// Two VMs fill per-vcpu registers (FP/SIMD, or with `pauth` the
/// pointer-authentication keys) with different values, alternate, and check
/// them: the lazy switches must keep each VM's state its own.
pub fn lazy_state_vms(t: &mut Totals, pauth: bool) {
    const PATTERN_A: u64 = 0x0123_4567_89ab_cdef;
    const PATTERN_B: u64 = 0xfedc_ba98_7654_3210;
    let (m, label) = if pauth { (mode::PAUTH_CHECK, "pauth-vms") } else { (mode::FP_CHECK, "fp-vms") };
    let (Some(mut a), Some(mut b)) = (make("lazy-a", [m, 0, PATTERN_A]), make("lazy-b", [m, 0, PATTERN_B])) else {
        return;
    };
    run_alternately(&mut a, &mut b);
    hprintln!(
        "{}: a_status={} b_status={} a_ending={} b_ending={}",
        label,
        a.status.map_or(-1, |s| s as i64),
        b.status.map_or(-1, |s| s as i64),
        ending_name(a.ending),
        ending_name(b.ending)
    );
    finish(a, t);
    finish(b, t);
}

/// Two VMs use their PMUs at once, alternating at every exit (each
/// HOST_PING): each keeps its own values in a stopped counter, its event
/// type and PMSELR, and its running counter counts only its own
/// instructions (`guest/src/pmu.rs`, pmu-isolation). The patterns differ
/// in bit 0, so the VMs also program different events.
pub fn pmu_vms(t: &mut Totals) {
    const PATTERN_A: u64 = 0x1234_5678;
    const PATTERN_B: u64 = 0x8765_4321;
    let (Some(mut a), Some(mut b)) =
        (make("pmu-a", [mode::PMU_ISOLATION, 0, PATTERN_A]), make("pmu-b", [mode::PMU_ISOLATION, 0, PATTERN_B]))
    else {
        return;
    };
    let switches = run_alternately(&mut a, &mut b);
    hprintln!(
        "pmu-vms: a_status={} b_status={} a_ending={} b_ending={} alternations={}",
        a.status.map_or(-1, |s| s as i64),
        b.status.map_or(-1, |s| s as i64),
        ending_name(a.ending),
        ending_name(b.ending),
        switches
    );
    finish(a, t);
    finish(b, t);
}

/// A guest that misbehaves (`bad_mode`: reads or executes outside its
/// memory, is hostile, or faults on its own abort vector) beside a good
/// one, which must complete whatever becomes of the bad one. Prints a line
/// starting with `label:`.
pub fn bad_vm(t: &mut Totals, bad_mode: u64, label: &str) {
    let (Some(mut bad), Some(mut good)) = (make("bad", [bad_mode, 0, 0]), make("good", [mode::SELFTEST, 0, 0])) else {
        return;
    };
    run_alternately(&mut bad, &mut good);
    hprintln!(
        "{}: bad_ending={} bad_status={} good_ending={} good_status={}",
        label,
        ending_name(bad.ending),
        bad.status.map_or(-1, |s| s as i64),
        ending_name(good.ending),
        good.status.map_or(-1, |s| s as i64)
    );
    t.guest_status = good.status;
    finish(bad, t);
    finish(good, t);
}

/// Creates, runs and destroys VMs in a loop; page counters must come back.
pub fn vm_loop(t: &mut Totals, iterations: u64) {
    let hyp_before = hyp::info(InfoItem::HypFreePages).unwrap_or(0);
    let host_before = host_free_pages();
    let mut ok = 0;
    for _ in 0..iterations {
        let Some(mut vm) = make("loop", [mode::PING_LOOP, 0, 1]) else { break };
        if vm.run() == Ending::Off && vm.status == Some(0) {
            ok += 1;
        }
        finish(vm, t);
    }
    hprintln!(
        "vm-loop: iterations={} ok={} hyp_free_before={} hyp_free_after={} host_free_before={} host_free_after={}",
        iterations,
        ok,
        hyp_before,
        hyp::info(InfoItem::HypFreePages).unwrap_or(0),
        host_before,
        host_free_pages()
    );
}

/// Runs a guest for `n` round trips of `mode` (ping or sysreg loop).
pub fn loop_guest(t: &mut Totals, name: &'static str, mode: u64, n: u64) {
    let Some(mut vm) = make(name, [mode, 0, n]) else { return };
    let ending = vm.run();
    hprintln!(
        "{name}: n={n} ending={} status={} exits={}",
        ending_name(Some(ending)),
        vm.status.map_or(-1, |s| s as i64),
        vm.exits
    );
    t.guest_status = vm.status;
    finish(vm, t);
}

/// Reads the world-switch steps the hypervisor executed and checks each round
/// trip against the ordering rules; prints both so the harness can re-check.
pub fn switch_order() {
    let order = hyp::info(InfoItem::SwitchOrder).unwrap_or(u64::MAX);
    let build = if order == SwitchOrder::Pre2021 as u64 { "pre-2021" } else { "fixed" };
    let mut steps = [Step::EnterGuest; 64];
    let mut n = 0;
    let mut chunk = 0;
    while let Ok(r) = hyp::call(Call::SwitchTrace, [chunk, 0, 0, 0, 0, 0, 0]) {
        let total = r[0] as usize;
        for reg in &r[1..=TRACE_REGS] {
            let mut bytes = [0u8; TRACE_STEPS_PER_REG];
            let k = spevisor_abi::unpack_steps(*reg, &mut bytes);
            for b in &bytes[..k] {
                if n < steps.len() {
                    steps[n] = Step::from_u8(*b).unwrap_or(Step::EnterGuest);
                    n += 1;
                }
            }
        }
        chunk += 1;
        if n >= total.min(steps.len()) || chunk > 8 {
            break;
        }
    }
    const PER_RUN: usize = 14;
    let mut result = Ok(());
    for (i, run) in steps[..n].chunks(PER_RUN).enumerate() {
        let mut line = [0u8; 400];
        let mut len = 0;
        for s in run {
            let name = s.name().as_bytes();
            if len + name.len() + 1 < line.len() {
                if len > 0 {
                    line[len] = b',';
                    len += 1;
                }
                line[len..len + name.len()].copy_from_slice(name);
                len += name.len();
            }
        }
        hprintln!("switch-trace: run={} steps={}", i, core::str::from_utf8(&line[..len]).unwrap_or("?"));
        if result.is_ok() {
            result = check_switch_order(run);
        }
    }
    match result {
        Ok(()) if n > 0 => hprintln!("switch-order: build={build} runs={} result=ok", n / PER_RUN),
        Ok(()) => hprintln!("switch-order: build={build} runs=0 result=empty"),
        Err(v) => {
            hprintln!("switch-order: build={build} runs={} result=violation rule={} ({v})", n / PER_RUN, v.rule())
        }
    }
}

/// The ways a VM ends, one per stress cycle in turn.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum StressEnd {
    /// PSCI SYSTEM_OFF.
    Off,
    /// PSCI SYSTEM_RESET.
    Reset,
    /// Stopped by the hypervisor (a load pair from the UART: no syndrome).
    Stopped,
    /// Its exit budget spent (the host's stop).
    Budget,
    /// Destroyed between two exits, never having ended.
    Destroyed,
}

const STRESS_ENDS: [StressEnd; 5] =
    [StressEnd::Off, StressEnd::Reset, StressEnd::Stopped, StressEnd::Budget, StressEnd::Destroyed];
/// HOST_PINGs a guest that must not end by itself is asked for.
const ENDLESS_PINGS: u64 = u64::MAX;
/// Exits of the budget-exceeded and destroyed-while-running cycles.
const STRESS_EXIT_BUDGET: u64 = 20;

/// `cycles` VMs made and destroyed, ending every way a VM can end in turn
/// ([`StressEnd`]); after each, EL2's and the host's free pages must be
/// what they were before the first. Prints `stress-vms:` with the count of
/// each ending seen as expected, the cycles that ended otherwise, and the
/// first cycle after which a free-page count differed.
pub fn stress_vms(t: &mut Totals, cycles: u64) {
    let free = || (hyp::info(InfoItem::HypFreePages).unwrap_or(0), host_free_pages());
    let before = free();
    let mut seen = [0u64; STRESS_ENDS.len()];
    let (mut wrong, mut first_leak) = (0u64, None);
    for cycle in 0..cycles {
        let want = STRESS_ENDS[(cycle % STRESS_ENDS.len() as u64) as usize];
        let args = match want {
            StressEnd::Off => [mode::PING_LOOP, 0, 1],
            StressEnd::Reset => [mode::RESET, 0, 0],
            StressEnd::Stopped => [mode::HOSTILE, 0, 0],
            StressEnd::Budget | StressEnd::Destroyed => [mode::PING_LOOP, 0, ENDLESS_PINGS],
        };
        let Some(mut vm) = make("stress", args) else { break };
        let got = match want {
            StressEnd::Destroyed => {
                for _ in 0..STRESS_EXIT_BUDGET {
                    vm.step(0);
                }
                vm.ending.is_none().then_some(StressEnd::Destroyed)
            }
            _ => match vm.run_for(if want == StressEnd::Budget { STRESS_EXIT_BUDGET } else { u64::MAX }) {
                Ending::Off => Some(StressEnd::Off),
                Ending::Reset => Some(StressEnd::Reset),
                Ending::Stopped(_) => Some(StressEnd::Stopped),
                Ending::OutOfBudget => Some(StressEnd::Budget),
                Ending::Killed => None,
            },
        };
        if got == Some(want) {
            seen[(cycle % STRESS_ENDS.len() as u64) as usize] += 1;
        } else {
            wrong += 1;
        }
        finish(vm, t);
        if first_leak.is_none() && free() != before {
            first_leak = Some(cycle);
        }
    }
    let after = free();
    hprintln!(
        "stress-vms: cycles={cycles} off={} reset={} stopped={} budget={} destroyed={} wrong_endings={wrong} hyp_free_before={} hyp_free_after={} host_free_before={} host_free_after={} first_leak={}",
        seen[0],
        seen[1],
        seen[2],
        seen[3],
        seen[4],
        before.0,
        after.0,
        before.1,
        after.1,
        first_leak.map_or(-1, |c| c as i64)
    );
}

/// World switches under the SPE model's sampling: two VMs of `pings`
/// HOST_PINGs each, alternating at every exit (each exit two world
/// switches), then the same pair again scheduled next to the `--guest`
/// bundle's guest (a Linux kernel) when one was given. Prints
/// `stress-switch:` with the exits and endings; the summary line carries the
/// profile's figures.
pub fn stress_switch(t: &mut Totals, pings: u64) {
    let (Some(mut a), Some(mut b)) =
        (make("ping-a", [mode::PING_LOOP, 0, pings]), make("ping-b", [mode::PING_LOOP, 0, pings]))
    else {
        return;
    };
    let alternations = run_alternately(&mut a, &mut b);
    let exits = a.exits + b.exits;
    let statuses = [a.status, b.status];
    finish(a, t);
    finish(b, t);
    let mut with_guest = "none";
    if let Some(mut guest) = has_initrd().then(bundle_vm).flatten() {
        let (Some(mut a), Some(mut b)) =
            (make("ping-c", [mode::PING_LOOP, 0, pings]), make("ping-d", [mode::PING_LOOP, 0, pings]))
        else {
            return;
        };
        guest.max_exits = GUEST_MAX_EXITS;
        crate::vmm::run_all(&mut [&mut guest, &mut a, &mut b]);
        with_guest = ending_name(guest.ending);
        hprintln!(
            "stress-switch-guest: guest={} guest_exits={} c={} d={} c_exits={} d_exits={}",
            with_guest,
            guest.exits,
            ending_name(a.ending),
            ending_name(b.ending),
            a.exits,
            b.exits
        );
        t.guest_status = guest.status;
        for vm in [guest, a, b] {
            finish(vm, t);
        }
    }
    hprintln!(
        "stress-switch: pings={pings} alternations={alternations} exits={exits} a_status={} b_status={} guest={with_guest}",
        statuses[0].map_or(-1, |s| s as i64),
        statuses[1].map_or(-1, |s| s as i64)
    );
}
