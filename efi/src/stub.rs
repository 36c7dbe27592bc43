//! The EFI stub: from UEFI's `efi_main` to the image's raw entry.
//!
//! Entered from `efi_pe_entry` (image/src/head.S) with the relocations
//! applied where the firmware loaded the image, the MMU and caches on
//! (UEFI's identity map), on the firmware's stack. In order:
//! 1. At EL2 or refuse (printed on the firmware's console, returned as an
//!    error: the firmware's boot manager goes on).
//! 2. The configuration table: a device tree, else ACPI 2.0's RSDP (its
//!    tables parsed now, while an error can still be printed, and read only
//!    where a first memory map describes memory: a table pointer into a
//!    hole or MMIO is an error, not a fault).
//! 3. The load options (UCS-2) become `/chosen/bootargs`.
//! 4. Allocations, all before the final memory map: the memory map buffer,
//!    a 2 MiB aligned copy of the image (the raw entry's placement rule)
//!    low in the largest free region ([`memmap::placement`]), the new
//!    device tree.
//! 5. `GetMemoryMap`, the device tree written with RAM from it,
//!    `ExitBootServices` with its key (again, map and tree rewritten, when
//!    the key went stale: EFI_INVALID_PARAMETER).
//! 6. The copy and the tree cleaned to the point of coherency, the EL2 MMU
//!    and caches turned off, and the copy entered at its first instruction
//!    with x0 = the tree, as the arm64 boot protocol wants.
//!
//! Nothing here writes a static: the copy is taken from the loaded image's
//! bytes, which must still be the file's (plus relocations, which the raw
//! entry applies again from their addends).

use crate::{acpi, dt, memmap};
use core::ffi::c_void;

type Status = usize;
type Handle = *mut c_void;

const EFI_SUCCESS: Status = 0;
const EFI_ERROR_BIT: Status = 1 << 63;
const EFI_LOAD_ERROR: Status = EFI_ERROR_BIT | 1;
const EFI_INVALID_PARAMETER: Status = EFI_ERROR_BIT | 2;
const EFI_UNSUPPORTED: Status = EFI_ERROR_BIT | 3;
const EFI_BUFFER_TOO_SMALL: Status = EFI_ERROR_BIT | 5;
const EFI_OUT_OF_RESOURCES: Status = EFI_ERROR_BIT | 9;

/// `EFI_ALLOCATE_TYPE` AllocateAnyPages and AllocateAddress, and
/// `EFI_MEMORY_TYPE` EfiLoaderData.
const ALLOCATE_ANY_PAGES: u32 = 0;
const ALLOCATE_ADDRESS: u32 = 2;
const EFI_LOADER_DATA: u32 = 2;

/// The raw entry's placement rule (image/src/head.S, Image header flags).
const IMAGE_ALIGN: u64 = 2 << 20;
/// Room for the tree written from ACPI (a few KiB) or beside a copied one.
const DT_EXTRA: usize = 64 * 1024;
/// Descriptors of slack in the memory map buffer: the allocation of the
/// buffer itself and the firmware's own may add a few.
const MAP_SLACK_DESCRIPTORS: usize = 32;
/// ExitBootServices attempts (a stale key is retried with a fresh map).
const EXIT_ATTEMPTS: usize = 4;
/// Longest command line kept from the load options.
const MAX_BOOTARGS: usize = 1024;
/// CurrentEL value at EL2.
const CURRENT_EL_EL2: u64 = 2 << 2;
/// SCTLR_EL2: M (MMU), C (data cache), I (instruction cache).
const SCTLR_M: u64 = 1 << 0;
const SCTLR_C: u64 = 1 << 2;
const SCTLR_I: u64 = 1 << 12;

#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
struct Guid(u32, u16, u16, [u8; 8]);

