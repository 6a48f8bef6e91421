/*
 * test_format.c - SPEC section 2 text: fmt(x, sign) on every SPEC example, and traceback listings
 * (limits, order, source lines from a file written here, unreadable files, truncation, the line
 * cache under threads and fork).
 */
#include "unit.h"
#include "analysis/analysis.h"

#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *fmt(double x, int sign)
{
    static char buf[64];
    int n = hs_format_size(buf, sizeof(buf), x, sign);
    assert_int_equal(n, strlen(buf));
    return buf;
}

static void test_size_spec_examples(void **state)
{
    (void)state;
    assert_string_equal(fmt(66, 0), "66 B");
    assert_string_equal(fmt(10239, 0), "10239 B");
    assert_string_equal(fmt(10240, 0), "10.0 KiB");
    assert_string_equal(fmt(102399, 0), "100.0 KiB");
    assert_string_equal(fmt(102400, 0), "100 KiB");
    assert_string_equal(fmt(10485759, 0), "10240 KiB");
    assert_string_equal(fmt(10485760, 0), "10.0 MiB");
    assert_string_equal(fmt(1125899906842624.0, 0), "1024 TiB");   /* 2^50 */
    assert_string_equal(fmt(-20480, 1), "-20.0 KiB");
    assert_string_equal(fmt(0, 1), "+0 B");
}

static void test_size_more(void **state)
{
    (void)state;
    assert_string_equal(fmt(0, 0), "0 B");
    assert_string_equal(fmt(-0.0, 1), "+0 B");           /* -0.0 >= 0 */
    assert_string_equal(fmt(5000, 1), "+5000 B");
    assert_string_equal(fmt(-66, 1), "-66 B");
    assert_string_equal(fmt(-10239, 0), "-10239 B");
    assert_string_equal(fmt(-10240, 0), "-10.0 KiB");
    assert_string_equal(fmt(19.6, 0), "20 B");             /* B: no decimals, printf rounding */
    assert_string_equal(fmt(2.5, 0), "2 B");               /* round half to even, as printf */
    assert_string_equal(fmt(2501, 0), "2501 B");
    assert_string_equal(fmt(1023.0 * 1024 * 1024, 0), "1023 MiB");
    assert_string_equal(fmt(10.0 * 1024 * 1024 * 1024, 0), "10.0 GiB");
    assert_string_equal(fmt(1152921504606846976.0, 0), "1048576 TiB");   /* 2^60: TiB is last */
    assert_string_equal(fmt(-1125899906842624.0, 1), "-1024 TiB");
    assert_string_equal(fmt(18446744073709551615.0, 0), "16777216 TiB");  /* SIZE_MAX */
}

static void test_size_truncation(void **state)
{
    (void)state;
    char buf[4];
    assert_int_equal(hs_format_size(buf, sizeof(buf), 10240, 0), 8);  /* "10.0 KiB" */
    assert_string_equal(buf, "10.");
    assert_int_equal(hs_format_size(NULL, 0, 10240, 1), 9);           /* "+10.0 KiB" */
}

/* ---- traceback listings ---------------------------------------------------------------------- */

static char src_path[64];     /* a source file written by setup */
static char crlf_path[64];
static char bin_path[64];
static char dir_path[64];

