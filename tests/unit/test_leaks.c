/*
 * test_leaks.c - the leak verdict (src/analysis/leaks.c, docs/LEAKS.md) on series of snapshots
 * built from literals: what must be reported (linear, step-wise, noisy and slow leaks) with exact
 * rates and confidences where they are determined, what must not (warm-up caches, bounded
 * buffers, churn, shrinking sites, single jumps), ordering, keys, errors, ownership, a reference
 * implementation of every factor checked against the real one on random series, every
 * allocation failing in turn, and scale.
 *
 * heapsnap allocates through hs_malloc / hs_calloc / hs_realloc / hs_free, weak in
 * src/common/mem.c; the strong definitions below replace them in this program so that a test can
 * make the n-th allocation fail.
 */
#include "unit.h"
#include "analysis/analysis.h"
#include "analysis/leaks.h"

#include <errno.h>
#include <math.h>
#include <time.h>

#include "oom.h"

#define T0 1700000000.0     /* a plausible Epoch timestamp for the first snapshot */

/* |a - b| <= 1e-9 relative (absolute near 0), with both values printed on failure. */
#define assert_near(a, b)                                                                  \
    do {                                                                                   \
        double a_ = (a), b_ = (b);                                                         \
        if (!(fabs(a_ - b_) <= 1e-9 * (fabs(b_) > 1 ? fabs(b_) : 1))) {                    \
            print_error("%s = %.17g, expected %.17g\n", #a, a_, b_);                       \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

/* A deterministic generator (PCG-style LCG, upper bits). */
static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s; }
static uint32_t rng(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* ---- building series ------------------------------------------------------------------------ */

static hs_snapshot *snap(double ts, double el)
{
    hs_snapshot *s = hs_snapshot_new(8);
    assert_non_null(s);
    hs_snapshot_meta m = { .timestamp = ts, .elapsed = el, .program = "/usr/bin/svc",
                           .kind = "interval" };
    assert_int_equal(hs_snapshot_set_meta(s, &m), 0);
    return s;
}

/* n snapshots taken `step` seconds apart, starting at T0 (elapsed from 0). */
static hs_snapshot **series_new(size_t n, double step)
{
    hs_snapshot **s = calloc(n, sizeof(*s));
    assert_non_null(s);
    for (size_t j = 0; j < n; j++)
        s[j] = snap(T0 + step * (double)j, step * (double)j);
    return s;
}

/* n snapshots taken at the times at[] (seconds after T0). */
static hs_snapshot **series_at(const double *at, size_t n)
{
    hs_snapshot **s = calloc(n, sizeof(*s));
    assert_non_null(s);
    for (size_t j = 0; j < n; j++)
        s[j] = snap(T0 + at[j], at[j]);
    return s;
}

static void series_free(hs_snapshot **s, size_t n)
{
    for (size_t j = 0; j < n; j++)
        hs_snapshot_free(s[j]);
    free(s);
}

/* `bytes` in `blocks` traces (sizes differing by at most 1) at the traceback f (most recent
 * first).  blocks 0 adds nothing. */
static void put(hs_snapshot *s, size_t bytes, size_t blocks, size_t nf, const hs_frame *f)
{
    for (size_t b = 0; b < blocks; b++)
        add_trace(s, 0, bytes / blocks + (b < bytes % blocks), nf, f);
}
#define PUT(s, bytes, blocks, ...)                                                       \
    do {                                                                                 \
        const hs_frame f_[] = { __VA_ARGS__ };                                           \
        put((s), (bytes), (blocks), sizeof(f_) / sizeof(f_[0]), f_);                     \
    } while (0)

static hs_leak_report *analyze(hs_snapshot **s, size_t n, hs_key_type key, double min_conf)
{
    hs_leak_opts o;
    hs_leak_opts_init(&o);
    o.key = key;
    o.min_confidence = min_conf;
    hs_leak_report *r = hs_leaks_analyze((const hs_snapshot *const *)s, n, &o);
    assert_non_null(r);
    return r;
}

static void assert_site(const hs_leak_suspect *e, const char *file, unsigned line)
{
    assert_non_null(e);
    assert_true(e->traceback->nframes >= 1);
    assert_string_equal(e->traceback->frames[0].filename, file);
    assert_int_equal(e->traceback->frames[0].lineno, line);
}

/* ---- a reference implementation of docs/LEAKS.md, written for clarity, not speed ------------ */

typedef struct ref {
    int suspect;          /* passes the candidate rule and the gates */
    double trend, steadiness, ending, support, confidence, slope;
} ref;

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* x: times (or snapshot numbers) strictly increasing with x[0] = 0; y: bytes. */
static ref reference(const double *x, const double *y, size_t n)
{
    ref r = { 0 };
    size_t k = n - 1, rises = 0;
    for (size_t j = 1; j < n; j++)
        rises += y[j] > y[j - 1];
    if (!(y[n - 1] - y[0] >= 1) || rises < 2)
        return r;
    /* the pairwise statistics on at most 400 evenly spread snapshots */
    size_t p = n < 400 ? n : 400;
    double *px = malloc(p * sizeof(double)), *py = malloc(p * sizeof(double));
    double *sl = malloc(p * p * sizeof(double));
    for (size_t i = 0; i < p; i++) {
        size_t j = p == n ? i : (size_t)floor((double)i * (double)k / (double)(p - 1) + 0.5);
        px[i] = x[j];
        py[i] = y[j];
    }
    long c = 0, d = 0;
    size_t m = 0;
    for (size_t i = 0; i < p; i++)
        for (size_t j = i + 1; j < p; j++) {
            c += py[j] > py[i];
            d += py[j] < py[i];
            sl[m++] = (py[j] - py[i]) / (px[j] - px[i]);
        }
    r.trend = c + d > 0 && c > d ? (double)(c - d) / (double)(c + d) : 0;
    qsort(sl, m, sizeof(double), cmp_dbl);
    r.slope = m % 2 ? sl[m / 2] : (sl[m / 2 - 1] + sl[m / 2]) / 2;
    size_t lag = (size_t)ceil((double)k / 8), nd = 0;
    for (size_t j = 0; j + lag < n; j++)
        nd += y[j + lag] >= y[j];
    double share = (double)nd / (double)(n - lag);
    r.steadiness = fmin(1, fmax(0, (share - 0.5) / 0.25));
    r.support = (double)k / (double)(k + 2);
    size_t w = 0;                       /* the first snapshot after the middle of the time */
    while (!(x[w] > x[n - 1] * (0.5 + 1e-6)))   /* (a millionth of slack for clock rounding) */
        w++;
    double pre = 0, win = 0;
    for (size_t j = 0; j < n; j++) {
        if (j < w)
            pre = fmax(pre, y[j]);
        else
            win = fmax(win, y[j]);
    }
    double overall = fmax(r.slope, (y[n - 1] - y[0]) / x[n - 1]);
    r.ending = r.slope > 0 ? fmin(1, fmax(0, (win - pre) / (x[n - 1] - x[w - 1]) / overall)) : 0;
    r.confidence = r.steadiness * r.support * r.trend * r.ending;
    r.suspect = r.slope > 0;
    free(px);
    free(py);
    free(sl);
    return r;
}

static void assert_matches_reference(const hs_leak_suspect *e, const ref *want, int timed)
{
    assert_true(want->suspect);
    assert_near(e->trend, want->trend);
    assert_near(e->steadiness, want->steadiness);
    assert_near(e->ending, want->ending);
    assert_near(e->support, want->support);
    assert_near(e->confidence, want->confidence);
    if (timed) {
        assert_near(e->rate_bytes_per_second, want->slope);
    } else {
        assert_near(e->rate_bytes_per_snapshot, want->slope);
        assert_near(e->rate_bytes_per_second, 0);
    }
}

/* The reference verdict on a suspect's own series, the snapshots `step` seconds apart. */
static ref reference_of(const hs_leak_report *r, const hs_leak_suspect *e, double step)
{
    size_t n = hs_leaks_snapshots(r);
    double *x = malloc(n * sizeof(double)), *y = malloc(n * sizeof(double));
    for (size_t j = 0; j < n; j++) {
        x[j] = step * (double)j;
        y[j] = (double)e->sizes[j];
    }
    ref want = reference(x, y, n);
    free(x);
    free(y);
    return want;
}

/* ---- what must be reported ------------------------------------------------------------------ */

/* A never-pruned list: +1000 B (10 blocks) per snapshot, snapshots 10 s apart, next to stable
 * memory.  Every number is determined. */
static void test_linear_leak(void **state)
{
    (void)state;
    enum { N = 10 };
    hs_snapshot **s = series_new(N, 10);
    for (size_t j = 0; j < N; j++) {
        PUT(s[j], 5000 + 1000 * j, 50 + 10 * j, F("list.c", 42), F("main.c", 7));
        PUT(s[j], 50000, 25, F("cache.c", 9), F("main.c", 8));
    }
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_snapshots(r), N);
    assert_int_equal(hs_leaks_timed(r), 1);
    assert_near(hs_leaks_duration(r), 90);
    assert_int_equal(hs_leaks_judged(r), 1);       /* the stable site did not grow */
    assert_int_equal(hs_leaks_count(r), 1);
    const hs_leak_suspect *e = hs_leaks_get(r, 0);
    assert_site(e, "list.c", 42);
    assert_int_equal(e->traceback->nframes, 2);
    assert_string_equal(e->traceback->frames[1].filename, "main.c");
    assert_int_equal(e->traceback->frames[1].lineno, 7);
    assert_int_equal(e->size_growth, 9000);
    assert_int_equal(e->count_growth, 90);
    assert_int_equal(e->size_first, 5000);
    assert_int_equal(e->size_last, 14000);
    assert_int_equal(e->count_first, 50);
    assert_int_equal(e->count_last, 140);
    assert_near(e->rate_bytes_per_second, 100);
    assert_near(e->rate_bytes_per_snapshot, 1000);
    /* A clean linear leak has every factor at 1 but support, k / (k + 2) with k = 9. */
    assert_near(e->trend, 1);
    assert_near(e->steadiness, 1);
    assert_near(e->ending, 1);
    assert_near(e->support, 9.0 / 11.0);
    assert_near(e->confidence, 9.0 / 11.0);
    for (size_t j = 0; j < N; j++)
        assert_int_equal(e->sizes[j], 5000 + 1000 * j);
    assert_null(hs_leaks_get(r, 1));
    hs_leaks_free(r);
    series_free(s, N);
}

/* A vector doubling its capacity while its contents grow linearly: the buffer (one block) grows
 * in steps 1, 2, 4, ... KiB at snapshots 1, 2, 5, 10; the elements grow linearly. */
static void test_stepwise_doubling(void **state)
{
    (void)state;
    enum { N = 20 };
    hs_snapshot **s = series_new(N, 1);
    for (size_t j = 0; j < N; j++) {
        size_t elems = 100 * (j + 1), cap = 1;
        while (cap < elems)
            cap *= 2;
        PUT(s[j], 8 * cap, 1, F("vec.c", 12), F("main.c", 3));      /* the vector's buffer */
        PUT(s[j], 8 * elems, elems, F("elem.c", 30), F("main.c", 3)); /* what it points to */
    }
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_count(r), 2);
    const hs_leak_suspect *v = hs_leaks_get(r, 0), *el = hs_leaks_get(r, 1);
    assert_site(v, "vec.c", 12);                /* 15360 B gained, more than 15200 */
    assert_site(el, "elem.c", 30);
    assert_int_equal(v->size_first, 1024);
    assert_int_equal(v->size_last, 16384);
    assert_int_equal(v->size_growth, 15360);
    assert_int_equal(v->count_growth, 0);      /* one block that grew */
    /* Never decreasing, so trend and steadiness are 1 (ties do not count against steps).  The
     * Theil-Sen slope of the steps is 6144/7 B/s; the last half (snapshots 9 -> 19) rose
     * 8192 B in 10 s: ending = 819.2 / (6144/7) = 14/15. */
    assert_near(v->trend, 1);
    assert_near(v->steadiness, 1);
    assert_near(v->rate_bytes_per_second, 6144.0 / 7.0);
    assert_near(v->rate_bytes_per_snapshot, 6144.0 / 7.0);
    assert_near(v->ending, 14.0 / 15.0);
    assert_near(v->support, 19.0 / 21.0);
    assert_near(v->confidence, 19.0 / 21.0 * 14.0 / 15.0);
    assert_int_equal(el->size_growth, 15200);
    assert_int_equal(el->count_growth, 1900);
    assert_near(el->rate_bytes_per_second, 800);
    assert_near(el->confidence, 19.0 / 21.0);
    hs_leaks_free(r);
    series_free(s, N);
}

/* Retained requests (+1000 B per snapshot) and per-request garbage (0 to 6 blocks of 512 B that
 * come and go) at the same call site: the series is noisy but the leak is found, with a rate
 * near the true one. */
static void test_leak_with_churn(void **state)
{
    (void)state;
    enum { N = 20 };
    hs_snapshot **s = series_new(N, 5);
    rng_seed(7);
    size_t churn_first = 0, churn_last = 0;
    for (size_t j = 0; j < N; j++) {
        size_t churn = rng() % 7;
        if (j == 0)
            churn_first = churn;
        churn_last = churn;
        PUT(s[j], 2000 + 1000 * j, 20 + 10 * j, F("handler.c", 30), F("main.c", 3));
        PUT(s[j], 512 * churn, churn, F("handler.c", 30), F("main.c", 3));
        PUT(s[j], 8192, 4, F("config.c", 5));
    }
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_count(r), 1);
    const hs_leak_suspect *e = hs_leaks_get(r, 0);
    assert_site(e, "handler.c", 30);
    assert_int_equal(e->size_growth, 19000 + 512 * ((long long)churn_last - (long long)churn_first));
    assert_int_equal(e->count_growth, 190 + (long long)churn_last - (long long)churn_first);
    assert_true(e->confidence >= HS_LEAK_DEFAULT_CONFIDENCE);
    assert_true(e->steadiness < 1 || e->trend < 1);    /* the churn is visible */
    assert_true(e->rate_bytes_per_snapshot > 900 && e->rate_bytes_per_snapshot < 1100);
    assert_near(e->rate_bytes_per_second, e->rate_bytes_per_snapshot / 5);
    ref want = reference_of(r, e, 5);
    assert_matches_reference(e, &want, 1);
    print_message("  leak + churn: confidence %.3f (trend %.3f, steadiness %.3f, ending %.3f, "
                  "support %.3f), %.1f B/snapshot\n", e->confidence, e->trend, e->steadiness,
                  e->ending, e->support, e->rate_bytes_per_snapshot);
    hs_leaks_free(r);
    series_free(s, N);
}

