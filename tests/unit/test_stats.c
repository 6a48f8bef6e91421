/*
 * test_stats.c - statistics and compare_to (SPEC sections 3 and 4): the S1 / S2 examples line for
 * line, every level of both orders, cumulative counting, errors, empty snapshots and empty
 * tracebacks, results that outlive their snapshots, and scale.
 */
#include "unit.h"
#include "analysis/analysis.h"

#include <errno.h>
#include <time.h>

/* SPEC section 3, S1. */
static hs_snapshot *make_s1(void)
{
    hs_snapshot *s = hs_snapshot_new(5);
    assert_non_null(s);
    for (int i = 0; i < 3; i++)
        ADD(s, 0, 10, F("a.c", 2), F("b.c", 4));
    ADD(s, 1, 2, F("a.c", 5), F("b.c", 4));
    ADD(s, 2, 66, F("b.c", 1));
    ADD(s, 3, 7, F("<unknown>", 0));
    return s;
}

/* SPEC section 4, S2. */
static hs_snapshot *make_s2(void)
{
    hs_snapshot *s = hs_snapshot_new(5);
    assert_non_null(s);
    for (int i = 0; i < 3; i++)
        ADD(s, 0, 10, F("a.c", 2), F("b.c", 4));
    ADD(s, 2, 2, F("a.c", 5), F("b.c", 4));
    ADD(s, 2, 5000, F("a.c", 5), F("b.c", 4));
    ADD(s, 4, 400, F("c.c", 578));
    return s;
}

/* Every line of a result, each followed by \n, checking hs_stats_format's return value. */
static const char *lines(const hs_stats *st)
{
    static char buf[16384];
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < hs_stats_count(st); i++) {
        char line[512];
        int n = hs_stats_format(st, i, line, sizeof(line));
        assert_int_equal(n, strlen(line));
        pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "%s\n", line);
        assert_true(pos < sizeof(buf));
    }
    return buf;
}

static const char *stat_lines(const hs_snapshot *s, hs_key_type key, int cumulative)
{
    hs_stats *st = hs_snapshot_statistics(s, key, cumulative);
    assert_non_null(st);
    const char *r = lines(st);
    hs_stats_free(st);
    return r;
}

static const char *diff_lines(const hs_snapshot *s, const hs_snapshot *old, hs_key_type key,
                              int cumulative)
{
    hs_stats *st = hs_snapshot_compare_to(s, old, key, cumulative);
    assert_non_null(st);
    const char *r = lines(st);
    hs_stats_free(st);
    return r;
}

static void test_s1_lineno(void **state)
{
    (void)state;
    hs_snapshot *s = make_s1();
    assert_string_equal(stat_lines(s, HS_KEY_LINENO, 0),
                        "b.c:1: size=66 B, count=1, average=66 B\n"
                        "a.c:2: size=30 B, count=3, average=10 B\n"
                        "<unknown>:0: size=7 B, count=1, average=7 B\n"
                        "a.c:5: size=2 B, count=1, average=2 B\n");
    hs_snapshot_free(s);
}

static void test_s1_filename(void **state)
{
    (void)state;
    hs_snapshot *s = make_s1();
    assert_string_equal(stat_lines(s, HS_KEY_FILENAME, 0),
                        "b.c:0: size=66 B, count=1, average=66 B\n"
                        "a.c:0: size=32 B, count=4, average=8 B\n"
                        "<unknown>:0: size=7 B, count=1, average=7 B\n");
    hs_snapshot_free(s);
}

static void test_s1_cumulative_filename(void **state)
{
    (void)state;
    hs_snapshot *s = make_s1();
    assert_string_equal(stat_lines(s, HS_KEY_FILENAME, 1),
                        "b.c:0: size=98 B, count=5, average=20 B\n"
                        "a.c:0: size=32 B, count=4, average=8 B\n"
                        "<unknown>:0: size=7 B, count=1, average=7 B\n");
    hs_snapshot_free(s);
}

