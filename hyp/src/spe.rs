//! The host's SPE buffer across the world switch: `save_host_buffers` and
//! `restore_host_buffers`, whatever the backend.
//!
//! - [`Backend::Hardware`]: the CPU's SPE registers.
//! - [`Backend::Model`]: the software SPE unit the host attached
//!   (`SPE_MODEL_ATTACH`) on a machine without SPE. Its drain translates the
//!   buffer pointer through whichever regime owns the buffer *at that
//!   instant* ([`El2Writer`]), exactly like the hardware would, so a world
//!   switch in the wrong order shows up as misdirected writes.

use crate::mm::{Layout, Range};
use crate::vm::Vms;
use spevisor_abi::Status;
use spevisor_pgtable::PAGE_SIZE;
#[cfg(target_arch = "aarch64")]
use spevisor_spe::model::Units;
use spevisor_spe::model::{BufferWriter, IntendedBuffer, ModelReg, SpeModel};
use spevisor_spe::regs::{field_mask, PMBLIMITR_EL1};
use spevisor_spe::regs::{SavedSpe, SpeId};
#[cfg(target_arch = "aarch64")]
use spevisor_spe::trbe::{TrbeModel, TrbeReg, TRBLIMITR_E};

/// Which SPE unit the host profiles with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// No SPE (or not owned by the host): nothing to drain.
    None,
    /// The CPU's SPE registers.
    Hardware,
    /// The software model at this (identity-mapped) address in host memory;
    /// EL2 writes its records only inside the buffers it latched at
    /// `SPE_MODEL_ATTACH` ([`ATTACHED`]), whatever the shared area says later.
    Model { addr: usize },
}

/// What the world switch knows about the host's SPE.
#[derive(Clone, Copy, Debug)]
pub struct HostSpe {
    pub backend: Backend,
    pub id: SpeId,
    /// With `Backend::Hardware`: the CPU's SPE buffer is the host's (or the
    /// stand-in's); the TRBE and BRBE units may be there without it.
    pub spe_hw: bool,
    pub units: DebugUnits,
}

/// What EL2 keeps of the attached model (`SPE_MODEL_ATTACH`), in its own
/// memory. Out of `HostSpe`, `Backend` and `Parked`, which the world
/// switch moves on its hot path (`hvc_host`): the model path reads it here.
pub static ATTACHED: spin::Mutex<Attached> =
    spin::Mutex::new(Attached { bufs: Latched { spe: None, trbe: None }, before: Backend::None, repairs: 0 });

/// See [`ATTACHED`].
#[derive(Clone, Copy, Debug)]
pub struct Attached {
    /// The model's buffers, latched at the attach.
    pub bufs: Latched,
    /// The backend before the attach, for the detach.
    pub before: Backend,
    /// Times EL2 found the model's shared area in a state it had to repair
    /// (`HYP_INFO` `SpeModelRepairs`): a pending length out of range or not
    /// whole records, an intended buffer other than the latched one.
    pub repairs: u64,
}

/// The buffers the host declared for the models (their intended buffers
/// when it attached them), checked like the model area and kept by EL2:
/// the only memory EL2 writes records into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latched {
    pub spe: Option<IntendedBuffer>,
    pub trbe: Option<IntendedBuffer>,
}

impl Latched {
    /// Whether `[pa, pa + size)` overlaps either buffer.
    pub fn overlaps(&self, pa: u64, size: u64) -> bool {
        [self.spe, self.trbe].iter().flatten().any(|b| pa_range(b).overlaps(pa, size))
    }
}

/// The physical range of an intended buffer (empty if it wraps).
fn pa_range(b: &IntendedBuffer) -> Range {
    Range::new(b.pa_base, b.pa_base.checked_add(b.size).unwrap_or(b.pa_base))
}

/// Checks one intended buffer the host attaches: page aligned, a whole
/// number of pages, in host memory, not EL2's, not given to any VM, not
/// shared, and clear of the model area itself.
pub fn check_model_buffer(layout: &Layout, vms: &Vms, model: Range, b: IntendedBuffer) -> Result<Range, Status> {
    let (pa, size) = (b.pa_base, b.size);
    if size == 0 || pa.checked_add(size).is_none() {
        return Err(Status::InvalidParameter);
    }
    if !pa.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
        return Err(Status::Unaligned);
    }
    check_host_pages(layout, vms, pa, size)?;
    if model.overlaps(pa, size) {
        return Err(Status::InUse);
    }
    Ok(Range::new(pa, pa + size))
}

/// The host's own pages, neither given to a VM nor shared with one: what
/// the SPE models and their buffers must be (each refusal its status).
fn check_host_pages(layout: &Layout, vms: &Vms, pa: u64, size: u64) -> Result<(), Status> {
    let hyp_owned = Range::new(layout.image.start, layout.pool.end);
    if hyp_owned.overlaps(pa, size) {
        return Err(Status::HypOwned);
    }
    if !layout.host.contains_range(pa, size) {
        return Err(Status::OutOfBounds);
    }
    if vms.host_range_donated(pa, size) {
        return Err(Status::AlreadyDonated);
    }
    if vms.host_range_shared(pa, size) {
        return Err(Status::InUse);
    }
    Ok(())
}

