/* Shared helpers for the hakmem benchmark workloads.
 *
 * Every workload calls malloc/free through the ordinary dynamic symbols (so LD_PRELOAD decides
 * the allocator), checks the data it wrote before freeing it (exit 1 on a mismatch), takes its
 * parameters as key=value arguments, and ends with one machine-readable line:
 *     RESULT ops_per_sec=... checksum=... [more keys]
 * The checksum depends only on the parameters, never on addresses or timing, so the runner can
 * compare it across allocators. */
#ifndef HAKMEM_BENCH_COMMON_H
#define HAKMEM_BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *bench_name = "bench";

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: error: ", bench_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: cheap, good enough for picking sizes and slots. */
typedef struct { uint64_t s; } rng_t;

static inline void rng_seed(rng_t *r, uint64_t seed)
{
    /* splitmix64 step so that nearby seeds give unrelated streams; never zero. */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    r->s = z ? z : 0x2545F4914F6CDD1Dull;
}

static inline uint64_t rng_next(rng_t *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* x scaled into [0, n): the high half of x * n, so that no loop divides. A hardware divide
 * with a divisor the compiler kept on the stack made random_mixed measure the divider rather than
 * the allocator: on Zen 4 its loop ran at 41 M/s with `x % ws` and 94 M/s like this, under every
 * allocator (bench/README.md, "A divide in the benchmark's loop"). The result depends mostly on
 * x's high bits: draw a second value from the low bits with below(x << 32, n). */
static inline uint64_t below(uint64_t x, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)x * n) >> 64);
}

/* Uniform in [lo, hi] (inclusive); the bias of `below` is irrelevant here. */
static inline uint64_t rng_range(rng_t *r, uint64_t lo, uint64_t hi)
{
    return lo + below(rng_next(r), hi - lo + 1);
}

/* Log-uniform in [lo, hi]: as many draws per octave. */
static inline uint64_t rng_log_range(rng_t *r, uint64_t lo, uint64_t hi)
{
    unsigned lo_bits = 63 - (unsigned)__builtin_clzll(lo);
    unsigned hi_bits = 63 - (unsigned)__builtin_clzll(hi);
    unsigned bits = lo_bits + (unsigned)below(rng_next(r), hi_bits - lo_bits + 1);
    uint64_t base = 1ull << bits;
    uint64_t v = base + below(rng_next(r), base);
    return v < lo ? lo : (v > hi ? hi : v);
}

/* A 64-bit tag that a block carries from allocation to free. */
static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    x ^= x >> 33;
    return x;
}

/* Write a tag into a block: the first 8 bytes (or fewer) and the last byte. */
static inline void tag_write(void *p, size_t size, uint64_t tag)
{
    unsigned char *b = p;
    if (size >= 8)
        memcpy(b, &tag, 8);
    else
        memcpy(b, &tag, size);
    if (size > 8)
        b[size - 1] = (unsigned char)(tag >> 56);
}

static inline int tag_ok(const void *p, size_t size, uint64_t tag)
{
    const unsigned char *b = p;
    if (size >= 8) {
        uint64_t got;
        memcpy(&got, b, 8);
        if (got != tag)
            return 0;
    } else if (memcmp(b, &tag, size) != 0) {
        return 0;
    }
    return size <= 8 || b[size - 1] == (unsigned char)(tag >> 56);
}

/* key=value arguments: "--help" prints the table, unknown keys are an error. */
typedef struct {
    const char *key;
    const char *help;
    uint64_t value;
} param_t;

static void params_parse(param_t *ps, size_t n, int argc, char **argv, const char *what)
{
    bench_name = argv[0];
    const char *slash = strrchr(argv[0], '/');
    if (slash)
        bench_name = slash + 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s [key=value ...]\n%s\n", bench_name, what);
            for (size_t k = 0; k < n; k++)
                printf("  %-12s %s (default %" PRIu64 ")\n", ps[k].key, ps[k].help, ps[k].value);
            exit(0);
        }
        const char *eq = strchr(argv[i], '=');
        size_t klen = eq ? (size_t)(eq - argv[i]) : 0;
        size_t k = 0;
        for (; eq && k < n; k++)
            if (strlen(ps[k].key) == klen && !strncmp(ps[k].key, argv[i], klen))
                break;
        if (!eq || k == n)
            die("unknown argument '%s' (try --help)", argv[i]);
        char *end;
        errno = 0;
        unsigned long long v = strtoull(eq + 1, &end, 0);
        if (errno || end == eq + 1)
            die("bad number in '%s'", argv[i]);
        /* Accept k/m/g suffixes for counts and sizes. */
        if (*end == 'k' || *end == 'K')
            v <<= 10, end++;
        else if (*end == 'm' || *end == 'M')
            v <<= 20, end++;
        else if (*end == 'g' || *end == 'G')
            v <<= 30, end++;
        if (*end)
            die("bad number in '%s'", argv[i]);
        ps[k].value = v;
    }
}

static uint64_t param(const param_t *ps, size_t n, const char *key)
{
    for (size_t k = 0; k < n; k++)
        if (!strcmp(ps[k].key, key))
            return ps[k].value;
    die("internal: no parameter '%s'", key);
}

#define PARAMS_PARSE(ps, what) params_parse(ps, sizeof(ps) / sizeof(ps[0]), argc, argv, what)
#define P(ps, key) param(ps, sizeof(ps) / sizeof(ps[0]), key)

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        die("malloc(%zu) failed", n);
    return p;
}

/* Resident set size in KiB, from /proc/self/statm. */
static inline long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
        res = -1;
    fclose(f);
    return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

static double secs(uint64_t ns) { return (double)ns / 1e9; }

#endif
