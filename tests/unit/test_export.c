/*
 * test_export.c - src/output: the JSON writer (escapes, invalid UTF-8, numbers, nesting, compact
 * and pretty layout), folded stacks and the JSON dump of literal snapshots (exact text, plain and
 * against a base), and pprof profiles: decoded back here with zlib and protobuf-c, then read by
 * the real pprof (`go tool pprof -raw` and `-top`), which must show the expected functions,
 * locations and values.  Every export is also run with each of its allocations failing in turn
 * (-ENOMEM, nothing leaked: LeakSanitizer checks at exit) and against a full disk (-ENOSPC).
 *
 * The pprof read-back needs Go's toolchain (Debian golang-go).  Without `go` in PATH that part
 * is skipped with a message, except when CI is set in the environment: CI installs it
 * (scripts/install-deps.sh), so there its absence is a failure.  Go runs offline
 * (GOPROXY=off, GOTOOLCHAIN=local), with its cache in the build directory (build/gocache, found
 * from this program's own path, build/asan/tests/test_export).
 */
#include "unit.h"
#include "output/export.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "profile.pb-c.h"

/* ---- allocation failure injection ----------------------------------------------------------- */

#include "oom.h"

/* ---- capturing output ----------------------------------------------------------------------- */

typedef struct mem {
    char *buf;
    size_t len;
    FILE *f;
} mem;

static FILE *mem_open(mem *m)
{
    m->buf = NULL;
    m->len = 0;
    m->f = open_memstream(&m->buf, &m->len);
    assert_non_null(m->f);
    return m->f;
}

/* Closes the stream; the text stays in m->buf (free it). */
static char *mem_close(mem *m)
{
    assert_int_equal(fclose(m->f), 0);
    return m->buf;
}

#define JSON_CHECK(pretty, expected, ...)                                                   \
    do {                                                                                    \
        mem m_;                                                                             \
        hs_json j_;                                                                         \
        hs_json_init(&j_, mem_open(&m_), (pretty));                                         \
        hs_json *j = &j_;                                                                   \
        __VA_ARGS__;                                                                        \
        char *got_ = mem_close(&m_);                                                        \
        assert_string_equal(got_, (expected));                                              \
        free(got_);                                                                         \
    } while (0)

/* ---- the JSON writer ------------------------------------------------------------------------- */

static void test_json_escapes(void **state)
{
    (void)state;
    JSON_CHECK(0, "\"plain text / ok\"\n", hs_json_string(j, "plain text / ok"));
    JSON_CHECK(0, "\"q\\\"b\\\\s\"\n", hs_json_string(j, "q\"b\\s"));
    JSON_CHECK(0, "\"\\b\\f\\n\\r\\t\\u0001\\u001f\\u000b\x7f \"\n",
               hs_json_string(j, "\b\f\n\r\t\x01\x1f\x0b\x7f "));
    JSON_CHECK(0, "\"\"\n", hs_json_string(j, ""));
    JSON_CHECK(0, "null\n", hs_json_string(j, NULL));
    /* Keys are escaped the same way. */
    JSON_CHECK(0, "{\"a\\\"\\n\":1}\n",
               hs_json_begin_object(j); hs_json_key(j, "a\"\n"); hs_json_int(j, 1);
               hs_json_end_object(j));
}

static void test_json_utf8(void **state)
{
    (void)state;
    /* Valid UTF-8 of every length is copied as is. */
    JSON_CHECK(0, "\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf\"\n",
               hs_json_string(j, "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf"));
    /* One U+FFFD per maximal invalid subpart (Unicode's recommended practice). */
    JSON_CHECK(0, "\"a\\ufffdb\"\n", hs_json_string(j, "a\xff" "b"));            /* FF */
    JSON_CHECK(0, "\"\\ufffd\"\n", hs_json_string(j, "\x80"));                    /* lone continuation */
    JSON_CHECK(0, "\"\\ufffd\"\n", hs_json_string(j, "\xc3"));                    /* truncated at end */
    JSON_CHECK(0, "\"\\ufffd(\"\n", hs_json_string(j, "\xc3("));                  /* bad continuation */
    JSON_CHECK(0, "\"\\ufffdx\"\n", hs_json_string(j, "\xe2\x82x"));              /* 3-byte, cut */
    JSON_CHECK(0, "\"\\ufffd\"\n", hs_json_string(j, "\xf0\x9f\x98"));            /* 4-byte, cut */
    JSON_CHECK(0, "\"\\ufffd\\ufffd\"\n", hs_json_string(j, "\xc0\xaf"));        /* overlong '/' */
    JSON_CHECK(0, "\"\\ufffd\\ufffd\\ufffd\"\n", hs_json_string(j, "\xe0\x80\xaf")); /* overlong */
    JSON_CHECK(0, "\"\\ufffd\\ufffd\\ufffd\"\n", hs_json_string(j, "\xed\xa0\x80")); /* surrogate */
    JSON_CHECK(0, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"\n",
               hs_json_string(j, "\xf4\x90\x80\x80"));                              /* > U+10FFFF */
    JSON_CHECK(0, "\"\\ufffd\\ufffd\"\n", hs_json_string(j, "\xf5\x80"));        /* F5 lead */
    JSON_CHECK(0, "\"\\ufffd\\ufffd\\\"\xc3\xa9\"\n", hs_json_string(j, "\xfe\xff\"\xc3\xa9"));
    /* The shared validator. */
    size_t bad = 0;
    assert_int_equal(hs_utf8_seq((const unsigned char *)"\xe2\x82\xac", 3, &bad), 3);
    assert_int_equal(hs_utf8_seq((const unsigned char *)"\xe2\x82\xac", 2, &bad), 0);
    assert_int_equal(bad, 2);
}

