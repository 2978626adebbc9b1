/* Promise: the less common entry points work and belong to the same allocator as malloc:
 * cfree, C23 free_sized / free_aligned_sized (looked up with dlsym: glibc 2.36 lacks them, so
 * those parts are skipped when absent), reallocarray, and the __libc_malloc / __libc_free /
 * __libc_calloc / __libc_realloc / __libc_memalign / __libc_valloc / __libc_pvalloc aliases,
 * including blocks crossing between an alias and the plain function (malloc -> __libc_free ...). */
#include "hk_test.h" /* first: defines _GNU_SOURCE */

#include <dlfcn.h>

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void *(*memalign_fn)(size_t, size_t);
typedef void (*free_sized_fn)(void *, size_t);
typedef void (*free_aligned_sized_fn)(void *, size_t, size_t);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);

static const char *owner_of(void *fn) {
    Dl_info info;
    if (fn && dladdr(fn, &info) && info.dli_fname) return info.dli_fname;
    return "?";
}

static void *sym(const char *name) { return dlsym(RTLD_DEFAULT, name); }

/* A symbol that exists must come from the same object as malloc, or mixing them corrupts memory.
 * Returns 1 if usable. */
static int same_owner(const char *name, void *fn, const char *malloc_owner) {
    if (!fn) return 0;
    const char *o = owner_of(fn);
    if (strcmp(o, malloc_owner) != 0) {
        CHECK(0, "%s resolves to %s but malloc resolves to %s: blocks would cross allocators", name, o,
              malloc_owner);
        return 0;
    }
    return 1;
}

static void note(const char *what) { printf("note: %s\n", what); }

