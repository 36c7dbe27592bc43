//! VMs as the hypervisor keeps them: VMIDs, donated memory, stage-2 tables,
//! vcpus, and the checks every VM hypercall goes through.
//!
//! The host is trusted to run, not to be right: every argument is checked
//! here before anything changes, and every refusal has its own status.

use crate::mm::{Layout, Range};
use crate::vcpu::Vcpu;
use spevisor_abi::Status;
use spevisor_pgtable::{Attributes, PageAllocator, PageTable, Regime, PAGE_SIZE};

/// VMs that can exist at once.
pub const MAX_VMS: usize = 16;
/// Memory regions (donations) per VM.
pub const MAX_REGIONS: usize = 16;
/// vcpus per VM (one physical CPU runs them in turn).
pub const MAX_VCPUS: usize = spevisor_abi::guest::machine::MAX_VCPUS as usize;
/// The largest single donation: 1 GiB of pages.
pub const MAX_DONATION_PAGES: u64 = 1 << 18;
/// Guest IPA window reserved for emulated devices (PL011, GIC): never RAM.
pub const DEVICE_WINDOW: Range = Range::new(0x0800_0000, 0x1000_0000);

/// One donation: host pages mapped at an IPA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub host_pa: u64,
    pub ipa: u64,
    pub pages: u64,
}

impl Region {
    pub fn host_range(&self) -> Range {
        Range::new(self.host_pa, self.host_pa + self.pages * PAGE_SIZE)
    }
    pub fn ipa_range(&self) -> Range {
        Range::new(self.ipa, self.ipa + self.pages * PAGE_SIZE)
    }
}

/// A VM's address space: what the world switch needs besides the vcpu.
pub struct VmMem {
    pub vmid: u8,
    pub stage2: PageTable,
    pub regions: [Option<Region>; MAX_REGIONS],
    /// VTCR_EL2 and VTTBR_EL2 (root + VMID) for this VM, computed once.
    pub vtcr: u64,
    pub vttbr: u64,
}

/// A VM (its vcpus live beside it, in [`Vms`]: at over 1 KiB each, eight
/// of them inside `Vm` would make a `Vm` value too big to build on the
/// EL2 stack).
pub struct Vm {
    pub mem: VmMem,
    /// Set when the hypervisor stopped the VM after a fatal guest fault.
    pub stopped: bool,
}

type VcpuSlots = [Option<Vcpu>; MAX_VCPUS];

impl VmMem {
    /// Whether `ipa` is guest RAM.
    pub fn ram_contains(&self, ipa: u64) -> bool {
        self.regions.iter().flatten().any(|r| r.ipa_range().contains(ipa))
    }
}

/// All VMs, indexed by handle (slot + 1; 0 is never a handle).
pub struct Vms {
    slots: [Option<Vm>; MAX_VMS],
    /// The vcpus of the VM in the same slot.
    vcpus: [VcpuSlots; MAX_VMS],
    /// Bit n set = VMID n in use. VMID 0 is the host's (never given out).
    vmids: [u64; 4],
    ipa_bits: u32,
    /// The CPU's PA size (VTCR_EL2.PS).
    pa_bits: u32,
}

impl Vms {
    pub const fn new(ipa_bits: u32) -> Self {
        const NONE: Option<Vm> = None;
        const NO_VCPU: Option<Vcpu> = None;
        // A const, not a static: it only spells the array's initial value
        // for this const fn (a static cannot be read here); nothing is
        // copied at run time beyond building `Vms` itself.
        #[allow(clippy::large_const_arrays)]
        const NO_VCPUS: VcpuSlots = [NO_VCPU; MAX_VCPUS];
        Self { slots: [NONE; MAX_VMS], vcpus: [NO_VCPUS; MAX_VMS], vmids: [1, 0, 0, 0], ipa_bits, pa_bits: ipa_bits }
    }

    pub fn ipa_bits(&self) -> u32 {
        self.ipa_bits
    }

    /// Sets the CPU's PA size (at boot, before any VM exists); guests get
    /// the IPA size stage-2 can use with it (`stage2_ipa_bits`).
    pub fn set_pa_bits(&mut self, pa_bits: u32) {
        self.pa_bits = pa_bits;
        self.ipa_bits = spevisor_pgtable::regs::stage2_ipa_bits(pa_bits);
    }

