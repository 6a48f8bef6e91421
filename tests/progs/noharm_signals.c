/*
 * noharm_signals.c - installs a handler for every signal that can be caught (1 to SIGRTMAX but
 * SIGKILL and SIGSTOP, and those the C library keeps for itself), raises some of them from main
 * and from another thread, sends itself some with kill and sigqueue, runs a profiling timer
 * that interrupts allocations, and waits for one with sigwaitinfo.  Handlers allocate and free
 * when the signal was raised synchronously (raise is not called from inside malloc).  It prints
 * how many handlers it installed and how many times each raised signal was handled.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t counts[_NSIG];
static volatile sig_atomic_t allocate_in_handler;

static void handler(int sig, siginfo_t *si, void *ctx)
{
    (void)si, (void)ctx;
    counts[sig]++;
    if (allocate_in_handler) {
        char *p = malloc(64);
        if (p != NULL)
            p[0] = (char)sig;
        free(p);
    }
}

static void *raiser(void *arg)
{
    (void)arg;
    raise(SIGUSR2);                                /* to this thread */
    raise(SIGRTMIN + 3);
    return NULL;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    int installed = 0;
    for (int sig = 1; sig < _NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        if (sigaction(sig, &sa, NULL) == 0)
            installed++;
    }
    printf("handlers installed: %d\n", installed);

    allocate_in_handler = 1;
    static const int raised[] = { SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM,
                                  SIGTERM, SIGCHLD, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG,
                                  SIGWINCH, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP,
                                  SIGSYS, SIGXCPU, SIGPROF };
    for (size_t i = 0; i < sizeof(raised) / sizeof(raised[0]); i++)
        raise(raised[i]);
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
        raise(sig);
    kill(getpid(), SIGUSR1);
    union sigval v = { .sival_int = 42 };
    sigqueue(getpid(), SIGRTMIN + 1, v);
    pthread_t t;
    pthread_create(&t, NULL, raiser, NULL);
    pthread_join(t, NULL);

    /* A profiling timer that fires while the program allocates (handlers do not allocate). */
    allocate_in_handler = 0;
    counts[SIGPROF] = 0;
    struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
    setitimer(ITIMER_PROF, &it, NULL);
    while (counts[SIGPROF] < 50) {
        for (int i = 0; i < 1000; i++) {
            char *p = malloc(32 + (size_t)i);
            p[0] = 1;
            free(p);
        }
    }
    memset(&it, 0, sizeof(it));
    setitimer(ITIMER_PROF, &it, NULL);
    printf("SIGPROF fired while allocating: %s\n", counts[SIGPROF] >= 50 ? "yes" : "no");
    counts[SIGPROF] = 1;                           /* raised once above */

    /* sigwaitinfo on a blocked signal. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    kill(getpid(), SIGUSR1);
    siginfo_t si;
    int got = sigwaitinfo(&set, &si);
    printf("sigwaitinfo: %s\n", got == SIGUSR1 ? "SIGUSR1" : "something else");

    for (size_t i = 0; i < sizeof(raised) / sizeof(raised[0]); i++)
        printf("%s: %d\n", strsignal(raised[i]), (int)counts[raised[i]]);
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
        if (counts[sig] != 1)
            printf("SIGRTMIN+%d: %d\n", sig - SIGRTMIN, (int)counts[sig]);
    char *kept = malloc(2222);                     /* SITE:kept */
    (void)kept;
    return 0;
}
