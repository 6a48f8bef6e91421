/*
 * soak.c - the soak test's program (tests/test_soak.py): THREADS threads allocate, reallocate
 * and free without pause, some blocks freed by another thread than the one that allocated them,
 * through malloc, calloc, realloc, posix_memalign and aligned_alloc, from call stacks of several
 * depths.  Every PERIOD_MS the threads are parked at a barrier, and the main thread checks,
 * exactly, that the traced memory and a snapshot's totals equal the program's own count of its
 * live bytes and blocks; it reports the tracer's memory for the test to judge (the RSS is in the
 * tracer thread's timeline).
 *
 *   soak SECONDS [THREADS [PERIOD_MS]]
 *
 * Output: "soak: threads T period P" first, then per check
 *   check N t SECONDS bytes B blocks K tracer M heap H snapshot_ms S ops O
 * (B and K: the program's live bytes and blocks; M: hs_get_tracer_memory(); H: the bytes malloc
 * has handed out, the program's and the tracer's, from mallinfo2) and "soak: ok" at the end.  A mismatch prints both values and exits 1 (live.h).  Run with
 * HEAPSNAP_FRAMES (and HEAPSNAP_DIR, HEAPSNAP_INTERVAL for periodic snapshots in parallel).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "live.h"

#define MAX_THREADS 64
#define SLOTS 2048                        /* blocks a thread holds at most */
#define MAILBOX 256                       /* blocks on their way to another thread */

/* The program's own accounting: every block carries its size in its first word. */
static _Atomic long long live_bytes, live_blocks;
static _Atomic(void *) mailbox[MAILBOX];
static _Atomic int pause_req = 1, stop;
static _Atomic unsigned long long ops;
static pthread_barrier_t parked, resumed;
static void *slots[MAX_THREADS][SLOTS];
static int nthreads;

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Mostly small, some pages, rarely above the mmap threshold. */
static size_t pick_size(uint64_t r)
{
    unsigned k = (unsigned)(r % 1000);
    if (k < 900)
        return 16 + (size_t)(r >> 10) % 497;
    if (k < 998)
        return 4096 + (size_t)(r >> 10) % 28672;
    return 150000 + (size_t)(r >> 10) % 100000;
}

static void account(long long bytes, long long blocks)
{
    atomic_fetch_add_explicit(&live_bytes, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&live_blocks, blocks, memory_order_relaxed);
}

__attribute__((noinline)) static void *new_block(uint64_t r)
{
    size_t n = pick_size(r);
    void *p = NULL;
    switch ((r >> 40) % 5) {
    case 0: p = malloc(n); break;
    case 1: p = calloc(1, n); break;
    case 2: p = realloc(NULL, n); break;
    case 3: if (posix_memalign(&p, 64, n) != 0) p = NULL; break;
    default: p = aligned_alloc(32, (n + 31) & ~(size_t)31); n = (n + 31) & ~(size_t)31; break;
    }
    CHECK(p != NULL);
    *(size_t *)p = n;
    account((long long)n, 1);
    return p;
}

/* A few call depths, so that the stack table has a bounded variety of stacks. */
__attribute__((noinline)) static void *nested(int depth, uint64_t r)
{
    if (depth == 0)
        return new_block(r);
    void *p = nested(depth - 1, r);
    __asm__ volatile("" ::: "memory");      /* no tail call */
    return p;
}

static void drop(void *p)
{
    if (p == NULL)
        return;
    account(-(long long)*(size_t *)p, -1);
    free(p);
}

static void *grow_or_shrink(void *p, uint64_t r)
{
    size_t old = *(size_t *)p, n = pick_size(r);
    void *q = realloc(p, n);
    CHECK(q != NULL);
    *(size_t *)q = n;
    account((long long)n - (long long)old, 0);
    return q;
}

