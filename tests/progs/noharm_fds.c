/*
 * noharm_fds.c - the program's file descriptors are its own.  After allocating (on this thread
 * and on another), the first open gives the lowest free descriptor, 3.  Then the program closes
 * every descriptor above 2 (close_range, as programs do before exec or when daemonizing), makes
 * a pipe (3 and 4 again), writes a message into it, lets a new thread allocate, and reads the
 * message back: nobody else may read from its descriptors or write to them.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        free(malloc(100 + (size_t)i));
    return NULL;
}

static void allocate_on_a_new_thread(void)
{
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    pthread_join(th, NULL);
}

int main(void)
{
    free(malloc(10));
    allocate_on_a_new_thread();
    int fd = open("/dev/null", O_RDONLY);
    printf("first open: descriptor %d\n", fd);
    fflush(stdout);

    close_range(3, ~0U, 0);
    int p[2];
    if (pipe(p) < 0)
        return 1;
    static const char msg[] = "a message through the program's own pipe";
    write(p[1], msg, sizeof(msg) - 1);
    allocate_on_a_new_thread();
    close(p[1]);
    char got[200] = "";
    ssize_t n = read(p[0], got, sizeof(got) - 1);
    for (ssize_t i = 0; i < n; i++)
        if (got[i] < ' ' || got[i] > '~')
            got[i] = '?';
    printf("after close_range: pipe %d %d, read back %zd bytes: \"%s\"\n", p[0], p[1], n, got);
    return 0;
}
