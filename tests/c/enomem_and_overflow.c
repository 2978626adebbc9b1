/* Promise: absurd sizes fail cleanly: NULL with errno == ENOMEM (never a crash, never a
 * tiny block after a size overflow); calloc and reallocarray detect multiplication overflow;
 * a failed realloc/reallocarray leaves the old block intact and usable. */
#include "hk_test.h"

/* Volatile function pointers: GCC may not fold or warn about the absurd sizes. */
static void *(*volatile p_malloc)(size_t) = malloc;
static void *(*volatile p_calloc)(size_t, size_t) = calloc;
static void *(*volatile p_realloc)(void *, size_t) = realloc;
static void *(*volatile p_reallocarray)(void *, size_t, size_t) = reallocarray;
static void *(*volatile p_aligned_alloc)(size_t, size_t) = aligned_alloc;
static void *(*volatile p_memalign)(size_t, size_t) = memalign;
static void *(*volatile p_valloc)(size_t) = valloc;

#define EXPECT_ENOMEM(expr, desc)                                                              \
    do {                                                                                       \
        errno = 0;                                                                             \
        void *r_ = (expr);                                                                     \
        int e_ = errno;                                                                        \
        CHECK(r_ == NULL, "%s returned %p instead of NULL", desc, r_);                          \
        CHECK(e_ == ENOMEM, "%s: errno = %d (%s), expected ENOMEM", desc, e_, strerror(e_));    \
        if (r_) free(r_);                                                                      \
    } while (0)

static void check_intact(void *p, size_t n, uint64_t seed, const char *after) {
    size_t bad = hk_check(p, n, seed);
    CHECK(bad == SIZE_MAX, "block %p (%zu bytes) damaged after %s: offset %zu", p, n, after, bad);
}

