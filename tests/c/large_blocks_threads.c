/* Promise: large blocks stay correct when several threads allocate, grow, shrink and free them
 * at once, and when one thread frees another's (the allocator's shared large-block cache, its
 * splitting and merging of cached ranges, and mremap all under concurrency). 4 threads, 1.5 s or
 * 3000 operations each, blocks 64 KiB - 16 MiB with an aligned one now and then, sparse
 * patterns checked before every realloc and free; a quarter of the blocks are freed by another
 * thread through a shared mailbox. */
#include <pthread.h>

#include "hk_test.h"

#define NT 4
#define LIVE 6
#define OPS 3000

typedef struct {
    unsigned char *p;
    size_t n;
    uint64_t seed;
} blk;

static pthread_mutex_t box_lock = PTHREAD_MUTEX_INITIALIZER;
static blk mailbox[64];
static int nbox;
static double deadline;

static void verify(const blk *b, int me, const char *when) {
    size_t bad = hk_check_sparse(b->p, b->n, b->seed);
    CHECK(bad == SIZE_MAX, "thread %d: %s: block %p (%zu bytes) corrupted at offset %zu", me, when, (void *)b->p,
          b->n, bad);
}

static void *worker(void *arg) {
    int me = (int)(intptr_t)arg;
    hk_rng r;
    hk_seed(&r, 4242 + (uint64_t)me);
    blk live[LIVE] = {{0}};
    for (int op = 0; op < OPS; op++) {
        if ((op & 31) == 0 && hk_now() > deadline) break;
        int i = (int)hk_below(&r, LIVE);
        blk *b = &live[i];
        size_t n = hk_logsize(&r, 64 << 10, 16 << 20);
        uint64_t seed = ((uint64_t)me << 40) + (uint64_t)op;
        if (b->p) {
            verify(b, me, "before realloc/free");
            int what = (int)hk_below(&r, 4);
            if (what == 0) { /* realloc: grow or shrink */
                unsigned char *q = realloc(b->p, n);
                CHECK(q != NULL, "thread %d: realloc(%zu -> %zu) failed, errno %d", me, b->n, n, errno);
                if (!q) continue;
                size_t keep = n < b->n ? n : b->n;
                size_t bad = hk_check_sparse_prefix(q, b->n, keep, b->seed);
                CHECK(bad == SIZE_MAX, "thread %d: realloc(%zu -> %zu) lost contents at %zu", me, b->n, n, bad);
                b->p = q;
                b->n = n;
                b->seed = seed;
                hk_fill_sparse(q, n, seed);
                continue;
            } else if (what == 1) { /* hand it to whoever empties the mailbox */
                pthread_mutex_lock(&box_lock);
                if (nbox < 64) {
                    mailbox[nbox++] = *b;
                    b->p = NULL;
                }
                pthread_mutex_unlock(&box_lock);
                if (b->p) free(b->p);
            } else {
                free(b->p);
            }
            b->p = NULL;
        }
        /* empty the mailbox now and then: frees of other threads' blocks */
        if (hk_below(&r, 4) == 0) {
            blk got[64];
            int ng;
            pthread_mutex_lock(&box_lock);
            ng = nbox;
            memcpy(got, mailbox, sizeof(blk) * (size_t)ng);
            nbox = 0;
            pthread_mutex_unlock(&box_lock);
            for (int k = 0; k < ng; k++) {
                verify(&got[k], me, "mailbox block before free");
                free(got[k].p);
            }
        }
        int how = (int)hk_below(&r, 8);
        if (how == 0) {
            size_t al = (size_t)4096 << hk_below(&r, 10); /* 4 KiB .. 2 MiB */
            b->p = aligned_alloc(al, n);
            REQUIRE(b->p != NULL, "aligned_alloc(%zu, %zu) failed", al, n);
            CHECK(HK_ALIGNED(b->p, al), "aligned_alloc(%zu, %zu) = %p misaligned", al, n, (void *)b->p);
        } else if (how == 1) {
            b->p = calloc(1, n);
            REQUIRE(b->p != NULL, "calloc(%zu) failed", n);
            int nz = 0;
            for (size_t k = 0; k < n; k += 4096) nz |= b->p[k];
            nz |= b->p[n - 1];
            CHECK(nz == 0, "thread %d: calloc(%zu) not zeroed", me, n);
        } else {
            b->p = malloc(n);
            REQUIRE(b->p != NULL, "malloc(%zu) failed", n);
        }
        CHECK(malloc_usable_size(b->p) >= n, "usable size %zu < %zu", malloc_usable_size(b->p), n);
        b->n = n;
        b->seed = seed;
        hk_fill_sparse(b->p, n, seed);
    }
    for (int i = 0; i < LIVE; i++)
        if (live[i].p) {
            verify(&live[i], me, "at the end");
            free(live[i].p);
        }
    return NULL;
}

int main(void) {
    deadline = hk_now() + 1.5;
    pthread_t th[NT];
    for (int i = 0; i < NT; i++)
        REQUIRE(pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) == 0, "pthread_create failed");
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
    for (int k = 0; k < nbox; k++) {
        verify(&mailbox[k], -1, "left in the mailbox");
        free(mailbox[k].p);
    }
    return hk_done("large_blocks_threads");
}
