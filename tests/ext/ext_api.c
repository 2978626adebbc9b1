/* Compiled against include/hakmem.h and linked with -lhakmem (not preloaded): the extension API
 * works and reports this program's own allocations. */
#include "hakmem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "ext_api: FAILED %s (line %d)\n", #c, __LINE__); return 1; } } while (0)

int main(void)
{
    const char *v = hakmem_version();
    CHECK(v != NULL && strchr(v, '.') != NULL);
    struct hakmem_stats before, after;
    CHECK(hakmem_stats(NULL) == -1);
    CHECK(hakmem_stats(&before) == 0);
    enum { N = 10000 };
    static void *p[N];
    for (int i = 0; i < N; i++)
        p[i] = malloc(32 + i % 500);
    for (int i = 0; i < N; i++)
        free(p[i]);
    char *volatile big = malloc(8 << 20); /* volatile: the compiler may not elide the pair */
    CHECK(big != NULL);
    big[0] = 1;
    free(big);
    CHECK(hakmem_stats(&after) == 0);
    CHECK(after.allocs >= before.allocs + N + 1);
    CHECK(after.frees >= before.frees + N + 1);
    CHECK(after.mmap_calls >= 1 && after.peak_mapped_bytes >= (8u << 20));
    CHECK(after.peak_rss_bytes > 0);
    size_t calls = hakmem_trim();
    struct hakmem_stats trimmed;
    CHECK(hakmem_stats(&trimmed) == 0);
    CHECK(calls > 0);
    /* The freed 8 MiB block sat in the large-block cache: trimming must have unmapped it. */
    CHECK(trimmed.mapped_bytes + (8u << 20) <= after.mapped_bytes);
    hakmem_print_stats();
    printf("ext_api: ok (hakmem %s, %llu allocs)\n", v, (unsigned long long)after.allocs);
    return 0;
}
