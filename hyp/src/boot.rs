//! EL2 bring-up: from the first Rust instruction to the host kernel at EL1.
//!
//! Order, and why:
//! 1. Early identity map of the image (W^X) and the DTB from a few static
//!    table pages, then MMU and caches on. Nothing before this may make an
//!    unaligned access (with the MMU off all memory is Device), so the DTB is
//!    parsed only after it, and spin locks (exclusives on cacheable memory)
//!    are used only after it.
//! 2. Vectors: from here any fault prints a crash report.
//! 3. DTB: RAM, console, GIC, timer, PMU, SPE, PSCI. A bad DTB stops the boot
//!    with a message (on the fallback console if the DTB gave none).
//! 4. RAM is shared out ([`Layout`]): the pool feeds EL2's own page tables;
//!    the rest of RAM, the console and the pool are mapped into the live
//!    tables (invalid → valid changes need no break-before-make).
//! 5. Host EL1 configuration (HCR/CNTHCTL/CPTR/MDCR/VPIDR/ICC_SRE) and eret.

use crate::arch::{self, HostEntry};
use crate::mm::{Layout, PagePool, Range};
use crate::service::{Hyp, EL2};
use crate::spe::HostSpe;
use crate::switch::{HostContext, Trace};
use crate::traps::{mdcr, CNTHCTL_HOST, CPTR_HOST};
use crate::{error, info};
use aarch64_cpu::registers::*;
use spevisor_dtb::{GicVersion, PsciConduit};
use spevisor_pgtable::range::subtract;
use spevisor_pgtable::{regs as tregs, Attributes, PageAllocator, PageTable, Regime, MAIR_VALUE, PAGE_SIZE};
use spevisor_pl011::console::ConsoleSpec;

/// What the image tells EL2 bring-up (the image crate wires EL2 and the host).
pub struct BootArgs {
    /// x0 at entry: physical address of the DTB.
    pub dtb: usize,
    /// Runtime address of the image's first byte.
    pub image_start: usize,
    /// Host kernel entry point (EL1h, MMU off).
    pub host_entry: usize,
    /// Initial SP_EL1 for the host.
    pub host_stack_top: usize,
}

extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __image_end: u8;
}

/// The image's sections at their runtime addresses.
#[derive(Clone, Copy, Debug)]
pub struct ImageSections {
    pub image: Range,
    pub text: Range,
    pub rodata: Range,
    pub rw: Range,
}

fn image_sections() -> ImageSections {
    // Addresses of linker-script symbols: PC-relative, so correct wherever
    // the image was placed.
    let (start, text_end, ro_end, end) = {
        (
            core::ptr::addr_of!(__image_start) as u64,
            core::ptr::addr_of!(__text_end) as u64,
            core::ptr::addr_of!(__rodata_end) as u64,
            core::ptr::addr_of!(__image_end) as u64,
        )
    };
    ImageSections {
        image: Range::new(start, end),
        text: Range::new(start, text_end),
        rodata: Range::new(text_end, ro_end),
        rw: Range::new(ro_end, end),
    }
}

/// Static table pages for the early map (zeroed with .bss).
const EARLY_TABLE_PAGES: usize = 8;

#[repr(C, align(4096))]
struct EarlyTables([[u64; 512]; EARLY_TABLE_PAGES]);

static mut EARLY_TABLES: EarlyTables = EarlyTables([[0; 512]; EARLY_TABLE_PAGES]);

/// Hands out the static early pages (identity mapped, so PA == pointer).
struct EarlyAlloc {
    next: usize,
}

impl PageAllocator for EarlyAlloc {
    fn alloc_page(&mut self) -> Option<u64> {
        if self.next == EARLY_TABLE_PAGES {
            return None;
        }
        // Only the address is taken; each page is handed out once and only the
        // page-table code writes it.
        let base = core::ptr::addr_of_mut!(EARLY_TABLES) as u64;
        self.next += 1;
        Some(base + (self.next as u64 - 1) * PAGE_SIZE)
    }
    fn free_page(&mut self, _pa: u64) {}
    fn table_ptr(&self, pa: u64) -> *mut u64 {
        pa as *mut u64
    }
}

