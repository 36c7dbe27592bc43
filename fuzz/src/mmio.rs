//! `mmio`: how EL2 decodes a guest's trapped access (`handle_sync`) into
//! an MMIO exit for the host, and how it completes the access.
//!
//! The syndrome is mostly a data abort from the guest (the path a hostile
//! guest drives with any load or store outside its RAM), otherwise any
//! exception class. Properties, checked against an independent reading of
//! the ISS: the faulting IPA is HPFAR.FIPA plus FAR's page offset; a fault
//! in RAM or without a valid syndrome stops the VM and changes nothing; an
//! MMIO exit has the ISS's size (1/2/4/8), direction and, for a store, the
//! transfer register's value cut to the size (XZR: 0), and survives the
//! VCPU_RUN register encoding; completing a load writes the zero- or
//! sign-extended value to the transfer register only and steps the PC by
//! 4; a completion of the wrong kind is refused and changes nothing.

use crate::Input;
use spevisor_abi::{Completion, Exit, Status, StopReason};
use spevisor_armv8::esr::ExceptionClass;
use spevisor_hyp::idregs::IdRegs;
use spevisor_hyp::vcpu::{handle_sync, Action, Pending, Syndrome, Uncompleted, Vcpu};

/// ESR_EL2 fields (Arm ARM D24.2.40).
const EC_SHIFT: u64 = 26;
const ISV: u64 = 1 << 24;
const IL: u64 = 1 << 25;
/// HPFAR_EL2.FIPA, bits [43:4] = IPA[51:12].
const FIPA_SHIFT: u64 = 4;
const FIPA_BITS: u64 = 40;
const PAGE_SHIFT: u64 = 12;
const PAGE_MASK: u64 = 0xfff;
/// A64 instructions are 4 bytes.
const INSN: u64 = 4;
/// The transfer register number that means XZR/WZR.
const XZR: u8 = 31;
/// Guest RAM in this test: 16 MiB at 0x4000_0000 (IPA).
const RAM: std::ops::Range<u64> = 0x4000_0000..0x4100_0000;

/// The data-abort ISS as the Arm ARM lays it out (not armv8's decoder).
struct Iss {
    isv: bool,
    size: u8,
    sse: bool,
    srt: u8,
    sf: bool,
    wnr: bool,
}

fn iss(esr: u64) -> Iss {
    Iss {
        isv: esr & ISV != 0,
        size: 1 << (esr >> 22 & 3),
        sse: esr >> 21 & 1 != 0,
        srt: (esr >> 16 & 0x1f) as u8,
        sf: esr >> 15 & 1 != 0,
        wnr: esr >> 6 & 1 != 0,
    }
}

/// What a load of `size` bytes leaves in the register (Arm ARM LDR*/LDRS*).
fn loaded(v: u64, size: u8, sse: bool, sf: bool) -> u64 {
    let bits = u32::from(size) * 8;
    let x = if bits == 64 { v } else { v & ((1 << bits) - 1) };
    if !sse || bits == 64 {
        return x;
    }
    let signed = (i128::from(x) << (128 - bits)) >> (128 - bits);
    if sf {
        signed as u64
    } else {
        signed as u64 & u64::from(u32::MAX)
    }
}

fn vcpu(i: &mut Input) -> Vcpu {
    let mut v = Vcpu::new(0, [0; 3]);
    for r in v.regs.x.iter_mut() {
        *r = i.u64();
    }
    v.pc = i.u64();
    v
}

fn same_state(a: &Vcpu, b: &Vcpu) -> bool {
    a.regs.x == b.regs.x && a.pc == b.pc && a.pending == b.pending
}

