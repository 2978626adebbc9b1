/* random_mixed: a working set of slots; each step frees the slot's block (after checking its tag)
 * and allocates a new block of random size in [min,max]. One op = one malloc+free step. */
#include "common.h"

int main(int argc, char **argv)
{
    param_t ps[] = {
        {"iters", "steps (one malloc + one free each)", 50000000},
        {"ws", "working set: live slots", 400},
        {"min", "smallest block size", 16},
        {"max", "largest block size", 1024},
        {"seed", "PRNG seed", 1},
    };
    PARAMS_PARSE(ps, "Random-size malloc/free over a fixed working set (small-object throughput).");
    uint64_t iters = P(ps, "iters"), ws = P(ps, "ws"), min = P(ps, "min"), max = P(ps, "max");
    if (ws == 0 || min == 0 || max < min)
        die("need ws > 0 and 0 < min <= max");

    void **slot = calloc(ws, sizeof *slot);
    size_t *size = calloc(ws, sizeof *size);
    uint64_t *tag = calloc(ws, sizeof *tag);
    if (!slot || !size || !tag)
        die("out of memory for the slot table");
    rng_t r;
    rng_seed(&r, P(ps, "seed"));
    uint64_t checksum = 0;

    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        uint64_t x = rng_next(&r);
        size_t k = (size_t)below(x, ws);
        if (slot[k]) {
            if (!tag_ok(slot[k], size[k], tag[k]))
                die("block of %zu bytes in slot %zu corrupted at step %" PRIu64, size[k], k, i);
            checksum += tag[k];
            free(slot[k]);
        }
        size_t n = (size_t)(min + below(x << 32, max - min + 1));
        void *p = malloc(n);
        if (!p)
            die("malloc(%zu) failed", n);
        uint64_t t = mix64(i ^ (x << 1));
        tag_write(p, n, t);
        slot[k] = p, size[k] = n, tag[k] = t;
    }
    uint64_t elapsed = now_ns() - t0;

    for (size_t k = 0; k < ws; k++)
        if (slot[k]) {
            if (!tag_ok(slot[k], size[k], tag[k]))
                die("block in slot %zu corrupted at the end", k);
            checksum += tag[k];
            free(slot[k]);
        }
    free(slot), free(size), free(tag);
    printf("RESULT ops_per_sec=%.0f checksum=%016" PRIx64 " ops=%" PRIu64 " seconds=%.4f\n",
           iters / secs(elapsed), checksum, iters, secs(elapsed));
    return 0;
}