static void test_s1_cumulative_lineno(void **state)
{
    (void)state;
    hs_snapshot *s = make_s1();
    assert_string_equal(stat_lines(s, HS_KEY_LINENO, 1),
                        "b.c:1: size=66 B, count=1, average=66 B\n"
                        "b.c:4: size=32 B, count=4, average=8 B\n"
                        "a.c:2: size=30 B, count=3, average=10 B\n"
                        "<unknown>:0: size=7 B, count=1, average=7 B\n"
                        "a.c:5: size=2 B, count=1, average=2 B\n");
    hs_snapshot_free(s);
}

static void test_s1_traceback(void **state)
{
    (void)state;
    hs_snapshot *s = make_s1();
    hs_stats *st = hs_snapshot_statistics(s, HS_KEY_TRACEBACK, 0);
    assert_non_null(st);
    /* The key printed is the allocation site. */
    assert_string_equal(lines(st), "b.c:1: size=66 B, count=1, average=66 B\n"
                                   "a.c:2: size=30 B, count=3, average=10 B\n"
                                   "<unknown>:0: size=7 B, count=1, average=7 B\n"
                                   "a.c:5: size=2 B, count=1, average=2 B\n");
    const hs_traceback *tb = hs_stats_get(st, 1)->traceback;
    assert_int_equal(tb->nframes, 2);
    assert_string_equal(tb->frames[0].filename, "a.c");
    assert_int_equal(tb->frames[0].lineno, 2);
    assert_string_equal(tb->frames[1].filename, "b.c");
    assert_int_equal(tb->frames[1].lineno, 4);
    assert_int_equal(hs_stats_get(st, 1)->size, 30);
    assert_int_equal(hs_stats_get(st, 1)->count, 3);
    assert_int_equal(hs_stats_get(st, 1)->size_diff, 0);
    assert_int_equal(hs_stats_get(st, 1)->count_diff, 0);
    hs_stats_free(st);
    hs_snapshot_free(s);
}

static void test_s2_vs_s1(void **state)
{
    (void)state;
    hs_snapshot *s1 = make_s1(), *s2 = make_s2();
    hs_stats *st = hs_snapshot_compare_to(s2, s1, HS_KEY_LINENO, 0);
    assert_non_null(st);
    assert_string_equal(lines(st),
                        "a.c:5: size=5002 B (+5000 B), count=2 (+1), average=2501 B\n"
                        "c.c:578: size=400 B (+400 B), count=1 (+1), average=400 B\n"
                        "b.c:1: size=0 B (-66 B), count=0 (-1)\n"
                        "<unknown>:0: size=0 B (-7 B), count=0 (-1)\n"
                        "a.c:2: size=30 B (+0 B), count=3 (+0), average=10 B\n");
    const hs_statistic *d = hs_stats_get(st, 2);
    assert_int_equal(d->size, 0);
    assert_int_equal(d->size_diff, -66);
    assert_int_equal(d->count, 0);
    assert_int_equal(d->count_diff, -1);
    assert_null(hs_stats_get(st, 5));
    hs_stats_free(st);

    /* The other way round, and by traceback (keys from different stores meet). */
    assert_string_equal(diff_lines(s1, s2, HS_KEY_LINENO, 0),
                        "a.c:5: size=2 B (-5000 B), count=1 (-1), average=2 B\n"
                        "c.c:578: size=0 B (-400 B), count=0 (-1)\n"
                        "b.c:1: size=66 B (+66 B), count=1 (+1), average=66 B\n"
                        "<unknown>:0: size=7 B (+7 B), count=1 (+1), average=7 B\n"
                        "a.c:2: size=30 B (+0 B), count=3 (+0), average=10 B\n");
    assert_string_equal(diff_lines(s2, s1, HS_KEY_TRACEBACK, 0),
                        "a.c:5: size=5002 B (+5000 B), count=2 (+1), average=2501 B\n"
                        "c.c:578: size=400 B (+400 B), count=1 (+1), average=400 B\n"
                        "b.c:1: size=0 B (-66 B), count=0 (-1)\n"
                        "<unknown>:0: size=0 B (-7 B), count=0 (-1)\n"
                        "a.c:2: size=30 B (+0 B), count=3 (+0), average=10 B\n");
    assert_string_equal(diff_lines(s2, s1, HS_KEY_FILENAME, 1),
                        "a.c:0: size=5032 B (+5000 B), count=5 (+1), average=1006 B\n"
                        "b.c:0: size=5032 B (+4934 B), count=5 (+0), average=1006 B\n"
                        "c.c:0: size=400 B (+400 B), count=1 (+1), average=400 B\n"
                        "<unknown>:0: size=0 B (-7 B), count=0 (-1)\n");
    assert_string_equal(diff_lines(s1, s1, HS_KEY_FILENAME, 0),
                        "b.c:0: size=66 B (+0 B), count=1 (+0), average=66 B\n"
                        "a.c:0: size=32 B (+0 B), count=4 (+0), average=8 B\n"
                        "<unknown>:0: size=7 B (+0 B), count=1 (+0), average=7 B\n");
    hs_snapshot_free(s1);
    hs_snapshot_free(s2);
}

