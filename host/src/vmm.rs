//! The host's VM manager: guest memory, loading images, the run loop and exit
//! handling (PSCI, the guest test ABI, the emulated PL011 and GIC), and the
//! scheduler that shares the one physical CPU between vcpus.
//!
//! Scheduling: every runnable vcpu of every VM gets a time slice in turn
//! (`spevisor.slice_us=`, default [`DEFAULT_SLICE_US`]), enforced by the
//! host's timer (`irq::timer`): a vcpu that never exits is preempted by the
//! IRQ exit the timer causes. A vcpu in WFI (or PSCI CPU_SUSPEND) sleeps
//! until an interrupt is pending for it or its virtual timer's deadline
//! passes; with nothing runnable the host sleeps in WFI until the earliest
//! deadline. A VM whose vcpus all sleep with no deadline and nothing that
//! could wake them is stopped with a report rather than waited on forever.

use crate::guestcall::{self, Outcome};
use crate::hyp::{self, HypError};
use crate::kmain::HOST;
use crate::mm::PagePool;
use log::{error, info, warn};
use spevisor_abi::guest::machine::{PMU_INTID, PTIMER_INTID, UART_INTID, VTIMER_INTID};
use spevisor_abi::guest::psci;
use spevisor_abi::vgic::VcpuShared;
use spevisor_abi::{Call, Completion, Exit, InfoItem, MmioAccess, StopReason};
use spevisor_pgtable::PAGE_SIZE;
use spevisor_pl011::model::Pl011Model;

use crate::guest_dtb::{self, GuestMachine};
use spevisor_abi::guest::kernel::{self, KernelError};
use spevisor_abi::guest::machine::{DTB_SLOT, MAX_VCPUS};

/// Guest RAM IPA (the guest machine's memory map, `spevisor_abi::guest::machine`).
pub const GUEST_RAM_IPA: u64 = spevisor_abi::guest::machine::RAM_IPA;
/// The emulated PL011's IPA.
pub const GUEST_UART_IPA: u64 = spevisor_abi::guest::machine::UART_IPA;
const GUEST_UART_SIZE: u64 = guest_dtb::UART_SIZE;
const _: () = assert!(
    spevisor_abi::guest::machine::GICR_IPA + spevisor_abi::guest::machine::gicr_size(MAX_VCPUS) <= GUEST_UART_IPA,
    "the GIC's frames lie below the PL011 (Vm::mmio)"
);
/// The command line every guest's device tree carries.
pub const GUEST_BOOTARGS: &str = "console=ttyAMA0 earlycon";

/// Why a VM could not be made or run.
#[derive(Debug)]
pub enum VmError {
    /// The guest image does not fit in its RAM below the device tree (or is empty).
    BadImage { len: usize, ram: u64 },
    /// The guest's device tree could not be written.
    Dtb(guest_dtb::TreeError),
    /// `Boot::Linux` with something that is not an arm64 Linux Image.
    NotLinux(crate::linux_image::ImageError),
    /// `Boot::Kernel` with a file that cannot boot, or kernel and initrd
    /// too big for the RAM (`spevisor_abi::guest::kernel::plan`).
    Kernel(KernelError),
    /// vcpus outside `1..=MAX_VCPUS`.
    Vcpus(u32),
    /// The host ran out of pages.
    NoMemory { pages: u64 },
    /// The hypervisor refused a call.
    Hyp { call: &'static str, err: HypError },
}

impl core::fmt::Display for VmError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadImage { len, ram } => {
                write!(f, "bad guest image: {len} bytes for {ram:#x} bytes of RAM ({DTB_SLOT:#x} of them for the device tree)")
            }
            Self::Dtb(e) => write!(f, "guest device tree: {e}"),
            Self::NotLinux(e) => write!(f, "guest kernel: {e}"),
            Self::Kernel(e) => write!(f, "guest kernel: {e}"),
            Self::Vcpus(n) => write!(f, "{n} vcpus: a guest has 1 to {MAX_VCPUS}"),
            Self::NoMemory { pages } => write!(f, "host out of memory for {pages} guest pages"),
            Self::Hyp { call, err } => write!(f, "{call} refused: {err}"),
        }
    }
}

fn hyp_call(call: Call, name: &'static str, args: [u64; 7]) -> Result<[u64; 7], VmError> {
    hyp::call(call, args).map_err(|err| VmError::Hyp { call: name, err })
}

/// What a VM boots and how (image placement, entry registers).
#[derive(Clone, Copy, Debug)]
pub enum Boot<'a> {
    /// The test guest (`guest/`): `image` at the RAM base, entered there
    /// with x0..x2 = `args`.
    TestGuest { image: &'a [u8], args: [u64; 3] },
    /// An arm64 Linux `Image`, by its boot protocol: loaded at RAM +
    /// text_offset, entered there with x0 = the device tree, x1..x3 = 0.
    Linux { image: &'a [u8], bootargs: &'a str },
    /// Any arm64 kernel (`cargo xtask run --guest`): a Linux Image as
    /// above, or a raw binary at RAM + `RAW_TEXT_OFFSET`, entered with x0 =
    /// the device tree; the initrd high in RAM below the device tree, named
    /// in its `/chosen` (`spevisor_abi::guest::kernel::plan`).
    Kernel { kernel: &'a [u8], initrd: Option<&'a [u8]>, bootargs: &'a str },
}

/// The shape of a VM, beside what it boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmConfig {
    /// Bytes of guest RAM (rounded up to pages).
    pub ram: u64,
    /// vcpus, `1..=MAX_VCPUS`: all created at EL2 and described in the
    /// guest's device tree; vcpu 0 runs, the others wait for PSCI CPU_ON.
    pub vcpus: u32,
}

impl VmConfig {
    /// One vcpu, `ram` bytes.
    pub const fn uni(ram: u64) -> Self {
        Self { ram, vcpus: 1 }
    }
}

/// Where a boot's bytes go in guest RAM (offsets from the RAM base).
struct Layout<'a> {
    image: &'a [u8],
    /// The image's load offset (and entry, for kernels).
    offset: u64,
    /// Where its footprint ends.
    end: u64,
    /// The initrd and its offset.
    initrd: Option<(&'a [u8], u64)>,
}

