/* mt_mixed: multi-threaded churn of small and medium blocks with some cross-thread frees. Each of
 * T threads replaces random slots of its own array with blocks of 16 B - 64 KiB (75% up to 512 B,
 * 20% up to 8 KiB, 5% up to 64 KiB; or, with lo= and hi=, sizes uniform in that range, to see
 * where the time goes by size); one replaced block in `share` is not freed by its thread but
 * swapped into a shared exchange array, and the block that comes out (made by any thread) is freed
 * instead. The checksum is the sum of the tags of every block made; the program checks that the
 * blocks freed plus those left add up to it. One op = one free + one malloc. */
#include "common.h"
#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    uint64_t id, ops, ws, share, seed;
    _Atomic(uint64_t *) *xs;
    uint64_t nx;
    uint64_t **blk;
    uint64_t made, freed;
} job_t;

#define MAXSIZE 65536

static inline void mark(uint64_t *p, uint64_t id, size_t n)
{
    p[0] = id;
    p[1] = n;
    if (n > 16)
        ((unsigned char *)p)[n - 1] = (unsigned char)mix64(id);
}

static inline uint64_t check(const uint64_t *p)
{
    uint64_t tag = mix64(p[0]);
    if (p[1] < 16 || p[1] > MAXSIZE || (p[1] > 16 && ((const unsigned char *)p)[p[1] - 1] != (unsigned char)tag))
        die("block %p corrupted", (const void *)p);
    return tag;
}

static uint64_t size_lo, size_hi; /* 0: the mix above */

static inline size_t pick_size(rng_t *r)
{
    if (size_lo)
        return (size_t)rng_range(r, size_lo, size_hi);
    uint64_t x = rng_next(r) % 100;
    if (x < 75)
        return (size_t)rng_range(r, 16, 512);
    if (x < 95)
        return (size_t)rng_range(r, 513, 8192);
    return (size_t)rng_range(r, 8193, MAXSIZE);
}

static uint64_t *make(job_t *j, rng_t *r, uint64_t i)
{
    size_t n = pick_size(r);
    uint64_t *p = malloc(n);
    if (!p)
        die("malloc(%zu) failed", n);
    uint64_t id = (j->id << 40) | i;
    mark(p, id, n);
    j->made += mix64(id);
    return p;
}

static void *worker(void *arg)
{
    job_t *j = arg;
    rng_t r;
    rng_seed(&r, j->seed ^ (j->id << 20));
    for (uint64_t k = 0; k < j->ws; k++)
        j->blk[k] = make(j, &r, k);
    for (uint64_t i = 0; i < j->ops; i++) {
        uint64_t x = rng_next(&r);
        size_t k = (size_t)below(x, j->ws);
        uint64_t *old = j->blk[k];
        uint64_t tag = check(old);
        if (below(x << 40, j->share) == 0) {
            old = atomic_exchange_explicit(&j->xs[below(x << 20, j->nx)], old, memory_order_acq_rel);
            if (old)
                tag = check(old);
        }
        if (old) {
            j->freed += tag;
            free(old);
        }
        j->blk[k] = make(j, &r, j->ws + i);
    }
    for (uint64_t k = 0; k < j->ws; k++) {
        j->freed += check(j->blk[k]);
        free(j->blk[k]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    param_t ps[] = {
        {"threads", "threads", 4},
        {"ops", "replacements per thread", 2000000},
        {"ws", "live blocks per thread", 2000},
        {"share", "one replaced block in this many goes to another thread (>= 1)", 8},
        {"xslots", "slots of the shared exchange array", 1024},
        {"seed", "PRNG seed", 1},
        {"lo", "smallest size, 16 or more (0: the default mix)", 0},
        {"hi", "largest size, at most 65536", 65536},
    };
    PARAMS_PARSE(ps, "Multi-threaded churn of 16 B - 64 KiB blocks, some freed by other threads.");
    uint64_t T = P(ps, "threads"), ops = P(ps, "ops"), ws = P(ps, "ws"), share = P(ps, "share");
    uint64_t nx = P(ps, "xslots");
    if (T == 0 || ws == 0 || share == 0 || nx == 0)
        die("need threads, ws, share and xslots > 0");
    size_lo = P(ps, "lo"), size_hi = P(ps, "hi");
    if (size_lo && (size_lo < 16 || size_hi < size_lo || size_hi > MAXSIZE))
        die("need 16 <= lo <= hi <= %d", MAXSIZE);
    _Atomic(uint64_t *) *xs = calloc(nx, sizeof *xs);
    job_t *jobs = calloc(T, sizeof *jobs);
    pthread_t *tid = calloc(T, sizeof *tid);
    if (!xs || !jobs || !tid)
        die("out of memory");
    for (uint64_t t = 0; t < T; t++) {
        jobs[t] = (job_t){t, ops, ws, share, P(ps, "seed"), xs, nx, NULL, 0, 0};
        jobs[t].blk = xmalloc(ws * sizeof(uint64_t *));
    }
    uint64_t t0 = now_ns();
    for (uint64_t t = 0; t < T; t++)
        if (pthread_create(&tid[t], NULL, worker, &jobs[t]))
            die("pthread_create failed");
    for (uint64_t t = 0; t < T; t++)
        pthread_join(tid[t], NULL);
    uint64_t elapsed = now_ns() - t0;
    uint64_t made = 0, freed = 0;
    for (uint64_t t = 0; t < T; t++) {
        made += jobs[t].made, freed += jobs[t].freed;
        free(jobs[t].blk);
    }
    for (uint64_t k = 0; k < nx; k++) {
        uint64_t *p = atomic_load(&xs[k]);
        if (p) {
            freed += check(p);
            free(p);
        }
    }
    if (freed != made)
        die("blocks lost or duplicated: tags made %016" PRIx64 ", freed %016" PRIx64, made, freed);
    free(xs), free(jobs), free(tid);
    uint64_t total = T * ops;
    printf("RESULT ops_per_sec=%.0f checksum=%016" PRIx64 " ops=%" PRIu64 " threads=%" PRIu64
           " seconds=%.4f\n", total / secs(elapsed), made, total, T, secs(elapsed));
    return 0;
}
