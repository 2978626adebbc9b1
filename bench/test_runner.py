#!/usr/bin/env python3
"""Self-test of the runner's run order (`make test-bench`): over a whole square every allocator
takes each place equally often and follows every other one equally often, so that neither a
place nor a predecessor favours one allocator."""
import collections
import importlib.util
import os
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
