/* Promise: under a long random mix of every entry point (malloc, calloc, realloc, free,
 * posix_memalign, aligned_alloc, memalign, valloc, reallocarray, malloc_usable_size), every live
 * block keeps exactly the contents written into it (a shadow record per block: size, seed) until
 * it is freed; nothing overlaps; alignment and usable size always hold. 400000 operations over
 * 2000 slots, sizes 0 B - 256 KiB plus a few 1-4 MiB, alignments up to 1 MiB. */
#include "hk_test.h"

#define SLOTS 2000
#define OPS 400000

typedef struct {
    unsigned char *p;
    size_t n;
    uint64_t seed;
} blk;
static blk b[SLOTS];

static void verify(blk *x, const char *when) {
    size_t bad = hk_check_sparse(x->p, x->n, x->seed);
    CHECK(bad == SIZE_MAX, "%s: block %p (%zu bytes, seed %llu) differs at offset %zu", when, (void *)x->p, x->n,
          (unsigned long long)x->seed, bad);
}

int main(void) {
    hk_rng r;
    hk_seed(&r, 123456);
    long page = sysconf(_SC_PAGESIZE);
    for (uint64_t op = 1; op <= OPS; op++) {
        int i = (int)hk_below(&r, SLOTS);
        blk *x = &b[i];
        size_t n = hk_below(&r, 5000) == 0 ? hk_logsize(&r, 1 << 20, 4 << 20)
                                          : hk_below(&r, 50) == 0 ? hk_logsize(&r, 4096, 256 << 10)
                                                                 : hk_logsize(&r, 1, 2048) - (hk_below(&r, 64) == 0);
        int kind = (int)hk_below(&r, 16);
        if (x->p && kind < 6) { /* realloc (or reallocarray) keeps the prefix */
            verify(x, "before realloc");
            unsigned char *q = kind == 0 ? reallocarray(x->p, n ? n : 1, 1) : realloc(x->p, n);
            if (n == 0 && kind != 0) { /* realloc(p, 0) freed it */
                CHECK(q == NULL, "realloc(p, 0) returned %p", (void *)q);
                x->p = NULL;
                continue;
            }
            if (n == 0) n = 1;
            if (q == NULL) { /* a failed realloc leaves the old block as it was */
                CHECK(0, "op %llu: realloc(%p, %zu -> %zu) failed, errno %d", (unsigned long long)op,
                      (void *)x->p, x->n, n, errno);
                verify(x, "after a failed realloc");
                continue;
            }
            size_t keep = n < x->n ? n : x->n;
            size_t bad = hk_check_sparse_prefix(q, x->n, keep, x->seed);
            CHECK(bad == SIZE_MAX, "realloc(%zu -> %zu) lost contents at offset %zu", x->n, n, bad);
            x->p = q;
        } else {
            if (x->p) {
                verify(x, "before free");
                free(x->p);
                x->p = NULL;
            }
            if (kind == 6) continue; /* leave the slot empty */
            size_t al = 16;
            switch (kind) {
            case 7: x->p = calloc(1, n); break;
            case 8: al = (size_t)16 << hk_below(&r, hk_below(&r, 8) ? 9 : 17); /* up to 1 MiB */
                x->p = aligned_alloc(al, n); break;
            case 9: al = (size_t)8 << hk_below(&r, 12);
                if (posix_memalign((void **)&x->p, al, n) != 0) x->p = NULL;
                break;
            case 10: al = (size_t)1 << hk_below(&r, 13); x->p = memalign(al, n); break;
            case 11: al = (size_t)page; x->p = valloc(n); break;
            default: x->p = malloc(n); break;
            }
            REQUIRE(x->p != NULL, "allocation kind %d of %zu bytes (align %zu) failed", kind, n, al);
            CHECK(HK_ALIGNED(x->p, al < 16 ? 16 : al), "kind %d: %p not aligned to %zu", kind, (void *)x->p, al);
            if (kind == 7) {
                size_t nz = 0;
                for (size_t k = 0; k < n; k += (n > 65536 ? 61 : 1)) nz |= x->p[k];
                CHECK(nz == 0, "calloc(%zu) not zeroed", n);
            }
        }
        size_t u = malloc_usable_size(x->p);
        CHECK(u >= n, "usable size %zu < %zu", u, n);
        x->n = n;
        x->seed = op;
        hk_fill_sparse(x->p, n, op);
        if (op % 50000 == 0)
            for (int k = 0; k < SLOTS; k++)
                if (b[k].p) verify(&b[k], "periodic sweep");
    }
    for (int k = 0; k < SLOTS; k++)
        if (b[k].p) {
            verify(&b[k], "final sweep");
            free(b[k].p);
        }
    return hk_done("random_ops_shadow");
}
