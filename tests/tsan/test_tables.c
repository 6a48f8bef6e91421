/*
 * test_tables.c - the tracer's tables and their locking under ThreadSanitizer, in a harness that
 * is not preloaded (TSan replaces malloc itself, so the hooks cannot be loaded with it).
 *
 * Threads insert, replace and remove blocks (also blocks other threads inserted), intern stacks
 * and read them back by id, while another thread copies all tables and checks that the copy and
 * the counters read with it agree.  Before that, one thread checks that blocks read back as they
 * went in at the edges of the packed entry (and past them, in the wide table).  Plain asserts that
 * print both values; exit 1 on failure.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "tracer/tables.c"

hs_state hs_st = { .tracing = 1, .limit = 8, .trim = 1 };
pthread_key_t hs_guard_key;                  /* hooks.c's, for the threads' blocks */
_Atomic int hs_guard_ready;

#define THREADS 4
#define OPS 20000

static _Atomic int done;
static _Atomic int failures;

#define EXPECT(cond, ...)                                                  \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "test_tables.c:%d: %s: ", __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            atomic_fetch_add(&failures, 1);                                \
        }                                                                  \
    } while (0)

static void *worker(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg, seed = me + 1;
    EXPECT(hs_guard_enter(), "no block for thread %u", me);   /* the thread's block: its cache */
    for (int i = 0; i < OPS; i++) {
        uintptr_t pcs[6] = { 0x1000u + (uintptr_t)(rand_r(&seed) % 50), 0x2000, 0x3000, me, 5, 6 };
        uint32_t id = i % 2 ? hs_stacks_intern(pcs, 6) : hs_stacks_intern_uncached(pcs, 6);
        EXPECT(id != 0, "intern failed");
        EXPECT(hs_stacks_intern(pcs, 6) == id, "the thread's cache disagrees with the table");
        const hs_stack *st = hs_stacks_get(id);
        EXPECT(st != NULL && st->n == 6 && st->pcs[0] == pcs[0], "stack %u read back wrong", id);
        /* Addresses shared by all threads: puts and deletes race on the same keys. */
        uintptr_t addr = 0x10000u + 16u * (uintptr_t)(rand_r(&seed) % 5000);
        size_t old;
        int replaced;
        if (rand_r(&seed) % 3)
            hs_live_put(0, addr, 1 + rand_r(&seed) % 100, id, &old, &replaced);
        else
            hs_live_del(0, addr, NULL);
        if (i % 97 == 0)
            hs_live_put(7, addr, 10, id, &old, &replaced);      /* the wide table */
        if (i % 89 == 0)
            hs_live_del(7, addr, NULL);
    }
    hs_guard_leave();
    return NULL;
}

/* Each block put and taken back whole, at and past the limits of a 12-byte entry; `wide` says
 * whether it must also have an entry in the wide table (a block there, or the side entry that
 * holds the size of a block of 8 MiB - 1 or more). */
