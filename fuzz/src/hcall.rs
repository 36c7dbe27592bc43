//! `hcall`: the host → hypervisor hypercalls, argument checks and all.
//!
//! A program of hypercalls (mostly well-formed function IDs with arguments
//! drawn near the interesting values: handles, page-aligned host and guest
//! addresses, sizes; sometimes raw registers) goes through the real
//! dispatcher ([`dispatch`]) into the real VM bookkeeping ([`Vms`]: the
//! same calls `hyp/src/service.rs` makes at EL2, over a page allocator that
//! may run dry). The only parts replaced are what needs the machine: the
//! world switch (VCPU_RUN completes the pending exit and returns `Irq`)
//! and the TLB flush.
//!
//! Properties, after every call: x0 is a defined status and a refusal
//! returns nothing else (x1..x7 = 0) and changes nothing; no two donations
//! share a host page; none touches hypervisor memory, memory outside the
//! host's, the attached SPE model or a vcpu's shared page; a VM's regions do
//! not overlap in IPA space, stay out of the device window and inside the
//! IPA size, and its stage-2 maps each region where it says; live VMs have
//! distinct VMIDs; shared pages are distinct. At the end every VM is
//! destroyed and every page-table page must be back (no leak, also after
//! allocations failed half-way).

use crate::Input;
use spevisor_abi::{Call, Completion, InfoItem, Status, TestFault};
use spevisor_hyp::hcall::{dispatch, Regs, Services};
use spevisor_hyp::mm::{Layout, Range};
use spevisor_hyp::vm::{Region, Vms, DEVICE_WINDOW, MAX_VMS};
use spevisor_pgtable::{PageAllocator, PAGE_SIZE};
use std::collections::BTreeMap;

/// Entries of a page table page.
const ENTRIES: usize = 512;
/// Where the test's "host RAM" starts, and the image in it (as QEMU virt).
const RAM: Range = Range::new(0x4000_0000, 0x8000_0000);
const IMAGE: Range = Range::new(0x4020_0000, 0x4030_0000);
/// Page-table pages live far from RAM (their addresses are only keys).
const TABLES_BASE: u64 = 0x10_0000_0000;
/// How many pages the "near" arguments pick from.
const NEAR_PAGES: u8 = 32;
/// Most hypercalls in one program.
const MAX_CALLS: usize = 64;
/// PA sizes the CPU may report (ID_AA64MMFR0_EL1.PARange).
const PA_BITS: [u32; 7] = [32, 36, 40, 42, 44, 48, 52];
/// The calls the host can make (SHUTDOWN ends the machine: never fuzzed).
const CALLS: [Call; 13] = [
    Call::Version,
    Call::Info,
    Call::Ping,
    Call::VmCreate,
    Call::VmDonate,
    Call::VcpuCreate,
    Call::VcpuRun,
    Call::VmDestroy,
    Call::SwitchTrace,
    Call::SpeModelAttach,
    Call::VcpuShare,
    Call::VcpuReset,
    Call::TestFault,
];

/// Page-table pages, with a budget: past it allocation fails.
struct Alloc {
    pages: BTreeMap<u64, Box<[u64; ENTRIES]>>,
    next: u64,
    budget: usize,
}

impl PageAllocator for Alloc {
    fn alloc_page(&mut self) -> Option<u64> {
        if self.budget == 0 {
            return None;
        }
        self.budget -= 1;
        self.next += PAGE_SIZE;
        self.pages.insert(self.next, Box::new([0; ENTRIES]));
        Some(self.next)
    }
    fn free_page(&mut self, pa: u64) {
        assert!(self.pages.remove(&pa).is_some(), "freed a page that is not allocated: {pa:#x}");
        self.budget += 1;
    }
    fn table_ptr(&self, pa: u64) -> *mut u64 {
        self.pages.get(&pa).unwrap_or_else(|| panic!("walked to a page that is not allocated: {pa:#x}")).as_ptr()
            as *mut u64
    }
}

/// The hypervisor's side of the calls, as `service.rs` does it at EL2.
struct Hyp {
    layout: Layout,
    alloc: Alloc,
    vms: Vms,
    spe_model: Option<Range>,
    trace: Vec<u8>,
}