/* A few hundred bytes per snapshot among megabytes of stable memory: at a site of its own, and at
 * a site that also holds 4 MiB that never change. */
static void test_slow_leak_among_stable(void **state)
{
    (void)state;
    enum { N = 30, NSTABLE = 40 };
    hs_snapshot **s = series_new(N, 60);
    char names[NSTABLE][32];
    for (int i = 0; i < NSTABLE; i++)
        snprintf(names[i], sizeof(names[i]), "mod%02d.c", i);
    for (size_t j = 0; j < N; j++) {
        for (int i = 0; i < NSTABLE; i++)
            PUT(s[j], 100 * 1024, 100, F(names[i], 10 + (unsigned)i), F("main.c", 1));
        PUT(s[j], 4 << 20, 64, F("big.c", 5), F("main.c", 2));
        PUT(s[j], 300 * j, j, F("big.c", 5), F("main.c", 2));         /* +300 B, +1 block */
        PUT(s[j], 200 * j, j, F("slow.c", 77), F("main.c", 2));        /* absent at first */
    }
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_judged(r), 2);
    assert_int_equal(hs_leaks_count(r), 2);
    const hs_leak_suspect *a = hs_leaks_get(r, 0), *b = hs_leaks_get(r, 1);
    assert_site(a, "big.c", 5);
    assert_int_equal(a->size_first, 4 << 20);
    assert_int_equal(a->size_growth, 300 * (N - 1));
    assert_int_equal(a->count_growth, N - 1);
    assert_near(a->rate_bytes_per_snapshot, 300);
    assert_near(a->rate_bytes_per_second, 5);
    assert_near(a->confidence, 29.0 / 31.0);
    assert_site(b, "slow.c", 77);
    assert_int_equal(b->size_first, 0);        /* missing in a snapshot counts as 0 */
    assert_int_equal(b->count_first, 0);
    assert_int_equal(b->size_growth, 200 * (N - 1));
    assert_near(b->rate_bytes_per_snapshot, 200);
    assert_near(b->confidence, 29.0 / 31.0);
    hs_leaks_free(r);
    series_free(s, N);
}

