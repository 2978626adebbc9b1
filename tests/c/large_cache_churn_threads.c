/* Promise: a large block is as long as it was asked for even when other threads keep freeing
 * and taking cached ranges at the same moment (the large cache's ranges change hands between
 * a thread's look at a slot and its claim of it). 3 threads replace one 300-400 KiB block each
 * as fast as they can for 0.6 s, every byte written (calloc'd ones checked for zeros first) and
 * the first and last checked before the next free, with a few small blocks in between. A block
 * shorter than asked for faults or shows another block's bytes. */
#include <pthread.h>

#include "hk_test.h"

#define NT 3

static double deadline;

static void *worker(void *arg) {
    int me = (int)(intptr_t)arg;
    hk_rng r;
    hk_seed(&r, 777 + (uint64_t)me);
    unsigned char mark = (unsigned char)(0x40 + me);
    for (long op = 0;; op++) {
        if ((op & 15) == 0 && hk_now() > deadline) break;
        size_t n = 300000 + (size_t)hk_below(&r, 100000);
        unsigned char *p;
        if (op & 1) {
            p = calloc(1, n);
            CHECK(p != NULL, "thread %d: calloc(%zu) failed", me, n);
            if (!p) break;
            size_t nz = 0;
            for (size_t i = 0; i < n; i += 64) nz += p[i] != 0;
            CHECK(nz == 0 && p[n - 1] == 0, "thread %d: calloc(%zu) not zeroed", me, n);
        } else {
            p = malloc(n);
            CHECK(p != NULL, "thread %d: malloc(%zu) failed", me, n);
            if (!p) break;
        }
        memset(p, mark, n);
        void *small[16];
        for (int i = 0; i < 16; i++) small[i] = malloc(8 + 8 * (size_t)i);
        for (int i = 0; i < 16; i++) free(small[i]);
        CHECK(p[0] == mark && p[n / 2] == mark && p[n - 1] == mark,
              "thread %d: block %p of %zu bytes overwritten", me, (void *)p, n);
        free(p);
    }
    return NULL;
}

int main(void) {
    pthread_t t[NT];
    deadline = hk_now() + 0.6;
    for (intptr_t i = 0; i < NT; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < NT; i++) pthread_join(t[i], NULL);
    return hk_done("large_cache_churn_threads");
}
