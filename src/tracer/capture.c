/*
 * capture.c - from raw stacks to tracebacks: stack capture on the allocation path, and, off it,
 * symbolization, allocation-site trimming (SPEC section 7) and the snapshot itself.
 *
 * On the allocation path only hs_capture_stack runs: unwind, drop the tracer's own frames, intern
 * the addresses.  Everything else happens when a snapshot or an object traceback is asked for,
 * with the reentrancy guard held and no tracer lock held.
 */
#include "tracer.h"
#include "allocfn.h"
#include "rustsym.h"
#include "symbolize.h"
#include "pyframes.h"
#include "unwind.h"
#include "../snapshot/snapshot.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <time.h>
#include <unistd.h>

/* ---- capture ------------------------------------------------------------------------------------ */

static uintptr_t self_lo, self_hi;           /* the tracer's own executable code */
static _Atomic int capture_ready;

/* Finds the text segment of libheapsnap.so from its ELF program headers in memory. */
static void find_self(void)
{
    Dl_info info;
    if (dladdr((void *)&find_self, &info) == 0 || info.dli_fbase == NULL)
        return;
    const ElfW(Ehdr) *eh = info.dli_fbase;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)((const char *)eh + eh->e_phoff);
    uintptr_t bias = (uintptr_t)info.dli_fbase;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X)) {
            /* The first PT_LOAD maps file offset 0 at the base: bias = base - its vaddr (0). */
            self_lo = bias + ph[i].p_vaddr;
            self_hi = self_lo + ph[i].p_memsz;
        }
    }
}

static void capture_init(void)
{
    find_self();
    hs_unwind_init();
    atomic_store_explicit(&capture_ready, 1, memory_order_release);
}

uint32_t hs_capture_stack(const void *frame)
{
    if (HS_UNLIKELY(!atomic_load_explicit(&capture_ready, memory_order_acquire)))
        capture_init();
    int limit = atomic_load_explicit(&hs_st.limit, memory_order_relaxed);
    int want = limit + HS_EXTRA_FRAMES;
    int room = want + HS_UNWIND_OWN_FRAMES;
    uintptr_t small[HS_STACK_BUF], *pcs = small;
    if (room > HS_STACK_BUF) {
        pcs = hs_malloc((size_t)room * sizeof(*pcs));
        if (pcs == NULL) {
            pcs = small;
            room = HS_STACK_BUF;
            want = room - HS_UNWIND_OWN_FRAMES;
        }
    }
    int n = hs_unwind(pcs, want, frame, hs_thread_walk_memo(room + 1));
    /* The tracer's own frames go: the hooks on top, and an operator-new hook in the middle
     * (libstdc++'s operator new calls malloc from inside it). */
    int keep = 0;
    for (int i = 0; i < n; i++)
        if (pcs[i] < self_lo || pcs[i] >= self_hi)
            pcs[keep++] = pcs[i];
    keep = hs_py_splice(pcs, keep, room);    /* Python frames, when a provider is registered */
    if (keep > limit + HS_EXTRA_FRAMES)
        keep = limit + HS_EXTRA_FRAMES;
    uint32_t id = hs_stacks_intern(pcs, (uint32_t)keep);
    if (id == 0)
        atomic_store(&hs_st.oom, 1);
    if (pcs != small)
        hs_free(pcs);
    return id;
}

/* ---- trimming ----------------------------------------------------------------------------------- */

static hs_alloc_fns alloc_fns;              /* HEAPSNAP_ALLOC_FN patterns; set before tracing */

