/*
 * test_file.c - the snapshot file (SPEC section 6, docs/FORMAT.md): dump -> load round-trips
 * everything; the reader rejects every malformed input (empty, foreign, truncated at each byte,
 * each byte flipped, newer versions, crafted bad indexes and lying counts) with a message naming
 * the file and the problem; the writer is atomic (a failed dump leaves the previous file and no
 * temporary), never writes through symlinks, creates mode 0600, and survives out-of-memory and
 * RLIMIT_FSIZE.
 *
 * Out-of-memory is injected through heapsnap's own allocator: this file defines hs_malloc and
 * friends, which take precedence over the weak ones in src/common/mem.c.
 */
#include "unit.h"
#include "snapshot/format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- allocation failure injection ----------------------------------------------------------- */

#include "oom.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/hs-test-file.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static void rm_rf(const char *path)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", path, path);
    assert_int_equal(system(cmd), 0);
}

static int teardown_dir(void **state)
{
    (void)state;
    rm_rf(tmpdir);
    return 0;
}

static const char *in_dir(const char *name)
{
    static char buf[8][PATH_MAX];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", tmpdir, name);
    return b;
}

/* Number of entries of dir whose name contains ".tmp.": leftover temporaries. */
static int count_temps(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *encode(const hs_snapshot *s, size_t *len)
{
    unsigned char *buf;
    assert_int_equal(hs_snapshot_encode(s, &buf, len), 0);
    return buf;
}

/* Loads bytes that must be rejected; returns the message (static) for the caller to check. */
static const char *reject(const void *p, size_t n)
{
    static char err[512];
    strcpy(err, "(untouched)");
    hs_snapshot *s = hs_snapshot_load_mem(p, n, "snap.hsnap", err, sizeof(err));
    if (s != NULL) {
        hs_snapshot_free(s);
        fail_msg("%zu bytes were accepted", n);
    }
    assert_true(strncmp(err, "snap.hsnap: ", 12) == 0);
    return err;
}

static hs_snapshot *accept(const void *p, size_t n)
{
    char err[512] = "";
    hs_snapshot *s = hs_snapshot_load_mem(p, n, "snap.hsnap", err, sizeof(err));
    if (s == NULL)
        fail_msg("rejected: %s", err);
    return s;
}

static void assert_frames_equal(const hs_tb *a, const hs_tb *b)
{
    assert_int_equal(a->pub.nframes, b->pub.nframes);
    assert_int_equal(a->pub.total_nframe, b->pub.total_nframe);
    assert_int_equal(a->loc == NULL, b->loc == NULL);
    for (size_t i = 0; i < a->pub.nframes; i++) {
        const hs_frame *x = &a->pub.frames[i], *y = &b->pub.frames[i];
        assert_string_equal(x->filename, y->filename);
        assert_int_equal(x->lineno, y->lineno);
        assert_string_equal(x->function, y->function);
        assert_string_equal(x->object, y->object);
        assert_int_equal(x->address, y->address);
        if (a->loc != NULL) {
            assert_string_equal(a->loc[i].build_id, b->loc[i].build_id);
            assert_int_equal(a->loc[i].offset, b->loc[i].offset);
        }
    }
}

/* Everything a file carries is equal: limit, metadata, and each trace in order. */
static void assert_snapshots_equal(const hs_snapshot *a, const hs_snapshot *b)
{
    assert_int_equal(hs_snapshot_traceback_limit(a), hs_snapshot_traceback_limit(b));
    const hs_snapshot_meta *m = hs_snapshot_get_meta(a), *n = hs_snapshot_get_meta(b);
    assert_memory_equal(&m->timestamp, &n->timestamp, sizeof(double));
    assert_memory_equal(&m->elapsed, &n->elapsed, sizeof(double));
    assert_int_equal(m->pid, n->pid);
    assert_int_equal(m->ppid, n->ppid);
    assert_string_equal(m->program, n->program);
    assert_int_equal(m->argc, n->argc);
    for (size_t i = 0; i < m->argc; i++)
        assert_string_equal(m->argv[i], n->argv[i]);
    assert_string_equal(m->kind, n->kind);
    assert_int_equal(m->traced_current, n->traced_current);
    assert_int_equal(m->traced_peak, n->traced_peak);
    assert_int_equal(m->tracer_memory, n->tracer_memory);
    assert_int_equal(m->lost_blocks, n->lost_blocks);
    assert_int_equal(m->lost_bytes, n->lost_bytes);
    assert_int_equal(m->unknown_frees, n->unknown_frees);
    assert_int_equal(!!m->tracer_oom, n->tracer_oom);
    assert_int_equal(!!m->trimmed, n->trimmed);
    assert_int_equal(hs_snapshot_count(a), hs_snapshot_count(b));
    for (size_t i = 0; i < hs_snapshot_count(a); i++) {
        const hs_trace_rec *x = &a->traces[i], *y = &b->traces[i];
        assert_int_equal(x->domain, y->domain);
        assert_int_equal(x->size, y->size);
        assert_frames_equal(x->tb, y->tb);
    }
}

/* Sharing of tracebacks between traces is the same in both (by pointer): the loaded snapshot's
 * tracebacks are interned, so equal tracebacks are one pointer. */
static void assert_sharing_equal(const hs_snapshot *a, const hs_snapshot *b)
{
    size_t n = hs_snapshot_count(a);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n && j < i + 50; j++)
            assert_int_equal(a->traces[i].tb == a->traces[j].tb,
                             b->traces[i].tb == b->traces[j].tb);
}

static const char *const full_argv[] = { "/usr/bin/prog", "--flag=1", "", "ünïcödé arg" };

/* A snapshot with every feature: metadata, several domains, extreme sizes, tracebacks with and
 * without build-ids, total_nframe > nframes, a 0-frame traceback, a long string. */
