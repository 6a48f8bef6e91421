/*
 * tables.c - the tracer's two tables: distinct stacks, and live blocks.
 *
 * Stacks: each distinct captured stack is stored once and named by a 32-bit id, so a live block
 * costs {address, size, stack id} however deep its stack is, and memory grows with call sites,
 * not with allocations.  16 shards by stack hash, each with its own lock, hash index and
 * append-only record arena.  Records are immutable once published and never freed, so a
 * snapshot reads them by id without a lock.
 *
 * Live blocks: 32 shards by address hash, each a lock and an open-addressing table (linear
 * probing, backward-shift deletion, no tombstones) of 12-byte packed entries: the address, the
 * size and the stack id.  Blocks of other domains (hs_track), and the rare address that does not
 * fit (not 8-byte aligned, or at 2^48 or above), go to one "wide" table with its own lock.  A
 * block of 8 MiB or more keeps its packed entry, marked, and its size in the wide table (a "side"
 * entry), so that every address the packed table can hold is found there and only there.
 *
 * All table memory comes from mmap, is counted for hs_get_tracer_memory(), and is never given
 * back while other threads may use it (tracer.h, rule 5).  Locks guard: a live shard's lock its
 * entries, count and capacity; a stack shard's lock its index and arena; wide_lock the wide table.
 * The traced-memory counters are changed under the lock of the entry they account for, so that
 * copying all shards under all locks gives counters that match the copy.
 */
#include "tracer.h"
#include "unwind.h"

#include <errno.h>
#include <sched.h>
#include <time.h>
#include <sys/mman.h>

static _Atomic size_t mapped_bytes;

static void *map_counted(size_t n, int flags)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    atomic_fetch_add(&mapped_bytes, n);
    return p;
}

void *hs_map(size_t n) { return map_counted(n, 0); }

/* For a hash table about to be filled: its entries are spread over all of it, so every page is
 * touched at once.  MAP_POPULATE makes them in the one call instead of a fault each (a third of
 * the time jq spent growing its live table went to those faults). */
static void *map_filled(size_t n) { return map_counted(n, MAP_POPULATE); }

void hs_unmap(void *p, size_t n)
{
    munmap(p, n);
    atomic_fetch_sub(&mapped_bytes, n);
}

size_t hs_tables_memory(void) { return atomic_load(&mapped_bytes); }

static const pthread_mutex_t mutex_init = PTHREAD_MUTEX_INITIALIZER;

/* ---- counters --------------------------------------------------------------------------------- */

