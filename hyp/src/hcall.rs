//! The host → hypervisor hypercall dispatcher.
//!
//! [`dispatch`] decodes `x0..x7` of a host `hvc`, checks every argument and
//! answers in the same registers. What needs the machine (system registers,
//! shutting down, VMs) is reached through [`Services`], so the decoding and
//! the refusals are tested on the development machine.

use spevisor_abi::{Call, Completion, Exit, InfoItem, Status, TestFault};

/// Register file of a hypercall: `x0..x7` in, `x0..x7` out.
pub type Regs = [u64; spevisor_abi::REGS];

/// What the dispatcher needs from the rest of the hypervisor.
pub trait Services {
    /// The value of an [`InfoItem`].
    fn info(&self, item: InfoItem) -> u64;
    /// The CurrentEL the hypervisor runs at (2).
    fn current_el(&self) -> u64;
    /// Ends the machine with `status` (semihosting under QEMU, PSCI SYSTEM_OFF on boards).
    fn shutdown(&mut self, status: u64) -> !;
    /// Runs a fault-injection test hook; `false` if this build has none.
    fn test_fault(&mut self, fault: TestFault) -> bool;
    /// A new, empty VM: its handle.
    fn vm_create(&mut self) -> Result<u64, Status>;
    /// Gives `pages` host pages at `host_pa` to `vm` at `ipa`.
    fn vm_donate(&mut self, vm: u64, host_pa: u64, ipa: u64, pages: u64) -> Result<(), Status>;
    /// A vcpu starting at `entry` with x0..x2 = `args`: its index.
    fn vcpu_create(&mut self, vm: u64, entry: u64, args: [u64; 3]) -> Result<u64, Status>;
    /// Completes the last exit and runs the vcpu to its next exit.
    fn vcpu_run(&mut self, vm: u64, vcpu: u64, completion: Completion) -> Result<Exit, Status>;
    /// Destroys `vm`; its pages return to the host.
    fn vm_destroy(&mut self, vm: u64) -> Result<(), Status>;
    /// The recorded world-switch steps.
    fn switch_trace(&self) -> &[u8];
    /// Uses the software SPE model at `pa` (`size` bytes of host memory).
    fn spe_model_attach(&mut self, pa: u64, size: u64) -> Result<(), Status>;
    /// Shares the host page at `pa` with vcpu `vcpu` of `vm` (its list registers).
    fn vcpu_share(&mut self, vm: u64, vcpu: u64, pa: u64) -> Result<(), Status>;
    /// Resets vcpu `vcpu` of `vm` to start at `entry` with x0 = `x0`.
    fn vcpu_reset(&mut self, vm: u64, vcpu: u64, entry: u64, x0: u64) -> Result<(), Status>;
}

#[inline(always)]
fn answer(regs: &mut Regs, status: Status, results: &[u64]) {
    regs[0] = status.to_reg();
    for (i, r) in regs[1..].iter_mut().enumerate() {
        *r = if i < results.len() { results[i] } else { 0 };
    }
}

/// Handles one host hypercall in place.
#[inline(always)]
pub fn dispatch(regs: &mut Regs, svc: &mut impl Services) {
    // The one hot call, before the general decoding: VCPU_RUN is a world
    // switch round trip, everything else is set-up and teardown.
    if regs[0] == Call::VcpuRun.id() {
        return vcpu_run(regs, svc);
    }
    let Some(call) = Call::from_id(regs[0]) else {
        return answer(regs, Status::NotSupported, &[]);
    };
    match call {
        Call::Version => answer(regs, Status::Success, &[spevisor_abi::ABI_VERSION]),
        Call::Info => match InfoItem::from_reg(regs[1]) {
            Some(item) => {
                let v = svc.info(item);
                answer(regs, Status::Success, &[v])
            }
            None => answer(regs, Status::InvalidParameter, &[]),
        },
        Call::Ping => {
            let r = [!regs[1], !regs[2], !regs[3], svc.current_el()];
            answer(regs, Status::Success, &r)
        }
        Call::Shutdown => svc.shutdown(regs[1]),
        Call::TestFault => match TestFault::from_reg(regs[1]) {
            Some(f) if svc.test_fault(f) => answer(regs, Status::Success, &[]),
            Some(_) => answer(regs, Status::NotSupported, &[]),
            None => answer(regs, Status::InvalidParameter, &[]),
        },
        Call::VmCreate => reply(regs, svc.vm_create().map(|h| [h])),
        Call::VmDonate => {
            let r = svc.vm_donate(regs[1], regs[2], regs[3], regs[4]);
            reply(regs, r.map(|()| []))
        }
        Call::VcpuCreate => {
            let r = svc.vcpu_create(regs[1], regs[2], [regs[3], regs[4], regs[5]]);
            reply(regs, r.map(|i| [i]))
        }
        Call::VcpuRun => vcpu_run(regs, svc),
        Call::VmDestroy => reply(regs, svc.vm_destroy(regs[1]).map(|()| [])),
        Call::SpeModelAttach => reply(regs, svc.spe_model_attach(regs[1], regs[2]).map(|()| [])),
        Call::VcpuShare => reply(regs, svc.vcpu_share(regs[1], regs[2], regs[3]).map(|()| [])),
        Call::VcpuReset => reply(regs, svc.vcpu_reset(regs[1], regs[2], regs[3], regs[4]).map(|()| [])),
        Call::SwitchTrace => {
            // x1 = chunk k: steps [32k, 32k+32) packed 8 per register in x2..x5.
            let steps = svc.switch_trace();
            let per = spevisor_abi::TRACE_STEPS_PER_REG;
            let start = (regs[1] as usize).saturating_mul(per * spevisor_abi::TRACE_REGS);
            let mut out = [steps.len() as u64, 0, 0, 0, 0];
            for (i, slot) in out[1..].iter_mut().enumerate() {
                let from = start.saturating_add(i * per).min(steps.len());
                let to = (from + per).min(steps.len());
                *slot = spevisor_abi::pack_steps(&steps[from..to]);
            }
            answer(regs, Status::Success, &out)
        }
    }
}

