//! The host's SPE self-profiler.
//!
//! The same code drives both backends ([`Unit`]): the CPU's SPE registers, or
//! the software model (machines without SPE, QEMU among them), whose samples
//! come from PMUv3 cycle-counter overflows. The buffer lives in host memory
//! mapped through TTBR1_EL1 at [`BUFFER_VA`], an upper-half address unlike its
//! PA and unlike anything EL2 maps, so a drain through the wrong translation
//! regime cannot land in the right place by accident.
//!
//! Flow: program the buffer (PMBPTR, PMBLIMITR with E, PMSCR_EL1.E1SPE/TS);
//! samples accumulate; on a buffer-management event (PMBSR_EL1.S) the records
//! in `[BUFFER_VA, PMBPTR)` are decoded and counted, PMBPTR is re-armed and
//! PMBSR cleared; a fault stops profiling. At the end: disable, drain, decode
//! the rest, print the report.

use crate::arch;
use crate::hprintln;
use crate::pmu;
use core::arch::asm;
use core::fmt::Write;
use log::{error, info, warn};
use spevisor_abi::Call;
use spevisor_pgtable::PAGE_SIZE;
use spevisor_spe::model::{par_to_pa, BufferWriter, ModelReg, OpKind, Sample, SpeModel, TranslationFault, Units};
use spevisor_spe::record::RecordAssembler;
use spevisor_spe::regs::{field_mask, PmbIdr, PmsIdr, PMBLIMITR_EL1, PMBSR_EL1, PMSCR_EL1, PMSIRR_EL1};
use spin::Mutex;

/// Where the host maps its SPE buffer (TTBR1_EL1, the kernel's upper half).
pub const BUFFER_VA: u64 = 0xffff_8000_0000_0000;
/// Offset of the upper half inside a 48-bit TTBR1 table.
const TTBR1_BASE: u64 = 0xffff_0000_0000_0000;
/// Operations between samples on real SPE (PMSIRR_EL1; the unit's minimum if
/// larger). The model samples on PMU overflows instead.
const SAMPLING_INTERVAL: u32 = 4096;
/// Default buffer size.
pub const DEFAULT_BUFFER: u64 = 64 * 1024;
/// Default sampling period in cycles. QEMU's cycle counter follows virtual
/// time (1 GHz), not instructions (unless -icount), and a sample costs a few
/// thousand instructions: much shorter periods would keep the CPU in the
/// handler.
pub const DEFAULT_PERIOD: u32 = 1_000_000;
/// Shortest period accepted on the command line.
pub const MIN_PERIOD: u32 = 100_000;
/// PMU overflow interrupt on QEMU virt when the DTB names none (PPI 7).
const DEFAULT_PMU_INTID: u32 = 23;
/// Drain the model's internal buffer from EL1 once this many records wait
/// (hardware writes continuously; the model writes at `psb csync`).
const EAGER_DRAIN_RECORDS: usize = 48;
/// Distinct PCs kept for the top list.
const TOP_SLOTS: usize = 128;
/// Guest memory ranges remembered for the "samples in guest memory" check.
const MAX_GUEST_RANGES: usize = 64;

/// How the profiler was asked to run (`spevisor.spe=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Auto,
    Hardware,
    Model,
    Off,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => Self::Auto,
            "hw" => Self::Hardware,
            "model" => Self::Model,
            "off" => Self::Off,
            _ => return None,
        })
    }
}

/// The SPE unit the profiler programs.
enum Unit {
    Hardware,
    Model(&'static mut SpeModel),
}

impl Unit {
    fn read(&mut self, r: ModelReg) -> u64 {
        match self {
            Unit::Model(m) => m.read(r),
            Unit::Hardware => hw::read(r),
        }
    }
    fn write(&mut self, r: ModelReg, v: u64) {
        match self {
            Unit::Model(m) => m.write(r, v),
            Unit::Hardware => hw::write(r, v),
        }
    }
    /// `psb csync` + `dsb nsh`: everything sampled so far is in memory.
    fn sync(&mut self) {
        match self {
            Unit::Model(m) => {
                m.drain(&mut El1Writer);
            }
            Unit::Hardware => hw::sync(),
        }
    }
    fn name(&self) -> &'static str {
        match self {
            Unit::Hardware => "hw",
            Unit::Model(_) => "model",
        }
    }
}

/// The hardware unit's registers (real boards).
mod hw {
    use spevisor_spe::model::ModelReg;
    use spevisor_spe::regs::hw;