/* Descending (size, count, key); keys compare from the oldest frame, filename bytes, then lineno
 * numerically, a shorter prefix smaller. */
static void test_stat_order(void **state)
{
    (void)state;
    hs_snapshot *s = hs_snapshot_new(5);
    ADD(s, 0, 10, F("a.c", 9));
    ADD(s, 0, 10, F("a.c", 10));
    ADD(s, 0, 10, F("b.c", 1));
    ADD(s, 0, 10, F("B.c", 1));                /* 'B' < 'a' in bytes */
    ADD(s, 0, 5, F("z.c", 1));
    ADD(s, 0, 5, F("y.c", 1));                 /* 10 B too: its count breaks the tie */
    ADD(s, 0, 5, F("y.c", 1));
    ADD(s, 0, 0, F("y.c", 1));
    ADD(s, 0, 0, F("x.c", 1));
    assert_string_equal(stat_lines(s, HS_KEY_LINENO, 0),
                        "y.c:1: size=10 B, count=3, average=3 B\n"
                        "b.c:1: size=10 B, count=1, average=10 B\n"
                        "a.c:10: size=10 B, count=1, average=10 B\n"
                        "a.c:9: size=10 B, count=1, average=10 B\n"
                        "B.c:1: size=10 B, count=1, average=10 B\n"
                        "z.c:1: size=5 B, count=1, average=5 B\n"
                        "x.c:1: size=0 B, count=1, average=0 B\n");
    hs_snapshot_free(s);

    /* Traceback keys: from the oldest frame (the last one stored). */
    s = hs_snapshot_new(5);
    ADD(s, 0, 1, F("x.c", 1), F("a.c", 1));    /* oldest a.c */
    ADD(s, 0, 1, F("y.c", 1), F("z.c", 1));    /* oldest z.c: the largest */
    ADD(s, 0, 1, F("a.c", 1));                 /* a prefix of the next: smaller */
    ADD(s, 0, 1, F("b.c", 2), F("a.c", 1));
    ADD(s, 0, 1, F("c.c", 7), F("b.c", 2), F("a.c", 1));
    hs_stats *st = hs_snapshot_statistics(s, HS_KEY_TRACEBACK, 0);
    assert_string_equal(lines(st), "y.c:1: size=1 B, count=1, average=1 B\n"
                                   "x.c:1: size=1 B, count=1, average=1 B\n"
                                   "c.c:7: size=1 B, count=1, average=1 B\n"
                                   "b.c:2: size=1 B, count=1, average=1 B\n"
                                   "a.c:1: size=1 B, count=1, average=1 B\n");
    assert_int_equal(hs_stats_get(st, 4)->traceback->nframes, 1);
    assert_int_equal(hs_stats_get(st, 3)->traceback->nframes, 2);
    assert_int_equal(hs_stats_get(st, 2)->traceback->nframes, 3);
    hs_stats_free(st);
    hs_snapshot_free(s);
}

