/*
 * filter.c - Snapshot.filter_traces() (SPEC section 5): a new, independent snapshot with the
 * traces a list of Filter / DomainFilter keeps.
 *
 * The list's verdict on a trace depends on its traceback and on its domain only through which of
 * the domains named by the filters it equals, if any: a "domain class" (each named domain, plus
 * one for all others).  So the verdict is computed once per (traceback, class) and the pass over
 * the traces is a lookup; the traceback part of each filter (does the site frame / any frame
 * match the pattern and line) is computed once per traceback; patterns are compiled once.  Kept
 * tracebacks are copied into the result's store once each.  The traceback limit and the meta are
 * copied unchanged: the meta describes the process when the snapshot was taken.
 */
#include "analysis.h"

#include <errno.h>

enum { UNKNOWN = 0, NO = 1, YES = 2 };   /* cached answers */

#define NO_ID SIZE_MAX      /* a traceback outside the store: nothing cached */

typedef struct filter_run {
    const hs_filter *f;
    size_t nf;
    hs_glob *glob;          /* per filter; unused for DomainFilters */
    size_t ntbs;            /* the source store's tracebacks */
    unsigned int *doms;     /* the distinct domains the filters name: classes 0 .. ndoms - 1 */
    size_t ndoms;           /* class ndoms: every other domain */
    unsigned char *hit;     /* [id * nf + i]: traceback part of filter i */
    unsigned char *verdict; /* [id * (ndoms + 1) + class]: the whole list */
} filter_run;

static int frame_hit(const hs_filter *f, const hs_glob *g, const hs_frame *fr)
{
    return (f->lineno == HS_ANY_LINE || fr->lineno == (unsigned int)f->lineno) &&
           hs_glob_match(g, fr->filename);
}

/* The traceback part of a Filter: hit(site frame) XOR exclusive, or, with all_frames, any frame
 * hits XOR exclusive. */
static int tb_keeps(filter_run *r, size_t i, const hs_tb *tb, size_t id)
{
    unsigned char scratch = UNKNOWN;
    unsigned char *c = id != NO_ID ? &r->hit[id * r->nf + i] : &scratch;
    if (*c == UNKNOWN) {
        const hs_filter *f = &r->f[i];
        const hs_frame *frames;
        size_t n = hs_key_frames(&tb->pub, &frames);
        if (!f->all_frames)
            n = 1;
        int h = 0;
        for (size_t k = 0; k < n && !h; k++)
            h = frame_hit(f, &r->glob[i], &frames[k]);
        *c = (h == !!f->inclusive) ? YES : NO;
    }
    return *c == YES;
}

static int filter_keeps(filter_run *r, size_t i, const hs_tb *tb, size_t id, unsigned int dom)
{
    const hs_filter *f = &r->f[i];
    if (f->filename_pattern == NULL)          /* DomainFilter */
        return (dom == f->domain) == !!f->inclusive;
    int keep = tb_keeps(r, i, tb, id);
    if (f->has_domain)
        keep = f->inclusive ? keep && dom == f->domain : keep || dom != f->domain;
    return keep;
}

/* Some inclusive filter keeps it (or there is none), and every exclusive filter keeps it. */
static int list_keeps(filter_run *r, const hs_tb *tb, size_t id, unsigned int dom)
{
    int any_inclusive = 0, included = 0;
    for (size_t i = 0; i < r->nf; i++) {
        const hs_filter *f = &r->f[i];
        if (f->inclusive) {
            any_inclusive = 1;
            if (!included && filter_keeps(r, i, tb, id, dom))
                included = 1;
        } else if (!filter_keeps(r, i, tb, id, dom)) {
            return 0;
        }
    }
    return !any_inclusive || included;
}

static int check_filters(const hs_filter *f, size_t n)
{
    if (f == NULL && n > 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (f[i].filename_pattern == NULL && !f[i].has_domain)
            return -EINVAL;      /* neither a Filter nor a DomainFilter */
        if (f[i].filename_pattern != NULL && f[i].lineno < HS_ANY_LINE)
            return -EINVAL;
    }
    return 0;
}

