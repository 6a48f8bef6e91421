/*
 * hooks.c - the malloc family, interposed.
 *
 * libheapsnap.so defines malloc, calloc, realloc, reallocarray, free, posix_memalign,
 * aligned_alloc, memalign, valloc and pvalloc (and dlclose, to keep unloaded libraries
 * resolvable); preloaded or linked ahead of libc, the program's calls land here.  Each hook calls
 * the next definition in the lookup order (dlsym RTLD_NEXT: libc's, or another preloaded
 * allocator such as jemalloc when it comes after heapsnap) and records the block.
 *
 * Start-up without malloc: the first call can come before any constructor, from the dynamic
 * loader itself, and dlsym allocates while we resolve the real functions.  Those requests are
 * served from a static buffer whose blocks are never freed.  The rules of the hook path are in
 * tracer.h.
 */
#include "tracer.h"
#include "symbolize.h"
#include "unwind.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <sys/resource.h>
#include <time.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

hs_real_fns hs_real;
pthread_key_t hs_guard_key;
_Atomic int hs_guard_ready;

/* ---- bootstrap ---------------------------------------------------------------------------------- */

static _Alignas(64) char boot_buf[64 * 1024];
static _Atomic size_t boot_used;
static _Atomic int init_state;           /* 0 not started, 1 resolving, 2 done */
static _Atomic unsigned long init_thread;

static void *boot_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    size_t old = atomic_load(&boot_used), start, end;
    do {
        start = (old + align - 1) & ~(align - 1);
        end = start + n;
        if (end > sizeof(boot_buf) || end < start)
            return NULL;
    } while (!atomic_compare_exchange_weak(&boot_used, &old, end));
    return boot_buf + start;
}

static inline int boot_owns(const void *p)
{
    return (const char *)p >= boot_buf && (const char *)p < boot_buf + sizeof(boot_buf);
}

#define RESOLVE(name) (*(void **)&hs_real.name = dlsym(RTLD_NEXT, #name))

void hs_hooks_init(void)
{
    if (HS_LIKELY(atomic_load_explicit(&init_state, memory_order_acquire) == 2))
        return;
    int expected = 0;
    if (atomic_compare_exchange_strong(&init_state, &expected, 1)) {
        atomic_store(&init_thread, (unsigned long)pthread_self());
        /* Keys below 32 are stored in the thread descriptor: setting one never allocates.  A
         * higher key would allocate inside the hook that sets it, so then nothing is traced. */
        if (pthread_key_create(&hs_guard_key, hs_thread_release) == 0 && hs_guard_key < 32)
            atomic_store_explicit(&hs_guard_ready, 1, memory_order_release);
        RESOLVE(malloc);
        RESOLVE(free);
        RESOLVE(calloc);
        RESOLVE(realloc);
        RESOLVE(reallocarray);
        RESOLVE(posix_memalign);
        RESOLVE(aligned_alloc);
        RESOLVE(memalign);
        RESOLVE(valloc);
        RESOLVE(pvalloc);
        RESOLVE(dlclose);
        atomic_store_explicit(&init_state, 2, memory_order_release);
        if (!atomic_load(&hs_guard_ready))
            hs_log("cannot trace: no low thread-specific key is free (got %u)",
                   (unsigned)hs_guard_key);
        return;
    }
    if (atomic_load(&init_thread) == (unsigned long)pthread_self())
        return;                              /* dlsym allocating: the caller uses boot_alloc */
    while (atomic_load_explicit(&init_state, memory_order_acquire) != 2)
        sched_yield();
}

/* Memory for the tracer's own objects: the real allocator, never traced. */
static void *boot_realloc(void *p, size_t n, void *(*alloc)(size_t));

