/*
 * pytrace.c - tracing Python's allocations: hooks on the raw, mem and object PyMem domains, the
 * trace and traceback tables, the frame walker, and the snapshot of the tables.
 *
 * The hot path is what tracemalloc does, made cheaper where tracemalloc is slow:
 *  - a frame is recorded as (code object, instruction offset): two loads per frame.  Line numbers
 *    (a scan of the code's line table) and file names are resolved only when a snapshot is taken,
 *    once per distinct frame.  The traceback table holds a strong reference to each code object
 *    it names, so an address is never reused by another code object while a traceback points at
 *    it; the references are dropped by clear_traces() and stop().
 *  - tracebacks are interned by a hash over those pairs in an open-addressing table of ids; a live
 *    block is 24 bytes {address, size, traceback id} inside one open-addressing table (no malloc
 *    per block, deletion by backward shift), placed by page so that a loop's blocks share cache
 *    lines.
 *  - one mutex (the tables lock) guards both tables and the counters.  It is needed because the
 *    raw domain is called without the GIL; it is never held while calling into Python or the
 *    underlying allocators, so it cannot deadlock against the GIL.
 *
 * Frames are read only by a thread that holds the GIL (always true in the mem and object domains;
 * checked in the raw domain).  The walk reads the thread's own frame chain and allocates nothing.
 * A raw-domain call made without the GIL is traced with no Python frames: its traceback is the
 * empty one, printed as <unknown>:0 as tracemalloc prints an empty traceback (tracemalloc takes
 * the GIL there instead; we never do).
 *
 * Reentrancy: a thread-local flag is set around each traced call, so that a nested hooked call
 * (pymalloc falling back to PyMem_RawMalloc for a large block) is counted once, at the outer call,
 * and the module's own work (snapshots) is not traced.
 *
 * This file alone uses CPython's internal headers (Py_BUILD_CORE) to walk _PyInterpreterFrame
 * chains on 3.11+; on 3.9 and 3.10 PyFrameObject is public.
 */
#include "pywalk.h"
#include "pynative.h"
#include "pytrace.h"
#include "common/common.h"
#include "snapshot/snapshot.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if PY_VERSION_HEX < 0x03090000
#error "heapsnap needs CPython 3.9 or newer"
#endif
#if defined(Py_GIL_DISABLED)
#error "the free-threaded build of CPython is not supported"
#endif

static inline uint64_t tb_hash(const pyloc *b, int n, unsigned int total)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)total << 16) ^ (uint64_t)n;
    for (int i = 0; i < n; i++) {
        h = (h ^ (uint64_t)(uintptr_t)b[i].code) * 0x100000001b3ULL;
        h = (h ^ (uint64_t)(uint32_t)b[i].lasti) * 0xff51afd7ed558ccdULL;
        h ^= h >> 29;
    }
    return hs_mix64(h);
}

/* ---- tables ---------------------------------------------------------------------------------- */

typedef struct trace_ent {
    uintptr_t ptr;          /* 0: empty slot */
    size_t size;
    uint32_t tb;            /* 0: the empty traceback; k: tbs[k - 1] */
    uint32_t pad;
} trace_ent;

typedef struct tbrec {
    uint64_t hash;
    uint32_t off;           /* first frame in frames[] */
    uint16_t n;
    uint16_t total;
} tbrec;

typedef struct tables {
    trace_ent *tr;          /* open addressing, linear probing, at most half full */
    size_t trcap, trn;
    unsigned int trshift;   /* 64 - log2(trcap) */
    tbrec *tbs;             /* tracebacks by id - 1; only appended to until cleared */
    uint32_t ntbs, tbcap;
    uint32_t *tbidx;        /* open addressing: traceback id, 0 = empty */
    uint32_t tbidxcap;
    pyloc *frames;          /* the frames of every traceback; each holds a code reference */
    size_t nframes, framecap;
} tables;

static struct {
    pthread_mutex_t lock;           /* the tables lock: guards T, current, peak, lost */
    _Atomic int tracing;            /* read without the lock by hooks; re-checked under it */
    _Atomic int native;             /* native mode: the preloaded tracer records (pynative.c) */
    int limit;                      /* GIL */
    tables T;
    size_t current, peak;
    unsigned long long lost_blocks, lost_bytes;
    pyloc *walkbuf;                 /* GIL: frames of one walk when limit > WALK_SMALL */
    int walkcap;
    double start_mono;              /* GIL */
    int installed;                  /* GIL: our hooks are in the allocator chains */
} S = { .lock = PTHREAD_MUTEX_INITIALIZER, .limit = 1 };