/// The trace buffer and branch record units this CPU has for the host
/// (`hostbuf_hw::probe`; never under QEMU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DebugUnits {
    /// FEAT_TRBE with FEAT_TRF, programmable by the host (TRBIDR_EL1.P == 0).
    pub trbe: bool,
    /// FEAT_BRBE.
    pub brbe: bool,
}

/// Checks an `SPE_MODEL_ATTACH`: the models must be exactly one
/// `spevisor_spe::model::Units` (the SPE model and the TRBE model beside
/// it), page aligned, in host memory, and not given to any VM.
pub fn check_model_attach(layout: &Layout, vms: &Vms, pa: u64, size: u64) -> Result<Range, Status> {
    let want = core::mem::size_of::<spevisor_spe::model::Units>() as u64;
    if size != want {
        return Err(Status::InvalidParameter);
    }
    if !pa.is_multiple_of(PAGE_SIZE) {
        return Err(Status::Unaligned);
    }
    check_host_pages(layout, vms, pa, size)?;
    Ok(Range::new(pa, pa + size))
}

// The attached model (`Backend::Model`'s `addr`): the address
// `SPE_MODEL_ATTACH` validated, a whole `Units` in host memory, identity
// mapped at EL2. The host may rewrite any of it between (and, on another
// CPU, during) EL2's uses: EL2 reads it only once per use, into its own
// working copy (`SpeModel::load`, `TrbeModel::load`: every field and the
// pending bytes in use), and writes the result back (`store`).

/// EL2's working copies of the models: each use loads the shared area
/// into one, works on it and stores it back. Static, not on the stack, so
/// a world switch moves only the fields and the pending bytes in use, not
/// the models' whole pending buffers.
#[cfg(target_arch = "aarch64")]
static SPE_WORK: spin::Mutex<SpeModel> = spin::Mutex::new(SpeModel::new());
#[cfg(target_arch = "aarch64")]
static TRBE_WORK: spin::Mutex<spevisor_spe::trbe::TrbeModel> = spin::Mutex::new(spevisor_spe::trbe::TrbeModel::new());

/// What `save_host_buffers` parked of the host's TRBE (model): the trace
/// filter and the unit's limit register as the host had them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedTrbe {
    pub trfcr_el1: u64,
    pub trblimitr_el1: u64,
}

/// What `save_host_buffers` parked, for `restore_host_buffers` to put back:
/// the restore acts on what was saved, without asking the backend again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parked {
    /// The host had no enabled buffer: nothing to restore.
    Nothing,
    /// The CPU's SPE buffer was drained and disabled (a CPU without TRBE
    /// or BRBE for the host).
    Hardware(SavedSpe),
    /// The CPU's buffers were drained and disabled, branch recording
    /// paused, where the host had them on (a CPU with TRBE or BRBE).
    #[cfg(target_arch = "aarch64")]
    HardwareUnits { spe: Option<SavedSpe>, brbe: Option<u64>, trbe: Option<crate::hostbuf_hw::SavedTrbeHw> },
    /// The models' buffers were drained and disabled where enabled
    /// (`bufs`: where EL2 may store their data, see [`El2Writer`]).
    Model { addr: usize, spe: Option<SavedSpe>, trbe: Option<SavedTrbe> },
}

/// Drains and disables the host's profiling buffer if the host owns an
/// enabled one (PMSVer != 0, PMBIDR_EL1.P == 0, PMBLIMITR_EL1.E == 1):
/// PMSCR_EL1 = 0, isb, psb csync, dsb nsh, PMBLIMITR_EL1.E = 0, isb.
/// Returns what `restore_host_buffers` must put back. Records
/// `Step::SaveHostBuffers` itself (`steps.rs`), whatever the backend.
#[inline(always)]
pub fn save_host_buffers<const TRACED: bool>(h: &mut HostSpe, trace: &mut crate::switch::Trace) -> Parked {
    let parked = drain_host_buffers(h);
    crate::steps::record::<TRACED>(trace, spevisor_abi::Step::SaveHostBuffers);
    parked
}

