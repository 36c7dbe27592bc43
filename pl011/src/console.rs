//! The consoles' UART, whichever kind the device tree names: a PL011 or a
//! 16550 ([`Console`]), checked before it is mapped ([`ConsoleSpec`]).

use crate::ns16550::{self, IoWidth, Mmio, Ns16550, Ns16550Error};
use crate::Pl011;
use spevisor_dtb::{Uart, UartKind};

/// The page the consoles map for the UART (the hypervisor and the host map
/// the one 4 KiB page holding the registers).
pub const CONSOLE_PAGE: u64 = 4096;

/// The programming model, with its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    Pl011,
    Ns16550 { reg_shift: u32, width: IoWidth },
}

/// A console UART the drivers can run, not yet opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsoleSpec {
    pub model: Model,
    /// Physical address of the register frame.
    pub base: u64,
}

/// Why the device tree's console cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleError {
    /// A kind spevisor has no driver for.
    Unsupported(UartKind),
    /// A 16550 with `reg-shift`/`reg-io-width` it cannot use.
    Ns16550(Ns16550Error),
    /// The registers used reach past the node's `reg` size.
    OutsideReg { span: u64, size: u64 },
    /// The registers used cross a 4 KiB page boundary.
    CrossesPage { base: u64, span: u64 },
}

impl core::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unsupported(k) => write!(f, "no driver for a {k:?} UART (PL011 and 16550 are supported)"),
            Self::Ns16550(e) => write!(f, "16550: {e}"),
            Self::OutsideReg { span, size } => {
                write!(f, "its registers need {span:#x} bytes but its reg is {size:#x} bytes")
            }
            Self::CrossesPage { base, span } => {
                write!(f, "its registers ({base:#x}, {span:#x} bytes) cross a 4 KiB page boundary")
            }
        }
    }
}

/// PL011 registers the driver touches: DR..FR.
const PL011_SPAN: u64 = crate::reg::FR + 4;

impl ConsoleSpec {
    /// Checks the device tree's console.
    pub fn from_dtb(u: &Uart<'_>) -> Result<Self, ConsoleError> {
        let model = match u.kind {
            UartKind::Pl011 => Model::Pl011,
            UartKind::Ns16550 => Model::Ns16550 {
                reg_shift: u.reg_shift,
                width: ns16550::check(u.reg_shift, u.reg_io_width).map_err(ConsoleError::Ns16550)?,
            },
            k => return Err(ConsoleError::Unsupported(k)),
        };
        let spec = Self { model, base: u.region.base };
        let span = spec.span();
        if span > u.region.size {
            return Err(ConsoleError::OutsideReg { span, size: u.region.size });
        }
        if u.region.base % CONSOLE_PAGE + span > CONSOLE_PAGE {
            return Err(ConsoleError::CrossesPage { base: u.region.base, span });
        }
        Ok(spec)
    }

    /// Bytes from `base` to the end of the last register used.
    pub fn span(&self) -> u64 {
        match self.model {
            Model::Pl011 => PL011_SPAN,
            Model::Ns16550 { reg_shift, width } => ns16550::span(reg_shift, width),
        }
    }

    /// Short name for logs.
    pub fn name(&self) -> &'static str {
        match self.model {
            Model::Pl011 => "PL011",
            Model::Ns16550 { .. } => "16550",
        }
    }

    /// Opens the UART at virtual address `va`.
    ///
    /// # Safety
    /// `va` must map `base`'s page as device memory for as long as the
    /// console is used, and no other code may program the UART.
    pub unsafe fn open(&self, va: usize) -> Console {
        match self.model {
            // SAFETY: forwarded from the caller.
            Model::Pl011 => Console::Pl011(unsafe { Pl011::new(va) }),
            // SAFETY: forwarded; `from_dtb` checked the registers lie in the page.
            Model::Ns16550 { reg_shift, width } => {
                Console::Ns16550(Ns16550::new(unsafe { Mmio::new(va) }, reg_shift, width))
            }
        }
    }
}

/// A console UART.
pub enum Console {
    Pl011(Pl011),
    Ns16550(Ns16550<Mmio>),
}

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        match self {
            Console::Pl011(u) => u.write_str(s),
            Console::Ns16550(u) => u.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spevisor_dtb::Region;

    fn uart(kind: UartKind, base: u64, size: u64, reg_shift: u32, reg_io_width: u32) -> Uart<'static> {
        Uart { kind, region: Region { base, size }, reg_shift, reg_io_width, options: None }
    }

    #[test]
    fn the_kind_and_its_parameters_choose_the_driver() {
        let s = ConsoleSpec::from_dtb(&uart(UartKind::Pl011, 0x900_0000, 0x1000, 0, 1)).unwrap();
        assert_eq!(s.model, Model::Pl011);
        let s = ConsoleSpec::from_dtb(&uart(UartKind::Ns16550, 0xfe21_5040, 0x40, 2, 4)).unwrap();
        assert_eq!(s.model, Model::Ns16550 { reg_shift: 2, width: IoWidth::Word });
        assert_eq!(s.span(), 0x18);
        let e = ConsoleSpec::from_dtb(&uart(UartKind::Bcm2835Aux, 0xfe21_5040, 0x40, 0, 1)).unwrap_err();
        assert_eq!(e, ConsoleError::Unsupported(UartKind::Bcm2835Aux));
    }

    #[test]
    fn bad_parameters_and_frames_are_refused_by_name() {
        let e = ConsoleSpec::from_dtb(&uart(UartKind::Ns16550, 0x1000, 0x100, 2, 3)).unwrap_err();
        assert_eq!(e.to_string(), "16550: reg-io-width 3 is not supported (1 or 4)");
        let e = ConsoleSpec::from_dtb(&uart(UartKind::Ns16550, 0x1000, 0x8, 2, 4)).unwrap_err();
        assert_eq!(e, ConsoleError::OutsideReg { span: 0x18, size: 0x8 });
        let e = ConsoleSpec::from_dtb(&uart(UartKind::Ns16550, 0x1ff0, 0x100, 2, 4)).unwrap_err();
        assert_eq!(e, ConsoleError::CrossesPage { base: 0x1ff0, span: 0x18 });
        assert!(ConsoleSpec::from_dtb(&uart(UartKind::Ns16550, 0x1fe8, 0x18, 2, 4)).is_ok(), "ends at the page end");
    }
}
