//! The ordering check on the shipped machine code (`docs/ordering-checks.md`).
//!
//! QEMU gives barriers no observable effect, and the step record and the SPE
//! model see only what runs; this check reads what was *built*. It
//! disassembles an image's ELF with Debian's `aarch64-linux-gnu-objdump`,
//! finds the function the world switch (`vcpu_run`) is inlined into, and
//! checks, over that function's control-flow graph (calls summarised by the
//! system registers their callees write, transitively):
//!
//! - `drain-sequence`: every drain of the SPE hardware path is complete, in
//!   one basic block: PMSCR_EL1 ← 0, `isb`, `psb csync`, `dsb nsh`,
//!   PMBLIMITR_EL1 ← 0, `isb` (no other system-register write or barrier
//!   in between);
//! - `restore-sequence`: every restore is `isb`, PMBLIMITR_EL1 ← saved,
//!   `isb`, PMSCR_EL1 ← saved;
//! - `drain-before-guest-state`: no write of a translation-regime register
//!   (TTBR0/1_EL1, TCR_EL1, SCTLR_EL1, MAIR_EL1, VTTBR_EL2, VTCR_EL2,
//!   HCR_EL2, MDCR_EL2) can reach a drain: the drain precedes the first;
//! - `restore-after-host-state`: no such write is reachable from a restore:
//!   the restore follows the last.
//!
//! The SPE hardware path is the only one whose order is machine code: the
//! model path's register accesses are memory stores (the QEMU tests judge
//! those). The normal image reaches that path through the backend dispatch
//! (`Backend::Hardware`), a branch of the function like any other, so the
//! graph covers it although QEMU never runs it. The `--spe-hw-standin`
//! image names CNTHP_CVAL_EL2 and CNTHV_CVAL_EL2 instead of PMSCR_EL1 and
//! PMBLIMITR_EL1 (`spe/src/regs/hw.rs`); [`SpeRegs::STANDIN`] says so.
//! Indirect branches (`br`) and calls (`blr`) are not followed: the check
//! refuses a switch function that contains one.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

/// Registers whose writes make or unmake a translation regime the buffer
/// could write through.
pub const REGIME_REGS: [&str; 9] =
    ["ttbr0_el1", "ttbr1_el1", "tcr_el1", "sctlr_el1", "mair_el1", "vttbr_el2", "vtcr_el2", "hcr_el2", "mdcr_el2"];

/// The two SPE registers of the drain and restore sequences, as objdump
/// names them in one image flavour.
#[derive(Clone, Copy, Debug)]
pub struct SpeRegs {
    pub pmscr: &'static [&'static str],
    pub pmblimitr: &'static [&'static str],
}

impl SpeRegs {
    pub const REAL: SpeRegs =
        SpeRegs { pmscr: &["pmscr_el1", "s3_0_c9_c9_0"], pmblimitr: &["pmblimitr_el1", "s3_0_c9_c10_0"] };
    /// `--spe-hw-standin`: CNTHP_CVAL_EL2 for PMSCR_EL1, CNTHV_CVAL_EL2 for PMBLIMITR_EL1.
    pub const STANDIN: SpeRegs = SpeRegs { pmscr: &["cnthp_cval_el2"], pmblimitr: &["cnthv_cval_el2"] };
}

/// One event of a drain or restore sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    /// `msr <control register>, xzr`.
    CtlZero,
    /// `msr <limit register>, xzr`.
    LimitZero,
    /// `msr <control register>, <saved value>`.
    CtlSaved,
    /// `msr <limit register>, <saved value>`.
    LimitSaved,
    Isb,
    PsbCsync,
    TsbCsync,
    DsbNsh,
}

impl Ev {
    fn is_barrier(self) -> bool {
        matches!(self, Ev::Isb | Ev::PsbCsync | Ev::TsbCsync | Ev::DsbNsh)
    }

    fn name(self, u: &Seq) -> String {
        match self {
            Ev::CtlZero => format!("msr {}, xzr", u.ctl[0]),
            Ev::LimitZero => format!("msr {}, xzr", u.limit[0]),
            Ev::CtlSaved => format!("msr {}, <saved>", u.ctl[0]),
            Ev::LimitSaved => format!("msr {}, <saved>", u.limit[0]),
            Ev::Isb => "isb".into(),
            Ev::PsbCsync => "psb csync".into(),
            Ev::TsbCsync => "tsb csync".into(),
            Ev::DsbNsh => "dsb nsh".into(),
        }
    }
}

/// A unit's drain and restore sequences on the hardware path (objdump's
/// names of its registers: the architectural name and the generic one).
struct Seq {
    unit: &'static str,
    ctl: &'static [&'static str],
    limit: &'static [&'static str],
    drain: &'static [Ev],
    restore: &'static [Ev],
}

/// The sequences of `save_host_buffers`/`restore_host_buffers`: SPE
/// (`spe/src/regs/hw.rs`), BRBE and TRBE (`hyp/src/hostbuf_hw.rs`).
fn sequences(spe: SpeRegs) -> [Seq; 3] {
    use Ev::*;
    [
        Seq {
            unit: "SPE",
            ctl: spe.pmscr,
            limit: spe.pmblimitr,
            drain: &[CtlZero, Isb, PsbCsync, DsbNsh, LimitZero, Isb],
            restore: &[Isb, LimitSaved, Isb, CtlSaved],
        },
        Seq { unit: "BRBE", ctl: &["brbcr_el1", "s2_1_c9_c0_0"], limit: &[], drain: &[CtlZero], restore: &[CtlSaved] },
        Seq {
            unit: "TRBE",
            ctl: &["trfcr_el1", "s3_0_c1_c2_1"],
            limit: &["trblimitr_el1", "s3_0_c9_c11_0"],
            drain: &[CtlZero, Isb, TsbCsync, DsbNsh, LimitZero, Isb],
            restore: &[LimitSaved, Isb, CtlSaved],
        },
    ]
}

