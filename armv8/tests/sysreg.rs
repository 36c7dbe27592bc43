use spevisor_armv8::sysreg::*;

#[test]
fn named_registers_classify() {
    let pmu = [
        PMCR_EL0,
        PMCNTENSET_EL0,
        PMCNTENCLR_EL0,
        PMOVSCLR_EL0,
        PMOVSSET_EL0,
        PMSWINC_EL0,
        PMSELR_EL0,
        PMCEID0_EL0,
        PMCEID1_EL0,
        PMCCNTR_EL0,
        PMXEVTYPER_EL0,
        PMXEVCNTR_EL0,
        PMUSERENR_EL0,
        PMINTENSET_EL1,
        PMINTENCLR_EL1,
        PMMIR_EL1,
        PMCCFILTR_EL0,
    ];
    for r in pmu {
        assert_eq!(classify(r), SysRegClass::Pmu, "{r}");
    }
    for n in 0..PMU_EVENT_COUNTERS {
        assert_eq!(classify(pmevcntr_el0(n)), SysRegClass::Pmu);
        assert_eq!(classify(pmevtyper_el0(n)), SysRegClass::Pmu);
    }
    let spe = [
        PMSCR_EL1,
        PMSNEVFR_EL1,
        PMSICR_EL1,
        PMSIRR_EL1,
        PMSFCR_EL1,
        PMSEVFR_EL1,
        PMSLATFR_EL1,
        PMSIDR_EL1,
        PMBLIMITR_EL1,
        PMBPTR_EL1,
        PMBSR_EL1,
        PMBIDR_EL1,
        PMSCR_EL2,
        PMSCR_EL12,
    ];
    for r in spe {
        assert_eq!(classify(r), SysRegClass::Spe, "{r}");
        assert_eq!(r.class(), SysRegClass::Spe);
    }
    let debug = [
        MDSCR_EL1,
        MDCCINT_EL1,
        MDCCSR_EL0,
        OSLAR_EL1,
        OSLSR_EL1,
        OSDLR_EL1,
        OSDTRRX_EL1,
        OSDTRTX_EL1,
        OSECCR_EL1,
        MDRAR_EL1,
        DBGPRCR_EL1,
        DBGCLAIMSET_EL1,
        DBGCLAIMCLR_EL1,
        DBGAUTHSTATUS_EL1,
        DBGDTR_EL0,
        DBGDTRRX_EL0,
        DBGVCR32_EL2,
        TRBLIMITR_EL1,
        TRBPTR_EL1,
        TRBBASER_EL1,
        TRBSR_EL1,
        TRBMAR_EL1,
        TRBTRG_EL1,
        TRBIDR_EL1,
    ];
    for r in debug {
        assert_eq!(classify(r), SysRegClass::Debug, "{r}");
    }
    for n in 0..16 {
        for r in [dbgbvr_el1(n), dbgbcr_el1(n), dbgwvr_el1(n), dbgwcr_el1(n)] {
            assert_eq!(classify(r), SysRegClass::Debug, "{r}");
        }
    }
    for r in [LORSA_EL1, LOREA_EL1, LORN_EL1, LORC_EL1, LORID_EL1] {
        assert_eq!(classify(r), SysRegClass::Lor, "{r}");
    }
    // Neighbours that must stay Other: timers share op1=3 CRn=14, SCTLR_EL1,
    // MAIR_EL1 (CRn=10 CRm=2), PMSELR's EL1 cousin slots that do not exist.
    let other = [
        SysRegEnc::new(3, 3, 14, 0, 1), // CNTPCT_EL0
        SysRegEnc::new(3, 3, 14, 3, 1), // CNTV_CTL_EL0
        SysRegEnc::new(3, 0, 1, 0, 0),  // SCTLR_EL1
        SysRegEnc::new(3, 0, 10, 2, 0), // MAIR_EL1
        SysRegEnc::new(3, 0, 9, 14, 0), // unallocated
        SysRegEnc::new(3, 0, 4, 0, 0),  // SPSR_EL1
    ];
    for r in other {
        assert_eq!(classify(r), SysRegClass::Other, "{r}");
    }
}

#[test]
fn encodings_match_the_arm_arm() {
    assert_eq!(PMSCR_EL1, SysRegEnc::new(3, 0, 9, 9, 0));
    assert_eq!(PMSIDR_EL1, SysRegEnc::new(3, 0, 9, 9, 7));
    assert_eq!(PMBLIMITR_EL1, SysRegEnc::new(3, 0, 9, 10, 0));
    assert_eq!(PMBSR_EL1, SysRegEnc::new(3, 0, 9, 10, 3));
    assert_eq!(PMBIDR_EL1, SysRegEnc::new(3, 0, 9, 10, 7));
    assert_eq!(PMCR_EL0, SysRegEnc::new(3, 3, 9, 12, 0));
    assert_eq!(pmevcntr_el0(0), SysRegEnc::new(3, 3, 14, 8, 0));
    assert_eq!(pmevcntr_el0(30), SysRegEnc::new(3, 3, 14, 11, 6));
    assert_eq!(pmevtyper_el0(9), SysRegEnc::new(3, 3, 14, 13, 1));
    assert_eq!(MDSCR_EL1, SysRegEnc::new(2, 0, 0, 2, 2));
    assert_eq!(OSLAR_EL1, SysRegEnc::new(2, 0, 1, 0, 4));
    assert_eq!(dbgbcr_el1(5), SysRegEnc::new(2, 0, 0, 5, 5));
}

#[test]
fn names_and_indices_round_trip() {
    for n in 0..PMU_EVENT_COUNTERS {
        assert_eq!(pmevcntr_el0(n).pmevcntr_index(), Some(n));
        assert_eq!(pmevtyper_el0(n).pmevtyper_index(), Some(n));
        assert_eq!(pmevcntr_el0(n).pmevtyper_index(), None);
        assert_eq!(pmevcntr_el0(n).to_string(), format!("PMEVCNTR{n}_EL0"));
        assert_eq!(pmevtyper_el0(n).to_string(), format!("PMEVTYPER{n}_EL0"));
    }
    assert_eq!(PMCCFILTR_EL0.pmevtyper_index(), None);
    assert_eq!(PMCCFILTR_EL0.to_string(), "PMCCFILTR_EL0");
    assert_eq!(dbgwvr_el1(3).debug_breakpoint(), Some((DebugPointReg::Wvr, 3)));
    assert_eq!(dbgbvr_el1(15).to_string(), "DBGBVR15_EL1");
    assert_eq!(PMSCR_EL1.to_string(), "PMSCR_EL1");
    assert_eq!(PMSCR_EL1.name(), Some("PMSCR_EL1"));
    assert_eq!(SysRegEnc::new(3, 0, 1, 0, 0).to_string(), "S3_0_C1_C0_0");
    assert_eq!(SysRegEnc::new(3, 9, 16, 17, 9), SysRegEnc::new(3, 1, 0, 1, 1), "fields masked");
}
