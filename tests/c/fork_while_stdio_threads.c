/* Promise: fork() from threads never deadlocks with other threads' stdio (glibc bug 19431's
 * lock cycle: the forking thread must not hold an allocator lock while it waits for stdio's
 * list lock). Per round: 4 threads each fork+waitpid FORKS times, 8 threads loop fopen /
 * getline of a 50 KB line / fclose, 1 thread loops fflush(NULL), until the forkers are done.
 * Each child allocates, reads the file through stdio itself, and _exits 17. ROUNDS rounds;
 * a watchdog fails the test if it hangs. */
#include <pthread.h>
#include <sys/wait.h>

#include "hk_test.h"

#define FORKERS 4
#define READERS 8
#define ROUNDS 4
#define FORKS 25
#define LINE 50000

static char path[] = "/tmp/hk_fork_stdio_XXXXXX";
static volatile int stop;

static size_t read_line(void) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    free(line);
    fclose(f);
    return n < 0 ? 0 : (size_t)n;
}

static void *forker(void *arg) {
    hk_rng r;
    hk_seed(&r, (uint64_t)(uintptr_t)arg);
    for (int i = 0; i < FORKS; i++) {
        pid_t pid = fork();
        REQUIRE(pid >= 0, "fork failed: %s", strerror(errno));
        if (pid == 0) {
            /* the child's heap and stdio both work, whatever the other threads were doing */
            void *p[16];
            for (int k = 0; k < 16; k++) {
                p[k] = malloc(hk_logsize(&r, 1, k == 0 ? (1 << 20) : 70000));
                if (!p[k]) _exit(3);
            }
            for (int k = 0; k < 16; k++) free(p[k]);
            _exit(read_line() == LINE + 1 ? 17 : 4);
        }
        int st = 0;
        pid_t w;
        do w = waitpid(pid, &st, 0);
        while (w < 0 && errno == EINTR);
        REQUIRE(w == pid, "waitpid: %s", strerror(errno));
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 17, "child status %#x (3: malloc NULL, 4: getline in child)", st);
    }
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    long n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED) && n < 100000) {
        CHECK(read_line() == LINE + 1, "getline of the %d-byte line failed", LINE);
        n++;
    }
    return NULL;
}

static void *flusher(void *arg) {
    (void)arg;
    long n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED) && n < 10000000) {
        CHECK(fflush(NULL) == 0, "fflush(NULL): %s", strerror(errno));
        n++;
    }
    return NULL;
}

int main(void) {
    hk_watchdog("fork_while_stdio_threads", 30);
    int fd = mkstemp(path);
    REQUIRE(fd >= 0, "mkstemp: %s", strerror(errno));
    FILE *f = fdopen(fd, "w");
    REQUIRE(f != NULL, "fdopen: %s", strerror(errno));
    for (int i = 0; i < LINE; i++) fputc('x', f);
    fputc('\n', f);
    REQUIRE(fclose(f) == 0, "fclose: %s", strerror(errno));

    for (int round = 0; round < ROUNDS; round++) {
        pthread_t fk[FORKERS], rd[READERS], fl;
        stop = 0;
        for (int i = 0; i < READERS; i++) REQUIRE(pthread_create(&rd[i], NULL, reader, NULL) == 0, "pthread_create");
        REQUIRE(pthread_create(&fl, NULL, flusher, NULL) == 0, "pthread_create");
        for (int i = 0; i < FORKERS; i++)
            REQUIRE(pthread_create(&fk[i], NULL, forker, (void *)(uintptr_t)(round * FORKERS + i + 1)) == 0,
                    "pthread_create");
        for (int i = 0; i < FORKERS; i++) pthread_join(fk[i], NULL);
        __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
        pthread_join(fl, NULL);
        for (int i = 0; i < READERS; i++) pthread_join(rd[i], NULL);
    }
    unlink(path);
    return hk_done("fork_while_stdio_threads");
}
