//! Host kernel bring-up and main flow.

use crate::arch;
use crate::cmdline;
use crate::console::{self, print_crash};
use crate::hyp;
use crate::mm::{BumpPages, PagePool};
use crate::profiler;
use crate::scenarios;
use crate::{hprintln, BootArgs};
use log::{error, info, warn, LevelFilter};
use spevisor_abi::{spe_state, InfoItem, Status, TestFault};
use spevisor_armv8::esr::Esr;
use spevisor_pgtable::range::{subtract, Range};
use spevisor_pgtable::{regs as tregs, Attributes, PageTable, Regime, MAIR_VALUE, PAGE_SIZE};
use spevisor_pl011::console::ConsoleSpec;
use spin::Mutex;

extern "C" {
    static __host_stack_bottom: u8;
    static __host_stack_top: u8;
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __image_end: u8;
}

/// Host virtual address bits for TTBR0 (identity) and TTBR1 (kernel high half).
const HOST_VA_BITS: u32 = 48;
/// Pages EL2 set aside in host memory for the first page tables (x3 at entry).
const BOOT_TABLE_PAGES: u64 = spevisor_abi::HOST_BOOT_TABLE_PAGES;
/// Exit status when the host kernel itself crashes.
pub const HOST_CRASH_STATUS: u64 = 4;
// The guests' exit statuses (5 to 9) are `crate::ending::code`'s.

/// Host-wide state after boot.
pub struct Host {
    pub pages: PagePool,
    /// What QEMU's `-initrd` loaded (`/chosen/linux,initrd-*`), mapped
    /// read-only: a guest kernel for `spevisor.scenario=linux`.
    pub initrd: Option<Range>,
}

pub static HOST: Mutex<Option<Host>> = Mutex::new(None);

/// Host memory services for boot-time users (the profiler).
struct BootMem<'a> {
    low: &'a mut PageTable,
    high: &'a mut PageTable,
    pages: &'a mut PagePool,
}

impl profiler::HostMem for BootMem<'_> {
    fn map_device(&mut self, pa: u64, size: u64) -> bool {
        let r = Range::new(pa, pa + size).align_out(PAGE_SIZE);
        self.low.map_range(self.pages, r.start, r.start, r.size(), Attributes::DEVICE).is_ok()
    }
    fn map_high(&mut self, va: u64, pa: u64, size: u64) -> bool {
        self.high.map_range(self.pages, va, pa, size, Attributes::RW).is_ok()
    }
    fn alloc(&mut self, pages: usize) -> Option<u64> {
        self.pages.alloc_pages(pages)
    }
}

/// Ends the run when bring-up cannot continue (before the console exists).
fn fail<E, T>(_: E) -> T {
    hyp::shutdown(HOST_CRASH_STATUS)
}

