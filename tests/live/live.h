/*
 * live.h - assertions for the live tracer tests: small real programs linked against
 * libheapsnap.so.  A failed check prints both values and the line, and the program exits 1;
 * tests/test_live.py runs each program in its own process with a timeout.
 */
#ifndef HS_LIVE_H
#define HS_LIVE_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapsnap.h"

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#define CHECK_EQ(a, b)                                                                 \
    do {                                                                               \
        long long a_ = (long long)(a), b_ = (long long)(b);                            \
        if (a_ != b_) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", __FILE__, \
                    __LINE__, #a, #b, a_, b_);                                         \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#define CHECK_STR(a, b)                                                                \
    do {                                                                               \
        const char *a_ = (a), *b_ = (b);                                               \
        if (strcmp(a_, b_) != 0) {                                                     \
            fprintf(stderr, "%s:%d: check failed: %s == %s (\"%s\" != \"%s\")\n",      \
                    __FILE__, __LINE__, #a, #b, a_, b_);                               \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

/* The base name of a path. */
static inline const char *live_base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Checks that tb's allocation site is file:line (file compared by base name). */
#define CHECK_SITE(tb, file, line)                                                     \
    do {                                                                               \
        const hs_traceback *t_ = (tb);                                                 \
        CHECK(t_ != NULL);                                                             \
        CHECK(t_->nframes >= 1);                                                       \
        CHECK_STR(live_base(t_->frames[0].filename), (file));                          \
        CHECK_EQ(t_->frames[0].lineno, (line));                                        \
    } while (0)

/* Marks a line so a test can name it: int l = LINE_OF(p = malloc(10)); */
#define HERE __LINE__
#endif