/* A leak that starts in the middle of the series (a feature first used late) is reported. */
static void test_leak_starting_late(void **state)
{
    (void)state;
    enum { N = 16 };
    hs_snapshot **s = series_new(N, 1);
    for (size_t j = 0; j < N; j++)
        PUT(s[j], 4096 + (j >= 6 ? 640 * (j - 6) : 0), 1 + (j >= 6 ? j - 6 : 0), F("late.c", 1));
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_count(r), 1);
    const hs_leak_suspect *e = hs_leaks_get(r, 0);
    assert_int_equal(e->size_growth, 640 * 9);
    assert_near(e->trend, 1);
    assert_near(e->ending, 1);
    ref want = reference_of(r, e, 1);
    assert_matches_reference(e, &want, 1);
    hs_leaks_free(r);
    series_free(s, N);
}

/* ---- what must not be reported -------------------------------------------------------------- */

/* A lookup cache that fills during the first 6 snapshots and then stays flat (the example
 * service's cache).  Judged (it grew), rejected by the ending factor alone.  A cache that fills
 * faster is not even listed: its Theil-Sen slope is 0. */
static void test_plateau_cache(void **state)
{
    (void)state;
    enum { N = 12 };
    hs_snapshot **s = series_new(N, 10);
    for (size_t j = 0; j < N; j++) {
        size_t slots = j < 6 ? 10 * (j + 1) : 60, fast = j < 3 ? 20 * (j + 1) : 60;
        PUT(s[j], 512 * slots, slots, F("service.c", 26), F("service.c", 34));
        PUT(s[j], 512 * fast, fast, F("fast.c", 26), F("service.c", 34));
    }
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_judged(r), 2);
    assert_int_equal(hs_leaks_count(r), 0);
    assert_null(hs_leaks_get(r, 0));
    hs_leaks_free(r);
    /* With min_confidence 0 it is listed: everything looks like growth but the end. */
    r = analyze(s, N, HS_KEY_TRACEBACK, 0);
    assert_int_equal(hs_leaks_count(r), 1);
    const hs_leak_suspect *e = hs_leaks_get(r, 0);
    assert_site(e, "service.c", 26);
    assert_int_equal(e->size_growth, 512 * 50);
    assert_near(e->trend, 1);
    assert_near(e->steadiness, 1);
    assert_near(e->ending, 0);
    assert_near(e->confidence, 0);
    hs_leaks_free(r);
    series_free(s, N);
}

