/*
 * test_filter.c - filter_traces (SPEC section 5): the table, line numbers, DomainFilter and a
 * domain on a Filter, list semantics, errors, empty tracebacks, and a result independent of its
 * source.
 */
#include "unit.h"
#include "analysis/analysis.h"

#include <errno.h>

/* The SPEC table's traces, told apart by size: t1 = 1, t2 = 2, t3 = 4, u = 8; domain i. */
static hs_snapshot *make_table(void)
{
    hs_snapshot *s = hs_snapshot_new(3);
    assert_non_null(s);
    ADD(s, 0, 1, F("a.c", 2), F("b.c", 3));
    ADD(s, 1, 2, F("b.c", 4), F("b.c", 5));
    ADD(s, 2, 4, F("c.c", 5), F("<unknown>", 0));
    ADD(s, 3, 8, F("<unknown>", 0));
    return s;
}

/* The names of the traces a filtered snapshot kept, in order, space-separated. */
static const char *kept(const hs_snapshot *s)
{
    static char buf[256];
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < hs_snapshot_count(s); i++) {
        size_t size;
        assert_int_equal(hs_snapshot_get(s, i, NULL, &size, NULL), 0);
        const char *name = size == 1 ? "t1" : size == 2 ? "t2" : size == 4 ? "t3"
                         : size == 8 ? "u" : "?";
        pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "%s%s", pos ? " " : "", name);
    }
    return buf;
}

static const char *run(const hs_snapshot *s, const hs_filter *f, size_t n)
{
    hs_snapshot *out = hs_snapshot_filter_traces(s, f, n);
    assert_non_null(out);
    const char *r = kept(out);
    hs_snapshot_free(out);
    return r;
}

static hs_filter filter(int inclusive, const char *pattern, int lineno, int all_frames)
{
    return (hs_filter){ .inclusive = inclusive, .filename_pattern = pattern, .lineno = lineno,
                        .all_frames = all_frames };
}

static hs_filter domain_filter(int inclusive, unsigned domain)
{
    return (hs_filter){ .inclusive = inclusive, .filename_pattern = NULL,
                        .lineno = HS_ANY_LINE, .has_domain = 1, .domain = domain };
}

static void test_spec_table(void **state)
{
    (void)state;
    hs_snapshot *s = make_table();
    hs_filter f;
    f = filter(1, "b.c", HS_ANY_LINE, 1);
    assert_string_equal(run(s, &f, 1), "t1 t2");
    f = filter(1, "b.c", HS_ANY_LINE, 0);
    assert_string_equal(run(s, &f, 1), "t2");
    f = filter(0, "b.c", HS_ANY_LINE, 1);
    assert_string_equal(run(s, &f, 1), "t3 u");
    f = filter(0, "b.c", HS_ANY_LINE, 0);
    assert_string_equal(run(s, &f, 1), "t1 t3 u");
    f = filter(0, "<unknown>", HS_ANY_LINE, 0);
    assert_string_equal(run(s, &f, 1), "t1 t2 t3");
    assert_int_equal(hs_snapshot_count(s), 4);        /* the source is unchanged */
    hs_snapshot_free(s);
}

static void test_patterns_and_lines(void **state)
{
    (void)state;
    hs_snapshot *s = make_table();
    hs_filter f;
    f = filter(1, "*.c", HS_ANY_LINE, 0);
    assert_string_equal(run(s, &f, 1), "t1 t2 t3");
    f = filter(1, "*", HS_ANY_LINE, 0);
    assert_string_equal(run(s, &f, 1), "t1 t2 t3 u");
    f = filter(1, "?.c", HS_ANY_LINE, 0);
    assert_string_equal(run(s, &f, 1), "t1 t2 t3");
    f = filter(1, "[ab].c", HS_ANY_LINE, 0);
    assert_string_equal(run(s, &f, 1), "t1 t2");
    f = filter(1, "B.C", HS_ANY_LINE, 1);              /* case-sensitive */
    assert_string_equal(run(s, &f, 1), "");
    f = filter(1, "b", HS_ANY_LINE, 1);                /* whole string */
    assert_string_equal(run(s, &f, 1), "");
    /* A line number: the site frame, or any frame with all_frames. */
    f = filter(1, "b.c", 4, 0);
    assert_string_equal(run(s, &f, 1), "t2");
    f = filter(1, "b.c", 5, 0);
    assert_string_equal(run(s, &f, 1), "");
    f = filter(1, "b.c", 5, 1);
    assert_string_equal(run(s, &f, 1), "t2");
    f = filter(1, "b.c", 3, 1);
    assert_string_equal(run(s, &f, 1), "t1");
    f = filter(0, "b.c", 3, 1);
    assert_string_equal(run(s, &f, 1), "t2 t3 u");
    f = filter(0, "b.c", 4, 0);
    assert_string_equal(run(s, &f, 1), "t1 t3 u");
    f = filter(1, "<unknown>", 0, 1);
    assert_string_equal(run(s, &f, 1), "t3 u");
    hs_snapshot_free(s);
}