impl Boot<'_> {
    fn bootargs(&self) -> &str {
        match self {
            Boot::TestGuest { .. } => GUEST_BOOTARGS,
            Boot::Linux { bootargs, .. } | Boot::Kernel { bootargs, .. } => bootargs,
        }
    }

    /// Where the image (and initrd) go in `ram` bytes of RAM.
    fn layout(&self, ram: u64) -> Result<Layout<'_>, VmError> {
        match *self {
            Boot::TestGuest { image, .. } => Ok(Layout { image, offset: 0, end: image.len() as u64, initrd: None }),
            Boot::Linux { image, .. } => {
                let h = crate::linux_image::parse(image).map_err(VmError::NotLinux)?;
                Ok(Layout { image, offset: h.text_offset, end: h.text_offset + h.image_size, initrd: None })
            }
            Boot::Kernel { kernel, initrd, .. } => {
                let initrd = initrd.filter(|i| !i.is_empty());
                let p = kernel::plan(ram, kernel, initrd.map_or(0, |i| i.len() as u64)).map_err(VmError::Kernel)?;
                Ok(Layout {
                    image: kernel,
                    offset: p.kernel_offset,
                    end: p.kernel_end,
                    initrd: initrd.zip(p.initrd_offset),
                })
            }
        }
    }

    /// The vcpu's entry point and x0..x2.
    fn entry(&self, load_offset: u64, dtb_ipa: u64) -> (u64, [u64; 3]) {
        match *self {
            Boot::TestGuest { args, .. } => (GUEST_RAM_IPA, args),
            Boot::Linux { .. } | Boot::Kernel { .. } => (GUEST_RAM_IPA + load_offset, [dtb_ipa, 0, 0]),
        }
    }
}

/// External aborts logged per VM (a guest looping on one would flood the console).
const LOGGED_ABORTS: u64 = 8;

/// The time slice a vcpu runs before another gets the CPU, unless
/// `spevisor.slice_us=` says otherwise.
pub const DEFAULT_SLICE_US: u64 = 10_000;

/// Whether a vcpu may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuRun {
    /// Not started, or after PSCI CPU_OFF: waits for CPU_ON.
    Off,
    Runnable,
    /// In WFI or CPU_SUSPEND: waits for an interrupt or its timer.
    Blocked,
}

/// The host's side of a vcpu.
#[derive(Clone, Copy, Debug)]
struct HostVcpu {
    run: VcpuRun,
    /// The answer to its last exit, encoded as VCPU_RUN's x3..x7.
    completion: [u64; 5],
    /// The page it shares with EL2 (list registers), 0 without a vGIC.
    shared: u64,
    /// Its EL1 physical timer (`ptimer.rs`).
    ptimer: crate::ptimer::PTimer,
}

/// The vcpu whose state the physical CPU's virtual-timer interrupt
/// (active or not) belongs to: (VM handle << 8) | vcpu.
static VTIMER_OWNER: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(u64::MAX);

pub use crate::ending::Ending;

/// The guest's PL011, timed by its device-tree clock against the host's
/// counter (`spevisor_pl011::model`: the FIFO drains at the line's rate).
fn timed_uart() -> Pl011Model {
    let mut uart = Pl011Model::firmware_configured();
    uart.set_clocks(guest_dtb::APB_PCLK_HZ.into(), crate::irq::timer::frequency());
    uart
}

/// A VM the host made.
pub struct Vm {
    pub name: &'static str,
    pub handle: u64,
    pub ram_pa: u64,
    pub ram_pages: u64,
    uart: Pl011Model,
    gic: crate::vgic::Vgic,
    /// The guest has a GICv2 (a GICv2 host): its distributor is the
    /// GICv2 front end (`vgic/v2.rs`), its CPU interface the hardware's.
    gic_v2: bool,
    line: [u8; 160],
    line_len: usize,
    vcpus: [HostVcpu; MAX_VCPUS as usize],
    pub nr_vcpus: usize,
    /// List registers the CPU gives guests (0: no vGIC, no interrupts).
    nr_lrs: usize,
    /// vcpu n needs the slow path around its next run (list registers to
    /// fill or read back, the virtual timer's physical state to switch).
    /// `false` keeps `step` on its short path (one byte test).
    attention: [bool; MAX_VCPUS as usize],
    /// Bit n: vcpu n's list registers were filled for its run.
    lrs_loaded: u32,
    /// Bit n: vcpu n's PMU overflow line was high at an exit, or its
    /// virtual INTID 23 may still be pending or active (`pmu_line`); the
    /// slow path looks at the PMU only for these.
    pmu_irq: u32,
    /// The status the guest reported (SET_STATUS), if any.
    pub status: Option<u64>,
    /// External aborts the host answered (accesses outside RAM and devices).
    pub aborts: u64,
    pub exits: u64,
    /// Exits after which the scheduler stops the VM (`run_all`).
    pub max_exits: u64,
    pub ending: Option<Ending>,
}

/// Cleans `[pa, pa+len)` to the point of coherency and invalidates the
/// instruction cache, so a guest that starts with its MMU and caches off
/// sees what the host wrote.
fn clean_for_guest(pa: u64, len: u64) {
    let line = crate::arch::dcache_line();
    let mut a = pa & !(line - 1);
    while a < pa + len {
        // SAFETY: `a` is in host memory the host just wrote (identity mapped);
        // cleaning a line only writes it back.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) a, options(nostack, preserves_flags)) };
        a += line;
    }
    // SAFETY: barriers and an I-cache invalidation have no memory effects.
    unsafe { core::arch::asm!("dsb ish", "ic iallu", "dsb ish", "isb", options(nostack, preserves_flags)) };
}

impl Vm {
    /// Creates a VM with `ram` bytes of RAM holding the test guest's `image`
    /// at its base, entered there with x0..x2 = `args`.
    pub fn create(name: &'static str, image: &[u8], ram: u64, args: [u64; 3]) -> Result<Self, VmError> {
        Self::create_booting(name, Boot::TestGuest { image, args }, VmConfig::uni(ram))
    }

