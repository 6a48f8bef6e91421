/*
 * micro.c - allocation microbenchmarks for the tracer's hot path.
 *
 *   micro mixed   THREADS N    each thread: N malloc+free pairs of mixed small sizes, 64 live
 *   micro cross   N            two threads, each freeing the blocks the other allocated
 *   micro realloc N            realloc growth of 64 buffers, N steps
 *   micro depth   D N          recurse D frames, then N malloc+free pairs of one size class
 * Prints the wall time in nanoseconds per operation (pair, or step).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long n_ops;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

__attribute__((noinline)) static void *alloc_at(size_t n, int site)
{
    /* A few distinct call sites, as a real program has. */
    switch (site & 3) {
    case 0: return malloc(n);
    case 1: return malloc(n + 1);
    case 2: return malloc(n + 2);
    default: return malloc(n + 3);
    }
}

static void *mixed(void *arg)
{
    (void)arg;
    void *live[64] = { 0 };
    unsigned seed = 12345;
    for (long i = 0; i < n_ops; i++) {
        unsigned k = (unsigned)i & 63;
        free(live[k]);
        live[k] = alloc_at(8 + rand_r(&seed) % 256, (int)i);
    }
    for (int k = 0; k < 64; k++)
        free(live[k]);
    return NULL;
}

#define RING 1024
static _Atomic(void *) ring[2][RING];

static void *cross(void *arg)
{
    int me = (int)(long)arg;
    for (long i = 0; i < n_ops; i++) {
        void *p = alloc_at(32 + (size_t)(i & 127), (int)i);
        void *old = atomic_exchange(&ring[me][i % RING], p);
        (void)old;
        void *theirs = atomic_exchange(&ring[!me][(i * 7) % RING], NULL);
        free(theirs);
        free(old);
    }
    return NULL;
}

/* depth D N: D frames of recursion below main, then N malloc+free pairs in the deepest one, so
 * that the tracer's unwinder walks about D + 4 frames per call (D counts these frames; main and
 * the C runtime's 3 start frames come on top). */
__attribute__((noinline)) static long pairs(long n)
{
    long sum = 0;
    for (long i = 0; i < n; i++) {
        char *p = malloc(32 + (size_t)(i & 31));
        __asm__ volatile("" : : "r"(p) : "memory");   /* the pair must not be optimised away */
        sum += (long)((uintptr_t)p & 1);
        free(p);
    }
    return sum;
}

__attribute__((noinline)) static long recurse(int d, long n)
{
    if (d <= 1)
        return pairs(n);
    long r = recurse(d - 1, n);
    __asm__ volatile("" : "+r"(r) : : "memory");     /* no tail call: one real frame per level */
    return r + 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: micro mixed THREADS N | cross N | realloc N | depth D N\n");
        return 2;
    }
    double t0 = now(), per;
    if (strcmp(argv[1], "mixed") == 0 && argc == 4) {
        int threads = atoi(argv[2]);
        n_ops = atol(argv[3]);
        pthread_t t[64];
        for (int i = 0; i < threads; i++)
            pthread_create(&t[i], NULL, mixed, NULL);
        for (int i = 0; i < threads; i++)
            pthread_join(t[i], NULL);
        per = (now() - t0) / (double)n_ops;
    } else if (strcmp(argv[1], "cross") == 0) {
        n_ops = atol(argv[2]);
        pthread_t t[2];
        for (long i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, cross, (void *)i);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        per = (now() - t0) / (double)n_ops;
    } else if (strcmp(argv[1], "realloc") == 0) {
        n_ops = atol(argv[2]);
        void *b[64] = { 0 };
        for (long i = 0; i < n_ops; i++) {
            int k = (int)(i & 63);
            size_t n = (size_t)(i / 64 % 4096) * 16 + 16;
            b[k] = realloc(b[k], n);
        }
        for (int k = 0; k < 64; k++)
            free(b[k]);
        per = (now() - t0) / (double)n_ops;
    } else if (strcmp(argv[1], "depth") == 0 && argc == 4) {
        int d = atoi(argv[2]);
        n_ops = atol(argv[3]);
        if (d < 1 || d > 100000) {
            fprintf(stderr, "micro: depth must be 1..100000\n");
            return 2;
        }
        t0 = now();
        long r = recurse(d, n_ops);
        per = (now() - t0) / (double)n_ops;
        if (r < 0)
            puts("");
    } else {
        fprintf(stderr, "micro: unknown workload %s\n", argv[1]);
        return 2;
    }
    printf("%.1f\n", per);
    return 0;
}
