//! A hostile host (`spevisor.scenario=refusals`): every hypercall of the
//! hypervisor's ABI with arguments EL2 must refuse, each refusal printed as
//! `refusal NAME: STATUS`, then the proof that nothing was lost or written:
//! EL2's and the host's free pages back where they were, and the host pages
//! the refused calls named still holding the pattern the host put there
//! (`refusals: ...` line). The QEMU test `hypercall_abuse_is_refused_by_name`
//! holds each expected status (`xtask/src/tests.rs`, `REFUSALS`).

use crate::hyp;
use crate::scenarios::{self, mode};
use crate::vmm::{alloc_host_pages, free_host_pages, host_free_pages};
use spevisor_abi::{Call, InfoItem};
use spevisor_pgtable::PAGE_SIZE;

/// Where the scenario donates: the guest machine's RAM base.
const IPA: u64 = spevisor_abi::guest::machine::RAM_IPA;
/// Far beyond any IPA space the hypervisor gives a VM (at most 48 bits).
const IPA_BEYOND: u64 = 1 << 52;
/// A physical address beyond any RAM QEMU's virt machine has.
const PA_OUTSIDE_RAM: u64 = 0x10_0000_0000;
/// Host pages the scenario owns for the abuse: [0] and [1] donated, [2]
/// shared with a vcpu, [3] never given (the canary), [4] the second
/// vcpu's page.
const PAGES: usize = 5;
/// What the host writes into every page it names, and checks afterwards.
const CANARY: u64 = 0x5a5a_c0de_5a5a_c0de;
/// One more vcpu than a VM may have.
const TOO_MANY_VCPUS: u64 = spevisor_abi::guest::machine::MAX_VCPUS as u64 + 1;
/// VM_CREATEs tried before giving up on finding the limit.
const VM_CREATE_LIMIT: usize = 64;

fn fill(pa: u64) {
    // SAFETY: a page this scenario allocated, identity mapped RW in the
    // host; nobody else writes it while the scenario owns it.
    let page = unsafe { core::slice::from_raw_parts_mut(pa as *mut u64, (PAGE_SIZE / 8) as usize) };
    page.fill(CANARY);
}

fn intact(pa: u64) -> bool {
    // SAFETY: as in `fill`, read only.
    let page = unsafe { core::slice::from_raw_parts(pa as *const u64, (PAGE_SIZE / 8) as usize) };
    page.iter().all(|w| *w == CANARY)
}

/// Makes the call and prints its refusal, or `ACCEPTED` (a failure the
/// test sees). Returns whether it was refused.
fn refuse(what: &str, call: Call, args: [u64; 7]) -> bool {
    match hyp::call(call, args) {
        Ok(_) => {
            crate::hprintln!("refusal {what}: ACCEPTED");
            false
        }
        Err(e) => {
            crate::hprintln!("refusal {what}: {e}");
            true
        }
    }
}

fn ok(what: &str, call: Call, args: [u64; 7]) -> Option<[u64; 7]> {
    hyp::call(call, args).map_err(|e| log::error!("refusals: setup step {what} failed: {e}")).ok()
}