    /// Creates a VM with `config.ram` bytes of RAM, the guest machine's
    /// device tree (for `config.vcpus` vcpus) in its last `DTB_SLOT` bytes
    /// (`guest_dtb.rs`), the image `boot` names loaded as its protocol
    /// wants (and its initrd), and vcpu 0 ready to enter it. The other
    /// vcpus exist from the start, off, for PSCI CPU_ON; each vcpu shares a
    /// page with EL2 for its list registers.
    pub fn create_booting(name: &'static str, boot: Boot, config: VmConfig) -> Result<Self, VmError> {
        if !(1..=MAX_VCPUS).contains(&config.vcpus) {
            return Err(VmError::Vcpus(config.vcpus));
        }
        let vcpus = config.vcpus as usize;
        let pages = config.ram.div_ceil(PAGE_SIZE);
        let ram = pages * PAGE_SIZE;
        let Layout { image, offset: load_offset, end: footprint, initrd } = boot.layout(ram)?;
        if image.is_empty() || ram < DTB_SLOT || footprint > ram - DTB_SLOT {
            return Err(VmError::BadImage { len: image.len(), ram });
        }
        let initrd_ipa = initrd.map(|(i, off)| (GUEST_RAM_IPA + off, GUEST_RAM_IPA + off + i.len() as u64));
        let gic_v2 = crate::irq::gic_v2();
        let machine =
            GuestMachine { ram_size: ram, bootargs: boot.bootargs(), vcpus: config.vcpus, initrd: initrd_ipa, gic_v2 };
        let (entry, args) = boot.entry(load_offset, machine.dtb_ipa());
        let ram_pa = with_pages(|p| p.alloc_pages(pages as usize)).ok_or(VmError::NoMemory { pages })?;
        let give_back = |e| {
            // SAFETY: allocated above with this count; the hypervisor holds no
            // mapping of them once the VM is destroyed (or was never made).
            with_pages(|p| unsafe { p.free_pages_at(ram_pa, pages as usize) });
            e
        };
        let load_pa = ram_pa + load_offset;
        // SAFETY: `[load_pa, load_pa + image.len())` lies in the `pages` fresh
        // host pages just allocated (footprint checked above), identity mapped RW.
        unsafe { core::ptr::copy_nonoverlapping(image.as_ptr(), load_pa as *mut u8, image.len()) };
        clean_for_guest(load_pa, image.len() as u64);
        if let Some((bytes, off)) = initrd {
            let pa = ram_pa + off;
            // SAFETY: `kernel::plan` put `[off, off + len)` inside the RAM
            // just allocated, above the image and below the device tree slot.
            unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), pa as *mut u8, bytes.len()) };
            clean_for_guest(pa, bytes.len() as u64);
        }
        let dtb_pa = ram_pa + (machine.dtb_ipa() - GUEST_RAM_IPA);
        // SAFETY: the last DTB_SLOT bytes of the RAM just allocated (the image
        // ends below them, checked above); nothing else refers to them yet.
        let slot = unsafe { core::slice::from_raw_parts_mut(dtb_pa as *mut u8, DTB_SLOT as usize) };
        let dtb_len = guest_dtb::write(slot, &machine).map_err(|e| give_back(VmError::Dtb(e)))?;
        clean_for_guest(dtb_pa, dtb_len as u64);
        let handle = hyp_call(Call::VmCreate, "VM_CREATE", [0; 7]).map_err(give_back)?[0];
        let nr_lrs = if crate::irq::ready() { hyp::info(InfoItem::ListRegs).unwrap_or(0) as usize } else { 0 };
        let mut host_vcpus = [HostVcpu {
            run: VcpuRun::Off,
            completion: Completion::None.to_regs(),
            shared: 0,
            ptimer: crate::ptimer::PTimer::default(),
        }; MAX_VCPUS as usize];
        let made =
            hyp_call(Call::VmDonate, "VM_DONATE", [handle, ram_pa, GUEST_RAM_IPA, pages, 0, 0, 0]).and_then(|_| {
                for (i, v) in host_vcpus[..vcpus].iter_mut().enumerate() {
                    hyp_call(Call::VcpuCreate, "VCPU_CREATE", [handle, entry, args[0], args[1], args[2], 0, 0])?;
                    if nr_lrs > 0 {
                        let page = with_pages(|p| p.alloc_pages(1)).ok_or(VmError::NoMemory { pages: 1 })?;
                        v.shared = page;
                        hyp_call(Call::VcpuShare, "VCPU_SHARE", [handle, i as u64, page, 0, 0, 0, 0])?;
                    }
                }
                Ok(())
            });
        if let Err(e) = made {
            let _ = hyp::call(Call::VmDestroy, [handle, 0, 0, 0, 0, 0, 0]);
            free_shared(&host_vcpus);
            return Err(give_back(e));
        }
        host_vcpus[0].run = VcpuRun::Runnable;
        info!(
            "{name}: VM {handle} with {} KiB at {:#x} (IPA {:#x}), device tree at IPA {:#x} ({dtb_len} bytes)",
            ram / 1024,
            ram_pa,
            GUEST_RAM_IPA,
            machine.dtb_ipa()
        );
        if let Some((start, end)) = initrd_ipa {
            info!("{name}: initrd at IPA {start:#x}..{end:#x}");
        }
        crate::profiler::note_guest_memory(ram_pa, ram_pa + pages * PAGE_SIZE);
        Ok(Self {
            name,
            handle,
            ram_pa,
            ram_pages: pages,
            uart: timed_uart(),
            gic: crate::vgic::Vgic::new(vcpus),
            gic_v2,
            line: [0; 160],
            line_len: 0,
            vcpus: host_vcpus,
            nr_vcpus: vcpus,
            nr_lrs,
            attention: [false; MAX_VCPUS as usize],
            lrs_loaded: 0,
            pmu_irq: 0,
            status: None,
            aborts: 0,
            exits: 0,
            max_exits: u64::MAX,
            ending: None,
        })
    }

    fn emit(&mut self, b: u8) {
        if b == b'\n' || self.line_len == self.line.len() {
            let text = core::str::from_utf8(&self.line[..self.line_len]).unwrap_or("<non-UTF-8 output>");
            crate::hprintln!("[{}] {}", self.name, text.trim_end_matches('\r'));
            console_mark(self.name, text);
            self.line_len = 0;
            if b == b'\n' {
                return;
            }
        }
        self.line[self.line_len] = b;
        self.line_len += 1;
    }

    /// A guest `hvc`/`smc` of vcpu `i` whose answer is more than a plain
    /// answer (`guestcall::handle`; plain answers are set in `step`): sets
    /// the completion; `false` once the VM has powered off or reset, or the
    /// vcpu is off or asleep.
    #[inline(never)]
    fn hvc_outcome(&mut self, i: usize, outcome: Outcome) -> bool {
        let (answer, go_on) = self.apply_outcome(i, outcome);
        self.vcpus[i].completion = answer.map_or(Completion::None, Completion::Hvc).to_regs();
        go_on
    }

    /// The answer to `outcome` (none once the VM or the vcpu has stopped)
    /// and whether vcpu `i` may go on running.
    fn apply_outcome(&mut self, i: usize, outcome: Outcome) -> (Option<[u64; 4]>, bool) {
        match outcome {
            Outcome::Answer(a) => (Some(a), true),
            Outcome::Status { status, answer } => {
                self.status = Some(status);
                (Some(answer), true)
            }
            Outcome::Report { tag, value, answer } => {
                crate::hprintln!("[{}] report tag={} value={:#x}", self.name, tag, value);
                (Some(answer), true)
            }
            Outcome::Off => {
                self.ending = Some(Ending::Off);
                (None, false)
            }
            Outcome::Reset => {
                self.ending = Some(Ending::Reset);
                (None, false)
            }
            Outcome::Exit { status } => {
                self.status = Some(status);
                self.ending = Some(Ending::Off);
                (None, false)
            }
            Outcome::CpuOff => {
                self.vcpus[i].run = VcpuRun::Off;
                if self.vcpus[..self.nr_vcpus].iter().all(|v| v.run == VcpuRun::Off) {
                    self.ending = Some(Ending::Off);
                }
                (None, false)
            }
            Outcome::CpuOn { target, entry, context } => (Some([self.cpu_on(target, entry, context), 0, 0, 0]), true),
            Outcome::AffinityInfo { target, level } => (Some([self.affinity_info(target, level), 0, 0, 0]), true),
            // Answered now, returned to when the vcpu wakes (it may sleep).
            Outcome::Suspend => (Some([psci::SUCCESS, 0, 0, 0]), self.wfi(i)),
        }
    }

    /// The vcpu an MPIDR names: Aff0 = index, the other affinity fields 0.
    fn vcpu_of(&self, mpidr: u64) -> Option<usize> {
        const AFF0: u64 = 0xff;
        const AFFINITY: u64 = 0xff_00ff_ffff;
        let i = (mpidr & AFF0) as usize;
        (mpidr & AFFINITY & !AFF0 == 0 && i < self.nr_vcpus).then_some(i)
    }

    /// PSCI CPU_ON: the PSCI status.
    fn cpu_on(&mut self, target: u64, entry: u64, context: u64) -> u64 {
        let Some(t) = self.vcpu_of(target) else { return psci::INVALID_PARAMETERS };
        if self.vcpus[t].run != VcpuRun::Off {
            return psci::ALREADY_ON;
        }
        let ram = GUEST_RAM_IPA..GUEST_RAM_IPA + self.ram_pages * PAGE_SIZE;
        if !ram.contains(&entry) || !entry.is_multiple_of(4) {
            return psci::INVALID_ADDRESS;
        }
        if let Err(e) = hyp::call(Call::VcpuReset, [self.handle, t as u64, entry, context, 0, 0, 0]) {
            warn!("{}: CPU_ON of vcpu {t}: VCPU_RESET refused: {e}", self.name);
            return psci::INVALID_ADDRESS;
        }
        self.vcpus[t].run = VcpuRun::Runnable;
        self.vcpus[t].completion = Completion::None.to_regs();
        self.vcpus[t].ptimer = crate::ptimer::PTimer::default();
        self.ptimer_line(t);
        self.attention[t] = true;
        psci::SUCCESS
    }

    /// PSCI AFFINITY_INFO (level 0 only: every vcpu is its own cluster-less core).
    fn affinity_info(&self, target: u64, level: u64) -> u64 {
        match self.vcpu_of(target) {
            Some(t) if level == 0 => {
                if self.vcpus[t].run == VcpuRun::Off {
                    psci::AFFINITY_OFF
                } else {
                    psci::AFFINITY_ON
                }
            }
            _ => psci::INVALID_PARAMETERS,
        }
    }

    /// Emulates an MMIO access; `None` if no device is there. Kept out of
    /// `step` so the device models do not weigh on its hypercall path.
    #[inline(never)]
    fn mmio(&mut self, i: usize, m: MmioAccess) -> Option<Completion> {
        if !self.device_at(m.ipa) {
            return None;
        }
        // The GIC's frames lie below the PL011 (asserted at GUEST_UART_IPA).
        if m.ipa < GUEST_UART_IPA {
            return Some(if self.gic_v2 { self.gic_access_v2(i, m) } else { self.gic_access(m) });
        }
        let off = m.ipa - GUEST_UART_IPA;
        // Characters sent since the last access leave the FIFO first.
        let sent = self.uart.advance(crate::irq::timer::now());
        if m.write {
            let mut out = [0u8; 1];
            let mut n = 0;
            let r = self.uart.write(off, m.size, m.value, &mut |b| {
                out[0] = b;
                n = 1;
            });
            if n == 1 {
                self.emit(out[0]);
            }
            if let Err(e) = r {
                warn!("{}: PL011 write at +{off:#x} ignored: {e:?}", self.name);
            }
            if off == spevisor_pl011::reg::DR && n == 0 && self.uart.tx_dropped() == 1 {
                warn!("{}: PL011 byte written while its transmit FIFO was full: lost (as on hardware; further losses not reported)", self.name);
            }
            self.uart_irq();
            Some(Completion::MmioWrite)
        } else {
            let queued = self.uart.tx_level();
            let v = self.uart.read(off, m.size).unwrap_or_else(|e| {
                warn!("{}: PL011 read at +{off:#x} reads as 0: {e:?}", self.name);
                0
            });
            // The advance, or a read of FR that delivered the FIFO, may
            // have raised its interrupt.
            if sent || queued != self.uart.tx_level() {
                self.uart_irq();
            }
            Some(Completion::MmioRead(v))
        }
    }

    /// Time passed while the vcpus ran or slept: the PL011's transmitter
    /// sent what the line allowed, which may raise its transmit interrupt
    /// (`spevisor_pl011::model`).
    fn uart_advance(&mut self, now: u64) {
        if self.uart.advance(now) {
            self.uart_irq();
        }
    }

    /// The PL011's interrupt output into its SPI's line.
    fn uart_irq(&mut self) {
        let level = self.uart.irq_pending();
        if let Some(cpu) = self.gic.set_level(UART_INTID as usize, level) {
            self.interrupts_changed(1 << cpu);
        }
    }

    /// A GICv2 distributor access by vcpu `i` (`vgic/v2.rs`): banked
    /// registers are vcpu `i`'s; a GICD_SGIR write wakes its targets.
    fn gic_access_v2(&mut self, i: usize, m: MmioAccess) -> Completion {
        use spevisor_abi::guest::machine::GICD_IPA;
        let off = m.ipa - GICD_IPA;
        let r = if m.write {
            self.gic.write_dist_v2(i, off, m.size, m.value).map(|targets| {
                // Enables, priorities, targets or pending bits may change
                // for every vcpu; an SGI's targets are among them.
                self.interrupts_changed(((1 << self.nr_vcpus) - 1) | targets);
                0
            })
        } else {
            self.gic.read_dist_v2(i, off, m.size)
        };
        let v = r.unwrap_or_else(|e| {
            warn!("{}: GIC access at IPA {:#x} refused ({e:?}): RAZ/WI", self.name, m.ipa);
            0
        });
        if m.write {
            Completion::MmioWrite
        } else {
            Completion::MmioRead(v)
        }
    }

    /// A distributor or redistributor access (`vgic.rs`). A size or
    /// alignment the register does not take reads as zero and ignores the
    /// write, with a warning: the guest goes on.
    fn gic_access(&mut self, m: MmioAccess) -> Completion {
        if m.write {
            // Enables, priorities, routes or pending bits may change.
            self.interrupts_changed((1 << self.nr_vcpus) - 1);
        }
        use spevisor_abi::guest::machine::{GICD_IPA, GICR_IPA};
        let dist = m.ipa < GICR_IPA;
        let off = m.ipa - if dist { GICD_IPA } else { GICR_IPA };
        let r = match (dist, m.write) {
            (true, true) => self.gic.write_dist(off, m.size, m.value).map(|()| 0),
            (true, false) => self.gic.read_dist(off, m.size),
            (false, true) => self.gic.write_redist(off, m.size, m.value).map(|()| 0),
            (false, false) => self.gic.read_redist(off, m.size),
        };
        let v = r.unwrap_or_else(|e| {
            warn!("{}: GIC access at IPA {:#x} refused ({e:?}): RAZ/WI", self.name, m.ipa);
            0
        });
        if m.write {
            Completion::MmioWrite
        } else {
            Completion::MmioRead(v)
        }
    }

    /// Runs vcpu `i` once (to its next exit) and handles the exit. Returns
    /// `true` while it may go on running: `false` once the VM has ended,
    /// the vcpu sleeps or is off, or the host's timer ended its slice.
    pub fn step(&mut self, i: usize) -> bool {
        if self.ending.is_some() {
            return false;
        }
        let i = i & (MAX_VCPUS as usize - 1);
        let mut x2 = i as u64;
        let slow = self.attention[i];
        if slow && self.before_run(i) {
            x2 |= spevisor_abi::VCPU_RUN_GIC;
        }
        let c = self.vcpus[i].completion;
        let r = hyp::call(Call::VcpuRun, [self.handle, x2, c[0], c[1], c[2], c[3], c[4]]);
        // The world switch drained the host's SPE buffer: it may be full.
        // (And the hostile host's SPE scenario rewrites the model's area.)
        crate::profiler::poll();
        if slow {
            self.after_run(i);
        }
        let exit = match r {
            Ok(r) => Exit::from_regs(r),
            Err(e) => return self.refused(e),
        };
        self.exits += 1;
        let go_on = match exit {
            // Every arm leaves the completion the next run needs.
            Some(Exit::Hvc { regs, .. }) => match guestcall::stateless(regs) {
                Some(a) => {
                    self.vcpus[i].completion = Completion::Hvc(a).to_regs();
                    true
                }
                None => self.hvc_outcome(i, guestcall::handle(regs)),
            },
            Some(Exit::Mmio(m)) => match self.mmio(i, m) {
                Some(c) => {
                    self.vcpus[i].completion = c.to_regs();
                    true
                }
                None => self.no_device(i, m.ipa, if m.write { "write" } else { "read" }),
            },
            Some(Exit::Abort { ipa, far, instr, write }) => self.abort(i, ipa, far, instr, write),
            Some(Exit::SysReg { reg, write, value }) => self.sysreg(i, reg, write, value),
            Some(Exit::Irq) => {
                self.vcpus[i].completion = Completion::None.to_regs();
                self.irq_exit(i)
            }
            Some(Exit::Wfx) => {
                self.vcpus[i].completion = Completion::None.to_regs();
                self.wfi(i)
            }
            Some(Exit::Sgi { value, group1 }) => {
                self.vcpus[i].completion = Completion::None.to_regs();
                self.sgi(i, value, group1)
            }
            Some(Exit::Stopped { reason, esr, far, elr }) => return self.stopped(reason, esr, far, elr),
            None => return self.undecodable(),
        };
        // The handler recorded what the interrupt that may have ended the
        // run was (or one that arrived during the exit).
        let events = crate::irq::take_events();
        if events != 0 {
            return self.events(i, events) && go_on;
        }
        go_on
    }

    /// Before vcpu `i` runs: the physical virtual-timer interrupt's active
    /// state becomes this vcpu's (set while its tied virtual interrupt is
    /// pending or active, so the timer cannot fire again before the guest
    /// has deactivated it; clear otherwise, so its own timer can fire), and
    /// its list registers are filled.
    /// Returns whether the list registers were filled.
    #[inline(never)]
    fn before_run(&mut self, i: usize) -> bool {
        use core::sync::atomic::Ordering;
        let key = self.handle << 8 | i as u64;
        if VTIMER_OWNER.swap(key, Ordering::Relaxed) != key {
            crate::irq::set_vtimer_active(self.gic.in_flight(i, VTIMER_INTID as usize));
        }
        // Its PMU overflow in flight: the physical PPI active for the run
        // (cleared again in `after_run`, the host samples on it).
        if self.pmu_irq & (1 << i) != 0 && self.gic.in_flight(i, PMU_INTID as usize) {
            crate::irq::set_pmu_active(true);
        }
        if self.vcpus[i].shared != 0 && self.gic.needs_flush(i) {
            self.gic.flush(i, shared_page(self.vcpus[i].shared), self.nr_lrs);
            self.lrs_loaded |= 1 << i;
            return true;
        }
        false
    }

    /// After vcpu `i` ran: its list registers' state back into the model.
    #[inline(never)]
    fn after_run(&mut self, i: usize) {
        if self.lrs_loaded & (1 << i) != 0 {
            self.gic.fold(i, shared_page(self.vcpus[i].shared));
            self.lrs_loaded &= !(1 << i);
        }
        // A line that was low can only have risen with an IRQ exit
        // (`irq_exit` looks); one that was high is followed at every exit.
        if self.pmu_irq & (1 << i) != 0 {
            self.pmu_after_run(i);
        }
        // A PMU overflow in flight keeps the slow path (the physical PPI's
        // active state), even while the guest has it disabled.
        if !self.gic.needs_flush(i) && self.pmu_irq & (1 << i) == 0 {
            self.attention[i] = false;
        }
    }

    /// After a run of vcpu `i` whose PMU interrupt is in flight: the
    /// physical PPI no longer active (the host samples on it), the line
    /// followed.
    #[cold]
    #[inline(never)]
    fn pmu_after_run(&mut self, i: usize) {
        crate::irq::set_pmu_active(false);
        self.pmu_line(i);
    }

    /// Vcpu `i`'s PMU overflow line as EL2 left it in the shared page at
    /// its exit (`pmu.rs`): virtual INTID 23, level-sensitive.
    #[inline(never)]
    fn pmu_line(&mut self, i: usize) {
        let v = &self.vcpus[i];
        if self.nr_lrs == 0 || v.shared == 0 {
            return;
        }
        let level = shared_page(v.shared).pmu_level != 0;
        let bit = 1 << i;
        if !level && self.pmu_irq & bit == 0 {
            return;
        }
        if self.gic.set_tied_private_level(i, PMU_INTID as usize, level) {
            self.interrupts_changed(bit);
        }
        if level || self.gic.in_flight(i, PMU_INTID as usize) {
            self.pmu_irq |= bit;
        } else {
            self.pmu_irq &= !bit;
        }
    }

    /// vcpu `i` wrote an SGI register (`value`, group 1 or 0).
    #[inline(never)]
    fn sgi(&mut self, i: usize, value: u64, group1: bool) -> bool {
        let targets = self.gic.sgi(i, value, group1);
        self.interrupts_changed(targets);
        true
    }

    /// The model changed for the vcpus in `targets` (bit mask): each needs
    /// its list registers filled, and one asleep wakes up.
    fn interrupts_changed(&mut self, targets: u32) {
        if self.nr_lrs == 0 {
            return;
        }
        for (n, a) in self.attention.iter_mut().enumerate() {
            *a |= targets & (1 << n) != 0;
        }
        for (n, v) in self.vcpus[..self.nr_vcpus].iter_mut().enumerate() {
            if targets & (1 << n) != 0 && v.run == VcpuRun::Blocked && self.gic.has_work(n) {
                v.run = VcpuRun::Runnable;
            }
        }
    }

    /// A trapped access of vcpu `i` to its EL1 physical timer (the only
    /// registers EL2 hands over, `spevisor_abi::guest_sysreg`): answered
    /// from its model at the counter's value now; a write may raise or drop
    /// INTID 30's line and moves the host's timer to the new deadline.
    #[inline(never)]
    fn sysreg(&mut self, i: usize, reg: u32, write: bool, value: u64) -> bool {
        let now = crate::irq::timer::now();
        let t = &mut self.vcpus[i].ptimer;
        let c = if write {
            if !t.write(reg, value, now) {
                warn!("{}: write to system register {reg:#x} the host does not emulate: ignored", self.name);
            }
            Completion::MmioWrite
        } else {
            Completion::MmioRead(t.read(reg, now).unwrap_or_else(|| {
                warn!("{}: read of system register {reg:#x} the host does not emulate: 0", self.name);
                0
            }))
        };
        self.vcpus[i].completion = c.to_regs();
        if write {
            self.ptimer_line(i);
            self.arm_host_timer(i);
        }
        true
    }

    /// INTID 30's line of vcpu `i` from its physical timer now (level:
    /// pending while high, not once the guest masks or reprograms it).
    fn ptimer_line(&mut self, i: usize) {
        if self.nr_lrs == 0 {
            return;
        }
        let high = self.vcpus[i].ptimer.line(crate::irq::timer::now());
        if self.gic.set_private_level(i, PTIMER_INTID as usize, high) {
            self.interrupts_changed(1 << i);
        }
    }

    /// The host's timer for running vcpu `i`: at the end of the slice, or
    /// earlier at its physical timer's deadline.
    fn arm_host_timer(&self, i: usize) {
        use crate::irq::timer;
        let end = SLICE_END.load(core::sync::atomic::Ordering::Relaxed);
        let at = self.vcpus[i].ptimer.deadline(timer::now()).map_or(end, |d| d.min(end));
        if at == u64::MAX {
            timer::stop();
        } else {
            timer::arm(at);
        }
    }

    /// Acts on what the host's interrupt handler recorded after vcpu `i`
    /// ran. `false`: its slice is over.
    #[cold]
    fn events(&mut self, i: usize, events: u32) -> bool {
        if events & crate::irq::event::VTIMER != 0 && self.nr_lrs > 0 {
            // Its timer fired while it ran: its virtual INTID 27, tied to
            // the physical one the handler left active.
            self.gic.inject_private(i, VTIMER_INTID as usize, true);
            self.interrupts_changed(1 << i);
        }
        if events & crate::irq::event::HOST_TIMER != 0 {
            use core::sync::atomic::Ordering;
            if crate::irq::timer::now() >= SLICE_END.load(Ordering::Relaxed) {
                SLICE_OVER.store(true, Ordering::Relaxed);
                return false;
            }
            // Before the slice's end: the deadline of its physical timer.
            self.ptimer_line(i);
            self.arm_host_timer(i);
        }
        true
    }

    /// An IRQ ended vcpu `i`'s run: the UART's transmitter catches up with
    /// the time that passed; if its virtual timer was firing, its
    /// virtual INTID 27 becomes pending, tied to the physical PPI, which
    /// is made active now so that it cannot fire again (and end every run
    /// at once) before the guest has deactivated it.
    #[inline(never)]
    fn irq_exit(&mut self, i: usize) -> bool {
        self.uart_advance(crate::irq::timer::now());
        self.pmu_line(i);
        let v = &self.vcpus[i];
        if self.nr_lrs == 0 || v.shared == 0 || !shared_page(v.shared).timer_firing() {
            return true;
        }
        if !self.gic.in_flight(i, VTIMER_INTID as usize) {
            self.gic.inject_private(i, VTIMER_INTID as usize, true);
            self.interrupts_changed(1 << i);
        }
        crate::irq::set_vtimer_active(true);
        true
    }

    /// WFI: vcpu `i` sleeps unless an interrupt is already there for it
    /// (the UART's transmitter catches up first: its interrupt may be what
    /// the guest waits for).
    #[inline(never)]
    fn wfi(&mut self, i: usize) -> bool {
        self.uart_advance(crate::irq::timer::now());
        self.ptimer_line(i);
        if self.gic.has_work(i) {
            return true;
        }
        self.vcpus[i].run = VcpuRun::Blocked;
        false
    }

    /// When sleeping vcpu `i` wakes (counter ticks): the earlier of its
    /// virtual timer's deadline and its physical timer's, if either is armed.
    fn deadline(&self, i: usize) -> Option<u64> {
        let v = &self.vcpus[i];
        if v.run != VcpuRun::Blocked || v.shared == 0 {
            return None;
        }
        let virt = shared_page(v.shared).timer_deadline();
        let phys = v.ptimer.wake_at();
        match (virt, phys) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The counter time of the VM's next wake-up, if any: the earliest
    /// timer deadline of a sleeping vcpu, or the PL011's transmit
    /// interrupt (a driver that filled the FIFO sleeps until it drains).
    fn next_wake(&self) -> Option<u64> {
        (0..self.nr_vcpus).filter_map(|i| self.deadline(i)).chain(self.uart.next_tx_interrupt()).min()
    }

    /// Wakes sleeping vcpus whose deadline is `now` or past: once loaded,
    /// their virtual timer fires (its interrupt comes as an IRQ exit); the
    /// physical timer's line is raised here. The UART's transmitter catches
    /// up: its interrupt wakes its target.
    fn wake_due(&mut self, now: u64) {
        self.uart_advance(now);
        for i in 0..self.nr_vcpus {
            if self.deadline(i).is_some_and(|d| d <= now) {
                self.vcpus[i].run = VcpuRun::Runnable;
                self.attention[i] = true;
                self.ptimer_line(i);
            }
        }
    }

    // The ways a run ends badly: reported here, out of `step`'s hot path.

    #[cold]
    fn refused(&mut self, e: HypError) -> bool {
        error!("{}: VCPU_RUN refused: {e}", self.name);
        self.ending = Some(Ending::Killed);
        false
    }

    /// vcpu `i` accessed `ipa`, where neither RAM nor a device is: it
    /// takes a synchronous external abort (EL2 injects it, or stops the VM
    /// when the guest cannot get past it). The first few are logged.
    #[cold]
    fn no_device(&mut self, i: usize, ipa: u64, what: &str) -> bool {
        self.aborts += 1;
        if self.aborts <= LOGGED_ABORTS {
            info!("{}: {what} at IPA {ipa:#x}: no RAM or device there; external abort for the guest", self.name);
        } else if self.aborts == LOGGED_ABORTS + 1 {
            info!("{}: more external aborts; not logged", self.name);
        }
        self.vcpus[i].completion = Completion::Abort.to_regs();
        true
    }

    /// A stage-2 abort outside RAM EL2 could not make an MMIO access of
    /// (`Exit::Abort`): an instruction fetch is an external abort wherever
    /// it is (nothing outside RAM is executable); a data access without
    /// syndrome (ISV=0) on a device stops the VM, since the device model
    /// cannot know what it was; elsewhere it is an external abort.
    #[cold]
    fn abort(&mut self, i: usize, ipa: u64, far: u64, instr: bool, write: bool) -> bool {
        if instr {
            return self.no_device(i, ipa, "instruction fetch");
        }
        if self.device_at(ipa) {
            error!(
                "{}: stopped: {} (IPA {ipa:#x}, VA {far:#x}, a {})",
                self.name,
                StopReason::MmioNoSyndrome.name(),
                if write { "write" } else { "read" }
            );
            self.ending = Some(Ending::Stopped(StopReason::MmioNoSyndrome));
            return false;
        }
        self.no_device(i, ipa, if write { "write without syndrome" } else { "read without syndrome" })
    }

    /// Whether one of the VM's emulated devices (GIC distributor and
    /// redistributors, PL011) is at `ipa`.
    fn device_at(&self, ipa: u64) -> bool {
        use spevisor_abi::guest::machine::{GICD_IPA, GICR_IPA};
        (GICD_IPA..GICD_IPA + crate::vgic::GICD_SIZE).contains(&ipa)
            || (!self.gic_v2 && (GICR_IPA..GICR_IPA + self.gic.redist_size()).contains(&ipa))
            || (GUEST_UART_IPA..GUEST_UART_IPA + GUEST_UART_SIZE).contains(&ipa)
    }

    #[cold]
    fn stopped(&mut self, reason: StopReason, esr: u64, far: u64, elr: u64) -> bool {
        error!(
            "{}: stopped by the hypervisor: {} ({}, IPA/FAR {:#x}, PC {:#x})",
            self.name,
            reason.name(),
            spevisor_armv8::esr::Esr(esr),
            far,
            elr
        );
        self.ending = Some(Ending::Stopped(reason));
        false
    }

    #[cold]
    fn undecodable(&mut self) -> bool {
        error!("{}: undecodable exit record", self.name);
        self.ending = Some(Ending::Killed);
        false
    }

    /// Runs until the VM ends.
    pub fn run(&mut self) -> Ending {
        run_all(&mut [self]);
        self.ending.unwrap_or(Ending::Killed)
    }

    /// Runs until the VM ends or `max_exits` exits have been handled (then
    /// it is stopped with a report).
    pub fn run_for(&mut self, max_exits: u64) -> Ending {
        self.max_exits = max_exits;
        run_all(&mut [self]);
        self.ending.unwrap_or(Ending::Killed)
    }

    /// List registers the CPU gives this VM's vcpus, and the EOIs of
    /// interrupts none of them held (EOIcount) so far.
    pub fn gic_stats(&self) -> (usize, u64) {
        (self.nr_lrs, self.gic.eoicount_total())
    }

    /// The emulated UART's transmit interrupts raised and bytes lost to a
    /// full FIFO.
    pub fn uart_stats(&self) -> (u64, u64) {
        (self.uart.tx_raised(), self.uart.tx_dropped())
    }

    /// The guest's RAM as the host sees it.
    pub fn ram(&self) -> &[u64] {
        // SAFETY: the VM's RAM is host memory the host allocated, identity
        // mapped; the guest does not run while the host reads it (one CPU).
        unsafe { core::slice::from_raw_parts(self.ram_pa as *const u64, (self.ram_pages * PAGE_SIZE / 8) as usize) }
    }

    /// Destroys the VM; its pages come back to the host.
    pub fn destroy(self) -> Result<(), VmError> {
        hyp_call(Call::VmDestroy, "VM_DESTROY", [self.handle, 0, 0, 0, 0, 0, 0])?;
        // SAFETY: the hypervisor has unmapped the pages and flushed the VMID.
        with_pages(|p| unsafe { p.free_pages_at(self.ram_pa, self.ram_pages as usize) });
        free_shared(&self.vcpus);
        Ok(())
    }
}

