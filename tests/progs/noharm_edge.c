/*
 * noharm_edge.c - the corners of the malloc API, whose results the program must see exactly as
 * without heapsnap: realloc(p, 0), free(NULL), malloc(0), calloc and reallocarray overflow, a
 * failed realloc (the old block stays the program's), invalid alignments, the aligned
 * allocators, and errno left alone by successful calls (as readdir loops rely on).
 *
 *   noharm_edge          the corners, one line each
 *   noharm_edge oom      under `ulimit -v`: allocate until malloc fails (large blocks, then
 *                        smaller ones), free half of the large ones and fill that room with
 *                        small blocks (the process stays at its limit: heapsnap's own tables
 *                        cannot grow then), free everything, and go on allocating
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *kept[64];
static int nkept;
/* Sizes the compiler cannot see (it would reject the obviously impossible ones). */
static volatile size_t size_max = SIZE_MAX, two = 2, eight = 8, big_shift = 33;

static void *errno_loop(void *arg)
{
    (void)arg;
    long changed = 0;
    for (int i = 0; i < 200; i++) {
        errno = 0;
        char *q = malloc(10 + (size_t)i);
        q = realloc(q, 2000 + (size_t)i);
        char *z = calloc(3, 10);
        void *al = NULL;
        posix_memalign(&al, 32, 64);
        free(al);
        free(z);
        free(q);
        changed += errno != 0;
    }
    return (void *)changed;
}

static void corners(void)
{
    char *p = malloc(100);
    errno = 0;
    void *r = realloc(p, 0);                                   /* frees p */
    printf("realloc(p, 0): %s\n", r == NULL ? "NULL" : "a block");
    if (r != NULL)
        kept[nkept++] = r;

    for (int i = 0; i < 1000; i++)
        free(NULL);
    printf("free(NULL) x1000: fine\n");

    kept[nkept++] = malloc(0);                                 /* SITE:zero */
    kept[nkept++] = realloc(NULL, 0);                          /* SITE:zero-realloc */
    printf("malloc(0): %s\n", kept[nkept - 2] != NULL ? "a block" : "NULL");

    errno = 0;
    void *c = calloc(size_max / 2 + 1, two);
    printf("calloc overflow: %s, %s\n", c == NULL ? "NULL" : "a block", strerror(errno));
    errno = 0;
    c = calloc((size_t)1 << big_shift, (size_t)1 << big_shift);
    printf("calloc overflow 2: %s, %s\n", c == NULL ? "NULL" : "a block", strerror(errno));
    errno = 0;
    void *m = malloc(size_max);
    printf("malloc(size_max): %s, %s\n", m == NULL ? "NULL" : "a block", strerror(errno));

    char *keep = malloc(555);                                  /* SITE:failed-realloc */
    memset(keep, 7, 555);
    char *volatile same = keep;                                /* the compiler must not know */
    errno = 0;
    void *big = realloc(keep, size_max - 4096);
    keep = same;
    printf("realloc(p, huge): %s, %s, old block intact: %s\n", big == NULL ? "NULL" : "a block",
           strerror(errno), keep[554] == 7 ? "yes" : "no");
    errno = 0;
    big = reallocarray(keep, size_max / 4, eight);
    keep = same;
    printf("reallocarray overflow: %s, %s\n", big == NULL ? "NULL" : "a block", strerror(errno));
    kept[nkept++] = keep;

    void *a = NULL;
    int e = posix_memalign(&a, 3, 10);
    printf("posix_memalign(3): %s\n", strerror(e));
    e = posix_memalign(&a, 64, size_max - 100);
    printf("posix_memalign(huge): %s\n", strerror(e));
    e = posix_memalign(&a, 64, 200);                           /* SITE:posix_memalign */
    printf("posix_memalign(64, 200): %s, aligned: %s\n", strerror(e),
           ((uintptr_t)a % 64) == 0 ? "yes" : "no");
    kept[nkept++] = a;
    kept[nkept++] = aligned_alloc(128, 256);                   /* SITE:aligned_alloc */
    kept[nkept++] = memalign(256, 300);                        /* SITE:memalign */
    kept[nkept++] = valloc(400);                               /* SITE:valloc */
    kept[nkept++] = pvalloc(500);                              /* SITE:pvalloc */
    printf("aligned allocators: %s\n", kept[nkept - 1] && kept[nkept - 2] && kept[nkept - 3] &&
                                       kept[nkept - 4] ? "blocks" : "NULL");

    /* Successful calls leave errno alone (glibc's do): a program may test errno after a loop.
     * On this thread, and on new ones (a new thread's first allocations are the first unwinds
     * of its stack). */
    int changed = (int)(long)errno_loop(NULL);
    for (int t = 0; t < 4; t++) {
        pthread_t th;
        void *r;
        pthread_create(&th, NULL, errno_loop, NULL);
        pthread_join(th, &r);
        changed += (int)(long)r;
    }
    printf("errno changed by successful calls: %d times\n", changed);
}

/* Until malloc says no: in blocks of `size`, at most `cap` of them. */
static size_t hoard(void ***v, size_t *n, size_t *cap, size_t size, size_t max)
{
    size_t got = 0;
    while (got < max) {
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 1024;
            void **nv = realloc(*v, nc * sizeof(void *));
            if (nv == NULL)
                break;
            *v = nv;
            *cap = nc;
        }
        void *p = malloc(size);                                /* SITE:hoard */
        if (p == NULL)
            break;
        memset(p, 1, size < 64 ? size : 64);
        (*v)[(*n)++] = p;
        got++;
    }
    return got;
}

static int oom(void)
{
    void **v = NULL;
    size_t n = 0, cap = 0;
    size_t big = hoard(&v, &n, &cap, 64 * 1024, 100000);
    hoard(&v, &n, &cap, 1024, 1000000);
    hoard(&v, &n, &cap, 24, 4000000);
    errno = 0;
    void *again = malloc(64 * 1024);
    int failed = again == NULL && errno == ENOMEM;
    printf("hoarded until malloc failed: %s\n", failed && big > 0 ? "yes" : "no");
    free(again);
    /* Half of the large blocks back to the heap: the process stays at its address-space limit
     * (they are inside the heap), but malloc has room again for many small blocks. */
    for (size_t i = 0; i + 16 < big; i += 2) {
        free(v[i]);
        v[i] = NULL;
    }
    static void *room[300000];                  /* no array to grow while memory is short */
    size_t refill = 0;
    while (refill < 300000 && (room[refill] = malloc(24)) != NULL)   /* SITE:refill */
        refill++;
    printf("small blocks in the freed room: %s\n", refill == 300000 ? "all" : "not all");
    for (size_t i = 0; i < refill; i++)
        free(room[i]);
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    /* Life goes on. */
    char *after = malloc(100000);                              /* SITE:after-oom */
    memset(after, 2, 100000);
    kept[nkept++] = after;
    printf("after freeing: malloc %s\n", after != NULL ? "works" : "fails");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "oom") == 0)
        return oom();
    corners();
    return 0;
}
