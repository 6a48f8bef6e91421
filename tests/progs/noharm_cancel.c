/*
 * noharm_cancel.c - a thread with a deferred cancellation pending allocates, then reaches
 * pthread_testcancel: malloc and free are not cancellation points, so every allocation is done
 * before the thread is cancelled.  Built without unwind tables (Makefile), so that the tracer
 * walks these stacks with libunwind, whose address checks read and write a pipe.
 *   noharm_cancel ROUNDS
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define ALLOCS 2000

static volatile int go;
static volatile long done;

static void *worker(void *arg)
{
    (void)arg;
    while (!go)
        ;
    for (int i = 0; i < ALLOCS; i++) {
        free(malloc((size_t)(i % 500) + 1));
        done++;
    }
    pthread_testcancel();
    done = -1;
    return NULL;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 10, good = 0;
    for (int r = 0; r < rounds; r++) {
        go = 0;
        done = 0;
        pthread_t t;
        void *res;
        pthread_create(&t, NULL, worker, NULL);
        pthread_cancel(t);
        go = 1;
        pthread_join(t, &res);
        if (res == PTHREAD_CANCELED && done == ALLOCS)
            good++;
        else
            printf("round %d: %s after %ld allocations\n", r,
                   res == PTHREAD_CANCELED ? "cancelled" : "returned", done);
    }
    printf("cancelled at the cancellation point: %d of %d\n", good, rounds);
    return 0;
}