pub fn run(data: &[u8]) {
    let mut i = Input::new(data);
    let selector = i.u8();
    let mut esr = u64::from(i.u32());
    // Three in four inputs are data aborts from the guest, with an ISV.
    if selector & 3 != 0 {
        esr = (esr & ((1 << EC_SHIFT) - 1)) | u64::from(ExceptionClass::DataAbortLower.raw()) << EC_SHIFT | IL;
        if selector & 4 != 0 {
            esr |= ISV;
        }
    }
    let (far, hpfar) = (i.u64(), i.u64());
    let ids_seed = i.u64();
    let ids = IdRegs::new(|crm, op2| ids_seed.rotate_left(u32::from(crm) * 8 + u32::from(op2)));
    let mut cpu = vcpu(&mut i);
    let before = cpu.clone();
    let s = Syndrome { esr, far, hpfar };
    let ipa = (hpfar >> FIPA_SHIFT & ((1 << FIPA_BITS) - 1)) << PAGE_SHIFT | (far & PAGE_MASK);
    assert_eq!(s.fault_ipa(), ipa);
    let action = handle_sync(&mut cpu, &ids, s, |a| RAM.contains(&a));
    if esr >> EC_SHIFT != u64::from(ExceptionClass::DataAbortLower.raw()) {
        return;
    }
    let d = iss(esr);
    if RAM.contains(&ipa) {
        assert_eq!(action, Action::Stop(StopReason::Unhandled), "a fault in RAM is not MMIO");
        assert!(same_state(&cpu, &before));
        return;
    }
    if !d.isv {
        // No syndrome: the host decides (a device there stops the VM,
        // nothing there gets the guest an external abort).
        let Action::ToHost(exit @ Exit::Abort { ipa: a, far: f, instr: false, write }) = action else {
            panic!("not an abort exit: {action:?}")
        };
        assert_eq!((a, f, write), (ipa, far, d.wnr));
        assert_eq!(Exit::from_regs(exit.to_regs()), Some(exit), "the exit does not survive VCPU_RUN's registers");
        assert_eq!(cpu.regs.x, before.regs.x, "an exit changed a register");
        assert_eq!(cpu.pc, before.pc);
        assert_eq!(cpu.complete(Completion::MmioWrite), Err(Uncompleted::Refused(Status::BadCompletion)));
        return;
    }
    let Action::ToHost(exit @ Exit::Mmio(m)) = action else { panic!("not an MMIO exit: {action:?}") };
    assert_eq!((m.ipa, m.size, m.write), (ipa, d.size, d.wnr));
    assert_eq!(Exit::from_regs(exit.to_regs()), Some(exit), "the exit does not survive VCPU_RUN's registers");
    assert_eq!(cpu.regs.x, before.regs.x, "an exit changed a register");
    assert_eq!(cpu.pc, before.pc, "the PC moves only when the access completes");
    if d.wnr {
        let reg = if d.srt == XZR { 0 } else { before.regs.x[usize::from(d.srt)] };
        assert_eq!(m.value, loaded(reg, d.size, false, true), "stored value");
    } else {
        assert_eq!(m.value, 0);
    }
    // The host answers; first with the wrong kind of completion.
    let wrong = if d.wnr { Completion::MmioRead(0) } else { Completion::MmioWrite };
    let pending = cpu.clone();
    assert_eq!(cpu.complete(wrong), Err(Uncompleted::Refused(Status::BadCompletion)));
    assert!(same_state(&cpu, &pending), "a refused completion changed the vcpu");
    assert_eq!(cpu.complete(Completion::Hvc([1, 2, 3, 4])), Err(Uncompleted::Refused(Status::BadCompletion)));
    let value = i.u64();
    let right = if d.wnr { Completion::MmioWrite } else { Completion::MmioRead(value) };
    assert_eq!(cpu.complete(right), Ok(()));
    assert_eq!(cpu.pending, Pending::None);
    assert_eq!(cpu.pc, before.pc.wrapping_add(INSN), "the PC steps over the access");
    let mut want = before.regs.x;
    if !d.wnr && d.srt != XZR {
        want[usize::from(d.srt)] = loaded(value, d.size, d.sse, d.sf);
    }
    assert_eq!(cpu.regs.x, want, "the load's register (and only it) changes");
    // A second completion finds nothing pending.
    assert_eq!(cpu.complete(right), Err(Uncompleted::Refused(Status::BadCompletion)));
}
