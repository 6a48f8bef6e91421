/*
 * launch.c - hs-launch RUSAGE_FILE [NAME=VALUE...] PROGRAM [ARGS...]: runs PROGRAM in a child
 * with the NAME=VALUE variables added to its environment (as env(1) does), waits for it, and
 * writes the child's rusage to RUSAGE_FILE as "maxrss_kb utime_s stime_s"; exits with the child's
 * status (or dies of its signal).  For bench/run.py.
 *
 * The variables are set in the child only, so that LD_PRELOAD=libheapsnap.so and HEAPSNAP_OUTPUT
 * apply to the program and not to this launcher (which would otherwise be traced too, and write
 * its own final snapshot over the program's).
 *
 * Why: bench/run.py spawns from a Python process of ~20 MB.  With vfork or fork, the child's mm
 * at its first exec is the parent's (or a copy), and Linux folds that mm's high-water mark into
 * the process's ru_maxrss, so every ru_maxrss would be at least the harness's size.  This small
 * launcher forks the program from its own small mm, so the program's ru_maxrss is its own.
 */
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
    if (argc < 3) {
        fprintf(stderr, "usage: hs-launch RUSAGE_FILE [NAME=VALUE...] PROGRAM [ARGS...]\n");
        return 2;
    }
    int prog = 2;
    while (prog < argc && strchr(argv[prog], '=') != NULL)
        prog++;
    if (prog == argc) {
        fprintf(stderr, "hs-launch: no program\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("hs-launch: fork");
        return 126;
    }
    if (pid == 0) {
        for (int i = 2; i < prog; i++)
            if (putenv(argv[i]) != 0) {
                perror("hs-launch: putenv");
                _exit(126);
            }
        execvp(argv[prog], argv + prog);
        perror(argv[prog]);
        _exit(127);
    }
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0)
        if (errno != EINTR) {
            perror("hs-launch: wait4");
            return 1;
        }
    FILE *f = fopen(argv[1], "w");
    if (f != NULL) {
        fprintf(f, "%ld %ld.%06ld %ld.%06ld\n", ru.ru_maxrss, (long)ru.ru_utime.tv_sec,
                (long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec);
        fclose(f);
    }
    if (WIFSIGNALED(st)) {
        signal(WTERMSIG(st), SIG_DFL);
        raise(WTERMSIG(st));
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
