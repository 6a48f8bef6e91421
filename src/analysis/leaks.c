/*
 * leaks.c - the leak verdict behind `heapsnap leaks`: over a time-ordered series of snapshots of
 * one process, the call sites whose live bytes grow steadily, with their growth, their rate and a
 * confidence made of four factors that each have one job.  docs/LEAKS.md is the method; the
 * comments here only say where each step is.
 *
 * Work, for n snapshots:
 *  1. The snapshots are ordered by time (timestamp, then elapsed, then position) and the clock
 *     the slopes use is chosen.
 *  2. The first and the last snapshot are grouped per key, as compare_to does: one pass summing
 *     per interned traceback, then one hash-table step per distinct traceback.  Only keys that
 *     grew by min_growth from first to last can be suspects: they are the candidates.
 *  3. One pass over every snapshot fills the candidates' byte series (a key missing from a
 *     snapshot has 0 bytes there): per snapshot, one pass over the traces and one hash probe per
 *     distinct traceback in a table holding only the candidates, so keys that did not grow cost a
 *     probe that fails on the hash and never a frame comparison.
 *  4. Each candidate is judged: O(n) gates and factors first, the O(p^2) pairwise statistics
 *     (p = min(n, HS_LEAK_PAIR_POINTS)) only when the candidate can still reach min_confidence.
 * Memory is O(candidates x n) for the series plus what one snapshot's grouping needs.
 */
#include "leaks.h"
#include "analysis.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

struct hs_leak_report {
    hs_store *store;          /* the suspects' key tracebacks */
    hs_leak_suspect *items;
    size_t n;
    size_t *sizes;            /* n x nsnaps: each suspect's series */
    size_t nsnaps;
    size_t *order;            /* nsnaps: position in snaps of each snapshot in time order */
    size_t judged;
    double duration;
    int timed;
};

/* ---- keys -------------------------------------------------------------------------------------
 * A key is the whole traceback (compared by (filename, lineno) of every frame) or the allocation
 * site's (filename, lineno) (the filename alone for HS_KEY_FILENAME), exactly as in statistics. */

typedef struct kref {
    uint64_t hash;
    const hs_tb *tb;          /* traceback key */
    const hs_frame *frame;    /* lineno / filename keys: the site frame */
    unsigned int lineno;      /* lineno / filename keys: the key's line (0 for filename) */
} kref;

typedef struct lkey {
    kref ref;                 /* the representative: first met, in the last snapshot */
    size_t size[2], count[2]; /* [0]: first snapshot, [1]: last */
} lkey;

typedef struct ktab {
    hs_key_type key;
    lkey *k;
    size_t n, cap;
    size_t *tab;              /* open addressing: key index + 1, 0 = empty */
    size_t tabcap;            /* a power of two, at most half full */
} ktab;

static kref key_ref(hs_key_type key, const hs_tb *tb)
{
    kref r = { .tb = tb };
    if (key == HS_KEY_TRACEBACK) {
        r.hash = tb->key_hash;
        return r;
    }
    const hs_frame *frames;
    hs_key_frames(&tb->pub, &frames);
    r.frame = &frames[0];
    r.lineno = key == HS_KEY_LINENO ? r.frame->lineno : 0;
    r.hash = hs_hash_bytes(r.frame->filename, strlen(r.frame->filename), r.lineno);
    return r;
}

static int key_matches(hs_key_type key, const kref *a, const kref *b)
{
    if (a->hash != b->hash)
        return 0;
    if (key == HS_KEY_TRACEBACK)
        return hs_tb_key_equal(&a->tb->pub, &b->tb->pub);
    return a->lineno == b->lineno &&
           (a->frame->filename == b->frame->filename ||
            strcmp(a->frame->filename, b->frame->filename) == 0);
}

