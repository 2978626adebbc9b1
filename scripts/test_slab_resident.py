#!/usr/bin/env python3
"""Self-test of scripts/slab_resident.py (`make test-scripts`): a program that holds 1000 blocks
of 3000 bytes under hakmem shows about 3000 KiB carved, resident and counted in use in the 3 KiB
class, with one slab current, so a layout the script no longer reads right fails here."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.environ.get("HAKMEM_LIB", os.path.join(ROOT, "target", "release", "libhakmem.so"))

PROGRAM = r"""
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    static void *p[1000];
    for (int i = 0; i < 1000; i++) { p[i] = malloc(3000); memset(p[i], i, 3000); }
    sleep(5);
    for (int i = 0; i < 1000; i++) free(p[i]);
    return 0;
}
"""


class SlabResident(unittest.TestCase):
    def test_held_blocks_show_carved_and_resident_in_their_class(self):
        with tempfile.TemporaryDirectory() as d:
            src, exe = os.path.join(d, "hold.c"), os.path.join(d, "hold")
            with open(src, "w") as f:
                f.write(PROGRAM)
            subprocess.run(["gcc", "-O1", "-fno-builtin-malloc", "-o", exe, src], check=True)
            out = subprocess.run(
                [sys.executable, os.path.join(ROOT, "scripts", "slab_resident.py"), "--after", "1",
                 "--", "env", f"LD_PRELOAD={LIB}", exe],
                check=True, capture_output=True, text=True).stdout
        row = re.search(r"^\s+3072\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", out, re.M)
        self.assertIsNotNone(row, f"no row for the 3 KiB class in:\n{out}")
        slabs, resident, carved, used, current = (int(x) for x in row.groups())
        self.assertGreaterEqual(slabs, 45, out)  # 21 blocks per 64 KiB slab
        self.assertTrue(2900 <= carved <= 3400, out)
        self.assertTrue(carved * 0.9 <= resident <= carved + 64 * slabs, out)
        # Every slab but the bin's current one is full of held blocks: its count is all of them.
        self.assertEqual(current, 1, out)
        self.assertTrue(carved - 64 <= used <= carved, out)


if __name__ == "__main__":
    unittest.main()