/* Descending (|size_diff|, size, |count_diff|, count, key). */
static void test_diff_order(void **state)
{
    (void)state;
    hs_snapshot *old = hs_snapshot_new(5), *new = hs_snapshot_new(5);
    /* |size_diff| 10 for all of these; size breaks the tie: */
    ADD(old, 0, 10, F("a.c", 1));                                   /* a: 20 (+10) */
    ADD(new, 0, 20, F("a.c", 1));
    ADD(old, 0, 10, F("b.c", 1));                                   /* b: 0 (-10) */
    /* same |size_diff| 10 and size 20 as a; |count_diff| breaks the tie: */
    ADD(old, 0, 10, F("c.c", 1));                                   /* c: 20 (+10), +1 */
    ADD(new, 0, 10, F("c.c", 1));
    ADD(new, 0, 10, F("c.c", 1));
    /* same as a in all but count: */
    ADD(old, 0, 5, F("d.c", 1));                                    /* d: 20 (+10), 2 (+0) */
    ADD(old, 0, 5, F("d.c", 1));
    ADD(new, 0, 10, F("d.c", 1));
    ADD(new, 0, 10, F("d.c", 1));
    /* same as a in everything: the key decides (descending) */
    ADD(old, 0, 10, F("e.c", 1));
    ADD(new, 0, 20, F("e.c", 1));
    /* negative diffs sort by magnitude */
    ADD(old, 0, 1000, F("f.c", 1));                                 /* f: 0 (-1000) */
    ADD(new, 0, 1, F("g.c", 1));                                    /* g: 1 (+1) */
    assert_string_equal(diff_lines(new, old, HS_KEY_LINENO, 0),
                        "f.c:1: size=0 B (-1000 B), count=0 (-1)\n"
                        "c.c:1: size=20 B (+10 B), count=2 (+1), average=10 B\n"
                        "d.c:1: size=20 B (+10 B), count=2 (+0), average=10 B\n"
                        "e.c:1: size=20 B (+10 B), count=1 (+0), average=20 B\n"
                        "a.c:1: size=20 B (+10 B), count=1 (+0), average=20 B\n"
                        "b.c:1: size=0 B (-10 B), count=0 (-1)\n"
                        "g.c:1: size=1 B (+1 B), count=1 (+1), average=1 B\n");
    hs_snapshot_free(old);
    hs_snapshot_free(new);
}

/* Every stored frame adds (size, 1) to its own key, with no de-duplication. */
static void test_cumulative_no_dedup(void **state)
{
    (void)state;
    hs_snapshot *s = hs_snapshot_new(5);
    ADD(s, 0, 10, F("a.c", 1), F("a.c", 2), F("a.c", 1));      /* recursion */
    assert_string_equal(stat_lines(s, HS_KEY_LINENO, 1),
                        "a.c:1: size=20 B, count=2, average=10 B\n"
                        "a.c:2: size=10 B, count=1, average=10 B\n");
    assert_string_equal(stat_lines(s, HS_KEY_FILENAME, 1),
                        "a.c:0: size=30 B, count=3, average=10 B\n");
    assert_string_equal(stat_lines(s, HS_KEY_FILENAME, 0),
                        "a.c:0: size=10 B, count=1, average=10 B\n");
    hs_snapshot_free(s);
}

/* Tracebacks equal in (filename, lineno) but not in function, address or total_nframe are one
 * key; the representative is the first met. */