/* The index of r's key in t, or SIZE_MAX. */
static size_t kt_find(const ktab *t, const kref *r)
{
    if (t->tabcap == 0)
        return SIZE_MAX;
    for (size_t j = r->hash & (t->tabcap - 1); t->tab[j] != 0; j = (j + 1) & (t->tabcap - 1))
        if (key_matches(t->key, &t->k[t->tab[j] - 1].ref, r))
            return t->tab[j] - 1;
    return SIZE_MAX;
}

/* Room for one more key.  0 or -ENOMEM. */
static int kt_reserve(ktab *t)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        lkey *k = hs_realloc(t->k, cap * sizeof(*k));
        if (k == NULL)
            return -ENOMEM;
        t->k = k;
        t->cap = cap;
    }
    if ((t->n + 1) * 2 > t->tabcap) {
        size_t cap = t->tabcap ? t->tabcap * 2 : 128;
        size_t *tab = hs_calloc(cap, sizeof(*tab));
        if (tab == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < t->n; i++) {
            size_t j = t->k[i].ref.hash & (cap - 1);
            while (tab[j] != 0)
                j = (j + 1) & (cap - 1);
            tab[j] = i + 1;
        }
        hs_free(t->tab);
        t->tab = tab;
        t->tabcap = cap;
    }
    return 0;
}

/* The index of r's key, added (zeroed sums, r as representative) when new; SIZE_MAX on ENOMEM. */
static size_t kt_insert(ktab *t, const kref *r)
{
    size_t i = kt_find(t, r);
    if (i != SIZE_MAX)
        return i;
    if (kt_reserve(t) < 0)
        return SIZE_MAX;
    size_t j = r->hash & (t->tabcap - 1);
    while (t->tab[j] != 0)
        j = (j + 1) & (t->tabcap - 1);
    lkey *k = &t->k[t->n];
    memset(k, 0, sizeof(*k));
    k->ref = *r;
    t->tab[j] = ++t->n;
    return t->n - 1;
}

static void kt_free(ktab *t)
{
    hs_free(t->k);
    hs_free(t->tab);
}

/* ---- per-snapshot sums ------------------------------------------------------------------------
 * Calls fn(arg, tb, size, count) once per distinct interned traceback used by s, with its sums,
 * and once per trace whose traceback is not in s's store (never made by heapsnap itself).
 * scratch is a zeroed array of *scap sums, grown (zeroed) to s's store and left zeroed again, so
 * that one allocation serves every snapshot.  0, or the first negative value fn returned, or
 * -ENOMEM. */
typedef int (*tb_sum_fn)(void *arg, const hs_tb *tb, size_t size, size_t count);

typedef struct tb_sum {
    size_t size, count;
} tb_sum;

static int for_each_tb_sum(const hs_snapshot *s, tb_sum **scratch, size_t *scap, tb_sum_fn fn,
                           void *arg)
{
    size_t ntbs = hs_store_tb_count(s->store);
    if (ntbs > *scap) {
        tb_sum *sum = hs_calloc(ntbs, sizeof(*sum));
        if (sum == NULL)
            return -ENOMEM;
        hs_free(*scratch);
        *scratch = sum;
        *scap = ntbs;
    }
    tb_sum *sum = *scratch;
    int rc = 0;
    for (size_t i = 0; i < s->ntraces && rc == 0; i++) {
        const hs_trace_rec *t = &s->traces[i];
        if (hs_store_owns(s->store, ntbs, t->tb)) {
            sum[t->tb->id].size += t->size;
            sum[t->tb->id].count++;
        } else {
            rc = fn(arg, t->tb, t->size, 1);
        }
    }
    for (size_t id = 0; id < ntbs; id++) {
        if (sum[id].count > 0 && rc == 0)
            rc = fn(arg, hs_store_tb_at(s->store, id), sum[id].size, sum[id].count);
        sum[id].size = sum[id].count = 0;
    }
    return rc;
}

typedef struct end_arg {
    ktab *t;
    int side;                 /* 0: first snapshot, 1: last */
} end_arg;