void hs_count_add(size_t size)
{
    size_t cur = atomic_fetch_add_explicit(&hs_st.current, size, memory_order_relaxed) + size;
    size_t peak = atomic_load_explicit(&hs_st.peak, memory_order_relaxed);
    while (cur > peak &&
           !atomic_compare_exchange_weak_explicit(&hs_st.peak, &peak, cur, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

void hs_count_sub(size_t size)
{
    atomic_fetch_sub_explicit(&hs_st.current, size, memory_order_relaxed);
}

/* ---- stacks ------------------------------------------------------------------------------------ */

#ifndef HS_STACK_SHARDS
#define HS_STACK_SHARDS 16
#endif
#define STACK_SHARDS HS_STACK_SHARDS
#define DIR_CHUNK 4096                       /* record pointers per directory chunk */
#define DIR_CHUNKS 4096                      /* => 16 M stacks per shard */
#define ARENA_CHUNK (1u << 20)

typedef struct stack_shard {
    pthread_mutex_t lock;
    uint64_t *index;                         /* local id | hash tag << 32; 0 = empty */
    size_t index_cap, count;
    char *arena_cur, *arena_end;
    const hs_stack *_Atomic *_Atomic dir[DIR_CHUNKS];
} stack_shard;

static stack_shard stacks[STACK_SHARDS] = {
    [0 ... STACK_SHARDS - 1] = { .lock = PTHREAD_MUTEX_INITIALIZER },
};

/* Four independent multiply-rotate lanes over the addresses (frame i goes to lane i % 4), one full
 * mix at the end: the lanes' multiplies overlap, so a 48-frame stack costs about 12 multiply
 * latencies instead of 24 with two lanes (on every allocation).  Return addresses differ mostly
 * in their low bits; the multiply carries them up and the rotate back down, and equal hashes are
 * always checked by comparing the addresses. */
static inline uint64_t rotl64(uint64_t x, int r) { return x << r | x >> (64 - r); }

static uint64_t stack_hash(const uintptr_t *pcs, uint32_t n)
{
    const uint64_t k1 = 0x9e3779b97f4a7c15ULL, k2 = 0xc2b2ae3d27d4eb4fULL;
    uint64_t a = k1 ^ n, b = k2, c = k1 + k2, d = k1 - k2;
    uint32_t i = 0;
    for (; i + 3 < n; i += 4) {
        a = rotl64((a ^ pcs[i]) * k2, 29);
        b = rotl64((b ^ pcs[i + 1]) * k1, 31);
        c = rotl64((c ^ pcs[i + 2]) * k2, 27);
        d = rotl64((d ^ pcs[i + 3]) * k1, 33);
    }
    for (; i < n; i++)
        a = rotl64((a ^ pcs[i]) * k2, 29);
    return hs_mix64(a ^ rotl64(b, 17) ^ rotl64(c, 37) ^ rotl64(d, 49)) | 1;  /* never 0 */
}

const hs_stack *hs_stacks_get(uint32_t id)
{
    if (id == 0)
        return NULL;
    stack_shard *sh = &stacks[id % STACK_SHARDS];
    uint32_t local = id / STACK_SHARDS;
    const hs_stack *_Atomic *chunk = atomic_load_explicit(&sh->dir[local / DIR_CHUNK],
                                                          memory_order_acquire);
    return chunk ? atomic_load_explicit(&chunk[local % DIR_CHUNK], memory_order_acquire) : NULL;
}

static const hs_stack *local_get(stack_shard *sh, uint32_t local)
{
    return atomic_load_explicit(&sh->dir[local / DIR_CHUNK], memory_order_relaxed)[local % DIR_CHUNK];
}

/* pre: sh->lock held. */
static int index_grow_unlocked(stack_shard *sh)
{
    size_t cap = sh->index_cap ? sh->index_cap * 2 : 1024;
    uint64_t *t = map_filled(cap * sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < sh->index_cap; i++) {
        uint64_t e = sh->index[i];
        if (e == 0)
            continue;
        size_t j = local_get(sh, (uint32_t)e)->hash & (cap - 1);
        while (t[j] != 0)
            j = (j + 1) & (cap - 1);
        t[j] = e;
    }
    if (sh->index != NULL)
        hs_unmap(sh->index, sh->index_cap * sizeof(*t));
    sh->index = t;
    sh->index_cap = cap;
    return 0;
}

/* pre: sh->lock held.  A new record, published under a new local id; 0 on ENOMEM. */
static uint32_t stack_add_unlocked(stack_shard *sh, const uintptr_t *pcs, uint32_t n, uint64_t h)
{
    uint32_t local = (uint32_t)sh->count + 1;
    if (local / DIR_CHUNK >= DIR_CHUNKS || (uint64_t)local * STACK_SHARDS > UINT32_MAX)
        return 0;
    size_t need = (sizeof(hs_stack) + n * sizeof(uintptr_t) + 15) & ~(size_t)15;
    if ((size_t)(sh->arena_end - sh->arena_cur) < need) {
        size_t size = need > ARENA_CHUNK ? need : ARENA_CHUNK;
        char *c = hs_map(size);
        if (c == NULL)
            return 0;
        sh->arena_cur = c;
        sh->arena_end = c + size;
    }
    const hs_stack *_Atomic *chunk = atomic_load_explicit(&sh->dir[local / DIR_CHUNK],
                                                          memory_order_relaxed);
    if (chunk == NULL) {
        chunk = hs_map(DIR_CHUNK * sizeof(*chunk));
        if (chunk == NULL)
            return 0;
        atomic_store_explicit(&sh->dir[local / DIR_CHUNK], chunk, memory_order_release);
    }
    hs_stack *s = (hs_stack *)sh->arena_cur;
    sh->arena_cur += need;
    s->hash = h;
    s->n = n;
    memcpy(s->pcs, pcs, n * sizeof(uintptr_t));
    atomic_store_explicit(&chunk[local % DIR_CHUNK], s, memory_order_release);
    sh->count++;
    return local;
}

static uint32_t stacks_intern_hashed(const uintptr_t *pcs, uint32_t n, uint64_t h)
{
    unsigned si = (unsigned)(h >> 60) % STACK_SHARDS;
    stack_shard *sh = &stacks[si];
    uint64_t tag = (h >> 32) << 32;          /* compared before the record is read (a cache miss) */
    uint32_t id = 0;
    pthread_mutex_lock(&sh->lock);
    if ((sh->count + 1) * 2 > sh->index_cap && index_grow_unlocked(sh) < 0)
        goto out;
    size_t j = h & (sh->index_cap - 1);
    for (uint64_t e; (e = sh->index[j]) != 0; j = (j + 1) & (sh->index_cap - 1)) {
        if ((e & ~UINT64_C(0xffffffff)) != tag)
            continue;
        uint32_t local = (uint32_t)e;
        const hs_stack *s = local_get(sh, local);
        if (s->hash == h && s->n == n && memcmp(s->pcs, pcs, n * sizeof(uintptr_t)) == 0) {
            id = local * STACK_SHARDS + si;
            goto out;
        }
    }
    uint32_t local = stack_add_unlocked(sh, pcs, n, h);
    if (local != 0) {
        sh->index[j] = tag | local;
        id = local * STACK_SHARDS + si;
    }
out:
    pthread_mutex_unlock(&sh->lock);
    return id;
}

uint32_t hs_stacks_intern_uncached(const uintptr_t *pcs, uint32_t n)
{
    return stacks_intern_hashed(pcs, n, stack_hash(pcs, n));
}

/* ---- the thread's block -------------------------------------------------------------------------
 * What the tracer keeps per thread, behind the guard's key (tracer.h): the guard itself, the stack
 * cache below, and the walk memo (unwind_cfi.c).  mmap'd by the tracer; a thread's block goes to a
 * free list when the thread exits, for the next thread.
 *
 * The stack cache: most allocations come from a stack the same thread allocated from a moment ago
 * (a loop, a parser).  Each thread keeps the ids of its recent stacks in a small direct-mapped
 * cache keyed by the stack's 64-bit hash and depth: a hit skips the shard lock, the index probe
 * and the comparison with the stored record (two or three cache misses).  A hit is trusted on the
 * hash: two different stacks of the same depth would have to collide in all 64 bits.  Stacks are
 * never removed, so a cached id stays valid. */
#define TCACHE_SIZE 256

typedef struct tblock {
    hs_thread head;                          /* first: the guard (tracer.h) */
    struct tblock *next;                     /* on the free list */
    uint64_t key[TCACHE_SIZE];               /* hash ^ depth; 0 = empty */
    uint32_t id[TCACHE_SIZE];
    hs_walk_memo *memo;                      /* the thread's last stack walk (unwind_cfi.c) */
} tblock;

static pthread_mutex_t tblock_lock = PTHREAD_MUTEX_INITIALIZER;   /* the free list */
static tblock *tblock_free;

void hs_thread_release(void *p)
{
    if (p == HS_THREAD_SEALED)
        return;
    tblock *b = p;
    pthread_mutex_lock(&tblock_lock);
    b->next = tblock_free;
    tblock_free = b;
    pthread_mutex_unlock(&tblock_lock);
}

hs_thread *hs_thread_start(void)
{
    pthread_setspecific(hs_guard_key, HS_THREAD_SEALED);  /* a signal handler here: untraced */
    pthread_mutex_lock(&tblock_lock);
    tblock *b = tblock_free;
    if (b != NULL)
        tblock_free = b->next;
    pthread_mutex_unlock(&tblock_lock);
    if (b == NULL && (b = hs_map(sizeof(*b))) == NULL) {
        atomic_store(&hs_st.oom, 1);
        pthread_setspecific(hs_guard_key, NULL);
        return NULL;
    }
    hs_walk_memo *memo = b->memo;            /* a reused block keeps its memo's memory */
    memset(b, 0, sizeof(*b));
    if (memo != NULL) {
        memo->n = 0;
        b->memo = memo;
    }
    pthread_setspecific(hs_guard_key, b);
    return &b->head;
}

/* The calling thread's block; NULL in a thread without one (the tracer's own). */
static inline tblock *tblock_get(void)
{
    void *b = pthread_getspecific(hs_guard_key);
    return b != HS_THREAD_SEALED ? b : NULL;
}

static size_t memo_bytes(int steps)
{
    return sizeof(hs_walk_memo) + 2 * (size_t)steps * sizeof(hs_walk_step);
}

/* Memos are mapped on first use, for the traceback limit then in force (57 steps at limit 16:
 * 3.6 KiB), and mapped again larger if a walk needs more. */
hs_walk_memo *hs_thread_walk_memo(int steps)
{
    tblock *b = tblock_get();
    if (b == NULL || steps > HS_MEMO_STEPS)
        return NULL;
    hs_walk_memo *m = b->memo;
    if (HS_LIKELY(m != NULL && m->cap >= steps))
        return m;
    hs_walk_memo *bigger = hs_map(memo_bytes(steps));
    if (bigger == NULL)
        return m;                            /* the old one, if any: too small, so unused */
    bigger->cap = steps;
    bigger->step = (hs_walk_step *)(bigger + 1);
    bigger->scratch = bigger->step + steps;
    b->memo = bigger;
    if (m != NULL)                           /* only this thread ever reads its memo */
        hs_unmap(m, memo_bytes(m->cap));
    return bigger;
}

uint32_t hs_stacks_intern(const uintptr_t *pcs, uint32_t n)
{
    uint64_t h = stack_hash(pcs, n);
    uint64_t key = (h ^ ((uint64_t)n << 56)) | 1;
    tblock *c = tblock_get();
    size_t slot = (size_t)(h >> 20) % TCACHE_SIZE;
    if (c != NULL && c->key[slot] == key)
        return c->id[slot];
    uint32_t id = stacks_intern_hashed(pcs, n, h);
    if (c != NULL && id != 0) {
        c->key[slot] = key;
        c->id[slot] = id;
    }
    return id;
}

/* ---- live blocks ------------------------------------------------------------------------------- */

/* 32 shards: a snapshot holds all of them at once, and ThreadSanitizer tracks at most 64 held
 * locks per thread. */
#ifndef HS_LIVE_SHARDS
#define HS_LIVE_SHARDS 32                    /* -D to measure other counts */
#endif
#define LIVE_SHARDS HS_LIVE_SHARDS
/* A packed entry is 12 bytes: an 8-byte-aligned address below 2^48 (45 bits), a size below 8 MiB
 * (23 bits) and a stack id (28 bits: ids stay below 2^28, see DIR_CHUNKS).  a = addr >> 3 |
 * size bits 0-18 << 45, b = stack | size bits 19-22 << 28; a == 0 is an empty slot (address 0 is
 * never stored).  A size field of SIZE_BIG means 8 MiB - 1 or more: the size is in the wide table
 * (domain 0, same address).  Twelve bytes rather than sixteen let the table run emptier for the
 * same memory (shorter probe runs), and fit 5.3 entries in a cache line instead of 4. */
#define ADDR_BITS 48
#define ADDR_MASK ((UINT64_C(1) << ADDR_BITS) - 1)
#define SIZE_LO_BITS 19
#define SIZE_BITS 23
#define STACK_BITS 28
#define SIZE_BIG ((UINT64_C(1) << SIZE_BITS) - 1)
_Static_assert((uint64_t)DIR_CHUNK * DIR_CHUNKS * STACK_SHARDS <= (UINT64_C(1) << STACK_BITS),
               "stack ids must fit a packed entry");

typedef struct __attribute__((packed, aligned(4))) packed { uint64_t a; uint32_t b; } packed;
_Static_assert(sizeof(packed) == 12, "packed entries are 12 bytes");

static inline packed pack(uintptr_t addr, size_t size, uint32_t stack)
{
    return (packed){ .a = addr >> 3 | (uint64_t)size << (64 - SIZE_LO_BITS),
                     .b = stack | (uint32_t)(size >> SIZE_LO_BITS) << STACK_BITS };
}
static inline uintptr_t p_addr(packed e) { return (uintptr_t)(e.a << SIZE_LO_BITS >> (SIZE_LO_BITS - 3)); }
static inline size_t p_size(packed e)
{
    return (size_t)(e.a >> (64 - SIZE_LO_BITS) | (uint64_t)(e.b >> STACK_BITS) << SIZE_LO_BITS);
}
static inline uint32_t p_stack(packed e) { return e.b & ((UINT32_C(1) << STACK_BITS) - 1); }
/* An address the packed table can hold. */
static inline int addr_packs(uintptr_t addr)
{
    return addr != 0 && (addr & ~ADDR_MASK) == 0 && (addr & 7) == 0;
}

/* A live shard's lock: taken on every malloc and free, held for a few probes (for longer only while
 * its table grows, or while a snapshot or a fork holds every shard).  Test-and-set: one atomic
 * instruction to take it and a plain store to release it, where a mutex costs two atomic
 * instructions and two calls.  A waiter spins a little, then yields, then sleeps (a real-time
 * thread that only yielded could keep a lower-priority holder from ever running). */
typedef struct live_lock_t { _Atomic int held; } live_lock_t;

static __attribute__((noinline)) void live_lock_wait(live_lock_t *l)
{
    for (unsigned spins = 0;; spins++) {
        if (!atomic_load_explicit(&l->held, memory_order_relaxed) &&
            !atomic_exchange_explicit(&l->held, 1, memory_order_acquire))
            return;
        if (spins < 64)
            __builtin_ia32_pause();
        else if (spins < 1024)
            sched_yield();
        else
            nanosleep(&(struct timespec){ 0, 50000 }, NULL);
    }
}

static inline void live_lock(live_lock_t *l)
{
    if (HS_UNLIKELY(atomic_exchange_explicit(&l->held, 1, memory_order_acquire)))
        live_lock_wait(l);
}

static inline void live_unlock(live_lock_t *l)
{
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

typedef struct live_shard {
    live_lock_t lock;
    packed *ents;
    size_t cap;
    _Atomic size_t count;                    /* changed under lock; read racily for sizing */
} __attribute__((aligned(64))) live_shard;

static live_shard live[LIVE_SHARDS];

/* A block's home slot: its 1 KiB address region picks a pseudo-random group of 64 slots, its
 * address within the region a slot in the group.  Blocks allocated one after another lie side by
 * side in memory, and so do their entries: a run of mallocs or frees touches a few cache lines
 * and one page of the table instead of one random line each (that miss was a third of the
 * traced time of an allocation-heavy Python workload).  Malloc's blocks are 16-byte aligned, so
 * the blocks of one region never share a home slot.  The shard comes from the hash (below). */
#define LIVE_GROUP_BITS 6
#define LIVE_GROUP (1u << LIVE_GROUP_BITS)
/* Fibonacci hashing of the region number: one multiply (this runs on every malloc and free, twice,
 * and once per entry a deletion shifts).  Its high bits pick the shard, bits 0-47 the group:
 * both parts are well spread for the consecutive and strided region numbers heaps have. */
static inline uint64_t addr_hash(uintptr_t addr)
{
    return (uint64_t)(addr >> (LIVE_GROUP_BITS + 4)) * UINT64_C(0x9e3779b97f4a7c15);
}

/* The home slot in a table of cap slots (a multiple of LIVE_GROUP, not a power of two: a table
 * grows by half when it would be more than 60 % full, which leaves it at least 40 % full, 30 bytes
 * or less per live block; probe runs stay short, as clustered entries need).  The group
 * is the hash scaled to the number of groups (multiply-shift, no division). */
static inline size_t live_home(uint64_t h, uintptr_t addr, size_t cap)
{
    size_t groups = cap / LIVE_GROUP;
    size_t g = (size_t)(((unsigned __int128)(h & ((UINT64_C(1) << 48) - 1)) * groups) >> 48);
    return g * LIVE_GROUP + ((addr >> 4) & (LIVE_GROUP - 1));
}
static inline size_t live_next(size_t j, size_t cap) { return j + 1 == cap ? 0 : j + 1; }
static inline live_shard *shard_of(uint64_t h) { return &live[((h >> 48) * LIVE_SHARDS) >> 16]; }

/* The wide table: (domain, address) for everything the packed one cannot hold; an open-addressing
 * table of its own, under wide_lock. */
typedef struct wide_ent { uintptr_t addr; size_t size; uint32_t stack; unsigned domain; int used; } wide_ent;
static pthread_mutex_t wide_lock = PTHREAD_MUTEX_INITIALIZER;
static wide_ent *wide;
static size_t wide_cap;
static _Atomic size_t wide_count;            /* blocks and side entries; read racily for sizing */

static inline uint64_t wide_hash(unsigned domain, uintptr_t addr)
{
    return hs_mix64(addr ^ ((uint64_t)domain << 48) ^ ((uint64_t)domain >> 16));
}

/* Any size fits (SIZE_BIG), and every stack id (the _Static_assert above). */
static inline int fits_packed(unsigned domain, uintptr_t addr)
{
    return domain == 0 && addr_packs(addr);
}

/* pre: sh->lock held. */
static int live_grow_unlocked(live_shard *sh)
{
    size_t cap = sh->cap ? (sh->cap + sh->cap / 2 + LIVE_GROUP - 1) / LIVE_GROUP * LIVE_GROUP : 1024;
    packed *t = map_filled(cap * sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < sh->cap; i++) {
        if (sh->ents[i].a == 0)
            continue;
        uintptr_t a = p_addr(sh->ents[i]);
        size_t j = live_home(addr_hash(a), a, cap);
        while (t[j].a != 0)
            j = live_next(j, cap);
        t[j] = sh->ents[i];
    }
    if (sh->ents != NULL)
        hs_unmap(sh->ents, sh->cap * sizeof(*t));
    __atomic_store_n(&sh->ents, t, __ATOMIC_RELAXED); /* read racily by hs_live_prefetch */
    __atomic_store_n(&sh->cap, cap, __ATOMIC_RELAXED);
    return 0;
}

/* pre: sh->lock held.  Slot of addr, or -1. */
static ptrdiff_t live_find_unlocked(live_shard *sh, uintptr_t addr, uint64_t h)
{
    if (sh->cap == 0)
        return -1;
    for (size_t j = live_home(h, addr, sh->cap);; j = live_next(j, sh->cap)) {
        if (sh->ents[j].a == 0)
            return -1;
        if (p_addr(sh->ents[j]) == addr)
            return (ptrdiff_t)j;
    }
}

/* pre: sh->lock held.  Backward-shift deletion keeps every probe chain unbroken. */
static void live_remove_at_unlocked(live_shard *sh, size_t i)
{
    size_t cap = sh->cap;
    uintptr_t region = 0;                    /* neighbours mostly share a region: one hash each */
    size_t group = 0;
    for (size_t j = live_next(i, cap); sh->ents[j].a != 0; j = live_next(j, cap)) {
        uintptr_t a = p_addr(sh->ents[j]);
        if ((a >> (LIVE_GROUP_BITS + 4)) != region) {
            region = a >> (LIVE_GROUP_BITS + 4);
            group = live_home(addr_hash(a), 0, cap);
        }
        size_t home = group + ((a >> 4) & (LIVE_GROUP - 1));
        /* Move ents[j] into the hole at i when its home is not in (i, j] (cyclically). */
        size_t dist_home = j >= home ? j - home : j + cap - home;
        size_t dist_hole = j >= i ? j - i : j + cap - i;
        if (dist_home >= dist_hole) {
            sh->ents[i] = sh->ents[j];
            i = j;
        }
    }
    sh->ents[i].a = 0;
    sh->ents[i].b = 0;
    atomic_store_explicit(&sh->count, sh->count - 1, memory_order_relaxed);
}

/* pre: wide_lock held.  Slot of (domain, addr), or -1. */
static ptrdiff_t wide_find_unlocked(unsigned domain, uintptr_t addr)
{
    if (wide_cap == 0)
        return -1;
    for (size_t j = wide_hash(domain, addr) & (wide_cap - 1);; j = (j + 1) & (wide_cap - 1)) {
        if (!wide[j].used)
            return -1;
        if (wide[j].addr == addr && wide[j].domain == domain)
            return (ptrdiff_t)j;
    }
}

/* pre: wide_lock held. */
static int wide_grow_unlocked(void)
{
    size_t cap = wide_cap ? wide_cap * 2 : 256;
    wide_ent *t = map_filled(cap * sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < wide_cap; i++) {
        if (!wide[i].used)
            continue;
        size_t j = wide_hash(wide[i].domain, wide[i].addr) & (cap - 1);
        while (t[j].used)
            j = (j + 1) & (cap - 1);
        t[j] = wide[i];
    }
    if (wide != NULL)
        hs_unmap(wide, wide_cap * sizeof(*t));
    wide = t;
    wide_cap = cap;
    return 0;
}

/* pre: wide_lock held.  Backward-shift deletion, as live_remove_at_unlocked. */
static void wide_remove_at_unlocked(size_t i)
{
    size_t mask = wide_cap - 1;
    for (size_t j = (i + 1) & mask; wide[j].used; j = (j + 1) & mask) {
        size_t home = wide_hash(wide[j].domain, wide[j].addr) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            wide[i] = wide[j];
            i = j;
        }
    }
    wide[i].used = 0;
    atomic_fetch_sub_explicit(&wide_count, 1, memory_order_relaxed);
}

/* pre: wide_lock held.  Sets (domain, addr) to size and stack: 1 if it was there (*old_size its
 * size), 0 if added, -ENOMEM.  Counters untouched. */
static int wide_set_unlocked(unsigned domain, uintptr_t addr, size_t size, uint32_t stack,
                             size_t *old_size)
{
    ptrdiff_t i = wide_find_unlocked(domain, addr);
    if (i >= 0) {
        *old_size = wide[i].size;
        wide[i].size = size;
        wide[i].stack = stack;
        return 1;
    }
    if ((wide_count + 1) * 2 > wide_cap && wide_grow_unlocked() < 0)
        return -ENOMEM;
    size_t j = wide_hash(domain, addr) & (wide_cap - 1);
    while (wide[j].used)
        j = (j + 1) & (wide_cap - 1);
    wide[j] = (wide_ent){ addr, size, stack, domain, 1 };
    atomic_fetch_add_explicit(&wide_count, 1, memory_order_relaxed);
    return 0;
}

static int wide_put(unsigned domain, uintptr_t addr, size_t size, uint32_t stack, size_t *old_size,
                    int *replaced)
{
    int r = -ECANCELED;
    pthread_mutex_lock(&wide_lock);
    if (hs_tracing() && (r = wide_set_unlocked(domain, addr, size, stack, old_size)) >= 0) {
        if (r == 1) {
            *replaced = 1;
            hs_count_sub(*old_size);
        }
        hs_count_add(size);
        r = 0;
    }
    pthread_mutex_unlock(&wide_lock);
    return r;
}

/* The size of a packed entry marked SIZE_BIG, from its side entry; removed with it if remove.
 * Called with the entry's shard lock held (shard lock, then wide_lock: the order everywhere). */
static size_t side_size(uintptr_t addr, int remove)
{
    size_t size = SIZE_BIG;                  /* not found: cannot happen; the mark is the least */
    pthread_mutex_lock(&wide_lock);
    ptrdiff_t i = wide_find_unlocked(0, addr);
    if (i >= 0) {
        size = wide[i].size;
        if (remove)
            wide_remove_at_unlocked((size_t)i);
    }
    pthread_mutex_unlock(&wide_lock);
    return size;
}

/* Sets the side entry of a big block; 0 or -ENOMEM.  Shard lock held. */
static int side_set(uintptr_t addr, size_t size, uint32_t stack)
{
    size_t ignored;
    pthread_mutex_lock(&wide_lock);
    int r = wide_set_unlocked(0, addr, size, stack, &ignored);
    pthread_mutex_unlock(&wide_lock);
    return r < 0 ? r : 0;
}

/* Starts loading addr's home slot into the cache, without the lock, so that the miss overlaps the
 * unwinding that comes before hs_live_put.  The table may be regrown meanwhile: a prefetch of a
 * stale or unmapped address is harmless (it never faults), the lookup proper is under the lock. */
void hs_live_prefetch(uintptr_t addr)
{
    uint64_t h = addr_hash(addr);
    live_shard *sh = shard_of(h);
    packed *ents = __atomic_load_n(&sh->ents, __ATOMIC_RELAXED);
    size_t cap = __atomic_load_n(&sh->cap, __ATOMIC_RELAXED);
    if (ents != NULL && cap != 0)
        __builtin_prefetch(&ents[live_home(h, addr, cap)], 1);
}

int hs_live_put(unsigned int domain, uintptr_t addr, size_t size, uint32_t stack,
                size_t *old_size, int *replaced)
{
    *old_size = 0;
    *replaced = 0;
    if (!fits_packed(domain, addr))
        return wide_put(domain, addr, size, stack, old_size, replaced);
    size_t field = size < SIZE_BIG ? size : SIZE_BIG;
    uint64_t h = addr_hash(addr);
    live_shard *sh = shard_of(h);
    int r = 0;
    live_lock(&sh->lock);
    if (!hs_tracing()) {                     /* stopped while we unwound */
        r = -ECANCELED;
        goto out;
    }
    if ((sh->count + 1) * 5 > sh->cap * 3 && live_grow_unlocked(sh) < 0) {
        r = -ENOMEM;
        goto out;
    }
    size_t j = live_home(h, addr, sh->cap);
    for (; sh->ents[j].a != 0; j = live_next(j, sh->cap)) {
        if (p_addr(sh->ents[j]) == addr) {
            size_t old = p_size(sh->ents[j]);
            if (old == SIZE_BIG)
                old = side_size(addr, field != SIZE_BIG);
            if (field == SIZE_BIG && (r = side_set(addr, size, stack)) < 0)
                goto out;                    /* the old entry stays whole */
            *old_size = old;
            *replaced = 1;
            hs_count_sub(old);
            sh->ents[j] = pack(addr, field, stack);
            hs_count_add(size);
            goto out;
        }
    }
    if (field == SIZE_BIG && (r = side_set(addr, size, stack)) < 0)
        goto out;
    sh->ents[j] = pack(addr, field, stack);
    atomic_store_explicit(&sh->count, sh->count + 1, memory_order_relaxed);
    hs_count_add(size);
out:
    live_unlock(&sh->lock);
    return r;
}

static int wide_take(unsigned domain, uintptr_t addr, hs_live *out, int remove)
{
    pthread_mutex_lock(&wide_lock);
    ptrdiff_t i = wide_find_unlocked(domain, addr);
    if (i >= 0) {
        if (out)
            *out = (hs_live){ addr, wide[i].size, wide[i].stack, domain };
        if (remove) {
            hs_count_sub(wide[i].size);
            wide_remove_at_unlocked((size_t)i);
        }
    }
    pthread_mutex_unlock(&wide_lock);
    return i >= 0;
}

static int live_take(unsigned domain, uintptr_t addr, hs_live *out, int remove)
{
    if (domain != 0 || !addr_packs(addr))
        return wide_take(domain, addr, out, remove);
    uint64_t h = addr_hash(addr);
    live_shard *sh = shard_of(h);
    live_lock(&sh->lock);
    ptrdiff_t i = live_find_unlocked(sh, addr, h);
    if (i >= 0) {
        packed e = sh->ents[i];
        size_t size = p_size(e);
        if (size == SIZE_BIG)
            size = side_size(addr, remove);
        if (out)
            *out = (hs_live){ addr, size, p_stack(e), 0 };
        if (remove) {
            hs_count_sub(size);
            live_remove_at_unlocked(sh, (size_t)i);
        }
    }
    live_unlock(&sh->lock);
    return i >= 0;
}

int hs_live_del(unsigned int domain, uintptr_t addr, hs_live *out)
{
    return live_take(domain, addr, out, 1);
}

int hs_live_get(unsigned int domain, uintptr_t addr, hs_live *out)
{
    return live_take(domain, addr, out, 0);
}

static void lock_live_all(void)
{
    for (int i = 0; i < LIVE_SHARDS; i++)
        live_lock(&live[i].lock);
    pthread_mutex_lock(&wide_lock);
}

static void unlock_live_all(void)
{
    pthread_mutex_unlock(&wide_lock);
    for (int i = LIVE_SHARDS - 1; i >= 0; i--)
        live_unlock(&live[i].lock);
}

static size_t live_count_racy(void)
{
    size_t n = wide_count;
    for (int i = 0; i < LIVE_SHARDS; i++)
        n += atomic_load_explicit(&live[i].count, memory_order_relaxed);
    return n;
}

int hs_live_copy(hs_live **out, size_t *n_out, size_t *current, size_t *peak)
{
    /* Allocate outside the locks, with slack; retry if the program outgrew it meanwhile. */
    for (;;) {
        size_t want = live_count_racy();
        size_t cap = want + want / 8 + 1024;
        hs_live *buf = hs_malloc(cap * sizeof(*buf));
        if (buf == NULL)
            return -ENOMEM;
        lock_live_all();
        size_t total = wide_count;
        for (int i = 0; i < LIVE_SHARDS; i++)
            total += live[i].count;
        if (total > cap) {
            unlock_live_all();
            hs_free(buf);
            continue;
        }
        size_t k = 0;
        for (int i = 0; i < LIVE_SHARDS; i++) {
            /* The scan ends at the shard's last entry: tables never shrink, and a program that
             * freed most of its blocks (at exit) leaves them large and nearly empty. */
            live_shard *sh = &live[i];
            size_t left = sh->count;
            for (size_t j = 0; left > 0 && j < sh->cap; j++)
                if (sh->ents[j].a != 0) {
                    packed e = sh->ents[j];
                    uintptr_t a = p_addr(e);
                    size_t size = p_size(e);
                    ptrdiff_t w;
                    if (size == SIZE_BIG && (w = wide_find_unlocked(0, a)) >= 0)
                        size = wide[w].size;
                    buf[k++] = (hs_live){ a, size, p_stack(e), 0 };
                    left--;
                }
        }
        for (size_t j = 0; j < wide_cap; j++)
            if (wide[j].used && !fits_packed(wide[j].domain, wide[j].addr))   /* not a side entry */
                buf[k++] = (hs_live){ wide[j].addr, wide[j].size, wide[j].stack, wide[j].domain };
        *current = atomic_load(&hs_st.current);
        *peak = atomic_load(&hs_st.peak);
        unlock_live_all();
        *out = buf;
        *n_out = k;
        return 0;
    }
}

void hs_live_clear(void)
{
    lock_live_all();
    for (int i = 0; i < LIVE_SHARDS; i++) {
        live_shard *sh = &live[i];
        if (sh->ents != NULL)
            memset(sh->ents, 0, sh->cap * sizeof(*sh->ents));
        sh->count = 0;
    }
    if (wide != NULL)
        memset(wide, 0, wide_cap * sizeof(*wide));
    atomic_store(&wide_count, 0);
    atomic_store(&hs_st.current, 0);
    atomic_store(&hs_st.peak, 0);
    unlock_live_all();
}

/* ---- fork --------------------------------------------------------------------------------------- */

void hs_tables_lock_all(void)
{
    pthread_mutex_lock(&tblock_lock);
    for (int i = 0; i < STACK_SHARDS; i++)
        pthread_mutex_lock(&stacks[i].lock);
    lock_live_all();
}

void hs_tables_unlock_all(void)
{
    unlock_live_all();
    for (int i = STACK_SHARDS - 1; i >= 0; i--)
        pthread_mutex_unlock(&stacks[i].lock);
    pthread_mutex_unlock(&tblock_lock);
}

void hs_tables_reinit_locks(void)
{
    for (int i = 0; i < STACK_SHARDS; i++)
        memcpy(&stacks[i].lock, &mutex_init, sizeof(mutex_init));
    for (int i = 0; i < LIVE_SHARDS; i++)
        atomic_store(&live[i].lock.held, 0);
    memcpy(&wide_lock, &mutex_init, sizeof(mutex_init));
    memcpy(&tblock_lock, &mutex_init, sizeof(mutex_init));
}