/* A buffer realloc'd bigger until it reaches its bound: stopping early is rejected outright;
 * stopping at 10 of 14 intervals leaves ending = 5/14 and a confidence below the default. */
static void test_bounded_buffer(void **state)
{
    (void)state;
    enum { N = 15 };
    hs_snapshot **s = series_new(N, 2), **t = series_new(N, 2);
    for (size_t j = 0; j < N; j++) {
        PUT(s[j], 4096 * (j < 6 ? j + 1 : 6), 1, F("buf.c", 8));
        PUT(t[j], 4096 * (j < 10 ? j + 1 : 10), 1, F("buf.c", 8));
    }
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_judged(r), 1);
    assert_int_equal(hs_leaks_count(r), 0);
    hs_leaks_free(r);
    r = analyze(s, N, HS_KEY_TRACEBACK, 0);
    assert_int_equal(hs_leaks_count(r), 1);
    assert_near(hs_leaks_get(r, 0)->ending, 0);
    hs_leaks_free(r);

    r = analyze(t, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_count(r), 0);
    hs_leaks_free(r);
    r = analyze(t, N, HS_KEY_TRACEBACK, 0);
    const hs_leak_suspect *e = hs_leaks_get(r, 0);
    assert_non_null(e);
    /* Theil-Sen slope 8192/5 B/s (of 105 pair slopes: 45 at 2048 while growing, 10 at 0 when
     * flat, 50 in between); the last half (snapshots 7 -> 14, 14 s) rose 2 x 4096 B:
     * 8192 / 14 / (8192/5) = 5/14, and confidence = 14/16 x 5/14 = 5/16. */
    assert_near(e->rate_bytes_per_second, 8192.0 / 5.0);
    assert_near(e->ending, 5.0 / 14.0);
    assert_near(e->confidence, 5.0 / 16.0);
    assert_true(e->confidence < HS_LEAK_DEFAULT_CONFIDENCE);
    hs_leaks_free(r);
    series_free(s, N);
    series_free(t, N);
}

/* Per-request garbage: 100 sites whose blocks come and go, sizes fluctuating around a level.
 * About half of them end higher than they started (so they are judged); none is reported. */
static void test_churn(void **state)
{
    (void)state;
    enum { N = 20, NSITES = 100 };
    hs_snapshot **s = series_new(N, 1);
    rng_seed(42);
    for (size_t j = 0; j < N; j++)
        for (unsigned i = 0; i < NSITES; i++) {
            size_t blocks = rng() % 9, bytes = 0;
            for (size_t b = 0; b < blocks; b++)
                bytes += 256 + rng() % 1793;
            PUT(s[j], bytes, blocks, F("req.c", 100 + i), F("main.c", 1));
        }
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    print_message("  churn: %zu of %d sites judged, %zu reported\n", hs_leaks_judged(r), NSITES,
                  hs_leaks_count(r));
    assert_true(hs_leaks_judged(r) > NSITES / 3);
    assert_int_equal(hs_leaks_count(r), 0);
    hs_leaks_free(r);
    /* The first 10 snapshots of the same data: none either. */
    r = analyze(s, 10, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_count(r), 0);
    hs_leaks_free(r);
    /* The first 4: a churning site rises at every snapshot by chance 1 time in 24, and 4
     * snapshots cannot tell that from a leak.  What the method guarantees there: only a series
     * that never decreased can reach the default, and with the confidence 4 snapshots allow. */
    r = analyze(s, 4, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    print_message("  churn over 4 snapshots: %zu of %zu judged sites reported\n",
                  hs_leaks_count(r), hs_leaks_judged(r));
    for (size_t i = 0; i < hs_leaks_count(r); i++) {
        const hs_leak_suspect *e = hs_leaks_get(r, i);
        for (size_t j = 1; j < 4; j++)
            assert_true(e->sizes[j] >= e->sizes[j - 1]);
        assert_true(e->confidence <= 3.0 / 5.0);
    }
    hs_leaks_free(r);
    series_free(s, N);
}

/* A site that shrinks steadily, and one that grows and then falls below where it started, are not
 * even judged; a single jump (a cache filled at once) fails the rises gate. */
static void test_shrinking_and_single_jump(void **state)
{
    (void)state;
    enum { N = 12 };
    hs_snapshot **s = series_new(N, 1);
    for (size_t j = 0; j < N; j++) {
        PUT(s[j], 100000 - 3000 * j, 10, F("shrink.c", 1));
        PUT(s[j], j < 6 ? 1000 * (j + 10) : 1000 * (20 - j), 3, F("hump.c", 1));
        PUT(s[j], j < 5 ? 1000 : 9000, 1, F("jump.c", 1));
        PUT(s[j], 777, 1, F("flat.c", 1));
    }
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, 0);
    assert_int_equal(hs_leaks_judged(r), 1);            /* jump.c: it grew */
    assert_int_equal(hs_leaks_count(r), 0);              /* with one rise, never a suspect */
    hs_leaks_free(r);
    series_free(s, N);
}

/* ---- inputs ---------------------------------------------------------------------------------- */

