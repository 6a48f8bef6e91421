/*
 * noharm_lastthread.c - programs whose threads all end without exit(): untraced, the process
 * ends when its last thread does; the tracer's own thread must not keep it alive.
 *   noharm_lastthread pthread_exit   main calls pthread_exit; a worker prints and returns (glibc's
 *                                    last thread then calls exit(0): the atexit handler runs)
 *   noharm_lastthread sys_exit       the only thread ends with a raw exit system call, status 7
 *                                    (no atexit handler)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *kept;

static void at_exit(void)
{
    printf("atexit handler ran\n");
}

static void *worker(void *arg)
{
    (void)arg;
    usleep(300 * 1000);
    kept = malloc(4321);                              /* SITE:kept */
    printf("worker done\n");
    return NULL;
}

int main(int argc, char **argv)
{
    atexit(at_exit);
    if (argc > 1 && strcmp(argv[1], "sys_exit") == 0) {
        kept = malloc(1234);
        printf("raw exit\n");
        fflush(stdout);
        syscall(SYS_exit, 7);
    }
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    printf("main exiting\n");
    fflush(stdout);
    pthread_exit(NULL);
}
