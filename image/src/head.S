/*
 * spevisor entry: arm64 Linux Image header, then the first instructions at EL2.
 *
 * Entered by firmware (QEMU -kernel, U-Boot booti, Raspberry Pi firmware, or
 * the EFI entry below after ExitBootServices) with the MMU and D-cache off,
 * x0 = physical address of the DTB, x1..x3 = 0, at any 2 MiB aligned address. Nothing here may use an absolute address
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

/*
 * PE/COFF (docs/design.md, "Boot paths"): the Image header doubles as an MS-DOS
 * stub ("MZ" at offset 0, the PE header's offset at 0x3c, where the arm64
 * Image header keeps res5), so UEFI firmware can load the same file as an
 * EFI application. code0 is an instruction whose encoding starts with "MZ":
 * `ccmp x18, #0, #0xd, pl` only changes the flags, so the raw Image entry
 * (QEMU -kernel, U-Boot booti) runs it and branches on.
 */
.equ PE_MACHINE_ARM64, 0xaa64
/* IMAGE_FILE_EXECUTABLE_IMAGE | LINE_NUMS_STRIPPED | DEBUG_STRIPPED */
.equ PE_CHARACTERISTICS, 0x0002 | 0x0004 | 0x0200
.equ PE_OPT_MAGIC_PE32PLUS, 0x20b
.equ PE_SUBSYSTEM_EFI_APPLICATION, 10
/* Section alignment = file alignment = one 4 KiB page: file offset == RVA. */
.equ PE_ALIGN, 0x1000
/* Data directories: export, import, resource, exception, security, base
 * relocations. All empty: the image applies its own ELF relocations. */
.equ PE_DATA_DIRS, 6
/* Section flags: code|execute|read, and initialised data|read|write. */
.equ PE_SCN_TEXT, 0x00000020 | 0x20000000 | 0x40000000
.equ PE_SCN_DATA, 0x00000040 | 0x40000000 | 0x80000000

.section .head.text, "ax"
.global _head
_head:
    ccmp    x18, #0, #0xd, pl       /* code0: "MZ", a no-op for the raw entry */
    b       primary_entry           /* code1: branch to the real entry */
    .quad   0                       /* text_offset: load at a 2 MiB boundary */
    .quad   __image_size            /* image_size, including bss */
    .quad   IMAGE_FLAGS
    .quad   0                       /* res2 */
    .quad   0                       /* res3 */
    .quad   0                       /* res4 */
    .ascii  "ARM\x64"               /* magic */
    .long   pe_header - _head       /* res5: offset of the PE header */

    .balign 8
pe_header:
    .ascii  "PE\0\0"
    /* COFF file header */
    .short  PE_MACHINE_ARM64
    .short  (pe_sections_end - pe_sections) / 40    /* NumberOfSections */
    .long   0                       /* TimeDateStamp: reproducible */
    .long   0                       /* PointerToSymbolTable */
    .long   0                       /* NumberOfSymbols */
    .short  pe_sections - pe_opt    /* SizeOfOptionalHeader */
    .short  PE_CHARACTERISTICS
pe_opt:
    /* PE32+ optional header, standard fields */
    .short  PE_OPT_MAGIC_PE32PLUS
    .byte   0, 0                    /* linker version */
    .long   __pe_text_size          /* SizeOfCode */
    .long   __pe_data_file_size     /* SizeOfInitializedData */
    .long   __pe_bss_size           /* SizeOfUninitializedData */
    .long   __pe_entry_rva          /* AddressOfEntryPoint: efi_pe_entry */
    .long   __pe_text_rva           /* BaseOfCode */
    /* Windows-specific fields */
    .quad   0                       /* ImageBase: linked at 0, loaded anywhere */
    .long   PE_ALIGN                /* SectionAlignment */
    .long   PE_ALIGN                /* FileAlignment */
    .short  0, 0                    /* OS version */
    .short  0, 0                    /* image version */
    .short  0, 0                    /* subsystem version */
    .long   0                       /* Win32VersionValue */
    .long   __image_size            /* SizeOfImage, .bss included */
    .long   __pe_text_rva           /* SizeOfHeaders: everything before .text */
    .long   0                       /* CheckSum */
    .short  PE_SUBSYSTEM_EFI_APPLICATION
    .short  0                       /* DllCharacteristics */
    .quad   0, 0, 0, 0              /* stack and heap reserve/commit */
    .long   0                       /* LoaderFlags */
    .long   PE_DATA_DIRS            /* NumberOfRvaAndSizes */
    .rept   PE_DATA_DIRS
    .quad   0
    .endr
