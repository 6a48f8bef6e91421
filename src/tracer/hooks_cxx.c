/*
 * hooks_cxx.c - the C++ operator new / delete family, interposed from C by their mangled names.
 *
 * Interposing them (not only malloc) records the size the program asked for: `new char[0]` is
 * 0 bytes, as valgrind counts it, where libstdc++ would ask malloc for 1.  Each hook calls the
 * next definition (libstdc++'s, or a replacement allocator's), resolved on first use because a
 * C program may load libstdc++ later with dlopen.
 *
 * The next operator new runs without the reentrancy guard, as it would without heapsnap: its
 * new-handler (user code) may allocate, free and throw, and an exception may unwind through our
 * frame, which holds nothing then.  The block it gets from malloc is recorded by the malloc hook
 * (size max(n, 1), the same stack); we then set the recorded size to n, the size the program asked
 * for.  A next operator that does not use malloc (a replacement allocator's) is recorded here.
 */
#include "tracer.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>

HS_HIDDEN void hs_record_alloc(void *p, size_t size);
HS_HIDDEN void hs_record_free(void *p);

typedef void *(*new_fn)(size_t);
typedef void *(*new_nt_fn)(size_t, const void *);
typedef void *(*new_al_fn)(size_t, size_t);
typedef void *(*new_al_nt_fn)(size_t, size_t, const void *);
typedef void (*del_fn)(void *);
typedef void (*del_sz_fn)(void *, size_t);
typedef void (*del_nt_fn)(void *, const void *);
typedef void (*del_al_fn)(void *, size_t);
typedef void (*del_sz_al_fn)(void *, size_t, size_t);
typedef void (*del_al_nt_fn)(void *, size_t, const void *);

static struct {
    new_fn nw, na;
    new_nt_fn nw_nt, na_nt;
    new_al_fn nw_al, na_al;
    new_al_nt_fn nw_al_nt, na_al_nt;
    del_fn dl, da;
    del_sz_fn dl_sz, da_sz;
    del_nt_fn dl_nt, da_nt;
    del_al_fn dl_al, da_al;
    del_sz_al_fn dl_sz_al, da_sz_al;
    del_al_nt_fn dl_al_nt, da_al_nt;
} next;
static _Atomic int next_ready;

/* Resolves every next operator at once.  dlsym allocates: do it under the guard when we can. */
static void resolve(void)
{
    if (HS_LIKELY(atomic_load_explicit(&next_ready, memory_order_acquire)))
        return;
    hs_hooks_init();
    int g = hs_guard_enter();
#define R(field, sym) (*(void **)&next.field = dlsym(RTLD_NEXT, sym))
    R(nw, "_Znwm");
    R(na, "_Znam");
    R(nw_nt, "_ZnwmRKSt9nothrow_t");
    R(na_nt, "_ZnamRKSt9nothrow_t");
    R(nw_al, "_ZnwmSt11align_val_t");
    R(na_al, "_ZnamSt11align_val_t");
    R(nw_al_nt, "_ZnwmSt11align_val_tRKSt9nothrow_t");
    R(na_al_nt, "_ZnamSt11align_val_tRKSt9nothrow_t");
    R(dl, "_ZdlPv");
    R(da, "_ZdaPv");
    R(dl_sz, "_ZdlPvm");
    R(da_sz, "_ZdaPvm");
    R(dl_nt, "_ZdlPvRKSt9nothrow_t");
    R(da_nt, "_ZdaPvRKSt9nothrow_t");
    R(dl_al, "_ZdlPvSt11align_val_t");
    R(da_al, "_ZdaPvSt11align_val_t");
    R(dl_sz_al, "_ZdlPvmSt11align_val_t");
    R(da_sz_al, "_ZdaPvmSt11align_val_t");
    R(dl_al_nt, "_ZdlPvSt11align_val_tRKSt9nothrow_t");
    R(da_al_nt, "_ZdaPvSt11align_val_tRKSt9nothrow_t");
#undef R
    if (g)
        hs_guard_leave();
    /* Without a C++ runtime behind us (it cannot happen for a program that calls these), fall
     * back on the C allocator so the program still gets memory. */
    atomic_store_explicit(&next_ready, 1, memory_order_release);
}

/* Which operator a hook stands for, to pick the right next function. */
enum { OP_NEW, OP_NEW_ARRAY };

static void *fallback_alloc(size_t n, size_t align)
{
    void *p = NULL;
    if (align > 16)
        return posix_memalign(&p, align, n) == 0 ? p : NULL;
    return malloc(n ? n : 1);
}