#define WALK_SMALL 16
#define NO_TB UINT32_MAX

/* initial-exec: one load from the thread pointer on the hot path, instead of a call to
 * __tls_get_addr; 4 bytes of the static TLS surplus that glibc keeps for dlopen'ed objects. */
_Thread_local int hs_py_in_hook __attribute__((tls_model("initial-exec")));

static inline void lock_tables(void) { pthread_mutex_lock(&S.lock); }
static inline void unlock_tables(void) { pthread_mutex_unlock(&S.lock); }

/* A block's home slot: its 4 KiB page hashed, plus its 16-byte offset in the page.  Blocks of
 * one page (pymalloc's pools are pages) sit in neighbouring slots, so the allocations and frees
 * of a loop touch a few cache lines of the table rather than one random line each (measured on
 * the json benchmark, CPython 3.9: -35% time at nframe 1; 2M dense 32-byte blocks: 2x faster). */
static inline size_t ptr_slot(uintptr_t p, unsigned int shift)
{
    size_t page = (size_t)((((uint64_t)p >> 12) * 0x9e3779b97f4a7c15ULL) >> shift);
    return (page + (((size_t)p >> 4) & 255)) & (size_t)(UINT64_MAX >> shift);
}

static int tr_grow_unlocked(tables *t)
{
    size_t cap = t->trcap ? t->trcap * 2 : 1024;
    unsigned int shift = t->trcap ? t->trshift - 1 : 64 - 10;
    trace_ent *n = calloc(cap, sizeof(*n));
    if (n == NULL)
        return -1;
    for (size_t i = 0; i < t->trcap; i++) {
        if (t->tr[i].ptr == 0)
            continue;
        size_t j = ptr_slot(t->tr[i].ptr, shift);
        while (n[j].ptr != 0)
            j = (j + 1) & (cap - 1);
        n[j] = t->tr[i];
    }
    free(t->tr);
    t->tr = n;
    t->trcap = cap;
    t->trshift = shift;
    return 0;
}

/* Insert or replace; *old gets the replaced size (0 when new).  -1 when out of memory. */
static int tr_put_unlocked(tables *t, uintptr_t p, size_t size, uint32_t tb, size_t *old)
{
    if ((t->trn + 1) * 2 > t->trcap && tr_grow_unlocked(t) < 0)
        return -1;
    size_t mask = t->trcap - 1, j = ptr_slot(p, t->trshift);
    for (; t->tr[j].ptr != 0; j = (j + 1) & mask) {
        if (t->tr[j].ptr == p) {
            *old = t->tr[j].size;
            t->tr[j].size = size;
            t->tr[j].tb = tb;
            return 0;
        }
    }
    t->tr[j] = (trace_ent){ .ptr = p, .size = size, .tb = tb };
    t->trn++;
    *old = 0;
    return 0;
}

static trace_ent *tr_find_unlocked(tables *t, uintptr_t p)
{
    if (t->trn == 0)
        return NULL;
    size_t mask = t->trcap - 1;
    for (size_t j = ptr_slot(p, t->trshift); t->tr[j].ptr != 0; j = (j + 1) & mask)
        if (t->tr[j].ptr == p)
            return &t->tr[j];
    return NULL;
}

/* Remove; 1 and the entry when found.  Backward-shift deletion keeps probe chains whole. */
static int tr_del_unlocked(tables *t, uintptr_t p, trace_ent *out)
{
    trace_ent *e = tr_find_unlocked(t, p);
    if (e == NULL)
        return 0;
    *out = *e;
    size_t mask = t->trcap - 1, i = (size_t)(e - t->tr), j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (t->tr[j].ptr == 0)
            break;
        size_t k = ptr_slot(t->tr[j].ptr, t->trshift);
        /* the entry at j may move to i unless its home k lies cyclically in (i, j] */
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            t->tr[i] = t->tr[j];
            i = j;
        }
    }
    t->tr[i].ptr = 0;
    t->trn--;
    return 1;
}

static int tbidx_grow_unlocked(tables *t)
{
    uint32_t cap = t->tbidxcap ? t->tbidxcap * 2 : 1024;
    if (cap == 0)
        return -1;
    uint32_t *n = calloc(cap, sizeof(*n));
    if (n == NULL)
        return -1;
    for (uint32_t id = 1; id <= t->ntbs; id++) {
        uint32_t j = (uint32_t)t->tbs[id - 1].hash & (cap - 1);
        while (n[j] != 0)
            j = (j + 1) & (cap - 1);
        n[j] = id;
    }
    free(t->tbidx);
    t->tbidx = n;
    t->tbidxcap = cap;
    return 0;
}

