/*
 * allocfn.h - the wrapper functions a user names to be trimmed from allocation sites, like
 * valgrind's --alloc-fn (SPEC section 7): `heapsnap run --alloc-fn P` joins the patterns with ':'
 * into HEAPSNAP_ALLOC_FN, the tracer splits them here and matches symbolized function names.
 * Pure code over strings, no tracer state: the CLI's fuzz target runs it too.
 */
#ifndef HS_ALLOCFN_H
#define HS_ALLOCFN_H

#include <stddef.h>

#include "../common/common.h"

typedef struct hs_alloc_fns {
    char **v;               /* the glob patterns, non-empty */
    size_t n;
} hs_alloc_fns;

/* Splits a ':'-separated list; empty items are skipped.  0, or -ENOMEM with nothing allocated. */
HS_HIDDEN int hs_alloc_fns_parse(hs_alloc_fns *l, const char *colon_list);
/* 1 when a pattern matches the function name as shown ("Pool::get(unsigned long) const") or the
 * name without its parameter list ("Pool::get"); 0 for an empty name.  May allocate (a name
 * longer than 511 bytes); on ENOMEM only the name as shown is tried. */
HS_HIDDEN int hs_alloc_fns_match(const hs_alloc_fns *l, const char *function);
HS_HIDDEN void hs_alloc_fns_free(hs_alloc_fns *l);

#endif
