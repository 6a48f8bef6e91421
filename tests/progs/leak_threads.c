/*
 * leak_threads.c - four worker threads: each request leaks a record into a shared, locked list
 * (the leak), and allocates and frees scratch buffers on its own (churn).
 *   leak_threads ITERATIONS DELAY_MS
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct record {
    struct record *next;
    char payload[120];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct record *all;
static int iterations, delay_ms;

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(size_t)arg;
    for (int i = 0; i < iterations; i++) {
        char *scratch = malloc(500 + rand_r(&seed) % 1500);   /* churn */
        struct record *r = malloc(sizeof(*r));               /* SITE:leak */
        memset(r->payload, 'p', sizeof(r->payload));
        pthread_mutex_lock(&lock);
        r->next = all;
        all = r;
        pthread_mutex_unlock(&lock);
        free(scratch);
        struct timespec ts = { 0, delay_ms * 1000000L };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    iterations = argc > 1 ? atoi(argv[1]) : 200;
    delay_ms = argc > 2 ? atoi(argv[2]) : 10;
    pthread_t t[4];
    for (size_t i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, (void *)(i + 1));
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    printf("workers done\n");
    return 0;
}