/* Step 2: adds a traceback's sums to its key on one side, creating the key. */
static int add_end(void *arg, const hs_tb *tb, size_t size, size_t count)
{
    end_arg *a = arg;
    kref r = key_ref(a->t->key, tb);
    size_t i = kt_insert(a->t, &r);
    if (i == SIZE_MAX)
        return -ENOMEM;
    a->t->k[i].size[a->side] += size;
    a->t->k[i].count[a->side] += count;
    return 0;
}

typedef struct series_arg {
    const ktab *cand;
    size_t *sizes;            /* cand->n x nsnaps */
    size_t nsnaps, j;         /* j: the snapshot's position in time order */
} series_arg;

/* Step 3: adds a traceback's bytes to its key's series, if the key is a candidate. */
static int add_series(void *arg, const hs_tb *tb, size_t size, size_t count)
{
    (void)count;
    series_arg *a = arg;
    kref r = key_ref(a->cand->key, tb);
    size_t i = kt_find(a->cand, &r);
    if (i != SIZE_MAX)
        a->sizes[i * a->nsnaps + a->j] += size;
    return 0;
}

/* ---- statistics ------------------------------------------------------------------------------- */

static double clamp01(double v)
{
    return v > 1 ? 1 : v > 0 ? v : 0;   /* also maps NaN to 0 */
}

static void swap_d(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* The k-th smallest (from 0) of a[0 .. n-1], n > k; reorders a so that a[0 .. k-1] <= a[k] <=
 * a[k+1 .. n-1].  Quickselect with a median-of-three pivot and Hoare partitioning (equal keys
 * split evenly, so runs of equal slopes, as steps give, stay fast). */
static double select_kth(double *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < a[lo])
            swap_d(&a[mid], &a[lo]);
        if (a[hi] < a[lo])
            swap_d(&a[hi], &a[lo]);
        if (a[hi] < a[mid])
            swap_d(&a[hi], &a[mid]);
        double p = a[mid];
        size_t i = lo, j = hi;
        for (;;) {                 /* a[lo] <= p <= a[hi] bound both scans */
            while (a[i] < p)
                i++;
            while (a[j] > p)
                j--;
            if (i >= j)
                break;
            swap_d(&a[i], &a[j]);
            i++;
            j--;
        }
        /* Now a[lo .. j] <= p <= a[j+1 .. hi] (Hoare), with lo <= j < hi. */
        if (i == j) {              /* the scans met on an element equal to p */
            if (k == j)
                return a[k];
            if (k < j)
                hi = j - 1;
            else
                lo = j + 1;
        } else if (k <= j) {
            hi = j;
        } else {
            lo = j + 1;
        }
    }
    return a[k];
}

/* The median of a[0 .. n-1], n > 0 (the mean of the two middle values for even n); reorders a. */
static double median(double *a, size_t n)
{
    double lo = select_kth(a, n, (n - 1) / 2);
    if (n % 2 == 1)
        return lo;
    double hi = a[n / 2];
    for (size_t i = n / 2 + 1; i < n; i++)
        if (a[i] < hi)
            hi = a[i];
    return lo + (hi - lo) / 2;
}

/* Goodman-Kruskal gamma of y against x (x strictly increasing): over the pairs of points whose
 * y differ, (concordant - discordant) / (concordant + discordant); 0 when all y are equal. */
static double gamma_trend(const double *y, size_t n)
{
    unsigned long long c = 0, d = 0;
    for (size_t i = 0; i + 1 < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            c += y[j] > y[i];
            d += y[j] < y[i];
        }
    return c + d ? ((double)c - (double)d) / (double)(c + d) : 0;
}

/* Theil-Sen slope: the median of the slopes of all pairs of points (x strictly increasing).
 * slopes has room for n (n - 1) / 2. */
static double theil_sen(const double *x, const double *y, size_t n, double *slopes)
{
    size_t m = 0;
    for (size_t i = 0; i + 1 < n; i++)
        for (size_t j = i + 1; j < n; j++)
            slopes[m++] = (y[j] - y[i]) / (x[j] - x[i]);
    return median(slopes, m);
}

