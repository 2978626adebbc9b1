/* Negative test, driven by tests/run_c_tests.sh, hakmem only (glibc, mimalloc and jemalloc each
 * react differently; README "What hakmem detects" lists what they do with the same runs).
 * Promise: the classic heap attacks never make malloc return the attacker's address, and are
 * stopped with a clear message. One attack per run, chosen by argv[1]:
 *   overflow8 / overflow16  a live block overflows into the next (free) block: its first 8 / 16
 *                           bytes are set to the attacker's address; then mallocs of that size
 *   uaf8                    the first 8 bytes of a freed block are set to the attacker's address
 *                           (a write after free); then mallocs of that size
 *   df_now                  free(p); free(p)
 *   df_later                free(p); other frees; free(p)
 *   df_remote               another thread frees p twice
 *   df_local_remote         free(p) here, then another thread frees p
 *   df_refilled             p's slab fills up, p and 10 neighbours are freed, the neighbours are
 *                           allocated again (p's slab is the current one again), then free(p)
 *   unissued                free() of the block after the first two of a fresh size class (hakmem
 *                           carved it, it was never handed out)
 * Expected with hakmem: overflow and uaf runs stop with "hakmem: heap corruption detected" (exit
 * 134) whatever HAKMEM_INVALID_FREE says; the others print "hakmem: free(): double free ...
 * ADDRESS" with ADDRESS the "target=0x..." line of stdout and abort (134), or with
 * HAKMEM_INVALID_FREE=report carry on, check that the heap still hands out distinct, intact
 * blocks, print "continued" and exit 0. A malloc that returns the attacker's address prints
 * GOT_TARGET. */
#include "hk_test.h"
#include <pthread.h>

#define SZ 64
static void (*volatile p_free)(void *) = free;
static _Alignas(64) char attacker_buffer[4096];

static void announce(void *t) {
    printf("target=%p\n", t);
    fflush(stdout);
}

/* mallocs of SZ until the attacker's address comes back (it must not) or n calls were made */
static void malloc_many(int n, void *target) {
    for (int i = 0; i < n; i++) {
        /* opaque: GCC may assume a fresh block never equals a global and drop the call */
        void *r = hk_opaque(malloc(SZ));
        if ((uintptr_t)r == (uintptr_t)hk_opaque(target)) {
            printf("GOT_TARGET after %d mallocs\n", i + 1);
            fflush(stdout);
            return;
        }
    }
}

/* report mode: the heap must still hand out distinct blocks that keep their contents */
static int heap_is_sane(void) {
    enum { N = 3000 };
    static unsigned char *v[N];
    for (int i = 0; i < N; i++) {
        v[i] = malloc(SZ);
        REQUIRE(v[i] != NULL, "malloc failed");
        hk_fill(v[i], SZ, (unsigned)i);
    }
    for (int i = 0; i < N; i++) CHECK(hk_check(v[i], SZ, (unsigned)i) == SIZE_MAX, "block %d was overwritten", i);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            if (v[i] == v[j]) {
                CHECK(0, "the same block %p was handed out twice", (void *)v[i]);
                i = N;
                break;
            }
    for (int i = 0; i < N; i++) free(v[i]);
    return hk_nfail == 0;
}

static void overflow(int n) {
    enum { K = 64 };
    unsigned char *b[K];
    for (int i = 0; i < K; i++) b[i] = malloc(SZ);
    /* a live block p whose next neighbour q (the closest block above it) is one of ours */
    int pi = -1, qi = -1;
    for (int i = 0; i < K && pi < 0; i++) {
        int best = -1;
        for (int j = 0; j < K; j++)
            if (b[j] > b[i] && (best < 0 || b[j] < b[best])) best = j;
        if (best >= 0 && (size_t)(b[best] - b[i]) <= malloc_usable_size(b[i]) + 96) pi = i, qi = best;
    }
    REQUIRE(pi >= 0, "no two adjacent blocks among %d", K);
    unsigned char *p = b[pi], *q = b[qi];
    p_free(q);
    announce(attacker_buffer);
    /* the overflow: from p's end up to q, bytes keep their values (a careful attacker writes
     * back what is there); then n bytes at q get the attacker's address */
    unsigned char *end = p + malloc_usable_size(p);
    unsigned char keep[64];
    size_t gap = (size_t)(q - end);
    memcpy(keep, end, gap);
    void *t = attacker_buffer;
    unsigned char payload[16];
    memcpy(payload, &t, 8);
    memcpy(payload + 8, &t, 8);
    memcpy(end, keep, gap);
    memcpy(q, payload, (size_t)n);
    malloc_many(5000, attacker_buffer);
}