/// Gives back the pages vcpus shared with EL2 (their VM is gone, or was
/// never made).
fn free_shared(vcpus: &[HostVcpu]) {
    for v in vcpus.iter().filter(|v| v.shared != 0) {
        // SAFETY: one page from `alloc_pages(1)`; EL2 forgot it with its VM.
        with_pages(|p| unsafe { p.free_pages_at(v.shared, 1) });
    }
}

/// The page vcpu shares with EL2.
fn shared_page<'a>(pa: u64) -> &'a mut VcpuShared {
    // SAFETY: a page the host allocated for this vcpu and shared with EL2
    // (VCPU_SHARE), identity mapped RW; EL2 touches it only inside
    // VCPU_RUN, when the host does not run (one CPU).
    unsafe { &mut *(pa as *mut VcpuShared) }
}

/// `spevisor.mark=TEXT`: the first guest console line containing TEXT
/// prints `console-mark: vm=NAME counter=N cntfrq=F` (the bench's
/// `linux_boot`: reset to Linux's init line).
static MARK: spin::Mutex<([u8; 32], usize, bool)> = spin::Mutex::new(([0; 32], 0, false));

/// Sets the console mark (at most 32 bytes).
pub fn set_console_mark(text: &str) {
    let mut m = MARK.lock();
    let n = text.len().min(m.0.len());
    m.0[..n].copy_from_slice(&text.as_bytes()[..n]);
    m.1 = n;
}