    pub fn read(r: ModelReg) -> u64 {
        // SAFETY: only reached when the hypervisor reported SPE present and
        // owned by the host (PMSVer != 0, PMBIDR_EL1.P == 0).
        unsafe {
            match r {
                ModelReg::PmscrEl1 => hw::read_pmscr_el1(),
                ModelReg::PmbptrEl1 => hw::read_pmbptr_el1(),
                ModelReg::PmblimitrEl1 => hw::read_pmblimitr_el1(),
                ModelReg::PmbsrEl1 => hw::read_pmbsr_el1(),
                ModelReg::PmsirrEl1 => hw::read_pmsirr_el1(),
                ModelReg::PmsidrEl1 => hw::read_pmsidr_el1(),
                ModelReg::PmbidrEl1 => hw::read_pmbidr_el1(),
                ModelReg::PmsfcrEl1 => hw::read_pmsfcr_el1(),
                _ => 0,
            }
        }
    }

    pub fn write(r: ModelReg, v: u64) {
        // SAFETY: as in `read`.
        unsafe {
            match r {
                ModelReg::PmscrEl1 => hw::write_pmscr_el1(v),
                ModelReg::PmbptrEl1 => hw::write_pmbptr_el1(v),
                ModelReg::PmblimitrEl1 => hw::write_pmblimitr_el1(v),
                ModelReg::PmbsrEl1 => hw::write_pmbsr_el1(v),
                ModelReg::PmsirrEl1 => hw::write_pmsirr_el1(v),
                ModelReg::PmsfcrEl1 => hw::write_pmsfcr_el1(v),
                _ => {}
            }
        }
        hw::isb();
    }

    pub fn sync() {
        hw::psb_csync();
        hw::dsb_nsh();
    }
}

/// Drains model records the way an EL1-owned SPE unit would: `at s1e1w` on
/// the buffer VA, then a store to the PA through the host's identity map.
struct El1Writer;

impl BufferWriter for El1Writer {
    fn translate(&mut self, va: u64) -> Result<u64, TranslationFault> {
        let par: u64;
        // SAFETY: `at` only writes PAR_EL1 (scratch for the host); the isb
        // makes the result visible to the mrs.
        unsafe {
            asm!("at s1e1w, {va}", "isb", "mrs {par}, par_el1", va = in(reg) va, par = out(reg) par, options(nostack))
        };
        par_to_pa(par, va)
    }
    fn write(&mut self, pa: u64, bytes: &[u8]) {
        // SAFETY: the model writes only where the host placed its buffer (it
        // checks the PA first): host memory, identity mapped RW.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), pa as *mut u8, bytes.len()) };
    }
}

/// Counters of the report.
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    pub records: u64,
    pub bytes: u64,
    pub buffer_full_irqs: u64,
    pub faults: u64,
    pub decode_errors: u64,
    pub by_el: [u64; 4],
    pub guest_pcs: u64,
    pub samples: u64,
}

pub struct Profiler {
    unit: Unit,
    /// The second buffer: trace through the TRBE model (model backend only).
    trace: Option<crate::trace::HostTrace>,
    buf_pa: u64,
    buf_size: u64,
    period: u32,
    pmu_intid: u32,
    spe_intid: Option<u32>,
    stopped: bool,
    dump: bool,
    report: Report,
    top: [(u64, u64); TOP_SLOTS],
    top_other: u64,
    guest_ranges: [(u64, u64); MAX_GUEST_RANGES],
    n_guest_ranges: usize,
}

static PROFILER: Mutex<Option<Profiler>> = Mutex::new(None);

/// Runs `f` on the profiler with IRQs masked (the PMU interrupt uses it too).
fn with<T>(f: impl FnOnce(&mut Profiler) -> T) -> Option<T> {
    let daif = arch::mask_irqs();
    let r = PROFILER.lock().as_mut().map(f);
    arch::restore_irqs(daif);
    r
}

/// What `start` needs from the rest of the host.
pub struct Setup<'a> {
    pub mode: Mode,
    pub buffer: u64,
    pub period: u32,
    pub dump: bool,
    pub platform: &'a spevisor_dtb::Platform<'a>,
    pub mem: &'a mut dyn HostMem,
}

/// The host memory services the profiler needs.
pub trait HostMem {
    /// Identity-maps device registers.
    fn map_device(&mut self, pa: u64, size: u64) -> bool;
    /// Maps `pa` at upper-half `va` (TTBR1_EL1), read/write.
    fn map_high(&mut self, va: u64, pa: u64, size: u64) -> bool;
    /// `pages` zeroed contiguous pages.
    fn alloc(&mut self, pages: usize) -> Option<u64>;
}

