/* Promise: many threads alive at the same time are no problem (no fixed-size table of heaps or
 * thread caches to overflow): 1500 threads (64 KiB stacks), all alive together, each allocate
 * blocks, wait until all have done so, check their blocks, free half of them and leave the rest
 * for main to free after the joins. (If the machine's thread limit is lower, the threads that
 * could be started are used.) */
#include <pthread.h>

#include "hk_test.h"

#define NT 1500
#define PER 24

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int ready, go;
static void *blocks[NT][PER];
static size_t sizes[NT][PER];

static void *body(void *arg) {
    int id = (int)(intptr_t)arg;
    hk_rng r;
    hk_seed(&r, (uint64_t)id);
    for (int k = 0; k < PER; k++) {
        sizes[id][k] = hk_logsize(&r, 1, k == 0 ? 300000 : 3000);
        blocks[id][k] = malloc(sizes[id][k]);
        REQUIRE(blocks[id][k] != NULL, "thread %d: malloc failed", id);
        hk_fill(blocks[id][k], sizes[id][k], (uint64_t)id * PER + (uint64_t)k);
    }
    /* wait until every thread has allocated: they are all alive at the same time */
    pthread_mutex_lock(&lock);
    ready++;
    pthread_cond_broadcast(&cond);
    while (!go) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    for (int k = 0; k < PER; k++) {
        size_t bad = hk_check(blocks[id][k], sizes[id][k], (uint64_t)id * PER + (uint64_t)k);
        CHECK(bad == SIZE_MAX, "thread %d block %d corrupted at %zu while all threads were alive", id, k, bad);
        if (k % 2) {
            free(blocks[id][k]);
            blocks[id][k] = NULL;
        }
    }
    return NULL;
}

int main(void) {
    static pthread_t th[NT];
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 64 * 1024);
    int started = 0;
    for (int i = 0; i < NT; i++) {
        int rc = pthread_create(&th[i], &at, body, (void *)(intptr_t)i);
        if (rc == EAGAIN && i >= 200) { /* a process/thread limit of this machine, not a failure */
            printf("note: pthread_create failed after %d threads (EAGAIN): continuing with those\n", i);
            break;
        }
        REQUIRE(rc == 0, "pthread_create #%d failed: %s", i, strerror(rc));
        started++;
    }
    pthread_mutex_lock(&lock);
    while (ready < started) pthread_cond_wait(&cond, &lock);
    go = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < started; i++)
        for (int k = 0; k < PER; k++)
            if (blocks[i][k]) {
                size_t bad = hk_check(blocks[i][k], sizes[i][k], (uint64_t)i * PER + (uint64_t)k);
                CHECK(bad == SIZE_MAX, "block %d of exited thread %d corrupted at %zu", k, i, bad);
                free(blocks[i][k]);
            }
    printf("many_live_threads: %d threads alive at once\n", started);
    return hk_done("many_live_threads");
}
