#!/usr/bin/env python3
"""hakmem benchmark runner (Python 3 standard library only).

Builds the allocators and the C workloads, proves with scripts/verify_symbols.sh that each
workload really runs on each allocator, runs them interleaved (A D B C, B A C D, ...), and
reports medians with their spread, peak RSS and the ratio to mimalloc:
  - a table on the terminal,
  - bench/results/<timestamp>/report.md, runs.csv and chart.svg.

  python3 bench/runner.py --quick                      # make bench (about 3 minutes on 2 cores)
  python3 bench/runner.py --full                       # make bench-full
  python3 bench/runner.py --workloads larson,tiny --allocs hakmem,mimalloc --reps 5
  python3 bench/runner.py --alloc tcmalloc2=/path/to/libtcmalloc.so   # any other library
  python3 bench/runner.py --threads 16 --workloads larson,mt_mixed    # scaling runs on more cores

Rust workloads (rust=True) are not preloaded: bench/rust-workload builds one binary per allocator,
each with that allocator as its #[global_allocator], and the runner runs the matching binary.
"""

import argparse
import csv
import datetime
import hashlib
import io
import math
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
SRC = os.path.join(BENCH, "src")
BUILD = os.path.join(BENCH, "build")
VERIFY = os.path.join(ROOT, "scripts", "verify_symbols.sh")
SPAWN = os.path.join(BUILD, "spawn")
NPROC = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
CFLAGS = ["-O2", "-pthread", "-fno-builtin-malloc", "-fno-builtin-free", "-fno-builtin-calloc",
          "-fno-builtin-realloc"]


class Workload:
    """One benchmark: a binary in bench/build, its arguments per mode, and how to read its result."""

    def __init__(self, name, binary, quick, full, verify, est_quick, est_full, what,
                 metric="ops_per_sec", higher_is_better=True, stable_checksum=True, details=(),
                 rust=False):
        self.name = name
        self.binary = binary
        self.rust = rust  # binary is the prefix of target/release/BINARY_<allocator>
        self.args = {"quick": quick, "full": full}
        self.verify_args = verify
        self.est = {"quick": est_quick, "full": est_full}  # seconds per run, for the first ETA
        self.what = what
        self.metric = metric
        self.higher_is_better = higher_is_better
        self.stable_checksum = stable_checksum
        self.details = details  # extra RESULT keys shown in the report

    def path(self, alloc=None):
        """The program to run: the C workload (preloaded), or the Rust build for `alloc` (None
        when there is none: the Rust workload exists for the built-in allocators only)."""
        if not self.rust:
            return os.path.join(BUILD, self.binary)
        suffix = RUST_BUILDS.get(alloc.name) if alloc is not None and alloc.builtin else None
        return os.path.join(RELEASE, f"{self.binary}_{suffix}") if suffix else None

    def command_text(self, mode):
        binary = f"{self.binary}_ALLOCATOR" if self.rust else self.binary
        return f"{binary} {' '.join(self.args[mode])}"


RELEASE = os.path.join(ROOT, "target", "release")
RUST_PACKAGE = "rust-workload"
# allocator name -> the suffix of its Rust workload binary (bench/rust-workload/src/bin/*.rs)
RUST_BUILDS = {"glibc": "system", "mimalloc": "mimalloc", "jemalloc": "jemalloc", "hakmem": "hakmem"}
LARSON_T = max(4, 2 * NPROC)
# Debian's libtcmalloc-minimal4 (gperftools), installed by scripts/setup.sh.
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
PAIRS_N = max(2, NPROC)