/* ---- the verdict on one candidate ------------------------------------------------------------ */

typedef struct judge_ctx {
    size_t n;                 /* snapshots */
    const double *x;          /* n: time (or snapshot number), strictly increasing, x[0] = 0 */
    size_t w;                 /* the first snapshot of the last half of the time (ending) */
    size_t p;                 /* points of the pairwise statistics */
    const size_t *pidx;       /* p: their snapshots (every one when n <= HS_LEAK_PAIR_POINTS) */
    double *px, *py;          /* p */
    double *y;                /* n */
    double *slopes;           /* p (p - 1) / 2 */
    double min_confidence;
} judge_ctx;

typedef struct verdict {
    double trend, steadiness, ending, support, confidence, slope;
} verdict;

/* Judges one series of bytes (docs/LEAKS.md, "Which sites are judged" and "The confidence").  Returns 1 and fills v when the
 * series passes the gates (at least HS_LEAK_MIN_RISES rising intervals, positive Theil-Sen slope)
 * and its confidence reaches min_confidence; 0 otherwise.  The series grew from first to last
 * (the caller's candidate rule).  The confidence is built in the order
 * ((steadiness x support) x trend) x ending and the work stops as soon as the partial product,
 * which only falls as factors in [0, 1] are multiplied in, is below min_confidence. */
static int judge(judge_ctx *c, const size_t *sizes, verdict *v)
{
    size_t n = c->n, k = n - 1;
    const double *x = c->x;
    double *y = c->y;
    size_t rises = 0;
    for (size_t j = 0; j < n; j++) {
        y[j] = (double)sizes[j];
        rises += j > 0 && sizes[j] > sizes[j - 1];
    }
    if (rises < HS_LEAK_MIN_RISES)
        return 0;

    /* Steadiness: the share of spans of L intervals (L ~ k / 8) that do not decrease. */
    size_t lag = (k + HS_LEAK_STEADY_SPANS - 1) / HS_LEAK_STEADY_SPANS, nondec = 0;
    for (size_t j = 0; j + lag < n; j++)
        nondec += sizes[j + lag] >= sizes[j];
    double share = (double)nondec / (double)(n - lag);
    v->steadiness = clamp01((share - 0.5) / (HS_LEAK_STEADY_FULL - 0.5));
    v->support = (double)k / (double)(k + HS_LEAK_SUPPORT_PRIOR);
    double conf = v->steadiness * v->support;
    if (conf < c->min_confidence)
        return 0;

    for (size_t i = 0; i < c->p; i++)
        c->py[i] = y[c->pidx[i]];
    v->trend = clamp01(gamma_trend(c->py, c->p));
    conf *= v->trend;
    if (conf < c->min_confidence)
        return 0;

    v->slope = theil_sen(c->px, c->py, c->p, c->slopes);
    if (!(v->slope > 0))
        return 0;

    /* Ending: the rise of the high-water mark over the last half of the time against what the
     * overall rate (the larger of the fitted slope and the plain average) predicts. */
    size_t w = c->w;
    double pre = y[0], win = y[w];
    for (size_t j = 1; j < w; j++)
        pre = y[j] > pre ? y[j] : pre;
    for (size_t j = w + 1; j < n; j++)
        win = y[j] > win ? y[j] : win;
    double avg = (y[n - 1] - y[0]) / x[n - 1];
    double overall = v->slope > avg ? v->slope : avg;
    v->ending = clamp01((win - pre) / (x[n - 1] - x[w - 1]) / overall);
    conf *= v->ending;
    v->confidence = conf;
    return conf >= c->min_confidence;
}

/* ---- ordering -------------------------------------------------------------------------------- */

typedef struct snap_ord {
    const hs_snapshot *s;
    double ts, el;
    size_t idx;
} snap_ord;

static int cmp_d(double a, double b) { return (a > b) - (a < b); }