/* The class of a domain: its index in doms, or ndoms for a domain no filter names. */
static size_t domain_class(const filter_run *r, unsigned int dom)
{
    size_t k = 0;
    while (k < r->ndoms && r->doms[k] != dom)
        k++;
    return k;
}

static void run_free(filter_run *r)
{
    if (r->glob != NULL)
        for (size_t i = 0; i < r->nf; i++)
            hs_glob_free(&r->glob[i]);
    hs_free(r->glob);
    hs_free(r->hit);
    hs_free(r->verdict);
    hs_free(r->doms);
}

static int run_init(filter_run *r, const hs_snapshot *s, const hs_filter *f, size_t n)
{
    memset(r, 0, sizeof(*r));
    r->f = f;
    r->nf = n;
    r->ntbs = hs_store_tb_count(s->store);
    if (n == 0)
        return 0;
    if ((r->glob = hs_calloc(n, sizeof(*r->glob))) == NULL ||
        (r->doms = hs_calloc(n, sizeof(*r->doms))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *pat = f[i].filename_pattern;
        if (pat != NULL && hs_glob_compile(&r->glob[i], pat) < 0)
            return -ENOMEM;
        if ((f[i].filename_pattern == NULL || f[i].has_domain) &&
            domain_class(r, f[i].domain) == r->ndoms)
            r->doms[r->ndoms++] = f[i].domain;
    }
    size_t ids = r->ntbs ? r->ntbs : 1;
    if (ids > SIZE_MAX / n / (r->ndoms + 1))
        return -ENOMEM;
    if ((r->hit = hs_calloc(ids * n, 1)) == NULL ||
        (r->verdict = hs_calloc(ids * (r->ndoms + 1), 1)) == NULL)
        return -ENOMEM;
    return 0;
}

hs_snapshot *hs_snapshot_filter_traces(const hs_snapshot *s, const hs_filter *filters,
                                       size_t nfilters)
{
    if (s == NULL || check_filters(filters, nfilters) < 0) {
        errno = EINVAL;
        return NULL;
    }
    filter_run r;
    memset(&r, 0, sizeof(r));
    const hs_tb **copied = NULL;
    hs_snapshot *out = hs_snapshot_new(1);
    if (out == NULL || run_init(&r, s, filters, nfilters) < 0)
        goto fail;
    out->traceback_limit = s->traceback_limit;
    if (hs_snapshot_set_meta(out, &s->meta) < 0)
        goto fail;
    if (r.ntbs > 0 && (copied = hs_calloc(r.ntbs, sizeof(*copied))) == NULL)
        goto fail;
    for (size_t i = 0; i < s->ntraces; i++) {
        const hs_trace_rec *t = &s->traces[i];
        size_t id = hs_store_owns(s->store, r.ntbs, t->tb) ? t->tb->id : NO_ID;
        int keep;
        if (r.nf == 0) {
            keep = 1;
        } else if (id != NO_ID) {
            unsigned char *v = &r.verdict[id * (r.ndoms + 1) + domain_class(&r, t->domain)];
            if (*v == UNKNOWN)
                *v = list_keeps(&r, t->tb, id, t->domain) ? YES : NO;
            keep = *v == YES;
        } else {
            keep = list_keeps(&r, t->tb, id, t->domain);
        }
        if (!keep)
            continue;
        const hs_tb *tb = id != NO_ID ? copied[id] : NULL;
        if (tb == NULL && (tb = hs_store_copy_tb(out->store, t->tb)) == NULL)
            goto fail;
        if (id != NO_ID)
            copied[id] = tb;
        if (hs_snapshot_push(out, t->domain, t->size, tb) < 0)
            goto fail;
    }
    hs_free(copied);
    run_free(&r);
    return out;
fail:
    run_free(&r);
    hs_free(copied);
    hs_snapshot_free(out);
    errno = ENOMEM;
    return NULL;
}
