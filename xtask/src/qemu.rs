//! QEMU command lines: the demo machine, captured test boots, gdb.

use crate::setup::Qemu;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A machine to boot.
#[derive(Clone, Debug)]
pub struct Machine {
    pub cpu: &'static str,
    pub gic_version: u32,
    pub memory: &'static str,
    pub smp: u32,
    /// Kernel command line (`/chosen/bootargs`).
    pub append: String,
    pub extra: Vec<String>,
    /// More `-M virt` options (`,acpi=off`), appended as written.
    pub machine_opts: &'static str,
}

impl Default for Machine {
    fn default() -> Self {
        Self {
            cpu: "max",
            gic_version: 3,
            memory: "1G",
            smp: 1,
            append: String::new(),
            extra: vec![],
            machine_opts: "",
        }
    }
}

/// The QEMU arguments for `image` on `m`.
pub fn args(image: &Path, m: &Machine) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-M".into(),
        format!("virt,virtualization=on,gic-version={}{}", m.gic_version, m.machine_opts),
        "-cpu".into(),
        m.cpu.into(),
        "-m".into(),
        m.memory.into(),
        "-smp".into(),
        m.smp.to_string(),
        "-nographic".into(),
        "-no-reboot".into(),
        "-nic".into(),
        "none".into(),
        "-semihosting-config".into(),
        "enable=on,target=native".into(),
    ];
    if !image.as_os_str().is_empty() {
        a.push("-kernel".into());
        a.push(image.display().to_string());
    }
    if !m.append.is_empty() {
        a.push("-append".into());
        a.push(m.append.clone());
    }
    a.extend(m.extra.iter().cloned());
    a
}

/// Boots with the console on this terminal.
pub fn run_interactive(q: &Qemu, image: &Path, gdb: bool, append: &str, extra: &[String]) -> Result<(), String> {
    let mut m = Machine { append: append.to_string(), extra: extra.to_vec(), ..Machine::default() };
    if gdb {
        m.extra.extend(["-s".to_string(), "-S".to_string()]);
        let elf = image.with_extension("elf");
        eprintln!("xtask: QEMU waits for a debugger on localhost:1234. In another terminal:");
        eprintln!("  gdb-multiarch -q {} -ex 'target remote localhost:1234'", elf.display());
        eprintln!("  (symbols are at link address 0: after QEMU loads the image at 0x40200000,");
        eprintln!("   use: add-symbol-file {} -o 0x40200000)", elf.display());
    }
    eprintln!("xtask: {} {}", q.bin, args(image, &m).join(" "));
    // The console goes through a filter that names the functions behind the
    // profiler's top PCs (the image carries no symbol table).
    let symbols = spe_report::symbols::SymbolTable::from_file(&image.with_extension("elf")).ok();
    let mut child = Command::new(&q.bin)
        .args(args(image, &m))
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", q.bin))?;
    let mut out = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = Vec::new();
    while matches!(std::io::BufRead::read_until(&mut out, b'\n', &mut line), Ok(n) if n > 0) {
        let text = String::from_utf8_lossy(&line);
        let annotated = symbols.as_ref().and_then(|s| symbolize_line(&text, s));
        let mut stdout = std::io::stdout().lock();
        let _ = match annotated {
            Some(a) => std::io::Write::write_all(&mut stdout, a.as_bytes()),
            None => std::io::Write::write_all(&mut stdout, &line),
        };
        let _ = std::io::Write::flush(&mut stdout);
        line.clear();
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("QEMU exited with {status}"))
    }
}

/// A finished captured boot.
#[derive(Debug)]
pub struct Boot {
    pub exit: Option<i32>,
    pub output: String,
    pub timed_out: bool,
}

/// Boots, capturing the console, killing QEMU after `timeout`.
pub fn run_captured(q: &Qemu, image: &Path, m: &Machine, timeout: Duration) -> Result<Boot, String> {
    let mut child = Command::new(&q.bin)
        .args(args(image, m))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", q.bin))?;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let ereader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(s);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            timed_out = true;
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut output = String::from_utf8_lossy(&reader.join().unwrap_or_default()).replace('\r', "");
    let err = String::from_utf8_lossy(&ereader.join().unwrap_or_default()).into_owned();
    if !err.trim().is_empty() {
        output.push_str("\n[qemu stderr] ");
        output.push_str(&err);
    }
    Ok(Boot { exit: status.and_then(|s| s.code()), output, timed_out })
}

/// `spe-top: pc=.. image_offset=0x.. samples=N` plus ` fn=<symbol>` when the
/// offset is inside a function of the image's ELF (linked at 0).
pub fn symbolize_line(line: &str, syms: &spe_report::symbols::SymbolTable) -> Option<String> {
    let rest = line.trim_end().strip_prefix("spe-top: ")?;
    let off = rest.split_whitespace().find_map(|w| w.strip_prefix("image_offset=0x"))?;
    let off = u64::from_str_radix(off, 16).ok()?;
    let name = syms.lookup(off)?;
    Some(format!("{} fn={}\n", line.trim_end(), name))
}