#[cold]
fn console_mark(vm: &str, line: &str) {
    let mut m = MARK.lock();
    let (buf, n, hit) = &mut *m;
    let Ok(mark) = core::str::from_utf8(&buf[..*n]) else { return };
    if *n == 0 || *hit || !line.contains(mark) {
        return;
    }
    *hit = true;
    crate::hprintln!(
        "console-mark: vm={vm} counter={} cntfrq={}",
        crate::irq::timer::now(),
        crate::irq::timer::frequency()
    );
}

/// Set by a vcpu's `events` when the host's timer ends its slice.
static SLICE_OVER: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// When the running vcpu's slice ends (counter ticks; `u64::MAX` outside
/// `run_all`): the host's timer fires then, or earlier for the vcpu's
/// physical timer (`Vm::arm_host_timer`).
static SLICE_END: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(u64::MAX);

/// The time slice in counter ticks (`spevisor.slice_us=`).
static SLICE_TICKS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Sets the time slice (from the command line).
pub fn set_slice_us(us: u64) {
    SLICE_TICKS.store(crate::irq::timer::ticks_us(us.max(1)), core::sync::atomic::Ordering::Relaxed);
}

fn slice_ticks() -> u64 {
    match SLICE_TICKS.load(core::sync::atomic::Ordering::Relaxed) {
        0 => crate::irq::timer::ticks_us(DEFAULT_SLICE_US),
        t => t,
    }
}