static void test_domains(void **state)
{
    (void)state;
    hs_snapshot *s = make_table();
    hs_filter f = domain_filter(1, 1);
    assert_string_equal(run(s, &f, 1), "t2");
    f = domain_filter(0, 1);
    assert_string_equal(run(s, &f, 1), "t1 t3 u");
    f = domain_filter(1, 9);
    assert_string_equal(run(s, &f, 1), "");
    f = domain_filter(0, 9);
    assert_string_equal(run(s, &f, 1), "t1 t2 t3 u");
    f = domain_filter(1, 3);
    f.all_frames = 1;                 /* meaningless for a DomainFilter: ignored */
    f.lineno = 7;
    assert_string_equal(run(s, &f, 1), "u");

    /* A domain on a Filter: inclusive -> keep and dom == d; exclusive -> keep or dom != d. */
    f = filter(1, "*", HS_ANY_LINE, 0);
    f.has_domain = 1;
    f.domain = 2;
    assert_string_equal(run(s, &f, 1), "t3");
    f = filter(1, "b.c", HS_ANY_LINE, 1);
    f.has_domain = 1;
    f.domain = 2;                     /* b.c traces are in domains 0 and 1 */
    assert_string_equal(run(s, &f, 1), "");
    f.domain = 0;
    assert_string_equal(run(s, &f, 1), "t1");
    f = filter(0, "a.c", HS_ANY_LINE, 0);
    f.has_domain = 1;
    f.domain = 0;                     /* drops a.c only in domain 0 */
    assert_string_equal(run(s, &f, 1), "t2 t3 u");
    f.domain = 1;                     /* t1 is in domain 0: kept */
    assert_string_equal(run(s, &f, 1), "t1 t2 t3 u");
    f = filter(0, "b.c", HS_ANY_LINE, 1);
    f.has_domain = 1;
    f.domain = 1;
    assert_string_equal(run(s, &f, 1), "t1 t3 u");

    /* One traceback in several domains: the traceback verdict is shared, the domain is not. */
    hs_snapshot *m = hs_snapshot_new(1);
    for (unsigned d = 0; d < 4; d++)
        ADD(m, d, 1u << d, F("x.c", 1));
    f = filter(1, "x.c", HS_ANY_LINE, 0);
    f.has_domain = 1;
    f.domain = 2;
    assert_string_equal(run(m, &f, 1), "t3");
    f.inclusive = 0;
    assert_string_equal(run(m, &f, 1), "t1 t2 u");
    hs_snapshot_free(m);
    hs_snapshot_free(s);
}

static void test_lists(void **state)
{
    (void)state;
    hs_snapshot *s = make_table();
    /* Inclusive filters: any of them. */
    hs_filter a[] = { filter(1, "a.c", HS_ANY_LINE, 0), filter(1, "c.c", HS_ANY_LINE, 0) };
    assert_string_equal(run(s, a, 2), "t1 t3");
    /* Exclusive filters: all of them. */
    hs_filter b[] = { filter(0, "b.c", HS_ANY_LINE, 1), filter(0, "<unknown>", HS_ANY_LINE, 0) };
    assert_string_equal(run(s, b, 2), "t3");
    /* Both: some inclusive and every exclusive. */
    hs_filter c[] = { filter(1, "a.c", HS_ANY_LINE, 0), filter(1, "c.c", HS_ANY_LINE, 0),
                      filter(0, "<unknown>", HS_ANY_LINE, 1) };
    assert_string_equal(run(s, c, 3), "t1");
    hs_filter d[] = { filter(0, "b.c", HS_ANY_LINE, 0), domain_filter(1, 3), domain_filter(1, 1) };
    assert_string_equal(run(s, d, 3), "u");
    hs_filter e[] = { filter(1, "a.c", HS_ANY_LINE, 0), filter(0, "b.c", HS_ANY_LINE, 1) };
    assert_string_equal(run(s, e, 2), "");
    /* The order of the list does not matter. */
    hs_filter c2[] = { c[2], c[1], c[0] };
    assert_string_equal(run(s, c2, 3), "t1");
    /* An empty list keeps everything, as a new snapshot. */
    hs_snapshot *out = hs_snapshot_filter_traces(s, NULL, 0);
    assert_non_null(out);
    assert_ptr_not_equal(out, s);
    assert_ptr_not_equal(out->store, s->store);
    assert_string_equal(kept(out), "t1 t2 t3 u");
    hs_snapshot_free(out);
    assert_string_equal(run(s, a, 0), "t1 t2 t3 u");
    hs_snapshot_free(s);
}

