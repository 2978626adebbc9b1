/* Promise: malloc(0) returns a unique, freeable, non-NULL pointer; free(NULL) is a no-op;
 * free() preserves errno for every kind of block (small, medium, large, huge). */
#include "hk_test.h"

/* Called through volatile pointers so GCC cannot reason about malloc/free. */
static void *(*volatile p_malloc)(size_t) = malloc;
static void (*volatile p_free)(void *) = free;

static int cmp_ptr(const void *x, const void *y) {
    uintptr_t a = (uintptr_t) * (void *const *)x, b = (uintptr_t) * (void *const *)y;
    return a < b ? -1 : a > b;
}

static void errno_kept_by_free(size_t size) {
    void *p = p_malloc(size);
    REQUIRE(p != NULL, "malloc(%zu) failed", size);
    memset(p, 0x5A, size);
    errno = 1234;
    p_free(p);
    int e = *(volatile int *)&errno;
    CHECK(e == 1234, "free of a %zu-byte block changed errno to %d", size, e);
}

int main(void) {
    /* malloc(0): non-NULL, distinct, 16-byte aligned, freeable */
    void *a = p_malloc(0), *b = p_malloc(0);
    CHECK(a != NULL, "malloc(0) returned NULL");
    CHECK(b != NULL, "malloc(0) returned NULL");
    CHECK(a != b, "two malloc(0) calls returned the same pointer %p", a);
    CHECK(HK_ALIGNED(a, 16) && HK_ALIGNED(b, 16), "malloc(0) not 16-byte aligned: %p %p", a, b);

    /* many live malloc(0) blocks are pairwise distinct (sort and compare neighbours) */
    enum { NZ = 4096 };
    static void *zs[NZ];
    for (int i = 0; i < NZ; i++) {
        zs[i] = p_malloc(0);
        CHECK(zs[i] != NULL, "malloc(0) #%d returned NULL", i);
    }
    qsort(zs, NZ, sizeof zs[0], cmp_ptr);
    for (int i = 1; i < NZ; i++)
        CHECK(zs[i] != zs[i - 1] || zs[i] == NULL, "malloc(0) returned %p twice while live", zs[i]);
    /* writing the usable size of a malloc(0) block must not disturb its neighbours */
    for (int i = 0; i < NZ; i++)
        if (zs[i]) memset(zs[i], 0xC3, malloc_usable_size(zs[i]));
    for (int i = 0; i < NZ; i++) p_free(zs[i]);
    p_free(a);
    p_free(b);

    /* free(NULL) does nothing, and keeps errno */
    for (int i = 0; i < 1000; i++) p_free(NULL);
    errno = 4321;
    p_free(NULL);
    CHECK(*(volatile int *)&errno == 4321, "free(NULL) changed errno to %d", errno);

    /* free keeps errno for small, medium, large, huge blocks */
    size_t sizes[] = {0,         1,          8,          16,         24,         100,
                      512,       1024,       4000,       4096,       8192,       32768,
                      65536,     100000,     131072,     256 * 1024, 1 << 20,    (1 << 20) + 1,
                      4 << 20,   16 << 20,   64 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) errno_kept_by_free(sizes[i]);

    /* ...also when many frees in a row may trigger internal work (trimming, madvise, munmap) */
    enum { NB = 20000 };
    static void *blocks[NB];
    hk_rng r;
    hk_seed(&r, 1);
    for (int i = 0; i < NB; i++) {
        size_t s = hk_logsize(&r, 1, i % 100 == 0 ? 2 << 20 : 64 << 10);
        blocks[i] = p_malloc(s);
        REQUIRE(blocks[i] != NULL, "malloc(%zu) failed", s);
        memset(blocks[i], 1, s < 64 ? s : 64);
    }
    int bad = 0;
    for (int i = 0; i < NB; i++) {
        errno = 777 + i;
        p_free(blocks[i]);
        if (*(volatile int *)&errno != 777 + i && bad++ < 5)
            CHECK(0, "free of block #%d changed errno to %d", i, errno);
    }
    return hk_done("malloc_zero_and_free_null");
}
