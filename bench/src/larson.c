/* larson: a server simulation after Larson & Krishnan. T worker threads each own an array of slots
 * and replace random slots with blocks of random size. Each round ends with every thread exiting;
 * the next round's thread t inherits the array of thread t-1, so it frees blocks allocated by a
 * thread that no longer exists (remote frees into orphaned heaps). One op = one free + one malloc. */
#include "common.h"
#include <pthread.h>

typedef struct {
    void **blk;
    uint32_t *size;
    uint64_t *tag;
    uint64_t checksum;
} slots_t;

typedef struct {
    slots_t *s;
    uint64_t nslots, ops, min, max, seed, round, thread;
} job_t;

static void *worker(void *arg)
{
    job_t *j = arg;
    slots_t *s = j->s;
    rng_t r;
    rng_seed(&r, j->seed ^ (j->round << 32) ^ (j->thread << 16));
    for (uint64_t i = 0; i < j->ops; i++) {
        uint64_t x = rng_next(&r);
        size_t k = (size_t)below(x, j->nslots);
        if (!tag_ok(s->blk[k], s->size[k], s->tag[k]))
            die("round %" PRIu64 " thread %" PRIu64 ": slot %zu corrupted", j->round, j->thread, k);
        s->checksum += s->tag[k];
        free(s->blk[k]);
        size_t n = (size_t)(j->min + below(x << 32, j->max - j->min + 1));
        void *p = malloc(n);
        if (!p)
            die("malloc(%zu) failed", n);
        uint64_t t = mix64(x ^ i);
        tag_write(p, n, t);
        s->blk[k] = p, s->size[k] = (uint32_t)n, s->tag[k] = t;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    param_t ps[] = {
        {"threads", "worker threads per round", 4},
        {"rounds", "rounds (threads exit and are replaced each round)", 20},
        {"ops", "replacements per thread per round", 500000},
        {"slots", "slots per thread", 1000},
        {"min", "smallest block size", 16},
        {"max", "largest block size", 1000},
        {"seed", "PRNG seed", 1},
    };
    PARAMS_PARSE(ps, "Larson-style server: threads replace random blocks, hand their arrays on, and die.");
    uint64_t T = P(ps, "threads"), rounds = P(ps, "rounds"), ops = P(ps, "ops");
    uint64_t nslots = P(ps, "slots"), min = P(ps, "min"), max = P(ps, "max"), seed = P(ps, "seed");
    if (T == 0 || nslots == 0 || min == 0 || max < min || max > UINT32_MAX)
        die("need threads > 0, slots > 0, 0 < min <= max < 4 GiB");

    slots_t *arr = calloc(T, sizeof *arr);
    job_t *jobs = calloc(T, sizeof *jobs);
    pthread_t *tid = calloc(T, sizeof *tid);
    if (!arr || !jobs || !tid)
        die("out of memory");
    rng_t r;
    rng_seed(&r, seed);
    /* The main thread fills every array first, as a server would at start-up. */
    for (uint64_t t = 0; t < T; t++) {
        arr[t].blk = xmalloc(nslots * sizeof(void *));
        arr[t].size = xmalloc(nslots * sizeof(uint32_t));
        arr[t].tag = xmalloc(nslots * sizeof(uint64_t));
        arr[t].checksum = 0;
        for (uint64_t k = 0; k < nslots; k++) {
            uint64_t x = rng_next(&r);
            size_t n = (size_t)rng_range(&r, min, max);
            arr[t].blk[k] = xmalloc(n);
            arr[t].size[k] = (uint32_t)n;
            arr[t].tag[k] = mix64(x);
            tag_write(arr[t].blk[k], n, arr[t].tag[k]);
        }
    }

    uint64_t t0 = now_ns();
    for (uint64_t round = 0; round < rounds; round++) {
        for (uint64_t t = 0; t < T; t++) {
            /* Thread t of this round takes over the array of thread t-1 of the last round. */
            jobs[t] = (job_t){&arr[(t + round) % T], nslots, ops, min, max, seed, round, t};
            if (pthread_create(&tid[t], NULL, worker, &jobs[t]))
                die("pthread_create failed");
        }
        for (uint64_t t = 0; t < T; t++)
            pthread_join(tid[t], NULL);
    }
    uint64_t elapsed = now_ns() - t0;

    uint64_t checksum = 0;
    for (uint64_t t = 0; t < T; t++) {
        for (uint64_t k = 0; k < nslots; k++) {
            if (!tag_ok(arr[t].blk[k], arr[t].size[k], arr[t].tag[k]))
                die("array %" PRIu64 " slot %" PRIu64 " corrupted at the end", t, k);
            checksum += arr[t].tag[k];
            free(arr[t].blk[k]);
        }
        checksum += arr[t].checksum;
        free(arr[t].blk), free(arr[t].size), free(arr[t].tag);
    }
    free(arr), free(jobs), free(tid);
    uint64_t total = T * rounds * ops;
    printf("RESULT ops_per_sec=%.0f checksum=%016" PRIx64 " ops=%" PRIu64 " threads=%" PRIu64
           " seconds=%.4f\n", total / secs(elapsed), checksum, total, T, secs(elapsed));
    return 0;
}
