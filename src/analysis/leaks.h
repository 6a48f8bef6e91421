/*
 * leaks.h - "which call site grows, how fast, how sure are we": the leak verdict over a series of
 * snapshots of one process.  The method is documented in docs/LEAKS.md.
 */
#ifndef HS_LEAKS_H
#define HS_LEAKS_H

#include "heapsnap.h"
#include "../common/common.h"

/* The method's constants (docs/LEAKS.md says why each has its value). */
#define HS_LEAK_MIN_SNAPSHOTS        4     /* fewer: EINVAL */
#define HS_LEAK_DEFAULT_CONFIDENCE   0.5   /* hs_leak_opts.min_confidence by default */
#define HS_LEAK_MIN_RISES            2     /* rising intervals a suspect needs at least */
#define HS_LEAK_STEADY_SPANS         8     /* steadiness compares snapshots ~1/8 of the series apart */
#define HS_LEAK_STEADY_FULL          0.75  /* ... and gives full credit at this non-decreasing share */
#define HS_LEAK_SUPPORT_PRIOR        2     /* support = k / (k + 2) for k intervals */
#define HS_LEAK_PAIR_POINTS          400   /* pairwise statistics use at most this many snapshots */

typedef struct hs_leak_opts {
    hs_key_type key;            /* HS_KEY_TRACEBACK (default) or HS_KEY_LINENO (HS_KEY_FILENAME
                                 * works too) */
    double min_confidence;      /* suspects below are not reported (default 0.5), in [0, 1] */
    size_t min_growth;          /* bytes; suspects growing less are not reported (default 1;
                                 * 0 reads as 1: a suspect always grew) */
} hs_leak_opts;

typedef struct hs_leak_suspect {
    const hs_traceback *traceback;   /* the key; frames[0] is the allocation site */
    long long size_growth;           /* bytes, last snapshot minus first */
    long long count_growth;          /* blocks, last minus first */
    size_t size_first, size_last;
    size_t count_first, count_last;
    double rate_bytes_per_second;    /* slope of the fitted (Theil-Sen) line; 0 when the
                                      * snapshots carry no usable times (hs_leaks_timed()) */
    double rate_bytes_per_snapshot;  /* the same per average interval between snapshots (the
                                      * slope against the snapshot number when untimed) */
    double confidence;               /* 0..1, the product of the four factors below */
    /* The factors of the confidence, each in [0, 1] (docs/LEAKS.md): */
    double trend;                    /* Goodman-Kruskal gamma of bytes against time, if > 0 */
    double steadiness;               /* how rarely the site shrinks over ~1/8 of the series */
    double ending;                   /* growth over the last half against the overall rate */
    double support;                  /* k / (k + 2) for k intervals: the series' length */
    const size_t *sizes;             /* bytes at each snapshot in time order
                                      * (hs_leaks_snapshots() entries), owned by the report */
} hs_leak_suspect;

typedef struct hs_leak_report hs_leak_report;

/* Fills o with the defaults: traceback key, min_confidence 0.5, min_growth 1. */
HS_HIDDEN void hs_leak_opts_init(hs_leak_opts *o);

/* snaps: n >= 4 snapshots of one process, in any order (sorted by their meta timestamp, then
 * elapsed, then their position in snaps; by elapsed when some snapshot has no timestamp).  opts NULL means the defaults.  The report owns
 * everything it points to (its own store): it stays valid after the snapshots are freed.
 * NULL + errno: EINVAL when n < 4, snaps or one of them is NULL, or opts are invalid (key, a
 * min_confidence outside [0, 1]); ENOMEM. */
HS_HIDDEN hs_leak_report *hs_leaks_analyze(const hs_snapshot *const *snaps, size_t n,
                                           const hs_leak_opts *opts);
/* Suspects, largest size_growth first, then highest confidence, then key order (SPEC section 3,
 * ascending). */
HS_HIDDEN size_t hs_leaks_count(const hs_leak_report *r);
HS_HIDDEN const hs_leak_suspect *hs_leaks_get(const hs_leak_report *r, size_t i); /* NULL past the end */
/* Seconds from the first snapshot to the last on the clock used: the timestamps when every
 * snapshot has one and they strictly increase in time order, else elapsed when it strictly
 * increases; 0 when neither does (hs_leaks_timed() is then 0). */
HS_HIDDEN double hs_leaks_duration(const hs_leak_report *r);
/* The number of snapshots analysed (the length of every suspect's sizes). */
HS_HIDDEN size_t hs_leaks_snapshots(const hs_leak_report *r);
/* The position in snaps of the i-th snapshot in time order. */
HS_HIDDEN size_t hs_leaks_snapshot_index(const hs_leak_report *r, size_t i);
/* 1 when the slopes were fitted against snapshot times, 0 when against the snapshot number
 * (times missing or repeated: rate_bytes_per_second is then 0). */
HS_HIDDEN int hs_leaks_timed(const hs_leak_report *r);
/* Keys that grew by at least min_growth from the first snapshot to the last: the sites judged. */
HS_HIDDEN size_t hs_leaks_judged(const hs_leak_report *r);
HS_HIDDEN void hs_leaks_free(hs_leak_report *r);

#endif
