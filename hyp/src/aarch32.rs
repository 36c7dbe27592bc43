//! Traps from a guest's AArch32 EL0 (A32 and T32), where the CPU has it.
//!
//! A guest's EL1 is AArch64, but it may run AArch32 tasks at EL0. Their
//! coprocessor accesses reach EL2 through the same trap bits as the
//! AArch64 registers they alias (Arm ARM D19.2; KVM's `handle_cp14_*` /
//! `handle_cp15_*` follow the same map):
//!
//! | EC | instruction | reaches EL2 when | EL2 does |
//! |---|---|---|---|
//! | 0x03 | MRC/MCR p15 c9 c12..c14, c14 c8..c15 (PMU) | MDCR_EL2.TPM (until the first use), TPMCR (PMCR), with PMUSERENR_EL0.EN | as the AArch64 PMU register: first use loads the guest's PMU, PMCR emulated, else UNDEF |
//! | 0x03 | MRC/MCR p15 c14 c2 (CNTP_TVAL, CNTP_CTL) | CNTHCTL_EL2.EL1PCEN = 0, with CNTKCTL_EL1.EL0PTEN | to the host's physical timer model (32 bits) |
//! | 0x04 | MRRC/MCRR p15 2 c14 (CNTP_CVAL) | as above | to the host's physical timer model (Rt = bits 31:0, Rt2 = 63:32) |
//! | 0x05 | MRC/MCR p14 (DBGDIDR, DBGDSCRint, DBGDTR, DBGDRAR, DBGDSAR) | MDCR_EL2.TDA / TDRA, with MDSCR_EL1.TDCC = 0 | DBGDIDR from ID_AA64DFR0; the rest read as zero, DBGDTRTXint writes ignored (no external debugger); else UNDEF |
//! | 0x0c | MRRC p14 (DBGDRAR, DBGDSAR 64-bit) | MDCR_EL2.TDRA | read as zero |
//! | 0x06 | LDC/STC p14 (DBGDTR) | MDCR_EL2.TDA | UNDEF (as KVM) |
//! | 0x08 | VMRS (ID group) | never from EL0 (UNDEF at EL1) | UNDEF |
//! | 0x12, 0x13 | HVC, SMC | never from EL0 (UNDEF at EL1) | UNDEF |
//! | 0x01 | WFI/WFE | HCR_EL2.TWI, with SCTLR_EL1.nTWI | the AArch64 path, after the condition |
//!
//! Every one of them first passes its condition ([`trap_condition_passed`]:
//! the Arm ARM lets a CPU trap a conditional instruction before checking
//! it; a failed one is skipped without effect). Every completed or
//! skipped instruction moves the PC by its length (ESR.IL: 2 for a 16-bit
//! T32 instruction) and advances PSTATE.IT inside an IT block
//! ([`spevisor_armv8::pstate::aarch32::step`]). No well-formed AArch32
//! instruction stops the VM.

use crate::idregs::IdRegs;
use crate::pmu::PmuAccess;
use crate::vcpu::{inject_undef, Action, Pending, Vcpu};
use spevisor_abi::{guest_sysreg, Exit, StopReason};
use spevisor_armv8::esr::{Direction, Esr, ExceptionClass, SysRegIss};
use spevisor_armv8::pstate::aarch32::{step, trap_condition_passed, NZCV};
use spevisor_armv8::pstate::NRW;
use spevisor_armv8::sysreg::SysRegEnc;

