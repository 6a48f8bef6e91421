/*
 * noharm_jmp.c - longjmp out of functions that allocate: from a recursion (each level keeps a
 * block), from a signal handler raised in an allocating function (siglongjmp), and from a
 * SIGSEGV handler after a real fault.  The blocks stay allocated and the program goes on
 * allocating and freeing afterwards; the kept blocks are on the lines marked level and raised.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static jmp_buf env;
static sigjmp_buf senv;
static void *levels[256];
static int nlevels;
static size_t level_bytes;

static void deep(int depth)
{
    size_t n = 64 + (size_t)nlevels;
    levels[nlevels++] = malloc(n);                 /* SITE:level */
    level_bytes += n;
    free(malloc(1000));
    if (depth > 0)
        deep(depth - 1);
    else if (nlevels > 0)
        longjmp(env, nlevels);
}

static void on_signal(int sig)
{
    siglongjmp(senv, sig);
}

static void raise_in_alloc(int sig)
{
    size_t n = 64 + (size_t)nlevels;
    levels[nlevels++] = malloc(n);                 /* SITE:raised */
    level_bytes += n;
    if (sig == SIGSEGV) {
        volatile int *volatile nothing = NULL;
        *nothing = 1;                              /* a real fault */
    }
    raise(sig);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    int jumps = 0;
    for (int round = 0; round < 10; round++) {
        if (setjmp(env) == 0)
            deep(5);
        jumps++;
        int sig = round % 2 ? SIGSEGV : SIGUSR1;
        if (sigsetjmp(senv, 1) == 0)
            raise_in_alloc(sig);
        jumps++;
    }
    char *after = malloc(4242);                    /* SITE:after */
    memset(after, 0, 4242);
    printf("%d jumps; kept %d blocks, %zu bytes\n", jumps, nlevels, level_bytes);
    return 0;
}
