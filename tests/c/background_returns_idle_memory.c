/* Promise: with HAKMEM_BACKGROUND=1 (the program runs itself again with it set when it is not,
 * and with HAKMEM_PURGE=dontneed unless it is set: MADV_FREE'd pages count as resident until the
 * kernel needs them),
 * the memory of threads that freed their blocks and exited goes back to the OS while the program
 * does nothing more; the same in a forked child (which starts its own background thread), and
 * fork with the background thread running neither deadlocks nor breaks malloc. glibc passes too
 * (it gives such memory back as it is freed). Without the background thread hakmem keeps it
 * until the program allocates again (about 30 MiB here). */
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hk_test.h"

#define THREADS 8
#define BLOCKS 64
#define SIZE (64 << 10)
#define SLACK_KIB (8 << 10) /* what may stay resident past the start, of ~32 MiB the burst made */

static void *worker(void *arg) {
    void *p[BLOCKS];
    for (int r = 0; r < 4; r++) {
        for (int i = 0; i < BLOCKS; i++) {
            p[i] = malloc(SIZE);
            REQUIRE(p[i] != NULL, "malloc(%d) failed", SIZE);
            memset(p[i], 0x5A, SIZE);
        }
        for (int i = 0; i < BLOCKS; i++) free(p[i]);
    }
    return arg;
}

/* Threads fill, free and exit; returns the resident KiB it peaked near. */
static long burst(void) {
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) REQUIRE(pthread_create(&t[i], NULL, worker, NULL) == 0, "pthread_create");
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    return hk_rss() / 1024;
}

/* Waits up to 10 s, allocating nothing, for resident memory to come back within SLACK_KIB of
 * `base`; the last reading. */
static long settle(long base) {
    long now = hk_rss() / 1024;
    for (int i = 0; i < 200 && now - base > SLACK_KIB; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        now = hk_rss() / 1024;
    }
    return now;
}

int main(int argc, char **argv) {
    (void)argc;
    const char *check = getenv("HAKMEM_CHECK");
    if (check && strcmp(check, "1") == 0) {
        printf("ok: checking mode has no background thread (its calls all take one lock)\n");
        return 0;
    }
    if (!getenv("HAKMEM_BACKGROUND")) {
        setenv("HAKMEM_BACKGROUND", "1", 1);
        setenv("HAKMEM_PURGE", "dontneed", 0);
        execv("/proc/self/exe", argv);
        REQUIRE(0, "execv(/proc/self/exe) failed");
    }
    long base = hk_rss() / 1024;
    long peak = burst();
    long after = settle(base);
    REQUIRE(after - base <= SLACK_KIB, "resident %ld KiB at start, %ld after the threads exited, still %ld after 10 s idle",
            base, peak, after);
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork failed");
    if (pid == 0) {
        long cbase = hk_rss() / 1024;
        long cpeak = burst();
        long cafter = settle(cbase);
        if (cafter - cbase > SLACK_KIB) {
            fprintf(stderr, "FAIL child: resident %ld KiB at start, %ld after the threads exited, still %ld after 10 s idle\n",
                    cbase, cpeak, cafter);
            _exit(1);
        }
        _exit(0);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid, "waitpid");
    REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the forked child failed (status %d)", st);
    long again = settle(base);
    REQUIRE(again - base <= SLACK_KIB, "parent after fork: %ld KiB resident against %ld at start", again, base);
    printf("ok: %ld KiB at start, %ld after the burst, %ld idle\n", base, peak, after);
    return 0;
}
