/*
 * test_analysis_oom.c - every allocation of statistics, compare_to, filters, fnmatch and traceback
 * listings made to fail in turn: each call then fails cleanly (NULL + ENOMEM, or a documented
 * degraded result), never crashes, and leaks nothing (LeakSanitizer checks at exit).
 *
 * heapsnap allocates through hs_malloc / hs_calloc / hs_realloc / hs_free, weak in
 * src/common/mem.c; the strong definitions below replace them in this program.
 */
#include "unit.h"
#include "analysis/analysis.h"

#include <errno.h>
#include <unistd.h>

#include "oom.h"

static hs_snapshot *make_snapshot(int variant)
{
    hs_snapshot *s = hs_snapshot_new(5);
    assert_non_null(s);
    for (int i = 0; i < 40; i++) {
        char name[32];
        snprintf(name, sizeof(name), "file%d.c", (i * 7 + variant) % 13);
        ADD(s, (unsigned)(i % 3), (size_t)(i * 10 + variant), F(name, (unsigned)(i % 5)),
            F("lib.c", (unsigned)(i % 4)), F("main.c", 1));
    }
    assert_int_equal(hs_snapshot_add_trace(s, 0, 3, NULL, 0, 0), 0);
    const char *argv[] = { "prog" };
    hs_snapshot_meta m = *hs_snapshot_get_meta(s);
    m.program = "prog";
    m.argc = 1;
    m.argv = argv;
    assert_int_equal(hs_snapshot_set_meta(s, &m), 0);
    return s;
}

/* Runs op with the n-th allocation failing, for n = 0, 1, ... until op makes all its allocations
 * without a failure: each failed run must return NULL with errno ENOMEM, the last must succeed. */
#define EVERY_FAILURE(result_type, op, free_fn)                                 \
    do {                                                                        \
        for (long k_ = 0;; k_++) {                                              \
            alloc_countdown = k_;                                                \
            errno = 0;                                                          \
            result_type r_ = (op);                                              \
            int injected = alloc_countdown < 0;                                  \
            alloc_countdown = -1;                                                \
            if (!injected) {      /* every allocation succeeded */              \
                assert_non_null(r_);                                            \
                free_fn(r_);                                                    \
                break;                                                          \
            }                                                                   \
            assert_null(r_);                                                    \
            assert_int_equal(errno, ENOMEM);                                    \
            assert_true(k_ < 100000);                                           \
        }                                                                       \
    } while (0)

static void test_statistics_oom(void **state)
{
    (void)state;
    hs_snapshot *s = make_snapshot(0), *old = make_snapshot(1);
    for (int key = HS_KEY_FILENAME; key <= HS_KEY_TRACEBACK; key++) {
        for (int cum = 0; cum <= (key != HS_KEY_TRACEBACK); cum++) {
            EVERY_FAILURE(hs_stats *, hs_snapshot_statistics(s, (hs_key_type)key, cum),
                          hs_stats_free);
            EVERY_FAILURE(hs_stats *, hs_snapshot_compare_to(s, old, (hs_key_type)key, cum),
                          hs_stats_free);
        }
    }
    hs_snapshot_free(s);
    hs_snapshot_free(old);
}

static void test_filter_oom(void **state)
{
    (void)state;
    hs_snapshot *s = make_snapshot(0);
    char long_pattern[100];          /* over 32 tokens: compiled on the heap */
    memset(long_pattern, '*', sizeof(long_pattern) - 1);
    long_pattern[sizeof(long_pattern) - 1] = '\0';
    long_pattern[50] = 'f';
    hs_filter f[] = {
        { .inclusive = 1, .filename_pattern = "file1*.c", .lineno = HS_ANY_LINE },
        { .inclusive = 1, .filename_pattern = long_pattern, .lineno = 2, .all_frames = 1 },
        { .inclusive = 0, .filename_pattern = "lib.c", .lineno = 3, .all_frames = 1,
          .has_domain = 1, .domain = 1 },
        { .inclusive = 0, .filename_pattern = NULL, .has_domain = 1, .domain = 2 },
    };
    for (size_t n = 0; n <= HS_ARRAY_LEN(f); n++)
        EVERY_FAILURE(hs_snapshot *, hs_snapshot_filter_traces(s, f, n), hs_snapshot_free);
    hs_snapshot_free(s);
}

/* fnmatch of a long pattern needs memory: without it, no match (errno ENOMEM). */
static void test_fnmatch_oom(void **state)
{
    (void)state;
    char p[100];
    memset(p, '?', sizeof(p) - 1);
    p[sizeof(p) - 1] = '\0';
    assert_int_equal(hs_fnmatch(p, p), 1);
    alloc_countdown = 0;
    errno = 0;
    assert_int_equal(hs_fnmatch(p, p), 0);
    assert_int_equal(errno, ENOMEM);
    alloc_countdown = 0;
    assert_int_equal(hs_fnmatch("short*", "short pattern"), 1);   /* no allocation */
    alloc_countdown = -1;
}

/* Without memory for the line cache, listings still come out, a frame without its source line
 * when its file could not be loaded; the failure is not remembered, so a later frame or call reads
 * the file. */
static void test_traceback_format_oom(void **state)
{
    (void)state;
    char path[] = "/tmp/hs-unit-oom-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "line one\nline two\n", 18), 18);
    close(fd);
    hs_frame fr[] = { F(path, 2), F(path, 1) };
    hs_traceback tb = { .nframes = 2, .total_nframe = 2, .frames = fr };
    char f1[64], f2[64], want[4][200], buf[256];
    snprintf(f1, sizeof(f1), "  File \"%s\", line 1\n", path);
    snprintf(f2, sizeof(f2), "  File \"%s\", line 2\n", path);
    for (int w = 0; w < 4; w++)      /* with / without each frame's source line */
        snprintf(want[w], sizeof(want[w]), "%s%s%s%s", f1, (w & 1) ? "    line one\n" : "", f2,
                 (w & 2) ? "    line two\n" : "");
    int outcomes = 0;
    for (long n = 0; n < 8; n++) {   /* the name, the contents, the line index: each fails */
        hs_linecache_clear();
        alloc_countdown = n;
        int len = hs_traceback_format(&tb, HS_ALL_FRAMES, 0, buf, sizeof(buf));
        int injected = alloc_countdown < 0;
        alloc_countdown = -1;
        assert_int_equal(len, strlen(buf));
        int w = 0;
        while (w < 4 && strcmp(buf, want[w]) != 0)
            w++;
        if (w == 4)
            assert_string_equal(buf, want[3]);   /* prints what came out */
        if (!injected)
            assert_int_equal(w, 3);
        outcomes |= 1 << w;
    }
    assert_int_equal(outcomes, (1 << 2) | (1 << 3));   /* first frame without, or all lines */
    hs_linecache_clear();
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statistics_oom),
        cmocka_unit_test(test_filter_oom),
        cmocka_unit_test(test_fnmatch_oom),
        cmocka_unit_test(test_traceback_format_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