    pub fn count(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    fn alloc_vmid(&mut self) -> Option<u8> {
        for id in 1..=255u8 {
            let (w, b) = (id as usize / 64, id % 64);
            if self.vmids[w] & (1 << b) == 0 {
                self.vmids[w] |= 1 << b;
                return Some(id);
            }
        }
        None
    }

    fn free_vmid(&mut self, id: u8) {
        self.vmids[id as usize / 64] &= !(1 << (id % 64));
    }

    /// Creates an empty VM; returns its handle.
    pub fn create(&mut self, alloc: &mut impl PageAllocator) -> Result<u64, Status> {
        let slot = self.slots.iter().position(|s| s.is_none()).ok_or(Status::TooManyVms)?;
        let vmid = self.alloc_vmid().ok_or(Status::TooManyVms)?;
        let stage2 = match PageTable::new(alloc, Regime::Stage2, self.ipa_bits) {
            Ok(t) => t,
            Err(_) => {
                self.free_vmid(vmid);
                return Err(Status::NoMemory);
            }
        };
        const NO_REGION: Option<Region> = None;
        self.slots[slot] = Some(Vm {
            mem: VmMem {
                vmid,
                vtcr: spevisor_pgtable::regs::vtcr_el2(self.ipa_bits, self.pa_bits),
                vttbr: spevisor_pgtable::regs::vttbr_el2(&stage2, vmid),
                stage2,
                regions: [NO_REGION; MAX_REGIONS],
            },
            stopped: false,
        });
        Ok(slot as u64 + 1)
    }

    pub fn get(&self, handle: u64) -> Result<&Vm, Status> {
        let slot = handle.checked_sub(1).ok_or(Status::NoSuchVm)? as usize;
        self.slots.get(slot).and_then(|s| s.as_ref()).ok_or(Status::NoSuchVm)
    }

    /// VM `handle` and its vcpu `idx`, for a run.
    pub fn vm_and_vcpu(&mut self, handle: u64, idx: u64) -> Result<(&mut Vm, &mut Vcpu), Status> {
        let slot = handle.checked_sub(1).ok_or(Status::NoSuchVm)? as usize;
        let vm = self.slots.get_mut(slot).and_then(|s| s.as_mut()).ok_or(Status::NoSuchVm)?;
        let cpu = usize::try_from(idx)
            .ok()
            .and_then(|i| self.vcpus[slot].get_mut(i))
            .and_then(|c| c.as_mut())
            .ok_or(Status::NoSuchVcpu)?;
        Ok((vm, cpu))
    }

    /// The vcpus of VM `handle`.
    pub fn vcpus(&self, handle: u64) -> Result<&VcpuSlots, Status> {
        self.get(handle)?;
        Ok(&self.vcpus[handle as usize - 1])
    }

    pub fn get_mut(&mut self, handle: u64) -> Result<&mut Vm, Status> {
        let slot = handle.checked_sub(1).ok_or(Status::NoSuchVm)? as usize;
        self.slots.get_mut(slot).and_then(|s| s.as_mut()).ok_or(Status::NoSuchVm)
    }

    /// Whether `[pa, pa+size)` holds a page some vcpu shares with EL2.
    pub fn host_range_shared(&self, pa: u64, size: u64) -> bool {
        self.slots
            .iter()
            .zip(&self.vcpus)
            .filter(|(vm, _)| vm.is_some())
            .flat_map(|(_, cpus)| cpus.iter().flatten())
            .any(|c| c.shared != 0 && Range::new(c.shared, c.shared + PAGE_SIZE).overlaps(pa, size))
    }

    /// Makes the host page at `pa` vcpu `idx` of VM `handle`'s shared page
    /// (`VCPU_SHARE`): page aligned, host memory, given to no VM and not
    /// already shared (`in_use`: other pages EL2 already uses, the SPE
    /// model). A vcpu shares one page for its life; a second call replaces
    /// nothing and is refused.
    pub fn share(&mut self, layout: &Layout, handle: u64, idx: u64, pa: u64, in_use: bool) -> Result<(), Status> {
        self.vcpus(handle)?.get(idx as usize).and_then(|c| c.as_ref()).ok_or(Status::NoSuchVcpu)?;
        if !pa.is_multiple_of(PAGE_SIZE) {
            return Err(Status::Unaligned);
        }
        if Range::new(layout.image.start, layout.pool.end).overlaps(pa, PAGE_SIZE) {
            return Err(Status::HypOwned);
        }
        if !layout.host.contains_range(pa, PAGE_SIZE) {
            return Err(Status::OutOfBounds);
        }
        if self.host_range_donated(pa, PAGE_SIZE) {
            return Err(Status::AlreadyDonated);
        }
        if in_use || self.host_range_shared(pa, PAGE_SIZE) {
            return Err(Status::InUse);
        }
        let (_, cpu) = self.vm_and_vcpu(handle, idx)?;
        if cpu.shared != 0 {
            return Err(Status::InUse);
        }
        cpu.shared = pa;
        Ok(())
    }

    /// Puts vcpu `idx` back to its reset state at `entry` with x0 = `x0`.
    pub fn reset_vcpu(&mut self, handle: u64, idx: u64, entry: u64, x0: u64) -> Result<(), Status> {
        let (vm, cpu) = self.vm_and_vcpu(handle, idx)?;
        if !vm.mem.ram_contains(entry) || !entry.is_multiple_of(4) {
            return Err(Status::BadEntry);
        }
        cpu.reset(entry, x0);
        Ok(())
    }

    /// Whether any VM holds a page of `[pa, pa+size)`.
    pub fn host_range_donated(&self, pa: u64, size: u64) -> bool {
        self.slots
            .iter()
            .flatten()
            .flat_map(|v| v.mem.regions.iter().flatten())
            .any(|r| r.host_range().overlaps(pa, size))
    }

    /// Checks a donation of `pages` host pages at `host_pa` to VM `handle` at
    /// `ipa`, without changing anything.
    pub fn check_donation(
        &self,
        layout: &Layout,
        handle: u64,
        host_pa: u64,
        ipa: u64,
        pages: u64,
    ) -> Result<(), Status> {
        let vm = self.get(handle)?;
        if pages == 0 || pages > MAX_DONATION_PAGES {
            return Err(Status::InvalidParameter);
        }
        if !host_pa.is_multiple_of(PAGE_SIZE) || !ipa.is_multiple_of(PAGE_SIZE) {
            return Err(Status::Unaligned);
        }
        let size = pages * PAGE_SIZE;
        let hyp_owned = Range::new(layout.image.start, layout.pool.end);
        if hyp_owned.overlaps(host_pa, size) {
            return Err(Status::HypOwned);
        }
        if !layout.host.contains_range(host_pa, size) {
            return Err(Status::OutOfBounds);
        }
        if self.host_range_donated(host_pa, size) {
            return Err(Status::AlreadyDonated);
        }
        if self.host_range_shared(host_pa, size) {
            return Err(Status::InUse);
        }
        let ipa_space = Range::new(0, 1 << self.ipa_bits);
        if !ipa_space.contains_range(ipa, size) || DEVICE_WINDOW.overlaps(ipa, size) {
            return Err(Status::IpaOverlap);
        }
        if vm.mem.regions.iter().flatten().any(|r| r.ipa_range().overlaps(ipa, size)) {
            return Err(Status::IpaOverlap);
        }
        if vm.mem.regions.iter().all(|r| r.is_some()) {
            return Err(Status::NoMemory);
        }
        Ok(())
    }

    /// Donates after [`Self::check_donation`]: maps the pages in the VM's stage-2.
    pub fn donate(
        &mut self,
        layout: &Layout,
        alloc: &mut impl PageAllocator,
        handle: u64,
        host_pa: u64,
        ipa: u64,
        pages: u64,
    ) -> Result<(), Status> {
        self.check_donation(layout, handle, host_pa, ipa, pages)?;
        let vm = self.get_mut(handle)?;
        vm.mem
            .stage2
            .map_range(alloc, ipa, host_pa, pages * PAGE_SIZE, Attributes::GUEST_RAM)
            .map_err(|_| Status::NoMemory)?;
        let slot = vm.mem.regions.iter_mut().find(|r| r.is_none()).ok_or(Status::NoMemory)?;
        *slot = Some(Region { host_pa, ipa, pages });
        Ok(())
    }

    /// VM_DONATE's checks and work, as the hypercall runs them: `reserved`
    /// (host memory EL2 already uses, the attached SPE model) is refused as
    /// already given away, then [`Self::donate`]. Pure, so the hypercall's
    /// argument checks are fuzzed on the development machine (fuzz/).
    // The call's four arguments plus the state they are checked against.
    #[allow(clippy::too_many_arguments)]
    pub fn donate_call(
        &mut self,
        layout: &Layout,
        alloc: &mut impl PageAllocator,
        reserved: Option<Range>,
        handle: u64,
        host_pa: u64,
        ipa: u64,
        pages: u64,
    ) -> Result<(), Status> {
        let size = pages.checked_mul(PAGE_SIZE).ok_or(Status::InvalidParameter)?;
        if reserved.is_some_and(|m| m.overlaps(host_pa, size)) {
            return Err(Status::AlreadyDonated);
        }
        self.donate(layout, alloc, handle, host_pa, ipa, pages)
    }

    /// VCPU_SHARE as the hypercall runs it: [`Self::share`], with a page
    /// of `reserved` (the attached SPE model) refused as in use.
    pub fn share_call(
        &mut self,
        layout: &Layout,
        reserved: Option<Range>,
        handle: u64,
        idx: u64,
        pa: u64,
    ) -> Result<(), Status> {
        let in_use = reserved.is_some_and(|m| m.overlaps(pa, PAGE_SIZE));
        self.share(layout, handle, idx, pa, in_use)
    }

    /// Removes VM `handle`: its donations end (the host owns the pages again),
    /// its stage-2 tables return to the pool and its VMID is free. `flush`
    /// runs with the VMID after the tables are emptied and before the VMID can
    /// be reused: it must invalidate every TLB entry tagged with it.
    pub fn destroy(
        &mut self,
        alloc: &mut impl PageAllocator,
        handle: u64,
        flush: impl FnOnce(u8),
    ) -> Result<(), Status> {
        let slot = handle.checked_sub(1).ok_or(Status::NoSuchVm)? as usize;
        let vm = self.slots.get_mut(slot).and_then(|s| s.take()).ok_or(Status::NoSuchVm)?;
        for cpu in &mut self.vcpus[slot] {
            *cpu = None;
        }
        let mut mem = vm.mem;
        for r in mem.regions.iter().flatten() {
            let _ = mem.stage2.unmap_range(alloc, r.ipa, r.pages * PAGE_SIZE);
        }
        mem.regions = [None; MAX_REGIONS];
        // No walker may still hold the old entries once the tables go back.
        flush(mem.vmid);
        mem.stage2.destroy(alloc);
        self.free_vmid(mem.vmid);
        Ok(())
    }

    /// Adds a vcpu that starts at `entry` with x0..x2 = `args`.
    pub fn create_vcpu(&mut self, handle: u64, entry: u64, args: [u64; 3]) -> Result<u64, Status> {
        let vm = self.get_mut(handle)?;
        if !vm.mem.ram_contains(entry) || !entry.is_multiple_of(4) {
            return Err(Status::BadEntry);
        }
        let slot = handle as usize - 1;
        let idx = self.vcpus[slot].iter().position(|v| v.is_none()).ok_or(Status::TooManyVcpus)?;
        self.vcpus[slot][idx] = Some(Vcpu::new(entry, args));
        Ok(idx as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::HYP_POOL_SIZE;
    use std::collections::BTreeMap;

    struct TestAlloc {
        pages: BTreeMap<u64, Box<[u64; 512]>>,
        next: u64,
    }
    impl PageAllocator for TestAlloc {
        fn alloc_page(&mut self) -> Option<u64> {
            self.next += PAGE_SIZE;
            self.pages.insert(self.next, Box::new([0; 512]));
            Some(self.next)
        }
        fn free_page(&mut self, pa: u64) {
            assert!(self.pages.remove(&pa).is_some());
        }
        fn table_ptr(&self, pa: u64) -> *mut u64 {
            self.pages[&pa].as_ptr() as *mut u64
        }
    }

    fn setup() -> (Layout, Vms, TestAlloc) {
        let ram = [Range::new(0x4000_0000, 0x8000_0000)];
        let layout = Layout::new(&ram, Range::new(0x4020_0000, 0x4030_0000), &[]).unwrap();
        assert_eq!(layout.host.start, 0x4040_0000 + HYP_POOL_SIZE);
        (layout, Vms::new(40), TestAlloc { pages: BTreeMap::new(), next: 0x1_0000_0000 })
    }

    const HOST: u64 = 0x5000_0000;
    const RAM_IPA: u64 = 0x4000_0000;

    #[test]
    fn every_refusal_has_its_status() {
        let (l, mut vms, mut a) = setup();
        let vm = vms.create(&mut a).unwrap();
        let chk = |vms: &Vms, h, pa, ipa, n| vms.check_donation(&l, h, pa, ipa, n);
        assert_eq!(chk(&vms, 99, HOST, RAM_IPA, 1), Err(Status::NoSuchVm));
        assert_eq!(chk(&vms, 0, HOST, RAM_IPA, 1), Err(Status::NoSuchVm));
        assert_eq!(chk(&vms, vm, HOST, RAM_IPA, 0), Err(Status::InvalidParameter));
        assert_eq!(chk(&vms, vm, HOST + 8, RAM_IPA, 1), Err(Status::Unaligned));
        assert_eq!(chk(&vms, vm, HOST, RAM_IPA + 8, 1), Err(Status::Unaligned));
        assert_eq!(chk(&vms, vm, l.image.start, RAM_IPA, 1), Err(Status::HypOwned));
        assert_eq!(chk(&vms, vm, l.pool.start + PAGE_SIZE, RAM_IPA, 1), Err(Status::HypOwned));
        assert_eq!(chk(&vms, vm, 0x4000_0000, RAM_IPA, 1), Err(Status::OutOfBounds), "below the image");
        assert_eq!(chk(&vms, vm, 0x8000_0000, RAM_IPA, 1), Err(Status::OutOfBounds), "past RAM");
        assert_eq!(chk(&vms, vm, 0x7fff_f000, RAM_IPA, 2), Err(Status::OutOfBounds), "straddles RAM end");
        assert_eq!(chk(&vms, vm, HOST, 1 << 40, 1), Err(Status::IpaOverlap), "outside IPA space");
        assert_eq!(chk(&vms, vm, HOST, 0x0900_0000, 1), Err(Status::IpaOverlap), "device window");
        assert_eq!(chk(&vms, vm, HOST, RAM_IPA, MAX_DONATION_PAGES + 1), Err(Status::InvalidParameter));
        vms.donate(&l, &mut a, vm, HOST, RAM_IPA, 16).unwrap();
        assert_eq!(chk(&vms, vm, HOST + 15 * PAGE_SIZE, 0x5000_0000, 1), Err(Status::AlreadyDonated));
        assert_eq!(chk(&vms, vm, HOST + 0x10_0000, RAM_IPA + 15 * PAGE_SIZE, 1), Err(Status::IpaOverlap));
        // Another VM may not take the same pages either.
        let vm2 = vms.create(&mut a).unwrap();
        assert_eq!(chk(&vms, vm2, HOST, RAM_IPA, 1), Err(Status::AlreadyDonated));
        assert!(chk(&vms, vm2, HOST + 0x10_0000, RAM_IPA, 1).is_ok());
    }

    #[test]
    fn donation_maps_stage2_and_destroy_gives_everything_back() {
        let (l, mut vms, mut a) = setup();
        let before = a.pages.len();
        let vm = vms.create(&mut a).unwrap();
        vms.donate(&l, &mut a, vm, HOST, RAM_IPA, 512 + 3).unwrap();
        let v = &vms.get(vm).unwrap().mem;
        assert_eq!(v.stage2.translate(&a, RAM_IPA + 0x1234).unwrap().pa, HOST + 0x1234);
        assert!(v.stage2.translate(&a, RAM_IPA + 515 * PAGE_SIZE).is_none());
        let vmid = v.vmid;
        assert_eq!(v.vttbr, v.stage2.root_pa() | (vmid as u64) << 48, "VTTBR carries the VMID");
        assert_eq!(v.vtcr, spevisor_pgtable::regs::vtcr_el2(40, 40));
        let mut flushed = vec![];
        vms.destroy(&mut a, vm, |id| flushed.push(id)).unwrap();
        assert_eq!(flushed, vec![vmid], "the VMID's TLB entries must be flushed once");
        assert_eq!(a.pages.len(), before, "stage-2 table pages leaked");
        assert_eq!(vms.count(), 0);
        // The pages can be donated again, and the VMID is reused.
        let vm = vms.create(&mut a).unwrap();
        assert_eq!(vms.get(vm).unwrap().mem.vmid, vmid);
        vms.donate(&l, &mut a, vm, HOST, RAM_IPA, 1).unwrap();
    }

    #[test]
    fn vmids_are_distinct_and_limits_hold() {
        let (_, mut vms, mut a) = setup();
        let handles: Vec<u64> = (0..MAX_VMS).map(|_| vms.create(&mut a).unwrap()).collect();
        let mut ids: Vec<u8> = handles.iter().map(|h| vms.get(*h).unwrap().mem.vmid).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), MAX_VMS);
        assert!(!ids.contains(&0), "VMID 0 is the host's");
        assert_eq!(vms.create(&mut a).err(), Some(Status::TooManyVms));
    }

    #[test]
    fn shared_pages_are_checked_and_never_donated() {
        let (l, mut vms, mut a) = setup();
        let vm = vms.create(&mut a).unwrap();
        vms.donate(&l, &mut a, vm, HOST, RAM_IPA, 4).unwrap();
        assert_eq!(vms.share(&l, vm, 0, HOST + 0x10_0000, false), Err(Status::NoSuchVcpu));
        vms.create_vcpu(vm, RAM_IPA, [0; 3]).unwrap();
        vms.create_vcpu(vm, RAM_IPA, [0; 3]).unwrap();
        let page = HOST + 0x10_0000;
        assert_eq!(vms.share(&l, vm, 0, page + 8, false), Err(Status::Unaligned));
        assert_eq!(vms.share(&l, vm, 0, l.pool.start, false), Err(Status::HypOwned));
        assert_eq!(vms.share(&l, vm, 0, 0x8000_0000, false), Err(Status::OutOfBounds));
        assert_eq!(vms.share(&l, vm, 0, HOST, false), Err(Status::AlreadyDonated));
        assert_eq!(vms.share(&l, vm, 0, page, true), Err(Status::InUse), "the SPE model's page");
        assert_eq!(vms.share(&l, 99, 0, page, false), Err(Status::NoSuchVm));
        vms.share(&l, vm, 0, page, false).unwrap();
        assert_eq!(vms.share(&l, vm, 0, page + PAGE_SIZE, false), Err(Status::InUse), "one page per vcpu");
        assert_eq!(vms.share(&l, vm, 1, page, false), Err(Status::InUse), "one vcpu per page");
        let vm2 = vms.create(&mut a).unwrap();
        assert_eq!(vms.check_donation(&l, vm2, page, RAM_IPA, 1), Err(Status::InUse));
        vms.destroy(&mut a, vm, |_| {}).unwrap();
        assert!(vms.check_donation(&l, vm2, page, RAM_IPA, 1).is_ok(), "free again with its VM gone");
    }

    #[test]
    fn a_reset_vcpu_starts_again_at_its_new_entry() {
        let (l, mut vms, mut a) = setup();
        let vm = vms.create(&mut a).unwrap();
        vms.donate(&l, &mut a, vm, HOST, RAM_IPA, 4).unwrap();
        vms.create_vcpu(vm, RAM_IPA, [1, 2, 3]).unwrap();
        vms.share(&l, vm, 0, HOST + 0x10_0000, false).unwrap();
        assert_eq!(vms.reset_vcpu(vm, 0, RAM_IPA + 4 * PAGE_SIZE, 7), Err(Status::BadEntry));
        assert_eq!(vms.reset_vcpu(vm, 1, RAM_IPA, 7), Err(Status::NoSuchVcpu));
        vms.reset_vcpu(vm, 0, RAM_IPA + 0x100, 7).unwrap();
        let c = vms.vcpus(vm).unwrap()[0].as_ref().unwrap();
        assert_eq!((c.pc, c.regs.x[0], c.regs.x[1], c.shared), (RAM_IPA + 0x100, 7, 0, HOST + 0x10_0000));
    }

    #[test]
    fn vcpus_need_an_entry_in_ram() {
        let (l, mut vms, mut a) = setup();
        let vm = vms.create(&mut a).unwrap();
        assert_eq!(vms.create_vcpu(vm, RAM_IPA, [0; 3]), Err(Status::BadEntry));
        vms.donate(&l, &mut a, vm, HOST, RAM_IPA, 4).unwrap();
        assert_eq!(vms.create_vcpu(vm, RAM_IPA + 2, [0; 3]), Err(Status::BadEntry));
        for i in 0..MAX_VCPUS as u64 {
            assert_eq!(vms.create_vcpu(vm, RAM_IPA, [0; 3]), Ok(i));
        }
        assert_eq!(vms.create_vcpu(vm, RAM_IPA, [0; 3]), Err(Status::TooManyVcpus));
        assert_eq!(vms.create_vcpu(7, RAM_IPA, [0; 3]), Err(Status::NoSuchVm));
    }
}