int main(void) {
    malloc_fn m = (malloc_fn)sym("malloc");
    REQUIRE(m != NULL, "dlsym(malloc) failed");
    char mown[4096];
    snprintf(mown, sizeof mown, "%s", owner_of((void *)m));
    printf("malloc comes from %s\n", mown);

    /* reallocarray */
    {
        int *a = reallocarray(NULL, 10, sizeof(int));
        REQUIRE(a != NULL, "reallocarray(NULL, 10, 4) returned NULL");
        CHECK(HK_ALIGNED(a, 16), "reallocarray result %p misaligned", (void *)a);
        for (int i = 0; i < 10; i++) a[i] = i * 3;
        a = reallocarray(a, 100000, sizeof(int));
        REQUIRE(a != NULL, "reallocarray(a, 100000, 4) returned NULL");
        for (int i = 0; i < 10; i++) CHECK(a[i] == i * 3, "reallocarray lost element %d", i);
        for (int i = 0; i < 100000; i++) a[i] = i;
        a = reallocarray(a, 5, sizeof(int));
        REQUIRE(a != NULL, "reallocarray(a, 5, 4) returned NULL");
        for (int i = 0; i < 5; i++) CHECK(a[i] == i, "reallocarray shrink lost element %d", i);
        free(a);
        void *z = reallocarray(NULL, 0, 8);
        CHECK(z != NULL, "reallocarray(NULL, 0, 8) returned NULL");
        free(z);
    }

    /* cfree */
    free_fn cf = (free_fn)sym("cfree");
    if (same_owner("cfree", (void *)cf, mown)) {
        for (size_t s = 1; s < 200000; s = s * 2 + 1) {
            void *p = malloc(s);
            REQUIRE(p != NULL, "malloc failed");
            memset(p, 1, s);
            cf(p);
        }
        cf(NULL);
        printf("cfree: ok\n");
    } else if (!cf) {
        note("cfree not exported (glibc keeps it as a compat symbol only): skipped");
    }

    /* free_sized / free_aligned_sized (C23) */
    free_sized_fn fs = (free_sized_fn)sym("free_sized");
    if (same_owner("free_sized", (void *)fs, mown)) {
        hk_rng r;
        hk_seed(&r, 5);
        for (int i = 0; i < 20000; i++) {
            size_t s = hk_logsize(&r, 1, i % 100 == 0 ? (4 << 20) : 8192);
            void *p = (i & 1) ? malloc(s) : calloc(1, s);
            REQUIRE(p != NULL, "malloc(%zu) failed", s);
            memset(p, 2, s);
            fs(p, s);
        }
        /* realloc'ed blocks are freed with their latest size */
        void *p = malloc(10);
        p = realloc(p, 5000);
        REQUIRE(p != NULL, "realloc failed");
        fs(p, 5000);
        fs(NULL, 0);
        fs(NULL, 123);
        printf("free_sized: ok\n");
    } else if (!fs) {
        note("free_sized not exported (glibc < 2.43): skipped");
    }
    free_aligned_sized_fn fas = (free_aligned_sized_fn)sym("free_aligned_sized");
    if (same_owner("free_aligned_sized", (void *)fas, mown)) {
        for (size_t al = 16; al <= (1 << 20); al *= 2) {
            size_t szs[] = {al, 2 * al, 3 * al, 100 * al};
            for (int k = 0; k < 4; k++) {
                if (szs[k] > (16 << 20)) continue;
                void *p = aligned_alloc(al, szs[k]);
                REQUIRE(p != NULL, "aligned_alloc(%zu, %zu) failed", al, szs[k]);
                CHECK(HK_ALIGNED(p, al), "aligned_alloc(%zu, %zu) = %p misaligned", al, szs[k], p);
                memset(p, 3, szs[k]);
                fas(p, al, szs[k]);
            }
        }
        fas(NULL, 64, 64);
        printf("free_aligned_sized: ok\n");
    } else if (!fas) {
        note("free_aligned_sized not exported (glibc < 2.43): skipped");
    }

    /* __libc_* aliases */
    malloc_fn lm = (malloc_fn)sym("__libc_malloc");
    free_fn lf = (free_fn)sym("__libc_free");
    calloc_fn lc = (calloc_fn)sym("__libc_calloc");
    realloc_fn lr = (realloc_fn)sym("__libc_realloc");
    memalign_fn lma = (memalign_fn)sym("__libc_memalign");
    malloc_fn lv = (malloc_fn)sym("__libc_valloc");
    malloc_fn lpv = (malloc_fn)sym("__libc_pvalloc");
    posix_memalign_fn lpm = (posix_memalign_fn)sym("__posix_memalign");
    struct { const char *n; void *f; } al[] = {{"__libc_malloc", (void *)lm}, {"__libc_free", (void *)lf},
                                              {"__libc_calloc", (void *)lc}, {"__libc_realloc", (void *)lr},
                                              {"__libc_memalign", (void *)lma}, {"__libc_valloc", (void *)lv},
                                              {"__libc_pvalloc", (void *)lpv}};
    int ok = 1;
    for (size_t i = 0; i < sizeof al / sizeof al[0]; i++) {
        if (!al[i].f) {
            CHECK(0, "%s cannot be found with dlsym", al[i].n);
            ok = 0;
        } else if (!same_owner(al[i].n, al[i].f, mown)) {
            ok = 0;
        }
    }
    if (ok) {
        long page = sysconf(_SC_PAGESIZE);
        for (size_t s = 1; s < (4 << 20); s = s * 3 + 1) {
            /* __libc_malloc -> free */
            unsigned char *p = lm(s);
            REQUIRE(p != NULL, "__libc_malloc(%zu) failed", s);
            CHECK(HK_ALIGNED(p, 16), "__libc_malloc(%zu) misaligned", s);
            hk_fill(p, s, s);
            /* __libc_realloc keeps contents */
            p = lr(p, s * 2);
            REQUIRE(p != NULL, "__libc_realloc failed");
            CHECK(hk_check(p, s, s) == SIZE_MAX, "__libc_realloc(%zu -> %zu) lost contents", s, s * 2);
            free(p);
            /* malloc -> __libc_free */
            p = malloc(s);
            REQUIRE(p != NULL, "malloc failed");
            memset(p, 9, s);
            lf(p);
            /* __libc_calloc zeroes */
            p = lc(s, 1);
            REQUIRE(p != NULL, "__libc_calloc failed");
            size_t nz = 0;
            for (size_t i = 0; i < s; i++) nz |= p[i];
            CHECK(nz == 0, "__libc_calloc(%zu, 1) not zeroed", s);
            memset(p, 0xAA, s);
            lf(p);
            /* __libc_memalign -> free */
            p = lma(256, s);
            REQUIRE(p != NULL, "__libc_memalign failed");
            CHECK(HK_ALIGNED(p, 256), "__libc_memalign(256, %zu) = %p misaligned", s, (void *)p);
            memset(p, 1, s);
            free(p);
            p = lv(s);
            REQUIRE(p != NULL, "__libc_valloc failed");
            CHECK(HK_ALIGNED(p, page), "__libc_valloc(%zu) = %p not page aligned", s, (void *)p);
            memset(p, 1, s);
            lf(p);
            p = lpv(s);
            REQUIRE(p != NULL, "__libc_pvalloc failed");
            CHECK(HK_ALIGNED(p, page), "__libc_pvalloc(%zu) = %p not page aligned", s, (void *)p);
            memset(p, 1, (s + (size_t)page - 1) & ~((size_t)page - 1));
            free(p);
        }
        lf(NULL);
        errno = 0;
        CHECK(lm(SIZE_MAX) == NULL && errno == ENOMEM, "__libc_malloc(SIZE_MAX) should fail with ENOMEM");
        printf("__libc_* aliases: ok\n");
    }
    if (lpm) {
        if (same_owner("__posix_memalign", (void *)lpm, mown)) {
            void *q = NULL;
            CHECK(lpm(&q, 4096, 100) == 0 && HK_ALIGNED(q, 4096), "__posix_memalign(4096, 100) failed");
            free(q);
            q = (void *)1;
            CHECK(lpm(&q, 24, 100) == EINVAL && q == (void *)1, "__posix_memalign(24, 100) should be EINVAL");
        }
    } else {
        note("__posix_memalign not exported (glibc does not export it): skipped");
    }
    return hk_done("free_sized_variants");
}