#[inline(always)]
fn drain_host_buffers(h: &mut HostSpe) -> Parked {
    match h.backend {
        Backend::None => Parked::Nothing,
        #[cfg(target_arch = "aarch64")]
        Backend::Hardware => {
            use crate::hostbuf_hw;
            use spevisor_spe::regs::hw;
            // The common case, SPE alone (no TRBE or BRBE; `Backend::Hardware`
            // then means `spe_hw`), kept as short as it was before the
            // other units joined: `spe_switch_hw` counts it.
            if !(h.units.trbe | h.units.brbe) {
                // SAFETY: as below (`spe_hw` holds).
                let limit = unsafe { hw::read_pmblimitr_el1() };
                if !PMBLIMITR_EL1::E.is_set(limit) {
                    return Parked::Nothing;
                }
                // SAFETY: as below.
                return Parked::Hardware(unsafe { hw::disable_and_drain(limit) });
            }
            // SPE, then BRBE, then trace: Linux's nVHE order.
            let spe = if h.spe_hw {
                // SAFETY: `spe_hw` is set only when PMSVer != 0 (or, in the
                // `spe-hw-standin` build, on a CPU without SPE, where the
                // accessors name two spare EL2 registers), so the registers
                // exist; reading PMBLIMITR_EL1 has no side effects.
                let limit = unsafe { hw::read_pmblimitr_el1() };
                // Boot sets `spe_hw` only where the host may program the
                // buffer (PMBIDR_EL1.P == 0, fixed by EL3): whether it is
                // enabled is the one question left per switch.
                // (No closure here: a debug build would not inline it, and the
                // sequence must sit in the switch function, where the
                // machine-code check reads it.)
                if PMBLIMITR_EL1::E.is_set(limit) {
                    // SAFETY: the host owns an enabled buffer; the caller
                    // decides which regime is live (the point of the ordering).
                    Some(unsafe { hw::disable_and_drain(limit) })
                } else {
                    None
                }
            } else {
                None
            };
            // SAFETY: `units.brbe` only with FEAT_BRBE (`hostbuf_hw::probe`).
            let brbe = if h.units.brbe { unsafe { hostbuf_hw::brbe_pause() } } else { None };
            // SAFETY: `units.trbe` only with FEAT_TRBE and FEAT_TRF, the
            // buffer programmable by the host; the host's regime is live.
            #[cfg(not(feature = "switch-order-broken-trbe-late"))]
            let trbe = if h.units.trbe { unsafe { hostbuf_hw::trbe_disable_and_drain() } } else { None };
            // Broken on purpose (ordering-check tests only): `save_host_trace_late`.
            #[cfg(feature = "switch-order-broken-trbe-late")]
            let trbe = None;
            if spe.is_none() && brbe.is_none() && trbe.is_none() {
                return Parked::Nothing;
            }
            Parked::HardwareUnits { spe, brbe, trbe }
        }
        #[cfg(target_arch = "aarch64")]
        Backend::Model { addr } => park_models(addr),
        #[cfg(not(target_arch = "aarch64"))]
        Backend::Hardware | Backend::Model { .. } => Parked::Nothing,
    }
}

/// Re-enables what `save_host_buffers` disabled. Call only once every piece
/// of host state (TTBRs, HCR_EL2, MDCR_EL2) is back. Records
/// `Step::RestoreHostBuffers` itself (`steps.rs`).
#[inline(always)]
pub fn restore_host_buffers<const TRACED: bool>(parked: Parked, trace: &mut crate::switch::Trace) {
    reenable_host_buffers(parked);
    crate::steps::record::<TRACED>(trace, spevisor_abi::Step::RestoreHostBuffers);
}

#[inline(always)]
fn reenable_host_buffers(parked: Parked) {
    match parked {
        Parked::Nothing => {}
        #[cfg(target_arch = "aarch64")]
        // SAFETY: `saved` came from `disable_and_drain` on this CPU and the
        // host's regime (TTBRs, HCR_EL2, MDCR_EL2) is live again.
        Parked::Hardware(saved) => unsafe { spevisor_spe::regs::hw::restore(saved) },
        #[cfg(target_arch = "aarch64")]
        Parked::HardwareUnits { spe, brbe, trbe } => {
            // SAFETY (all three): the values came from this CPU's drain and
            // pause above, whose units therefore exist, and the host's regime
            // (TTBRs, HCR_EL2, MDCR_EL2) is live again. SPE, BRBE, trace:
            // Linux's order.
            if let Some(saved) = spe {
                unsafe { spevisor_spe::regs::hw::restore(saved) }
            }
            if let Some(brbcr) = brbe {
                unsafe { crate::hostbuf_hw::brbe_resume(brbcr) }
            }
            if let Some(saved) = trbe {
                unsafe { crate::hostbuf_hw::trbe_restore(saved) }
            }
        }
        #[cfg(target_arch = "aarch64")]
        Parked::Model { addr, spe, trbe } => unpark_models(addr, spe, trbe),
        #[cfg(not(target_arch = "aarch64"))]
        Parked::Hardware(_) | Parked::Model { .. } => {}
    }
}

/// `save_host_buffers` for the models at `addr`: SPE first, then trace
/// (the order of Linux's nVHE `__debug_save_host_buffers_nvhe`).
#[cfg(target_arch = "aarch64")]
#[inline(never)]
fn park_models(addr: usize) -> Parked {
    let mut attached = ATTACHED.lock();
    let (bufs, repairs) = (attached.bufs, &mut attached.repairs);
    let u = addr as *mut Units;
    // SAFETY: an attached model (`Backend::Model`); its fields are read
    // once into a snapshot.
    let spe = unsafe { park_model_spe(&raw mut (*u).spe, bufs.spe, repairs) };
    // Broken on purpose (ordering-check tests only): the trace buffer is
    // drained later, by `save_host_trace_late`.
    #[cfg(feature = "switch-order-broken-trbe-late")]
    let trbe = None;
    #[cfg(not(feature = "switch-order-broken-trbe-late"))]
    // SAFETY: as above.
    let trbe = unsafe { park_model_trbe(&raw mut (*u).trbe, bufs.trbe, repairs) };
    if spe.is_none() && trbe.is_none() {
        return Parked::Nothing;
    }
    Parked::Model { addr, spe, trbe }
}

