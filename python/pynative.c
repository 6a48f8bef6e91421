/*
 * pynative.c - native mode (heapsnap.start(nframe, native=True)): the preloaded tracer
 * (libheapsnap.so) records every malloc of the process, and this file gives it the Python frames
 * to put into its native stacks (src/tracer/pyframes.h).
 *
 * The provider interns each Python frame (code object, instruction offset) once, with the GIL:
 * it takes a reference to the code object and resolves file, line and function into C strings
 * right away, so that the tracer can resolve the frame later from any thread, even after the
 * interpreter has finalized.  Entries live in chunks that never move; the index (a hash table)
 * is touched only by threads holding the GIL.
 *
 * libheapsnap.so's functions are found with dlsym: they are there only when it was preloaded
 * (`heapsnap run -- python3 app.py`, or LD_PRELOAD).  Small blocks of the mem and object domains
 * come from pymalloc's arenas, not from malloc: pytrace.c's hooks report them to the tracer with
 * hs_track / hs_untrack.
 */
#include "pywalk.h"
#include "pynative.h"
#include "tracer/pyframes.h"

#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>

/* ---- libheapsnap.so, when preloaded ---------------------------------------------------------- */

hs_native_api hs_native;

static int load_api(void)
{
    if (hs_native.start != NULL)
        return 0;
#define GET(field, name)                                                                   \
    if ((*(void **)&hs_native.field = dlsym(RTLD_DEFAULT, name)) == NULL)                 \
        return -1;
    GET(start, "hs_start")
    GET(stop, "hs_stop")
    GET(is_tracing, "hs_is_tracing")
    GET(limit, "hs_get_traceback_limit")
    GET(clear, "hs_clear_traces")
    GET(traced_memory, "hs_get_traced_memory")
    GET(reset_peak, "hs_reset_peak")
    GET(tracer_memory, "hs_get_tracer_memory")
    GET(object_traceback, "hs_get_object_traceback")
    GET(traceback_free, "hs_traceback_free")
    GET(track, "hs_track")
    GET(untrack, "hs_untrack")
    GET(take_snapshot, "hs_take_snapshot")
    GET(snapshot_free, "hs_snapshot_free")
    GET(snapshot_count, "hs_snapshot_count")
    GET(snapshot_get, "hs_snapshot_get")
    GET(snapshot_limit, "hs_snapshot_traceback_limit")
    GET(snapshot_meta, "hs_snapshot_get_meta")
    GET(python_register, "hs_python_register")
#undef GET
    return 0;
}

/* ---- interned frames ------------------------------------------------------------------------- */

#define CHUNK 4096
#define NCHUNKS 4096

typedef struct nent {
    PyCodeObject *code;
    int32_t lasti;
    hs_python_frame fr;
} nent;

static nent *chunks[NCHUNKS];    /* written with the GIL; entries are complete before their id
                                  * is handed out */
static uint32_t nents;           /* GIL */
static uint32_t *index_tab;      /* GIL: id + 1, 0 = empty */
static uint32_t index_cap;

static inline uint32_t loc_hash(const pyloc *f)
{
    uint64_t h = ((uint64_t)(uintptr_t)f->code ^ ((uint64_t)(uint32_t)f->lasti << 40)) *
                 0x9e3779b97f4a7c15ULL;
    return (uint32_t)(h >> 32);
}

static nent *ent(uint32_t id) { return &chunks[id / CHUNK][id % CHUNK]; }

static char *utf8_dup(PyObject *s, const char *dflt)
{
    if (s != NULL && PyUnicode_Check(s)) {
        Py_ssize_t n;
        const char *u = PyUnicode_AsUTF8AndSize(s, &n);
        if (u != NULL)
            return strndup(u, (size_t)n);
        PyErr_Clear();
    }
    return strdup(dflt);
}

static int index_grow(void)
{
    uint32_t cap = index_cap ? index_cap * 2 : 4096;
    uint32_t *t = calloc(cap, sizeof(*t));
    if (t == NULL)
        return -1;
    for (uint32_t id = 0; id < nents; id++) {
        uint32_t j = loc_hash(&(pyloc){ ent(id)->code, ent(id)->lasti, 0 }) & (cap - 1);
        while (t[j] != 0)
            j = (j + 1) & (cap - 1);
        t[j] = id + 1;
    }
    free(index_tab);
    index_tab = t;
    index_cap = cap;
    return 0;
}