static void write_file(char *path, const char *content, size_t n)
{
    strcpy(path, "/tmp/hs-unit-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, n), (ssize_t)n);
    close(fd);
}

static int setup_files(void **state)
{
    (void)state;
    static const char src[] = "int main(void)\n"          /* 1 */
                              "{\n"                       /* 2 */
                              "    void *p = malloc(10);\n" /* 3 */
                              "   \t  \n"                 /* 4: blank */
                              "\t  free(p);   \n"         /* 5 */
                              "}";                        /* 6: no final newline */
    static const char crlf[] = "one\r\n  two  \r\nthree\rfour\n\r\n";   /* 5 lines */
    static const char bin[] = "\x7f" "ELF\0\0\0line2\n";
    write_file(src_path, src, sizeof(src) - 1);
    write_file(crlf_path, crlf, sizeof(crlf) - 1);
    write_file(bin_path, bin, sizeof(bin) - 1);
    strcpy(dir_path, "/tmp/hs-unit-dir-XXXXXX");
    assert_non_null(mkdtemp(dir_path));
    hs_linecache_clear();
    return 0;
}

static int teardown_files(void **state)
{
    (void)state;
    unlink(src_path);
    unlink(crlf_path);
    unlink(bin_path);
    rmdir(dir_path);
    hs_linecache_clear();
    return 0;
}

static hs_frame FR(const char *file, unsigned line)
{
    return (hs_frame){ .filename = file, .lineno = line, .function = "", .object = "" };
}

/* A traceback of frames most recent first. */
static hs_traceback tb_of(const hs_frame *f, size_t n)
{
    return (hs_traceback){ .nframes = n, .total_nframe = n, .frames = f };
}

static const char *listing(const hs_traceback *tb, int limit, int most_recent_first)
{
    static char buf[4096];
    int n = hs_traceback_format(tb, limit, most_recent_first, buf, sizeof(buf));
    assert_int_equal(n, strlen(buf));
    return buf;
}

static void test_traceback_source_lines(void **state)
{
    (void)state;
    /* most recent first: line 5 (free) called from line 3, called from line 1 */
    hs_frame f[] = { FR(src_path, 5), FR(src_path, 3), FR(src_path, 1) };
    hs_traceback tb = tb_of(f, 3);
    char want[1024];
    snprintf(want, sizeof(want),
             "  File \"%s\", line 1\n    int main(void)\n"
             "  File \"%s\", line 3\n    void *p = malloc(10);\n"
             "  File \"%s\", line 5\n    free(p);\n",
             src_path, src_path, src_path);
    assert_string_equal(listing(&tb, HS_ALL_FRAMES, 0), want);

    /* Blank (whitespace-only) line 4, the unterminated last line 6, lines 0 and 7 (none). */
    hs_frame g[] = { FR(src_path, 4), FR(src_path, 6), FR(src_path, 0), FR(src_path, 7) };
    tb = tb_of(g, 4);
    snprintf(want, sizeof(want),
             "  File \"%s\", line 7\n"
             "  File \"%s\", line 0\n"
             "  File \"%s\", line 6\n    }\n"
             "  File \"%s\", line 4\n",
             src_path, src_path, src_path, src_path);
    assert_string_equal(listing(&tb, HS_ALL_FRAMES, 0), want);
}

static void test_traceback_line_endings(void **state)
{
    (void)state;
    hs_frame f[] = { FR(crlf_path, 1), FR(crlf_path, 2), FR(crlf_path, 3), FR(crlf_path, 4),
                     FR(crlf_path, 5), FR(crlf_path, 6) };
    hs_traceback tb = tb_of(f, 6);
    char want[1024];
    snprintf(want, sizeof(want),
             "  File \"%s\", line 1\n    one\n"
             "  File \"%s\", line 2\n    two\n"
             "  File \"%s\", line 3\n    three\n"
             "  File \"%s\", line 4\n    four\n"
             "  File \"%s\", line 5\n"
             "  File \"%s\", line 6\n",
             crlf_path, crlf_path, crlf_path, crlf_path, crlf_path, crlf_path);
    assert_string_equal(listing(&tb, HS_ALL_FRAMES, 1), want);
}

static void test_traceback_unreadable_files(void **state)
{
    (void)state;
    /* binary, a directory, missing, <unknown>, empty name, a FIFO (must not block) */
    char fifo[80];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir_path);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    hs_frame f[] = { FR(bin_path, 1), FR(bin_path, 2), FR(dir_path, 1), FR("/nonexistent/x.c", 1),
                     FR("<unknown>", 0), FR("", 1), FR(fifo, 1), FR("/dev/zero", 1) };
    hs_traceback tb = tb_of(f, HS_ARRAY_LEN(f));
    char want[1024];
    snprintf(want, sizeof(want),
             "  File \"%s\", line 1\n"
             "  File \"%s\", line 2\n"
             "  File \"%s\", line 1\n"
             "  File \"/nonexistent/x.c\", line 1\n"
             "  File \"<unknown>\", line 0\n"
             "  File \"\", line 1\n"
             "  File \"%s\", line 1\n"
             "  File \"/dev/zero\", line 1\n",
             bin_path, bin_path, dir_path, fifo);
    assert_string_equal(listing(&tb, HS_ALL_FRAMES, 1), want);
    unlink(fifo);
}

