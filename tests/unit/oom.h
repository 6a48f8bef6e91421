/*
 * oom.h - allocation failure injection for the unit tests.  heapsnap's own objects are allocated
 * through hs_malloc & co., weak in src/common/mem.c; a test that includes this header replaces
 * them.  Set alloc_countdown to k to make the k-th next allocation (0-based) fail; when the
 * countdown has gone below 0 the failure was reached.  alloc_largest records the largest single
 * request since the test last reset it.  Include it in one file per test program.
 */
#ifndef HS_UNIT_OOM_H
#define HS_UNIT_OOM_H
#include <stdlib.h>

static long alloc_countdown = -1;   /* < 0: never fail; else fail when it reaches 0 */
static size_t alloc_largest;

static int alloc_fails(size_t n)
{
    if (n > alloc_largest)
        alloc_largest = n;
    if (alloc_countdown < 0)
        return 0;
    return alloc_countdown-- == 0;
}

void *hs_malloc(size_t n) { return alloc_fails(n) ? NULL : malloc(n); }
void *hs_calloc(size_t n, size_t m) { return alloc_fails(n * m) ? NULL : calloc(n, m); }
void *hs_realloc(void *p, size_t n) { return alloc_fails(n) ? NULL : realloc(p, n); }
void hs_free(void *p) { free(p); }
#endif
