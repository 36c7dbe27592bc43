//! `linux_image`: the arm64 Linux `Image` header check and the guest RAM
//! plan built on it (`spevisor_abi::guest::kernel`, which the host uses
//! through `host/src/linux_image.rs` and `cargo xtask run --guest` directly).
//!
//! The input is `[ram_mib: u16][initrd_len: u32][kernel bytes]`. Properties:
//! no input panics; an accepted header has a page-aligned `text_offset`,
//! an `image_size` of at least the file and no overflow; a file with the
//! magic is classified by its header, one without never as Linux; a plan
//! puts the kernel's footprint below the device-tree slot, and an initrd
//! page-aligned between the kernel's end and the slot, without overlap.

use crate::Input;
use spevisor_abi::guest::kernel::{classify, has_linux_magic, parse_linux, plan, KernelKind, PAGE_SIZE};
use spevisor_abi::guest::machine::DTB_SLOT;

const MIB: u64 = 1 << 20;

pub fn run(data: &[u8]) {
    let mut i = Input::new(data);
    let ram = u64::from(i.u16()) * MIB;
    let initrd_len = u64::from(i.u32());
    let kernel = i.rest();
    let parsed = parse_linux(kernel);
    if let Ok(h) = parsed {
        assert!(h.text_offset.is_multiple_of(PAGE_SIZE));
        assert!(h.image_size >= kernel.len() as u64);
        assert!(h.text_offset.checked_add(h.image_size).is_some());
        assert!(has_linux_magic(kernel));
    }
    match classify(kernel) {
        Ok(KernelKind::Linux(h)) => assert_eq!(parsed, Ok(h)),
        Ok(KernelKind::Raw) => assert!(!has_linux_magic(kernel)),
        Err(e) => {
            let _ = format!("{e}");
            assert!(!has_linux_magic(kernel) || parsed.is_err());
        }
    }
    match plan(ram, kernel, initrd_len) {
        Ok(p) => {
            assert!(p.kernel_offset <= p.kernel_end, "{p:?}");
            assert!(p.kernel_end <= p.dtb_offset, "kernel over the device tree: {p:?}");
            assert_eq!(p.dtb_offset + DTB_SLOT, ram);
            match p.initrd_offset {
                None => assert_eq!(initrd_len, 0),
                Some(at) => {
                    assert!(at.is_multiple_of(PAGE_SIZE));
                    assert!(at >= p.kernel_end, "initrd over the kernel: {p:?}");
                    assert!(at + initrd_len <= p.dtb_offset, "initrd over the device tree: {p:?}");
                }
            }
        }
        Err(e) => {
            let _ = format!("{e}");
        }
    }
}
