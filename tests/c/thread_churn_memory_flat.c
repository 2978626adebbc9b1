/* Promise: memory stays flat when thousands of short-lived threads come and go.
 * 5000 threads (4 at a time) each malloc/free a few hundred blocks and hand 20 blocks back to
 * main, which frees them after the join (blocks outliving their thread). RSS after 500 threads
 * (warm-up) and at the end must not differ by more than 16 MiB. */
#include <pthread.h>

#include "hk_test.h"

#define THREADS 5000
#define AT_ONCE 4
#define WARMUP 500
#define KEEP 20

typedef struct {
    int id;
    void *kept[KEEP];
    size_t ksize[KEEP];
} job;

static void *churn(void *arg) {
    job *j = arg;
    hk_rng r;
    hk_seed(&r, (uint64_t)j->id);
    void *ps[64] = {0};
    for (int i = 0; i < 300; i++) {
        int k = (int)hk_below(&r, 64);
        free(ps[k]);
        size_t s = (i % 50 == 0) ? hk_logsize(&r, 16 << 10, 256 << 10) : hk_logsize(&r, 8, 2048);
        ps[k] = malloc(s);
        REQUIRE(ps[k] != NULL, "malloc(%zu) failed in thread %d", s, j->id);
        memset(ps[k], 0x5C, s);
    }
    for (int k = 0; k < 64; k++) free(ps[k]);
    for (int k = 0; k < KEEP; k++) {
        size_t s = hk_logsize(&r, 8, 4096);
        j->kept[k] = malloc(s);
        REQUIRE(j->kept[k] != NULL, "malloc failed");
        j->ksize[k] = s;
        hk_fill(j->kept[k], s, (uint64_t)j->id * 100 + (uint64_t)k);
    }
    return NULL;
}

int main(void) {
    static job jobs[AT_ONCE];
    pthread_t th[AT_ONCE];
    long rss_warm = 0, peak = 0;
    for (int base = 0; base < THREADS; base += AT_ONCE) {
        for (int t = 0; t < AT_ONCE; t++) {
            jobs[t].id = base + t;
            REQUIRE(pthread_create(&th[t], NULL, churn, &jobs[t]) == 0, "pthread_create failed at %d", base + t);
        }
        for (int t = 0; t < AT_ONCE; t++) {
            pthread_join(th[t], NULL);
            for (int k = 0; k < KEEP; k++) {
                size_t bad = hk_check(jobs[t].kept[k], jobs[t].ksize[k], (uint64_t)jobs[t].id * 100 + (uint64_t)k);
                CHECK(bad == SIZE_MAX, "block kept from dead thread %d damaged at %zu", jobs[t].id, bad);
                free(jobs[t].kept[k]);
            }
        }
        if (base + AT_ONCE == WARMUP) rss_warm = hk_rss();
        if (base > WARMUP) {
            long now = hk_rss();
            if (now > peak) peak = now;
        }
    }
    long rss_end = hk_rss();
    long grew = rss_end - rss_warm;
    printf("thread_churn_memory_flat: RSS after warm-up %ld KiB, at end %ld KiB, peak %ld KiB\n", rss_warm / 1024,
           rss_end / 1024, peak / 1024);
    CHECK(rss_warm > 0, "could not read /proc/self/statm");
    CHECK(grew <= (long)(16 * HK_MiB), "RSS grew by %ld KiB over %d thread lifetimes (limit 16 MiB)", grew / 1024,
          THREADS - WARMUP);
    return hk_done("thread_churn_memory_flat");
}