static void test_invalid(void **state)
{
    (void)state;
    hs_snapshot **s = series_new(4, 1);
    for (size_t j = 0; j < 4; j++)
        PUT(s[j], 100 * (j + 1), 1, F("a.c", 1));
    const hs_snapshot *const *cs = (const hs_snapshot *const *)s;
    for (size_t n = 0; n < HS_LEAK_MIN_SNAPSHOTS; n++) {
        errno = 0;
        assert_null(hs_leaks_analyze(cs, n, NULL));
        assert_int_equal(errno, EINVAL);
    }
    errno = 0;
    assert_null(hs_leaks_analyze(NULL, 4, NULL));
    assert_int_equal(errno, EINVAL);
    const hs_snapshot *holes[4] = { s[0], s[1], NULL, s[3] };
    errno = 0;
    assert_null(hs_leaks_analyze(holes, 4, NULL));
    assert_int_equal(errno, EINVAL);
    hs_leak_opts bad[5];
    for (int i = 0; i < 5; i++)
        hs_leak_opts_init(&bad[i]);
    bad[0].key = (hs_key_type)7;
    bad[1].min_confidence = 1.5;
    bad[2].min_confidence = -0.1;
    bad[3].min_confidence = NAN;
    bad[4].min_confidence = INFINITY;
    for (int i = 0; i < 5; i++) {
        errno = 0;
        assert_null(hs_leaks_analyze(cs, 4, &bad[i]));
        assert_int_equal(errno, EINVAL);
    }
    /* Four is enough; NULL opts are the defaults (traceback key, 0.5). */
    hs_leak_report *r = hs_leaks_analyze(cs, 4, NULL);
    assert_non_null(r);
    assert_int_equal(hs_leaks_count(r), 1);
    assert_near(hs_leaks_get(r, 0)->confidence, 3.0 / 5.0);
    assert_int_equal(hs_leaks_get(r, 0)->traceback->nframes, 1);
    hs_leaks_free(r);
    hs_leak_opts o;
    hs_leak_opts_init(&o);
    assert_int_equal(o.key, HS_KEY_TRACEBACK);
    assert_near(o.min_confidence, 0.5);
    assert_int_equal(o.min_growth, 1);
    /* NULL-safe accessors. */
    assert_int_equal(hs_leaks_count(NULL), 0);
    assert_null(hs_leaks_get(NULL, 0));
    hs_leaks_free(NULL);
    series_free(s, 4);
}

/* The same leak given in any order gives the same report; the order is timestamp, then elapsed,
 * then position, and elapsed alone when timestamps are missing. */
static void test_out_of_order(void **state)
{
    (void)state;
    enum { N = 8 };
    static const size_t perm[N] = { 5, 2, 7, 0, 3, 6, 1, 4 };
    hs_snapshot *s[N];
    const hs_snapshot *given[N];
    for (int variant = 0; variant < 4; variant++) {
        for (size_t j = 0; j < N; j++) {
            double ts = variant == 0 ? T0 + 4.0 * (double)j : variant == 2 ? T0 : 0;
            double el = variant == 3 ? 0 : 4.0 * (double)j;
            s[j] = snap(ts, el);
            PUT(s[j], 1000 * (j + 1), j + 1, F("q.c", 3));
            PUT(s[j], (j % 2) * 64, j % 2, F("noise.c", 3));
        }
        for (size_t i = 0; i < N; i++)
            given[i] = variant == 3 ? s[i] : s[perm[i]];
        hs_leak_report *r = hs_leaks_analyze(given, N, NULL);
        assert_non_null(r);
        assert_int_equal(hs_leaks_count(r), 1);
        const hs_leak_suspect *e = hs_leaks_get(r, 0);
        assert_site(e, "q.c", 3);
        for (size_t j = 0; j < N; j++) {
            assert_int_equal(e->sizes[j], 1000 * (j + 1));
            size_t pos = hs_leaks_snapshot_index(r, j);
            assert_true(given[pos] == s[j]);
        }
        assert_int_equal(hs_leaks_snapshot_index(r, N), SIZE_MAX);
        assert_int_equal(e->size_first, 1000);
        assert_int_equal(e->size_growth, 7000);
        assert_near(e->rate_bytes_per_snapshot, 1000);
        assert_near(e->confidence, 7.0 / 9.0);
        if (variant < 3) {    /* timestamps (0), elapsed only (1), equal timestamps (2) */
            assert_int_equal(hs_leaks_timed(r), 1);
            assert_near(hs_leaks_duration(r), 28);
            assert_near(e->rate_bytes_per_second, 250);
        } else {              /* no times: the order given, rates per snapshot only */
            assert_int_equal(hs_leaks_timed(r), 0);
            assert_near(hs_leaks_duration(r), 0);
            assert_near(e->rate_bytes_per_second, 0);
        }
        hs_leaks_free(r);
        for (size_t j = 0; j < N; j++)
            hs_snapshot_free(s[j]);
    }
}

/* Irregular intervals: the slope is per second of real time, per snapshot is the slope times
 * the mean interval. */
static void test_irregular_times(void **state)
{
    (void)state;
    static const double at[] = { 0, 1, 3, 4, 10, 11, 30, 31, 32, 60 };
    enum { N = sizeof(at) / sizeof(at[0]) };
    hs_snapshot **s = series_at(at, N);
    for (size_t j = 0; j < N; j++)
        PUT(s[j], 100 + 50 * (size_t)at[j], 1 + (size_t)at[j], F("t.c", 1));
    hs_leak_report *r = hs_leaks_analyze((const hs_snapshot *const *)s, N, NULL);
    assert_int_equal(hs_leaks_count(r), 1);
    const hs_leak_suspect *e = hs_leaks_get(r, 0);
    assert_near(e->rate_bytes_per_second, 50);
    assert_near(e->rate_bytes_per_snapshot, 50.0 * 60 / 9);
    assert_near(e->ending, 1);
    assert_near(e->confidence, 9.0 / 11.0);
    hs_leaks_free(r);
    series_free(s, N);
}

/* A vector that stopped doubling at 6.5 s of a 16 s series, snapshots every second at first and
 * then two late ones (ticks skipped under load): its last step comes after half of the snapshots
 * but before half of the time, so it is not reported.  A leak with the same snapshots is. */
static void test_step_before_sparse_end(void **state)
{
    (void)state;
    static const double at[] = { 0, 1, 2, 3, 4, 5, 6, 7, 12, 16 };
    enum { N = sizeof(at) / sizeof(at[0]) };
    hs_snapshot **s = series_at(at, N);
    for (size_t j = 0; j < N; j++) {
        PUT(s[j], at[j] < 3.5 ? 4096 : at[j] < 6.5 ? 8192 : 16384, 1, F("vec.c", 5));
        PUT(s[j], 100 + 64 * (size_t)at[j], 1 + (size_t)at[j], F("map.c", 9));
    }
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, 0);
    assert_int_equal(hs_leaks_judged(r), 2);
    assert_int_equal(hs_leaks_count(r), 2);
    const hs_leak_suspect *leak = hs_leaks_get(r, 0), *vec = hs_leaks_get(r, 1);
    if (strcmp(leak->traceback->frames[0].filename, "map.c") != 0) {
        const hs_leak_suspect *t = leak;
        leak = vec;
        vec = t;
    }
    assert_site(vec, "vec.c", 5);
    assert_near(vec->ending, 0);       /* 16384 B before 8 s, none after */
    assert_near(vec->confidence, 0);
    assert_site(leak, "map.c", 9);
    assert_near(leak->ending, 1);
    assert_near(leak->confidence, 9.0 / 11.0);
    hs_leaks_free(r);
    r = analyze(s, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_count(r), 1);
    assert_site(hs_leaks_get(r, 0), "map.c", 9);
    hs_leaks_free(r);
    series_free(s, N);
}

