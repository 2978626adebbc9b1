/* Promise (glibc): posix_memalign returns EINVAL for an alignment that is not a power of two
 * or not a multiple of sizeof(void*), ENOMEM when it cannot allocate, and leaves *out untouched
 * on error; valid alignments 8 .. 2 MiB work for all sizes. aligned_alloc accepts a size that is
 * not a multiple of the alignment and really aligns 256/512/1024-byte blocks; memalign, valloc
 * (page aligned) and pvalloc (page aligned, rounded up to whole pages, overflow-safe) work. */
#include "hk_test.h"

static int (*volatile p_posix_memalign)(void **, size_t, size_t) = posix_memalign;
static void *(*volatile p_aligned_alloc)(size_t, size_t) = aligned_alloc;
static void *(*volatile p_memalign)(size_t, size_t) = memalign;
static void *(*volatile p_valloc)(size_t) = valloc;
static void *(*volatile p_pvalloc)(size_t) = pvalloc;

#define SENTINEL ((void *)(uintptr_t)0xDEADBEEF0BADF00DULL)

static void use_block(void *p, size_t size, size_t align, const char *fn) {
    CHECK(HK_ALIGNED(p, align), "%s(align %zu, size %zu) = %p is misaligned", fn, align, size, p);
    CHECK(HK_ALIGNED(p, 16), "%s(align %zu, size %zu) = %p is not even 16-byte aligned", fn, align, size, p);
    size_t u = malloc_usable_size(p);
    CHECK(u >= size, "%s(align %zu, size %zu): usable size %zu", fn, align, size, u);
    if (size) hk_fill(p, size, align ^ size);
}

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    void *out;
    int rc;

    /* EINVAL cases: *out untouched */
    size_t badal[] = {0, 1, 2, 3, 4, 5, 6, 7, 12, 24, 40, 48, 96, 100, 4095, 4097, 3 << 10, (1 << 20) + 8,
                      ((size_t)1 << 63) + 8, SIZE_MAX};
    for (size_t i = 0; i < sizeof badal / sizeof badal[0]; i++) {
        out = SENTINEL;
        errno = 0;
        rc = p_posix_memalign(&out, badal[i], 64);
        CHECK(rc == EINVAL, "posix_memalign(align %zu) returned %d, expected EINVAL", badal[i], rc);
        CHECK(out == SENTINEL, "posix_memalign(align %zu) failed but changed *out to %p", badal[i], out);
        if (rc == 0 && out != SENTINEL) free(out);
    }

    /* valid alignments x sizes; keep all blocks live, then verify and free */
    size_t sizes[] = {0, 1, 7, 100, 4096, 1 << 20};
    enum { NA = 19, NS = 6 };
    static void *live[NA][NS];
    for (int a = 0; a < NA; a++) {
        size_t align = (size_t)8 << a; /* 8 .. 2 MiB */
        for (int s = 0; s < NS; s++) {
            out = SENTINEL;
            rc = p_posix_memalign(&out, align, sizes[s]);
            CHECK(rc == 0, "posix_memalign(align %zu, size %zu) returned %d", align, sizes[s], rc);
            live[a][s] = NULL;
            if (rc != 0) continue;
            CHECK(out != SENTINEL && out != NULL, "posix_memalign(align %zu, size %zu) gave %p", align, sizes[s], out);
            if (out == SENTINEL || out == NULL) continue;
            use_block(out, sizes[s], align, "posix_memalign");
            live[a][s] = out;
        }
    }
    for (int a = 0; a < NA; a++)
        for (int s = 0; s < NS; s++)
            if (live[a][s]) {
                size_t align = (size_t)8 << a;
                size_t bad = sizes[s] ? hk_check(live[a][s], sizes[s], align ^ sizes[s]) : SIZE_MAX;
                CHECK(bad == SIZE_MAX, "posix_memalign block (align %zu, size %zu) damaged at %zu", align, sizes[s], bad);
                free(live[a][s]);
            }

    /* very large alignments: 4 MiB .. 64 MiB, small sizes and sizes just above the alignment */
    for (size_t align = 4 << 20; align <= (64 << 20); align *= 2) {
        size_t szs[] = {100, align + 1};
        for (int s = 0; s < 2; s++) {
            out = SENTINEL;
            rc = p_posix_memalign(&out, align, szs[s]);
            CHECK(rc == 0, "posix_memalign(align %zu MiB, size %zu) returned %d", align >> 20, szs[s], rc);
            if (rc != 0) continue;
            CHECK(HK_ALIGNED(out, align), "posix_memalign(align %zu MiB) = %p misaligned", align >> 20, out);
            CHECK(malloc_usable_size(out) >= szs[s], "posix_memalign(align %zu MiB, size %zu): usable %zu",
                  align >> 20, szs[s], malloc_usable_size(out));
            unsigned char *c = out;
            c[0] = 1;
            c[szs[s] - 1] = 2;
            free(out);
        }
        void *a = p_aligned_alloc(align, 4096);
        CHECK(a != NULL && HK_ALIGNED(a, align), "aligned_alloc(%zu MiB, 4096) = %p", align >> 20, a);
        free(a);
    }

    /* ENOMEM cases: *out untouched */
    struct { size_t align, size; } nomem[] = {
        {8, SIZE_MAX}, {64, SIZE_MAX}, {4096, SIZE_MAX - 4096}, {64, SIZE_MAX / 2 + 1},
        {16, SIZE_MAX - 16}, {1 << 20, SIZE_MAX - (1 << 20)}, {(size_t)1 << 62, 16}, {(size_t)1 << 63, 16}};
    /* (glibc answers ENOMEM for the two absurd alignments too; EINVAL is accepted there) */
    for (size_t i = 0; i < sizeof nomem / sizeof nomem[0]; i++) {
        out = SENTINEL;
        rc = p_posix_memalign(&out, nomem[i].align, nomem[i].size);
        int huge_align = nomem[i].align >= ((size_t)1 << 62);
        CHECK(rc == ENOMEM || (huge_align && rc == EINVAL),
              "posix_memalign(align %zu, size %zu) returned %d, expected ENOMEM", nomem[i].align,
              nomem[i].size, rc);
        CHECK(out == SENTINEL, "posix_memalign(align %zu, size %zu) failed but changed *out to %p",
              nomem[i].align, nomem[i].size, out);
        if (rc == 0 && out != SENTINEL) free(out);
    }

    /* aligned_alloc: size not a multiple of the alignment */
    struct { size_t align, size; } aa[] = {{64, 100}, {16, 3}, {8, 1}, {32, 33}, {128, 1}, {4096, 5000},
                                           {4096, 1}, {8192, 100}, {1 << 16, 70000}, {2 << 20, 100}};
    for (size_t i = 0; i < sizeof aa / sizeof aa[0]; i++) {
        void *p = p_aligned_alloc(aa[i].align, aa[i].size);
        CHECK(p != NULL, "aligned_alloc(%zu, %zu) returned NULL (errno %d)", aa[i].align, aa[i].size, errno);
        if (!p) continue;
        use_block(p, aa[i].size, aa[i].align, "aligned_alloc");
        free(p);
    }
    /* aligned_alloc(256,256), (512,512), (1024,1024): many live at once must all be aligned
     * (Debian's mimalloc 2.0.9 gets these wrong) */
    for (size_t al = 256; al <= 1024; al *= 2) {
        enum { K = 2000 };
        static void *ps[K];
        for (int i = 0; i < K; i++) {
            ps[i] = p_aligned_alloc(al, al);
            REQUIRE(ps[i] != NULL, "aligned_alloc(%zu, %zu) returned NULL", al, al);
            if (!HK_ALIGNED(ps[i], al)) {
                CHECK(0, "aligned_alloc(%zu, %zu) #%d = %p misaligned", al, al, i, ps[i]);
                break;
            }
            use_block(ps[i], al, al, "aligned_alloc");
        }
        for (int i = 0; i < K && ps[i]; i++) free(ps[i]);
        memset(ps, 0, sizeof ps);
    }
    /* interleave aligned blocks with plain small ones */
    for (int i = 0; i < 3000; i++) {
        size_t al = (size_t)16 << (i % 9);
        void *x = malloc((size_t)(i % 50) + 1);
        void *p = p_aligned_alloc(al, (size_t)(i % 300) + 1);
        REQUIRE(x && p, "allocation failed");
        use_block(p, (size_t)(i % 300) + 1, al, "aligned_alloc");
        free(x);
        free(p);
    }

    /* memalign: any power of two, including ones below 16 */
    for (size_t al = 1; al <= (4 << 20); al *= 2) {
        size_t szs[] = {1, 10, 100, 4096, 100000};
        for (int s = 0; s < 5; s++) {
            void *p = p_memalign(al, szs[s]);
            CHECK(p != NULL, "memalign(%zu, %zu) returned NULL", al, szs[s]);
            if (!p) continue;
            use_block(p, szs[s], al < 16 ? 16 : al, "memalign");
            free(p);
        }
    }

    /* valloc: page aligned */
    size_t vs[] = {0, 1, 100, 4095, 4096, 4097, 10000, 1 << 20, (1 << 20) + 3};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        void *p = p_valloc(vs[i]);
        CHECK(p != NULL, "valloc(%zu) returned NULL", vs[i]);
        if (!p) continue;
        use_block(p, vs[i], (size_t)page, "valloc");
        free(p);
    }

    /* pvalloc: page aligned and rounded up to a whole number of pages */
    size_t pv[] = {1, 100, 4095, 4096, 4097, 10000, 1 << 20, (1 << 20) + 3};
    for (size_t i = 0; i < sizeof pv / sizeof pv[0]; i++) {
        void *p = p_pvalloc(pv[i]);
        CHECK(p != NULL, "pvalloc(%zu) returned NULL", pv[i]);
        if (!p) continue;
        size_t rounded = (pv[i] + (size_t)page - 1) & ~((size_t)page - 1);
        use_block(p, rounded, (size_t)page, "pvalloc");
        CHECK(malloc_usable_size(p) >= rounded, "pvalloc(%zu): usable %zu < %zu (whole pages)", pv[i],
              malloc_usable_size(p), rounded);
        free(p);
    }
    /* pvalloc overflow: rounding SIZE_MAX up to a page must not wrap to 0 */
    size_t pvbad[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - (size_t)page + 2, SIZE_MAX / 2 + 1};
    for (size_t i = 0; i < sizeof pvbad / sizeof pvbad[0]; i++) {
        errno = 0;
        void *p = p_pvalloc(pvbad[i]);
        int e = errno;
        CHECK(p == NULL, "pvalloc(%zu) returned %p (rounding overflow?)", pvbad[i], p);
        CHECK(e == ENOMEM, "pvalloc(%zu): errno %d, expected ENOMEM", pvbad[i], e);
        if (p) free(p);
    }
    return hk_done("posix_memalign_rules");
}
