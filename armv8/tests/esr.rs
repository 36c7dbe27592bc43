use spevisor_armv8::esr::*;
use spevisor_armv8::sysreg::{self, SysRegEnc};

#[test]
fn data_abort_same_el_translation_level_1_write() {
    let esr = Esr(0x9600_0045);
    assert_eq!(esr.ec(), ExceptionClass::DataAbortSame);
    assert_eq!(esr.ec().raw(), 0x25);
    assert!(esr.il());
    assert_eq!(esr.instruction_len(), 4);
    assert_eq!(esr.iss(), 0x45);
    let da = esr.data_abort().unwrap();
    assert!(!da.isv());
    assert!(da.wnr());
    assert_eq!(da.dfsc(), FaultStatus::Translation { level: 1 });
    assert!(esr.sysreg().is_none() && esr.hvc().is_none());
    assert_eq!(
        esr.to_string(),
        "ESR 0x96000045 EC=0x25 (data abort, same EL) IL=32-bit ISS=0x45 \
         DFSC=translation fault level 1, WnR=1, ISV=0, S1PTW=0, CM=0, EA=0, FnV=0"
    );
}

#[test]
fn data_abort_lower_el_with_valid_syndrome() {
    // ldr x0, [mmio] from a guest hitting an unmapped stage-2 page.
    let esr = Esr(0x93c0_8006);
    assert_eq!(esr.ec(), ExceptionClass::DataAbortLower);
    let da = esr.data_abort().unwrap();
    assert!(da.isv());
    assert_eq!(da.access_size(), 8);
    assert!(!da.sse());
    assert_eq!(da.srt(), 0);
    assert!(da.sf());
    assert!(!da.ar());
    assert!(!da.wnr());
    assert!(!da.s1ptw() && !da.cm() && !da.ea() && !da.fnv() && !da.vncr());
    assert_eq!(da.dfsc(), FaultStatus::Translation { level: 2 });
    assert_eq!(
        esr.to_string(),
        "ESR 0x93c08006 EC=0x24 (data abort, lower EL) IL=32-bit ISS=0x1c08006 \
         DFSC=translation fault level 2, WnR=0, ISV=1 SAS=8 bytes SSE=0 SRT=x0 SF=1 AR=0, \
         S1PTW=0, CM=0, EA=0, FnV=0"
    );
    // strh w3, [x1] with sign-extension bits irrelevant: SAS=1 (2 bytes), SRT=3, SF=0, WnR=1.
    let iss = 1 << 24 | 1 << 22 | 3 << 16 | 1 << 6 | 0x0f;
    let da = Esr::new(ExceptionClass::DataAbortLower, true, iss).data_abort().unwrap();
    assert_eq!((da.access_size(), da.srt(), da.sf(), da.wnr()), (2, 3, false, true));
    assert_eq!(da.dfsc(), FaultStatus::Permission { level: 3 });
    assert!(da.to_string().contains("SRT=w3"));
}

#[test]
fn hvc_smc_wfx() {
    let esr = Esr(0x5a00_0000);
    assert_eq!(esr.ec(), ExceptionClass::Hvc64);
    assert_eq!(esr.hvc().unwrap().imm16(), 0);
    assert_eq!(esr.to_string(), "ESR 0x5a000000 EC=0x16 (HVC (AArch64)) IL=32-bit ISS=0x0 imm=0x0");
    let smc = Esr::new(ExceptionClass::Smc64, true, 0x1234);
    assert_eq!(smc.0, 0x5e00_1234);
    assert_eq!(smc.smc().unwrap().imm16(), 0x1234);
    assert!(smc.hvc().is_none());

    let wfi = Esr(0x0600_0000);
    assert_eq!(wfi.wfx().unwrap().kind(), WfxKind::Wfi);
    let wfe = Esr(0x0600_0001);
    assert_eq!(wfe.wfx().unwrap().kind(), WfxKind::Wfe);
    let wfit = Esr::new(ExceptionClass::Wfx, true, 2 | 1 << 2 | 5 << 5);
    assert_eq!(wfit.wfx().unwrap().kind(), WfxKind::Wfit);
    assert_eq!(wfit.wfx().unwrap().timeout_register(), Some(5));
    assert!(wfit.to_string().ends_with("WFIT x5"));
}