/* ---- keys, order, limits ---------------------------------------------------------------------- */

/* Two callers of the same allocation site: two traceback keys, one lineno key (and one filename
 * key with another site of the same file). */
static void test_lineno_key(void **state)
{
    (void)state;
    enum { N = 6 };
    hs_snapshot **s = series_new(N, 1);
    for (size_t j = 0; j < N; j++) {
        const hs_frame a[] = { { "a.c", 10, "grow", "/bin/x", 0x1234 }, F("main.c", 1) };
        const hs_frame b[] = { { "a.c", 10, "grow", "/bin/x", 0x1234 }, F("main.c", 2) };
        put(s[j], 500 * j, j, 2, a);
        put(s[j], 500 * j, j, 2, b);
        PUT(s[j], 100 * j, j, F("a.c", 20));
    }
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_count(r), 3);
    assert_int_equal(hs_leaks_get(r, 0)->size_growth, 2500);
    assert_int_equal(hs_leaks_get(r, 1)->size_growth, 2500);
    assert_int_equal(hs_leaks_get(r, 0)->traceback->frames[1].lineno, 1);   /* key order */
    assert_int_equal(hs_leaks_get(r, 1)->traceback->frames[1].lineno, 2);
    assert_string_equal(hs_leaks_get(r, 0)->traceback->frames[0].function, "grow");
    assert_int_equal(hs_leaks_get(r, 2)->size_growth, 500);
    hs_leaks_free(r);

    r = analyze(s, N, HS_KEY_LINENO, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_count(r), 2);
    const hs_leak_suspect *e = hs_leaks_get(r, 0);
    assert_int_equal(e->traceback->nframes, 1);
    assert_site(e, "a.c", 10);
    assert_string_equal(e->traceback->frames[0].function, "grow");
    assert_string_equal(e->traceback->frames[0].object, "/bin/x");
    assert_int_equal(e->traceback->frames[0].address, 0);
    assert_int_equal(e->size_growth, 5000);
    assert_int_equal(e->count_growth, 10);
    assert_near(e->rate_bytes_per_second, 1000);
    assert_near(e->confidence, 5.0 / 7.0);
    assert_site(hs_leaks_get(r, 1), "a.c", 20);
    hs_leaks_free(r);

    r = analyze(s, N, HS_KEY_FILENAME, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_count(r), 1);
    assert_site(hs_leaks_get(r, 0), "a.c", 0);
    assert_int_equal(hs_leaks_get(r, 0)->size_growth, 5500);
    hs_leaks_free(r);
    series_free(s, N);
}

/* Largest growth first, then the highest confidence, then ascending key order. */
static void test_order(void **state)
{
    (void)state;
    enum { N = 10 };
    hs_snapshot **s = series_new(N, 1);
    for (size_t j = 0; j < N; j++) {
        PUT(s[j], 1000 * j, j, F("b.c", 1));
        PUT(s[j], 1000 * j, j, F("a.c", 1));
        PUT(s[j], 2000 * j, j, F("z.c", 1));
        /* Same growth as a.c and b.c, but it stops rising for the last three snapshots: lower
         * confidence, so it comes after them although its key comes first. */
        PUT(s[j], j < 7 ? 1500 * j : 9000, 1, F("0.c", 1));
    }
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, 0);
    assert_int_equal(hs_leaks_count(r), 4);
    assert_site(hs_leaks_get(r, 0), "z.c", 1);
    assert_site(hs_leaks_get(r, 1), "a.c", 1);
    assert_site(hs_leaks_get(r, 2), "b.c", 1);
    assert_site(hs_leaks_get(r, 3), "0.c", 1);
    assert_int_equal(hs_leaks_get(r, 3)->size_growth, 9000);
    assert_true(hs_leaks_get(r, 3)->confidence < hs_leaks_get(r, 2)->confidence);
    assert_near(hs_leaks_get(r, 2)->confidence, hs_leaks_get(r, 1)->confidence);
    hs_leaks_free(r);
    series_free(s, N);
}

/* min_growth: growth below it is not judged; 0 reads as 1. */
static void test_min_growth(void **state)
{
    (void)state;
    enum { N = 10 };
    hs_snapshot **s = series_new(N, 1);
    for (size_t j = 0; j < N; j++)
        PUT(s[j], 64 + j, 1, F("tiny.c", 1));          /* +9 B over the series */
    hs_leak_opts o;
    hs_leak_opts_init(&o);
    const size_t want[][2] = { { 10, 0 }, { 9, 1 }, { 1, 1 }, { 0, 1 } };
    for (size_t i = 0; i < 4; i++) {
        o.min_growth = want[i][0];
        hs_leak_report *r = hs_leaks_analyze((const hs_snapshot *const *)s, N, &o);
        assert_non_null(r);
        assert_int_equal(hs_leaks_judged(r), want[i][1]);
        assert_int_equal(hs_leaks_count(r), want[i][1]);
        hs_leaks_free(r);
    }
    series_free(s, N);
}

/* min_confidence is inclusive; 1 needs every factor at 1, which the support factor never is. */
static void test_min_confidence(void **state)
{
    (void)state;
    enum { N = 4 };
    hs_snapshot **s = series_new(N, 1);
    for (size_t j = 0; j < N; j++)
        PUT(s[j], 10 * j, j, F("l.c", 1));
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, 0.6);   /* support 3/5 = 0.6 exactly */
    assert_int_equal(hs_leaks_count(r), 1);
    assert_true(hs_leaks_get(r, 0)->confidence == 3.0 / 5.0);
    hs_leaks_free(r);
    r = analyze(s, N, HS_KEY_TRACEBACK, 0.61);
    assert_int_equal(hs_leaks_count(r), 0);
    hs_leaks_free(r);
    r = analyze(s, N, HS_KEY_TRACEBACK, 1);
    assert_int_equal(hs_leaks_count(r), 0);
    hs_leaks_free(r);
    series_free(s, N);
}

