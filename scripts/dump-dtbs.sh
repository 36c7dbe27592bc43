#!/usr/bin/env bash
# Regenerates the QEMU `virt` device trees used by the spevisor-dtb tests.
#
# For every combination of GIC version (2, 3), CPU count (1, 4) and RAM size
# (256M, 2G) this asks qemu-system-aarch64 to dump the DTB it would hand to
# firmware running at EL2 (virtualization=on) and exits. The files land in
# dtb/tests/fixtures/ as virt-gicv<G>-smp<N>-<MEM>.dtb.
#
# Usage: scripts/dump-dtbs.sh [OUTPUT_DIR]
set -euo pipefail

QEMU="${QEMU:-qemu-system-aarch64}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/dtb/tests/fixtures}"

command -v "$QEMU" >/dev/null || { echo "error: $QEMU not found" >&2; exit 1; }
mkdir -p "$OUT"

# Reads the big-endian u32 header field at byte offset $2 of file $1.
be32() {
    local hex
    hex="$(od -A n -t x1 -j "$2" -N 4 "$1" | tr -d ' \n')"
    echo $((16#$hex))
}

# QEMU dumps its whole 1 MiB working buffer (totalsize = 0x100000, mostly
# zeroes). Cut the file after the strings block, which libfdt keeps last, and
# patch totalsize to match, so the fixtures stay small.
pack() {
    local file="$1" magic off_strings size_strings end
    magic="$(be32 "$file" 0)"
    [ "$magic" -eq $((16#d00dfeed)) ] || { echo "error: $file: bad magic" >&2; exit 1; }
    off_strings="$(be32 "$file" 12)"
    size_strings="$(be32 "$file" 32)"
    end=$(( (off_strings + size_strings + 3) & ~3 ))
    [ "$(be32 "$file" 8)" -lt "$off_strings" ] || { echo "error: $file: strings block is not last" >&2; exit 1; }
    truncate -s "$end" "$file"
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' \
        $((end >> 24 & 255)) $((end >> 16 & 255)) $((end >> 8 & 255)) $((end & 255)))" |
        dd of="$file" bs=1 seek=4 count=4 conv=notrunc status=none
}

for gic in 2 3; do
    for smp in 1 4; do
        for mem in 256M 2G; do
            file="$OUT/virt-gicv${gic}-smp${smp}-${mem}.dtb"
            # `-nic none`: the default NIC wants efi-virtio.rom, which is not
            # needed for a DTB dump (virtio-mmio nodes are emitted regardless).
            "$QEMU" -M "virt,virtualization=on,gic-version=${gic},dumpdtb=${file}" \
                -cpu max -smp "$smp" -m "$mem" -nographic -nic none </dev/null >/dev/null
            test -s "$file" || { echo "error: $QEMU wrote no DTB to $file" >&2; exit 1; }
            pack "$file"
            echo "wrote $file ($(stat -c %s "$file") bytes)"
        done
    done
done
"$QEMU" --version | head -n1