/// EL2 virtual address bits (TCR_EL2.T0SZ = 16).
const EL2_VA_BITS: u32 = 48;
/// QEMU virt's PL011, used only for early errors with the fallback feature.
#[cfg(feature = "qemu-virt-fallback-console")]
const FALLBACK_UART: u64 = 0x0900_0000;

/// Ends the boot with a message; nothing else can be done without a DTB.
fn fatal(args: core::fmt::Arguments) -> ! {
    error!("{}", args);
    crate::println!("spevisor: status=error el2=yes reason=\"{}\"", args);
    shutdown(1)
}

/// Ends the machine with `status`.
pub fn shutdown(status: u64) -> ! {
    #[cfg(feature = "semihosting")]
    arch::semihosting::exit(status);
    #[cfg(not(feature = "semihosting"))]
    {
        let _ = status;
        arch::psci_system_off()
    }
}

/// EL2 bring-up. Runs once, on the boot CPU, with the MMU off.
pub fn start(args: BootArgs) -> ! {
    let sections = image_sections();
    let pa_bits = tregs::pa_bits_from_parange(arch::pa_range()).unwrap_or(tregs::MAX_PA_BITS).min(tregs::MAX_PA_BITS);

    // 1. Early map and MMU on.
    let mut early = EarlyAlloc { next: 0 };
    let mut tables = PageTable::new(&mut early, Regime::El2, EL2_VA_BITS).unwrap_or_else(|_| arch::park());
    let map = |t: &mut PageTable, a: &mut EarlyAlloc, r: Range, attrs| {
        if r.size() != 0 && t.map_range(a, r.start, r.start, r.size(), attrs).is_err() {
            arch::park();
        }
    };
    map(&mut tables, &mut early, sections.text, Attributes::RX);
    map(&mut tables, &mut early, sections.rodata, Attributes::RO);
    map(&mut tables, &mut early, sections.rw, Attributes::RW);
    // SAFETY: the boot protocol puts the DTB at x0; only its 8-byte header
    // start is read, with aligned loads.
    let dtb_size = unsafe { spevisor_dtb::early_totalsize(args.dtb) }.map(|s| s as u64);
    let dtb_range = dtb_size.map(|size| Range::new(args.dtb as u64, args.dtb as u64 + size).align_out(PAGE_SIZE));
    let dtb_mapped = match dtb_range {
        Some(r) if !sections.image.overlaps(r.start, r.size()) => {
            map(&mut tables, &mut early, r, Attributes::RO);
            true
        }
        _ => false,
    };
    #[cfg(feature = "qemu-virt-fallback-console")]
    map(&mut tables, &mut early, Range::new(FALLBACK_UART, FALLBACK_UART + PAGE_SIZE), Attributes::DEVICE);
    // SAFETY: the tables identity-map the whole image (code, stack, data) with
    // the attributes it needs, so execution continues at the same addresses.
    unsafe { arch::enable_mmu(tables.root_pa(), tregs::tcr_el2(EL2_VA_BITS, pa_bits), MAIR_VALUE) };

    // 2. Vectors.
    arch::install_vectors();
    #[cfg(feature = "qemu-virt-fallback-console")]
    // SAFETY: mapped as device memory above; replaced once the DTB names the console.
    crate::console::init(spevisor_pl011::console::Console::Pl011(unsafe {
        spevisor_pl011::Pl011::new(FALLBACK_UART as usize)
    }));

    // 3. DTB.
    if !dtb_mapped {
        match dtb_range {
            None => fatal(format_args!(
                "no valid DTB at x0={:#x} (need an 8-byte aligned FDT with magic 0xd00dfeed, at most 2 MiB)",
                args.dtb
            )),
            Some(_) => fatal(format_args!("the DTB at {:#x} overlaps the image", args.dtb)),
        }
    }
    // SAFETY: the DTB's totalsize bytes were mapped read-only above and
    // nothing writes them.
    let blob = match unsafe { spevisor_dtb::from_raw(args.dtb as *const u8) } {
        Ok(b) => b,
        Err(e) => fatal(format_args!("bad DTB at {:#x}: {}", args.dtb, e)),
    };
    let platform = match spevisor_dtb::parse(blob) {
        Ok(p) => p,
        Err(e) => fatal(format_args!("bad DTB at {:#x}: {}", args.dtb, e)),
    };

    // 4. Share out RAM and map it.
    let ram: [Range; spevisor_dtb::MAX_MEMORY_REGIONS] =
        core::array::from_fn(|i| platform.ram().get(i).map_or(Range::new(0, 0), |r| Range::new(r.base, r.end())));
    let dtb_hole = dtb_range.unwrap_or_default();
    // The DTB, the initrd (the host's to read), firmware reservations and
    // (once placed) the pool: never part of EL2's RW map of RAM, and never
    // the pool.
    let mut reserved = [Range::default(); spevisor_dtb::MAX_RESERVED_REGIONS + 3];
    reserved[0] = dtb_hole;
    let initrd = platform.initrd.map(|r| Range::pages_of(r.base, r.size));
    reserved[spevisor_dtb::MAX_RESERVED_REGIONS + 2] = initrd.unwrap_or_default();
    for (slot, r) in reserved[1..].iter_mut().zip(platform.reserved.as_slice()) {
        *slot = Range::pages_of(r.base, r.size);
    }
    let layout = match Layout::new(&ram[..platform.ram().len()], sections.image, &reserved) {
        Ok(l) => l,
        Err(e) => fatal(format_args!("cannot place the hypervisor: {}", e)),
    };
    reserved[spevisor_dtb::MAX_RESERVED_REGIONS + 1] = layout.pool;
    let Some(host_boot_tables) = layout.host_boot_tables(&reserved, spevisor_abi::HOST_BOOT_TABLE_PAGES) else {
        fatal(format_args!(
            "no {} free pages in host memory {:#x}..{:#x} for the host's boot tables",
            spevisor_abi::HOST_BOOT_TABLE_PAGES,
            layout.host.start,
            layout.host.end
        ))
    };
    let console = platform.console.map(|u| match ConsoleSpec::from_dtb(&u) {
        Ok(spec) => spec,
        Err(e) => {
            fatal(format_args!("the DTB's console ({:?} UART at {:#x}) cannot be used: {}", u.kind, u.region.base, e))
        }
    });
    // The buddy allocator keeps its free lists in the free pages: map the pool
    // before handing it over.
    map(&mut tables, &mut early, layout.pool, Attributes::RW);
    arch::publish_new_mappings();
    let mut pool = PagePool::empty();
    // SAFETY: the pool lies in RAM after the image (Layout checked it), is
    // identity mapped RW just above, and nothing else uses it.
    unsafe { pool.add(layout.pool.start, layout.pool.end, 0) };
    let alloc = &mut pool;
    let rest = [Range::new(layout.ram.start, sections.image.start), Range::new(sections.image.end, layout.ram.end)];
    for r in rest {
        // Skip the DTB pages mapped early (read-only).
        let (pieces, n) = subtract(r, &reserved);
        for p in &pieces[..n] {
            if let Err(e) = tables.map_range(alloc, p.start, p.start, p.size(), Attributes::RW) {
                fatal(format_args!("cannot map RAM {:#x}..{:#x}: {}", p.start, p.end, e));
            }
        }
    }
    if let Some(spec) = console {
        let base = spec.base;
        let page = base & !(PAGE_SIZE - 1);
        #[cfg(feature = "qemu-virt-fallback-console")]
        let already = page == FALLBACK_UART;
        #[cfg(not(feature = "qemu-virt-fallback-console"))]
        let already = false;
        if !already {
            if let Err(e) = tables.map_range(alloc, page, page, PAGE_SIZE, Attributes::DEVICE) {
                fatal(format_args!("cannot map the console at {base:#x}: {e}"));
            }
        }
        arch::publish_new_mappings();
        // SAFETY: its page is mapped as device memory just above (identity:
        // VA = PA), and `from_dtb` checked its registers lie in that page.
        crate::console::init(unsafe { spec.open(base as usize) });
    }

    let (pmu_ver, pms_ver) = arch::debug_features();
    let gic_version = match platform.gic.version {
        GicVersion::V2 => 2,
        GicVersion::V3 => 3,
        #[allow(unreachable_patterns)]
        _ => 0,
    };
    info!(
        "spevisor EL2: image {:#x}..{:#x}, DTB {:#x}, RAM {:#x}..{:#x}, pool {} pages, PA {} bits",
        sections.image.start,
        sections.image.end,
        args.dtb,
        layout.ram.start,
        layout.ram.end,
        pool.free_pages(),
        pa_bits
    );
    info!(
        "GICv{}, PMUVer {:#x}, PMSVer {} ({}), PSCI {}",
        gic_version,
        pmu_ver,
        pms_ver,
        if pms_ver != 0 { "SPE present" } else { "no SPE" },
        match platform.psci.map(|p| p.conduit) {
            Some(PsciConduit::Smc) => "smc",
            Some(PsciConduit::Hvc) => "hvc",
            None => "absent",
        }
    );

    // The board report (every boot, info level; alone with spevisor.report=only).
    let bootargs = platform.bootargs.unwrap_or("");
    let report = crate::report::Report {
        cpu: arch::report_regs::read(),
        platform: &platform,
        spe: spevisor_spe::regs::hw::probe(),
        pa_bits_used: pa_bits,
        ipa_bits: spevisor_pgtable::regs::stage2_ipa_bits(pa_bits),
        psci_version: match platform.psci.map(|p| p.conduit) {
            Some(PsciConduit::Smc) => Some(arch::report_regs::psci_version_smc()),
            _ => None,
        },
    };
    crate::report::write(&report, &mut |line| info!("{}", line));
    if crate::report::report_only(bootargs) {
        crate::println!("spevisor: status=ok el2=yes report=only");
        shutdown(0);
    }

    // 5. The host.
    configure_host_el1(gic_version, crate::traps::hcr_values(arch::has_pauth(), arch::has_lor()).0);
    let host_mdcr = MDCR_EL2.get();
    let (hcr_host, hcr_guest) = crate::traps::hcr_values(arch::has_pauth(), arch::has_lor());
    let gic_v3 = gic_version == 3 && arch::has_gic_sysregs();
    let spe_id = spevisor_spe::regs::hw::probe();
    let standin = match crate::spe::hw_standin::enable(platform.bootargs.unwrap_or(""), &spe_id) {
        Ok(s) => s,
        Err(e) => fatal(format_args!("{e}")),
    };
    let spe_hw = standin || spe_id.host_may_own_buffer();
    // The trace buffer and branch records are handled on the hardware path
    // too, with or without SPE (never under QEMU: neither unit is there).
    let units = crate::hostbuf_hw::probe();
    let spe_backend =
        if spe_hw || units.trbe || units.brbe { crate::spe::Backend::Hardware } else { crate::spe::Backend::None };
    let mdcr_guest = crate::traps::mdcr_guest(host_mdcr, arch::has_trace_filter());
    // The guests' PMU (`pmu.rs`): the CPU's counters, all of them
    // (MDCR_EL2.HPMN = PMCR_EL0.N, as `configure_host_el1` set it).
    let pmu_cfg = if crate::pmu::offered_pmuver(pmu_ver) != 0 {
        crate::pmu::PmuConfig::new(pmu_ver, crate::pmu::read_pmcr(), mdcr_guest)
    } else {
        crate::pmu::PmuConfig::none()
    };
    info!("guest PMU: PMUVer {:#x}, {} event counters", pmu_cfg.pmuver, pmu_cfg.counters);
    let mut el2 = EL2.lock();
    el2.vms.set_pa_bits(pa_bits);
    el2.hyp = Some(Hyp {
        layout,
        pool,
        el2_tables: tables,
        pa_bits,
        gic_version,
        pmu_ver,
        pms_ver,
        host: HostContext {
            el1: Default::default(),
            fp: Default::default(),
            spe: HostSpe { backend: spe_backend, id: spe_id, spe_hw, units },
            mdcr: host_mdcr,
            mdcr_guest,
            cptr_guest: crate::traps::cptr_guest(arch::has_sysreg_trace(), arch::has_amu()),
            hcr_host,
            hcr_guest,
            pauth: Default::default(),
            debug: crate::debug::HostDebug::new(crate::debug::DebugFeatures::from_dfr0(ID_AA64DFR0_EL1.get())),
            pmu: crate::pmu::PmuRegs::new(),
            vmpidr: MPIDR_EL1.get(),
            gic_v3,
            nr_lrs: if gic_v3 { arch::sysregs::list_regs() } else { 0 },
        },
        guest_ids: crate::idregs::IdRegs::new(arch::sysregs::read_id_group3).with_pmu(pmu_cfg),
        trace: Trace::new(),
        text_start: sections.text.start,
        spe_model: None,
    });
    // Released before the host runs: its first hypercall takes the lock.
    drop(el2);
    let entry = HostEntry {
        pc: args.host_entry as u64,
        sp: args.host_stack_top as u64,
        args: [args.dtb as u64, layout.host.start, layout.host.end, host_boot_tables],
    };
    info!("entering the host at EL1 ({:#x})", entry.pc);
    // SAFETY: EL1 was configured for the host just above.
    unsafe { arch::eret_to_host(&entry) }
}

