/*
 * arena.c - a program with its own pool allocator, annotated with heapsnap-annotate.h and NOT
 * linked with heapsnap: it builds and runs alone (the calls return HS_ENOTTRACING), and under the
 * preloaded tracer its pool blocks appear in domain 7.
 */
#include <stdio.h>
#include <stdlib.h>

#include "heapsnap-annotate.h"

static char pool[1 << 16];
static size_t used;

static void *pool_get(size_t n)
{
    void *p = pool + used;
    used += (n + 15) & ~(size_t)15;
    int r = HS_TRACK(7, p, n);                   /* SITE:track */
    if (getenv("ARENA_EXPECT_UNTRACED") != NULL && r != HS_ENOTTRACING) {
        fprintf(stderr, "HS_TRACK returned %d without heapsnap\n", r);
        exit(1);
    }
    return p;
}

static void pool_put(void *p)
{
    HS_UNTRACK(7, p);
}

int main(void)
{
    void *keep[10];
    for (int i = 0; i < 10; i++)
        keep[i] = pool_get(100 + (size_t)i);
    pool_put(keep[0]);
    pool_put(keep[1]);
    printf("pool used %zu\n", used);
    return 0;
}
