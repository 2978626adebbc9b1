/* thread_churn: many short-lived threads, a few at a time. Each allocates a handful of small
 * blocks, frees most of them itself and hands the rest back to the main thread, which frees them
 * after the thread has exited. Measures per-thread set-up/tear-down cost of the allocator.
 * One op = one thread (created, run, joined). */
#include "common.h"
#include <pthread.h>

typedef struct {
    uint64_t id, allocs, handback, seed;
    void **kept;
    size_t *kept_size;
    uint64_t *kept_tag;
    uint64_t checksum;
} job_t;

static void *worker(void *arg)
{
    job_t *j = arg;
    rng_t r;
    rng_seed(&r, j->seed ^ (j->id << 8));
    void *blk[256];
    size_t size[256];
    uint64_t tag[256];
    uint64_t n = j->allocs < 256 ? j->allocs : 256;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t x = rng_next(&r);
        size[i] = (x & 15) == 0 ? (size_t)rng_range(&r, 512, 4096) : (size_t)rng_range(&r, 16, 256);
        blk[i] = malloc(size[i]);
        if (!blk[i])
            die("malloc(%zu) failed", size[i]);
        tag[i] = mix64(x);
        tag_write(blk[i], size[i], tag[i]);
    }
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (!tag_ok(blk[i], size[i], tag[i]))
            die("thread %" PRIu64 ": block %" PRIu64 " corrupted", j->id, i);
        sum += tag[i];
        if (i < j->handback) {
            j->kept[i] = blk[i], j->kept_size[i] = size[i], j->kept_tag[i] = tag[i];
        } else {
            free(blk[i]);
        }
    }
    j->checksum = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    param_t ps[] = {
        {"threads", "threads in total", 40000},
        {"conc", "threads alive at once", 4},
        {"allocs", "blocks per thread (<= 256)", 64},
        {"handback", "blocks per thread freed by the main thread after the thread exits", 8},
        {"seed", "PRNG seed", 1},
    };
    PARAMS_PARSE(ps, "Many short-lived threads that allocate a little (thread cache set-up and tear-down).");
    uint64_t total = P(ps, "threads"), conc = P(ps, "conc"), allocs = P(ps, "allocs"), hb = P(ps, "handback");
    if (conc == 0 || allocs == 0 || allocs > 256 || hb > allocs)
        die("need conc > 0, 0 < allocs <= 256, handback <= allocs");
    job_t *jobs = calloc(conc, sizeof *jobs);
    pthread_t *tid = calloc(conc, sizeof *tid);
    if (!jobs || !tid)
        die("out of memory");
    for (uint64_t c = 0; c < conc; c++) {
        jobs[c].kept = xmalloc((hb + 1) * sizeof(void *));
        jobs[c].kept_size = xmalloc((hb + 1) * sizeof(size_t));
        jobs[c].kept_tag = xmalloc((hb + 1) * sizeof(uint64_t));
    }
    uint64_t checksum = 0, done = 0;
    uint64_t t0 = now_ns();
    while (done < total) {
        uint64_t batch = total - done < conc ? total - done : conc;
        for (uint64_t c = 0; c < batch; c++) {
            jobs[c].id = done + c, jobs[c].allocs = allocs, jobs[c].handback = hb;
            jobs[c].seed = P(ps, "seed");
            if (pthread_create(&tid[c], NULL, worker, &jobs[c]))
                die("pthread_create failed");
        }
        for (uint64_t c = 0; c < batch; c++) {
            pthread_join(tid[c], NULL);
            checksum += jobs[c].checksum;
            for (uint64_t i = 0; i < hb; i++) {
                if (!tag_ok(jobs[c].kept[i], jobs[c].kept_size[i], jobs[c].kept_tag[i]))
                    die("block handed back by thread %" PRIu64 " corrupted", jobs[c].id);
                free(jobs[c].kept[i]);
            }
        }
        done += batch;
    }
    uint64_t elapsed = now_ns() - t0;
    for (uint64_t c = 0; c < conc; c++)
        free(jobs[c].kept), free(jobs[c].kept_size), free(jobs[c].kept_tag);
    free(jobs), free(tid);
    printf("RESULT ops_per_sec=%.0f checksum=%016" PRIx64 " ops=%" PRIu64 " seconds=%.4f\n",
           total / secs(elapsed), checksum, total, secs(elapsed));
    return 0;
}