int hs_set_alloc_fns(const char *list)
{
    hs_alloc_fns l;
    int r = hs_alloc_fns_parse(&l, list);
    if (r == 0)
        alloc_fns = l;                       /* the old list is kept: a reader may hold it */
    return r;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The allocator's own entry points, by name: never an allocation site. */
static int is_alloc_entry(const char *fn)
{
    static const char *const names[] = {
        "malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign", "aligned_alloc",
        "memalign", "valloc", "pvalloc", "__libc_malloc", "__libc_calloc", "__libc_realloc",
        "__libc_memalign", "__libc_valloc", "__libc_pvalloc",
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(names); i++)
        if (strcmp(fn, names[i]) == 0)
            return 1;
    return starts_with(fn, "operator new") || starts_with(fn, "operator delete");
}

/* Rust's runtime: the standard library's crates (std, core, alloc, and the crates std vendors),
 * inlined or instantiated anywhere, its allocator shims, and libstd-*.so.  Paths are those
 * rustc records for its own sources (/rustc/<commit>/library/..., /rust/deps/... for std's
 * dependencies) or Debian's (/usr/src/rustc-<version>/library|vendor/...); a function without
 * line info is known by its demangled name, or by the crate of a v0 name that did not demangle. */
static int is_rust_runtime(const hs_sym_frame *f)
{
    const char *p = f->filename;
    if ((starts_with(p, "/rustc/") && strstr(p, "/library/") != NULL) ||
        starts_with(p, "/rust/deps/") ||
        (starts_with(p, "/usr/src/rustc-") &&
         (strstr(p, "/library/") != NULL || strstr(p, "/vendor/") != NULL)))
        return 1;
    const char *fn = f->function;
    if (starts_with(fn, "__rust_") || starts_with(fn, "__rdl_") || starts_with(fn, "__rg_") ||
        starts_with(base_name(f->object), "libstd-"))
        return 1;
    if (f->lineno > 0)
        return 0;            /* the path decides: <Vec<T> as mycrate::Grow>::grow is the user's */
    if (fn[0] == '<')
        fn++;                                /* "<alloc::vec::Vec<T> as ...>::drop" */
    if ((starts_with(fn, "alloc::") || starts_with(fn, "core::") || starts_with(fn, "std::")) &&
        strchr(fn, '(') == NULL)             /* a C++ name has its parameters */
        return 1;
    char crate[16];
    return hs_rust_v0_crate(f->function, crate, sizeof(crate)) &&
           (strcmp(crate, "std") == 0 || strcmp(crate, "core") == 0 ||
            strcmp(crate, "alloc") == 0);
}

/* The C and C++ runtime: libc, libstdc++ (and libc++), libgcc_s, the dynamic loader, and the C++
 * standard library's header code wherever it was inlined or instantiated; and Rust's. */
static int is_runtime(const hs_sym_frame *f)
{
    if (is_rust_runtime(f))
        return 1;
    static const char *const objects[] = {
        "libc.so", "libstdc++.so", "libgcc_s.so", "ld-linux", "libc++.so", "libc++abi.so",
        "libpthread.so", "libdl.so", "libm.so",
    };
    const char *obj = base_name(f->object);
    for (size_t i = 0; i < HS_ARRAY_LEN(objects); i++)
        if (starts_with(obj, objects[i]))
            return 1;
    if (strstr(f->filename, "/include/c++/") != NULL)
        return 1;
    /* glibc's inline wrappers in its headers (bits/stdio2.h's asprintf under _FORTIFY_SOURCE,
     * bits/stdio.h's getline at -O2): the program's line is their caller's */
    const char *inc = strstr(f->filename, "/include/");
    if (inc != NULL && strstr(inc, "/bits/") != NULL)
        return 1;
    const char *fn = f->function;
    /* "void std::vector<...>::_M_realloc_insert(...)": skip a return type first. */
    const char *sp = strchr(fn, ' ');
    if (sp != NULL && strcspn(fn, "<(") > (size_t)(sp - fn))
        fn = sp + 1;
    return starts_with(fn, "std::") || starts_with(fn, "__gnu_cxx::") ||
           starts_with(fn, "__cxxabiv1::");
}

/* Scratch for one expanded stack: symbolized frames, most recent first. */
typedef struct expanded {
    const hs_sym_frame **f;
    uintptr_t *pc;
    size_t n, cap;
} expanded;

static int expand(const hs_stack *st, expanded *x)
{
    x->n = 0;
    for (uint32_t i = 0; st != NULL && i < st->n; i++) {
        const hs_sym_frame *fr;
        int k = HS_PYFRAME_IS(st->pcs[i]) ? hs_py_resolve_frame(st->pcs[i], &fr)
                                          : hs_sym_resolve(st->pcs[i], 1, &fr);
        if (x->n + (size_t)k > x->cap) {
            size_t cap = (x->n + (size_t)k) * 2 + 64;
            const hs_sym_frame **f = hs_realloc(x->f, cap * sizeof(*f));
            if (f == NULL)
                return -ENOMEM;
            x->f = f;
            uintptr_t *pc = hs_realloc(x->pc, cap * sizeof(*pc));
            if (pc == NULL)
                return -ENOMEM;
            x->pc = pc;
            x->cap = cap;
        }
        for (int j = 0; j < k; j++) {
            x->f[x->n] = &fr[j];
            x->pc[x->n++] = st->pcs[i];
        }
    }
    return 0;
}

/* The first frame that stays (SPEC section 7): past the allocator's entry points always, and
 * with trimming on past the runtime and the user's wrapper functions too, unless that would
 * leave nothing. */
static size_t first_kept(const expanded *x, int trim)
{
    size_t a = 0;
    while (a < x->n && is_alloc_entry(x->f[a]->function))
        a++;
    if (!trim)
        return a;
    size_t b = a;
    while (b < x->n && (is_runtime(x->f[b]) || is_alloc_entry(x->f[b]->function) ||
                        hs_alloc_fns_match(&alloc_fns, x->f[b]->function)))
        b++;
    return b < x->n ? b : a;
}

/* Frames of one raw stack after trimming and the limit, into frames/loc (capacity limit). */
static size_t build(const hs_stack *st, expanded *x, int limit, int trim, hs_frame *frames,
                    hs_frame_loc *loc, size_t *total)
{
    *total = 0;
    if (expand(st, x) < 0 || x->n == 0)
        return 0;
    size_t a = first_kept(x, trim);
    size_t n = x->n - a;
    *total = n;
    if (n > (size_t)limit)
        n = (size_t)limit;
    for (size_t i = 0; i < n; i++) {
        const hs_sym_frame *f = x->f[a + i];
        frames[i] = (hs_frame){ .filename = f->filename, .lineno = f->lineno,
                                .function = f->function, .object = f->object,
                                .address = x->pc[a + i] };
        loc[i] = (hs_frame_loc){ .build_id = f->build_id, .offset = f->offset };
    }
    return n;
}

/* ---- snapshots ---------------------------------------------------------------------------------- */

static double now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads a small /proc file whole, with plain syscalls. */
static ssize_t read_proc(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return (ssize_t)got;
}

static int fill_meta(hs_snapshot *s, const char *kind, size_t current, size_t peak)
{
    char exe[4096] = "";
    ssize_t r = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[r > 0 ? r : 0] = '\0';
    size_t cmdcap = 64 * 1024;
    char *cmd = hs_malloc(cmdcap);
    const char *argv[256];
    size_t argc = 0;
    if (cmd != NULL) {
        ssize_t n = read_proc("/proc/self/cmdline", cmd, cmdcap - 1);
        if (n > 0) {
            cmd[n] = '\0';
            for (ssize_t i = 0; i < n && argc < HS_ARRAY_LEN(argv); i += (ssize_t)strlen(cmd + i) + 1)
                argv[argc++] = cmd + i;
        }
    }
    hs_snapshot_meta m = {
        .timestamp = now(CLOCK_REALTIME),
        .elapsed = now(CLOCK_MONOTONIC) - hs_st.start_monotonic,
        .pid = getpid(),
        .ppid = getppid(),
        .program = exe,
        .argc = argc,
        .argv = argv,
        .kind = kind,
        .traced_current = current,
        .traced_peak = peak,
        .tracer_memory = hs_get_tracer_memory(),
        .lost_blocks = atomic_load(&hs_st.lost_blocks),
        .lost_bytes = atomic_load(&hs_st.lost_bytes),
        .unknown_frees = atomic_load(&hs_st.unknown_frees),
        .tracer_oom = atomic_load(&hs_st.oom),
        .trimmed = atomic_load(&hs_st.trim),
    };
    int rc = hs_snapshot_set_meta(s, &m);
    hs_free(cmd);
    return rc;
}

/* Stack id -> interned traceback, for one snapshot. */
typedef struct tb_map {
    uint32_t *ids;
    const hs_tb **tbs;
    size_t cap;
} tb_map;

hs_snapshot *hs_take_snapshot_kind(const char *kind)
{
    int limit = atomic_load(&hs_st.limit), trim = atomic_load(&hs_st.trim);
    hs_live *lv = NULL;
    size_t n = 0, current = 0, peak = 0;
    hs_snapshot *s = NULL;
    tb_map map = { 0 };
    expanded x = { 0 };
    hs_frame *frames = hs_malloc((size_t)limit * sizeof(*frames));
    hs_frame_loc *loc = hs_malloc((size_t)limit * sizeof(*loc));
    int err = ENOMEM;
    if (frames == NULL || loc == NULL)
        goto fail;
    if (hs_live_copy(&lv, &n, &current, &peak) < 0)
        goto fail;
    hs_sym_refresh_modules();
    if ((s = hs_snapshot_new(limit)) == NULL || hs_snapshot_reserve(s, n) < 0)
        goto fail;
    /* The symbolizer's strings (and the Python provider's) live as long as the process. */
    (void)hs_store_memo(s->store, 1);
    map.cap = 1024;
    while (map.cap < n * 2 && map.cap < ((size_t)1 << 24))
        map.cap *= 2;
    map.ids = hs_calloc(map.cap, sizeof(*map.ids));
    map.tbs = hs_calloc(map.cap, sizeof(*map.tbs));
    if (map.ids == NULL || map.tbs == NULL)
        goto fail;
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = lv[i].stack;
        size_t j = hs_mix64(id + 1) & (map.cap - 1);
        while (map.ids[j] != 0 && map.ids[j] != id + 1)
            j = (j + 1) & (map.cap - 1);
        if (map.ids[j] == 0) {
            if (++distinct * 2 > map.cap) {
                /* Too many distinct stacks for the map: grow it. */
                size_t cap = map.cap * 2;
                uint32_t *ids = hs_calloc(cap, sizeof(*ids));
                const hs_tb **tbs = hs_calloc(cap, sizeof(*tbs));
                if (ids == NULL || tbs == NULL) {
                    hs_free(ids);
                    hs_free(tbs);
                    goto fail;
                }
                for (size_t k = 0; k < map.cap; k++) {
                    if (map.ids[k] == 0)
                        continue;
                    size_t q = hs_mix64(map.ids[k]) & (cap - 1);
                    while (ids[q] != 0)
                        q = (q + 1) & (cap - 1);
                    ids[q] = map.ids[k];
                    tbs[q] = map.tbs[k];
                }
                hs_free(map.ids);
                hs_free(map.tbs);
                map.ids = ids;
                map.tbs = tbs;
                map.cap = cap;
                j = hs_mix64(id + 1) & (map.cap - 1);
                while (map.ids[j] != 0)
                    j = (j + 1) & (map.cap - 1);
            }
            size_t total;
            size_t nf = build(hs_stacks_get(id), &x, limit, trim, frames, loc, &total);
            const hs_tb *tb = hs_store_tb(s->store, frames, loc, nf, total);
            if (tb == NULL)
                goto fail;
            map.ids[j] = id + 1;
            map.tbs[j] = tb;
        }
        hs_snapshot_push(s, lv[i].domain, lv[i].size, map.tbs[j]);   /* reserved above */
    }
    if (fill_meta(s, kind, current, peak) < 0)
        goto fail;
    err = 0;
fail:
    if (s != NULL)
        (void)hs_store_memo(s->store, 0);
    hs_free(lv);
    hs_free(map.ids);
    hs_free(map.tbs);
    hs_free(x.f);
    hs_free(x.pc);
    hs_free(frames);
    hs_free(loc);
    if (err != 0) {
        hs_snapshot_free(s);
        errno = err;
        return NULL;
    }
    return s;
}