static void *worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(me + 1);
    unsigned long long done = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (atomic_load_explicit(&pause_req, memory_order_acquire)) {
            atomic_fetch_add(&ops, done);
            done = 0;
            pthread_barrier_wait(&parked);
            pthread_barrier_wait(&resumed);
            continue;
        }
        uint64_t r = next_rand(&seed);
        void **slot = &slots[me][r % SLOTS];
        unsigned what = (unsigned)(r >> 20) % 8;
        if (*slot == NULL) {
            *slot = nested((int)((r >> 24) % 6), next_rand(&seed));
        } else if (what == 0) {
            *slot = grow_or_shrink(*slot, next_rand(&seed));
        } else if (what == 1) {
            /* To the mailbox; whatever was there (another thread's, often) is freed here. */
            drop(atomic_exchange(&mailbox[(r >> 32) % MAILBOX], *slot));
            *slot = NULL;
        } else {
            drop(*slot);
            *slot = NULL;
        }
        done++;
    }
    atomic_fetch_add(&ops, done);
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void park(void) { atomic_store(&pause_req, 1); pthread_barrier_wait(&parked); }
static void resume(void) { atomic_store(&pause_req, 0); pthread_barrier_wait(&resumed); }

/* The snapshot's totals (and its own counter, which must agree with them). */
static void snapshot_totals(size_t *bytes, size_t *blocks, double *ms)
{
    double t = now();
    hs_snapshot *s = hs_take_snapshot();
    CHECK(s != NULL);
    *ms = (now() - t) * 1000;
    hs_snapshot_totals(s, bytes, blocks);
    const hs_snapshot_meta *m = hs_snapshot_get_meta(s);
    CHECK_EQ(m->traced_current, *bytes);
    CHECK_EQ(m->lost_blocks, 0);
    CHECK_EQ(m->tracer_oom, 0);
    hs_snapshot_free(s);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 10;
    nthreads = argc > 2 ? atoi(argv[2]) : 8;
    int period_ms = argc > 3 ? atoi(argv[3]) : 1000;
    CHECK(nthreads >= 1 && nthreads <= MAX_THREADS && period_ms >= 10);
    CHECK_EQ(hs_start(16), 0);                /* already tracing with HEAPSNAP_FRAMES: a no-op */
    printf("soak: threads %d period %d\n", nthreads, period_ms);   /* stdout's buffer, now */
    fflush(stdout);
    CHECK_EQ(pthread_barrier_init(&parked, NULL, (unsigned)nthreads + 1), 0);
    CHECK_EQ(pthread_barrier_init(&resumed, NULL, (unsigned)nthreads + 1), 0);
    pthread_t t[MAX_THREADS];
    for (int i = 0; i < nthreads; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i), 0);

    /* The threads start parked, before their first allocation: what is traced now is the
     * baseline (libc's and the threads' own), which the checks subtract. */
    pthread_barrier_wait(&parked);
    size_t base, peak, base_snap, base_snap_blocks;
    double ms;
    hs_get_traced_memory(&base, &peak);
    snapshot_totals(&base_snap, &base_snap_blocks, &ms);
    CHECK_EQ(base_snap, base);
    double start = now();
    resume();
    for (int n = 1;; n++) {
        struct timespec ts = { period_ms / 1000, (long)(period_ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0)
            ;
        park();
        long long bytes = atomic_load(&live_bytes), blocks = atomic_load(&live_blocks);
        size_t cur, snap, snap_blocks;
        hs_get_traced_memory(&cur, &peak);
        CHECK_EQ(cur - base, bytes);
        snapshot_totals(&snap, &snap_blocks, &ms);
        CHECK_EQ(snap - base_snap, bytes);
        CHECK_EQ(snap_blocks - base_snap_blocks, blocks);
        double t = now() - start;
        struct mallinfo2 mi = mallinfo2();
        printf("check %d t %.3f bytes %lld blocks %lld tracer %zu heap %zu snapshot_ms %.1f "
               "ops %llu\n", n, t, bytes, blocks, hs_get_tracer_memory(),
               mi.uordblks + mi.hblkhd, ms, atomic_load(&ops));
        fflush(stdout);
        if (t >= seconds)
            break;
        resume();
    }
    /* Still parked: free everything, and the traced memory is the baseline again. */
    for (int i = 0; i < nthreads; i++)
        for (int k = 0; k < SLOTS; k++)
            drop(slots[i][k]);
    for (int k = 0; k < MAILBOX; k++)
        drop(atomic_exchange(&mailbox[k], NULL));
    CHECK_EQ(atomic_load(&live_bytes), 0);
    CHECK_EQ(atomic_load(&live_blocks), 0);
    size_t cur;
    hs_get_traced_memory(&cur, &peak);
    CHECK_EQ(cur, base);
    atomic_store(&stop, 1);
    resume();
    for (int i = 0; i < nthreads; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    printf("soak: ok\n");
    return 0;
}
