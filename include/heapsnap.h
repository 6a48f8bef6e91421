/*
 * heapsnap.h - the one public header of heapsnap.
 *
 * heapsnap brings CPython's tracemalloc model to native Linux processes: trace every allocation
 * with a short traceback, take snapshots of the live blocks, group them into statistics, compare
 * two snapshots and filter by file pattern.  The behaviour contract is SPEC.md; this header is its
 * C binding.
 *
 * Conventions: every public name starts with hs_ / HS_; errors are negative errno values or the
 * HS_E* codes below (hs_strerror() names them); every object owns the strings and frames it points
 * to.  The tracing functions (hs_start ... hs_take_snapshot) work only in a process where
 * libheapsnap.so is loaded (preloaded or linked); the snapshot and analysis functions work anywhere.
 *
 * Annotation without a dependency: define HEAPSNAP_WEAK before including this header (or include
 * <heapsnap-annotate.h>) and use HS_TRACK / HS_UNTRACK; see the end of this file.
 */
#ifndef HEAPSNAP_H
#define HEAPSNAP_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HEAPSNAP_VERSION_MAJOR 0
#define HEAPSNAP_VERSION_MINOR 1
#define HEAPSNAP_VERSION_PATCH 0
#define HEAPSNAP_VERSION_STRING "0.1.0"

#if defined(HEAPSNAP_BUILDING)
#define HS_API __attribute__((visibility("default")))
#else
#define HS_API
#endif

/* Errors beyond negative errno values.  All are below -4095, so they never equal a negated errno. */
#define HS_ENOTTRACING   (-10001)   /* the call needs tracing to be on */
#define HS_EBADKEY       (-10002)   /* unknown key type, or cumulative with the traceback key */
#define HS_EFORMAT       (-10003)   /* not a snapshot file, or a corrupt one */
#define HS_EVERSION      (-10004)   /* a snapshot file of a newer format version */

#define HS_ANY_LINE      (-1)       /* hs_filter.lineno: every line */
#define HS_ALL_FRAMES    INT_MIN    /* hs_traceback_format: no limit */
#define HS_MAX_FRAMES    65535      /* the largest traceback limit */

/* One frame.  function and object are never NULL ("" when unknown); filename is "<unknown>" when
 * nothing is known, or the object's path (with lineno 0) when the object has no line info. */
typedef struct hs_frame {
    const char *filename;
    unsigned int lineno;
    const char *function;
    const char *object;
    uintptr_t address;
} hs_frame;

/* frames[0] is the allocation site (most recent call); total_nframe >= nframes is the depth of
 * the whole stack before the limit was applied (capped, see docs/FORMAT.md). */
typedef struct hs_traceback {
    size_t nframes;
    size_t total_nframe;
    const hs_frame *frames;
} hs_traceback;

typedef enum { HS_KEY_FILENAME, HS_KEY_LINENO, HS_KEY_TRACEBACK } hs_key_type;

typedef struct hs_statistic {
    size_t size;
    long long size_diff;
    size_t count;
    long long count_diff;
    const hs_traceback *traceback;  /* the key: 1 frame for filename/lineno keys */
} hs_statistic;

typedef struct hs_filter {
    int inclusive;
    const char *filename_pattern;   /* NULL with has_domain set: a DomainFilter */
    int lineno;                     /* HS_ANY_LINE (-1): every line */
    int all_frames;
    int has_domain;
    unsigned int domain;
} hs_filter;

typedef struct hs_snapshot hs_snapshot;   /* opaque */
typedef struct hs_stats hs_stats;         /* opaque */

/* ---- Tracing (in a process where libheapsnap.so is loaded) ---------------------------------- */

HS_API int    hs_start(int nframes);      /* 0 (also when already tracing), or a negative error */
HS_API void   hs_stop(void);
HS_API int    hs_is_tracing(void);
HS_API int    hs_get_traceback_limit(void);
HS_API void   hs_clear_traces(void);
HS_API void   hs_get_traced_memory(size_t *current, size_t *peak);
HS_API void   hs_reset_peak(void);
HS_API size_t hs_get_tracer_memory(void); /* tracemalloc's get_tracemalloc_memory() */
HS_API hs_traceback *hs_get_object_traceback(const void *ptr); /* NULL when untraced */
HS_API void   hs_traceback_free(hs_traceback *tb);
/* The program is shutting down: no more periodic snapshots (HEAPSNAP_INTERVAL), whose blocks
 * would be those of the teardown; the final snapshot is still taken at exit.  For runtimes that
 * tear down before exit (the Python package calls it from the interpreter's atexit). */
HS_API void   hs_exiting(void);
HS_API int    hs_track(unsigned int domain, uintptr_t ptr, size_t size);
HS_API int    hs_untrack(unsigned int domain, uintptr_t ptr);

/* ---- Snapshots ------------------------------------------------------------------------------- */

