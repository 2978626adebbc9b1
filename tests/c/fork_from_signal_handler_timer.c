/* Promise: in a single-threaded process, fork() from a signal handler never deadlocks, even
 * when the signal lands inside another fork (after its prepare handlers ran) or inside
 * malloc/free. A 300 us interval timer raises SIGALRM, whose handler forks (the child _exits
 * at once); meanwhile main loops fork() (each child allocates and frees, then _exits) and
 * allocates between forks, for MAIN_FORKS forks of main or HANDLER_FORKS of the handler. A
 * watchdog fails the test if it hangs. */
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "hk_test.h"

#define MAIN_FORKS 300
#define HANDLER_FORKS 2500

static volatile sig_atomic_t handler_forks, handler_errors, main_steps, seen_steps;

static void on_alarm(int sig) {
    (void)sig;
    /* A fork can take longer than the timer's interval; without this, back-to-back handlers
     * would starve main. At most one handler fork per step of main. */
    if (seen_steps == main_steps || handler_forks >= HANDLER_FORKS) return;
    seen_steps = main_steps;
    int e = errno;
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0) {
        handler_errors++;
    } else {
        int st = 0;
        pid_t w;
        do w = waitpid(pid, &st, 0);
        while (w < 0 && errno == EINTR);
        if (w != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) handler_errors++;
        handler_forks++;
    }
    errno = e;
}

int main(void) {
    hk_watchdog("fork_from_signal_handler_timer", 30);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    REQUIRE(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
    struct itimerval it = {{0, 300}, {0, 300}};
    REQUIRE(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer: %s", strerror(errno));

    hk_rng r;
    hk_seed(&r, 7);
    void *keep[64] = {0};
    int i;
    for (i = 0; i < MAIN_FORKS && handler_forks < HANDLER_FORKS; i++) {
        main_steps++;
        for (int k = 0; k < 8; k++) {
            int s = (int)hk_below(&r, 64);
            free(keep[s]);
            keep[s] = malloc(hk_logsize(&r, 1, i % 50 == 0 ? (1 << 20) : 300000));
            REQUIRE(keep[s] != NULL, "malloc failed");
        }
        main_steps++;
        pid_t pid = fork();
        REQUIRE(pid >= 0, "fork failed: %s", strerror(errno));
        if (pid == 0) {
            void *p = malloc(hk_logsize(&r, 1, 100000));
            free(keep[0]);
            free(p);
            _exit(0);
        }
        int st = 0;
        pid_t w;
        do w = waitpid(pid, &st, 0);
        while (w < 0 && errno == EINTR);
        REQUIRE(w == pid, "waitpid: %s", strerror(errno));
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child of main exited with status %#x", st);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    for (int k = 0; k < 64; k++) free(keep[k]);
    CHECK(handler_errors == 0, "%d forks in the signal handler failed", (int)handler_errors);
    CHECK(handler_forks > 0, "the timer's handler never forked");
    printf("main forks %d, handler forks %d\n", i, (int)handler_forks);
    return hk_done("fork_from_signal_handler_timer");
}