/// VCPU_RUN: x1 = VM, x2 = vcpu, x3..x7 = the completion; x1..x7 = the exit.
#[inline(always)]
fn vcpu_run(regs: &mut Regs, svc: &mut impl Services) {
    let Some(c) = Completion::from_regs([regs[3], regs[4], regs[5], regs[6], regs[7]]) else {
        return answer(regs, Status::InvalidParameter, &[]);
    };
    let r = svc.vcpu_run(regs[1], regs[2], c);
    reply(regs, r.map(|e| e.to_regs()))
}

#[inline(always)]
fn reply<const N: usize>(regs: &mut Regs, r: Result<[u64; N], Status>) {
    match r {
        Ok(v) => answer(regs, Status::Success, &v),
        Err(s) => answer(regs, s, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        hooks: bool,
        faults: Vec<TestFault>,
        runs: Vec<(u64, u64, Completion)>,
        trace: Vec<u8>,
    }

    impl Services for Fake {
        fn info(&self, item: InfoItem) -> u64 {
            item as u64 + 100
        }
        fn current_el(&self) -> u64 {
            2
        }
        fn shutdown(&mut self, status: u64) -> ! {
            panic!("shutdown {status}")
        }
        fn test_fault(&mut self, fault: TestFault) -> bool {
            self.faults.push(fault);
            self.hooks
        }
        fn vm_create(&mut self) -> Result<u64, Status> {
            Ok(3)
        }
        fn vm_donate(&mut self, vm: u64, _: u64, _: u64, _: u64) -> Result<(), Status> {
            if vm == 3 {
                Ok(())
            } else {
                Err(Status::NoSuchVm)
            }
        }
        fn vcpu_create(&mut self, _: u64, _: u64, args: [u64; 3]) -> Result<u64, Status> {
            Ok(args[2])
        }
        fn vcpu_run(&mut self, vm: u64, vcpu: u64, c: Completion) -> Result<Exit, Status> {
            self.runs.push((vm, vcpu, c));
            Ok(Exit::Wfx)
        }
        fn vm_destroy(&mut self, _: u64) -> Result<(), Status> {
            Err(Status::NoSuchVm)
        }
        fn switch_trace(&self) -> &[u8] {
            &self.trace
        }
        fn spe_model_attach(&mut self, pa: u64, _: u64) -> Result<(), Status> {
            if pa == 0 {
                Err(Status::Unaligned)
            } else {
                Ok(())
            }
        }
        fn vcpu_share(&mut self, vm: u64, vcpu: u64, pa: u64) -> Result<(), Status> {
            self.runs.push((vm, vcpu, Completion::MmioRead(pa)));
            Err(Status::InUse)
        }
        fn vcpu_reset(&mut self, vm: u64, vcpu: u64, entry: u64, x0: u64) -> Result<(), Status> {
            self.runs.push((vm, vcpu, Completion::Hvc([entry, x0, 0, 0])));
            Ok(())
        }
    }

    fn fake(hooks: bool) -> Fake {
        Fake { hooks, faults: vec![], runs: vec![], trace: (1..=40).collect() }
    }

    fn call(regs: Regs, hooks: bool) -> Regs {
        let mut r = regs;
        dispatch(&mut r, &mut fake(hooks));
        r
    }

    #[test]
    fn vm_calls_decode_their_registers() {
        assert_eq!(call([Call::VmCreate.id(), 0, 0, 0, 0, 0, 0, 0], false)[..2], [0, 3]);
        assert_eq!(call([Call::VmDonate.id(), 4, 0, 0, 0, 0, 0, 0], false)[0], Status::NoSuchVm.to_reg());
        assert_eq!(call([Call::VcpuCreate.id(), 3, 0x4000_0000, 0, 0, 9, 0, 0], false)[..2], [0, 9]);
        let mut f = fake(false);
        let mut r = [Call::VcpuRun.id(), 3, 0, 2, 7, 0, 0, 0];
        dispatch(&mut r, &mut f);
        assert_eq!(f.runs, vec![(3, 0, Completion::MmioRead(7))]);
        assert_eq!(Exit::from_regs([r[1], r[2], r[3], r[4], r[5], r[6], r[7]]), Some(Exit::Wfx));
        let r = call([Call::VcpuRun.id(), 3, 0, 99, 0, 0, 0, 0], false);
        assert_eq!(r[0], Status::InvalidParameter.to_reg(), "unknown completion kind");
        let mut f = fake(false);
        let mut r = [Call::VcpuShare.id(), 3, 1, 0x5000_0000, 0, 0, 0, 0];
        dispatch(&mut r, &mut f);
        assert_eq!(r[0], Status::InUse.to_reg());
        let mut r = [Call::VcpuReset.id(), 3, 2, 0x4000_1000, 42, 0, 0, 0];
        dispatch(&mut r, &mut f);
        assert_eq!(r[0], 0);
        assert_eq!(
            f.runs,
            vec![(3, 1, Completion::MmioRead(0x5000_0000)), (3, 2, Completion::Hvc([0x4000_1000, 42, 0, 0]))]
        );
    }

    #[test]
    fn switch_trace_is_chunked() {
        let r = call([Call::SwitchTrace.id(), 0, 0, 0, 0, 0, 0, 0], false);
        assert_eq!(r[1], 40);
        assert_eq!(r[2], spevisor_abi::pack_steps(&[1, 2, 3, 4, 5, 6, 7, 8]));
        let r = call([Call::SwitchTrace.id(), 1, 0, 0, 0, 0, 0, 0], false);
        assert_eq!(r[2], spevisor_abi::pack_steps(&[33, 34, 35, 36, 37, 38, 39, 40]));
        assert_eq!(r[3], 0);
        let r = call([Call::SwitchTrace.id(), u64::MAX, 0, 0, 0, 0, 0, 0], false);
        assert_eq!(r[2], 0, "a chunk past the end is empty, not a panic");
    }

    #[test]
    fn version_and_ping() {
        let r = call([Call::Version.id(), 0, 0, 0, 0, 0, 0, 0], false);
        assert_eq!((r[0], r[1]), (0, spevisor_abi::ABI_VERSION));
        let r = call([Call::Ping.id(), 1, 2, 3, 9, 9, 9, 9], false);
        assert_eq!(r, [0, !1, !2, !3, 2, 0, 0, 0]);
    }

    #[test]
    fn info_checks_its_item() {
        let r = call([Call::Info.id(), InfoItem::PaBits as u64, 0, 0, 0, 0, 0, 0], false);
        assert_eq!((r[0], r[1]), (0, InfoItem::PaBits as u64 + 100));
        let r = call([Call::Info.id(), 999, 0, 0, 0, 0, 0, 0], false);
        assert_eq!(r[0], Status::InvalidParameter.to_reg());
    }

    #[test]
    fn unknown_ids_are_not_supported_and_clear_results() {
        for id in [0, 0xC600_0004, 0xC600_00FF, 0x8400_0000, u64::MAX] {
            let r = call([id, 5, 6, 7, 8, 9, 10, 11], false);
            assert_eq!(r, [Status::NotSupported.to_reg(), 0, 0, 0, 0, 0, 0, 0], "id {id:#x}");
        }
    }

    #[test]
    fn test_hooks_only_in_test_builds() {
        let r = call([Call::TestFault.id(), TestFault::Undefined as u64, 0, 0, 0, 0, 0, 0], false);
        assert_eq!(r[0], Status::NotSupported.to_reg());
        let r = call([Call::TestFault.id(), TestFault::Undefined as u64, 0, 0, 0, 0, 0, 0], true);
        assert_eq!(r[0], Status::Success.to_reg());
        let r = call([Call::TestFault.id(), 77, 0, 0, 0, 0, 0, 0], true);
        assert_eq!(r[0], Status::InvalidParameter.to_reg());
    }
}