/// Runs every VM of `vms` until each has ended (or handled its
/// `max_exits` exits: then it is stopped with a report): every runnable
/// vcpu gets a time slice in turn; with none runnable, the host sleeps
/// until the earliest timer deadline of a sleeping vcpu.
pub fn run_all(vms: &mut [&mut Vm]) {
    use crate::irq::timer;
    use core::sync::atomic::Ordering;
    let slice = slice_ticks();
    loop {
        let mut ran = false;
        for vm in vms.iter_mut() {
            for i in 0..vm.nr_vcpus {
                if vm.ending.is_some() {
                    break;
                }
                vm.wake_due(timer::now());
                if vm.vcpus[i].run != VcpuRun::Runnable {
                    continue;
                }
                ran = true;
                SLICE_OVER.store(false, Ordering::Relaxed);
                SLICE_END.store(timer::now() + slice, Ordering::Relaxed);
                vm.ptimer_line(i);
                vm.arm_host_timer(i);
                vm.attention[i] = true;
                // The budget is checked once a slice: a run of exits ends
                // at the latest when the host's timer ends the slice.
                while vm.step(i) {}
                if vm.exits >= vm.max_exits && vm.ending.is_none() {
                    error!("{}: exit budget of {} spent; VM stopped", vm.name, vm.max_exits);
                    vm.ending = Some(Ending::OutOfBudget);
                }
            }
        }
        if vms.iter().all(|vm| vm.ending.is_some()) {
            SLICE_END.store(u64::MAX, Ordering::Relaxed);
            timer::stop();
            return;
        }
        if !ran {
            idle(vms);
        }
    }
}