static void test_key_is_filename_lineno(void **state)
{
    (void)state;
    hs_snapshot *s = hs_snapshot_new(5);
    hs_frame a = { .filename = "a.c", .lineno = 3, .function = "f", .object = "libx.so",
                   .address = 0x1000 };
    hs_frame b = a;
    b.function = "g";
    b.address = 0x2000;
    assert_int_equal(hs_snapshot_add_trace(s, 0, 4, &a, 1, 9), 0);
    assert_int_equal(hs_snapshot_add_trace(s, 0, 6, &b, 1, 1), 0);
    hs_stats *st = hs_snapshot_statistics(s, HS_KEY_TRACEBACK, 0);
    assert_string_equal(lines(st), "a.c:3: size=10 B, count=2, average=5 B\n");
    const hs_traceback *tb = hs_stats_get(st, 0)->traceback;
    assert_string_equal(tb->frames[0].function, "f");
    assert_int_equal(tb->frames[0].address, 0x1000);
    assert_int_equal(tb->total_nframe, 9);
    hs_stats_free(st);

    st = hs_snapshot_statistics(s, HS_KEY_LINENO, 0);
    tb = hs_stats_get(st, 0)->traceback;
    assert_int_equal(tb->nframes, 1);
    assert_string_equal(tb->frames[0].function, "f");
    assert_string_equal(tb->frames[0].object, "libx.so");
    assert_int_equal(tb->frames[0].address, 0);
    hs_stats_free(st);

    st = hs_snapshot_statistics(s, HS_KEY_FILENAME, 0);
    tb = hs_stats_get(st, 0)->traceback;
    assert_string_equal(tb->frames[0].filename, "a.c");
    assert_int_equal(tb->frames[0].lineno, 0);
    assert_string_equal(tb->frames[0].function, "");
    hs_stats_free(st);
    hs_snapshot_free(s);
}

static void test_invalid(void **state)
{
    (void)state;
    hs_snapshot *s = make_s1();
    errno = 0;
    assert_null(hs_snapshot_statistics(s, HS_KEY_TRACEBACK, 1));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(hs_snapshot_statistics(s, (hs_key_type)42, 0));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(hs_snapshot_statistics(s, (hs_key_type)-1, 1));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(hs_snapshot_compare_to(s, s, HS_KEY_TRACEBACK, 1));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(hs_snapshot_compare_to(s, s, (hs_key_type)3, 0));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(hs_snapshot_statistics(NULL, HS_KEY_LINENO, 0));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(hs_snapshot_compare_to(s, NULL, HS_KEY_LINENO, 0));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(hs_snapshot_compare_to(NULL, s, HS_KEY_LINENO, 0));
    assert_int_equal(errno, EINVAL);

    assert_int_equal(hs_stats_count(NULL), 0);
    assert_null(hs_stats_get(NULL, 0));
    char buf[8] = "x";
    assert_int_equal(hs_stats_format(NULL, 0, buf, sizeof(buf)), -EINVAL);
    assert_string_equal(buf, "");
    hs_stats *st = hs_snapshot_statistics(s, HS_KEY_LINENO, 0);
    assert_int_equal(hs_stats_format(st, 4, buf, sizeof(buf)), -EINVAL);
    hs_stats_free(st);
    hs_stats_free(NULL);
    hs_snapshot_free(s);
}