static hs_snapshot *make_full(void)
{
    hs_snapshot *s = hs_snapshot_new(7);
    assert_non_null(s);
    hs_snapshot_meta m = {
        .timestamp = 1732467300.123456789, .elapsed = -0.0, .pid = 4242, .ppid = -1,
        .program = "/usr/bin/prog", .argc = 4, .argv = full_argv, .kind = "interval",
        .traced_current = SIZE_MAX, .traced_peak = 12345678901ULL, .tracer_memory = 1,
        .lost_blocks = ULLONG_MAX, .lost_bytes = 1ULL << 63, .unknown_frees = 77,
        .tracer_oom = 1, .trimmed = 1,
    };
    assert_int_equal(hs_snapshot_set_meta(s, &m), 0);

    static char longname[100001];
    memset(longname, 'x', sizeof(longname) - 1);
    memcpy(longname, "/src/", 5);

    hs_frame f1[] = {
        { "a.c", 2, "alloc_a", "/usr/lib/liba.so", 0x7f0000001234 },
        { "b.c", 4, "main", "/usr/bin/prog", 0x401000 },
    };
    hs_frame_loc l1[] = { { "0123456789abcdef0123456789abcdef01234567", 0x1234 },
                          { "", UINT64_MAX } };
    hs_frame f2[] = {
        { longname, UINT_MAX, "", "", UINTPTR_MAX },
        { "<unknown>", 0, "", "", 0 },
        { "a.c", 2, "alloc_a", "/usr/lib/liba.so", 0x7f0000001234 },
    };
    hs_store *st = s->store;
    const hs_tb *t1 = hs_store_tb(st, f1, l1, 2, 40);          /* with build-ids */
    const hs_tb *t2 = hs_store_tb(st, f1, NULL, 2, 2);         /* the same frames, no loc */
    const hs_tb *t3 = hs_store_tb(st, f2, NULL, 3, 3 + 64);
    const hs_tb *t4 = hs_store_tb(st, NULL, NULL, 0, 0);        /* no frames at all */
    const hs_tb *t5 = hs_store_tb(st, NULL, NULL, 0, 12);       /* no frames, deep stack */
    assert_true(t1 && t2 && t3 && t4 && t5 && t1 != t2 && t4 != t5);
    assert_int_equal(hs_snapshot_push(s, 0, 10, t1), 0);
    assert_int_equal(hs_snapshot_push(s, 0, 0, t2), 0);
    assert_int_equal(hs_snapshot_push(s, 1, SIZE_MAX, t3), 0);
    assert_int_equal(hs_snapshot_push(s, UINT_MAX, SIZE_MAX - 1, t1), 0);
    assert_int_equal(hs_snapshot_push(s, 0, (size_t)1 << 63, t4), 0);
    assert_int_equal(hs_snapshot_push(s, 7, 127, t5), 0);
    assert_int_equal(hs_snapshot_push(s, 0, 128, t1), 0);
    return s;
}

/* A small snapshot covering every section, for the exhaustive truncation and flip tests. */
static hs_snapshot *make_small(void)
{
    hs_snapshot *s = hs_snapshot_new(3);
    assert_non_null(s);
    const char *argv[] = { "prog", "-x" };
    hs_snapshot_meta m = { .timestamp = 1.5, .pid = 10, .ppid = 1, .program = "prog", .argc = 2,
                           .argv = argv, .kind = "final", .traced_current = 30 };
    assert_int_equal(hs_snapshot_set_meta(s, &m), 0);
    hs_frame f[] = { { "a.c", 2, "f", "libx.so", 0x1234 }, { "b.c", 4, "main", "prog", 0x40 } };
    hs_frame_loc l[] = { { "abcd", 0x234 }, { "ef01", 0x40 } };
    const hs_tb *t1 = hs_store_tb(s->store, f, l, 2, 5);
    const hs_tb *t2 = hs_store_tb(s->store, f + 1, NULL, 1, 1);
    assert_int_equal(hs_snapshot_push(s, 0, 10, t1), 0);
    assert_int_equal(hs_snapshot_push(s, 2, 20, t2), 0);
    assert_int_equal(hs_snapshot_push(s, 0, 1000, t1), 0);
    return s;
}

/* ---- round trips ---------------------------------------------------------------------------- */

static void test_roundtrip_full(void **state)
{
    (void)state;
    hs_snapshot *s = make_full();
    const char *path = in_dir("full.hsnap");
    assert_int_equal(hs_snapshot_dump(s, path), 0);
    char err[256] = "";
    hs_snapshot *t = hs_snapshot_load(path, err, sizeof(err));
    if (t == NULL)
        fail_msg("%s", err);
    assert_snapshots_equal(s, t);
    assert_sharing_equal(s, t);
    /* the NULL-ness of loc survives; traces 0 and 1 have equal frames but differ in it */
    assert_non_null(t->traces[0].tb->loc);
    assert_null(t->traces[1].tb->loc);
    assert_null(t->traces[4].tb->loc);
    assert_int_equal(t->traces[5].tb->pub.total_nframe, 12);
    /* the file is exactly the in-memory encoding, and re-encoding the loaded copy is identical */
    size_t n1, n2, n3;
    unsigned char *a = read_file(path, &n1), *b = encode(s, &n2), *c = encode(t, &n3);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    assert_int_equal(n2, n3);
    assert_memory_equal(b, c, n2);
    free(a);
    hs_free(b);
    hs_free(c);
    hs_snapshot_free(s);
    hs_snapshot_free(t);
}

