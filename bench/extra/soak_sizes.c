/* soak_sizes: soak's size mix (90% 16-512 B, 9% 513 B-32 KiB, 1% 32-512 KiB log-uniform), one
 * thread, SLOTS slots replaced at random, one byte written per page as soak does; KEEP keeps one
 * range of sizes and makes every other block 16 B, to see which sizes cost resident memory
 * (bench/README.md, "Where soak's resident memory goes"). At the end it prints the peak and
 * current RSS, the live and peak live bytes, and, for the largest read-write mapping of 16 MiB or
 * more (hakmem's cage), its resident KiB against the KiB of live blocks in it (/proc/self/pagemap).
 * build: gcc -O2 -o /tmp/soak_sizes bench/extra/soak_sizes.c -lm
 * run:   LD_PRELOAD=LIB /tmp/soak_sizes [SLOTS=4000] [OPS=50000000] [KEEP=all]
 * KEEP: all, small (<= 512 B), mid (513 B-32 KiB), big (32-256 KiB), large (> 256 KiB),
 *       one (every big block 100 000 B), two (every big block 60 000 or 200 000 B) */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t s = 88172645463325252ull;
static uint64_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
static double unit(void) { return (rnd() >> 11) * (1.0 / 9007199254740992.0); }
static size_t uni(size_t a, size_t b) { return a + rnd() % (b - a + 1); }
static size_t logu(double lo, double hi) { return (size_t)exp(log(lo) + unit() * (log(hi) - log(lo))); }

static size_t pick(const char *keep) {
    uint64_t x = rnd() % 1000;
    size_t z = x < 900 ? uni(16, 512) : x < 990 ? uni(513, 32768) : logu(32768, 524288);
    int big = z > 32768 && z <= 262144;
    if (!strcmp(keep, "all")) return z;
    if (!strcmp(keep, "small")) return z <= 512 ? z : 16;
    if (!strcmp(keep, "mid")) return z > 512 && z <= 32768 ? z : 16;
    if (!strcmp(keep, "big")) return big ? z : 16;
    if (!strcmp(keep, "large")) return z > 262144 ? z : 16;
    if (!strcmp(keep, "one")) return big ? 100000 : 16;
    if (!strcmp(keep, "two")) return big ? ((rnd() & 1) ? 60000 : 200000) : 16;
    fprintf(stderr, "KEEP must be all, small, mid, big, large, one or two\n");
    exit(2);
}

/* Resident KiB of the largest rw mapping of 16 MiB or more, and the KiB of live blocks in it. */
static void cage_report(void **slot, size_t *size, int n) {
    FILE *m = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned long a, b, ba = 0, bb = 0;
    while (m && fgets(line, sizeof line, m))
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && b - a >= (16ul << 20) && strstr(line, "rw-p") && b - a > bb - ba)
            ba = a, bb = b;
    if (m) fclose(m);
    int pm = open("/proc/self/pagemap", O_RDONLY);
    if (!bb || pm < 0) return;
    size_t np = (bb - ba) >> 12, resident = 0, live = 0;
    unsigned char *in_live = calloc(np, 1);
    for (int k = 0; k < n; k++) {
        unsigned long p = (unsigned long)slot[k];
        if (p < ba || p >= bb) continue;
        for (unsigned long q = p & ~4095ul; q < p + size[k] && q < bb; q += 4096) in_live[(q - ba) >> 12] = 1;
    }
    for (size_t i = 0; i < np; i++) {
        uint64_t e = 0;
        if (pread(pm, &e, 8, (off_t)((ba >> 12) + i) * 8) == 8 && (e >> 63)) resident++, live += in_live[i];
    }
    close(pm);
    printf("largest mapping (%lu MiB): %zu KiB resident, %zu KiB of it in live blocks\n", (bb - ba) >> 20, resident * 4, live * 4);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4000;
    long ops = argc > 2 ? atol(argv[2]) : 50000000;
    const char *keep = argc > 3 ? argv[3] : "all";
    void **slot = calloc(n, sizeof *slot);
    size_t *size = calloc(n, sizeof *size), live = 0, peak = 0;
    for (long i = 0; i < ops; i++) {
        int k = (int)(rnd() % n);
        if (slot[k]) free(slot[k]), live -= size[k];
        size_t z = pick(keep);
        char *p = malloc(z);
        if (!p) return 1;
        for (size_t o = 0; o < z; o += 4096) p[o] = 1;
        p[z - 1] = 1;
        slot[k] = p, size[k] = z, live += z;
        if (live > peak) peak = live;
    }
    cage_report(slot, size, n);
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM", 5) || !strncmp(line, "VmRSS", 5)) fputs(line, stdout);
    printf("keep=%s live %zu KiB, peak live %zu KiB\n", keep, live >> 10, peak >> 10);
    return 0;
}