/// `EFI_DTB_TABLE_GUID` (the device tree in the configuration table).
const DTB_GUID: Guid = Guid(0xb1b6_21d5, 0xf19c, 0x41a5, [0x83, 0x0b, 0xd9, 0x15, 0x2c, 0x69, 0xaa, 0xe0]);
/// `EFI_ACPI_20_TABLE_GUID` (the ACPI 2.0+ RSDP).
const ACPI_20_GUID: Guid = Guid(0x8868_e871, 0xe4f1, 0x11d3, [0xbc, 0x22, 0x00, 0x80, 0xc7, 0x3c, 0x88, 0x81]);
/// `EFI_LOADED_IMAGE_PROTOCOL_GUID`.
const LOADED_IMAGE_GUID: Guid = Guid(0x5b1b_31a1, 0x9562, 0x11d2, [0x8e, 0x3f, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b]);

#[repr(C)]
struct TableHeader {
    signature: u64,
    revision: u32,
    header_size: u32,
    crc32: u32,
    reserved: u32,
}

#[repr(C)]
struct SystemTable {
    hdr: TableHeader,
    firmware_vendor: *const u16,
    firmware_revision: u32,
    console_in_handle: Handle,
    con_in: *mut c_void,
    console_out_handle: Handle,
    con_out: *mut TextOutput,
    standard_error_handle: Handle,
    std_err: *mut c_void,
    runtime_services: *mut c_void,
    boot_services: *mut BootServices,
    number_of_table_entries: usize,
    configuration_table: *const ConfigurationTable,
}

#[repr(C)]
struct ConfigurationTable {
    vendor_guid: Guid,
    vendor_table: *mut c_void,
}

#[repr(C)]
struct TextOutput {
    reset: usize,
    output_string: unsafe extern "efiapi" fn(*mut TextOutput, *const u16) -> Status,
}

/// `EFI_BOOT_SERVICES` up to ExitBootServices; the functions not called
/// are plain slots.
#[repr(C)]
struct BootServices {
    hdr: TableHeader,
    raise_tpl: usize,
    restore_tpl: usize,
    allocate_pages: unsafe extern "efiapi" fn(u32, u32, usize, *mut u64) -> Status,
    free_pages: usize,
    get_memory_map: unsafe extern "efiapi" fn(*mut usize, *mut u8, *mut usize, *mut usize, *mut u32) -> Status,
    allocate_pool: unsafe extern "efiapi" fn(u32, usize, *mut *mut u8) -> Status,
    free_pool: usize,
    create_event: usize,
    set_timer: usize,
    wait_for_event: usize,
    signal_event: usize,
    close_event: usize,
    check_event: usize,
    install_protocol_interface: usize,
    reinstall_protocol_interface: usize,
    uninstall_protocol_interface: usize,
    handle_protocol: unsafe extern "efiapi" fn(Handle, *const Guid, *mut *mut c_void) -> Status,
    reserved: usize,
    register_protocol_notify: usize,
    locate_handle: usize,
    locate_device_path: usize,
    install_configuration_table: usize,
    load_image: usize,
    start_image: usize,
    exit: usize,
    unload_image: usize,
    exit_boot_services: unsafe extern "efiapi" fn(Handle, usize) -> Status,
}

/// `EFI_LOADED_IMAGE_PROTOCOL` up to the load options.
#[repr(C)]
struct LoadedImage {
    revision: u32,
    parent_handle: Handle,
    system_table: *mut SystemTable,
    device_handle: Handle,
    file_path: *mut c_void,
    reserved: *mut c_void,
    load_options_size: u32,
    load_options: *const u16,
}

extern "C" {
    static __image_start: u8;
    static __data_end: u8;
    static __image_end: u8;
}

/// Physical memory under UEFI's identity map, readable where the memory
/// map describes it ([`memmap::covered`]).
struct IdentityMem<'a> {
    map: &'a [u8],
    desc_size: usize,
}

