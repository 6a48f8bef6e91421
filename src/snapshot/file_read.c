/*
 * file_read.c - hs_snapshot_load: parse a snapshot file of any format version up to
 * HS_FILE_VERSION (docs/FORMAT.md) and reject everything else with a message naming the file and
 * the problem.
 *
 * The whole file is read into memory first.  Before anything is parsed, every section header is
 * bounds-checked and every checksum verified, so truncation and corruption are reported as such
 * rather than as whatever nonsense the damaged bytes decode to.  Parsing then trusts nothing:
 * every count is bounded by the bytes left (a lying count cannot make us allocate much), every
 * index is checked against its table and every number against its C type.  The snapshot is built
 * through the store (hs_store_strn, hs_store_tb, hs_snapshot_push), so its tracebacks are interned
 * exactly like the tracer's and the analysis can group them by pointer.
 */
#include "format.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The load in progress: where its first error goes. */
typedef struct ld {
    const char *name;
    char *errbuf;
    size_t errlen;
    int err;                /* errno for the caller: EINVAL, ENOTSUP, ENOMEM, or a read error */
} ld;

/* Records the failure "<name>: <message>" (only the first one) and returns -1. */
__attribute__((format(printf, 2, 3))) static int fail(ld *c, const char *fmt, ...)
{
    if (c->err != 0)
        return -1;
    c->err = EINVAL;
    if (c->errbuf == NULL || c->errlen == 0)
        return -1;
    int n = snprintf(c->errbuf, c->errlen, "%s: ", c->name);
    if (n >= 0 && (size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->errbuf + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Records a system error (a negative errno) as the failure. */
static int fail_sys(ld *c, int neg_errno)
{
    if (c->err != 0)
        return -1;
    fail(c, "%s", hs_strerror(neg_errno));
    c->err = -neg_errno;
    return -1;
}

/* ---- sections ------------------------------------------------------------------------------- */

enum { SEC_META, SEC_STRINGS, SEC_FRAMES, SEC_TRACEBACKS, SEC_TRACES, SEC_NKNOWN };

static const struct {
    uint32_t type;
    const char *name;
} sec_info[SEC_NKNOWN] = {
    { HS_SEC_META, "'meta'" },
    { HS_SEC_STRINGS, "'strings'" },
    { HS_SEC_FRAMES, "'frames'" },
    { HS_SEC_TRACEBACKS, "'tracebacks'" },
    { HS_SEC_TRACES, "'traces'" },
};

/* A section's name for messages: 'traces' for known types, 'ABCD' or 0x... for others. */
static const char *sec_name(uint32_t type, char buf[16])
{
    if (type == HS_SEC_END)
        return "'end'";
    for (int i = 0; i < SEC_NKNOWN; i++)
        if (sec_info[i].type == type)
            return sec_info[i].name;
    unsigned char c[4];
    hs_put_le32(c, type);
    for (int i = 0; i < 4; i++)
        if (c[i] < 0x20 || c[i] > 0x7e || c[i] == '\'') {
            snprintf(buf, 16, "0x%08x", (unsigned)type);
            return buf;
        }
    snprintf(buf, 16, "'%c%c%c%c'", c[0], c[1], c[2], c[3]);
    return buf;
}

/* A cursor over one section's payload. */
typedef struct cur {
    const unsigned char *p, *end;
    const char *sec;        /* its name, for messages */
    int present;
} cur;

static size_t left(const cur *r) { return (size_t)(r->end - r->p); }

/* Checks the header, then walks every section: bounds, checksum, duplicates, the end section.
 * Fills secs[] with the known sections' payloads; unknown types are skipped. */
static int scan(ld *c, const unsigned char *buf, size_t len, cur secs[SEC_NKNOWN])
{
    char nb[16];
    if (len == 0)
        return fail(c, "not a heapsnap snapshot (empty file)");
    if (memcmp(buf, HS_FILE_MAGIC, len < HS_FILE_MAGIC_LEN ? len : HS_FILE_MAGIC_LEN) != 0)
        return fail(c, "not a heapsnap snapshot (bad magic)");
    if (len < HS_FILE_HEADER_LEN)
        return fail(c, "truncated at byte %zu (header needs %zu more)", len,
                    HS_FILE_HEADER_LEN - len);
    uint32_t version = hs_get_le32(buf + HS_FILE_MAGIC_LEN);
    if (version == 0)
        return fail(c, "corrupt header (format version 0 does not exist)");
    if (version > HS_FILE_VERSION) {
        fail(c, "written by a newer heapsnap (format version %u, this reader reads up to %u)",
             (unsigned)version, HS_FILE_VERSION);
        c->err = ENOTSUP;
        return -1;
    }
    size_t pos = HS_FILE_HEADER_LEN;
    for (;;) {
        if (pos == len)
            return fail(c, "truncated at byte %zu (the end section is missing)", len);
        if (len - pos < HS_SECTION_HEADER_LEN)
            return fail(c, "truncated at byte %zu (section header needs %zu more)", len,
                        HS_SECTION_HEADER_LEN - (len - pos));
        const unsigned char *h = buf + pos;
        uint32_t type = hs_get_le32(h);
        uint64_t plen = hs_get_le64(h + 4);
        size_t avail = len - pos - HS_SECTION_HEADER_LEN;
        if (plen > avail)
            return fail(c, "truncated at byte %zu (section %s needs %llu more)", len,
                        sec_name(type, nb), (unsigned long long)(plen - avail));
        const unsigned char *payload = h + HS_SECTION_HEADER_LEN;
        if (hs_crc32(hs_crc32(0, h, 12), payload, (size_t)plen) != hs_get_le32(h + 12))
            return fail(c, "corrupt section %s (checksum mismatch)", sec_name(type, nb));
        pos += HS_SECTION_HEADER_LEN + (size_t)plen;
        if (type == HS_SEC_END) {
            if (pos != len)
                return fail(c, "corrupt: %zu bytes after the end section", len - pos);
            break;
        }
        for (int i = 0; i < SEC_NKNOWN; i++) {
            if (sec_info[i].type != type)
                continue;
            if (secs[i].present)
                return fail(c, "corrupt: section %s appears twice", sec_info[i].name);
            secs[i] = (cur){ payload, payload + plen, sec_info[i].name, 1 };
        }
    }
    for (int i = 0; i < SEC_NKNOWN; i++)
        if (!secs[i].present)
            return fail(c, "corrupt: section %s is missing", sec_info[i].name);
    return 0;
}

/* ---- reading numbers ------------------------------------------------------------------------ */

#define NO_INDEX SIZE_MAX

/* "corrupt section 'x' (<what> <idx> <problem>)"; idx NO_INDEX leaves the number out. */
static int bad_record(ld *c, const cur *r, const char *what, size_t idx, const char *problem)
{
    char ib[32] = "";
    if (idx != NO_INDEX)
        snprintf(ib, sizeof(ib), " %zu", idx);
    return fail(c, "corrupt section %s (%s%s %s)", r->sec, what, ib, problem);
}

/* Reads one varint of the record "<what> <idx>". */
static int get(ld *c, cur *r, uint64_t *v, const char *what, size_t idx)
{
    int e = hs_varint_get(&r->p, r->end, v);
    if (e == 0)
        return 0;
    return bad_record(c, r, what, idx,
                      e == -1 ? "is cut short" : "holds a number wider than 64 bits");
}

/* A varint that must be at most max, the largest value of the C type it goes into. */
static int get_max(ld *c, cur *r, uint64_t *v, uint64_t max, const char *what, size_t idx,
                   const char *field)
{
    if (get(c, r, v, what, idx) < 0)
        return -1;
    if (*v > max)
        return fail(c, "corrupt: %s %zu has %s %llu, above the largest %llu", what, idx, field,
                    (unsigned long long)*v, (unsigned long long)max);
    return 0;
}

/* A record count: at most the bytes left divided by the smallest record's size. */
static int get_count(ld *c, cur *r, size_t *n, size_t min_record, const char *what)
{
    uint64_t v;
    if (get(c, r, &v, "the count", NO_INDEX) < 0)
        return -1;
    if (v > left(r) / min_record)
        return fail(c, "corrupt: section %s counts %llu %s in %zu bytes", r->sec,
                    (unsigned long long)v, what, left(r));
    *n = (size_t)v;
    return 0;
}

/* A string: varint length and bytes, interned into st, or only skipped when st is NULL.  NUL
 * bytes are refused: the store keeps C strings. */
static int get_str(ld *c, cur *r, hs_store *st, const char **out, const char *what, size_t idx)
{
    uint64_t n;
    if (get(c, r, &n, what, idx) < 0)
        return -1;
    if (n > left(r))
        return bad_record(c, r, what, idx, "is cut short");
    if (st == NULL) {
        r->p += n;
        return 0;
    }
    if (memchr(r->p, 0, (size_t)n) != NULL)
        return bad_record(c, r, what, idx, "contains a NUL byte");
    *out = hs_store_strn(st, (const char *)r->p, (size_t)n);
    if (*out == NULL)
        return fail_sys(c, -ENOMEM);
    r->p += n;
    return 0;
}

static int expect_end(ld *c, const cur *r)
{
    if (r->p != r->end)
        return fail(c, "corrupt: section %s has %zu bytes after its last record", r->sec, left(r));
    return 0;
}

/* ---- the sections' contents ----------------------------------------------------------------- */

/* META: creates the snapshot (its traceback limit comes first) and sets its metadata.  Bytes after
 * the fields known here are fields of a newer writer: ignored. */
static hs_snapshot *read_meta(ld *c, cur *r)
{
    static const char *const names[6] = { "traced_current", "traced_peak", "tracer_memory",
                                          "lost_blocks", "lost_bytes", "unknown_frees" };
    hs_snapshot_meta m = { 0 };
    const char **argv = NULL;
    uint64_t limit, v, n[6], flags;
    if (get_str(c, r, NULL, NULL, "the writer's name", NO_INDEX) < 0 ||
        get(c, r, &limit, "the traceback limit", NO_INDEX) < 0)
        return NULL;
    if (limit < 1 || limit > HS_MAX_FRAMES) {
        fail(c, "corrupt: traceback limit %llu is outside [1, %d]", (unsigned long long)limit,
             HS_MAX_FRAMES);
        return NULL;
    }
    hs_snapshot *s = hs_snapshot_new((int)limit);
    if (s == NULL) {
        fail_sys(c, -ENOMEM);
        return NULL;
    }
    if (left(r) < 16) {
        bad_record(c, r, "the times", NO_INDEX, "are cut short");
        goto bad;
    }
    uint64_t t0 = hs_get_le64(r->p), t1 = hs_get_le64(r->p + 8);
    memcpy(&m.timestamp, &t0, sizeof(t0));
    memcpy(&m.elapsed, &t1, sizeof(t1));
    r->p += 16;
    if (get(c, r, &v, "the pid", NO_INDEX) < 0)
        goto bad;
    m.pid = hs_unzigzag(v);
    if (get(c, r, &v, "the parent pid", NO_INDEX) < 0)
        goto bad;
    m.ppid = hs_unzigzag(v);
    if (get_str(c, r, s->store, &m.program, "the program", NO_INDEX) < 0 ||
        get_count(c, r, &m.argc, 1, "arguments") < 0)
        goto bad;
    if ((argv = hs_malloc((m.argc ? m.argc : 1) * sizeof(*argv))) == NULL) {
        fail_sys(c, -ENOMEM);
        goto bad;
    }
    m.argv = argv;
    for (size_t i = 0; i < m.argc; i++)
        if (get_str(c, r, s->store, &argv[i], "argument", i) < 0)
            goto bad;
    if (get_str(c, r, s->store, &m.kind, "the kind", NO_INDEX) < 0)
        goto bad;
    for (int i = 0; i < 6; i++)
        if (get(c, r, &n[i], names[i], NO_INDEX) < 0)
            goto bad;
#if SIZE_MAX < UINT64_MAX
    for (int i = 0; i < 3; i++)
        if (n[i] > SIZE_MAX) {
            fail(c, "corrupt: %s %llu does not fit in size_t", names[i], (unsigned long long)n[i]);
            goto bad;
        }
#endif
    if (get(c, r, &flags, "the flags", NO_INDEX) < 0)
        goto bad;
    m.traced_current = (size_t)n[0];
    m.traced_peak = (size_t)n[1];
    m.tracer_memory = (size_t)n[2];
    m.lost_blocks = n[3];
    m.lost_bytes = n[4];
    m.unknown_frees = n[5];
    m.tracer_oom = (flags & HS_META_TRACER_OOM) != 0;
    m.trimmed = (flags & HS_META_TRIMMED) != 0;
    if (hs_snapshot_set_meta(s, &m) < 0) {
        fail_sys(c, -ENOMEM);
        goto bad;
    }
    hs_free(argv);
    return s;
bad:
    hs_free(argv);
    hs_snapshot_free(s);
    return NULL;
}

/* The loader's tables, by file index. */
typedef struct tables {
    const char **strs;
    size_t nstrs;
    hs_frame *frames;
    hs_frame_loc *locs;     /* build_id NULL: the frame has no location */
    size_t nframes;
    const hs_tb **tbs;
    size_t ntbs;
} tables;

static int read_strings(ld *c, cur *r, hs_store *st, tables *t)
{
    if (get_count(c, r, &t->nstrs, 1, "strings") < 0)
        return -1;
    t->strs = hs_malloc((t->nstrs ? t->nstrs : 1) * sizeof(*t->strs));
    if (t->strs == NULL)
        return fail_sys(c, -ENOMEM);
    for (size_t i = 0; i < t->nstrs; i++)
        if (get_str(c, r, st, &t->strs[i], "string", i) < 0)
            return -1;
    return expect_end(c, r);
}

/* A string index of frame i. */
static int get_sidx(ld *c, cur *r, const tables *t, size_t i, const char **out)
{
    uint64_t v;
    if (get(c, r, &v, "frame", i) < 0)
        return -1;
    if (v >= t->nstrs)
        return fail(c, "corrupt: frame %zu refers to string %llu of %zu", i,
                    (unsigned long long)v, t->nstrs);
    *out = t->strs[v];
    return 0;
}

static int read_frames(ld *c, cur *r, tables *t)
{
    /* filename, lineno, function, object, address, build-id: at least 6 bytes a frame */
    if (get_count(c, r, &t->nframes, 6, "frames") < 0)
        return -1;
    size_t n = t->nframes ? t->nframes : 1;
    t->frames = hs_malloc(n * sizeof(*t->frames));
    t->locs = hs_malloc(n * sizeof(*t->locs));
    if (t->frames == NULL || t->locs == NULL)
        return fail_sys(c, -ENOMEM);
    for (size_t i = 0; i < t->nframes; i++) {
        hs_frame *f = &t->frames[i];
        hs_frame_loc *l = &t->locs[i];
        uint64_t line, addr, bid;
        if (get_sidx(c, r, t, i, &f->filename) < 0 ||
            get_max(c, r, &line, UINT_MAX, "frame", i, "line") < 0 ||
            get_sidx(c, r, t, i, &f->function) < 0 || get_sidx(c, r, t, i, &f->object) < 0 ||
            get_max(c, r, &addr, UINTPTR_MAX, "frame", i, "address") < 0 ||
            get(c, r, &bid, "frame", i) < 0)
            return -1;
        f->lineno = (unsigned int)line;
        f->address = (uintptr_t)addr;
        l->build_id = NULL;
        l->offset = 0;
        if (bid != 0) {
            if (bid - 1 >= t->nstrs)
                return fail(c, "corrupt: frame %zu refers to string %llu of %zu", i,
                            (unsigned long long)(bid - 1), t->nstrs);
            l->build_id = t->strs[bid - 1];
            if (get(c, r, &l->offset, "frame", i) < 0)
                return -1;
        }
    }
    return expect_end(c, r);
}

static int read_tracebacks(ld *c, cur *r, hs_store *st, tables *t)
{
    if (get_count(c, r, &t->ntbs, 2, "tracebacks") < 0)
        return -1;
    t->tbs = hs_malloc((t->ntbs ? t->ntbs : 1) * sizeof(*t->tbs));
    if (t->tbs == NULL)
        return fail_sys(c, -ENOMEM);
    hs_frame *f = NULL;
    hs_frame_loc *l = NULL;
    size_t cap = 0;
    int rc = -1;
    for (size_t i = 0; i < t->ntbs; i++) {
        uint64_t nf, extra, idx;
        if (get(c, r, &nf, "traceback", i) < 0 || get(c, r, &extra, "traceback", i) < 0)
            goto out;
        if (nf > left(r)) {
            fail(c, "corrupt: traceback %zu counts %llu frames in %zu bytes", i,
                 (unsigned long long)nf, left(r));
            goto out;
        }
        if (extra > SIZE_MAX - nf) {
            fail(c, "corrupt: traceback %zu has total_nframe above the largest %zu", i,
                 (size_t)SIZE_MAX);
            goto out;
        }
        if (nf > cap) {
            size_t ncap = cap ? cap : 64;
            while (ncap < nf)
                ncap *= 2;
            hs_free(f);
            hs_free(l);
            f = hs_malloc(ncap * sizeof(*f));
            l = hs_malloc(ncap * sizeof(*l));
            cap = f && l ? ncap : 0;
            if (cap == 0) {
                fail_sys(c, -ENOMEM);
                goto out;
            }
        }
        size_t with_loc = 0;
        for (size_t k = 0; k < nf; k++) {
            if (get(c, r, &idx, "traceback", i) < 0)
                goto out;
            if (idx >= t->nframes) {
                fail(c, "corrupt: traceback %zu refers to frame %llu of %zu", i,
                     (unsigned long long)idx, t->nframes);
                goto out;
            }
            f[k] = t->frames[idx];
            l[k] = t->locs[idx];
            with_loc += l[k].build_id != NULL;
        }
        if (with_loc != 0 && with_loc != nf) {
            fail(c, "corrupt: traceback %zu mixes frames with and without a build-id", i);
            goto out;
        }
        t->tbs[i] = hs_store_tb(st, f, with_loc ? l : NULL, (size_t)nf, (size_t)(nf + extra));
        if (t->tbs[i] == NULL) {
            fail_sys(c, -ENOMEM);
            goto out;
        }
    }
    rc = expect_end(c, r);
out:
    hs_free(f);
    hs_free(l);
    return rc;
}

static int read_traces(ld *c, cur *r, hs_snapshot *s, const tables *t)
{
    size_t n;
    if (get_count(c, r, &n, 2, "traces") < 0)   /* traceback and size: 2 bytes at least */
        return -1;
    if (hs_snapshot_reserve(s, n) < 0)
        return fail_sys(c, -ENOMEM);
    for (size_t i = 0; i < n; i++) {
        uint64_t tb, dom = 0, size;
        /* the common case inline; get() again only to report a failure */
        if (hs_varint_get(&r->p, r->end, &tb) < 0)
            return get(c, r, &tb, "trace", i);
        if ((tb & 1) && get_max(c, r, &dom, UINT_MAX, "trace", i, "domain") < 0)
            return -1;
        if (hs_varint_get(&r->p, r->end, &size) < 0)
            return get(c, r, &size, "trace", i);
#if SIZE_MAX < UINT64_MAX
        if (size > SIZE_MAX)
            return fail(c, "corrupt: trace %zu has size %llu, above the largest %zu", i,
                        (unsigned long long)size, (size_t)SIZE_MAX);
#endif
        tb >>= 1;
        if (tb >= t->ntbs)
            return fail(c, "corrupt: trace %zu refers to traceback %llu of %zu", i,
                        (unsigned long long)tb, t->ntbs);
        if (hs_snapshot_push(s, (unsigned int)dom, (size_t)size, t->tbs[tb]) < 0)
            return fail_sys(c, -ENOMEM);
    }
    return expect_end(c, r);
}

hs_snapshot *hs_snapshot_load_mem(const void *buf, size_t len, const char *name, char *errbuf,
                                  size_t errlen)
{
    ld c = { name ? name : "<memory>", errbuf, errlen, 0 };
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    cur secs[SEC_NKNOWN] = { { 0 } };
    tables t = { 0 };
    hs_snapshot *s = NULL;
    if (buf == NULL && len > 0) {
        fail(&c, "no data");
        goto out;
    }
    if (scan(&c, buf, len, secs) < 0 || (s = read_meta(&c, &secs[SEC_META])) == NULL ||
        read_strings(&c, &secs[SEC_STRINGS], s->store, &t) < 0 ||
        read_frames(&c, &secs[SEC_FRAMES], &t) < 0 ||
        read_tracebacks(&c, &secs[SEC_TRACEBACKS], s->store, &t) < 0 ||
        read_traces(&c, &secs[SEC_TRACES], s, &t) < 0) {
        hs_snapshot_free(s);
        s = NULL;
    }
out:
    hs_free(t.strs);
    hs_free(t.frames);
    hs_free(t.locs);
    hs_free(t.tbs);
    if (s == NULL)
        errno = c.err ? c.err : EINVAL;
    return s;
}

/* ---- the file ------------------------------------------------------------------------------- */

/* Reads all of fd into a new buffer (hs_free it).  0 or a negative errno. */
static int read_all(int fd, size_t hint, unsigned char **out, size_t *outlen)
{
    size_t cap = hint + 1 > 4096 ? hint + 1 : 4096, len = 0;
    unsigned char *buf = hs_malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    for (;;) {
        if (len == cap) {
            unsigned char *nb = cap <= SIZE_MAX / 2 ? hs_realloc(buf, cap * 2) : NULL;
            if (nb == NULL) {
                hs_free(buf);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = -errno;
            hs_free(buf);
            return err;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

hs_snapshot *hs_snapshot_load(const char *path, char *errbuf, size_t errlen)
{
    ld c = { path ? path : "(null)", errbuf, errlen, 0 };
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (path == NULL) {
        fail_sys(&c, -EINVAL);
        errno = EINVAL;
        return NULL;
    }
    int fd;
    while ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (fd < 0) {
        fail_sys(&c, -errno);
        errno = c.err;
        return NULL;
    }
    struct stat st;
    int err = fstat(fd, &st) < 0 ? -errno : 0;
    if (err == 0 && S_ISDIR(st.st_mode))
        err = -EISDIR;
    unsigned char *buf = NULL;
    size_t len = 0;
    if (err == 0)
        err = read_all(fd, S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size : 0, &buf,
                       &len);
    close(fd);
    if (err < 0) {
        fail_sys(&c, err);
        errno = -err;
        return NULL;
    }
    hs_snapshot *s = hs_snapshot_load_mem(buf, len, path, errbuf, errlen);
    int saved = errno;
    hs_free(buf);
    errno = saved;
    return s;
}
