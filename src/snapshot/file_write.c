/*
 * file_write.c - hs_snapshot_dump: encode a snapshot as docs/FORMAT.md describes and put it under
 * its final name atomically (temporary file in the same directory, fsync, rename).
 *
 * This runs inside the traced process, on a thread whose tracer reentrancy guard is set, so:
 * memory only through hs_malloc and friends, a handful of arrays per dump and nothing per trace;
 * every failure is a negative errno for the caller and never ends the process (not even the
 * SIGXFSZ a file size limit raises).  The whole file is encoded into one buffer, then written
 * with a loop that resumes after EINTR and short writes: one write call for most snapshots.
 */
#include "format.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The tracer's (hooks.c), when this code runs inside a traced process; absent elsewhere. */
HS_HIDDEN int hs_fd_high(int fd) __attribute__((weak));

/* ---- growable output buffer ------------------------------------------------------------------
 * Errors are sticky: after a failed growth every put is a no-op and err says why, so encoders
 * check once per section instead of after every number. */

typedef struct wbuf {
    unsigned char *p;
    size_t len, cap;
    int err;
} wbuf;

/* Room for n more bytes; 0, or -ENOMEM (also recorded in b->err). */
static int wb_reserve(wbuf *b, size_t n)
{
    if (b->err)
        return b->err;
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            return b->err = -ENOMEM;
        cap *= 2;
    }
    unsigned char *p = hs_realloc(b->p, cap);
    if (p == NULL)
        return b->err = -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static void put_varint(wbuf *b, uint64_t v)
{
    if (wb_reserve(b, HS_VARINT_MAX) == 0)
        b->len += hs_varint_put(b->p + b->len, v);
}

static void put_bytes(wbuf *b, const void *p, size_t n)
{
    if (wb_reserve(b, n) == 0 && n > 0) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
    }
}

/* A string: varint byte length, then the bytes (no NUL).  NULL is written as "". */
static void put_str(wbuf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    put_varint(b, n);
    put_bytes(b, s, n);
}

/* IEEE 754 binary64, little-endian. */
static void put_f64(wbuf *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    if (wb_reserve(b, 8) == 0) {
        hs_put_le64(b->p + b->len, u);
        b->len += 8;
    }
}

/* Starts a section: leaves room for its header and returns where it starts. */
static size_t sec_begin(wbuf *b)
{
    size_t off = b->len;
    if (wb_reserve(b, HS_SECTION_HEADER_LEN) == 0)
        b->len += HS_SECTION_HEADER_LEN;
    return off;
}

/* Ends the section started at off: fills in type, payload length and the CRC over both and the
 * payload. */
static void sec_end(wbuf *b, size_t off, uint32_t type)
{
    if (b->err)
        return;
    unsigned char *h = b->p + off;
    size_t plen = b->len - off - HS_SECTION_HEADER_LEN;
    hs_put_le32(h, type);
    hs_put_le64(h + 4, plen);
    uint32_t crc = hs_crc32(hs_crc32(0, h, 12), h + HS_SECTION_HEADER_LEN, plen);
    hs_put_le32(h + 12, crc);
}

/* ---- tables: distinct tracebacks, frames and strings, numbered by first use -------------------
 * One open-addressing index (slots of entry number + 1 and a 32-bit hash, load <= 1/2) per
 * table; the entries themselves live in plain arrays. */

typedef struct slot {
    uint32_t idx1;          /* entry index + 1; 0: empty */
    uint32_t hash;
} slot;

typedef struct index_t {
    slot *s;
    size_t cap;             /* 0 or a power of two */
} index_t;

typedef int (*eq_fn)(const void *ctx, uint32_t i, const void *key);

/* Makes room for an index holding n entries to take one more.  0 or -ENOMEM. */
static int index_room(index_t *ix, size_t n)
{
    if ((n + 1) * 2 <= ix->cap)
        return 0;
    size_t cap = ix->cap ? ix->cap * 2 : 1024;
    slot *s = hs_calloc(cap, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < ix->cap; i++) {
        if (ix->s[i].idx1 == 0)
            continue;
        size_t j = ix->s[i].hash & (cap - 1);
        while (s[j].idx1 != 0)
            j = (j + 1) & (cap - 1);
        s[j] = ix->s[i];
    }
    hs_free(ix->s);
    ix->s = s;
    ix->cap = cap;
    return 0;
}

/* The slot holding an entry equal to key, or the empty slot where it belongs.  The index has room
 * (index_room) so an empty slot exists. */
