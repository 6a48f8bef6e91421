/*
 * analysis.h - internals shared by the analysis files: the statistics result object, the frame an
 * empty traceback stands for, per-traceback indexing, compiled fnmatch patterns, and the
 * source-line cache.
 *
 * Data path: a snapshot's traces are first reduced per distinct interned traceback, then grouped
 * per statistic key (stats.c) or judged by filters (filter.c); format.c and linecache.c turn
 * results into SPEC section 2 text; fnmatch.c matches filter patterns.
 */
#ifndef HS_ANALYSIS_H
#define HS_ANALYSIS_H

#include "../snapshot/snapshot.h"

/* ---- statistics (stats.c) -------------------------------------------------------------------- */

struct hs_stats {
    hs_store *store;        /* owns the key tracebacks, so results outlive the snapshots */
    hs_statistic *items;    /* sorted as SPEC sections 3 / 4 say */
    size_t n;
    int diff;               /* a compare_to result: formatted as statistic diffs */
};

/* ---- empty tracebacks ------------------------------------------------------------------------
 * tracemalloc always stores at least one frame; a heapsnap snapshot built by hand may hold a
 * trace with none.  For the lineno and filename keys (cumulative or not) and for filters (site
 * frame or all frames) such a traceback reads as the single frame <unknown>:0, the frame the
 * tracer writes when nothing is known, so the trace neither vanishes from statistics nor escapes
 * an exclusive `<unknown>` filter.  The traceback key keeps it as the empty traceback (its own
 * key, the smallest in key order), printed as `<unknown>:0`. */
HS_HIDDEN extern const hs_frame hs_unknown_frame;

/* The frames that count for keys and filters: the stored ones, or hs_unknown_frame. */
static inline size_t hs_key_frames(const hs_traceback *tb, const hs_frame **frames)
{
    if (tb->nframes == 0) {
        *frames = &hs_unknown_frame;
        return 1;
    }
    *frames = tb->frames;
    return tb->nframes;
}

/* ---- per-traceback work ----------------------------------------------------------------------
 * Every trace of a snapshot points at an interned traceback of the snapshot's store, so the
 * store's id is a dense index: per-traceback work (sums, filter verdicts, copies) goes into plain
 * arrays indexed by id, in one pass over the traces plus one step per distinct traceback.  A trace
 * whose traceback is not in the store (a broken invariant, never made by heapsnap itself) is
 * still handled correctly, only without that per-traceback sharing. */
static inline int hs_store_owns(const hs_store *st, size_t ntbs, const hs_tb *tb)
{
    return HS_LIKELY(tb->id < ntbs) && hs_store_tb_at(st, tb->id) == tb;
}

/* ---- fnmatch patterns (fnmatch.c) ------------------------------------------------------------
 * A pattern compiled once into tokens, so matching is O(len(pattern) * len(string)) whatever the
 * pattern, with no recursion. */
typedef struct hs_glob_tok {
    unsigned char type;       /* HS_GLOB_LIT, _ANY, _SET, _STAR */
    unsigned char c;          /* HS_GLOB_LIT: the byte */
    unsigned char negate;     /* HS_GLOB_SET: [!...] */
    const unsigned char *set, *set_end;   /* HS_GLOB_SET: the items, inside the pattern */
} hs_glob_tok;

typedef struct hs_glob {
    hs_glob_tok *heap;        /* the tokens when they do not fit in small */
    size_t n;
    hs_glob_tok small[32];    /* short patterns need no allocation (so a glob may be copied) */
} hs_glob;

/* The pattern must outlive the glob.  0 or -ENOMEM. */
HS_HIDDEN int hs_glob_compile(hs_glob *g, const char *pattern);
HS_HIDDEN int hs_glob_match(const hs_glob *g, const char *string);
HS_HIDDEN void hs_glob_free(hs_glob *g);

/* ---- source lines (linecache.c) --------------------------------------------------------------
 * A process-wide cache of source files, like Python's linecache: each file is read once (regular
 * files only, size-capped; binary files and names like "<unknown>" have no lines), kept while the
 * cache's memory budget allows, least recently used dropped first.  One mutex guards it. */
HS_HIDDEN void hs_linecache_lock(void);
HS_HIDDEN void hs_linecache_unlock(void);
/* Line `lineno` (1-based) of `filename` with surrounding whitespace stripped: a pointer to *len
 * bytes (not NUL-terminated), valid until the lock is released; *len is 0 when the line cannot be
 * read or is blank.  The caller holds the lock. */
HS_HIDDEN const char *hs_linecache_getline_unlocked(const char *filename, unsigned int lineno,
                                                    size_t *len);
/* Forgets every file (tests, or after sources changed). */
HS_HIDDEN void hs_linecache_clear(void);

#endif