/* The id of the traceback buf[0..n) (n >= 1), interned; NO_TB when out of memory.  A new
 * traceback takes a reference to each code object: the caller holds the GIL. */
static uint32_t tb_intern_unlocked(tables *t, const pyloc *buf, int n, unsigned int total,
                                   uint64_t h)
{
    if (t->tbidxcap != 0) {
        uint32_t mask = t->tbidxcap - 1;
        for (uint32_t j = (uint32_t)h & mask; t->tbidx[j] != 0; j = (j + 1) & mask) {
            const tbrec *r = &t->tbs[t->tbidx[j] - 1];
            if (r->hash == h && r->n == n && r->total == total &&
                memcmp(&t->frames[r->off], buf, (size_t)n * sizeof(*buf)) == 0)
                return t->tbidx[j];
        }
    }
    if (t->ntbs >= NO_TB - 1)
        return NO_TB;
    if ((t->ntbs + 1) * 2 > t->tbidxcap && tbidx_grow_unlocked(t) < 0)
        return NO_TB;
    if (t->ntbs == t->tbcap) {
        uint32_t cap = t->tbcap ? t->tbcap * 2 : 256;
        tbrec *r = realloc(t->tbs, cap * sizeof(*r));
        if (r == NULL)
            return NO_TB;
        t->tbs = r;
        t->tbcap = cap;
    }
    if (t->nframes + (size_t)n > t->framecap) {
        size_t cap = t->framecap ? t->framecap * 2 : 1024;
        while (cap < t->nframes + (size_t)n)
            cap *= 2;
        pyloc *f = realloc(t->frames, cap * sizeof(*f));
        if (f == NULL)
            return NO_TB;
        t->frames = f;
        t->framecap = cap;
    }
    if (t->nframes > UINT32_MAX - (size_t)n)
        return NO_TB;
    memcpy(&t->frames[t->nframes], buf, (size_t)n * sizeof(*buf));
    for (int i = 0; i < n; i++)
        Py_INCREF(buf[i].code);
    t->tbs[t->ntbs] = (tbrec){ .hash = h, .off = (uint32_t)t->nframes, .n = (uint16_t)n,
                               .total = (uint16_t)total };
    t->nframes += (size_t)n;
    uint32_t id = ++t->ntbs;
    uint32_t mask = t->tbidxcap - 1, j = (uint32_t)h & mask;
    while (t->tbidx[j] != 0)
        j = (j + 1) & mask;
    t->tbidx[j] = id;
    return id;
}

static size_t tables_memory_unlocked(const tables *t)
{
    return t->trcap * sizeof(trace_ent) + (size_t)t->tbcap * sizeof(tbrec) +
           (size_t)t->tbidxcap * sizeof(uint32_t) + t->framecap * sizeof(pyloc);
}

/* Frees a detached copy of the tables and drops its code references.  GIL held, lock not held
 * (a code object freed here goes through our free hook). */
static void tables_release(tables *t)
{
    for (size_t i = 0; i < t->nframes; i++)
        Py_DECREF(t->frames[i].code);
    free(t->tr);
    free(t->tbs);
    free(t->tbidx);
    free(t->frames);
    memset(t, 0, sizeof(*t));
}

/* ---- recording ------------------------------------------------------------------------------- */

static void record_alloc(void *ptr, size_t size, int raw)
{
    pyloc small[WALK_SMALL];
    pyloc *buf = small;
    int n = 0;
    unsigned int total = 0;
    uint64_t h = 0;
    PyThreadState *ts = frames_tstate(raw);
    if (ts != NULL) {
        int limit = S.limit;
        if (limit > WALK_SMALL)
            buf = S.walkbuf;
        n = walk_frames(ts, buf, limit, &total);
        if (n > 0)
            h = tb_hash(buf, n, total);
    }
    lock_tables();
    if (atomic_load_explicit(&S.tracing, memory_order_relaxed)) {
        /* n > 0 only with the GIL held, which tb_intern_unlocked needs for new tracebacks */
        uint32_t tb = n > 0 ? tb_intern_unlocked(&S.T, buf, n, total, h) : 0;
        size_t old;
        if (tb == NO_TB || tr_put_unlocked(&S.T, (uintptr_t)ptr, size, tb, &old) < 0) {
            S.lost_blocks++;
            S.lost_bytes += size;
        } else {
            S.current = S.current - old + size;
            if (S.current > S.peak)
                S.peak = S.current;
        }
    }
    unlock_tables();
}

