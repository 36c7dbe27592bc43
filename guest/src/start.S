// Boot code and exception vectors of the test guest.
//
// The hypervisor starts the vcpu at _start (IPA 0x4000_0000, the first byte of
// the image) at EL1 with the MMU and caches off, x0 = mode, x1 = RAM size in
// bytes, x2 = argument. With the MMU off every data access is Device-nGnRnE,
// so nothing here may do an unaligned access, and no Rust code runs before the
// MMU is on. Operands in braces come from main.rs (global_asm!).

// Bits of DAIFSet: D, A, I, F.
.equ DAIF_ALL, 0xf
// SPSel = 1: use SP_EL1 at EL1.
.equ SPSEL_ELX, 1
// CTR_EL0.DminLine: log2 of the smallest data cache line, in 4-byte words.
.equ CTR_DMINLINE_SHIFT, 16
.equ CTR_DMINLINE_BITS, 4
.equ BYTES_PER_WORD, 4
// Exception vectors: 16 entries of 128 bytes, table aligned to 2 KiB.
.equ VECTOR_ENTRY_ALIGN, 128
.equ VECTOR_TABLE_ALIGN, 2048

// Loads a 64-bit constant into a register (movz + 3 movk; no literal pool).
.macro mov64 reg, val
    movz \reg, #((\val) & 0xffff)
    movk \reg, #(((\val) >> 16) & 0xffff), lsl #16
    movk \reg, #(((\val) >> 32) & 0xffff), lsl #32
    movk \reg, #(((\val) >> 48) & 0xffff), lsl #48
.endm

// Loads the address of a symbol (PC-relative: no relocation at run time).
.macro adr_l reg, sym
    adrp \reg, \sym
    add \reg, \reg, :lo12:\sym
.endm

// Stage 1 on (every vcpu, the same tables; clobbers x0): MAIR/TCR/TTBR0
// first, TTBR1 unused (TCR_EL1.EPD1 = 1). The isb makes the register writes
// visible to the TLB maintenance and to the MMU enable; no stale EL1
// translations may survive (tlbi, completed by the dsb) before translation
// starts. Instructions after the last isb are fetched with the MMU on
// (identity map, so the PC stays valid).
.macro mmu_on
    mov64 x0, {MAIR}
    msr mair_el1, x0
    mov64 x0, {TCR}
    msr tcr_el1, x0
    adr_l x0, {L1_TABLE}
    msr ttbr0_el1, x0
    msr ttbr1_el1, xzr
    isb
    tlbi vmalle1
    dsb nsh
    isb
    mov64 x0, {SCTLR}
    msr sctlr_el1, x0
    isb
.endm

.section .text.boot, "ax"
.global _start
_start:
    // The very first instruction reads the virtual counter (CNTVOFF_EL2 is 0:
    // the time since reset, for the boot benchmark); guest_main gets it in x3.
    mrs x22, cntvct_el0
    // Keep the entry registers in callee-saved x19..x21 for guest_main.
    mov x19, x0
    mov x20, x1
    mov x21, x2

    // No interrupts: the guest polls. SP_EL1 is the stack from here on.
    msr daifset, #DAIF_ALL
    msr spsel, #SPSEL_ELX
    adr_l x0, __stack_top
    mov sp, x0

    // Zero .bss (stack and statics). Its bounds are 16-byte aligned (linker
    // script), so each stp is an aligned store, allowed to Device memory.
    // Lines the host may have left in the cache for these addresses are
    // cleaned and invalidated first (so none can be written back over the
    // zeroes) and invalidated again after (so no stale line shadows them once
    // the caches are on).
    adr_l x0, __bss_start
    adr_l x1, __bss_end
    bl dcache_inval_range
    adr_l x0, __bss_start
1:  cmp x0, x1
    b.hs 2f
    stp xzr, xzr, [x0], #16
    b 1b
2:  adr_l x0, __bss_start
    bl dcache_inval_range

    adr_l x0, guest_vectors
    msr vbar_el1, x0

    mmu_on

    mov x0, x19
    mov x1, x20
    mov x2, x21
    mov x3, x22
    bl {guest_main}
    // guest_main does not return.
3:  wfi
    b 3b

// Secondary vcpus (PSCI CPU_ON) start here with the MMU off and x0 = the
// context vcpu 0 passed: the top of this vcpu's stack (16-byte aligned, in
// .bss, which vcpu 0 zeroed and cleaned long ago). Same vectors and
// translation as vcpu 0; then secondary_main(stack top).
.global secondary_start
secondary_start:
    msr daifset, #DAIF_ALL
    msr spsel, #SPSEL_ELX
    mov sp, x0
    mov x19, x0
    adr_l x0, guest_vectors
    msr vbar_el1, x0
    mmu_on
    mov x0, x19
    bl {secondary_main}
5:  wfi
    b 5b

// Cleans and invalidates (DC IVAC; at EL1 under a hypervisor's stage 2 it
// also cleans) the data cache lines covering [x0, x1) to the point of
// coherency. Clobbers x0, x2, x3. Ends with dsb sy: the maintenance is
// complete before any later access.
dcache_inval_range:
    mrs x3, ctr_el0
    ubfx x3, x3, #CTR_DMINLINE_SHIFT, #CTR_DMINLINE_BITS
    mov x2, #BYTES_PER_WORD
    lsl x2, x2, x3
    sub x3, x2, #1
    bic x0, x0, x3
4:  dc ivac, x0
    add x0, x0, x2
    cmp x0, x1
    b.lo 4b
    dsb sy
    ret

// One vector entry: reserve the frame, save x0/x1, pass the entry's index
// (0..15: {{current EL SP0, current EL SPx, lower EL AArch64, lower EL
// AArch32}} x {{sync, IRQ, FIQ, SError}}) in x0.
.macro vector index
    .balign VECTOR_ENTRY_ALIGN
    sub sp, sp, #{FRAME_SIZE}
    stp x0, x1, [sp]
    mov x0, #\index
    b exception_entry
.endm

.text
.balign VECTOR_TABLE_ALIGN
.global guest_vectors
guest_vectors:
    .irp index, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    vector \index
    .endr

// Saves the registers the AAPCS64 lets the Rust handler clobber (x0..x18,
// x29, x30; x0/x1 already saved by the entry), calls exception(index) and
// restores them. ELR_EL1/SPSR_EL1 (including the interrupted code's NZCV)
// stay in the system registers: the handler takes no nested exception on its
// recoverable path, and eret restores PSTATE and the PC from them.
exception_entry:
    stp x2, x3, [sp, #16 * 1]
    stp x4, x5, [sp, #16 * 2]
    stp x6, x7, [sp, #16 * 3]
    stp x8, x9, [sp, #16 * 4]
    stp x10, x11, [sp, #16 * 5]
    stp x12, x13, [sp, #16 * 6]
    stp x14, x15, [sp, #16 * 7]
    stp x16, x17, [sp, #16 * 8]
    stp x18, x29, [sp, #16 * 9]
    str x30, [sp, #16 * 10]
    bl {exception}
    ldp x2, x3, [sp, #16 * 1]
    ldp x4, x5, [sp, #16 * 2]
    ldp x6, x7, [sp, #16 * 3]
    ldp x8, x9, [sp, #16 * 4]
    ldp x10, x11, [sp, #16 * 5]
    ldp x12, x13, [sp, #16 * 6]
    ldp x14, x15, [sp, #16 * 7]
    ldp x16, x17, [sp, #16 * 8]
    ldp x18, x29, [sp, #16 * 9]
    ldr x30, [sp, #16 * 10]
    ldp x0, x1, [sp]
    add sp, sp, #{FRAME_SIZE}
    eret

// The stack, in .bss (zeroed above), 16-byte aligned.
.section .bss.stack, "aw", %nobits
.balign 16
__stack_bottom:
    .space {STACK_SIZE}
__stack_top:
