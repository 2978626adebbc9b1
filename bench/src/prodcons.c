/* prodcons: P producer/consumer pairs. Each producer mallocs blocks, writes them and pushes the
 * pointers into a bounded single-producer/single-consumer ring; its consumer checks and frees
 * them, so every free is remote (made by a thread other than the allocating one).
 * One op = one block passed from malloc to free. */
#include "common.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define RING 1024 /* power of two */

typedef struct {
    _Alignas(64) _Atomic uint64_t head; /* written by the producer */
    _Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
    _Alignas(64) void *slot[RING];
    uint64_t pair, count, min, max, seed, checksum;
} ring_t;

static inline void relax(unsigned *spins)
{
    if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        *spins = 0;
        sched_yield(); /* fewer cores than threads: let the other side run */
    }
}

static inline uint64_t block_tag(uint64_t pair, uint64_t seq) { return mix64((pair << 48) ^ seq); }

static void *producer(void *arg)
{
    ring_t *q = arg;
    rng_t r;
    rng_seed(&r, q->seed ^ (q->pair << 20));
    uint64_t head = 0;
    for (uint64_t seq = 0; seq < q->count; seq++) {
        size_t n = (size_t)rng_range(&r, q->min, q->max);
        uint64_t *p = malloc(n);
        if (!p)
            die("malloc(%zu) failed", n);
        uint64_t t = block_tag(q->pair, seq);
        p[0] = t;
        p[1] = n;
        if (n > 16)
            ((unsigned char *)p)[n - 1] = (unsigned char)t;
        unsigned spins = 0;
        while (head - atomic_load_explicit(&q->tail, memory_order_acquire) == RING)
            relax(&spins);
        q->slot[head % RING] = p;
        atomic_store_explicit(&q->head, ++head, memory_order_release);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    ring_t *q = arg;
    uint64_t tail = 0, sum = 0;
    for (uint64_t seq = 0; seq < q->count; seq++) {
        unsigned spins = 0;
        while (atomic_load_explicit(&q->head, memory_order_acquire) == tail)
            relax(&spins);
        uint64_t *p = q->slot[tail % RING];
        atomic_store_explicit(&q->tail, ++tail, memory_order_release);
        uint64_t t = block_tag(q->pair, seq);
        if (p[0] != t || p[1] < q->min || p[1] > q->max ||
            (p[1] > 16 && ((unsigned char *)p)[p[1] - 1] != (unsigned char)t))
            die("pair %" PRIu64 ": block %" PRIu64 " corrupted in transit", q->pair, seq);
        sum += t;
        free(p);
    }
    q->checksum = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    param_t ps[] = {
        {"pairs", "producer/consumer pairs", 1},
        {"count", "blocks per pair", 4000000},
        {"min", "smallest block size (>= 16)", 16},
        {"max", "largest block size", 512},
        {"seed", "PRNG seed", 1},
    };
    PARAMS_PARSE(ps, "Producer/consumer pairs over SPSC rings: every free is a cross-thread free.");
    uint64_t pairs = P(ps, "pairs"), count = P(ps, "count"), min = P(ps, "min"), max = P(ps, "max");
    if (pairs == 0 || min < 16 || max < min)
        die("need pairs > 0 and 16 <= min <= max");
    ring_t *q = aligned_alloc(64, pairs * sizeof(ring_t));
    pthread_t *tid = calloc(2 * pairs, sizeof *tid);
    if (!q || !tid)
        die("out of memory");
    for (uint64_t i = 0; i < pairs; i++) {
        atomic_init(&q[i].head, 0);
        atomic_init(&q[i].tail, 0);
        q[i].pair = i, q[i].count = count, q[i].min = min, q[i].max = max;
        q[i].seed = P(ps, "seed"), q[i].checksum = 0;
    }
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < pairs; i++)
        if (pthread_create(&tid[2 * i], NULL, consumer, &q[i]) ||
            pthread_create(&tid[2 * i + 1], NULL, producer, &q[i]))
            die("pthread_create failed");
    for (uint64_t i = 0; i < 2 * pairs; i++)
        pthread_join(tid[i], NULL);
    uint64_t elapsed = now_ns() - t0;
    uint64_t checksum = 0;
    for (uint64_t i = 0; i < pairs; i++)
        checksum += q[i].checksum;
    free(q), free(tid);
    uint64_t total = pairs * count;
    printf("RESULT ops_per_sec=%.0f checksum=%016" PRIx64 " ops=%" PRIu64 " pairs=%" PRIu64
           " seconds=%.4f\n", total / secs(elapsed), checksum, total, pairs, secs(elapsed));
    return 0;
}
