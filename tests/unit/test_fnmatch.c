/*
 * test_fnmatch.c - hs_fnmatch (SPEC sections 5 and 7): Python fnmatch.fnmatchcase() semantics on
 * bytes, and patterns that would make a backtracking matcher take exponential time.
 */
#include "unit.h"
#include "analysis/analysis.h"

#include <time.h>

/* Prints the pattern and string when it fails. */
#define MATCH(p, s) assert_string_equal(hs_fnmatch((p), (s)) ? "match" : "no match", "match")
#define NO(p, s) assert_string_equal(hs_fnmatch((p), (s)) ? "match" : "no match", "no match")

static void test_star(void **state)
{
    (void)state;
    MATCH("*", "");
    MATCH("*", "a/b/c.c");
    MATCH("*.c", "src/a.c");          /* `*` crosses `/` */
    MATCH("*.c", ".c");
    NO("*.c", "a.h");
    NO("*.c", "a.cc");
    MATCH("src/*.c", "src/x/y.c");
    NO("src/*.c", "lib/src/y.c");
    MATCH("*/src/*", "/home/u/src/a.c");
    MATCH("a**b", "ab");              /* `**` is `*` */
    MATCH("a**b", "axx/yb");
    MATCH("*a*", "banana");
    MATCH("*ana", "banana");          /* needs the star to retry */
    NO("*anas", "banana");
    MATCH("a*b*c", "abc");
    MATCH("a*b*c", "a-b-b-c");
    NO("a*b*c", "a-c-b");
    MATCH("**", "");
}

static void test_literal_and_any(void **state)
{
    (void)state;
    MATCH("", "");
    NO("", "a");
    NO("a", "");
    MATCH("a.c", "a.c");
    NO("a.c", "a.cc");                /* whole string */
    NO("a.c", "xa.c");
    NO("A.c", "a.c");                 /* case-sensitive */
    NO("a?c", "a.cc");
    MATCH("?", "/");
    NO("?", "");
    NO("?", "ab");
    MATCH("a?c", "a/c");
    MATCH("???", "abc");
    MATCH("a\\*", "a\\xyz");          /* no escape character: `\` is a literal */
    NO("a\\*", "a*");
    MATCH("<unknown>", "<unknown>");
    MATCH("x.c", "x.c");
    NO("x.c", "x\nc");
    MATCH("x?c", "x\nc");             /* `?` matches any byte */
}

static void test_sets(void **state)
{
    (void)state;
    MATCH("[abc]", "b");
    NO("[abc]", "d");
    NO("[abc]", "");
    NO("[abc]", "ab");
    MATCH("[a-c]x", "bx");
    NO("[a-c]x", "dx");
    MATCH("[!a-c]", "d");
    NO("[!a-c]", "b");
    MATCH("[!a]", "/");
    MATCH("[]]", "]");                /* `]` first is a member */
    NO("[]]", "a");
    MATCH("[!]]", "a");
    NO("[!]]", "]");
    MATCH("[]a]", "a");
    MATCH("[a-]", "-");               /* `-` last or first is a member */
    MATCH("[a-]", "a");
    NO("[a-]", "b");
    MATCH("[-a]", "-");
    MATCH("[!-a]", "b");
    NO("[!-a]", "-");
    MATCH("[a-c-e]", "-");            /* a-c, then `-` and `e` */
    MATCH("[a-c-e]", "e");
    NO("[a-c-e]", "d");
    MATCH("[--x]", "a");              /* the range `-`..`x` */
    NO("[z-a]", "z");                 /* a reversed range matches nothing */
    NO("[z-a]", "a");
    NO("[z-a]", "m");
    MATCH("[!z-a]", "m");
    MATCH("[b-a-c]", "-");            /* empty b-a, then `-`, `c` */
    MATCH("[b-a-c]", "c");
    NO("[b-a-c]", "b");
    MATCH("[b-a!/]", "/");            /* `!` after a reversed range is a member (CPython */
    MATCH("[b-a!/]", "!");            /* 3.11 would read it as negation: see fnmatch.c) */
    NO("[b-a!/]", "x");
    MATCH("[a--!]", "!");
    NO("[a--!]", "x");
    MATCH("[[]", "[");
    MATCH("[*?]", "*");
    NO("[*?]", "a");
    MATCH("[\\]", "\\");
    MATCH("*.[ch]", "dir/x.h");
    MATCH("[0-9][0-9].c", "42.c");
    NO("[0-9][0-9].c", "4a.c");
    MATCH("[a-zA-Z_]*", "_start");
}

static void test_unmatched_bracket(void **state)
{
    (void)state;
    MATCH("[abc", "[abc");           /* no `]`: a literal `[` */
    NO("[abc", "a");
    MATCH("a[", "a[");
    MATCH("[", "[");
    MATCH("[!", "[!");
    MATCH("[]", "[]");               /* `]` right after `[` is a member, so no closing one */
    MATCH("[!]", "[!]");
    MATCH("*[", "xx[");
    MATCH("[*", "[anything");
    MATCH("[[[", "[[[");
    MATCH("[a]b[", "ab[");
}

static void test_bytes(void **state)
{
    (void)state;
    MATCH("caf\xc3\xa9.c", "caf\xc3\xa9.c");
    NO("caf?.c", "caf\xc3\xa9.c");   /* bytes, not characters */
    MATCH("caf??.c", "caf\xc3\xa9.c");
    MATCH("[\x80-\xff]", "\xc3");    /* ranges compare unsigned bytes */
    NO("[\x01-\x7f]", "\xc3");
    MATCH("[!a]", "\xff");
}

static void test_null(void **state)
{
    (void)state;
    assert_int_equal(hs_fnmatch(NULL, "a"), 0);
    assert_int_equal(hs_fnmatch("a", NULL), 0);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Patterns exponential for a naive recursive matcher; long patterns (tokens on the heap). */
static void test_pathological(void **state)
{
    (void)state;
    char s[20001];
    memset(s, 'a', sizeof(s) - 1);
    s[sizeof(s) - 1] = '\0';
    double t0 = now();
    NO("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", s);
    MATCH("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*", s);
    NO("a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a?", "aaaaaaaaaaaaaaa");
    MATCH("*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?", s);

    char p[4001];
    memset(p, '[', sizeof(p) - 1);   /* 4000 unmatched `[`: literals */
    p[sizeof(p) - 1] = '\0';
    char q[4002];
    memcpy(q, p, sizeof(p));
    NO(p, s);
    MATCH(p, p);
    q[0] = '*';                      /* `*` then 3999 `[` */
    NO(q, s);
    MATCH(q, p);

    char many[2001];                  /* 2000 `?` */
    memset(many, '?', 2000);
    many[2000] = '\0';
    s[2000] = '\0';
    MATCH(many, s);
    s[1999] = '\0';
    NO(many, s);
    char stars[2001];                 /* `*a` 1000 times against 1999 `a` and a `b` */
    for (int i = 0; i < 2000; i += 2) {
        stars[i] = '*';
        stars[i + 1] = 'a';
    }
    stars[2000] = '\0';
    memset(s, 'a', 1999);
    s[1999] = 'b';
    s[2000] = '\0';
    NO(stars, s);
    double secs = now() - t0;
    print_message("  pathological patterns: %.3f s (ASan)\n", secs);
    assert_true(secs < 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_star),
        cmocka_unit_test(test_literal_and_any),
        cmocka_unit_test(test_sets),
        cmocka_unit_test(test_unmatched_bracket),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_null),
        cmocka_unit_test(test_pathological),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