/* Drops ptr's trace; 1 and the entry when there was one. */
static int record_free(void *ptr, trace_ent *old)
{
    lock_tables();
    int found = tr_del_unlocked(&S.T, (uintptr_t)ptr, old);
    if (found)
        S.current -= old->size;
    unlock_tables();
    return found;
}

/* Puts back a trace that record_free removed (the realloc that followed failed). */
static void record_restore(const trace_ent *e)
{
    size_t old;
    lock_tables();
    if (atomic_load_explicit(&S.tracing, memory_order_relaxed) &&
        tr_put_unlocked(&S.T, e->ptr, e->size, e->tb, &old) == 0)
        S.current = S.current - old + e->size;
    unlock_tables();
}

/* ---- hooks ----------------------------------------------------------------------------------- */

typedef struct hook {
    PyMemAllocatorEx orig;      /* the allocator we wrap (kept after stop: see hs_py_stop) */
    int raw;
} hook;

static hook hooks[3];           /* PYMEM_DOMAIN_RAW, _MEM, _OBJ */

/* 0: pass the call through; 1: trace it here; 2: native mode, report small blocks (pymalloc's,
 * which malloc never sees) to the preloaded tracer.  The raw domain is malloc itself: in native
 * mode the tracer's own malloc hook sees it. */
static inline int hook_mode(const hook *k)
{
    if (hs_py_in_hook)
        return 0;
    if (atomic_load_explicit(&S.tracing, memory_order_relaxed))
        return 1;
    return !k->raw && atomic_load_explicit(&S.native, memory_order_relaxed) ? 2 : 0;
}

#define PYMALLOC_MAX 512    /* pymalloc serves blocks up to this size; larger ones are malloc's */

static void allocated(const hook *k, int mode, void *p, size_t size)
{
    if (mode == 1)
        record_alloc(p, size, k->raw);
    else if (size <= PYMALLOC_MAX)
        hs_native.track(0, (uintptr_t)p, size);
}

static void *hook_malloc(void *ctx, size_t size)
{
    hook *k = ctx;
    int mode = hook_mode(k);
    if (mode == 0)
        return k->orig.malloc(k->orig.ctx, size);
    hs_py_in_hook = 1;
    void *p = k->orig.malloc(k->orig.ctx, size);
    if (p != NULL)
        allocated(k, mode, p, size);
    hs_py_in_hook = 0;
    return p;
}

static void *hook_calloc(void *ctx, size_t nelem, size_t elsize)
{
    hook *k = ctx;
    int mode = hook_mode(k);
    if (mode == 0)
        return k->orig.calloc(k->orig.ctx, nelem, elsize);
    hs_py_in_hook = 1;
    void *p = k->orig.calloc(k->orig.ctx, nelem, elsize);
    if (p != NULL)
        allocated(k, mode, p, nelem * elsize);   /* no overflow: calloc succeeded */
    hs_py_in_hook = 0;
    return p;
}

static void *hook_realloc(void *ctx, void *ptr, size_t size)
{
    hook *k = ctx;
    int mode = hook_mode(k);
    if (mode == 0)
        return k->orig.realloc(k->orig.ctx, ptr, size);
    hs_py_in_hook = 1;
    /* The old trace goes first: once the block has moved, another thread may get its address. */
    trace_ent old;
    int had = 0;
    if (ptr != NULL && mode == 1)
        had = record_free(ptr, &old);
    else if (ptr != NULL)
        hs_native.untrack(0, (uintptr_t)ptr);
    void *p = k->orig.realloc(k->orig.ctx, ptr, size);
    if (p != NULL)
        allocated(k, mode, p, size);
    else if (had)
        record_restore(&old);     /* failed: the block is unchanged, and so is its trace */
    hs_py_in_hook = 0;
    return p;
}

static void hook_free(void *ctx, void *ptr)
{
    hook *k = ctx;
    int mode = ptr != NULL ? hook_mode(k) : 0;
    if (mode == 0) {
        k->orig.free(k->orig.ctx, ptr);
        return;
    }
    hs_py_in_hook = 1;
    trace_ent old;
    if (mode == 1)
        record_free(ptr, &old);
    else
        hs_native.untrack(0, (uintptr_t)ptr);
    k->orig.free(k->orig.ctx, ptr);
    hs_py_in_hook = 0;
}

static const PyMemAllocatorDomain domains[3] = { PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM,
                                                 PYMEM_DOMAIN_OBJ };