/// Host entry (EL1h, MMU off).
pub fn start(args: BootArgs) -> ! {
    arch::install_vectors();
    // Addresses of linker-script symbols (PC-relative).
    let (img, text_end, ro_end, img_end) = {
        (
            core::ptr::addr_of!(__image_start) as u64,
            core::ptr::addr_of!(__text_end) as u64,
            core::ptr::addr_of!(__rodata_end) as u64,
            core::ptr::addr_of!(__image_end) as u64,
        )
    };
    let pa_bits = tregs::pa_bits_from_parange(arch::pa_range()).unwrap_or(40).min(tregs::MAX_PA_BITS);

    // The DTB may lie anywhere, host memory included: find it first
    // (aligned loads only) and keep every allocation off it.
    // SAFETY: EL2 passed the DTB it booted with; only its header start is read.
    let dtb_size = unsafe { spevisor_dtb::early_totalsize(args.dtb as usize) }.unwrap_or(0) as u64;
    let dtb = Range::new(args.dtb, args.dtb + dtb_size).align_out(PAGE_SIZE);
    let host_mem = Range::new(args.mem_start, args.mem_end);
    // The first tables go where EL2 said (clear of the DTB and of every
    // reservation, which only EL2 could read yet), built with the MMU off.
    let boot_tables = Range::new(args.boot_tables, args.boot_tables.saturating_add(BOOT_TABLE_PAGES * PAGE_SIZE));
    if !host_mem.contains_range(boot_tables.start, boot_tables.size())
        || dtb.overlaps(boot_tables.start, boot_tables.size())
    {
        fail(())
    }
    let mut bump = BumpPages { next: boot_tables.start, end: boot_tables.end };
    let mut tables = PageTable::new(&mut bump, Regime::El1, HOST_VA_BITS).unwrap_or_else(fail);
    let mut high = PageTable::new(&mut bump, Regime::El1, HOST_VA_BITS).unwrap_or_else(fail);
    // Phase 1: only what runs before the DTB is read: the image, the boot
    // tables (later tables are written through the map) and the DTB.
    let maps = [
        (img, text_end, Attributes::RX),
        (text_end, ro_end, Attributes::RO),
        (ro_end, img_end, Attributes::RW),
        (boot_tables.start, boot_tables.end, Attributes::RW),
    ];
    for (s, e, a) in maps {
        tables.map_range(&mut bump, s, s, e - s, a).unwrap_or_else(fail);
    }
    if !dtb.is_empty() && !Range::new(img, img_end).overlaps(dtb.start, dtb.size()) {
        tables.map_range(&mut bump, dtb.start, dtb.start, dtb.size(), Attributes::RO).unwrap_or_else(fail);
    }
    // The tables and the stack were written with the caches off, and EL2's
    // cacheable map of RAM may have let stale lines in: drop them first.
    arch::invalidate_dcache(boot_tables.start, bump.next);
    arch::invalidate_dcache(
        core::ptr::addr_of!(__host_stack_bottom) as u64,
        core::ptr::addr_of!(__host_stack_top) as u64,
    );
    // SAFETY: the tables identity-map the image (stack and data included),
    // the boot tables and the DTB with the attributes the code needs.
    unsafe { arch::enable_mmu(tables.root_pa(), high.root_pa(), tregs::tcr_el1(HOST_VA_BITS, pa_bits), MAIR_VALUE) };

    // Now the DTB can be parsed (unaligned accesses are fine on Normal memory).
    // SAFETY: mapped read-only above, never written.
    let blob = unsafe { spevisor_dtb::from_raw(args.dtb as *const u8) }.unwrap_or_else(fail);
    let platform = spevisor_dtb::parse(blob).unwrap_or_else(fail);
    // Host memory minus the boot tables, the DTB, the initrd (mapped
    // read-only below) and firmware reservations.
    let initrd = platform.initrd.map(|r| Range::pages_of(r.base, r.size));
    let mut holes = [Range::default(); spevisor_dtb::MAX_RESERVED_REGIONS + 3];
    holes[0] = boot_tables;
    holes[1] = dtb;
    holes[spevisor_dtb::MAX_RESERVED_REGIONS + 2] = initrd.unwrap_or_default();
    for (h, r) in holes[2..].iter_mut().zip(platform.reserved.as_slice()) {
        *h = Range::pages_of(r.base, r.size);
    }
    // Phase 2: the rest of host memory, reservations left out. Only invalid
    // entries are written, so no live mapping changes: mapping everything
    // first and unmapping the reservations afterwards would split live
    // blocks, which needs break-before-make on hardware.
    let (free, n) = subtract(host_mem, &holes);
    for r in &free[..n] {
        tables.map_range(&mut bump, r.start, r.start, r.size(), Attributes::RW).unwrap_or_else(fail);
    }
    // The initrd (a guest kernel, `spevisor.scenario=linux`), read-only,
    // unless it shares pages with the image, the DTB, the boot tables or a
    // reservation (then it is refused, below, once the console exists).
    let initrd_clash = initrd.is_some_and(|r| {
        Range::new(img, img_end).overlaps(r.start, r.size())
            || holes[..spevisor_dtb::MAX_RESERVED_REGIONS + 2].iter().any(|h| h.overlaps(r.start, r.size()))
    });
    if let Some(r) = initrd.filter(|_| !initrd_clash) {
        tables.map_range(&mut bump, r.start, r.start, r.size(), Attributes::RO).unwrap_or_else(fail);
    }
    arch::publish_new_mappings();
    let mut pages = PagePool::empty();
    for r in &free[..n] {
        // SAFETY: host memory outside the boot tables, the DTB and the
        // reservations is unused and identity mapped RW.
        unsafe { pages.add(r.start, r.end, 0) };
    }
    // EL2 stopped the boot on a console it could not use (the same check).
    if let Some(spec) = platform.console.as_ref().and_then(|u| ConsoleSpec::from_dtb(u).ok()) {
        let base = spec.base & !(PAGE_SIZE - 1);
        tables.map_range(&mut pages, base, base, PAGE_SIZE, Attributes::DEVICE).unwrap_or_else(fail);
        arch::publish_new_mappings();
        // SAFETY: its page is mapped as device memory just above (identity),
        // and `from_dtb` checked its registers lie in that page.
        console::init(unsafe { spec.open(spec.base as usize) }, LevelFilter::Info);
    }
    // Each reservation inside host memory: out of the map and the allocator.
    for r in holes[2..spevisor_dtb::MAX_RESERVED_REGIONS + 2]
        .iter()
        .filter(|r| !r.is_empty() && host_mem.overlaps(r.start, r.size()))
    {
        let mapped = (r.start..r.end).step_by(PAGE_SIZE as usize).any(|va| tables.translate(&bump, va).is_some());
        info!(
            "firmware reservation {:#x}..{:#x} in host memory: {}",
            r.start,
            r.end,
            if mapped { "MAPPED" } else { "not mapped, not allocatable" }
        );
    }
    if initrd_clash {
        error!("the initrd {:?} shares pages with the image, the DTB or a reservation: not used", platform.initrd);
    }
    let bootargs = platform.bootargs.unwrap_or("");
    if !bootargs.is_empty() {
        info!("command line: {bootargs}");
    }
    info!(
        "host kernel at EL{} (MMU on), memory {:#x}..{:#x}, {} free pages",
        arch::current_el(),
        args.mem_start,
        args.mem_end,
        pages.free_pages()
    );
    // The GIC: the host's timer, guests' interrupts, the profiler's.
    if let Err(why) = start_gic(&platform, &mut BootMem { low: &mut tables, high: &mut high, pages: &mut pages }) {
        warn!("no interrupts ({why}): guests run without timers or preemption");
    }
    // The SPE profiler: on by default, `spevisor.spe=auto|hw|model|off`.
    let mode = cmdline::param(bootargs, "spe").map_or(Some(profiler::Mode::Auto), profiler::Mode::parse);
    let num = |k| cmdline::param(bootargs, k).and_then(|v: &str| v.parse::<u64>().ok());
    let spe = match mode {
        None => Err("unknown spevisor.spe= value (auto, hw, model, off)"),
        Some(mode) => profiler::start(profiler::Setup {
            mode,
            buffer: num("spe_buffer").unwrap_or(profiler::DEFAULT_BUFFER),
            period: num("spe_period")
                .map_or(profiler::DEFAULT_PERIOD, |p| p.clamp(profiler::MIN_PERIOD as u64, u32::MAX as u64) as u32),
            dump: num("spe_dump") == Some(1),
            platform: &platform,
            mem: &mut BootMem { low: &mut tables, high: &mut high, pages: &mut pages },
        }),
    };
    if let Err(why) = spe {
        info!("SPE profiler not running: {why}");
    }
    let initrd_bytes =
        platform.initrd.filter(|_| !initrd_clash).map(|r| Range::new(r.base, r.base.saturating_add(r.size)));
    *HOST.lock() = Some(Host { pages, initrd: initrd_bytes });
    main(bootargs, img)
}