static void test_json_numbers(void **state)
{
    (void)state;
    JSON_CHECK(0, "[0,-1,9223372036854775807,-9223372036854775808,18446744073709551615]\n",
               hs_json_begin_array(j); hs_json_int(j, 0); hs_json_int(j, -1);
               hs_json_int(j, LLONG_MAX); hs_json_int(j, LLONG_MIN);
               hs_json_uint(j, ULLONG_MAX); hs_json_end_array(j));
    JSON_CHECK(0, "[1,0.10000000000000001,-0,2.5,1.0000000000000001e+300,4.9406564584124654e-324]\n",
               hs_json_begin_array(j); hs_json_double(j, 1.0); hs_json_double(j, 0.1);
               hs_json_double(j, -0.0); hs_json_double(j, 2.5); hs_json_double(j, 1e300);
               hs_json_double(j, 4.9406564584124654e-324); hs_json_end_array(j));
    JSON_CHECK(0, "[null,null,null,true,false,null]\n",
               hs_json_begin_array(j); hs_json_double(j, NAN); hs_json_double(j, INFINITY);
               hs_json_double(j, -INFINITY); hs_json_bool(j, 7); hs_json_bool(j, 0);
               hs_json_null(j); hs_json_end_array(j));
    /* A locale whose decimal point is ',' changes nothing (when one is installed: LOCPATH). */
    const char *comma[] = { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "ru_RU.UTF-8" };
    for (size_t i = 0; i < sizeof(comma) / sizeof(comma[0]); i++) {
        if (setlocale(LC_NUMERIC, comma[i]) == NULL)
            continue;
        JSON_CHECK(0, "[2.5,1234567.125]\n", hs_json_begin_array(j); hs_json_double(j, 2.5);
                   hs_json_double(j, 1234567.125); hs_json_end_array(j));
        setlocale(LC_NUMERIC, "C");
        break;
    }
}

static void build_nested(hs_json *j)
{
    hs_json_begin_object(j);
    hs_json_key(j, "a");
    hs_json_begin_array(j);
    hs_json_int(j, 1);
    hs_json_int(j, 2);
    hs_json_begin_object(j);
    hs_json_end_object(j);
    hs_json_begin_array(j);
    hs_json_end_array(j);
    hs_json_end_array(j);
    hs_json_key(j, "b");
    hs_json_begin_object(j);
    hs_json_key(j, "c");
    hs_json_null(j);
    hs_json_key(j, "d");
    hs_json_string(j, "x");
    hs_json_end_object(j);
    hs_json_key(j, "e");
    hs_json_begin_array(j);
    hs_json_end_array(j);
    hs_json_end_object(j);
}

static void test_json_layout(void **state)
{
    (void)state;
    JSON_CHECK(0, "{\"a\":[1,2,{},[]],\"b\":{\"c\":null,\"d\":\"x\"},\"e\":[]}\n", build_nested(j));
    JSON_CHECK(1,
               "{\n"
               "  \"a\": [\n"
               "    1,\n"
               "    2,\n"
               "    {},\n"
               "    []\n"
               "  ],\n"
               "  \"b\": {\n"
               "    \"c\": null,\n"
               "    \"d\": \"x\"\n"
               "  },\n"
               "  \"e\": []\n"
               "}\n",
               build_nested(j));
    /* Top-level values each end their line (JSON Lines). */
    JSON_CHECK(0, "1\n{}\n\"s\"\n", hs_json_int(j, 1); hs_json_begin_object(j);
               hs_json_end_object(j); hs_json_string(j, "s"));
    JSON_CHECK(1, "[]\n{}\n", hs_json_begin_array(j); hs_json_end_array(j);
               hs_json_begin_object(j); hs_json_end_object(j));
}

/* Deeper than the 64 levels the writer tracks: still valid, commas exact.  Each level is
 * [ <child>, <n> ] with an empty array and a number at the bottom. */
static void test_json_deep(void **state)
{
    (void)state;
    enum { DEPTH = 200 };
    char expected[DEPTH * 16];
    size_t o = 0;
    for (int i = 0; i < DEPTH; i++)
        expected[o++] = '[';
    o += (size_t)sprintf(expected + o, "[],0");
    for (int i = DEPTH - 1; i >= 0; i--)
        o += (size_t)sprintf(expected + o, "],%d", i);
    /* the outermost level has no sibling number: drop the last ",0" */
    o -= 2;
    expected[o++] = '\n';
    expected[o] = '\0';
    JSON_CHECK(0, expected,
               for (int i = 0; i < DEPTH; i++) hs_json_begin_array(j);
               hs_json_begin_array(j); hs_json_end_array(j); hs_json_int(j, 0);
               for (int i = DEPTH - 1; i >= 0; i--) {
                   hs_json_end_array(j);
                   if (i > 0)
                       hs_json_int(j, i);
               });
}