/// `restore_host_buffers` for the models at `addr`.
#[cfg(target_arch = "aarch64")]
#[inline(never)]
fn unpark_models(addr: usize, spe: Option<SavedSpe>, trbe: Option<SavedTrbe>) {
    let bufs = ATTACHED.lock().bufs;
    let u = addr as *mut Units;
    // SAFETY (both): the model `save_host_buffers` found attached
    // (`Backend::Model`), used through a snapshot.
    if let Some(saved) = spe {
        unsafe { unpark_model_spe(&raw mut (*u).spe, bufs.spe, saved) };
    }
    if let Some(saved) = trbe {
        unsafe { unpark_model_trbe(&raw mut (*u).trbe, bufs.trbe, saved) };
    }
}

/// The SPE model's drain (`save_host_buffers`) on the shared area at
/// `shared`: every field loaded once into EL2's working copy
/// ([`SpeModel::load`]), repaired and given EL2's latched buffer, the drain
/// on the copy
/// ([`park_spe`]), and the result written back. The host may rewrite the
/// area at any time: nothing EL2 checked is read again.
///
/// # Safety
/// `shared` must be the attached model (`Backend::Model`).
#[cfg(target_arch = "aarch64")]
// Out of line: the model path is not the hot one, and inlined it costs
// `hvc_host` (SPE off) registers and instructions in the switch function.
#[inline(never)]
unsafe fn park_model_spe(shared: *mut SpeModel, buf: Option<IntendedBuffer>, repairs: &mut u64) -> Option<SavedSpe> {
    let w = &mut El2Writer { buffer: buf.as_ref().map(pa_range), owner: Owner::Spe };
    // SAFETY: forwarded from the caller.
    unsafe { park_shared(shared, &mut SPE_WORK.lock(), buf, w, repairs) }
}

/// [`park_spe`] on `work`, loaded from the model at `shared` and written back
/// after: the host's rewrites while it runs (another CPU's) change
/// nothing EL2 uses.
///
/// # Safety
/// `shared` must point to a readable and writable `SpeModel`.
pub unsafe fn park_shared<W: BufferWriter>(
    shared: *mut SpeModel,
    work: &mut SpeModel,
    buf: Option<IntendedBuffer>,
    w: &mut W,
    repairs: &mut u64,
) -> Option<SavedSpe> {
    // SAFETY: forwarded from the caller.
    unsafe { work.load(shared) };
    let saved = park_spe(work, buf, w, repairs);
    // SAFETY: forwarded from the caller.
    unsafe { work.store(shared) };
    saved
}

/// [`park_model_spe`] on a snapshot `m`, for any writer (host-testable):
/// repair before use (`sanitize`, the latched buffer as the intended
/// one; each repair counted in `repairs`), then if the buffer is enabled,
/// PMSCR_EL1 = 0, isb, psb csync (the drain), dsb nsh, PMBLIMITR_EL1.E =
/// 0, isb; every write judged against the regime live now.
pub fn park_spe<W: BufferWriter>(
    m: &mut SpeModel,
    buf: Option<IntendedBuffer>,
    w: &mut W,
    repairs: &mut u64,
) -> Option<SavedSpe> {
    let mut repaired = m.sanitize();
    if m.intended_buffer() != buf {
        m.set_intended(buf);
        repaired = true;
    }
    *repairs += u64::from(repaired);
    let limit = m.read(ModelReg::PmblimitrEl1);
    if !PMBLIMITR_EL1::E.is_set(limit) {
        return None;
    }
    let pmscr = m.read(ModelReg::PmscrEl1);
    // Every write is judged against the regime live now (the buffer is
    // enabled, so the unit could write at this instant).
    m.write_judged(ModelReg::PmscrEl1, 0, w);
    arch_barriers::isb();
    // psb csync: the pending records go out through the regime that owns
    // the buffer now (judged even when nothing is pending).
    m.drain(w);
    arch_barriers::dsb_nsh();
    m.write_judged(ModelReg::PmblimitrEl1, limit & !field_mask(PMBLIMITR_EL1::E), w);
    arch_barriers::isb();
    Some(SavedSpe { pmscr_el1: pmscr, pmblimitr_el1: limit })
}