static void install_hooks(void)
{
    for (int d = 0; d < 3; d++) {
        PyMem_GetAllocator(domains[d], &hooks[d].orig);
        hooks[d].raw = domains[d] == PYMEM_DOMAIN_RAW;
        PyMemAllocatorEx a = { &hooks[d], hook_malloc, hook_calloc, hook_realloc, hook_free };
        PyMem_SetAllocator(domains[d], &a);
    }
    S.installed = 1;
}

/* Puts the wrapped allocators back where ours are still on top.  Where another hook (the real
 * tracemalloc, say) was installed over ours, ours stay in its chain, passing calls through while
 * not tracing, and are re-used by the next start. */
static void uninstall_hooks(void)
{
    int all = 1;
    for (int d = 0; d < 3; d++) {
        PyMemAllocatorEx cur;
        PyMem_GetAllocator(domains[d], &cur);
        if (cur.malloc == hook_malloc && cur.ctx == &hooks[d])
            PyMem_SetAllocator(domains[d], &hooks[d].orig);
        else
            all = 0;
    }
    S.installed = !all;
}

/* ---- fork ------------------------------------------------------------------------------------ */

/* No thread is inside the tables at a fork: the forking thread holds the lock through it. */
static void fork_prepare(void) { lock_tables(); }
static void fork_parent(void) { unlock_tables(); }
static void fork_child(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;    /* held by this thread: start anew */
    S.lock = fresh;
}

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the API --------------------------------------------------------------------------------- */

int hs_py_start_native(int nframe)
{
    if (atomic_load(&S.tracing)) {
        PyErr_SetString(PyExc_RuntimeError, "heapsnap is tracing in Python mode: stop() first");
        return -1;
    }
    if (atomic_load(&S.native) && hs_native.is_tracing())
        return 0;
    if (hs_pyn_start(nframe) < 0)
        return -1;
    atomic_store(&S.native, 1);
    if (!S.installed)
        install_hooks();
    return 0;
}

static int native_on(void) { return atomic_load(&S.native); }

int hs_py_native_attach(void)
{
    if (atomic_load(&S.tracing) || native_on() || !hs_pyn_loaded() || !hs_native.is_tracing())
        return 0;
    return hs_py_start_native(hs_native.limit()) == 0 ? 1 : -1;
}

int hs_py_start(int nframe)
{
    static int atfork_done;
    if (nframe < 1 || nframe > HS_PY_MAX_NFRAME) {
        PyErr_Format(PyExc_ValueError, "the number of frames must be in range [1; %d]",
                     HS_PY_MAX_NFRAME);
        return -1;
    }
    if (atomic_load(&S.tracing))
        return 0;          /* already tracing: no change (tracemalloc does the same) */
    if (native_on()) {
        PyErr_SetString(PyExc_RuntimeError, "heapsnap is tracing in native mode: stop() first");
        return -1;
    }
    if (!atfork_done) {
        if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0) {
            PyErr_NoMemory();
            return -1;
        }
        atfork_done = 1;
    }
    if (nframe > WALK_SMALL && nframe > S.walkcap) {
        /* Grown only, never freed: a hook may still be reading it until its call returns. */
        pyloc *b = calloc((size_t)nframe, sizeof(*b));
        if (b == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        pyloc *old = S.walkbuf;
        S.walkbuf = b;
        S.walkcap = nframe;
        (void)old;          /* leaked on purpose: see above; at most one per larger limit */
    }
    S.limit = nframe;
    lock_tables();
    S.current = S.peak = 0;
    S.lost_blocks = S.lost_bytes = 0;
    atomic_store(&S.tracing, 1);
    unlock_tables();
    S.start_mono = monotonic_now();
    if (!S.installed)
        install_hooks();
    return 0;
}

/* Detaches the tables under the lock, then releases them outside it. */
static void drop_traces(void)
{
    tables old;
    lock_tables();
    old = S.T;
    memset(&S.T, 0, sizeof(S.T));
    S.current = S.peak = 0;
    unlock_tables();
    tables_release(&old);
}

void hs_py_stop(void)
{
    if (native_on()) {
        atomic_store(&S.native, 0);
        uninstall_hooks();
        hs_native.stop();
        return;
    }
    if (!atomic_load(&S.tracing))
        return;
    lock_tables();
    atomic_store(&S.tracing, 0);
    unlock_tables();
    uninstall_hooks();
    drop_traces();
}

int hs_py_is_tracing(void)
{
    return atomic_load(&S.tracing) || (native_on() && hs_native.is_tracing());
}

int hs_py_traceback_limit(void) { return native_on() ? hs_native.limit() : S.limit; }

