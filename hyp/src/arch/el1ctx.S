/*
 * EL1/EL0 system register context save/restore for the world switch, and the
 * pointer-authentication keys (lazy switch). x0 = El1Context* (26 u64 fields
 * in the order below; offsets asserted in sysregs.rs) or PauthKeys* (10 u64:
 * APIA lo/hi, APIB, APDA, APDB, APGA; encodings by number, no assembler
 * extension needed). Uses x1/x2 as scratch, nothing else; no barriers: these
 * registers do not affect EL2 itself, and the world switch orders the regime
 * change with its own dsb/isb and the final eret.
 */
.macro el1_pair op, r1, r2, off
.ifc \op, save
    mrs     x1, \r1
    mrs     x2, \r2
    stp     x1, x2, [x0, #\off]
.else
    ldp     x1, x2, [x0, #\off]
    msr     \r1, x1
    msr     \r2, x2
.endif
.endm

.macro el1_all op
    el1_pair \op, sctlr_el1, ttbr0_el1, 0
    el1_pair \op, ttbr1_el1, tcr_el1, 16
    el1_pair \op, mair_el1, amair_el1, 32
    el1_pair \op, vbar_el1, contextidr_el1, 48
    el1_pair \op, tpidr_el0, tpidr_el1, 64
    el1_pair \op, tpidrro_el0, esr_el1, 80
    el1_pair \op, far_el1, afsr0_el1, 96
    el1_pair \op, afsr1_el1, par_el1, 112
    el1_pair \op, cpacr_el1, cntkctl_el1, 128
    el1_pair \op, csselr_el1, mdscr_el1, 144
    el1_pair \op, sp_el0, sp_el1, 160
    el1_pair \op, elr_el1, spsr_el1, 176
    el1_pair \op, cntv_ctl_el0, cntv_cval_el0, 192
.endm

.section .text, "ax"
.global __el1_save
__el1_save:
    el1_all save
    ret

.global __el1_restore
__el1_restore:
    el1_all restore
    ret

.macro pauth_all op
    el1_pair \op, S3_0_C2_C1_0, S3_0_C2_C1_1, 0
    el1_pair \op, S3_0_C2_C1_2, S3_0_C2_C1_3, 16
    el1_pair \op, S3_0_C2_C2_0, S3_0_C2_C2_1, 32
    el1_pair \op, S3_0_C2_C2_2, S3_0_C2_C2_3, 48
    el1_pair \op, S3_0_C2_C3_0, S3_0_C2_C3_1, 64
.endm

.global __pauth_save
__pauth_save:
    pauth_all save
    ret

.global __pauth_restore
__pauth_restore:
    pauth_all restore
    ret