hs_snapshot *hs_take_snapshot(void)
{
    if (!hs_tracing()) {
        errno = EINVAL;
        return NULL;
    }
    int g = hs_guard_enter();
    hs_snapshot *s = hs_take_snapshot_kind("api");
    int e = errno;
    if (g)
        hs_guard_leave();
    errno = e;
    return s;
}

/* One block holds the traceback, its frames and their strings: hs_traceback_free frees it. */
hs_traceback *hs_get_object_traceback(const void *ptr)
{
    if (!hs_tracing() || ptr == NULL)
        return NULL;
    int g = hs_guard_enter();
    hs_traceback *tb = NULL;
    hs_live e;
    int limit = atomic_load(&hs_st.limit);
    expanded x = { 0 };
    hs_frame *frames = hs_malloc((size_t)limit * sizeof(*frames));
    hs_frame_loc *loc = hs_malloc((size_t)limit * sizeof(*loc));
    if (frames == NULL || loc == NULL || !hs_live_get(0, (uintptr_t)ptr, &e))
        goto out;
    hs_sym_refresh_modules();
    size_t total;
    size_t n = build(hs_stacks_get(e.stack), &x, limit, atomic_load(&hs_st.trim), frames, loc, &total);
    size_t strbytes = 0;
    for (size_t i = 0; i < n; i++)
        strbytes += strlen(frames[i].filename) + strlen(frames[i].function) +
                    strlen(frames[i].object) + 3;
    tb = hs_malloc(sizeof(*tb) + n * sizeof(hs_frame) + strbytes);
    if (tb == NULL)
        goto out;
    hs_frame *out = (hs_frame *)(tb + 1);
    char *str = (char *)(out + n);
    for (size_t i = 0; i < n; i++) {
        out[i] = frames[i];
        const char **fields[] = { &out[i].filename, &out[i].function, &out[i].object };
        for (size_t k = 0; k < 3; k++) {
            size_t len = strlen(*fields[k]) + 1;
            memcpy(str, *fields[k], len);
            *fields[k] = str;
            str += len;
        }
    }
    tb->nframes = n;
    tb->total_nframe = total;
    tb->frames = out;
out:
    hs_free(x.f);
    hs_free(x.pc);
    hs_free(frames);
    hs_free(loc);
    if (g)
        hs_guard_leave();
    return tb;
}

void hs_traceback_free(hs_traceback *tb)
{
    hs_free(tb);
}