/* The block p of n bytes that the next operator new returned: recorded with size n. */
static void record_new(void *p, size_t n)
{
    if (p == NULL || !hs_tracing() || !hs_guard_enter())
        return;
    hs_live e;
    if (hs_live_get(0, (uintptr_t)p, &e)) {
        size_t old;
        int replaced;
        if (e.size != n)
            hs_live_put(0, (uintptr_t)p, n, e.stack, &old, &replaced);
    } else {
        hs_record_alloc(p, n);
    }
    hs_guard_leave();
}

static void *do_new(int op, size_t n, size_t align, bool nothrow, const void *nt)
{
    resolve();
    void *p;
    if (op == OP_NEW) {
        if (align)
            p = nothrow ? (next.nw_al_nt ? next.nw_al_nt(n, align, nt) : fallback_alloc(n, align))
                        : (next.nw_al ? next.nw_al(n, align) : fallback_alloc(n, align));
        else
            p = nothrow ? (next.nw_nt ? next.nw_nt(n, nt) : fallback_alloc(n, 0))
                        : (next.nw ? next.nw(n) : fallback_alloc(n, 0));
    } else {
        if (align)
            p = nothrow ? (next.na_al_nt ? next.na_al_nt(n, align, nt) : fallback_alloc(n, align))
                        : (next.na_al ? next.na_al(n, align) : fallback_alloc(n, align));
        else
            p = nothrow ? (next.na_nt ? next.na_nt(n, nt) : fallback_alloc(n, 0))
                        : (next.na ? next.na(n) : fallback_alloc(n, 0));
    }
    record_new(p, n);
    return p;
}

/* The nothrow_t argument is only passed through: any valid reference will do. */
static const char nothrow_tag;

#define HOOK __attribute__((visibility("default")))

HOOK void *_Znwm(size_t n) { return do_new(OP_NEW, n, 0, false, &nothrow_tag); }
HOOK void *_Znam(size_t n) { return do_new(OP_NEW_ARRAY, n, 0, false, &nothrow_tag); }
HOOK void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt) { return do_new(OP_NEW, n, 0, true, nt); }
HOOK void *_ZnamRKSt9nothrow_t(size_t n, const void *nt) { return do_new(OP_NEW_ARRAY, n, 0, true, nt); }
HOOK void *_ZnwmSt11align_val_t(size_t n, size_t al) { return do_new(OP_NEW, n, al, false, &nothrow_tag); }
HOOK void *_ZnamSt11align_val_t(size_t n, size_t al) { return do_new(OP_NEW_ARRAY, n, al, false, &nothrow_tag); }
HOOK void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt)
{
    return do_new(OP_NEW, n, al, true, nt);
}
HOOK void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt)
{
    return do_new(OP_NEW_ARRAY, n, al, true, nt);
}

/* Deletes: drop the trace, then let the next operator free the block with the guard held so its
 * inner free() is not seen a second time.  Operators that were never resolved fall back to free. */
#define DELETE_BODY(call)                                   \
    resolve();                                              \
    if (p == NULL)                                          \
        return;                                             \
    int g = hs_tracing() && hs_guard_enter();               \
    if (g)                                                  \
        hs_record_free(p);                                  \
    call;                                                   \
    if (g)                                                  \
        hs_guard_leave();

HOOK void _ZdlPv(void *p) { DELETE_BODY(next.dl ? next.dl(p) : free(p)) }
HOOK void _ZdaPv(void *p) { DELETE_BODY(next.da ? next.da(p) : free(p)) }
HOOK void _ZdlPvm(void *p, size_t n) { DELETE_BODY(next.dl_sz ? next.dl_sz(p, n) : free(p)) }
HOOK void _ZdaPvm(void *p, size_t n) { DELETE_BODY(next.da_sz ? next.da_sz(p, n) : free(p)) }
HOOK void _ZdlPvRKSt9nothrow_t(void *p, const void *nt) { DELETE_BODY(next.dl_nt ? next.dl_nt(p, nt) : free(p)) }
HOOK void _ZdaPvRKSt9nothrow_t(void *p, const void *nt) { DELETE_BODY(next.da_nt ? next.da_nt(p, nt) : free(p)) }
HOOK void _ZdlPvSt11align_val_t(void *p, size_t al) { DELETE_BODY(next.dl_al ? next.dl_al(p, al) : free(p)) }
HOOK void _ZdaPvSt11align_val_t(void *p, size_t al) { DELETE_BODY(next.da_al ? next.da_al(p, al) : free(p)) }
HOOK void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t al)
{
    DELETE_BODY(next.dl_sz_al ? next.dl_sz_al(p, n, al) : free(p))
}
HOOK void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t al)
{
    DELETE_BODY(next.da_sz_al ? next.da_sz_al(p, n, al) : free(p))
}
HOOK void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt)
{
    DELETE_BODY(next.dl_al_nt ? next.dl_al_nt(p, al, nt) : free(p))
}
HOOK void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt)
{
    DELETE_BODY(next.da_al_nt ? next.da_al_nt(p, al, nt) : free(p))
}