static void test_roundtrip_empty(void **state)
{
    (void)state;
    hs_snapshot *s = hs_snapshot_new(1);
    const char *path = in_dir("empty.hsnap");
    assert_int_equal(hs_snapshot_dump(s, path), 0);
    hs_snapshot *t = hs_snapshot_load(path, NULL, 0);
    assert_non_null(t);
    assert_int_equal(hs_snapshot_count(t), 0);
    assert_int_equal(hs_snapshot_traceback_limit(t), 1);
    assert_string_equal(hs_snapshot_get_meta(t)->program, "");
    assert_string_equal(hs_snapshot_get_meta(t)->kind, "");
    assert_int_equal(hs_snapshot_get_meta(t)->argc, 0);
    assert_snapshots_equal(s, t);
    hs_snapshot_free(s);
    hs_snapshot_free(t);

    s = hs_snapshot_new(HS_MAX_FRAMES);
    assert_int_equal(hs_snapshot_dump(s, path), 0);
    t = hs_snapshot_load(path, NULL, 0);
    assert_non_null(t);
    assert_int_equal(hs_snapshot_traceback_limit(t), HS_MAX_FRAMES);
    hs_snapshot_free(s);
    hs_snapshot_free(t);
}

/* Tracebacks of another store (the writer cannot rely on ids), equal in content: written as the
 * traces use them and interned into one on load. */
static void test_roundtrip_foreign_tracebacks(void **state)
{
    (void)state;
    hs_snapshot *other = make_small();
    hs_snapshot *s = hs_snapshot_new(3);
    const hs_tb *own = hs_store_copy_tb(s->store, other->traces[0].tb);
    assert_int_equal(hs_snapshot_push(s, 0, 1, own), 0);
    assert_int_equal(hs_snapshot_push(s, 0, 2, other->traces[0].tb), 0);
    assert_int_equal(hs_snapshot_push(s, 0, 3, other->traces[1].tb), 0);
    size_t n;
    unsigned char *buf = encode(s, &n);
    hs_snapshot *t = accept(buf, n);
    assert_snapshots_equal(s, t);
    assert_ptr_equal(t->traces[0].tb, t->traces[1].tb);
    assert_int_equal(hs_store_tb_count(t->store), 2);
    hs_free(buf);
    hs_snapshot_free(t);
    hs_snapshot_free(s);
    hs_snapshot_free(other);
}

/* Many traces over few stacks: the file stays a few bytes a trace and loads with interning. */
static void test_roundtrip_many(void **state)
{
    (void)state;
    hs_snapshot *s = hs_snapshot_new(16);
    const hs_tb *tbs[300];
    for (int i = 0; i < 300; i++) {
        hs_frame f[8];
        char names[8][32];
        for (int k = 0; k < 8; k++) {
            snprintf(names[k], sizeof(names[k]), "src/file%d.c", (i * 7 + k) % 40);
            f[k] = (hs_frame){ names[k], (unsigned)(i + k), "fn", "obj", (uintptr_t)(0x400000 + i * 16 + k) };
        }
        tbs[i] = hs_store_tb(s->store, f, NULL, 8, 8 + (size_t)(i % 3));
        assert_non_null(tbs[i]);
    }
    for (int i = 0; i < 100000; i++)
        assert_int_equal(hs_snapshot_push(s, i % 97 == 0, (size_t)(i % 5000), tbs[(i * 31) % 300]), 0);
    size_t n;
    unsigned char *buf = encode(s, &n);
    print_message("  100000 traces over 300 tracebacks: %zu bytes (%.2f a trace)\n", n,
                  (double)n / 100000);
    assert_true(n < 100000 * 5);
    hs_snapshot *t = accept(buf, n);
    assert_snapshots_equal(s, t);
    assert_sharing_equal(s, t);
    assert_int_equal(hs_store_tb_count(t->store), 300);
    hs_free(buf);
    hs_snapshot_free(t);
    hs_snapshot_free(s);
}

/* ---- rejection -------------------------------------------------------------------------------- */