static int ord_by_ts(const void *pa, const void *pb)
{
    const snap_ord *a = pa, *b = pb;
    int c = cmp_d(a->ts, b->ts);
    if (c == 0)
        c = cmp_d(a->el, b->el);
    return c != 0 ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

static int ord_by_el(const void *pa, const void *pb)
{
    const snap_ord *a = pa, *b = pb;
    int c = cmp_d(a->el, b->el);
    return c != 0 ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

/* Largest size_growth first, then highest confidence, then ascending key order. */
static int suspect_order(const void *pa, const void *pb)
{
    const hs_leak_suspect *a = pa, *b = pb;
    if (a->size_growth != b->size_growth)
        return a->size_growth < b->size_growth ? 1 : -1;
    int c = cmp_d(b->confidence, a->confidence);
    return c != 0 ? c : hs_tb_key_cmp(a->traceback, b->traceback);
}

/* ---- the report ------------------------------------------------------------------------------ */

/* The key's traceback interned in the report's store, as statistics show it: the whole
 * traceback, or the site frame's file and line with its function and object (address 0), or the
 * file name alone. */
static const hs_tb *key_tb(hs_store *st, hs_key_type key, const kref *r)
{
    if (key == HS_KEY_TRACEBACK)
        return hs_store_copy_tb(st, r->tb);
    hs_frame f = { .filename = r->frame->filename, .lineno = r->lineno, .function = "",
                   .object = "", .address = 0 };
    if (key == HS_KEY_LINENO) {
        f.function = r->frame->function;
        f.object = r->frame->object;
    }
    return hs_store_tb(st, &f, NULL, 1, 1);
}

void hs_leak_opts_init(hs_leak_opts *o)
{
    o->key = HS_KEY_TRACEBACK;
    o->min_confidence = HS_LEAK_DEFAULT_CONFIDENCE;
    o->min_growth = 1;
}

static int opts_valid(const hs_leak_opts *o)
{
    return (o->key == HS_KEY_TRACEBACK || o->key == HS_KEY_LINENO || o->key == HS_KEY_FILENAME) &&
           o->min_confidence >= 0 && o->min_confidence <= 1;   /* false for NaN */
}

/* Orders the snapshots (timestamp, then elapsed, then position; elapsed alone when some snapshot
 * has no timestamp, as 0 would sort first) and sets their clock: x[j] is seconds since the first
 * on the timestamps when every snapshot has one and they strictly increase, else on elapsed when
 * it strictly increases (*timed = 1, *duration = x[n - 1]); otherwise x[j] = j, *timed = 0 and
 * *duration = 0. */
static void order_snapshots(snap_ord *ord, const hs_snapshot *const *snaps, size_t n, double *x,
                            int *timed, double *duration)
{
    int all_ts = 1;
    for (size_t j = 0; j < n; j++) {
        const hs_snapshot_meta *m = hs_snapshot_get_meta(snaps[j]);
        ord[j].s = snaps[j];
        ord[j].ts = isfinite(m->timestamp) ? m->timestamp : 0;
        ord[j].el = isfinite(m->elapsed) ? m->elapsed : 0;
        ord[j].idx = j;
        all_ts &= ord[j].ts > 0;
    }
    qsort(ord, n, sizeof(*ord), all_ts ? ord_by_ts : ord_by_el);
    int ts_ok = all_ts, el_ok = 1;
    for (size_t j = 1; j < n; j++) {
        ts_ok &= ord[j].ts > ord[j - 1].ts;
        el_ok &= ord[j].el > ord[j - 1].el;
    }
    *timed = ts_ok || el_ok;
    for (size_t j = 0; j < n; j++)
        x[j] = ts_ok ? ord[j].ts - ord[0].ts : el_ok ? ord[j].el - ord[0].el : (double)j;
    *duration = *timed ? x[n - 1] : 0;
}

void hs_leaks_free(hs_leak_report *r)
{
    if (r == NULL)
        return;
    hs_store_free(r->store);
    hs_free(r->items);
    hs_free(r->sizes);
    hs_free(r->order);
    hs_free(r);
}

hs_leak_report *hs_leaks_analyze(const hs_snapshot *const *snaps, size_t n,
                                 const hs_leak_opts *opts)
{
    hs_leak_opts o;
    hs_leak_opts_init(&o);
    if (opts != NULL)
        o = *opts;
    if (o.min_growth == 0)
        o.min_growth = 1;
    int bad = snaps == NULL || n < HS_LEAK_MIN_SNAPSHOTS || !opts_valid(&o);
    for (size_t j = 0; !bad && j < n; j++)
        bad = snaps[j] == NULL;
    if (bad) {
        errno = EINVAL;
        return NULL;
    }

    size_t p = n < HS_LEAK_PAIR_POINTS ? n : HS_LEAK_PAIR_POINTS;
    hs_leak_report *r = hs_calloc(1, sizeof(*r)), *result = NULL;
    snap_ord *ord = hs_calloc(n, sizeof(*ord));
    double *x = hs_calloc(n, sizeof(*x)), *y = hs_calloc(n, sizeof(*y));
    double *px = hs_calloc(p, sizeof(*px)), *py = hs_calloc(p, sizeof(*py));
    double *slopes = hs_calloc(p * (p - 1) / 2, sizeof(*slopes));
    size_t *pidx = hs_calloc(p, sizeof(*pidx));
    ktab all = { .key = o.key }, cand = { .key = o.key };
    size_t *sizes = NULL, scap = 0, *chosen = NULL, nrep = 0;
    tb_sum *scratch = NULL;
    verdict *v = NULL;
    if (r == NULL || ord == NULL || x == NULL || y == NULL || px == NULL || py == NULL ||
        slopes == NULL || pidx == NULL || (r->store = hs_store_new()) == NULL ||
        (r->order = hs_calloc(n, sizeof(size_t))) == NULL)
        goto done;
    r->nsnaps = n;

    /* 1. Time order and clock. */
    order_snapshots(ord, snaps, n, x, &r->timed, &r->duration);
    for (size_t j = 0; j < n; j++)
        r->order[j] = ord[j].idx;

    /* 2. First and last grouped; the keys that grew are the candidates.  The last snapshot goes
     * first so that representatives come from it. */
    end_arg ea = { .t = &all, .side = 1 };
    if (for_each_tb_sum(ord[n - 1].s, &scratch, &scap, add_end, &ea) < 0)
        goto done;
    ea.side = 0;
    if (for_each_tb_sum(ord[0].s, &scratch, &scap, add_end, &ea) < 0)
        goto done;
    for (size_t i = 0; i < all.n; i++) {
        const lkey *k = &all.k[i];
        if (k->size[1] > k->size[0] && k->size[1] - k->size[0] >= o.min_growth) {
            size_t c = kt_insert(&cand, &k->ref);
            if (c == SIZE_MAX)
                goto done;
            cand.k[c] = *k;
        }
    }
    r->judged = cand.n;
    kt_free(&all);
    memset(&all, 0, sizeof(all));

    /* 3. The candidates' series. */
    if (cand.n > 0) {
        if (cand.n > SIZE_MAX / sizeof(size_t) / n ||
            (sizes = hs_calloc(cand.n * n, sizeof(size_t))) == NULL ||
            (v = hs_calloc(cand.n, sizeof(*v))) == NULL ||
            (chosen = hs_calloc(cand.n, sizeof(*chosen))) == NULL)
            goto done;
        series_arg sa = { .cand = &cand, .sizes = sizes, .nsnaps = n };
        for (size_t j = 0; j < n; j++) {
            sa.j = j;
            if (for_each_tb_sum(ord[j].s, &scratch, &scap, add_series, &sa) < 0)
                goto done;
        }
    }

    /* 4. The verdicts. */
    for (size_t i = 0; i < p; i++) {
        pidx[i] = p == n ? i : (i * (n - 1) + (p - 1) / 2) / (p - 1);
        px[i] = x[pidx[i]];
    }
    /* The last half of the time: the snapshots taken after its midpoint (x[0] = 0), one taken
     * within a millionth of the span of it (clock rounding) counting as before.  With evenly
     * spaced snapshots these are the last ceil(k / 2); skipped or late ticks do not move it. */
    size_t w = 1;
    while (x[w] <= x[n - 1] * (0.5 + 1e-6))
        w++;
    judge_ctx jc = { .n = n, .x = x, .w = w, .p = p, .pidx = pidx, .px = px, .py = py, .y = y,
                     .slopes = slopes, .min_confidence = o.min_confidence };
    for (size_t i = 0; i < cand.n; i++)
        if (judge(&jc, &sizes[i * n], &v[nrep]))
            chosen[nrep++] = i;

    /* The report: suspects with their own copies of keys and series. */
    if (nrep > 0 && ((r->items = hs_calloc(nrep, sizeof(*r->items))) == NULL ||
                     (r->sizes = hs_calloc(nrep * n, sizeof(size_t))) == NULL))
        goto done;
    for (size_t s = 0; s < nrep; s++) {
        const lkey *k = &cand.k[chosen[s]];
        const verdict *vd = &v[s];
        const hs_tb *tb = key_tb(r->store, o.key, &k->ref);
        if (tb == NULL)
            goto done;
        hs_leak_suspect *e = &r->items[s];
        e->traceback = &tb->pub;
        e->size_first = k->size[0];
        e->size_last = k->size[1];
        e->count_first = k->count[0];
        e->count_last = k->count[1];
        e->size_growth = (long long)(k->size[1] - k->size[0]);
        e->count_growth = (long long)k->count[1] - (long long)k->count[0];
        if (r->timed) {             /* the slope is per second */
            e->rate_bytes_per_second = vd->slope;
            e->rate_bytes_per_snapshot = vd->slope * r->duration / (double)(n - 1);
        } else {                    /* the slope is per snapshot; no time is known */
            e->rate_bytes_per_second = 0;
            e->rate_bytes_per_snapshot = vd->slope;
        }
        e->confidence = vd->confidence;
        e->trend = vd->trend;
        e->steadiness = vd->steadiness;
        e->ending = vd->ending;
        e->support = vd->support;
        memcpy(&r->sizes[s * n], &sizes[chosen[s] * n], n * sizeof(size_t));
        e->sizes = &r->sizes[s * n];
    }
    r->n = nrep;
    if (nrep > 1)
        qsort(r->items, nrep, sizeof(*r->items), suspect_order);
    result = r;

done:
    hs_free(scratch);
    kt_free(&all);
    kt_free(&cand);
    hs_free(sizes);
    hs_free(v);
    hs_free(chosen);
    hs_free(ord);
    hs_free(x);
    hs_free(y);
    hs_free(px);
    hs_free(py);
    hs_free(slopes);
    hs_free(pidx);
    if (result == NULL) {
        hs_leaks_free(r);
        errno = ENOMEM;
    }
    return result;
}

size_t hs_leaks_count(const hs_leak_report *r) { return r ? r->n : 0; }

const hs_leak_suspect *hs_leaks_get(const hs_leak_report *r, size_t i)
{
    return r && i < r->n ? &r->items[i] : NULL;
}

double hs_leaks_duration(const hs_leak_report *r) { return r ? r->duration : 0; }
size_t hs_leaks_snapshots(const hs_leak_report *r) { return r ? r->nsnaps : 0; }

size_t hs_leaks_snapshot_index(const hs_leak_report *r, size_t i)
{
    return r && i < r->nsnaps ? r->order[i] : SIZE_MAX;
}

int hs_leaks_timed(const hs_leak_report *r) { return r ? r->timed : 0; }
size_t hs_leaks_judged(const hs_leak_report *r) { return r ? r->judged : 0; }
