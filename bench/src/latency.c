/* latency: the random_mixed pattern with every malloc and free timed on its own (TSC where it is
 * invariant, clock_gettime otherwise), into a log-linear histogram. Reports p50/p99/p99.9/max in
 * nanoseconds for malloc, free and both. A small share of larger blocks exercises slow paths.
 * The timer's own cost is included in every sample and reported as timer_ns; its granularity
 * (the smallest step it moves by: virtual machines often step the TSC coarsely) as timer_res_ns. */
#include "common.h"
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#define SUB 32 /* sub-buckets per power of two: ~3% resolution */
#define NB (64 * SUB)

typedef struct { uint64_t n[NB]; uint64_t max, count; } hist_t;

static inline unsigned bucket(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned e = 63 - (unsigned)__builtin_clzll(v); /* >= 5 */
    return (e - 4) * SUB + (unsigned)((v >> (e - 5)) & (SUB - 1));
}

static inline uint64_t bucket_low(unsigned b)
{
    if (b < SUB)
        return b;
    unsigned e = b / SUB + 4;
    return (1ull << e) | ((uint64_t)(b % SUB) << (e - 5));
}

static inline void hist_add(hist_t *h, uint64_t v)
{
    h->n[bucket(v)]++;
    h->count++;
    if (v > h->max)
        h->max = v;
}

static uint64_t hist_pct(const hist_t *h, double q)
{
    uint64_t want = (uint64_t)(q * (double)h->count), seen = 0;
    for (unsigned b = 0; b < NB; b++) {
        seen += h->n[b];
        if (seen > want)
            return bucket_low(b);
    }
    return h->max;
}

static int use_tsc;
static double ns_per_tick = 1.0;

static inline uint64_t ticks(void)
{
#if defined(__x86_64__)
    if (use_tsc) {
        _mm_lfence();
        uint64_t t = __rdtsc();
        _mm_lfence();
        return t;
    }
#endif
    return now_ns();
}

static void timer_init(void)
{
#if defined(__x86_64__)
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[4096];
    int constant = 0, nonstop = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            constant = strstr(line, " constant_tsc") != NULL;
            nonstop = strstr(line, " nonstop_tsc") != NULL;
            break;
        }
    if (f)
        fclose(f);
    use_tsc = constant && nonstop;
    if (use_tsc) {
        uint64_t n0 = now_ns(), c0 = ticks();
        while (now_ns() - n0 < 50000000)
            ;
        uint64_t n1 = now_ns(), c1 = ticks();
        ns_per_tick = (double)(n1 - n0) / (double)(c1 - c0);
    }
#endif
}

static void report(const char *name, const hist_t *h)
{
    printf(" %s_p50_ns=%.0f %s_p99_ns=%.0f %s_p999_ns=%.0f %s_max_ns=%.0f", name,
           hist_pct(h, 0.50) * ns_per_tick, name, hist_pct(h, 0.99) * ns_per_tick, name,
           hist_pct(h, 0.999) * ns_per_tick, name, h->max * ns_per_tick);
}

int main(int argc, char **argv)
{
    param_t ps[] = {
        {"iters", "steps (one timed malloc + one timed free each)", 6000000},
        {"ws", "working set: live slots", 1000},
        {"min", "smallest block size", 16},
        {"max", "largest common block size", 1024},
        {"bigmax", "largest block of the occasional big ones", 256 << 10},
        {"bigpermil", "big blocks per thousand", 10},
        {"seed", "PRNG seed", 1},
    };
    PARAMS_PARSE(ps, "Per-operation malloc and free latency percentiles.");
    uint64_t iters = P(ps, "iters"), ws = P(ps, "ws"), min = P(ps, "min"), max = P(ps, "max");
    uint64_t bigmax = P(ps, "bigmax"), bigpm = P(ps, "bigpermil");
    if (ws == 0 || min == 0 || max < min || bigmax < max)
        die("need ws > 0, 0 < min <= max <= bigmax");
    timer_init();
    static hist_t hm, hf, ha;
    void **slot = calloc(ws, sizeof *slot);
    size_t *size = calloc(ws, sizeof *size);
    uint64_t *tag = calloc(ws, sizeof *tag);
    if (!slot || !size || !tag)
        die("out of memory");

    uint64_t overhead = UINT64_MAX, res = UINT64_MAX;
    for (int i = 0; i < 1000; i++) {
        uint64_t a = ticks(), b = ticks();
        if (b - a < overhead)
            overhead = b - a;
        for (a = ticks(); (b = ticks()) == a;)
            ;
        if (b - a < res)
            res = b - a;
    }

    rng_t r;
    rng_seed(&r, P(ps, "seed"));
    uint64_t checksum = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        uint64_t x = rng_next(&r);
        size_t k = (size_t)below(x << 10, ws); /* bits under the 10 that pick big blocks */
        if (slot[k]) {
            if (!tag_ok(slot[k], size[k], tag[k]))
                die("slot %zu corrupted at step %" PRIu64, k, i);
            checksum += tag[k];
            uint64_t a = ticks();
            free(slot[k]);
            uint64_t d = ticks() - a;
            hist_add(&hf, d);
            hist_add(&ha, d);
        }
        size_t n = (x >> 54) < bigpm * 1024 / 1000 ? (size_t)rng_range(&r, max, bigmax)
                                                    : (size_t)(min + below(x << 44, max - min + 1));
        uint64_t a = ticks();
        void *p = malloc(n);
        uint64_t d = ticks() - a;
        if (!p)
            die("malloc(%zu) failed", n);
        hist_add(&hm, d);
        hist_add(&ha, d);
        uint64_t t = mix64(i ^ x);
        tag_write(p, n, t);
        slot[k] = p, size[k] = n, tag[k] = t;
    }
    uint64_t elapsed = now_ns() - t0;
    for (size_t k = 0; k < ws; k++)
        if (slot[k]) {
            checksum += tag[k];
            free(slot[k]);
        }
    free(slot), free(size), free(tag);
    printf("RESULT ops_per_sec=%.0f checksum=%016" PRIx64, iters / secs(elapsed), checksum);
    report("all", &ha);
    report("malloc", &hm);
    report("free", &hf);
    printf(" timer_ns=%.1f timer_res_ns=%.1f clock=%s\n", overhead * ns_per_tick, res * ns_per_tick,
           use_tsc ? "tsc" : "monotonic");
    return 0;
}