static slot *index_find(const index_t *ix, uint32_t h, eq_fn eq, const void *ctx, const void *key)
{
    size_t mask = ix->cap - 1;
    for (size_t j = h & mask;; j = (j + 1) & mask) {
        slot *sl = &ix->s[j];
        if (sl->idx1 == 0 || (sl->hash == h && eq(ctx, sl->idx1 - 1, key)))
            return sl;
    }
}

/* Grows the array *p of *cap elements of size sz so that it holds n + 1.  0, -ENOMEM, or
 * -EOVERFLOW past 2^32 - 2 entries (indexes are u32 with one value kept for "none"). */
static int grow(void **p, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap)
        return 0;
    if (n >= UINT32_MAX - 1)
        return -EOVERFLOW;
    size_t c = *cap ? *cap * 2 : 256;
    void *q = hs_realloc(*p, c * sz);
    if (q == NULL)
        return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

typedef struct str_ent {
    const char *p;
    size_t len;
} str_ent;

typedef struct frame_ent {
    uint32_t filename, function, object;
    uint32_t build_id;      /* 0: no location; else string index + 1 */
    uint32_t lineno;
    uint64_t address, offset;
} frame_ent;

typedef struct enc {
    const hs_tb **tbs;      /* distinct tracebacks, by file index */
    size_t ntbs, tbs_cap;
    index_t tbix;
    str_ent *strs;          /* the string table, by content */
    size_t nstrs, strs_cap;
    index_t strix;
    const char **ptrs;      /* strings seen, by address: a cache in front of strix */
    uint32_t *ptr_idx;      /* string index of ptrs[i] */
    size_t nptrs, ptrs_cap, ptr_idx_cap;
    index_t ptrix;
    frame_ent *frames;
    size_t nframes, frames_cap;
    index_t frix;
    uint32_t *tbfr;         /* frame indexes of every distinct traceback, concatenated */
    size_t ntbfr, tbfr_cap;
} enc;

static void enc_free(enc *e)
{
    hs_free(e->tbs);
    hs_free(e->tbix.s);
    hs_free(e->strs);
    hs_free(e->strix.s);
    hs_free(e->ptrs);
    hs_free(e->ptr_idx);
    hs_free(e->ptrix.s);
    hs_free(e->frames);
    hs_free(e->frix.s);
    hs_free(e->tbfr);
}

static int tb_eq(const void *ctx, uint32_t i, const void *key)
{
    return ((const enc *)ctx)->tbs[i] == key;
}

static uint32_t tb_hash(const hs_tb *tb) { return (uint32_t)hs_mix64((uintptr_t)tb); }

/* File index of traceback tb, numbering it if new.  0 or a negative errno. */
static int tb_number(enc *e, const hs_tb *tb, uint32_t *out)
{
    uint32_t h = tb_hash(tb);
    int err = index_room(&e->tbix, e->ntbs);
    if (err < 0)
        return err;
    slot *sl = index_find(&e->tbix, h, tb_eq, e, tb);
    if (sl->idx1 == 0) {
        if ((err = grow((void **)&e->tbs, &e->tbs_cap, e->ntbs, sizeof(*e->tbs))) < 0)
            return err;
        e->tbs[e->ntbs++] = tb;
        sl->idx1 = (uint32_t)e->ntbs;
        sl->hash = h;
    }
    *out = sl->idx1 - 1;
    return 0;
}

/* File index of a traceback already numbered by tb_number. */
static uint32_t tb_lookup(const enc *e, const hs_tb *tb)
{
    return index_find(&e->tbix, tb_hash(tb), tb_eq, e, tb)->idx1 - 1;
}

static int str_eq(const void *ctx, uint32_t i, const void *key)
{
    const str_ent *a = &((const enc *)ctx)->strs[i], *b = key;
    return a->len == b->len && memcmp(a->p, b->p, b->len) == 0;
}

/* String-table index of s, by content.  0 or a negative errno. */
static int str_number_content(enc *e, const char *s, uint32_t *out)
{
    str_ent k = { s, strlen(s) };
    uint32_t h = (uint32_t)hs_hash_bytes(k.p, k.len, 0);
    int err = index_room(&e->strix, e->nstrs);
    if (err < 0)
        return err;
    slot *sl = index_find(&e->strix, h, str_eq, e, &k);
    if (sl->idx1 == 0) {
        if ((err = grow((void **)&e->strs, &e->strs_cap, e->nstrs, sizeof(*e->strs))) < 0)
            return err;
        e->strs[e->nstrs++] = k;
        sl->idx1 = (uint32_t)e->nstrs;
        sl->hash = h;
    }
    *out = sl->idx1 - 1;
    return 0;
}

