/* Negative test, driven by tests/run_c_tests.sh, hakmem only.
 * Promise: with HAKMEM_CHECK=1, freeing the same small block twice is caught: a line on stderr
 * containing "hakmem" and "double free" (and the address, printed on stdout as "target=0x..."),
 * then SIGABRT. argv[1] picks the block size (default 32). */
#include "hk_test.h"

static void (*volatile p_free)(void *) = free;

int main(int argc, char **argv) {
    size_t size = argc > 1 ? (size_t)strtoul(argv[1], NULL, 0) : 32;
    void *keep[16];
    for (int i = 0; i < 16; i++) keep[i] = malloc(size); /* some live neighbours */
    void *p = malloc(size);
    REQUIRE(p != NULL, "malloc(%zu) failed", size);
    memset(p, 0x44, size);
    printf("target=%p\n", p);
    fflush(stdout);
    p_free(p);
    p_free(p); /* the bug */
    printf("continued\n");
    for (int i = 0; i < 16; i++) free(keep[i]);
    return 0;
}
