//! The host console: the DTB's PL011 or 16550, behind the `log` crate with levels.

use core::fmt::{self, Write};
use log::{Level, LevelFilter, Log, Metadata, Record};
use spevisor_pl011::console::Console;
use spin::Mutex;

static UART: Mutex<Option<Console>> = Mutex::new(None);

struct HostLogger;

static LOGGER: HostLogger = HostLogger;

impl Log for HostLogger {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }
    fn log(&self, record: &Record) {
        let tag = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        print(format_args!("[host] {} {}\n", tag, record.args()));
    }
    fn flush(&self) {}
}

/// Starts the console on `uart` (opened by `ConsoleSpec::open`, whose
/// contract covers the mapping) and the logger.
pub fn init(uart: Console, level: LevelFilter) {
    *UART.lock() = Some(uart);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Prints; IRQs are masked while the UART lock is held, so an interrupt
/// handler that prints (the profiler's dump) cannot spin on it forever.
pub fn print(args: fmt::Arguments) {
    let daif = crate::arch::mask_irqs();
    if let Some(u) = UART.lock().as_mut() {
        let _ = u.write_fmt(args);
    }
    crate::arch::restore_irqs(daif);
}

/// For the panic and exception paths: takes the UART even if a print was
/// interrupted while holding it.
pub fn print_crash(args: fmt::Arguments) {
    if UART.is_locked() {
        // SAFETY: single CPU; the interrupted holder never resumes.
        unsafe { UART.force_unlock() };
    }
    print(args);
}

#[macro_export]
macro_rules! hprintln { ($($t:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($t)*))) } }
