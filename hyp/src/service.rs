//! The hypervisor's state after boot and the work behind each hypercall.

use crate::arch;
use crate::hcall::Services;
use crate::info;
use crate::mm::{Layout, PagePool, Range};
use crate::spe::Backend;
use crate::switch::{self, HostContext, Trace};
use crate::vcpu::{shared_page, Uncompleted};
use crate::vm::Vms;
use spevisor_abi::{spe_state, Completion, Exit, InfoItem, Status, SwitchOrder, TestFault};
use spevisor_pgtable::PAGE_SIZE;
use spin::Mutex;

/// Everything EL2 owns after boot.
pub struct Hyp {
    pub layout: Layout,
    pub pool: PagePool,
    pub el2_tables: spevisor_pgtable::PageTable,
    pub pa_bits: u32,
    pub gic_version: u64,
    pub pmu_ver: u64,
    pub pms_ver: u64,
    pub host: HostContext,
    /// The ID registers as guests read them (HCR_EL2.TID3).
    pub guest_ids: crate::idregs::IdRegs,
    pub trace: Trace,
    /// Where the test hook writes (the start of hypervisor text).
    pub text_start: u64,
    /// Host memory holding the attached SPE model (never donatable).
    pub spe_model: Option<Range>,
}

/// Everything EL2 owns, behind the one lock a host hypercall takes.
pub struct El2State {
    /// Set once at the end of boot.
    pub hyp: Option<Hyp>,
    /// The VMs. Beside `hyp`, not in it: at tens of KiB they must never be
    /// built on the 64 KiB EL2 stack (as a `Hyp { .. }` literal would), so
    /// they are initialised in place, in this static.
    pub vms: Vms,
}

pub static EL2: Mutex<El2State> = Mutex::new(El2State { hyp: None, vms: Vms::new(0) });

/// What a hypercall works on: the booted hypervisor and its VMs, both under
/// the [`EL2`] lock.
pub struct Machine<'a> {
    pub hyp: &'a mut Hyp,
    pub vms: &'a mut Vms,
}

