//! The arm64 Linux `Image` header (Documentation/arch/arm64/booting.rst):
//! where a kernel wants to be loaded and how much memory it needs. The
//! parser lives in `spevisor_abi::guest::kernel`, shared with `cargo xtask
//! run --guest`, which checks a kernel before QEMU starts; its unit tests
//! are there.

pub use spevisor_abi::guest::kernel::{parse_linux as parse, ImageError, LinuxImage};