void *hs_malloc(size_t n)
{
    hs_hooks_init();
    return hs_real.malloc ? hs_real.malloc(n) : boot_alloc(n, 16);
}
void *hs_calloc(size_t n, size_t m)
{
    hs_hooks_init();
    if (hs_real.calloc)
        return hs_real.calloc(n, m);
    if (m && n > SIZE_MAX / m)
        return NULL;
    return boot_alloc(n * m, 16);           /* static memory is zeroed */
}
void *hs_realloc(void *p, size_t n)
{
    hs_hooks_init();
    if (hs_real.realloc == NULL || boot_owns(p))
        return boot_realloc(p, n, hs_malloc);
    return hs_real.realloc(p, n);
}
void hs_free(void *p)
{
    if (p != NULL && !boot_owns(p))
        hs_real.free(p);
}

/* ---- recording ------------------------------------------------------------------------------- */

_Atomic int hs_env_done;

/* 1 when the real functions are known (and the environment was read); 0 while this thread is
 * resolving them, when the caller must serve the request from the start-up buffer. */
static inline int ensure_ready(void)
{
    if (HS_UNLIKELY(atomic_load_explicit(&init_state, memory_order_acquire) != 2)) {
        hs_hooks_init();
        if (atomic_load_explicit(&init_state, memory_order_acquire) != 2)
            return 0;
    }
    if (HS_UNLIKELY(!atomic_load_explicit(&hs_env_done, memory_order_acquire)))
        hs_env_activate();
    return 1;
}

/* realloc of a start-up block: its size is unknown, so copy what can be there. */
static void *boot_realloc(void *p, size_t n, void *(*alloc)(size_t))
{
    void *q = alloc(n);
    if (q != NULL && p != NULL) {
        size_t avail = (size_t)(boot_buf + sizeof(boot_buf) - (char *)p);
        memcpy(q, p, n < avail ? n : avail);
    }
    return q;
}
static void *boot_malloc(size_t n) { return boot_alloc(n, 16); }

/* pre: guard held, p a new block of the program's; frame the hook's frame address (HOOK_FRAME). */
static void record_alloc(void *p, size_t size, const void *frame)
{
    hs_live_prefetch((uintptr_t)p);
    uint32_t stack = hs_capture_stack(frame);
    size_t old;
    int replaced;
    int r = hs_live_put(0, (uintptr_t)p, size, stack, &old, &replaced);
    if (r == -ENOMEM) {
        atomic_fetch_add(&hs_st.lost_blocks, 1);
        atomic_fetch_add(&hs_st.lost_bytes, size);
        atomic_store(&hs_st.oom, 1);
    }
}

/* pre: guard held.  Drops p's trace; counts a free of a block never seen. */
static int record_free(void *p, hs_live *old)
{
    int had = hs_live_del(0, (uintptr_t)p, old);
    if (!had)
        atomic_fetch_add(&hs_st.unknown_frees, 1);
    return had;
}

HS_HIDDEN void hs_record_alloc(void *p, size_t size) { record_alloc(p, size, NULL); }
HS_HIDDEN void hs_record_free(void *p) { record_free(p, NULL); }

/* ---- the hooks ------------------------------------------------------------------------------- */

#define HOOK __attribute__((visibility("default")))

/* In a hook, the frame address is where the program's frame pointer is saved, with the return
 * address into the program above it, so the stack walk starts in the program's frame instead of
 * stepping through the tracer's own.  A function that takes its frame address gets a frame
 * pointer from GCC and Clang whatever the flags (checked with both); the Makefile builds this
 * file with frame pointers besides. */
#define HOOK_FRAME __builtin_frame_address(0)

HOOK void *malloc(size_t n)
{
    if (HS_UNLIKELY(!ensure_ready()))
        return boot_alloc(n, 16);
    if (!hs_tracing() || !hs_guard_enter())
        return hs_real.malloc(n);
    void *p = hs_real.malloc(n);
    if (p != NULL)
        record_alloc(p, n, HOOK_FRAME);
    hs_guard_leave();
    return p;
}