/// One decoded instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Insn {
    pub addr: u64,
    pub word: u32,
    pub mnemonic: String,
    pub operands: String,
}

/// A function: its symbol and instructions in address order.
#[derive(Clone, Debug)]
pub struct Function {
    pub name: String,
    pub insns: Vec<Insn>,
}

/// Parses `objdump -d -w` output.
pub fn parse_listing(text: &str) -> Vec<Function> {
    let mut out: Vec<Function> = vec![];
    for line in text.lines() {
        if let Some(head) = line.strip_suffix(">:") {
            if let Some((addr, name)) = head.split_once(" <") {
                if u64::from_str_radix(addr.trim(), 16).is_ok() {
                    out.push(Function { name: name.to_string(), insns: vec![] });
                }
            }
            continue;
        }
        let mut parts = line.split('\t');
        let (Some(addr), Some(word), Some(mnemonic)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Some(addr) = addr.trim().strip_suffix(':').and_then(|a| u64::from_str_radix(a, 16).ok()) else {
            continue;
        };
        let Ok(word) = u32::from_str_radix(word.trim(), 16) else {
            continue;
        };
        let operands = parts.collect::<Vec<_>>().join("\t");
        let operands = operands.split("//").next().unwrap_or("").trim().to_string();
        if let Some(f) = out.last_mut() {
            f.insns.push(Insn { addr, word, mnemonic: mnemonic.trim().to_lowercase(), operands });
        }
    }
    out
}

/// Disassembles `elf` with `objdump`.
pub fn disassemble(objdump: &str, elf: &Path) -> Result<Vec<Function>, String> {
    let out =
        Command::new(objdump).args(["-d", "-w"]).arg(elf).output().map_err(|e| format!("cannot run {objdump}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{objdump} -d {} failed: {}", elf.display(), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(parse_listing(&String::from_utf8_lossy(&out.stdout)))
}

/// The image's bytes at a virtual address, for [`check`]'s jump tables.
pub fn elf_reader(elf: &Path) -> Result<impl Fn(u64, usize) -> Option<Vec<u8>>, String> {
    let b = std::fs::read(elf).map_err(|e| format!("read {}: {e}", elf.display()))?;
    Ok(move |addr: u64, len: usize| {
        let off = crate::elf::file_offset(&b, addr).ok()?;
        b.get(off..off + len).map(<[u8]>::to_vec)
    })
}

/// What an instruction does, for this check.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// `msr <reg>, <src>` (register and source in lower case).
    Msr {
        reg: String,
        src: String,
    },
    Isb,
    DsbNsh,
    /// Any other `dsb`/`dmb` (never part of a sequence).
    OtherBarrier,
    PsbCsync,
    TsbCsync,
    Call(u64),
    Jump(u64),
    CondJump(u64),
    Indirect,
    Return,
    Other,
}

fn target(operands: &str) -> Option<u64> {
    let before = operands.split('<').next()?;
    let last = before.trim().rsplit([' ', ',']).next()?;
    u64::from_str_radix(last.trim(), 16).ok()
}

fn kind(i: &Insn) -> Kind {
    let m = i.mnemonic.as_str();
    match m {
        "msr" => {
            let (reg, src) = i.operands.split_once(',').unwrap_or((&i.operands, ""));
            Kind::Msr { reg: reg.trim().to_lowercase(), src: src.trim().to_lowercase() }
        }
        "isb" => Kind::Isb,
        "dsb" if i.operands.trim() == "nsh" => Kind::DsbNsh,
        "dsb" | "dmb" => Kind::OtherBarrier,
        "psb" => Kind::PsbCsync,
        "hint" if i.operands.trim() == "#0x11" => Kind::PsbCsync,
        "tsb" => Kind::TsbCsync,
        "hint" if i.operands.trim() == "#0x12" => Kind::TsbCsync,
        "bl" => target(&i.operands).map_or(Kind::Indirect, Kind::Call),
        "b" => target(&i.operands).map_or(Kind::Indirect, Kind::Jump),
        "cbz" | "cbnz" | "tbz" | "tbnz" => target(&i.operands).map_or(Kind::Indirect, Kind::CondJump),
        _ if m.starts_with("b.") || m.starts_with("bc.") => target(&i.operands).map_or(Kind::Indirect, Kind::CondJump),
        "br" | "blr" | "braa" | "brab" | "blraa" | "blrab" | "braaz" | "brabz" | "blraaz" | "blrabz" => Kind::Indirect,
        // `brk`/`udf`/`hlt` end a path (they follow calls that do not return).
        "ret" | "retaa" | "retab" | "eret" | "eretaa" | "eretab" | "brk" | "udf" | "hlt" => Kind::Return,
        _ => Kind::Other,
    }
}

/// The regime registers each function writes, itself or through the
/// functions it calls or jumps to (by address of the function's start).
struct Summaries<'a> {
    by_start: HashMap<u64, &'a Function>,
    starts: Vec<u64>,
    memo: HashMap<u64, Vec<String>>,
}

impl<'a> Summaries<'a> {
    fn new(funcs: &'a [Function]) -> Self {
        let by_start: HashMap<u64, &Function> =
            funcs.iter().filter_map(|f| f.insns.first().map(|i| (i.addr, f))).collect();
        let mut starts: Vec<u64> = by_start.keys().copied().collect();
        starts.sort_unstable();
        Self { by_start, starts, memo: HashMap::new() }
    }

    /// The function containing `addr` (its start address).
    fn containing(&self, addr: u64) -> Option<u64> {
        let i = self.starts.partition_point(|s| *s <= addr);
        let start = *self.starts.get(i.checked_sub(1)?)?;
        let f = self.by_start[&start];
        (f.insns.last()?.addr >= addr).then_some(start)
    }

    /// Regime registers written from `addr` on (a call target), transitively.
    fn writes(&mut self, addr: u64) -> Vec<String> {
        let Some(start) = self.containing(addr) else { return vec![] };
        let mut seen = HashSet::new();
        let mut out = vec![];
        self.collect(start, &mut seen, &mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect(&mut self, start: u64, seen: &mut HashSet<u64>, out: &mut Vec<String>) {
        if !seen.insert(start) {
            return;
        }
        if let Some(w) = self.memo.get(&start) {
            out.extend(w.iter().cloned());
            return;
        }
        let f = self.by_start[&start];
        let mut mine = vec![];
        let mut callees = vec![];
        for i in &f.insns {
            match kind(i) {
                Kind::Msr { reg, .. } if REGIME_REGS.contains(&reg.as_str()) => mine.push(reg),
                Kind::Call(t) | Kind::Jump(t) | Kind::CondJump(t) => {
                    if let Some(s) = self.containing(t).filter(|s| *s != start) {
                        callees.push(s);
                    }
                }
                _ => {}
            }
        }
        for c in callees {
            self.collect(c, seen, &mut mine);
        }
        mine.sort();
        mine.dedup();
        out.extend(mine.iter().cloned());
        self.memo.insert(start, mine);
    }
}

/// A violated rule: its name and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

/// What the check found in one image (for the report line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub function: String,
    pub drains: Vec<u64>,
    pub restores: Vec<u64>,
    /// Every barrier of every drain and restore sequence, with its name:
    /// the instructions the barrier-removal tests replace with `nop`.
    pub barriers: Vec<(u64, String)>,
}

/// One instruction of the switch function in the graph: its kind, the
/// regime registers it writes (itself or through a call) and its successors.
struct Node {
    kind: Kind,
    writes: Vec<String>,
    succ: Vec<usize>,
}

/// Reads `len` bytes of the image at a virtual address (jump tables).
pub type Mem<'a> = &'a dyn Fn(u64, usize) -> Option<Vec<u8>>;

/// The register number of `x12`/`w12`.
fn regno(r: &str) -> Option<&str> {
    r.trim().strip_prefix('x').or_else(|| r.trim().strip_prefix('w'))
}

/// Entries read from a jump table that has no bounds check.
const MAX_UNBOUNDED_ENTRIES: usize = 256;

/// The targets of the jump-table branch at `f.insns[n]` (LLVM's AArch64
/// shape: `cmp xI, #N; b.hi; adr xB, .; ldr{sw,h,b} xE, [xT, xI...];
/// add xB, xB, xE[, lsl #2]; br xB`, the table at the last `adr xT`).
///
/// A `match` on a Rust enum's tag needs no bounds check (the tag is
/// always a variant), and LLVM then emits the table without the `cmp`:
/// the entries are read until the first that does not land in the
/// function (at most [`MAX_UNBOUNDED_ENTRIES`]). Every real entry lands in
/// it, so none is missed; bytes after the table that happen to decode to
/// an address in the function only add edges, which can make the check
/// stricter, never let a path go unchecked.
fn jump_table(f: &Function, n: usize, mem: Mem) -> Option<Vec<u64>> {
    let reg = f.insns[n].operands.trim().to_string();
    let window = n.saturating_sub(12)..n;
    let ops = |k: usize| -> Vec<String> { f.insns[k].operands.split(',').map(|o| o.trim().to_string()).collect() };
    let add = window.clone().rev().find(|&k| f.insns[k].mnemonic == "add" && ops(k).first() == Some(&reg))?;
    let a = ops(add);
    let entry = a.get(2)?.clone();
    let shift: u32 = match a.get(3).map(String::as_str) {
        None => 0,
        Some("lsl #2") => 2,
        Some(_) => return None,
    };
    let base = window.clone().rev().find(|&k| f.insns[k].mnemonic == "adr" && ops(k).first() == Some(&reg))?;
    let base = target(&f.insns[base].operands)?;
    let ld = window.clone().rev().find(|&k| {
        matches!(f.insns[k].mnemonic.as_str(), "ldrsw" | "ldrh" | "ldrb") && regno(&ops(k)[0]) == regno(&entry)
    })?;
    let size = match f.insns[ld].mnemonic.as_str() {
        "ldrsw" => 4,
        "ldrh" => 2,
        _ => 1,
    };
    let l = ops(ld);
    let table_reg = l.get(1)?.trim_start_matches('[').to_string();
    let index = l.get(2)?.trim_end_matches(']').to_string();
    let cmp = window.clone().rev().find(|&k| f.insns[k].mnemonic == "cmp" && regno(&ops(k)[0]) == regno(&index));
    let count = match cmp {
        Some(cmp) => Some(u64::from_str_radix(ops(cmp).get(1)?.strip_prefix("#0x")?, 16).ok()? + 1),
        None => None,
    };
    // The table: `adr xT, T`, or `adrp xT, PAGE; add xT, xT, #OFF`.
    let def = (0..ld).rev().take(512).find(|&k| {
        matches!(f.insns[k].mnemonic.as_str(), "adr" | "adrp" | "add") && ops(k).first() == Some(&table_reg)
    })?;
    let table = match f.insns[def].mnemonic.as_str() {
        "adr" => target(&f.insns[def].operands)?,
        "add" => {
            let a = ops(def);
            let off = u64::from_str_radix(a.get(2)?.strip_prefix("#0x")?, 16).ok()?;
            let page = def.checked_sub(1).filter(|&k| f.insns[k].mnemonic == "adrp" && ops(k)[0] == table_reg)?;
            target(&f.insns[page].operands)? + off
        }
        _ => return None,
    };
    let first = f.insns.first()?.addr;
    let last = f.insns.last()?.addr;
    let entry_at = |k: usize| -> Option<u64> {
        let e = mem(table + (k * size) as u64, size)?;
        let v: i64 = match size {
            4 => i32::from_le_bytes(e.as_slice().try_into().ok()?) as i64,
            2 => u16::from_le_bytes(e.as_slice().try_into().ok()?) as i64,
            _ => e[0] as i64,
        };
        Some(base.wrapping_add_signed(v << shift))
    };
    let mut out = vec![];
    match count {
        Some(count) => {
            for k in 0..count as usize {
                let t = entry_at(k)?;
                if !(first..=last).contains(&t) {
                    return None;
                }
                out.push(t);
            }
        }
        None => {
            for k in 0..MAX_UNBOUNDED_ENTRIES {
                match entry_at(k) {
                    Some(t) if (first..=last).contains(&t) => out.push(t),
                    _ => break,
                }
            }
            if out.is_empty() {
                return None;
            }
        }
    }
    Some(out)
}

fn graph(f: &Function, sums: &mut Summaries, mem: Mem) -> Result<Vec<Node>, Violation> {
    let index: HashMap<u64, usize> = f.insns.iter().enumerate().map(|(n, i)| (i.addr, n)).collect();
    let mut nodes = vec![];
    for (n, i) in f.insns.iter().enumerate() {
        let k = kind(i);
        let next = (n + 1 < f.insns.len()).then_some(n + 1);
        let (writes, succ) = match &k {
            Kind::Msr { reg, .. } if REGIME_REGS.contains(&reg.as_str()) => {
                (vec![reg.clone()], next.into_iter().collect())
            }
            Kind::Call(t) => (sums.writes(*t), next.into_iter().collect()),
            // A jump out of the function is a tail call.
            Kind::Jump(t) => match index.get(t) {
                Some(j) => (vec![], vec![*j]),
                None => (sums.writes(*t), vec![]),
            },
            Kind::CondJump(t) => {
                let mut s: Vec<usize> = next.into_iter().collect();
                match index.get(t) {
                    Some(j) => s.push(*j),
                    None => {
                        return Err(violation("graph", format!("{:#x}: conditional branch out of {}", i.addr, f.name)))
                    }
                }
                (vec![], s)
            }
            Kind::Indirect if i.mnemonic == "br" => match jump_table(f, n, mem) {
                Some(ts) => (vec![], ts.iter().filter_map(|t| index.get(t).copied()).collect()),
                None => {
                    return Err(violation(
                        "graph",
                        format!(
                            "{:#x}: indirect branch `br {}` in {} is no jump table the check can read",
                            i.addr, i.operands, f.name
                        ),
                    ))
                }
            },
            Kind::Indirect => {
                return Err(violation(
                    "graph",
                    format!(
                        "{:#x}: indirect branch `{} {}` in {} (not followed)",
                        i.addr, i.mnemonic, i.operands, f.name
                    ),
                ))
            }
            Kind::Return => (vec![], vec![]),
            _ => (vec![], next.into_iter().collect()),
        };
        nodes.push(Node { kind: k, writes, succ });
    }
    Ok(nodes)
}

fn violation(rule: &'static str, detail: String) -> Violation {
    Violation { rule, detail }
}

/// Events of a sequence: system-register writes, barriers, and calls that
/// write regime registers.
fn is_event(n: &Node) -> bool {
    matches!(n.kind, Kind::Msr { .. } | Kind::Isb | Kind::DsbNsh | Kind::OtherBarrier | Kind::PsbCsync | Kind::TsbCsync)
        || !n.writes.is_empty()
}

fn describe(n: &Node) -> String {
    match &n.kind {
        Kind::Msr { reg, src } => format!("msr {reg}, {src}"),
        Kind::Isb => "isb".into(),
        Kind::DsbNsh => "dsb nsh".into(),
        Kind::PsbCsync => "psb csync".into(),
        Kind::TsbCsync => "tsb csync".into(),
        Kind::OtherBarrier => "another barrier".into(),
        Kind::Call(_) => format!("a call writing {}", n.writes.join("/")),
        k => format!("{k:?}"),
    }
}

/// Events from node `start` along the straight line (fallthrough and
/// unconditional jumps inside the function), at most `len` of them; stops
/// at a conditional branch or return.
fn line_events(nodes: &[Node], start: usize, len: usize) -> Vec<usize> {
    let mut out = vec![];
    let mut n = start;
    let mut steps = 0;
    while out.len() < len && steps < 4096 {
        steps += 1;
        if is_event(&nodes[n]) {
            out.push(n);
        }
        match (&nodes[n].kind, nodes[n].succ.as_slice()) {
            (Kind::CondJump(_), _) => break,
            (_, [next]) => n = *next,
            _ => break,
        }
    }
    out
}

/// Events backwards from node `end` along the unique-predecessor line.
fn line_events_back(nodes: &[Node], preds: &[Vec<usize>], end: usize, len: usize) -> Vec<usize> {
    let mut out = vec![];
    let mut n = end;
    let mut steps = 0;
    while out.len() < len && steps < 4096 {
        steps += 1;
        if is_event(&nodes[n]) {
            out.push(n);
        }
        match preds[n].as_slice() {
            [p] if matches!(nodes[*p].succ.as_slice(), [_]) => n = *p,
            _ => break,
        }
    }
    out.reverse();
    out
}

/// The first of `targets` reachable from node `from` (not counting `from`
/// itself), if any.
fn reaches(nodes: &[Node], from: usize, targets: &[usize]) -> Option<usize> {
    let mut seen = vec![false; nodes.len()];
    let mut work: Vec<usize> = nodes[from].succ.clone();
    while let Some(n) = work.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        if targets.contains(&n) {
            return Some(n);
        }
        work.extend(nodes[n].succ.iter().copied().filter(|m| !seen[*m]));
    }
    None
}

/// Checks the image's world switch; `Ok` names what it found.
pub fn check(funcs: &[Function], spe: SpeRegs, mem: Mem) -> Result<Found, Violation> {
    let is_drain_start =
        |i: &Insn| matches!(kind(i), Kind::Msr { reg, src } if spe.pmscr.contains(&reg.as_str()) && src == "xzr");
    let mut sums = Summaries::new(funcs);
    // The switch function: writes VTTBR_EL2 (itself or through a call) and
    // holds the drain.
    let candidates: Vec<&Function> = funcs.iter().filter(|f| f.insns.iter().any(is_drain_start)).collect();
    let mut switch = vec![];
    for f in candidates {
        let Some(start) = f.insns.first().map(|i| i.addr) else { continue };
        if sums.writes(start).iter().any(|r| r == "vttbr_el2") {
            switch.push(f);
        }
    }
    let f = match switch.as_slice() {
        [f] => *f,
        [] => {
            return Err(violation(
                "switch-function",
                format!("no function both writes VTTBR_EL2 and holds `msr {}, xzr` (the drain)", spe.pmscr[0]),
            ))
        }
        many => {
            let names: Vec<&str> = many.iter().map(|f| f.name.as_str()).collect();
            return Err(violation("switch-function", format!("several candidates: {names:?}")));
        }
    };
    let nodes = graph(f, &mut sums, mem)?;
    let mut preds = vec![vec![]; nodes.len()];
    for (n, node) in nodes.iter().enumerate() {
        for &s in &node.succ {
            preds[s].push(n);
        }
    }
    let msr_to = |n: usize, regs: &[&str], zero: bool| matches!(&nodes[n].kind, Kind::Msr { reg: r, src } if regs.contains(&r.as_str()) && (src == "xzr") == zero);
    let at = |n: usize| f.insns[n].addr;
    let is = |n: usize, e: Ev, u: &Seq| match e {
        Ev::CtlZero => msr_to(n, u.ctl, true),
        Ev::LimitZero => msr_to(n, u.limit, true),
        Ev::CtlSaved => msr_to(n, u.ctl, false),
        Ev::LimitSaved => msr_to(n, u.limit, false),
        Ev::Isb => nodes[n].kind == Kind::Isb,
        Ev::PsbCsync => nodes[n].kind == Kind::PsbCsync,
        Ev::TsbCsync => nodes[n].kind == Kind::TsbCsync,
        Ev::DsbNsh => nodes[n].kind == Kind::DsbNsh,
    };

    let mut drains = vec![];
    let mut drain_units = vec![];
    let mut restores = vec![];
    let mut restore_units = vec![];
    let mut barriers = vec![];
    for u in &sequences(spe) {
        // Drains: from each `msr CTL, xzr`, the sequence's events in order.
        let mut found_drain = false;
        for n in (0..nodes.len()).filter(|n| msr_to(*n, u.ctl, true)) {
            let ev = line_events(&nodes, n, u.drain.len());
            for (k, &want) in u.drain.iter().enumerate() {
                match ev.get(k) {
                    Some(&e) if is(e, want, u) => {}
                    got => {
                        return Err(violation(
                            "drain-sequence",
                            format!(
                                "the {} drain at {:#x} has {} where `{}` belongs (step {} of {})",
                                u.unit,
                                at(n),
                                got.map_or("nothing".into(), |&e| format!("`{}` at {:#x}", describe(&nodes[e]), at(e))),
                                want.name(u),
                                k + 1,
                                u.drain.len()
                            ),
                        ))
                    }
                }
                if want.is_barrier() {
                    barriers.push((at(ev[k]), format!("{} drain {} {}", u.unit, want.name(u), k + 1)));
                }
            }
            drains.push(n);
            drain_units.push(u.unit);
            found_drain = true;
        }
        // Restores: back from each `msr CTL, <saved>`, the sequence's events.
        let mut found_restore = false;
        for n in (0..nodes.len()).filter(|n| msr_to(*n, u.ctl, false)) {
            let ev = line_events_back(&nodes, &preds, n, u.restore.len());
            let off = u.restore.len().saturating_sub(ev.len());
            for (k, &want) in u.restore.iter().enumerate() {
                let got = k.checked_sub(off).and_then(|j| ev.get(j));
                match got {
                    Some(&e) if is(e, want, u) => {
                        if want.is_barrier() {
                            barriers.push((at(e), format!("{} restore {} {}", u.unit, want.name(u), k + 1)));
                        }
                    }
                    got => {
                        let seen: Vec<String> = ev.iter().map(|&e| describe(&nodes[e])).collect();
                        return Err(violation(
                            "restore-sequence",
                            format!(
                                "the {} restore ending at {:#x} has {} where `{}` belongs (step {} of {}; the line holds {seen:?})",
                                u.unit,
                                at(n),
                                got.map_or("nothing".into(), |&e| format!("`{}` at {:#x}", describe(&nodes[e]), at(e))),
                                want.name(u),
                                k + 1,
                                u.restore.len()
                            ),
                        ));
                    }
                }
            }
            restores.push(ev[0]);
            restore_units.push(u.unit);
            found_restore = true;
        }
        if !found_drain {
            return Err(violation(
                "drain-sequence",
                format!("no {} drain (`msr {}, xzr`) in {}", u.unit, u.ctl[0], f.name),
            ));
        }
        if !found_restore {
            return Err(violation(
                "restore-sequence",
                format!("no {} restore (`msr {}, <saved>`) in {}", u.unit, u.ctl[0], f.name),
            ));
        }
    }

    let writers: Vec<usize> = (0..nodes.len()).filter(|n| !nodes[*n].writes.is_empty()).collect();
    // Writers in address order: the first one that reaches a drain is reported.
    for &w in &writers {
        if let Some(d) = reaches(&nodes, w, &drains) {
            return Err(violation(
                "drain-before-guest-state",
                format!(
                    "{} written at {:#x} ({}) can run before the {} drain at {:#x}",
                    nodes[w].writes.join("/"),
                    at(w),
                    describe(&nodes[w]),
                    drains.iter().position(|x| *x == d).map_or("?", |k| drain_units[k]),
                    at(d)
                ),
            ));
        }
    }
    for (k, &r) in restores.iter().enumerate() {
        if let Some(w) = reaches(&nodes, r, &writers) {
            return Err(violation(
                "restore-after-host-state",
                format!(
                    "{} written at {:#x} ({}) after the {} restore at {:#x}",
                    nodes[w].writes.join("/"),
                    at(w),
                    describe(&nodes[w]),
                    restore_units[k],
                    at(r)
                ),
            ));
        }
    }
    Ok(Found {
        function: f.name.clone(),
        drains: drains.iter().map(|&n| at(n)).collect(),
        restores: restores.iter().map(|&n| at(n)).collect(),
        barriers,
    })
}

/// A copy of `elf` with the 32-bit instruction at virtual address `addr`
/// replaced by `word` (a broken variant of the shipped code).
pub fn patched_copy(elf: &Path, addr: u64, word: u32, out: &Path) -> Result<(), String> {
    let mut b = std::fs::read(elf).map_err(|e| format!("read {}: {e}", elf.display()))?;
    let off = crate::elf::file_offset(&b, addr)?;
    b[off..off + 4].copy_from_slice(&word.to_le_bytes());
    std::fs::write(out, b).map_err(|e| format!("write {}: {e}", out.display()))
}

/// `nop`.
pub const NOP: u32 = 0xd503_201f;

/// `cargo xtask check-switch-code ELF [--standin]`: runs the check on one ELF.
pub fn cli(args: &[String]) -> Result<(), String> {
    let elf =
        args.iter().find(|a| !a.starts_with("--")).ok_or("usage: cargo xtask check-switch-code ELF [--standin]")?;
    let spe = if args.iter().any(|a| a == "--standin") { SpeRegs::STANDIN } else { SpeRegs::REAL };
    let objdump = crate::setup::objdump()?;
    let funcs = disassemble(&objdump, Path::new(elf))?;
    match check(&funcs, spe, &elf_reader(Path::new(elf))?) {
        Ok(f) => {
            println!("switch-code: ok function={} drains={:x?} restores={:x?}", f.function, f.drains, f.restores);
            Ok(())
        }
        Err(v) => Err(format!("switch-code: violation {v}")),
    }
}

/// One machine-code test: an ELF, its SPE register names, and the rule it
/// must break (`None`: it must pass).
pub struct Case {
    pub name: String,
    pub elf: std::path::PathBuf,
    pub spe: SpeRegs,
    pub want: Option<&'static str>,
}

/// Runs one case; `Ok` describes what was found.
pub fn run_case(objdump: &str, c: &Case) -> Result<String, String> {
    let funcs = disassemble(objdump, &c.elf)?;
    match (check(&funcs, c.spe, &elf_reader(&c.elf)?), c.want) {
        (Ok(f), None) => Ok(format!("{} drains, {} restores in {}", f.drains.len(), f.restores.len(), f.function)),
        (Err(v), Some(rule)) if v.rule == rule => Ok(format!("caught: {v}")),
        (Ok(_), Some(rule)) => Err(format!("{}: passed, but must break {rule}", c.elf.display())),
        (Err(v), _) => Err(format!("{}: {v} (expected {:?})", c.elf.display(), c.want)),
    }
}

/// For a correct image: one copy per barrier of its first drain and first
/// restore with that barrier replaced by `nop`, each of which must fail.
pub fn barrier_cases(objdump: &str, name: &str, elf: &Path, spe: SpeRegs) -> Result<Vec<Case>, String> {
    let funcs = disassemble(objdump, elf)?;
    let found = check(&funcs, spe, &elf_reader(elf)?).map_err(|v| format!("{}: {v}", elf.display()))?;
    let dir = crate::root().join("target").join("switch-code");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut cases = vec![];
    let mut done = HashSet::new();
    for (addr, what) in &found.barriers {
        // Each unit's first drain's and first restore's barriers.
        if !done.insert(what.clone()) {
            continue;
        }
        let slug = what.to_lowercase().replace(' ', "_");
        let out = dir.join(format!("{name}-no-{slug}.elf"));
        patched_copy(elf, *addr, NOP, &out)?;
        let want = if what.contains(" restore ") { "restore-sequence" } else { "drain-sequence" };
        cases.push(Case { name: format!("{name}_without_the_{slug}"), elf: out, spe, want: Some(want) });
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instructions as `(mnemonic, operands)`.
    type Body = Vec<(&'static str, &'static str)>;
    /// A function as `(name, address, instructions)`.
    type Func<'a> = (&'a str, u64, &'a [(&'a str, &'a str)]);

    /// A listing in objdump's `-d -w` format: `(mnemonic, operands)` per
    /// instruction; a mnemonic ending in `:` is a label (no instruction),
    /// and an operand `@name` is that label's address.
    fn listing(funcs: &[Func]) -> String {
        let mut s = String::new();
        for (name, base, insns) in funcs {
            let mut labels = HashMap::new();
            let mut a = *base;
            for (m, _) in insns.iter() {
                match m.strip_suffix(':') {
                    Some(l) => {
                        labels.insert(format!("@{l}"), a);
                    }
                    None => a += 4,
                }
            }
            s.push_str(&format!("\n{base:016x} <{name}>:\n"));
            let mut a = *base;
            for (m, o) in insns.iter() {
                if m.ends_with(':') {
                    continue;
                }
                let o = match o.split_once('@') {
                    Some((reg, l)) => format!("{reg}{:x} <{name}>", labels[&format!("@{l}")]),
                    None => o.to_string(),
                };
                s.push_str(&format!("   {a:x}:\td503201f \t{m}\t{o}\n"));
                a += 4;
            }
        }
        s
    }

    const EL1_RESTORE: (&str, u64, &[(&str, &str)]) =
        ("__el1_restore", 0x1000, &[("msr", "ttbr0_el1, x1"), ("msr", "ttbr1_el1, x2"), ("ret", "")]);
    const STAGE2: (&str, u64, &[(&str, &str)]) = ("load_stage2", 0x1100, &[("msr", "vttbr_el2, x1"), ("ret", "")]);

    /// The switch's shape: the backend dispatch around the hardware drain,
    /// host save, drain, guest EL1 in, stage-2, traps, guest, back, and the
    /// dispatch around the restore. `edit` changes the instruction list.
    fn switch(edit: impl Fn(&mut Body)) -> Vec<Function> {
        let mut body: Body = vec![
            ("cbz", "x0, @nodrain"), // 0
            ("msr", "pmscr_el1, xzr"),
            ("isb", ""),
            ("psb", "csync"),
            ("dsb", "nsh"),
            ("msr", "pmblimitr_el1, xzr"), // 5
            ("isb", ""),
            ("nodrain:", ""),
            ("dsb", "nsh"),
            ("bl", "1000 <__el1_restore>"),
            ("bl", "1100 <load_stage2>"), // 10
            ("msr", "hcr_el2, x3"),
            ("msr", "mdcr_el2, x4"),
            ("nop", ""),
            ("msr", "hcr_el2, x5"),
            ("bl", "1000 <__el1_restore>"), // 15
            ("cbz", "x0, @norestore"),
            ("isb", ""),
            ("msr", "pmblimitr_el1, x9"),
            ("isb", ""),
            ("msr", "pmscr_el1, x8"), // 20
            ("norestore:", ""),
            ("ret", ""),
        ];
        edit(&mut body);
        with_brbe_trbe(&mut body);
        parse_listing(&listing(&[EL1_RESTORE, STAGE2, ("switch", 0x2000, &body)]))
    }

    /// The BRBE and TRBE drains after the SPE one (after the `nodrain:`
    /// label) and their restores after the SPE one (before `norestore:`).
    fn with_brbe_trbe(body: &mut Body) {
        let d = body.iter().position(|i| i.0 == "nodrain:").unwrap() + 1;
        body.splice(
            d..d,
            [
                ("msr", "brbcr_el1, xzr"),
                ("msr", "trfcr_el1, xzr"),
                ("isb", ""),
                ("tsb", "csync"),
                ("dsb", "nsh"),
                ("msr", "trblimitr_el1, xzr"),
                ("isb", ""),
            ],
        );
        let r = body.iter().position(|i| i.0 == "norestore:").unwrap();
        body.splice(
            r..r,
            [("msr", "brbcr_el1, x7"), ("msr", "trblimitr_el1, x6"), ("isb", ""), ("msr", "trfcr_el1, x5")],
        );
    }

    /// [`switch`], then `late` on the whole body (BRBE and TRBE included).
    fn switch_late(late: impl Fn(&mut Body)) -> Vec<Function> {
        let fs = switch(|_| {});
        let mut body: Body = vec![];
        // Rebuild the body from the listing's switch function.
        for i in &fs.iter().find(|f| f.name == "switch").unwrap().insns {
            let m: &'static str = Box::leak(i.mnemonic.clone().into_boxed_str());
            let o: &'static str = Box::leak(i.operands.clone().into_boxed_str());
            body.push((m, o));
        }
        late(&mut body);
        parse_listing(&listing(&[EL1_RESTORE, STAGE2, ("switch", 0x2000, &body)]))
    }

    /// A jump table without a bounds check (a `match` on an enum tag): its
    /// entries are read until one leaves the function, and every target is
    /// followed (here: a drain behind the third entry is reached).
    #[test]
    fn an_unbounded_jump_table_is_followed_to_every_entry() {
        const TABLE: u64 = 0x9000;
        // switch at 0x2000: the `br` at 0x2014; the targets 0x2018, 0x201c
        // and 0x2020 are offsets from the `adr x8` at 0x2008.
        let body: Body = vec![
            ("ldrb", "w11, [x0]"),
            ("adr", "x10, 9000 <table>"),
            ("adr", "x8, 2008 <switch>"),
            ("ldrsw", "x9, [x10, x11, lsl #2]"),
            ("add", "x8, x8, x9"),
            ("br", "x8"),
            ("ret", ""),
            ("ret", ""),
            ("msr", "mdcr_el2, x1"),
            ("ret", ""),
        ];
        let fs = parse_listing(&listing(&[("switch", 0x2000, &body)]));
        let f = &fs[0];
        // Entries: +0x10, +0x14, +0x18 from 0x2008, then one far outside.
        let words: [i32; 4] = [0x10, 0x14, 0x18, 0x10_0000];
        let mem = |a: u64, len: usize| -> Option<Vec<u8>> {
            let k = ((a - TABLE) / 4) as usize;
            (len == 4 && a >= TABLE).then(|| words.get(k).map(|w| w.to_le_bytes().to_vec())).flatten()
        };
        let n = f.insns.iter().position(|i| i.mnemonic == "br").unwrap();
        assert_eq!(jump_table(f, n, &mem), Some(vec![0x2018, 0x201c, 0x2020]));
        // Not a table at all (no entry lands in the function): refused.
        let none = |_: u64, _: usize| -> Option<Vec<u8>> { Some(0x10_0000i32.to_le_bytes().to_vec()) };
        assert_eq!(jump_table(f, n, &none), None);
    }

    #[test]
    fn parses_objdump_lines() {
        let text = "\n0000000000002d5a8 <f>:\n   2d9b8:\td518991f \tmsr\tpmscr_el1, xzr\n   2d9d8:\t52800028 \tmov\tw8, #0x1                   \t// #1\n   2d9dc:\t94000001 \tbl\t2d9e0 <g+0x4>\n";
        let f = parse_listing(text);
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].insns[0],
            Insn { addr: 0x2d9b8, word: 0xd518991f, mnemonic: "msr".into(), operands: "pmscr_el1, xzr".into() }
        );
        assert_eq!(f[0].insns[1].operands, "w8, #0x1");
        assert_eq!(kind(&f[0].insns[2]), Kind::Call(0x2d9e0));
        let tbz = Insn { addr: 0, word: 0, mnemonic: "tbnz".into(), operands: "w0, #0, 59738 <f+0x6c>".into() };
        assert_eq!(kind(&tbz), Kind::CondJump(0x59738));
    }

    #[test]
    fn the_correct_shape_passes() {
        let f = check(&switch(|_| {}), SpeRegs::REAL, &|_, _| None).unwrap();
        assert_eq!(f.function, "switch");
        assert_eq!((f.drains.len(), f.restores.len()), (3, 3), "SPE, BRBE, TRBE");
    }

    #[test]
    fn each_broken_shape_fails_with_its_rule() {
        let rule = |edit: &dyn Fn(&mut Body)| {
            check(&switch(edit), SpeRegs::REAL, &|_, _| None).map(|_| ()).map_err(|v| v.rule)
        };
        // A barrier missing from the drain (each of the four).
        for k in [2, 3, 4, 6] {
            assert_eq!(rule(&|b| b[k] = ("nop", "")), Err("drain-sequence"), "barrier {k} removed");
        }
        // A barrier missing from the restore.
        assert_eq!(rule(&|b| b[17] = ("nop", "")), Err("restore-sequence"));
        assert_eq!(rule(&|b| b[19] = ("nop", "")), Err("restore-sequence"));
        // The drain after the guest's EL1 registers and stage-2 (pre-2021).
        assert_eq!(
            rule(&|b| {
                let d: Vec<_> = b.drain(1..7).collect();
                b.splice(5..5, d);
            }),
            Err("drain-before-guest-state")
        );
        // The drain after HCR_EL2 only.
        assert_eq!(
            rule(&|b| {
                let d: Vec<_> = b.drain(1..7).collect();
                b.splice(0..0, [("msr", "hcr_el2, x1")]);
                b.splice(1..1, d);
            }),
            Err("drain-before-guest-state")
        );
        // The restore before the host's EL1 registers are back.
        assert_eq!(
            rule(&|b| {
                let r: Vec<_> = b.drain(17..21).collect();
                b.splice(15..15, r);
            }),
            Err("restore-after-host-state")
        );
        // HCR_EL2 written after the restore.
        assert_eq!(rule(&|b| b.insert(21, ("msr", "hcr_el2, x1"))), Err("restore-after-host-state"));
        // No drain at all, or an indirect branch the check cannot follow.
        assert_eq!(rule(&|b| b[1] = ("msr", "pmscr_el1, x1")), Err("switch-function"));
        assert_eq!(rule(&|b| b[13] = ("br", "x8")), Err("graph"));
    }

    #[test]
    fn trbe_and_brbe_breakages_fail_with_their_rule() {
        let rule = |late: &dyn Fn(&mut Body)| {
            check(&switch_late(late), SpeRegs::REAL, &|_, _| None).map(|_| ()).map_err(|v| v.rule)
        };
        let at = |b: &Body, i: (&str, &str)| b.iter().position(|x| *x == i).unwrap();
        assert_eq!(rule(&|_| {}), Ok(()));
        // A TRBE barrier missing: tsb csync, or the dsb nsh after it.
        let nop = |b: &mut Body, i: (&str, &str)| {
            let k = at(b, i);
            b[k] = ("nop", "");
        };
        assert_eq!(rule(&|b| nop(b, ("tsb", "csync"))), Err("drain-sequence"));
        assert_eq!(
            rule(&|b| {
                let t = at(b, ("tsb", "csync"));
                b[t + 1] = ("nop", "");
            }),
            Err("drain-sequence")
        );
        // The TRBE restore's isb missing.
        assert_eq!(
            rule(&|b| {
                let r = at(b, ("msr", "trfcr_el1, x5"));
                b[r - 1] = ("nop", "");
            }),
            Err("restore-sequence")
        );
        // TRBE drained late: after the stage-2 load.
        assert_eq!(
            rule(&|b| {
                let t = at(b, ("msr", "trfcr_el1, xzr"));
                let d: Vec<_> = b.drain(t..t + 6).collect();
                let s = at(b, ("bl", "1100 <load_stage2>")) + 1;
                b.splice(s..s, d);
            }),
            Err("drain-before-guest-state")
        );
        // BRBE resumed before the host's EL1 registers are back.
        assert_eq!(
            rule(&|b| {
                let r = b.remove(at(b, ("msr", "brbcr_el1, x7")));
                let h = at(b, ("msr", "hcr_el2, x5"));
                b.insert(h, r);
            }),
            Err("restore-after-host-state")
        );
        // No BRBE pause at all.
        assert_eq!(rule(&|b| nop(b, ("msr", "brbcr_el1, xzr"))), Err("drain-sequence"));
    }

    #[test]
    fn the_standin_names_are_recognised() {
        let fs = switch(|b| {
            for i in b.iter_mut() {
                i.1 = match i.1 {
                    "pmscr_el1, xzr" => "cnthp_cval_el2, xzr",
                    "pmblimitr_el1, xzr" => "cnthv_cval_el2, xzr",
                    "pmblimitr_el1, x9" => "cnthv_cval_el2, x9",
                    "pmscr_el1, x8" => "cnthp_cval_el2, x8",
                    o => o,
                }
            }
        });
        assert!(check(&fs, SpeRegs::STANDIN, &|_, _| None).is_ok());
        assert_eq!(check(&fs, SpeRegs::REAL, &|_, _| None).map_err(|v| v.rule).unwrap_err(), "switch-function");
    }
}