/* Frames named by number so the selection is visible: "f0" is the allocation site. */
static void test_traceback_limits(void **state)
{
    (void)state;
    hs_frame f[] = { FR("f0", 10), FR("f1", 11), FR("f2", 12), FR("f3", 13) };
    hs_traceback tb = tb_of(f, 4);
#define L(n) "  File \"f" #n "\", line 1" #n "\n"
    assert_string_equal(listing(&tb, HS_ALL_FRAMES, 0), L(3) L(2) L(1) L(0));
    assert_string_equal(listing(&tb, HS_ALL_FRAMES, 1), L(0) L(1) L(2) L(3));
    assert_string_equal(listing(&tb, 1, 0), L(0));                 /* the most recent */
    assert_string_equal(listing(&tb, 2, 0), L(1) L(0));
    assert_string_equal(listing(&tb, 2, 1), L(0) L(1));            /* reversed after selection */
    assert_string_equal(listing(&tb, 4, 0), L(3) L(2) L(1) L(0));
    assert_string_equal(listing(&tb, 100, 0), L(3) L(2) L(1) L(0));
    assert_string_equal(listing(&tb, INT_MAX, 1), L(0) L(1) L(2) L(3));
    assert_string_equal(listing(&tb, 0, 0), "");
    assert_string_equal(listing(&tb, 0, 1), "");
    assert_string_equal(listing(&tb, -1, 0), L(3) L(2) L(1));      /* drops the most recent */
    assert_string_equal(listing(&tb, -1, 1), L(1) L(2) L(3));
    assert_string_equal(listing(&tb, -3, 0), L(3));
    assert_string_equal(listing(&tb, -4, 0), "");
    assert_string_equal(listing(&tb, -100, 0), "");
    assert_string_equal(listing(&tb, INT_MIN + 1, 0), "");
#undef L
    hs_traceback empty = tb_of(NULL, 0);
    assert_string_equal(listing(&empty, HS_ALL_FRAMES, 0), "");
    assert_string_equal(listing(&empty, 1, 1), "");
    assert_string_equal(listing(&empty, -1, 0), "");
}

static void test_traceback_truncation(void **state)
{
    (void)state;
    hs_frame f[] = { FR(src_path, 5), FR(src_path, 3) };
    hs_traceback tb = tb_of(f, 2);
    char full[1024];
    int n = hs_traceback_format(&tb, HS_ALL_FRAMES, 0, full, sizeof(full));
    assert_int_equal(n, strlen(full));
    assert_int_equal(hs_traceback_format(&tb, HS_ALL_FRAMES, 0, NULL, 0), n);
    for (size_t len = 1; len <= (size_t)n + 1; len++) {
        char *buf = malloc(len);     /* exact size: ASan sees any overflow */
        assert_int_equal(hs_traceback_format(&tb, HS_ALL_FRAMES, 0, buf, len), n);
        assert_int_equal(strlen(buf), len - 1);
        assert_memory_equal(buf, full, len - 1);
        free(buf);
    }
    assert_int_equal(hs_traceback_format(NULL, 0, 0, full, sizeof(full)), -EINVAL);
}

