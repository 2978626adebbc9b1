/* spawn: the runner's launcher. `spawn RUSAGE_FILE LIB PROG [ARGS...]` forks, sets LD_PRELOAD=LIB
 * in the child (none when LIB is empty), execs PROG, reaps it with wait4, writes its rusage to
 * RUSAGE_FILE as "maxrss_kib utime_s stime_s minflt majflt nvcsw nivcsw", and exits with PROG's
 * status (re-raising the signal that killed it).
 * Why: Linux carries a process's peak RSS across exec, so any process forked from the Python
 * runner (this one included) starts with the runner's RSS as its ru_maxrss. A child forked from
 * this small process starts from a small one, so its own wait4 rusage is the workload's. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: spawn RUSAGE_FILE LIB PROG [ARGS...]\n");
        return 127;
    }
    const char *ru_file = argv[1];
    argv++;
    pid_t pid = fork();
    if (pid < 0) {
        perror("spawn: fork");
        return 127;
    }
    if (pid == 0) {
        if (argv[1][0])
            setenv("LD_PRELOAD", argv[1], 1);
        else
            unsetenv("LD_PRELOAD");
        execv(argv[2], argv + 2);
        fprintf(stderr, "spawn: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    /* A ^C reaches the whole process group; the child's status tells the runner about it. */
    signal(SIGINT, SIG_IGN);
    int status;
    struct rusage ru;
    for (;;) {
        if (wait4(pid, &status, 0, &ru) == pid)
            break;
        if (errno != EINTR) {
            perror("spawn: wait4");
            return 127;
        }
    }
    FILE *f = fopen(ru_file, "w");
    if (f) {
        fprintf(f, "%ld %ld.%06ld %ld.%06ld %ld %ld %ld %ld\n", ru.ru_maxrss, (long)ru.ru_utime.tv_sec,
                (long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, ru.ru_minflt,
                ru.ru_majflt, ru.ru_nvcsw, ru.ru_nivcsw);
        fclose(f);
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        signal(sig, SIG_DFL);
        raise(sig);
        return 128 + sig;
    }
    return WEXITSTATUS(status);
}