impl Services for Hyp {
    fn info(&self, item: InfoItem) -> u64 {
        item as u64
    }
    fn current_el(&self) -> u64 {
        2
    }
    fn shutdown(&mut self, _: u64) -> ! {
        unreachable!("SHUTDOWN is never fuzzed")
    }
    fn test_fault(&mut self, _: TestFault) -> bool {
        false
    }
    fn vm_create(&mut self) -> Result<u64, Status> {
        self.vms.create(&mut self.alloc)
    }
    fn vm_donate(&mut self, vm: u64, host_pa: u64, ipa: u64, pages: u64) -> Result<(), Status> {
        self.vms.donate_call(&self.layout, &mut self.alloc, self.spe_model, vm, host_pa, ipa, pages)
    }
    fn vcpu_create(&mut self, vm: u64, entry: u64, args: [u64; 3]) -> Result<u64, Status> {
        self.vms.create_vcpu(vm, entry, args)
    }
    fn vcpu_run(&mut self, vm: u64, vcpu: u64, completion: Completion) -> Result<spevisor_abi::Exit, Status> {
        // service.rs up to the world switch, which needs the machine.
        let vcpu = vcpu & !spevisor_abi::VCPU_RUN_GIC;
        let (v, cpu) = self.vms.vm_and_vcpu(vm, vcpu)?;
        if v.stopped {
            return Err(Status::VmStopped);
        }
        match cpu.complete(completion) {
            Ok(()) => Ok(spevisor_abi::Exit::Irq),
            Err(spevisor_hyp::vcpu::Uncompleted::Refused(s)) => Err(s),
            // As service.rs: an abort the guest cannot get past stops it.
            Err(spevisor_hyp::vcpu::Uncompleted::Stop(reason)) => {
                v.stopped = true;
                Ok(spevisor_abi::Exit::Stopped { reason, esr: 0, far: 0, elr: cpu.pc })
            }
        }
    }
    fn vm_destroy(&mut self, vm: u64) -> Result<(), Status> {
        self.vms.destroy(&mut self.alloc, vm, |_| {})
    }
    fn switch_trace(&self) -> &[u8] {
        &self.trace
    }
    fn spe_model_attach(&mut self, pa: u64, size: u64) -> Result<(), Status> {
        let range = spevisor_hyp::spe::check_model_attach(&self.layout, &self.vms, pa, size)?;
        self.spe_model = Some(range);
        Ok(())
    }
    fn vcpu_share(&mut self, vm: u64, vcpu: u64, pa: u64) -> Result<(), Status> {
        self.vms.share_call(&self.layout, self.spe_model, vm, vcpu, pa)
    }
    fn vcpu_reset(&mut self, vm: u64, vcpu: u64, entry: u64, x0: u64) -> Result<(), Status> {
        self.vms.reset_vcpu(vm, vcpu, entry, x0)
    }
}

/// What the host can observe of the VMs: (handle, VMID, regions, vcpus as
/// (pc, shared page)).
type Snapshot = Vec<(u64, u8, Vec<Region>, Vec<Option<(u64, u64)>>)>;

fn snapshot(h: &Hyp) -> (Snapshot, Option<Range>) {
    let mut s = vec![];
    for handle in 1..=MAX_VMS as u64 {
        let Ok(vm) = h.vms.get(handle) else { continue };
        let regions = vm.mem.regions.iter().flatten().copied().collect();
        let cpus = h.vms.vcpus(handle).unwrap().iter().map(|c| c.as_ref().map(|c| (c.pc, c.shared))).collect();
        s.push((handle, vm.mem.vmid, regions, cpus));
    }
    (s, h.spe_model)
}

fn check_invariants(h: &Hyp) {
    let (vms, model) = snapshot(h);
    let hyp_owned = Range::new(h.layout.image.start, h.layout.pool.end);
    let ipa_space = Range::new(0, 1 << h.vms.ipa_bits());
    let mut host_ranges: Vec<Range> = vec![];
    let mut shared: Vec<u64> = vec![];
    let mut vmids = vec![];
    for (handle, vmid, regions, cpus) in &vms {
        assert!(*vmid != 0, "VMID 0 is the host's");
        assert!(!vmids.contains(vmid), "VMID {vmid} given twice");
        vmids.push(*vmid);
        let vm = h.vms.get(*handle).unwrap();
        for (k, r) in regions.iter().enumerate() {
            let (hr, ir) = (r.host_range(), r.ipa_range());
            assert!(r.pages > 0);
            assert!(!hyp_owned.overlaps(hr.start, hr.size()), "{r:x?} takes hypervisor memory");
            assert!(h.layout.host.contains_range(hr.start, hr.size()), "{r:x?} outside host memory");
            assert!(model.is_none_or(|m| !m.overlaps(hr.start, hr.size())), "{r:x?} takes the SPE model");
            assert!(host_ranges.iter().all(|o| !o.overlaps(hr.start, hr.size())), "{r:x?} donated twice");
            assert!(ipa_space.contains_range(ir.start, ir.size()), "{r:x?} outside the IPA space");
            assert!(!DEVICE_WINDOW.overlaps(ir.start, ir.size()), "{r:x?} in the device window");
            for o in &regions[..k] {
                assert!(!o.ipa_range().overlaps(ir.start, ir.size()), "{r:x?} overlaps {o:x?} in IPA space");
            }
            host_ranges.push(hr);
            let last = (r.pages - 1) * PAGE_SIZE;
            for off in [0, last] {
                let t = vm.mem.stage2.translate(&h.alloc, r.ipa + off);
                assert_eq!(t.map(|t| t.pa), Some(r.host_pa + off), "stage-2 of {r:x?} at +{off:#x}");
            }
        }
        for &(_, page) in cpus.iter().flatten() {
            if page != 0 {
                assert!(!shared.contains(&page), "page {page:#x} shared twice");
                shared.push(page);
            }
        }
    }
    for &page in &shared {
        assert!(host_ranges.iter().all(|r| !r.overlaps(page, PAGE_SIZE)), "shared page {page:#x} donated");
        assert!(model.is_none_or(|m| !m.overlaps(page, PAGE_SIZE)), "shared page {page:#x} in the model");
        assert!(!hyp_owned.overlaps(page, PAGE_SIZE));
    }
}

