/* large: a few live blocks of 64 KiB - 32 MiB (log-uniform), replaced at random. Every page of a
 * block is written once after malloc and checked before free, so the cost of fresh pages (mmap,
 * page faults, zeroing) is counted as a program that uses its memory would see it.
 * One op = one free + one malloc (+ touching the block). */
#include "common.h"

#define PAGE 4096

int main(int argc, char **argv)
{
    param_t ps[] = {
        {"steps", "replacements", 800},
        {"slots", "blocks alive at once", 4},
        {"min", "smallest block", 64 << 10},
        {"max", "largest block", 32 << 20},
        {"seed", "PRNG seed", 1},
    };
    PARAMS_PARSE(ps, "Large blocks (64 KiB - 32 MiB) replaced at random, every page touched.");
    uint64_t steps = P(ps, "steps"), nslots = P(ps, "slots"), min = P(ps, "min"), max = P(ps, "max");
    if (nslots == 0 || min < 64 || max < min)
        die("need slots > 0 and 64 <= min <= max");
    unsigned char **blk = calloc(nslots, sizeof *blk);
    size_t *size = calloc(nslots, sizeof *size);
    uint64_t *tag = calloc(nslots, sizeof *tag);
    if (!blk || !size || !tag)
        die("out of memory");
    rng_t r;
    rng_seed(&r, P(ps, "seed"));
    uint64_t checksum = 0, bytes = 0;

    uint64_t t0 = now_ns();
    for (uint64_t s = 0; s < steps + nslots; s++) {
        size_t k = s < nslots ? s : (size_t)(rng_next(&r) % nslots);
        if (blk[k]) {
            for (size_t off = 0; off < size[k]; off += PAGE) {
                uint64_t v;
                memcpy(&v, blk[k] + off, 8);
                if (v != (tag[k] ^ off))
                    die("block of %zu bytes corrupted at offset %zu", size[k], off);
            }
            checksum += tag[k];
            free(blk[k]);
        }
        size_t n = (size_t)rng_log_range(&r, min, max) & ~(size_t)7;
        unsigned char *p = malloc(n);
        if (!p)
            die("malloc(%zu) failed", n);
        uint64_t t = mix64(s);
        for (size_t off = 0; off < n; off += PAGE) {
            uint64_t v = t ^ off;
            memcpy(p + off, &v, 8);
        }
        blk[k] = p, size[k] = n, tag[k] = t;
        bytes += n;
    }
    uint64_t elapsed = now_ns() - t0;
    for (size_t k = 0; k < nslots; k++)
        free(blk[k]);
    free(blk), free(size), free(tag);
    printf("RESULT ops_per_sec=%.1f checksum=%016" PRIx64 " ops=%" PRIu64 " mib_per_sec=%.1f seconds=%.4f\n",
           steps / secs(elapsed), checksum, steps, bytes / 1048576.0 / secs(elapsed), secs(elapsed));
    return 0;
}
