/* Promise: the very first allocator call of a brand-new thread works, whatever it is (malloc,
 * calloc, realloc(NULL), posix_memalign, aligned_alloc, free of a foreign block,
 * malloc_usable_size), with 64 threads starting at once; and blocks owned by threads that have
 * exited (joined or detached, possibly still tearing down) can be used and freed by main later. */
#include <pthread.h>

#include "hk_test.h"

#define NT 64
#define ROUNDS 8
#define KEEP 16

typedef struct {
    int id;
    void *foreign; /* a block made by main, freed as this thread's first operation */
    void *kept[KEEP];
    size_t ksz[KEEP];
} slot;

static slot slots[NT];
static volatile int gate;

static void *first_op(int kind, void *foreign, size_t *sz) {
    void *p = NULL;
    *sz = 100;
    switch (kind) {
    case 0: p = malloc(100); break;
    case 1: p = calloc(10, 10); break;
    case 2: p = realloc(NULL, 100); break;
    case 3: if (posix_memalign(&p, 64, 100) != 0) p = NULL; break;
    case 4: p = aligned_alloc(4096, 100); break;
    case 5: free(foreign); p = malloc(100); break;
    case 6: (void)malloc_usable_size(foreign); free(foreign); p = malloc(100); break;
    default: p = malloc(0); *sz = 0; break;
    }
    return p;
}

static void *body(void *arg) {
    slot *s = arg;
    int kind = s->id % 8;
    size_t sz;
    void *first;
    if (s->id & 1) {
        first = first_op(kind, s->foreign, &sz); /* truly the first thing this thread does */
        while (!__atomic_load_n(&gate, __ATOMIC_ACQUIRE)) sched_yield();
    } else {
        while (!__atomic_load_n(&gate, __ATOMIC_ACQUIRE)) sched_yield(); /* all start together */
        first = first_op(kind, s->foreign, &sz);
    }
    REQUIRE(first != NULL, "thread %d: first operation (kind %d) returned NULL", s->id, kind);
    CHECK(HK_ALIGNED(first, 16), "thread %d: first block %p misaligned", s->id, first);
    hk_fill(first, sz, 1);
    hk_rng r;
    hk_seed(&r, (uint64_t)s->id);
    for (int i = 0; i < 2000; i++) {
        size_t n = hk_logsize(&r, 1, 16384);
        void *p = malloc(n);
        REQUIRE(p != NULL, "malloc failed");
        memset(p, 0x42, n);
        free(p);
    }
    for (int k = 0; k < KEEP; k++) {
        s->ksz[k] = hk_logsize(&r, 1, k == 0 ? (1 << 20) : 8192);
        s->kept[k] = malloc(s->ksz[k]);
        REQUIRE(s->kept[k] != NULL, "malloc failed");
        hk_fill(s->kept[k], s->ksz[k], (uint64_t)s->id * 100 + (uint64_t)k);
    }
    CHECK(hk_check(first, sz, 1) == SIZE_MAX, "thread %d: first block corrupted", s->id);
    free(first);
    return NULL;
}

/* detached threads that leave blocks behind and exit on their own */
#define ND 16
static void *dblocks[ND];
static int ddone;
static void *detached_body(void *arg) {
    int i = (int)(intptr_t)arg;
    void *p = malloc(1000 + (size_t)i);
    if (p) hk_fill(p, 1000 + (size_t)i, (uint64_t)i);
    for (int k = 0; k < 500; k++) free(malloc((size_t)k + 1));
    dblocks[i] = p;
    __atomic_add_fetch(&ddone, 1, __ATOMIC_RELEASE);
    return NULL; /* the thread is still tearing down while main frees p */
}

int main(void) {
    for (int round = 0; round < ROUNDS; round++) {
        pthread_t th[NT];
        gate = 0;
        for (int i = 0; i < NT; i++) {
            slots[i].id = i + round * NT;
            slots[i].foreign = malloc(200);
            REQUIRE(slots[i].foreign != NULL, "malloc failed");
            memset(slots[i].foreign, 7, 200);
            REQUIRE(pthread_create(&th[i], NULL, body, &slots[i]) == 0, "pthread_create failed");
        }
        __atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
        for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
        for (int i = 0; i < NT; i++) {
            if (slots[i].id % 8 != 5 && slots[i].id % 8 != 6) free(slots[i].foreign);
            for (int k = 0; k < KEEP; k++) {
                size_t bad = hk_check(slots[i].kept[k], slots[i].ksz[k], (uint64_t)slots[i].id * 100 + (uint64_t)k);
                CHECK(bad == SIZE_MAX, "block %d of exited thread %d corrupted at %zu", k, slots[i].id, bad);
                if (k % 2) {
                    void *q = realloc(slots[i].kept[k], slots[i].ksz[k] * 2 + 1);
                    REQUIRE(q != NULL, "realloc failed");
                    CHECK(hk_check(q, slots[i].ksz[k], (uint64_t)slots[i].id * 100 + (uint64_t)k) == SIZE_MAX,
                          "realloc of a dead thread's block lost contents");
                    free(q);
                } else {
                    free(slots[i].kept[k]);
                }
            }
        }
        /* detached threads */
        __atomic_store_n(&ddone, 0, __ATOMIC_RELAXED);
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        for (int i = 0; i < ND; i++) {
            pthread_t t;
            REQUIRE(pthread_create(&t, &at, detached_body, (void *)(intptr_t)i) == 0, "pthread_create failed");
        }
        pthread_attr_destroy(&at);
        double until = hk_now() + 30;
        while (__atomic_load_n(&ddone, __ATOMIC_ACQUIRE) < ND) {
            REQUIRE(hk_now() < until, "detached threads did not finish");
            sched_yield();
        }
        for (int i = 0; i < ND; i++) {
            REQUIRE(dblocks[i] != NULL, "detached thread %d: malloc failed", i);
            CHECK(hk_check(dblocks[i], 1000 + (size_t)i, (uint64_t)i) == SIZE_MAX, "block of detached thread %d corrupted", i);
            free(dblocks[i]);
            dblocks[i] = NULL;
        }
    }
    return hk_done("malloc_in_many_threads_tls");
}