static void test_json_frames(void **state)
{
    (void)state;
    const hs_frame fr[] = {
        { .filename = "a.c", .lineno = 2, .function = "f\"1", .object = "/bin/p", .address = 16 },
        { .filename = "<unknown>", .lineno = 0, .function = "", .object = "", .address = 0 },
    };
    const hs_traceback tb = { .nframes = 2, .total_nframe = 9, .frames = fr };
    JSON_CHECK(0,
               "[{\"filename\":\"a.c\",\"lineno\":2,\"function\":\"f\\\"1\",\"object\":\"/bin/p\"},"
               "{\"filename\":\"<unknown>\",\"lineno\":0,\"function\":\"\",\"object\":\"\"}]\n",
               hs_json_traceback(j, &tb));
    const hs_traceback empty = { .nframes = 0, .total_nframe = 0, .frames = NULL };
    JSON_CHECK(1, "[]\n", hs_json_traceback(j, &empty));
    JSON_CHECK(1,
               "{\n"
               "  \"filename\": \"a.c\",\n"
               "  \"lineno\": 2,\n"
               "  \"function\": \"f\\\"1\",\n"
               "  \"object\": \"/bin/p\"\n"
               "}\n",
               hs_json_frame(j, &fr[0]));
}

/* ---- literal snapshots ----------------------------------------------------------------------- */

#define FN(fn, file, line) \
    ((hs_frame){ .filename = (file), .lineno = (line), .function = (fn), .object = "", .address = 0 })

/* For folded stacks: key-equal tracebacks, inlining, odd names, no frame, no function, 0 bytes. */
static hs_snapshot *make_folded(void)
{
    hs_snapshot *s = hs_snapshot_new(5);
    assert_non_null(s);
    for (int i = 0; i < 3; i++)
        ADD(s, 0, 10, FN("alloc_a", "a.c", 2), FN("main", "m.c", 10));
    ADD(s, 1, 20, FN("other_name", "a.c", 2), FN("main", "m.c", 10));   /* same key as above */
    ADD(s, 0, 5000, FN("helper", "h.h", 5), FN("outer", "f.c", 20), FN("main", "m.c", 11));
    ADD(s, 0, 7, FN("weird;name\nx", "w.c", 1), FN("main", "m.c", 12));
    assert_int_equal(hs_snapshot_add_trace(s, 0, 66, NULL, 0, 0), 0);
    ADD(s, 2, 1, F("x.c", 3));
    ADD(s, 0, 0, FN("zero", "z.c", 1));
    return s;
}

static hs_snapshot *make_folded_base(void)
{
    hs_snapshot *s = hs_snapshot_new(5);
    assert_non_null(s);
    for (int i = 0; i < 2; i++)
        ADD(s, 0, 10, FN("alloc_a", "a.c", 2), FN("main", "m.c", 10));
    ADD(s, 0, 100, FN("gone", "g.c", 9), FN("main", "m.c", 13));
    assert_int_equal(hs_snapshot_add_trace(s, 0, 66, NULL, 0, 0), 0);
    return s;
}

static char *folded(const hs_snapshot *s, const hs_snapshot *base)
{
    mem m;
    assert_int_equal(hs_export_folded(s, base, mem_open(&m)), 0);
    return mem_close(&m);
}

static void test_folded(void **state)
{
    (void)state;
    hs_snapshot *s = make_folded(), *base = make_folded_base();
    char *got = folded(s, NULL);
    assert_string_equal(got,
                        "<unknown>:0 66\n"
                        "main (m.c:10);alloc_a (a.c:2) 50\n"
                        "main (m.c:11);outer (f.c:20);helper (h.h:5) 5000\n"
                        "main (m.c:12);weird,name?x (w.c:1) 7\n"
                        "x.c:3 1\n"
                        "zero (z.c:1) 0\n");
    free(got);
    /* flamegraph.pl's differential form: stack, base bytes, bytes; 0 in both left out. */
    got = folded(s, base);
    assert_string_equal(got,
                        "<unknown>:0 66 66\n"
                        "main (m.c:10);alloc_a (a.c:2) 20 50\n"
                        "main (m.c:11);outer (f.c:20);helper (h.h:5) 0 5000\n"
                        "main (m.c:12);weird,name?x (w.c:1) 0 7\n"
                        "main (m.c:13);gone (g.c:9) 100 0\n"
                        "x.c:3 0 1\n");
    free(got);
    /* Empty snapshots: no line. */
    hs_snapshot *e = hs_snapshot_new(1);
    got = folded(e, NULL);
    assert_string_equal(got, "");
    free(got);
    got = folded(e, e);
    assert_string_equal(got, "");
    free(got);
    hs_snapshot_free(e);
    hs_snapshot_free(base);
    hs_snapshot_free(s);
}

/* For the JSON dump. */
static hs_snapshot *make_json(void)
{
    hs_snapshot *s = hs_snapshot_new(3);
    assert_non_null(s);
    const char *argv[] = { "prog", "-x", "\xc3\xa9\xff" };
    hs_snapshot_meta m = {
        .timestamp = 1700000000.5, .elapsed = 2.25, .pid = 42, .ppid = 1, .program = "/bin/prog",
        .argc = 3, .argv = argv, .kind = "final", .traced_current = 60, .traced_peak = 80,
        .tracer_memory = 1000, .lost_blocks = 1, .lost_bytes = 2, .unknown_frees = 3,
        .tracer_oom = 0, .trimmed = 1,
    };
    assert_int_equal(hs_snapshot_set_meta(s, &m), 0);
    const hs_frame f1 = { .filename = "a.c", .lineno = 2, .function = "f1", .object = "/bin/prog",
                          .address = 0x1234 };
    const hs_frame f2[] = { FN("g", "b.c", 3), f1 };
    assert_int_equal(hs_snapshot_add_trace(s, 0, 10, &f1, 1, 1), 0);
    assert_int_equal(hs_snapshot_add_trace(s, 5, 20, f2, 2, 5), 0);
    assert_int_equal(hs_snapshot_add_trace(s, 0, 30, &f1, 1, 1), 0);
    return s;
}

