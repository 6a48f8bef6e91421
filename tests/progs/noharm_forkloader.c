/*
 * noharm_forkloader.c - fork while another thread is inside dl_iterate_phdr (as a thread that
 * throws a C++ exception is: the unwinder looks up frames that way), then allocate in the child.
 * The other thread's callback holds on until the fork is done, so the fork always happens while
 * that thread holds the dynamic loader's lock.  The child allocates, writes a line with write(2)
 * and ends with _exit; nothing it does needs the loader.  The parent waits for it.
 *
 *   noharm_forkloader [ROUNDS]     (default 3)
 */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int inside, forked;

static int hold_until_forked(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info, (void)size, (void)data;
    atomic_store(&inside, 1);
    while (!atomic_load(&forked))
        sched_yield();
    return 1;                                      /* one object is enough */
}

static void *iterate(void *arg)
{
    (void)arg;
    dl_iterate_phdr(hold_until_forked, NULL);
    return NULL;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 3;
    for (int r = 0; r < rounds; r++) {
        atomic_store(&inside, 0);
        atomic_store(&forked, 0);
        pthread_t th;
        pthread_create(&th, NULL, iterate, NULL);
        while (!atomic_load(&inside))
            sched_yield();
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            char *block = malloc(1234);            /* SITE:child */
            memset(block, 0, 1234);
            static const char msg[] = "child allocated\n";
            write(1, msg, sizeof(msg) - 1);
            _exit(0);
        }
        atomic_store(&forked, 1);
        pthread_join(th, NULL);
        int status = -1;
        waitpid(pid, &status, 0);
        printf("round %d: child exited %d\n", r, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    return 0;
}
