/* Promise: a request that the kernel's overcommit policy would refuse fails with NULL and
 * errno ENOMEM, as glibc's does, through every allocating entry point: under the default
 * heuristic (vm.overcommit_memory=0) a block larger than RAM + swap (e.g. 1024 GiB or
 * 65536 GiB on a 24 GiB machine), under strict accounting (=2) one larger than the commit
 * limit; a failed realloc keeps the block. Under =1 the kernel grants any size, and so do
 * glibc and hakmem: nothing to check. A block of half of RAM + swap (never touched) is still
 * granted under the heuristic. */
#include "hk_test.h"

#include <sys/sysinfo.h>

static void *(*volatile p_malloc)(size_t) = malloc;
static void *(*volatile p_calloc)(size_t, size_t) = calloc;
static void *(*volatile p_realloc)(void *, size_t) = realloc;
static void *(*volatile p_aligned_alloc)(size_t, size_t) = aligned_alloc;
static void *(*volatile p_memalign)(size_t, size_t) = memalign;
static int (*volatile p_posix_memalign)(void **, size_t, size_t) = posix_memalign;
static void *(*volatile p_valloc)(size_t) = valloc;
static void *(*volatile p_pvalloc)(size_t) = pvalloc;

static void expect_enomem(void *p, int e, const char *what, size_t n) {
    CHECK(p == NULL, "%s(%zu GiB) returned %p, expected NULL", what, n >> 30, p);
    CHECK(e == ENOMEM, "%s(%zu GiB): errno %d (%s), expected ENOMEM", what, n >> 30, e, strerror(e));
    if (p) free(p);
}

#define TRY(call, what, n)                                                                        \
    do {                                                                                          \
        errno = 0;                                                                                \
        void *p_ = (call);                                                                        \
        expect_enomem(p_, errno, what, n);                                                        \
    } while (0)

static void all_fail(size_t n) {
    TRY(p_malloc(n), "malloc", n);
    TRY(p_calloc(1, n), "calloc", n);
    TRY(p_calloc(n / 4096, 4096), "calloc(n/4096, 4096) of", n);
    TRY(p_aligned_alloc(4096, n), "aligned_alloc(4096)", n);
    TRY(p_aligned_alloc(2 << 20, n), "aligned_alloc(2 MiB)", n);
    TRY(p_memalign(64, n), "memalign(64)", n);
    TRY(p_valloc(n), "valloc", n);
    TRY(p_pvalloc(n), "pvalloc", n);
    void *out = NULL;
    int rc = p_posix_memalign(&out, 64, n);
    CHECK(rc == ENOMEM && out == NULL, "posix_memalign(64, %zu GiB) returned %d", n >> 30, rc);
    size_t olds[] = {100, 300000, 8 << 20};
    for (int i = 0; i < 3; i++) {
        char *b = p_malloc(olds[i]);
        REQUIRE(b != NULL, "malloc(%zu)", olds[i]);
        hk_fill(b, olds[i], 42);
        errno = 0;
        void *q = p_realloc(b, n);
        int e = errno;
        CHECK(q == NULL && e == ENOMEM, "realloc(%zu-byte block, %zu GiB) = %p, errno %d", olds[i], n >> 30, q, e);
        if (q) {
            free(q);
            continue;
        }
        CHECK(hk_check(b, olds[i], 42) == SIZE_MAX, "the %zu-byte block changed after a failed realloc", olds[i]);
        free(b);
    }
}

static long meminfo_kib(const char *key) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

int main(void) {
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = -1;
    if (f) {
        if (fscanf(f, "%d", &mode) != 1) mode = -1;
        fclose(f);
    }
    struct sysinfo si;
    REQUIRE(sysinfo(&si) == 0, "sysinfo: %s", strerror(errno));
    size_t ram_swap = ((size_t)si.totalram + (size_t)si.totalswap) * si.mem_unit;
    size_t sizes[] = {(size_t)1024 << 30, (size_t)65536 << 30, 2 * ram_swap + (1 << 30)};
    if (mode == 0) {
        for (int i = 0; i < 3; i++)
            if (sizes[i] > ram_swap + (1 << 30)) all_fail(sizes[i]);
        /* what the heuristic grants, hakmem grants too (never touched, so it costs nothing) */
        void *p = p_malloc(ram_swap / 2);
        CHECK(p != NULL, "malloc(%zu GiB), half of RAM + swap, failed: %s", (ram_swap / 2) >> 30, strerror(errno));
        free(p);
        printf("overcommit heuristic: RAM + swap = %zu MiB; larger requests fail\n", ram_swap >> 20);
    } else if (mode == 2) {
        long limit = meminfo_kib("CommitLimit");
        REQUIRE(limit > 0, "no CommitLimit in /proc/meminfo");
        size_t n = (size_t)limit * 1024 * 2 + (1 << 30);
        all_fail(n);
        printf("strict overcommit: CommitLimit %ld KiB; larger requests fail\n", limit);
    } else {
        printf("vm.overcommit_memory=%d: the kernel grants any size, nothing to check\n", mode);
    }
    return hk_done("overcommit_like_the_kernel");
}