#[test]
fn sysreg_trap_from_fields() {
    let iss = SysRegIss::new(sysreg::PMSCR_EL1, 1, Direction::Read);
    let esr = Esr::new(ExceptionClass::SysReg, true, iss.0);
    assert_eq!(esr.0 & 0xffff_ffff_fe00_0000, 0x6200_0000);
    assert_eq!(esr.0, 0x6230_2433);
    let decoded = Esr(0x6230_2433).sysreg().unwrap();
    assert_eq!(decoded, iss);
    assert_eq!((decoded.op0(), decoded.op1(), decoded.crn(), decoded.crm(), decoded.op2()), (3, 0, 9, 9, 0));
    assert_eq!(decoded.rt(), 1);
    assert_eq!(decoded.direction(), Direction::Read);
    assert_eq!(decoded.encoding(), sysreg::PMSCR_EL1);
    assert_eq!(
        Esr(0x6230_2433).to_string(),
        "ESR 0x62302433 EC=0x18 (trapped MSR/MRS/system instruction) IL=32-bit ISS=0x302433 \
         MRS PMSCR_EL1 -> x1 (op0=3 op1=0 CRn=9 CRm=9 op2=0)"
    );
    let w = SysRegIss::new(sysreg::pmevtyper_el0(12), 31, Direction::Write);
    assert_eq!(w.direction(), Direction::Write);
    assert_eq!(w.rt(), 31);
    assert!(w.to_string().starts_with("MSR PMEVTYPER12_EL0 <- x31"));
}

#[test]
fn sysreg_iss_round_trips_every_encoding() {
    for op0 in 0..4u8 {
        for op1 in 0..8u8 {
            for crn in 0..16u8 {
                for crm in 0..16u8 {
                    for op2 in 0..8u8 {
                        let enc = SysRegEnc::new(op0, op1, crn, crm, op2);
                        let rt = (op2 * 7 + crm) % 32;
                        let dir = if crn % 2 == 0 { Direction::Read } else { Direction::Write };
                        let iss = SysRegIss::new(enc, rt, dir);
                        let back = Esr::new(ExceptionClass::SysReg, true, iss.0).sysreg().unwrap();
                        assert_eq!((back.encoding(), back.rt(), back.direction()), (enc, rt, dir));
                    }
                }
            }
        }
    }
}

#[test]
fn exception_classes_round_trip_and_have_names() {
    let mut named = 0;
    for raw in 0..64u8 {
        let ec = ExceptionClass::from_raw(raw);
        assert_eq!(ec.raw(), raw);
        assert_eq!(Esr::new(ec, false, 0).ec(), ec);
        if !matches!(ec, ExceptionClass::Unknown(_)) {
            named += 1;
            assert!(!ec.description().is_empty());
        }
    }
    assert_eq!(named, 46);
    assert_eq!(ExceptionClass::from_raw(0x02), ExceptionClass::Unknown(0x02));
    assert_eq!(ExceptionClass::from_raw(0x3c), ExceptionClass::Brk64);
    assert_eq!(ExceptionClass::from_raw(0x2f).to_string(), "SError");
    assert_eq!(Esr(0x0800_0000).to_string(), "ESR 0x8000000 EC=0x02 (unallocated exception class) IL=16-bit ISS=0x0");
}

#[test]
fn fault_status_codes() {
    use FaultStatus::*;
    let cases = [
        (0x00, AddressSize { level: 0 }, "address size fault level 0"),
        (0x29, AddressSize { level: -1 }, "address size fault level -1"),
        (0x07, Translation { level: 3 }, "translation fault level 3"),
        (0x2b, Translation { level: -1 }, "translation fault level -1"),
        (0x0b, AccessFlag { level: 3 }, "access flag fault level 3"),
        (0x0d, Permission { level: 1 }, "permission fault level 1"),
        (0x10, SyncExternal, "synchronous external abort"),
        (0x11, TagCheck, "tag check fault"),
        (0x15, SyncExternalOnWalk { level: 1 }, "synchronous external abort on table walk level 1"),
        (0x13, SyncExternalOnWalk { level: -1 }, "synchronous external abort on table walk level -1"),
        (0x18, SyncParity, "synchronous parity/ECC error"),
        (0x1f, SyncParityOnWalk { level: 3 }, "synchronous parity/ECC error on table walk level 3"),
        (0x21, Alignment, "alignment fault"),
        (0x28, GranuleProtection, "granule protection fault"),
        (0x30, TlbConflict, "TLB conflict abort"),
        (0x31, UnsupportedAtomicUpdate, "unsupported atomic hardware update"),
        (0x34, ImplementationDefined(0x34), "implementation defined fault 0x34"),
        (0x3f, Reserved(0x3f), "reserved fault status 0x3f"),
    ];
    for (raw, fs, text) in cases {
        assert_eq!(FaultStatus::from_raw(raw), fs, "{raw:#x}");
        assert_eq!(fs.to_string(), text);
    }
    assert_eq!(FaultStatus::from_raw(0x06).level(), Some(2));
    assert_eq!(FaultStatus::from_raw(0x21).level(), None);
}

#[test]
fn instruction_abort() {
    let esr = Esr::new(ExceptionClass::InstrAbortLower, true, 1 << 7 | 0x0f);
    let ia = esr.instr_abort().unwrap();
    assert!(ia.s1ptw());
    assert_eq!(ia.ifsc(), FaultStatus::Permission { level: 3 });
    assert!(esr.to_string().ends_with("IFSC=permission fault level 3, S1PTW=1, EA=0, FnV=0"));
    assert!(esr.data_abort().is_none());
}
