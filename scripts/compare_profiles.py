#!/usr/bin/env python3
"""Compares hakmem's profiles (or any HAKMEM_* settings, or allocator libraries) on one workload,
interleaved.

usage: scripts/compare_profiles.py [--reps N] [--lib PATH] [--set NAME=ENV ...] -- PROGRAM ARGS...
Each setting runs PROGRAM with LD_PRELOAD=LIB and its environment; runs are interleaved
(A B C A B C ...). ENV is VAR=VALUE[,VAR=VALUE...]; the pseudo-variable LIB=PATH gives that setting
its own library instead of --lib (an A/B check of two builds, or hakmem against mimalloc:
`--set hk=LIB=target/release/libhakmem.so --set mi=LIB=target/release/libhakmem_bench_mimalloc.so`). Reports the median and min-max of the program's `ops_per_sec=` value and of
its peak RSS (from wait4), and each setting's ratio to the first one; then, for each other
setting, the median and min-max of its ratio to the first one within each round (the runs of a
round follow each other, so on a host whose speed drifts or jumps between levels these ratios are
steadier than the ratio of the medians). Default settings are the three profiles: fast,
balanced, lean. Every library is verified first (scripts/verify_symbols.sh).
"""
import argparse, os, re, statistics, subprocess, sys, tempfile

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--lib", default="target/release/libhakmem.so")
    ap.add_argument("--set", action="append", default=[], help="NAME=VAR=VALUE[,VAR=VALUE...]")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("give the program after --")
    settings = []
    for s in a.set or ["fast=HAKMEM_PROFILE=fast", "balanced=HAKMEM_PROFILE=balanced", "lean=HAKMEM_PROFILE=lean"]:
        name, _, envs = s.partition("=")
        env = dict(e.split("=", 1) for e in envs.split(",") if e)
        settings.append((name, os.path.abspath(env.pop("LIB", a.lib)), env))
    for lib in dict.fromkeys(lib for _, lib, _ in settings):
        v = subprocess.run(["bash", "scripts/verify_symbols.sh", "--lib", lib] + cmd, capture_output=True, text=True)
        if v.returncode != 0:
            sys.exit(f"verification of {lib} failed:\n" + v.stdout + v.stderr)
        print(v.stdout.strip().splitlines()[-1] if v.stdout.strip() else "verified")
    spawn = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "build", "spawn")
    if not os.access(spawn, os.X_OK):
        sys.exit("bench/build/spawn is missing: run `make bench` once (or gcc -O2 -o bench/build/spawn bench/src/spawn.c)")
    res = {n: ([], []) for n, _, _ in settings}
    rounds = [{} for _ in range(a.reps)]  # round -> name -> (ops/s, peak RSS MiB)
    ru_file = os.path.join(tempfile.mkdtemp(), "rusage")
    for r in range(a.reps):
        for name, lib, extra in settings:
            # Through bench/build/spawn: peak RSS survives exec, so a child forked from this
            # Python process would start with Python's RSS as its own peak.
            env = dict(os.environ, **extra)
            env.pop("LD_PRELOAD", None)
            p = subprocess.run([spawn, ru_file, lib] + cmd, env=env, capture_output=True)
            m = re.search(rb"ops_per_sec=([0-9.]+)", p.stdout)
            if p.returncode != 0 or not m:
                print(f"{name} run {r + 1}: FAILED (status {p.returncode})")
                continue
            maxrss_mib = float(open(ru_file).read().split()[0]) / 1024.0
            res[name][0].append(float(m.group(1)))
            res[name][1].append(maxrss_mib)
            rounds[r][name] = (float(m.group(1)), maxrss_mib)
            print(f"  run {r + 1}/{a.reps} {name}: {float(m.group(1)):.0f} ops/s, peak RSS {maxrss_mib:.1f} MiB", file=sys.stderr)
    base = settings[0][0]
    bt = statistics.median(res[base][0]) if res[base][0] else 0
    br = statistics.median(res[base][1]) if res[base][1] else 0
    print(f"{'setting':10} {'ops/s median':>14} {'(min-max)':>25} {'x ' + base:>8} {'peak RSS MiB':>13} {'(min-max)':>15} {'x ' + base:>8}")
    for name, _, _ in settings:
        t, rss = res[name]
        if not t:
            print(f"{name:10} FAILED")
            continue
        mt, mr = statistics.median(t), statistics.median(rss)
        print(f"{name:10} {mt:14.0f} {f'({min(t):.0f}-{max(t):.0f})':>25} {mt / bt if bt else 0:8.2f} {mr:13.1f} {f'({min(rss):.1f}-{max(rss):.1f})':>15} {mr / br if br else 0:8.2f}")

    for name, _, _ in settings[1:]:
        pairs = [(rd[name], rd[base]) for rd in rounds if name in rd and base in rd]
        if not pairs:
            continue
        sp = [x[0] / y[0] for x, y in pairs if y[0]]
        rs = [x[1] / y[1] for x, y in pairs if y[1]]
        print(f"{name} / {base} per round: ops/s {statistics.median(sp):.3f} ({min(sp):.3f}-{max(sp):.3f}),"
              f" peak RSS {statistics.median(rs):.3f} ({min(rs):.3f}-{max(rs):.3f}), {len(pairs)} rounds")


if __name__ == "__main__":
    main()
