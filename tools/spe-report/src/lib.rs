//! `spe-report`: offline decoder and profile report for SPE buffers.
//!
//! ```text
//! spe-report dump FILE
//! spe-report profile FILE --elf ELF [--load-offset HEX] [--top N]
//! spe-report records FILE [--json]
//! ```
//!
//! `FILE` is either a raw SPE buffer (`.data`/`.bin`, as written by the
//! profiling unit) or a console log holding framed dumps. The framed format
//! (defined in [`spevisor_spe::frame`], shared with the host kernel that
//! prints it) is:
//!
//! ```text
//! SPEDUMP BEGIN len=<bytes, decimal> crc32=<CRC-32/IEEE, 8 hex digits>
//! <lowercase hex, at most 64 bytes per line>
//! SPEDUMP END
//! ```
//!
//! Every frame of the log is extracted (other lines are ignored) and its
//! length and CRC are checked; a corrupted frame is an error (exit code 3).
//! A file is treated as a console log when it contains `SPEDUMP BEGIN`.
//!
//! * `dump` prints every packet in the `perf report -D` format (one
//!   `== name (n bytes)` header per buffer or frame).
//! * `profile` counts samples by exception level and by ELF symbol (the
//!   ELF's symbol table; PCs minus `--load-offset` are looked up).
//! * `records --json` prints one JSON object per record.
//!
//! Exit codes: 0 success, 1 I/O or ELF error, 2 usage error, 3 corrupted
//! frame.

use spevisor_spe::dump::{describe, dump_buffer, write_header};
use spevisor_spe::frame::{FrameError, Frames, BEGIN_MARKER};
use spevisor_spe::packet::{CodeAddress, Packet};
use spevisor_spe::record::{AssembledRecord, RecordAssembler, RecordEnd};
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub mod symbols;
pub use symbols::SymbolTable;

/// Usage text.
pub const USAGE: &str = "usage:
  spe-report dump FILE
  spe-report profile FILE --elf ELF [--load-offset HEX] [--top N]
  spe-report records FILE [--json]
FILE: raw SPE buffer, or console log with SPEDUMP frames";

/// Default number of symbols listed by `profile`.
pub const DEFAULT_TOP: usize = 20;
const HEX_RADIX: u32 = 16;
const PERCENT: f64 = 100.0;

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Packet dump.
    Dump {
        /// Input file.
        file: PathBuf,
    },
    /// Flat profile.
    Profile {
        /// Input file.
        file: PathBuf,
        /// ELF image with a symbol table.
        elf: PathBuf,
        /// Subtracted from every PC before symbol lookup.
        load_offset: u64,
        /// Symbols to list.
        top: usize,
    },
    /// Record listing.
    Records {
        /// Input file.
        file: PathBuf,
        /// JSON lines instead of text.
        json: bool,
    },
    /// Print the usage text.
    Help,
}

/// Everything that can go wrong.
#[derive(Debug)]
pub enum Error {
    /// Bad command line.
    Usage(String),
    /// A file could not be read, or output could not be written.
    Io {
        /// What was being accessed.
        what: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The ELF could not be parsed.
    Elf(String),
    /// A frame in a console log is corrupted.
    Frame {
        /// The log.
        file: String,
        /// The frame error.
        error: FrameError,
    },
}

impl Error {
    /// Process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Io { .. } | Error::Elf(_) => 1,
            Error::Usage(_) => 2,
            Error::Frame { .. } => 3,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m}\n{USAGE}"),
            Error::Io { what, source } => write!(f, "{what}: {source}"),
            Error::Elf(m) => write!(f, "{m}"),
            Error::Frame { file, error } => write!(f, "{file}: {error}"),
        }
    }
}

impl std::error::Error for Error {}

fn out_err(source: io::Error) -> Error {
    Error::Io { what: "writing output".into(), source }
}

fn parse_hex(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    u64::from_str_radix(digits, HEX_RADIX).ok()
}

/// Parses the arguments after the program name.
pub fn parse_args(args: &[String]) -> Result<Command, Error> {
    let usage = |m: &str| Err(Error::Usage(m.to_string()));
    let Some((cmd, rest)) = args.split_first() else {
        return usage("missing command");
    };
    if matches!(cmd.as_str(), "-h" | "--help" | "help") {
        return Ok(Command::Help);
    }
    if !matches!(cmd.as_str(), "dump" | "profile" | "records") {
        return usage(&format!("unknown command `{cmd}`"));
    }
    let mut file = None;
    let mut elf = None;
    let mut load_offset = 0;
    let mut top = DEFAULT_TOP;
    let mut json = false;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().cloned().ok_or_else(|| Error::Usage(format!("{flag} needs a value")));
        match a.as_str() {
            "--elf" => elf = Some(PathBuf::from(value("--elf")?)),
            "--load-offset" => {
                let v = value("--load-offset")?;
                load_offset = parse_hex(&v).ok_or_else(|| Error::Usage(format!("bad --load-offset `{v}` (hex)")))?;
            }
            "--top" => {
                let v = value("--top")?;
                top = v.parse().map_err(|_| Error::Usage(format!("bad --top `{v}`")))?;
            }
            "--json" => json = true,
            "-h" | "--help" => return Ok(Command::Help),
            f if f.starts_with('-') && f.len() > 1 => return usage(&format!("unknown option `{f}`")),
            f if file.is_none() => file = Some(PathBuf::from(f)),
            f => return usage(&format!("unexpected argument `{f}`")),
        }
    }
    let Some(file) = file else {
        return usage("missing FILE");
    };
    let only = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(Error::Usage(format!("{what} is not valid for `{cmd}`")))
        }
    };
    match cmd.as_str() {
        "dump" => {
            only(elf.is_none() && !json, "--elf/--json")?;
            Ok(Command::Dump { file })
        }
        "profile" => {
            only(!json, "--json")?;
            let Some(elf) = elf else {
                return usage("profile needs --elf ELF");
            };
            Ok(Command::Profile { file, elf, load_offset, top })
        }
        "records" => {
            only(elf.is_none(), "--elf")?;
            Ok(Command::Records { file, json })
        }
        other => usage(&format!("unknown command `{other}`")),
    }
}