impl acpi::PhysMem for IdentityMem<'_> {
    fn bytes(&self, addr: u64, len: usize) -> Option<&[u8]> {
        if addr == 0 || !memmap::covered(self.map, self.desc_size, addr, len as u64) {
            return None;
        }
        // SAFETY: UEFI identity-maps all memory it describes while boot
        // services run, and the range lies in described, non-MMIO memory;
        // the ACPI tables are in ACPI reclaim/NVS memory, never written by
        // this stub. Lengths come from table headers the parser bounds (at
        // most 1 MiB).
        Some(unsafe { core::slice::from_raw_parts(addr as *const u8, len) })
    }
}

/// Printing on the firmware's console (boot services only).
struct Con(*mut TextOutput);

impl core::fmt::Write for Con {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let mut buf = [0u16; 128];
        let mut n = 0;
        let flush = |buf: &mut [u16; 128], n: &mut usize| {
            buf[*n] = 0;
            // SAFETY: ConOut is valid while boot services run (the stub
            // prints only before ExitBootServices); the string is
            // NUL-terminated UCS-2.
            unsafe { ((*self.0).output_string)(self.0, buf.as_ptr()) };
            *n = 0;
        };
        for c in s.chars() {
            if c == '\n' {
                buf[n] = u16::from(b'\r');
                n += 1;
            }
            buf[n] = if (c as u32) < 0x1_0000 { c as u16 } else { u16::from(b'?') };
            n += 1;
            if n >= buf.len() - 2 {
                flush(&mut buf, &mut n);
            }
        }
        flush(&mut buf, &mut n);
        Ok(())
    }
}

macro_rules! say {
    ($con:expr, $($arg:tt)*) => {{
        let _ = core::fmt::Write::write_fmt(&mut $con, format_args!($($arg)*));
    }};
}

fn current_el() -> u64 {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects (x: any register).
    unsafe { core::arch::asm!("mrs {}, CurrentEL", out(reg) el, options(nomem, nostack, preserves_flags)) };
    el
}

/// Which tree to write. One value, on the stack for the stub's lifetime
/// (no allocator to box the facts into).
#[allow(clippy::large_enum_variant)]
enum Source<'a> {
    Fdt(&'a [u8]),
    Acpi(acpi::AcpiFacts),
}