static void uaf8(void) {
    void *keep[8];
    for (int i = 0; i < 8; i++) keep[i] = malloc(SZ);
    unsigned char *p = malloc(SZ);
    p_free(p);
    announce(attacker_buffer);
    void *t = attacker_buffer;
    memcpy(p, &t, 8); /* the write after free */
    malloc_many(5000, attacker_buffer);
    (void)keep;
}

static void *free_twice(void *p) {
    p_free(p);
    p_free(p);
    return NULL;
}
static void *free_once(void *p) {
    p_free(p);
    return NULL;
}

static void df(const char *mode) {
    void *keep[16];
    for (int i = 0; i < 16; i++) keep[i] = malloc(SZ);
    void *p = malloc(SZ);
    REQUIRE(p != NULL, "malloc failed");
    memset(p, 0x44, SZ);
    announce(p);
    pthread_t th;
    if (!strcmp(mode, "df_now")) {
        p_free(p);
        p_free(p);
    } else if (!strcmp(mode, "df_later")) {
        p_free(p);
        for (int i = 0; i < 16; i += 2) p_free(keep[i]);
        p_free(p);
    } else if (!strcmp(mode, "df_remote")) {
        pthread_create(&th, NULL, free_twice, p);
        pthread_join(th, NULL);
    } else if (!strcmp(mode, "df_local_remote")) {
        p_free(p);
        pthread_create(&th, NULL, free_once, p);
        pthread_join(th, NULL);
    }
}

static void df_refilled(void) {
    enum { N = 3000, K = 10, MORE = 20000 };
    static void *b[N];
    for (int i = 0; i < N; i++) b[i] = malloc(SZ);
    void *p = b[0];
    announce(p);
    p_free(p);
    for (int i = 1; i <= K; i++) free(b[i]);
    /* allocate until every neighbour came back: p must still be free then */
    int back = 0;
    for (int i = 0; i < MORE && back < K; i++) {
        void *r = malloc(SZ);
        REQUIRE(r != p, "p was handed out again before its neighbours: the scenario does not hold");
        for (int j = 1; j <= K; j++)
            if (r == b[j]) back++;
    }
    REQUIRE(back == K, "only %d of the %d neighbours came back", back, K);
    p_free(p);
}

static void unissued(void) {
    /* a size class nothing else in this program uses: its first slab is carved fresh (a page's
     * worth at first: three blocks of 1280 bytes), and the block after the second one handed
     * out is carved but not handed out yet */
    unsigned char *p1 = malloc(1200), *p2 = malloc(1200);
    REQUIRE(p1 != NULL && p2 > p1, "malloc failed or blocks out of order");
    unsigned char *q = p2 + (p2 - p1);
    announce(q);
    p_free(q);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODE\n", argv[0]);
        return 2;
    }
    const char *m = argv[1];
    if (!strcmp(m, "overflow8"))
        overflow(8);
    else if (!strcmp(m, "overflow16"))
        overflow(16);
    else if (!strcmp(m, "uaf8"))
        uaf8();
    else if (!strncmp(m, "df_", 3) && strcmp(m, "df_refilled"))
        df(m);
    else if (!strcmp(m, "df_refilled"))
        df_refilled();
    else if (!strcmp(m, "unissued"))
        unissued();
    else {
        fprintf(stderr, "unknown mode %s\n", m);
        return 2;
    }
    if (!heap_is_sane()) return 1;
    printf("continued\n");
    return 0;
}