static void test_reject_foreign(void **state)
{
    (void)state;
    assert_string_equal(reject("", 0), "snap.hsnap: not a heapsnap snapshot (empty file)");
    assert_string_equal(reject("garbage, clearly not a snapshot", 31),
                        "snap.hsnap: not a heapsnap snapshot (bad magic)");
    assert_string_equal(reject("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16),
                        "snap.hsnap: not a heapsnap snapshot (bad magic)");
    assert_string_equal(reject("\x89HSNAQ\r\n\1\0\0\0", 12),
                        "snap.hsnap: not a heapsnap snapshot (bad magic)");
    assert_string_equal(reject("\x89HSNAP\n", 7), "snap.hsnap: not a heapsnap snapshot (bad magic)");
    assert_string_equal(reject("\x89HS", 3), "snap.hsnap: truncated at byte 3 (header needs 9 more)");
    assert_string_equal(reject("\x89HSNAP\r\n\0\0\0\0", 12),
                        "snap.hsnap: corrupt header (format version 0 does not exist)");
    assert_string_equal(reject("\x89HSNAP\r\n\1\0\0\0", 12),
                        "snap.hsnap: truncated at byte 12 (the end section is missing)");
    /* loading a missing buffer, and a NULL errbuf */
    assert_null(hs_snapshot_load_mem(NULL, 5, NULL, NULL, 0));
    assert_null(hs_snapshot_load_mem("x", 1, NULL, NULL, 0));
    assert_int_equal(errno, EINVAL);
    char tiny[8];
    assert_null(hs_snapshot_load_mem("x", 1, "a-long-name", tiny, sizeof(tiny)));
    assert_string_equal(tiny, "a-long-");
}

static void test_reject_newer_version(void **state)
{
    (void)state;
    hs_snapshot *s = make_small();
    size_t n;
    unsigned char *buf = encode(s, &n);
    buf[8] = 7;
    assert_string_equal(reject(buf, n), "snap.hsnap: written by a newer heapsnap (format version 7, "
                                        "this reader reads up to 1)");
    assert_int_equal(errno, ENOTSUP);
    hs_put_le32(buf + 8, 0xffffffffu);
    assert_string_equal(reject(buf, n), "snap.hsnap: written by a newer heapsnap (format version "
                                        "4294967295, this reader reads up to 1)");
    hs_free(buf);
    hs_snapshot_free(s);
}

static void test_reject_every_truncation(void **state)
{
    (void)state;
    hs_snapshot *s = make_small();
    size_t n;
    unsigned char *buf = encode(s, &n);
    print_message("  small file: %zu bytes\n", n);
    for (size_t len = 0; len < n; len++) {
        /* a copy of exactly len bytes, so ASan sees any read past the end */
        unsigned char *p = malloc(len ? len : 1);
        memcpy(p, buf, len);
        const char *err = reject(p, len);
        if (len == 0)
            assert_string_equal(err, "snap.hsnap: not a heapsnap snapshot (empty file)");
        else if (strstr(err, ": truncated at byte ") == NULL)
            fail_msg("prefix of %zu bytes: %s", len, err);
        char want[64];
        snprintf(want, sizeof(want), "truncated at byte %zu (", len);
        if (len > 0 && strstr(err, want) == NULL)
            fail_msg("prefix of %zu bytes: %s", len, err);
        free(p);
    }
    /* the message names the section and what it misses */
    size_t cut = n - HS_SECTION_HEADER_LEN - 3;         /* inside the traces section */
    char want[128];
    snprintf(want, sizeof(want), "snap.hsnap: truncated at byte %zu (section 'traces' needs 3 more)",
             cut);
    assert_string_equal(reject(buf, cut), want);
    snprintf(want, sizeof(want), "snap.hsnap: truncated at byte %zu (section header needs 6 more)",
             n - 6);
    assert_string_equal(reject(buf, n - 6), want);
    hs_free(buf);
    hs_snapshot_free(s);
}

static void test_reject_every_flip(void **state)
{
    (void)state;
    hs_snapshot *s = make_small();
    size_t n;
    unsigned char *buf = encode(s, &n);
    unsigned char *p = malloc(n);
    static const unsigned char masks[] = { 1, 2, 4, 8, 16, 32, 64, 128, 0xff };
    size_t checksum = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof(masks); k++) {
            memcpy(p, buf, n);
            p[i] ^= masks[k];
            char err[512] = "";
            hs_snapshot *t = hs_snapshot_load_mem(p, n, "snap.hsnap", err, sizeof(err));
            if (t != NULL) {
                hs_snapshot_free(t);
                fail_msg("byte %zu ^ 0x%02x was accepted", i, masks[k]);
            }
            assert_true(strncmp(err, "snap.hsnap: ", 12) == 0);
            checksum += strstr(err, "checksum mismatch") != NULL;
        }
    }
    print_message("  %zu flips rejected, %zu by a checksum\n", n * sizeof(masks), checksum);
    free(p);
    hs_free(buf);
    hs_snapshot_free(s);
}

static void test_reject_trailing_bytes(void **state)
{
    (void)state;
    hs_snapshot *s = make_small();
    size_t n;
    unsigned char *buf = encode(s, &n);
    unsigned char *p = malloc(n + 5);
    memcpy(p, buf, n);
    memset(p + n, 0, 5);
    assert_string_equal(reject(p, n + 5), "snap.hsnap: corrupt: 5 bytes after the end section");
    free(p);
    hs_free(buf);
    hs_snapshot_free(s);
}

/* ---- crafted files: valid checksums, bad contents ---------------------------------------------- */

typedef struct bytes {
    unsigned char *p;
    size_t n, cap;
} bytes;

