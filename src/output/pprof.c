/*
 * pprof.c - a snapshot as a pprof profile: profile.proto (src/output/profile.proto, encoded by
 * protobuf-c from code protoc-c generates at build time), gzip-compressed as pprof expects, so
 * `go tool pprof`, `pprof -http` and every tool reading Go heap profiles open it.
 *
 * Encoding: protobuf-c with code generated from our own profile.proto, rather than a
 * hand-written encoder, so field numbers and wire types are stated once, in the .proto, next to
 * the format's definition, and the encoding (varints, zigzag, packed repeated fields, nested
 * lengths) is the library's, not ours to get subtly wrong.  The build needs protoc-c and
 * libprotobuf-c (Debian packages, scripts/install-deps.sh); only the heapsnap command links it,
 * never the tracer library.  Packing allocates nothing: protobuf-c appends bytes to our
 * ProtobufCBuffer, which deflates them as they come.
 *
 * What is written:
 *  - sample_type: inuse_objects/count, inuse_space/bytes (default_sample_type: inuse_space), as
 *    a Go heap profile names them; period_type space/bytes, period 1 (every block is recorded:
 *    nothing is sampled); time_nanos = meta.timestamp, duration_nanos = meta.elapsed.
 *  - One Sample per distinct traceback (statistic key: tracebacks with equal (filename, lineno)
 *    frames are one sample, as in statistics and the folded export), its values the number of
 *    live blocks and their bytes; location ids leaf (allocation site) first.  A traceback with no
 *    frame gets the single frame <unknown>:0.
 *  - With a base snapshot the values are differences, this snapshot minus the base, per
 *    traceback (hs_snapshot_compare_to by traceback), and may be negative, as `pprof -base`
 *    computes them; tracebacks whose count and bytes both did not change are left out.
 *  - Locations and inlining: the tracer expands one return address into several frames when
 *    calls were inlined (innermost first, all with the same address and object).  Consecutive
 *    frames with one non-zero address and object become one Location whose Lines are those
 *    frames in the same order, innermost first and the out-of-line caller last, which is how
 *    pprof represents inlining.  A frame repeating a (function, file, line) already in the group
 *    starts a new Location instead: that is recursion through one call site, not inlining.
 *    Frames with address 0 (snapshots built by hand) are one Location each.  Location.address
 *    is the frame's address in the traced process.  Locations are shared between samples: one
 *    per distinct (mapping, address, lines).
 *  - Function: one per distinct (function, filename); name and system_name are both the
 *    (demangled) function name, "" when unknown (pprof then shows the frame by its object,
 *    "[libfoo.so]", or as "<unknown>"); start_line 0 (not known).
 *  - Mapping: one per object path (frames with object "" have none, mapping_id 0), build_id the
 *    object's GNU build-id when the snapshot has it.  The traced program's mapping, when present,
 *    comes first (pprof takes the first mapping as the main binary).  memory_start,
 *    memory_limit and file_offset are 0: a snapshot does not keep the process's memory map.
 *    has_functions is always set: the frames are symbolized already, and the flag keeps pprof
 *    from re-symbolizing the addresses against local files; has_filenames, has_line_numbers and
 *    has_inline_frames say whether any of that mapping's frames had them.
 *  - Strings: string_table[0] is ""; proto3 strings must be UTF-8, so bytes that are not (paths
 *    are bytes) are replaced by U+FFFD, as in the JSON writer.  Comments name heapsnap, the
 *    program and pid, and for a difference the base's pid.
 * Everything is built in memory (an arena, freed at once), then encoded straight into a zlib
 * deflate stream (gzip wrapper, mtime 0, so equal snapshots give equal files) and written out.
 */
#include "export.h"
#include "../analysis/analysis.h"
#include "../snapshot/snapshot.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <zlib.h>