/// Starts profiling; returns the backend's name or why not. IRQs stay
/// masked until the profiler is in place to take its interrupts (its PMU
/// overflow can fire as soon as the counters start).
pub fn start(s: Setup) -> Result<&'static str, &'static str> {
    let daif = arch::mask_irqs();
    let r = start_masked(s);
    arch::restore_irqs(daif);
    r
}

fn start_masked(s: Setup) -> Result<&'static str, &'static str> {
    let spe = crate::hyp::info(spevisor_abi::InfoItem::Spe).unwrap_or(0);
    let hw_ok = spe & spevisor_abi::spe_state::HOST_OWNED != 0;
    let use_hw = match s.mode {
        Mode::Off => return Err("off"),
        Mode::Hardware if !hw_ok => return Err("hw requested but SPE is absent or not owned"),
        Mode::Hardware => true,
        Mode::Model => false,
        Mode::Auto => hw_ok,
    };
    if !crate::irq::ready() {
        return Err("the profiler needs the host's GIC");
    }

    let buf_size = s.buffer.max(2 * PAGE_SIZE).next_multiple_of(PAGE_SIZE);
    let buf_pa = s.mem.alloc((buf_size / PAGE_SIZE) as usize).ok_or("no memory for the buffer")?;
    if !s.mem.map_high(BUFFER_VA - TTBR1_BASE, buf_pa, buf_size) {
        return Err("cannot map the buffer");
    }
    arch::publish_new_mappings();
    let (unit, trace) = if use_hw {
        (Unit::Hardware, None)
    } else {
        // The SPE model and the TRBE model beside it, attached together.
        let bytes = core::mem::size_of::<Units>() as u64;
        let pa = s.mem.alloc(bytes.div_ceil(PAGE_SIZE) as usize).ok_or("no memory for the model")?;
        let units = pa as *mut Units;
        // SAFETY: fresh, zeroed, page-aligned host memory big enough for
        // Units; it lives for the rest of the run and only this module (and
        // EL2 during world switches, when this CPU is in EL2) touches it.
        let units: &'static mut Units = unsafe {
            units.write(Units::new());
            &mut *units
        };
        let trace_pa = s.mem.alloc((crate::trace::TRACE_BUFFER_SIZE / PAGE_SIZE) as usize);
        let trace_pa = trace_pa.ok_or("no memory for the trace buffer")?;
        if !s.mem.map_high(crate::trace::TRACE_BUFFER_VA - TTBR1_BASE, trace_pa, crate::trace::TRACE_BUFFER_SIZE) {
            return Err("cannot map the trace buffer");
        }
        arch::publish_new_mappings();
        // The buffers first: EL2 latches them at the attach, and writes
        // records nowhere else.
        units.spe.set_intended_buffer(BUFFER_VA, buf_pa, buf_size);
        units.trbe.set_intended_buffer(crate::trace::TRACE_BUFFER_VA, trace_pa, crate::trace::TRACE_BUFFER_SIZE);
        crate::hyp::call(Call::SpeModelAttach, [pa, bytes, 0, 0, 0, 0, 0]).map_err(|_| "SPE_MODEL_ATTACH refused")?;
        let Units { spe: model, trbe } = units;
        (Unit::Model(model), Some(crate::trace::HostTrace::start(trbe, trace_pa)))
    };
    let pmu_intid = s.platform.pmu.map_or(DEFAULT_PMU_INTID, |p| p.intid.0);
    let spe_intid = s.platform.spe.map(|p| p.intid.0);
    let mut p = Profiler {
        unit,
        trace,
        buf_pa,
        buf_size,
        period: s.period,
        pmu_intid,
        spe_intid,
        stopped: false,
        dump: s.dump,
        report: Report::default(),
        top: [(0, 0); TOP_SLOTS],
        top_other: 0,
        guest_ranges: [(0, 0); MAX_GUEST_RANGES],
        n_guest_ranges: 0,
    };
    p.id_report();
    p.arm();
    let name = p.unit.name();
    match (&p.unit, spe_intid) {
        (Unit::Hardware, Some(i)) => crate::irq::enable_ppi(i),
        (Unit::Hardware, None) => warn!("no SPE interrupt in the DTB: the buffer is serviced only when polled"),
        (Unit::Model(_), _) => {
            crate::irq::enable_ppi(pmu_intid);
            pmu::start(s.period);
        }
    }
    *PROFILER.lock() = Some(p);
    RUNNING.fetch_or(AFTER_RUN_PROFILER, core::sync::atomic::Ordering::Relaxed);
    info!(
        "SPE profiler: backend={name}, buffer {} KiB at VA {:#x} (PA {:#x}), period {} cycles",
        buf_size / 1024,
        BUFFER_VA,
        buf_pa,
        s.period
    );
    Ok(name)
}

