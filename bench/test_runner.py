#!/usr/bin/env python3
"""Self-test of the runner's run order (`make test-bench`): over a whole square every allocator
takes each place equally often and follows every other one equally often, so that neither a
place nor a predecessor favours one allocator. Also checks that the workloads' loops divide
only where listed (`NoDivideInLoops`)."""
import collections
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("runner", os.path.join(HERE, "runner.py"))
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)


class RunOrder(unittest.TestCase):
    def test_balanced_for_places_and_predecessors(self):
        for n in range(1, 10):
            rounds = n if n % 2 == 0 else 2 * n
            rows = [runner.run_order(n, r) for r in range(rounds)]
            for row in rows:
                self.assertEqual(sorted(row), list(range(n)), f"n={n}: {row} is not a permutation")
            places = collections.Counter((row[i], i) for row in rows for i in range(n))
            self.assertEqual(set(places.values()), {rounds // n}, f"n={n}: places {places}")
            if n > 1:
                pairs = collections.Counter((row[i], row[i + 1]) for row in rows for i in range(n - 1))
                self.assertEqual(len(pairs), n * (n - 1), f"n={n}: some allocator never follows another")
                self.assertEqual(len(set(pairs.values())), 1, f"n={n}: predecessors unbalanced {pairs}")

    def test_the_order_repeats_after_a_whole_square(self):
        self.assertEqual(runner.run_order(4, 1), runner.run_order(4, 5))
        self.assertEqual(runner.run_order(3, 0), runner.run_order(3, 6))


class NoDivideInLoops(unittest.TestCase):
    """A hardware divide in a workload's per-op loop made random_mixed measure the divider, not
    the allocator (bench/README.md, "A divide in the benchmark's loop"): loops draw ranges with
    `below()` from common.h. Each workload may keep only the divides listed here, which run once
    per thread, round or batch, or beside work that dwarfs them."""

    ALLOWED = {
        "large": 1,  # a slot per step, beside mapping and touching up to 32 MiB
        "larson": 1,  # the array a thread takes over, once per thread and round
        "larson_handoff": 3,  # the mailbox ring, once per batch of 500 ops
        "latency": 1,  # outside the timed loop
        "realloc_growth": 2,  # a probe offset and a buffer per step, beside memsets up to 1 MiB
        "soak": 3,  # the sampling clock, once per interval
    }

    def test_only_the_listed_divides(self):
        if not shutil.which("gcc") or not shutil.which("objdump"):
            self.skipTest("gcc and objdump are needed")
        div = re.compile(r"\t(i?div[bwlq]?)\s")
        with tempfile.TemporaryDirectory() as d:
            for src in sorted(glob.glob(os.path.join(HERE, "src", "*.c"))):
                name = os.path.basename(src)[:-2]
                out = os.path.join(d, name)
                subprocess.run(["gcc", *runner.CFLAGS, "-o", out, src, "-lm"], check=True)
                asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", out], check=True,
                                     capture_output=True, text=True).stdout
                n = len(div.findall(asm))
                self.assertLessEqual(n, self.ALLOWED.get(name, 0),
                                     f"{name}: {n} integer divides; draw ranges with below() (common.h)")


class RoundRatios(unittest.TestCase):
    @staticmethod
    def runs(alloc, values):
        return [runner.Run(workload="w", allocator=alloc, round=i + 1, status="ok", value=v)
                for i, v in enumerate(values)]

    def test_a_ratio_per_round_holds_when_the_host_changes_speed(self):
        w = runner.Workload("w", "w", [], [], [], 1, 1, "w")
        # The host runs at half speed in rounds 2 and 3: the medians (50 against 110) make
        # the other allocator look 2.2x as fast; within each round it is 1.1x, 1.1x and 2.2x.
        base, other = self.runs("mimalloc", [100, 50, 50]), self.runs("hakmem", [110, 55, 110])
        med, lo, hi = runner.round_ratios(w, other, base)
        self.assertAlmostEqual(med, 1.1)
        self.assertAlmostEqual(lo, 1.1)
        self.assertAlmostEqual(hi, 2.2)

    def test_lower_is_better_inverts_and_failed_runs_drop_out(self):
        w = runner.Workload("w", "w", [], [], [], 1, 1, "w", metric="p99_ns", higher_is_better=False)
        base, other = self.runs("mimalloc", [60, 60, 60]), self.runs("hakmem", [40, 30, 50])
        other[1].status = "FAILED"
        med, lo, hi = runner.round_ratios(w, other, base)
        self.assertAlmostEqual(lo, 60 / 50)
        self.assertAlmostEqual(hi, 60 / 40)
        self.assertAlmostEqual(med, (60 / 50 + 60 / 40) / 2)


class SetThreads(unittest.TestCase):
    def test_threads_and_pairs_follow_the_count(self):
        larson = runner.Workload("larson", "larson", ["threads=4", "ops=1"], ["threads=4", "ops=2"],
                                 [], 1, 1, "4 threads hand arrays on")
        runner.set_threads(larson, 16)
        self.assertEqual(larson.args["quick"], ["threads=16", "ops=1"])
        self.assertEqual(larson.args["full"], ["threads=16", "ops=2"])
        self.assertTrue(larson.what.startswith("16 threads"))
        pairs = runner.Workload("prodcons_n", "prodcons", ["pairs=2", "count=9"], ["pairs=2"], [],
                                1, 1, "2 producer/consumer pairs")
        runner.set_threads(pairs, 8)
        self.assertEqual(pairs.args["quick"], ["pairs=4", "count=9"])
        self.assertTrue(pairs.what.startswith("4 producer"))


if __name__ == "__main__":
    unittest.main()