/* Lines are read once: the cache still has them after the file is gone, until cleared. */
static void test_linecache_caches(void **state)
{
    (void)state;
    char path[64];
    write_file(path, "first\nsecond\n", 13);
    hs_frame f[] = { FR(path, 2) };
    hs_traceback tb = tb_of(f, 1);
    char want[256];
    snprintf(want, sizeof(want), "  File \"%s\", line 2\n    second\n", path);
    assert_string_equal(listing(&tb, HS_ALL_FRAMES, 0), want);
    unlink(path);
    assert_string_equal(listing(&tb, HS_ALL_FRAMES, 0), want);
    hs_linecache_clear();
    snprintf(want, sizeof(want), "  File \"%s\", line 2\n", path);
    assert_string_equal(listing(&tb, HS_ALL_FRAMES, 0), want);
}

/* More files than the cache keeps: old entries are evicted and re-read correctly. */
static void test_linecache_eviction(void **state)
{
    (void)state;
    enum { NFILES = 300 };
    static char paths[NFILES][64];
    for (int i = 0; i < NFILES; i++) {
        char content[32];
        int n = snprintf(content, sizeof(content), "x\nline %d\n", i);
        write_file(paths[i], content, (size_t)n);
    }
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < NFILES; i++) {
            hs_frame f[] = { FR(paths[i], 2) };
            hs_traceback tb = tb_of(f, 1);
            char want[256];
            snprintf(want, sizeof(want), "  File \"%s\", line 2\n    line %d\n", paths[i], i);
            assert_string_equal(listing(&tb, HS_ALL_FRAMES, 0), want);
        }
    for (int i = 0; i < NFILES; i++)
        unlink(paths[i]);
    hs_linecache_clear();
}

static void *format_many(void *arg)
{
    const hs_traceback *tb = arg;
    char buf[1024];
    for (int i = 0; i < 300; i++) {
        int n = hs_traceback_format(tb, HS_ALL_FRAMES, i & 1, buf, sizeof(buf));
        if (n <= 0 || strstr(buf, "    void *p = malloc(10);\n") == NULL)
            return (void *)1;
        if (i % 50 == 0)
            hs_linecache_clear();
    }
    return NULL;
}

static void test_linecache_threads(void **state)
{
    (void)state;
    hs_frame f[] = { FR(src_path, 5), FR(src_path, 3), FR("/nonexistent", 1) };
    hs_traceback tb = tb_of(f, 3);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, format_many, &tb), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        assert_int_equal(pthread_join(th[i], &r), 0);
        assert_null(r);
    }
}

static void *hold_lock(void *arg)
{
    volatile int *held = arg;
    hs_linecache_lock();
    *held = 1;
    usleep(200 * 1000);            /* fork() is called meanwhile */
    hs_linecache_unlock();
    return NULL;
}

/* A fork while another thread holds the cache lock: the child can still format. */
static void test_linecache_fork(void **state)
{
    (void)state;
    hs_frame f[] = { FR(src_path, 3) };
    hs_traceback tb = tb_of(f, 1);
    char want[256];
    snprintf(want, sizeof(want), "  File \"%s\", line 3\n    void *p = malloc(10);\n", src_path);
    assert_string_equal(listing(&tb, HS_ALL_FRAMES, 0), want);   /* the lock is in use */
    volatile int held = 0;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hold_lock, (void *)&held), 0);
    while (!held)
        usleep(1000);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10);                 /* a deadlock ends the child, and the test fails */
        char buf[256];
        hs_traceback_format(&tb, HS_ALL_FRAMES, 0, buf, sizeof(buf));
        _exit(strcmp(buf, want) == 0 ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_spec_examples),
        cmocka_unit_test(test_size_more),
        cmocka_unit_test(test_size_truncation),
        cmocka_unit_test(test_traceback_source_lines),
        cmocka_unit_test(test_traceback_line_endings),
        cmocka_unit_test(test_traceback_unreadable_files),
        cmocka_unit_test(test_traceback_limits),
        cmocka_unit_test(test_traceback_truncation),
        cmocka_unit_test(test_linecache_caches),
        cmocka_unit_test(test_linecache_eviction),
        cmocka_unit_test(test_linecache_threads),
        cmocka_unit_test(test_linecache_fork),
    };
    return cmocka_run_group_tests(tests, setup_files, teardown_files);
}