static char *json_dump(const hs_snapshot *s, const hs_snapshot *base, int pretty)
{
    mem m;
    assert_int_equal(hs_export_json_ex(s, base, mem_open(&m), pretty), 0);
    return mem_close(&m);
}

#define META_J                                                                                \
    "{\"timestamp\":1700000000.5,\"elapsed\":2.25,\"pid\":42,\"ppid\":1,\"program\":\"/bin/prog\"," \
    "\"argc\":3,\"argv\":[\"prog\",\"-x\",\"\xc3\xa9\\ufffd\"],\"kind\":\"final\","            \
    "\"traced_current\":60,\"traced_peak\":80,\"tracer_memory\":1000,\"lost_blocks\":1,"      \
    "\"lost_bytes\":2,\"unknown_frees\":3,\"tracer_oom\":false,\"trimmed\":true}"
#define F1_J "{\"filename\":\"a.c\",\"lineno\":2,\"function\":\"f1\",\"object\":\"/bin/prog\"}"
#define G_J "{\"filename\":\"b.c\",\"lineno\":3,\"function\":\"g\",\"object\":\"\"}"

static void test_json_dump(void **state)
{
    (void)state;
    hs_snapshot *s = make_json();
    char *got = json_dump(s, NULL, 0);
    assert_string_equal(got,
                        "{\"version\":1,\"type\":\"snapshot\",\"traceback_limit\":3,\"meta\":" META_J ","
                        "\"traces\":[{\"domain\":0,\"size\":10,\"traceback_index\":0},"
                        "{\"domain\":5,\"size\":20,\"traceback_index\":1},"
                        "{\"domain\":0,\"size\":30,\"traceback_index\":0}],"
                        "\"tracebacks\":[{\"total_nframe\":1,\"frames\":[" F1_J "]},"
                        "{\"total_nframe\":5,\"frames\":[" G_J "," F1_J "]}]}\n");
    free(got);

    /* The default is pretty-printed: the same document. */
    mem m;
    assert_int_equal(hs_export_json(s, NULL, mem_open(&m)), 0);
    got = mem_close(&m);
    const char *head = "{\n  \"version\": 1,\n  \"type\": \"snapshot\",\n  \"traceback_limit\": 3,\n"
                       "  \"meta\": {\n    \"timestamp\": 1700000000.5,\n";
    assert_true(strncmp(got, head, strlen(head)) == 0);
    assert_non_null(strstr(got, "\n  \"tracebacks\": [\n    {\n      \"total_nframe\": 1,\n"
                                "      \"frames\": [\n        {\n          \"filename\": \"a.c\",\n"));
    assert_true(strlen(got) > 8 && strcmp(got + strlen(got) - 8, "}\n  ]\n}\n") == 0);
    free(got);

    /* An empty snapshot with default metadata. */
    hs_snapshot *e = hs_snapshot_new(1);
    got = json_dump(e, NULL, 0);
    assert_string_equal(got,
                        "{\"version\":1,\"type\":\"snapshot\",\"traceback_limit\":1,\"meta\":"
                        "{\"timestamp\":0,\"elapsed\":0,\"pid\":0,\"ppid\":0,\"program\":\"\","
                        "\"argc\":0,\"argv\":[],\"kind\":\"\",\"traced_current\":0,\"traced_peak\":0,"
                        "\"tracer_memory\":0,\"lost_blocks\":0,\"lost_bytes\":0,\"unknown_frees\":0,"
                        "\"tracer_oom\":false,\"trimmed\":false},\"traces\":[],\"tracebacks\":[]}\n");
    free(got);

    /* Diff: compare_to by traceback, in its order, tracebacks inline. */
    got = json_dump(s, e, 0);
    assert_string_equal(got,
                        "{\"version\":1,\"type\":\"diff\",\"key\":\"traceback\",\"traceback_limit\":3,"
                        "\"meta\":" META_J ",\"base\":{\"traceback_limit\":1,\"meta\":"
                        "{\"timestamp\":0,\"elapsed\":0,\"pid\":0,\"ppid\":0,\"program\":\"\","
                        "\"argc\":0,\"argv\":[],\"kind\":\"\",\"traced_current\":0,\"traced_peak\":0,"
                        "\"tracer_memory\":0,\"lost_blocks\":0,\"lost_bytes\":0,\"unknown_frees\":0,"
                        "\"tracer_oom\":false,\"trimmed\":false}},\"diff\":["
                        "{\"size\":40,\"size_diff\":40,\"count\":2,\"count_diff\":2,"
                        "\"traceback\":{\"total_nframe\":1,\"frames\":[" F1_J "]}},"
                        "{\"size\":20,\"size_diff\":20,\"count\":1,\"count_diff\":1,"
                        "\"traceback\":{\"total_nframe\":5,\"frames\":[" G_J "," F1_J "]}}]}\n");
    free(got);
    got = json_dump(e, s, 0);
    assert_non_null(strstr(got, ",\"diff\":[{\"size\":0,\"size_diff\":-40,\"count\":0,\"count_diff\":-2,"));
    free(got);
    hs_snapshot_free(e);
    hs_snapshot_free(s);
}

