//! The bootable spevisor image.
//!
//! This crate only wires the two halves together: `head.S` (the arm64 Image
//! header and the first instructions), EL2 bring-up from `spevisor-hyp`, and
//! the host kernel from `spevisor-host`, whose entry point EL2 receives as a
//! plain address. The EL2 tree never imports the host tree.
#![no_std]
#![no_main]

use core::arch::global_asm;

global_asm!(include_str!("head.S"));

extern "C" {
    fn spevisor_host_entry();
    static __host_stack_top: u8;
}

/// First Rust code, at EL2 with the MMU off, relocations applied, .bss zeroed.
#[no_mangle]
extern "C" fn spevisor_el2_start(dtb: usize, image_start: usize) -> ! {
    spevisor_hyp::boot::start(spevisor_hyp::boot::BootArgs {
        dtb,
        image_start,
        host_entry: spevisor_host_entry as *const () as usize,
        host_stack_top: core::ptr::addr_of!(__host_stack_top) as usize,
    })
}

/// The EFI application's Rust entry (from `efi_pe_entry` in head.S, MMU on
/// under UEFI, relocations applied): returns only with an EFI error status.
#[no_mangle]
extern "C" fn spevisor_efi_main(image_handle: *mut core::ffi::c_void, system_table: *mut core::ffi::c_void) -> usize {
    // SAFETY: called once, by efi_pe_entry, with the firmware's arguments.
    unsafe { spevisor_efi::stub::efi_main(image_handle, system_table) }
}

/// First Rust code of the host, at EL1 with its MMU off (x0..x3 from EL2).
#[no_mangle]
extern "C" fn spevisor_host_start(dtb: u64, host_mem_start: u64, host_mem_end: u64, boot_tables: u64) -> ! {
    spevisor_host::start(spevisor_host::BootArgs { dtb, mem_start: host_mem_start, mem_end: host_mem_end, boot_tables })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // One image, two worlds: report through the side that panicked.
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects at EL1 or EL2.
    unsafe { core::arch::asm!("mrs {}, CurrentEL", out(reg) el) };
    if (el >> 2) & 3 == 2 {
        spevisor_hyp::panic(info)
    } else {
        spevisor_host::panic(info)
    }
}