/// `efi_main`, called by `efi_pe_entry` with the image's load address.
///
/// # Safety
/// Only from `efi_pe_entry`, with the firmware's handle and system table.
pub unsafe fn efi_main(image: *mut c_void, st: *mut c_void) -> usize {
    // SAFETY: the firmware passes a valid system table (UEFI 2.10, 4.1).
    let st = unsafe { &*(st as *const SystemTable) };
    let mut con = Con(st.con_out);
    // SAFETY: valid while boot services run.
    let bs = unsafe { &*st.boot_services };
    let start = core::ptr::addr_of!(__image_start) as u64;
    say!(con, "spevisor: EFI application at {:#x}, EL{}\n", start, current_el() >> 2);
    if current_el() != CURRENT_EL_EL2 {
        say!(
            con,
            "spevisor: error: entered at EL{}; spevisor needs EL2 (QEMU: -M virt,virtualization=on)\n",
            current_el() >> 2
        );
        return EFI_UNSUPPORTED;
    }

    // The memory map buffer (its size from a size query, with slack for
    // the allocations that follow), and a first map: ACPI tables are read
    // only where it describes memory.
    let (mut map_size, mut key, mut desc_size, mut desc_ver) = (0usize, 0usize, 0usize, 0u32);
    // SAFETY: a size query: with a zero size nothing is written to the map.
    let s =
        unsafe { (bs.get_memory_map)(&mut map_size, core::ptr::null_mut(), &mut key, &mut desc_size, &mut desc_ver) };
    if s != EFI_BUFFER_TOO_SMALL || desc_size < memmap::DESC_MIN_SIZE {
        say!(con, "spevisor: error: GetMemoryMap size query failed ({s:#x})\n");
        return EFI_LOAD_ERROR;
    }
    let cap = map_size + MAP_SLACK_DESCRIPTORS * desc_size;
    let mut map: *mut u8 = core::ptr::null_mut();
    // SAFETY: AllocatePool writes the address of `cap` new bytes.
    if unsafe { (bs.allocate_pool)(EFI_LOADER_DATA, cap, &mut map) } != EFI_SUCCESS {
        say!(con, "spevisor: error: AllocatePool for the memory map failed\n");
        return EFI_OUT_OF_RESOURCES;
    }
    map_size = cap;
    // SAFETY: `map` has `cap` bytes.
    let s = unsafe { (bs.get_memory_map)(&mut map_size, map, &mut key, &mut desc_size, &mut desc_ver) };
    // SAFETY: GetMemoryMap wrote `map_size` bytes (none if it failed).
    let first_map = unsafe { core::slice::from_raw_parts(map, if s == EFI_SUCCESS { map_size } else { 0 }) };

    // 2. The configuration table.
    // SAFETY: the firmware's table of `number_of_table_entries` entries.
    let tables = unsafe { core::slice::from_raw_parts(st.configuration_table, st.number_of_table_entries) };
    let find = |g: Guid| tables.iter().find(|t| t.vendor_guid == g).map(|t| t.vendor_table as u64);
    let source = if let Some(fdt) = find(DTB_GUID) {
        // SAFETY: the firmware installed an FDT here; its header's
        // totalsize bounds the slice (checked by the FDT reader after).
        let Some(size) = (unsafe { spevisor_dtb::early_totalsize(fdt as usize) }) else {
            say!(con, "spevisor: error: the EFI configuration table's device tree at {fdt:#x} is not an FDT\n");
            return EFI_LOAD_ERROR;
        };
        // SAFETY: `size` bytes of an FDT the firmware owns and keeps.
        Source::Fdt(unsafe { core::slice::from_raw_parts(fdt as *const u8, size) })
    } else if let Some(rsdp) = find(ACPI_20_GUID) {
        match acpi::parse(&IdentityMem { map: first_map, desc_size }, rsdp) {
            Ok(f) => Source::Acpi(f),
            Err(e) => {
                say!(con, "spevisor: error: {e}\n");
                return EFI_LOAD_ERROR;
            }
        }
    } else {
        say!(con, "spevisor: error: the EFI configuration table has neither a device tree nor ACPI 2.0 tables\n");
        return EFI_UNSUPPORTED;
    };
    match &source {
        Source::Fdt(b) => say!(con, "spevisor: device tree from the EFI configuration table ({} bytes)\n", b.len()),
        Source::Acpi(f) => say!(
            con,
            "spevisor: ACPI tables (RSDP {:#x}): GICv{} GICD {:#x}, {} CPUs, timer PPIs {}/{}/{}/{}\n",
            f.rsdp,
            f.gic.version,
            f.gic.gicd,
            f.cpu_count,
            f.timer.secure_el1.gsiv,
            f.timer.nonsecure_el1.gsiv,
            f.timer.virtual_el1.gsiv,
            f.timer.el2.gsiv
        ),
    }

    // 3. Load options.
    let mut args = [0u8; MAX_BOOTARGS];
    let mut args_len = 0;
    let mut li: *mut c_void = core::ptr::null_mut();
    // SAFETY: HandleProtocol on our own image handle with the loaded-image
    // GUID writes one interface pointer.
    if unsafe { (bs.handle_protocol)(image, &LOADED_IMAGE_GUID, &mut li) } == EFI_SUCCESS && !li.is_null() {
        // SAFETY: the firmware's loaded-image protocol for this image.
        let li = unsafe { &*(li as *const LoadedImage) };
        if !li.load_options.is_null() && li.load_options_size >= 2 {
            // SAFETY: `load_options_size` bytes of UCS-2 the firmware owns.
            let units = unsafe { core::slice::from_raw_parts(li.load_options, li.load_options_size as usize / 2) };
            args_len = crate::load_options_ascii(units, &mut args);
        }
    }
    let bootargs = core::str::from_utf8(&args[..args_len]).unwrap_or("");
    say!(con, "spevisor: command line \"{}\"\n", bootargs);

    // 4. Allocations: the image copy where the map has room, then the
    // tree.
    let pages_for = |bytes: u64| bytes.div_ceil(memmap::EFI_PAGE_SIZE) as usize;
    let alloc = |kind: u32, bytes: u64, at: u64| -> Option<u64> {
        let mut addr = at;
        // SAFETY: AllocatePages writes the address of the new pages (for
        // AllocateAddress, it allocates exactly at `at`).
        let s = unsafe { (bs.allocate_pages)(kind, EFI_LOADER_DATA, pages_for(bytes), &mut addr) };
        (s == EFI_SUCCESS).then_some(addr)
    };
    let file_size = core::ptr::addr_of!(__data_end) as u64 - start;
    let image_size = core::ptr::addr_of!(__image_end) as u64 - start;
    map_size = cap;
    // SAFETY: `map` has `cap` bytes.
    let s = unsafe { (bs.get_memory_map)(&mut map_size, map, &mut key, &mut desc_size, &mut desc_ver) };
    // SAFETY: GetMemoryMap wrote `map_size` bytes (none if it failed).
    let bytes = unsafe { core::slice::from_raw_parts(map, if s == EFI_SUCCESS { map_size } else { 0 }) };
    let placed = memmap::placement(bytes, desc_size, image_size, IMAGE_ALIGN)
        .and_then(|at| alloc(ALLOCATE_ADDRESS, image_size, at));
    let dest = match placed {
        Some(at) => at,
        None => match alloc(ALLOCATE_ANY_PAGES, image_size + IMAGE_ALIGN, 0) {
            Some(a) => {
                say!(
                    con,
                    "spevisor: warning: no room low in a large free region; the image goes where UEFI allocates\n"
                );
                a.next_multiple_of(IMAGE_ALIGN)
            }
            None => {
                say!(con, "spevisor: error: AllocatePages for the image copy failed\n");
                return EFI_OUT_OF_RESOURCES;
            }
        },
    };
    let dt_size = match &source {
        Source::Fdt(b) => b.len().min(1 << 20) + DT_EXTRA,
        Source::Acpi(_) => DT_EXTRA,
    };
    let Some(dt_buf) = alloc(ALLOCATE_ANY_PAGES, dt_size as u64, 0) else {
        say!(con, "spevisor: error: AllocatePages for the device tree failed\n");
        return EFI_OUT_OF_RESOURCES;
    };
    // SAFETY: `dest..dest + image_size` lies in the pages just allocated;
    // the source is this image's own file bytes, which nothing writes.
    unsafe { core::ptr::copy_nonoverlapping(start as *const u8, dest as *mut u8, file_size as usize) };
    say!(con, "spevisor: image copied to {:#x} (2 MiB aligned); exiting boot services\n", dest);
    // SAFETY: the pages allocated for the tree, not otherwise used.
    let dt_out = unsafe { core::slice::from_raw_parts_mut(dt_buf as *mut u8, dt_size) };

    // 5. Map, tree, ExitBootServices. No printing from here on: printing
    // may allocate and so change the map key.
    let mut failure: Option<Status> = None;
    let mut dt_len = 0;
    for _ in 0..EXIT_ATTEMPTS {
        map_size = cap;
        // SAFETY: `map` has `cap` bytes.
        let s = unsafe { (bs.get_memory_map)(&mut map_size, map, &mut key, &mut desc_size, &mut desc_ver) };
        if s != EFI_SUCCESS {
            failure = Some(s);
            break;
        }
        // SAFETY: GetMemoryMap wrote `map_size` bytes.
        let bytes = unsafe { core::slice::from_raw_parts(map, map_size) };
        let ram = match memmap::usable_ram(bytes, desc_size) {
            Ok(r) => r,
            Err(e) => {
                say!(con, "spevisor: error: {e}\n");
                return EFI_LOAD_ERROR;
            }
        };
        let written = match &source {
            Source::Fdt(src) => dt::from_fdt(src, ram.as_slice(), (args_len > 0).then_some(bootargs), dt_out),
            Source::Acpi(f) => dt::from_acpi(f, ram.as_slice(), bootargs, dt_out),
        };
        dt_len = match written {
            Ok(n) => n,
            Err(e) => {
                say!(con, "spevisor: error: {e}\n");
                return EFI_LOAD_ERROR;
            }
        };
        // SAFETY: our image handle and the key of the map just read.
        match unsafe { (bs.exit_boot_services)(image, key) } {
            EFI_SUCCESS => {
                failure = None;
                break;
            }
            EFI_INVALID_PARAMETER => failure = Some(EFI_INVALID_PARAMETER),
            other => {
                failure = Some(other);
                break;
            }
        }
    }
    if let Some(s) = failure {
        // Boot services may be half gone after a failed ExitBootServices;
        // the console is still the best hope of saying why.
        say!(con, "spevisor: error: ExitBootServices failed ({s:#x})\n");
        return EFI_LOAD_ERROR;
    }

    // 6. Enter the copy.
    // SAFETY: boot services are gone; the copy and the tree are this
    // stub's own allocations, and the copy is a whole image whose first
    // instruction is the raw entry.
    unsafe { enter_raw(dest, image_size, dt_buf, dt_len as u64) }
}