impl Profiler {
    /// Prints every SPE ID field (the board bring-up report).
    fn id_report(&mut self) {
        let pmsidr = PmsIdr::from_bits(self.unit.read(ModelReg::PmsidrEl1));
        let pmbidr = PmbIdr::from_bits(self.unit.read(ModelReg::PmbidrEl1));
        info!(
            "SPE ({}): PMBIDR Align={} (records {} bytes) P={} F={}",
            self.unit.name(),
            pmbidr.align,
            1u64 << pmbidr.align,
            pmbidr.programming_prohibited as u8,
            pmbidr.flag_updates as u8
        );
        info!(
            "SPE ({}): PMSIDR FE={} FT={} FL={} ArchInst={} LDS={} ERnd={} FnE={} Interval={} (min {:?}) MaxSize={} CountSize={} Format={} PBT={}",
            self.unit.name(),
            pmsidr.fe as u8,
            pmsidr.ft as u8,
            pmsidr.fl as u8,
            pmsidr.arch_inst as u8,
            pmsidr.lds as u8,
            pmsidr.ernd as u8,
            pmsidr.fne as u8,
            pmsidr.interval,
            pmsidr.min_interval(),
            pmsidr.max_size,
            pmsidr.count_size,
            pmsidr.format,
            pmsidr.pbt as u8
        );
    }

    /// Programs an empty buffer and enables sampling at EL1: the sampling
    /// interval (at least the unit's minimum, with random jitter), no
    /// filters, and a limit that leaves one maximum-size record of headroom
    /// below the end of the mapping.
    fn arm(&mut self) {
        let pmsidr = PmsIdr::from_bits(self.unit.read(ModelReg::PmsidrEl1));
        let interval = u64::from(pmsidr.min_interval().unwrap_or(SAMPLING_INTERVAL).max(SAMPLING_INTERVAL));
        // LIMIT is page granular: the headroom is whole pages, and only taken
        // when the buffer keeps at least three pages for records.
        let headroom = u64::from(pmsidr.max_record_bytes()).next_multiple_of(PAGE_SIZE);
        let headroom = if self.buf_size >= headroom + 3 * PAGE_SIZE { headroom } else { 0 };
        self.unit.write(ModelReg::PmsirrEl1, (interval & !0xff) | field_mask(PMSIRR_EL1::RND));
        self.unit.write(ModelReg::PmsfcrEl1, 0);
        let limit = (BUFFER_VA + self.buf_size - headroom) | field_mask(PMBLIMITR_EL1::E);
        self.unit.write(ModelReg::PmbptrEl1, BUFFER_VA);
        self.unit.write(ModelReg::PmbsrEl1, 0);
        self.unit.write(ModelReg::PmblimitrEl1, limit);
        self.unit.write(ModelReg::PmscrEl1, field_mask(PMSCR_EL1::E1SPE) | field_mask(PMSCR_EL1::TS));
    }

    /// Decodes `[BUFFER_VA, PMBPTR)` into the report and re-arms the buffer.
    fn consume(&mut self) {
        let ptr = self.unit.read(ModelReg::PmbptrEl1);
        let used = ptr.saturating_sub(BUFFER_VA).min(self.buf_size) as usize;
        // SAFETY: the buffer is mapped at BUFFER_VA for `buf_size` bytes and
        // the unit is not writing (stopped by the event, or disabled).
        let data = unsafe { core::slice::from_raw_parts(BUFFER_VA as *const u8, used) };
        if self.dump && used != 0 {
            self.dump = false;
            dump_frame(data);
        }
        for r in RecordAssembler::new(data) {
            match r {
                Ok(rec) => {
                    self.report.records += 1;
                    self.report.bytes += rec.len as u64;
                    if let Some(pc) = rec.record.pc {
                        self.report.by_el[pc.el as usize & 3] += 1;
                        if self.in_guest_memory(pc.addr) {
                            self.report.guest_pcs += 1;
                        }
                        self.count_pc(pc.addr);
                    }
                }
                Err(_) => self.report.decode_errors += 1,
            }
        }
        self.unit.write(ModelReg::PmbptrEl1, BUFFER_VA);
    }

