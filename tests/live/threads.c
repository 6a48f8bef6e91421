/*
 * threads.c - many threads allocating at once, each freeing blocks another thread allocated,
 * with snapshots taken meanwhile: the traced totals must match the program's own accounting.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "live.h"

#define THREADS 16
#define ROUNDS 2000
#define SLOTS 64

/* Each thread fills its own slots and empties its neighbour's. */
static _Atomic(void *) slots[THREADS][SLOTS];
static _Atomic size_t sizes[THREADS][SLOTS];
static _Atomic int stop_snapshots;

static void *worker(void *arg)
{
    int me = (int)(intptr_t)arg, other = (me + 1) % THREADS;
    unsigned seed = (unsigned)me * 7919u + 1;
    for (int r = 0; r < ROUNDS; r++) {
        int k = (int)(rand_r(&seed) % SLOTS);
        size_t n = 1 + rand_r(&seed) % 512;
        void *p = malloc(n);
        void *old = atomic_exchange(&slots[me][k], NULL);
        if (old != NULL)
            free(old);
        atomic_store(&sizes[me][k], n);
        atomic_store(&slots[me][k], p);
        void *theirs = atomic_exchange(&slots[other][rand_r(&seed) % SLOTS], NULL);
        free(theirs);                         /* a block another thread allocated */
        if (r % 100 == 0) {
            void *q = realloc(NULL, 10);
            q = realloc(q, 1000);
            free(q);
        }
    }
    return NULL;
}

static void *snapshotter(void *arg)
{
    (void)arg;
    int taken = 0;
    while (!atomic_load(&stop_snapshots) || taken < 3) {
        hs_snapshot *s = hs_take_snapshot();
        CHECK(s != NULL);
        size_t total = 0;
        for (size_t i = 0; i < hs_snapshot_count(s); i++) {
            size_t size;
            hs_snapshot_get(s, i, NULL, &size, NULL);
            total += size;
        }
        /* Atomic with respect to allocations: the counter read with the copy matches it. */
        CHECK_EQ(hs_snapshot_get_meta(s)->traced_current, total);
        hs_snapshot_free(s);
        taken++;
    }
    return NULL;
}

int main(void)
{
    CHECK_EQ(hs_start(8), 0);
    size_t base, peak;
    hs_get_traced_memory(&base, &peak);
    pthread_t t[THREADS], snap;
    CHECK_EQ(pthread_create(&snap, NULL, snapshotter, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    atomic_store(&stop_snapshots, 1);
    CHECK_EQ(pthread_join(snap, NULL), 0);

    size_t live = 0, blocks = 0;
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < SLOTS; k++)
            if (atomic_load(&slots[i][k]) != NULL) {
                live += atomic_load(&sizes[i][k]);
                blocks++;
            }
    hs_snapshot *s = hs_take_snapshot();
    CHECK(s != NULL);
    size_t mine = 0, mine_blocks = 0;
    for (size_t i = 0; i < hs_snapshot_count(s); i++) {
        size_t size;
        const hs_traceback *tb;
        hs_snapshot_get(s, i, NULL, &size, &tb);
        if (tb->nframes && strcmp(tb->frames[0].function, "worker") == 0) {
            mine += size;
            mine_blocks++;
        }
    }
    CHECK_EQ(mine, live);
    CHECK_EQ(mine_blocks, blocks);
    CHECK_EQ(hs_snapshot_get_meta(s)->lost_blocks, 0);
    hs_snapshot_free(s);
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < SLOTS; k++)
            free(atomic_load(&slots[i][k]));
    size_t cur;
    hs_get_traced_memory(&cur, &peak);
    /* Thread stacks and descriptors (DTVs) stay cached by glibc: allow them, nothing more. */
    CHECK(cur - base < 64 * 1024);
    hs_stop();
    printf("threads: ok\n");
    return 0;
}