HOOK void free(void *p)
{
    if (p == NULL || boot_owns(p))
        return;
    if (HS_UNLIKELY(hs_real.free == NULL))
        return;                              /* impossible: no real block exists yet */
    if (hs_tracing() && (hs_live_prefetch((uintptr_t)p), hs_guard_enter())) {
        record_free(p, NULL);                /* before the real free: see tracer.h rule 3 */
        hs_real.free(p);
        hs_guard_leave();
        return;
    }
    hs_real.free(p);
}

HOOK void *calloc(size_t n, size_t m)
{
    if (HS_UNLIKELY(!ensure_ready()))
        return (m && n > SIZE_MAX / m) ? NULL : boot_alloc(n * m, 16);
    if (!hs_tracing() || !hs_guard_enter())
        return hs_real.calloc(n, m);
    void *p = hs_real.calloc(n, m);
    if (p != NULL)
        record_alloc(p, n * m, HOOK_FRAME);  /* no overflow: the real calloc succeeded */
    hs_guard_leave();
    return p;
}

/* realloc and reallocarray: SPEC section 1.  The old trace is dropped before the real call (after
 * it, another thread could be given the old address) and put back if the call fails. */
static void *realloc_common(void *p, size_t n, void *q_real(void *, size_t, size_t),
                            size_t a, size_t b, const void *frame)
{
    hs_live old;
    int had = record_free(p, &old);
    void *q = q_real(p, a, b);
    if (q == NULL) {
        if (n != 0 && had) {                 /* failed: p is still the program's */
            size_t ignored;
            int replaced;
            hs_live_put(0, (uintptr_t)p, old.size, old.stack, &ignored, &replaced);
        }
    } else {
        record_alloc(q, n, frame);
    }
    return q;
}

static void *call_realloc(void *p, size_t n, size_t unused)
{
    (void)unused;
    return hs_real.realloc(p, n);
}
static void *call_reallocarray(void *p, size_t a, size_t b)
{
    return hs_real.reallocarray(p, a, b);
}

HOOK void *realloc(void *p, size_t n)
{
    if (HS_UNLIKELY(!ensure_ready()))
        return boot_realloc(p, n, boot_malloc);
    if (boot_owns(p))
        return boot_realloc(p, n, malloc);
    if (!hs_tracing() || !hs_guard_enter())
        return hs_real.realloc(p, n);
    void *q;
    if (p == NULL) {
        q = hs_real.realloc(NULL, n);
        if (q != NULL)
            record_alloc(q, n, HOOK_FRAME);
    } else {
        q = realloc_common(p, n, call_realloc, n, 0, HOOK_FRAME);
    }
    hs_guard_leave();
    return q;
}

