/* Promise: every aligned entry point answers absurd alignments and sizes as glibc 2.36 does.
 * memalign / __libc_memalign: an alignment above 2^63 (not a power of two, and none is above
 * it) fails with EINVAL; any other that cannot be met (2^47 and up: no such block fits in the
 * address space; non-powers of two round up, e.g. 2^62 + 1 to 2^63) with ENOMEM, as does an
 * absurd size at any alignment. posix_memalign / __posix_memalign: EINVAL for a non-power of two
 * (*out untouched), ENOMEM for a power of two that cannot be met. aligned_alloc: ENOMEM for a
 * power of two that cannot be met, EINVAL above 2^63 (a non-power of two below that fails
 * with EINVAL, as in glibc 2.38, or ENOMEM, as in 2.36). valloc, pvalloc and their __libc_
 * names: ENOMEM for absurd sizes. */
#include "hk_test.h"

#include <dlfcn.h>

typedef void *(*memalign_fn)(size_t, size_t);
typedef void *(*alloc_fn)(size_t);
typedef int (*posix_fn)(void **, size_t, size_t);

#define P2(k) ((size_t)1 << (k))
#define SENTINEL ((void *)(uintptr_t)0x5E471E1ULL)

static void *sym(const char *name) {
    void *f = dlsym(RTLD_DEFAULT, name);
    REQUIRE(f != NULL, "%s not found", name);
    return f;
}

/* want: the errno expected with a NULL result; want2: another accepted one (or 0) */
static void expect(void *p, int e, int want, int want2, const char *fn, size_t a, size_t n) {
    CHECK(p == NULL, "%s(%#zx, %#zx) returned %p", fn, a, n, p);
    CHECK(e == want || (want2 && e == want2), "%s(%#zx, %#zx): errno %s, expected %s", fn, a, n, strerrorname_np(e),
          strerrorname_np(want));
    if (p) free(p);
}

int main(void) {
    memalign_fn mem[2] = {(memalign_fn)sym("memalign"), (memalign_fn)sym("__libc_memalign")};
    const char *memname[2] = {"memalign", "__libc_memalign"};
    memalign_fn aligned = (memalign_fn)sym("aligned_alloc");
    /* glibc has no __posix_memalign; hakmem exports it as an alias */
    posix_fn pm[2] = {(posix_fn)sym("posix_memalign"), (posix_fn)dlsym(RTLD_DEFAULT, "__posix_memalign")};
    if (!pm[1]) pm[1] = pm[0];
    const char *pmname[2] = {"posix_memalign", "__posix_memalign"};
    alloc_fn page[4] = {(alloc_fn)sym("valloc"), (alloc_fn)sym("pvalloc"), (alloc_fn)sym("__libc_valloc"),
                        (alloc_fn)sym("__libc_pvalloc")};
    const char *pagename[4] = {"valloc", "pvalloc", "__libc_valloc", "__libc_pvalloc"};

    size_t sizes[] = {0, 1, 16, 4096, P2(48), SIZE_MAX / 2, SIZE_MAX - 4096, SIZE_MAX};
    size_t nomem_pow2[] = {P2(47), P2(48), P2(62), P2(63)};
    size_t nomem_round[] = {P2(47) + 1, P2(62) + 1, P2(63) - 1}; /* round up to a power of two */
    size_t einval[] = {P2(63) + 1, P2(63) + P2(62), SIZE_MAX - 1, SIZE_MAX};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        for (int f = 0; f < 2; f++) {
            for (size_t i = 0; i < 4; i++) {
                errno = 0;
                void *p = mem[f](nomem_pow2[i], n);
                expect(p, errno, ENOMEM, 0, memname[f], nomem_pow2[i], n);
            }
            for (size_t i = 0; i < 3; i++) {
                errno = 0;
                void *p = mem[f](nomem_round[i], n);
                expect(p, errno, ENOMEM, 0, memname[f], nomem_round[i], n);
            }
            for (size_t i = 0; i < 4; i++) {
                errno = 0;
                void *p = mem[f](einval[i], n);
                expect(p, errno, EINVAL, 0, memname[f], einval[i], n);
            }
            /* posix_memalign: powers of two that cannot be met, and non-powers of two */
            for (size_t i = 0; i < 4; i++) {
                void *out = SENTINEL;
                int rc = pm[f](&out, nomem_pow2[i], n);
                CHECK(rc == ENOMEM && out == SENTINEL, "%s(%#zx, %#zx) returned %d, *out %p", pmname[f],
                      nomem_pow2[i], n, rc, out);
            }
            for (size_t i = 0; i < 3; i++) {
                void *out = SENTINEL;
                int rc = pm[f](&out, i < 2 ? nomem_round[i] + 7 : einval[i], n);
                CHECK(rc == EINVAL && out == SENTINEL, "%s(not a power of two, %#zx) returned %d", pmname[f], n, rc);
            }
        }
        for (size_t i = 0; i < 4; i++) {
            errno = 0;
            void *p = aligned(nomem_pow2[i], n);
            expect(p, errno, ENOMEM, 0, "aligned_alloc", nomem_pow2[i], n);
            errno = 0;
            p = aligned(einval[i], n);
            expect(p, errno, EINVAL, 0, "aligned_alloc", einval[i], n);
        }
        for (size_t i = 0; i < 3; i++) {
            errno = 0;
            void *p = aligned(nomem_round[i], n);
            expect(p, errno, EINVAL, ENOMEM, "aligned_alloc", nomem_round[i], n);
        }
    }
    /* absurd sizes at ordinary alignments */
    size_t bad[] = {P2(48), SIZE_MAX / 2, SIZE_MAX / 2 + 1, SIZE_MAX - 4096, SIZE_MAX - 1, SIZE_MAX};
    size_t ok_align[] = {1, 8, 16, 64, 4096, P2(21)};
    for (size_t s = 0; s < sizeof bad / sizeof bad[0]; s++) {
        size_t n = bad[s];
        for (size_t i = 0; i < sizeof ok_align / sizeof ok_align[0]; i++) {
            for (int f = 0; f < 2; f++) {
                errno = 0;
                void *p = mem[f](ok_align[i], n);
                expect(p, errno, ENOMEM, 0, memname[f], ok_align[i], n);
                if (ok_align[i] >= sizeof(void *)) {
                    void *out = SENTINEL;
                    int rc = pm[f](&out, ok_align[i], n);
                    CHECK(rc == ENOMEM && out == SENTINEL, "%s(%#zx, %#zx) returned %d", pmname[f], ok_align[i], n, rc);
                }
            }
            errno = 0;
            void *p = aligned(ok_align[i], n);
            expect(p, errno, ENOMEM, 0, "aligned_alloc", ok_align[i], n);
        }
        for (int f = 0; f < 4; f++) {
            errno = 0;
            void *p = page[f](n);
            expect(p, errno, ENOMEM, 0, pagename[f], 0, n);
        }
    }
    /* and the allocator still works */
    void *p = mem[0](64, 100);
    REQUIRE(p != NULL && HK_ALIGNED(p, 64), "memalign(64, 100) after the failures: %p", p);
    free(p);
    return hk_done("aligned_absurd_like_glibc");
}