/// Cleans `[start, start + len)` to the point of coherency by VA.
fn clean_to_poc(start: u64, len: u64) {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    // CTR_EL0.DminLine (bits 19:16): log2 of the line in 4-byte words.
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut a = start & !(line - 1);
    while a < start + len {
        // SAFETY: DC CVAC on identity-mapped memory this stub owns only
        // writes dirty lines back; `dsb sy` below completes them all.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) a, options(nostack, preserves_flags)) };
        a += line;
    }
    // SAFETY: a barrier.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Turns the EL2 MMU and caches off and jumps to `entry` with x0 = `dtb`,
/// x1..x3 = 0 (the arm64 boot protocol).
///
/// # Safety
/// After ExitBootServices, at EL2, with `entry` the first byte of a whole
/// image copy and `dtb` a tree, both identity-mapped.
unsafe fn enter_raw(entry: u64, image_size: u64, dtb: u64, dtb_len: u64) -> ! {
    clean_to_poc(entry, image_size);
    clean_to_poc(dtb, dtb_len);
    // Registers: x0 = the tree (kept for the entry), x8 = entry, x9 =
    // scratch for SCTLR_EL2. Ordering: interrupts masked first; SCTLR_EL2
    // M/C/I cleared and `isb` before the instruction cache is invalidated
    // (IC IALLU, completed by `dsb nsh`, `isb`), so the copy's instructions
    // are fetched from memory, where the cleans above put them. This code
    // runs from UEFI's identity map, so turning the MMU off leaves the PC
    // where it was. The stack is not touched after SCTLR_EL2 changes.
    // SAFETY: see the function's contract; nothing returns.
    unsafe {
        core::arch::asm!(
            "msr daifset, #0xf",
            "mrs x9, sctlr_el2",
            "bic x9, x9, #{m}",
            "bic x9, x9, #{c}",
            "bic x9, x9, #{i}",
            "msr sctlr_el2, x9",
            "isb",
            "ic iallu",
            "dsb nsh",
            "isb",
            "mov x1, xzr",
            "mov x2, xzr",
            "mov x3, xzr",
            "br x8",
            m = const SCTLR_M,
            c = const SCTLR_C,
            i = const SCTLR_I,
            in("x0") dtb,
            in("x8") entry,
            options(noreturn, nostack)
        )
    }
}
