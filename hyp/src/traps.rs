//! Trap configuration: what EL2 intercepts while a guest runs, and the host's
//! (almost nothing) while the host runs.

/// HCR_EL2 bits (Arm ARM D19.2.48).
pub mod hcr {
    pub const VM: u64 = 1 << 0;
    pub const SWIO: u64 = 1 << 1;
    pub const PTW: u64 = 1 << 2;
    pub const FMO: u64 = 1 << 3;
    pub const IMO: u64 = 1 << 4;
    pub const AMO: u64 = 1 << 5;
    pub const FB: u64 = 1 << 9;
    pub const BSU_INNER: u64 = 0b01 << 10;
    pub const TWI: u64 = 1 << 13;
    pub const TID3: u64 = 1 << 18;
    pub const TSC: u64 = 1 << 19;
    pub const TIDCP: u64 = 1 << 20;
    pub const TACR: u64 = 1 << 21;
    pub const TSW: u64 = 1 << 22;
    pub const RW: u64 = 1 << 31;
    pub const TLOR: u64 = 1 << 35;
    pub const APK: u64 = 1 << 40;
    pub const API: u64 = 1 << 41;
}

/// HCR_EL2 for the host: AArch64 EL1, no stage-2, its own interrupts.
/// Pointer authentication untrapped (API/APK) where it exists: see [`hcr`].
pub const HCR_HOST: u64 = hcr::RW;

/// HCR_EL2 for guests: stage-2 on; physical IRQ/FIQ/SError to EL2; SMC, WFI,
/// set/way maintenance, implementation-defined and auxiliary control
/// registers trapped; ID group 3 reads trapped (TID3: `idregs.rs` hides
/// what guests do not get); stage-1 walks to device memory fault. Pointer
/// authentication (API/APK clear) traps until the guest first uses it, when
/// the world switch loads its keys (lazy, like FP); LOR registers trap where
/// they exist (TLOR): see [`hcr_values`].
pub const HCR_GUEST: u64 = hcr::VM
    | hcr::SWIO
    | hcr::PTW
    | hcr::FMO
    | hcr::IMO
    | hcr::AMO
    | hcr::FB
    | hcr::BSU_INNER
    | hcr::TWI
    | hcr::TID3
    | hcr::TSC
    | hcr::TIDCP
    | hcr::TACR
    | hcr::TSW
    | hcr::RW;

/// HCR_EL2 values for (host, guest) on a CPU with or without pointer
/// authentication and LORegions: bits for absent features are RES0 and stay
/// clear.
pub const fn hcr_values(pauth: bool, lor: bool) -> (u64, u64) {
    let host = HCR_HOST | if pauth { hcr::API | hcr::APK } else { 0 };
    let guest = HCR_GUEST | if lor { hcr::TLOR } else { 0 };
    (host, guest)
}

/// MDCR_EL2 bits.
pub mod mdcr {
    pub const HPMN_MASK: u64 = 0x1f;
    pub const TPMCR: u64 = 1 << 5;
    pub const TPM: u64 = 1 << 6;
    pub const TDA: u64 = 1 << 9;
    pub const TDOSA: u64 = 1 << 10;
    pub const TDRA: u64 = 1 << 11;
    pub const E2PB_SHIFT: u64 = 12;
    pub const E2PB_MASK: u64 = 0b11 << E2PB_SHIFT;
    /// E2PB = 0b11: the profiling buffer belongs to EL1 (the host).
    pub const E2PB_EL1: u64 = 0b11 << E2PB_SHIFT;
    /// E2PB = 0b00: the buffer uses EL2's regime; EL1 accesses trap.
    pub const E2PB_EL2: u64 = 0b00 << E2PB_SHIFT;
    pub const TPMS: u64 = 1 << 14;
    /// Trap TRFCR_EL1 (FEAT_TRF; RES0 without it).
    pub const TTRF: u64 = 1 << 19;
    /// E2TB: who owns the trace buffer (FEAT_TRBE; RES0 without it, but
    /// QEMU keeps the bits, which the TRBE model reads).
    pub const E2TB_SHIFT: u64 = 24;
    pub const E2TB_MASK: u64 = 0b11 << E2TB_SHIFT;
    /// E2TB = 0b11: the trace buffer belongs to EL1 (the host).
    pub const E2TB_EL1: u64 = 0b11 << E2TB_SHIFT;
}

