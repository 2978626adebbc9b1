/* Promise: calloc returns zeroed memory for every size, in particular when the memory it hands
 * out was malloc'ed, dirtied (0xAA) and freed just before: small, medium and large (>= 1 MiB)
 * sizes, as n x 1, 1 x n and n/8 x 8. */
#include "hk_test.h"

static void *(*volatile p_calloc)(size_t, size_t) = calloc;

static size_t first_nonzero(const unsigned char *p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (v) break;
    }
    for (; i < n; i++)
        if (p[i]) return i;
    return SIZE_MAX;
}

static void *zcalloc(size_t size, int how) {
    switch (how % 3) {
    case 0: return p_calloc(size, 1);
    case 1: return p_calloc(1, size);
    default: return (size % 8 == 0) ? p_calloc(size / 8, 8) : p_calloc(size, 1);
    }
}

static void round_of(size_t size, int count, int rounds) {
    void **ps = malloc(sizeof(void *) * (size_t)count);
    REQUIRE(ps != NULL, "malloc failed");
    for (int r = 0; r < rounds; r++) {
        /* dirty: malloc, fill the whole usable size with 0xAA, free */
        for (int i = 0; i < count; i++) {
            ps[i] = malloc(size);
            REQUIRE(ps[i] != NULL, "malloc(%zu) failed", size);
            memset(ps[i], 0xAA, malloc_usable_size(ps[i]));
        }
        for (int i = 0; i < count; i++) free(ps[i]);
        /* calloc the same sizes: must be zero */
        for (int i = 0; i < count; i++) {
            unsigned char *p = zcalloc(size, r + i);
            REQUIRE(p != NULL, "calloc(%zu) failed", size);
            size_t bad = first_nonzero(p, size);
            CHECK(bad == SIZE_MAX, "calloc(%zu) round %d #%d = %p: byte %zu is 0x%02x, not 0", size, r, i,
                  (void *)p, bad, bad == SIZE_MAX ? 0 : p[bad]);
            ps[i] = p;
        }
        /* dirty the calloc'ed blocks too before freeing them (next round reuses them) */
        for (int i = 0; i < count; i++) {
            memset(ps[i], 0xAA, malloc_usable_size(ps[i]));
            free(ps[i]);
        }
    }
    free(ps);
}

int main(void) {
    /* small sizes, every size 1..1100 */
    for (size_t s = 1; s <= 1100; s++) round_of(s, 8, 2);
    /* medium and large sizes */
    size_t sz[] = {2048, 4095, 4096, 4097, 8000, 16384, 32768, 65535, 65536, 65537, 100000, 131072,
                   200000, 262144, 500000, 1 << 20, (1 << 20) + 1, 2 << 20, 3000000, 4 << 20, 16 << 20};
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        int count = sz[i] >= (1 << 20) ? 3 : sz[i] >= 65536 ? 16 : 64;
        round_of(sz[i], count, sz[i] >= (4 << 20) ? 3 : 5);
    }

    /* random interleaving: dirty frees and callocs mixed, 500 live slots */
    enum { N = 500 };
    static unsigned char *live[N];
    static size_t lsz[N];
    hk_rng r;
    hk_seed(&r, 3);
    for (int op = 0; op < 60000; op++) {
        int i = (int)hk_below(&r, N);
        if (live[i]) {
            memset(live[i], 0xAA, malloc_usable_size(live[i]));
            free(live[i]);
            live[i] = NULL;
        }
        size_t s = hk_logsize(&r, 1, op % 200 == 0 ? (2 << 20) : (32 << 10));
        if (hk_below(&r, 2)) {
            live[i] = malloc(s);
            REQUIRE(live[i] != NULL, "malloc failed");
            memset(live[i], 0xAA, s);
        } else {
            live[i] = zcalloc(s, op);
            REQUIRE(live[i] != NULL, "calloc(%zu) failed", s);
            size_t bad = first_nonzero(live[i], s);
            CHECK(bad == SIZE_MAX, "calloc(%zu) op %d: byte %zu not zero", s, op, bad);
        }
        lsz[i] = s;
    }
    for (int i = 0; i < N; i++) free(live[i]);
    (void)lsz;

    /* calloc of a block that realloc shrank/grew earlier */
    for (int k = 0; k < 200; k++) {
        size_t s = (size_t)(k + 1) * 97;
        void *p = malloc(s * 3);
        REQUIRE(p != NULL, "malloc failed");
        memset(p, 0xAA, s * 3);
        p = realloc(p, s);
        REQUIRE(p != NULL, "realloc failed");
        free(p);
        unsigned char *q = p_calloc(s * 3, 1);
        REQUIRE(q != NULL, "calloc failed");
        size_t bad = first_nonzero(q, s * 3);
        CHECK(bad == SIZE_MAX, "calloc(%zu) after realloc-shrink: byte %zu not zero", s * 3, bad);
        free(q);
    }
    /* calloc(0, n) and calloc(n, 0) are like malloc(0): unique freeable pointers */
    void *a = p_calloc(0, 10), *b = p_calloc(10, 0);
    CHECK(a != NULL && b != NULL && a != b, "calloc with a zero count: %p %p", a, b);
    free(a);
    free(b);
    return hk_done("calloc_zeroes");
}
