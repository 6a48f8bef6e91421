/* pthread_exit.c - a C program whose worker thread ends with pthread_exit: glibc then loads
 * libgcc_s.so.1 with dlopen (to unwind the thread), and the loader allocates its link map. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *kept;

static void *worker(void *arg)
{
    kept = malloc(100);
    pthread_exit(arg);
}

int main(void)
{
    pthread_t t;
    void *ret;
    if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, &ret) != 0)
        return 1;
    printf("worker done, %s\n", kept ? "kept a block" : "no block");
    return 0;
}