/// Maps the GIC's distributor and this CPU's redistributor (GICv3) or CPU
/// interface (GICv2) and hands the GIC to `irq` (which unmasks IRQs).
fn start_gic(platform: &spevisor_dtb::Platform, mem: &mut BootMem) -> Result<(), &'static str> {
    use profiler::HostMem;
    let gic = &platform.gic;
    let dist = gic.distributor;
    let g = match gic.version {
        spevisor_dtb::GicVersion::V3 => {
            let Some(redist) = gic.redistributors.as_slice().first().copied() else {
                return Err("no GICv3 redistributor in the DTB");
            };
            if !mem.map_device(dist.base, dist.size) || !mem.map_device(redist.base, redist.size) {
                return Err("cannot map the GIC");
            }
            arch::publish_new_mappings();
            // SAFETY: both frames were just mapped as device memory; only the
            // host drives the physical GIC.
            unsafe { crate::gic::Gic::new_v3(dist.base as usize, redist.base as usize) }?
        }
        spevisor_dtb::GicVersion::V2 => {
            let Some(cpu) = gic.cpu_interface else {
                return Err("no GICv2 CPU interface in the DTB");
            };
            if cpu.size < GICV2_CPU_IF_MIN {
                return Err("the GICv2 CPU interface is smaller than 8 KiB (no GICC_DIR)");
            }
            if !mem.map_device(dist.base, dist.size) || !mem.map_device(cpu.base, cpu.size) {
                return Err("cannot map the GIC");
            }
            arch::publish_new_mappings();
            // SAFETY: both frames were just mapped as device memory; only the
            // host drives the physical GIC.
            unsafe { crate::gic::Gic::new_v2(dist.base as usize, cpu.base as usize) }?
        }
        #[allow(unreachable_patterns)]
        _ => return Err("unknown GIC version"),
    };
    crate::irq::init(g);
    Ok(())
}