static void test_empty(void **state)
{
    (void)state;
    hs_snapshot *e = hs_snapshot_new(1), *s = make_s1();
    for (int key = HS_KEY_FILENAME; key <= HS_KEY_TRACEBACK; key++) {
        hs_stats *st = hs_snapshot_statistics(e, (hs_key_type)key, 0);
        assert_non_null(st);
        assert_int_equal(hs_stats_count(st), 0);
        assert_null(hs_stats_get(st, 0));
        hs_stats_free(st);
        assert_string_equal(diff_lines(e, e, (hs_key_type)key, 0), "");
    }
    assert_string_equal(stat_lines(e, HS_KEY_LINENO, 1), "");
    /* Only new: (size, size, count, count); only old: (0, -size, 0, -count). */
    assert_string_equal(diff_lines(s, e, HS_KEY_FILENAME, 0),
                        "b.c:0: size=66 B (+66 B), count=1 (+1), average=66 B\n"
                        "a.c:0: size=32 B (+32 B), count=4 (+4), average=8 B\n"
                        "<unknown>:0: size=7 B (+7 B), count=1 (+1), average=7 B\n");
    assert_string_equal(diff_lines(e, s, HS_KEY_FILENAME, 0),
                        "b.c:0: size=0 B (-66 B), count=0 (-1)\n"
                        "a.c:0: size=0 B (-32 B), count=0 (-4)\n"
                        "<unknown>:0: size=0 B (-7 B), count=0 (-1)\n");
    hs_snapshot_free(e);
    hs_snapshot_free(s);
}

/* A trace with no frames: <unknown>:0 for lineno / filename keys (also cumulative), the empty
 * traceback (its own, smallest key) for the traceback key. */
static void test_empty_traceback(void **state)
{
    (void)state;
    hs_snapshot *s = hs_snapshot_new(5);
    assert_int_equal(hs_snapshot_add_trace(s, 0, 5, NULL, 0, 0), 0);
    ADD(s, 0, 7, F("<unknown>", 0));
    ADD(s, 0, 1, F("a.c", 1));
    assert_string_equal(stat_lines(s, HS_KEY_LINENO, 0),
                        "<unknown>:0: size=12 B, count=2, average=6 B\n"
                        "a.c:1: size=1 B, count=1, average=1 B\n");
    assert_string_equal(stat_lines(s, HS_KEY_LINENO, 1),
                        "<unknown>:0: size=12 B, count=2, average=6 B\n"
                        "a.c:1: size=1 B, count=1, average=1 B\n");
    assert_string_equal(stat_lines(s, HS_KEY_FILENAME, 1),
                        "<unknown>:0: size=12 B, count=2, average=6 B\n"
                        "a.c:0: size=1 B, count=1, average=1 B\n");
    hs_stats *st = hs_snapshot_statistics(s, HS_KEY_TRACEBACK, 0);
    assert_string_equal(lines(st), "<unknown>:0: size=7 B, count=1, average=7 B\n"
                                   "<unknown>:0: size=5 B, count=1, average=5 B\n"
                                   "a.c:1: size=1 B, count=1, average=1 B\n");
    assert_int_equal(hs_stats_get(st, 0)->traceback->nframes, 1);
    assert_int_equal(hs_stats_get(st, 1)->traceback->nframes, 0);
    hs_stats_free(st);

    hs_snapshot_free(s);

    /* Same size and count: the empty traceback is the smallest key, so it comes last. */
    s = hs_snapshot_new(5);
    assert_int_equal(hs_snapshot_add_trace(s, 0, 5, NULL, 0, 0), 0);
    ADD(s, 0, 5, F("<unknown>", 0));
    st = hs_snapshot_statistics(s, HS_KEY_TRACEBACK, 0);
    assert_int_equal(hs_stats_count(st), 2);
    assert_int_equal(hs_stats_get(st, 0)->traceback->nframes, 1);
    assert_int_equal(hs_stats_get(st, 1)->traceback->nframes, 0);
    hs_stats_free(st);
    hs_snapshot_free(s);
}

