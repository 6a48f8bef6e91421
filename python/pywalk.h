/*
 * pywalk.h - reading the current thread's Python frames without allocating, per CPython
 * version: the one place that uses CPython's internal headers (Py_BUILD_CORE) to walk
 * _PyInterpreterFrame chains (3.11+); on 3.9 and 3.10 PyFrameObject is public.  Used by the
 * Python tracer (pytrace.c) and the native-mode frame provider (pynative.c).  Include it first.
 */
#ifndef HS_PY_PYWALK_H
#define HS_PY_PYWALK_H

#define Py_BUILD_CORE_MODULE 1
#include <Python.h>
/* CPython's internal headers are not written for -Wextra. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#if PY_VERSION_HEX >= 0x030B0000
#include <internal/pycore_frame.h>
#include <internal/pycore_object.h>
#else
#include <frameobject.h>
#include <internal/pycore_gc.h>
#endif
#pragma GCC diagnostic pop

#include "pytrace.h"

#include <stdint.h>

typedef struct pyloc {
    PyCodeObject *code;
    int32_t lasti;          /* byte offset of the current instruction, as PyCode_Addr2Line takes */
    uint32_t pad;
} pyloc;

#if PY_VERSION_HEX >= 0x030D0000
#define TS_FRAME(ts) ((ts)->current_frame)
#define IF_CODE(f) ((PyCodeObject *)(f)->f_executable)
#elif PY_VERSION_HEX >= 0x030B0000
#define TS_FRAME(ts) ((ts)->cframe->current_frame)
#define IF_CODE(f) ((f)->f_code)
#endif

/* Up to max frames of the thread's Python stack, most recent first, into buf; *total gets the
 * depth of the whole stack (capped at HS_PY_MAX_NFRAME).  The GIL is held by this thread. */
static inline int walk_frames(PyThreadState *ts, pyloc *buf, int max, unsigned int *total)
{
    int n = 0;
    unsigned int t = 0;
#if PY_VERSION_HEX >= 0x030B0000
    for (_PyInterpreterFrame *f = TS_FRAME(ts); f != NULL; f = f->previous) {
        if (_PyFrame_IsIncomplete(f))
            continue;
        if (n < max) {
            buf[n].code = IF_CODE(f);
            buf[n].pad = 0;          /* compared whole by memcmp when interning */
            buf[n].lasti = (int32_t)(_PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT));
            n++;
        } else if (t >= HS_PY_MAX_NFRAME) {
            break;
        }
        t++;
    }
#else
    for (PyFrameObject *f = ts->frame; f != NULL; f = f->f_back) {
        if (n < max) {
            buf[n].code = f->f_code;
            buf[n].pad = 0;          /* compared whole by memcmp when interning */
#if PY_VERSION_HEX >= 0x030A0000
            buf[n].lasti = f->f_lasti < 0 ? -1 : f->f_lasti * (int32_t)sizeof(_Py_CODEUNIT);
#else
            buf[n].lasti = f->f_lasti;
#endif
            n++;
        } else if (t >= HS_PY_MAX_NFRAME) {
            break;
        }
        t++;
    }
#endif
    *total = t > HS_PY_MAX_NFRAME ? HS_PY_MAX_NFRAME : t;
    return n;
}

/* The thread state whose frames this thread may read: its own, when it holds the GIL.  In the
 * mem and object domains the GIL is always held; in the raw domain it is checked: on 3.9-3.11
 * the "current" thread state is the GIL holder's, whichever thread asks, so it must be this
 * thread's own; on 3.12+ it is NULL in a thread that released the GIL. */
static inline PyThreadState *frames_tstate(int raw)
{
    PyThreadState *ts = _PyThreadState_UncheckedGet();
    if (raw && ts != NULL && ts != PyGILState_GetThisThreadState())
        return NULL;
    return ts;
}

/* The line of a recorded frame (0 when unknown), and its function's name (qualified on 3.11+). */
static inline unsigned int frame_line(const pyloc *f)
{
    int line = PyCode_Addr2Line(f->code, f->lasti);
    return line < 0 ? 0 : (unsigned int)line;
}

static inline PyObject *frame_function(const pyloc *f)
{
#if PY_VERSION_HEX >= 0x030B0000
    return f->code->co_qualname;
#else
    return f->code->co_name;
#endif
}

/* The code object's line table (what turns offsets into lines): part of a frame's identity when
 * no reference to the code object is held. */
static inline const void *code_linetable(const PyCodeObject *co)
{
#if PY_VERSION_HEX >= 0x030A0000
    return co->co_linetable;
#else
    return co->co_lnotab;
#endif
}

/* Like walk_frames, and entry[i] = 1 when frame i is the outermost frame run by its call of the
 * eval loop (_PyEval_EvalFrameDefault): every frame on 3.9 and 3.10, the is_entry frames on
 * 3.11, the frames just below a C-stack entry frame on 3.12+.  No total. */
static inline int walk_frames_entries(PyThreadState *ts, pyloc *buf, unsigned char *entry, int max)
{
    int n = 0;
#if PY_VERSION_HEX >= 0x030C0000
    for (_PyInterpreterFrame *f = TS_FRAME(ts); f != NULL; f = f->previous) {
        if (f->owner == FRAME_OWNED_BY_CSTACK) {
            if (n > 0)
                entry[n - 1] = 1;
            continue;
        }
        if (_PyFrame_IsIncomplete(f))
            continue;
        if (n == max)
            break;
        buf[n].code = IF_CODE(f);
        buf[n].pad = 0;          /* compared whole by memcmp when interning */
        buf[n].lasti = (int32_t)(_PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT));
        entry[n++] = 0;
    }
#elif PY_VERSION_HEX >= 0x030B0000
    for (_PyInterpreterFrame *f = TS_FRAME(ts); f != NULL && n < max; f = f->previous) {
        if (_PyFrame_IsIncomplete(f)) {
            if (f->is_entry && n > 0)
                entry[n - 1] = 1;
            continue;
        }
        buf[n].code = IF_CODE(f);
        buf[n].pad = 0;          /* compared whole by memcmp when interning */
        buf[n].lasti = (int32_t)(_PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT));
        entry[n++] = (unsigned char)f->is_entry;
    }
#else
    unsigned int total;
    n = walk_frames(ts, buf, max, &total);
    for (int i = 0; i < n; i++)
        entry[i] = 1;
#endif
    if (n > 0)
        entry[n - 1] = 1;
    return n;
}

#endif
