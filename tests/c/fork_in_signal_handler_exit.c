/* Promise: a signal handler that forks, whose child leaves through exit() (atexit handlers,
 * library destructors, stdio flushing in the child), works after the program has used malloc
 * (our own version of glibc's tst-mallocfork, bug 838). Each round: a helper child sends
 * SIGALRM to the parent, which is waiting for it in waitpid; the handler forks, its child calls
 * exit(0), the handler reaps it. ROUNDS rounds; a watchdog fails the test if it hangs. */
#include <signal.h>
#include <sys/wait.h>

#include "hk_test.h"

#define ROUNDS 150

static volatile sig_atomic_t handled, handler_errors;

static void on_alarm(int sig) {
    (void)sig;
    int e = errno;
    pid_t child = fork();
    if (child == 0) exit(0);
    if (child < 0) {
        handler_errors++;
    } else {
        int st = 0;
        pid_t w;
        do w = waitpid(child, &st, 0);
        while (w < 0 && errno == EINTR);
        if (w != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) handler_errors++;
    }
    handled++;
    errno = e;
}

int main(void) {
    hk_watchdog("fork_in_signal_handler_exit", 30);
    void *keep = hk_opaque(malloc(sizeof(int)));
    REQUIRE(keep != NULL, "malloc failed");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
    pid_t parent = getpid();
    for (int i = 0; i < ROUNDS; i++) {
        pid_t sender = fork();
        REQUIRE(sender >= 0, "fork failed: %s", strerror(errno));
        if (sender == 0) _exit(kill(parent, SIGALRM) == 0 ? 0 : 1);
        int st = 0;
        pid_t w;
        do w = waitpid(sender, &st, 0);
        while (w < 0 && errno == EINTR);
        REQUIRE(w == sender, "waitpid: %s", strerror(errno));
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "signal sender status %#x", st);
        /* the signal may be handled just after waitpid returned */
        while (handled < i + 1) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    }
    free(keep);
    CHECK(handler_errors == 0, "%d forks in the signal handler failed", (int)handler_errors);
    return hk_done("fork_in_signal_handler_exit");
}
