/*
 * pynative.h - native mode: the functions of the preloaded libheapsnap.so (found with dlsym) and
 * the provider of Python frames for its stacks (pynative.c).
 */
#ifndef HS_PYNATIVE_H
#define HS_PYNATIVE_H

#include "heapsnap.h"

typedef struct hs_native_api {
    int (*start)(int);
    void (*stop)(void);
    int (*is_tracing)(void);
    int (*limit)(void);
    void (*clear)(void);
    void (*traced_memory)(size_t *, size_t *);
    void (*reset_peak)(void);
    size_t (*tracer_memory)(void);
    hs_traceback *(*object_traceback)(const void *);
    void (*traceback_free)(hs_traceback *);
    int (*track)(unsigned int, uintptr_t, size_t);
    int (*untrack)(unsigned int, uintptr_t);
    hs_snapshot *(*take_snapshot)(void);
    void (*snapshot_free)(hs_snapshot *);
    size_t (*snapshot_count)(const hs_snapshot *);
    int (*snapshot_get)(const hs_snapshot *, size_t, unsigned int *, size_t *,
                        const hs_traceback **);
    int (*snapshot_limit)(const hs_snapshot *);
    const hs_snapshot_meta *(*snapshot_meta)(const hs_snapshot *);
    int (*python_register)(const void *);
    void (*exiting)(void);                   /* NULL in a tracer without it */
} hs_native_api;

extern hs_native_api hs_native;     /* filled by hs_pyn_start / hs_pyn_loaded */

/* Registers the Python frame provider with the preloaded tracer and starts it: 0, or -1 with
 * RuntimeError (not preloaded: says how to run) or ValueError (nframe). */
int hs_pyn_start(int nframe);
/* 1 when libheapsnap.so is preloaded (its functions are loaded into hs_native). */
int hs_pyn_loaded(void);

#endif
