/*
 * pyframes.h - Python frames inside native stacks (issue 6, native mode): the interface between
 * the tracer (libheapsnap.so, pyframes.c) and a provider that can read a CPython interpreter's
 * frames (the heapsnap Python package's extension, python/pynative.c).
 *
 * The provider registers itself with hs_python_register() (exported by libheapsnap.so, found
 * with dlsym).  From then on every captured stack is spliced: each return address inside the
 * interpreter's eval loop (_PyEval_EvalFrameDefault) is replaced by the Python frames that this
 * call of the loop runs, so a traceback reads in true call order, native and Python frames
 * mixed.  A Python frame is stored in the stack as HS_PYFRAME_TAG | id: on x86_64 no user-space
 * return address has its top 17 bits set.  The provider resolves an id to (file, line, function)
 * when it interns it (with the GIL), so the tracer can resolve it later from any thread.
 *
 * When a snapshot is built, frames in the interpreter itself and in the provider's own object
 * (allocator glue, the eval loop, call machinery) are left out: what remains is the program's
 * Python code and the native libraries it calls.
 */
#ifndef HS_PYFRAMES_H
#define HS_PYFRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "heapsnap.h"

#define HS_PYFRAME_TAG 0xffff800000000000ULL
#define HS_PYFRAME_IS(pc) (((uint64_t)(pc) & HS_PYFRAME_TAG) == HS_PYFRAME_TAG)
#define HS_PYFRAMES_VERSION 1

typedef struct hs_python_frame {
    const char *filename;       /* never NULL; live as long as the process */
    unsigned int lineno;
    const char *function;       /* never NULL */
} hs_python_frame;

typedef struct hs_python_ops {
    int version;                /* HS_PYFRAMES_VERSION */
    uintptr_t eval_lo, eval_hi; /* the eval loop's code: [lo, hi) */
    const char *interp_object;  /* path of the object holding the interpreter (libpython or the
                                 * python executable) */
    const char *self_object;    /* path of the provider's own object */
    /* The calling thread's Python frames, most recent first, as tagged ids (at most max);
     * entry[i] is 1 when frame i is the outermost frame run by its call of the eval loop.
     * 0 when this thread cannot read its frames now (it does not hold the GIL).  Called inside
     * allocation hooks: allocates nothing through malloc except when interning a new frame. */
    int (*frames)(uintptr_t *out, unsigned char *entry, int max);
    /* The frame of a tagged id; 0, or -1 for an unknown id.  Any thread, any time. */
    int (*resolve)(uintptr_t tagged, hs_python_frame *out);
} hs_python_ops;

/* Registers the provider (NULL: none).  The ops must live as long as the process.  0, or
 * -EINVAL for another interface version.  Exported by libheapsnap.so. */
HS_API int hs_python_register(const hs_python_ops *ops);

#ifdef HS_TRACER_H
/* Inside the tracer (pyframes.c), for capture.c. */
/* Splices the Python frames into a captured stack (n addresses, room for cap) and drops the
 * provider's own frames, and the interpreter's when Python frames were spliced in; returns the
 * new length.  No provider: the stack is unchanged. */
HS_HIDDEN int hs_py_splice_frames(uintptr_t *pcs, int n, int cap);
HS_HIDDEN extern const hs_python_ops *_Atomic hs_py_ops;
static inline int hs_py_splice(uintptr_t *pcs, int n, int cap)
{
    if (HS_LIKELY(atomic_load_explicit(&hs_py_ops, memory_order_relaxed) == NULL))
        return n;                           /* no provider: the common case, without a call */
    return hs_py_splice_frames(pcs, n, cap);
}
/* The frame of a tagged Python frame (always 1 frame, stable). */
HS_HIDDEN int hs_py_resolve_frame(uintptr_t tagged, const hs_sym_frame **out);
#endif

#endif
