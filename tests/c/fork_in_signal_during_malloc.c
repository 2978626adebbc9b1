/* Promise: in a single-threaded process, fork() from a signal handler that interrupted malloc
 * or free never deadlocks (our own version of glibc's tst-mallocfork2). A helper process
 * sends SIGUSR1 as fast as it can; the handler stops it (SIGSTOP, so that main makes
 * progress), forks a child that _exits at once, and reaps it. Main frees and allocates
 * random blocks (up to 70000 bytes, 1009 slots) and resumes the sender (SIGCONT) around each
 * pair, until SIGNALS signals arrived during a free+malloc pair. A watchdog fails the test
 * if it hangs. */
#include <signal.h>
#include <sys/wait.h>

#include "hk_test.h"

#define SLOTS 1009
#define MAX_SIZE 70000
#define SIGNALS 150

static volatile pid_t sender;
static volatile sig_atomic_t received, handler_errors;

static void on_usr1(int sig) {
    (void)sig;
    if (received) return;
    int e = errno;
    if (sender > 0 && kill(sender, SIGSTOP) != 0) handler_errors++;
    received = 1;
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0) {
        handler_errors++;
    } else {
        int st = 0;
        pid_t w;
        do w = waitpid(pid, &st, 0);
        while (w < 0 && errno == EINTR);
        if (w != pid || st != 0) handler_errors++;
    }
    errno = e;
}

int main(void) {
    hk_watchdog("fork_in_signal_during_malloc", 30);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
    pid_t me = getpid();
    pid_t s = fork();
    REQUIRE(s >= 0, "fork failed: %s", strerror(errno));
    if (s == 0) {
        for (;;) {
            if (kill(me, SIGUSR1) != 0) _exit(1);
            sched_yield();
        }
    }
    sender = s;

    static void *slot[SLOTS];
    hk_rng r;
    hk_seed(&r, 2016);
    int signals = 0;
    long pairs = 0;
    while (signals < SIGNALS) {
        int k = (int)hk_below(&r, SLOTS);
        size_t n = (size_t)hk_below(&r, MAX_SIZE);
        REQUIRE(kill(s, SIGCONT) == 0, "kill(SIGCONT): %s", strerror(errno));
        received = 0;
        free(slot[k]);
        slot[k] = malloc(n);
        if (received) signals++;
        REQUIRE(slot[k] != NULL || n == 0, "malloc(%zu) failed", n);
        if (slot[k]) memset(slot[k], 0x5A, n < 64 ? n : 64);
        pairs++;
    }
    signal(SIGUSR1, SIG_IGN);
    kill(s, SIGKILL);
    waitpid(s, NULL, 0);
    for (int k = 0; k < SLOTS; k++) free(slot[k]);
    CHECK(handler_errors == 0, "%d errors in the signal handler (kill, fork or the child)", (int)handler_errors);
    printf("%d signals during free+malloc, %ld pairs\n", signals, pairs);
    return hk_done("fork_in_signal_during_malloc");
}
