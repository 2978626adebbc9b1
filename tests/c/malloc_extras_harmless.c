/* Promise: the optional glibc malloc extras (mallopt, malloc_trim, mallinfo2, malloc_stats,
 * malloc_info) can be called by a program without crashing or breaking the allocator, whoever
 * implements them, and the heap keeps working afterwards (blocks made before are intact). */
#include "hk_test.h"

int main(void) {
    enum { N = 1000 };
    static void *ps[N];
    static size_t sz[N];
    for (int i = 0; i < N; i++) {
        sz[i] = (size_t)(i * 97 % 70000) + 1;
        ps[i] = malloc(sz[i]);
        REQUIRE(ps[i] != NULL, "malloc failed");
        hk_fill(ps[i], sz[i], (uint64_t)i);
    }
    for (int i = 0; i < N; i += 2) {
        free(ps[i]);
        ps[i] = NULL;
    }
    (void)mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    (void)mallopt(M_TRIM_THRESHOLD, 512 * 1024);
    (void)mallopt(M_ARENA_MAX, 2);
    (void)mallopt(M_TOP_PAD, 0);
    for (int k = 0; k < 3; k++) (void)malloc_trim(0);
    (void)malloc_trim(1 << 20);
    struct mallinfo2 mi = mallinfo2();
    (void)mi;
    FILE *devnull = fopen("/dev/null", "w");
    REQUIRE(devnull != NULL, "fopen failed");
    (void)malloc_info(0, devnull);
    fclose(devnull);
    /* malloc_stats prints on stderr: send it to /dev/null for the call */
    fflush(stderr);
    int saved = dup(2);
    FILE *nul = freopen("/dev/null", "w", stderr);
    (void)nul;
    malloc_stats();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    for (int i = 1; i < N; i += 2) {
        size_t bad = hk_check(ps[i], sz[i], (uint64_t)i);
        CHECK(bad == SIZE_MAX, "block %d damaged after the extras at offset %zu", i, bad);
        free(ps[i]);
    }
    for (int i = 0; i < 20000; i++) {
        void *p = malloc((size_t)(i % 3000) + 1);
        REQUIRE(p != NULL, "malloc after extras failed");
        memset(p, 1, (size_t)(i % 3000) + 1);
        free(p);
    }
    return hk_done("malloc_extras_harmless");
}