HOOK void *reallocarray(void *p, size_t a, size_t b)
{
    size_t n;
    if (__builtin_mul_overflow(a, b, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    if (!ensure_ready() || hs_real.reallocarray == NULL || boot_owns(p))
        return realloc(p, n);
    if (!hs_tracing() || !hs_guard_enter())
        return hs_real.reallocarray(p, a, b);
    void *q;
    if (p == NULL) {
        q = hs_real.reallocarray(NULL, a, b);
        if (q != NULL)
            record_alloc(q, n, HOOK_FRAME);
    } else {
        q = realloc_common(p, n, call_reallocarray, a, b, HOOK_FRAME);
    }
    hs_guard_leave();
    return q;
}

HOOK int posix_memalign(void **out, size_t align, size_t n)
{
    if (HS_UNLIKELY(!ensure_ready())) {
        *out = boot_alloc(n, align);
        return *out ? 0 : ENOMEM;
    }
    if (!hs_tracing() || !hs_guard_enter())
        return hs_real.posix_memalign(out, align, n);
    int r = hs_real.posix_memalign(out, align, n);
    if (r == 0)
        record_alloc(*out, n, HOOK_FRAME);
    hs_guard_leave();
    return r;
}

/* aligned_alloc, memalign, valloc and pvalloc share one shape. */
#define ALIGNED_HOOK(name, params, args, boot_align, recorded)                                  \
    HOOK void *name params                                                                      \
    {                                                                                           \
        if (HS_UNLIKELY(!ensure_ready() || hs_real.name == NULL))                               \
            return boot_alloc(recorded, boot_align);                                            \
        if (!hs_tracing() || !hs_guard_enter())                                                 \
            return hs_real.name args;                                                           \
        void *p = hs_real.name args;                                                            \
        if (p != NULL)                                                                          \
            record_alloc(p, recorded, HOOK_FRAME);                                              \
        hs_guard_leave();                                                                       \
        return p;                                                                               \
    }

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }
/* pvalloc promises (and valgrind counts) the size rounded up to whole pages, at least one. */
static size_t page_round(size_t n)
{
    size_t ps = page_size();
    return n == 0 ? ps : (n + ps - 1) & ~(ps - 1);
}

ALIGNED_HOOK(aligned_alloc, (size_t align, size_t n), (align, n), align, n)
ALIGNED_HOOK(memalign, (size_t align, size_t n), (align, n), align, n)
ALIGNED_HOOK(valloc, (size_t n), (n), page_size(), n)
ALIGNED_HOOK(pvalloc, (size_t n), (n), page_size(), page_round(n))

/* ---- the loader and fork ---------------------------------------------------------------------
 * glibc's fork does not take the loader's lock that dl_iterate_phdr holds: a fork while another
 * thread is inside dl_iterate_phdr leaves it held forever in the child, whose next unwind (libunwind
 * calls dl_iterate_phdr on a cache miss) would then hang where the untraced child would not.
 * A libunwind walk must not be in flight across a fork either (libunwind has mutexes of its own;
 * the fast unwinder has none and calls only the lock-free _dl_find_object), nor the
 * symbolizer's other loader calls (dlopen of libdw, dlsym, dladdr: a fork half-way through dlopen
 * leaves the child a half-loaded libdw; glibc resets the loader lock in the child, not the link
 * map).  So every such use by the tracer is counted in flight, and the fork prepare handler waits
 * until none is.  The count is split over 64 cache lines, a thread's chosen by its id, so that
 * threads unwinding at once do not bounce one shared line (a reader-writer lock did, on every
 * allocation).  A use that starts while a fork waits steps back and waits for it, unless its line
 * already counts a use in flight (its own, nested: a dl_iterate_phdr inside an unwind; or another
 * thread's that the fork waits for anyway).  The wait is bounded: a program that forks from an
 * ELF constructor holds the loader lock that a use in flight may be waiting for; after a second
 * the fork goes on, and the child does not trace.  The program's own dl_iterate_phdr calls are
 * only counted (a fork must not wait for them: their callbacks may wait for the fork): a child
 * forked while one was in progress may have the lock held, and does not trace (tracer.c says so
 * in its log). */
#define LOADER_SLOTS 64
typedef struct loader_slot { _Atomic int n; } __attribute__((aligned(64))) loader_slot;
static loader_slot loader_uses[LOADER_SLOTS];
static _Atomic int forks_waiting;           /* prepare handlers between start and parent/child */
static _Atomic int dl_program_calls;        /* the program's calls in progress */
static int fork_loader_busy;                /* set by the prepare handler, read in the child */

static inline loader_slot *my_loader_slot(void)
{
    return &loader_uses[hs_mix64((uint64_t)pthread_self()) % LOADER_SLOTS];
}

void hs_loader_use_begin(void)
{
    loader_slot *s = my_loader_slot();
    for (;;) {
        /* seq_cst, with the fork's store then loads: one of the two sees the other */
        if (atomic_fetch_add(&s->n, 1) > 0 || atomic_load(&forks_waiting) == 0)
            return;
        atomic_fetch_sub(&s->n, 1);
        while (atomic_load(&forks_waiting) != 0)
            sched_yield();
    }
}

void hs_loader_use_end(void)
{
    atomic_fetch_sub(&my_loader_slot()->n, 1);
}

typedef int (*phdr_cb)(struct dl_phdr_info *, size_t, void *);

HOOK int dl_iterate_phdr(phdr_cb cb, void *data)
{
    static int (*real)(phdr_cb, void *);
    if (HS_UNLIKELY(real == NULL)) {
        *(void **)&real = dlsym(RTLD_NEXT, "dl_iterate_phdr");
        if (real == NULL)
            return 0;
    }
    if (!hs_guard_taken()) {
        atomic_fetch_add(&dl_program_calls, 1);
        int r = real(cb, data);
        atomic_fetch_sub(&dl_program_calls, 1);
        return r;
    }
    hs_loader_use_begin();
    int r = real(cb, data);
    hs_loader_use_end();
    return r;
}

static int loader_idle(void)
{
    for (int i = 0; i < LOADER_SLOTS; i++)
        if (atomic_load(&loader_uses[i].n) != 0)
            return 0;
    return 1;
}

void hs_loader_fork_prepare(void)
{
    atomic_fetch_add(&forks_waiting, 1);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int idle;
    while (!(idle = loader_idle())) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) > 1000000000L)
            break;
        sched_yield();
    }
    fork_loader_busy = !idle || atomic_load(&dl_program_calls) > 0;
}
void hs_loader_fork_parent(void)
{
    atomic_fetch_sub(&forks_waiting, 1);
}
int hs_loader_fork_child(void)
{
    for (int i = 0; i < LOADER_SLOTS; i++)
        atomic_store(&loader_uses[i].n, 0);
    atomic_store(&forks_waiting, 0);
    atomic_store(&dl_program_calls, 0);
    return fork_loader_busy;
}

