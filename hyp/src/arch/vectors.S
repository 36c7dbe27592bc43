/*
 * EL2 exception vectors, the host trap path, and guest entry/exit.
 *
 * Ordering and register use that the Rust side relies on:
 * - TPIDR_EL2 is 0 while the host runs and points at the running vcpu's
 *   GuestRegs while a guest runs: it tells a lower-EL exception whose it is.
 * - SP_EL2 is the hypervisor stack; a host trap pushes a TrapFrame on it.
 * - __guest_enter saves the host-side callee-saved registers on SP_EL2 and
 *   stores SP in GuestRegs.host_sp; the guest exit path reloads it and
 *   "returns" from __guest_enter with the exit kind in x0. Everything between
 *   eret and that return is in this file, so the compiler never sees a
 *   function that returns twice.
 */

.equ FRAME_SIZE, 272          /* x0..x30, ELR_EL2, SPSR_EL2, pad */
.equ FRAME_ELR, 248
.equ GUEST_HOST_SP, 248       /* offsetof(GuestRegs, host_sp) */
.equ CALLEE_SAVED_SIZE, 96    /* x19..x30 */
.equ ESR_EC_SHIFT, 26
.equ ISR_A_BIT, 8
.equ EC_HVC64, 0x16

/* Kinds passed to Rust (see arch::ExceptionKind). */
.equ KIND_SYNC, 0
.equ KIND_IRQ, 1
.equ KIND_FIQ, 2
.equ KIND_SERROR, 3
/* Origin offsets added to the kind for unexpected exceptions. */
.equ FROM_EL2_SP0, 0
.equ FROM_EL2_SPX, 4
.equ FROM_LOWER_A64, 8
.equ FROM_LOWER_A32, 12

