//! `esr`: ESR_ELx and ISS decoding, and the exceptions EL2 injects.
//!
//! Properties: every decoder takes every value; the class, IL and ISS
//! re-assemble to the value's low 32 bits ([`Esr::new`]), the class's raw
//! number round-trips, a trapped-MSR ISS re-assembles from its fields
//! ([`SysRegIss::new`]), access sizes are 1/2/4/8 and register numbers
//! 0..=31, fault levels -1..=3; the Display forms are non-empty. An
//! injected abort or UNDEF has the class, WnR and DFSC asked for and enters
//! the guest's vector table at an entry inside VBAR_EL1's 2 KiB, at EL1h
//! with interrupts masked; it is refused exactly when SPSR_EL2 is not an
//! EL0/EL1 mode.

use crate::Input;
use spevisor_armv8::esr::{Esr, ExceptionClass, FaultStatus, SysRegIss, EC_MASK, EC_SHIFT, ISS_MASK};
use spevisor_armv8::inject::{self, GuestContext, GuestFeatures, Source};
use spevisor_armv8::pstate;
use std::fmt::Write;

/// ESR bits Esr::new sets: EC, IL and ISS (ISS2 and the RES0 top byte are not).
const EC_IL_ISS: u64 = (EC_MASK << EC_SHIFT) | (1 << 25) | ISS_MASK;
/// A trapped MSR/MRS's ISS fields: Op0..direction, bits [21:0].
const SYSREG_ISS_FIELDS: u32 = (1 << 22) - 1;
/// The vector table's alignment (VBAR_EL1 bits [10:0] are RES0).
const VECTOR_TABLE_SIZE: u64 = 0x800;
/// Vector entries are 128 bytes apart.
const VECTOR_ENTRY: u64 = 0x80;

fn shown(v: impl std::fmt::Display) -> String {
    let mut s = String::new();
    write!(s, "{v}").unwrap();
    assert!(!s.is_empty());
    s
}

fn check_level(f: FaultStatus) {
    if let Some(l) = f.level() {
        assert!((-1..=3).contains(&l), "fault level {l}");
    }
    shown(f);
}

fn check_esr(raw: u64) {
    let esr = Esr(raw);
    let ec = esr.ec();
    assert_eq!(ExceptionClass::from_raw(ec.raw()), ec);
    assert_eq!(u64::from(ec.raw()), raw >> EC_SHIFT & EC_MASK);
    assert_eq!(Esr::new(ec, esr.il(), esr.iss()).0, raw & EC_IL_ISS, "EC/IL/ISS do not re-assemble");
    assert!(matches!(esr.instruction_len(), 2 | 4));
    let text = shown(esr);
    assert!(text.contains(&format!("EC={:#04x}", ec.raw())), "{text}");
    if let Some(da) = esr.data_abort() {
        assert!(matches!(da.access_size(), 1 | 2 | 4 | 8));
        assert!(da.srt() <= 31);
        check_level(da.dfsc());
        shown(da);
    }
    if let Some(ia) = esr.instr_abort() {
        shown(ia);
    }
    if let Some(s) = esr.sysreg() {
        assert!(s.rt() <= 31 && s.op0() <= 3 && s.op1() <= 7 && s.op2() <= 7 && s.crn() <= 15 && s.crm() <= 15);
        let again = SysRegIss::new(s.encoding(), s.rt(), s.direction());
        assert_eq!(again.0, s.0 & SYSREG_ISS_FIELDS, "sysreg ISS does not re-assemble");
        let _ = s.encoding().name();
        shown(s);
    }
    let _ = (esr.hvc().map(|h| h.imm16()), esr.smc().map(|s| s.imm16()), esr.iss2());
    if let Some(w) = esr.wfx() {
        assert!(w.timeout_register().is_none_or(|r| r <= 31));
        shown(w);
    }
    check_level(FaultStatus::from_raw(raw as u8));
}

fn check_injection(i: &mut Input) {
    let ctx = GuestContext {
        spsr_el2: i.u64(),
        elr_el2: i.u64(),
        vbar_el1: i.u64(),
        sctlr_el1: i.u64(),
        features: GuestFeatures { pan: i.bool(), ssbs: i.bool(), mte: i.bool() },
    };
    let (address, write) = (i.u64(), i.bool());
    let source = Source::from_spsr(ctx.spsr_el2);
    let results = [
        (inject::data_abort(&ctx, address, write), Some(address)),
        (inject::instr_abort(&ctx, address), Some(address)),
        (inject::undef(&ctx), None),
    ];
    for (k, (r, far)) in results.into_iter().enumerate() {
        let Ok(src) = source else {
            assert!(r.is_err(), "injected into a guest that was not at EL0/EL1");
            continue;
        };
        let inj = r.expect("a guest at EL0/EL1 takes the exception");
        assert_eq!(inj.far_el1, far);
        assert_eq!((inj.elr_el1, inj.spsr_el1), (ctx.elr_el2, ctx.spsr_el2));
        let base = ctx.vbar_el1 & !(VECTOR_TABLE_SIZE - 1);
        let entry = inj.pc.wrapping_sub(base);
        assert!(entry < VECTOR_TABLE_SIZE && entry % VECTOR_ENTRY == 0, "vector {:#x} from {base:#x}", inj.pc);
        assert_eq!(entry, src.vector_group(), "synchronous entry of the source's group");
        assert_eq!(inj.pstate & pstate::M_MASK, pstate::M_EL1H);
        assert_eq!(inj.pstate & pstate::DAIF, pstate::DAIF, "interrupts masked on entry");
        let esr = inj.esr_el1;
        match k {
            0 => {
                let da = esr.data_abort().expect("a data abort");
                assert_eq!(da.wnr(), write);
                assert_eq!(da.dfsc(), FaultStatus::SyncExternal);
                assert_eq!(esr.ec() == ExceptionClass::DataAbortLower, src.is_lower());
            }
            1 => {
                esr.instr_abort().expect("an instruction abort");
                assert_eq!(esr.ec() == ExceptionClass::InstrAbortLower, src.is_lower());
            }
            _ => assert_eq!(esr.ec(), ExceptionClass::UnknownReason),
        }
    }
}

pub fn run(data: &[u8]) {
    let mut i = Input::new(data);
    let raw = i.u64();
    check_esr(raw);
    check_esr(raw & EC_IL_ISS);
    check_injection(&mut i);
}
