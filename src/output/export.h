/*
 * export.h - writing snapshots for other tools: folded stacks (flamegraph.pl, speedscope,
 * inferno), a JSON dump, and pprof's profile.proto (gzip-compressed), optionally as the
 * difference against a base snapshot.  Also the small JSON writer every --json output uses.
 */
#ifndef HS_EXPORT_H
#define HS_EXPORT_H

#include <stdio.h>

#include "heapsnap.h"
#include "../common/common.h"

/* Each returns 0, or a negative errno (write errors included). base may be NULL. */
HS_HIDDEN int hs_export_folded(const hs_snapshot *s, const hs_snapshot *base, FILE *out);
HS_HIDDEN int hs_export_json(const hs_snapshot *s, const hs_snapshot *base, FILE *out);
HS_HIDDEN int hs_export_pprof(const hs_snapshot *s, const hs_snapshot *base, FILE *out);
/* hs_export_json writes pretty-printed JSON; this one chooses (pretty 0: compact, one line). */
HS_HIDDEN int hs_export_json_ex(const hs_snapshot *s, const hs_snapshot *base, FILE *out,
                                int pretty);

/* Per-traceback statistics of s, or its differences from base when base is not NULL: what the
 * folded and pprof exporters write.  NULL and *err (a negative errno) on failure. */
HS_HIDDEN hs_stats *hs_export_stats(const hs_snapshot *s, const hs_snapshot *base, int *err);

/* A streaming JSON writer: commas and nesting are tracked for the caller. */
typedef struct hs_json {
    FILE *out;
    int depth;
    unsigned char first[64];    /* per depth: nothing written yet at this level */
    int pending_key;            /* a key was just written: no comma before the value */
    int pretty;
} hs_json;

HS_HIDDEN void hs_json_init(hs_json *j, FILE *out, int pretty);
HS_HIDDEN void hs_json_begin_object(hs_json *j);
HS_HIDDEN void hs_json_end_object(hs_json *j);
HS_HIDDEN void hs_json_begin_array(hs_json *j);
HS_HIDDEN void hs_json_end_array(hs_json *j);
HS_HIDDEN void hs_json_key(hs_json *j, const char *key);
HS_HIDDEN void hs_json_string(hs_json *j, const char *s);   /* escaped; bytes that are not UTF-8 as \ufffd */
HS_HIDDEN void hs_json_int(hs_json *j, long long v);
HS_HIDDEN void hs_json_uint(hs_json *j, unsigned long long v);
HS_HIDDEN void hs_json_double(hs_json *j, double v);       /* %.17g, or null when not finite */
HS_HIDDEN void hs_json_bool(hs_json *j, int v);
HS_HIDDEN void hs_json_null(hs_json *j);
/* A frame as {"filename", "lineno", "function", "object"} and a traceback as an array of them,
 * allocation site first. */
HS_HIDDEN void hs_json_frame(hs_json *j, const hs_frame *f);
HS_HIDDEN void hs_json_traceback(hs_json *j, const hs_traceback *tb);

/* UTF-8 validation shared by the writers: the length of the valid sequence starting at s (n > 0
 * bytes available), or 0 when it is invalid, and then *bad is the length (>= 1) of its maximal
 * invalid subpart, which is replaced by one U+FFFD. */
HS_HIDDEN size_t hs_utf8_seq(const unsigned char *s, size_t n, size_t *bad);

#endif
