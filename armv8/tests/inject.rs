use spevisor_armv8::esr::{ExceptionClass, FaultStatus};
use spevisor_armv8::inject::*;
use spevisor_armv8::pstate;

const VBAR: u64 = 0xffff_8000_1001_0800;
const PC: u64 = 0x4008_1234;

fn ctx(spsr: u64) -> GuestContext {
    GuestContext { spsr_el2: spsr, elr_el2: PC, vbar_el1: VBAR, sctlr_el1: 0, features: GuestFeatures::default() }
}

#[test]
fn vector_offsets_for_each_source_mode() {
    let cases = [
        (pstate::M_EL1T, 0x000, Source::CurrentSp0),
        (pstate::M_EL1H, 0x200, Source::CurrentSpx),
        (pstate::M_EL0T, 0x400, Source::LowerA64),
        (pstate::NRW, 0x600, Source::LowerA32),
    ];
    for (spsr, offset, source) in cases {
        assert_eq!(Source::from_spsr(spsr), Ok(source));
        let inj = undef(&ctx(spsr)).unwrap();
        assert_eq!(inj.pc, VBAR + offset, "spsr {spsr:#x}");
    }
}

#[test]
fn vbar_low_bits_are_ignored() {
    let mut c = ctx(pstate::M_EL1H);
    c.vbar_el1 = VBAR | 0x7ff;
    assert_eq!(undef(&c).unwrap().pc, VBAR + 0x200);
}

#[test]
fn undef_from_el1h() {
    let spsr = pstate::M_EL1H | pstate::N | pstate::C | pstate::SS | pstate::IL | pstate::DIT;
    let inj = undef(&ctx(spsr)).unwrap();
    assert_eq!(inj.esr_el1.ec(), ExceptionClass::UnknownReason);
    assert!(inj.esr_el1.il());
    assert_eq!(inj.esr_el1.iss(), 0);
    assert_eq!(inj.esr_el1.0, 0x0200_0000);
    assert_eq!(inj.elr_el1, PC);
    assert_eq!(inj.spsr_el1, spsr);
    assert_eq!(inj.far_el1, None);
    // EL1h, DAIF masked, IL/SS cleared, flags and DIT kept.
    assert_eq!(inj.pstate, pstate::M_EL1H | pstate::DAIF | pstate::N | pstate::C | pstate::DIT);
    assert_eq!(inj.pstate & pstate::IL, 0);
    assert_eq!(inj.pstate & pstate::SS, 0);

    // EC 0x00: IL is RES1, also for a 16-bit T32 instruction.
    let t16 = undef(&ctx(pstate::NRW | 1 << 5)).unwrap();
    assert!(t16.esr_el1.il());
    assert_eq!(t16.pstate & pstate::NRW, 0, "delivered to AArch64 EL1");
}

#[test]
fn data_abort_from_el0_and_el1() {
    let from_el0 = data_abort(&ctx(pstate::M_EL0T), 0x9000_0000, true).unwrap();
    assert_eq!(from_el0.esr_el1.ec(), ExceptionClass::DataAbortLower);
    let da = from_el0.esr_el1.data_abort().unwrap();
    assert_eq!(da.dfsc(), FaultStatus::SyncExternal);
    assert!(da.wnr());
    assert!(!da.isv());
    assert!(from_el0.esr_el1.il());
    assert_eq!(from_el0.far_el1, Some(0x9000_0000));
    assert_eq!(from_el0.pc, VBAR + 0x400);
    assert_eq!(from_el0.esr_el1.0, 0x9200_0050);

    let from_el1 = data_abort(&ctx(pstate::M_EL1H | pstate::DAIF), 0x1234, false).unwrap();
    assert_eq!(from_el1.esr_el1.ec(), ExceptionClass::DataAbortSame);
    assert_eq!(from_el1.esr_el1.0, 0x9600_0010);
    assert_eq!(from_el1.pc, VBAR + 0x200);

    let ia = instr_abort(&ctx(pstate::M_EL1T), PC).unwrap();
    assert_eq!(ia.esr_el1.ec(), ExceptionClass::InstrAbortSame);
    assert_eq!(ia.pc, VBAR);
}

#[test]
fn optional_pstate_features() {
    let mut c = ctx(pstate::M_EL0T);
    c.features = GuestFeatures { pan: true, ssbs: true, mte: true };
    // SPAN = 0 sets PAN; DSSBS = 1 sets SSBS; MTE sets TCO.
    c.sctlr_el1 = SCTLR_DSSBS;
    let p = undef(&c).unwrap().pstate;
    assert_eq!(p & (pstate::PAN | pstate::SSBS | pstate::TCO), pstate::PAN | pstate::SSBS | pstate::TCO);
    // SPAN = 1 keeps the old PAN (0 here); DSSBS = 0 clears SSBS.
    c.sctlr_el1 = SCTLR_SPAN;
    c.spsr_el2 |= pstate::SSBS;
    let p = undef(&c).unwrap().pstate;
    assert_eq!(p & (pstate::PAN | pstate::SSBS), 0);
    // Without the features none of them is set.
    let p = undef(&ctx(pstate::M_EL0T | pstate::PAN)).unwrap().pstate;
    assert_eq!(p, pstate::M_EL1H | pstate::DAIF);
}

#[test]
fn el2_and_reserved_modes_are_refused() {
    for spsr in [pstate::M_EL2H, pstate::M_EL2T, 0b1101, 0b0010, pstate::NRW | 0b0011] {
        let err = undef(&ctx(spsr)).unwrap_err();
        assert_eq!(err, InjectError::UnsupportedMode { spsr });
        assert!(err.to_string().contains("not an EL0/EL1 mode"));
    }
}

#[test]
fn mode_decode() {
    assert_eq!(pstate::Mode::from_spsr(0x3c5), pstate::Mode::El1h);
    assert_eq!(pstate::Mode::from_spsr(0x3c9), pstate::Mode::El2h);
    assert_eq!(pstate::Mode::from_spsr(0x10), pstate::Mode::Aarch32(0));
    assert_eq!(pstate::Mode::from_spsr(0x3c5), pstate::Mode::from_spsr(pstate::M_EL1H | pstate::DAIF));
    assert_eq!(pstate::DAIF, 0x3c0);
}