/// R15 as an MRC's Rt: the APSR flags (only DBGDSCRint allows it);
/// anywhere else, and as MCR's or MCRR's, UNPREDICTABLE: UNDEF here.
const R_PC: u8 = 15;
/// The AArch64 register space of the PMU and timer aliases (op0 = 3).
const OP0_SYSREG: u8 = 3;
/// CNTP_* (op1 3, CRn 14, CRm 2) and their AArch32 views (CRn 14, CRm 2
/// with opc2 0 = TVAL, 1 = CTL; MCRR/MRRC opc1 2, CRm 14 = CVAL).
const CNTP_OP1: u8 = 3;
const CNTP_CRN: u8 = 14;
const CNTP_CRM: u8 = 2;
const CNTP_CVAL_OP2: u8 = 2;
const CNTP_CVAL_OPC1_64: u8 = 2;
const CP15_TIMER_CRM_64: u8 = 14;
/// PMU register CRn values (c9 and c14) and the c9 CRm range.
const PMU_CRN: u8 = 9;
const PMU_EV_CRN: u8 = 14;
/// PMINTENSET/PMINTENCLR: the two PMU registers with op1 0 in AArch64
/// (CRn 9, CRm 14, op2 1 and 2).
const PMU_EL1_CRM: u8 = 14;
/// ID_AA64DFR0_EL1 in the ID table (CRm 5, op2 0) and its fields.
const DFR0: (u8, u8) = (5, 0);
const DFR0_BRPS_SHIFT: u64 = 12;
const DFR0_WRPS_SHIFT: u64 = 20;
const DFR0_CTX_CMPS_SHIFT: u64 = 28;
const FIELD4: u64 = 0xf;
/// DBGDIDR: WRPs\[31:28\], BRPs\[27:24\], CTX_CMPs\[23:20\], Version\[19:16\]
/// (0b0110: Armv8 debug), bit 15 RES1.
const DBGDIDR_WRPS_SHIFT: u64 = 28;
const DBGDIDR_BRPS_SHIFT: u64 = 24;
const DBGDIDR_CTX_CMPS_SHIFT: u64 = 20;
const DBGDIDR_VERSION_V8: u64 = 0b0110 << 16;
const DBGDIDR_RES1: u64 = 1 << 15;

/// The cp14 registers an AArch32 EL0 may reach (opc1 0): (CRn, CRm, opc2).
const DBGDIDR: (u8, u8, u8) = (0, 0, 0);
const DBGDSCRINT: (u8, u8, u8) = (0, 1, 0);
const DBGDTR: (u8, u8, u8) = (0, 5, 0);
const DBGDRAR: (u8, u8, u8) = (1, 0, 0);
const DBGDSAR: (u8, u8, u8) = (2, 0, 0);
/// The MRRC views of DBGDRAR and DBGDSAR (opc1 0, CRm 1 and 2).
const DBGDRAR_64_CRM: u8 = 1;
const DBGDSAR_64_CRM: u8 = 2;

/// The exception classes `handle_sync` does not match itself: an AArch32
/// trap ([`trap`]), or a class no guest can cause, which stops the VM
/// ([`StopReason::Unhandled`]).
#[cold]
#[inline(never)]
pub fn trap_or_stop(vcpu: &mut Vcpu, ids: &IdRegs, esr: Esr) -> Action {
    match esr.ec() {
        ExceptionClass::Cp15Mcr
        | ExceptionClass::Cp15Mcrr
        | ExceptionClass::Cp14Mcr
        | ExceptionClass::Cp14Ldc
        | ExceptionClass::Cp10Id
        | ExceptionClass::Cp14Mrrc
        | ExceptionClass::Hvc32
        | ExceptionClass::Smc32 => trap(vcpu, ids, esr),
        _ => Action::Stop(StopReason::Unhandled),
    }
}

/// An AArch32 coprocessor, LDC/STC, VMRS, HVC or SMC trap (EC 0x03..=0x0c,
/// 0x12, 0x13).
pub fn trap(vcpu: &mut Vcpu, ids: &IdRegs, esr: Esr) -> Action {
    if !trap_condition_passed(esr.condition(), vcpu.pstate) {
        skip(vcpu, esr);
        return Action::Resume;
    }
    match esr.ec() {
        ExceptionClass::Cp15Mcr => cp15_32(vcpu, ids, esr),
        ExceptionClass::Cp15Mcrr => cp15_64(vcpu, esr),
        ExceptionClass::Cp14Mcr => cp14_32(vcpu, ids, esr),
        ExceptionClass::Cp14Mrrc => cp14_64(vcpu, esr),
        // LDC/STC to the DCC, VMRS of the ID group, HVC/SMC: not offered.
        _ => inject_undef(vcpu),
    }
}

