/* Under an address-space limit (RLIMIT_AS, as containers and batch systems set it), memory freed as
 * large blocks serves small blocks again: fill the address space with 8 MiB blocks until malloc fails
 * with ENOMEM, free them all, then allocate at least 90% of that volume in blocks of about 16 KiB. An
 * allocator that keeps freed large blocks cached must give them back when a mapping fails.
 *
 * The limit has to be in place before the allocator starts (hakmem sizes its address-space
 * reservation by it), so the program sets it and runs itself again. */
#include "hk_test.h"
#include <sys/resource.h>

#define LIMIT (512ul << 20)
#define BIG (8ul << 20)
#define SMALL 16000ul

static void *big[256];
static void *small[65536];

int main(int argc, char **argv) {
    (void)argc;
    if (!hk_rerun_under_as_limit(argv, LIMIT)) {
        printf("skip: the hard address-space limit is below %lu MiB\n", LIMIT >> 20);
        return 0;
    }
    size_t base = hk_vm_bytes();
    size_t n = 0;
    while (n < sizeof big / sizeof big[0]) {
        errno = 0;
        void *p = malloc(BIG);
        if (!p) {
            CHECK(errno == ENOMEM, "malloc(8 MiB) failed with errno %d, not ENOMEM", errno);
            break;
        }
        memset(p, 0x5a, 4096);
        big[n++] = p;
    }
    size_t volume = n * BIG;
    CHECK(volume >= (LIMIT - base) / 2, "only %zu MiB of 8 MiB blocks under a %lu MiB limit (%zu MiB in use before)",
          volume >> 20, LIMIT >> 20, base >> 20);
    for (size_t i = 0; i < n; i++) free(big[i]);

    size_t got = 0, k = 0;
    while (got < volume * 9 / 10 && k < sizeof small / sizeof small[0]) {
        char *p = malloc(SMALL);
        if (!p) break;
        p[0] = 1;
        p[SMALL - 1] = 2;
        small[k++] = p;
        got += SMALL;
    }
    CHECK(got >= volume * 9 / 10, "after freeing %zu MiB of 8 MiB blocks, only %zu MiB of 16000-byte blocks",
          volume >> 20, got >> 20);
    for (size_t i = 0; i < k; i++) free(small[i]);
    printf("big %zu MiB, then small %zu MiB under a %lu MiB address-space limit\n", volume >> 20, got >> 20,
           LIMIT >> 20);
    return hk_nfail != 0;
}
