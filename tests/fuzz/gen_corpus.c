/*
 * gen_corpus.c - writes the seed corpus of fuzz_load: a few valid snapshot files of different
 * shapes and a few broken ones, all small and deterministic (the same bytes on every run).
 *
 * Not built by the Makefile (it is not a fuzz_* target).  To regenerate the committed corpus:
 *
 *   cc -std=gnu11 -D_GNU_SOURCE -Iinclude -Isrc -o build/gen_corpus tests/fuzz/gen_corpus.c \
 *      src/common/[a-z]*.c src/snapshot/[a-z]*.c -lpthread
 *   build/gen_corpus tests/fuzz/corpus/fuzz_load
 */
#include "snapshot/format.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *outdir;

static void die(const char *what)
{
    fprintf(stderr, "gen_corpus: %s\n", what);
    exit(1);
}

static void save(const char *name, const unsigned char *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", outdir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        die(path);
    printf("%-28s %6zu bytes\n", name, n);
}

static unsigned char *encode(const hs_snapshot *s, size_t *n)
{
    unsigned char *buf;
    if (hs_snapshot_encode(s, &buf, n) < 0)
        die("encode");
    return buf;
}

static void save_snapshot(const char *name, const hs_snapshot *s)
{
    size_t n;
    unsigned char *buf = encode(s, &n);
    save(name, buf, n);
    hs_free(buf);
}

static void push(hs_snapshot *s, unsigned dom, size_t size, const hs_frame *f,
                 const hs_frame_loc *l, size_t n, size_t total)
{
    const hs_tb *tb = hs_store_tb(s->store, f, l, n, total);
    if (tb == NULL || hs_snapshot_push(s, dom, size, tb) < 0)
        die("out of memory");
}

/* Traces with build-ids, several domains, total_nframe > nframes, a 0-frame traceback. */
static hs_snapshot *make_loc(void)
{
    hs_snapshot *s = hs_snapshot_new(4);
    hs_frame f[] = {
        { "src/alloc.c", 12, "my_alloc", "/opt/app/libapp.so", 0x7f12340011a0 },
        { "src/main.c", 40, "main", "/opt/app/app", 0x401234 },
        { "/opt/app/libapp.so", 0, "", "/opt/app/libapp.so", 0x7f1234002000 },
        { "<unknown>", 0, "", "", 0 },
    };
    hs_frame_loc l[] = {
        { "3f2a9c0b7e4d1a6f5c8b2e9d0a7f3c6b1e4d8a2f", 0x11a0 },
        { "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", 0x1234 },
        { "3f2a9c0b7e4d1a6f5c8b2e9d0a7f3c6b1e4d8a2f", 0x2000 },
        { "", 0 },
    };
    push(s, 0, 64, f, l, 2, 9);
    push(s, 0, 4096, f + 2, l + 2, 2, 2);
    push(s, 5, 100, f, NULL, 4, 4);
    push(s, 0, 0, NULL, NULL, 0, 3);
    push(s, UINT_MAX, SIZE_MAX, f + 1, l + 1, 1, 68);
    push(s, 0, 64, f, l, 2, 9);
    return s;
}

static hs_snapshot *make_meta(void)
{
    hs_snapshot *s = hs_snapshot_new(65535);
    const char *argv[] = { "./server", "--port", "8080", "" };
    hs_snapshot_meta m = {
        .timestamp = 1732467300.25, .elapsed = 12.5, .pid = 31337, .ppid = -1,
        .program = "/usr/local/bin/server", .argc = 4, .argv = argv, .kind = "final",
        .traced_current = 1 << 20, .traced_peak = 3 << 20, .tracer_memory = 65536,
        .lost_blocks = 3, .lost_bytes = 300, .unknown_frees = 12, .tracer_oom = 1, .trimmed = 1,
    };
    if (hs_snapshot_set_meta(s, &m) < 0)
        die("meta");
    hs_frame f = { "a.c", 1, "f", "", 0x10 };
    push(s, 0, 1, &f, NULL, 1, 1);
    return s;
}

