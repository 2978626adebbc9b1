/* tiny: allocate `count` blocks of `size` bytes, then free them all, repeated `rounds` times.
 * One op = one malloc + one free. Models bursts of small temporaries (parsers, string splits). */
#include "common.h"

int main(int argc, char **argv)
{
    param_t ps[] = {
        {"rounds", "repetitions of the burst", 1000000},
        {"count", "blocks per burst", 100},
        {"size", "block size in bytes", 16},
    };
    PARAMS_PARSE(ps, "Bursts of same-size small allocations followed by their frees (LIFO-ish cache behaviour).");
    uint64_t rounds = P(ps, "rounds"), count = P(ps, "count"), size = P(ps, "size");
    if (count == 0 || size < 8)
        die("need count > 0 and size >= 8");
    uint64_t **blk = calloc(count, sizeof *blk);
    if (!blk)
        die("out of memory");
    uint64_t checksum = 0;

    uint64_t t0 = now_ns();
    for (uint64_t r = 0; r < rounds; r++) {
        for (uint64_t i = 0; i < count; i++) {
            uint64_t *p = malloc(size);
            if (!p)
                die("malloc(%" PRIu64 ") failed", size);
            *p = r * count + i;
            blk[i] = p;
        }
        for (uint64_t i = 0; i < count; i++) {
            if (*blk[i] != r * count + i)
                die("block %" PRIu64 " of round %" PRIu64 " corrupted", i, r);
            checksum += *blk[i];
            free(blk[i]);
        }
    }
    uint64_t elapsed = now_ns() - t0;
    free(blk);
    uint64_t ops = rounds * count;
    printf("RESULT ops_per_sec=%.0f checksum=%016" PRIx64 " ops=%" PRIu64 " seconds=%.4f\n",
           ops / secs(elapsed), checksum, ops, secs(elapsed));
    return 0;
}