int main(void) {
    const size_t M = SIZE_MAX;
    char desc[128];

    /* malloc */
    EXPECT_ENOMEM(p_malloc(M), "malloc(SIZE_MAX)");
    EXPECT_ENOMEM(p_malloc(M - 1), "malloc(SIZE_MAX-1)");
    EXPECT_ENOMEM(p_malloc(M - 15), "malloc(SIZE_MAX-15)");
    EXPECT_ENOMEM(p_malloc(M - 4096), "malloc(SIZE_MAX-4096)");
    EXPECT_ENOMEM(p_malloc(M / 2 + 1), "malloc(SIZE_MAX/2+1)");
    EXPECT_ENOMEM(p_malloc(M / 2), "malloc(SIZE_MAX/2 = PTRDIFF_MAX)");
    EXPECT_ENOMEM(p_malloc((size_t)PTRDIFF_MAX - 64), "malloc(PTRDIFF_MAX-64)");
    /* sizes near every power of two above the address space */
    for (int b = 58; b < 64; b++) {
        size_t s = (size_t)1 << b;
        snprintf(desc, sizeof desc, "malloc(2^%d)", b);
        EXPECT_ENOMEM(p_malloc(s), desc);
        snprintf(desc, sizeof desc, "malloc(2^%d - 1)", b);
        EXPECT_ENOMEM(p_malloc(s - 1), desc);
    }

    /* calloc: products that overflow size_t (possibly wrapping to a small number) */
    EXPECT_ENOMEM(p_calloc(M / 2, 4), "calloc(SIZE_MAX/2, 4)");
    EXPECT_ENOMEM(p_calloc(4, M / 2), "calloc(4, SIZE_MAX/2)");
    EXPECT_ENOMEM(p_calloc(M, M), "calloc(SIZE_MAX, SIZE_MAX)");
    EXPECT_ENOMEM(p_calloc((size_t)1 << 32, (size_t)1 << 32), "calloc(2^32, 2^32) (wraps to 0)");
    EXPECT_ENOMEM(p_calloc(((size_t)1 << 32) + 1, (size_t)1 << 32), "calloc(2^32+1, 2^32) (wraps to 2^32)");
    EXPECT_ENOMEM(p_calloc((size_t)1 << 40, (size_t)1 << 24), "calloc(2^40, 2^24) (wraps to 0)");
    EXPECT_ENOMEM(p_calloc(((size_t)1 << 61) + 1, 8), "calloc(2^61+1, 8) (wraps to 8)");
    EXPECT_ENOMEM(p_calloc(3, M / 3 + 1), "calloc(3, SIZE_MAX/3+1) (wraps to 2)");
    EXPECT_ENOMEM(p_calloc(M, 1), "calloc(SIZE_MAX, 1)");
    EXPECT_ENOMEM(p_calloc(1, M), "calloc(1, SIZE_MAX)");
    EXPECT_ENOMEM(p_calloc(M / 16 + 1, 16), "calloc(SIZE_MAX/16+1, 16) (wraps to 0)");

    /* reallocarray(NULL, ...) */
    EXPECT_ENOMEM(p_reallocarray(NULL, M / 2, 4), "reallocarray(NULL, SIZE_MAX/2, 4)");
    EXPECT_ENOMEM(p_reallocarray(NULL, (size_t)1 << 32, (size_t)1 << 32), "reallocarray(NULL, 2^32, 2^32)");

    /* aligned families with absurd sizes */
    EXPECT_ENOMEM(p_aligned_alloc(16, M), "aligned_alloc(16, SIZE_MAX)");
    EXPECT_ENOMEM(p_aligned_alloc(64, M - 32), "aligned_alloc(64, SIZE_MAX-32)");
    EXPECT_ENOMEM(p_aligned_alloc(4096, M / 2 + 1), "aligned_alloc(4096, SIZE_MAX/2+1)");
    EXPECT_ENOMEM(p_memalign(4096, M - 100), "memalign(4096, SIZE_MAX-100)");
    EXPECT_ENOMEM(p_memalign(64, M / 2), "memalign(64, SIZE_MAX/2)");
    EXPECT_ENOMEM(p_valloc(M), "valloc(SIZE_MAX)");
    EXPECT_ENOMEM(p_valloc(M - 4000), "valloc(SIZE_MAX-4000)");

    /* failed realloc / reallocarray leave the old block intact, for small and large blocks */
    size_t olds[] = {1, 24, 100, 1000, 5000, 70000, 300000, 2 << 20};
    size_t bads[] = {M, M - 1, M - 4096, M / 2 + 1, M / 2, (size_t)1 << 62};
    for (size_t i = 0; i < sizeof olds / sizeof olds[0]; i++) {
        size_t n = olds[i];
        uint64_t seed = 99 + i;
        void *p = p_malloc(n);
        REQUIRE(p != NULL, "malloc(%zu) failed", n);
        hk_fill(p, n, seed);
        for (size_t j = 0; j < sizeof bads / sizeof bads[0]; j++) {
            snprintf(desc, sizeof desc, "realloc(%zu-byte block, %zu)", n, bads[j]);
            EXPECT_ENOMEM(p_realloc(p, bads[j]), desc);
            check_intact(p, n, seed, desc);
        }
        snprintf(desc, sizeof desc, "reallocarray(%zu-byte block, 2^32, 2^32)", n);
        EXPECT_ENOMEM(p_reallocarray(p, (size_t)1 << 32, (size_t)1 << 32), desc);
        check_intact(p, n, seed, desc);
        snprintf(desc, sizeof desc, "reallocarray(%zu-byte block, SIZE_MAX/2, 3)", n);
        EXPECT_ENOMEM(p_reallocarray(p, M / 2, 3), desc);
        check_intact(p, n, seed, desc);
        /* the old block still works: grow it for real, contents kept, then free */
        void *q = p_realloc(p, n * 2 + 16);
        REQUIRE(q != NULL, "realloc(%zu -> %zu) after failures returned NULL", n, n * 2 + 16);
        check_intact(q, n, seed, "a successful realloc that followed failed ones");
        free(q);
    }

    /* the allocator still works after all these failures */
    for (int i = 0; i < 1000; i++) {
        void *p = p_malloc((size_t)i * 37 + 1);
        REQUIRE(p != NULL, "malloc after failures returned NULL");
        memset(p, 0xEE, (size_t)i * 37 + 1);
        free(p);
    }
    return hk_done("enomem_and_overflow");
}
