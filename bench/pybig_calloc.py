#!/usr/bin/env python3
# calloc-heavy Python load for hakmem (bench/README.md, "calloc of a purged block"): four threads
# each make 200 000 bytes(n) / bytearray objects of 16 B - 256 KiB, 50 live at a time.
import threading, random
def work(seed):
    r = random.Random(seed); keep = []
    for i in range(200000):
        n = r.randint(16, 262144)
        keep.append(bytes(n) if i % 3 else bytearray(b'x' * (n // 64)))
        if len(keep) > 50:
            keep.pop(r.randrange(len(keep)))
ts = [threading.Thread(target=work, args=(s,)) for s in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print("ok")