/// One SPE buffer from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// Display name (`file` or `file frame N`).
    pub name: String,
    /// Frame index for console logs.
    pub frame: Option<usize>,
    /// Raw SPE bytes.
    pub data: Vec<u8>,
}

fn display_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// Extracts and checks every frame of a console log.
pub fn parse_console_log(name: &str, text: &str) -> Result<Vec<Buffer>, Error> {
    let mut out = Vec::new();
    for (i, frame) in Frames::new(text).enumerate() {
        let err = |error| Error::Frame { file: name.to_string(), error };
        let frame = frame.map_err(err)?;
        let mut data = vec![0; frame.len.min(frame.max_payload_len())];
        let n = frame.decode_into(&mut data).map_err(err)?;
        data.truncate(n);
        out.push(Buffer { name: format!("{name} frame {i}"), frame: Some(i), data });
    }
    Ok(out)
}

/// Reads `path`: a console log with frames, or a raw buffer.
pub fn load_input(path: &Path) -> Result<Vec<Buffer>, Error> {
    let bytes =
        std::fs::read(path).map_err(|source| Error::Io { what: format!("reading {}", path.display()), source })?;
    let name = display_name(path);
    let marker = BEGIN_MARKER.as_bytes();
    if bytes.windows(marker.len()).any(|w| w == marker) {
        let text = String::from_utf8_lossy(&bytes);
        return parse_console_log(&name, &text);
    }
    Ok(vec![Buffer { name, frame: None, data: bytes }])
}

/// Adapts an `io::Write` to `fmt::Write`, keeping the I/O error.
struct FmtIo<'a> {
    out: &'a mut dyn Write,
    error: Option<io::Error>,
}

impl fmt::Write for FmtIo<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.out.write_all(s.as_bytes()).map_err(|e| {
            self.error = Some(e);
            fmt::Error
        })
    }
}

fn with_fmt(out: &mut dyn Write, f: impl FnOnce(&mut FmtIo<'_>) -> fmt::Result) -> Result<(), Error> {
    let mut w = FmtIo { out, error: None };
    match f(&mut w) {
        Ok(()) => Ok(()),
        Err(_) => Err(out_err(w.error.unwrap_or_else(|| io::Error::other("formatting failed")))),
    }
}

/// `dump`: perf-style packet dump of every buffer.
pub fn dump(buffers: &[Buffer], out: &mut dyn Write) -> Result<(), Error> {
    for b in buffers {
        with_fmt(out, |w| {
            write_header(w, &b.name, b.data.len())?;
            dump_buffer(w, &b.data).map(|_| ())
        })?;
    }
    Ok(())
}

/// Records of all buffers, in order. Decode errors (the assembler skips
/// the bad byte and resumes) are reported on `warn` with their offsets.
pub fn collect_records<'a>(buffers: &'a [Buffer], warn: &mut dyn Write) -> Vec<(&'a Buffer, AssembledRecord)> {
    let mut out = Vec::new();
    for b in buffers {
        for r in RecordAssembler::new(&b.data) {
            match r {
                Ok(a) => out.push((b, a)),
                // Warnings are best effort: a closed stderr must not stop
                // the report.
                Err(e) => {
                    let _ = writeln!(warn, "warning: {}: {e}", b.name);
                }
            }
        }
    }
    out
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn end_name(e: RecordEnd) -> &'static str {
    match e {
        RecordEnd::End => "END",
        RecordEnd::Timestamp => "TS",
        RecordEnd::Truncated => "TRUNCATED",
    }
}

fn describe_string(p: &Packet) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = describe(&mut s, p);
    s
}

fn code_json(c: Option<CodeAddress>) -> serde_json::Value {
    match c {
        Some(c) => serde_json::json!({
            "addr": hex(c.virtual_address()), "el": c.el, "ns": c.ns
        }),
        None => serde_json::Value::Null,
    }
}

