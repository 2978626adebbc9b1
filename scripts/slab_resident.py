#!/usr/bin/env python3
"""Where a running program's resident memory lies in hakmem's slabs, per size class.

    python3 scripts/slab_resident.py [--after SECONDS] -- env LD_PRELOAD=$PWD/target/release/libhakmem.so PROGRAM ARGS...

Starts the command, waits SECONDS (default 1), then reads its SuperSlabs through
/proc/PID/mem and which of their pages are resident through /proc/PID/pagemap (the present
bit, readable without privileges), and prints for each block size: the slabs formatted for
it, their resident KiB, the KiB of blocks carved from them and, for the slabs that are no bin's
current slab, the KiB of blocks they count in use (user-held, or in a thread's cache or remote
queue). A slab whose resident KiB
exceed its carved KiB holds pages a former format touched. The command is this script's
child, so reading its memory needs no ptrace privileges beyond the default.

It reads hakmem's layouts (hakmem-core/src/superslab.rs and slab.rs), which it must follow:
a SuperSlab is SS_MB MiB, naturally aligned, its header's first bytes are `kind: u8,
slab_shift: u8`, its page table (one slab descriptor pointer per 64 KiB) starts at byte 64;
a descriptor starts `start: usize, inv: u64, carved: u64, heap: usize, check_bits: usize,
block_size: u32, capacity: u32`.
"""
import argparse
import collections
import struct
import subprocess
import sys
import time

PAGE_TABLE = 64
# slab.rs: `used_full` (blocks user-held, pending remote or in a thread's cache; bit 31 `FULL`;
# `CURRENT_USED` while the slab is a bin's current one) at byte 136 of the descriptor.
USED_FULL = 136
FULL = 1 << 31
SMALL_PAGE = 1 << 16


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--after", type=float, default=1.0, help="seconds before the sample")
    ap.add_argument("--ss-mb", type=int, default=2, help="SuperSlab size (HAKMEM_SUPERSLAB_MB)")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- command and arguments")
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        ap.error("no command")
    ss = a.ss_mb << 20
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    time.sleep(a.after)
    if child.poll() is not None:
        sys.exit(f"slab_resident: the command ended within {a.after} s; sample sooner")
    pid = child.pid
    try:
        report(pid, ss)
    finally:
        child.kill()
        child.wait()


def report(pid, ss):
    mem = open(f"/proc/{pid}/mem", "rb", 0)
    pagemap = open(f"/proc/{pid}/pagemap", "rb", 0)

    def read(addr, n):
        mem.seek(addr)
        return mem.read(n)

    def resident_pages(addr, n):
        pagemap.seek((addr >> 12) * 8)
        d = pagemap.read((n >> 12) * 8)
        return sum(1 for i in range(0, len(d), 8) if struct.unpack_from("<Q", d, i)[0] >> 63)

    ranges = []
    for line in open(f"/proc/{pid}/maps"):
        f = line.split()
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        if len(f) < 6 and f[1].startswith("rw") and hi - lo >= ss:
            ranges.append((lo, hi))
    rss = next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS"))
    # block size -> slabs, resident KiB, carved KiB, used KiB (slabs not current), current slabs
    per = collections.defaultdict(lambda: [0, 0, 0, 0, 0])
    other = 0
    for lo, hi in ranges:
        base = (lo + ss - 1) & ~(ss - 1)
        while base + ss <= hi:
            r = resident_pages(base, ss)
            if r:
                other += r * 4 - scan(base, ss, read, resident_pages, per)
            base += ss
    print(f"VmRSS {rss} KiB")
    print(f"{'block':>8} {'slabs':>6} {'resident KiB':>13} {'carved KiB':>11} {'used KiB':>9} {'current':>8}")
    total = 0
    for bs in sorted(per):
        n, res, carved, used, cur = per[bs]
        total += res
        print(f"{bs:>8} {n:>6} {res:>13} {carved:>11} {used:>9} {cur:>8}")
    print(f"slabs resident {total} KiB; other resident pages in SuperSlab-sized mappings {other} KiB")


def scan(base, ss, read, resident_pages, per):
    """Adds the slabs of the SuperSlab at `base` to `per`; returns their resident KiB (0 if
    `base` does not hold a SuperSlab)."""
    try:
        kind, shift = struct.unpack_from("<BB", read(base, 2))
        table = read(base + PAGE_TABLE, (ss // SMALL_PAGE) * 8)
    except OSError:
        return 0
    if kind > 2 or shift not in (16, 19) and not (kind == 2 and shift >= 16):
        return 0
    seen, kib = set(), 0
    for i in range(ss // SMALL_PAGE):
        sp = struct.unpack_from("<Q", table, i * 8)[0]
        if sp in seen or not base <= sp < base + ss:
            continue
        seen.add(sp)
        try:
            start, _inv, carved, _heap, _cb, bs, cap = struct.unpack_from("<QQQQQII", read(sp, 48))
        except OSError:
            continue
        if bs == 0 or not base <= start < base + ss:
            continue
        end = min(base + ss, (start & ~((1 << shift) - 1)) + (1 << shift))
        first = start & ~4095
        res = resident_pages(first, end - first) * 4
        e = per[bs]
        e[0] += 1
        e[1] += res
        e[2] += carved * bs >> 10
        (used_full,) = struct.unpack_from("<I", read(sp + USED_FULL, 4))
        used = used_full & ~FULL
        if used > cap:  # `CURRENT_USED`, counted down by the owner's frees
            e[4] += 1
        else:
            e[3] += used * bs >> 10
        kib += res
    return kib


if __name__ == "__main__":
    main()
