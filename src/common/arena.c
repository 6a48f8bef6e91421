/*
 * arena.c - the chunked bump allocator behind snapshots and statistics: objects that are built
 * once, never freed one by one, and dropped together.
 */
#include "common.h"

#include <stdlib.h>

struct hs_arena_chunk {
    hs_arena_chunk *next;
    size_t size;
    /* data follows, 16-byte aligned */
} __attribute__((aligned(16)));

#define HS_ARENA_MIN_CHUNK (64 * 1024)

void *hs_arena_alloc(hs_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if ((size_t)(a->end - a->cur) < n || a->cur == NULL) {
        size_t size = n > HS_ARENA_MIN_CHUNK / 2 ? n : HS_ARENA_MIN_CHUNK;
        if (a->bytes > 16 * HS_ARENA_MIN_CHUNK && size < a->bytes / 8)
            size = a->bytes / 8;             /* grow chunks with the arena */
        hs_arena_chunk *c = hs_malloc(sizeof(*c) + size);
        if (c == NULL)
            return NULL;
        c->next = a->head;
        c->size = size;
        a->head = c;
        a->bytes += sizeof(*c) + size;
        a->cur = (char *)(c + 1);
        a->end = a->cur + size;
    }
    void *p = a->cur;
    a->cur += n;
    return p;
}

char *hs_arena_strdup(hs_arena *a, const char *s, size_t n)
{
    char *d = hs_arena_alloc(a, n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

void hs_arena_free(hs_arena *a)
{
    hs_arena_chunk *c = a->head;
    while (c != NULL) {
        hs_arena_chunk *next = c->next;
        hs_free(c);
        c = next;
    }
    memset(a, 0, sizeof(*a));
}