/* ---- pprof ----------------------------------------------------------------------------------- */

/* Adds a trace with locations (build-ids), through the internal store as the tracer does. */
static void add_loc(hs_snapshot *s, unsigned dom, size_t size, const hs_frame *f,
                    const hs_frame_loc *loc, size_t n)
{
    const hs_tb *tb = hs_store_tb(s->store, f, loc, n, n);
    assert_non_null(tb);
    assert_int_equal(hs_snapshot_push(s, dom, size, tb), 0);
}

#define PROG "/usr/bin/prog"
#define LIBFOO "/usr/lib/libfoo.so"
#define FR(fn, file, line, obj, addr) \
    ((hs_frame){ .filename = (file), .lineno = (line), .function = (fn), .object = (obj), .address = (addr) })

/* Traces: A (3 x 10 B) alloc_a <- main; B (5000 B) helper inlined into outer, in libfoo, <- main;
 * C (7 B) rec <- rec (recursion through one call site) <- main; D (66 B) no frame; E (1 B) a
 * frame without function or object.  Base: A 2 x 10 B, B 1000 B, G (100 B) gone <- main. */
static hs_snapshot *make_pprof(int base)
{
    hs_snapshot *s = hs_snapshot_new(8);
    assert_non_null(s);
    const char *argv[] = { PROG };
    hs_snapshot_meta m = { .timestamp = 1700000000.25, .elapsed = 3.5, .pid = base ? 41 : 42,
                           .program = PROG, .argc = 1, .argv = argv, .kind = "final" };
    assert_int_equal(hs_snapshot_set_meta(s, &m), 0);
    const hs_frame_loc lp = { .build_id = "0123456789abcdef", .offset = 0x10 };
    const hs_frame_loc lf = { .build_id = "feedface", .offset = 0x20 };
    const hs_frame a[] = { FR("alloc_a", "a.c", 2, PROG, 0x401010), FR("main", "m.c", 10, PROG, 0x401100) };
    const hs_frame_loc al[] = { lp, lp };
    const hs_frame b[] = { FR("helper", "h.h", 5, LIBFOO, 0x7f0000002222),
                           FR("outer", "f.c", 20, LIBFOO, 0x7f0000002222),
                           FR("main", "m.c", 11, PROG, 0x401108) };
    const hs_frame_loc bl[] = { lf, lf, lp };
    const hs_frame c[] = { FR("rec", "r.c", 7, PROG, 0x403000), FR("rec", "r.c", 7, PROG, 0x403000),
                           FR("main", "m.c", 12, PROG, 0x401110) };
    const hs_frame_loc cl[] = { lp, lp, lp };
    const hs_frame g[] = { FR("gone", "g.c", 9, PROG, 0x405000), FR("main", "m.c", 13, PROG, 0x401120) };
    const hs_frame_loc gl[] = { lp, lp };
    for (int i = 0; i < (base ? 2 : 3); i++)
        add_loc(s, 0, 10, a, al, 2);
    add_loc(s, 0, base ? 1000 : 5000, b, bl, 3);
    if (base) {
        add_loc(s, 0, 100, g, gl, 2);
    } else {
        add_loc(s, 0, 7, c, cl, 3);
        assert_int_equal(hs_snapshot_add_trace(s, 0, 66, NULL, 0, 0), 0);
        ADD(s, 0, 1, F("x.c", 3));
    }
    return s;
}

/* Writes a profile to a new temporary file; returns its path (free it, unlink it). */
static char *write_profile(const hs_snapshot *s, const hs_snapshot *base)
{
    const char *tmp = getenv("TMPDIR");
    char *path = NULL;
    assert_true(asprintf(&path, "%s/hs-test-export-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp") > 0);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    assert_non_null(f);
    assert_int_equal(hs_export_pprof(s, base, f), 0);
    assert_int_equal(fclose(f), 0);
    return path;
}

static Perftools__Profiles__Profile *read_profile(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char gz[1 << 16], raw[1 << 18];
    size_t n = fread(gz, 1, sizeof(gz), f);
    assert_true(n > 18 && n < sizeof(gz));
    fclose(f);
    assert_int_equal(gz[0], 0x1f);      /* gzip magic */
    assert_int_equal(gz[1], 0x8b);
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = gz;
    z.avail_in = (uInt)n;
    z.next_out = raw;
    z.avail_out = sizeof(raw);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = sizeof(raw) - z.avail_out;
    inflateEnd(&z);
    Perftools__Profiles__Profile *p = perftools__profiles__profile__unpack(NULL, len, raw);
    assert_non_null(p);
    return p;
}

static const char *pstr(const Perftools__Profiles__Profile *p, int64_t i)
{
    assert_true(i >= 0 && (size_t)i < p->n_string_table);
    return p->string_table[i];
}

static const Perftools__Profiles__Location *ploc(const Perftools__Profiles__Profile *p, uint64_t id)
{
    for (size_t i = 0; i < p->n_location; i++)
        if (p->location[i]->id == id)
            return p->location[i];
    fail_msg("no location %llu", (unsigned long long)id);
    return NULL;
}

static const char *pfunc(const Perftools__Profiles__Profile *p, const Perftools__Profiles__Line *l)
{
    for (size_t i = 0; i < p->n_function; i++)
        if (p->function[i]->id == l->function_id)
            return pstr(p, p->function[i]->name);
    fail_msg("no function %llu", (unsigned long long)l->function_id);
    return NULL;
}