static int ptr_eq(const void *ctx, uint32_t i, const void *key)
{
    return ((const enc *)ctx)->ptrs[i] == key;
}

/* String-table index of s (NULL: "").  Strings of one store are interned, so most frames repeat
 * a few addresses: those are looked up by address, and only new addresses are hashed by content
 * (byte-wise hashing of every frame's strings was the writer's largest cost).  0 or a negative
 * errno. */
static int str_number(enc *e, const char *s, uint32_t *out)
{
    if (s == NULL)
        s = "";
    uint32_t h = (uint32_t)hs_mix64((uintptr_t)s);
    int err = index_room(&e->ptrix, e->nptrs);
    if (err < 0)
        return err;
    slot *sl = index_find(&e->ptrix, h, ptr_eq, e, s);
    if (sl->idx1 != 0) {
        *out = e->ptr_idx[sl->idx1 - 1];
        return 0;
    }
    if ((err = str_number_content(e, s, out)) < 0 ||
        (err = grow((void **)&e->ptrs, &e->ptrs_cap, e->nptrs, sizeof(*e->ptrs))) < 0 ||
        (err = grow((void **)&e->ptr_idx, &e->ptr_idx_cap, e->nptrs, sizeof(*e->ptr_idx))) < 0)
        return err;
    e->ptrs[e->nptrs] = s;
    e->ptr_idx[e->nptrs++] = *out;
    sl->idx1 = (uint32_t)e->nptrs;
    sl->hash = h;
    return 0;
}

static int frame_eq(const void *ctx, uint32_t i, const void *key)
{
    const frame_ent *a = &((const enc *)ctx)->frames[i], *b = key;
    return a->filename == b->filename && a->function == b->function && a->object == b->object &&
           a->build_id == b->build_id && a->lineno == b->lineno && a->address == b->address &&
           a->offset == b->offset;
}

static uint32_t frame_hash(const frame_ent *f)
{
    uint64_t h = hs_mix64(f->filename ^ (uint64_t)f->lineno << 32);
    h = hs_mix64(h ^ f->function ^ (uint64_t)f->object << 32);
    h = hs_mix64(h ^ f->address);
    h = hs_mix64(h ^ f->build_id ^ f->offset);
    return (uint32_t)h;
}

/* Frame-table index of frame i of tb, numbering its strings and itself if new. */
static int frame_number(enc *e, const hs_tb *tb, size_t i, uint32_t *out)
{
    const hs_frame *f = &tb->pub.frames[i];
    frame_ent k = { .lineno = f->lineno, .address = f->address };
    int err;
    if ((err = str_number(e, f->filename ? f->filename : "<unknown>", &k.filename)) < 0 ||
        (err = str_number(e, f->function, &k.function)) < 0 ||
        (err = str_number(e, f->object, &k.object)) < 0)
        return err;
    if (tb->loc != NULL) {
        if ((err = str_number(e, tb->loc[i].build_id, &k.build_id)) < 0)
            return err;
        k.build_id++;
        k.offset = tb->loc[i].offset;
    }
    uint32_t h = frame_hash(&k);
    if ((err = index_room(&e->frix, e->nframes)) < 0)
        return err;
    slot *sl = index_find(&e->frix, h, frame_eq, e, &k);
    if (sl->idx1 == 0) {
        if ((err = grow((void **)&e->frames, &e->frames_cap, e->nframes, sizeof(*e->frames))) < 0)
            return err;
        e->frames[e->nframes++] = k;
        sl->idx1 = (uint32_t)e->nframes;
        sl->hash = h;
    }
    *out = sl->idx1 - 1;
    return 0;
}

/* Numbers every traceback the traces use, then every frame and string those use. */
static int build_tables(enc *e, const hs_snapshot *s)
{
    int err;
    uint32_t idx;
    for (size_t i = 0; i < s->ntraces; i++) {
        if (s->traces[i].tb == NULL)
            return -EINVAL;
        if ((err = tb_number(e, s->traces[i].tb, &idx)) < 0)
            return err;
    }
    for (size_t t = 0; t < e->ntbs; t++) {
        const hs_tb *tb = e->tbs[t];
        for (size_t i = 0; i < tb->pub.nframes; i++) {
            if ((err = frame_number(e, tb, i, &idx)) < 0)
                return err;
            if ((err = grow((void **)&e->tbfr, &e->tbfr_cap, e->ntbfr, sizeof(*e->tbfr))) < 0)
                return err;
            e->tbfr[e->ntbfr++] = idx;
        }
    }
    return 0;
}