/// A WFI/WFE: past it and to the host (which sleeps the vcpu); from
/// AArch32, skipped instead if its condition failed, and past it by its
/// length with IT advanced.
#[inline(never)]
pub fn wfx(vcpu: &mut Vcpu, esr: Esr) -> Action {
    if vcpu.pstate & NRW == 0 {
        vcpu.pc = vcpu.pc.wrapping_add(esr.instruction_len());
        return Action::Wfx;
    }
    let passed = trap_condition_passed(esr.condition(), vcpu.pstate);
    skip(vcpu, esr);
    if passed {
        Action::Wfx
    } else {
        Action::Resume
    }
}

/// Past the trapped instruction: PC by ESR.IL, PSTATE.IT advanced, SS
/// cleared.
pub fn skip(vcpu: &mut Vcpu, esr: Esr) {
    (vcpu.pc, vcpu.pstate) = step(vcpu.pc, vcpu.pstate, esr.instruction_len());
}

/// The host completed an AArch32 access EL2 passed on (an MMIO load or
/// store, a timer register): an MRRC's 64-bit value, read into Rt whole,
/// is split into Rt (bits 31:0) and Rt2 (63:32); then past the
/// instruction.
pub fn complete(vcpu: &mut Vcpu, esr: Esr) {
    if let (ExceptionClass::Cp15Mcrr, Some(iss)) = (esr.ec(), esr.cp64()) {
        if iss.direction() == Direction::Read {
            let v = vcpu.regs.get(iss.rt());
            vcpu.regs.set(iss.rt(), v & 0xffff_ffff);
            vcpu.regs.set(iss.rt2(), v >> 32);
        }
    }
    skip(vcpu, esr);
}

/// The instruction completed at EL2: past it, back to the guest.
fn done(vcpu: &mut Vcpu, esr: Esr) -> Action {
    skip(vcpu, esr);
    Action::Resume
}

/// An AArch32 register as a 32-bit value.
fn reg32(vcpu: &Vcpu, r: u8) -> u64 {
    vcpu.regs.get(r) & 0xffff_ffff
}

fn cp15_32(vcpu: &mut Vcpu, ids: &IdRegs, esr: Esr) -> Action {
    let Some(iss) = esr.cp32() else { return inject_undef(vcpu) };
    let rt = iss.rt();
    if rt == R_PC {
        return inject_undef(vcpu);
    }
    let write = iss.direction() == Direction::Write;
    match (iss.opc1(), iss.crn(), iss.crm(), iss.opc2()) {
        (0, CNTP_CRN, CNTP_CRM, op2 @ 0..=1) => {
            let reg = guest_sysreg::id(OP0_SYSREG, CNTP_OP1, CNTP_CRN, CNTP_CRM, op2);
            to_host(vcpu, esr, reg, write, rt, reg32(vcpu, rt))
        }
        (0, crn @ (PMU_CRN | PMU_EV_CRN), crm, op2) => {
            // The AArch64 PMU register with the same CRn/CRm/op2: op1 3
            // (EL0 registers), except PMINTENSET/CLR (op1 0).
            let op1 = if crn == PMU_CRN && crm == PMU_EL1_CRM && matches!(op2, 1 | 2) { 0 } else { 3 };
            let dir = if write { Direction::Write } else { Direction::Read };
            let a64 = SysRegIss::new(SysRegEnc::new(OP0_SYSREG, op1, crn, crm, op2), rt, dir);
            match crate::pmu::classify(a64, ids.pmu(), &vcpu.pmu) {
                PmuAccess::FirstUse => Action::PmuFirstUse,
                PmuAccess::Pmcr if write => {
                    let v = reg32(vcpu, rt);
                    skip(vcpu, esr);
                    Action::PmcrWrite(vcpu.pmu.write_pmcr(v, ids.pmu()))
                }
                PmuAccess::Pmcr => {
                    vcpu.regs.set(rt, vcpu.pmu.pmcr & 0xffff_ffff);
                    done(vcpu, esr)
                }
                PmuAccess::NotPmu | PmuAccess::Undef => inject_undef(vcpu),
            }
        }
        _ => inject_undef(vcpu),
    }
}

