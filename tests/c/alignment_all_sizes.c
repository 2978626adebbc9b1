/* Promise: every block from malloc/calloc/realloc is 16-byte aligned whatever its size,
 * malloc_usable_size(p) >= the size asked for, and the whole usable size can be written
 * without disturbing any other live block.
 * Sizes: every size 1..5000, powers of two (and +-1) up to 64 MiB, and random sizes. */
#include "hk_test.h"

#define MAXS 5000

typedef struct {
    void *p;
    size_t req, usable;
    uint64_t seed;
} blk;

static void take(blk *b, void *p, size_t req, uint64_t seed, const char *fn) {
    REQUIRE(p != NULL, "%s(%zu) returned NULL", fn, req);
    CHECK(HK_ALIGNED(p, 16), "%s(%zu) = %p is not 16-byte aligned", fn, req, p);
    size_t u = malloc_usable_size(p);
    CHECK(u >= req, "%s(%zu): malloc_usable_size = %zu < requested", fn, req, u);
    if (u < req) u = req;
    b->p = p;
    b->req = req;
    b->usable = u;
    b->seed = seed;
    hk_fill(p, u, seed); /* the whole usable size is ours to write */
}

static void verify_free(blk *b, const char *what) {
    size_t bad = hk_check(b->p, b->usable, b->seed);
    CHECK(bad == SIZE_MAX, "%s block %p (req %zu, usable %zu) corrupted at offset %zu", what,
          b->p, b->req, b->usable, bad);
    free(b->p);
    b->p = NULL;
}

int main(void) {
    static blk live[MAXS + 1];

    /* 1. malloc of every size 1..5000, all live at once, then verified */
    for (size_t s = 1; s <= MAXS; s++) take(&live[s], malloc(hk_opaque_size(s)), s, s, "malloc");
    for (size_t s = 1; s <= MAXS; s++) verify_free(&live[s], "malloc");

    /* 2. calloc of every size (as n x 1 and 1 x n alternately): zeroed, aligned */
    for (size_t s = 1; s <= MAXS; s++) {
        unsigned char *p = (s & 1) ? calloc(hk_opaque_size(s), 1) : calloc(1, hk_opaque_size(s));
        REQUIRE(p != NULL, "calloc(%zu) returned NULL", s);
        size_t nz = 0;
        for (size_t i = 0; i < s; i++) nz |= p[i];
        CHECK(nz == 0, "calloc(%zu) = %p returned non-zero memory", s, (void *)p);
        take(&live[s], p, s, s * 7 + 1, "calloc");
    }
    for (size_t s = 1; s <= MAXS; s++) verify_free(&live[s], "calloc");

    /* 3. realloc: grow a half-size block to every size; prefix kept, aligned */
    for (size_t s = 1; s <= MAXS; s++) {
        size_t h = s / 2 + 1;
        void *p = malloc(h);
        REQUIRE(p != NULL, "malloc(%zu) failed", h);
        hk_fill(p, h, s * 13);
        void *q = realloc(p, hk_opaque_size(s));
        REQUIRE(q != NULL, "realloc(%zu -> %zu) returned NULL", h, s);
        size_t keep = h < s ? h : s;
        size_t bad = hk_check(q, keep, s * 13);
        CHECK(bad == SIZE_MAX, "realloc(%zu -> %zu) lost contents at offset %zu", h, s, bad);
        take(&live[s], q, s, s * 11 + 3, "realloc");
    }
    for (size_t s = 1; s <= MAXS; s++) verify_free(&live[s], "realloc");

    /* 4. powers of two and their neighbours up to 64 MiB.  Up to 1 MiB all stay live; above,
     *    each block is verified after the next one was written, then freed. */
    static blk pw[3 * 27];
    int npw = 0;
    blk prev = {0};
    for (int k = 0; k <= 26; k++) {
        size_t base = (size_t)1 << k;
        size_t cands[3] = {base - 1, base, base + 1};
        for (int j = 0; j < 3; j++) {
            size_t s = cands[j];
            if (s == 0) continue;
            blk b;
            take(&b, malloc(hk_opaque_size(s)), s, 1000 + (uint64_t)k * 3 + j, "malloc");
            if (k <= 20) {
                pw[npw++] = b;
            } else {
                if (prev.p) verify_free(&prev, "large power-of-two");
                prev = b;
            }
        }
    }
    if (prev.p) verify_free(&prev, "large power-of-two");
    for (int i = 0; i < npw; i++) verify_free(&pw[i], "power-of-two");

    /* 5. random sizes, 1000 live slots, 30000 replacements; mostly small, some up to 1 MiB */
    enum { SLOTS = 1000, OPS = 30000 };
    static blk slots[SLOTS];
    hk_rng r;
    hk_seed(&r, 42);
    for (int op = 0; op < OPS; op++) {
        int i = (int)hk_below(&r, SLOTS);
        if (slots[i].p) verify_free(&slots[i], "random");
        size_t hi = (op % 97 == 0) ? (1 << 20) : (op % 7 == 0) ? 65536 : 1024;
        size_t s = hk_logsize(&r, 1, hi);
        int how = (int)hk_below(&r, 3);
        if (how == 0) {
            take(&slots[i], malloc(s), s, (uint64_t)op, "malloc");
        } else if (how == 1) {
            take(&slots[i], calloc(1, s), s, (uint64_t)op, "calloc");
        } else {
            void *p = malloc(1 + s / 3);
            REQUIRE(p != NULL, "malloc failed");
            take(&slots[i], realloc(p, s), s, (uint64_t)op, "realloc");
        }
    }
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].p) verify_free(&slots[i], "random");

    return hk_done("alignment_all_sizes");
}
