/*
 * fuzz_load.c - libFuzzer target for the snapshot reader, hs_snapshot_load_mem.
 *
 * Each input is loaded twice: as it is, and with every section's CRC recomputed, so that
 * mutations also reach the parsers behind the checksums instead of all dying at them.  A rejected
 * input must come with a message naming the input.  A loaded snapshot must be valid (every trace
 * readable, strings terminated, total_nframe >= nframes, loc all-or-nothing) and must round-trip:
 * encode -> load gives an equal snapshot, and encoding that again gives the same bytes.
 *
 * Seeds: tests/fuzz/corpus/fuzz_load/, made by tests/fuzz/gen_corpus.c.
 */
#include "snapshot/format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x)                                                                    \
    do {                                                                            \
        if (!(x)) {                                                                 \
            fprintf(stderr, "fuzz_load: check failed: %s (line %d)\n", #x, __LINE__); \
            abort();                                                                \
        }                                                                           \
    } while (0)

/* Touches everything a user of the snapshot can reach. */
static size_t walk(const hs_snapshot *s)
{
    size_t sum = 0;
    const hs_snapshot_meta *m = hs_snapshot_get_meta(s);
    sum += strlen(m->program) + strlen(m->kind);
    for (size_t i = 0; i < m->argc; i++)
        sum += strlen(m->argv[i]);
    int limit = hs_snapshot_traceback_limit(s);
    CHECK(limit >= 1 && limit <= HS_MAX_FRAMES);
    for (size_t i = 0; i < hs_snapshot_count(s); i++) {
        unsigned int domain;
        size_t size;
        const hs_traceback *tb;
        CHECK(hs_snapshot_get(s, i, &domain, &size, &tb) == 0);
        CHECK(tb != NULL && tb->total_nframe >= tb->nframes);
        const hs_tb *t = hs_tb_of(tb);
        for (size_t k = 0; k < tb->nframes; k++) {
            const hs_frame *f = &tb->frames[k];
            sum += strlen(f->filename) + strlen(f->function) + strlen(f->object) + f->lineno;
            if (t->loc != NULL)
                sum += strlen(t->loc[k].build_id) + t->loc[k].offset;
        }
        sum += domain + size;
    }
    return sum;
}

static int str_eq(const char *a, const char *b) { return strcmp(a, b) == 0; }

static void check_equal(const hs_snapshot *a, const hs_snapshot *b)
{
    const hs_snapshot_meta *m = hs_snapshot_get_meta(a), *n = hs_snapshot_get_meta(b);
    CHECK(hs_snapshot_traceback_limit(a) == hs_snapshot_traceback_limit(b));
    CHECK(memcmp(&m->timestamp, &n->timestamp, sizeof(double)) == 0);
    CHECK(memcmp(&m->elapsed, &n->elapsed, sizeof(double)) == 0);
    CHECK(m->pid == n->pid && m->ppid == n->ppid && m->argc == n->argc);
    CHECK(str_eq(m->program, n->program) && str_eq(m->kind, n->kind));
    for (size_t i = 0; i < m->argc; i++)
        CHECK(str_eq(m->argv[i], n->argv[i]));
    CHECK(m->traced_current == n->traced_current && m->traced_peak == n->traced_peak &&
          m->tracer_memory == n->tracer_memory && m->lost_blocks == n->lost_blocks &&
          m->lost_bytes == n->lost_bytes && m->unknown_frees == n->unknown_frees &&
          m->tracer_oom == n->tracer_oom && m->trimmed == n->trimmed);
    CHECK(hs_snapshot_count(a) == hs_snapshot_count(b));
    for (size_t i = 0; i < hs_snapshot_count(a); i++) {
        const hs_trace_rec *x = &a->traces[i], *y = &b->traces[i];
        CHECK(x->domain == y->domain && x->size == y->size);
        const hs_tb *p = x->tb, *q = y->tb;
        CHECK(p->pub.nframes == q->pub.nframes && p->pub.total_nframe == q->pub.total_nframe);
        CHECK((p->loc == NULL) == (q->loc == NULL));
        for (size_t k = 0; k < p->pub.nframes; k++) {
            const hs_frame *f = &p->pub.frames[k], *g = &q->pub.frames[k];
            CHECK(str_eq(f->filename, g->filename) && f->lineno == g->lineno &&
                  str_eq(f->function, g->function) && str_eq(f->object, g->object) &&
                  f->address == g->address);
            if (p->loc != NULL)
                CHECK(str_eq(p->loc[k].build_id, q->loc[k].build_id) &&
                      p->loc[k].offset == q->loc[k].offset);
        }
    }
}

static void roundtrip(const hs_snapshot *s)
{
    unsigned char *e1, *e2;
    size_t n1, n2;
    char err[256];
    CHECK(hs_snapshot_encode(s, &e1, &n1) == 0);
    hs_snapshot *t = hs_snapshot_load_mem(e1, n1, "re-encoded", err, sizeof(err));
    if (t == NULL)
        fprintf(stderr, "fuzz_load: %s\n", err);
    CHECK(t != NULL);
    check_equal(s, t);
    CHECK(hs_snapshot_encode(t, &e2, &n2) == 0);
    CHECK(n1 == n2 && memcmp(e1, e2, n1) == 0);
    hs_free(e1);
    hs_free(e2);
    hs_snapshot_free(t);
}

static void one(const unsigned char *data, size_t size)
{
    char err[512] = "";
    hs_snapshot *s = hs_snapshot_load_mem(data, size, "fuzz", err, sizeof(err));
    if (s == NULL) {
        CHECK(strncmp(err, "fuzz: ", 6) == 0 && err[6] != '\0');
        return;
    }
    volatile size_t sink = walk(s);
    (void)sink;
    roundtrip(s);
    hs_snapshot_free(s);
}

/* Recomputes the CRC of every complete section, as far as the section headers make sense. */
static void fix_crcs(unsigned char *p, size_t n)
{
    for (size_t pos = HS_FILE_HEADER_LEN; n >= pos && n - pos >= HS_SECTION_HEADER_LEN;) {
        uint64_t len = hs_get_le64(p + pos + 4);
        if (len > n - pos - HS_SECTION_HEADER_LEN)
            break;
        unsigned char *h = p + pos;
        hs_put_le32(h + 12, hs_crc32(hs_crc32(0, h, 12), h + HS_SECTION_HEADER_LEN, (size_t)len));
        pos += HS_SECTION_HEADER_LEN + (size_t)len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    /* an exact-size copy, so that ASan catches a read one past the end */
    unsigned char *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);
    fix_crcs(copy, size);
    one(copy, size);
    free(copy);
    return 0;
}
