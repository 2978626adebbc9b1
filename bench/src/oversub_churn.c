/* oversub_churn: many more threads than cores, with threads exiting and new ones starting during
 * the run (a stress test of cross-thread frees, reallocs and thread churn). `threads` workers are
 * alive at once; each does `ops` operations on a shared exchange array and exits, and the main
 * thread starts a new worker in its place until `workers` have run. An operation is, at random:
 * malloc a block (16 B - max) and swap it into a random slot, freeing the block that comes out
 * (70%); take the block out of a slot, realloc it to a new size, check that its contents moved
 * with it and swap it back (20%); or take a block out and free it (10%). Blocks move between
 * threads at random, also to threads that start after their allocator exited. The checksum is the
 * sum of the tags of every block made; the program checks the blocks freed plus those left add up
 * to it. One op = one operation. */
#include "common.h"
#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    uint64_t id, ops, nslots, max, seed;
    _Atomic(uint64_t *) *slots;
    uint64_t made, freed;
} job_t;

/* A block: its id, its size, and (past 16 bytes) the low byte of its tag in its last byte. */
static inline void mark(uint64_t *p, uint64_t id, size_t n)
{
    p[0] = id;
    p[1] = n;
    if (n > 16)
        ((unsigned char *)p)[n - 1] = (unsigned char)mix64(id);
}

static inline void check(const uint64_t *p, uint64_t max)
{
    if (p[1] < 16 || p[1] > max || (p[1] > 16 && ((const unsigned char *)p)[p[1] - 1] != (unsigned char)mix64(p[0])))
        die("block %p corrupted", (const void *)p);
}

static void *worker(void *arg)
{
    job_t *j = arg;
    rng_t r;
    rng_seed(&r, j->seed ^ (j->id << 20));
    for (uint64_t i = 0; i < j->ops; i++) {
        uint64_t x = rng_next(&r);
        size_t k = (size_t)below(x, j->nslots);
        size_t n = (size_t)rng_log_range(&r, 16, j->max);
        unsigned action = (unsigned)(x & 0xff) % 10;
        if (action < 7) {
            uint64_t *p = malloc(n);
            if (!p)
                die("malloc(%zu) failed", n);
            uint64_t id = (j->id << 32) | i;
            mark(p, id, n);
            j->made += mix64(id);
            uint64_t *old = atomic_exchange_explicit(&j->slots[k], p, memory_order_acq_rel);
            if (old) {
                check(old, j->max);
                j->freed += mix64(old[0]);
                free(old);
            }
        } else {
            uint64_t *p = atomic_exchange_explicit(&j->slots[k], NULL, memory_order_acq_rel);
            if (!p)
                continue;
            check(p, j->max);
            if (action == 9) {
                j->freed += mix64(p[0]);
                free(p);
                continue;
            }
            uint64_t id = p[0];
            uint64_t *q = realloc(p, n);
            if (!q)
                die("realloc(%zu) failed", n);
            if (q[0] != id)
                die("realloc lost the contents of block %" PRIx64, id);
            mark(q, id, n);
            uint64_t *old = atomic_exchange_explicit(&j->slots[k], q, memory_order_acq_rel);
            if (old) {
                check(old, j->max);
                j->freed += mix64(old[0]);
                free(old);
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    param_t ps[] = {
        {"threads", "workers alive at once", 32},
        {"workers", "workers in total (each replaced when it exits)", 320},
        {"ops", "operations per worker", 50000},
        {"slots", "slots of the shared exchange array", 8192},
        {"max", "largest block size (>= 16)", 4096},
        {"seed", "PRNG seed", 1},
    };
    PARAMS_PARSE(ps, "Oversubscribed threads that exit and restart, passing blocks around with frees and reallocs.");
    uint64_t T = P(ps, "threads"), W = P(ps, "workers"), ops = P(ps, "ops"), nslots = P(ps, "slots");
    uint64_t max = P(ps, "max");
    if (T == 0 || W == 0 || nslots == 0 || max < 16 || ops >= (1ull << 32))
        die("need threads > 0, workers > 0, slots > 0, max >= 16, ops < 2^32");
    _Atomic(uint64_t *) *slots = calloc(nslots, sizeof *slots);
    job_t *jobs = calloc(W, sizeof *jobs);
    pthread_t *tid = calloc(W, sizeof *tid);
    if (!slots || !jobs || !tid)
        die("out of memory");
    for (uint64_t w = 0; w < W; w++)
        jobs[w] = (job_t){w, ops, nslots, max, P(ps, "seed"), slots, 0, 0};
    uint64_t t0 = now_ns();
    uint64_t started = 0;
    for (; started < W && started < T; started++)
        if (pthread_create(&tid[started], NULL, worker, &jobs[started]))
            die("pthread_create failed");
    /* Join in start order; each exit makes room for the next worker. */
    for (uint64_t w = 0; w < W; w++) {
        pthread_join(tid[w], NULL);
        if (started < W) {
            if (pthread_create(&tid[started], NULL, worker, &jobs[started]))
                die("pthread_create failed");
            started++;
        }
    }
    uint64_t elapsed = now_ns() - t0;
    uint64_t made = 0, freed = 0;
    for (uint64_t w = 0; w < W; w++)
        made += jobs[w].made, freed += jobs[w].freed;
    for (uint64_t k = 0; k < nslots; k++) {
        uint64_t *p = atomic_load(&slots[k]);
        if (p) {
            check(p, max);
            freed += mix64(p[0]);
            free(p);
        }
    }
    if (freed != made)
        die("blocks lost or duplicated: tags made %016" PRIx64 ", freed %016" PRIx64, made, freed);
    free(slots), free(jobs), free(tid);
    uint64_t total = W * ops;
    printf("RESULT ops_per_sec=%.0f checksum=%016" PRIx64 " ops=%" PRIu64 " threads=%" PRIu64
           " workers=%" PRIu64 " seconds=%.4f\n", total / secs(elapsed), made, total, T, W, secs(elapsed));
    return 0;
}