fn cp15_64(vcpu: &mut Vcpu, esr: Esr) -> Action {
    let Some(iss) = esr.cp64() else { return inject_undef(vcpu) };
    let (rt, rt2) = (iss.rt(), iss.rt2());
    if rt == R_PC || rt2 == R_PC || (iss.opc1(), iss.crm()) != (CNTP_CVAL_OPC1_64, CP15_TIMER_CRM_64) {
        // CNTPCT (opc1 0) never traps (CNTHCTL_EL2.EL1PCTEN): anything
        // else is a register guests do not get.
        return inject_undef(vcpu);
    }
    let reg = guest_sysreg::id(OP0_SYSREG, CNTP_OP1, CNTP_CRN, CNTP_CRM, CNTP_CVAL_OP2);
    if iss.direction() == Direction::Write {
        let v = reg32(vcpu, rt) | reg32(vcpu, rt2) << 32;
        return to_host(vcpu, esr, reg, true, rt, v);
    }
    // A 64-bit read into Rt; `complete` splits it into Rt and Rt2 (from
    // the ESR kept in `abort.esr`): no Pending variant of its own, which
    // would cost the hypercall path its match (`hvc_host`).
    vcpu.abort.esr = esr.0;
    vcpu.pending = Pending::MmioRead { srt: rt, size: 8, sign_extend: false, sixty_four: true };
    Action::ToHost(Exit::SysReg { reg, write: false, value: 0 })
}

/// A register the host emulates (the physical timer), completed like an
/// MMIO access: a 32-bit read into `rt`, or the write done; either steps
/// past the instruction by its length (`Vcpu::complete`, from the ESR
/// kept in `abort.esr`).
fn to_host(vcpu: &mut Vcpu, esr: Esr, reg: u32, write: bool, rt: u8, value: u64) -> Action {
    vcpu.abort.esr = esr.0;
    vcpu.pending = if write {
        Pending::MmioWrite
    } else {
        Pending::MmioRead { srt: rt, size: 4, sign_extend: false, sixty_four: false }
    };
    Action::ToHost(Exit::SysReg { reg, write, value: if write { value } else { 0 } })
}

fn cp14_32(vcpu: &mut Vcpu, ids: &IdRegs, esr: Esr) -> Action {
    let Some(iss) = esr.cp32() else { return inject_undef(vcpu) };
    let rt = iss.rt();
    let read = iss.direction() == Direction::Read;
    if iss.opc1() != 0 || (rt == R_PC && (iss.crn(), iss.crm(), iss.opc2()) != DBGDSCRINT) {
        return inject_undef(vcpu);
    }
    let value = match ((iss.crn(), iss.crm(), iss.opc2()), read) {
        (DBGDIDR, true) => dbgdidr(ids),
        (DBGDSCRINT | DBGDTR | DBGDRAR | DBGDSAR, true) => 0,
        // DBGDTRTXint: nobody reads the DCC; the write vanishes.
        (DBGDTR, false) => return done(vcpu, esr),
        _ => return inject_undef(vcpu),
    };
    if rt == R_PC {
        // MRC to APSR_nzcv: the flags from bits [31:28].
        vcpu.pstate = vcpu.pstate & !NZCV | value & NZCV;
    } else {
        vcpu.regs.set(rt, value);
    }
    done(vcpu, esr)
}