/// The SPE model's restore: isb, PMBLIMITR_EL1 back, isb, PMSCR_EL1 back,
/// each write judged against the regime live now (the host's, unless this
/// runs too early), on a snapshot as in [`park_model_spe`].
///
/// # Safety
/// As [`park_model_spe`].
#[cfg(target_arch = "aarch64")]
// Out of line: the model path is not the hot one, and inlined it costs
// `hvc_host` (SPE off) registers and instructions in the switch function.
#[inline(never)]
unsafe fn unpark_model_spe(shared: *mut SpeModel, buf: Option<IntendedBuffer>, saved: SavedSpe) {
    let mut m = SPE_WORK.lock();
    // SAFETY: forwarded from the caller.
    unsafe { m.load(shared) };
    m.sanitize();
    m.set_intended(buf);
    let w = &mut El2Writer { buffer: buf.as_ref().map(pa_range), owner: Owner::Spe };
    arch_barriers::isb();
    m.write_judged(ModelReg::PmblimitrEl1, saved.pmblimitr_el1, w);
    arch_barriers::isb();
    m.write_judged(ModelReg::PmscrEl1, saved.pmscr_el1, w);
    // SAFETY: forwarded from the caller.
    unsafe { m.store(shared) };
}

/// The TRBE model's drain, in the order of Linux's nVHE `debug-sr.c`
/// (`__trace_switch_to_guest`, `__trace_drain_and_disable`): prohibit
/// trace (TRFCR_EL1 = 0); if the unit is enabled: isb (the prohibition
/// takes effect), tsb csync (the drain), dsb nsh, TRBLIMITR_EL1.E = 0,
/// isb. Nothing to do if the host neither traces nor has the unit on. On
/// a snapshot, as [`park_model_spe`].
///
/// # Safety
/// `shared` must be the attached model's trace unit.
#[cfg(target_arch = "aarch64")]
// Out of line: the model path is not the hot one, and inlined it costs
// `hvc_host` (SPE off) registers and instructions in the switch function.
#[inline(never)]
unsafe fn park_model_trbe(shared: *mut TrbeModel, buf: Option<IntendedBuffer>, repairs: &mut u64) -> Option<SavedTrbe> {
    let mut t = TRBE_WORK.lock();
    // SAFETY: forwarded from the caller.
    unsafe { t.load(shared) };
    let mut repaired = t.sanitize();
    if t.intended_buffer() != buf {
        t.set_intended(buf);
        repaired = true;
    }
    *repairs += u64::from(repaired);
    let w = &mut El2Writer { buffer: buf.as_ref().map(pa_range), owner: Owner::Trbe };
    let saved = park_trbe(&mut t, w);
    // SAFETY: forwarded from the caller.
    unsafe { t.store(shared) };
    saved
}

#[cfg(target_arch = "aarch64")]
fn park_trbe<W: BufferWriter>(t: &mut TrbeModel, w: &mut W) -> Option<SavedTrbe> {
    let trfcr = t.read(TrbeReg::TrfcrEl1);
    let limit = t.read(TrbeReg::TrblimitrEl1);
    if trfcr == 0 && limit & TRBLIMITR_E == 0 {
        return None;
    }
    t.write_judged(TrbeReg::TrfcrEl1, 0, w);
    if limit & TRBLIMITR_E != 0 {
        arch_barriers::isb();
        t.drain(w);
        arch_barriers::dsb_nsh();
        t.write_judged(TrbeReg::TrblimitrEl1, limit & !TRBLIMITR_E, w);
        arch_barriers::isb();
    }
    Some(SavedTrbe { trfcr_el1: trfcr, trblimitr_el1: limit })
}

/// The TRBE model's restore (Linux's `__trace_switch_to_host`): the unit
/// re-enabled if it was, isb, then the host's trace filter back. On a
/// snapshot.
///
/// # Safety
/// As [`park_model_trbe`].
#[cfg(target_arch = "aarch64")]
// Out of line: the model path is not the hot one, and inlined it costs
// `hvc_host` (SPE off) registers and instructions in the switch function.
#[inline(never)]
unsafe fn unpark_model_trbe(shared: *mut TrbeModel, buf: Option<IntendedBuffer>, saved: SavedTrbe) {
    let mut t = TRBE_WORK.lock();
    // SAFETY: forwarded from the caller.
    unsafe { t.load(shared) };
    t.sanitize();
    t.set_intended(buf);
    let w = &mut El2Writer { buffer: buf.as_ref().map(pa_range), owner: Owner::Trbe };
    if saved.trblimitr_el1 & TRBLIMITR_E != 0 {
        t.write_judged(TrbeReg::TrblimitrEl1, saved.trblimitr_el1, w);
        arch_barriers::isb();
    }
    t.write_judged(TrbeReg::TrfcrEl1, saved.trfcr_el1, w);
    // SAFETY: forwarded from the caller.
    unsafe { t.store(shared) };
}

