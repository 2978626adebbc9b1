/* Under an address-space limit (RLIMIT_AS, `ulimit -v`, as containers and batch systems set it),
 * address space freed as small blocks serves large blocks again, and the reverse:
 *   1. 16-byte blocks until the process uses 80% of the limit; all freed;
 *   2. as many bytes in 8 MiB blocks must succeed, and more of them until malloc fails, with
 *      ENOMEM, within 10% of the limit; all freed;
 *   3. as many 16-byte blocks as in step 1 must succeed again, and more until malloc fails, with
 *      ENOMEM, within 10% of the limit.
 * Nothing may abort. An allocator that keeps the address space of freed small blocks (hakmem's
 * SuperSlabs before they were unmapped) fails step 2; one that keeps freed large blocks cached
 * fails step 3 unless it gives them back when a mapping fails.
 *
 * The limit has to be in place before the allocator starts (hakmem sizes its address-space
 * reservation by it), so the program sets it and runs itself again. The small blocks are chained
 * through their first word, so the test needs no array of pointers (which would take address
 * space of its own). */
#include "hk_test.h"
#include <sys/resource.h>

#define LIMIT (256ul << 20)
#define BIG (8ul << 20)
#define SMALL 16ul

struct node {
    struct node *next;
};

static void *big[LIMIT / BIG + 8];

/* 16-byte blocks chained from *head: `at_least` of them, then on until the process uses `stop`
 * bytes of address space (checked every 64 Ki blocks) or malloc fails; the count made. */
static size_t fill_small(struct node **head, size_t at_least, size_t stop, int *failed) {
    size_t n = 0;
    *failed = 0;
    for (;;) {
        if (n >= at_least && n % 65536 == 0 && hk_vm_bytes() >= stop) return n;
        errno = 0;
        struct node *p = malloc(SMALL);
        if (!p) {
            *failed = errno == ENOMEM ? 1 : -1;
            return n;
        }
        p->next = *head;
        *head = p;
        n++;
    }
}

static void free_small(struct node *head) {
    while (head) {
        struct node *next = head->next;
        free(head);
        head = next;
    }
}

int main(int argc, char **argv) {
    (void)argc;
    if (!hk_rerun_under_as_limit(argv, LIMIT)) {
        printf("skip: the hard address-space limit is below %lu MiB\n", LIMIT >> 20);
        return 0;
    }
    printf("under a %lu MiB address-space limit, %zu MiB in use at the start\n", LIMIT >> 20, hk_vm_bytes() >> 20);
    fflush(stdout);

    /* 1. small blocks to 80% of the limit */
    struct node *head = NULL;
    int failed;
    size_t n_small = fill_small(&head, 0, LIMIT / 10 * 8, &failed);
    CHECK(!failed, "malloc(16) failed (errno %d) after %zu MiB of blocks, before 80%% of the limit", errno,
          n_small * SMALL >> 20);
    size_t vm_small = hk_vm_bytes();
    free_small(head);
    head = NULL;

    /* 2. the same bytes in 8 MiB blocks, then on to the limit */
    size_t need = (n_small * SMALL + BIG - 1) / BIG, n_big = 0;
    int big_errno = 0;
    while (n_big < sizeof big / sizeof big[0]) {
        errno = 0;
        void *p = malloc(BIG);
        if (!p) {
            big_errno = errno;
            break;
        }
        memset(p, 0x5a, 4096);
        big[n_big++] = p;
    }
    size_t vm_big = hk_vm_bytes();
    CHECK(n_big >= need, "after freeing %zu MiB of 16-byte blocks, only %zu of %zu blocks of 8 MiB (%zu MiB in use)",
          n_small * SMALL >> 20, n_big, need, vm_big >> 20);
    CHECK(big_errno == ENOMEM, "malloc(8 MiB) at the limit failed with errno %d, not ENOMEM", big_errno);
    CHECK(vm_big + BIG >= LIMIT / 10 * 9 + BIG, "8 MiB blocks failed with only %zu MiB of %lu MiB in use",
          vm_big >> 20, LIMIT >> 20);
    for (size_t i = 0; i < n_big; i++) free(big[i]);

    /* 3. the same number of small blocks again, then on to the limit */
    size_t again = fill_small(&head, n_small, SIZE_MAX, &failed);
    size_t vm_again = hk_vm_bytes();
    CHECK(again >= n_small, "after freeing %zu 8 MiB blocks, only %zu of %zu blocks of 16 bytes", n_big, again,
          n_small);
    CHECK(failed == 1, "malloc(16) at the limit failed with errno other than ENOMEM (or did not fail)");
    CHECK(vm_again >= LIMIT / 10 * 9, "16-byte blocks failed with only %zu MiB of %lu MiB in use", vm_again >> 20,
          LIMIT >> 20);
    free_small(head);

    printf("small %zu MiB (%zu MiB in use), then %zu blocks of 8 MiB (%zu MiB in use at ENOMEM), then small %zu MiB "
           "(%zu MiB in use at ENOMEM)\n",
           n_small * SMALL >> 20, vm_small >> 20, n_big, vm_big >> 20, again * SMALL >> 20, vm_again >> 20);
    return hk_nfail != 0;
}
