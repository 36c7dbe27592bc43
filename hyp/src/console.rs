//! The EL2 console: the PL011 or 16550 the DTB names, and leveled logging macros.
//!
//! The hypervisor does not use the `log` crate: its global logger would be
//! shared with the host kernel in the same image, and the host must never run
//! EL2 code. These macros print with an `[el2]` prefix instead.

use core::fmt::{self, Write};
use spevisor_pl011::console::Console;
use spin::Mutex;

static CONSOLE: Mutex<Option<Console>> = Mutex::new(None);

/// Message levels, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

impl Level {
    const fn tag(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
        }
    }
}

/// Messages above this level are dropped.
pub const MAX_LEVEL: Level = Level::Info;

/// Starts (or moves) the console to `uart`, an opened UART
/// (`ConsoleSpec::open`, whose contract covers the mapping). Spin locks
/// need the MMU and caches on.
pub fn init(uart: Console) {
    *CONSOLE.lock() = Some(uart);
}

/// Prints without a prefix. Silently drops output before [`init`].
pub fn print(args: fmt::Arguments) {
    if let Some(uart) = CONSOLE.lock().as_mut() {
        let _ = uart.write_fmt(args);
    }
}

/// Prints a leveled line.
pub fn log(level: Level, args: fmt::Arguments) {
    if level <= MAX_LEVEL {
        print(format_args!("[el2] {} {}\n", level.tag(), args));
    }
}

/// Prints even if the console lock is held (the crash path may interrupt a
/// print in progress): takes the UART over without waiting.
pub fn print_crash(args: fmt::Arguments) {
    // Breaking the lock's mutual exclusion is exactly what a dying CPU needs.
    if CONSOLE.is_locked() {
        // SAFETY: single CPU, and the holder is the code this crash interrupted,
        // which will never run again.
        unsafe { CONSOLE.force_unlock() };
    }
    print(args);
}

#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::console::log($crate::console::Level::Error, format_args!($($t)*)) } }
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::console::log($crate::console::Level::Warn, format_args!($($t)*)) } }
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::console::log($crate::console::Level::Info, format_args!($($t)*)) } }
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::console::log($crate::console::Level::Debug, format_args!($($t)*)) } }
#[macro_export]
macro_rules! println { ($($t:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($t)*))) } }