fn cp14_64(vcpu: &mut Vcpu, esr: Esr) -> Action {
    let Some(iss) = esr.cp64() else { return inject_undef(vcpu) };
    let (rt, rt2) = (iss.rt(), iss.rt2());
    let known = iss.opc1() == 0 && matches!(iss.crm(), DBGDRAR_64_CRM | DBGDSAR_64_CRM);
    if !known || iss.direction() == Direction::Write || rt == R_PC || rt2 == R_PC {
        return inject_undef(vcpu);
    }
    vcpu.regs.set(rt, 0);
    vcpu.regs.set(rt2, 0);
    done(vcpu, esr)
}

/// DBGDIDR from the breakpoints, watchpoints and context comparators the
/// guest's ID_AA64DFR0_EL1 gives it, Armv8 debug.
fn dbgdidr(ids: &IdRegs) -> u64 {
    let dfr0 = ids.get(DFR0.0, DFR0.1).unwrap_or(0);
    let f = |shift: u64| dfr0 >> shift & FIELD4;
    f(DFR0_WRPS_SHIFT) << DBGDIDR_WRPS_SHIFT
        | f(DFR0_BRPS_SHIFT) << DBGDIDR_BRPS_SHIFT
        | f(DFR0_CTX_CMPS_SHIFT) << DBGDIDR_CTX_CMPS_SHIFT
        | DBGDIDR_VERSION_V8
        | DBGDIDR_RES1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vcpu::{handle_sync, Syndrome};
    use spevisor_abi::Completion;
    use spevisor_armv8::esr::{Cp32Iss, Cp64Iss, ISS_COND_SHIFT, ISS_CV};
    use spevisor_armv8::pstate::aarch32::{it_state, with_it_state, M_USR, T};
    use spevisor_armv8::pstate::Z;

    const VBAR: u64 = 0x4000_8000;
    const PC: u64 = 0x8000_1000;
    /// VBAR_EL1 + 0x600: synchronous, lower EL in AArch32.
    const LOWER_A32_SYNC: u64 = VBAR + 0x600;

    fn vcpu(spsr: u64) -> Vcpu {
        let mut v = Vcpu::new(0x4000_0000, [0; 3]);
        v.el1.vbar = VBAR;
        v.pc = PC;
        v.pstate = spsr;
        v
    }

    fn run(v: &mut Vcpu, ec: ExceptionClass, il32: bool, iss: u32) -> Action {
        let esr = Esr::new(ec, il32, iss).0;
        handle_sync(v, &IdRegs::empty(), Syndrome { esr, far: 0, hpfar: 0 }, |_| false)
    }

    /// `iss` with its condition replaced by `cond` (CV = 1).
    fn cond(iss: u32, cond: u32) -> u32 {
        iss & !(0xf << ISS_COND_SHIFT) | ISS_CV | cond << ISS_COND_SHIFT
    }

    const MRC_CNTP_CTL: Cp32Iss = Cp32Iss::new(0, 14, 2, 1, 3, Direction::Read);
    const EQ: u32 = 0b0000;
    const NE: u32 = 0b0001;

    #[test]
    fn a_trapped_instruction_whose_condition_failed_is_skipped_without_effect() {
        // mrcne with Z set, A32: nothing goes to the host, r3 unchanged.
        let mut v = vcpu(M_USR | Z);
        v.regs.x[3] = 0x1234;
        assert_eq!(run(&mut v, ExceptionClass::Cp15Mcr, true, cond(MRC_CNTP_CTL.0, NE)), Action::Resume);
        assert_eq!((v.pc, v.regs.x[3], v.pending), (PC + 4, 0x1234, Pending::None));
        // The same with its condition passing goes to the host.
        let mut v = vcpu(M_USR | Z);
        assert!(matches!(run(&mut v, ExceptionClass::Cp15Mcr, true, cond(MRC_CNTP_CTL.0, EQ)), Action::ToHost(_)));
        assert_eq!(v.pc, PC, "the PC moves at the completion");
        // LDC to the DCC (UNDEF when it runs) is skipped too when it fails.
        let mut v = vcpu(M_USR | Z);
        assert_eq!(run(&mut v, ExceptionClass::Cp14Ldc, true, cond(1, NE)), Action::Resume);
        assert_eq!(v.pc, PC + 4);
        // A failed WFI from AArch32 never sleeps the vcpu.
        let mut v = vcpu(M_USR | T | Z);
        assert_eq!(run(&mut v, ExceptionClass::Wfx, false, cond(0, NE)), Action::Resume);
        assert_eq!(v.pc, PC + 2);
        let mut v = vcpu(M_USR | T | Z);
        assert_eq!(run(&mut v, ExceptionClass::Wfx, false, cond(0, EQ)), Action::Wfx);
        assert_eq!(v.pc, PC + 2, "a 16-bit WFI");
    }

    #[test]
    fn the_it_block_advances_past_an_instruction_el2_completed() {
        // ITE EQ; mrceq (trapped, T32 32-bit); movne: after EL2 completes
        // the mrceq, PSTATE.IT must be the "ne" slot's, else the movne
        // would run with the first slot's condition.
        let ite_eq = with_it_state(M_USR | T | Z, 0b0000_1100);
        let mut v = vcpu(ite_eq);
        let a = run(&mut v, ExceptionClass::Cp15Mcr, true, cond(MRC_CNTP_CTL.0, EQ));
        assert!(matches!(a, Action::ToHost(Exit::SysReg { write: false, .. })));
        v.complete(Completion::MmioRead(0x5)).unwrap();
        assert_eq!(v.regs.x[3], 0x5);
        assert_eq!(v.pc, PC + 4, "32-bit T32");
        assert_eq!(it_state(v.pstate), 0b0001_1000, "the else slot is next");
        // Skipped (condition failed, CV = 0: from the IT block) in the
        // first slot of ITE NE with Z set: also advances.
        let ite_ne = with_it_state(M_USR | T | Z, 0b0001_0100);
        let mut v = vcpu(ite_ne);
        assert_eq!(run(&mut v, ExceptionClass::Cp15Mcr, true, MRC_CNTP_CTL.0 & !ISS_CV), Action::Resume);
        assert_eq!(it_state(v.pstate), 0b0000_1000, "the else slot (EQ) is next");
    }

    #[test]
    fn the_pc_moves_by_the_instruction_length() {
        // A 16-bit T32 MMIO load (ESR.IL 0) completed by the host: +2.
        let mut v = vcpu(M_USR | T);
        let da = 0x24u64 << 26 | 1 << 24 | 2 << 22 | 0x07;
        let a =
            handle_sync(&mut v, &IdRegs::empty(), Syndrome { esr: da, far: 0x18, hpfar: 0x0900_0000 >> 8 }, |_| false);
        assert!(matches!(a, Action::ToHost(Exit::Mmio(_))));
        v.complete(Completion::MmioRead(0x90)).unwrap();
        assert_eq!((v.pc, v.regs.x[0]), (PC + 2, 0x90));
        // AArch64 keeps +4 whatever ESR.IL says.
        let mut v = vcpu(0x3c5);
        handle_sync(
            &mut v,
            &IdRegs::empty(),
            Syndrome { esr: da | 1 << 25, far: 0x18, hpfar: 0x0900_0000 >> 8 },
            |_| false,
        );
        v.complete(Completion::MmioRead(0x90)).unwrap();
        assert_eq!(v.pc, PC + 4);
        // A DCC read emulated at EL2 from A32: +4, value 0.
        let mut v = vcpu(M_USR);
        v.regs.x[2] = 99;
        let dtr = Cp32Iss::new(0, 0, 5, 0, 2, Direction::Read).0;
        assert_eq!(run(&mut v, ExceptionClass::Cp14Mcr, true, dtr), Action::Resume);
        assert_eq!((v.pc, v.regs.x[2]), (PC + 4, 0));
    }

    #[test]
    fn what_is_not_offered_is_undef_at_the_aarch32_vector_never_a_stop() {
        let cases = [
            (ExceptionClass::Cp14Ldc, ISS_CV | 0xe << ISS_COND_SHIFT | 1),
            (ExceptionClass::Cp10Id, Cp32Iss::new(7, 6, 0, 0, 0, Direction::Read).0),
            (ExceptionClass::Cp15Mcr, Cp32Iss::new(0, 1, 0, 0, 0, Direction::Read).0),
            (ExceptionClass::Cp15Mcr, Cp32Iss::new(0, 9, 12, 0, 0, Direction::Read).0),
            (ExceptionClass::Cp15Mcrr, Cp64Iss::new(0, 14, 0, 1, Direction::Read).0),
            (ExceptionClass::Cp14Mcr, Cp32Iss::new(0, 0, 0, 0, 0, Direction::Write).0),
            (ExceptionClass::Cp14Mcr, Cp32Iss::new(0, 0, 2, 0, 15, Direction::Read).0),
            (ExceptionClass::Cp14Mrrc, Cp64Iss::new(0, 1, 0, 1, Direction::Write).0),
            (ExceptionClass::Hvc32, 0),
            (ExceptionClass::Smc32, 0),
        ];
        for (ec, iss) in cases {
            for t in [0, T] {
                let mut v = vcpu(M_USR | t);
                let a = run(&mut v, ec, true, iss);
                assert_eq!(a, Action::Injected, "{ec:?} {iss:#x}");
                assert_ne!(a, Action::Stop(StopReason::Unhandled));
                assert_eq!(v.pc, LOWER_A32_SYNC);
                assert_eq!(v.el1.elr, PC);
                assert_eq!(v.el1.spsr, M_USR | t, "SPSR_EL1: the AArch32 state as it was");
                assert_eq!(Esr(v.el1.esr).ec(), ExceptionClass::UnknownReason);
            }
        }
    }

    #[test]
    fn the_timer_and_debug_views_are_emulated() {
        // mcrr p15, 2, r4, r5, c14 (CNTP_CVAL write): one 64-bit value.
        let mut v = vcpu(M_USR);
        v.regs.x[4] = 0xffff_ffff_1111_2222;
        v.regs.x[5] = 0x3333;
        let a = run(&mut v, ExceptionClass::Cp15Mcrr, true, Cp64Iss::new(2, 14, 4, 5, Direction::Write).0);
        let cval = guest_sysreg::id(3, 3, 14, 2, 2);
        assert_eq!(a, Action::ToHost(Exit::SysReg { reg: cval, write: true, value: 0x3333_1111_2222 }));
        v.complete(Completion::MmioWrite).unwrap();
        assert_eq!(v.pc, PC + 4);
        // mrrc: split into Rt (low) and Rt2 (high).
        let mut v = vcpu(M_USR);
        let a = run(&mut v, ExceptionClass::Cp15Mcrr, true, Cp64Iss::new(2, 14, 6, 7, Direction::Read).0);
        assert_eq!(a, Action::ToHost(Exit::SysReg { reg: cval, write: false, value: 0 }));
        v.complete(Completion::MmioRead(0xaaaa_bbbb_cccc_dddd)).unwrap();
        assert_eq!((v.regs.x[6], v.regs.x[7], v.pc), (0xcccc_dddd, 0xaaaa_bbbb, PC + 4));
        // DBGDSCRint into APSR_nzcv: the flags cleared (reads as zero).
        let mut v = vcpu(M_USR | Z);
        let dscr = Cp32Iss::new(0, 0, 1, 0, 15, Direction::Read).0;
        assert_eq!(run(&mut v, ExceptionClass::Cp14Mcr, true, dscr), Action::Resume);
        assert_eq!(v.pstate & NZCV, 0);
        // DBGDIDR: Armv8 debug.
        let mut v = vcpu(M_USR);
        assert_eq!(
            run(&mut v, ExceptionClass::Cp14Mcr, true, Cp32Iss::new(0, 0, 0, 0, 1, Direction::Read).0),
            Action::Resume
        );
        assert_eq!(v.regs.x[1] >> 16 & 0xf, 0b0110);
    }
}