/* Traces without frames and traces whose traceback lives in another store are grouped like any
 * other. */
static void test_empty_and_foreign_tracebacks(void **state)
{
    (void)state;
    enum { N = 5 };
    hs_snapshot **s = series_new(N, 1);
    hs_snapshot *other = hs_snapshot_new(8);
    ADD(other, 0, 1, F("f.c", 1), F("main.c", 1));
    for (size_t j = 0; j < N; j++) {
        for (size_t b = 0; b < j; b++) {
            assert_int_equal(hs_snapshot_add_trace(s[j], 0, 100, NULL, 0, 0), 0);
            assert_int_equal(hs_snapshot_push(s[j], 0, 30, other->traces[0].tb), 0);
        }
        PUT(s[j], 10 * j, j, F("f.c", 1), F("main.c", 1));     /* same key, own store */
    }
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_count(r), 2);
    assert_int_equal(hs_leaks_get(r, 0)->traceback->nframes, 0);
    assert_int_equal(hs_leaks_get(r, 0)->size_growth, 400);
    assert_site(hs_leaks_get(r, 1), "f.c", 1);
    assert_int_equal(hs_leaks_get(r, 1)->size_growth, 160);
    assert_int_equal(hs_leaks_get(r, 1)->count_growth, 8);
    hs_leaks_free(r);
    r = analyze(s, N, HS_KEY_LINENO, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_count(r), 2);
    assert_site(hs_leaks_get(r, 0), "<unknown>", 0);
    hs_leaks_free(r);
    hs_snapshot_free(other);
    series_free(s, N);
}

/* The report owns its keys and series: everything stays readable after the snapshots are freed
 * (ASan would report a use after free). */