/// A GICv2 CPU interface needs its second 4 KiB page (GICC_DIR at 0x1000).
const GICV2_CPU_IF_MIN: u64 = 0x2000;

fn main(bootargs: &str, image_start: u64) -> ! {
    let abi = hyp::version().unwrap_or(0);
    info!("hypervisor ABI v{}.{}", abi >> 16, abi & 0xffff);

    // Round trip through EL2; the test harness checks the complement itself.
    let probe = [0x0123_4567_89ab_cdef, 0xfeed_f00d, 0x5];
    match hyp::ping(probe[0], probe[1], probe[2]) {
        Ok((r, el)) => hprintln!(
            "hvc ping: sent {:#x} {:#x} {:#x} got {:#x} {:#x} {:#x} hyp_el={}",
            probe[0],
            probe[1],
            probe[2],
            r[0],
            r[1],
            r[2],
            el
        ),
        Err(e) => error!("hvc ping failed: {e}"),
    }
    let unknown = spevisor_abi::FUNCTION_BASE + 0xffff;
    match hyp::call_raw(unknown, [0; 7]) {
        Ok(_) => error!("unknown hypercall {unknown:#x} was accepted"),
        Err(e) => hprintln!("hvc unknown id {unknown:#x}: refused with {e}"),
    }

    if let Some(t) = cmdline::param(bootargs, "test") {
        run_test_scenario(t);
    }

    if let Some(mark) = cmdline::param(bootargs, "mark") {
        crate::vmm::set_console_mark(mark);
    }
    if let Some(us) = cmdline::param(bootargs, "slice_us").and_then(|v| v.parse().ok()) {
        crate::vmm::set_slice_us(us);
    }
    let mut totals = scenarios::Totals::default();
    let iterations = cmdline::param(bootargs, "iterations").and_then(|v| v.parse().ok());
    let scenario = cmdline::param(bootargs, "scenario").unwrap_or("demo");
    match scenario {
        "demo" => {
            let guest_mode = cmdline::param(bootargs, "guest_mode").and_then(|v| v.parse().ok());
            scenarios::demo(&mut totals, guest_mode.unwrap_or(scenarios::mode::SELFTEST))
        }
        "two-vms" => scenarios::two_vms(&mut totals),
        "fp-vms" => scenarios::lazy_state_vms(&mut totals, false),
        "pauth-vms" => scenarios::lazy_state_vms(&mut totals, true),
        "debug" => crate::debug_scenario::run(&mut totals),
        "read-outside" => scenarios::bad_vm(&mut totals, scenarios::mode::READ_OUTSIDE, "read-outside"),
        "exec-outside" => scenarios::bad_vm(&mut totals, scenarios::mode::EXEC_OUTSIDE, "exec-outside"),
        "hostile" => scenarios::bad_vm(&mut totals, scenarios::mode::HOSTILE, "hostile"),
        "abort-on-vector" => scenarios::bad_vm(&mut totals, scenarios::mode::ABORT_ON_VECTOR, "abort-on-vector"),
        "abort-loop" => scenarios::bad_vm(&mut totals, scenarios::mode::ABORT_LOOP, "abort-loop"),
        "vm-loop" => scenarios::vm_loop(&mut totals, iterations.unwrap_or(20)),
        "ping-loop" => {
            scenarios::loop_guest(&mut totals, "ping", scenarios::mode::PING_LOOP, iterations.unwrap_or(1000))
        }
        "sysreg-loop" => {
            scenarios::loop_guest(&mut totals, "sysreg", scenarios::mode::SYSREG_LOOP, iterations.unwrap_or(1000))
        }
        "refusals" => crate::hostile_host::run(),
        "spe-abuse" => crate::hostile_spe::run(),
        "hostile-suite" => crate::hostile_suite::run(&mut totals),
        "vtimer" => scenarios::irq_guest(&mut totals, "vtimer", scenarios::mode::VTIMER, 1, iterations.unwrap_or(0)),
        "vgic" => scenarios::irq_guest(&mut totals, "vgic", scenarios::mode::VGIC, 1, 0),
        "vgic-nest" => scenarios::vgic_nest(&mut totals),
        "stress-vms" => scenarios::stress_vms(&mut totals, iterations.unwrap_or(1000)),
        "stress-switch" => scenarios::stress_switch(&mut totals, iterations.unwrap_or(50_000)),
        "ptimer" => scenarios::irq_guest(&mut totals, "ptimer", scenarios::mode::PTIMER, 1, iterations.unwrap_or(0)),
        "pmu-count" => {
            scenarios::irq_guest(&mut totals, "pmu-count", scenarios::mode::PMU_COUNT, 1, iterations.unwrap_or(0))
        }
        "pmu-overflow" => scenarios::irq_guest(&mut totals, "pmu-overflow", scenarios::mode::PMU_OVERFLOW, 1, 0),
        "pmu-vms" => scenarios::pmu_vms(&mut totals),
        "smp" => scenarios::irq_guest(&mut totals, "smp", scenarios::mode::SMP, 2, iterations.unwrap_or(50)),
        "preempt" => scenarios::preempt(&mut totals, iterations.unwrap_or(100)),
        "guest" => {
            let budget = cmdline::param(bootargs, "max_exits").and_then(|v| v.parse().ok());
            scenarios::guest(&mut totals, budget.unwrap_or(scenarios::GUEST_MAX_EXITS))
        }
        "linux" => {
            let ram_mib = cmdline::param(bootargs, "guest_ram_mib").and_then(|v| v.parse().ok());
            scenarios::linux(&mut totals, ram_mib.unwrap_or(scenarios::LINUX_RAM_MIB))
        }
        "bench" => crate::bench::run(&mut totals, iterations.unwrap_or(crate::bench::DEFAULT_ITERATIONS)),
        "none" => {}
        other => error!("unknown scenario {other:?}"),
    }
    scenarios::switch_order();

    let el2 = hyp::info(InfoItem::HypEl).unwrap_or(0);
    let gic = hyp::info(InfoItem::GicVersion).unwrap_or(0);
    let spe = hyp::info(InfoItem::Spe).unwrap_or(0);
    let free = hyp::info(InfoItem::HypFreePages).unwrap_or(0);
    let host_free = HOST.lock().as_ref().map_or(0, |h| h.pages.free_pages());
    let spe_hw = if spe & spe_state::PRESENT == 0 {
        "absent"
    } else if spe & spe_state::HOST_OWNED != 0 {
        "owned"
    } else {
        "not-owned"
    };
    let prof = profiler::finish(image_start);
    // The demo and the `guest` scenario end with what became of their
    // guest (crate::ending): 0 only for SYSTEM_OFF with status 0 (or, for
    // a `--guest` guest, none reported).
    let (status, code) = match totals.guest_outcome {
        Some(scenarios::GuestOutcome::Refused) => ("guest-refused", crate::ending::code::GUEST_REFUSED),
        Some(scenarios::GuestOutcome::Ended(e)) => crate::ending::verdict(e, totals.guest_status, scenario == "demo"),
        None if scenario == "demo" => ("guest-failed", crate::ending::code::GUEST_FAILED),
        None => ("ok", crate::ending::code::OK),
    };
    hprintln!(
        "spevisor: status={} el2={} host_el={} gic=v{} spe={} spe_hw={} records={} misdirected={} lost={} trbe_misdirected={} trbe_lost={} free_pages={} host_free_pages={} vms={} exits={} guest_status={}",
        status,
        if el2 == 2 { "yes" } else { "no" },
        arch::current_el(),
        gic,
        prof.as_ref().map_or("off", |p| p.backend),
        spe_hw,
        prof.as_ref().map_or(0, |p| p.records),
        prof.as_ref().map_or(0, |p| p.misdirected),
        prof.as_ref().map_or(0, |p| p.lost),
        prof.as_ref().map_or(0, |p| p.trbe_misdirected),
        prof.as_ref().map_or(0, |p| p.trbe_lost),
        free,
        host_free,
        totals.vms,
        totals.exits,
        totals.guest_status.map_or(-1, |s| s as i64)
    );
    hyp::shutdown(code)
}