/// The broken `switch-order-broken-trbe-late` variant's late trace drain
/// (ordering-check tests only; `vcpu_run` calls it after the stage-2 load).
#[cfg(all(target_arch = "aarch64", feature = "switch-order-broken-trbe-late"))]
#[inline(always)]
pub fn save_host_trace_late(h: &HostSpe, parked: &mut Parked) {
    match h.backend {
        Backend::Model { addr } => {
            let bufs = ATTACHED.lock().bufs;
            let u = addr as *mut Units;
            let mut repairs = 0;
            // SAFETY: an attached model (`Backend::Model`), through a snapshot.
            let trbe = unsafe { park_model_trbe(&raw mut (*u).trbe, bufs.trbe, &mut repairs) };
            match parked {
                Parked::Model { trbe: t, .. } => *t = trbe,
                Parked::Nothing if trbe.is_some() => *parked = Parked::Model { addr, spe: None, trbe },
                _ => {}
            }
        }
        Backend::Hardware if h.units.trbe => {
            // SAFETY: as in `drain_host_buffers` (wrongly placed on purpose).
            let trbe = unsafe { crate::hostbuf_hw::trbe_disable_and_drain() };
            match parked {
                Parked::HardwareUnits { trbe: t, .. } => *t = trbe,
                Parked::Nothing if trbe.is_some() => *parked = Parked::HardwareUnits { spe: None, brbe: None, trbe },
                _ => {}
            }
        }
        _ => {}
    }
}

#[cfg(not(target_arch = "aarch64"))]
mod arch_barriers {
    pub fn isb() {}
    pub fn dsb_nsh() {}
}

#[cfg(target_arch = "aarch64")]
mod arch_barriers {
    use aarch64_cpu::asm::barrier;
    #[inline(always)]
    pub fn isb() {
        barrier::isb(barrier::SY);
    }
    #[inline(always)]
    pub fn dsb_nsh() {
        barrier::dsb(barrier::NSH);
    }
}

/// The `spe-hw-standin` build (`cargo xtask bench`, QEMU only): QEMU has no
/// SPE, so `save_host_buffers`/`restore_host_buffers` could never run their
/// hardware path there. In this build `spevisor_spe::regs::hw` names two
/// spare EL2 registers instead of PMSCR_EL1/PMBLIMITR_EL1 (its `hw-standin`
/// feature), boot loads them as the host's buffer registers, and the
/// hardware path runs instruction for instruction: its cost becomes
/// measurable. The buffer is enabled (a host that profiles itself) unless
/// the command line says `spevisor.spe_standin=idle` (a host with SPE that
/// does not profile: the board's "off"). The host sees no SPE (the ID
/// registers are unchanged) and never touches the stand-ins.
pub mod hw_standin {
    // A QEMU-only build: never a board image (xtask refuses `--board` with it).
    #[cfg(all(feature = "spe-hw-standin", not(feature = "semihosting")))]
    compile_error!("spe-hw-standin is a QEMU instruction-counting build (needs the `qemu` image feature)");

    /// PMBLIMITR_EL1 as an enabled host buffer would have it: a limit, E = 1.
    #[cfg(feature = "spe-hw-standin")]
    const LIMIT_ENABLED: u64 = 0x4800_0000 | 1;
    /// PMSCR_EL1 with E0SPE and E1SPE set (sampling at EL0 and EL1).
    #[cfg(feature = "spe-hw-standin")]
    const PMSCR_SAMPLING: u64 = 0b11;
    /// The command-line word that leaves the stand-in buffer disabled.
    #[cfg(feature = "spe-hw-standin")]
    const IDLE_ARG: &str = "spevisor.spe_standin=idle";

    /// Loads the stand-ins; `Ok(true)` if this build has them (and the CPU
    /// the registers they use), so boot picks the hardware backend. `bootargs`
    /// is the kernel command line (`/chosen/bootargs`). A CPU with real SPE
    /// is refused: there this build's accessors would miss the real buffer,
    /// and the host's buffer would never be drained.
    pub fn enable(bootargs: &str, id: &spevisor_spe::regs::SpeId) -> Result<bool, &'static str> {
        #[cfg(all(feature = "spe-hw-standin", target_arch = "aarch64"))]
        {
            use spevisor_spe::regs::hw;
            if id.implemented() {
                return Err("spe-hw-standin is for CPUs without SPE (QEMU); this CPU has SPE");
            }
            if !crate::arch::has_vhe() {
                crate::warn!("spe-hw-standin: no FEAT_VHE (CNTHV_CVAL_EL2); SPE stays off");
                return Ok(false);
            }
            let idle = bootargs.split_ascii_whitespace().any(|a| a == IDLE_ARG);
            // Both stand-ins belong to EL2 timers that boot turned off
            // (CNTHP_CTL_EL2 and CNTHV_CTL_EL2 = 0) before this runs.
            // SAFETY: in this build the accessors name CNTHP_CVAL_EL2 and
            // CNTHV_CVAL_EL2 (present: FEAT_VHE checked above), compare values
            // of two disabled EL2 timers; nothing else reads them.
            unsafe {
                hw::write_pmblimitr_el1(if idle { 0 } else { LIMIT_ENABLED });
                hw::write_pmscr_el1(if idle { 0 } else { PMSCR_SAMPLING });
            }
            LOADED.store(true, core::sync::atomic::Ordering::Relaxed);
            crate::info!(
                "spe-hw-standin: SPE hardware path on stand-in EL2 registers, buffer {} (instruction counting only), PMBLIMITR_EL1={:#x} PMSCR_EL1={:#x}",
                if idle { "disabled" } else { "enabled" },
                if idle { 0 } else { LIMIT_ENABLED },
                if idle { 0 } else { PMSCR_SAMPLING }
            );
            Ok(true)
        }
        #[cfg(not(all(feature = "spe-hw-standin", target_arch = "aarch64")))]
        {
            let _ = (bootargs, id);
            Ok(false)
        }
    }

    /// Prints the stand-ins at shutdown: after every world switch's drain
    /// and restore they must hold what boot put there (the QEMU test
    /// `spe_hardware_path_restores_the_host_buffer` compares).
    pub fn report() {
        #[cfg(all(feature = "spe-hw-standin", target_arch = "aarch64"))]
        if LOADED.load(core::sync::atomic::Ordering::Relaxed) {
            use spevisor_spe::regs::hw;
            // SAFETY: `enable` found FEAT_VHE and loaded the stand-ins
            // (CNTHP_CVAL_EL2, CNTHV_CVAL_EL2 in this build); reading them
            // has no side effects.
            let (limit, pmscr) = unsafe { (hw::read_pmblimitr_el1(), hw::read_pmscr_el1()) };
            crate::info!("spe-hw-standin: at shutdown PMBLIMITR_EL1={:#x} PMSCR_EL1={:#x}", limit, pmscr);
        }
    }

    /// Set once `enable` has loaded the stand-ins.
    #[cfg(feature = "spe-hw-standin")]
    static LOADED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
}