pe_sections:
    /* .text: the headers' page excluded, up to the end of the code (RX). */
    .ascii  ".text\0\0\0"
    .long   __pe_text_size          /* VirtualSize */
    .long   __pe_text_rva           /* VirtualAddress */
    .long   __pe_text_size          /* SizeOfRawData */
    .long   __pe_text_rva           /* PointerToRawData */
    .long   0, 0                    /* relocations, line numbers */
    .short  0, 0
    .long   PE_SCN_TEXT
    /* .data: rodata, GOT, relocations, data (file), then .bss and stacks
     * (zero-filled by the loader up to VirtualSize). Every relocation the
     * image applies lands here, never in .text. */
    .ascii  ".data\0\0\0"
    .long   __pe_data_size          /* VirtualSize, up to __image_end */
    .long   __pe_data_rva           /* VirtualAddress (__text_end) */
    .long   __pe_data_file_size     /* SizeOfRawData, up to the end of the file */
    .long   __pe_data_rva           /* PointerToRawData */
    .long   0, 0
    .short  0, 0
    .long   PE_SCN_DATA
pe_sections_end:

/*
 * Applies the R_AARCH64_RELATIVE relocations: *(base + off) = base + addend,
 * for the image at the runtime address of _head. Idempotent (the value comes
 * from the addend, never from memory), so the EFI entry and the raw entry may
 * both run it. Registers: x9 = runtime base, x10/x11 = cursor/end of
 * .rela.dyn, x12..x14 = one Elf64_Rela; nothing else is touched. Only 8-byte
 * aligned stores (with the MMU off memory is Device: unaligned accesses would
 * fault). Any other relocation type branches to \bad.
 */
.macro apply_relocations bad
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
    b.ne    \bad
    add     x14, x14, x9
    str     x14, [x9, x12]
    b       1b
2:
.endm

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

    apply_relocations bad_reloc
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
 * EFI entry (AddressOfEntryPoint): called by UEFI firmware as
 * `efi_main(ImageHandle x0, SystemTable x1)` under the AAPCS64, with the MMU
 * and caches on (UEFI's identity map), on the firmware's stack, with x30 the
 * return address. The relocations are applied where the firmware loaded the
 * image (all of them land in the PE .data section, which the firmware maps
 * writable), then Rust (efi/src/stub.rs) reads the firmware's tables, exits
 * boot services and jumps to primary_entry of a 2 MiB aligned copy with the
 * MMU off. It returns to the firmware only with an EFI error status.
 * Registers: x19/x20 (callee-saved, restored) keep x0/x1 across the loop,
 * which uses x9..x14 only.
 */
.equ EFI_LOAD_ERROR, (1 << 63) | 1
.global efi_pe_entry
efi_pe_entry:
    stp     x29, x30, [sp, #-32]!
    mov     x29, sp
    stp     x19, x20, [sp, #16]
    mov     x19, x0
    mov     x20, x1
    apply_relocations efi_bad_reloc
    mov     x0, x19
    mov     x1, x20
    bl      spevisor_efi_main
efi_return:
    ldp     x19, x20, [sp, #16]
    ldp     x29, x30, [sp], #32
    ret
efi_bad_reloc:
    mov     x0, #EFI_LOAD_ERROR & 0xffff
    movk    x0, #(EFI_LOAD_ERROR >> 48) & 0xffff, lsl #48
    b       efi_return

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
