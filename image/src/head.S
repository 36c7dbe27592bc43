/*
 * spevisor entry: arm64 Linux Image header, then the first instructions at EL2.
 *
 * Entered by firmware (QEMU -kernel, U-Boot booti, Raspberry Pi firmware) with
 * the MMU and D-cache off, x0 = physical address of the DTB, x1..x3 = 0,
 * at any 2 MiB aligned address. Nothing here may use an absolute address
 * before the relocations are applied, and nothing may touch memory through a
 * cacheable mapping until the MMU is on.
 */

.equ R_AARCH64_RELATIVE, 1027
.equ CURRENTEL_EL2, (2 << 2)
/* Image header flags: little-endian (bit 0 = 0), 4K pages (bits 2:1 = 1),
 * placement anywhere in RAM at a 2 MiB aligned base (bit 3 = 1). */
.equ IMAGE_FLAGS, (1 << 1) | (1 << 3)
/* SCTLR_EL2 reset value we start from: RES1 bits only, MMU/caches off, LE. */
.equ SCTLR_EL2_RES1, (3 << 28) | (3 << 22) | (1 << 18) | (1 << 16) | (1 << 11) | (3 << 4)

.section .head.text, "ax"
.global _head
_head:
    b       primary_entry           /* code0: branch to the real entry */
    .long   0                       /* code1 */
    .quad   0                       /* text_offset: load at a 2 MiB boundary */
    .quad   __image_size            /* image_size, including bss */
    .quad   IMAGE_FLAGS
    .quad   0                       /* res2 */
    .quad   0                       /* res3 */
    .quad   0                       /* res4 */
    .ascii  "ARM\x64"               /* magic */
    .long   0                       /* res5: no PE/COFF header */

.section .text.boot, "ax"
primary_entry:
    /* x19 keeps the DTB address for the whole of this file. */
    mov     x19, x0

    /* Only EL2 is supported: anything else parks the CPU (no console yet). */
    mrs     x9, CurrentEL
    cmp     x9, #CURRENTEL_EL2
    b.ne    wrong_el

    msr     daifset, #0xf
    /* Known SCTLR_EL2: MMU, caches and alignment checks off, little-endian. */
    ldr     x9, =SCTLR_EL2_RES1
    msr     sctlr_el2, x9
    isb

    /*
     * Apply R_AARCH64_RELATIVE relocations: *(base + off) = base + addend.
     * Registers: x9 = runtime base, x10/x11 = cursor/end of .rela.dyn,
     * x12..x14 = one Elf64_Rela. Only 8-byte aligned stores (MMU off:
     * memory is Device, unaligned accesses would fault).
     */
    adr     x9, _head
    adrp    x10, __rela_start
    add     x10, x10, :lo12:__rela_start
    adrp    x11, __rela_end
    add     x11, x11, :lo12:__rela_end
1:  cmp     x10, x11
    b.hs    2f
    ldp     x12, x13, [x10], #16
    ldr     x14, [x10], #8
    cmp     w13, #R_AARCH64_RELATIVE
    b.ne    bad_reloc
    add     x14, x14, x9
    str     x14, [x9, x12]
    b       1b
2:
    /* Zero .bss (16-byte aligned by the linker script). */
    adrp    x10, __bss_start
    add     x10, x10, :lo12:__bss_start
    adrp    x11, __bss_end
    add     x11, x11, :lo12:__bss_end
3:  cmp     x10, x11
    b.hs    4f
    stp     xzr, xzr, [x10], #16
    b       3b
4:
    /*
     * Discard any stale cache lines over the whole image: it was just written
     * with the caches off and will be read through cacheable mappings.
     * x10 = cursor, x11 = end, x12 = line size from CTR_EL0.DminLine.
     */
    mrs     x12, ctr_el0
    ubfx    x12, x12, #16, #4
    mov     x13, #4
    lsl     x12, x13, x12
    adr     x10, _head
    adrp    x11, __image_end
    add     x11, x11, :lo12:__image_end
5:  dc      ivac, x10
    add     x10, x10, x12
    cmp     x10, x11
    b.lo    5b
    dsb     sy
    isb

    adrp    x9, __el2_stack_top
    add     x9, x9, :lo12:__el2_stack_top
    mov     sp, x9
    mov     x29, xzr
    mov     x30, xzr

    mov     x0, x19
    adr     x1, _head
    bl      spevisor_el2_start
    b       park

bad_reloc:
wrong_el:
park:
    wfe
    b       park

/*
 * Host entry, reached by the hypervisor's eret to EL1h with x0..x3 = boot
 * arguments and SP_EL1 already pointing at the host stack.
 */
.section .text, "ax"
.global spevisor_host_entry
spevisor_host_entry:
    mov     x29, xzr
    mov     x30, xzr
    bl      spevisor_host_start
    b       park

/* Stacks, page aligned, in .bss (RW, never executable): 64 KiB for EL2,
 * 256 KiB for the host, whose VMs (GIC model included, several KiB each)
 * live on its stack. A page between them that nothing uses keeps a host
 * stack overflow from reaching EL2's stack first (there is no guard page:
 * EL2 maps .bss RW as one range). */
.equ STACK_SIZE, 64 * 1024
.equ HOST_STACK_SIZE, 256 * 1024
.section .bss.stacks, "aw", %nobits
.balign 4096
.global __el2_stack_bottom, __el2_stack_top, __host_stack_bottom, __host_stack_top
__el2_stack_bottom:
    .space  STACK_SIZE
__el2_stack_top:
    .space  4096
__host_stack_bottom:
    .space  HOST_STACK_SIZE
__host_stack_top:
