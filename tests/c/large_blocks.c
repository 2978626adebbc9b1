/* Promise: large blocks (256 KiB - 64 MiB) are usable in full, do not overlap, keep their
 * contents across realloc growth and shrink, and are given back: 300 rounds of 32 MiB
 * malloc/free do not make the process grow. */
#include "hk_test.h"

typedef struct {
    unsigned char *p;
    size_t n;
    uint64_t seed;
} blk;

static void make(blk *b, size_t n, uint64_t seed, int how) {
    b->p = how == 0 ? malloc(n) : how == 1 ? calloc(1, n) : aligned_alloc(4096, n);
    REQUIRE(b->p != NULL, "allocation of %zu bytes failed (how %d)", n, how);
    CHECK(HK_ALIGNED(b->p, how == 2 ? 4096 : 16), "block of %zu bytes misaligned: %p", n, (void *)b->p);
    CHECK(malloc_usable_size(b->p) >= n, "usable size %zu < %zu", malloc_usable_size(b->p), n);
    if (how == 1) {
        /* calloc: spot-check zero at the edges and every 4 KiB */
        int nz = 0;
        for (size_t i = 0; i < n; i += 4096) nz |= b->p[i];
        nz |= b->p[n - 1];
        CHECK(nz == 0, "calloc(%zu) not zeroed", n);
    }
    b->n = n;
    b->seed = seed;
    b->p[0] = 0x11;
    b->p[n - 1] = 0x22;
    hk_fill_sparse(b->p, n, seed);
}

static void verify(blk *b, const char *what) {
    size_t bad = hk_check_sparse(b->p, b->n, b->seed);
    CHECK(bad == SIZE_MAX, "%s: block %p of %zu bytes corrupted at offset %zu", what, (void *)b->p, b->n, bad);
}

int main(void) {
    hk_rng r;
    hk_seed(&r, 2024);
    enum { LIVE = 4, ROUNDS = 300 };
    blk live[LIVE] = {{0}};
    for (int round = 0; round < ROUNDS; round++) {
        int i = (int)hk_below(&r, LIVE);
        if (live[i].p) {
            verify(&live[i], "random large");
            if (hk_below(&r, 3) == 0) {
                /* realloc in place of free: grow or shrink, prefix kept */
                size_t nn = hk_logsize(&r, 256 << 10, 64 << 20);
                unsigned char *q = realloc(live[i].p, nn);
                REQUIRE(q != NULL, "realloc(%zu -> %zu) failed", live[i].n, nn);
                size_t keep = nn < live[i].n ? nn : live[i].n;
                size_t bad = hk_check_sparse_prefix(q, live[i].n, keep, live[i].seed);
                CHECK(bad == SIZE_MAX, "realloc(%zu -> %zu) lost contents at %zu", live[i].n, nn, bad);
                live[i].p = q;
                live[i].n = nn;
                live[i].seed = (uint64_t)round;
                hk_fill_sparse(q, nn, (uint64_t)round);
                continue;
            }
            free(live[i].p);
            live[i].p = NULL;
        }
        size_t n = hk_logsize(&r, 256 << 10, 64 << 20);
        make(&live[i], n, (uint64_t)round, (int)hk_below(&r, 3));
        for (int j = 0; j < LIVE; j++)
            if (live[j].p && j != i) verify(&live[j], "neighbour large");
    }
    for (int i = 0; i < LIVE; i++)
        if (live[i].p) {
            verify(&live[i], "final large");
            free(live[i].p);
        }

    /* realloc growth of a large block, 256 KiB -> 64 MiB, contents fully checked */
    size_t n = 256 << 10;
    unsigned char *p = malloc(n);
    REQUIRE(p != NULL, "malloc failed");
    hk_fill(p, n, 1);
    void *blocker = malloc(300 << 10); /* sits after p, so some growth has to move */
    REQUIRE(blocker != NULL, "malloc failed");
    while (n < (64 << 20)) {
        size_t nn = n * 2 + 12345;
        if (nn > (64 << 20)) nn = 64 << 20;
        p = realloc(p, nn);
        REQUIRE(p != NULL, "realloc(%zu -> %zu) failed", n, nn);
        size_t bad = hk_check(p, n, 1);
        CHECK(bad == SIZE_MAX, "large realloc growth %zu -> %zu lost contents at offset %zu", n, nn, bad);
        hk_fill(p, nn, 1); /* same seed: the stream just gets longer */
        n = nn;
    }
    /* and back down */
    while (n > 4096) {
        size_t nn = n / 3;
        p = realloc(p, nn);
        REQUIRE(p != NULL, "realloc(%zu -> %zu) failed", n, nn);
        size_t bad = hk_check(p, nn, 1);
        CHECK(bad == SIZE_MAX, "large realloc shrink %zu -> %zu lost contents at offset %zu", n, nn, bad);
        n = nn;
    }
    free(p);
    free(blocker);

    /* exact page multiples and odd sizes */
    size_t odd[] = {256 << 10, (256 << 10) + 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, (8 << 20) + 4095, 64 << 20};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        blk b;
        make(&b, odd[i], 500 + i, 0);
        memset(b.p, 0x6B, odd[i]);
        for (size_t k = 0; k < odd[i]; k += 4093)
            if (b.p[k] != 0x6B) {
                CHECK(0, "byte %zu of %zu-byte block lost", k, odd[i]);
                break;
            }
        free(b.p);
    }

    /* memory is given back: 300 x (malloc 32 MiB, touch every page, free) */
    long vm0 = hk_vmsize(), rss0 = hk_rss();
    for (int i = 0; i < 300; i++) {
        size_t s = (32 << 20) + (size_t)(i % 7) * 4096;
        unsigned char *q = malloc(s);
        REQUIRE(q != NULL, "malloc(32 MiB) #%d failed", i);
        for (size_t k = 0; k < s; k += 4096) q[k] = (unsigned char)k;
        free(q);
    }
    long dvm = hk_vmsize() - vm0, drss = hk_rss() - rss0;
    printf("large_blocks: after 300 x 32 MiB: VmSize %+ld MiB, RSS %+ld MiB\n", dvm >> 20, drss >> 20);
    CHECK(dvm < (1L << 30), "address space grew by %ld MiB over 300 x 32 MiB malloc/free (leak?)", dvm >> 20);
    CHECK(drss < (256L << 20), "RSS grew by %ld MiB over 300 x 32 MiB malloc/free", drss >> 20);
    return hk_done("large_blocks");
}