void hs_py_clear_traces(void)
{
    if (native_on())
        hs_native.clear();
    else if (atomic_load(&S.tracing))
        drop_traces();
}

void hs_py_traced_memory(size_t *current, size_t *peak)
{
    if (native_on()) {
        hs_native.traced_memory(current, peak);
        return;
    }
    lock_tables();
    int on = atomic_load(&S.tracing);
    *current = on ? S.current : 0;
    *peak = on ? S.peak : 0;
    unlock_tables();
}

void hs_py_reset_peak(void)
{
    if (native_on()) {
        hs_native.reset_peak();
        return;
    }
    lock_tables();
    S.peak = S.current;
    unlock_tables();
}

size_t hs_py_tracer_memory(void)
{
    if (native_on())
        return hs_native.tracer_memory();
    lock_tables();
    size_t n = atomic_load(&S.tracing) ? tables_memory_unlocked(&S.T) : 0;
    unlock_tables();
    return n;
}

/* ---- resolving frames ------------------------------------------------------------------------ */

PyObject *hs_py_filename_bytes(PyObject *filename)
{
    if (filename == NULL || !PyUnicode_Check(filename))
        return PyBytes_FromString("<unknown>");
    return PyUnicode_AsEncodedString(filename, "utf-8", "surrogateescape");
}

/* Bytes before an object's address in its memory block (the GC header, the managed dict). */
static size_t object_preheader(PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
#if PY_VERSION_HEX >= 0x030B0000
    return _PyType_PreHeaderSize(tp);
#else
    return PyType_IS_GC(tp) ? sizeof(PyGC_Head) : 0;
#endif
}

/* A (filename, lineno) tuple for a frame; NULL with an exception. */
static PyObject *frame_tuple(const pyloc *f)
{
    PyObject *fn = f->code->co_filename;
    if (fn == NULL || !PyUnicode_Check(fn))
        return Py_BuildValue("(si)", "<unknown>", 0);
    return Py_BuildValue("(OI)", fn, frame_line(f));
}

static PyObject *empty_frames(void) { return Py_BuildValue("((si))", "<unknown>", 0); }

/* ((filename, lineno), ...) of a heapsnap traceback; empty reads as <unknown>:0. */
static PyObject *native_frames(const hs_traceback *tb)
{
    size_t n = tb->nframes ? tb->nframes : 1;
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; t != NULL && i < n; i++) {
        PyObject *fn = PyUnicode_DecodeUTF8(tb->nframes ? tb->frames[i].filename : "<unknown>",
                                            (Py_ssize_t)strlen(tb->nframes ? tb->frames[i].filename
                                                                           : "<unknown>"),
                                            "surrogateescape");
        PyObject *f = fn ? Py_BuildValue("(NI)", fn, tb->nframes ? tb->frames[i].lineno : 0)
                         : NULL;
        if (f == NULL)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, (Py_ssize_t)i, f);
    }
    return t;
}

PyObject *hs_py_object_traceback(PyObject *obj)
{
    if (native_on()) {
        hs_traceback *tb = hs_native.object_traceback((char *)obj - object_preheader(obj));
        if (tb == NULL)
            Py_RETURN_NONE;
        PyObject *r = native_frames(tb);
        hs_native.traceback_free(tb);
        return r;
    }
    if (!atomic_load(&S.tracing))
        Py_RETURN_NONE;
    uintptr_t p = (uintptr_t)obj - object_preheader(obj);
    lock_tables();
    trace_ent *e = tr_find_unlocked(&S.T, p);
    uint32_t tb = e != NULL ? e->tb : NO_TB;
    unlock_tables();
    if (tb == NO_TB)
        Py_RETURN_NONE;
    if (tb == 0)
        return empty_frames();
    /* The traceback stays: only clear_traces() and stop() drop tracebacks, and they need the
     * GIL, which this thread holds. */
    const tbrec *r = &S.T.tbs[tb - 1];
    PyObject *t = PyTuple_New(r->n);
    if (t == NULL)
        return NULL;
    for (int i = 0; i < r->n; i++) {
        PyObject *f = frame_tuple(&S.T.frames[r->off + (uint32_t)i]);
        if (f == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, f);
    }
    return t;
}

/* ---- snapshots ------------------------------------------------------------------------------- */

/* Per-snapshot cache of resolved frames: (code, lasti) -> frame, and code -> filename/function,
 * so each distinct frame is resolved once. */
typedef struct fcache_ent {
    PyCodeObject *code;
    int32_t lasti;
    int used;
    hs_frame frame;
} fcache_ent;

