/* Promise: a program built with `pkg-config --cflags --libs hakmem` (linked with -lhakmem, not
 * preloaded) gets hakmem's malloc, its extension API, and glibc's introspection API reporting
 * hakmem's figures. */
#include <hakmem.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) do { printf("linked: FAIL: " __VA_ARGS__); printf("\n"); return 1; } while (0)

int main(void) {
    enum { SMALL = 5000, BIG = 5 };
    static void *small[SMALL], *big[BIG];
    for (int i = 0; i < SMALL; i++) {
        small[i] = malloc(1000);
        if (!small[i]) FAIL("malloc");
        memset(small[i], i, 1000);
    }
    for (int i = 0; i < BIG; i++) {
        big[i] = malloc(1 << 20);
        if (!big[i]) FAIL("malloc");
        memset(big[i], i, 1 << 20);
    }
    struct hakmem_stats st;
    if (hakmem_stats(&st) != 0 || st.allocs < SMALL + BIG)
        FAIL("hakmem_stats counts %llu allocations", (unsigned long long)st.allocs);
    struct mallinfo2 mi = mallinfo2();
    size_t in_use = mi.uordblks + mi.hblkhd;
    if (in_use < 10000000)
        FAIL("mallinfo2 reports %zu bytes in use (uordblks %zu + hblkhd %zu) with 10 MB live",
             in_use, mi.uordblks, mi.hblkhd);
    for (int i = 0; i < SMALL; i++) free(small[i]);
    for (int i = 0; i < BIG; i++) free(big[i]);
    struct mallinfo2 after = mallinfo2();
    if (after.uordblks + after.hblkhd > in_use - 9000000)
        FAIL("mallinfo2 still reports %zu bytes in use after freeing 10 MB",
             after.uordblks + after.hblkhd);
    printf("linked: ok: hakmem %s, %llu allocations, mallinfo2 in use %zu bytes with 10 MB live\n",
           hakmem_version(), (unsigned long long)st.allocs, in_use);
    return 0;
}
