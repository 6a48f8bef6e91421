/*
 * fnmatch.c - the whole-string glob matching of filters (SPEC sections 5 and 7), with Python's
 * fnmatch.fnmatchcase() semantics on bytes: `*` any run (also `/`, also empty), `?` one byte,
 * `[set]` / `[!set]` with ranges, no escape character, no locale, case-sensitive.
 *
 * Set syntax follows fnmatch.translate(): a `]` right after `[` or `[!` is a member; a `[` with
 * no closing `]` is a literal `[`; `a-z` is a range (bytes compared unsigned), and a range whose
 * ends are reversed matches nothing; `-` first or last is a member.  One deliberate difference:
 * CPython (3.11+) deletes a reversed range from the set text, and a `!` that follows it then
 * becomes the set's first character and is taken as negation (`[b-a!/]` is `[^/]`, `[a--!]`
 * matches anything).  Here `!` negates only right after `[`, as in sh: `[b-a!/]` is {!, /}.
 * Randomised comparison with fnmatch.fnmatchcase() agrees on every other pattern.
 *
 * The pattern is compiled into one token per pattern element, then matched by the classic
 * greedy algorithm that remembers only the last `*`: every non-star token consumes exactly one
 * byte, so retrying from the last star alone is complete, and the cost is bounded by
 * O(len(pattern) * len(string)) -- no recursion, no exponential backtracking on `*a*a*a*b`.
 */
#include "analysis.h"

#include <errno.h>

enum { HS_GLOB_LIT, HS_GLOB_ANY, HS_GLOB_SET, HS_GLOB_STAR };

static hs_glob_tok *glob_tokens(const hs_glob *g)
{
    return g->heap != NULL ? g->heap : (hs_glob_tok *)g->small;
}

int hs_glob_compile(hs_glob *g, const char *pattern)
{
    const unsigned char *p = (const unsigned char *)pattern;
    size_t len = strlen(pattern);
    g->n = 0;
    g->heap = NULL;
    if (len > HS_ARRAY_LEN(g->small) && (g->heap = hs_malloc(len * sizeof(hs_glob_tok))) == NULL)
        return -ENOMEM;
    hs_glob_tok *t = glob_tokens(g);
    for (size_t i = 0; i < len;) {
        hs_glob_tok *k = &t[g->n];
        memset(k, 0, sizeof(*k));
        unsigned char c = p[i++];
        if (c == '*') {
            if (g->n > 0 && t[g->n - 1].type == HS_GLOB_STAR)
                continue;                      /* `**` is `*` */
            k->type = HS_GLOB_STAR;
        } else if (c == '?') {
            k->type = HS_GLOB_ANY;
        } else if (c == '[') {
            size_t j = i;
            if (j < len && p[j] == '!')
                j++;
            if (j < len && p[j] == ']')
                j++;
            while (j < len && p[j] != ']')
                j++;
            if (j >= len) {                    /* unmatched: a literal `[` */
                k->type = HS_GLOB_LIT;
                k->c = '[';
            } else {
                k->type = HS_GLOB_SET;
                k->negate = p[i] == '!';
                k->set = p + i + k->negate;
                k->set_end = p + j;
                i = j + 1;
            }
        } else {
            k->type = HS_GLOB_LIT;
            k->c = c;
        }
        g->n++;
    }
    return 0;
}

static int set_has(const hs_glob_tok *k, unsigned char c)
{
    int hit = 0;
    for (const unsigned char *q = k->set; q < k->set_end && !hit;) {
        if (q + 2 < k->set_end && q[1] == '-') {
            hit = q[0] <= c && c <= q[2];
            q += 3;
        } else {
            hit = *q++ == c;
        }
    }
    return hit != k->negate;
}

static int tok_match(const hs_glob_tok *k, unsigned char c)
{
    switch (k->type) {
    case HS_GLOB_ANY:
        return 1;
    case HS_GLOB_SET:
        return set_has(k, c);
    default:
        return k->c == c;
    }
}

int hs_glob_match(const hs_glob *g, const char *string)
{
    const hs_glob_tok *t = glob_tokens(g);
    const unsigned char *s = (const unsigned char *)string;
    size_t i = 0;                 /* next token */
    size_t star = SIZE_MAX;       /* token after the last `*` seen */
    const unsigned char *star_s = NULL;   /* where that star's run ends now */
    for (;;) {
        if (i < g->n && t[i].type == HS_GLOB_STAR) {
            star = ++i;
            star_s = s;
            continue;
        }
        if (*s == '\0')
            return i == g->n;     /* stars left were skipped above */
        if (i < g->n && tok_match(&t[i], *s)) {
            i++;
            s++;
            continue;
        }
        if (star == SIZE_MAX)
            return 0;
        i = star;                 /* the last star takes one more byte */
        s = ++star_s;
    }
}

void hs_glob_free(hs_glob *g)
{
    hs_free(g->heap);
    g->heap = NULL;
    g->n = 0;
}

int hs_fnmatch(const char *pattern, const char *string)
{
    if (pattern == NULL || string == NULL)
        return 0;
    hs_glob g;
    if (hs_glob_compile(&g, pattern) < 0) {
        errno = ENOMEM;           /* a long pattern and no memory: no match */
        return 0;
    }
    int r = hs_glob_match(&g, string);
    hs_glob_free(&g);
    return r;
}
