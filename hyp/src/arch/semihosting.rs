//! Arm semihosting, for ending a QEMU run with an exit status.
//!
//! Only built with the `semihosting` feature: on hardware without a debugger
//! `hlt #0xf000` is an undefined instruction.

use core::arch::asm;

/// SYS_EXIT.
const SYS_EXIT: u64 = 0x18;
/// ADP_Stopped_ApplicationExit: "the application exited", with a status.
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;

/// Ends the emulator with `status` as its exit code.
pub fn exit(status: u64) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, status];
    // SAFETY: the AArch64 semihosting call: w0 = operation, x1 = pointer to
    // the parameter block, which lives on our stack for the duration of the
    // call; the emulator reads it and exits. x0 may be overwritten.
    unsafe { asm!("hlt #0xf000", inout("x0") SYS_EXIT => _, in("x1") block.as_ptr(), options(nostack)) };
    super::park()
}
