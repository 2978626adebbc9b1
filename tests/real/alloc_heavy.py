"""Allocation-heavy Python workload for tests/run_real_programs.sh.

Run once without and once with the preloaded allocator; the output must be identical.
Everything is deterministic (no hash-order, time or address dependence): each section prints
a sha256 of its results, and the last line is a digest of all sections.
"""
import collections
import hashlib
import json
import random
import re
import sys
import threading
from math import factorial

digests = []


def report(name, obj):
    h = hashlib.sha256(repr(obj).encode()).hexdigest()[:16]
    digests.append(h)
    print(f"{name}: {h}")


def dicts():
    d = {}
    for i in range(200_000):
        d[f"key-{i}-{i * 7919 % 1000}"] = [i, str(i), i * 0.5]
    for i in range(0, 200_000, 2):
        del d[f"key-{i}-{i * 7919 % 1000}"]
    for i in range(50_000):
        d[(i, "tuple")] = {"nested": i, "list": list(range(i % 10))}
    total = sum(v[0] for k, v in d.items() if isinstance(k, str))
    return len(d), total, sorted(k for k in d if isinstance(k, str))[:5]


def lists():
    rng = random.Random(12345)
    data = [rng.randrange(1_000_000) for _ in range(300_000)]
    data.sort()
    chunks = [data[i:i + 100] for i in range(0, len(data), 100)]
    chunks.sort(key=lambda c: (sum(c) % 1000, c[0]))
    flat = [x for c in chunks[::3] for x in c if x % 3]
    dq = collections.deque(maxlen=1000)
    for x in flat:
        dq.append(x)
    return len(flat), sum(flat), list(dq)[-10:]


def strings():
    parts = []
    for i in range(100_000):
        parts.append(f"{i:08x}-{'ab' * (i % 17)}")
    s = "|".join(parts)
    s2 = s.replace("ab", "XYZ").upper()
    words = re.findall(r"[0-9A-F]{8}", s2)
    c = collections.Counter(w[-2:] for w in words)
    b = bytearray()
    for i in range(20_000):
        b += (str(i) * (i % 7)).encode()
    return len(s), len(s2), len(words), sorted(c.most_common(5)), hashlib.sha256(bytes(b)).hexdigest()


def bigints():
    f = factorial(3000)
    p = 3 ** 100_000
    m = pow(7, 10 ** 40, (1 << 521) - 1)
    fib = [0, 1]
    for _ in range(5000):
        fib.append(fib[-1] + fib[-2])
    return f.bit_length(), f % (10 ** 30 + 57), p % 1_000_000_007, m % 1_000_003, fib[-1] % 10 ** 20, len(str(fib[-1]))


def jsons():
    obj = {
        "items": [{"id": i, "name": f"item{i}", "tags": [f"t{j}" for j in range(i % 8)],
                   "value": i * 1.25, "ok": i % 2 == 0} for i in range(30_000)],
        "meta": {"count": 30_000, "nested": {"deep": [[i, [i, [i]]] for i in range(1000)]}},
    }
    text = json.dumps(obj, sort_keys=True)
    back = json.loads(text)
    text2 = json.dumps(back, sort_keys=True, indent=1)
    back2 = json.loads(text2)
    return len(text), len(text2), back2 == obj, hashlib.sha256(text.encode()).hexdigest()


def sets_and_classes():
    class Node:
        __slots__ = ("v", "kids")

        def __init__(self, v):
            self.v = v
            self.kids = []

    root = Node(0)
    frontier = [root]
    n = 1
    while n < 100_000:
        nxt = []
        for node in frontier:
            for _ in range(3):
                k = Node(n)
                node.kids.append(k)
                nxt.append(k)
                n += 1
        frontier = nxt
    total, stack = 0, [root]
    while stack:
        x = stack.pop()
        total += x.v
        stack.extend(x.kids)
    s = set(range(0, 300_000, 3)) ^ set(range(0, 300_000, 5))
    return n, total, len(s), sum(s) % 1_000_003


def worker(idx, out):
    rng = random.Random(idx)
    acc = {}
    for i in range(60_000):
        k = rng.randrange(5000)
        acc.setdefault(k, []).append(str(i * idx))
        if i % 7 == 0:
            acc.pop(rng.randrange(5000), None)
    lst = sorted((k, len(v), v[-1]) for k, v in acc.items())
    out[idx] = hashlib.sha256(repr(lst).encode()).hexdigest()


def threads():
    out = [None] * 6
    ts = [threading.Thread(target=worker, args=(i, out)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


for name, fn in [("dicts", dicts), ("lists", lists), ("strings", strings), ("bigints", bigints),
                 ("json", jsons), ("objects", sets_and_classes), ("threads", threads)]:
    report(name, fn())
print("all:", hashlib.sha256("".join(digests).encode()).hexdigest())
sys.stdout.flush()