typedef struct fcache {
    fcache_ent *e;
    size_t cap, n;
    hs_store *store;
} fcache;

static size_t fcache_hash(const PyCodeObject *code, int32_t lasti)
{
    return (size_t)hs_mix64((uint64_t)(uintptr_t)code ^ (uint64_t)(uint32_t)lasti << 40);
}

static const char *store_pystr(hs_store *st, PyObject *s, const char *dflt)
{
    if (s == NULL || !PyUnicode_Check(s))
        return hs_store_str(st, dflt);
    PyObject *b = PyUnicode_AsEncodedString(s, "utf-8", "surrogateescape");
    if (b == NULL) {
        PyErr_Clear();
        return hs_store_str(st, dflt);
    }
    const char *r = hs_store_strn(st, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
    Py_DECREF(b);
    return r;
}

static const hs_frame *fcache_get(fcache *c, const pyloc *f)
{
    if ((c->n + 1) * 2 > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        fcache_ent *n = calloc(cap, sizeof(*n));
        if (n == NULL)
            return NULL;
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->e[i].used)
                continue;
            size_t j = fcache_hash(c->e[i].code, c->e[i].lasti) & (cap - 1);
            while (n[j].used)
                j = (j + 1) & (cap - 1);
            n[j] = c->e[i];
        }
        free(c->e);
        c->e = n;
        c->cap = cap;
    }
    size_t j = fcache_hash(f->code, f->lasti) & (c->cap - 1);
    for (; c->e[j].used; j = (j + 1) & (c->cap - 1))
        if (c->e[j].code == f->code && c->e[j].lasti == f->lasti)
            return &c->e[j].frame;
    fcache_ent *e = &c->e[j];
    e->frame.filename = store_pystr(c->store, f->code->co_filename, "<unknown>");
    e->frame.function = store_pystr(c->store, frame_function(f), "");
    e->frame.object = "";
    e->frame.lineno = frame_line(f);
    e->frame.address = 0;
    if (e->frame.filename == NULL || e->frame.function == NULL)
        return NULL;
    e->code = f->code;
    e->lasti = f->lasti;
    e->used = 1;
    c->n++;
    return &e->frame;
}

/* The program's path and arguments, from /proc (no Python objects needed). */
static void process_meta(hs_snapshot_meta *m, char *exe, size_t exelen, char **argbuf,
                         const char ***argv)
{
    ssize_t n = readlink("/proc/self/exe", exe, exelen - 1);
    exe[n > 0 ? n : 0] = '\0';
    m->program = exe;
    *argbuf = NULL;
    *argv = NULL;
    FILE *f = fopen("/proc/self/cmdline", "re");
    if (f == NULL)
        return;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf != NULL && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *b = realloc(buf, cap * 2);
            if (b == NULL)
                break;
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf == NULL || len == 0 || len == cap) {
        free(buf);
        return;
    }
    buf[len] = '\0';
    size_t argc = 0;
    for (size_t i = 0; i < len; i++)
        argc += buf[i] == '\0';
    const char **v = calloc(argc + 1, sizeof(*v));
    if (v == NULL) {
        free(buf);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < len && k < argc; i += strlen(buf + i) + 1)
        v[k++] = buf + i;
    m->argc = k;
    m->argv = v;
    *argbuf = buf;
    *argv = v;
}

/* The preloaded tracer's snapshot, copied into this module's engine through the public API
 * (the two may come from different builds). */
static hs_snapshot *native_snapshot(void)
{
    hs_snapshot *theirs = hs_native.take_snapshot();
    if (theirs == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the heapsnap tracer must be tracing memory "
                                            "allocations to take a snapshot");
        return NULL;
    }
    hs_snapshot *s = hs_snapshot_new(hs_native.snapshot_limit(theirs));
    size_t n = hs_native.snapshot_count(theirs), cap = 1024;
    while (cap < n * 2)
        cap *= 2;
    const hs_traceback **keys = calloc(cap, sizeof(*keys));
    const hs_tb **vals = calloc(cap, sizeof(*vals));
    int ok = s != NULL && keys != NULL && vals != NULL && hs_snapshot_reserve(s, n) == 0;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned int dom;
        size_t size;
        const hs_traceback *tb;
        hs_native.snapshot_get(theirs, i, &dom, &size, &tb);
        size_t j = hs_mix64((uint64_t)(uintptr_t)tb) & (cap - 1);
        while (keys[j] != NULL && keys[j] != tb)
            j = (j + 1) & (cap - 1);
        if (keys[j] == NULL) {
            keys[j] = tb;
            vals[j] = hs_store_tb(s->store, tb->frames, NULL, tb->nframes, tb->total_nframe);
        }
        ok = vals[j] != NULL && hs_snapshot_push(s, dom, size, vals[j]) == 0;
    }
    if (ok)
        ok = hs_snapshot_set_meta(s, hs_native.snapshot_meta(theirs)) == 0;
    free(keys);
    free(vals);
    hs_native.snapshot_free(theirs);
    if (!ok) {
        hs_snapshot_free(s);
        PyErr_NoMemory();
        return NULL;
    }
    return s;
}

