/* Promise (memory use): shrinking a large block with realloc gives the tail back.
 * 24 blocks of 32 MiB are filled, shrunk to 1 MiB each and kept: RSS may not stay near 768 MiB
 * (glibc shrinks the mapping with mremap). */
#include "hk_test.h"

int main(void) {
    enum { N = 24 };
    void *ps[N];
    long rss0 = hk_rss();
    for (int i = 0; i < N; i++) {
        ps[i] = malloc(32 * HK_MiB);
        REQUIRE(ps[i] != NULL, "malloc(32 MiB) failed");
        memset(ps[i], 0x5A, 32 * HK_MiB);
        ps[i] = realloc(ps[i], HK_MiB);
        REQUIRE(ps[i] != NULL, "realloc(32 MiB -> 1 MiB) failed");
        unsigned char *c = ps[i];
        CHECK(c[0] == 0x5A && c[HK_MiB - 1] == 0x5A, "realloc shrink lost contents");
    }
    long grew = hk_rss() - rss0;
    printf("large_realloc_shrink_releases: RSS +%ld MiB with %d shrunk blocks live (would be %d MiB unreleased)\n",
           grew >> 20, N, N * 32);
    CHECK(grew < (long)(200 * HK_MiB), "RSS grew by %ld MiB: shrinking realloc of a 32 MiB block keeps its tail",
          grew >> 20);
    for (int i = 0; i < N; i++) free(ps[i]);

    return hk_done("large_realloc_shrink_releases");
}
