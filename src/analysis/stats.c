/*
 * stats.c - Snapshot.statistics() and Snapshot.compare_to() (SPEC sections 3 and 4).
 *
 * Two levels of grouping keep the work proportional to the distinct tracebacks, not the traces:
 * one pass over the traces sums (size, count) per interned traceback, then each used
 * traceback adds its sums to its key(s) in a hash table keyed by content, (filename, lineno) of
 * one frame or of every frame, so the two snapshots of a comparison (different stores) meet in
 * the same table.  The result copies its key tracebacks into its own store.
 *
 * A key's representative (what its hs_statistic.traceback shows beyond filename and lineno) is the
 * first traceback / frame met: the lowest store id of the new snapshot, else of the old one.
 * lineno keys keep that frame's function and object (address 0), filename keys keep only the file
 * name, traceback keys keep the whole traceback (functions, addresses, total_nframe).
 */
#include "analysis.h"

#include <errno.h>
#include <stdlib.h>

const hs_frame hs_unknown_frame = {
    .filename = "<unknown>", .lineno = 0, .function = "", .object = "", .address = 0
};

typedef struct group {
    uint64_t hash;
    const hs_tb *tb;           /* traceback key: the representative */
    const hs_frame *frame;     /* lineno / filename keys: the representative frame */
    unsigned int lineno;       /* lineno / filename keys: the key's line (0 for filename) */
    size_t size[2], count[2];  /* [0]: the (new) snapshot, [1]: the old one */
} group;

typedef struct grouper {
    hs_key_type key;
    group *g;
    size_t n, cap;
    size_t *tab;               /* open addressing: group index + 1, 0 = empty */
    size_t tabcap;
} grouper;

static int grouper_grow(grouper *gr)
{
    if (gr->n == gr->cap) {
        size_t cap = gr->cap ? gr->cap * 2 : 64;
        group *g = hs_realloc(gr->g, cap * sizeof(*g));
        if (g == NULL)
            return -ENOMEM;
        gr->g = g;
        gr->cap = cap;
    }
    if ((gr->n + 1) * 2 > gr->tabcap) {
        size_t cap = gr->tabcap ? gr->tabcap * 2 : 128;
        size_t *tab = hs_calloc(cap, sizeof(*tab));
        if (tab == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < gr->n; i++) {
            size_t j = gr->g[i].hash & (cap - 1);
            while (tab[j] != 0)
                j = (j + 1) & (cap - 1);
            tab[j] = i + 1;
        }
        hs_free(gr->tab);
        gr->tab = tab;
        gr->tabcap = cap;
    }
    return 0;
}

/* Adds (size, count) on `side` to the key of traceback tb (traceback key) or of frame f. */
static int grouper_add(grouper *gr, int side, const hs_tb *tb, const hs_frame *f, size_t size,
                       size_t count)
{
    uint64_t hash;
    unsigned int lineno = 0;
    if (gr->key == HS_KEY_TRACEBACK) {
        hash = tb->key_hash;
    } else {
        lineno = gr->key == HS_KEY_LINENO ? f->lineno : 0;
        hash = hs_hash_bytes(f->filename, strlen(f->filename), lineno);
    }
    if (grouper_grow(gr) < 0)
        return -ENOMEM;
    size_t j = hash & (gr->tabcap - 1);
    for (; gr->tab[j] != 0; j = (j + 1) & (gr->tabcap - 1)) {
        group *g = &gr->g[gr->tab[j] - 1];
        if (g->hash != hash)
            continue;
        int same = gr->key == HS_KEY_TRACEBACK
                       ? hs_tb_key_equal(&g->tb->pub, &tb->pub)
                       : g->lineno == lineno && (g->frame->filename == f->filename ||
                                                 strcmp(g->frame->filename, f->filename) == 0);
        if (same) {
            g->size[side] += size;
            g->count[side] += count;
            return 0;
        }
    }
    group *g = &gr->g[gr->n];
    memset(g, 0, sizeof(*g));
    g->hash = hash;
    g->tb = tb;
    g->frame = f;
    g->lineno = lineno;
    g->size[side] = size;
    g->count[side] = count;
    gr->tab[j] = ++gr->n;
    return 0;
}

/* Adds a traceback's sums to its key (the whole traceback, or its allocation site) or, cumulative,
 * to the key of every stored frame. */
static int add_tb(grouper *gr, int side, const hs_tb *tb, size_t size, size_t count, int cumulative)
{
    const hs_frame *frames;
    size_t nf = hs_key_frames(&tb->pub, &frames);
    if (gr->key == HS_KEY_TRACEBACK || !cumulative)
        nf = 1;
    for (size_t k = 0; k < nf; k++)
        if (grouper_add(gr, side, tb, &frames[k], size, count) < 0)
            return -ENOMEM;
    return 0;
}

/* Groups the traces of s into gr on `side`: one pass summing per traceback id, then one key
 * lookup per traceback used. */
static int group_snapshot(grouper *gr, const hs_snapshot *s, int side, int cumulative)
{
    struct sum { size_t size, count; } *sum = NULL;
    size_t ntbs = hs_store_tb_count(s->store);
    if (ntbs > 0 && (sum = hs_calloc(ntbs, sizeof(*sum))) == NULL)
        return -ENOMEM;
    int rc = -ENOMEM;
    for (size_t i = 0; i < s->ntraces; i++) {
        const hs_trace_rec *t = &s->traces[i];
        if (hs_store_owns(s->store, ntbs, t->tb)) {
            sum[t->tb->id].size += t->size;
            sum[t->tb->id].count++;
        } else if (add_tb(gr, side, t->tb, t->size, 1, cumulative) < 0) {
            goto out;
        }
    }
    for (size_t id = 0; id < ntbs; id++)
        if (sum[id].count > 0 &&       /* else in the store but used by no trace */
            add_tb(gr, side, hs_store_tb_at(s->store, id), sum[id].size, sum[id].count,
                   cumulative) < 0)
            goto out;
    rc = 0;
out:
    hs_free(sum);
    return rc;
}

