/* xthread_random: blocks of random size (16 B - 16 KiB, log-uniform) passed between threads at
 * random. T threads share an exchange array of slots; each op mallocs a block, writes it, swaps
 * it into a random slot with one atomic exchange, and checks and frees whatever block it got back,
 * which any thread may have allocated. Which thread frees a block depends on timing, so the
 * checksum is the sum of the tags of every block made (which depends only on the arguments), and
 * the program checks that the blocks freed plus those left in the slots add up to exactly that.
 * One op = one malloc + one free. */
#include "common.h"
#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    uint64_t id, ops, nslots, min, max, seed;
    _Atomic(uint64_t *) *slots;
    uint64_t made, freed; /* sums of tags */
} job_t;

/* A block: its id, its size, and (past 16 bytes) the low byte of its tag in its last byte. */
static inline uint64_t *make_block(uint64_t id, size_t n)
{
    uint64_t *p = malloc(n);
    if (!p)
        die("malloc(%zu) failed", n);
    p[0] = id;
    p[1] = n;
    if (n > 16)
        ((unsigned char *)p)[n - 1] = (unsigned char)mix64(id);
    return p;
}

/* Checks a block and returns its tag. */
static inline uint64_t check_block(const uint64_t *p, uint64_t min, uint64_t max)
{
    uint64_t tag = mix64(p[0]);
    if (p[1] < min || p[1] > max || (p[1] > 16 && ((const unsigned char *)p)[p[1] - 1] != (unsigned char)tag))
        die("block %p corrupted in transit", (const void *)p);
    return tag;
}

static void *worker(void *arg)
{
    job_t *j = arg;
    rng_t r;
    rng_seed(&r, j->seed ^ (j->id << 20));
    for (uint64_t i = 0; i < j->ops; i++) {
        size_t n = (size_t)rng_log_range(&r, j->min, j->max);
        size_t k = (size_t)below(rng_next(&r), j->nslots);
        uint64_t *p = make_block((j->id << 40) | i, n);
        j->made += mix64(p[0]);
        uint64_t *old = atomic_exchange_explicit(&j->slots[k], p, memory_order_acq_rel);
        if (old) {
            j->freed += check_block(old, j->min, j->max);
            free(old);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    param_t ps[] = {
        {"threads", "threads", 4},
        {"ops", "blocks made per thread", 2000000},
        {"slots", "slots of the shared exchange array", 4096},
        {"min", "smallest block size (>= 16)", 16},
        {"max", "largest block size", 16384},
        {"seed", "PRNG seed", 1},
    };
    PARAMS_PARSE(ps, "Random-size blocks passed between threads at random through a shared exchange array.");
    uint64_t T = P(ps, "threads"), ops = P(ps, "ops"), nslots = P(ps, "slots");
    uint64_t min = P(ps, "min"), max = P(ps, "max");
    if (T == 0 || nslots == 0 || min < 16 || max < min)
        die("need threads > 0, slots > 0, 16 <= min <= max");
    _Atomic(uint64_t *) *slots = calloc(nslots, sizeof *slots);
    job_t *jobs = calloc(T, sizeof *jobs);
    pthread_t *tid = calloc(T, sizeof *tid);
    if (!slots || !jobs || !tid)
        die("out of memory");
    for (uint64_t t = 0; t < T; t++)
        jobs[t] = (job_t){t, ops, nslots, min, max, P(ps, "seed"), slots, 0, 0};
    uint64_t t0 = now_ns();
    for (uint64_t t = 0; t < T; t++)
        if (pthread_create(&tid[t], NULL, worker, &jobs[t]))
            die("pthread_create failed");
    for (uint64_t t = 0; t < T; t++)
        pthread_join(tid[t], NULL);
    uint64_t elapsed = now_ns() - t0;
    uint64_t made = 0, freed = 0;
    for (uint64_t t = 0; t < T; t++)
        made += jobs[t].made, freed += jobs[t].freed;
    for (uint64_t k = 0; k < nslots; k++) {
        uint64_t *p = atomic_load(&slots[k]);
        if (p) {
            freed += check_block(p, min, max);
            free(p);
        }
    }
    if (freed != made)
        die("blocks lost or duplicated: tags made %016" PRIx64 ", freed %016" PRIx64, made, freed);
    free(slots), free(jobs), free(tid);
    uint64_t total = T * ops;
    printf("RESULT ops_per_sec=%.0f checksum=%016" PRIx64 " ops=%" PRIu64 " threads=%" PRIu64
           " seconds=%.4f\n", total / secs(elapsed), made, total, T, secs(elapsed));
    return 0;
}
