/* realloc_growth: buffers that grow by realloc, as strings and vectors do, then shrink and die.
 * `objects` buffers live at once and take turns, so a neighbour often blocks in-place growth.
 * A buffer either appends a few bytes at a time (string builder) or doubles (vector), up to a
 * random target; then it shrinks by halves three times and is freed. Each buffer is filled with
 * its own byte value (memset, so the allocator's work dominates), checked at sampled positions
 * after every realloc and in full before free.
 * One op = one realloc call. */
#include "common.h"

typedef struct {
    unsigned char *p;
    size_t len, target;
    uint64_t id;
    int doubling, shrinks;
} buf_t;

/* One byte value per buffer: 1..255, different for neighbouring ids. */
static inline unsigned char pat(uint64_t id) { return (unsigned char)(1 + (id * 131) % 255); }

static void fill(buf_t *b, size_t from, size_t to)
{
    memset(b->p + from, pat(b->id), to - from);
}

static void check(const buf_t *b, size_t upto, size_t probe)
{
    unsigned char v = pat(b->id);
    if (upto && (b->p[0] != v || b->p[upto - 1] != v || b->p[probe % upto] != v))
        die("buffer %" PRIu64 " lost its contents across realloc (len %zu)", b->id, upto);
}

static void start(buf_t *b, rng_t *r, uint64_t id, uint64_t maxlen)
{
    b->id = id;
    b->doubling = rng_next(r) % 4 == 0;
    b->target = b->doubling ? rng_log_range(r, 1024, maxlen) : rng_log_range(r, 64, maxlen / 64 < 64 ? 64 : maxlen / 64);
    b->len = (size_t)rng_range(r, 1, 32);
    b->shrinks = 0;
    b->p = malloc(b->len);
    if (!b->p)
        die("malloc(%zu) failed", b->len);
    fill(b, 0, b->len);
}

int main(int argc, char **argv)
{
    param_t ps[] = {
        {"steps", "realloc calls", 3000000},
        {"objects", "buffers alive at once", 16},
        {"maxlen", "largest buffer (bytes) for doubling growth", 1 << 20},
        {"seed", "PRNG seed", 1},
    };
    PARAMS_PARSE(ps, "Growing and shrinking buffers by realloc (strings appended to, vectors doubled).");
    uint64_t steps = P(ps, "steps"), nobj = P(ps, "objects"), maxlen = P(ps, "maxlen");
    if (nobj == 0 || maxlen < 1024)
        die("need objects > 0 and maxlen >= 1024");
    buf_t *b = calloc(nobj, sizeof *b);
    if (!b)
        die("out of memory");
    rng_t r;
    rng_seed(&r, P(ps, "seed"));
    uint64_t next_id = 0, checksum = 0, lives = 0;
    for (uint64_t k = 0; k < nobj; k++)
        start(&b[k], &r, next_id++, maxlen);

    uint64_t t0 = now_ns();
    for (uint64_t s = 0; s < steps; s++) {
        buf_t *o = &b[s % nobj];
        size_t old = o->len, len;
        if (o->len < o->target)
            len = o->doubling ? o->len * 2 : o->len + (size_t)rng_range(&r, 1, 64);
        else
            len = o->len / 2 ? o->len / 2 : 1, o->shrinks++;
        unsigned char *q = realloc(o->p, len);
        if (!q)
            die("realloc(%zu) failed", len);
        o->p = q;
        o->len = len;
        check(o, old < len ? old : len, (size_t)rng_next(&r));
        if (len > old)
            fill(o, old, len);
        if (o->shrinks == 3) {
            unsigned char v = pat(o->id);
            for (size_t i = 0; i < o->len; i++)
                if (o->p[i] != v)
                    die("buffer %" PRIu64 " corrupted at byte %zu", o->id, i);
            checksum += mix64(o->id ^ ((uint64_t)o->len << 32));
            free(o->p);
            lives++;
            start(o, &r, next_id++, maxlen);
        }
    }
    uint64_t elapsed = now_ns() - t0;
    for (uint64_t k = 0; k < nobj; k++) {
        check(&b[k], b[k].len, 0);
        checksum += b[k].len;
        free(b[k].p);
    }
    free(b);
    printf("RESULT ops_per_sec=%.0f checksum=%016" PRIx64 " ops=%" PRIu64 " lives=%" PRIu64
           " seconds=%.4f\n", steps / secs(elapsed), checksum, steps, lives, secs(elapsed));
    return 0;
}
