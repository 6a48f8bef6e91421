/*
 * noharm_threads.c - 64 threads allocate and free at the same time, and most blocks are freed by
 * another thread than the one that allocated them: each thread hands its blocks to the next one
 * through a mailbox, and frees what the previous one handed it.  Every 7th block is kept; after
 * a barrier, each thread reallocates half of the next thread's kept blocks.  main prints what is
 * left, per allocation site, so that a test can compare it with the final snapshot.
 *
 *   noharm_threads [PER_THREAD]      (default 300 blocks per thread)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 64
#define MAX_PER 4096

struct mailbox {
    pthread_mutex_t lock;
    size_t n;
    void *items[MAX_PER];
};

static struct mailbox boxes[NTHREADS];
static void *kept[NTHREADS][MAX_PER / 7 + 1];
static size_t kept_n[NTHREADS];
static size_t kept_size[NTHREADS][MAX_PER / 7 + 1];
static pthread_barrier_t barrier;
static int per_thread = 300;

static size_t size_of(int t, int j)
{
    return 16 + (size_t)((t * 7919 + j * 31) % 997);
}

static void drain(struct mailbox *b)
{
    void *local[MAX_PER];
    pthread_mutex_lock(&b->lock);
    size_t n = b->n;
    memcpy(local, b->items, n * sizeof(void *));
    b->n = 0;
    pthread_mutex_unlock(&b->lock);
    for (size_t i = 0; i < n; i++) {
        if (i % 3 == 0)
            local[i] = realloc(local[i], 40);        /* a realloc on another thread, then free */
        free(local[i]);
    }
}

static void *worker(void *arg)
{
    int t = (int)(long)arg;
    struct mailbox *next = &boxes[(t + 1) % NTHREADS];
    for (int j = 0; j < per_thread; j++) {
        size_t n = size_of(t, j);
        if (j % 7 == 0) {
            char *p = malloc(n);                       /* SITE:kept */
            memset(p, t, n);
            kept_size[t][kept_n[t]] = n;
            kept[t][kept_n[t]++] = p;
            continue;
        }
        char *p = j % 2 ? malloc(n) : calloc(1, n);    /* SITE:handed */
        memset(p, j, n);
        pthread_mutex_lock(&next->lock);
        next->items[next->n++] = p;
        pthread_mutex_unlock(&next->lock);
        if (j % 8 == 0)
            drain(&boxes[t]);
    }
    pthread_barrier_wait(&barrier);                    /* every block is handed over */
    drain(&boxes[t]);
    int o = (t + 1) % NTHREADS;                        /* the next thread's kept blocks */
    for (size_t k = 1; k < kept_n[o]; k += 2) {
        kept_size[o][k] += 1000;
        kept[o][k] = realloc(kept[o][k], kept_size[o][k]);   /* SITE:regrown */
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        per_thread = atoi(argv[1]);
    if (per_thread < 1 || per_thread > MAX_PER)
        return 2;
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++)
        pthread_mutex_init(&boxes[i].lock, NULL);
    pthread_t th[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)i) != 0)
            return 3;
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    size_t kept_blocks = 0, kept_bytes = 0, grown_blocks = 0, grown_bytes = 0;
    for (int t = 0; t < NTHREADS; t++) {
        for (size_t k = 0; k < kept_n[t]; k++) {
            if (k % 2) {
                grown_blocks++;
                grown_bytes += kept_size[t][k];
            } else {
                kept_blocks++;
                kept_bytes += kept_size[t][k];
            }
        }
        if (boxes[t].n != 0)
            return 4;
    }
    printf("kept %zu blocks %zu bytes\n", kept_blocks, kept_bytes);
    printf("regrown %zu blocks %zu bytes\n", grown_blocks, grown_bytes);
    return 0;
}