/// Nothing is runnable: sleeps until the earliest wake-up of a VM
/// ([`Vm::next_wake`]; an interrupt for the host ends the sleep too). A VM none of whose
/// vcpus can ever wake (asleep without a timer, or off) is stopped.
fn idle(vms: &mut [&mut Vm]) {
    use crate::irq::timer;
    let mut earliest = u64::MAX;
    for vm in vms.iter_mut().filter(|vm| vm.ending.is_none()) {
        match vm.next_wake() {
            Some(d) => earliest = earliest.min(d),
            None => {
                error!("{}: every vcpu waits for an interrupt nothing will send; VM stopped", vm.name);
                vm.ending = Some(Ending::Killed);
            }
        }
    }
    if earliest == u64::MAX {
        return;
    }
    let daif = crate::arch::mask_irqs();
    timer::arm(earliest);
    // SAFETY: waits for an interrupt with IRQs masked (WFI wakes on a
    // pending one regardless); the handler runs once they are unmasked.
    unsafe { core::arch::asm!("wfi", options(nomem, nostack, preserves_flags)) };
    crate::arch::restore_irqs(daif);
    timer::stop();
}

fn with_pages<T>(f: impl FnOnce(&mut PagePool) -> T) -> T {
    let mut host = HOST.lock();
    let host = host.as_mut().expect("host state is set before any VM exists");
    f(&mut host.pages)
}

