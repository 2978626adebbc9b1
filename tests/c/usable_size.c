/* Promise: malloc_usable_size(NULL) == 0; for every block it is >= the size asked for
 * (malloc, calloc, realloc up and down, memalign, posix_memalign, aligned_alloc, valloc),
 * it is stable (same answer twice), and the whole usable size is writable. */
#include "hk_test.h"

static size_t (*volatile p_mus)(void *) = malloc_usable_size;

static void check_block(void *p, size_t req, const char *fn) {
    REQUIRE(p != NULL, "%s(%zu) returned NULL", fn, req);
    size_t u = p_mus(p);
    CHECK(u >= req, "%s(%zu): malloc_usable_size = %zu", fn, req, u);
    CHECK(p_mus(p) == u, "%s(%zu): malloc_usable_size not stable", fn, req);
    memset(p, 0x11, u);
}

int main(void) {
    CHECK(p_mus(NULL) == 0, "malloc_usable_size(NULL) = %zu", p_mus(NULL));

    for (size_t s = 0; s <= 20000; s += (s < 4096 ? 1 : 13)) {
        void *p = malloc(s);
        check_block(p, s, "malloc");
        free(p);
    }
    for (int b = 0; b <= 26; b++) {
        size_t base = (size_t)1 << b;
        for (int d = -1; d <= 1; d++) {
            size_t s = base + (size_t)d;
            void *p = malloc(s);
            check_block(p, s, "malloc");
            free(p);
            p = calloc(1, s);
            check_block(p, s, "calloc");
            free(p);
        }
    }
    /* realloc up and down */
    void *p = malloc(10);
    for (size_t s = 10; s < (8 << 20); s = s * 3 / 2 + 1) {
        p = realloc(p, s);
        check_block(p, s, "realloc(grow)");
    }
    for (size_t s = 8 << 20; s > 1; s = s / 3) {
        p = realloc(p, s);
        check_block(p, s, "realloc(shrink)");
    }
    free(p);
    /* aligned allocations */
    for (size_t al = 16; al <= (1 << 20); al *= 4) {
        size_t szs[] = {1, 17, 1000, 65536, 300000};
        for (int i = 0; i < 5; i++) {
            void *q = memalign(al, szs[i]);
            check_block(q, szs[i], "memalign");
            free(q);
            q = NULL;
            CHECK(posix_memalign(&q, al, szs[i]) == 0, "posix_memalign(%zu, %zu) failed", al, szs[i]);
            check_block(q, szs[i], "posix_memalign");
            free(q);
            q = aligned_alloc(al, szs[i]);
            check_block(q, szs[i], "aligned_alloc");
            free(q);
        }
    }
    void *v = valloc(5000);
    check_block(v, 5000, "valloc");
    free(v);
    /* many live blocks at once: usable sizes of different blocks never overlap */
    enum { N = 3000 };
    static char *ps[N];
    static size_t us[N];
    hk_rng r;
    hk_seed(&r, 11);
    for (int i = 0; i < N; i++) {
        size_t s = hk_logsize(&r, 1, 50000);
        ps[i] = malloc(s);
        check_block(ps[i], s, "malloc");
        us[i] = p_mus(ps[i]);
        memset(ps[i], (unsigned char)i, us[i]);
    }
    for (int i = 0; i < N; i++) {
        size_t bad = SIZE_MAX;
        for (size_t j = 0; j < us[i]; j++)
            if ((unsigned char)ps[i][j] != (unsigned char)i) {
                bad = j;
                break;
            }
        CHECK(bad == SIZE_MAX, "block %d: usable byte %zu of %zu overwritten by another block", i, bad, us[i]);
        free(ps[i]);
    }
    return hk_done("usable_size");
}
