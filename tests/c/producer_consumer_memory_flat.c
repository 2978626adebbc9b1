/* Promise: cross-thread frees really give memory back to its owner.
 * Phase 1: 2 producers allocate blocks (16 B - 4 KiB, some 64 KiB) for 1.5 s and hand them
 * through bounded queues to 2 consumers, which check and free them: the producers never free
 * anything themselves, so if remote frees were never reclaimed, memory would grow without
 * bound. RSS after warm-up and at the end may differ by at most 32 MiB.
 * Phase 2: 300 short-lived producer threads each hand 2000 blocks to the consumers and exit
 * at once, so their blocks are freed while (and after) the owner tears down. */
#include <pthread.h>

#include "hk_test.h"

#define QCAP 4096
typedef struct {
    pthread_mutex_t m;
    pthread_cond_t not_empty, not_full;
    void *p[QCAP];
    size_t n[QCAP];
    uint64_t seed[QCAP];
    int head, len, closed;
} queue;

static queue qs[2];

static void q_push(queue *q, void *p, size_t n, uint64_t seed) {
    pthread_mutex_lock(&q->m);
    while (q->len == QCAP) pthread_cond_wait(&q->not_full, &q->m);
    int i = (q->head + q->len) % QCAP;
    q->p[i] = p;
    q->n[i] = n;
    q->seed[i] = seed;
    q->len++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->m);
}

static void *consumer(void *arg) {
    queue *q = arg;
    long got = 0;
    for (;;) {
        pthread_mutex_lock(&q->m);
        while (q->len == 0 && !q->closed) pthread_cond_wait(&q->not_empty, &q->m);
        if (q->len == 0 && q->closed) {
            pthread_mutex_unlock(&q->m);
            break;
        }
        void *p = q->p[q->head];
        size_t n = q->n[q->head];
        uint64_t seed = q->seed[q->head];
        q->head = (q->head + 1) % QCAP;
        q->len--;
        pthread_cond_signal(&q->not_full);
        pthread_mutex_unlock(&q->m);
        size_t bad = hk_check(p, n, seed);
        CHECK(bad == SIZE_MAX, "block %p (%zu bytes) corrupted at offset %zu", p, n, bad);
        free(p);
        got++;
    }
    return (void *)(intptr_t)got;
}

static volatile int stop;
static double deadline;

static void *producer(void *arg) {
    int id = (int)(intptr_t)arg;
    hk_rng r;
    hk_seed(&r, (uint64_t)id * 7 + 1);
    long made = 0;
    while (!stop) {
        size_t n = hk_below(&r, 100) == 0 ? 65536 : hk_logsize(&r, 16, 4096);
        void *p = malloc(n);
        REQUIRE(p != NULL, "malloc failed");
        uint64_t seed = hk_next(&r);
        hk_fill(p, n < 256 ? n : 256, seed);
        q_push(&qs[made & 1], p, n < 256 ? n : 256, seed);
        made++;
    }
    return (void *)(intptr_t)made;
}

static void *short_producer(void *arg) {
    int id = (int)(intptr_t)arg;
    hk_rng r;
    hk_seed(&r, (uint64_t)id + 999);
    for (int i = 0; i < 2000; i++) {
        size_t n = hk_logsize(&r, 16, 2048);
        void *p = malloc(n);
        REQUIRE(p != NULL, "malloc failed");
        uint64_t seed = hk_next(&r);
        hk_fill(p, n, seed);
        q_push(&qs[i & 1], p, n, seed);
    }
    return NULL; /* exits while the consumers are still freeing its blocks */
}

int main(void) {
    for (int i = 0; i < 2; i++) {
        pthread_mutex_init(&qs[i].m, NULL);
        pthread_cond_init(&qs[i].not_empty, NULL);
        pthread_cond_init(&qs[i].not_full, NULL);
    }
    pthread_t cons[2], prod[2];
    for (int i = 0; i < 2; i++) REQUIRE(pthread_create(&cons[i], NULL, consumer, &qs[i]) == 0, "pthread_create failed");
    for (int i = 0; i < 2; i++)
        REQUIRE(pthread_create(&prod[i], NULL, producer, (void *)(intptr_t)i) == 0, "pthread_create failed");
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    long rss_warm = hk_rss();
    deadline = hk_now() + 1.2;
    long peak = rss_warm;
    while (hk_now() < deadline) {
        struct timespec t2 = {0, 50 * 1000 * 1000};
        nanosleep(&t2, NULL);
        long now = hk_rss();
        if (now > peak) peak = now;
    }
    stop = 1;
    long made = 0;
    for (int i = 0; i < 2; i++) {
        void *v;
        pthread_join(prod[i], &v);
        made += (long)(intptr_t)v;
    }
    long rss_end = hk_rss();
    printf("producer_consumer_memory_flat: %ld blocks; RSS warm %ld KiB, peak %ld KiB, end %ld KiB\n", made,
           rss_warm / 1024, peak / 1024, rss_end / 1024);
    CHECK(peak - rss_warm <= (long)(32 * HK_MiB),
          "RSS grew by %ld KiB while blocks were freed by other threads (remote frees not reclaimed?)",
          (peak - rss_warm) / 1024);

    /* phase 2: short-lived producers */
    for (int round = 0; round < 30; round++) {
        pthread_t sp[10];
        for (int i = 0; i < 10; i++)
            REQUIRE(pthread_create(&sp[i], NULL, short_producer, (void *)(intptr_t)(round * 10 + i)) == 0,
                    "pthread_create failed");
        for (int i = 0; i < 10; i++) pthread_join(sp[i], NULL);
    }
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(&qs[i].m);
        qs[i].closed = 1;
        pthread_cond_broadcast(&qs[i].not_empty);
        pthread_mutex_unlock(&qs[i].m);
    }
    long got = 0;
    for (int i = 0; i < 2; i++) {
        void *v;
        pthread_join(cons[i], &v);
        got += (long)(intptr_t)v;
    }
    CHECK(got == made + 300 * 2000, "consumers freed %ld blocks, producers made %ld", got, made + 300 * 2000);
    long rss_final = hk_rss();
    printf("producer_consumer_memory_flat: after 300 short-lived producers RSS %ld KiB\n", rss_final / 1024);
    CHECK(rss_final - rss_warm <= (long)(48 * HK_MiB), "RSS grew by %ld KiB after the short-lived producers",
          (rss_final - rss_warm) / 1024);
    return hk_done("producer_consumer_memory_flat");
}
