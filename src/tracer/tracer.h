/*
 * tracer.h - what the parts of the tracer (the code inside the traced process) share: the real
 * allocator, the reentrancy guard, the global tracing state and the tables.
 *
 * Rules of the hook path (every hook follows them; see hooks.c):
 *  1. A hook first checks "tracing" and the thread's reentrancy guard; when either says no, it
 *     calls the real function and nothing else.  The guard is set around all internal work, so
 *     the tracer's own allocations (libunwind, libdw, snapshots) are never traced and a nested
 *     hooked call (operator new -> malloc) is counted once, at the outermost call.
 *  2. No tracer lock is held while unwinding, calling dl_iterate_phdr or libdw, or doing I/O.
 *     Locks are held only around table operations, which never call back into the program.
 *  3. A free is recorded before the real free (afterwards another thread may get the address);
 *     an allocation is recorded after the real call, and only when it succeeded.
 *  4. Fork: the prepare handler takes every tracer lock (tables, symbolizer, state); the child
 *     handler re-initialises them and resets what must be reset.  Fork is detected only there,
 *     never by comparing getpid().  vfork and posix_spawn children run no hook until they exec.
 *  5. Nothing is freed and no lock destroyed at exit: other threads may still be in a hook.
 *  6. When a block cannot be recorded (the tracer's memory ran out), the program is not told:
 *     its call succeeds as usual and the completeness counters (lost_blocks, tracer_oom) say so.
 */
#ifndef HS_TRACER_H
#define HS_TRACER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "heapsnap.h"
#include "../common/common.h"

/* ---- the real allocator (hooks.c) ------------------------------------------------------------- */
typedef struct hs_real_fns {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*reallocarray)(void *, size_t, size_t);
    void (*free)(void *);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    int (*dlclose)(void *);
} hs_real_fns;

HS_HIDDEN extern hs_real_fns hs_real;
HS_HIDDEN void hs_hooks_init(void);          /* resolves hs_real; safe to call many times */
/* A descriptor the tracer opened, moved to the top of the range (just under RLIMIT_NOFILE) and
 * the low number closed: the program's next open must still get the lowest free number (daemons
 * that close everything and reopen 0, 1, 2 check it).  Returns fd itself when it cannot move. */
HS_HIDDEN int hs_fd_high(int fd);
/* Around every libunwind walk and every loader call of the symbolizer: none is in flight across
 * a fork. */
HS_HIDDEN void hs_loader_use_begin(void);
HS_HIDDEN void hs_loader_use_end(void);
/* Fork handlers: prepare waits (bounded) until no loader use is in flight. */
HS_HIDDEN void hs_loader_fork_prepare(void);
HS_HIDDEN void hs_loader_fork_parent(void);
HS_HIDDEN int hs_loader_fork_child(void);  /* 1: the loader may be locked in this child */

/* ---- the reentrancy guard (hooks.c) -----------------------------------------------------------
 * One pthread key holds the calling thread's state block (tables.c): the guard, the stack cache
 * and the walk memo.  A pthread key rather than a __thread variable: the tracer adds no TLS
 * segment of its own (every TLS module grows every thread's DTV, which the program allocates).
 * Keys below 32 live in the thread descriptor, so get/set never allocate.  Taking and leaving the
 * guard is one getspecific and a plain store each.  A thread gets its block on its first guard;
 * the key holds HS_THREAD_SEALED meanwhile (a signal handler's allocation there is not traced),
 * and for life in the tracer's own thread.  Until the key exists, every thread counts as guarded
 * (nothing is traced). */
HS_HIDDEN extern pthread_key_t hs_guard_key;
HS_HIDDEN extern _Atomic int hs_guard_ready;
typedef struct hs_thread { volatile int busy; } hs_thread;  /* the head of tables.c's block */
#define HS_THREAD_SEALED ((void *)1)
/* The calling thread's block, made now: NULL when there is no memory for it (the thread is then
 * not traced, and the snapshot says that the tracer ran short). */
HS_HIDDEN hs_thread *hs_thread_start(void);
HS_HIDDEN void hs_thread_release(void *block);   /* the key's destructor */

/* 1 when the guard was free and is now taken by the caller; 0 when already held. */
static inline int hs_guard_enter(void)
{
    if (HS_UNLIKELY(!atomic_load_explicit(&hs_guard_ready, memory_order_acquire)))
        return 0;
    hs_thread *t = pthread_getspecific(hs_guard_key);
    if (HS_UNLIKELY(t == NULL) && (t = hs_thread_start()) == NULL)
        return 0;
    if ((void *)t == HS_THREAD_SEALED || t->busy)
        return 0;
    t->busy = 1;
    atomic_signal_fence(memory_order_seq_cst);   /* taken before anything the guard covers */
    return 1;
}
static inline void hs_guard_leave(void)
{
    hs_thread *t = pthread_getspecific(hs_guard_key);
    atomic_signal_fence(memory_order_seq_cst);
    t->busy = 0;
}
/* This thread is inside the tracer (not merely "the guard is not ready yet"). */
static inline int hs_guard_taken(void)
{
    if (!atomic_load_explicit(&hs_guard_ready, memory_order_acquire))
        return 0;
    hs_thread *t = pthread_getspecific(hs_guard_key);
    return (void *)t == HS_THREAD_SEALED || (t != NULL && t->busy);
}
static inline int hs_guard_held(void)
{
    return !atomic_load_explicit(&hs_guard_ready, memory_order_acquire) || hs_guard_taken();
}

