/*
 * snapscale.c - scaling of snapshots with live blocks and distinct stacks, for bench/run.py.
 * Linked with libheapsnap (it calls hs_start itself; no environment is needed).
 *
 *   snapscale blocks N S FRAMES DIR
 *       Interns S distinct call stacks, allocates N live blocks spread evenly over them, then
 *       times the first snapshot of the N blocks (hs_take_snapshot, cold: libdw is loaded and the
 *       frames symbolized), its hs_snapshot_dump to DIR/full.hsnap, and a second take (warm).
 *       Then frees the last 20 % of the blocks and grows back in 4 steps, dumping 5 snapshots
 *       DIR/series/step-K.hsnap (0.80 N .. 1.00 N) for `heapsnap diff` and `heapsnap leaks`.
 *   snapscale series N COUNT S FRAMES DIR
 *       COUNT snapshots of about N live blocks each, to DIR/NNNNNN.hsnap: S-1 sites churn (10 %
 *       of their blocks are freed and reallocated between snapshots) while site 0 leaks, growing
 *       from 0 to N/10 blocks over the series.
 * Prints one line of JSON with the timings (seconds), sizes and tracer memory.
 *
 * Distinct stacks come from a tree of ten trampolines: a stack is the chain of trampolines that
 * leads to malloc, chosen by the decimal digits of a code, so L levels give 10^L stacks, each
 * identified within its L most recent frames.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "heapsnap.h"

typedef void *(*hop_fn)(int level, unsigned long code, size_t size);
static hop_fn const hops[10];

/* One trampoline per line, so that every one has its own function and line in a traceback. */
#define HOP(k)                                                                                    \
    __attribute__((noinline)) static void *hop##k(int level, unsigned long code, size_t size)     \
    {                                                                                             \
        void *p = level <= 1 ? malloc(size) : hops[code % 10](level - 1, code / 10, size);        \
        __asm__ volatile("" : "+r"(p) : : "memory"); /* no tail call: a real frame per level */   \
        return p;                                                                                 \
    }
HOP(0)
HOP(1)
HOP(2)
HOP(3)
HOP(4)
HOP(5)
HOP(6)
HOP(7)
HOP(8)
HOP(9)
static hop_fn const hops[10] = { hop0, hop1, hop2, hop3, hop4, hop5, hop6, hop7, hop8, hop9 };

static int levels = 1;                       /* digits of the largest code */

