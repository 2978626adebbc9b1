/* Promise: blocks allocated by one thread can be freed (or realloc'ed) by another, under load,
 * without corrupting anything. 8 threads each allocate blocks of random sizes (16 B - 64 KiB,
 * sometimes 1 MiB; malloc/calloc/posix_memalign), fill them with a pattern derived from
 * (address, size, thread, sequence number) and send them to another thread, which checks the
 * whole pattern and frees them (1 in 8 after a realloc). Bounded: 2 s or 300000 ops per thread. */
#include <pthread.h>

#include "hk_test.h"

#define NT 8
#define MAX_OPS 300000
#define MAX_QUEUE 2000
#define SECONDS 2.0

typedef struct msg {
    struct msg *next;
    void *p;
    size_t size;
    uint64_t seq;
    int from;
} msg;

typedef struct {
    pthread_mutex_t lock;
    msg *head;
    int len;
    char pad[64];
} queue;

static queue q[NT];
static double deadline;
static pthread_barrier_t done_barrier;
static long sent[NT], received[NT];

static uint64_t seed_of(const void *p, size_t size, int tid, uint64_t seq) {
    return hk_mix((uint64_t)(uintptr_t)p ^ (size << 1) ^ ((uint64_t)tid << 56) ^ (seq * 0x100000001B3ULL));
}

static void consume(msg *m, int me, hk_rng *r) {
    uint64_t seed = seed_of(m->p, m->size, m->from, m->seq);
    size_t bad = hk_check(m->p, m->size, seed);
    CHECK(bad == SIZE_MAX,
          "thread %d: block %p (%zu bytes, seq %llu) from thread %d corrupted at offset %zu", me, m->p, m->size,
          (unsigned long long)m->seq, m->from, bad);
    if (hk_below(r, 8) == 0) {
        size_t ns = hk_logsize(r, 1, 100000);
        void *np = realloc(m->p, ns);
        REQUIRE(np != NULL, "cross-thread realloc(%zu -> %zu) failed", m->size, ns);
        size_t keep = ns < m->size ? ns : m->size;
        bad = hk_check(np, keep, seed);
        CHECK(bad == SIZE_MAX, "thread %d: cross-thread realloc(%zu -> %zu) lost contents at %zu", me, m->size,
              ns, bad);
        memset(np, 0xDD, ns);
        free(np);
    } else {
        memset(m->p, 0xDD, m->size < 256 ? m->size : 256); /* dirty it: use-after-free shows up */
        free(m->p);
    }
    free(m);
    received[me]++;
}

static int drain(int me, hk_rng *r) {
    pthread_mutex_lock(&q[me].lock);
    msg *m = q[me].head;
    q[me].head = NULL;
    q[me].len = 0;
    pthread_mutex_unlock(&q[me].lock);
    int n = 0;
    while (m) {
        msg *next = m->next;
        consume(m, me, r);
        m = next;
        n++;
    }
    return n;
}

static void *worker(void *arg) {
    int me = (int)(intptr_t)arg;
    hk_rng r;
    hk_seed(&r, 1000 + (uint64_t)me);
    for (uint64_t seq = 0; seq < MAX_OPS; seq++) {
        if ((seq & 255) == 0 && hk_now() > deadline) break;
        size_t size = (hk_below(&r, 1000) == 0) ? (1 << 20) : hk_logsize(&r, 16, 64 << 10);
        void *p;
        int how = (int)hk_below(&r, 10);
        if (how == 0) {
            p = calloc(1, size);
        } else if (how == 1) {
            p = NULL;
            if (posix_memalign(&p, (size_t)64 << hk_below(&r, 6), size) != 0) p = NULL;
        } else {
            p = malloc(size);
        }
        REQUIRE(p != NULL, "thread %d: allocation of %zu bytes failed", me, size);
        CHECK(HK_ALIGNED(p, 16), "thread %d: block %p misaligned", me, p);
        hk_fill(p, size, seed_of(p, size, me, seq));
        msg *m = malloc(sizeof *m);
        REQUIRE(m != NULL, "malloc(msg) failed");
        m->p = p;
        m->size = size;
        m->seq = seq;
        m->from = me;
        int to = (me + 1 + (int)hk_below(&r, NT - 1)) % NT;
        pthread_mutex_lock(&q[to].lock);
        int full = q[to].len >= MAX_QUEUE;
        if (!full) {
            m->next = q[to].head;
            q[to].head = m;
            q[to].len++;
        }
        pthread_mutex_unlock(&q[to].lock);
        if (full) { /* back-pressure: consume it ourselves */
            consume(m, me, &r);
            received[me]--; /* counted as sent-to-self below */
            sent[me]--;
        }
        sent[me]++;
        if ((seq & 7) == 0) drain(me, &r);
    }
    /* no thread sends after this barrier: drain what is left */
    pthread_barrier_wait(&done_barrier);
    drain(me, &r);
    return NULL;
}

int main(void) {
    pthread_t th[NT];
    deadline = hk_now() + SECONDS;
    pthread_barrier_init(&done_barrier, NULL, NT);
    for (int i = 0; i < NT; i++) pthread_mutex_init(&q[i].lock, NULL);
    for (int i = 0; i < NT; i++)
        REQUIRE(pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) == 0, "pthread_create failed");
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
    long ts = 0, tr = 0;
    for (int i = 0; i < NT; i++) {
        ts += sent[i];
        tr += received[i];
        CHECK(q[i].head == NULL, "queue %d not empty at the end", i);
    }
    CHECK(ts == tr, "sent %ld blocks but received %ld", ts, tr);
    printf("threads_cross_free_stress: %ld blocks crossed threads\n", tr);
    return hk_done("threads_cross_free_stress");
}