/// PMCR_EL0.N: number of event counters.
const PMCR_N_SHIFT: u64 = 11;

/// ICC_SRE_EL2: SRE (system registers at EL2) | Enable (EL1 may use them).
const ICC_SRE_EL2_SRE_ENABLE: u64 = (1 << 0) | (1 << 3);

/// SCTLR_EL1 with only its RES1 bits: MMU and caches off until the host
/// sets up its own tables.
const SCTLR_EL1_RES1: u64 = (1 << 29) | (1 << 28) | (1 << 23) | (1 << 22) | (1 << 20) | (1 << 11);

/// VPIDR_EL2 (what EL1 reads as MIDR_EL1); aarch64-cpu has no definition.
fn write_vpidr(midr: u64) {
    // SAFETY: VPIDR_EL2 only changes the value EL1 reads for MIDR_EL1.
    unsafe { core::arch::asm!("msr vpidr_el2, {}", in(reg) midr, options(nostack)) };
}

fn configure_host_el1(gic_version: u64, hcr_host: u64) {
    HCR_EL2.set(hcr_host);
    CPTR_EL2.set(CPTR_HOST);
    let pmcr: u64;
    // SAFETY: reading PMCR_EL0 at EL2 has no side effects.
    unsafe { core::arch::asm!("mrs {}, pmcr_el0", out(reg) pmcr) };
    let hpmn = (pmcr >> PMCR_N_SHIFT) & 0x1f;
    // The profiling and trace buffers belong to the host (E2PB, E2TB =
    // 0b11); the SPE and TRBE models read these fields too.
    MDCR_EL2.set(hpmn | mdcr::E2PB_EL1 | mdcr::E2TB_EL1);
    CNTHCTL_EL2.set(CNTHCTL_HOST);
    CNTVOFF_EL2.set(0);
    write_vpidr(MIDR_EL1.get());
    VMPIDR_EL2.set(MPIDR_EL1.get());
    SCTLR_EL1.set(SCTLR_EL1_RES1);
    if gic_version == 3 && arch::has_gic_sysregs() {
        ICC_SRE_EL2.set(ICC_SRE_EL2_SRE_ENABLE);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        // No virtual CPU interface (or maintenance interrupts) for the host.
        ICH_HCR_EL2.set(0);
    }
    // EL2 timers off; their state is UNKNOWN out of reset.
    CNTHP_CTL_EL2.set(0);
    arch::disable_el2_virtual_timer();
    arch::init_el2_controls();
    // No EL2 sampling into whatever buffer is live (PMSCR_EL2 = 0).
    if arch::debug_features().1 != 0 {
        // SAFETY: PMSVer != 0, so PMSCR_EL2 exists.
        unsafe { spevisor_spe::regs::hw::write_pmscr_el2(0) };
    }
    arch::reset_stage2_vmid();
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}