/// A refused VM_DONATE left no page of its range mapped in the VM (beyond
/// the regions it already had): page-table pages it allocated may stay
/// until the VM is destroyed, mappings may not.
fn refused_donation_maps_nothing(h: &Hyp, regs: Regs) {
    let (handle, ipa, pages) = (regs[1], regs[3], regs[4]);
    let Ok(vm) = h.vms.get(handle) else { return };
    if !ipa.is_multiple_of(PAGE_SIZE) {
        return;
    }
    for k in [0, pages.saturating_sub(1)] {
        let Some(at) = ipa.checked_add(k.saturating_mul(PAGE_SIZE)) else { continue };
        if vm.mem.ram_contains(at) || at >> h.vms.ipa_bits() != 0 {
            continue;
        }
        assert!(vm.mem.stage2.translate(&h.alloc, at).is_none(), "a refused donation mapped IPA {at:#x}");
    }
}

/// One argument, mostly near a value the checks care about.
fn arg(i: &mut Input, layout: &Layout) -> u64 {
    match i.u8() % 10 {
        0 => u64::from(i.u8()),
        1 => u64::from(i.u8() % (MAX_VMS as u8 + 2)),
        // A page of host memory (or just around it).
        2 => layout.host.start + u64::from(i.u16()) * PAGE_SIZE,
        3 => RAM.start + u64::from(i.u16()) * PAGE_SIZE + u64::from(i.u8() & 8),
        // Guest IPAs: RAM at 1 GiB, the device window, anywhere.
        4 => 0x4000_0000 + u64::from(i.u16()) * PAGE_SIZE,
        5 => DEVICE_WINDOW.start + u64::from(i.u16()) * PAGE_SIZE,
        6 => u64::from(i.u16()) << (i.u8() % 64),
        7 => i.u64(),
        // The first pages of host memory and of guest RAM: calls that
        // name the same pages (share, then donate over it) are likely.
        8 => layout.host.start + u64::from(i.u8() % NEAR_PAGES) * PAGE_SIZE,
        _ => 0x4000_0000 + u64::from(i.u8() % NEAR_PAGES) * PAGE_SIZE,
    }
}

pub fn run(data: &[u8]) {
    let mut i = Input::new(data);
    let layout = Layout::new(&[RAM], IMAGE, &[]).expect("the test layout fits");
    let mut vms = Vms::new(0);
    vms.set_pa_bits(PA_BITS[usize::from(i.u8()) % PA_BITS.len()]);
    let budget = usize::from(i.u8()) * 4;
    let trace = (0..i.u8()).collect();
    let mut h =
        Hyp { layout, alloc: Alloc { pages: BTreeMap::new(), next: TABLES_BASE, budget }, vms, spe_model: None, trace };
    for _ in 0..MAX_CALLS {
        if i.is_empty() {
            break;
        }
        let op = i.u8();
        let mut regs: Regs = [0; spevisor_abi::REGS];
        regs[0] = match op {
            0xff => i.u64(),
            _ => CALLS[usize::from(op) % CALLS.len()].id(),
        };
        for r in regs[1..].iter_mut() {
            *r = arg(&mut i, &h.layout);
        }
        if regs[0] == Call::VcpuRun.id() && op & 0x80 != 0 {
            // A completion that parses, most of the time.
            regs[3] = u64::from(i.u8() % 5);
        }
        let before = snapshot(&h);
        let regs_in = regs;
        dispatch(&mut regs, &mut h);
        let status = Status::from_reg(regs[0]).unwrap_or_else(|| panic!("undefined status {:#x}", regs[0]));
        if status != Status::Success {
            assert_eq!(regs[1..], [0; spevisor_abi::REGS - 1], "a refusal returned values");
            assert_eq!(snapshot(&h), before, "a refused call ({status:?}) changed the VMs");
            if regs_in[0] == Call::VmDonate.id() {
                refused_donation_maps_nothing(&h, regs_in);
            }
        }
        check_invariants(&h);
    }
    for handle in 1..=MAX_VMS as u64 {
        let _ = h.vms.destroy(&mut h.alloc, handle, |_| {});
    }
    assert_eq!(h.vms.count(), 0);
    assert!(h.alloc.pages.is_empty(), "{} page-table pages leaked", h.alloc.pages.len());
}
