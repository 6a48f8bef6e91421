/*
 * allocfn.c - the user's wrapper-function patterns (HEAPSNAP_ALLOC_FN): split, and matched
 * against demangled function names.  See allocfn.h.
 */
#include "allocfn.h"
#include "heapsnap.h"

#include <errno.h>

void hs_alloc_fns_free(hs_alloc_fns *l)
{
    for (size_t i = 0; i < l->n; i++)
        hs_free(l->v[i]);
    hs_free(l->v);
    l->v = NULL;
    l->n = 0;
}

int hs_alloc_fns_parse(hs_alloc_fns *l, const char *list)
{
    size_t n = 1;
    for (const char *c = list; *c; c++)
        n += *c == ':';
    l->n = 0;
    if ((l->v = hs_calloc(n, sizeof(*l->v))) == NULL)
        return -ENOMEM;
    for (const char *c = list;;) {
        const char *e = strchr(c, ':');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        if (len > 0) {
            char *p = hs_malloc(len + 1);
            if (p == NULL) {
                hs_alloc_fns_free(l);
                return -ENOMEM;
            }
            memcpy(p, c, len);
            p[len] = '\0';
            l->v[l->n++] = p;
        }
        if (e == NULL)
            break;
        c = e + 1;
    }
    return 0;
}

/* Length of the name without its parameter list: up to the '(' that opens the parenthesised
 * group the name ends with (after any " const", " &", ...).  Whatever comes before, such as
 * "operator()" or "{lambda(int)#1}", stays.  The whole name when it has no such group. */
static size_t bare_len(const char *fn)
{
    const char *close = strrchr(fn, ')');
    if (close == NULL)
        return strlen(fn);
    int depth = 0;
    for (const char *c = close; c >= fn; c--) {
        depth += *c == ')';
        depth -= *c == '(';
        if (depth == 0)
            return c > fn ? (size_t)(c - fn) : strlen(fn);
    }
    return strlen(fn);                 /* unbalanced: no parameter list to strip */
}

int hs_alloc_fns_match(const hs_alloc_fns *l, const char *fn)
{
    if (l->n == 0 || fn[0] == '\0')
        return 0;
    for (size_t i = 0; i < l->n; i++)
        if (hs_fnmatch(l->v[i], fn))
            return 1;
    size_t len = bare_len(fn);
    if (len == strlen(fn))
        return 0;
    char small[512], *bare = len < sizeof(small) ? small : hs_malloc(len + 1);
    if (bare == NULL)
        return 0;
    memcpy(bare, fn, len);
    bare[len] = '\0';
    int hit = 0;
    for (size_t i = 0; i < l->n && !hit; i++)
        hit = hs_fnmatch(l->v[i], bare);
    if (bare != small)
        hs_free(bare);
    return hit;
}
