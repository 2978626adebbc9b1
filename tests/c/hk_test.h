/* Shared helpers for hakmem's C contract tests (the programs in tests/c/).
 *
 * Every test is a standalone program: exit 0 when every check held, otherwise print
 * one "file:line: FAIL: ..." line per failed check on stderr and exit 1.
 * The checks are glibc's malloc contracts (see /work/shared/ALLOCATOR-NOTES.md, section 2),
 * so every test must pass without LD_PRELOAD too. */
#ifndef HK_TEST_H
#define HK_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

static int hk_nfail;

__attribute__((format(printf, 4, 5), unused)) static void hk_failf(const char *file, int line, const char *cond,
                                                                  const char *fmt, ...) {
    int n = __atomic_add_fetch(&hk_nfail, 1, __ATOMIC_RELAXED);
    if (n > 40) {
        if (n == 41) {
            fprintf(stderr, "... too many failed checks, giving up\n");
            fflush(stderr);
            _exit(1);
        }
        return;
    }
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s:%d: FAIL: %s   [check: %s]\n", file, line, buf, cond);
    fflush(stderr);
}

/* CHECK(cond, "format", args...): the format string is mandatory. */
#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        if (__builtin_expect(!(cond), 0)) hk_failf(__FILE__, __LINE__, #cond, __VA_ARGS__); \
    } while (0)

/* Abort the test at once (used where continuing would crash on a NULL pointer). */
#define REQUIRE(cond, ...)                                                                    \
    do {                                                                                      \
        if (__builtin_expect(!(cond), 0)) {                                                   \
            hk_failf(__FILE__, __LINE__, #cond, __VA_ARGS__);                                 \
            fprintf(stderr, "fatal check failed, stopping\n");                                \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

__attribute__((unused)) static int hk_done(const char *name) {
    int n = __atomic_load_n(&hk_nfail, __ATOMIC_RELAXED);
    if (n) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, n);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

/* A watchdog for tests that could deadlock: after `seconds` of wall-clock time a POSIX timer
 * (CLOCK_MONOTONIC, SIGEV_SIGNAL: no helper thread, so a single-threaded test stays
 * single-threaded) delivers SIGRTMAX, whose handler writes "NAME: FAIL: still running after
 * N s (deadlock?)" and _exit(1)s. Timers are not inherited by fork children. */
static const char *hk_watchdog_name = "test";
__attribute__((unused)) static void hk_watchdog_fire(int sig) {
    (void)sig;
    char buf[160];
    int n = snprintf(buf, sizeof buf, "%s: FAIL: still running when the watchdog fired (deadlock?)\n", hk_watchdog_name);
    if (n > 0) {
        ssize_t w = write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
        (void)w;
    }
    _exit(1);
}
__attribute__((unused)) static void hk_watchdog(const char *name, int seconds) {
    hk_watchdog_name = name;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = hk_watchdog_fire;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGRTMAX, &sa, NULL);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMAX;
    timer_t t;
    if (timer_create(CLOCK_MONOTONIC, &ev, &t) != 0) {
        perror("timer_create");
        exit(1);
    }
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = seconds;
    timer_settime(t, 0, &its, NULL);
}

#define HK_ALIGNED(p, a) ((((uintptr_t)(p)) & ((uintptr_t)(a) - 1)) == 0)

/* Hide a value from the optimiser, so that GCC cannot fold or drop malloc/free pairs
 * or assume anything about the result of a call. */
static inline void *hk_opaque(void *p) {
    __asm__ volatile("" : "+r"(p) : : "memory");
    return p;
}
static inline size_t hk_opaque_size(size_t n) {
    __asm__ volatile("" : "+r"(n));
    return n;
}

/* ---- deterministic pseudo-random numbers ---- */
static inline uint64_t hk_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}
typedef struct {
    uint64_t s;
} hk_rng;
static inline void hk_seed(hk_rng *r, uint64_t seed) { r->s = hk_mix(seed + 0x9E3779B97F4A7C15ULL) | 1; }
static inline uint64_t hk_next(hk_rng *r) {
    uint64_t x = r->s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}
static inline uint64_t hk_below(hk_rng *r, uint64_t n) { return n ? hk_next(r) % n : 0; }
/* Log-uniform size in [lo, hi]. */
static inline size_t hk_logsize(hk_rng *r, size_t lo, size_t hi) {
    int blo = 63 - __builtin_clzll(lo | 1), bhi = 63 - __builtin_clzll(hi | 1);
    int b = blo + (int)hk_below(r, (uint64_t)(bhi - blo + 1));
    size_t base = (size_t)1 << b;
    size_t s = base + (size_t)hk_below(r, base);
    if (s < lo) s = lo;
    if (s > hi) s = hi;
    return s;
}

/* ---- content patterns ----
 * A block filled with seed s holds the first n bytes of an endless stream of 64-bit words
 * w(k) = f(s, k) (little-endian), so any prefix of a filled block can be checked (realloc). */
static inline uint64_t hk_word(uint64_t seed, size_t k) {
    return (seed * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)k * 0xD6E8FEB86659FD93ULL) ^ (uint64_t)k;
}
__attribute__((unused)) static void hk_fill(void *p, size_t n, uint64_t seed) {
    unsigned char *c = (unsigned char *)p;
    size_t k, nw = n / 8;
    for (k = 0; k < nw; k++) {
        uint64_t w = hk_word(seed, k);
        memcpy(c + 8 * k, &w, 8);
    }
    if (n % 8) {
        uint64_t w = hk_word(seed, nw);
        memcpy(c + 8 * nw, &w, n % 8);
    }
}
/* Returns the offset of the first byte in [0, n) that differs from the pattern, or SIZE_MAX. */
__attribute__((unused)) static size_t hk_check(const void *p, size_t n, uint64_t seed) {
    const unsigned char *c = (const unsigned char *)p;
    size_t k, nw = n / 8;
    for (k = 0; k < nw; k++) {
        uint64_t w = hk_word(seed, k), v;
        memcpy(&v, c + 8 * k, 8);
        if (v != w) {
            for (size_t i = 0; i < 8; i++)
                if (c[8 * k + i] != (unsigned char)(w >> (8 * i))) return 8 * k + i;
        }
    }
    if (n % 8) {
        uint64_t w = hk_word(seed, nw);
        for (size_t i = 0; i < n % 8; i++)
            if (c[8 * nw + i] != (unsigned char)(w >> (8 * i))) return 8 * nw + i;
    }
    return SIZE_MAX;
}
/* Sparse variant for big blocks: the first and last 4 KiB in full, one word per 512 bytes
 * in between; consistent with hk_fill (same stream), so hk_check_sparse after hk_fill works. */
