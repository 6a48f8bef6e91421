/*
 * snapshot.c - the snapshot object and its store of interned strings and tracebacks.
 *
 * Interning makes a snapshot compact (each file name and each distinct stack stored once) and
 * lets the analysis group traces by traceback pointer.  Both tables are open-addressing hash
 * sets of pointers into the store's arena, grown at 50% load.
 */
#include "snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A store that interns strings from a source whose strings stay put and never change (the tracer's
 * symbolizer) may remember, by address, what each source string became: one load instead of a
 * hash and a comparison for the 16 x 4 strings of every traceback of a snapshot. */
#define MEMO_SIZE 4096
typedef struct memo_ent { const char *src, *dst; } memo_ent;

struct hs_store {
    hs_arena arena;
    memo_ent *memo;               /* NULL unless hs_store_memo(st, 1) */
    const char **strs;            /* string set */
    size_t nstrs, strcap;
    const hs_tb **tbset;          /* traceback set */
    size_t tbsetcap;
    const hs_tb **tbs;            /* by id */
    size_t ntbs, tbcap;
};

hs_store *hs_store_new(void)
{
    return hs_calloc(1, sizeof(hs_store));
}

void hs_store_free(hs_store *st)
{
    if (st == NULL)
        return;
    hs_arena_free(&st->arena);
    hs_free(st->memo);
    hs_free(st->strs);
    hs_free(st->tbset);
    hs_free(st->tbs);
    hs_free(st);
}

/* Interned strings carry their content hash in the 8 bytes before them. */
static inline uint64_t str_hash_of(const char *interned)
{
    uint64_t h;
    memcpy(&h, interned - 8, sizeof(h));
    return h;
}

static int str_grow(hs_store *st)
{
    size_t cap = st->strcap ? st->strcap * 2 : 256;
    const char **t = hs_calloc(cap, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < st->strcap; i++) {
        const char *e = st->strs[i];
        if (e == NULL)
            continue;
        size_t j = str_hash_of(e) & (cap - 1);
        while (t[j] != NULL)
            j = (j + 1) & (cap - 1);
        t[j] = e;
    }
    hs_free(st->strs);
    st->strs = t;
    st->strcap = cap;
    return 0;
}

const char *hs_store_strn(hs_store *st, const char *s, size_t n)
{
    if ((st->nstrs + 1) * 2 > st->strcap && str_grow(st) < 0)
        return NULL;
    uint64_t h = hs_hash_bytes(s, n, 0);
    size_t j = h & (st->strcap - 1);
    for (;;) {
        const char *e = st->strs[j];
        if (e == NULL)
            break;
        if (str_hash_of(e) == h && strncmp(e, s, n) == 0 && e[n] == '\0')
            return e;
        j = (j + 1) & (st->strcap - 1);
    }
    char *d = hs_arena_alloc(&st->arena, 16 + n + 1);   /* 16-byte aligned: hash at +8 */
    if (d == NULL)
        return NULL;
    d += 16;
    memcpy(d - 8, &h, sizeof(h));
    memcpy(d, s, n);
    d[n] = '\0';
    st->strs[j] = d;
    st->nstrs++;
    return d;
}

const char *hs_store_str(hs_store *st, const char *s)
{
    if (s == NULL)
        s = "";
    memo_ent *m = NULL;
    if (st->memo != NULL) {
        m = &st->memo[hs_mix64((uintptr_t)s) % MEMO_SIZE];
        if (m->src == s)
            return m->dst;
    }
    const char *d = hs_store_strn(st, s, strlen(s));
    if (m != NULL && d != NULL) {
        m->src = s;
        m->dst = d;
    }
    return d;
}

int hs_store_memo(hs_store *st, int on)
{
    hs_free(st->memo);
    st->memo = on ? hs_calloc(MEMO_SIZE, sizeof(*st->memo)) : NULL;
    return on && st->memo == NULL ? -ENOMEM : 0;
}

/* Hashes of a traceback whose strings are interned in the store: full content, and the
 * (filename, lineno) key.  From the strings' content hashes, so equal tracebacks of different
 * stores hash the same (statistics and leaks compare keys across snapshots). */
static void tb_hashes(const hs_frame *f, const hs_frame_loc *loc, size_t n, size_t total,
                      uint64_t *full, uint64_t *key)
{
    uint64_t h = hs_mix64(total ^ (n << 32)), k = hs_mix64(n);
    for (size_t i = 0; i < n; i++) {
        uint64_t fh = hs_mix64(str_hash_of(f[i].filename) ^ ((uint64_t)f[i].lineno << 20));
        k = hs_mix64(k ^ fh) + i;
        h = hs_mix64(h ^ fh);
        h = hs_mix64(h ^ str_hash_of(f[i].function) ^ (uint64_t)f[i].address);
        h = hs_mix64(h ^ str_hash_of(f[i].object));
        if (loc != NULL)
            h = hs_mix64(h ^ str_hash_of(loc[i].build_id) ^ (uint64_t)loc[i].offset);
    }
    *full = h;
    *key = k;
}