/// Writes model records the way SPE hardware at EL2 would: the VA is
/// translated by the regime that owns the buffer right now (MDCR_EL2.E2PB ==
/// 0b00: EL2 stage-1, `at s1e2w`; else the EL1&0 regime, `at s12e1w` when
/// HCR_EL2.VM is set, `at s1e1w` otherwise), and the data is stored at the
/// resulting PA through EL2's identity map of RAM.
#[cfg(target_arch = "aarch64")]
pub struct El2Writer {
    /// The buffer EL2 latched when the host attached the model: the only
    /// place EL2 stores this unit's records, whatever the model's
    /// (host-writable) idea of the buffer says (`None`: nowhere).
    pub buffer: Option<Range>,
    /// Whose buffer: the owning regime comes from MDCR_EL2.E2PB (SPE) or
    /// MDCR_EL2.E2TB (TRBE).
    pub owner: Owner,
}

/// Which unit's buffer an [`El2Writer`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Spe,
    Trbe,
}

#[cfg(target_arch = "aarch64")]
impl spevisor_spe::model::BufferWriter for El2Writer {
    fn translate(&mut self, va: u64) -> Result<u64, spevisor_spe::model::TranslationFault> {
        use crate::traps::mdcr;
        use aarch64_cpu::registers::*;
        use core::arch::asm;
        let mdcr = MDCR_EL2.get();
        // 0b00: the buffer uses EL2's regime (both fields alike).
        let el2_owns = match self.owner {
            Owner::Spe => mdcr & mdcr::E2PB_MASK == 0,
            Owner::Trbe => mdcr & mdcr::E2TB_MASK == 0,
        };
        let vm = HCR_EL2.get() & crate::traps::hcr::VM != 0;
        // SAFETY: address translation instructions only write PAR_EL1 (whose
        // owner's value was saved with its EL1 context or is scratch); the isb
        // makes the result visible to the mrs below.
        unsafe {
            if el2_owns {
                asm!("at s1e2w, {}", "isb", in(reg) va, options(nostack, preserves_flags));
            } else if vm {
                asm!("at s12e1w, {}", "isb", in(reg) va, options(nostack, preserves_flags));
            } else {
                asm!("at s1e1w, {}", "isb", in(reg) va, options(nostack, preserves_flags));
            }
        }
        spevisor_spe::model::par_to_pa(PAR_EL1.get(), va)
    }

