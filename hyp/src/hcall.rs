//! The host → hypervisor hypercall dispatcher.
//!
//! [`dispatch`] decodes `x0..x7` of a host `hvc`, checks every argument and
//! answers in the same registers. What needs the machine (system registers,
//! shutting down, VMs) is reached through [`Services`], so the decoding and
//! the refusals are tested on the development machine.

use spevisor_abi::{Call, InfoItem, Status, TestFault};

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
}

fn answer(regs: &mut Regs, status: Status, results: &[u64]) {
    regs[0] = status.to_reg();
    for (i, r) in regs[1..].iter_mut().enumerate() {
        *r = results.get(i).copied().unwrap_or(0);
    }
}

/// Handles one host hypercall in place.
pub fn dispatch(regs: &mut Regs, svc: &mut impl Services) {
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
        Call::VmCreate
        | Call::VmDonate
        | Call::VcpuCreate
        | Call::VcpuRun
        | Call::VmDestroy
        | Call::SwitchTrace => answer(regs, Status::NotSupported, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        hooks: bool,
        faults: Vec<TestFault>,
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
    }

    fn call(regs: Regs, hooks: bool) -> Regs {
        let mut r = regs;
        dispatch(
            &mut r,
            &mut Fake {
                hooks,
                faults: vec![],
            },
        );
        r
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
        let r = call(
            [Call::Info.id(), InfoItem::PaBits as u64, 0, 0, 0, 0, 0, 0],
            false,
        );
        assert_eq!((r[0], r[1]), (0, InfoItem::PaBits as u64 + 100));
        let r = call([Call::Info.id(), 999, 0, 0, 0, 0, 0, 0], false);
        assert_eq!(r[0], Status::InvalidParameter.to_reg());
    }

    #[test]
    fn unknown_ids_are_not_supported_and_clear_results() {
        for id in [0, 0xC600_0004, 0xC600_00FF, 0x8400_0000, u64::MAX] {
            let r = call([id, 5, 6, 7, 8, 9, 10, 11], false);
            assert_eq!(
                r,
                [Status::NotSupported.to_reg(), 0, 0, 0, 0, 0, 0, 0],
                "id {id:#x}"
            );
        }
    }

    #[test]
    fn test_hooks_only_in_test_builds() {
        let r = call(
            [
                Call::TestFault.id(),
                TestFault::Undefined as u64,
                0,
                0,
                0,
                0,
                0,
                0,
            ],
            false,
        );
        assert_eq!(r[0], Status::NotSupported.to_reg());
        let r = call(
            [
                Call::TestFault.id(),
                TestFault::Undefined as u64,
                0,
                0,
                0,
                0,
                0,
                0,
            ],
            true,
        );
        assert_eq!(r[0], Status::Success.to_reg());
        let r = call([Call::TestFault.id(), 77, 0, 0, 0, 0, 0, 0], true);
        assert_eq!(r[0], Status::InvalidParameter.to_reg());
    }
}
