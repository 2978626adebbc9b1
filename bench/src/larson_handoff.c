/* larson_handoff: a server whose threads pass work on to each other while they all keep running
 * (Larson & Krishnan's benchmark as it is usually run). T threads stand in a ring; each holds one
 * array of slots, replaces `batch` random slots (free the old block, malloc a random size), then
 * hands the whole array to the next thread and takes the one its predecessor handed on. Most
 * blocks a thread frees were allocated by another live thread: remote frees, continuously.
 * Thread t works on array (t - k) mod T in its k-th batch, so the checksum is deterministic.
 * One op = one free + one malloc. */
#include "common.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

typedef struct {
    void **blk;
    uint32_t *size;
    uint64_t *tag;
    uint64_t checksum;
} slots_t;

/* A single-producer single-consumer queue of arrays; T + 1 places, so it never fills. */
typedef struct {
    _Alignas(64) _Atomic uint64_t head;
    _Alignas(64) _Atomic uint64_t tail;
    _Alignas(64) slots_t **q;
    uint64_t cap;
} mailbox_t;

typedef struct {
    uint64_t id, nslots, batch, batches, min, max, seed;
    mailbox_t *in, *out;
    slots_t *first;
} job_t;

static inline void relax(unsigned *spins)
{
    if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        *spins = 0;
        sched_yield(); /* fewer cores than threads: let the others run */
    }
}

static void post(mailbox_t *m, slots_t *s)
{
    uint64_t h = atomic_load_explicit(&m->head, memory_order_relaxed);
    m->q[h % m->cap] = s;
    atomic_store_explicit(&m->head, h + 1, memory_order_release);
}

static slots_t *take(mailbox_t *m)
{
    uint64_t t = atomic_load_explicit(&m->tail, memory_order_relaxed);
    unsigned spins = 0;
    while (atomic_load_explicit(&m->head, memory_order_acquire) == t)
        relax(&spins);
    slots_t *s = m->q[t % m->cap];
    atomic_store_explicit(&m->tail, t + 1, memory_order_release);
    return s;
}

static void *worker(void *arg)
{
    job_t *j = arg;
    slots_t *s = j->first;
    for (uint64_t k = 0; k < j->batches; k++) {
        rng_t r;
        rng_seed(&r, j->seed ^ (k << 24) ^ (j->id << 8));
        for (uint64_t i = 0; i < j->batch; i++) {
            uint64_t x = rng_next(&r);
            size_t slot = (size_t)below(x, j->nslots);
            if (!tag_ok(s->blk[slot], s->size[slot], s->tag[slot]))
                die("thread %" PRIu64 " batch %" PRIu64 ": slot %zu corrupted", j->id, k, slot);
            s->checksum += s->tag[slot];
            free(s->blk[slot]);
            size_t n = (size_t)(j->min + below(x << 32, j->max - j->min + 1));
            void *p = malloc(n);
            if (!p)
                die("malloc(%zu) failed", n);
            uint64_t t = mix64(x ^ (k << 40) ^ i);
            tag_write(p, n, t);
            s->blk[slot] = p, s->size[slot] = (uint32_t)n, s->tag[slot] = t;
        }
        post(j->out, s);
        s = take(j->in);
    }
    /* The array in hand goes back to the main thread through the job. */
    j->first = s;
    return NULL;
}

int main(int argc, char **argv)
{
    param_t ps[] = {
        {"threads", "threads in the ring", 4},
        {"batches", "arrays each thread works on (one hand-off after each)", 2000},
        {"batch", "replacements per array before it is handed on", 500},
        {"slots", "slots per array", 1000},
        {"min", "smallest block size", 16},
        {"max", "largest block size", 1000},
        {"seed", "PRNG seed", 1},
    };
    PARAMS_PARSE(ps, "Larson-style server: live threads replace random blocks and hand their arrays on.");
    uint64_t T = P(ps, "threads"), batches = P(ps, "batches"), batch = P(ps, "batch");
    uint64_t nslots = P(ps, "slots"), min = P(ps, "min"), max = P(ps, "max"), seed = P(ps, "seed");
    if (T == 0 || nslots == 0 || min == 0 || max < min || max > UINT32_MAX)
        die("need threads > 0, slots > 0, 0 < min <= max < 4 GiB");

    slots_t *arr = calloc(T, sizeof *arr);
    mailbox_t *box = aligned_alloc(64, T * sizeof *box);
    job_t *jobs = calloc(T, sizeof *jobs);
    pthread_t *tid = calloc(T, sizeof *tid);
    if (!arr || !box || !jobs || !tid)
        die("out of memory");
    rng_t r;
    rng_seed(&r, seed);
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
        atomic_init(&box[t].head, 0);
        atomic_init(&box[t].tail, 0);
        box[t].cap = T + 1;
        box[t].q = xmalloc((T + 1) * sizeof(slots_t *));
    }
    for (uint64_t t = 0; t < T; t++)
        jobs[t] = (job_t){t, nslots, batch, batches, min, max, seed, &box[t], &box[(t + 1) % T], &arr[t]};

    uint64_t t0 = now_ns();
    /* The threads' first arrays are filled by the main thread, as a server's would be at start-up. */
    for (uint64_t t = 0; t < T; t++)
        if (pthread_create(&tid[t], NULL, worker, &jobs[t]))
            die("pthread_create failed");
    for (uint64_t t = 0; t < T; t++)
        pthread_join(tid[t], NULL);
    uint64_t elapsed = now_ns() - t0;

    uint64_t checksum = 0;
    for (uint64_t t = 0; t < T; t++) {
        slots_t *s = &arr[t];
        for (uint64_t k = 0; k < nslots; k++) {
            if (!tag_ok(s->blk[k], s->size[k], s->tag[k]))
                die("array %" PRIu64 " slot %" PRIu64 " corrupted at the end", t, k);
            checksum += s->tag[k];
            free(s->blk[k]);
        }
        checksum += s->checksum;
        free(s->blk), free(s->size), free(s->tag), free(box[t].q);
    }
    free(arr), free(box), free(jobs), free(tid);
    uint64_t total = T * batches * batch;
    printf("RESULT ops_per_sec=%.0f checksum=%016" PRIx64 " ops=%" PRIu64 " threads=%" PRIu64
           " seconds=%.4f\n", total / secs(elapsed), checksum, total, T, secs(elapsed));
    return 0;
}