/// Fault-injection scenarios for the QEMU tests (`spevisor.test=...`).
fn run_test_scenario(name: &str) {
    let fault = match name {
        "write-hyp-text" => TestFault::WriteHypText,
        "el2-undef" => TestFault::Undefined,
        "host-sve" => {
            info!("test: SVE instruction at EL1 (trapped to EL2 by CPTR_EL2.TZ)");
            // ZEN and FPEN: SVE instructions also need FP/SIMD enabled at EL1.
            const CPACR_ZEN: u64 = (0b11 << 16) | (0b11 << 20);
            // SAFETY: lets EL1 use SVE as far as CPACR_EL1 goes, so the trap
            // taken is CPTR_EL2's, to EL2, which reports it and ends the run.
            unsafe {
                let v: u64;
                core::arch::asm!("mrs {}, cpacr_el1", out(reg) v);
                core::arch::asm!("msr cpacr_el1, {}", "isb", in(reg) v | CPACR_ZEN);
                core::arch::asm!(".arch_extension sve", "rdvl {}, #1", out(reg) _);
            }
            return;
        }
        "host-undef" => {
            info!("test: executing an undefined instruction at EL1");
            // SAFETY: raises an exception at EL1 on purpose; the host crash
            // path reports it and ends the run.
            unsafe { core::arch::asm!("udf #0xbeef") };
            return;
        }
        other => {
            error!("unknown test scenario {other:?}");
            return;
        }
    };
    info!("test: asking the hypervisor for fault {fault:?}");
    match hyp::test_fault(fault) {
        Err(hyp::HypError::Refused(Status::NotSupported)) => {
            hprintln!("test hook {name}: refused (NOT_SUPPORTED: not a test build)")
        }
        r => error!("test hook {name} returned {r:?} instead of crashing"),
    }
}

