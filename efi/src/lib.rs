//! The UEFI boot path (docs/design.md, "Boot paths").
//!
//! The image is also an EFI application (its PE/COFF header is in
//! image/src/head.S). Its EFI entry runs [`stub`]: it finds the firmware's
//! device tree or, on an ACPI-only machine, its ACPI tables ([`acpi`]),
//! takes RAM from the UEFI memory map ([`memmap`]), writes the one device
//! tree the rest of the boot reads ([`dt`]), exits boot services and enters
//! the image's ordinary entry with the MMU off, as QEMU's `-kernel` or
//! U-Boot's `booti` would. Everything but the stub is plain parsing and
//! writing over byte slices, unit-tested on the host and fuzzed.
#![cfg_attr(not(test), no_std)]

pub mod acpi;
pub mod dt;
pub mod memmap;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod stub;

/// The command line from an EFI image's load options: UCS-2 up to the
/// first NUL (or the end), non-ASCII as `?`, trailing spaces dropped, into
/// `out` (cut at its length); returns the length written.
pub fn load_options_ascii(units: &[u16], out: &mut [u8]) -> usize {
    let mut n = 0;
    for &u in units.iter().take_while(|&&u| u != 0) {
        let Some(slot) = out.get_mut(n) else { break };
        *slot = if u < 0x80 { u as u8 } else { b'?' };
        n += 1;
    }
    while n > 0 && out[n - 1] == b' ' {
        n -= 1;
    }
    n
}

#[cfg(test)]
mod tests {
    #[test]
    fn load_options_are_ucs2_up_to_the_nul() {
        let units: Vec<u16> = "spevisor.report=only é \0junk".encode_utf16().collect();
        let mut out = [0u8; 64];
        let n = super::load_options_ascii(&units, &mut out);
        assert_eq!(&out[..n], b"spevisor.report=only ?");
        let mut small = [0u8; 4];
        assert_eq!(super::load_options_ascii(&units, &mut small), 4);
        assert_eq!(super::load_options_ascii(&[], &mut out), 0);
    }
}