/* ---- descriptors -------------------------------------------------------------------------------
 * libunwind validates addresses through a pipe it opens on first use (and again when a read from
 * it fails).  Opened with the program's lowest free numbers, that pipe would shift every
 * descriptor the program opens, and a program that closes and reuses descriptors (daemons,
 * close_range) would have its own files read and written by libunwind.  A pipe created inside
 * the tracer is moved to the top of the descriptor range, out of the program's way. */
int hs_fd_high(int fd)
{
    if (fd < 0)
        return fd;
    struct rlimit rl;
    int floor = 900;                         /* the top 48 numbers, or the top quarter of few */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= 8 &&
        rl.rlim_cur <= INT_MAX) {
        int limit = (int)rl.rlim_cur;
        floor = limit - (limit / 4 < 48 ? limit / 4 : 48);
    }
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, floor);
    if (hi < 0)
        return fd;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(hi, F_SETFL, fl);
    close(fd);
    return hi;
}

HOOK int pipe2(int fds[2], int flags)
{
    static int (*real)(int *, int);
    if (HS_UNLIKELY(real == NULL) && (*(void **)&real = dlsym(RTLD_NEXT, "pipe2")) == NULL) {
        errno = ENOSYS;
        return -1;
    }
    int r = real(fds, flags);
    if (r == 0 && hs_guard_taken()) {
        fds[0] = hs_fd_high(fds[0]);
        fds[1] = hs_fd_high(fds[1]);
    }
    return r;
}

HOOK int pipe(int fds[2])
{
    return pipe2(fds, 0);
}

/* dlclose: before the library goes, the symbolizer notes where it was, so frames captured in it
 * stay resolvable in later snapshots; the unwinder forgets the frame rules it read from it. */
HOOK int dlclose(void *handle)
{
    hs_unwind_forget();
    if (ensure_ready() && hs_tracing() && hs_guard_enter()) {
        hs_sym_refresh_modules();
        hs_guard_leave();
    }
    if (HS_UNLIKELY(hs_real.dlclose == NULL)) {
        errno = ENOSYS;
        return -1;
    }
    int r = hs_real.dlclose(handle);
    hs_unwind_forget();                      /* again: a rule may have been read meanwhile */
    return r;
}