static void b_put(bytes *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void b_var(bytes *b, uint64_t v)
{
    unsigned char t[HS_VARINT_MAX];
    b_put(b, t, hs_varint_put(t, v));
}

static void b_str(bytes *b, const char *s)
{
    b_var(b, strlen(s));
    b_put(b, s, strlen(s));
}

/* Appends a section with a correct header and checksum. */
static void b_section(bytes *b, uint32_t type, const void *payload, size_t len)
{
    unsigned char h[HS_SECTION_HEADER_LEN];
    hs_put_le32(h, type);
    hs_put_le64(h + 4, len);
    hs_put_le32(h + 12, hs_crc32(hs_crc32(0, h, 12), payload, len));
    b_put(b, h, sizeof(h));
    b_put(b, payload, len);
}

/* A file from a canonical one with section `type` replaced by payload (NULL: removed); `extra`
 * (type 0: none) is added before the end section. */
static bytes rebuild(const unsigned char *f, size_t n, uint32_t type, const bytes *payload,
                     uint32_t extra, const bytes *extra_payload)
{
    bytes b = { 0 };
    b_put(&b, f, HS_FILE_HEADER_LEN);
    for (size_t pos = HS_FILE_HEADER_LEN; pos < n;) {
        uint32_t t = hs_get_le32(f + pos);
        size_t len = (size_t)hs_get_le64(f + pos + 4);
        if (t == HS_SEC_END && extra != 0)
            b_section(&b, extra, extra_payload->p, extra_payload->n);
        if (t != type)
            b_put(&b, f + pos, HS_SECTION_HEADER_LEN + len);
        else if (payload != NULL)
            b_section(&b, t, payload->p, payload->n);
        pos += HS_SECTION_HEADER_LEN + len;
    }
    return b;
}

/* The canonical file of a one-trace snapshot: strings, 2 frames, 1 traceback, 1 trace. */
static unsigned char *base_file(size_t *n)
{
    hs_snapshot *s = hs_snapshot_new(5);
    ADD(s, 0, 8, F("a.c", 1), F("b.c", 2));
    unsigned char *buf = encode(s, n);
    hs_snapshot_free(s);
    return buf;
}

/* Rejects the base file with one section's payload replaced; returns the message. */
static const char *reject_with(uint32_t type, const bytes *payload)
{
    size_t n;
    unsigned char *f = base_file(&n);
    bytes b = rebuild(f, n, type, payload, 0, NULL);
    const char *err = reject(b.p, b.n);
    free(b.p);
    hs_free(f);
    return err;
}

static void test_reject_bad_indexes(void **state)
{
    (void)state;
    bytes p = { 0 };
    /* traceback 0 refers to frame 9999 of 2 */
    b_var(&p, 1), b_var(&p, 1), b_var(&p, 0), b_var(&p, 9999);
    assert_string_equal(reject_with(HS_SEC_TRACEBACKS, &p),
                        "snap.hsnap: corrupt: traceback 0 refers to frame 9999 of 2");
    /* trace 1 refers to traceback 5 of 1 */
    p.n = 0;
    b_var(&p, 2), b_var(&p, 0), b_var(&p, 8), b_var(&p, 5 << 1), b_var(&p, 8);
    assert_string_equal(reject_with(HS_SEC_TRACES, &p),
                        "snap.hsnap: corrupt: trace 1 refers to traceback 5 of 1");
    /* frame 0 refers to string 40 (strings: "a.c", "", "b.c") */
    p.n = 0;
    b_var(&p, 1), b_var(&p, 40), b_var(&p, 1), b_var(&p, 1), b_var(&p, 1), b_var(&p, 0), b_var(&p, 0);
    assert_string_equal(reject_with(HS_SEC_FRAMES, &p),
                        "snap.hsnap: corrupt: frame 0 refers to string 40 of 3");
    /* a build-id string index out of range */
    p.n = 0;
    b_var(&p, 1), b_var(&p, 0), b_var(&p, 1), b_var(&p, 1), b_var(&p, 1), b_var(&p, 0), b_var(&p, 4),
        b_var(&p, 0);
    assert_string_equal(reject_with(HS_SEC_FRAMES, &p),
                        "snap.hsnap: corrupt: frame 0 refers to string 3 of 3");
    /* total_nframe = nframes + extra beyond size_t */
    p.n = 0;
    b_var(&p, 1), b_var(&p, 1), b_var(&p, UINT64_MAX), b_var(&p, 0);
    assert_string_equal(reject_with(HS_SEC_TRACEBACKS, &p),
                        "snap.hsnap: corrupt: traceback 0 has total_nframe above the largest "
                        "18446744073709551615");
    /* values beyond their C types */
    p.n = 0;
    b_var(&p, 1), b_var(&p, 0), b_var(&p, (uint64_t)UINT_MAX + 1), b_var(&p, 1), b_var(&p, 1),
        b_var(&p, 0), b_var(&p, 0);
    assert_string_equal(reject_with(HS_SEC_FRAMES, &p),
                        "snap.hsnap: corrupt: frame 0 has line 4294967296, above the largest "
                        "4294967295");
    p.n = 0;
    b_var(&p, 1), b_var(&p, 1), b_var(&p, (uint64_t)UINT_MAX + 1), b_var(&p, 8);
    assert_string_equal(reject_with(HS_SEC_TRACES, &p),
                        "snap.hsnap: corrupt: trace 0 has domain 4294967296, above the largest "
                        "4294967295");
    free(p.p);
}

static void test_reject_bad_records(void **state)
{
    (void)state;
    bytes p = { 0 };
    /* a traceback mixing frames with and without a build-id */
    b_var(&p, 3);
    b_str(&p, "a.c"), b_str(&p, ""), b_str(&p, "f00d");
    bytes fr = { 0 };
    b_var(&fr, 2);
    b_var(&fr, 0), b_var(&fr, 1), b_var(&fr, 1), b_var(&fr, 1), b_var(&fr, 0), b_var(&fr, 3), b_var(&fr, 9);
    b_var(&fr, 0), b_var(&fr, 2), b_var(&fr, 1), b_var(&fr, 1), b_var(&fr, 0), b_var(&fr, 0);
    size_t n;
    unsigned char *f = base_file(&n);
    bytes b1 = rebuild(f, n, HS_SEC_STRINGS, &p, 0, NULL);
    bytes b2 = rebuild(b1.p, b1.n, HS_SEC_FRAMES, &fr, 0, NULL);
    assert_string_equal(reject(b2.p, b2.n),
                        "snap.hsnap: corrupt: traceback 0 mixes frames with and without a build-id");
    free(b1.p);
    free(b2.p);
    free(fr.p);
    hs_free(f);

    /* a string holding a NUL byte */
    p.n = 0;
    b_var(&p, 3), b_str(&p, "a.c"), b_var(&p, 3), b_put(&p, "a\0b", 3), b_str(&p, "b.c");
    assert_string_equal(reject_with(HS_SEC_STRINGS, &p),
                        "snap.hsnap: corrupt section 'strings' (string 1 contains a NUL byte)");
    /* a string longer than its section */
    p.n = 0;
    b_var(&p, 1), b_var(&p, 100), b_put(&p, "abc", 3);
    assert_string_equal(reject_with(HS_SEC_STRINGS, &p),
                        "snap.hsnap: corrupt section 'strings' (string 0 is cut short)");
    /* an empty payload where a count belongs */
    p.n = 0;
    assert_string_equal(reject_with(HS_SEC_FRAMES, &p),
                        "snap.hsnap: corrupt section 'frames' (the count is cut short)");
    /* bytes after the last record */
    p.n = 0;
    b_var(&p, 1), b_var(&p, 0), b_var(&p, 8), b_var(&p, 0);
    assert_string_equal(reject_with(HS_SEC_TRACES, &p),
                        "snap.hsnap: corrupt: section 'traces' has 1 bytes after its last record");
    /* a record cut short by its section's end */
    p.n = 0;
    b_var(&p, 1), b_var(&p, 0);
    assert_string_equal(reject_with(HS_SEC_TRACES, &p),
                        "snap.hsnap: corrupt: section 'traces' counts 1 traces in 1 bytes");
    p.n = 0;
    b_var(&p, 1), b_var(&p, 1), b_var(&p, 0);
    assert_string_equal(reject_with(HS_SEC_TRACES, &p),
                        "snap.hsnap: corrupt section 'traces' (trace 0 is cut short)");
    /* a varint of 11 bytes, and one whose 10th byte overflows */
    p.n = 0;
    b_var(&p, 1), b_put(&p, "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 11);
    assert_string_equal(reject_with(HS_SEC_TRACES, &p),
                        "snap.hsnap: corrupt section 'traces' (trace 0 holds a number wider than "
                        "64 bits)");
    p.n = 0;
    b_var(&p, 1), b_var(&p, 0), b_put(&p, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10);
    assert_string_equal(reject_with(HS_SEC_TRACES, &p),
                        "snap.hsnap: corrupt section 'traces' (trace 0 holds a number wider than "
                        "64 bits)");
    /* non-minimal varints are fine: 0 as 80 00, size 8 as 88 80 80 00 */
    p.n = 0;
    b_var(&p, 1), b_put(&p, "\x80\x00", 2), b_put(&p, "\x88\x80\x80\x00", 4);
    {
        size_t m;
        unsigned char *f2 = base_file(&m);
        bytes b = rebuild(f2, m, HS_SEC_TRACES, &p, 0, NULL);
        hs_snapshot *s = accept(b.p, b.n);
        assert_int_equal(s->traces[0].size, 8);
        hs_snapshot_free(s);
        free(b.p);
        hs_free(f2);
    }
    /* traceback limits outside [1, 65535] */
    for (int k = 0; k < 2; k++) {
        p.n = 0;
        b_str(&p, "test"), b_var(&p, k ? 65536 : 0);
        char want[128];
        snprintf(want, sizeof(want),
                 "snap.hsnap: corrupt: traceback limit %d is outside [1, 65535]", k ? 65536 : 0);
        assert_string_equal(reject_with(HS_SEC_META, &p), want);
    }
    /* META cut short after the limit */
    p.n = 0;
    b_str(&p, "test"), b_var(&p, 5), b_put(&p, "12345678", 8);
    assert_string_equal(reject_with(HS_SEC_META, &p),
                        "snap.hsnap: corrupt section 'meta' (the times are cut short)");
    free(p.p);
}

/* Counts are bounded by the bytes that follow, so a lying count allocates nothing big. */
static void test_reject_lying_counts(void **state)
{
    (void)state;
    static const struct {
        uint32_t type;
        const char *want;
    } cases[] = {
        { HS_SEC_STRINGS, "snap.hsnap: corrupt: section 'strings' counts 1152921504606846976 "
                          "strings in 0 bytes" },
        { HS_SEC_FRAMES, "snap.hsnap: corrupt: section 'frames' counts 1152921504606846976 "
                         "frames in 0 bytes" },
        { HS_SEC_TRACEBACKS, "snap.hsnap: corrupt: section 'tracebacks' counts "
                             "1152921504606846976 tracebacks in 0 bytes" },
        { HS_SEC_TRACES, "snap.hsnap: corrupt: section 'traces' counts 1152921504606846976 "
                         "traces in 0 bytes" },
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(cases); i++) {
        bytes p = { 0 };
        b_var(&p, 1ULL << 60);
        alloc_largest = 0;
        assert_string_equal(reject_with(cases[i].type, &p), cases[i].want);
        assert_true(alloc_largest <= 65536 + 64);   /* the store arena's first chunk */
        free(p.p);
    }
    /* argc, and a traceback's frame count */
    bytes p = { 0 };
    b_var(&p, 1), b_var(&p, 1ULL << 40), b_var(&p, 0), b_var(&p, 0);
    assert_string_equal(reject_with(HS_SEC_TRACEBACKS, &p),
                        "snap.hsnap: corrupt: traceback 0 counts 1099511627776 frames in 1 bytes");
    p.n = 0;
    b_str(&p, "w"), b_var(&p, 5), b_put(&p, "1234567812345678", 16), b_var(&p, 0), b_var(&p, 0),
        b_str(&p, "prog"), b_var(&p, 1ULL << 50);
    assert_string_equal(reject_with(HS_SEC_META, &p),
                        "snap.hsnap: corrupt: section 'meta' counts 1125899906842624 arguments "
                        "in 0 bytes");
    free(p.p);
}

static void test_sections(void **state)
{
    (void)state;
    size_t n;
    unsigned char *f = base_file(&n);
    bytes none = { 0 }, junk = { 0 };
    b_put(&junk, "future data", 11);

    /* a missing section */
    bytes b = rebuild(f, n, HS_SEC_FRAMES, NULL, 0, NULL);
    assert_string_equal(reject(b.p, b.n), "snap.hsnap: corrupt: section 'frames' is missing");
    free(b.p);
    /* a section twice */
    bytes strs = { 0 };
    b_var(&strs, 0);
    b = rebuild(f, n, 0, NULL, HS_SEC_STRINGS, &strs);
    assert_string_equal(reject(b.p, b.n), "snap.hsnap: corrupt: section 'strings' appears twice");
    free(b.p);
    free(strs.p);
    /* an unknown section is skipped; so is an empty one */
    b = rebuild(f, n, 0, NULL, HS_FOURCC('X', 't', 'r', 'a'), &junk);
    hs_snapshot *s = accept(b.p, b.n);
    assert_int_equal(hs_snapshot_count(s), 1);
    hs_snapshot_free(s);
    free(b.p);
    b = rebuild(f, n, 0, NULL, 0x01020304, &none);
    s = accept(b.p, b.n);
    hs_snapshot_free(s);
    /* ... but its checksum is still checked */
    b.p[b.n - 2 * HS_SECTION_HEADER_LEN] ^= 0x10;
    assert_string_equal(reject(b.p, b.n),
                        "snap.hsnap: corrupt section 0x01020314 (checksum mismatch)");
    free(b.p);
    /* a corrupt known section names it */
    b = rebuild(f, n, 0, NULL, 0, NULL);
    for (size_t pos = HS_FILE_HEADER_LEN; pos < b.n;) {
        size_t len = (size_t)hs_get_le64(b.p + pos + 4);
        if (hs_get_le32(b.p + pos) == HS_SEC_FRAMES)
            b.p[pos + HS_SECTION_HEADER_LEN + 1] ^= 1;
        pos += HS_SECTION_HEADER_LEN + len;
    }
    assert_string_equal(reject(b.p, b.n), "snap.hsnap: corrupt section 'frames' (checksum mismatch)");
    free(b.p);
    /* fields a newer writer appends to META are ignored */
    size_t pos = HS_FILE_HEADER_LEN;
    assert_int_equal(hs_get_le32(f + pos), HS_SEC_META);
    bytes meta = { 0 };
    b_put(&meta, f + pos + HS_SECTION_HEADER_LEN, (size_t)hs_get_le64(f + pos + 4));
    b_put(&meta, "\x05more!", 6);
    b = rebuild(f, n, HS_SEC_META, &meta, 0, NULL);
    s = accept(b.p, b.n);
    assert_int_equal(hs_snapshot_traceback_limit(s), 5);
    hs_snapshot_free(s);
    free(b.p);
    free(meta.p);
    free(junk.p);
    hs_free(f);
}

/* ---- files ------------------------------------------------------------------------------------- */

static void test_load_errors(void **state)
{
    (void)state;
    char err[PATH_MAX + 100], want[PATH_MAX + 100];
    const char *missing = in_dir("missing.hsnap");
    errno = 0;
    assert_null(hs_snapshot_load(missing, err, sizeof(err)));
    assert_int_equal(errno, ENOENT);
    snprintf(want, sizeof(want), "%s: No such file or directory", missing);
    assert_string_equal(err, want);

    assert_null(hs_snapshot_load(tmpdir, err, sizeof(err)));
    assert_int_equal(errno, EISDIR);
    snprintf(want, sizeof(want), "%s: Is a directory", tmpdir);
    assert_string_equal(err, want);

    const char *junk = in_dir("junk.hsnap");
    write_bytes(junk, "hello", 5);
    assert_null(hs_snapshot_load(junk, err, sizeof(err)));
    snprintf(want, sizeof(want), "%s: not a heapsnap snapshot (bad magic)", junk);
    assert_string_equal(err, want);
    write_bytes(junk, "", 0);
    assert_null(hs_snapshot_load(junk, err, sizeof(err)));
    snprintf(want, sizeof(want), "%s: not a heapsnap snapshot (empty file)", junk);
    assert_string_equal(err, want);
    assert_null(hs_snapshot_load(NULL, NULL, 0));
    assert_null(hs_snapshot_load(missing, NULL, 0));

    /* a non-regular file is read to its end (process substitution, pipes) */
    hs_snapshot *s = make_small();
    const char *good = in_dir("good.hsnap");
    assert_int_equal(hs_snapshot_dump(s, good), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    size_t n;
    unsigned char *data = read_file(good, &n);
    assert_true(n < 60000);
    assert_int_equal(write(fds[1], data, n), (ssize_t)n);
    close(fds[1]);
    char fdpath[64];
    snprintf(fdpath, sizeof(fdpath), "/dev/fd/%d", fds[0]);
    hs_snapshot *t = hs_snapshot_load(fdpath, err, sizeof(err));
    if (t == NULL)
        fail_msg("%s", err);
    assert_snapshots_equal(s, t);
    close(fds[0]);
    free(data);
    hs_snapshot_free(t);
    hs_snapshot_free(s);
}

static void test_dump_mode_and_no_temps(void **state)
{
    (void)state;
    hs_snapshot *s = make_small();
    const char *path = in_dir("mode.hsnap");
    assert_int_equal(hs_snapshot_dump(s, path), 0);
    assert_int_equal(hs_snapshot_dump(s, path), 0);   /* replaces */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(count_temps(tmpdir), 0);
    /* a relative path (temporary in the current directory) */
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmpdir), 0);
    assert_int_equal(hs_snapshot_dump(s, "relative.hsnap"), 0);
    assert_int_equal(count_temps("."), 0);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(stat(in_dir("relative.hsnap"), &st), 0);
    /* a very long final name: the temporary's name still fits in NAME_MAX */
    char name[256];
    memset(name, 'n', 250);
    strcpy(name + 250, ".hsn");
    assert_int_equal(hs_snapshot_dump(s, in_dir(name)), 0);
    assert_int_equal(count_temps(tmpdir), 0);
    /* bad arguments */
    assert_int_equal(hs_snapshot_dump(NULL, path), -EINVAL);
    assert_int_equal(hs_snapshot_dump(s, NULL), -EINVAL);
    assert_int_equal(hs_snapshot_dump(s, ""), -ENOENT);
    assert_int_equal(hs_snapshot_dump(s, in_dir("sub/")), -EISDIR);
    hs_snapshot_free(s);
}

/* The previous file under path is intact and no temporary is left in dir. */
static void assert_survives(const char *path, const unsigned char *want, size_t n, const char *dir)
{
    size_t m;
    unsigned char *got = read_file(path, &m);
    assert_int_equal(m, n);
    assert_memory_equal(got, want, n);
    free(got);
    assert_int_equal(count_temps(dir), 0);
}

static void test_dump_atomic(void **state)
{
    (void)state;
    hs_snapshot *good = make_small(), *big = make_full();
    const char *path = in_dir("atomic.hsnap");
    assert_int_equal(hs_snapshot_dump(good, path), 0);
    size_t n;
    unsigned char *want = read_file(path, &n);

    /* a directory that does not exist */
    assert_int_equal(hs_snapshot_dump(big, in_dir("no/such/dir/x.hsnap")), -ENOENT);
    assert_survives(path, want, n, tmpdir);

    /* a directory under the final name: written in full, then the rename fails */
    const char *dirpath = in_dir("isdir.hsnap");
    assert_int_equal(mkdir(dirpath, 0700), 0);
    assert_int_equal(hs_snapshot_dump(big, dirpath), -EISDIR);
    assert_int_equal(count_temps(tmpdir), 0);
    struct stat st;
    assert_int_equal(stat(dirpath, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* out of memory at each allocation of a dump */
    int failures = 0;
    for (long k = 0;; k++) {
        alloc_countdown = k;
        int rc = hs_snapshot_dump(big, path);
        alloc_countdown = -1;
        if (rc == 0)
            break;
        assert_int_equal(rc, -ENOMEM);
        assert_survives(path, want, n, tmpdir);
        failures++;
    }
    print_message("  dump failed cleanly at each of its %d allocations\n", failures);
    assert_int_equal(hs_snapshot_dump(good, path), 0);

    /* a read-only directory (root ignores the mode, so only as another user) */
    const char *ro = in_dir("ro");
    assert_int_equal(mkdir(ro, 0700), 0);
    char ropath[PATH_MAX];
    snprintf(ropath, sizeof(ropath), "%s/x.hsnap", ro);
    assert_int_equal(hs_snapshot_dump(good, ropath), 0);
    assert_int_equal(chmod(ro, 0500), 0);
    if (geteuid() != 0) {
        assert_int_equal(hs_snapshot_dump(big, ropath), -EACCES);
        assert_survives(ropath, want, n, ro);
    }
    assert_int_equal(chmod(ro, 0700), 0);

    /* RLIMIT_FSIZE: EFBIG, and the SIGXFSZ it raises must not kill the (traced) process */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = { 100, 100 };
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(2);
        int rc = hs_snapshot_dump(big, path);
        sigset_t pend;
        sigpending(&pend);
        _exit(rc == -EFBIG && !sigismember(&pend, SIGXFSZ) ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("the dump was killed by signal %d", WTERMSIG(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_survives(path, want, n, tmpdir);
    free(want);
    hs_snapshot_free(good);
    hs_snapshot_free(big);
}

static void test_dump_symlinks(void **state)
{
    (void)state;
    hs_snapshot *s = make_small();
    char victim[PATH_MAX], link[PATH_MAX];
    snprintf(victim, sizeof(victim), "%s", in_dir("victim"));
    snprintf(link, sizeof(link), "%s", in_dir("link.hsnap"));
    write_bytes(victim, "precious", 8);

    /* a symlink at the final name is replaced, not written through */
    assert_int_equal(symlink(victim, link), 0);
    assert_int_equal(hs_snapshot_dump(s, link), 0);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    size_t n;
    unsigned char *v = read_file(victim, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(v, "precious", 8);
    free(v);

    /* symlinks planted at every other temporary name this process can use next: never
     * followed, and the dump moves on to the next name */
    for (int k = 0; k < 1000; k += 2) {
        char name[64];
        snprintf(name, sizeof(name), ".t.hsnap.tmp.%ld.%d", (long)getpid(), k);
        assert_int_equal(symlink(victim, in_dir(name)), 0);
    }
    assert_int_equal(hs_snapshot_dump(s, in_dir("t.hsnap")), 0);
    assert_int_equal(count_temps(tmpdir), 500);
    v = read_file(victim, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(v, "precious", 8);
    free(v);
    hs_snapshot_free(s);
}

static void test_load_oom(void **state)
{
    (void)state;
    hs_snapshot *s = make_full();
    size_t n;
    unsigned char *buf = encode(s, &n);
    int failures = 0;
    for (long k = 0;; k++) {
        char err[256] = "";
        alloc_countdown = k;
        hs_snapshot *t = hs_snapshot_load_mem(buf, n, "snap.hsnap", err, sizeof(err));
        alloc_countdown = -1;
        if (t != NULL) {
            assert_snapshots_equal(s, t);
            hs_snapshot_free(t);
            break;
        }
        assert_string_equal(err, "snap.hsnap: Cannot allocate memory");
        assert_int_equal(errno, ENOMEM);
        failures++;
    }
    print_message("  load failed cleanly at each of its %d allocations\n", failures);
    hs_free(buf);
    hs_snapshot_free(s);
}

int main(void)
{
    umask(022);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_full),
        cmocka_unit_test(test_roundtrip_empty),
        cmocka_unit_test(test_roundtrip_foreign_tracebacks),
        cmocka_unit_test(test_roundtrip_many),
        cmocka_unit_test(test_reject_foreign),
        cmocka_unit_test(test_reject_newer_version),
        cmocka_unit_test(test_reject_every_truncation),
        cmocka_unit_test(test_reject_every_flip),
        cmocka_unit_test(test_reject_trailing_bytes),
        cmocka_unit_test(test_reject_bad_indexes),
        cmocka_unit_test(test_reject_bad_records),
        cmocka_unit_test(test_reject_lying_counts),
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_dump_mode_and_no_temps),
        cmocka_unit_test(test_dump_atomic),
        cmocka_unit_test(test_dump_symlinks),
        cmocka_unit_test(test_load_oom),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
