/*
 * mem.c - heapsnap's own allocation functions outside the tracer: plain malloc and free.
 * The tracer library overrides these weak definitions (src/tracer/hooks.c) with calls to the
 * real allocator that bypass its own hooks.
 */
#include "common.h"

#include <stdlib.h>

__attribute__((weak)) void *hs_malloc(size_t n) { return malloc(n); }
__attribute__((weak)) void *hs_calloc(size_t n, size_t m) { return calloc(n, m); }
__attribute__((weak)) void *hs_realloc(void *p, size_t n) { return realloc(p, n); }
__attribute__((weak)) void hs_free(void *p) { free(p); }

char *hs_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = hs_malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}