static void check_packing(void)
{
    static const struct { uintptr_t addr; size_t size; uint32_t stack; int wide; } c[] = {
        { 0x10000, 0, 1, 0 },
        { 0x10008, 1, (1u << 28) - 1, 0 },                         /* largest stack id */
        { 0x10010, (1u << 19) - 1, 5, 0 },                         /* all low size bits */
        { 0x10018, 1u << 19, 5, 0 },                               /* first high size bit */
        { 0x10020, (1u << 23) - 2, (1u << 28) - 1, 0 },            /* the largest size held */
        { ((uintptr_t)1 << 48) - 8, 100, 7, 0 },                   /* highest packed address */
        { 0x10028, (1u << 23) - 1, 5, 1 },                         /* sizes held on the side */
        { 0x10030, 1u << 23, (1u << 28) - 1, 1 },
        { 0x10038, (size_t)1 << 40, 5, 1 },
        { 0x10041, 24, 5, 1 },                                     /* not 8-byte aligned */
        { 0x10044, 24, 5, 1 },
        { (uintptr_t)1 << 48, 24, 5, 1 },                          /* above 48 bits */
    };
    size_t n = sizeof(c) / sizeof(c[0]), old, total = 0;
    int replaced;
    for (size_t i = 0; i < n; i++) {
        size_t wide_before = atomic_load(&wide_count);
        EXPECT(hs_live_put(0, c[i].addr, c[i].size, c[i].stack, &old, &replaced) == 0 && !replaced,
               "put %zu", i);
        EXPECT(atomic_load(&wide_count) - wide_before == (size_t)c[i].wide,
               "block %zu: %s wide entry", i, c[i].wide ? "no" : "a");
        total += c[i].size;
    }
    EXPECT(atomic_load(&hs_st.current) == total, "current %zu, put %zu",
           (size_t)atomic_load(&hs_st.current), total);
    hs_live *lv;
    size_t nlv, cur, peak, sum = 0;
    EXPECT(hs_live_copy(&lv, &nlv, &cur, &peak) == 0 && nlv == n, "copy has %zu blocks", nlv);
    for (size_t i = 0; i < nlv; i++)
        sum += lv[i].size;
    EXPECT(sum == total, "copy sums %zu, put %zu", sum, total);
    free(lv);
    for (size_t i = 0; i < n; i++) {
        hs_live got = { 0 };
        EXPECT(hs_live_del(0, c[i].addr, &got) == 1, "block %zu not found", i);
        EXPECT(got.addr == c[i].addr && got.size == c[i].size && got.stack == c[i].stack,
               "block %zu read back as %#zx %zu %u", i, (size_t)got.addr, got.size, got.stack);
    }
    EXPECT(atomic_load(&hs_st.current) == 0 && atomic_load(&wide_count) == 0, "blocks left");

    /* One address put again across the 8 MiB mark, both ways (a free the tracer missed, or an
     * operator new recording the size asked for after aligned_alloc recorded a rounded one): it
     * stays one block, and one delete removes it. */
    static const size_t sizes[] = { 100, 9u << 20, (8u << 20) - 1, 50, 1u << 30, 1u << 30, 7 };
    size_t prev = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        EXPECT(hs_live_put(0, 0x20000, sizes[i], 9, &old, &replaced) == 0, "re-put %zu", i);
        EXPECT(replaced == (i > 0) && old == prev, "re-put %zu: replaced %d, old %zu", i, replaced,
               old);
        EXPECT(atomic_load(&hs_st.current) == sizes[i], "re-put %zu: current %zu", i,
               (size_t)atomic_load(&hs_st.current));
        prev = sizes[i];
    }
    hs_live got = { 0 };
    EXPECT(hs_live_del(0, 0x20000, &got) == 1 && got.size == 7, "re-put block not found whole");
    EXPECT(hs_live_get(0, 0x20000, &got) == 0, "re-put block still there");
    EXPECT(atomic_load(&hs_st.current) == 0 && atomic_load(&wide_count) == 0, "re-put left %zu B",
           (size_t)atomic_load(&hs_st.current));
}

static void *copier(void *arg)
{
    (void)arg;
    while (!atomic_load(&done)) {
        hs_live *lv;
        size_t n, cur, peak, sum = 0;
        EXPECT(hs_live_copy(&lv, &n, &cur, &peak) == 0, "copy failed");
        for (size_t i = 0; i < n; i++)
            sum += lv[i].size;
        EXPECT(sum == cur, "copy sums %zu, counter says %zu", sum, cur);
        EXPECT(peak >= cur, "peak %zu below current %zu", peak, cur);
        free(lv);
    }
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS], c;
    if (pthread_key_create(&hs_guard_key, hs_thread_release) != 0)
        return 1;
    atomic_store(&hs_guard_ready, 1);
    check_packing();
    pthread_create(&c, NULL, copier, NULL);
    for (unsigned i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&done, 1);
    pthread_join(c, NULL);

    /* Everything removed: counters back to zero. */
    hs_live *lv;
    size_t n, cur, peak;
    hs_live_copy(&lv, &n, &cur, &peak);
    for (size_t i = 0; i < n; i++)
        hs_live_del(lv[i].domain, lv[i].addr, NULL);
    free(lv);
    EXPECT(atomic_load(&hs_st.current) == 0, "current %zu after removing all",
           (size_t)atomic_load(&hs_st.current));
    hs_live_clear();
    EXPECT(atomic_load(&hs_st.peak) == 0, "peak not reset");
    int f = atomic_load(&failures);
    printf("test_tables: %s (%d failures)\n", f ? "FAILED" : "ok", f);
    return f ? 1 : 0;
}