WORKLOADS = [
    Workload("random_mixed", "random_mixed", ["iters=50000000"], ["iters=100000000"], ["iters=20000"],
             0.7, 1.4, "random sizes 16-1024 B over 400 live slots, single thread"),
    Workload("random_mixed_ws10k", "random_mixed", ["iters=20000000", "ws=10000"],
             ["iters=40000000", "ws=10000"], ["iters=20000", "ws=1000"],
             0.8, 1.6, "random sizes 16-1024 B over 10000 live slots (more cache misses)"),
    Workload("random_mixed_1k_8k", "random_mixed", ["iters=10000000", "min=1024", "max=8192"],
             ["iters=20000000", "min=1024", "max=8192"], ["iters=20000", "min=1024", "max=8192"],
             0.6, 1.2, "random sizes 1-8 KiB over 400 live slots"),
    Workload("random_mixed_256k", "random_mixed", ["iters=2000000", "ws=100", "min=16", "max=262144"],
             ["iters=4000000", "ws=100", "min=16", "max=262144"], ["iters=5000", "ws=100", "min=16", "max=262144"],
             0.8, 1.6, "random sizes 16 B-256 KiB over 100 live slots"),
    Workload("tiny", "tiny", ["rounds=1000000"], ["rounds=2000000"], ["rounds=200"],
             0.5, 1.0, "100 x 16 B allocations then 100 frees, repeated"),
    Workload("larson", "larson", [f"threads={LARSON_T}", "rounds=20", "ops=400000"],
             [f"threads={LARSON_T}", "rounds=40", "ops=500000"],
             ["threads=2", "rounds=2", "ops=2000", "slots=100"],
             0.5, 1.2, f"{LARSON_T} threads replace random blocks, hand their arrays on and exit each round"),
    Workload("prodcons", "prodcons", ["pairs=1", "count=6000000"], ["pairs=1", "count=12000000"],
             ["pairs=1", "count=20000"], 0.7, 1.4, "1 producer/consumer pair: every free is remote"),
    Workload("prodcons_n", "prodcons", [f"pairs={PAIRS_N}", "count=4000000"],
             [f"pairs={PAIRS_N}", "count=8000000"], ["pairs=2", "count=20000"],
             0.7, 1.4, f"{PAIRS_N} producer/consumer pairs: every free is remote"),
    Workload("larson_handoff", "larson_handoff", [f"threads={LARSON_T}", "batches=1000"],
             [f"threads={LARSON_T}", "batches=2000"],
             ["threads=2", "batches=4", "batch=100", "slots=100"],
             0.7, 1.4, f"{LARSON_T} live threads replace random blocks and hand their arrays round a ring"),
    Workload("xthread_random", "xthread_random", [f"threads={LARSON_T}", "ops=1000000"],
             [f"threads={LARSON_T}", "ops=2000000"], ["threads=2", "ops=2000", "slots=256"],
             0.7, 1.4, f"{LARSON_T} threads swap 16 B-16 KiB blocks through a shared array, freeing what comes out"),
    Workload("oversub_churn", "oversub_churn", ["threads=32", "workers=160", "ops=25000"],
             ["threads=32", "workers=320", "ops=25000"],
             ["threads=8", "workers=16", "ops=500", "slots=256"],
             0.7, 1.4, "32 threads on the cores, restarted as they exit, passing blocks with frees and reallocs"),
    Workload("mt_mixed", "mt_mixed", [f"threads={LARSON_T}", "ops=1000000"],
             [f"threads={LARSON_T}", "ops=2000000"], ["threads=2", "ops=2000", "ws=100"],
             0.7, 1.4, f"{LARSON_T} threads churn 16 B-64 KiB blocks, one in 8 freed by another thread"),
    Workload("realloc_growth", "realloc_growth", ["steps=3000000"], ["steps=6000000"], ["steps=20000"],
             0.7, 1.4, "buffers growing by realloc (append and doubling), then shrinking"),
    Workload("large", "large", ["steps=600"], ["steps=1200"], ["steps=10"],
             1.2, 2.4, "4 live blocks of 64 KiB-32 MiB (log-uniform), every page touched"),
    Workload("large_5_25m", "large", ["steps=300", "min=5242880", "max=26214400"],
             ["steps=600", "min=5242880", "max=26214400"], ["steps=5", "min=5242880", "max=26214400"],
             1.2, 2.4, "4 live buffers of 5-25 MiB replaced at random, every page touched"),
    Workload("phases", "phases", ["rounds=6"], ["rounds=12"], ["rounds=1", "small=5000", "medium=100"],
             1.0, 2.0, "alternating phases of small (16-256 B) and medium (4-48 KiB) blocks, each freed whole"),
    Workload("thread_churn", "thread_churn", ["threads=15000"], ["threads=30000"], ["threads=50"],
             1.7, 3.4, "short-lived threads (4 at a time) allocating 64 small blocks each"),
    Workload("latency", "latency", ["iters=5000000"], ["iters=10000000"], ["iters=20000"],
             0.8, 1.6, "per-call latency of malloc and free (random_mixed pattern, 1% big blocks)",
             metric="all_p99_ns", higher_is_better=False,
             details=("all_p50_ns", "all_p99_ns", "all_p999_ns", "all_max_ns", "malloc_p99_ns",
                      "free_p99_ns", "timer_ns", "timer_res_ns")),
    Workload("soak", "soak", ["seconds=4", "interval_ms=500", "warmup_ms=500"],
             ["seconds=15", "interval_ms=1000", "warmup_ms=1000"],
             ["seconds=1", "interval_ms=250", "warmup_ms=100"],
             4.6, 16.1, "bounded long run: throughput, RSS and faults sampled over time",
             stable_checksum=False,
             details=("drift", "cv", "rss_first_kib", "rss_last_kib", "rss_growth", "rss_q1_kib",
                      "rss_q4_kib", "rss_quarters", "minflt")),
    Workload("rust_maps", "rust_workload", [f"threads={max(4, NPROC)}", "rounds=6"],
             [f"threads={max(4, NPROC)}", "rounds=12"], ["threads=2", "rounds=2", "keys=2000"],
             1.0, 2.0, f"Rust: {max(4, NPROC)} threads build, query and drop HashMap<String, Vec<u64>> "
             "and BTreeMap indexes, handing maps to each other (a binary per #[global_allocator])",
             rust=True),
]
WORKLOAD_BY_NAME = {w.name: w for w in WORKLOADS}
# Workloads whose thread count follows the cores (LARSON_T, PAIRS_N), and the argument that sets it;
# --threads N sets it to N threads (prodcons_n: N/2 pairs, two threads each).
SCALED = {"larson": "threads", "larson_handoff": "threads", "xthread_random": "threads",
          "mt_mixed": "threads", "rust_maps": "threads", "prodcons_n": "pairs"}