    fn write(&mut self, pa: u64, bytes: &[u8]) {
        if !self.buffer.is_some_and(|b| b.contains_range(pa, bytes.len() as u64)) {
            return;
        }
        // SAFETY: `pa..pa+len` is inside the buffer EL2 checked at
        // SPE_MODEL_ATTACH (host memory, given to no VM, not EL2's), which
        // EL2 maps RW at its physical address; the model writes there only
        // where the translation and the latched buffer agree.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), pa as *mut u8, bytes.len()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spevisor_spe::model::{OpKind, Sample, TranslationFault, PAGE_SIZE as MODEL_PAGE};
    use spevisor_spe::regs::PMSCR_EL1;

    /// The buffer the host declared (identity mapped: VA = PA), and the
    /// page just after it, which EL2 must never write.
    const BUF: u64 = 0x5000_0000;
    const BUF_SIZE: u64 = 2 * MODEL_PAGE;
    const GUARD: u64 = BUF + BUF_SIZE;
    const RECORDS: usize = 8;

    /// The host on another CPU: at EL2's first translation (mid-drain) it
    /// rewrites the shared model to point everything at the guard page.
    struct RacingHost {
        shared: *mut SpeModel,
        raced: bool,
        writes: Vec<(u64, usize)>,
    }

    impl BufferWriter for RacingHost {
        fn translate(&mut self, va: u64) -> Result<u64, TranslationFault> {
            if !self.raced {
                self.raced = true;
                // SAFETY: the test's model, written as another CPU would.
                unsafe {
                    let m = &mut *self.shared;
                    m.write(ModelReg::PmbptrEl1, GUARD);
                    m.write(ModelReg::PmblimitrEl1, (GUARD + 16 * MODEL_PAGE) | field_mask(PMBLIMITR_EL1::E));
                    m.set_intended_buffer(GUARD, GUARD, 16 * MODEL_PAGE);
                }
            }
            Ok(va)
        }
        fn write(&mut self, pa: u64, bytes: &[u8]) {
            self.writes.push((pa, bytes.len()));
        }
    }

    fn profiling_model() -> Box<SpeModel> {
        let mut m = Box::new(SpeModel::new());
        m.set_intended_buffer(BUF, BUF, BUF_SIZE);
        m.write(ModelReg::PmbptrEl1, BUF);
        m.write(ModelReg::PmblimitrEl1, (BUF + BUF_SIZE) | field_mask(PMBLIMITR_EL1::E));
        m.write(ModelReg::PmscrEl1, field_mask(PMSCR_EL1::E1SPE));
        let s = Sample {
            pc: 0x4008_0000,
            el: 1,
            ns: true,
            timestamp: 0,
            op: OpKind::Other,
            events: 0,
            total_latency: 1,
            issue_latency: 1,
            context: None,
        };
        for _ in 0..RECORDS {
            m.sample(&s);
        }
        m
    }

    #[test]
    fn the_shared_model_is_read_once_so_a_racing_host_cannot_redirect_el2() {
        let mut m = profiling_model();
        let shared: *mut SpeModel = &mut *m;
        let buf = Some(IntendedBuffer { va_base: BUF, pa_base: BUF, size: BUF_SIZE });
        let mut host = RacingHost { shared, raced: false, writes: Vec::new() };
        let mut repairs = 0;
        // SAFETY: the test's model.
        let saved = unsafe { park_shared(shared, &mut SpeModel::new(), buf, &mut host, &mut repairs) };
        assert!(saved.is_some(), "the buffer was enabled");
        assert!(host.raced, "the host rewrote the area while EL2 used it");
        let buffer = Range::new(BUF, GUARD);
        assert_eq!(host.writes.len(), RECORDS, "every record written once");
        for (pa, len) in &host.writes {
            assert!(buffer.contains_range(*pa, *len as u64), "EL2 wrote {len} bytes at {pa:#x}, outside its buffer");
        }
        assert_eq!(repairs, 0, "nothing to repair when EL2 took its snapshot");
        // The snapshot is written back: the drained state, not the race.
        assert_eq!(m.read(ModelReg::PmbptrEl1), BUF + (RECORDS * 64) as u64);
        assert_eq!(m.pending_records(), 0);
    }

    #[test]
    fn a_hostile_intended_buffer_is_repaired_from_the_latched_one_and_counted() {
        let mut m = profiling_model();
        m.set_intended_buffer(GUARD, GUARD, MODEL_PAGE);
        m.write(ModelReg::PmbptrEl1, GUARD);
        m.write(ModelReg::PmblimitrEl1, (GUARD + MODEL_PAGE) | field_mask(PMBLIMITR_EL1::E));
        let shared: *mut SpeModel = &mut *m;
        let buf = Some(IntendedBuffer { va_base: BUF, pa_base: BUF, size: BUF_SIZE });
        let mut host = RacingHost { shared, raced: true, writes: Vec::new() };
        let mut repairs = 0;
        // SAFETY: the test's model.
        unsafe { park_shared(shared, &mut SpeModel::new(), buf, &mut host, &mut repairs) };
        assert_eq!(repairs, 1);
        assert!(host.writes.is_empty(), "records aimed at the guard page are misdirected, never written");
        assert_eq!(m.stats().records_written, 0);
        assert!(m.stats().misdirected as usize >= RECORDS, "each record counted as misdirected");
        assert_eq!(m.intended_buffer(), buf);
    }

    #[test]
    fn model_attach_is_checked_like_a_donation() {
        let ram = [Range::new(0x4000_0000, 0x8000_0000)];
        let l = Layout::new(&ram, Range::new(0x4020_0000, 0x4030_0000), &[]).unwrap();
        let vms = Vms::new(40);
        let size = core::mem::size_of::<spevisor_spe::model::Units>() as u64;
        let pa = 0x5000_0000;
        assert_eq!(check_model_attach(&l, &vms, pa, size), Ok(Range::new(pa, pa + size)));
        assert_eq!(check_model_attach(&l, &vms, pa, size - 8), Err(Status::InvalidParameter));
        assert_eq!(check_model_attach(&l, &vms, pa + 8, size), Err(Status::Unaligned));
        assert_eq!(check_model_attach(&l, &vms, l.pool.start, size), Err(Status::HypOwned));
        assert_eq!(check_model_attach(&l, &vms, 0x8000_0000, size), Err(Status::OutOfBounds));
    }
}