/* The id of a frame, interned; UINT32_MAX when out of memory.  GIL held. */
static uint32_t intern(const pyloc *f)
{
    if (index_cap != 0) {
        for (uint32_t j = loc_hash(f) & (index_cap - 1); index_tab[j] != 0;
             j = (j + 1) & (index_cap - 1)) {
            nent *e = ent(index_tab[j] - 1);
            if (e->code == f->code && e->lasti == f->lasti)
                return index_tab[j] - 1;
        }
    }
    if (nents >= (uint32_t)CHUNK * NCHUNKS || ((nents + 1) * 2 > index_cap && index_grow() < 0))
        return UINT32_MAX;
    nent **chunk = &chunks[nents / CHUNK];
    if (*chunk == NULL && (*chunk = calloc(CHUNK, sizeof(nent))) == NULL)
        return UINT32_MAX;
    nent *e = ent(nents);
    PyCodeObject *co = f->code;
    e->fr.filename = utf8_dup(co->co_filename, "<unknown>");
    e->fr.function = utf8_dup(frame_function(f), "");
    e->fr.lineno = frame_line(f);
    if (e->fr.filename == NULL || e->fr.function == NULL)
        return UINT32_MAX;
    Py_INCREF(co);          /* the id names this code object for the life of the process */
    e->code = co;
    e->lasti = f->lasti;
    uint32_t id = nents++;
    uint32_t j = loc_hash(f) & (index_cap - 1);
    while (index_tab[j] != 0)
        j = (j + 1) & (index_cap - 1);
    index_tab[j] = id + 1;
    return id;
}

/* ---- the provider ---------------------------------------------------------------------------- */

static int provide_frames(uintptr_t *out, unsigned char *entry, int max)
{
    PyThreadState *ts = _PyThreadState_UncheckedGet();
    if (ts == NULL || ts != PyGILState_GetThisThreadState())
        return 0;               /* not holding the GIL: no frames */
    pyloc buf[128];
    if (max > 128)
        max = 128;
    int n = walk_frames_entries(ts, buf, entry, max);
    for (int i = 0; i < n; i++) {
        uint32_t id = intern(&buf[i]);
        if (id == UINT32_MAX)
            return i;
        out[i] = (uintptr_t)(HS_PYFRAME_TAG | id);
    }
    return n;
}

static int resolve_frame(uintptr_t tagged, hs_python_frame *out)
{
    uint64_t id = (uint64_t)tagged & ~HS_PYFRAME_TAG;
    if (id >= (uint64_t)CHUNK * NCHUNKS || chunks[id / CHUNK] == NULL)
        return -1;
    nent *e = ent((uint32_t)id);
    if (e->fr.filename == NULL)
        return -1;
    *out = e->fr;
    return 0;
}

static hs_python_ops ops = { .version = HS_PYFRAMES_VERSION, .frames = provide_frames,
                             .resolve = resolve_frame };

static int eval_range(void)
{
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    void *eval = (void *)&_PyEval_EvalFrameDefault;
    if (dladdr1(eval, &info, (void **)&sym, RTLD_DL_SYMENT) == 0 || sym == NULL ||
        sym->st_size == 0)
        return -1;
    ops.eval_lo = (uintptr_t)info.dli_saddr;
    ops.eval_hi = ops.eval_lo + sym->st_size;
    ops.interp_object = info.dli_fname;
    if (dladdr((void *)&provide_frames, &info) != 0)
        ops.self_object = info.dli_fname;
    return 0;
}

/* ---- the mode -------------------------------------------------------------------------------- */

int hs_pyn_start(int nframe)
{
    if (load_api() < 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "heapsnap native mode needs the heapsnap tracer preloaded: run the "
                        "program as `heapsnap run -- python3 app.py` (or with "
                        "LD_PRELOAD=/path/to/libheapsnap.so)");
        return -1;
    }
    if (ops.eval_hi == 0 && eval_range() < 0) {
        PyErr_SetString(PyExc_RuntimeError, "heapsnap native mode: cannot find the interpreter's "
                                            "eval loop (_PyEval_EvalFrameDefault) and its size");
        return -1;
    }
    if (hs_native.python_register(&ops) < 0) {
        PyErr_SetString(PyExc_RuntimeError, "heapsnap native mode: the preloaded libheapsnap.so "
                                            "has another Python frame interface");
        return -1;
    }
    int rc = hs_native.start(nframe);
    if (rc < 0) {
        PyErr_Format(PyExc_ValueError, "the number of frames must be in range [1; %d]",
                     HS_PY_MAX_NFRAME);
        return -1;
    }
    return 0;
}

int hs_pyn_loaded(void) { return load_api() == 0; }
