/* Negative test, driven by tests/run_c_tests.sh, hakmem only.
 * Promise: a pointer the allocator never handed out is refused with a clear message instead of
 * corrupting memory. One case per run, chosen by argv[1]:
 *   stack            free() of a stack address
 *   interior         free(p + 8) for a 64-byte block p
 *   realloc_stack    realloc() of a stack address
 *   usable_interior  malloc_usable_size(p + 8) for a 64-byte block p
 *   unmapped         free() of a block whose SuperSlab was unmapped: under an address-space limit
 *                    (no cage), 64 MiB of 16-byte blocks are allocated and freed, malloc_trim(0)
 *                    runs, and a block from the middle must no longer be mapped (/proc/self/maps)
 *   realloc_unmapped realloc() of such a block
 *   large_interior   free(b + 4096) for a 1 MiB block b (a page boundary inside it)
 *   large_double     free(b) twice for a 1 MiB block b
 * Expected with hakmem: a line on stderr containing "hakmem", "invalid pointer" and the address
 * (printed on stdout as "target=0x..." before the call); then SIGABRT by default, or, with
 * HAKMEM_INVALID_FREE=report, the program carries on (prints "continued" and exits 0). */
#include "hk_test.h"
#include <sys/resource.h>

static void (*volatile p_free)(void *) = free;
static void *(*volatile p_realloc)(void *, size_t) = realloc;
static size_t (*volatile p_usable)(void *) = malloc_usable_size;

static void announce(void *t) {
    printf("target=%p\n", t);
    fflush(stdout);
}

/* Whether `a` lies in a mapping of this process. */
static int mapped(const void *a) {
    FILE *f = fopen("/proc/self/maps", "r");
    REQUIRE(f != NULL, "/proc/self/maps: %s", strerror(errno));
    unsigned long lo, hi, x = (unsigned long)a;
    int found = 0;
    char line[512];
    while (!found && fgets(line, sizeof line, f))
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= x && x < hi) found = 1;
    fclose(f);
    return found;
}

/* A pointer to a 16-byte block that was freed, in a SuperSlab that was then unmapped. Runs the
 * program again under a 1 GiB address-space limit first, so that hakmem has no cage (it keeps
 * the address space of SuperSlabs in its cage) and maps every SuperSlab on its own. */
static char *unmapped_block(char **argv) {
    REQUIRE(hk_rerun_under_as_limit(argv, 1ul << 30), "the hard address-space limit is below 1 GiB");
    enum { N = 4 << 20 }; /* 64 MiB of blocks: several SuperSlabs of any size */
    void **head = NULL, **stale = NULL;
    for (size_t i = 0; i < N; i++) {
        void **b = malloc(16);
        REQUIRE(b != NULL, "malloc(16) failed after %zu blocks", i);
        *b = head;
        head = b;
        if (i == N / 2) stale = b;
    }
    while (head) {
        void **next = *head;
        free(head);
        head = next;
    }
    malloc_trim(0);
    REQUIRE(!mapped(stale), "%p is still mapped after all its neighbours were freed and malloc_trim(0)",
            (void *)stale);
    return (char *)stale;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s stack|interior|realloc_stack|usable_interior|unmapped|realloc_unmapped|large_interior|large_double\n",
                argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    char *gone = !strcmp(mode, "unmapped") || !strcmp(mode, "realloc_unmapped") ? unmapped_block(argv) : NULL;
    _Alignas(64) char stackbuf[256];
    memset(stackbuf, 0x33, sizeof stackbuf);
    char *stack_target = (char *)hk_opaque(stackbuf + 64);
    unsigned char *p = malloc(64);
    REQUIRE(p != NULL, "malloc(64) failed");
    hk_fill(p, 64, 64);
    void *q = malloc(64); /* a neighbour */
    REQUIRE(q != NULL, "malloc(64) failed");
    hk_fill(q, 64, 65);
    const size_t big = 1 << 20;
    unsigned char *b = malloc(big); /* a large block (own mapping) */
    REQUIRE(b != NULL, "malloc(1 MiB) failed");
    hk_fill(b, big, 66);

    if (!strcmp(mode, "stack")) {
        announce(stack_target);
        p_free(stack_target);
    } else if (!strcmp(mode, "interior")) {
        announce(p + 8);
        p_free(p + 8);
    } else if (!strcmp(mode, "realloc_stack")) {
        announce(stack_target);
        void *r = p_realloc(stack_target, 100);
        printf("realloc returned %p\n", r);
    } else if (!strcmp(mode, "usable_interior")) {
        announce(p + 8);
        size_t u = p_usable(p + 8);
        printf("malloc_usable_size returned %zu\n", u);
    } else if (!strcmp(mode, "unmapped")) {
        announce(gone);
        p_free(gone);
    } else if (!strcmp(mode, "realloc_unmapped")) {
        announce(gone);
        void *r = p_realloc(gone, 100);
        printf("realloc returned %p\n", r);
    } else if (!strcmp(mode, "large_interior")) {
        announce(b + 4096);
        p_free(b + 4096);
    } else if (!strcmp(mode, "large_double")) {
        unsigned char *d = malloc(big);
        REQUIRE(d != NULL, "malloc(1 MiB) failed");
        p_free(d);
        announce(d);
        p_free(d);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    /* report mode: nothing may have been damaged */
    CHECK(hk_check(p, 64, 64) == SIZE_MAX, "the block around the bad pointer was damaged");
    CHECK(hk_check(q, 64, 65) == SIZE_MAX, "the neighbouring block was damaged");
    CHECK(hk_check(b, big, 66) == SIZE_MAX, "the large block was damaged");
    for (size_t i = 0; i < sizeof stackbuf; i++)
        if ((unsigned char)stackbuf[i] != 0x33) {
            CHECK(0, "the stack buffer was written at offset %zu", i);
            break;
        }
    free(p);
    free(q);
    free(b);
    for (int i = 0; i < 1000; i++) free(malloc((size_t)i + 1));
    printf("continued\n");
    return hk_done("invalid_free_reported");
}