/* x2..x17 into / out of the frame at sp. */
.macro frame_x2_x17 op
    \op    x2, x3, [sp, #16]
    \op    x4, x5, [sp, #32]
    \op    x6, x7, [sp, #48]
    \op    x8, x9, [sp, #64]
    \op    x10, x11, [sp, #80]
    \op    x12, x13, [sp, #96]
    \op    x14, x15, [sp, #112]
    \op    x16, x17, [sp, #128]
.endm

/* ELR_EL2/SPSR_EL2 into the frame (clobbers x10/x11, already saved). */
.macro save_elr_spsr
    mrs     x10, elr_el2
    mrs     x11, spsr_el2
    stp     x10, x11, [sp, #FRAME_ELR]
.endm

/* Saves x2..x30, ELR_EL2, SPSR_EL2 into the frame at sp (x0/x1 already there). */
.macro save_rest
    frame_x2_x17 stp
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
    save_elr_spsr
.endm

.macro restore_frame_and_eret
    ldp     x10, x11, [sp, #FRAME_ELR]
    msr     elr_el2, x10
    msr     spsr_el2, x11
    ldp     x0, x1, [sp, #0]
    frame_x2_x17 ldp
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    add     sp, sp, #FRAME_SIZE
    eret
    /* No speculation past eret. */
    dsb     nsh
    isb
.endm

/* An exception nobody expects: full frame, then the crash report. */
.macro ventry_unexpected code
    .balign 128
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x1, #\code
    b       el2_unexpected
.endm

/* A lower-EL exception: guest exit if a guest runs, else the host path. */
.macro ventry_lower kind, host_path
    .balign 128
    stp     x0, x1, [sp, #-16]!
    mrs     x0, tpidr_el2
    mov     x1, #\kind
    cbnz    x0, guest_exit
    b       \host_path
.endm

.section .text.vectors, "ax"
.balign 2048
.global el2_vectors
el2_vectors:
    ventry_unexpected (FROM_EL2_SP0 + KIND_SYNC)
    ventry_unexpected (FROM_EL2_SP0 + KIND_IRQ)
    ventry_unexpected (FROM_EL2_SP0 + KIND_FIQ)
    ventry_unexpected (FROM_EL2_SP0 + KIND_SERROR)
    ventry_unexpected (FROM_EL2_SPX + KIND_SYNC)
    ventry_unexpected (FROM_EL2_SPX + KIND_IRQ)
    ventry_unexpected (FROM_EL2_SPX + KIND_FIQ)
    .balign 128
    b       el2_serror_spx
    ventry_lower KIND_SYNC, host_sync
    ventry_lower KIND_IRQ, host_unexpected
    ventry_lower KIND_FIQ, host_unexpected
    ventry_lower KIND_SERROR, host_unexpected
    ventry_unexpected (FROM_LOWER_A32 + KIND_SYNC)
    ventry_unexpected (FROM_LOWER_A32 + KIND_IRQ)
    ventry_unexpected (FROM_LOWER_A32 + KIND_FIQ)
    ventry_unexpected (FROM_LOWER_A32 + KIND_SERROR)

el2_unexpected:
    /* x0/x1 saved at [sp], x1 = code. */
    save_rest
    mov     x0, sp
    /* x1 still holds the code: save_rest does not touch it. */
    bl      el2_unexpected_exception
1:  wfe
    b       1b

/* The host trapped to EL2 synchronously (hvc, or something unexpected). */
host_sync:
    /*
     * Only an HVC64 takes the fast path; anything else gets the full frame
     * and the crash report. x0/x1 are on the stack, free to use.
     */
    mrs     x0, esr_el2
    lsr     x0, x0, #ESR_EC_SHIFT
    cmp     x0, #EC_HVC64
    b.ne    host_unexpected_sync
    ldp     x0, x1, [sp], #16
    /*
     * The hypercall path saves what the Rust handler may clobber (x0..x18,
     * x30, ELR/SPSR): x19..x29 are callee-saved under AAPCS64, so
     * el2_host_sync, and the world switch inside it (__guest_enter restores
     * them too), hand them back unchanged. Their frame slots are unused.
     */
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    frame_x2_x17 stp
    str     x18, [sp, #144]
    str     x30, [sp, #240]
    save_elr_spsr
    mov     x0, sp
    bl      el2_host_sync
    ldp     x10, x11, [sp, #FRAME_ELR]
    msr     elr_el2, x10
    msr     spsr_el2, x11
    ldp     x0, x1, [sp, #0]
    frame_x2_x17 ldp
    ldr     x18, [sp, #144]
    ldr     x30, [sp, #240]
    add     sp, sp, #FRAME_SIZE
    eret
    dsb     nsh
    isb

/*
 * SError at EL2: from the guest-exit window it is the guest's (exit kind
 * becomes KIND_SERROR, back into the window); anywhere else it is a crash.
 * In the window only x0 (GuestRegs*) and x1 (kind) are live.
 */
el2_serror_spx:
    stp     x2, x3, [sp, #-16]!
    mrs     x2, elr_el2
    adr     x3, serror_window
    cmp     x2, x3
    b.lo    1f
    adr     x3, serror_window_end
    cmp     x2, x3
    b.hi    1f
    mov     x1, #KIND_SERROR
    ldp     x2, x3, [sp], #16
    eret
1:  ldp     x2, x3, [sp], #16
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x1, #(FROM_EL2_SPX + KIND_SERROR)
    b       el2_unexpected

/*
 * Turns the x0/x1 pair pushed by ventry_lower into the first two slots of a
 * full frame (the pair ends up in the frame's SPSR/pad slots, which save_rest
 * overwrites later), without touching x1..x30.
 */
.macro pushed_pair_to_frame
    sub     sp, sp, #(FRAME_SIZE - 16)
    ldr     x0, [sp, #(FRAME_SIZE - 16)]
    str     x0, [sp, #0]
    ldr     x0, [sp, #(FRAME_SIZE - 8)]
    str     x0, [sp, #8]
.endm

/* A synchronous trap from the host that is not a hypercall: a bug. */
host_unexpected_sync:
    pushed_pair_to_frame
    mov     x1, #(FROM_LOWER_A64 + KIND_SYNC)
    b       el2_unexpected

/* IRQ/FIQ/SError from the host: the host owns its interrupts (HCR_EL2.IMO/FMO
 * are clear while it runs), so any of these reaching EL2 is a bug.
 * x1 = kind on entry. */
host_unexpected:
    pushed_pair_to_frame
    add     x1, x1, #FROM_LOWER_A64
    b       el2_unexpected

/*
 * u64 __guest_enter(GuestRegs *regs)
 * Runs the guest whose registers are at x0 until it exits to EL2; returns the
 * exception kind. ELR_EL2/SPSR_EL2 must already hold the guest's PC/PSTATE.
 */
.section .text, "ax"
.global __guest_enter
__guest_enter:
    sub     sp, sp, #CALLEE_SAVED_SIZE
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    mov     x9, sp
    str     x9, [x0, #GUEST_HOST_SP]
    msr     tpidr_el2, x0

    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret
    dsb     nsh
    isb

/* x0 = GuestRegs*, x1 = kind, guest x0/x1 at [sp]. */
guest_exit:
    stp     x2, x3, [x0, #16]
    stp     x4, x5, [x0, #32]
    stp     x6, x7, [x0, #48]
    stp     x8, x9, [x0, #64]
    stp     x10, x11, [x0, #80]
    stp     x12, x13, [x0, #96]
    stp     x14, x15, [x0, #112]
    stp     x16, x17, [x0, #128]
    stp     x18, x19, [x0, #144]
    stp     x20, x21, [x0, #160]
    stp     x22, x23, [x0, #176]
    stp     x24, x25, [x0, #192]
    stp     x26, x27, [x0, #208]
    stp     x28, x29, [x0, #224]
    str     x30, [x0, #240]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x0, #0]

    /*
     * An SError the guest caused must be taken here, not by the host once
     * HCR_EL2.AMO is clear again. If one is pending (ISR_EL1.A, read at EL2:
     * physical), unmask SError for one instruction: el2_serror_spx sees the
     * exception come from this window and turns the exit into KIND_SERROR
     * (the VM is stopped). ELR/SPSR/ESR_EL2 are overwritten then; the
     * report loses the guest's PC, which a dying VM can spare.
     */
    mrs     x2, isr_el1
    tbz     x2, #ISR_A_BIT, 2f
    msr     daifclr, #4
serror_window:
    isb
serror_window_end:
    msr     daifset, #4
2:
    ldr     x9, [x0, #GUEST_HOST_SP]
    mov     sp, x9
    msr     tpidr_el2, xzr
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    add     sp, sp, #CALLEE_SAVED_SIZE
    mov     x0, x1
    ret