/* Results own their keys: they outlive both snapshots. */
static void test_outlives_snapshots(void **state)
{
    (void)state;
    hs_snapshot *s1 = make_s1(), *s2 = make_s2();
    hs_stats *a = hs_snapshot_compare_to(s2, s1, HS_KEY_TRACEBACK, 0);
    hs_stats *b = hs_snapshot_statistics(s1, HS_KEY_LINENO, 1);
    hs_stats *c = hs_snapshot_compare_to(s2, s1, HS_KEY_FILENAME, 0);
    hs_snapshot_free(s1);
    hs_snapshot_free(s2);
    assert_string_equal(lines(a), "a.c:5: size=5002 B (+5000 B), count=2 (+1), average=2501 B\n"
                                  "c.c:578: size=400 B (+400 B), count=1 (+1), average=400 B\n"
                                  "b.c:1: size=0 B (-66 B), count=0 (-1)\n"
                                  "<unknown>:0: size=0 B (-7 B), count=0 (-1)\n"
                                  "a.c:2: size=30 B (+0 B), count=3 (+0), average=10 B\n");
    assert_string_equal(hs_stats_get(a, 4)->traceback->frames[1].filename, "b.c");
    assert_string_equal(lines(b), "b.c:1: size=66 B, count=1, average=66 B\n"
                                  "b.c:4: size=32 B, count=4, average=8 B\n"
                                  "a.c:2: size=30 B, count=3, average=10 B\n"
                                  "<unknown>:0: size=7 B, count=1, average=7 B\n"
                                  "a.c:5: size=2 B, count=1, average=2 B\n");
    assert_string_equal(lines(c), "a.c:0: size=5032 B (+5000 B), count=5 (+1), average=1006 B\n"
                                  "c.c:0: size=400 B (+400 B), count=1 (+1), average=400 B\n"
                                  "b.c:0: size=0 B (-66 B), count=0 (-1)\n"
                                  "<unknown>:0: size=0 B (-7 B), count=0 (-1)\n");
    char tbuf[512];
    hs_traceback_format(hs_stats_get(a, 4)->traceback, HS_ALL_FRAMES, 0, tbuf, sizeof(tbuf));
    assert_string_equal(tbuf, "  File \"b.c\", line 4\n  File \"a.c\", line 2\n");
    hs_stats_free(a);
    hs_stats_free(b);
    hs_stats_free(c);
}

static void test_format_truncation(void **state)
{
    (void)state;
    hs_snapshot *s1 = make_s1(), *s2 = make_s2();
    hs_stats *st = hs_snapshot_compare_to(s2, s1, HS_KEY_LINENO, 0);
    const char *full = "a.c:5: size=5002 B (+5000 B), count=2 (+1), average=2501 B";
    int n = (int)strlen(full);
    assert_int_equal(hs_stats_format(st, 0, NULL, 0), n);
    char buf[16];
    assert_int_equal(hs_stats_format(st, 0, buf, sizeof(buf)), n);
    assert_string_equal(buf, "a.c:5: size=500");
    hs_stats_free(st);
    hs_snapshot_free(s1);
    hs_snapshot_free(s2);
}

/* A trace pointing at a traceback of another store (against snapshot.h's contract) is still
 * counted right. */
static void test_foreign_traceback(void **state)
{
    (void)state;
    hs_snapshot *s = make_s1(), *other = hs_snapshot_new(5);
    ADD(other, 0, 1, F("a.c", 2), F("b.c", 4));
    ADD(other, 0, 1, F("q.c", 1));
    assert_int_equal(hs_snapshot_push(s, 0, 100, other->traces[0].tb), 0);
    assert_int_equal(hs_snapshot_push(s, 0, 1000, other->traces[1].tb), 0);
    assert_int_equal(hs_snapshot_push(s, 0, 1000, other->traces[1].tb), 0);
    assert_string_equal(stat_lines(s, HS_KEY_TRACEBACK, 0),
                        "q.c:1: size=2000 B, count=2, average=1000 B\n"
                        "a.c:2: size=130 B, count=4, average=32 B\n"
                        "b.c:1: size=66 B, count=1, average=66 B\n"
                        "<unknown>:0: size=7 B, count=1, average=7 B\n"
                        "a.c:5: size=2 B, count=1, average=2 B\n");
    hs_snapshot_free(s);
    hs_snapshot_free(other);
}

