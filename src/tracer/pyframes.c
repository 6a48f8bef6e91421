/*
 * pyframes.c - Python frames spliced into native stacks (the tracer's half of pyframes.h).
 *
 * On the allocation path (hs_py_splice, from hs_capture_stack): ask the registered provider for
 * the thread's Python frames, put them where the eval loop's return addresses were, and drop
 * the interpreter's and the provider's own frames.  Off it (hs_py_resolve_frame, when a snapshot
 * is built): turn a tagged frame into a symbolized frame, cached for the life of the process.
 */
#include "tracer.h"
#include "symbolize.h"
#include "pyframes.h"

#include <errno.h>
#include <link.h>

const hs_python_ops *_Atomic hs_py_ops;

/* Executable segments of the objects whose frames are dropped, [lo, hi) pairs: the provider's
 * own object always; the interpreter's when Python frames were spliced in (without them, the
 * interpreter's frames are all that says where the call came from). */
#define MAX_RANGES 8
enum { SELF, INTERP };
static uintptr_t drop_lo[MAX_RANGES], drop_hi[MAX_RANGES];
static int drop_kind[MAX_RANGES];
static _Atomic int ndrop;

typedef struct range_query {
    uintptr_t addr[2];          /* [SELF]: in the provider, [INTERP]: in the interpreter */
} range_query;

static int add_ranges(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    range_query *q = data;
    int kind = -1;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        for (int k = 0; k < 2; k++)
            if (q->addr[k] >= lo && q->addr[k] < hi)
                kind = k;
    }
    if (kind < 0)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        int n = atomic_load(&ndrop);
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && n < MAX_RANGES) {
            drop_lo[n] = info->dlpi_addr + ph->p_vaddr;
            drop_hi[n] = drop_lo[n] + ph->p_memsz;
            drop_kind[n] = kind;
            atomic_store(&ndrop, n + 1);
        }
    }
    return 0;
}

int hs_python_register(const hs_python_ops *ops)
{
    if (ops != NULL && ops->version != HS_PYFRAMES_VERSION)
        return -EINVAL;
    if (ops != NULL) {
        int guard = hs_guard_enter();
        atomic_store(&ndrop, 0);
        range_query q = { { [SELF] = (uintptr_t)ops->frames, [INTERP] = ops->eval_lo } };
        dl_iterate_phdr(add_ranges, &q);
        if (guard)
            hs_guard_leave();
    }
    atomic_store_explicit(&hs_py_ops, ops, memory_order_release);
    return 0;
}

static int dropped(uintptr_t pc, int n, int with_interp)
{
    for (int i = 0; i < n; i++)
        if (pc >= drop_lo[i] && pc < drop_hi[i])
            return drop_kind[i] == SELF || with_interp;
    return 0;
}

#define PY_MAX 128          /* Python frames asked for: beyond, a stack is cut anyway */
#define OUT_MAX 512

int hs_py_splice_frames(uintptr_t *pcs, int n, int cap)
{
    const hs_python_ops *ops = atomic_load_explicit(&hs_py_ops, memory_order_acquire);
    if (ops == NULL)
        return n;
    uintptr_t py[PY_MAX];
    unsigned char entry[PY_MAX];
    int np = ops->frames(py, entry, PY_MAX);
    if (np < 0)
        np = 0;
    uintptr_t out[OUT_MAX];
    int m = 0, k = 0, nd = atomic_load(&ndrop);
    if (cap > OUT_MAX)
        cap = OUT_MAX;
    for (int i = 0; i < n && m < cap; i++) {
        if (pcs[i] >= ops->eval_lo && pcs[i] < ops->eval_hi && k < np) {
            /* this call of the eval loop: Python frames up to its outermost one */
            while (k < np && m < cap) {
                out[m++] = py[k];
                if (entry[k++])
                    break;
            }
        } else if (!dropped(pcs[i], nd, np > 0)) {
            out[m++] = pcs[i];
        }
    }
    while (k < np && m < cap)      /* frames whose eval call the unwinder did not reach */
        out[m++] = py[k++];
    memcpy(pcs, out, (size_t)m * sizeof(*pcs));
    return m;
}

/* Resolved Python frames by id, in chunks that never move.  No lock (a fork may come at any
 * time): chunks are installed by compare-and-swap, and an entry is claimed (1) by the thread that
 * fills it, then published (2); a thread finding it claimed waits a little, then settles for
 * "<unknown>" rather than wait on a thread that may not exist (in a forked child). */
#define CHUNK 4096
#define NCHUNKS 4096

typedef struct pyent {
    _Atomic int state;          /* 0 empty, 1 being filled, 2 ready */
    hs_sym_frame f;
} pyent;

static pyent *_Atomic chunks[NCHUNKS];

int hs_py_resolve_frame(uintptr_t tagged, const hs_sym_frame **out)
{
    static const hs_sym_frame unknown = { "<unknown>", 0, "", "", "", 0 };
    const hs_python_ops *ops = atomic_load_explicit(&hs_py_ops, memory_order_acquire);
    uint64_t id = (uint64_t)tagged & ~HS_PYFRAME_TAG;
    *out = &unknown;
    if (ops == NULL || id >= (uint64_t)CHUNK * NCHUNKS)
        return 1;
    pyent *c = atomic_load_explicit(&chunks[id / CHUNK], memory_order_acquire);
    if (c == NULL) {
        pyent *fresh = hs_calloc(CHUNK, sizeof(*fresh));
        if (fresh == NULL)
            return 1;
        pyent *expected = NULL;
        if (atomic_compare_exchange_strong(&chunks[id / CHUNK], &expected, fresh)) {
            c = fresh;
        } else {
            hs_free(fresh);
            c = expected;
        }
    }
    pyent *e = &c[id % CHUNK];
    int st = 0;
    if (atomic_compare_exchange_strong(&e->state, &st, 1)) {
        hs_python_frame pf;
        e->f = unknown;
        if (ops->resolve(tagged, &pf) == 0)
            e->f = (hs_sym_frame){ .filename = pf.filename, .lineno = pf.lineno,
                                   .function = pf.function, .object = "", .build_id = "",
                                   .offset = 0 };
        atomic_store_explicit(&e->state, 2, memory_order_release);
    } else {
        for (int spin = 0; spin < 100000 && st != 2; spin++)
            st = atomic_load_explicit(&e->state, memory_order_acquire);
        if (st != 2)
            return 1;
    }
    *out = &e->f;
    return 1;
}
