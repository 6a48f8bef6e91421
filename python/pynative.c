/*
 * pynative.c - native mode (heapsnap.start(nframe, native=True)): the preloaded tracer
 * (libheapsnap.so) records every malloc of the process, and this file gives it the Python frames
 * to put into its native stacks (src/tracer/pyframes.h).
 *
 * The provider interns each Python frame (code object, instruction offset) once and resolves
 * file, line and function into C strings right away, so that the tracer can resolve the frame
 * later from any thread, even after the interpreter has finalized.  Entries live in chunks that
 * never move.
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
#include <pthread.h>
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
    *(void **)&hs_native.exiting = dlsym(RTLD_DEFAULT, "hs_exiting");
    return 0;
}

/* ---- interned frames -------------------------------------------------------------------------
 * Frames are interned by any thread, with or without the GIL (a C extension's malloc often runs
 * with the GIL released: ssl, sqlite3, zlib), under intern_lock.  No reference to the code
 * object is taken (that needs the GIL): an entry keeps a fingerprint of it instead (file name,
 * function name and line table objects, first line), checked on every match, so a code object
 * that died and whose address was reused by another one gets an entry of its own.  Without the
 * GIL, a frame is interned only when its file and function names are ASCII (their UTF-8 is then
 * their own bytes, read without allocating); otherwise that stack gets no Python frames. */

#define CHUNK 4096
#define NCHUNKS 4096

typedef struct nent {
    const PyCodeObject *code;
    int32_t lasti;
    int firstlineno;
    const void *filename, *name, *linetable;    /* the fingerprint: identities only */
    hs_python_frame fr;
} nent;

static pthread_mutex_t intern_lock = PTHREAD_MUTEX_INITIALIZER;
static nent *chunks[NCHUNKS];    /* entries are complete before their id is handed out */
static uint32_t nents;           /* intern_lock */
static uint32_t *index_tab;      /* intern_lock: id + 1, 0 = empty */
static uint32_t index_cap;
static _Thread_local int in_provider __attribute__((tls_model("initial-exec")));

static void intern_fork_prepare(void) { pthread_mutex_lock(&intern_lock); }
static void intern_fork_parent(void) { pthread_mutex_unlock(&intern_lock); }
static void intern_fork_child(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    intern_lock = fresh;
}

static inline uint32_t loc_hash(const PyCodeObject *code, int32_t lasti)
{
    uint64_t h = ((uint64_t)(uintptr_t)code ^ ((uint64_t)(uint32_t)lasti << 40)) *
                 0x9e3779b97f4a7c15ULL;
    return (uint32_t)(h >> 32);
}

static nent *ent(uint32_t id) { return &chunks[id / CHUNK][id % CHUNK]; }

static int same_code(const nent *e, const pyloc *f)
{
    const PyCodeObject *co = f->code;
    return e->code == co && e->lasti == f->lasti && e->filename == co->co_filename &&
           e->name == frame_function(f) && e->linetable == code_linetable(co) &&
           e->firstlineno == co->co_firstlineno;
}

/* UTF-8 copy of a str.  Without the GIL only a compact ASCII str is read (its bytes are its
 * UTF-8, nothing is allocated or cached); NULL with *skip set for others. */
static char *utf8_dup(PyObject *s, const char *dflt, int gil, int *skip)
{
    if (s == NULL || !PyUnicode_Check(s))
        return strdup(dflt);
    if (!gil) {
        if (!PyUnicode_IS_COMPACT_ASCII(s)) {
            *skip = 1;
            return NULL;
        }
        return strndup((const char *)PyUnicode_DATA(s), (size_t)PyUnicode_GET_LENGTH(s));
    }
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (u != NULL)
        return strndup(u, (size_t)n);
    PyErr_Clear();
    return strdup(dflt);
}

static int index_grow_locked(void)
{
    uint32_t cap = index_cap ? index_cap * 2 : 4096;
    uint32_t *t = calloc(cap, sizeof(*t));
    if (t == NULL)
        return -1;
    for (uint32_t id = 0; id < nents; id++) {
        uint32_t j = loc_hash(ent(id)->code, ent(id)->lasti) & (cap - 1);
        while (t[j] != 0)
            j = (j + 1) & (cap - 1);
        t[j] = id + 1;
    }
    free(index_tab);
    index_tab = t;
    index_cap = cap;
    return 0;
}

/* The id of a frame of this thread's stack (its code object is alive: the frame holds it);
 * UINT32_MAX when it cannot be interned now.  intern_lock held. */
static uint32_t intern_locked(const pyloc *f, int gil)
{
    if (index_cap != 0) {
        for (uint32_t j = loc_hash(f->code, f->lasti) & (index_cap - 1); index_tab[j] != 0;
             j = (j + 1) & (index_cap - 1))
            if (same_code(ent(index_tab[j] - 1), f))
                return index_tab[j] - 1;
    }
    if (nents >= (uint32_t)CHUNK * NCHUNKS ||
        ((nents + 1) * 2 > index_cap && index_grow_locked() < 0))
        return UINT32_MAX;
    nent **chunk = &chunks[nents / CHUNK];
    if (*chunk == NULL && (*chunk = calloc(CHUNK, sizeof(nent))) == NULL)
        return UINT32_MAX;
    nent *e = ent(nents);
    const PyCodeObject *co = f->code;
    int skip = 0;
    char *file = utf8_dup(co->co_filename, "<unknown>", gil, &skip);
    char *func = utf8_dup(frame_function(f), "", gil, &skip);
    if (file == NULL || func == NULL) {
        free(file);
        free(func);
        return UINT32_MAX;
    }
    *e = (nent){ .code = co, .lasti = f->lasti, .firstlineno = co->co_firstlineno,
                 .filename = co->co_filename, .name = frame_function(f),
                 .linetable = code_linetable(co),
                 .fr = { .filename = file, .function = func, .lineno = frame_line(f) } };
    uint32_t id = nents++;
    uint32_t j = loc_hash(f->code, f->lasti) & (index_cap - 1);
    while (index_tab[j] != 0)
        j = (j + 1) & (index_cap - 1);
    index_tab[j] = id + 1;
    return id;
}

/* ---- the provider ---------------------------------------------------------------------------- */

/* Called by the tracer inside its allocation hooks, in any thread.  The thread's own frames are
 * read, with or without the GIL: only this thread pushes and pops them, and it is here. */
static int provide_frames(uintptr_t *out, unsigned char *entry, int max)
{
    PyThreadState *own = PyGILState_GetThisThreadState();
    if (own == NULL || in_provider)
        return 0;               /* no Python thread state, or a nested call from inside here */
    int gil = _PyThreadState_UncheckedGet() == own;
    pyloc buf[128];
    if (max > 128)
        max = 128;
    int n = walk_frames_entries(own, buf, entry, max);
    in_provider = 1;
    int saved = hs_py_in_hook;
    hs_py_in_hook = 1;          /* what interning allocates is not reported back to the tracer */
    pthread_mutex_lock(&intern_lock);
    int k = 0;
    for (; k < n; k++) {
        uint32_t id = intern_locked(&buf[k], gil);
        if (id == UINT32_MAX)
            break;
        out[k] = (uintptr_t)(HS_PYFRAME_TAG | id);
    }
    pthread_mutex_unlock(&intern_lock);
    hs_py_in_hook = saved;
    in_provider = 0;
    if (k < n)
        return 0;               /* all or nothing: the interpreter's frames stay instead */
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
    static int atfork_done;
    if (!atfork_done && pthread_atfork(intern_fork_prepare, intern_fork_parent,
                                       intern_fork_child) == 0)
        atfork_done = 1;
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