    fn count_pc(&mut self, pc: u64) {
        if let Some(slot) = self.top.iter_mut().find(|(p, n)| *p == pc && *n != 0) {
            slot.1 += 1;
        } else if let Some(slot) = self.top.iter_mut().find(|(_, n)| *n == 0) {
            *slot = (pc, 1);
        } else {
            self.top_other += 1;
        }
    }

    fn in_guest_memory(&self, pc: u64) -> bool {
        self.guest_ranges[..self.n_guest_ranges].iter().any(|(s, e)| (*s..*e).contains(&pc))
    }

    /// Services a buffer-management event of either buffer, if one is pending.
    fn service(&mut self) {
        if let Some(t) = &mut self.trace {
            t.service();
        }
        let pmbsr = self.unit.read(ModelReg::PmbsrEl1);
        if !PMBSR_EL1::S.is_set(pmbsr) || self.stopped {
            return;
        }
        const EC_BUFFER_MANAGEMENT: u64 = 0;
        if PMBSR_EL1::EC.read(pmbsr) == EC_BUFFER_MANAGEMENT {
            self.report.buffer_full_irqs += 1;
            self.consume();
            self.unit.write(ModelReg::PmbsrEl1, 0);
        } else {
            // A fault: report and stop, as the issue asks; data so far is kept.
            self.report.faults += 1;
            self.stopped = true;
            self.unit.write(ModelReg::PmscrEl1, 0);
            self.consume();
        }
    }

    /// One PMU overflow: the sampled operation is the interrupted host code.
    fn sample(&mut self, pc: u64, spsr: u64) {
        let Unit::Model(m) = &mut self.unit else { return };
        self.report.samples += 1;
        let el = ((spsr >> 2) & 3) as u8;
        let timestamp: u64;
        // SAFETY: reading the virtual counter has no side effects.
        unsafe { asm!("mrs {}, cntvct_el0", out(reg) timestamp, options(nomem, nostack)) };
        let s = Sample {
            pc,
            el,
            ns: true,
            timestamp,
            op: OpKind::Other,
            events: spevisor_spe::packet::event::RETIRED as u32,
            total_latency: 1,
            issue_latency: 1,
            context: None,
        };
        m.sample(&s);
        if m.pending_records() >= EAGER_DRAIN_RECORDS {
            m.drain(&mut El1Writer);
        }
        if let Some(t) = &mut self.trace {
            t.emit(el, pc, &mut El1Writer);
        }
    }
}

/// Prints a buffer in the framed, checksummed console form
/// (`cargo xtask spe-report dump <console log>` reads it).
fn dump_frame(data: &[u8]) {
    struct Console;
    impl Write for Console {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            crate::console::print(format_args!("{s}"));
            Ok(())
        }
    }
    let records = RecordAssembler::new(data).filter(|r| r.is_ok()).count();
    hprintln!("spe-dump: bytes={} records={}", data.len(), records);
    let _ = spevisor_spe::frame::write_frame(&mut Console, data);
}

/// The profiler's interrupts (`irq::handle` passes them on): PMU
/// overflows (model sampling) and the SPE buffer-management interrupt.
/// `pc`/`spsr`: the interrupted context. `false` if `intid` is not one.
pub fn irq(intid: u32, pc: u64, spsr: u64) -> bool {
    let mut guard = PROFILER.lock();
    let Some(p) = guard.as_mut() else { return false };
    if intid == p.pmu_intid {
        if pmu::overflow(p.period) {
            // Service first: a stopped buffer (S set) samples nothing.
            p.service();
            p.sample(pc, spsr);
            p.service();
        }
        true
    } else if Some(intid) == p.spe_intid {
        p.service();
        true
    } else {
        false
    }
}

/// Work after every VCPU_RUN, one bit each: the profiler runs
/// ([`AFTER_RUN_PROFILER`]), the hostile host's SPE scenario rewrites the
/// model's area ([`AFTER_RUN_SPE_ABUSE`]). One load when there is none:
/// the run loop's cost (`hvc_host`) stays what it was.
static RUNNING: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);
const AFTER_RUN_PROFILER: u8 = 1 << 0;
const AFTER_RUN_SPE_ABUSE: u8 = 1 << 1;