#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile pb_profile;
typedef Perftools__Profiles__ValueType pb_value_type;
typedef Perftools__Profiles__Sample pb_sample;
typedef Perftools__Profiles__Mapping pb_mapping;
typedef Perftools__Profiles__Location pb_location;
typedef Perftools__Profiles__Line pb_line;
typedef Perftools__Profiles__Function pb_function;

/* ---- a map from byte strings to numbers ------------------------------------------------------ */

typedef struct slot {
    uint64_t hash;
    const unsigned char *key;   /* NULL: empty; else a NUL-terminated copy in the arena */
    size_t len;
    uint64_t val;
} slot;

typedef struct imap {
    slot *tab;
    size_t cap, n;
} imap;

/* The value of key, or, when it is new, next (stored with a copy of the key): 1 when added, 0
 * when found, -ENOMEM. */
static int imap_put(hs_arena *a, imap *m, const void *key, size_t len, uint64_t next,
                    uint64_t *val, const char **copy)
{
    if ((m->n + 1) * 4 > m->cap * 3) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        slot *tab = hs_calloc(cap, sizeof(*tab));
        if (tab == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < m->cap; i++) {
            if (m->tab[i].key == NULL)
                continue;
            size_t j = m->tab[i].hash & (cap - 1);
            while (tab[j].key != NULL)
                j = (j + 1) & (cap - 1);
            tab[j] = m->tab[i];
        }
        hs_free(m->tab);
        m->tab = tab;
        m->cap = cap;
    }
    uint64_t h = hs_hash_bytes(key, len, 0);
    size_t i = h & (m->cap - 1);
    for (; m->tab[i].key != NULL; i = (i + 1) & (m->cap - 1)) {
        slot *e = &m->tab[i];
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0) {
            *val = e->val;
            if (copy != NULL)
                *copy = (const char *)e->key;
            return 0;
        }
    }
    char *k = hs_arena_strdup(a, key, len);
    if (k == NULL)
        return -ENOMEM;
    m->tab[i] = (slot){ .hash = h, .key = (const unsigned char *)k, .len = len, .val = next };
    m->n++;
    *val = next;
    if (copy != NULL)
        *copy = k;
    return 1;
}

/* ---- the profile being built ----------------------------------------------------------------- */

typedef struct ptrvec {
    void **v;
    size_t n, cap;
} ptrvec;

static int vec_push(ptrvec *v, void *p)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        void **nv = hs_realloc(v->v, cap * sizeof(*nv));
        if (nv == NULL)
            return -ENOMEM;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = p;
    return 0;
}

typedef struct builder {
    hs_arena arena;             /* keys, strings and every message */
    imap strings, functions, mappings, locations;
    ptrvec strs, funcs, maps, locs, samples;
    uint64_t *scratch;          /* a location's key */
    size_t scratch_cap;
    char *fixed;                /* a string with its invalid UTF-8 replaced */
    size_t fixed_cap;
    int err;                    /* the first error; once set, everything is a no-op */
} builder;

static void *b_alloc(builder *b, size_t n)
{
    void *p = hs_arena_alloc(&b->arena, n);
    if (p == NULL)
        b->err = -ENOMEM;
    else
        memset(p, 0, n);
    return p;
}