/* Both with interned strings: equal strings are the same pointer. */
static int tb_equal(const hs_tb *t, const hs_frame *f, const hs_frame_loc *loc, size_t n,
                    size_t total)
{
    if (t->pub.nframes != n || t->pub.total_nframe != total || (t->loc == NULL) != (loc == NULL))
        return 0;
    for (size_t i = 0; i < n; i++) {
        const hs_frame *a = &t->pub.frames[i];
        if (a->lineno != f[i].lineno || a->address != f[i].address ||
            a->filename != f[i].filename || a->function != f[i].function ||
            a->object != f[i].object)
            return 0;
        if (loc != NULL && (t->loc[i].offset != loc[i].offset ||
                            t->loc[i].build_id != loc[i].build_id))
            return 0;
    }
    return 1;
}

static int tbset_grow(hs_store *st)
{
    size_t cap = st->tbsetcap ? st->tbsetcap * 2 : 256;
    const hs_tb **t = hs_calloc(cap, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < st->ntbs; i++) {
        size_t j = st->tbs[i]->hash & (cap - 1);
        while (t[j] != NULL)
            j = (j + 1) & (cap - 1);
        t[j] = st->tbs[i];
    }
    hs_free(st->tbset);
    st->tbset = t;
    st->tbsetcap = cap;
    return 0;
}

const hs_tb *hs_store_tb(hs_store *st, const hs_frame *frames, const hs_frame_loc *loc,
                         size_t nframes, size_t total_nframe)
{
    /* The frames with their strings interned first.  NULL strings are read as "" (function,
     * object, build-id) and "<unknown>" (filename). */
    hs_frame small[16];
    hs_frame_loc small_loc[16];
    hs_frame *f = small;
    hs_frame_loc *l = loc != NULL ? small_loc : NULL;
    const hs_tb *res = NULL;
    if (nframes > HS_ARRAY_LEN(small)) {
        f = hs_malloc(nframes * sizeof(*f));
        if (loc != NULL)
            l = hs_malloc(nframes * sizeof(*l));
        if (f == NULL || (loc != NULL && l == NULL))
            goto out;
    }
    for (size_t i = 0; i < nframes; i++) {
        f[i].filename = hs_store_str(st, frames[i].filename ? frames[i].filename : "<unknown>");
        f[i].function = hs_store_str(st, frames[i].function);
        f[i].object = hs_store_str(st, frames[i].object);
        f[i].lineno = frames[i].lineno;
        f[i].address = frames[i].address;
        if (f[i].filename == NULL || f[i].function == NULL || f[i].object == NULL)
            goto out;
        if (l != NULL) {
            l[i].build_id = hs_store_str(st, loc[i].build_id);
            l[i].offset = loc[i].offset;
            if (l[i].build_id == NULL)
                goto out;
        }
    }
    uint64_t h, k;
    tb_hashes(f, l, nframes, total_nframe, &h, &k);
    if ((st->ntbs + 1) * 2 > st->tbsetcap && tbset_grow(st) < 0)
        goto out;
    size_t j = h & (st->tbsetcap - 1);
    for (const hs_tb *e; (e = st->tbset[j]) != NULL; j = (j + 1) & (st->tbsetcap - 1)) {
        if (e->hash == h && tb_equal(e, f, l, nframes, total_nframe)) {
            res = e;
            goto out;
        }
    }
    if (st->ntbs == st->tbcap) {
        size_t cap = st->tbcap ? st->tbcap * 2 : 64;
        const hs_tb **t = hs_realloc(st->tbs, cap * sizeof(*t));
        if (t == NULL)
            goto out;
        st->tbs = t;
        st->tbcap = cap;
    }
    hs_tb *t = hs_arena_alloc(&st->arena, sizeof(*t));
    hs_frame *nf = nframes ? hs_arena_alloc(&st->arena, nframes * sizeof(*nf)) : NULL;
    hs_frame_loc *nl = l && nframes ? hs_arena_alloc(&st->arena, nframes * sizeof(*nl)) : NULL;
    if (t == NULL || (nframes && nf == NULL) || (l && nframes && nl == NULL))
        goto out;
    if (nframes) {
        memcpy(nf, f, nframes * sizeof(*nf));
        if (nl != NULL)
            memcpy(nl, l, nframes * sizeof(*nl));
    }
    t->pub.nframes = nframes;
    t->pub.total_nframe = total_nframe;
    t->pub.frames = nf;
    t->loc = loc ? nl : NULL;
    t->hash = h;
    t->key_hash = k;
    t->id = (uint32_t)st->ntbs;
    st->tbs[st->ntbs++] = t;
    st->tbset[j] = t;
    res = t;
out:
    if (f != small)
        hs_free(f);
    if (l != NULL && l != small_loc)
        hs_free(l);
    return res;
}

const hs_tb *hs_store_copy_tb(hs_store *dst, const hs_tb *src)
{
    return hs_store_tb(dst, src->pub.frames, src->loc, src->pub.nframes, src->pub.total_nframe);
}

