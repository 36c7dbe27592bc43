//! AArch32 traps: the syndrome's condition, the MCR/MRC, MCRR/MRRC and
//! LDC/STC fields, condition evaluation, the IT block's advance and the PC
//! step by instruction length (`esr.rs`, `pstate.rs`).

use spevisor_armv8::esr::{Cp32Iss, Cp64Iss, Direction, Esr, ExceptionClass, TrapCondition, ISS_CV};
use spevisor_armv8::pstate::aarch32::{
    condition_holds, it_advance, it_state, step, trap_condition_passed, with_it_state, M_USR, T,
};
use spevisor_armv8::pstate::{C, N, SS, V, Z};

/// `mrc p15, 0, r0, c9, c12, 0` (PMCR) as QEMU reports it: EC 0x03, IL 1,
/// CV 1, COND 0xe (AL), Opc2 0, Opc1 0, CRn 9, Rt 0, CRm 12, read.
const ESR_MRC_PMCR: u64 = 0x01e0_0000 | 0x3 << 26 | 1 << 25 | 9 << 10 | 12 << 1 | 1;

#[test]
fn mcr_mrc_fields_decode() {
    let e = Esr(ESR_MRC_PMCR);
    assert_eq!(e.ec(), ExceptionClass::Cp15Mcr);
    let iss = e.cp32().unwrap();
    assert_eq!((iss.opc1(), iss.crn(), iss.crm(), iss.opc2(), iss.rt()), (0, 9, 12, 0, 0));
    assert_eq!(iss.direction(), Direction::Read);
    assert_eq!(e.condition(), TrapCondition::Always, "COND AL");
    assert!(e.cp64().is_none() && e.ldc().is_none());
    // Built back from its fields.
    assert_eq!(Cp32Iss::new(0, 9, 12, 0, 0, Direction::Read).0, e.iss());
    // mcr p14, 0, r7, c0, c5, 0 (DBGDTRTXint): a write of r7.
    let w = Esr::new(ExceptionClass::Cp14Mcr, true, Cp32Iss::new(0, 0, 5, 0, 7, Direction::Write).0);
    let iss = w.cp32().unwrap();
    assert_eq!((iss.crn(), iss.crm(), iss.rt(), iss.direction()), (0, 5, 7, Direction::Write));
}

#[test]
fn mcrr_mrrc_fields_decode() {
    // mrrc p15, 2, r4, r5, c14 (CNTP_CVAL).
    let e = Esr::new(ExceptionClass::Cp15Mcrr, true, Cp64Iss::new(2, 14, 4, 5, Direction::Read).0);
    let iss = e.cp64().unwrap();
    assert_eq!((iss.opc1(), iss.crm(), iss.rt(), iss.rt2(), iss.direction()), (2, 14, 4, 5, Direction::Read));
    let e = Esr::new(ExceptionClass::Cp14Mrrc, true, Cp64Iss::new(0, 1, 0, 1, Direction::Read).0);
    assert_eq!(e.cp64().unwrap().crm(), 1, "DBGDRAR");
    assert!(e.cp32().is_none());
}

#[test]
fn ldc_stc_fields_decode() {
    // ldc p14, c5, [r3, #8]: imm8 2 (words), Rn 3, offset form, read.
    let iss = 2 << 12 | 3 << 5 | 1 << 4 | 0b010 << 1 | 1 | ISS_CV | 0xe << 20;
    let e = Esr::new(ExceptionClass::Cp14Ldc, true, iss);
    let l = e.ldc().unwrap();
    assert_eq!((l.imm8(), l.rn(), l.addressing_mode(), l.direction()), (2, 3, 0b010, Direction::Read));
}

#[test]
fn the_condition_comes_from_cv_cond_or_the_it_block() {
    let cond = |cv: bool, c: u32| Esr::new(ExceptionClass::Cp15Mcr, true, (cv as u32) << 24 | c << 20).condition();
    assert_eq!(cond(true, 0), TrapCondition::Code(0), "EQ");
    assert_eq!(cond(true, 0xe), TrapCondition::Always);
    assert_eq!(cond(false, 3), TrapCondition::FromItState, "CV 0: COND is UNKNOWN");
    // Classes from 0x10 on have no condition, whatever their ISS holds.
    let svc = Esr::new(ExceptionClass::Svc32, true, 0x0100_0000);
    assert_eq!(svc.condition(), TrapCondition::Always);
    let wfi = Esr::new(ExceptionClass::Wfx, false, ISS_CV | 1 << 20);
    assert_eq!(wfi.condition(), TrapCondition::Code(1), "WFx from AArch32 carries a condition");
}

#[test]
fn conditions_hold_as_the_arm_arm_says() {
    let flags = |n, z, c, v| (n as u64 * N) | (z as u64 * Z) | (c as u64 * C) | (v as u64 * V);
    // Every condition against every flag combination, from the definitions.
    for f in 0..16u8 {
        let (n, z, c, v) = (f & 8 != 0, f & 4 != 0, f & 2 != 0, f & 1 != 0);
        let spsr = flags(n, z, c, v);
        let want =
            [z, !z, c, !c, n, !n, v, !v, c && !z, !c || z, n == v, n != v, !z && n == v, z || n != v, true, true];
        for (cond, w) in want.iter().enumerate() {
            assert_eq!(condition_holds(cond as u8, spsr), *w, "cond {cond} flags {f:04b}");
        }
    }
}