/* s as valid UTF-8: s itself, or a copy in b->fixed with U+FFFD for each invalid subpart. */
static const char *valid_utf8(builder *b, const char *s, size_t *len)
{
    size_t n = strlen(s), i = 0, bad;
    const unsigned char *u = (const unsigned char *)s;
    while (i < n) {
        size_t k = hs_utf8_seq(u + i, n - i, &bad);
        if (k == 0)
            break;
        i += k;
    }
    *len = n;
    if (i == n)
        return s;
    if (n > (SIZE_MAX - 1) / 3) {
        b->err = -ENOMEM;
        return NULL;
    }
    if (b->fixed_cap < 3 * n + 1) {
        char *f = hs_realloc(b->fixed, 3 * n + 1);   /* each bad byte grows to 3 at most */
        if (f == NULL) {
            b->err = -ENOMEM;
            return NULL;
        }
        b->fixed = f;
        b->fixed_cap = 3 * n + 1;
    }
    size_t o = 0;
    for (i = 0; i < n;) {
        size_t k = hs_utf8_seq(u + i, n - i, &bad);
        if (k > 0) {
            memcpy(b->fixed + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(b->fixed + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += bad;
        }
    }
    b->fixed[o] = '\0';
    *len = o;
    return b->fixed;
}

static int64_t str_index(builder *b, const char *s)
{
    if (b->err < 0)
        return 0;
    size_t len;
    s = valid_utf8(b, s != NULL ? s : "", &len);
    if (s == NULL)
        return 0;
    uint64_t idx;
    const char *copy;
    int r = imap_put(&b->arena, &b->strings, s, len, b->strs.n, &idx, &copy);
    if (r < 0 || (r > 0 && vec_push(&b->strs, (void *)copy) < 0)) {
        b->err = -ENOMEM;
        return 0;
    }
    return (int64_t)idx;
}

static const char *frame_object(const hs_frame *f) { return f->object != NULL ? f->object : ""; }
static const char *frame_file(const hs_frame *f) { return f->filename != NULL ? f->filename : "<unknown>"; }
static const char *frame_func(const hs_frame *f) { return f->function != NULL ? f->function : ""; }

/* The id of object's mapping (0 for ""), made when new. */
static uint64_t mapping_id(builder *b, const char *object, const char *build_id)
{
    if (b->err < 0 || object[0] == '\0')
        return 0;
    int64_t file = str_index(b, object);
    if (b->err < 0)
        return 0;
    uint64_t id;
    int r = imap_put(&b->arena, &b->mappings, &file, sizeof(file), b->maps.n + 1, &id, NULL);
    if (r < 0) {
        b->err = r;
        return 0;
    }
    pb_mapping *m;
    if (r > 0) {
        if ((m = b_alloc(b, sizeof(*m))) == NULL)
            return 0;
        perftools__profiles__mapping__init(m);
        m->id = id;
        m->filename = file;
        m->has_functions = 1;
        if (vec_push(&b->maps, m) < 0) {
            b->err = -ENOMEM;
            return 0;
        }
    }
    m = b->maps.v[id - 1];
    if (m->build_id == 0 && build_id != NULL && build_id[0] != '\0')
        m->build_id = str_index(b, build_id);
    return id;
}

static uint64_t function_id(builder *b, const hs_frame *f)
{
    int64_t key[2] = { str_index(b, frame_func(f)), str_index(b, frame_file(f)) };
    if (b->err < 0)
        return 0;
    uint64_t id;
    int r = imap_put(&b->arena, &b->functions, key, sizeof(key), b->funcs.n + 1, &id, NULL);
    if (r < 0) {
        b->err = r;
        return 0;
    }
    if (r > 0) {
        pb_function *fn = b_alloc(b, sizeof(*fn));
        if (fn == NULL)
            return 0;
        perftools__profiles__function__init(fn);
        fn->id = id;
        fn->name = key[0];
        fn->system_name = key[0];
        fn->filename = key[1];
        if (vec_push(&b->funcs, fn) < 0)
            b->err = -ENOMEM;
    }
    return id;
}

static int same_source(const hs_frame *a, const hs_frame *b)
{
    return a->lineno == b->lineno && strcmp(frame_func(a), frame_func(b)) == 0 &&
           strcmp(frame_file(a), frame_file(b)) == 0;
}

/* How many frames from f[i] on form one Location (see the file's comment). */
static size_t group_len(const hs_frame *f, size_t n, size_t i)
{
    if (f[i].address == 0)
        return 1;
    size_t k = i + 1;
    for (; k < n; k++) {
        if (f[k].address != f[i].address || strcmp(frame_object(&f[k]), frame_object(&f[i])) != 0)
            break;
        size_t m = i;
        while (m < k && !same_source(&f[m], &f[k]))
            m++;
        if (m < k)
            break;
    }
    return k - i;
}

/* The id of the Location for frames f[0..len), made when new. */
static uint64_t location_id(builder *b, const hs_frame *f, const char *build_id, size_t len)
{
    if (b->err < 0)
        return 0;
    size_t need = 3 + 2 * len;
    if (need > b->scratch_cap) {
        uint64_t *s = hs_realloc(b->scratch, need * sizeof(*s));
        if (s == NULL) {
            b->err = -ENOMEM;
            return 0;
        }
        b->scratch = s;
        b->scratch_cap = need;
    }
    uint64_t *key = b->scratch;
    key[0] = mapping_id(b, frame_object(&f[0]), build_id);
    key[1] = f[0].address;
    key[2] = len;
    for (size_t i = 0; i < len; i++) {
        key[3 + 2 * i] = function_id(b, &f[i]);
        key[4 + 2 * i] = f[i].lineno;
    }
    if (b->err < 0)
        return 0;
    uint64_t id;
    int r = imap_put(&b->arena, &b->locations, key, need * sizeof(*key), b->locs.n + 1, &id, NULL);
    if (r < 0) {
        b->err = r;
        return 0;
    }
    if (r == 0)
        return id;
    pb_location *l = b_alloc(b, sizeof(*l));
    pb_line **lines = b_alloc(b, len * sizeof(*lines));
    pb_line *line = b_alloc(b, len * sizeof(*line));
    if (l == NULL || lines == NULL || line == NULL)
        return 0;
    perftools__profiles__location__init(l);
    l->id = id;
    l->mapping_id = key[0];
    l->address = key[1];
    l->n_line = len;
    l->line = lines;
    for (size_t i = 0; i < len; i++) {
        perftools__profiles__line__init(&line[i]);
        line[i].function_id = key[3 + 2 * i];
        line[i].line = f[i].lineno;
        lines[i] = &line[i];
    }
    if (key[0] != 0) {
        pb_mapping *m = b->maps.v[key[0] - 1];
        for (size_t i = 0; i < len; i++) {
            const char *file = frame_file(&f[i]);
            if (strcmp(file, frame_object(&f[i])) != 0 && strcmp(file, "<unknown>") != 0)
                m->has_filenames = 1;
            if (f[i].lineno > 0)
                m->has_line_numbers = 1;
        }
        if (len > 1)
            m->has_inline_frames = 1;
    }
    if (vec_push(&b->locs, l) < 0)
        b->err = -ENOMEM;
    return id;
}

static int64_t clamp64(unsigned long long v) { return v > INT64_MAX ? INT64_MAX : (int64_t)v; }

static void add_sample(builder *b, const hs_traceback *tb, int64_t count, int64_t bytes)
{
    const hs_frame *f;
    size_t n = hs_key_frames(tb, &f);
    const hs_frame_loc *loc = tb->nframes > 0 ? hs_tb_of(tb)->loc : NULL;
    pb_sample *s = b_alloc(b, sizeof(*s));
    uint64_t *ids = b_alloc(b, n * sizeof(*ids));
    int64_t *values = b_alloc(b, 2 * sizeof(*values));
    if (s == NULL || ids == NULL || values == NULL)
        return;
    perftools__profiles__sample__init(s);
    size_t nids = 0;
    for (size_t i = 0; i < n;) {
        size_t len = group_len(f, n, i);
        ids[nids++] = location_id(b, &f[i], loc != NULL ? loc[i].build_id : NULL, len);
        i += len;
    }
    values[0] = count;
    values[1] = bytes;
    s->n_location_id = nids;
    s->location_id = ids;
    s->n_value = 2;
    s->value = values;
    if (b->err == 0 && vec_push(&b->samples, s) < 0)
        b->err = -ENOMEM;
}

/* ---- gzip output -------------------------------------------------------------------------------- */

typedef struct gz_sink {
    ProtobufCBuffer base;       /* first: protobuf-c calls append with &base */
    z_stream z;
    FILE *out;
    unsigned char *buf;
    size_t size;
    int err;
} gz_sink;

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return hs_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    hs_free(p);
}

/* Runs deflate with `flush` until it wants more input (or, with Z_FINISH, until the end). */
static void gz_run(gz_sink *g, int flush)
{
    int r;
    do {
        g->z.next_out = g->buf;
        g->z.avail_out = (uInt)g->size;
        r = deflate(&g->z, flush);
        if (r == Z_STREAM_ERROR) {
            g->err = -EIO;
            return;
        }
        size_t have = g->size - g->z.avail_out;
        errno = 0;
        if (have > 0 && fwrite(g->buf, 1, have, g->out) != have) {
            g->err = errno > 0 ? -errno : -EIO;
            return;
        }
    } while (flush == Z_FINISH ? r != Z_STREAM_END : g->z.avail_out == 0);
}

static void gz_append(ProtobufCBuffer *buf, size_t len, const uint8_t *data)
{
    gz_sink *g = (gz_sink *)buf;
    while (len > 0 && g->err == 0) {
        uInt chunk = len > UINT_MAX ? UINT_MAX : (uInt)len;
        g->z.next_in = (Bytef *)data;
        g->z.avail_in = chunk;
        gz_run(g, Z_NO_FLUSH);
        data += chunk;
        len -= chunk;
    }
}

static int write_gzip(const pb_profile *p, FILE *out)
{
    gz_sink g = { .base = { .append = gz_append }, .out = out, .size = 64 * 1024 };
    g.z.zalloc = z_alloc;
    g.z.zfree = z_free;
    g.z.opaque = Z_NULL;
    if ((g.buf = hs_malloc(g.size)) == NULL)
        return -ENOMEM;
    /* windowBits 15 + 16: a gzip wrapper (with a zeroed header: no name, mtime 0). */
    int r = deflateInit2(&g.z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    if (r != Z_OK) {
        hs_free(g.buf);
        return r == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    }
    perftools__profiles__profile__pack_to_buffer(p, &g.base);
    if (g.err == 0) {
        g.z.next_in = Z_NULL;
        g.z.avail_in = 0;
        gz_run(&g, Z_FINISH);
    }
    deflateEnd(&g.z);
    hs_free(g.buf);
    if (g.err < 0)
        return g.err;
    errno = 0;
    if (fflush(out) != 0 || ferror(out))
        return errno > 0 ? -errno : -EIO;
    return 0;
}

/* ---- the export ------------------------------------------------------------------------------- */

static int64_t nanos(double seconds)
{
    if (!isfinite(seconds) || seconds <= 0 || seconds >= 9.2e9)
        return 0;
    /* whole seconds and the fraction apart: seconds * 1e9 would round 1700000000.25 s to
     * ...249999872 ns */
    double whole = floor(seconds);
    return (int64_t)whole * 1000000000 + (int64_t)llround((seconds - whole) * 1e9);
}

static void add_comments(builder *b, const hs_snapshot *s, const hs_snapshot *base,
                         int64_t *comments, size_t *n)
{
    char line[512];
    const hs_snapshot_meta *m = hs_snapshot_get_meta(s);
    *n = 0;
    comments[(*n)++] = str_index(b, "heapsnap " HEAPSNAP_VERSION_STRING);
    if (m->program != NULL && m->program[0] != '\0') {
        snprintf(line, sizeof(line), "program: %s (pid %lld)", m->program, m->pid);
        comments[(*n)++] = str_index(b, line);
    }
    if (base != NULL) {
        const hs_snapshot_meta *bm = hs_snapshot_get_meta(base);
        snprintf(line, sizeof(line), "values: this snapshot minus a base snapshot (pid %lld)",
                 bm->pid);
        comments[(*n)++] = str_index(b, line);
    }
}

/* The traced program's mapping first, when its frames appear (pprof's main binary). */
static void program_mapping_first(builder *b, const hs_stats *st, const char *program)
{
    if (program == NULL || program[0] == '\0')
        return;
    for (size_t i = 0; i < hs_stats_count(st); i++) {
        const hs_traceback *tb = hs_stats_get(st, i)->traceback;
        for (size_t k = 0; k < tb->nframes; k++) {
            if (strcmp(frame_object(&tb->frames[k]), program) == 0) {
                const hs_frame_loc *loc = hs_tb_of(tb)->loc;
                mapping_id(b, program, loc != NULL ? loc[k].build_id : NULL);
                return;
            }
        }
    }
}

int hs_export_pprof(const hs_snapshot *s, const hs_snapshot *base, FILE *out)
{
    if (s == NULL || out == NULL)
        return -EINVAL;
    int err;
    hs_stats *st = hs_export_stats(s, base, &err);
    if (st == NULL)
        return err;
    err = 0;

    builder b;
    memset(&b, 0, sizeof(b));
    str_index(&b, "");          /* string_table[0] */
    pb_value_type types[2], period_type;
    for (int i = 0; i < 2; i++)
        perftools__profiles__value_type__init(&types[i]);
    perftools__profiles__value_type__init(&period_type);
    types[0].type = str_index(&b, "inuse_objects");
    types[0].unit = str_index(&b, "count");
    types[1].type = str_index(&b, "inuse_space");
    types[1].unit = str_index(&b, "bytes");
    period_type.type = str_index(&b, "space");
    period_type.unit = types[1].unit;
    int64_t comments[3];
    size_t ncomments;
    add_comments(&b, s, base, comments, &ncomments);

    program_mapping_first(&b, st, hs_snapshot_get_meta(s)->program);
    for (size_t i = 0; i < hs_stats_count(st) && b.err == 0; i++) {
        const hs_statistic *x = hs_stats_get(st, i);
        if (base != NULL) {
            if (x->size_diff == 0 && x->count_diff == 0)
                continue;
            add_sample(&b, x->traceback, x->count_diff, x->size_diff);
        } else {
            add_sample(&b, x->traceback, clamp64(x->count), clamp64(x->size));
        }
    }

    err = b.err;
    if (err == 0) {
        pb_value_type *type_ptrs[2] = { &types[0], &types[1] };
        pb_profile p;
        perftools__profiles__profile__init(&p);
        p.n_sample_type = 2;
        p.sample_type = type_ptrs;
        p.n_sample = b.samples.n;
        p.sample = (pb_sample **)b.samples.v;
        p.n_mapping = b.maps.n;
        p.mapping = (pb_mapping **)b.maps.v;
        p.n_location = b.locs.n;
        p.location = (pb_location **)b.locs.v;
        p.n_function = b.funcs.n;
        p.function = (pb_function **)b.funcs.v;
        p.n_string_table = b.strs.n;
        p.string_table = (char **)b.strs.v;
        p.time_nanos = nanos(hs_snapshot_get_meta(s)->timestamp);
        p.duration_nanos = nanos(hs_snapshot_get_meta(s)->elapsed);
        p.period_type = &period_type;
        p.period = 1;
        p.n_comment = ncomments;
        p.comment = comments;
        p.default_sample_type = types[1].type;
        err = write_gzip(&p, out);
    }

    hs_free(b.strings.tab);
    hs_free(b.functions.tab);
    hs_free(b.mappings.tab);
    hs_free(b.locations.tab);
    hs_free(b.strs.v);
    hs_free(b.funcs.v);
    hs_free(b.maps.v);
    hs_free(b.locs.v);
    hs_free(b.samples.v);
    hs_free(b.scratch);
    hs_free(b.fixed);
    hs_arena_free(&b.arena);
    hs_stats_free(st);
    return err;
}