/// MDCR_EL2 for a guest from the host's: same HPMN, the buffer taken away
/// from EL1 (E2PB=0b00), sampling controls (TPMS), PMU and debug trapped,
/// and the trace filter control (TTRF) where FEAT_TRF exists (`trf`).
pub const fn mdcr_guest(host_mdcr: u64, trf: bool) -> u64 {
    (if trf { mdcr::TTRF } else { 0 })
        | (host_mdcr & mdcr::HPMN_MASK)
        | mdcr::E2PB_EL2
        | mdcr::TPMS
        | mdcr::TPM
        | mdcr::TPMCR
        | mdcr::TDA
        | mdcr::TDOSA
        | mdcr::TDRA
}

/// CPTR_EL2 (nVHE layout).
pub mod cptr {
    /// RES1 bits: 13, 9, 7:0.
    pub const RES1: u64 = (1 << 13) | (1 << 9) | 0xff;
    /// Trap SVE.
    pub const TZ: u64 = 1 << 8;
    /// Trap FP/SIMD.
    pub const TFP: u64 = 1 << 10;
    /// Trap SME.
    pub const TSM: u64 = 1 << 12;
    /// Trap the trace registers (RES0 without System register trace).
    pub const TTA: u64 = 1 << 20;
    /// Trap the activity monitors (FEAT_AMUv1; RES0 without).
    pub const TAM: u64 = 1 << 30;
}

/// CPTR_EL2 for the host: FP allowed, SVE/SME trapped (unused by the host).
pub const CPTR_HOST: u64 = cptr::RES1 | cptr::TZ | cptr::TSM;
/// CPTR_EL2 for a guest: FP/SIMD trapped until its first use (lazy switch).
pub const CPTR_GUEST: u64 = CPTR_HOST | cptr::TFP;

/// CPTR_EL2 for guests on this CPU: [`CPTR_GUEST`] plus the trace (`trace`:
/// System register trace exists) and activity-monitor (`amu`) traps. The
/// world switch carries neither: the ID registers tell guests they are
/// absent, and the traps make sure (an access gets what an absent register
/// gives, `vcpu::emulate_sysreg`).
pub const fn cptr_guest(trace: bool, amu: bool) -> u64 {
    CPTR_GUEST | if trace { cptr::TTA } else { 0 } | if amu { cptr::TAM } else { 0 }
}

/// CNTHCTL_EL2 (nVHE): EL1PCTEN (bit 0) lets EL1 read the physical counter,
/// EL1PCEN (bit 1) lets it use the physical timer.
pub const CNTHCTL_HOST: u64 = 0b11;
/// Guests use the virtual timer; the physical timer traps (the host
/// emulates one per vcpu), its counter does not (it reads as the virtual
/// one: CNTVOFF_EL2 is 0).
pub const CNTHCTL_GUEST: u64 = 0b01;

#[cfg(target_arch = "aarch64")]
pub use imp::*;

#[cfg(target_arch = "aarch64")]
mod imp {
    use super::*;
    use aarch64_cpu::registers::*;

    /// Guest traps on; in the order the contract lists them. The values
    /// come from [`hcr_values`], [`mdcr_guest`] and [`cptr_guest`] (for
    /// this CPU's features, computed once at boot).
    pub fn activate_guest(hcr_guest: u64, mdcr_guest: u64, cptr_guest: u64) {
        HCR_EL2.set(hcr_guest);
        MDCR_EL2.set(mdcr_guest);
        CPTR_EL2.set(cptr_guest);
        CNTHCTL_EL2.set(CNTHCTL_GUEST);
    }

