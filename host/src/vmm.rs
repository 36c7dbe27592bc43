//! The host's VM manager: guest memory, loading images, the run loop and exit
//! handling (PSCI, the guest test ABI, the emulated PL011).

use crate::guestcall::{self, Outcome};
use crate::hyp::{self, HypError};
use crate::kmain::HOST;
use crate::mm::PagePool;
use log::{error, info, warn};
use spevisor_abi::{Call, Completion, Exit, MmioAccess, StopReason};
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
    /// vcpus the guest's device tree describes, `1..=MAX_VCPUS`. Only vcpu
    /// 0 is created at EL2 for now: creating and scheduling the secondaries
    /// (PSCI CPU_ON) is the interrupt/SMP work's (issue 9), which takes it
    /// from here.
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

/// How a guest run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// PSCI SYSTEM_OFF (or CPU_OFF of its only vcpu).
    Off,
    /// PSCI SYSTEM_RESET.
    Reset,
    /// The hypervisor stopped it.
    Stopped(StopReason),
    /// The host stopped it (an access outside every device, a refused run).
    Killed,
}

/// A VM the host made.
pub struct Vm {
    pub name: &'static str,
    pub handle: u64,
    pub ram_pa: u64,
    pub ram_pages: u64,
    uart: Pl011Model,
    gic: crate::vgic::Vgic,
    line: [u8; 160],
    line_len: usize,
    /// The answer to the last exit, already encoded as the next VCPU_RUN's
    /// x3..x7 (`Completion::to_regs`, folded where the variant is known).
    completion: [u64; 5],
    /// The status the guest reported (SET_STATUS), if any.
    pub status: Option<u64>,
    pub exits: u64,
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
    /// wants (and its initrd), and vcpu 0 ready to enter it.
    pub fn create_booting(name: &'static str, boot: Boot, config: VmConfig) -> Result<Self, VmError> {
        if !(1..=MAX_VCPUS).contains(&config.vcpus) {
            return Err(VmError::Vcpus(config.vcpus));
        }
        let pages = config.ram.div_ceil(PAGE_SIZE);
        let ram = pages * PAGE_SIZE;
        let Layout { image, offset: load_offset, end: footprint, initrd } = boot.layout(ram)?;
        if image.is_empty() || ram < DTB_SLOT || footprint > ram - DTB_SLOT {
            return Err(VmError::BadImage { len: image.len(), ram });
        }
        let initrd_ipa = initrd.map(|(i, off)| (GUEST_RAM_IPA + off, GUEST_RAM_IPA + off + i.len() as u64));
        let machine =
            GuestMachine { ram_size: ram, bootargs: boot.bootargs(), vcpus: config.vcpus, initrd: initrd_ipa };
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
        let made = hyp_call(Call::VmDonate, "VM_DONATE", [handle, ram_pa, GUEST_RAM_IPA, pages, 0, 0, 0])
            .and_then(|_| hyp_call(Call::VcpuCreate, "VCPU_CREATE", [handle, entry, args[0], args[1], args[2], 0, 0]));
        if let Err(e) = made {
            let _ = hyp::call(Call::VmDestroy, [handle, 0, 0, 0, 0, 0, 0]);
            return Err(give_back(e));
        }
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
            uart: Pl011Model::new(),
            gic: crate::vgic::Vgic::new(),
            line: [0; 160],
            line_len: 0,
            completion: Completion::None.to_regs(),
            status: None,
            exits: 0,
            ending: None,
        })
    }

    fn emit(&mut self, b: u8) {
        if b == b'\n' || self.line_len == self.line.len() {
            let text = core::str::from_utf8(&self.line[..self.line_len]).unwrap_or("<non-UTF-8 output>");
            crate::hprintln!("[{}] {}", self.name, text.trim_end_matches('\r'));
            self.line_len = 0;
            if b == b'\n' {
                return;
            }
        }
        self.line[self.line_len] = b;
        self.line_len += 1;
    }

    /// Answers a guest `hvc`/`smc` (`guestcall::handle`); `None` once the
    /// VM has powered off or reset.
    fn hvc(&mut self, r: [u64; 4]) -> Option<[u64; 4]> {
        match guestcall::handle(r) {
            Outcome::Answer(a) => Some(a),
            Outcome::Status { status, answer } => {
                self.status = Some(status);
                Some(answer)
            }
            Outcome::Report { tag, value, answer } => {
                crate::hprintln!("[{}] report tag={} value={:#x}", self.name, tag, value);
                Some(answer)
            }
            Outcome::Off => {
                self.ending = Some(Ending::Off);
                None
            }
            Outcome::Reset => {
                self.ending = Some(Ending::Reset);
                None
            }
        }
    }

    /// Emulates an MMIO access; `None` if no device is there. Kept out of
    /// `step` so the device models do not weigh on its hypercall path.
    #[inline(never)]
    fn mmio(&mut self, m: MmioAccess) -> Option<Completion> {
        use spevisor_abi::guest::machine::{GICD_IPA, GICR_IPA};
        if (GICD_IPA..GICD_IPA + crate::vgic::GICD_SIZE).contains(&m.ipa)
            || (GICR_IPA..GICR_IPA + crate::vgic::GICR_SIZE).contains(&m.ipa)
        {
            return Some(self.gic_access(m));
        }
        if !(GUEST_UART_IPA..GUEST_UART_IPA + GUEST_UART_SIZE).contains(&m.ipa) {
            return None;
        }
        let off = m.ipa - GUEST_UART_IPA;
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
            Some(Completion::MmioWrite)
        } else {
            let v = self.uart.read(off, m.size).unwrap_or_else(|e| {
                warn!("{}: PL011 read at +{off:#x} reads as 0: {e:?}", self.name);
                0
            });
            Some(Completion::MmioRead(v))
        }
    }

    /// A distributor or redistributor access (`vgic.rs`). A size or
    /// alignment the register does not take reads as zero and ignores the
    /// write, with a warning: the guest goes on.
    fn gic_access(&mut self, m: MmioAccess) -> Completion {
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

    /// Runs the vcpu once (to its next exit) and handles the exit. Returns
    /// `false` once the VM has ended.
    pub fn step(&mut self) -> bool {
        if self.ending.is_some() {
            return false;
        }
        let c = self.completion;
        let r = hyp::call(Call::VcpuRun, [self.handle, 0, c[0], c[1], c[2], c[3], c[4]]);
        self.completion = Completion::None.to_regs();
        // The world switch drained the host's SPE buffer: it may be full.
        crate::profiler::poll();
        let exit = match r {
            Ok(r) => Exit::from_regs(r),
            Err(e) => return self.refused(e),
        };
        self.exits += 1;
        match exit {
            Some(Exit::Hvc { regs, .. }) => match self.hvc(regs) {
                Some(answer) => self.completion = Completion::Hvc(answer).to_regs(),
                None => return false,
            },
            Some(Exit::Mmio(m)) => match self.mmio(m) {
                Some(c) => self.completion = c.to_regs(),
                None => return self.no_device(m),
            },
            Some(Exit::Irq) | Some(Exit::Wfx) => {}
            Some(Exit::Stopped { reason, esr, far, elr }) => return self.stopped(reason, esr, far, elr),
            None => return self.undecodable(),
        }
        true
    }

    // The ways a run ends badly: reported here, out of `step`'s hot path.

    #[cold]
    fn refused(&mut self, e: HypError) -> bool {
        error!("{}: VCPU_RUN refused: {e}", self.name);
        self.ending = Some(Ending::Killed);
        false
    }

    #[cold]
    fn no_device(&mut self, m: MmioAccess) -> bool {
        error!(
            "{}: {} of {} bytes at IPA {:#x}: no RAM or device there; VM stopped",
            self.name,
            if m.write { "write" } else { "read" },
            m.size,
            m.ipa
        );
        self.ending = Some(Ending::Killed);
        false
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
        while self.step() {}
        self.ending.unwrap_or(Ending::Killed)
    }

    /// Runs until the VM ends or `max_exits` exits have been handled (then
    /// it is stopped: a guest that waits for an interrupt nothing delivers
    /// yet would otherwise run forever).
    pub fn run_for(&mut self, max_exits: u64) -> Ending {
        while self.step() {
            if self.exits >= max_exits {
                error!("{}: exit budget of {max_exits} spent; VM stopped", self.name);
                self.ending = Some(Ending::Killed);
                break;
            }
        }
        self.ending.unwrap_or(Ending::Killed)
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
        Ok(())
    }
}

fn with_pages<T>(f: impl FnOnce(&mut PagePool) -> T) -> T {
    let mut host = HOST.lock();
    let host = host.as_mut().expect("host state is set before any VM exists");
    f(&mut host.pages)
}

/// Free host pages (leak checks).
pub fn host_free_pages() -> usize {
    HOST.lock().as_ref().map_or(0, |h| h.pages.free_pages())
}

/// Runs two VMs alternately, switching at every exit, until both end;
/// returns the number of alternations.
pub fn run_alternately(a: &mut Vm, b: &mut Vm) -> u64 {
    let mut alternations = 0;
    loop {
        let ra = a.step();
        let rb = b.step();
        alternations += 1;
        if !ra && !rb {
            return alternations;
        }
    }
}