/* ---- sections ------------------------------------------------------------------------------- */

static void write_meta(wbuf *b, const hs_snapshot *s)
{
    const hs_snapshot_meta *m = &s->meta;
    size_t off = sec_begin(b);
    put_str(b, "heapsnap " HEAPSNAP_VERSION_STRING);
    put_varint(b, (uint64_t)s->traceback_limit);
    put_f64(b, m->timestamp);
    put_f64(b, m->elapsed);
    put_varint(b, hs_zigzag(m->pid));
    put_varint(b, hs_zigzag(m->ppid));
    put_str(b, m->program);
    put_varint(b, m->argc);
    for (size_t i = 0; i < m->argc; i++)
        put_str(b, m->argv ? m->argv[i] : "");
    put_str(b, m->kind);
    put_varint(b, m->traced_current);
    put_varint(b, m->traced_peak);
    put_varint(b, m->tracer_memory);
    put_varint(b, m->lost_blocks);
    put_varint(b, m->lost_bytes);
    put_varint(b, m->unknown_frees);
    put_varint(b, (m->tracer_oom ? HS_META_TRACER_OOM : 0) | (m->trimmed ? HS_META_TRIMMED : 0));
    sec_end(b, off, HS_SEC_META);
}

static void write_tables(wbuf *b, const enc *e)
{
    size_t off = sec_begin(b);
    put_varint(b, e->nstrs);
    for (size_t i = 0; i < e->nstrs; i++) {
        put_varint(b, e->strs[i].len);
        put_bytes(b, e->strs[i].p, e->strs[i].len);
    }
    sec_end(b, off, HS_SEC_STRINGS);

    off = sec_begin(b);
    put_varint(b, e->nframes);
    for (size_t i = 0; i < e->nframes; i++) {
        const frame_ent *f = &e->frames[i];
        put_varint(b, f->filename);
        put_varint(b, f->lineno);
        put_varint(b, f->function);
        put_varint(b, f->object);
        put_varint(b, f->address);
        put_varint(b, f->build_id);
        if (f->build_id != 0)
            put_varint(b, f->offset);
    }
    sec_end(b, off, HS_SEC_FRAMES);

    off = sec_begin(b);
    put_varint(b, e->ntbs);
    const uint32_t *fr = e->tbfr;
    for (size_t t = 0; t < e->ntbs; t++) {
        const hs_traceback *tb = &e->tbs[t]->pub;
        put_varint(b, tb->nframes);
        put_varint(b, tb->total_nframe > tb->nframes ? tb->total_nframe - tb->nframes : 0);
        for (size_t i = 0; i < tb->nframes; i++)
            put_varint(b, *fr++);
    }
    sec_end(b, off, HS_SEC_TRACEBACKS);
}

/* Traces: (traceback << 1 | domain != 0), [domain], size.  The hot loop: one reservation per
 * trace, then unchecked stores. */
static void write_traces(wbuf *b, const enc *e, const hs_snapshot *s)
{
    size_t off = sec_begin(b);
    put_varint(b, s->ntraces);
    for (size_t i = 0; i < s->ntraces && !b->err; i++) {
        const hs_trace_rec *t = &s->traces[i];
        if (wb_reserve(b, 3 * HS_VARINT_MAX) < 0)
            break;
        unsigned char *p = b->p + b->len;
        uint64_t tb = tb_lookup(e, t->tb);
        p += hs_varint_put(p, tb << 1 | (t->domain != 0));
        if (t->domain != 0)
            p += hs_varint_put(p, t->domain);
        p += hs_varint_put(p, t->size);
        b->len = (size_t)(p - b->p);
    }
    sec_end(b, off, HS_SEC_TRACES);
}

int hs_snapshot_encode(const hs_snapshot *s, unsigned char **buf, size_t *len)
{
    if (s == NULL || buf == NULL || len == NULL)
        return -EINVAL;
    enc e = { 0 };
    wbuf b = { 0 };
    int err = build_tables(&e, s);
    if (err == 0) {
        unsigned char hdr[HS_FILE_HEADER_LEN];
        memcpy(hdr, HS_FILE_MAGIC, HS_FILE_MAGIC_LEN);
        hs_put_le32(hdr + HS_FILE_MAGIC_LEN, HS_FILE_VERSION);
        put_bytes(&b, hdr, sizeof(hdr));
        write_meta(&b, s);
        write_tables(&b, &e);
        write_traces(&b, &e, s);
        sec_end(&b, sec_begin(&b), HS_SEC_END);
        err = b.err;
    }
    enc_free(&e);
    if (err < 0) {
        hs_free(b.p);
        return err;
    }
    *buf = b.p;
    *len = b.len;
    return 0;
}