size_t hs_store_tb_count(const hs_store *st) { return st->ntbs; }
const hs_tb *hs_store_tb_at(const hs_store *st, size_t id) { return st->tbs[id]; }

int hs_tb_key_equal(const hs_traceback *a, const hs_traceback *b)
{
    if (a == b)
        return 1;
    if (a->nframes != b->nframes)
        return 0;
    for (size_t i = 0; i < a->nframes; i++)
        if (a->frames[i].lineno != b->frames[i].lineno ||
            strcmp(a->frames[i].filename, b->frames[i].filename) != 0)
            return 0;
    return 1;
}

int hs_tb_key_cmp(const hs_traceback *a, const hs_traceback *b)
{
    /* frames[0] is the most recent: the oldest is frames[n - 1]. */
    size_t n = a->nframes < b->nframes ? a->nframes : b->nframes;
    for (size_t i = 0; i < n; i++) {
        const hs_frame *fa = &a->frames[a->nframes - 1 - i], *fb = &b->frames[b->nframes - 1 - i];
        int c = strcmp(fa->filename, fb->filename);
        if (c != 0)
            return c;
        if (fa->lineno != fb->lineno)
            return fa->lineno < fb->lineno ? -1 : 1;
    }
    return a->nframes < b->nframes ? -1 : a->nframes > b->nframes;
}

/* ---- the snapshot ---------------------------------------------------------------------------- */

hs_snapshot *hs_snapshot_new(int traceback_limit)
{
    if (traceback_limit < 1 || traceback_limit > HS_MAX_FRAMES) {
        errno = EINVAL;
        return NULL;
    }
    hs_snapshot *s = hs_calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->store = hs_store_new();
    if (s->store == NULL) {
        hs_free(s);
        errno = ENOMEM;
        return NULL;
    }
    s->traceback_limit = traceback_limit;
    s->meta.program = s->meta.kind = "";
    return s;
}

void hs_snapshot_free(hs_snapshot *s)
{
    if (s == NULL)
        return;
    hs_store_free(s->store);
    hs_free(s->traces);
    hs_free(s);
}

int hs_snapshot_reserve(hs_snapshot *s, size_t n)
{
    if (n <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < n)
        cap *= 2;
    hs_trace_rec *t = hs_realloc(s->traces, cap * sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    s->traces = t;
    s->cap = cap;
    return 0;
}

int hs_snapshot_push(hs_snapshot *s, unsigned int domain, size_t size, const hs_tb *tb)
{
    if (s->ntraces == s->cap && hs_snapshot_reserve(s, s->ntraces + 1) < 0)
        return -ENOMEM;
    s->traces[s->ntraces++] = (hs_trace_rec){ .tb = tb, .size = size, .domain = domain };
    return 0;
}

int hs_snapshot_add_trace(hs_snapshot *s, unsigned int domain, size_t size, const hs_frame *frames,
                          size_t nframes, size_t total_nframe)
{
    if (s == NULL || (frames == NULL && nframes > 0))
        return -EINVAL;
    if (total_nframe < nframes)
        total_nframe = nframes;
    const hs_tb *tb = hs_store_tb(s->store, frames, NULL, nframes, total_nframe);
    if (tb == NULL)
        return -ENOMEM;
    return hs_snapshot_push(s, domain, size, tb);
}

size_t hs_snapshot_count(const hs_snapshot *s) { return s ? s->ntraces : 0; }
int hs_snapshot_traceback_limit(const hs_snapshot *s) { return s ? s->traceback_limit : -EINVAL; }
const hs_snapshot_meta *hs_snapshot_get_meta(const hs_snapshot *s) { return &s->meta; }

int hs_snapshot_get(const hs_snapshot *s, size_t i, unsigned int *domain, size_t *size,
                    const hs_traceback **tb)
{
    if (s == NULL || i >= s->ntraces)
        return -EINVAL;
    const hs_trace_rec *t = &s->traces[i];
    if (domain)
        *domain = t->domain;
    if (size)
        *size = t->size;
    if (tb)
        *tb = &t->tb->pub;
    return 0;
}

void hs_snapshot_totals(const hs_snapshot *s, size_t *size, size_t *count)
{
    size_t total = 0;
    for (size_t i = 0; i < s->ntraces; i++)
        total += s->traces[i].size;
    if (size)
        *size = total;
    if (count)
        *count = s->ntraces;
}

int hs_snapshot_set_meta(hs_snapshot *s, const hs_snapshot_meta *m)
{
    hs_snapshot_meta n = *m;
    n.program = hs_store_str(s->store, m->program);
    n.kind = hs_store_str(s->store, m->kind);
    n.argv = NULL;
    if (n.program == NULL || n.kind == NULL)
        return -ENOMEM;
    if (m->argc > 0) {
        const char **argv = hs_arena_alloc(&s->store->arena, m->argc * sizeof(char *));
        if (argv == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < m->argc; i++)
            if ((argv[i] = hs_store_str(s->store, m->argv ? m->argv[i] : "")) == NULL)
                return -ENOMEM;
        n.argv = argv;
    }
    s->meta = n;
    return 0;
}