static void test_invalid(void **state)
{
    (void)state;
    hs_snapshot *s = make_table();
    hs_filter f = filter(1, NULL, HS_ANY_LINE, 0);     /* no pattern, no domain */
    errno = 0;
    assert_null(hs_snapshot_filter_traces(s, &f, 1));
    assert_int_equal(errno, EINVAL);
    f = filter(1, "a.c", -2, 0);
    errno = 0;
    assert_null(hs_snapshot_filter_traces(s, &f, 1));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(hs_snapshot_filter_traces(s, NULL, 1));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(hs_snapshot_filter_traces(NULL, NULL, 0));
    assert_int_equal(errno, EINVAL);
    hs_snapshot_free(s);
}

static void test_empty(void **state)
{
    (void)state;
    hs_snapshot *s = hs_snapshot_new(2);
    hs_filter f = filter(1, "*", HS_ANY_LINE, 0);
    assert_string_equal(run(s, &f, 1), "");
    assert_string_equal(run(s, NULL, 0), "");
    hs_snapshot_free(s);
}

/* A trace without frames is filtered as if its one frame were <unknown>:0. */
static void test_empty_traceback(void **state)
{
    (void)state;
    hs_snapshot *s = hs_snapshot_new(2);
    assert_int_equal(hs_snapshot_add_trace(s, 0, 8, NULL, 0, 0), 0);
    ADD(s, 0, 1, F("a.c", 1));
    hs_filter f = filter(0, "<unknown>", HS_ANY_LINE, 0);
    assert_string_equal(run(s, &f, 1), "t1");
    f = filter(1, "<unknown>", 0, 1);
    assert_string_equal(run(s, &f, 1), "u");
    f = filter(0, "a.c", HS_ANY_LINE, 1);
    assert_string_equal(run(s, &f, 1), "u");
    f = filter(1, "*", 1, 0);
    assert_string_equal(run(s, &f, 1), "t1");
    /* and it stays an empty traceback in the result */
    f = filter(1, "<unknown>", HS_ANY_LINE, 0);
    hs_snapshot *out = hs_snapshot_filter_traces(s, &f, 1);
    const hs_traceback *tb;
    assert_int_equal(hs_snapshot_get(out, 0, NULL, NULL, &tb), 0);
    assert_int_equal(tb->nframes, 0);
    hs_snapshot_free(out);
    hs_snapshot_free(s);
}

/* The result owns everything: it outlives its source; limit, meta, total_nframe, frames' every
 * field are copied; each kept traceback is stored once. */
