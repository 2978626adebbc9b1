/* soak: a bounded long run of a mixed workload (mostly small blocks, some medium, a few large)
 * that samples, every interval: throughput, resident set size (/proc/self/statm) and the
 * kernel-side indicators from getrusage (minor/major faults, context switches). Reports the mean
 * throughput, drift (last interval / first interval), the coefficient of variation of the
 * interval throughputs, and RSS at the first and last sample. Sample lines go to stdout too.
 * Sampling starts after an unsampled warm-up (the working set filling up and first page faults).
 * One op = one free + one malloc. Time-bounded, so its checksum is not comparable across runs. */
#include "common.h"
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

typedef struct {
    uint64_t id, ws, seed;
    _Alignas(64) _Atomic uint64_t ops;
    _Atomic int stop;
    uint64_t checksum;
} worker_t;

static size_t pick_size(rng_t *r)
{
    uint64_t x = rng_next(r) % 1000;
    if (x < 900)
        return (size_t)rng_range(r, 16, 512);
    if (x < 990)
        return (size_t)rng_range(r, 513, 32 << 10);
    return (size_t)rng_log_range(r, 32 << 10, 512 << 10);
}

static void *worker(void *arg)
{
    worker_t *w = arg;
    rng_t r;
    rng_seed(&r, w->seed ^ (w->id << 32));
    void **slot = calloc(w->ws, sizeof *slot);
    size_t *size = calloc(w->ws, sizeof *size);
    uint64_t *tag = calloc(w->ws, sizeof *tag);
    if (!slot || !size || !tag)
        die("out of memory");
    uint64_t sum = 0, i = 0;
    while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
        for (int b = 0; b < 1024; b++, i++) {
            size_t k = (size_t)below(rng_next(&r), w->ws);
            if (slot[k]) {
                if (!tag_ok(slot[k], size[k], tag[k]))
                    die("worker %" PRIu64 ": slot %zu corrupted", w->id, k);
                sum += tag[k];
                free(slot[k]);
            }
            size_t n = pick_size(&r);
            void *p = malloc(n);
            if (!p)
                die("malloc(%zu) failed", n);
            uint64_t t = mix64(i ^ (w->id << 48));
            tag_write(p, n, t);
            /* Touch one byte per page, as a program using its memory would. */
            for (size_t off = 4096; off + 1 < n; off += 4096)
                ((unsigned char *)p)[off] = (unsigned char)off;
            slot[k] = p, size[k] = n, tag[k] = t;
        }
        atomic_store_explicit(&w->ops, i, memory_order_relaxed);
    }
    for (size_t k = 0; k < w->ws; k++)
        free(slot[k]);
    free(slot), free(size), free(tag);
    w->checksum = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    param_t ps[] = {
        {"seconds", "length of the run", 10},
        {"interval_ms", "sampling interval", 1000},
        {"warmup_ms", "unsampled warm-up before the first interval", 1000},
        {"threads", "worker threads", 1},
        {"ws", "live slots per thread", 4000},
        {"seed", "PRNG seed", 1},
    };
    PARAMS_PARSE(ps, "Bounded long run sampling throughput, RSS and faults over time.");
    uint64_t seconds = P(ps, "seconds"), interval = P(ps, "interval_ms"), T = P(ps, "threads");
    if (T == 0 || interval == 0 || seconds * 1000 < 2 * interval)
        die("need threads > 0 and at least two intervals");
    worker_t *w = aligned_alloc(64, T * sizeof *w);
    pthread_t *tid = calloc(T, sizeof *tid);
    uint64_t nsamples = seconds * 1000 / interval;
    double *rate = calloc(nsamples, sizeof *rate);
    long *rss_at = calloc(nsamples, sizeof *rss_at);
    if (!w || !tid || !rate || !rss_at)
        die("out of memory");
    for (uint64_t t = 0; t < T; t++) {
        w[t].id = t, w[t].ws = P(ps, "ws"), w[t].seed = P(ps, "seed"), w[t].checksum = 0;
        atomic_init(&w[t].ops, 0);
        atomic_init(&w[t].stop, 0);
        if (pthread_create(&tid[t], NULL, worker, &w[t]))
            die("pthread_create failed");
    }
    long rss_first = 0, rss_last = 0, rss_max = 0;
    struct rusage ru0, ru;
    struct timespec warm = {(time_t)(P(ps, "warmup_ms") / 1000), (long)(P(ps, "warmup_ms") % 1000) * 1000000};
    while (nanosleep(&warm, &warm))
        ;
    getrusage(RUSAGE_SELF, &ru0);
    uint64_t start = now_ns(), prev_t = start, prev_ops = 0;
    for (uint64_t t = 0; t < T; t++)
        prev_ops += atomic_load_explicit(&w[t].ops, memory_order_relaxed);
    for (uint64_t s = 0; s < nsamples; s++) {
        uint64_t due = start + (s + 1) * interval * 1000000;
        for (uint64_t now = now_ns(); now < due; now = now_ns()) {
            struct timespec ts = {(time_t)((due - now) / 1000000000), (long)((due - now) % 1000000000)};
            nanosleep(&ts, NULL);
        }
        uint64_t ops = 0, now = now_ns();
        for (uint64_t t = 0; t < T; t++)
            ops += atomic_load_explicit(&w[t].ops, memory_order_relaxed);
        rate[s] = (double)(ops - prev_ops) / secs(now - prev_t);
        prev_ops = ops, prev_t = now;
        long rss = rss_kib();
        rss_at[s] = rss;
        getrusage(RUSAGE_SELF, &ru);
        if (s == 0)
            rss_first = rss;
        rss_last = rss;
        if (rss > rss_max)
            rss_max = rss;
        printf("SAMPLE t=%.2f ops_per_sec=%.0f rss_kib=%ld minflt=%ld majflt=%ld nvcsw=%ld nivcsw=%ld\n",
               secs(now - start), rate[s], rss, ru.ru_minflt - ru0.ru_minflt, ru.ru_majflt - ru0.ru_majflt,
               ru.ru_nvcsw - ru0.ru_nvcsw, ru.ru_nivcsw - ru0.ru_nivcsw);
        fflush(stdout);
    }
    uint64_t total = 0;
    for (uint64_t t = 0; t < T; t++) {
        atomic_store(&w[t].stop, 1);
        total += atomic_load(&w[t].ops);
    }
    for (uint64_t t = 0; t < T; t++)
        pthread_join(tid[t], NULL);
    uint64_t checksum = 0;
    for (uint64_t t = 0; t < T; t++)
        checksum += w[t].checksum;
    double mean = 0, var = 0;
    for (uint64_t s = 0; s < nsamples; s++)
        mean += rate[s];
    mean /= (double)nsamples;
    for (uint64_t s = 0; s < nsamples; s++)
        var += (rate[s] - mean) * (rate[s] - mean);
    double cv = nsamples > 1 && mean > 0 ? sqrt(var / (double)(nsamples - 1)) / mean : 0;
    /* RSS drift as the mean of the last quarter of the samples over the mean of the first
     * (single samples swing by a tenth as the size classes' populations wander). */
    uint64_t quarter = nsamples >= 4 ? nsamples / 4 : 1;
    double q1 = 0, q4 = 0;
    for (uint64_t s = 0; s < quarter; s++) {
        q1 += (double)rss_at[s];
        q4 += (double)rss_at[nsamples - quarter + s];
    }
    q1 /= (double)quarter, q4 /= (double)quarter;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT ops_per_sec=%.0f checksum=%016" PRIx64 " ops=%" PRIu64 " drift=%.3f cv=%.3f"
           " rss_first_kib=%ld rss_last_kib=%ld rss_max_kib=%ld rss_growth=%.3f rss_q1_kib=%.0f"
           " rss_q4_kib=%.0f rss_quarters=%.3f minflt=%ld majflt=%ld"
           " nvcsw=%ld nivcsw=%ld samples=%" PRIu64 "\n",
           mean, checksum, total, rate[0] > 0 ? rate[nsamples - 1] / rate[0] : 0, cv, rss_first, rss_last,
           rss_max, rss_first > 0 ? (double)rss_last / (double)rss_first : 0, q1, q4, q1 > 0 ? q4 / q1 : 0,
           ru.ru_minflt - ru0.ru_minflt,
           ru.ru_majflt - ru0.ru_majflt, ru.ru_nvcsw - ru0.ru_nvcsw, ru.ru_nivcsw - ru0.ru_nivcsw, nsamples);
    free(w), free(tid), free(rate), free(rss_at);
    return 0;
}