def set_threads(workload, n):
    """Run `workload` with n threads instead of the count chosen from the cores."""
    key = SCALED[workload.name]
    value = max(1, n // 2) if key == "pairs" else n
    for mode, args in workload.args.items():
        workload.args[mode] = [f"{key}={value}" if a.startswith(key + "=") else a for a in args]
    workload.what = re.sub(r"^\d+", str(value), workload.what) + f" (--threads {n})"


class Allocator:
    def __init__(self, name, lib, package=None, builtin=True):
        self.name = name
        self.lib = lib  # None: the system allocator (glibc), no preload
        self.source = lib  # where lib was copied from (lib becomes the run's private snapshot)
        self.sha = None
        self.package = package  # cargo package that builds it
        self.builtin = builtin
        self.problem = None  # why it cannot be used at all (build failed, missing file)

    def label(self):
        return self.lib if self.lib else "glibc (no preload)"


def builtin_allocators():
    rel = os.path.join(ROOT, "target", "release")
    return [
        Allocator("glibc", None),
        Allocator("mimalloc", os.path.join(rel, "libhakmem_bench_mimalloc.so"), "alloc-mimalloc"),
        Allocator("jemalloc", os.path.join(rel, "libhakmem_bench_jemalloc.so"), "alloc-jemalloc"),
        Allocator("tcmalloc", TCMALLOC),
        Allocator("hakmem", os.path.join(rel, "libhakmem.so"), "hakmem-preload"),
    ]


def log(msg=""):
    print(msg, file=sys.stderr, flush=True)


def clean_env():
    """The environment for builds and runs: no preload or dynamic-linker debugging inherited."""
    env = dict(os.environ)
    for k in ("LD_PRELOAD", "LD_DEBUG", "LD_DEBUG_OUTPUT", "LD_BIND_NOW", "HAKMEM_STATS"):
        env.pop(k, None)
    return env


# ---------------------------------------------------------------------------------------- build

def build_allocators(allocs):
    pkgs = [a for a in allocs if a.package and a.builtin]
    if not pkgs:
        return
    cmd = ["cargo", "build", "--release"]
    for a in pkgs:
        cmd += ["-p", a.package]
    log("build: " + " ".join(cmd))
    if subprocess.run(cmd, cwd=ROOT, env=clean_env()).returncode == 0:
        for a in pkgs:
            if not os.path.isfile(a.lib):
                a.problem = f"build produced no {os.path.relpath(a.lib, ROOT)}"
        return
    # One broken package must not hide the others: build them one by one.
    for a in pkgs:
        one = ["cargo", "build", "--release", "-p", a.package]
        log("build: " + " ".join(one))
        r = subprocess.run(one, cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            tail = [l for l in r.stdout.splitlines() if l.startswith("error")][:1]
            a.problem = f"build failed ({' '.join(one)}){': ' + tail[0] if tail else ''}"
            log(f"build: {a.name}: {a.problem}")
        elif not os.path.isfile(a.lib):
            a.problem = f"build produced no {os.path.relpath(a.lib, ROOT)}"


def build_workloads(workloads):
    os.makedirs(BUILD, exist_ok=True)
    common = os.path.join(SRC, "common.h")
    failed = {}
    rust = sorted({w.binary for w in workloads if w.rust})
    if rust:
        cmd = ["cargo", "build", "--release", "-p", RUST_PACKAGE]
        log("build: " + " ".join(cmd))
        if subprocess.run(cmd, cwd=ROOT, env=clean_env()).returncode != 0:
            for binary in rust:
                failed[binary] = f"build failed ({' '.join(cmd)})"
    for binary in ["spawn"] + sorted({w.binary for w in workloads if not w.rust}):
        src = os.path.join(SRC, binary + ".c")
        out = os.path.join(BUILD, binary)
        newest = max(os.path.getmtime(src), os.path.getmtime(common), os.path.getmtime(__file__))
        if os.path.isfile(out) and os.path.getmtime(out) >= newest:
            continue
        cmd = ["gcc", *CFLAGS, "-o", out, src, "-lm"]
        log("build: " + " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd))
        r = subprocess.run(cmd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            log(r.stdout)
            failed[binary] = "compile failed"
    if "spawn" in failed:
        sys.exit("runner: cannot build bench/build/spawn, the launcher every run needs")
    return failed


# ------------------------------------------------------------------------------------ verifying

def verify(alloc, workload, timeout):
    """Run scripts/verify_symbols.sh; returns None when verified, else the reason."""
    if workload.rust:
        return verify_rust(alloc, workload, timeout)
    cmd = ["bash", VERIFY, "--quiet", "--timeout", str(timeout)]
    cmd += ["--system"] if alloc.lib is None else ["--lib", alloc.lib]
    cmd += [workload.path(), *workload.verify_args]
    r = subprocess.run(cmd, cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, text=True)
    if r.returncode == 0:
        return None
    reasons = [l.split("verify: FAIL: ", 1)[1] for l in r.stdout.splitlines() if "verify: FAIL: " in l]
    why = "; ".join(reasons) if reasons else (r.stdout.strip().splitlines() or ["verify_symbols.sh failed"])[-1]
    return why.replace(alloc.lib, alloc.source) if alloc.lib else why


def verify_rust(alloc, workload, timeout):
    """A Rust workload binary checks its own allocator (`BINARY verify`: hakmem's statistics count
    its boxes, mimalloc's mi_is_in_heap_region and jemalloc's arenas.lookup accept a Box, glibc's
    mallinfo2 grows by a Vec) and then runs the short arguments."""
    path = workload.path(alloc)
    if path is None:
        return f"no Rust build for {alloc.name} (bench/rust-workload has {', '.join(RUST_BUILDS)})"
    if not os.path.isfile(path):
        return f"{os.path.relpath(path, ROOT)} not found"
    try:
        r = subprocess.run([path, "verify", *workload.verify_args], cwd=ROOT, env=clean_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"verify run did not finish within {timeout}s"
    ok = [l for l in r.stdout.splitlines() if l.startswith("verify: ok:")]
    if r.returncode == 0 and ok and parse_result(r.stdout)[0]:
        return None
    fail = [l for l in r.stdout.splitlines() if l.startswith("verify: FAIL:")]
    return (fail[0][len("verify: FAIL: "):] if fail else
            f"{os.path.basename(path)} verify exited {r.returncode}: {r.stdout.strip()[-160:]}")


# ----------------------------------------------------------------------------------------- runs

class Run:
    FIELDS = ["seq", "round", "workload", "allocator", "rep", "status", "reason", "metric", "value",
              "wall_s", "user_s", "sys_s", "maxrss_kib", "minflt", "majflt", "nvcsw", "nivcsw",
              "checksum", "command", "result"]

    def __init__(self, **kw):
        self.__dict__.update({f: "" for f in self.FIELDS})
        self.__dict__.update(kw)
        self.keys = {}


def parse_result(text):
    line = None
    for l in text.splitlines():
        if l.startswith("RESULT "):
            line = l
    if line is None:
        return None, {}
    keys = {}
    for tok in line.split()[1:]:
        if "=" in tok:
            k, v = tok.split("=", 1)
            try:
                keys[k] = float(v) if k != "checksum" else v
            except ValueError:
                keys[k] = v
    return line, keys


def run_order(n, rep):
    """The order of `n` allocators in round `rep`: the rows of a Williams square, a Latin square
    in which each allocator also follows every other one once (for odd `n`, over twice as many
    rows). A plain rotation (A B C D, B C D A, ...) varies positions but keeps each allocator
    after the same one, and on this VM a run's huge-page faults are slow or fast depending on
    which allocator ran just before (bench/README.md, "The huge-page lottery follows the run
    before"): under rotation one allocator took the slow slot in every round."""
    first, lo, hi = [], 0, n - 1
    for j in range(n):
        if j % 2 == 0:
            first.append(lo)
            lo += 1
        else:
            first.append(hi)
            hi -= 1
    rows = [[(x + i) % n for x in first] for i in range(n)]
    if n % 2 == 1:
        rows += [row[::-1] for row in rows]
    return rows[rep % len(rows)]


def run_once(workload, alloc, mode, timeout):
    """One run through bench/build/spawn, which reaps the workload with wait4 and hands back its
    rusage (peak RSS, CPU time, faults); returns a Run (status ok or FAILED)."""
    cmd = [workload.path(alloc), *workload.args[mode]]
    preload = "" if workload.rust else (alloc.lib or "")
    with tempfile.TemporaryDirectory(prefix="hakmem-bench.") as tmp:
        ru_file = os.path.join(tmp, "rusage")
        out_file, err_file = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        with open(out_file, "w") as out, open(err_file, "w") as err:
            t0 = time.monotonic()
            p = subprocess.Popen([SPAWN, ru_file, preload, *cmd], stdout=out, stderr=err,
                                 stdin=subprocess.DEVNULL, env=clean_env(), start_new_session=True)
        killed = threading.Event()

        def kill():
            killed.set()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            while True:
                try:
                    _, status, _ = os.wait4(p.pid, 0)
                    break
                except InterruptedError:
                    continue
                except KeyboardInterrupt:
                    kill()
                    os.wait4(p.pid, 0)
                    p.returncode = -signal.SIGKILL
                    raise
        finally:
            timer.cancel()
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        with open(out_file) as f:
            stdout = f.read()
        with open(err_file) as f:
            stderr = f.read()
        try:
            with open(ru_file) as f:
                rss, utime, stime, minflt, majflt, nvcsw, nivcsw = f.read().split()
        except (OSError, ValueError):
            rss = utime = stime = minflt = majflt = nvcsw = nivcsw = ""

    run = Run(workload=workload.name, allocator=alloc.name, metric=workload.metric,
              wall_s=f"{wall:.4f}", user_s=utime, sys_s=stime, maxrss_kib=rss, minflt=minflt,
              majflt=majflt, nvcsw=nvcsw, nivcsw=nivcsw, command=" ".join(shlex.quote(c) for c in cmd))
    line, keys = parse_result(stdout)
    run.result = line or ""
    run.keys = keys
    last_err = [l for l in stderr.strip().splitlines() if not l.startswith('{"hakmem":')][-1:]
    detail = f": {last_err[0][:160]}" if last_err else ""
    if killed.is_set():
        run.status, run.reason = "FAILED", f"timed out after {timeout}s"
    elif p.returncode < 0:
        try:
            name = signal.Signals(-p.returncode).name
        except ValueError:
            name = f"signal {-p.returncode}"
        run.status, run.reason = "FAILED", f"killed by {name}{detail}"
    elif p.returncode != 0:
        run.status, run.reason = "FAILED", f"exit status {p.returncode}{detail}"
    elif line is None:
        run.status, run.reason = "FAILED", "no RESULT line"
    elif rss == "":
        run.status, run.reason = "FAILED", "no rusage from bench/build/spawn"
    elif not isinstance(keys.get(workload.metric), float) or not math.isfinite(keys[workload.metric]):
        run.status, run.reason = "FAILED", f"RESULT has no number for {workload.metric}"
    else:
        run.status = "ok"
        run.value = keys[workload.metric]
        run.checksum = keys.get("checksum", "")
    return run


def check_checksums(workload, runs):
    """Every run of a deterministic workload must print the same checksum; the reference is
    glibc's when it ran, else the most common one."""
    if not workload.stable_checksum:
        return
    ok = [r for r in runs if r.status == "ok"]
    if not ok:
        return
    ref_runs = [r for r in ok if r.allocator == "glibc"] or ok
    counts = {}
    for r in ref_runs:
        counts[r.checksum] = counts.get(r.checksum, 0) + 1
    ref = max(counts, key=counts.get)
    for r in ok:
        if r.checksum != ref:
            r.status, r.reason = "FAILED", f"bad checksum {r.checksum} (expected {ref})"


# ------------------------------------------------------------------------------------ summaries

class Cell:
    """The summary of one workload x allocator."""

    def __init__(self, workload, alloc, runs, unverified):
        self.workload, self.alloc = workload, alloc
        self.runs = runs
        self.unverified = unverified
        self.failed = [r for r in runs if r.status != "ok"]
        vals = [r.value for r in runs if r.status == "ok"]
        self.values = vals
        self.ok = not unverified and not self.failed and bool(vals)
        if self.ok:
            self.median = statistics.median(vals)
            self.lo, self.hi = min(vals), max(vals)
            mean = statistics.fmean(vals)
            self.cv = statistics.stdev(vals) / mean if len(vals) > 1 and mean else 0.0
            self.rss = statistics.median(int(r.maxrss_kib) for r in runs)  # ok runs all have it
            self.wall = statistics.median(float(r.wall_s) for r in runs)
            self.details = {}
            for k in workload.details:
                xs = [r.keys[k] for r in runs if isinstance(r.keys.get(k), float)]
                if xs:
                    self.details[k] = statistics.median(xs)
        self.ratio = None
        self.round_ratio = None  # (median, min, max) of the ratios within each round

    def status_text(self):
        if self.unverified:
            return f"unverified: {self.unverified}"
        if self.failed:
            return f"FAILED ({len(self.failed)}/{len(self.runs)} runs: {self.failed[0].reason})"
        if not self.values:
            return "no runs"
        return ""


def fmt_metric(workload, v):
    if workload.metric.endswith("_ns"):
        return f"{v:,.0f} ns"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:.3g} {unit}/s"
    return f"{v:.3g} /s"


def fmt_num(v):
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def fmt_kib(k):
    return f"{k / 1024:.1f} MiB" if k >= 1024 else f"{k:.0f} KiB"


def summarize(workloads, allocs, runs, unverified, baseline):
    cells = {}
    for w in workloads:
        for a in allocs:
            rs = [r for r in runs if r.workload == w.name and r.allocator == a.name]
            cells[w.name, a.name] = Cell(w, a, rs, unverified.get((w.name, a.name)))
        base = cells.get((w.name, baseline))
        for a in allocs:
            c = cells[w.name, a.name]
            if c.ok and base is not None and base.ok and base.median > 0 and c.median > 0:
                c.ratio = c.median / base.median if w.higher_is_better else base.median / c.median
                c.round_ratio = round_ratios(w, c.runs, base.runs)
    return cells


def round_ratios(workload, runs, base_runs):
    """The median, min and max of one allocator's ratio to the baseline within each round (the
    runs of a round follow each other, so on a host whose speed drifts or jumps between levels
    these are steadier than the ratio of the medians); None without a round in common."""
    base = {r.round: r.value for r in base_runs if r.status == "ok" and r.value > 0}
    xs = []
    for r in runs:
        b = base.get(r.round)
        if r.status == "ok" and b and r.value > 0:
            xs.append(r.value / b if workload.higher_is_better else b / r.value)
    return (statistics.median(xs), min(xs), max(xs)) if xs else None


def table_rows(workloads, allocs, cells, baseline):
    header = ["workload", "allocator", "median", "min-max", "CV", f"vs {baseline}", "per round",
              "peak RSS", "wall"]
    rows = []
    for w in workloads:
        for a in allocs:
            c = cells[w.name, a.name]
            if c.ok:
                lo, hi = fmt_metric(w, c.lo), fmt_metric(w, c.hi)
                rr = c.round_ratio
                rows.append([w.name, a.name, fmt_metric(w, c.median), f"{lo.split()[0]}-{hi}",
                             f"{100 * c.cv:.1f}%", f"{c.ratio:.2f}x" if c.ratio else "n/a",
                             f"{rr[0]:.2f}x ({rr[1]:.2f}-{rr[2]:.2f})" if rr else "n/a",
                             fmt_kib(c.rss), f"{c.wall:.2f} s"])
            else:
                rows.append([w.name, a.name, c.status_text(), "", "", "", "", "", ""])
    return header, rows


def text_table(header, rows):
    widths = [len(h) for h in header]
    for r in rows:
        for i, v in enumerate(r):
            if r[3] != "" or i < 2:  # a status row's text runs across the later columns
                widths[i] = max(widths[i], len(v))
    out = io.StringIO()
    out.write("  ".join(h.ljust(widths[i]) for i, h in enumerate(header)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    prev = None
    for r in rows:
        if prev is not None and r[0] != prev:
            out.write("\n")
        prev = r[0]
        if r[3] == "":  # a status instead of numbers runs across the columns
            out.write(f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2]}\n")
        else:
            out.write("  ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip() + "\n")
    return out.getvalue()


def md_table(header, rows):
    esc = lambda s: s.replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(esc(v) for v in r) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ SVG

PALETTE = {"glibc": "#8c8c8c", "mimalloc": "#1f77b4", "jemalloc": "#ff7f0e", "hakmem": "#2ca02c"}
EXTRA_COLORS = ["#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def xml_escape(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def nice_step(span):
    raw = span / 6
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def svg_chart(workloads, allocs, cells, baseline, title):
    colors, extra = {}, iter(EXTRA_COLORS)
    for a in allocs:
        colors[a.name] = PALETTE.get(a.name) or next(extra, "#444444")
    n = len(allocs)
    bar_w = 18 if n <= 4 else 14
    group_w = n * bar_w + 26
    left, right, top, bottom = 64, 20, 84, 100
    subtitle = (f"median of each allocator divided by {baseline}'s; above 1 = better than {baseline} "
                f"(latency: p99 inverted, lower is better)")
    # wide enough for the bars, the subtitle and the legend (about 6.5 px per character at 12 px)
    legend_w = sum(24 + 8 * len(a.name) for a in allocs)
    plot_w = max(group_w * len(workloads), int(6.5 * len(subtitle)) - right, legend_w, 360)
    plot_h = 300
    width, height = left + plot_w + right, top + plot_h + bottom
    ratios = [c.ratio for c in cells.values() if c.ratio]
    ymax = max(ratios + [1.2]) * 1.15  # room for the value labels above the tallest bar
    step = nice_step(ymax)
    ymax = math.ceil(ymax / step) * step
    y = lambda v: top + plot_h - v / ymax * plot_h

    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif">',
         f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
         f'<text x="{left}" y="24" font-size="16" font-weight="bold">{xml_escape(title)}</text>',
         f'<text x="{left}" y="44" font-size="12" fill="#444">{xml_escape(subtitle)}</text>']
    if not ratios:
        s.append(f'<text x="{left + plot_w / 2:.0f}" y="{top + plot_h / 2:.0f}" font-size="14" '
                 f'text-anchor="middle" fill="#a00">no ratios: {xml_escape(baseline)} has no result</text>')
    # grid and axis
    v = 0.0
    while v <= ymax + 1e-9:
        yy = y(v)
        s.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" stroke="#e0e0e0"/>')
        s.append(f'<text x="{left - 8}" y="{yy + 4:.1f}" font-size="11" text-anchor="end">{v:g}</text>')
        v += step
    s.append(f'<text x="16" y="{top + plot_h / 2:.0f}" font-size="12" text-anchor="middle" '
             f'transform="rotate(-90 16 {top + plot_h / 2:.0f})">ratio to {xml_escape(baseline)}</text>')
    s.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>')
    s.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>')
    # the baseline's own level, under the bars and their labels
    s.append(f'<line x1="{left}" y1="{y(1):.1f}" x2="{left + plot_w}" y2="{y(1):.1f}" stroke="#000" '
             f'stroke-dasharray="5,4"/>')
    # bars
    for gi, w in enumerate(workloads):
        gx = left + gi * group_w + 13
        for ai, a in enumerate(allocs):
            c = cells[w.name, a.name]
            x = gx + ai * bar_w
            if c.ratio:
                yy = y(c.ratio)
                s.append(f'<rect x="{x:.1f}" y="{yy:.1f}" width="{bar_w - 2}" height="{top + plot_h - yy:.1f}" '
                         f'fill="{colors[a.name]}"><title>{xml_escape(w.name)} / {xml_escape(a.name)}: '
                         f'{c.ratio:.2f}x ({xml_escape(fmt_metric(w, c.median))})</title></rect>')
                tx, ty = x + (bar_w - 2) / 2 + 3.5, yy - 3
                s.append(f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="9" stroke="#fff" stroke-width="2.5" '
                         f'paint-order="stroke" transform="rotate(-90 {tx:.1f} {ty:.1f})">{c.ratio:.2f}</text>')
            else:
                mark = "n/a" if c.ok or not (c.failed or c.unverified) else ("FAIL" if c.failed else "unverified")
                tx, ty = x + (bar_w - 2) / 2 + 3.5, top + plot_h - 3
                s.append(f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="9" font-weight="bold" '
                         f'fill="{colors[a.name]}" transform="rotate(-90 {tx:.1f} {ty:.1f})">{mark}'
                         f'<title>{xml_escape(c.status_text())}</title></text>')
        cx = gx + n * bar_w / 2
        s.append(f'<text x="{cx:.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="end" '
                 f'transform="rotate(-35 {cx:.1f} {top + plot_h + 16})">{xml_escape(w.name)}</text>')
    # legend
    lx = left
    for a in allocs:
        s.append(f'<rect x="{lx}" y="58" width="12" height="12" fill="{colors[a.name]}"/>')
        s.append(f'<text x="{lx + 16}" y="68" font-size="12">{xml_escape(a.name)}</text>')
        lx += 24 + 8 * len(a.name)
    s.append("</svg>")
    return "\n".join(s) + "\n"


def check_svg(path):
    """Parse the chart as XML; render it to PNG when a converter is installed."""
    ET.parse(path)
    png = path[:-4] + ".png"
    for conv in (["rsvg-convert", "-o", png, path], ["inkscape", path, "--export-filename", png]):
        try:
            r = subprocess.run(conv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0 and os.path.isfile(png):
            return png
    return None


# -------------------------------------------------------------------------------------- reports

def machine_info():
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            cpu = f.read()
        models = [l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("model name")]
        info["cpu"] = f"{models[0]} ({len(models)} logical CPUs in /proc/cpuinfo)" if models else "unknown"
    except OSError:
        info["cpu"] = "unknown"
    info["nproc"] = str(NPROC)
    try:
        with open("/proc/meminfo") as f:
            mem = next(l for l in f if l.startswith("MemTotal")).split()[1]
        info["memory"] = f"{int(mem) / 1048576:.1f} GiB"
    except (OSError, StopIteration):
        pass
    info["kernel"] = platform.release()
    try:
        info["libc"] = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        pass
    for name, cmd in (("gcc", ["gcc", "--version"]), ("rustc", ["rustc", "--version"]),
                      ("git", ["git", "-C", ROOT, "describe", "--always", "--dirty"])):
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=20)
            if r.returncode == 0 and r.stdout.strip():
                info[name] = r.stdout.splitlines()[0].strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    return info


def snapshot_libs(allocs, snapdir):
    """Copy every library before the first run and preload the copies, so that a rebuild while the
    runner works (cargo in another terminal) cannot mix two versions into one comparison."""
    for a in allocs:
        if a.lib is None or a.problem:
            continue
        h = hashlib.sha256()
        try:
            with open(a.source, "rb") as f:
                data = f.read()
        except OSError as e:
            a.problem = f"cannot read {a.source}: {e.strerror}"
            continue
        h.update(data)
        a.sha = h.hexdigest()[:12]
        a.mtime = datetime.datetime.fromtimestamp(os.path.getmtime(a.source)).strftime("%Y-%m-%d %H:%M:%S")
        copy = os.path.join(snapdir, f"{a.name}-{os.path.basename(a.source)}")
        with open(copy, "wb") as f:
            f.write(data)
        os.chmod(copy, 0o755)
        a.lib = copy


def lib_info(a):
    if a.source is None:
        return "system allocator, no LD_PRELOAD"
    rel = os.path.relpath(a.source, ROOT) if a.source.startswith(ROOT + os.sep) else a.source
    if a.sha is None:
        return f"`{rel}`"
    return f"`{rel}` (sha256 {a.sha}, built {a.mtime}; a copy taken at start was preloaded)"


def write_report(outdir, argv, mode, reps, workloads, allocs, runs, cells, baseline, started,
                 finished, load, interrupted, chart_png):
    header, rows = table_rows(workloads, allocs, cells, baseline)
    m = machine_info()
    tuned = {k: v for k, v in os.environ.items()
             if k.startswith(("HAKMEM_", "MIMALLOC_", "MALLOC_", "_RJEM_", "GLIBC_TUNABLES"))}
    lines = [f"# hakmem benchmark report ({mode})", "",
             f"- date: {started.strftime('%Y-%m-%d %H:%M:%S')} - {finished.strftime('%H:%M:%S')} "
             f"({(finished - started).total_seconds() / 60:.1f} min)" + (" — INTERRUPTED" if interrupted else ""),
             f"- machine: {m.get('cpu')}; nproc {m.get('nproc')}; memory {m.get('memory', '?')}; "
             f"kernel {m.get('kernel')}; {m.get('libc', '')}",
             f"- load average at start / end: {load[0]} / {load[1]}",
             f"- toolchain: {m.get('gcc', 'gcc ?')}; {m.get('rustc', 'rustc ?')}; workloads built with "
             f"`gcc {' '.join(CFLAGS)}`",
             f"- source: git {m.get('git', 'unknown')}",
             f"- command: `python3 {' '.join(shlex.quote(a) for a in argv)}`",
             f"- runs: {reps} per allocator and workload, interleaved across allocators (each round in the "
             f"order of a row of a Williams square: every allocator takes each place and follows each other "
             f"one once); each allocator verified per workload binary with `scripts/verify_symbols.sh` first",
             f"- environment: {', '.join(f'{k}={v}' for k, v in sorted(tuned.items())) or 'no allocator tuning variables set'}",
             "", "## Allocators", ""]
    for a in allocs:
        lines.append(f"- **{a.name}**: {lib_info(a)}" + (f" — {a.problem}" if a.problem else ""))
    lines += ["", "## Results", "",
              f"Median of the runs, min-max, coefficient of variation, ratio to {baseline} (above 1 = better: "
              f"throughput / {baseline}'s, or {baseline}'s latency / this one's), the same ratio taken within "
              "each round (median and min-max: the runs of a round follow each other, so it holds when the "
              "host's speed moves between rounds), median peak RSS (`ru_maxrss` from `wait4`), median wall "
              "time of the whole process.", "",
              md_table(header, rows), "", "![ratio to " + baseline + "](chart.svg)", ""]
    if chart_png:
        lines += [f"(also rendered as `{os.path.basename(chart_png)}`)", ""]
    detail_ws = [w for w in workloads if w.details]
    if detail_ws:
        lines += ["## Details", ""]
        for w in detail_ws:
            keys = list(w.details)
            lines += [f"### {w.name}", "", "| allocator | " + " | ".join(keys) + " |",
                      "|---|" + "---|" * len(keys)]
            for a in allocs:
                c = cells[w.name, a.name]
                vals = [fmt_num(c.details[k]) if c.ok and k in c.details else "-" for k in keys]
                lines.append(f"| {a.name} | " + " | ".join(vals) + " |")
            lines.append("")
    lines += ["## Workloads", "", "| workload | what | arguments | metric |", "|---|---|---|---|"]
    for w in workloads:
        lines.append(f"| {w.name} | {w.what} | `{w.command_text(mode)}` | "
                     f"{w.metric} ({'higher' if w.higher_is_better else 'lower'} is better) |")
    lines += ["", "Every run is in `runs.csv`.", ""]
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write("\n".join(lines))


def write_csv(outdir, runs):
    with open(os.path.join(outdir, "runs.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(Run.FIELDS)
        for r in runs:
            wr.writerow([getattr(r, k) for k in Run.FIELDS])


# ----------------------------------------------------------------------------------------- main

def fmt_eta(s):
    s = int(max(0, s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="short runs, 3 repetitions (default)")
    g.add_argument("--full", action="store_true", help="longer runs, 5 repetitions")
    ap.add_argument("--reps", type=int, help="repetitions per allocator and workload (at least 1)")
    ap.add_argument("--workloads", help="comma-separated subset (see --list)")
    ap.add_argument("--allocs", help="comma-separated subset of allocator names")
    ap.add_argument("--alloc", action="append", default=[], metavar="NAME=PATH",
                    help="add an allocator library to preload (or replace a built-in one's path, "
                         "which then is not built); repeatable")
    ap.add_argument("--baseline", default="mimalloc", help="allocator the ratios are taken against")
    ap.add_argument("--no-build", action="store_true", help="use the libraries already built")
    ap.add_argument("--threads", type=int, metavar="N",
                    help=f"run the workloads that scale with the cores ({', '.join(SCALED)}) with N threads")
    ap.add_argument("--timeout", type=int, help="seconds before a run counts as hung (default 120/300)")
    ap.add_argument("--results", default=os.path.join(BENCH, "results"), help="where result folders go")
    ap.add_argument("--list", action="store_true", help="list workloads and allocators, then exit")
    return ap.parse_args(argv)


def main(argv):
    args = parse_args(argv[1:])
    mode = "full" if args.full else "quick"
    reps = args.reps if args.reps else (5 if mode == "full" else 3)
    if reps < 1:
        sys.exit("runner: --reps must be at least 1")
    timeout = args.timeout or (300 if mode == "full" else 120)

    allocs = builtin_allocators()
    by_name = {a.name: a for a in allocs}
    for spec in args.alloc:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            sys.exit(f"runner: --alloc wants NAME=PATH, got '{spec}'")
        path = os.path.abspath(path)
        if name in by_name:
            by_name[name].lib = by_name[name].source = path
            by_name[name].builtin = False
        else:
            a = Allocator(name, path, builtin=False)  # sets source too
            allocs.append(a)
            by_name[name] = a
    if args.allocs:
        names = [n.strip() for n in args.allocs.split(",") if n.strip()]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            sys.exit(f"runner: unknown allocator(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
        allocs = [by_name[n] for n in names]
    workloads = WORKLOADS
    if args.workloads:
        names = [n.strip() for n in args.workloads.split(",") if n.strip()]
        unknown = [n for n in names if n not in WORKLOAD_BY_NAME]
        if unknown:
            sys.exit(f"runner: unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOAD_BY_NAME)}")
        workloads = [WORKLOAD_BY_NAME[n] for n in names]
    if args.threads is not None:
        if args.threads < 1:
            sys.exit("runner: --threads must be at least 1")
        for w in workloads:
            if w.name in SCALED:
                set_threads(w, args.threads)
    tc = by_name["tcmalloc"]
    if tc.builtin and not os.path.isfile(tc.lib) and not args.allocs and tc in allocs:
        # Not installed and not asked for by name: leave it out rather than fail every cell.
        log(f"runner: tcmalloc skipped: {tc.lib} not found (install libtcmalloc-minimal4: bash scripts/setup.sh)")
        allocs.remove(tc)
    if args.list:
        for w in WORKLOADS:
            print(f"{w.name:16} {w.what}")
        print()
        for a in allocs:
            print(f"{a.name:16} {a.label()}")
        return 0

    started = datetime.datetime.now()
    load0 = " ".join(f"{x:.2f}" for x in os.getloadavg())
    log(f"runner: {mode} mode, {reps} runs each, {len(workloads)} workloads x {len(allocs)} allocators, "
        f"{NPROC} CPUs")

    # Build what is needed.
    if not args.no_build:
        build_allocators(allocs)
    for a in allocs:
        if a.lib and not a.problem and not os.path.isfile(a.lib):
            a.problem = f"{a.lib} not found"
            if a.name == "tcmalloc" and a.builtin:
                a.problem += " (install libtcmalloc-minimal4: bash scripts/setup.sh)"
    bad_bins = build_workloads(workloads)

    stamp = started.strftime("%Y%m%d-%H%M%S")
    outdir = os.path.join(args.results, stamp)
    os.makedirs(outdir, exist_ok=True)
    snapdir = tempfile.mkdtemp(prefix="hakmem-bench-libs.")
    try:
        snapshot_libs(allocs, snapdir)
        return measure(args, argv, mode, reps, timeout, allocs, workloads, bad_bins, outdir, started, load0)
    finally:
        shutil.rmtree(snapdir, ignore_errors=True)


def measure(args, argv, mode, reps, timeout, allocs, workloads, bad_bins, outdir, started, load0):
    """Verify, run interleaved, then write the table and the files; returns the exit status."""
    runs, unverified = [], {}
    durations = {}  # (workload, allocator) -> [seconds]
    total = len(workloads) * len(allocs) * reps
    done = 0
    seq = 0
    interrupted = False

    def eta(widx):
        left = 0.0
        for w in workloads[widx:]:
            for a in allocs:
                if (w.name, a.name) in unverified:
                    continue
                d = durations.get((w.name, a.name)) or [x for (wn, _), xs in durations.items()
                                                          if wn == w.name for x in xs]
                per = statistics.fmean(d) if d else w.est[mode]
                finished = len(durations.get((w.name, a.name), []))
                left += per * max(0, reps - finished) + 0.3
        return left

    try:
        for widx, w in enumerate(workloads):
            # Verify each allocator on this workload's binary before any of its runs count.
            for a in allocs:
                if a.problem and not w.rust:  # a Rust workload does not preload the library
                    unverified[w.name, a.name] = a.problem
                elif w.binary in bad_bins:
                    unverified[w.name, a.name] = bad_bins[w.binary]
                else:
                    log(f"[verify] {w.name} on {a.name} ...")
                    why = verify(a, w, timeout)
                    if why:
                        unverified[w.name, a.name] = why
                        log(f"[verify] {w.name} on {a.name}: unverified: {why}")
            wruns = []
            for rep in range(reps):
                order = [allocs[i] for i in run_order(len(allocs), rep)]
                for a in order:
                    if (w.name, a.name) in unverified:
                        done += 1
                        continue
                    seq += 1
                    log(f"[{done + 1:>3}/{total}] {w.name:<15} {a.name:<10} run {rep + 1}/{reps}   "
                        f"ETA {fmt_eta(eta(widx))}")
                    r = run_once(w, a, mode, timeout)
                    r.seq, r.round, r.rep = seq, rep + 1, rep + 1
                    durations.setdefault((w.name, a.name), []).append(float(r.wall_s))
                    if r.status != "ok":
                        log(f"      FAILED: {r.reason}")
                    wruns.append(r)
                    done += 1
            check_checksums(w, wruns)
            runs += wruns
    except KeyboardInterrupt:
        interrupted = True
        log("runner: interrupted; reporting the runs so far")

    finished = datetime.datetime.now()
    load1 = " ".join(f"{x:.2f}" for x in os.getloadavg())
    baseline = args.baseline
    cells = summarize(workloads, allocs, runs, unverified, baseline)
    header, rows = table_rows(workloads, allocs, cells, baseline)
    title = (f"hakmem benchmarks ({mode}, {reps} run{'s' if reps != 1 else ''} each, {NPROC} CPUs, "
             f"{started.strftime('%Y-%m-%d')})")
    chart = os.path.join(outdir, "chart.svg")
    with open(chart, "w") as f:
        f.write(svg_chart(workloads, allocs, cells, baseline, title))
    png = check_svg(chart)
    write_csv(outdir, runs)
    write_report(outdir, argv, mode, reps, workloads, allocs, runs, cells, baseline, started, finished,
                 (load0, load1), interrupted, png)

    print(text_table(header, rows))
    print(f"ratio: vs {baseline}, above 1 = better. Results in {os.path.relpath(outdir)}/ "
          f"(report.md, runs.csv, chart.svg{', chart.png' if png else ''}); "
          f"{(finished - started).total_seconds() / 60:.1f} min")
    # An allocator with no Rust build (tcmalloc, or one added with --alloc) has no Rust cell to fill.
    missing = [c for c in cells.values()
               if not c.ok and not (c.unverified or "").startswith("no Rust build for")]
    if missing:
        print(f"runner: {len(missing)} of {len(cells)} results are missing (FAILED or unverified)")
    return 130 if interrupted else (1 if missing else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