/* ---- global state (tracer.c) ------------------------------------------------------------------ */
#define HS_EXTRA_FRAMES 32          /* captured past the limit, for inlining and trimming (SPEC 7) */
#define HS_STACK_BUF 256            /* capture buffer on the C stack; more is malloc'd */

/* Read on every hooked call: tracing, limit, trim.  Written on every one: current, peak, on a cache
 * line of their own, so that threads allocating at once do not also invalidate each other's copy
 * of the flags (false sharing cost the two-thread microbenchmark most of its second core). */
typedef struct hs_state {
    _Atomic int tracing;              /* hooks record only while set; re-checked under locks */
    _Atomic int limit;                /* traceback limit of the last successful start */
    _Atomic int trim;                 /* allocation-site trimming on */
    double start_monotonic;           /* when tracing started (CLOCK_MONOTONIC seconds) */
    _Alignas(64) _Atomic size_t current;   /* traced memory, all domains */
    _Atomic size_t peak;
    _Alignas(64) _Atomic unsigned long long lost_blocks, lost_bytes, unknown_frees;
    _Atomic int oom;
} hs_state;

HS_HIDDEN extern hs_state hs_st;

static inline int hs_tracing(void)
{
    return atomic_load_explicit(&hs_st.tracing, memory_order_relaxed);
}

/* Called at the first hook call of the process (and again until the environment is readable):
 * reads HEAPSNAP_* and starts tracing when asked. */
HS_HIDDEN void hs_env_activate(void);
HS_HIDDEN void hs_count_add(size_t size);
HS_HIDDEN void hs_count_sub(size_t size);
HS_HIDDEN void hs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
HS_HIDDEN void hs_set_log_path(const char *path);

/* ---- tables (tables.c) -------------------------------------------------------------------------
 * Stacks: each distinct captured stack once, by id (0 = no stack).  Live blocks: (domain, address)
 * -> (size, stack id), sharded by address.  Tracer memory comes from mmap and is counted. */
typedef struct hs_stack {
    uint64_t hash;
    uint32_t n;                      /* captured return addresses, most recent first */
    uint32_t pad;
    uintptr_t pcs[];
} hs_stack;

typedef struct hs_live {
    uintptr_t addr;
    size_t size;
    uint32_t stack;
    unsigned int domain;
} hs_live;

/* The id of a stack, through the calling thread's cache of recent stacks; 0 when out of memory. */
HS_HIDDEN uint32_t hs_stacks_intern(const uintptr_t *pcs, uint32_t n);
/* The same without the cache (tests). */
HS_HIDDEN uint32_t hs_stacks_intern_uncached(const uintptr_t *pcs, uint32_t n);
/* The calling thread's stack-walk memo (unwind.h), kept with its stack cache, for walks of up to
 * steps steps; NULL when there is none (more than HS_MEMO_STEPS, a thread without a block, or
 * no memory).  pre: the guard is held. */
struct hs_walk_memo;
HS_HIDDEN struct hs_walk_memo *hs_thread_walk_memo(int steps);
HS_HIDDEN const hs_stack *hs_stacks_get(uint32_t id);

HS_HIDDEN void hs_live_prefetch(uintptr_t addr); /* before a put: start the cache miss early */
/* Insert or replace; returns 0, or -ENOMEM (nothing recorded).  *old_size gets the replaced
 * block's size (0 when new).  The tracing flag is re-checked under the lock: -ECANCELED when off. */
HS_HIDDEN int hs_live_put(unsigned int domain, uintptr_t addr, size_t size, uint32_t stack,
                          size_t *old_size, int *replaced);
/* Remove; 1 and the entry when found, 0 when untraced. */
HS_HIDDEN int hs_live_del(unsigned int domain, uintptr_t addr, hs_live *out);
HS_HIDDEN int hs_live_get(unsigned int domain, uintptr_t addr, hs_live *out);
/* Every live block, copied under all locks at once; *counters are read under the same locks.
 * The array comes from hs_malloc.  -ENOMEM on failure. */
HS_HIDDEN int hs_live_copy(hs_live **out, size_t *n, size_t *current, size_t *peak);
HS_HIDDEN void hs_live_clear(void);             /* all domains; under all locks */
HS_HIDDEN size_t hs_tables_memory(void);
HS_HIDDEN void hs_tables_lock_all(void);        /* fork prepare */
HS_HIDDEN void hs_tables_unlock_all(void);      /* fork parent */
HS_HIDDEN void hs_tables_reinit_locks(void);    /* fork child */
/* mmap-backed memory for tables, counted in hs_tables_memory(). */
HS_HIDDEN void *hs_map(size_t n);
HS_HIDDEN void hs_unmap(void *p, size_t n);

/* ---- stack capture (unwind.h) and snapshots (capture.c) ------------------------------------- */
/* guard held; 0 when nothing could be stored.  frame: a hook's frame address (a frame built with
 * frame pointers: the saved frame pointer, then the return address), where the walk starts; or
 * NULL to walk from the caller. */
HS_HIDDEN uint32_t hs_capture_stack(const void *frame);
HS_HIDDEN int hs_set_alloc_fns(const char *colon_list);
HS_HIDDEN hs_snapshot *hs_take_snapshot_kind(const char *kind);  /* guard held by the caller */

#endif