/* A couple of hundred traces over twenty stacks. */
static hs_snapshot *make_many(void)
{
    hs_snapshot *s = hs_snapshot_new(8);
    const hs_tb *tbs[20];
    for (int i = 0; i < 20; i++) {
        hs_frame f[6];
        char names[6][24];
        for (int k = 0; k < 6; k++) {
            snprintf(names[k], sizeof(names[k]), "src/m%d.c", (i + k) % 9);
            f[k] = (hs_frame){ names[k], (unsigned)(10 * k + i), k ? "caller" : "alloc", "app",
                               (uintptr_t)(0x400000 + 16 * i + k) };
        }
        if ((tbs[i] = hs_store_tb(s->store, f, NULL, (size_t)(1 + i % 6), 6 + i)) == NULL)
            die("out of memory");
    }
    for (int i = 0; i < 200; i++)
        if (hs_snapshot_push(s, i % 13 == 0 ? 2 : 0, (size_t)(i * 37 % 3000), tbs[i * 7 % 20]) < 0)
            die("out of memory");
    return s;
}

/* A section with a correct header and checksum, appended to b. */
static size_t put_section(unsigned char *b, uint32_t type, const void *payload, size_t len)
{
    hs_put_le32(b, type);
    hs_put_le64(b + 4, len);
    hs_put_le32(b + 12, hs_crc32(hs_crc32(0, b, 12), payload, len));
    memcpy(b + HS_SECTION_HEADER_LEN, payload, len);
    return HS_SECTION_HEADER_LEN + len;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: gen_corpus DIR");
    outdir = argv[1];

    hs_snapshot *empty = hs_snapshot_new(1), *loc = make_loc(), *meta = make_meta(),
                *many = make_many();
    save_snapshot("valid-empty.hsnap", empty);
    save_snapshot("valid-loc.hsnap", loc);
    save_snapshot("valid-meta.hsnap", meta);
    save_snapshot("valid-many.hsnap", many);

    size_t n;
    unsigned char *buf = encode(loc, &n);
    unsigned char *b = malloc(n + 256);
    if (b == NULL)
        die("out of memory");

    /* an unknown section before the end: skipped by readers */
    size_t endpos = n - HS_SECTION_HEADER_LEN;
    memcpy(b, buf, endpos);
    size_t m = endpos + put_section(b + endpos, HS_FOURCC('X', 'T', 'R', 'A'), "future", 6);
    memcpy(b + m, buf + endpos, HS_SECTION_HEADER_LEN);
    save("valid-unknown-section.hsnap", b, m + HS_SECTION_HEADER_LEN);

    save("broken-truncated.hsnap", buf, n - 20);
    memcpy(b, buf, n);
    b[n / 2] ^= 0x40;
    save("broken-checksum.hsnap", b, n);
    memcpy(b, buf, n);
    b[1] = 'X';
    save("broken-magic.hsnap", b, n);
    memcpy(b, buf, n);
    hs_put_le32(b + HS_FILE_MAGIC_LEN, 2);
    save("broken-version.hsnap", b, n);

    /* valid checksums, a traceback pointing past the frame table */
    unsigned char tbk[8];
    size_t t = hs_varint_put(tbk, 1);
    t += hs_varint_put(tbk + t, 1);
    t += hs_varint_put(tbk + t, 0);
    t += hs_varint_put(tbk + t, 9999);
    size_t pos = HS_FILE_HEADER_LEN, out = HS_FILE_HEADER_LEN;
    memcpy(b, buf, HS_FILE_HEADER_LEN);
    while (pos < n) {
        uint32_t type = hs_get_le32(buf + pos);
        size_t len = (size_t)hs_get_le64(buf + pos + 4);
        if (type == HS_SEC_TRACEBACKS)
            out += put_section(b + out, type, tbk, t);
        else {
            memcpy(b + out, buf + pos, HS_SECTION_HEADER_LEN + len);
            out += HS_SECTION_HEADER_LEN + len;
        }
        pos += HS_SECTION_HEADER_LEN + len;
    }
    save("broken-index.hsnap", b, out);

    free(b);
    hs_free(buf);
    hs_snapshot_free(empty);
    hs_snapshot_free(loc);
    hs_snapshot_free(meta);
    hs_snapshot_free(many);
    return 0;
}