/* ---- ordering -------------------------------------------------------------------------------- */

static int cmp_size(size_t a, size_t b) { return (a > b) - (a < b); }

static unsigned long long mag(long long v)
{
    return v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
}

/* Descending (size, count, key). */
static int stat_order(const void *pa, const void *pb)
{
    const hs_statistic *a = pa, *b = pb;
    int c = cmp_size(b->size, a->size);
    if (c == 0)
        c = cmp_size(b->count, a->count);
    return c != 0 ? c : hs_tb_key_cmp(b->traceback, a->traceback);
}

/* Descending (|size_diff|, size, |count_diff|, count, key). */
static int diff_order(const void *pa, const void *pb)
{
    const hs_statistic *a = pa, *b = pb;
    unsigned long long ma = mag(a->size_diff), mb = mag(b->size_diff);
    int c = (mb > ma) - (mb < ma);
    if (c == 0)
        c = cmp_size(b->size, a->size);
    if (c == 0) {
        ma = mag(a->count_diff);
        mb = mag(b->count_diff);
        c = (mb > ma) - (mb < ma);
    }
    if (c == 0)
        c = cmp_size(b->count, a->count);
    return c != 0 ? c : hs_tb_key_cmp(b->traceback, a->traceback);
}

/* ---- results --------------------------------------------------------------------------------- */

/* The key traceback of g, interned in the result's store. */
static const hs_tb *key_tb(hs_store *st, hs_key_type key, const group *g)
{
    if (key == HS_KEY_TRACEBACK)
        return hs_store_copy_tb(st, g->tb);
    hs_frame f = { .filename = g->frame->filename, .lineno = g->lineno, .function = "",
                   .object = "", .address = 0 };
    if (key == HS_KEY_LINENO) {
        f.function = g->frame->function;
        f.object = g->frame->object;
    }
    return hs_store_tb(st, &f, NULL, 1, 1);
}

static hs_stats *build(const grouper *gr, int diff)
{
    hs_stats *st = hs_calloc(1, sizeof(*st));
    if (st == NULL) {
        errno = ENOMEM;   /* hs_calloc need not set it (the tracer's allocator path) */
        return NULL;
    }
    st->diff = diff;
    st->store = hs_store_new();
    if (st->store == NULL ||
        (gr->n > 0 && (st->items = hs_calloc(gr->n, sizeof(hs_statistic))) == NULL))
        goto fail;
    for (size_t i = 0; i < gr->n; i++) {
        const group *g = &gr->g[i];
        const hs_tb *tb = key_tb(st->store, gr->key, g);
        if (tb == NULL)
            goto fail;
        hs_statistic *s = &st->items[i];
        s->size = g->size[0];
        s->count = g->count[0];
        if (diff) {   /* a side without the key has zeros: the three cases of SPEC section 4 */
            s->size_diff = (long long)(g->size[0] - g->size[1]);
            s->count_diff = (long long)(g->count[0] - g->count[1]);
        }
        s->traceback = &tb->pub;
    }
    st->n = gr->n;
    if (st->n > 1)
        qsort(st->items, st->n, sizeof(hs_statistic), diff ? diff_order : stat_order);
    return st;
fail:
    hs_stats_free(st);
    errno = ENOMEM;
    return NULL;
}

static int check_key(hs_key_type key, int cumulative)
{
    if (key != HS_KEY_TRACEBACK && key != HS_KEY_LINENO && key != HS_KEY_FILENAME)
        return -EINVAL;
    if (cumulative && key == HS_KEY_TRACEBACK)
        return -EINVAL;
    return 0;
}

static hs_stats *analyse(const hs_snapshot *s, const hs_snapshot *old, hs_key_type key,
                         int cumulative)
{
    if (s == NULL || check_key(key, cumulative) < 0) {
        errno = EINVAL;
        return NULL;
    }
    grouper gr = { .key = key };
    hs_stats *st = NULL;
    if (group_snapshot(&gr, s, 0, cumulative) == 0 &&
        (old == NULL || group_snapshot(&gr, old, 1, cumulative) == 0))
        st = build(&gr, old != NULL);
    else
        errno = ENOMEM;
    hs_free(gr.g);
    hs_free(gr.tab);
    return st;
}

hs_stats *hs_snapshot_statistics(const hs_snapshot *s, hs_key_type key, int cumulative)
{
    return analyse(s, NULL, key, cumulative);
}

hs_stats *hs_snapshot_compare_to(const hs_snapshot *s, const hs_snapshot *old, hs_key_type key,
                                 int cumulative)
{
    if (old == NULL) {
        errno = EINVAL;
        return NULL;
    }
    return analyse(s, old, key, cumulative);
}

size_t hs_stats_count(const hs_stats *st)
{
    return st ? st->n : 0;
}

const hs_statistic *hs_stats_get(const hs_stats *st, size_t i)
{
    return st && i < st->n ? &st->items[i] : NULL;
}

void hs_stats_free(hs_stats *st)
{
    if (st == NULL)
        return;
    hs_store_free(st->store);
    hs_free(st->items);
    hs_free(st);
}
