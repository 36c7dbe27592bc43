/*
 * Pointer-authentication key save/restore (lazy switch, see switch.rs).
 * x0 = PauthKeys* (10 u64: APIA lo/hi, APIB lo/hi, APDA lo/hi, APDB lo/hi,
 * APGA lo/hi). Uses x1/x2 as scratch. Encodings by number so no assembler
 * extension is needed: APIAKeyLo_EL1 is S3_0_C2_C1_0, and so on.
 */
.macro pauth_pair op, lo, hi, off
.ifc \op, save
    mrs     x1, \lo
    mrs     x2, \hi
    stp     x1, x2, [x0, #\off]
.else
    ldp     x1, x2, [x0, #\off]
    msr     \lo, x1
    msr     \hi, x2
.endif
.endm

.macro pauth_all op
    pauth_pair \op, S3_0_C2_C1_0, S3_0_C2_C1_1, 0
    pauth_pair \op, S3_0_C2_C1_2, S3_0_C2_C1_3, 16
    pauth_pair \op, S3_0_C2_C2_0, S3_0_C2_C2_1, 32
    pauth_pair \op, S3_0_C2_C2_2, S3_0_C2_C2_3, 48
    pauth_pair \op, S3_0_C2_C3_0, S3_0_C2_C3_1, 64
.endm

.section .text, "ax"
.global __pauth_save
__pauth_save:
    pauth_all save
    ret

.global __pauth_restore
__pauth_restore:
    pauth_all restore
    ret
