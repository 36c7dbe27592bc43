//! Crash reports for exceptions nobody expected, and the host trap entry.

use crate::arch::{self, TrapFrame, KINDS, ORIGINS};
use crate::boot::shutdown;
use crate::console::print_crash;
use crate::service::{Machine, EL2};
use aarch64_cpu::registers::*;
use core::sync::atomic::{AtomicBool, Ordering};
use spevisor_armv8::esr::Esr;

/// Set while a crash report is being printed: a fault inside the report
/// parks the CPU instead of recursing.
static CRASHING: AtomicBool = AtomicBool::new(false);

/// Exit status of a run that ended in a crash report.
pub const CRASH_EXIT_STATUS: u64 = 3;

/// Prints everything known about an exception and ends the run with
/// [`CRASH_EXIT_STATUS`].
pub fn report(title: &str, frame: &TrapFrame) -> ! {
    if CRASHING.swap(true, Ordering::SeqCst) {
        arch::park();
    }
    let esr = ESR_EL2.get();
    print_crash(format_args!("\n[el2] CRASH: {title}\n"));
    print_crash(format_args!("[el2]   {}\n", Esr(esr)));
    print_crash(format_args!(
        "[el2]   ELR_EL2={:#018x} SPSR_EL2={:#010x} FAR_EL2={:#018x} HPFAR_EL2={:#x}\n",
        frame.elr,
        frame.spsr,
        FAR_EL2.get(),
        HPFAR_EL2.get()
    ));
    for row in 0..8 {
        print_crash(format_args!("[el2]  "));
        for col in 0..4 {
            let i = row * 4 + col;
            if i < 31 {
                print_crash(format_args!(" x{:<2}={:#018x}", i, frame.x[i]));
            }
        }
        print_crash(format_args!("\n"));
    }
    print_crash(format_args!("spevisor: status=crash el2=yes esr={esr:#x} elr={:#x}\n", frame.elr));
    shutdown(CRASH_EXIT_STATUS)
}

/// Called by `vectors.S` for every exception that should never happen.
#[no_mangle]
extern "C" fn el2_unexpected_exception(frame: &mut TrapFrame, code: u64) -> ! {
    let origin = ORIGINS[(code as usize / 4) % 4];
    let kind = KINDS[code as usize % 4];
    let mut title = heapless_title();
    use core::fmt::Write;
    let _ = write!(title, "unexpected {kind} exception from {origin}");
    report(title.as_str(), frame)
}

/// Called by `vectors.S` for a hypercall (HVC64) from the host. Only x0..x18,
/// x30, ELR and SPSR are in `frame` (x19..x29 are preserved by the callee).
#[no_mangle]
extern "C" fn el2_host_sync(frame: &mut TrapFrame) {
    let mut el2 = EL2.lock();
    let crate::service::El2State { hyp, vms } = &mut *el2;
    let Some(hyp) = hyp.as_mut() else {
        drop(el2);
        report("hypercall before the hypervisor finished booting", frame);
    };
    // The call's x0..x7 are answered in place in the saved frame.
    let (regs, _) = frame.x.split_first_chunk_mut::<{ spevisor_abi::REGS }>().expect("31 >= 8 registers");
    crate::hcall::dispatch(regs, &mut Machine { hyp, vms });
}

/// A small fixed-capacity string for report titles (no heap at EL2).
struct Title {
    buf: [u8; 96],
    len: usize,
}

fn heapless_title() -> Title {
    Title { buf: [0; 96], len: 0 }
}

impl Title {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl core::fmt::Write for Title {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
