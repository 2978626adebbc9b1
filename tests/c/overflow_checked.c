/* Driven by tests/run_c_tests.sh with HAKMEM_CHECK=1, hakmem only.
 * Promise: with HAKMEM_CHECK=1 a write past the end of a block, of any length from 1 byte and
 * of any byte value, is reported at free ("hakmem" ... "heap overrun" on stderr, then SIGABRT),
 * for every size class (each class's edges: no spare byte before the trailer, one, several),
 * for large blocks, and for blocks from calloc, realloc, aligned_alloc, memalign,
 * posix_memalign and valloc; and a block used exactly up to its size is never reported.
 * Each case runs in a child that overruns NB blocks the same way and frees them: a miss needs
 * all NB keyed canaries to equal the bytes written (2^-24 for a 1-byte overflow). Exits 0
 * when every case was reported. */
#include <sys/wait.h>

#include "hk_test.h"

#define NB 3

enum { F_MALLOC, F_CALLOC, F_REALLOC, F_ALIGNED, F_MEMALIGN, F_POSIX, F_VALLOC, NF };
static const char *fname[NF] = {"malloc", "calloc", "realloc", "aligned_alloc(64)", "memalign(4096)",
                                "posix_memalign(2 MiB)", "valloc"};

static void *get(int f, size_t n) {
    void *p = NULL;
    switch (f) {
    case F_MALLOC: return malloc(n);
    case F_CALLOC: return calloc(1, n);
    case F_REALLOC: p = malloc(n / 2 + 1); return realloc(p, n);
    case F_ALIGNED: return aligned_alloc(64, n);
    case F_MEMALIGN: return memalign(4096, n);
    case F_POSIX: return posix_memalign(&p, 2 << 20, n) == 0 ? p : NULL;
    default: return valloc(n);
    }
}

static int cases, misses;

/* One case in a child: NB blocks of n bytes from f, each overrun by len bytes of value v. */
static void overrun(int f, size_t n, size_t len, int v) {
    int fd[2];
    REQUIRE(pipe(fd) == 0, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        /* all allocated first: a long overrun must not run into a free neighbour's link */
        void *p[NB];
        for (int i = 0; i < NB; i++)
            if (!(p[i] = get(f, n))) _exit(3);
        for (int i = 0; i < NB; i++) {
            memset(p[i], 'x', n);
            memset((char *)p[i] + n, v, len);
        }
        for (int i = 0; i < NB; i++) free(hk_opaque(p[i]));
        _exit(0);
    }
    close(fd[1]);
    char buf[4096];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(fd[0], buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)r;
    buf[got] = 0;
    close(fd[0]);
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
    cases++;
    int aborted = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
    int said = strstr(buf, "hakmem") && strstr(buf, "heap overrun");
    if (!aborted || !said) misses++;
    CHECK(aborted && said, "%s(%zu) overrun by %zu byte(s) of %#x: %s, stderr: %.200s", fname[f], n, len, v,
          WIFEXITED(st) ? (WEXITSTATUS(st) == 3 ? "allocation failed" : "not reported") : "killed otherwise", buf);
}

/* hakmem's size classes: 16-byte steps to 128, then four per doubling to 256 KiB. */
static size_t class_size(int c) {
    if (c < 8) return (size_t)(c + 1) * 16;
    int g = (c - 8) / 4, j = (c - 8) % 4;
    return ((size_t)1 << (g + 7)) + (size_t)(j + 1) * ((size_t)1 << (g + 5));
}

int main(void) {
    const char *chk = getenv("HAKMEM_CHECK");
    REQUIRE(chk && strcmp(chk, "1") == 0, "run me with HAKMEM_CHECK=1 under hakmem");
    hk_watchdog("overflow_checked", 100);

    /* no false reports: every size used exactly up to its end */
    for (size_t n = 0; n <= 5000; n++) {
        char *p = malloc(n);
        REQUIRE(p != NULL, "malloc(%zu)", n);
        memset(p, 0xAB, n);
        free(p);
    }
    for (int f = 0; f < NF; f++)
        for (size_t n = 1; n < (3 << 20); n = n * 3 + 7) {
            char *p = get(f, n);
            REQUIRE(p != NULL, "%s(%zu)", fname[f], n);
            memset(p, 0, n);
            free(p);
        }

    /* every class, at its edges: a checked block of n bytes needs n + 8 (the trailer), so
     * n = S - 8 leaves no spare byte in class S, S - 9 one, S - 12 four */
    int values[] = {0x00, 'x', 0xAB, 0xFF};
    for (int c = 0; c < 52; c++) {
        size_t s = class_size(c);
        size_t ns[] = {s - 8, s - 9, s - 12, s - 1};
        for (int i = 0; i < 4; i++) {
            size_t n = ns[i];
            if (n == 0 || n > s) continue;
            for (int v = 0; v < 4; v++) overrun(F_MALLOC, n, 1, values[v]);
            overrun(F_MALLOC, n, 1, (int)(n & 0xFF)); /* the size's own low byte */
        }
    }
    for (size_t n = 1; n <= 40; n++) overrun(F_MALLOC, n, 1, 'x');
    /* large blocks: a whole number of pages with the trailer (no spare byte), and others */
    size_t large[] = {(256 << 10) + 1, 300000, (1 << 20) - 16, (1 << 20) - 17, 1 << 20, (2 << 20) + 5, 4096 * 100 - 16};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++)
        for (int v = 0; v < 4; v++) overrun(F_MALLOC, large[i], 1, values[v]);
    /* longer overruns */
    size_t lens[] = {2, 7, 8, 9, 16, 100};
    size_t some[] = {24, 100, 1000, 300000};
    for (size_t i = 0; i < sizeof some / sizeof some[0]; i++)
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) overrun(F_MALLOC, some[i], lens[l], 'x');
    /* the other entry points, small and large */
    size_t fsz[] = {1, 24, 100, 4000, 70000, 300000};
    for (int f = F_CALLOC; f < NF; f++)
        for (size_t i = 0; i < sizeof fsz / sizeof fsz[0]; i++) {
            overrun(f, fsz[i], 1, 0);
            overrun(f, fsz[i], 1, 0xAB);
        }
    printf("%d overrun cases, %d not reported\n", cases, misses);
    return hk_done("overflow_checked");
}