/// Turns the hostile SPE scenario's work after every VCPU_RUN on or off.
pub fn after_run_spe_abuse(on: bool) {
    use core::sync::atomic::Ordering::Relaxed;
    if on {
        RUNNING.fetch_or(AFTER_RUN_SPE_ABUSE, Relaxed);
    } else {
        RUNNING.fetch_and(!AFTER_RUN_SPE_ABUSE, Relaxed);
    }
}

/// Called after every VCPU_RUN: a drain at EL2 may have filled the buffer.
#[inline]
pub fn poll() {
    let work = RUNNING.load(core::sync::atomic::Ordering::Relaxed);
    if work != 0 {
        after_run(work);
    }
}

#[cold]
fn after_run(work: u8) {
    if work & AFTER_RUN_PROFILER != 0 {
        with(|p| p.service());
    }
    #[cfg(target_arch = "aarch64")]
    if work & AFTER_RUN_SPE_ABUSE != 0 {
        crate::hostile_spe::between_runs();
    }
}

/// Remembers a VM's memory (host PAs) for the "samples in guest memory" check.
pub fn note_guest_memory(start: u64, end: u64) {
    with(|p| {
        if p.n_guest_ranges < MAX_GUEST_RANGES {
            p.guest_ranges[p.n_guest_ranges] = (start, end);
            p.n_guest_ranges += 1;
        }
    });
}

/// Final numbers for the summary line: (backend, records, misdirected, lost).
pub struct Summary {
    pub backend: &'static str,
    pub records: u64,
    pub misdirected: u64,
    pub lost: u64,
    /// The trace buffer's (TRBE model) misdirected chunks and lost bytes.
    pub trbe_misdirected: u64,
    pub trbe_lost: u64,
}

/// Stops profiling, decodes what is left and prints the report.
pub fn finish(image_start: u64) -> Option<Summary> {
    let daif = arch::mask_irqs();
    let mut guard = PROFILER.lock();
    let p = guard.as_mut()?;
    pmu::stop();
    p.unit.write(ModelReg::PmscrEl1, 0);
    // Drain everything: a drain can fill the buffer and leave records in the
    // unit until the buffer is serviced, so drain and service until quiet.
    const MAX_ROUNDS: usize = 64;
    for _ in 0..MAX_ROUNDS {
        p.unit.sync();
        let full = PMBSR_EL1::S.is_set(p.unit.read(ModelReg::PmbsrEl1));
        if !full || p.stopped {
            break;
        }
        p.service();
    }
    if !p.stopped {
        p.consume();
    }
    let limit = p.unit.read(ModelReg::PmblimitrEl1);
    p.unit.write(ModelReg::PmblimitrEl1, limit & !field_mask(PMBLIMITR_EL1::E));
    let r = p.report;
    let (produced, misdirected, lost, regime_checks, misdirected_regimes) = match &p.unit {
        Unit::Model(m) => {
            let st = m.stats();
            (st.records_produced, st.misdirected, st.lost, st.regime_checks, st.misdirected_regimes)
        }
        Unit::Hardware => (r.records, 0, 0, 0, 0),
    };
    let backend = p.unit.name();
    hprintln!(
        "spe: backend={} samples={} records={} produced={} bytes={} buffer_full_irqs={} faults={} misdirected={} lost={} decode_errors={} regime_checks={} misdirected_regimes={}",
        backend,
        r.samples,
        r.records,
        produced,
        r.bytes,
        r.buffer_full_irqs,
        r.faults,
        misdirected,
        lost,
        r.decode_errors,
        regime_checks,
        misdirected_regimes
    );
    hprintln!(
        "spe: by_el el0={} el1={} el2={} guest_pc={} buffer_pa={:#x}",
        r.by_el[0],
        r.by_el[1],
        r.by_el[2],
        r.guest_pcs,
        p.buf_pa
    );
    let mut top = p.top;
    top.sort_unstable_by_key(|e| core::cmp::Reverse(e.1));
    for (pc, n) in top.iter().take(8).filter(|(_, n)| *n != 0) {
        hprintln!("spe-top: pc={:#x} image_offset={:#x} samples={}", pc, pc.wrapping_sub(image_start), n);
    }
    if p.top_other != 0 {
        hprintln!("spe-top: other samples={}", p.top_other);
    }
    if r.faults != 0 {
        error!("SPE buffer fault: profiling stopped early");
    }
    let (trbe_misdirected, trbe_lost) = p.trace.as_mut().map_or((0, 0), |t| t.finish(&mut El1Writer));
    drop(guard);
    arch::restore_irqs(daif);
    Some(Summary { backend, records: r.records, misdirected, lost, trbe_misdirected, trbe_lost })
}