/* ---- the file ------------------------------------------------------------------------------- */

/* fsync before rename: without it a system crash soon after the rename can leave the final name
 * pointing at an empty or partly written file on ext4 and xfs, which SPEC section 6 forbids.  It
 * costs a few milliseconds per megabyte (docs/FORMAT.md).  The directory is not synced: after a
 * crash the rename may be lost and the previous snapshot stands, which the contract allows. */
#define HS_DUMP_FSYNC 1

static unsigned long tmp_counter;   /* atomic; distinguishes temporaries of one process */

/* Writes all n bytes, resuming after EINTR and short writes.  0 or a negative errno. */
static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        size_t chunk = n < ((size_t)1 << 30) ? n : ((size_t)1 << 30);
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_retry(int fd)
{
    while (fsync(fd) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

/* Writes data to the open temporary fd with SIGXFSZ blocked on this thread: beyond
 * RLIMIT_FSIZE the kernel raises SIGXFSZ, whose default action would kill the traced program.
 * When our write fails with EFBIG, the signal it left pending is consumed (unless one was
 * already pending or blocked before we started: that one belongs to the program). */
static int write_file(int fd, const unsigned char *data, size_t len)
{
    sigset_t xfsz, old, pend;
    sigemptyset(&xfsz);
    sigaddset(&xfsz, SIGXFSZ);
    int masked = pthread_sigmask(SIG_BLOCK, &xfsz, &old) == 0;
    int ours = masked && !sigismember(&old, SIGXFSZ) && sigpending(&pend) == 0 &&
               !sigismember(&pend, SIGXFSZ);
    int err = write_all(fd, data, len);
    if (err == 0 && HS_DUMP_FSYNC)
        err = fsync_retry(fd);
    if (err == -EFBIG && ours && sigpending(&pend) == 0 && sigismember(&pend, SIGXFSZ)) {
        struct timespec zero = { 0, 0 };
        while (sigtimedwait(&xfsz, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    if (masked)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

/* Puts data under path atomically: a new temporary ".<base>.tmp.<pid>.<n>" next to it, created
 * exclusively (never through a symlink), mode 0600 less the umask, written, synced, closed and
 * renamed over path.  Any failure unlinks the temporary and leaves path as it was. */
static int replace_file(const char *path, const unsigned char *data, size_t len)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dirlen = (size_t)(base - path);
    size_t baselen = strlen(base);
    if (baselen > 200)      /* keep the temporary's name within NAME_MAX */
        baselen = 200;
    size_t cap = dirlen + baselen + 64;
    char *tmp = hs_malloc(cap);
    if (tmp == NULL)
        return -ENOMEM;
    int fd = -1, err = 0;
    for (int attempt = 0; attempt < 64; attempt++) {
        unsigned long n = __atomic_fetch_add(&tmp_counter, 1, __ATOMIC_RELAXED);
        snprintf(tmp, cap, "%.*s.%.*s.tmp.%ld.%lu", (int)dirlen, path, (int)baselen, base,
                 (long)getpid(), n);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 && hs_fd_high != NULL)
            fd = hs_fd_high(fd);             /* inside a traced process: out of its way */
        if (fd >= 0 || (errno != EEXIST && errno != EINTR))
            break;
    }
    if (fd < 0) {
        err = -errno;
        goto out;
    }
    err = write_file(fd, data, len);
    if (close(fd) < 0 && err == 0 && errno != EINTR)
        err = -errno;
    if (err == 0 && rename(tmp, path) < 0)
        err = -errno;
    if (err < 0)
        unlink(tmp);
out:
    hs_free(tmp);
    return err;
}

int hs_snapshot_dump(const hs_snapshot *s, const char *path)
{
    if (s == NULL || path == NULL)
        return -EINVAL;
    if (path[0] == '\0')
        return -ENOENT;
    const char *slash = strrchr(path, '/');
    if (slash != NULL && slash[1] == '\0')
        return -EISDIR;
    unsigned char *buf;
    size_t len;
    int err = hs_snapshot_encode(s, &buf, &len);
    if (err < 0)
        return err;
    err = replace_file(path, buf, len);
    hs_free(buf);
    return err;
}
