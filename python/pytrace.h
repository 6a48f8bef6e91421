/*
 * pytrace.h - the Python allocation tracer of the heapsnap extension module: what module.c (the
 * Python-facing functions and types) calls in pytrace.c (the PyMem hooks, the tables and the frame
 * walker, which alone uses CPython's internal headers).
 *
 * Every function here is called with the GIL held.  Errors set a Python exception and return -1
 * or NULL, as the C API does.
 */
#ifndef HS_PYTRACE_H
#define HS_PYTRACE_H

#include <Python.h>

#include "heapsnap.h"

#define HS_PY_MAX_NFRAME 65535      /* tracemalloc's limit too (frames counted in 16 bits) */

int hs_py_start(int nframe);        /* 0, or -1 with ValueError / MemoryError */
/* Native mode: the preloaded libheapsnap.so traces malloc too, with Python frames in its stacks;
 * the functions below then answer from it.  RuntimeError when it is not preloaded. */
int hs_py_start_native(int nframe);
/* At interpreter start-up under `heapsnap run`: when the preloaded tracer is already tracing,
 * join it in native mode with its traceback limit.  1 joined, 0 nothing to join, -1 error. */
int hs_py_native_attach(void);
void hs_py_stop(void);
int hs_py_is_tracing(void);
int hs_py_traceback_limit(void);
void hs_py_clear_traces(void);
void hs_py_traced_memory(size_t *current, size_t *peak);
void hs_py_reset_peak(void);
size_t hs_py_tracer_memory(void);
/* tracemalloc's _get_object_traceback(): the frames tuple ((filename, lineno), ...) of the block
 * holding obj, most recent first, or None. */
PyObject *hs_py_object_traceback(PyObject *obj);
/* All traces as a heapsnap snapshot (kind "api", with process metadata); RuntimeError when not
 * tracing. */
hs_snapshot *hs_py_take_snapshot(void);

/* Set while this thread is inside the module's own work (a hook, a snapshot, the native frame
 * provider): the PyMem hooks then pass calls through untraced. */
extern _Thread_local int hs_py_in_hook __attribute__((tls_model("initial-exec")));

/* A frame's filename as UTF-8 (surrogates escaped), for snapshot frames.  NULL on error. */
PyObject *hs_py_filename_bytes(PyObject *filename);

#endif
