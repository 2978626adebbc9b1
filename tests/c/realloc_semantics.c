/* Promise: realloc(NULL, n) behaves as malloc(n); realloc(p, 0) frees p and returns NULL
 * (glibc's REALLOC_ZERO_BYTES_FREES); contents are kept across every grow and shrink,
 * 16 B -> 64 MiB -> 16 B, including small<->large transitions and moves forced by neighbours. */
#include "hk_test.h"

static void *(*volatile p_realloc)(void *, size_t) = realloc;

static void *grow_check(void *p, size_t old, size_t new, uint64_t seed, uint64_t nseed,
                        const char *what) {
    void *q = p_realloc(p, new);
    REQUIRE(q != NULL, "%s: realloc(%p, %zu -> %zu) returned NULL", what, p, old, new);
    CHECK(HK_ALIGNED(q, 16), "%s: realloc(%zu -> %zu) = %p not 16-byte aligned", what, old, new, q);
    size_t u = malloc_usable_size(q);
    CHECK(u >= new, "%s: realloc to %zu: usable size %zu", what, new, u);
    size_t keep = old < new ? old : new;
    size_t bad = hk_check(q, keep, seed);
    CHECK(bad == SIZE_MAX, "%s: realloc(%zu -> %zu) lost contents at offset %zu", what, old, new, bad);
    hk_fill(q, new, nseed);
    return q;
}

int main(void) {
    /* realloc(NULL, n) == malloc(n) */
    size_t ns[] = {0, 1, 15, 16, 17, 100, 4096, 100000, 1 << 20, 8 << 20};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        void *p = p_realloc(NULL, ns[i]);
        CHECK(p != NULL, "realloc(NULL, %zu) returned NULL", ns[i]);
        if (!p) continue;
        CHECK(HK_ALIGNED(p, 16), "realloc(NULL, %zu) = %p not aligned", ns[i], p);
        CHECK(malloc_usable_size(p) >= ns[i], "realloc(NULL, %zu): usable %zu", ns[i], malloc_usable_size(p));
        memset(p, 0x77, ns[i]);
        free(p);
    }

    /* realloc(p, 0) frees p and returns NULL, for blocks of every class */
    size_t zs[] = {1, 16, 100, 1000, 10000, 100000, 1 << 20, 16 << 20};
    for (size_t i = 0; i < sizeof zs / sizeof zs[0]; i++) {
        void *p = malloc(zs[i]);
        REQUIRE(p != NULL, "malloc(%zu) failed", zs[i]);
        memset(p, 1, zs[i]);
        void *q = p_realloc(p, 0);
        CHECK(q == NULL, "realloc(%zu-byte block, 0) returned %p, expected NULL (block freed)", zs[i], q);
        if (q) free(q);
    }
    /* ...and it really frees: 300 x 1 MiB and 100000 x 1000 B touched blocks must not pile up */
    long rss0 = hk_rss();
    for (int i = 0; i < 300; i++) {
        void *p = malloc(1 << 20);
        REQUIRE(p != NULL, "malloc(1 MiB) failed");
        memset(p, 0x3C, 1 << 20);
        void *q = p_realloc(p, 0);
        if (q) free(q);
    }
    for (int i = 0; i < 100000; i++) {
        void *p = malloc(1000);
        REQUIRE(p != NULL, "malloc(1000) failed");
        memset(p, 0x3C, 1000);
        void *q = p_realloc(p, 0);
        if (q) free(q);
    }
    long grew = hk_rss() - rss0;
    CHECK(grew < (long)(64 * HK_MiB), "realloc(p, 0) seems not to free: RSS grew by %ld KiB", grew / 1024);

    /* geometric walk 16 B -> 64 MiB -> 16 B, with a live neighbour allocated after every step
     * so that in-place growth is not always possible */
    enum { MAXN = 256 };
    void *neigh[MAXN];
    int nn = 0;
    size_t cur = 16;
    uint64_t seed = 1;
    void *p = malloc(cur);
    REQUIRE(p != NULL, "malloc(16) failed");
    hk_fill(p, cur, seed);
    while (cur < 64 * HK_MiB) {
        size_t next = cur + cur / 2 + 8;
        if (next > 64 * HK_MiB) next = 64 * HK_MiB;
        p = grow_check(p, cur, next, seed, seed + 1, "grow");
        seed++;
        cur = next;
        if (nn < MAXN) {
            neigh[nn] = malloc(cur < 4096 ? cur : 64);
            REQUIRE(neigh[nn] != NULL, "neighbour malloc failed");
            hk_fill(neigh[nn], cur < 4096 ? cur : 64, 5000 + nn);
            nn++;
        }
    }
    while (cur > 16) {
        size_t next = cur / 2 - 8;
        if (next < 16) next = 16;
        p = grow_check(p, cur, next, seed, seed + 1, "shrink");
        seed++;
        cur = next;
    }
    free(p);
    /* the neighbours were sized by the same rule as the walk: recompute and verify them */
    {
        size_t s = 16;
        for (int i = 0; i < nn; i++) {
            s = s + s / 2 + 8;
            if (s > 64 * HK_MiB) s = 64 * HK_MiB;
            size_t n = s < 4096 ? s : 64;
            size_t bad = hk_check(neigh[i], n, 5000 + i);
            CHECK(bad == SIZE_MAX, "neighbour block #%d (%zu bytes) damaged at offset %zu", i, n, bad);
            free(neigh[i]);
        }
    }

    /* abrupt transitions: small <-> large in one step */
    struct { size_t a, b; } tr[] = {
        {16, 64 << 20}, {64 << 20, 16}, {24, 1 << 20}, {1 << 20, 24}, {100, 300000},
        {300000, 100}, {4096, 32 << 20}, {32 << 20, 4095}, {1, 2 << 20}, {2 << 20, 1},
        {200 * 1024, 300 * 1024}, {300 * 1024, 200 * 1024}, {1 << 20, (1 << 20) + 1},
        {(1 << 20) + 1, 1 << 20}, {100000, 100001}, {48, 47}, {47, 48}};
    for (size_t i = 0; i < sizeof tr / sizeof tr[0]; i++) {
        void *q = malloc(tr[i].a);
        REQUIRE(q != NULL, "malloc(%zu) failed", tr[i].a);
        hk_fill(q, tr[i].a, 700 + i);
        q = grow_check(q, tr[i].a, tr[i].b, 700 + i, 800 + i, "transition");
        q = grow_check(q, tr[i].b, tr[i].a, 800 + i, 900 + i, "transition back");
        free(q);
    }

    /* large blocks recycled by the allocator, then grown: realloc must not fail while memory is
     * available (e.g. when a reused block does not start a mapping of its own, so mremap cannot
     * move it, realloc has to fall back to allocate + copy + free) */
    {
        size_t bases[] = {256 << 10, 512 << 10, 1 << 20, 3 << 20};
        for (size_t bi = 0; bi < sizeof bases / sizeof bases[0]; bi++) {
            size_t n = bases[bi];
            for (int rep = 0; rep < 8; rep++) {
                void *a = malloc(n), *c = malloc(n);
                REQUIRE(a != NULL && c != NULL, "malloc(%zu) failed", n);
                hk_fill(a, n, 11);
                hk_fill(c, n, 12);
                void *blk[2] = {a, c};
                for (int k = 0; k < 2; k++) {
                    errno = 0;
                    void *q = p_realloc(blk[k], 2 * n + 1);
                    int e = errno;
                    CHECK(q != NULL, "recycled large block, round %d: realloc(%p, %zu -> %zu) returned NULL, errno %d",
                          rep, blk[k], n, 2 * n + 1, e);
                    if (!q) { /* the old block is still ours */
                        free(blk[k]);
                        continue;
                    }
                    size_t bad = hk_check(q, n, 11 + (uint64_t)k);
                    CHECK(bad == SIZE_MAX, "recycled large block: realloc(%zu -> %zu) lost contents at %zu", n,
                          2 * n + 1, bad);
                    free(q);
                }
            }
        }
    }

    /* realloc to the same size and to sizes within the same usable size keeps contents */
    for (size_t s = 1; s < 3000; s += 7) {
        void *q = malloc(s);
        REQUIRE(q != NULL, "malloc(%zu) failed", s);
        hk_fill(q, s, s);
        q = grow_check(q, s, s, s, s + 1, "same size");
        size_t u = malloc_usable_size(q);
        q = grow_check(q, s, u, s + 1, s + 2, "to usable size");
        free(q);
    }

    /* random realloc chains among 200 live blocks */
    enum { N = 200 };
    void *bp[N] = {0};
    size_t bs[N] = {0};
    uint64_t bseed[N] = {0};
    hk_rng r;
    hk_seed(&r, 7);
    for (int op = 0; op < 40000; op++) {
        int i = (int)hk_below(&r, N);
        size_t ns2 = hk_logsize(&r, 1, op % 50 == 0 ? (4 << 20) : (128 << 10));
        if (!bp[i]) {
            bp[i] = malloc(ns2);
            REQUIRE(bp[i] != NULL, "malloc failed");
            bs[i] = ns2;
            bseed[i] = (uint64_t)op * 31 + 1;
            hk_fill(bp[i], ns2, bseed[i]);
        } else if (op % 13 == 0) {
            size_t bad = hk_check(bp[i], bs[i], bseed[i]);
            CHECK(bad == SIZE_MAX, "random block damaged at %zu", bad);
            free(bp[i]);
            bp[i] = NULL;
        } else {
            uint64_t nsd = (uint64_t)op * 31 + 2;
            bp[i] = grow_check(bp[i], bs[i], ns2, bseed[i], nsd, "random");
            bs[i] = ns2;
            bseed[i] = nsd;
        }
    }
    for (int i = 0; i < N; i++)
        if (bp[i]) {
            size_t bad = hk_check(bp[i], bs[i], bseed[i]);
            CHECK(bad == SIZE_MAX, "random block damaged at %zu", bad);
            free(bp[i]);
        }
    return hk_done("realloc_semantics");
}