/* The sample whose leaf line is function `fn`. */
static const Perftools__Profiles__Sample *psample(const Perftools__Profiles__Profile *p, const char *fn)
{
    for (size_t i = 0; i < p->n_sample; i++) {
        const Perftools__Profiles__Location *l = ploc(p, p->sample[i]->location_id[0]);
        if (strcmp(pfunc(p, l->line[0]), fn) == 0)
            return p->sample[i];
    }
    return NULL;
}

static void test_pprof_decode(void **state)
{
    (void)state;
    hs_snapshot *s = make_pprof(0), *base = make_pprof(1);
    char *path = write_profile(s, NULL);
    Perftools__Profiles__Profile *p = read_profile(path);
    assert_string_equal(pstr(p, 0), "");
    assert_int_equal(p->n_sample_type, 2);
    assert_string_equal(pstr(p, p->sample_type[0]->type), "inuse_objects");
    assert_string_equal(pstr(p, p->sample_type[0]->unit), "count");
    assert_string_equal(pstr(p, p->sample_type[1]->type), "inuse_space");
    assert_string_equal(pstr(p, p->sample_type[1]->unit), "bytes");
    assert_string_equal(pstr(p, p->default_sample_type), "inuse_space");
    assert_string_equal(pstr(p, p->period_type->type), "space");
    assert_string_equal(pstr(p, p->period_type->unit), "bytes");
    assert_int_equal(p->period, 1);
    assert_int_equal(p->time_nanos, 1700000000250000000LL);
    assert_int_equal(p->duration_nanos, 3500000000LL);
    assert_true(p->n_comment >= 2);
    assert_string_equal(pstr(p, p->comment[1]), "program: " PROG " (pid 42)");

    /* Mappings: the program first, with its build-id; libfoo; nothing for object "". */
    assert_int_equal(p->n_mapping, 2);
    assert_int_equal(p->mapping[0]->id, 1);
    assert_string_equal(pstr(p, p->mapping[0]->filename), PROG);
    assert_string_equal(pstr(p, p->mapping[0]->build_id), "0123456789abcdef");
    assert_true(p->mapping[0]->has_functions && p->mapping[0]->has_filenames &&
                p->mapping[0]->has_line_numbers && !p->mapping[0]->has_inline_frames);
    assert_string_equal(pstr(p, p->mapping[1]->filename), LIBFOO);
    assert_string_equal(pstr(p, p->mapping[1]->build_id), "feedface");
    assert_true(p->mapping[1]->has_inline_frames);

    assert_int_equal(p->n_sample, 5);
    const Perftools__Profiles__Sample *x = psample(p, "alloc_a");
    assert_non_null(x);
    assert_int_equal(x->n_value, 2);
    assert_int_equal(x->value[0], 3);
    assert_int_equal(x->value[1], 30);
    assert_int_equal(x->n_location_id, 2);
    const Perftools__Profiles__Location *l = ploc(p, x->location_id[1]);
    assert_string_equal(pfunc(p, l->line[0]), "main");
    assert_int_equal(l->line[0]->line, 10);
    assert_int_equal(l->address, 0x401100);
    assert_int_equal(l->mapping_id, 1);

    /* Inlining: helper and outer share one Location, innermost first. */
    x = psample(p, "helper");
    assert_non_null(x);
    assert_int_equal(x->value[0], 1);
    assert_int_equal(x->value[1], 5000);
    assert_int_equal(x->n_location_id, 2);
    l = ploc(p, x->location_id[0]);
    assert_int_equal(l->n_line, 2);
    assert_string_equal(pfunc(p, l->line[0]), "helper");
    assert_int_equal(l->line[0]->line, 5);
    assert_string_equal(pfunc(p, l->line[1]), "outer");
    assert_int_equal(l->line[1]->line, 20);
    assert_int_equal(l->mapping_id, 2);
    assert_int_equal(l->address, 0x7f0000002222);

    /* Recursion through one call site: two Locations (the same one twice), not one. */
    x = psample(p, "rec");
    assert_non_null(x);
    assert_int_equal(x->n_location_id, 3);
    assert_int_equal(x->location_id[0], x->location_id[1]);
    assert_int_equal(ploc(p, x->location_id[0])->n_line, 1);
    assert_int_equal(x->value[1], 7);

    /* No frame: <unknown>:0; no function, no object: mapping 0. */
    x = psample(p, "");
    assert_non_null(x);
    for (size_t i = 0; i < p->n_sample; i++) {
        l = ploc(p, p->sample[i]->location_id[0]);
        if (l->mapping_id == 0 && p->sample[i]->value[1] == 66)
            assert_int_equal(l->line[0]->line, 0);
        if (l->mapping_id == 0 && p->sample[i]->value[1] == 1)
            assert_int_equal(l->line[0]->line, 3);
    }
    perftools__profiles__profile__free_unpacked(p, NULL);
    unlink(path);
    free(path);

    /* Against a base: differences, negative ones included; unchanged tracebacks left out. */
    path = write_profile(s, base);
    p = read_profile(path);
    assert_int_equal(p->n_sample, 6);
    x = psample(p, "alloc_a");
    assert_int_equal(x->value[0], 1);
    assert_int_equal(x->value[1], 10);
    x = psample(p, "helper");
    assert_int_equal(x->value[0], 0);
    assert_int_equal(x->value[1], 4000);
    x = psample(p, "gone");
    assert_non_null(x);
    assert_int_equal(x->value[0], -1);
    assert_int_equal(x->value[1], -100);
    perftools__profiles__profile__free_unpacked(p, NULL);
    unlink(path);
    free(path);

    /* The same snapshot against itself: no sample. */
    path = write_profile(s, s);
    p = read_profile(path);
    assert_int_equal(p->n_sample, 0);
    perftools__profiles__profile__free_unpacked(p, NULL);
    unlink(path);
    free(path);

    /* Equal snapshots give equal bytes (gzip header without a time). */
    mem m1, m2;
    assert_int_equal(hs_export_pprof(s, NULL, mem_open(&m1)), 0);
    assert_int_equal(hs_export_pprof(s, NULL, mem_open(&m2)), 0);
    char *b1 = mem_close(&m1), *b2 = mem_close(&m2);
    assert_int_equal(m1.len, m2.len);
    assert_memory_equal(b1, b2, m1.len);
    free(b1);
    free(b2);
    hs_snapshot_free(base);
    hs_snapshot_free(s);
}