const KINDS: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];

/// vectors.S code of an IRQ taken from the host itself (current EL, SP_EL1).
const IRQ_CURRENT_EL_SPX: u64 = 5;

/// Every host exception lands here (see `vectors.S`).
#[no_mangle]
extern "C" fn host_exception(frame: &mut arch::ExceptionFrame, code: u64) {
    use aarch64_cpu::registers::*;
    if code == IRQ_CURRENT_EL_SPX {
        crate::irq::handle(frame.elr, frame.spsr);
        return;
    }
    let esr = ESR_EL1.get();
    print_crash(format_args!(
        "\n[host] CRASH: unexpected {} exception (vector {})\n[host]   {}\n[host]   ELR_EL1={:#x} FAR_EL1={:#x} SPSR_EL1={:#x}\n",
        KINDS[code as usize % 4],
        code,
        Esr(esr),
        frame.elr,
        FAR_EL1.get(),
        frame.spsr
    ));
    print_crash(format_args!("spevisor: status=crash host_el=1 esr={esr:#x} elr={:#x}\n", frame.elr));
    hyp::shutdown(HOST_CRASH_STATUS)
}

pub fn panic(info: &core::panic::PanicInfo) -> ! {
    print_crash(format_args!("\n[host] PANIC: {info}\nspevisor: status=crash host_el=1 reason=panic\n"));
    hyp::shutdown(HOST_CRASH_STATUS)
}