/// The JSON object for one record.
pub fn record_json(b: &Buffer, a: &AssembledRecord) -> serde_json::Value {
    let r = &a.record;
    serde_json::json!({
        "frame": b.frame,
        "offset": a.offset,
        "len": a.len,
        "end": end_name(a.end),
        "pc": r.pc.map(|p| hex(p.virtual_address())),
        "el": r.pc.map(|p| p.el),
        "ns": r.pc.map(|p| p.ns),
        "timestamp": r.timestamp,
        "op": r.op.map(|o| describe_string(&Packet::OpType(o))),
        "events": r.events.map(|e| e.0),
        "events_text": r.events.map(|e| describe_string(&Packet::Events(e))),
        "total_latency": r.total_latency,
        "issue_latency": r.issue_latency,
        "translation_latency": r.translation_latency,
        "branch_target": code_json(r.branch_target),
        "prev_branch_target": code_json(r.prev_branch_target),
        "data_va": r.data_va.map(hex),
        "data_pa": r.data_pa.map(|p| serde_json::json!({
            "addr": hex(p.addr), "ns": p.ns, "ch": p.ch, "pat": p.pat
        })),
        "data_source": r.data_source,
        "context_el1": r.context_el1,
        "context_el2": r.context_el2,
    })
}

/// `records`: one line (JSON or text) per record.
pub fn list_records(buffers: &[Buffer], json: bool, out: &mut dyn Write, warn: &mut dyn Write) -> Result<(), Error> {
    for (b, a) in collect_records(buffers, warn) {
        if json {
            writeln!(out, "{}", record_json(b, &a)).map_err(out_err)?;
        } else {
            let r = &a.record;
            let pc = r.pc.map_or("-".to_string(), |p| hex(p.virtual_address()));
            let el = r.pc.map_or("-".to_string(), |p| format!("el{}", p.el));
            let op = r.op.map_or("-".to_string(), |o| describe_string(&Packet::OpType(o)));
            let lat = r.total_latency.map_or("-".to_string(), |l| l.to_string());
            let ts = r.timestamp.map_or("-".to_string(), |t| t.to_string());
            writeln!(out, "{}+{:#x}: pc={pc} {el} op={op} lat={lat} ts={ts}", b.name, a.offset).map_err(out_err)?;
        }
    }
    Ok(())
}

/// Samples by exception level and symbol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// Records with a PC.
    pub samples: u64,
    /// Records without a PC (e.g. a leading timestamp fragment).
    pub without_pc: u64,
    /// Samples per EL 0..=3.
    pub by_el: [u64; 4],
    /// (symbol or `[unknown]`, samples), most samples first.
    pub by_symbol: Vec<(String, u64)>,
}

/// Name used for PCs outside every symbol.
pub const UNKNOWN_SYMBOL: &str = "[unknown]";

/// Builds the flat profile.
pub fn build_profile(buffers: &[Buffer], syms: &SymbolTable, load_offset: u64, warn: &mut dyn Write) -> Profile {
    let mut p = Profile::default();
    let mut counts: std::collections::HashMap<String, u64> = Default::default();
    for (_, a) in collect_records(buffers, warn) {
        let Some(pc) = a.record.pc else {
            p.without_pc += 1;
            continue;
        };
        p.samples += 1;
        p.by_el[usize::from(pc.el & 3)] += 1;
        let addr = pc.virtual_address().wrapping_sub(load_offset);
        let name = syms.lookup(addr).unwrap_or(UNKNOWN_SYMBOL);
        *counts.entry(name.to_string()).or_default() += 1;
    }
    p.by_symbol = counts.into_iter().collect();
    p.by_symbol.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    p
}

fn percent(n: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        n as f64 * PERCENT / total as f64
    }
}

/// Prints a profile.
pub fn print_profile(p: &Profile, top: usize, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "samples: {}", p.samples)?;
    if p.without_pc != 0 {
        writeln!(out, "records without PC: {}", p.without_pc)?;
    }
    writeln!(out, "\nby exception level:")?;
    for (el, &n) in p.by_el.iter().enumerate() {
        if n != 0 {
            writeln!(out, "  EL{el} {n:>10} {:>6.2}%", percent(n, p.samples))?;
        }
    }
    writeln!(out, "\ntop symbols:")?;
    writeln!(out, "  {:>10} {:>7}  symbol", "samples", "%")?;
    for (name, n) in p.by_symbol.iter().take(top) {
        writeln!(out, "  {n:>10} {:>6.2}%  {name}", percent(*n, p.samples))?;
    }
    Ok(())
}

/// Runs a command: results on `out`, warnings on `warn`.
pub fn run(cmd: &Command, out: &mut dyn Write, warn: &mut dyn Write) -> Result<(), Error> {
    match cmd {
        Command::Help => writeln!(out, "{USAGE}").map_err(out_err),
        Command::Dump { file } => dump(&load_input(file)?, out),
        Command::Records { file, json } => list_records(&load_input(file)?, *json, out, warn),
        Command::Profile { file, elf, load_offset, top } => {
            let buffers = load_input(file)?;
            let syms = SymbolTable::from_file(elf)?;
            let p = build_profile(&buffers, &syms, *load_offset, warn);
            print_profile(&p, *top, out).map_err(out_err)
        }
    }
}