/* Invalid UTF-8 in names stays out of the proto3 strings. */
static void test_pprof_utf8(void **state)
{
    (void)state;
    hs_snapshot *s = hs_snapshot_new(2);
    ADD(s, 0, 9, FN("f\xff" "n", "a\xc3.c", 4));
    char *path = write_profile(s, NULL);
    Perftools__Profiles__Profile *p = read_profile(path);
    assert_int_equal(p->n_function, 1);
    assert_string_equal(pstr(p, p->function[0]->name), "f\xef\xbf\xbdn");
    assert_string_equal(pstr(p, p->function[0]->filename), "a\xef\xbf\xbd.c");
    perftools__profiles__profile__free_unpacked(p, NULL);
    unlink(path);
    free(path);
    hs_snapshot_free(s);
}

/* ---- pprof itself reads the profile back ----------------------------------------------------- */

static int have_go(void)
{
    const char *path = getenv("PATH");
    if (path == NULL)
        return 0;
    char *dirs = strdup(path), *save = NULL;
    int found = 0;
    for (char *d = strtok_r(dirs, ":", &save); d != NULL && !found; d = strtok_r(NULL, ":", &save)) {
        char exe[PATH_MAX];
        snprintf(exe, sizeof(exe), "%s/go", *d ? d : ".");
        found = access(exe, X_OK) == 0;
    }
    free(dirs);
    return found;
}

/* Go's environment: offline, caches in the build directory (this program is
 * <build>/asan/tests/test_export). */
static void go_env(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    char *build = dirname(dirname(dirname(exe)));
    char dir[PATH_MAX + 32];
    snprintf(dir, sizeof(dir), "%s/gocache", build);
    mkdir(dir, 0755);
    setenv("GOCACHE", dir, 1);
    snprintf(dir, sizeof(dir), "%s/gopath", build);
    setenv("GOPATH", dir, 1);
    snprintf(dir, sizeof(dir), "%s/gotmp", build);
    mkdir(dir, 0755);
    setenv("PPROF_TMPDIR", dir, 1);
    setenv("GOPROXY", "off", 1);
    setenv("GOFLAGS", "", 1);
    setenv("GOTOOLCHAIN", "local", 1);
    setenv("GOTELEMETRY", "off", 1);
    setenv("GO111MODULE", "off", 1);
}

/* Runs `go tool pprof <args> <path>`; returns its output (stdout and stderr), and checks that it
 * succeeded. */
static char *pprof(const char *args, const char *path)
{
    char cmd[PATH_MAX + 256];
    snprintf(cmd, sizeof(cmd), "go tool pprof %s %s 2>&1", args, path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    mem m;
    FILE *out = mem_open(&m);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, out);
    int status = pclose(f);
    char *text = mem_close(&m);
    if (status != 0) {
        print_message("%s", text);
        fail_msg("`%s` failed (status %d)", cmd, status);
    }
    return text;
}