HS_API hs_snapshot *hs_take_snapshot(void);  /* NULL + errno: EINVAL when not tracing, ENOMEM */
HS_API hs_snapshot *hs_snapshot_new(int traceback_limit);  /* an empty snapshot, to fill by hand */
/* frames[0] = allocation site; strings are copied.  0 or a negative error. */
HS_API int    hs_snapshot_add_trace(hs_snapshot *s, unsigned int domain, size_t size,
                                    const hs_frame *frames, size_t nframes, size_t total_nframe);
HS_API size_t hs_snapshot_count(const hs_snapshot *s);
HS_API int    hs_snapshot_get(const hs_snapshot *s, size_t i, unsigned int *domain, size_t *size,
                              const hs_traceback **tb);
HS_API int    hs_snapshot_traceback_limit(const hs_snapshot *s);
HS_API int    hs_snapshot_dump(const hs_snapshot *s, const char *path);  /* 0 or negative errno */
/* NULL + message ("<path>: <what is wrong>") on failure; errbuf may be NULL. */
HS_API hs_snapshot *hs_snapshot_load(const char *path, char *errbuf, size_t errlen);
HS_API void   hs_snapshot_free(hs_snapshot *s);
HS_API hs_snapshot *hs_snapshot_filter_traces(const hs_snapshot *s, const hs_filter *filters,
                                              size_t nfilters);

/* What a snapshot says about where and when it was taken.  Strings are "" when unknown. */
typedef struct hs_snapshot_meta {
    double timestamp;              /* seconds since the Epoch when taken (0: unknown) */
    double elapsed;                /* seconds since tracing started */
    long long pid, ppid;
    const char *program;           /* path of the traced executable */
    size_t argc;
    const char *const *argv;
    const char *kind;              /* "api", "interval", "request", "final" or "" */
    size_t traced_current, traced_peak, tracer_memory;
    /* completeness (SPEC section 7) */
    unsigned long long lost_blocks;    /* blocks the tracer could not record */
    unsigned long long lost_bytes;
    unsigned long long unknown_frees;  /* frees of blocks the tracer never saw allocated */
    int tracer_oom;                    /* the tracer's own memory ran short */
    int trimmed;                       /* allocation-site trimming was on */
} hs_snapshot_meta;

HS_API const hs_snapshot_meta *hs_snapshot_get_meta(const hs_snapshot *s);
HS_API int    hs_snapshot_set_meta(hs_snapshot *s, const hs_snapshot_meta *meta); /* copies */
/* Sum of sizes and number of traces. */
HS_API void   hs_snapshot_totals(const hs_snapshot *s, size_t *size, size_t *count);

/* ---- Statistics ------------------------------------------------------------------------------ */

/* NULL + errno (EINVAL for invalid combinations, ENOMEM) on failure. */
HS_API hs_stats *hs_snapshot_statistics(const hs_snapshot *s, hs_key_type key, int cumulative);
HS_API hs_stats *hs_snapshot_compare_to(const hs_snapshot *s, const hs_snapshot *old,
                                        hs_key_type key, int cumulative);
HS_API size_t hs_stats_count(const hs_stats *st);
HS_API const hs_statistic *hs_stats_get(const hs_stats *st, size_t i);
/* One SPEC section 2 line, no newline: a statistic, or a diff for compare_to results.  Returns the
 * length as snprintf does. */
HS_API int    hs_stats_format(const hs_stats *st, size_t i, char *buf, size_t len);
/* SPEC section 2 listing, each line ending in \n, source lines when readable. */
HS_API int    hs_traceback_format(const hs_traceback *tb, int limit, int most_recent_first,
                                  char *buf, size_t len);
HS_API void   hs_stats_free(hs_stats *st);

/* fmt(x, sign) of SPEC section 2 ("10.0 KiB", "+0 B"); returns the length as snprintf does. */
HS_API int    hs_format_size(char *buf, size_t len, double size, int sign);
/* Whole-string fnmatch of SPEC section 5: 1 on a match. */
HS_API int    hs_fnmatch(const char *pattern, const char *string);

HS_API const char *hs_strerror(int err);
HS_API const char *hs_version(void);

/* ---- Annotation of custom allocators ---------------------------------------------------------
 * With HEAPSNAP_WEAK defined, hs_track / hs_untrack are weak references: the program links
 * without libheapsnap, and HS_TRACK / HS_UNTRACK return HS_ENOTTRACING when it is not loaded. */
#if defined(HEAPSNAP_WEAK)
#pragma weak hs_track
#pragma weak hs_untrack
#define HS_TRACK(domain, ptr, size) \
    (hs_track ? hs_track((domain), (uintptr_t)(ptr), (size)) : HS_ENOTTRACING)
#define HS_UNTRACK(domain, ptr) \
    (hs_untrack ? hs_untrack((domain), (uintptr_t)(ptr)) : HS_ENOTTRACING)
#else
#define HS_TRACK(domain, ptr, size) hs_track((domain), (uintptr_t)(ptr), (size))
#define HS_UNTRACK(domain, ptr) hs_untrack((domain), (uintptr_t)(ptr))
#endif

#ifdef __cplusplus
}
#endif
#endif /* HEAPSNAP_H */