#[test]
fn a_failed_condition_is_seen_from_the_syndrome_or_the_it_block() {
    let z = M_USR | Z;
    // mrcne with Z set: fails. mrceq: passes.
    assert!(!trap_condition_passed(TrapCondition::Code(1), z));
    assert!(trap_condition_passed(TrapCondition::Code(0), z));
    // CV = 0 outside an IT block: unconditional.
    assert!(trap_condition_passed(TrapCondition::FromItState, z | T));
    // CV = 0 in the "ne" slot of an IT block (IT = 0b0001_1000: NE, one
    // instruction): fails with Z set.
    let it_ne = with_it_state(z | T, 0b0001_1000);
    assert!(!trap_condition_passed(TrapCondition::FromItState, it_ne));
    assert!(trap_condition_passed(TrapCondition::FromItState, it_ne & !Z));
}

#[test]
fn the_it_state_round_trips_through_its_split_fields() {
    for it in 0..=255u8 {
        let spsr = with_it_state(M_USR | T | N, it);
        assert_eq!(it_state(spsr), it);
        assert_eq!(spsr & (M_USR | T | N), M_USR | T | N, "other bits kept");
    }
    // IT[1:0] at SPSR[26:25], IT[7:2] at SPSR[15:10].
    assert_eq!(with_it_state(0, 0b1111_1111), 0b11 << 25 | 0x3f << 10);
}

#[test]
fn the_it_block_advances_one_slot_per_instruction() {
    // ITE EQ: IT[7:4] = firstcond (EQ, 0000), IT[3:0] = the mask (0b1100:
    // the else slot inverts firstcond[0], the trailing 1 ends the block).
    let ite_eq = 0b0000_1100u8;
    let second = it_advance(ite_eq);
    assert_eq!(second, 0b0001_1000, "second slot: condition NE (IT[4] = 1), one left");
    assert_eq!(it_advance(second), 0, "the block ends");
    // ITTTT... a four-instruction block (mask 0b0001).
    let itttt = 0b0001_0001u8;
    let mut it = itttt;
    let mut slots = 1;
    while it_advance(it) != 0 {
        it = it_advance(it);
        slots += 1;
    }
    assert_eq!(slots, 4);
    assert_eq!(it_advance(0), 0, "no block stays no block");
}

#[test]
fn the_step_uses_the_instruction_length_and_advances_it_in_t32_only() {
    // A T32 16-bit instruction (IL 0) in the first slot of ITE EQ.
    let spsr = with_it_state(M_USR | T | Z | SS, 0b0000_1100);
    let (pc, after) = step(0x8000_1000, spsr, 2);
    assert_eq!(pc, 0x8000_1002);
    assert_eq!(it_state(after), 0b0001_1000);
    assert_eq!(after & SS, 0, "a step completed");
    // 32-bit T32: +4.
    assert_eq!(step(0x8000_1000, spsr, 4).0, 0x8000_1004);
    // A32 has no IT block: nothing but the PC moves.
    let (pc, a32) = step(0x8000_0ffc, M_USR | Z, 4);
    assert_eq!((pc, a32), (0x8000_1000, M_USR | Z));
    // The 32-bit PC wraps.
    assert_eq!(step(0xffff_fffe, M_USR | T, 2).0, 0);
}

#[test]
fn undef_and_aborts_from_aarch32_el0_go_to_the_lower_aarch32_vector() {
    use spevisor_armv8::inject::{data_abort, undef, GuestContext, GuestFeatures};
    let vbar = 0x4000_8000;
    // A T32 instruction in an IT block: SPSR_EL1 must keep T and ITSTATE
    // for the guest's handler, ELR_EL1 = the instruction.
    let spsr = with_it_state(M_USR | T | Z, 0b0000_1100);
    let ctx = GuestContext {
        spsr_el2: spsr,
        elr_el2: 0x8000_1002,
        vbar_el1: vbar,
        sctlr_el1: 0,
        features: GuestFeatures::default(),
    };
    let u = undef(&ctx).unwrap();
    assert_eq!(u.pc, vbar + 0x600, "VBAR_EL1 + 0x600: lower EL, AArch32, synchronous");
    assert_eq!(u.esr_el1.ec(), ExceptionClass::UnknownReason);
    assert!(u.esr_el1.il(), "EC 0x00: IL is RES1, even for a 16-bit T32 instruction");
    assert_eq!((u.elr_el1, u.spsr_el1), (0x8000_1002, spsr));
    let a = data_abort(&ctx, 0xf000_0000, false).unwrap();
    assert_eq!(a.pc, vbar + 0x600);
    assert_eq!(a.esr_el1.ec(), ExceptionClass::DataAbortLower, "EC 0x24 from EL0");
    assert_eq!(a.far_el1, Some(0xf000_0000));
}
