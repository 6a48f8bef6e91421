/*
 * snapshot.h - the in-memory snapshot shared by the tracer (which fills it), the file reader and
 * writer, and the analysis.
 *
 * A snapshot owns a store: interned strings, and interned tracebacks (each distinct traceback once,
 * with its frames).  Traces point at store tracebacks, so grouping by traceback can compare
 * pointers and a million traces of ten call sites cost ten tracebacks.  Strings in a store are
 * interned too: equal strings of one store have equal pointers.
 */
#ifndef HS_SNAPSHOT_H
#define HS_SNAPSHOT_H

#include "heapsnap.h"
#include "../common/common.h"

/* Where a frame came from, to re-symbolize it later: the object's GNU build-id as lowercase hex
 * ("" unknown) and the frame address's offset from the object's load bias ("file address").  */
typedef struct hs_frame_loc {
    const char *build_id;
    uint64_t offset;
} hs_frame_loc;

/* An interned traceback.  pub must stay the first member: the API hands out &tb->pub. */
typedef struct hs_tb {
    hs_traceback pub;
    const hs_frame_loc *loc;      /* nframes entries, or NULL when none were given */
    uint64_t hash;                /* over every field of every frame, and total_nframe */
    uint64_t key_hash;            /* over (filename, lineno) of every frame: the statistic key */
    uint32_t id;                  /* index in its store, 0.. */
} hs_tb;

static inline const hs_tb *hs_tb_of(const hs_traceback *t) { return (const hs_tb *)t; }

typedef struct hs_store hs_store;

HS_HIDDEN hs_store *hs_store_new(void);
HS_HIDDEN void hs_store_free(hs_store *st);
/* Interned copy of s (NULL gives ""); NULL on ENOMEM. */
HS_HIDDEN const char *hs_store_str(hs_store *st, const char *s);
HS_HIDDEN const char *hs_store_strn(hs_store *st, const char *s, size_t n);
/* on: hs_store_str remembers each source string by address (the caller promises that its strings
 * neither move nor change while on); off: forget.  -ENOMEM when it cannot be turned on. */
HS_HIDDEN int hs_store_memo(hs_store *st, int on);
/* Interned traceback with copies of the frames' strings; loc may be NULL.  NULL on ENOMEM. */
HS_HIDDEN const hs_tb *hs_store_tb(hs_store *st, const hs_frame *frames, const hs_frame_loc *loc,
                                   size_t nframes, size_t total_nframe);
/* The same traceback interned into another store (strings copied). */
HS_HIDDEN const hs_tb *hs_store_copy_tb(hs_store *dst, const hs_tb *src);
HS_HIDDEN size_t hs_store_tb_count(const hs_store *st);
HS_HIDDEN const hs_tb *hs_store_tb_at(const hs_store *st, size_t id);

/* (filename, lineno) of every frame equal: the tracebacks are one statistic key (SPEC section 7). */
HS_HIDDEN int hs_tb_key_equal(const hs_traceback *a, const hs_traceback *b);
/* SPEC section 3 key order: frame by frame from the oldest, filename bytes then lineno; a shorter
 * prefix is smaller.  <0, 0, >0. */
HS_HIDDEN int hs_tb_key_cmp(const hs_traceback *a, const hs_traceback *b);

typedef struct hs_trace_rec {
    const hs_tb *tb;
    size_t size;
    unsigned int domain;
} hs_trace_rec;

struct hs_snapshot {
    hs_store *store;
    hs_trace_rec *traces;
    size_t ntraces, cap;
    int traceback_limit;
    hs_snapshot_meta meta;        /* strings and argv live in the store */
};

/* Appends one trace that already points into s->store.  0 or -ENOMEM. */
HS_HIDDEN int hs_snapshot_push(hs_snapshot *s, unsigned int domain, size_t size, const hs_tb *tb);
HS_HIDDEN int hs_snapshot_reserve(hs_snapshot *s, size_t n);

#endif
