/*
 * common.h - small helpers shared by every part of heapsnap: visibility, branch hints, hashing,
 * and a chunked bump arena.  Nothing here allocates through malloc unless the caller says so.
 */
#ifndef HS_COMMON_H
#define HS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HS_HIDDEN __attribute__((visibility("hidden")))
#define HS_LIKELY(x) __builtin_expect(!!(x), 1)
#define HS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* 64-bit mixing (splitmix64 finalizer): good avalanche for pointer-like keys. */
static inline uint64_t hs_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* FNV-1a over bytes, then mixed: for strings. */
static inline uint64_t hs_hash_bytes(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = (const unsigned char *)p;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return hs_mix64(h);
}

/* Memory for heapsnap's own objects (snapshots, statistics, files).  In the tracer library these
 * go straight to the real allocator, so the tracer's own objects are never traced and are freed
 * as they were allocated; elsewhere they are plain malloc and free (weak definitions in mem.c). */
HS_HIDDEN void *hs_malloc(size_t n);
HS_HIDDEN void *hs_calloc(size_t n, size_t m);
HS_HIDDEN void *hs_realloc(void *p, size_t n);
HS_HIDDEN void hs_free(void *p);
HS_HIDDEN char *hs_strdup(const char *s);

/* A bump arena of malloc'd chunks; everything is freed at once.  Not thread-safe. */
typedef struct hs_arena_chunk hs_arena_chunk;
typedef struct hs_arena {
    hs_arena_chunk *head;
    char *cur, *end;
    size_t bytes;            /* total bytes of all chunks */
} hs_arena;

HS_HIDDEN void *hs_arena_alloc(hs_arena *a, size_t n);          /* 16-byte aligned; NULL on ENOMEM */
HS_HIDDEN char *hs_arena_strdup(hs_arena *a, const char *s, size_t n);
HS_HIDDEN void hs_arena_free(hs_arena *a);

#endif