/// `n` contiguous host pages (identity mapped RW), for scenarios that
/// hand pages to the hypervisor themselves.
pub fn alloc_host_pages(n: usize) -> Option<u64> {
    with_pages(|p| p.alloc_pages(n))
}

/// Gives back pages from [`alloc_host_pages`].
///
/// # Safety
/// `pa` and `n` are what `alloc_host_pages(n)` returned, and the
/// hypervisor no longer holds any of them (donated or shared).
pub unsafe fn free_host_pages(pa: u64, n: usize) {
    // SAFETY: the caller's promise.
    with_pages(|p| unsafe { p.free_pages_at(pa, n) });
}

/// Free host pages (leak checks).
pub fn host_free_pages() -> usize {
    HOST.lock().as_ref().map_or(0, |h| h.pages.free_pages())
}

/// Runs vcpu 0 of two VMs alternately, switching at every exit, until
/// both end; returns the number of alternations.
pub fn run_alternately(a: &mut Vm, b: &mut Vm) -> u64 {
    let mut alternations = 0;
    loop {
        for vm in [&mut *a, &mut *b] {
            // The virtual timer's physical state follows the switch.
            vm.attention[0] = true;
            vm.step(0);
        }
        alternations += 1;
        if a.ending.is_some() && b.ending.is_some() {
            return alternations;
        }
    }
}