static void *alloc_from(unsigned long code, size_t size)
{
    return hops[code % 10](levels, code / 10, size);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "snapscale: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void **ptr_array(size_t n)           /* outside the traced heap */
{
    void *p = mmap(NULL, (n ? n : 1) * sizeof(void *), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("mmap");
    return p;
}

static size_t block_size(size_t i) { return 16 + (i % 8) * 8; }

static void set_levels(unsigned long s)
{
    levels = 1;
    for (unsigned long x = 10; x < s; x *= 10)
        levels++;
}

/* The one place that allocates blocks: b[i] for each empty i in [lo, hi), from stack i % s.  A
 * stack is the whole chain of return addresses up to main, so every phase of blocks_mode calls
 * this from the same line: the stacks interned first are then exactly those of the blocks. */
__attribute__((noinline)) static void alloc_range(void **b, size_t lo, size_t hi, unsigned long s)
{
    for (size_t i = lo; i < hi; i++)
        if (b[i] == NULL && (b[i] = alloc_from(i % s, block_size(i))) == NULL)
            die("malloc");
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Takes and dumps one snapshot; returns the times through *take and *dump. */
static void snap_to(const char *path, double *take, double *dump, size_t *count)
{
    double t0 = now();
    hs_snapshot *s = hs_take_snapshot();
    double t1 = now();
    if (s == NULL)
        die("hs_take_snapshot");
    int rc = hs_snapshot_dump(s, path);
    double t2 = now();
    if (rc < 0) {
        fprintf(stderr, "snapscale: dump %s: %s\n", path, hs_strerror(rc));
        exit(1);
    }
    if (count)
        *count = hs_snapshot_count(s);
    hs_snapshot_free(s);
    if (take)
        *take = t1 - t0;
    if (dump)
        *dump = t2 - t1;
}

static int blocks_mode(size_t n, unsigned long s, const char *dir)
{
    char path[4096];
    size_t keep = n / 10 * 8;
    void **b = ptr_array(n), **first = ptr_array(s);
    size_t mem_start = 0, mem_stacks = 0, mem_blocks = 0, traced = 0, peak, count = 0;
    double t_alloc = 0, take_cold = 0, dump = 0, take_warm = 0, series_time = 0;
    off_t size = -1;
    snprintf(path, sizeof(path), "%s/series", dir);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        die(path);
    /* Phase 0: one block per stack, freed at once, so that the stack table is complete before the
     * blocks are counted.  Phase 1: the N blocks, then the snapshots timed.  Phases 2-6: the last
     * 20 % freed, and grown back in 4 steps: 0.80 N, 0.85 N, 0.90 N, 0.95 N, N. */
    for (int phase = 0; phase < 7; phase++) {
        void **arr = phase == 0 ? first : b;
        size_t lo = phase <= 1 ? 0 : keep;
        size_t hi = phase == 0 ? s : phase == 1 ? n : keep + (n - keep) * (size_t)(phase - 2) / 4;
        if (phase == 0)
            mem_start = hs_get_tracer_memory();
        /* Phase 0 goes by chunks freed at once, so that the live table stays small. */
        size_t chunk = phase == 0 ? 1024 : hi - lo + 1;
        double t0 = now();
        for (size_t c = lo; c < hi; c += chunk) {
            alloc_range(arr, c, hi - c > chunk ? c + chunk : hi, s);
            for (size_t i = c; phase == 0 && i < hi && i < c + chunk; i++) {
                free(first[i]);
                first[i] = NULL;
            }
        }
        double dt = now() - t0;
        if (phase == 0) {
            mem_stacks = hs_get_tracer_memory();
        } else if (phase == 1) {
            t_alloc = dt;
            mem_blocks = hs_get_tracer_memory();
            hs_get_traced_memory(&traced, &peak);
            snprintf(path, sizeof(path), "%s/full.hsnap", dir);
            snap_to(path, &take_cold, &dump, &count);
            size = file_size(path);
            t0 = now();
            hs_snapshot *w = hs_take_snapshot();
            take_warm = now() - t0;
            if (w == NULL)
                die("hs_take_snapshot");
            hs_snapshot_free(w);
            for (size_t i = keep; i < n; i++) {
                free(b[i]);
                b[i] = NULL;
            }
        } else {
            snprintf(path, sizeof(path), "%s/series/step-%d.hsnap", dir, phase - 2);
            double tk, dp;
            snap_to(path, &tk, &dp, NULL);
            series_time += tk + dp;
        }
    }
    printf("{\"mode\": \"blocks\", \"blocks\": %zu, \"stacks\": %lu, \"snapshot_traces\": %zu, "
           "\"alloc_s\": %.6f, \"take_cold_s\": %.6f, \"dump_s\": %.6f, \"take_warm_s\": %.6f, "
           "\"file_bytes\": %lld, \"series_snap_s\": %.6f, \"tracer_mem_start\": %zu, "
           "\"tracer_mem_stacks\": %zu, \"tracer_mem_blocks\": %zu, \"traced_bytes\": %zu}\n",
           n, s, count, t_alloc, take_cold, dump, take_warm, (long long)size, series_time,
           mem_start, mem_stacks, mem_blocks, traced);
    return 0;
}

static int series_mode(size_t n, int count, unsigned long s, const char *dir)
{
    char path[4096];
    if (s < 2)
        s = 2;
    size_t leak_total = n / 10, per_step = leak_total / (size_t)count;
    size_t base = n - leak_total;           /* churning blocks, sites 1 .. s-1 */
    void **b = ptr_array(base), **leak = ptr_array(leak_total + 1);
    for (size_t i = 0; i < base; i++)
        b[i] = alloc_from(1 + i % (s - 1), block_size(i));
    size_t nleak = 0;
    unsigned long long rng = 88172645463325252ULL;
    double take_sum = 0, dump_sum = 0, take_max = 0;
    size_t last_count = 0;
    for (int k = 0; k < count; k++) {
        for (size_t j = 0; j < base / 10; j++) {   /* churn: 10 % freed and reallocated */
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            size_t i = (size_t)(rng % base);
            free(b[i]);
            b[i] = alloc_from(1 + i % (s - 1), block_size(i + (size_t)k));
        }
        for (size_t j = 0; j < per_step; j++)
            leak[nleak++] = alloc_from(0, 48);
        snprintf(path, sizeof(path), "%s/%06d.hsnap", dir, k);
        double tk, dp;
        snap_to(path, &tk, &dp, &last_count);
        take_sum += tk;
        dump_sum += dp;
        if (tk + dp > take_max)
            take_max = tk + dp;
    }
    printf("{\"mode\": \"series\", \"blocks\": %zu, \"snapshots\": %d, \"stacks\": %lu, "
           "\"last_traces\": %zu, \"take_total_s\": %.6f, \"dump_total_s\": %.6f, "
           "\"snap_max_s\": %.6f}\n",
           n, count, s, last_count, take_sum, dump_sum, take_max);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "blocks") == 0) {
        size_t n = strtoull(argv[2], NULL, 10);
        unsigned long s = strtoul(argv[3], NULL, 10);
        int frames = atoi(argv[4]);
        if (s < 1 || hs_start(frames) < 0) {
            fprintf(stderr, "snapscale: bad stacks or frames, or libheapsnap not loaded\n");
            return 2;
        }
        set_levels(s);
        return blocks_mode(n, s, argv[5]);
    }
    if (argc == 7 && strcmp(argv[1], "series") == 0) {
        size_t n = strtoull(argv[2], NULL, 10);
        int count = atoi(argv[3]);
        unsigned long s = strtoul(argv[4], NULL, 10);
        int frames = atoi(argv[5]);
        if (count < 1 || hs_start(frames) < 0) {
            fprintf(stderr, "snapscale: bad count or frames, or libheapsnap not loaded\n");
            return 2;
        }
        set_levels(s);
        return series_mode(n, count, s, argv[6]);
    }
    fprintf(stderr, "usage: snapscale blocks N STACKS FRAMES DIR\n"
                    "       snapscale series N SNAPSHOTS STACKS FRAMES DIR\n");
    return 2;
}
