/* phases: a program with distinct phases, as a compiler parses then generates code: each round
 * builds a large set of small blocks, frees it, then builds a set of medium blocks of other size
 * classes and frees that. Memory the allocator keeps from one phase adds to the next phase's
 * peak unless it is reused across size classes or returned to the OS.
 * One op = one malloc + one free. Reports ops/s and the peak RSS seen between phases. */
#include "common.h"

int main(int argc, char **argv)
{
    param_t ps[] = {
        {"rounds", "phase pairs", 6},
        {"small", "blocks in the small phase (16-256 B)", 600000},
        {"medium", "blocks in the medium phase (4-48 KiB)", 3000},
        {"seed", "PRNG seed", 1},
    };
    PARAMS_PARSE(ps, "Alternating small-object and medium-object phases (reuse and return of freed memory).");
    uint64_t rounds = P(ps, "rounds"), ns = P(ps, "small"), nm = P(ps, "medium");
    void **v = calloc(ns > nm ? ns : nm, sizeof *v);
    size_t *sz = calloc(ns > nm ? ns : nm, sizeof *sz);
    if (!v || !sz)
        die("out of memory for the tables");
    rng_t r;
    rng_seed(&r, P(ps, "seed"));
    uint64_t checksum = 0, ops = 0;
    long peak = 0;
    uint64_t t0 = now_ns();
    for (uint64_t k = 0; k < rounds; k++) {
        for (int phase = 0; phase < 2; phase++) {
            uint64_t n = phase == 0 ? ns : nm;
            for (uint64_t i = 0; i < n; i++) {
                sz[i] = phase == 0 ? rng_range(&r, 16, 256) : rng_range(&r, 4096, 49152);
                v[i] = xmalloc(sz[i]);
                tag_write(v[i], sz[i], mix64(i + k));
            }
            long rss = rss_kib();
            if (rss > peak)
                peak = rss;
            for (uint64_t i = 0; i < n; i++) {
                if (!tag_ok(v[i], sz[i], mix64(i + k)))
                    die("block %" PRIu64 " corrupted in round %" PRIu64, i, k);
                checksum += sz[i];
                free(v[i]);
            }
            ops += n;
        }
    }
    uint64_t elapsed = now_ns() - t0;
    free(v), free(sz);
    printf("RESULT ops_per_sec=%.0f checksum=%016" PRIx64 " ops=%" PRIu64 " peak_rss_kib=%ld seconds=%.4f\n",
           ops / secs(elapsed), checksum, ops, peak, secs(elapsed));
    return 0;
}