impl Services for Machine<'_> {
    fn info(&self, item: InfoItem) -> u64 {
        let h = &*self.hyp;
        match item {
            InfoItem::HypEl => arch::current_el(),
            InfoItem::PaBits => h.pa_bits as u64,
            InfoItem::GicVersion => h.gic_version,
            InfoItem::Spe => {
                let id = h.host.spe.id;
                match id.pmbidr {
                    None => 0,
                    Some(b) if b.programming_prohibited => spe_state::PRESENT,
                    Some(_) => spe_state::PRESENT | spe_state::HOST_OWNED,
                }
            }
            InfoItem::PmsVer => h.pms_ver,
            InfoItem::PmuVer => h.pmu_ver,
            InfoItem::HypFreePages => h.pool.free_pages() as u64,
            InfoItem::IpaBits => self.vms.ipa_bits() as u64,
            InfoItem::ListRegs => h.host.nr_lrs as u64,
            InfoItem::SpeModelRepairs => crate::spe::ATTACHED.lock().repairs,
            InfoItem::SwitchOrder => {
                if cfg!(feature = "switch-order-pre-2021") {
                    SwitchOrder::Pre2021 as u64
                } else {
                    SwitchOrder::Fixed as u64
                }
            }
        }
    }

    fn current_el(&self) -> u64 {
        arch::current_el()
    }

    fn shutdown(&mut self, status: u64) -> ! {
        info!("host requested shutdown, status {}", status);
        crate::spe::hw_standin::report();
        crate::boot::shutdown(status)
    }

    fn test_fault(&mut self, fault: TestFault) -> bool {
        if !cfg!(feature = "test-hooks") {
            return false;
        }
        match fault {
            TestFault::WriteHypText => {
                info!("test hook: writing to hypervisor text at {:#x}", self.hyp.text_start);
                let p = self.hyp.text_start as *mut u32;
                // SAFETY: deliberately wrong: this store must take a permission
                // fault (text is mapped read-only + executable), which the crash
                // path reports. It is only built with `test-hooks`.
                unsafe { p.write_volatile(0) };
            }
            TestFault::Undefined => {
                info!("test hook: executing an undefined instruction at EL2");
                arch::undefined_instruction();
            }
        }
        true
    }

    fn vm_create(&mut self) -> Result<u64, Status> {
        let h = &mut *self.hyp;
        let handle = self.vms.create(&mut h.pool)?;
        if h.host.gich != 0 && h.host.gicv != 0 {
            // GICv2: the guest's CPU interface is the hardware's virtual
            // one (GICV), at the GICC address of its device tree. EL2 maps
            // it, from the DTB it booted with: the host names no frame.
            use spevisor_abi::guest::machine::{GICC_IPA, GICC_SIZE};
            let vm = self.vms.get_mut(handle)?;
            let mapped = vm.mem.stage2.map_range(
                &mut h.pool,
                GICC_IPA,
                h.host.gicv,
                GICC_SIZE,
                spevisor_pgtable::Attributes::DEVICE,
            );
            if mapped.is_err() {
                let _ = self.vms.destroy(&mut h.pool, handle, arch::flush_vmid);
                return Err(Status::NoMemory);
            }
        }
        Ok(handle)
    }

    fn vm_donate(&mut self, vm: u64, host_pa: u64, ipa: u64, pages: u64) -> Result<(), Status> {
        let h = &mut *self.hyp;
        // The model's buffers are EL2's to write into: never a VM's page.
        if h.spe_model.is_some() && crate::spe::ATTACHED.lock().bufs.overlaps(host_pa, pages.saturating_mul(PAGE_SIZE))
        {
            return Err(Status::AlreadyDonated);
        }
        self.vms.donate_call(&h.layout, &mut h.pool, h.spe_model, vm, host_pa, ipa, pages)
    }

    fn vcpu_create(&mut self, vm: u64, entry: u64, args: [u64; 3]) -> Result<u64, Status> {
        let idx = self.vms.create_vcpu(vm, entry, args)?;
        if self.hyp.host.gich != 0 {
            // On a GICv2 host every vcpu has its GICH state switched.
            let (_, cpu) = self.vms.vm_and_vcpu(vm, idx)?;
            cpu.lazy |= crate::vcpu::lazy::GICV2;
        }
        Ok(idx)
    }

    fn vcpu_run(&mut self, vm: u64, vcpu: u64, completion: Completion) -> Result<Exit, Status> {
        let gic = vcpu & spevisor_abi::VCPU_RUN_GIC != 0;
        let vcpu = vcpu & !spevisor_abi::VCPU_RUN_GIC;
        let (v, cpu) = self.vms.vm_and_vcpu(vm, vcpu)?;
        if v.stopped {
            return Err(Status::VmStopped);
        }
        let idx = vcpu as usize;
        if let Err(e) = cpu.complete(completion) {
            return match e {
                Uncompleted::Refused(status) => Err(status),
                // The host's answer was an external abort the guest cannot
                // get past: stopped without running it again.
                Uncompleted::Stop(reason) => {
                    v.stopped = true;
                    let a = cpu.abort;
                    Ok(Exit::Stopped { reason, esr: a.esr, far: a.far, elr: cpu.pc })
                }
            };
        }
        let h = &mut *self.hyp;
        // The host's list registers in, when it says it has some
        // (VCPU_RUN_GIC): the common case stays off the GIC's path.
        let shared = cpu.shared;
        let gic_work = gic && shared != 0 && cpu.vgic.load(shared_page(shared), h.host.nr_lrs);
        let exit = switch::vcpu_run(&v.mem, idx, cpu, &h.guest_ids, &mut h.host, &mut h.trace);
        if gic_work {
            cpu.vgic.store(shared_page(shared));
        }
        if matches!(exit, Exit::Stopped { .. }) {
            v.stopped = true;
        }
        Ok(exit)
    }

    fn vm_destroy(&mut self, vm: u64) -> Result<(), Status> {
        self.vms.destroy(&mut self.hyp.pool, vm, arch::flush_vmid)
    }

    fn switch_trace(&self) -> &[u8] {
        self.hyp.trace.steps()
    }

    fn spe_model_attach(&mut self, pa: u64, size: u64) -> Result<(), Status> {
        let h = &mut *self.hyp;
        if h.host.spe.backend == Backend::Hardware && h.host.spe.spe_hw {
            // Real SPE belongs to the host: no model beside it. (A CPU with
            // only TRBE/BRBE takes the model instead of their hardware path.)
            return Err(Status::NotSupported);
        }
        if (pa, size) == (0, 0) {
            // Detach: EL2 forgets the area and its buffers (the host may
            // free them); the backend is the one boot found.
            if h.spe_model.take().is_none() {
                return Err(Status::InvalidParameter);
            }
            let mut a = crate::spe::ATTACHED.lock();
            h.host.spe.backend = a.before;
            a.bufs = crate::spe::Latched::default();
            info!("SPE model detached");
            return Ok(());
        }
        let range = crate::spe::check_model_attach(&h.layout, self.vms, pa, size)?;
        // The buffers the host declares (the models' intended buffers now)
        // are latched: checked like the area, read once, and from now on
        // the only memory EL2 writes records into.
        let units = pa as *const spevisor_spe::model::Units;
        // SAFETY: `range` is a whole `Units` in host memory that EL2 maps
        // (checked just above); any bit pattern is a valid one; one snapshot
        // of each unit's fields.
        let (spe, trbe) = unsafe {
            (
                spevisor_spe::model::SpeModel::snapshot(&raw const (*units).spe).intended_buffer(),
                spevisor_spe::trbe::TrbeModel::snapshot(&raw const (*units).trbe).intended_buffer(),
            )
        };
        for b in [spe, trbe].into_iter().flatten() {
            crate::spe::check_model_buffer(&h.layout, self.vms, range, b)?;
        }
        if let (Some(a), Some(b)) = (spe, trbe) {
            if Range::new(a.pa_base, a.pa_base + a.size).overlaps(b.pa_base, b.size) {
                return Err(Status::InUse);
            }
        }
        h.spe_model = Some(range);
        let mut a = crate::spe::ATTACHED.lock();
        if !matches!(h.host.spe.backend, Backend::Model { .. }) {
            a.before = h.host.spe.backend;
        }
        a.bufs = crate::spe::Latched { spe, trbe };
        h.host.spe.backend = Backend::Model { addr: pa as usize };
        info!("SPE model attached at {:#x} ({} bytes)", pa, size);
        Ok(())
    }

    fn vcpu_share(&mut self, vm: u64, vcpu: u64, pa: u64) -> Result<(), Status> {
        let h = &*self.hyp;
        if h.spe_model.is_some() && crate::spe::ATTACHED.lock().bufs.overlaps(pa, PAGE_SIZE) {
            return Err(Status::InUse);
        }
        self.vms.share_call(&h.layout, h.spe_model, vm, vcpu, pa)
    }

    fn vcpu_reset(&mut self, vm: u64, vcpu: u64, entry: u64, x0: u64) -> Result<(), Status> {
        self.vms.reset_vcpu(vm, vcpu, entry, x0)
    }
}