hs_snapshot *hs_py_take_snapshot(void)
{
    if (native_on())
        return native_snapshot();
    if (!atomic_load(&S.tracing)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the tracemalloc module must be tracing memory allocations to take a "
                        "snapshot");
        return NULL;
    }
    hs_snapshot *s = hs_snapshot_new(S.limit);
    if (s == NULL)
        return (hs_snapshot *)PyErr_NoMemory();
    /* Copy the live blocks under the lock.  The traceback tables may be read afterwards without
     * it: only GIL holders add to them (frame-less raw calls use the empty traceback, id 0), and
     * only clear_traces() / stop() empty them, with the GIL, which we hold throughout. */
    int saved = hs_py_in_hook;
    hs_py_in_hook = 1;
    trace_ent *copy = NULL;
    size_t n = 0, current, peak;
    unsigned long long lost_blocks, lost_bytes;
    uint32_t ntbs;
    lock_tables();
    if (S.T.trn > 0 && (copy = malloc(S.T.trn * sizeof(*copy))) != NULL)
        for (size_t i = 0; i < S.T.trcap; i++)
            if (S.T.tr[i].ptr != 0)
                copy[n++] = S.T.tr[i];
    size_t want = S.T.trn;
    current = S.current;
    peak = S.peak;
    lost_blocks = S.lost_blocks;
    lost_bytes = S.lost_bytes;
    ntbs = S.T.ntbs;
    size_t tracer_mem = tables_memory_unlocked(&S.T);
    unlock_tables();

    hs_snapshot *res = NULL;
    const hs_tb **map = NULL;
    fcache fc = { .store = s->store };
    hs_frame small[WALK_SMALL];
    hs_frame *fr = S.limit <= WALK_SMALL ? small : malloc((size_t)S.limit * sizeof(*fr));
    char exe[4096];
    char *argbuf = NULL;
    const char **argv = NULL;
    if ((want > 0 && copy == NULL) || fr == NULL ||
        (map = calloc((size_t)ntbs + 1, sizeof(*map))) == NULL ||
        hs_snapshot_reserve(s, n) < 0)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = copy[i].tb;
        if (map[id] == NULL) {
            size_t nf = 1, total = 1;
            if (id == 0) {
                fr[0] = (hs_frame){ .filename = "<unknown>", .lineno = 0, .function = "",
                                    .object = "", .address = 0 };
            } else {
                const tbrec *r = &S.T.tbs[id - 1];
                nf = r->n;
                total = r->total;
                for (size_t k = 0; k < nf; k++) {
                    const hs_frame *f = fcache_get(&fc, &S.T.frames[r->off + k]);
                    if (f == NULL)
                        goto nomem;
                    fr[k] = *f;
                }
            }
            if ((map[id] = hs_store_tb(s->store, fr, NULL, nf, total)) == NULL)
                goto nomem;
        }
        if (hs_snapshot_push(s, 0, copy[i].size, map[id]) < 0)
            goto nomem;
    }
    hs_snapshot_meta m;
    memset(&m, 0, sizeof(m));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    m.timestamp = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    m.elapsed = monotonic_now() - S.start_mono;
    m.pid = getpid();
    m.ppid = getppid();
    m.kind = "api";
    m.traced_current = current;
    m.traced_peak = peak;
    m.tracer_memory = tracer_mem;
    m.lost_blocks = lost_blocks;
    m.lost_bytes = lost_bytes;
    process_meta(&m, exe, sizeof(exe), &argbuf, &argv);
    if (hs_snapshot_set_meta(s, &m) < 0)
        goto nomem;
    res = s;
    s = NULL;
nomem:
    free(argbuf);
    free(argv);
    free(map);
    free(fc.e);
    if (fr != small)
        free(fr);
    free(copy);
    hs_snapshot_free(s);
    hs_py_in_hook = saved;
    if (res == NULL && !PyErr_Occurred())
        PyErr_NoMemory();
    return res;
}