static void test_outlives_snapshots(void **state)
{
    (void)state;
    enum { N = 6 };
    hs_snapshot **s = series_new(N, 1);
    for (size_t j = 0; j < N; j++) {
        const hs_frame f[] = { { "owned.c", 5, "keep", "/lib/libk.so", 0x42 }, F("main.c", 9) };
        put(s[j], 256 * (j + 1), j + 1, 2, f);
    }
    hs_leak_report *rt = analyze(s, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    hs_leak_report *rl = analyze(s, N, HS_KEY_LINENO, HS_LEAK_DEFAULT_CONFIDENCE);
    series_free(s, N);
    const hs_leak_suspect *e = hs_leaks_get(rt, 0);
    assert_non_null(e);
    assert_string_equal(e->traceback->frames[0].filename, "owned.c");
    assert_string_equal(e->traceback->frames[0].function, "keep");
    assert_string_equal(e->traceback->frames[0].object, "/lib/libk.so");
    assert_int_equal(e->traceback->frames[0].address, 0x42);
    assert_string_equal(e->traceback->frames[1].filename, "main.c");
    char buf[256];
    hs_traceback_format(e->traceback, HS_ALL_FRAMES, 0, buf, sizeof(buf));
    assert_string_equal(buf, "  File \"main.c\", line 9\n  File \"owned.c\", line 5\n");
    for (size_t j = 0; j < N; j++)
        assert_int_equal(e->sizes[j], 256 * (j + 1));
    assert_string_equal(hs_leaks_get(rl, 0)->traceback->frames[0].filename, "owned.c");
    assert_int_equal(hs_leaks_get(rl, 0)->sizes[N - 1], 256 * N);
    hs_leaks_free(rt);
    hs_leaks_free(rl);
}

/* Every factor and the slope agree with the reference implementation on random series of many
 * shapes and lengths (also beyond HS_LEAK_PAIR_POINTS, where the pairwise statistics thin the
 * series), and whatever the reference calls a suspect is listed at min_confidence 0. */
static void test_matches_reference(void **state)
{
    (void)state;
    rng_seed(2024);
    int listed = 0;
    for (int trial = 0; trial < 300; trial++) {
        size_t n = trial == 0 ? 450 : trial == 1 ? 401 : 4 + rng() % 60;
        int shape = (int)(rng() % 6), timed = trial % 3 != 0, uneven = trial % 3 == 2;
        double step = timed ? 0.5 + (double)(rng() % 100) : 0, at = 0;
        hs_snapshot **s = calloc(n, sizeof(*s));
        double *x = malloc(n * sizeof(double)), *y = malloc(n * sizeof(double));
        size_t level = 100000;
        for (size_t j = 0; j < n; j++) {
            size_t v;
            switch (shape) {
            case 0: v = 1000 + 100 * j + 8 * (rng() % 200); break;     /* leak + noise */
            case 1: v = 8 * (rng() % 1000); break;                     /* churn */
            case 2: v = j * 10 < n * 4 ? 500 * j : 500 * (n * 4 / 10); break;  /* plateau */
            case 3: v = 64 << (j * 6 / n); break;                      /* steps */
            case 4: level = level + 100 * (rng() % 3) - 100; v = level; break;   /* random walk */
            default: v = (rng() % 4 == 0 ? 512 : 0) + 32 * j; break;   /* spiky leak */
            }
            /* uneven: gaps from 0.1 to 4 steps (skipped ticks, slow snapshots) */
            at = j == 0 ? 0 : uneven ? at + step * (0.1 + (double)(rng() % 40) / 10) : step * (double)j;
            s[j] = snap(timed ? T0 + at : 0, timed ? at : 0);
            PUT(s[j], v, v ? 1 + v % 5 : 0, F("r.c", 1));
            x[j] = timed ? (T0 + at) - T0 : (double)j;   /* the time as the engine reads it */
            y[j] = (double)v;
        }
        ref want = reference(x, y, n);
        hs_leak_report *r = analyze(s, n, HS_KEY_TRACEBACK, 0);
        assert_int_equal(hs_leaks_count(r), want.suspect);
        assert_int_equal(hs_leaks_timed(r), timed);
        if (want.suspect) {
            assert_matches_reference(hs_leaks_get(r, 0), &want, timed);
            listed++;
        }
        hs_leaks_free(r);
        series_free(s, n);
        free(x);
        free(y);
    }
    print_message("  %d of 300 random series listed, all matching the reference\n", listed);
    assert_true(listed > 100);
}

/* Many snapshots: the pairwise statistics use HS_LEAK_PAIR_POINTS of them, exact on a line. */
static void test_long_series(void **state)
{
    (void)state;
    enum { N = 1000 };
    hs_snapshot **s = series_new(N, 1);
    for (size_t j = 0; j < N; j++) {
        PUT(s[j], 10 * j, j, F("long.c", 1));
        PUT(s[j], 5000 + (j % 7) * 100, 3, F("churn.c", 1));
    }
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    assert_int_equal(hs_leaks_count(r), 1);
    const hs_leak_suspect *e = hs_leaks_get(r, 0);
    assert_near(e->rate_bytes_per_snapshot, 10);
    assert_near(e->confidence, 999.0 / 1001.0);
    hs_leaks_free(r);
    series_free(s, N);
}

/* Each allocation of an analysis failing in turn: NULL + ENOMEM, nothing leaked (LeakSanitizer
 * checks at exit), and the run without a failure gives the full report. */
static void test_oom(void **state)
{
    (void)state;
    enum { N = 6 };
    hs_snapshot **s = series_new(N, 1);
    hs_snapshot *other = hs_snapshot_new(8);
    ADD(other, 0, 1, F("f.c", 1));
    for (size_t j = 0; j < N; j++) {
        for (unsigned i = 0; i < 150; i++)      /* enough keys to grow the hash tables */
            PUT(s[j], 100 * j + i, j + 1, F("grow.c", i), F("main.c", 1));
        PUT(s[j], 4096, 2, F("stable.c", 1));
        assert_int_equal(hs_snapshot_add_trace(s[j], 0, 10 * j, NULL, 0, 0), 0);
        assert_int_equal(hs_snapshot_push(s[j], 0, 20 * j, other->traces[0].tb), 0);
    }
    for (int key = HS_KEY_LINENO; key <= HS_KEY_TRACEBACK; key++) {
        hs_leak_opts o;
        hs_leak_opts_init(&o);
        o.key = (hs_key_type)key;
        long k;
        for (k = 0;; k++) {
            alloc_countdown = k;
            errno = 0;
            hs_leak_report *r = hs_leaks_analyze((const hs_snapshot *const *)s, N, &o);
            int injected = alloc_countdown < 0;
            alloc_countdown = -1;
            if (!injected) {
                assert_non_null(r);
                assert_int_equal(hs_leaks_count(r), 152);
                hs_leaks_free(r);
                break;
            }
            assert_null(r);
            assert_int_equal(errno, ENOMEM);
            assert_true(k < 100000);
        }
        assert_true(k > 10);
    }
    hs_snapshot_free(other);
    series_free(s, N);
}

/* Scale: 20 snapshots x 50,000 traces over 5,000 tracebacks, 50 of them leaking and 500 with
 * churn.  Exactly the leaking ones are reported. */
static void test_scale(void **state)
{
    (void)state;
    enum { N = 20, NTRACES = 50000, NTB = 5000, NLEAK = 50, NCHURN = 500 };
    char names[64][32];
    for (int i = 0; i < 64; i++)
        snprintf(names[i], sizeof(names[i]), "src/module%02d.c", i);
    hs_snapshot **s = series_new(N, 30);
    rng_seed(99);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t j = 0; j < N; j++) {
        assert_int_equal(hs_snapshot_reserve(s[j], NTRACES + NLEAK * N), 0);
        for (unsigned i = 0; i < NTRACES; i++) {
            unsigned tb = i % NTB;
            hs_frame f[4] = { F(names[tb % 64], 10 + tb), F(names[(tb / 64) % 64], 7),
                              F("src/server.c", 100 + tb % 5), F("src/main.c", 20) };
            size_t size = 16 + (i * 37) % 2000;
            if (tb >= NLEAK && tb < NLEAK + NCHURN)
                size = 16 + rng() % 4000;                 /* churn */
            add_trace(s[j], 0, size, 4, f);
        }
        for (unsigned tb = 0; tb < NLEAK; tb++) {         /* +(tb+1) x 64 B per snapshot */
            hs_frame f[4] = { F(names[tb % 64], 10 + tb), F(names[(tb / 64) % 64], 7),
                              F("src/server.c", 100 + tb % 5), F("src/main.c", 20) };
            put(s[j], 64 * (tb + 1) * j, j, 4, f);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double build = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    hs_leak_report *r = analyze(s, N, HS_KEY_TRACEBACK, HS_LEAK_DEFAULT_CONFIDENCE);
    hs_leak_report *rl = analyze(s, N, HS_KEY_LINENO, HS_LEAK_DEFAULT_CONFIDENCE);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("  %d snapshots x %d traces: built in %.2f s, two analyses in %.2f s (ASan)\n",
                  N, NTRACES + NLEAK * N / 2, build, secs);
    assert_int_equal(hs_leaks_count(r), NLEAK);
    assert_int_equal(hs_leaks_count(rl), NLEAK);
    for (size_t i = 0; i < NLEAK; i++) {
        const hs_leak_suspect *e = hs_leaks_get(r, i);   /* largest first: tb NLEAK-1 first */
        assert_int_equal(e->size_growth, 64 * (NLEAK - i) * (N - 1));
        assert_near(e->rate_bytes_per_snapshot, 64.0 * (double)(NLEAK - i));
        assert_int_equal(hs_leaks_get(rl, i)->size_growth, 64 * (NLEAK - i) * (N - 1));
    }
    hs_leaks_free(r);
    hs_leaks_free(rl);
    series_free(s, N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_leak),
        cmocka_unit_test(test_stepwise_doubling),
        cmocka_unit_test(test_leak_with_churn),
        cmocka_unit_test(test_slow_leak_among_stable),
        cmocka_unit_test(test_leak_starting_late),
        cmocka_unit_test(test_plateau_cache),
        cmocka_unit_test(test_bounded_buffer),
        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_shrinking_and_single_jump),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_irregular_times),
        cmocka_unit_test(test_step_before_sparse_end),
        cmocka_unit_test(test_lineno_key),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_min_growth),
        cmocka_unit_test(test_min_confidence),
        cmocka_unit_test(test_empty_and_foreign_tracebacks),
        cmocka_unit_test(test_outlives_snapshots),
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_long_series),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
