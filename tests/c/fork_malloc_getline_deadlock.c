/* Promise: concurrent fork, getline and fflush(NULL) never deadlock (our own version of
 * glibc's tst-malloc-fork-deadlock, bug 19431). 4 threads fork in a loop (the child _exits 17
 * at once, the parent checks that status), 8 threads each keep one FILE open and loop rewind +
 * getline of a 50000-byte line (getline reallocates while it holds the FILE's lock), and one
 * thread loops fflush(NULL) (which holds stdio's list lock while it takes each FILE's lock),
 * for RUN_MS of wall-clock time. A watchdog fails the test if it hangs. */
#include <pthread.h>
#include <sys/wait.h>

#include "hk_test.h"

#define FORKERS 4
#define READERS 8
#define RUN_MS 1500

static char path[] = "/tmp/hk_fork_getline_XXXXXX";
static int stop;

static void *forker(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        pid_t pid = fork();
        REQUIRE(pid >= 0, "fork failed: %s", strerror(errno));
        if (pid == 0) _exit(17);
        int st = 0;
        pid_t w;
        do w = waitpid(pid, &st, 0);
        while (w < 0 && errno == EINTR);
        REQUIRE(w == pid, "waitpid: %s", strerror(errno));
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 17, "child status %#x, expected exit 17", st);
    }
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL, "fopen(%s): %s", path, strerror(errno));
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        rewind(f);
        char *line = NULL;
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, f);
        CHECK(n == 50001, "getline returned %zd", n);
        free(line);
    }
    fclose(f);
    return NULL;
}

static void *flusher(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) CHECK(fflush(NULL) == 0, "fflush(NULL): %s", strerror(errno));
    return NULL;
}

int main(void) {
    hk_watchdog("fork_malloc_getline_deadlock", 30);
    int fd = mkstemp(path);
    REQUIRE(fd >= 0, "mkstemp: %s", strerror(errno));
    FILE *f = fdopen(fd, "w");
    REQUIRE(f != NULL, "fdopen: %s", strerror(errno));
    for (int i = 0; i < 50000; i++) fputc('x', f);
    fputc('\n', f);
    REQUIRE(fclose(f) == 0, "fclose: %s", strerror(errno));

    pthread_t fk[FORKERS], rd[READERS], fl;
    for (int i = 0; i < FORKERS; i++) REQUIRE(pthread_create(&fk[i], NULL, forker, NULL) == 0, "pthread_create");
    for (int i = 0; i < READERS; i++) REQUIRE(pthread_create(&rd[i], NULL, reader, NULL) == 0, "pthread_create");
    REQUIRE(pthread_create(&fl, NULL, flusher, NULL) == 0, "pthread_create");
    struct timespec ts = {RUN_MS / 1000, (RUN_MS % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(fl, NULL);
    for (int i = 0; i < READERS; i++) pthread_join(rd[i], NULL);
    for (int i = 0; i < FORKERS; i++) pthread_join(fk[i], NULL);
    unlink(path);
    return hk_done("fork_malloc_getline_deadlock");
}
