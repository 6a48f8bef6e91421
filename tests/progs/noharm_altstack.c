/*
 * noharm_altstack.c - a signal handler that allocates, running on an 8 KiB alternate signal
 * stack (the classic SIGSTKSZ, as stack-overflow handlers use): the tracer's walk through the
 * signal frame must fit in it.   noharm_altstack
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int got;

static void handler(int sig)
{
    (void)sig;
    char *p = malloc(64);
    if (p != NULL) {
        strcpy(p, "x");
        got += p[0] == 'x';
        free(p);
    }
}

int main(void)
{
    stack_t ss = { .ss_sp = malloc(8192), .ss_size = 8192 };
    if (ss.ss_sp == NULL || sigaltstack(&ss, NULL) != 0)
        return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    for (int k = 0; k < 100; k++)
        raise(SIGUSR1);
    printf("handled %d\n", got);
    return 0;
}