    /// The guest used FP/SIMD and now owns the registers: stop trapping it.
    pub fn allow_guest_fp(cptr_guest: u64) {
        CPTR_EL2.set(cptr_guest & !cptr::TFP);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }

    /// The guest used pointer authentication and now has its keys loaded:
    /// stop trapping it.
    pub fn allow_guest_pauth(hcr_guest: u64) {
        HCR_EL2.set(hcr_guest | hcr::API | hcr::APK);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }

    /// The guest's debug registers are loaded (`debug::switch_to_guest`):
    /// stop trapping them (MDCR_EL2.TDA only; TDOSA/TDRA stay, the OS lock
    /// is emulated). Read-modify-write: other lazily lifted MDCR_EL2 bits
    /// stay as they are.
    pub fn allow_guest_debug() {
        MDCR_EL2.set(MDCR_EL2.get() & !mdcr::TDA);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }

    /// The guest's debug registers unloaded again (its OS lock blocks
    /// debug): trap them (MDCR_EL2.TDA).
    pub fn trap_guest_debug() {
        MDCR_EL2.set(MDCR_EL2.get() | mdcr::TDA);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }

    /// The host's trap configuration back.
    pub fn activate_host(host_mdcr: u64, hcr_host: u64) {
        HCR_EL2.set(hcr_host);
        MDCR_EL2.set(host_mdcr);
        CPTR_EL2.set(CPTR_HOST);
        CNTHCTL_EL2.set(CNTHCTL_HOST);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_loses_the_profiling_buffer_and_the_host_keeps_it() {
        let host = 6 | mdcr::E2PB_EL1;
        let g = mdcr_guest(host, false);
        assert_eq!(g & mdcr::TTRF, 0, "RES0 without FEAT_TRF");
        assert_ne!(mdcr_guest(host, true) & mdcr::TTRF, 0);
        assert_eq!(g & mdcr::E2PB_MASK, 0, "E2PB must be 0b00 for guests");
        assert_eq!(g & mdcr::E2TB_MASK, 0, "E2TB must be 0b00 for guests");
        assert_ne!(g & mdcr::TPMS, 0);
        assert_ne!(g & mdcr::TPM, 0);
        assert_eq!(g & mdcr::HPMN_MASK, 6, "HPMN kept");
        assert_eq!(host & mdcr::E2PB_MASK, mdcr::E2PB_EL1);
    }

    #[test]
    fn stage2_and_interrupt_routing_only_for_guests() {
        for bit in [hcr::VM, hcr::IMO, hcr::FMO, hcr::AMO, hcr::TSC, hcr::TWI] {
            assert_ne!(HCR_GUEST & bit, 0);
            assert_eq!(HCR_HOST & bit, 0);
        }
        assert_ne!(HCR_HOST & hcr::RW, 0);
        let (host, guest) = hcr_values(true, true);
        assert_eq!(host & (hcr::API | hcr::APK), hcr::API | hcr::APK, "the host uses its keys freely");
        assert_eq!(guest & (hcr::API | hcr::APK), 0, "guests trap until their keys are loaded");
        assert_ne!(guest & hcr::TLOR, 0);
        let (host, guest) = hcr_values(false, false);
        assert_eq!(host & (hcr::API | hcr::APK), 0, "RES0 without pointer authentication");
        assert_eq!(guest & hcr::TLOR, 0, "RES0 without LORegions");
        assert_ne!(CPTR_GUEST & cptr::TFP, 0, "lazy FP needs the trap");
        assert_eq!(CPTR_HOST & cptr::TFP, 0, "the host may use FP");
        assert_eq!(CNTHCTL_GUEST & 0b10, 0, "guests may not use the physical timer");
        assert_eq!(cptr_guest(false, false), CPTR_GUEST, "TTA/TAM RES0 without trace/AMU");
        assert_eq!(cptr_guest(true, true) & (cptr::TTA | cptr::TAM), cptr::TTA | cptr::TAM);
        assert_eq!(CPTR_HOST & (cptr::TTA | cptr::TAM), 0, "the host keeps trace and AMU");
    }
}