static void test_independent_copy(void **state)
{
    (void)state;
    hs_snapshot *s = hs_snapshot_new(7);
    const char *argv[] = { "prog", "--flag" };
    hs_snapshot_meta m = *hs_snapshot_get_meta(s);
    m.program = "/usr/bin/prog";
    m.argc = 2;
    m.argv = argv;
    m.kind = "final";
    m.pid = 1234;
    m.timestamp = 1700000000.5;
    m.lost_blocks = 3;
    assert_int_equal(hs_snapshot_set_meta(s, &m), 0);
    hs_frame fr[2] = {
        { .filename = "keep.c", .lineno = 1, .function = "f", .object = "libk.so",
          .address = 0x10 },
        { .filename = "main.c", .lineno = 9, .function = "main", .object = "prog",
          .address = 0x20 },
    };
    for (int i = 0; i < 5; i++) {
        assert_int_equal(hs_snapshot_add_trace(s, 0, 10, fr, 2, 40), 0);
        ADD(s, 0, 1, F("drop.c", 1));
        assert_int_equal(hs_snapshot_add_trace(s, 5, 20, fr, 1, 1), 0);
    }
    hs_filter f = filter(0, "drop.c", HS_ANY_LINE, 0);
    hs_snapshot *out = hs_snapshot_filter_traces(s, &f, 1);
    assert_non_null(out);
    hs_snapshot_free(s);

    assert_int_equal(hs_snapshot_traceback_limit(out), 7);
    assert_int_equal(hs_snapshot_count(out), 10);
    assert_int_equal(hs_store_tb_count(out->store), 2);
    const hs_snapshot_meta *om = hs_snapshot_get_meta(out);
    assert_string_equal(om->program, "/usr/bin/prog");
    assert_int_equal(om->argc, 2);
    assert_string_equal(om->argv[1], "--flag");
    assert_string_equal(om->kind, "final");
    assert_int_equal(om->pid, 1234);
    assert_int_equal(om->lost_blocks, 3);
    assert_true(om->timestamp == 1700000000.5);
    unsigned dom;
    size_t size;
    const hs_traceback *tb;
    assert_int_equal(hs_snapshot_get(out, 0, &dom, &size, &tb), 0);
    assert_int_equal(dom, 0);
    assert_int_equal(size, 10);
    assert_int_equal(tb->nframes, 2);
    assert_int_equal(tb->total_nframe, 40);
    assert_string_equal(tb->frames[0].filename, "keep.c");
    assert_string_equal(tb->frames[0].function, "f");
    assert_string_equal(tb->frames[0].object, "libk.so");
    assert_int_equal(tb->frames[0].address, 0x10);
    assert_string_equal(tb->frames[1].function, "main");
    assert_int_equal(hs_snapshot_get(out, 1, &dom, &size, &tb), 0);
    assert_int_equal(dom, 5);
    assert_int_equal(size, 20);
    assert_int_equal(tb->nframes, 1);

    /* Statistics of the copy, after the source is gone. */
    hs_stats *st = hs_snapshot_statistics(out, HS_KEY_LINENO, 0);
    char line[128];
    hs_stats_format(st, 0, line, sizeof(line));
    assert_string_equal(line, "keep.c:1: size=150 B, count=10, average=15 B");
    hs_stats_free(st);
    hs_snapshot_free(out);
}

/* A traceback from another store (against snapshot.h's contract) is filtered and copied too. */
static void test_foreign_traceback(void **state)
{
    (void)state;
    hs_snapshot *s = make_table(), *other = hs_snapshot_new(1);
    ADD(other, 0, 1, F("z.c", 1));
    assert_int_equal(hs_snapshot_push(s, 9, 16, other->traces[0].tb), 0);
    hs_filter f = filter(1, "z.c", HS_ANY_LINE, 0);
    hs_snapshot *out = hs_snapshot_filter_traces(s, &f, 1);
    hs_snapshot_free(other);
    hs_snapshot_free(s);
    const hs_traceback *tb;
    assert_int_equal(hs_snapshot_count(out), 1);
    assert_int_equal(hs_snapshot_get(out, 0, NULL, NULL, &tb), 0);
    assert_string_equal(tb->frames[0].filename, "z.c");
    hs_snapshot_free(out);
}

/* Many traces of few tracebacks. */
static void test_scale(void **state)
{
    (void)state;
    hs_snapshot *s = hs_snapshot_new(2);
    enum { N = 200000 };
    char name[32];
    const hs_tb *tbs[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "dir%d/file%d.c", i % 7, i);
        hs_frame f[2] = { F(name, (unsigned)i), F("main.c", 1) };
        tbs[i] = hs_store_tb(s->store, f, NULL, 2, 2);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(hs_snapshot_push(s, (unsigned)(i / 1000 % 2), 1, tbs[i % 1000]), 0);
    hs_filter f[] = { filter(1, "dir3/*", HS_ANY_LINE, 0), filter(0, "*5.c", HS_ANY_LINE, 0) };
    hs_snapshot *out = hs_snapshot_filter_traces(s, f, 2);
    size_t expect = 0;
    for (int i = 0; i < 1000; i++)
        if (i % 7 == 3 && i % 10 != 5)
            expect += N / 1000;
    assert_int_equal(hs_snapshot_count(out), expect);
    hs_snapshot_free(out);
    f[1].has_domain = 1;              /* exclusive *5.c in domain 1 only */
    f[1].domain = 1;
    out = hs_snapshot_filter_traces(s, f, 2);
    for (int i = 0; i < 1000; i++)
        if (i % 7 == 3 && i % 10 == 5)
            expect += N / 1000 / 2;   /* their domain-0 traces come back */
    assert_int_equal(hs_snapshot_count(out), expect);
    hs_snapshot_free(out);
    hs_snapshot_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_table),
        cmocka_unit_test(test_patterns_and_lines),
        cmocka_unit_test(test_domains),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_empty_traceback),
        cmocka_unit_test(test_independent_copy),
        cmocka_unit_test(test_foreign_traceback),
        cmocka_unit_test(test_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
