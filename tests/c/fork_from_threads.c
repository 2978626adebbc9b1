/* Promise: fork() while other threads are busy in malloc/free leaves a working allocator in the
 * child (no deadlock on a lock held by a thread that does not exist in the child, no corrupted
 * state), and the parent keeps working. 4 threads allocate and free continuously; main forks 12
 * times and each worker forks twice; every child allocates, frees, reallocs, starts 2 threads of
 * its own, and leaves with exit(0) or _exit(0). A child that hangs is killed by alarm(20) and
 * counts as a failure. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "hk_test.h"

#define WORKERS 4
#define MAIN_FORKS 12
#define WORKER_FORKS 2

static volatile int stop;
static pthread_mutex_t pid_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t pids[MAIN_FORKS + WORKERS * WORKER_FORKS];
static int npids;

static void *child_thread(void *arg) {
    hk_rng r;
    hk_seed(&r, (uint64_t)(uintptr_t)arg);
    void *ps[32] = {0};
    for (int i = 0; i < 20000; i++) {
        int k = (int)hk_below(&r, 32);
        free(ps[k]);
        size_t s = hk_logsize(&r, 1, i % 500 == 0 ? (1 << 20) : 8192);
        ps[k] = malloc(s);
        if (!ps[k]) _exit(3);
        memset(ps[k], 1, s);
    }
    for (int k = 0; k < 32; k++) free(ps[k]);
    return NULL;
}

/* Runs in the child: must not hang or crash. Exit codes: 0 ok, 2-5 failures. */
static void child_work(uint64_t seed) {
    alarm(20);
    hk_rng r;
    hk_seed(&r, seed);
    enum { N = 256 };
    void *ps[N] = {0};
    size_t sz[N] = {0};
    for (int i = 0; i < 30000; i++) {
        int k = (int)hk_below(&r, N);
        if (ps[k]) {
            if (hk_check(ps[k], sz[k], (uint64_t)k) != SIZE_MAX) _exit(2);
            free(ps[k]);
        }
        size_t s = hk_logsize(&r, 1, i % 300 == 0 ? (4 << 20) : 16384);
        ps[k] = (i & 1) ? malloc(s) : calloc(1, s);
        if (!ps[k]) _exit(3);
        if (i % 7 == 0) {
            ps[k] = realloc(ps[k], s / 2 + 1);
            if (!ps[k]) _exit(3);
            s = s / 2 + 1;
        }
        sz[k] = s;
        hk_fill(ps[k], s, (uint64_t)k);
    }
    for (int k = 0; k < N; k++) free(ps[k]);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, child_thread, (void *)(uintptr_t)(seed + (uint64_t)i)) != 0) _exit(4);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    /* half the children leave through exit(): atexit handlers, library destructors (the
     * allocator's own, e.g. statistics) and stdio flushing all run in the forked child */
    if (seed & 1) exit(0);
    _exit(0);
}

static void do_fork(uint64_t seed) {
    pid_t pid = fork();
    if (pid == 0) child_work(seed);
    REQUIRE(pid > 0, "fork failed: %s", strerror(errno));
    pthread_mutex_lock(&pid_lock);
    pids[npids++] = pid;
    pthread_mutex_unlock(&pid_lock);
}

static void *worker(void *arg) {
    int me = (int)(intptr_t)arg;
    hk_rng r;
    hk_seed(&r, 77 + (uint64_t)me);
    enum { N = 128 };
    void *ps[N] = {0};
    size_t sz[N] = {0};
    long iter = 0;
    int forks = 0;
    while (!stop) {
        int k = (int)hk_below(&r, N);
        if (ps[k]) {
            size_t bad = hk_check(ps[k], sz[k], (uint64_t)k + 1000 * (uint64_t)me);
            CHECK(bad == SIZE_MAX, "worker %d: block damaged at %zu", me, bad);
            free(ps[k]);
        }
        size_t s = hk_logsize(&r, 1, iter % 200 == 0 ? (2 << 20) : 32768);
        ps[k] = malloc(s);
        REQUIRE(ps[k] != NULL, "malloc failed");
        sz[k] = s;
        hk_fill(ps[k], s, (uint64_t)k + 1000 * (uint64_t)me);
        iter++;
        if (forks < WORKER_FORKS && iter % 20000 == 10000) {
            do_fork(5000 + (uint64_t)me * 10 + (uint64_t)forks);
            forks++;
        }
    }
    for (int k = 0; k < N; k++) free(ps[k]);
    return NULL;
}

int main(void) {
    pthread_t th[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        REQUIRE(pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) == 0, "pthread_create failed");
    struct timespec ts = {0, 20 * 1000 * 1000};
    for (int i = 0; i < MAIN_FORKS; i++) {
        nanosleep(&ts, NULL);
        /* allocate in main too, right before forking */
        void *p = malloc(1000 + (size_t)i);
        REQUIRE(p != NULL, "malloc failed");
        do_fork((uint64_t)i);
        free(p);
    }
    /* give the workers time for their own forks, then stop them */
    for (int i = 0; i < 100; i++) {
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&pid_lock);
        int n = npids;
        pthread_mutex_unlock(&pid_lock);
        if (n >= MAIN_FORKS + WORKERS * WORKER_FORKS) break;
    }
    stop = 1;
    for (int i = 0; i < WORKERS; i++) pthread_join(th[i], NULL);
    int ok = 0;
    for (int i = 0; i < npids; i++) {
        int st = 0;
        pid_t w = waitpid(pids[i], &st, 0);
        REQUIRE(w == pids[i], "waitpid failed: %s", strerror(errno));
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            ok++;
        } else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) {
            CHECK(0, "child %d (pid %d) hung for 20 s (deadlock after fork?) and was killed", i, (int)pids[i]);
        } else if (WIFSIGNALED(st)) {
            CHECK(0, "child %d (pid %d) died by signal %d (%s)", i, (int)pids[i], WTERMSIG(st), strsignal(WTERMSIG(st)));
        } else {
            CHECK(0, "child %d (pid %d) exited with %d (2: corrupted block, 3: malloc NULL, 4: pthread_create)", i,
                  (int)pids[i], WEXITSTATUS(st));
        }
    }
    printf("fork_from_threads: %d of %d children ok (%d forked from worker threads)\n", ok, npids,
           npids - MAIN_FORKS);
    CHECK(npids >= MAIN_FORKS, "only %d forks happened", npids);
    /* the parent still works */
    for (int i = 0; i < 10000; i++) {
        void *p = malloc((size_t)i % 5000 + 1);
        REQUIRE(p != NULL, "malloc failed in parent after forks");
        free(p);
    }
    return hk_done("fork_from_threads");
}
