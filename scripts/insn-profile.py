#!/usr/bin/env python3
"""Where do a round trip's instructions go? Per-symbol instruction counts.

Boots the release image twice with the `ping-loop` scenario (the guest's
HOST_PING loop: one full world switch per iteration), at N1 and N2
iterations, with `-accel tcg,one-insn-per-tb=on -d exec,nochain`, so QEMU logs
every executed instruction's PC. Each PC is attributed to the symbol that
contains it (the image ELF for EL2 and the host, the guest ELF for the guest),
and the per-symbol difference between the two boots, divided by N2 - N1, is
what one round trip costs in each function. Boot and teardown cancel out.

Usage: scripts/insn-profile.py [--scenario ping-loop] [--n1 500] [--n2 1500]
                               [--annotate SUBSTRING]... [--args "..."]
                               [--flavour release|release-spestandin]
`--args` adds kernel command-line words (default `spevisor.spe=off`; for
the SPE model: "spevisor.spe=model spevisor.spe_period=4294967295").
`--annotate` also prints the disassembly of every symbol whose name contains
SUBSTRING, each instruction with how often it ran per iteration.
Needs: `cargo xtask build --release` done (it is run here), qemu-system-aarch64,
nm (binutils). Takes about a minute; the logs go to a temporary directory.
"""
import argparse
import bisect
import collections
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAVOUR = "release"
GUEST_ELF = os.path.join(ROOT, "target/guest/aarch64-unknown-none-softfloat/release/spevisor-guest")
# Where QEMU's -kernel puts an arm64 Image with text_offset 0 on `virt`.
IMAGE_LOAD = 0x4020_0000
TRACE = re.compile(rb"Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")


def symbols(elf, bias):
    out = subprocess.run(["nm", "-n", "--defined-only", elf], check=True, capture_output=True, text=True).stdout
    addrs, names = [], []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 3 or parts[1] not in "tTwW" or parts[2].startswith("$"):
            continue
        addrs.append(int(parts[0], 16) + bias)
        names.append(parts[2])
    return addrs, names


def demangle(name):
    """Rust's legacy mangling, enough to read: `_ZN3foo3bar17h<hash>E` -> `foo::bar`."""
    m = re.match(r"_ZN(.*)E(\..*)?$", name)
    if not m:
        return name
    rest, parts = m.group(1), []
    while rest and rest[0].isdigit():
        digits = re.match(r"\d+", rest).group(0)
        n = int(digits)
        parts.append(rest[len(digits) : len(digits) + n])
        rest = rest[len(digits) + n :]
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    for esc, ch in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$RF$", "&"), ("$C$", ","), ("..", "::")):
        parts = [p.replace(esc, ch) for p in parts]
    return "::".join(parts)


def image_elf():
    return os.path.join(ROOT, f"target/spevisor-{FLAVOUR}.elf")


def one_insn_per_tb():
    """QEMU's option for one instruction per translation block: `-accel
    tcg,one-insn-per-tb=on` from QEMU 8.1, `-singlestep` before."""
    out = subprocess.run(["qemu-system-aarch64", "--version"], capture_output=True, text=True).stdout
    major, minor = (int(x) for x in out.split("version ")[1].split(".")[:2])
    return ["-accel", "tcg,one-insn-per-tb=on"] if (major, minor) >= (8, 1) else ["-singlestep"]


def profile(n, scenario, tables, workdir, args):
    log = os.path.join(workdir, f"exec-{n}.log")
    cmd = [
        "qemu-system-aarch64", "-M", "virt,virtualization=on,gic-version=3", "-cpu", "max", "-m", "1G",
        "-nographic", "-no-reboot", "-nic", "none", "-semihosting-config", "enable=on,target=native",
        *one_insn_per_tb(), "-d", "exec,nochain", "-D", log,
        "-kernel", os.path.join(ROOT, f"target/spevisor-{FLAVOUR}.Image"),
        "-append", f"spevisor.scenario={scenario} spevisor.iterations={n} {args}",
    ]
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, timeout=600)
    counts = collections.Counter()
    with open(log, "rb") as f:
        for line in f:
            m = TRACE.match(line)
            if m:
                counts[int(m.group(1), 16)] += 1
    os.unlink(log)
    return counts


def by_symbol(counts, tables):
    per_sym = collections.Counter()
    for pc, c in counts.items():
        name = "?"
        for addrs, names, lo, hi in tables:
            if lo <= pc < hi:
                i = bisect.bisect_right(addrs, pc) - 1
                if i >= 0:
                    name = names[i]
                break
        per_sym[name] += c
    return per_sym


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="ping-loop")
    ap.add_argument("--n1", type=int, default=500)
    ap.add_argument("--n2", type=int, default=1500)
    ap.add_argument("--annotate", action="append", default=[])
    ap.add_argument("--args", default="spevisor.spe=off")
    ap.add_argument("--flavour", default="release", choices=["release", "release-spestandin"])
    a = ap.parse_args()
    global FLAVOUR
    FLAVOUR = a.flavour
    build = ["cargo", "xtask", "build", "--release"] + (["--spe-hw-standin"] if "spestandin" in FLAVOUR else [])
    subprocess.run(build, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    tables = []
    for elf, bias in ((GUEST_ELF, 0), (image_elf(), IMAGE_LOAD)):
        addrs, names = symbols(elf, bias)
        tables.append((addrs, [demangle(x) for x in names], addrs[0], addrs[-1] + 0x10000))
    with tempfile.TemporaryDirectory() as d:
        c1 = profile(a.n1, a.scenario, tables, d, a.args)
        c2 = profile(a.n2, a.scenario, tables, d, a.args)
    p1, p2 = by_symbol(c1, tables), by_symbol(c2, tables)
    n = a.n2 - a.n1
    rows = [(name, (p2[name] - p1[name]) / n) for name in set(p1) | set(p2)]
    rows = sorted((r for r in rows if abs(r[1]) >= 0.5), key=lambda r: -r[1])
    total = sum(r[1] for r in rows)
    print(f"instructions per iteration of {a.scenario} (N {a.n1} -> {a.n2}): {total:.1f}")
    for name, per in rows:
        print(f"{per:8.1f}  {name}")
    for want in a.annotate:
        annotate(want, tables, c1, c2, n)


def annotate(want, tables, c1, c2, n):
    """Disassembly of the symbols matching `want`, with runs per iteration."""
    for (addrs, names, _, _), (elf, bias) in zip(tables, ((GUEST_ELF, 0), (image_elf(), IMAGE_LOAD))):
        for i, name in enumerate(names):
            if want not in name:
                continue
            later = [x for x in addrs[i + 1 :] if x > addrs[i]]
            lo, hi = addrs[i] - bias, (later[0] if later else addrs[i] + 4) - bias
            out = subprocess.run(
                ["llvm-objdump", "-d", "--no-show-raw-insn", f"--start-address={lo:#x}", f"--stop-address={hi:#x}", elf],
                capture_output=True, text=True, check=True,
            ).stdout
            print(f"\n== {name}")
            for line in out.splitlines():
                m = re.match(r"\s*([0-9a-f]+):\s+(.*)", line)
                if m:
                    pc = int(m.group(1), 16) + bias
                    per = (c2[pc] - c1[pc]) / n
                    print(f"{per:6.1f}  {m.group(1)}: {m.group(2)}")


if __name__ == "__main__":
    sys.exit(main())
