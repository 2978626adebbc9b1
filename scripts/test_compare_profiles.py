#!/usr/bin/env python3
"""scripts/compare_profiles.py: a setting's LIB=PATH runs (and verifies) that library; a library
that fails verification stops the comparison; each other setting gets its per-round ratio line.

usage: python3 scripts/test_compare_profiles.py LIB (hakmem's library)
"""
import os, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    lib = os.path.abspath(sys.argv[1])
    build = os.path.join(ROOT, "bench", "build")
    os.makedirs(build, exist_ok=True)
    spawn = os.path.join(build, "spawn")
    if not os.access(spawn, os.X_OK):
        subprocess.run(["gcc", "-O2", "-o", spawn, os.path.join(ROOT, "bench", "src", "spawn.c")], check=True)
    work = tempfile.mkdtemp()
    prog = os.path.join(work, "random_mixed")
    subprocess.run(["gcc", "-O2", "-fno-builtin-malloc", "-fno-builtin-free", "-o", prog,
                    os.path.join(ROOT, "bench", "src", "random_mixed.c"), "-lm"], check=True)
    other = os.path.join(work, "libother.so")  # a second path to the same build: an A/B of two files
    os.symlink(lib, other)
    script = os.path.join(ROOT, "scripts", "compare_profiles.py")

    def run(*sets):
        args = [sys.executable, script, "--reps", "1"]
        for s in sets:
            args += ["--set", s]
        return subprocess.run(args + ["--", prog, "iters=20000"], cwd=ROOT, capture_output=True, text=True)

    r = run(f"a=LIB={lib}", f"b=LIB={other},HAKMEM_PROFILE=lean")
    assert r.returncode == 0, r.stdout + r.stderr
    passes = [l for l in r.stdout.splitlines() if l.startswith("verify: PASS")]
    assert len(passes) == 2, f"each library verified once, got:\n{r.stdout}"
    lines = r.stdout.splitlines()
    rows = {l.split()[0]: l for l in lines[-3:-1]}
    assert set(rows) == {"a", "b"} and "FAILED" not in r.stdout, r.stdout
    # The last line: b's ratio to a within each round (one round here).
    assert lines[-1].startswith("b / a per round: ops/s ") and lines[-1].endswith(", 1 rounds"), r.stdout
    missing = os.path.join(work, "libmissing.so")
    r = run(f"a=LIB={lib}", f"b=LIB={missing}")
    assert r.returncode != 0 and f"verification of {missing} failed" in r.stderr, r.stdout + r.stderr
    print("compare_profiles.py: ok")


if __name__ == "__main__":
    main()