/* Many traces over many distinct tracebacks: totals add up, the order holds, and it is fast. */
static void test_scale(void **state)
{
    (void)state;
    enum { NTB = 20000, NTRACES = 1000000 };
    hs_snapshot *s = hs_snapshot_new(4), *old = hs_snapshot_new(4);
    const hs_tb **tbs = malloc(NTB * sizeof(*tbs));
    char names[64][32];
    for (int i = 0; i < 64; i++)
        snprintf(names[i], sizeof(names[i]), "file%02d.c", i);
    for (int i = 0; i < NTB; i++) {
        hs_frame f[3] = { F(names[i % 64], (unsigned)(i % 1000)), F(names[(i / 64) % 64], 7),
                          F("main.c", (unsigned)(i % 3)) };
        tbs[i] = hs_store_tb(s->store, f, NULL, 3, 3);
        assert_non_null(tbs[i]);
        if (i % 2 == 0)
            ADD(old, 0, (size_t)i, f[0], f[1], f[2]);
    }
    assert_int_equal(hs_snapshot_reserve(s, NTRACES), 0);
    uint64_t x = 88172645463325252ULL;
    size_t total = 0;
    for (int i = 0; i < NTRACES; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t size = (size_t)(x % 4096);
        total += size;
        assert_int_equal(hs_snapshot_push(s, (unsigned)(x % 3), size, tbs[(x >> 20) % NTB]), 0);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int key = HS_KEY_FILENAME; key <= HS_KEY_TRACEBACK; key++) {
        for (int cum = 0; cum <= (key != HS_KEY_TRACEBACK); cum++) {
            hs_stats *st = hs_snapshot_statistics(s, (hs_key_type)key, cum);
            assert_non_null(st);
            size_t sz = 0, cnt = 0;
            for (size_t i = 0; i < hs_stats_count(st); i++) {
                const hs_statistic *a = hs_stats_get(st, i);
                sz += a->size;
                cnt += a->count;
                if (i > 0) {
                    const hs_statistic *p = hs_stats_get(st, i - 1);
                    assert_true(p->size > a->size || (p->size == a->size && p->count >= a->count));
                }
            }
            assert_int_equal(sz, cum ? 3 * total : total);
            assert_int_equal(cnt, cum ? 3 * (size_t)NTRACES : (size_t)NTRACES);
            hs_stats_free(st);
        }
        hs_stats *d = hs_snapshot_compare_to(s, old, (hs_key_type)key, 0);
        assert_non_null(d);
        long long dsum = 0;
        for (size_t i = 0; i < hs_stats_count(d); i++)
            dsum += hs_stats_get(d, i)->count_diff;
        assert_int_equal(dsum, NTRACES - NTB / 2);
        hs_stats_free(d);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("  8 analyses of %d traces / %d tracebacks: %.2f s (ASan)\n", NTRACES, NTB, secs);
    assert_true(secs < 30);   /* quadratic behaviour would take hours */
    free(tbs);
    hs_snapshot_free(s);
    hs_snapshot_free(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s1_lineno),
        cmocka_unit_test(test_s1_filename),
        cmocka_unit_test(test_s1_cumulative_filename),
        cmocka_unit_test(test_s1_cumulative_lineno),
        cmocka_unit_test(test_s1_traceback),
        cmocka_unit_test(test_s2_vs_s1),
        cmocka_unit_test(test_stat_order),
        cmocka_unit_test(test_diff_order),
        cmocka_unit_test(test_cumulative_no_dedup),
        cmocka_unit_test(test_key_is_filename_lineno),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_empty_traceback),
        cmocka_unit_test(test_outlives_snapshots),
        cmocka_unit_test(test_format_truncation),
        cmocka_unit_test(test_foreign_traceback),
        cmocka_unit_test(test_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