#define HK_SPARSE_EDGE 4096
#define HK_SPARSE_STRIDE 512
__attribute__((unused)) static void hk_fill_sparse(void *p, size_t n, uint64_t seed) {
    if (n <= 3 * HK_SPARSE_EDGE) {
        hk_fill(p, n, seed);
        return;
    }
    unsigned char *c = (unsigned char *)p;
    hk_fill(c, HK_SPARSE_EDGE, seed);
    for (size_t off = HK_SPARSE_EDGE; off + 8 <= n - HK_SPARSE_EDGE; off += HK_SPARSE_STRIDE) {
        uint64_t w = hk_word(seed, off / 8);
        memcpy(c + off, &w, 8);
    }
    /* tail: start at a word boundary so the stream stays aligned */
    size_t t = (n - HK_SPARSE_EDGE) & ~(size_t)7;
    for (size_t k = t / 8; 8 * k < n; k++) {
        uint64_t w = hk_word(seed, k);
        size_t m = n - 8 * k < 8 ? n - 8 * k : 8;
        memcpy(c + 8 * k, &w, m);
    }
}
/* Checks the bytes that hk_fill_sparse(p, n, seed) wrote, restricted to [0, limit)
 * (limit < n after a shrinking realloc). Returns the first bad offset or SIZE_MAX. */
__attribute__((unused)) static size_t hk_check_sparse_prefix(const void *p, size_t n, size_t limit, uint64_t seed) {
    if (limit > n) limit = n;
    if (n <= 3 * HK_SPARSE_EDGE) return hk_check(p, limit, seed);
    const unsigned char *c = (const unsigned char *)p;
    size_t r = hk_check(c, limit < HK_SPARSE_EDGE ? limit : HK_SPARSE_EDGE, seed);
    if (r != SIZE_MAX) return r;
    for (size_t off = HK_SPARSE_EDGE; off + 8 <= n - HK_SPARSE_EDGE && off + 8 <= limit; off += HK_SPARSE_STRIDE) {
        uint64_t w = hk_word(seed, off / 8), v;
        memcpy(&v, c + off, 8);
        if (v != w) return off;
    }
    size_t t = (n - HK_SPARSE_EDGE) & ~(size_t)7;
    for (size_t k = t / 8; 8 * k < limit; k++) {
        uint64_t w = hk_word(seed, k);
        size_t m = limit - 8 * k < 8 ? limit - 8 * k : 8;
        for (size_t i = 0; i < m; i++)
            if (c[8 * k + i] != (unsigned char)(w >> (8 * i))) return 8 * k + i;
    }
    return SIZE_MAX;
}
__attribute__((unused)) static size_t hk_check_sparse(const void *p, size_t n, uint64_t seed) {
    return hk_check_sparse_prefix(p, n, n, seed);
}

/* ---- process measurements ---- */
__attribute__((unused)) static long hk_statm_field(int field) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long v[7] = {0};
    int n = fscanf(f, "%ld %ld %ld %ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]);
    fclose(f);
    if (n < field + 1) return -1;
    return v[field] * sysconf(_SC_PAGESIZE);
}
/* Resident set size and virtual size in bytes. */
__attribute__((unused)) static long hk_rss(void) { return hk_statm_field(1); }
__attribute__((unused)) static long hk_vmsize(void) { return hk_statm_field(0); }

__attribute__((unused)) static double hk_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Bytes of address space the process uses now (/proc/self/statm). */
/* With open and read, not stdio: fopen allocates, and the tests that fill the address space call
 * this where malloc has just failed. */
__attribute__((unused)) static size_t hk_vm_bytes(void) {
    char buf[64];
    ssize_t n = -1;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
    }
    if (n <= 0) return 0;
    buf[n] = 0;
    return strtoul(buf, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE);
}

/* Runs the program again (same argv) under an address-space limit (RLIMIT_AS) of `limit` bytes,
 * so that the allocator starts under it. Returns 1 in the limited run, 0 when the hard limit is
 * below `limit` (the caller skips); never returns in the first run. */
__attribute__((unused)) static int hk_rerun_under_as_limit(char **argv, size_t limit) {
    if (getenv("HK_AS_LIMITED")) return 1;
    struct rlimit r;
    REQUIRE(getrlimit(RLIMIT_AS, &r) == 0, "getrlimit");
    if (r.rlim_max != RLIM_INFINITY && r.rlim_max < limit) return 0;
    r.rlim_cur = limit;
    REQUIRE(setrlimit(RLIMIT_AS, &r) == 0, "setrlimit");
    setenv("HK_AS_LIMITED", "1", 1);
    execv("/proc/self/exe", argv);
    REQUIRE(0, "execv: %s", strerror(errno));
    return 0;
}

#define HK_KiB ((size_t)1024)
#define HK_MiB ((size_t)1024 * 1024)

#endif