/* Each line of `text` that contains every one of the words (a NULL-terminated list). */
static int has_line(const char *text, ...)
{
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[1024];
        snprintf(line, sizeof(line), "%.*s", (int)len, p);
        va_list ap;
        va_start(ap, text);
        int all = 1;
        for (const char *w = va_arg(ap, const char *); w != NULL; w = va_arg(ap, const char *))
            if (strstr(line, w) == NULL)
                all = 0;
        va_end(ap);
        if (all)
            return 1;
        p += len + (e != NULL);
    }
    return 0;
}
/* On failure, pprof's whole output is shown. */
#define HAS_LINE(text, ...)                                                                 \
    do {                                                                                    \
        if (!has_line((text), __VA_ARGS__, (const char *)NULL)) {                           \
            print_message("pprof said:\n%s", (text));                                       \
            fail_msg("no line of pprof's output has all of: %s", #__VA_ARGS__);             \
        }                                                                                   \
    } while (0)

static void test_pprof_go(void **state)
{
    (void)state;
    if (!have_go()) {
        if (getenv("CI") != NULL && getenv("CI")[0] != '\0')
            fail_msg("`go` is not in PATH, but CI is set: scripts/install-deps.sh installs golang-go");
        print_message("SKIPPED: `go` is not in PATH (Debian golang-go): pprof cannot read the "
                      "profile back here\n");
        skip();
    }
    go_env();
    hs_snapshot *s = make_pprof(0), *base = make_pprof(1);
    char *path = write_profile(s, NULL);

    /* -raw: the profile as pprof decoded it. */
    char *out = pprof("-raw", path);
    if (strstr(out, "rror") != NULL || strstr(out, "symboliz") != NULL) {
        print_message("pprof said:\n%s", out);
        fail_msg("pprof reported an error or tried to symbolize");
    }
    HAS_LINE(out, "PeriodType: space bytes");
    HAS_LINE(out, "Period: 1");
    HAS_LINE(out, "inuse_objects/count inuse_space/bytes");
    HAS_LINE(out, " 3 ", " 30: ");              /* the alloc_a sample: 3 blocks, 30 bytes */
    HAS_LINE(out, " 1 ", " 5000: ");
    HAS_LINE(out, " 1 ", " 66: ");
    HAS_LINE(out, "0x401010", "alloc_a", "a.c:2");
    HAS_LINE(out, "0x7f0000002222", "helper", "h.h:5");
    HAS_LINE(out, "outer", "f.c:20");           /* the second Line of the inlined Location */
    HAS_LINE(out, PROG, "0123456789abcdef");
    HAS_LINE(out, LIBFOO, "feedface");
    free(out);

    /* -top by bytes: flat values per function. */
    out = pprof("-top -nodefraction=0 -unit=B -sample_index=inuse_space", path);
    HAS_LINE(out, "5000B", "helper");
    HAS_LINE(out, "30B", "alloc_a");
    HAS_LINE(out, "7B", "rec");
    HAS_LINE(out, "Type: inuse_space");
    free(out);
    out = pprof("-top -nodefraction=0 -sample_index=inuse_objects", path);
    HAS_LINE(out, " 3 ", "alloc_a");
    free(out);
    /* -traces: inlining shown as such. */
    out = pprof("-traces", path);
    HAS_LINE(out, "helper", "(inline)");
    free(out);
    unlink(path);
    free(path);

    /* Against a base: pprof shows the differences, negative ones too. */
    path = write_profile(s, base);
    out = pprof("-top -nodefraction=0 -unit=B -sample_index=inuse_space", path);
    HAS_LINE(out, "4000B", "helper");
    HAS_LINE(out, "-100B", "gone");
    HAS_LINE(out, "10B", "alloc_a");
    free(out);
    unlink(path);
    free(path);
    hs_snapshot_free(base);
    hs_snapshot_free(s);
}

/* ---- failures -------------------------------------------------------------------------------- */

typedef int (*export_fn)(const hs_snapshot *, const hs_snapshot *, FILE *);

/* Every allocation failing in turn: -ENOMEM each time until the export succeeds, nothing leaked
 * (LeakSanitizer at exit). */
static void oom_loop(export_fn fn, const hs_snapshot *s, const hs_snapshot *base)
{
    for (long k = 0;; k++) {
        assert_true(k < 100000);
        mem m;
        FILE *f = mem_open(&m);
        alloc_countdown = k;
        int r = fn(s, base, f);
        int hit = alloc_countdown < 0;          /* the k-th allocation was made (and failed) */
        alloc_countdown = -1;
        free(mem_close(&m));
        if (!hit) {
            assert_int_equal(r, 0);
            return;
        }
        assert_int_equal(r, -ENOMEM);
    }
}

static void test_export_oom(void **state)
{
    (void)state;
    hs_snapshot *s = make_pprof(0), *base = make_pprof(1), *f = make_folded();
    oom_loop(hs_export_folded, f, NULL);
    oom_loop(hs_export_folded, s, base);
    oom_loop(hs_export_json, s, NULL);
    oom_loop(hs_export_json, s, base);
    oom_loop(hs_export_pprof, s, NULL);
    oom_loop(hs_export_pprof, s, base);
    hs_snapshot_free(f);
    hs_snapshot_free(base);
    hs_snapshot_free(s);
}

static void test_export_write_errors(void **state)
{
    (void)state;
    hs_snapshot *s = make_pprof(0), *base = make_pprof(1);
    export_fn fns[] = { hs_export_folded, hs_export_json, hs_export_pprof };
    for (size_t i = 0; i < 3; i++) {
        for (int b = 0; b < 2; b++) {
            FILE *f = fopen("/dev/full", "w");
            if (f == NULL)
                skip();
            assert_int_equal(fns[i](s, b ? base : NULL, f), -ENOSPC);
            fclose(f);
        }
    }
    assert_int_equal(hs_export_folded(NULL, NULL, stdout), -EINVAL);
    assert_int_equal(hs_export_json(s, NULL, NULL), -EINVAL);
    assert_int_equal(hs_export_pprof(NULL, s, stdout), -EINVAL);
    hs_snapshot_free(base);
    hs_snapshot_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escapes),
        cmocka_unit_test(test_json_utf8),
        cmocka_unit_test(test_json_numbers),
        cmocka_unit_test(test_json_layout),
        cmocka_unit_test(test_json_deep),
        cmocka_unit_test(test_json_frames),
        cmocka_unit_test(test_folded),
        cmocka_unit_test(test_json_dump),
        cmocka_unit_test(test_pprof_decode),
        cmocka_unit_test(test_pprof_utf8),
        cmocka_unit_test(test_pprof_go),
        cmocka_unit_test(test_export_oom),
        cmocka_unit_test(test_export_write_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
