/* Promise (memory use): a huge calloc does not touch memory it does not need to, because fresh
 * pages from the kernel are already zero: calloc(1 GiB) must be zero where sampled and must not
 * make RSS grow by anything near 1 GiB, (a) in a fresh process, (b) after other large blocks
 * were allocated, shrunk with realloc and freed (so the allocator has recycled address space
 * and cached blocks around), (c) after a previous dirtied calloc(1 GiB) was freed. glibc takes
 * such blocks straight from mmap and does not clear them. */
#include "hk_test.h"

static void huge_calloc(const char *when) {
    size_t n = (size_t)1 << 30;
    long r0 = hk_rss();
    unsigned char *p = calloc(1, n);
    if (!p) {
        printf("note: calloc(1 GiB) failed %s (address space limit?): skipped\n", when);
        return;
    }
    long r1 = hk_rss();
    int nz = 0;
    for (size_t off = 0; off < n; off += 64 * HK_MiB + 4096 * 3) nz |= p[off];
    nz |= p[n - 1];
    nz |= p[n / 2];
    CHECK(nz == 0, "calloc(1 GiB) %s: not zeroed", when);
    printf("calloc_large_untouched: calloc(1 GiB) %s: RSS +%ld MiB\n", when, (r1 - r0) >> 20);
    CHECK(r1 - r0 < (long)(256 * HK_MiB), "calloc(1 GiB) %s made RSS grow by %ld MiB (clears fresh pages?)",
          when, (r1 - r0) >> 20);
    memset(p, 0x77, 16 * HK_MiB); /* dirty the start: a reused block must be zeroed again */
    free(p);
}

int main(void) {
    huge_calloc("in a fresh process");
    enum { N = 24 };
    void *ps[N];
    for (int i = 0; i < N; i++) {
        ps[i] = malloc(32 * HK_MiB);
        REQUIRE(ps[i] != NULL, "malloc(32 MiB) failed");
        memset(ps[i], 0x5A, 32 * HK_MiB);
        ps[i] = realloc(ps[i], HK_MiB);
        REQUIRE(ps[i] != NULL, "realloc(32 MiB -> 1 MiB) failed");
    }
    for (int i = 0; i < N; i++) free(ps[i]);
    huge_calloc("after 24 large blocks were shrunk and freed");
    huge_calloc("after a dirtied 1 GiB calloc was freed");
    return hk_done("calloc_large_untouched");
}