/// Runs every abuse; see the module documentation.
pub fn run() {
    let hyp_free = || hyp::info(InfoItem::HypFreePages).unwrap_or(0);
    let before = (hyp_free(), host_free_pages());
    let Some(pages) = alloc_host_pages(PAGES) else {
        return log::error!("refusals: no host pages");
    };
    let page = |i: usize| pages + i as u64 * PAGE_SIZE;
    for i in 0..PAGES {
        fill(page(i));
    }
    let image = scenarios::GUEST_IMAGE.as_ptr() as u64 & !(PAGE_SIZE - 1);

    // Calls on nothing.
    refuse("run-no-vm", Call::VcpuRun, [42, 0, 0, 0, 0, 0, 0]);
    refuse("destroy-no-vm", Call::VmDestroy, [0, 0, 0, 0, 0, 0, 0]);
    refuse("donate-no-vm", Call::VmDonate, [u64::MAX, page(3), IPA, 1, 0, 0, 0]);
    refuse("share-no-vm", Call::VcpuShare, [7, 0, page(3), 0, 0, 0, 0]);
    refuse("reset-no-vm", Call::VcpuReset, [7, 0, IPA, 0, 0, 0, 0]);

    let Some([vm, ..]) = ok("create", Call::VmCreate, [0; 7]) else { return };
    // Donations: where the pages are, how they are aligned, how many.
    refuse("donate-hyp-image", Call::VmDonate, [vm, image, IPA, 1, 0, 0, 0]);
    refuse("donate-unaligned", Call::VmDonate, [vm, page(3) + 8, IPA, 1, 0, 0, 0]);
    refuse("donate-unaligned-ipa", Call::VmDonate, [vm, page(3), IPA + 8, 1, 0, 0, 0]);
    refuse("donate-outside-ram", Call::VmDonate, [vm, PA_OUTSIDE_RAM, IPA, 1, 0, 0, 0]);
    refuse("donate-zero-pages", Call::VmDonate, [vm, page(3), IPA, 0, 0, 0, 0]);
    refuse("donate-huge-count", Call::VmDonate, [vm, page(3), IPA, u64::MAX, 0, 0, 0]);
    refuse("donate-wrapping-count", Call::VmDonate, [vm, page(3), IPA, u64::MAX / PAGE_SIZE + 2, 0, 0, 0]);
    refuse("donate-ipa-beyond-space", Call::VmDonate, [vm, page(3), IPA_BEYOND, 1, 0, 0, 0]);
    // Two pages given; then the same again, and other pages at their IPA.
    let Some(_) = ok("donate", Call::VmDonate, [vm, page(0), IPA, 2, 0, 0, 0]) else { return };
    refuse("donate-twice", Call::VmDonate, [vm, page(0), IPA + 4 * PAGE_SIZE, 1, 0, 0, 0]);
    refuse("donate-overlapping-pages", Call::VmDonate, [vm, page(1), IPA + 8 * PAGE_SIZE, 2, 0, 0, 0]);
    refuse("donate-ipa-overlap", Call::VmDonate, [vm, page(3), IPA + PAGE_SIZE, 1, 0, 0, 0]);
    let Some([vm2, ..]) = ok("create-second", Call::VmCreate, [0; 7]) else { return };
    refuse("donate-to-another-vm", Call::VmDonate, [vm2, page(1), IPA, 1, 0, 0, 0]);

    // Vcpus.
    refuse("vcpu-entry-outside-ram", Call::VcpuCreate, [vm, IPA + 2 * PAGE_SIZE, 0, 0, 0, 0, 0]);
    refuse("vcpu-entry-unaligned", Call::VcpuCreate, [vm, IPA + 2, 0, 0, 0, 0, 0]);
    let mut vcpus = 0;
    let mut too_many = false;
    for _ in 0..TOO_MANY_VCPUS {
        match hyp::call(Call::VcpuCreate, [vm, IPA, 0, 0, 0, 0, 0]) {
            Ok(_) => vcpus += 1,
            Err(e) => {
                crate::hprintln!("refusal too-many-vcpus: {e} (after {vcpus})");
                too_many = true;
                break;
            }
        }
    }
    if !too_many {
        crate::hprintln!("refusal too-many-vcpus: ACCEPTED");
    }
    refuse("run-no-vcpu", Call::VcpuRun, [vm, 9, 0, 0, 0, 0, 0]);
    refuse("bad-completion", Call::VcpuRun, [vm, 0, 77, 0, 0, 0, 0]);
    refuse("reset-no-vcpu", Call::VcpuReset, [vm, 9, IPA, 0, 0, 0, 0]);
    refuse("reset-entry-outside-ram", Call::VcpuReset, [vm, 1, IPA_BEYOND, 0, 0, 0, 0]);

    // Shared pages: never a donated page, never twice, never donated after.
    refuse("share-no-vcpu", Call::VcpuShare, [vm, 9, page(2), 0, 0, 0, 0]);
    refuse("share-unaligned", Call::VcpuShare, [vm, 0, page(2) + 16, 0, 0, 0, 0]);
    refuse("share-hyp-image", Call::VcpuShare, [vm, 0, image, 0, 0, 0, 0]);
    refuse("share-donated-page", Call::VcpuShare, [vm, 0, page(0), 0, 0, 0, 0]);
    let Some(_) = ok("share", Call::VcpuShare, [vm, 0, page(2), 0, 0, 0, 0]) else { return };
    refuse("share-twice", Call::VcpuShare, [vm, 1, page(2), 0, 0, 0, 0]);
    refuse("donate-shared-page", Call::VmDonate, [vm2, page(2), IPA, 1, 0, 0, 0]);
    // The SPE model's area (the size EL2 wants, else it is refused for
    // that alone): over a shared page, a donated one, EL2's own.
    let model = core::mem::size_of::<spevisor_spe::model::Units>() as u64;
    refuse("spe-attach-wrong-size", Call::SpeModelAttach, [page(3), model + 8, 0, 0, 0, 0, 0]);
    refuse("spe-attach-unaligned", Call::SpeModelAttach, [page(3) + 64, model, 0, 0, 0, 0, 0]);
    refuse("spe-attach-shared-page", Call::SpeModelAttach, [page(2), model, 0, 0, 0, 0, 0]);
    refuse("spe-attach-donated-page", Call::SpeModelAttach, [page(0), model, 0, 0, 0, 0, 0]);
    refuse("spe-attach-hyp-image", Call::SpeModelAttach, [image, model, 0, 0, 0, 0, 0]);
    refuse("spe-attach-outside-ram", Call::SpeModelAttach, [PA_OUTSIDE_RAM, model, 0, 0, 0, 0, 0]);

    // Every VM slot taken, then one more.
    let mut extra = [0u64; VM_CREATE_LIMIT];
    let mut n = 0;
    let mut full = false;
    while n < VM_CREATE_LIMIT {
        match hyp::call(Call::VmCreate, [0; 7]) {
            Ok(r) => {
                extra[n] = r[0];
                n += 1;
            }
            Err(e) => {
                crate::hprintln!("refusal too-many-vms: {e} (after {} more)", n);
                full = true;
                break;
            }
        }
    }
    if !full {
        crate::hprintln!("refusal too-many-vms: ACCEPTED");
    }
    for h in &extra[..n] {
        let _ = hyp::call(Call::VmDestroy, [*h, 0, 0, 0, 0, 0, 0]);
    }

    // Destroyed: every handle is dead, every page is the host's again.
    for h in [vm, vm2] {
        let _ = ok("destroy", Call::VmDestroy, [h, 0, 0, 0, 0, 0, 0]);
    }
    refuse("run-destroyed-vm", Call::VcpuRun, [vm, 0, 0, 0, 0, 0, 0]);
    refuse("destroy-twice", Call::VmDestroy, [vm, 0, 0, 0, 0, 0, 0]);
    refuse("share-destroyed-vm", Call::VcpuShare, [vm, 0, page(4), 0, 0, 0, 0]);

    // A VM the hypervisor stopped runs no more.
    if let Some(mut bad) = scenarios::make("stopped", [mode::ABORT_ON_VECTOR, 0, 0]) {
        let ending = bad.run();
        crate::hprintln!("refusal-setup: the stopped VM ended {}", scenarios::ending_name(Some(ending)));
        refuse("run-stopped-vm", Call::VcpuRun, [bad.handle, 0, 0, 0, 0, 0, 0]);
        if let Err(e) = bad.destroy() {
            log::error!("refusals: destroying the stopped VM: {e}");
        }
    }

    // Unknown calls and test hooks in a normal build.
    for (what, id) in [("unknown-call", 0xC600_00EE_u64), ("unknown-owner", 0xC500_0001), ("garbage-id", u64::MAX)] {
        match hyp::call_raw(id, [u64::MAX; 7]) {
            Ok(_) => crate::hprintln!("refusal {what}: ACCEPTED"),
            Err(e) => crate::hprintln!("refusal {what}: {e}"),
        }
    }

    // Nothing lost, nothing written: the pages the calls named (the donated
    // and shared ones were the VMs' or EL2's for a while; EL2 writes a
    // shared page only inside VCPU_RUN, which never ran) hold the pattern.
    let untouched = (0..PAGES).filter(|&i| intact(page(i))).count();
    // SAFETY: `alloc_host_pages(PAGES)` gave them; both VMs are destroyed,
    // so EL2 has forgotten the donated and shared ones.
    unsafe { free_host_pages(pages, PAGES) };
    let after = (hyp_free(), host_free_pages());
    crate::hprintln!(
        "refusals: pages_intact={untouched}/{PAGES} hyp_free_before={} hyp_free_after={} host_free_before={} host_free_after={} vcpus_made={vcpus} extra_vms={n}",
        before.0,
        after.0,
        before.1,
        after.1
    );
}
