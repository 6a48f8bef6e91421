/*
 * symbolize.c - return addresses of the traced process -> (file, line, function, object) frames,
 * inside the process, with elfutils libdw/libdwfl loaded at run time, or dladdr without it.
 *
 * Rules for everything in this file (the places where they bite say so again):
 *   R1  It runs inside the traced process, on a thread whose reentrancy guard is set, so the
 *       mallocs made here and by libdw go untraced to the real allocator.  It is never called on
 *       the allocation path (only when a snapshot or a traceback is symbolized, and from the
 *       dlclose hook for hs_sym_refresh_modules).
 *   R2  It holds no tracer table lock.  The only lock is the symbolizer lock g_lock below.
 *   R3  It never writes to stdout or stderr (libdw does not print; we never call anything that
 *       does, and no debuginfod client is ever created, so no progress output either).
 *   R4  On any failure it degrades to less information (down to "<unknown>"); it never crashes,
 *       aborts or asserts.
 *   R5  It never calls into the dynamic loader (dlopen, dlsym, dladdr, dl_iterate_phdr) while
 *       holding g_lock.  dlopen and dlclose run ELF constructors and destructors with the loader
 *       lock held, and a destructor that calls dlclose reaches hs_sym_refresh_modules through the
 *       tracer's dlclose hook: taking g_lock there while another thread holds g_lock and waits
 *       for the loader lock would deadlock.  So the loader is used first, without g_lock, and
 *       the results are merged under g_lock afterwards.
 *   R6  No debuginfod (no network), no change to the environment (no setenv/unsetenv).
 *
 * Design
 *   Module list.  hs_sym_refresh_modules() walks dl_iterate_phdr and records every object it
 *   has not seen yet: path (the main program's from /proc/self/exe), load bias, executable
 *   PT_LOAD segments, GNU build-id read from its PT_NOTE in memory.  Entries are never removed, so an
 *   address of a library that was dlclose'd still finds its module.  When a new module overlaps
 *   an old one (dlclose then dlopen reusing the addresses), lookups prefer the one seen loaded
 *   most recently, and cached results inside the new module's range are dropped.
 *   LIMITATION: an address captured while the old library was mapped and resolved after the new
 *   one took its place is attributed to the new one; raw addresses carry no load generation.
 *
 *   libdw.  Opened with dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL) on the first resolve, every
 *   function taken with dlsym into g_dw (libdw is never a DT_NEEDED of the tracer: libdw and
 *   libelf have TLS segments that would grow every thread's DTV in every traced process).  Each
 *   module gets its own Dwfl, created lazily on the first address resolved in it, reported with
 *   dwfl_report_elf from the file on disk (so it works after the library was unmapped); one Dwfl
 *   per module keeps overlapping (reused) address ranges apart.  A file whose build-id differs
 *   from the one in memory (replaced on disk) is not used.
 *
 *   Debug info.  The object itself, then our find_debuginfo callback: by build-id under the
 *   debug roots (/usr/lib/debug/.build-id/xx/rest.debug) with dwfl_build_id_find_debuginfo,
 *   which only opens local files, then by .gnu_debuglink in the usual places (the object's
 *   directory, its .debug/ subdirectory, /usr/lib/debug/<dir>/), checked by build-id or CRC.
 *   dwfl_standard_find_debuginfo and dwfl_build_id_find_elf are NOT used: in elfutils 0.188 both
 *   fall back to the debuginfod client when DEBUGINFOD_URLS is set.  dwz alternate files are
 *   found by dwfl_build_id_find_debuginfo or by libdw's own dwarf_getalt (local files only).
 *
 *   Inlining.  As `addr2line -i -f`: the innermost location from the line table; the scope
 *   chain of the innermost DIE (dwarf_getscopes, then dwarf_getscopes_die on scopes[0]); each
 *   DW_TAG_inlined_subroutine adds one frame for its caller, named by the next enclosing
 *   subprogram or inlined subroutine, located at the DW_AT_call_file/DW_AT_call_line.
 *
 *   Cache.  lookup address -> immutable frame array, in a chained hash table; frames, entries
 *   and interned strings live in an arena that is never freed (pointers handed out stay valid
 *   for the life of the process).  hs_sym_memory() counts the arena, our tables and the module
 *   list; libdw's own heap (CU and line tables, abbreviations) is NOT counted: it is allocated
 *   inside libdw and we have no way to measure it.
 */
#include "symbolize.h"
#include "rustsym.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef HS_HAVE_LIBDW /* -DHS_HAVE_LIBDW=0 builds the dladdr fallback only */
#if defined(__has_include)
#if __has_include(<elfutils/libdwfl.h>)
#define HS_HAVE_LIBDW 1
#endif
#endif
#endif
#ifndef HS_HAVE_LIBDW
#define HS_HAVE_LIBDW 0 /* built without libdw-dev (headers only needed): the dladdr fallback */
#endif

#if HS_HAVE_LIBDW
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#endif

#define HS_SYM_MAX_FRAMES 64   /* inline depth kept per address (the outermost always kept) */
#define HS_SYM_MAX_SEG 16      /* PT_LOAD segments remembered per module */
#define HS_SYM_MAX_BUILD_ID 64 /* bytes */
#define HS_SYM_UNKNOWN "<unknown>"

/* ---------------------------------------------------------------------------------------------
 * State.  Everything below is protected by g_lock unless it is an _Atomic.
 */

/* The tracer's loader-use lock (hooks.c), weak: the symbolizer is also built on its own, for its
 * tests, without the tracer.  Every dlopen/dlsym/dladdr below runs inside it, so that no fork
 * happens half-way through one (see hs_loader_use_begin). */
HS_HIDDEN void hs_loader_use_begin(void) __attribute__((weak));
HS_HIDDEN void hs_loader_use_end(void) __attribute__((weak));
/* hooks.c's, weak for the same reason: moves a descriptor to the top of the range.  libdw keeps
 * the files of every module it reads open for the life of the process; at the program's lowest
 * free numbers they would shift every descriptor it opens after the first snapshot. */
HS_HIDDEN int hs_fd_high(int fd) __attribute__((weak));
static int fd_out_of_the_way(int fd)
{
    return hs_fd_high != NULL ? hs_fd_high(fd) : fd;
}
static void loader_begin(void)
{
    if (hs_loader_use_begin != NULL)
        hs_loader_use_begin();
}
static void loader_end(void)
{
    if (hs_loader_use_end != NULL)
        hs_loader_use_end();
}

/* The symbolizer lock: statically initialised so that it exists before any constructor runs. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct hs_seg {
    uintptr_t lo, hi; /* [lo, hi) in the process */
} hs_seg;

typedef struct hs_mod {
    const char *path;     /* interned; absolute when it could be made so */
    const char *build_id; /* interned lowercase hex; "" when none */
    unsigned char bid[HS_SYM_MAX_BUILD_ID];
    int bid_len;
    uintptr_t bias;         /* dlpi_addr */
    uintptr_t start, end;   /* hull of the executable PT_LOAD segments */
    int nseg;               /* 0: the hull only */
    hs_seg seg[HS_SYM_MAX_SEG];
    uint64_t last_seen;     /* loader generation (adds + subs) at which it was last seen mapped */
    uint32_t order;         /* insertion order, breaks ties */
    int dw_state;           /* 0: no Dwfl tried yet, 1: usable, -1: failed */
#if HS_HAVE_LIBDW
    Dwfl *dwfl;
    Dwfl_Module *dmod;
    struct hs_esym *syms;   /* the ELF symbol table sorted by address (built on first use) */
    uintptr_t *syms_maxend; /* prefix maximum of the symbols' ends */
    size_t nsyms;
    int syms_state;         /* 0: not built yet, 1: built, -1: none */
    struct hs_curange *cus; /* every CU's address ranges, sorted (built when libdwfl errs) */
    uintptr_t *cus_maxend;  /* prefix maximum of their ends */
    size_t ncus;
    Dwarf *cus_dw;          /* the Dwarf they are in, and its bias */
    uintptr_t cus_bias;
    int cus_state;          /* 0: not built yet, 1: built, -1: none */
#endif
} hs_mod;

typedef struct hs_centry {
    uintptr_t key; /* the address looked up (addr - 1 for return addresses) */
    struct hs_centry *next;
    const hs_sym_frame *frames;
    int nframes;
} hs_centry;

static hs_arena g_arena;           /* frames, cache entries, modules, interned strings */
static hs_centry **g_buckets;      /* cache buckets, power of two */
static size_t g_nbuckets, g_ncache;
static const char **g_intern;      /* open-addressing set of interned strings */
static size_t g_intern_cap, g_intern_n;
static hs_mod **g_mods;            /* in insertion order */
static size_t g_nmods, g_mods_cap;
static hs_mod **g_index;           /* sorted by start */
static uintptr_t *g_index_maxend;  /* prefix maximum of end over g_index */
static size_t g_index_n;
static char *g_debuginfo_path;     /* colon-separated debug roots; NULL: /usr/lib/debug */
static _Atomic(const char *) g_libdw_soname = "libdw.so.1"; /* read without g_lock */

static _Atomic size_t g_memory;          /* hs_sym_memory(), updated under g_lock */
static size_t g_syms_bytes;              /* the modules' sorted symbol tables */
static _Atomic uint64_t g_loader_gen;    /* adds + subs of the last merged module walk; 0: none */
static _Atomic(char *) g_exe_path;       /* the main program's path, computed once */

/* The C++ demangler, found in the process (the tracer never links libstdc++). */
typedef char *hs_demangle_fn(const char *mangled, char *buf, size_t *len, int *status);
static _Atomic(hs_demangle_fn *) g_demangle;
static _Atomic uint64_t g_demangle_gen = UINT64_MAX; /* loader generation of the last search */
static atomic_int g_demangle_busy;

/* libdw: 0 not loaded, 1 a thread is publishing g_dw, 2 loaded, 3 unavailable (fallback). */
static atomic_int g_dw_state;

static void update_memory(void);

/* ---------------------------------------------------------------------------------------------
 * Interned strings and the arena.  Under g_lock.  On out-of-memory, interning returns a
 * constant string (R4): the frame loses that piece of information.
 */
static const char *intern_n(const char *s, size_t n, const char *fallback)
{
    if (s == NULL)
        return fallback;
    if (n == 0)
        return "";
    if (g_intern_n * 2 >= g_intern_cap) {
        size_t cap = g_intern_cap ? g_intern_cap * 2 : 1024;
        const char **t = calloc(cap, sizeof(*t));
        if (t == NULL)
            return fallback;
        for (size_t i = 0; i < g_intern_cap; i++) {
            const char *e = g_intern[i];
            if (e == NULL)
                continue;
            size_t j = hs_hash_bytes(e, strlen(e), 0) & (cap - 1);
            while (t[j] != NULL)
                j = (j + 1) & (cap - 1);
            t[j] = e;
        }
        free(g_intern);
        g_intern = t;
        g_intern_cap = cap;
    }
    size_t j = hs_hash_bytes(s, n, 0) & (g_intern_cap - 1);
    while (g_intern[j] != NULL) {
        if (strncmp(g_intern[j], s, n) == 0 && g_intern[j][n] == '\0')
            return g_intern[j];
        j = (j + 1) & (g_intern_cap - 1);
    }
    char *d = hs_arena_strdup(&g_arena, s, n);
    if (d == NULL)
        return fallback;
    g_intern[j] = d;
    g_intern_n++;
    return d;
}

static const char *intern(const char *s)
{
    return s == NULL ? "" : intern_n(s, strlen(s), "");
}

/* ---------------------------------------------------------------------------------------------
 * Demangling.  __cxa_demangle is looked up without g_lock (R5) and used under it.
 */
static void demangler_find(void)
{
    if (atomic_load_explicit(&g_demangle, memory_order_acquire) != NULL)
        return;
    uint64_t gen = atomic_load_explicit(&g_loader_gen, memory_order_relaxed);
    if (atomic_load_explicit(&g_demangle_gen, memory_order_relaxed) == gen)
        return; /* already searched with this set of loaded objects */
    int idle = 0;
    if (!atomic_compare_exchange_strong(&g_demangle_busy, &idle, 1))
        return; /* another thread searches (or a dlopen hook re-entered us) */
    loader_begin();
    hs_demangle_fn *fn = (hs_demangle_fn *)dlsym(RTLD_DEFAULT, "__cxa_demangle");
    Dl_info di;
    if (fn != NULL && dladdr((void *)fn, &di) != 0 && di.dli_fname != NULL &&
        strchr(di.dli_fname, '/') != NULL) {
        /* pin the object that has it (a library opened RTLD_GLOBAL could be dlclose'd); a
         * failure leaves the main program, which stays anyway */
        (void)dlopen(di.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    }
    if (fn == NULL) {
        /* A C++ library opened RTLD_LOCAL brings its runtime in a local scope: take it only if
         * it is already loaded (RTLD_NOLOAD), and keep the handle so that it stays loaded. */
        static const char *const runtimes[] = {"libstdc++.so.6", "libc++abi.so.1", "libc++.so.1"};
        for (size_t i = 0; i < HS_ARRAY_LEN(runtimes) && fn == NULL; i++) {
            void *h = dlopen(runtimes[i], RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
            if (h != NULL)
                fn = (hs_demangle_fn *)dlsym(h, "__cxa_demangle");
        }
    }
    loader_end();
    if (fn != NULL)
        atomic_store_explicit(&g_demangle, fn, memory_order_release);
    atomic_store_explicit(&g_demangle_gen, gen, memory_order_relaxed);
    atomic_store(&g_demangle_busy, 0);
}

/* Returns the interned demangled name, or NULL when name is not a mangled C++ or Rust name or
 * cannot be demangled.  Under g_lock; __cxa_demangle mallocs (untraced, R1). */
static const char *demangle(const char *name)
{
    char rust[1024];
    if (name == NULL || name[0] != '_' || (name[1] != 'Z' && name[1] != 'R'))
        return NULL;
    if (name[1] == 'R')
        return hs_rust_v0_demangle(name, rust, sizeof(rust)) ? intern_n(rust, strlen(rust), NULL)
                                                             : NULL;
    if (hs_rust_demangle(name, rust, sizeof(rust)))
        return intern_n(rust, strlen(rust), NULL);
    hs_demangle_fn *fn = atomic_load_explicit(&g_demangle, memory_order_acquire);
    if (fn == NULL)
        return NULL;
    int status = -1;
    char *d = fn(name, NULL, NULL, &status);
    const char *r = NULL;
    if (status == 0 && d != NULL)
        r = intern_n(d, strlen(d), NULL);
    free(d);
    return r;
}

/* An ELF or DWARF name as shown: demangled when it is a C++ name that demangles. */
static const char *show_name(const char *name)
{
    const char *d = demangle(name);
    return d != NULL ? d : intern(name);
}

/* ---------------------------------------------------------------------------------------------
 * Module walk: dl_iterate_phdr without g_lock (R5), merged under g_lock.
 */
typedef struct hs_raw_mod {
    char *name; /* malloc'd */
    uintptr_t bias, start, end;
    int nseg; /* executable PT_LOAD segments */
    hs_seg seg[HS_SYM_MAX_SEG];
    unsigned char bid[HS_SYM_MAX_BUILD_ID];
    int bid_len;
} hs_raw_mod;

typedef struct hs_walk {
    hs_raw_mod *v;
    size_t n, cap;
    uint64_t known_gen, gen;
    int first, unchanged;
} hs_walk;

/* The main program's path: /proc/self/exe, else AT_EXECFN made absolute.  Computed once. */
static const char *exe_path(void)
{
    char *p = atomic_load_explicit(&g_exe_path, memory_order_acquire);
    if (p != NULL)
        return p;
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n > 0) {
        buf[n] = '\0';
        p = strdup(buf);
    } else {
        const char *fn = (const char *)getauxval(AT_EXECFN);
        if (fn != NULL) {
            p = realpath(fn, NULL);
            if (p == NULL)
                p = strdup(fn);
        }
    }
    if (p == NULL)
        return "";
    char *expected = NULL;
    if (!atomic_compare_exchange_strong(&g_exe_path, &expected, p)) {
        free(p); /* another thread won */
        return expected;
    }
    return p;
}

/* The GNU build-id from the object's PT_NOTE segments, read in memory.  Only notes that lie
 * inside a PT_LOAD segment are read (so the bytes are mapped). */
static int read_build_id(const struct dl_phdr_info *info, unsigned char *out)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE || ph->p_filesz < 12)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_filesz;
        if (hi < lo)
            continue;
        bool mapped = false;
        for (int k = 0; k < info->dlpi_phnum && !mapped; k++) {
            const ElfW(Phdr) *ld = &info->dlpi_phdr[k];
            uintptr_t s = info->dlpi_addr + ld->p_vaddr;
            mapped = ld->p_type == PT_LOAD && lo >= s && hi <= s + ld->p_filesz;
        }
        if (!mapped)
            continue;
        size_t align = ph->p_align == 8 ? 8 : 4;
        const unsigned char *p = (const unsigned char *)lo;
        size_t len = ph->p_filesz, off = 0;
        while (off + 12 <= len) {
            uint32_t namesz, descsz, type;
            memcpy(&namesz, p + off, 4);
            memcpy(&descsz, p + off + 4, 4);
            memcpy(&type, p + off + 8, 4);
            size_t name_off = off + 12;
            size_t desc_off = name_off + (((size_t)namesz + align - 1) & ~(align - 1));
            size_t next = desc_off + (((size_t)descsz + align - 1) & ~(align - 1));
            if (desc_off > len || next > len || desc_off < name_off || next < desc_off)
                break;
            if (type == NT_GNU_BUILD_ID && namesz == 4 && memcmp(p + name_off, "GNU", 4) == 0 &&
                descsz > 0 && descsz <= HS_SYM_MAX_BUILD_ID) {
                memcpy(out, p + desc_off, descsz);
                return (int)descsz;
            }
            off = next;
        }
    }
    return 0;
}

/* dl_iterate_phdr callback: runs with the loader's write lock held, without g_lock.
 * A module is its executable PT_LOAD segments: only code addresses are symbolized, and leaving
 * out the data segments keeps memory mapped later where an unloaded library's data was (heap
 * arenas, anonymous mappings) from being attributed to it. */
static int walk_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    hs_walk *w = arg;
    if (w->first) {
        w->first = 0;
        if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
            w->gen = (uint64_t)info->dlpi_adds + (uint64_t)info->dlpi_subs;
            if (w->gen == w->known_gen) {
                w->unchanged = 1;
                return 1; /* nothing was loaded or unloaded since the last walk */
            }
        }
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        hs_raw_mod *v = realloc(w->v, cap * sizeof(*v));
        if (v == NULL)
            return 1; /* R4: keep what we have */
        w->v = v;
        w->cap = cap;
    }
    hs_raw_mod *r = &w->v[w->n];
    memset(r, 0, sizeof(*r));
    r->bias = info->dlpi_addr;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || ph->p_memsz == 0 || !(ph->p_flags & PF_X))
            continue;
        uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
        if (s < lo)
            lo = s;
        if (e > hi)
            hi = e;
        if (r->nseg < HS_SYM_MAX_SEG) {
            r->seg[r->nseg].lo = s;
            r->seg[r->nseg].hi = e;
        }
        r->nseg++;
    }
    if (hi == 0)
        return 0; /* no code */
    if (r->nseg > HS_SYM_MAX_SEG)
        r->nseg = 0; /* too many to remember: the hull stands for them */
    r->start = lo;
    r->end = hi;
    const char *name = info->dlpi_name;
    if (name == NULL || name[0] == '\0')
        r->name = strdup(exe_path());
    else if (name[0] != '/' && strchr(name, '/') != NULL)
        r->name = realpath(name, NULL); /* dlopen("./x.so"): make it absolute, best effort */
    if (r->name == NULL)
        r->name = strdup(name != NULL ? name : "");
    if (r->name == NULL)
        return 0;
    r->bid_len = read_build_id(info, r->bid);
    w->n++;
    return 0;
}

static void index_rebuild(void)
{
    hs_mod **idx = malloc(g_nmods * sizeof(*idx));
    uintptr_t *mx = malloc(g_nmods * sizeof(*mx));
    if (idx == NULL || mx == NULL) {
        free(idx);
        free(mx);
        return; /* R4: keep the old index (it misses the new modules) */
    }
    /* insertion sort by start: the list is nearly sorted and rebuilt only when it grows */
    for (size_t i = 0; i < g_nmods; i++) {
        hs_mod *m = g_mods[i];
        size_t j = i;
        while (j > 0 && idx[j - 1]->start > m->start) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = m;
    }
    uintptr_t run = 0;
    for (size_t i = 0; i < g_nmods; i++) {
        if (idx[i]->end > run)
            run = idx[i]->end;
        mx[i] = run;
    }
    free(g_index);
    free(g_index_maxend);
    g_index = idx;
    g_index_maxend = mx;
    g_index_n = g_nmods;
}

static bool mod_contains(const hs_mod *m, uintptr_t a)
{
    if (a < m->start || a >= m->end)
        return false;
    if (m->nseg == 0)
        return true;
    for (int i = 0; i < m->nseg; i++)
        if (a >= m->seg[i].lo && a < m->seg[i].hi)
            return true;
    return false;
}

/* The module containing a: among overlapping ones (addresses reused after dlclose), the one
 * seen loaded most recently.  Under g_lock. */
static hs_mod *module_find(uintptr_t a)
{
    size_t lo = 0, hi = g_index_n; /* first index whose start > a */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g_index[mid]->start <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    hs_mod *best = NULL;
    for (size_t i = lo; i-- > 0;) {
        if (g_index_maxend[i] <= a)
            break;
        hs_mod *m = g_index[i];
        if (mod_contains(m, a) &&
            (best == NULL || m->last_seen > best->last_seen ||
             (m->last_seen == best->last_seen && m->order > best->order)))
            best = m;
    }
    return best;
}

static void cache_purge_range(uintptr_t lo, uintptr_t hi);

static void hex_build_id(char *out, const unsigned char *id, int n)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < n; i++) {
        out[2 * i] = hex[id[i] >> 4];
        out[2 * i + 1] = hex[id[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Merges a walk into the module list.  Under g_lock. */
static void modules_merge(const hs_walk *w)
{
    size_t first_new = g_nmods;
    uint64_t prev_gen = atomic_load_explicit(&g_loader_gen, memory_order_relaxed);
    /* modules loaded again after an unload, whose ranges another library may have used */
    hs_seg back[32];
    size_t nback = 0;
    bool purge_all = false;
    for (size_t k = 0; k < w->n; k++) {
        const hs_raw_mod *r = &w->v[k];
        hs_mod *found = NULL;
        for (size_t i = 0; i < g_nmods && found == NULL; i++) {
            hs_mod *m = g_mods[i];
            if (m->bias == r->bias && m->start == r->start && m->end == r->end &&
                m->bid_len == r->bid_len && memcmp(m->bid, r->bid, (size_t)r->bid_len) == 0 &&
                strcmp(m->path, r->name) == 0)
                found = m;
        }
        if (found != NULL) {
            if (found->last_seen < prev_gen && w->gen > prev_gen) {
                /* not seen by the previous walk: unloaded, and now loaded again */
                if (nback < HS_ARRAY_LEN(back))
                    back[nback++] = (hs_seg){found->start, found->end};
                else
                    purge_all = true;
            }
            if (w->gen > found->last_seen)
                found->last_seen = w->gen;
            continue;
        }
        if (g_nmods == g_mods_cap) {
            size_t cap = g_mods_cap ? g_mods_cap * 2 : 64;
            hs_mod **v = realloc(g_mods, cap * sizeof(*v));
            if (v == NULL)
                break;
            g_mods = v;
            g_mods_cap = cap;
        }
        hs_mod *m = hs_arena_alloc(&g_arena, sizeof(*m));
        if (m == NULL)
            break;
        memset(m, 0, sizeof(*m));
        m->path = intern_n(r->name, strlen(r->name), NULL);
        if (m->path == NULL)
            break;
        char hex[2 * HS_SYM_MAX_BUILD_ID + 1];
        hex_build_id(hex, r->bid, r->bid_len);
        m->build_id = intern(hex);
        memcpy(m->bid, r->bid, sizeof(m->bid));
        m->bid_len = r->bid_len;
        m->bias = r->bias;
        m->start = r->start;
        m->end = r->end;
        m->nseg = r->nseg;
        memcpy(m->seg, r->seg, sizeof(m->seg));
        m->last_seen = w->gen;
        m->order = (uint32_t)g_nmods;
        g_mods[g_nmods++] = m;
    }
    if (g_nmods != first_new)
        index_rebuild();
    /* Results cached for addresses a new (or reloaded) module now covers were made before it
     * was there (unknown, or another library's frames at reused addresses): drop them.  The
     * dropped arrays stay allocated: callers may still hold them. */
    if (purge_all) {
        cache_purge_range(0, UINTPTR_MAX);
    } else {
        for (size_t i = first_new; i < g_nmods; i++)
            cache_purge_range(g_mods[i]->start, g_mods[i]->end);
        for (size_t i = 0; i < nback; i++)
            cache_purge_range(back[i].lo, back[i].hi);
    }
    uint64_t known = atomic_load_explicit(&g_loader_gen, memory_order_relaxed);
    if (w->gen > known)
        atomic_store_explicit(&g_loader_gen, w->gen, memory_order_relaxed);
    update_memory();
}

void hs_sym_refresh_modules(void)
{
    /* R5: the walk takes the loader lock, so it runs without g_lock. */
    hs_walk w;
    memset(&w, 0, sizeof(w));
    w.first = 1;
    w.known_gen = atomic_load_explicit(&g_loader_gen, memory_order_relaxed);
    dl_iterate_phdr(walk_cb, &w);
    if (!w.unchanged && w.n > 0) {
        pthread_mutex_lock(&g_lock);
        modules_merge(&w);
        pthread_mutex_unlock(&g_lock);
    }
    for (size_t i = 0; i < w.n; i++)
        free(w.v[i].name);
    free(w.v);
}

/* ---------------------------------------------------------------------------------------------
 * The cache.  Under g_lock.
 */
static hs_centry *cache_find(uintptr_t key)
{
    if (g_nbuckets == 0)
        return NULL;
    hs_centry *e = g_buckets[hs_mix64(key) & (g_nbuckets - 1)];
    while (e != NULL && e->key != key)
        e = e->next;
    return e;
}

static void cache_purge_range(uintptr_t lo, uintptr_t hi)
{
    for (size_t b = 0; b < g_nbuckets; b++) {
        hs_centry **pp = &g_buckets[b];
        while (*pp != NULL) {
            if ((*pp)->key >= lo && (*pp)->key < hi) {
                *pp = (*pp)->next;
                g_ncache--;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}

/* Copies the frames into the arena and caches them; returns the cached entry or NULL. */
static hs_centry *cache_insert(uintptr_t key, const hs_sym_frame *frames, int n)
{
    if (g_ncache >= g_nbuckets) {
        size_t nb = g_nbuckets ? g_nbuckets * 2 : 4096;
        hs_centry **t = calloc(nb, sizeof(*t));
        if (t != NULL) {
            for (size_t b = 0; b < g_nbuckets; b++) {
                hs_centry *e = g_buckets[b];
                while (e != NULL) {
                    hs_centry *next = e->next;
                    size_t j = hs_mix64(e->key) & (nb - 1);
                    e->next = t[j];
                    t[j] = e;
                    e = next;
                }
            }
            free(g_buckets);
            g_buckets = t;
            g_nbuckets = nb;
        } else if (g_nbuckets == 0) {
            return NULL;
        }
    }
    hs_sym_frame *arr = hs_arena_alloc(&g_arena, (size_t)n * sizeof(*arr));
    hs_centry *e = hs_arena_alloc(&g_arena, sizeof(*e));
    if (arr == NULL || e == NULL)
        return NULL;
    memcpy(arr, frames, (size_t)n * sizeof(*arr));
    e->key = key;
    e->frames = arr;
    e->nframes = n;
    size_t j = hs_mix64(key) & (g_nbuckets - 1);
    e->next = g_buckets[j];
    g_buckets[j] = e;
    g_ncache++;
    return e;
}

static void update_memory(void)
{
    size_t bytes = g_arena.bytes + g_nbuckets * sizeof(*g_buckets) +
                   g_intern_cap * sizeof(*g_intern) + g_mods_cap * sizeof(*g_mods) +
                   g_index_n * (sizeof(*g_index) + sizeof(*g_index_maxend)) + g_syms_bytes;
    atomic_store_explicit(&g_memory, bytes, memory_order_relaxed);
}

size_t hs_sym_memory(void)
{
    return atomic_load_explicit(&g_memory, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------------------------
 * Frame building helpers.
 */
typedef struct hs_fbuf {
    hs_sym_frame f[HS_SYM_MAX_FRAMES];
    int n;
} hs_fbuf;

/* Appends a frame; past the capacity the last slot is overwritten, so that the outermost (real)
 * function is always the last frame. */
static void fbuf_push(hs_fbuf *b, const char *file, unsigned line, const char *fn, const hs_mod *m,
                      uint64_t offset)
{
    int i = b->n < HS_SYM_MAX_FRAMES ? b->n++ : HS_SYM_MAX_FRAMES - 1;
    b->f[i].filename = file;
    b->f[i].lineno = line;
    b->f[i].function = fn != NULL ? fn : "";
    b->f[i].object = m != NULL ? m->path : "";
    b->f[i].build_id = m != NULL ? m->build_id : "";
    b->f[i].offset = offset;
}

/* ---------------------------------------------------------------------------------------------
 * libdw: loading and the function table.
 */
#if HS_HAVE_LIBDW

#define HS_DW_FUNCS(X)                                                                             \
    X(dwfl_begin)                                                                                  \
    X(dwfl_end)                                                                                    \
    X(dwfl_report_begin)                                                                           \
    X(dwfl_report_elf)                                                                             \
    X(dwfl_report_end)                                                                             \
    X(dwfl_module_build_id)                                                                        \
    X(dwfl_module_addrdie)                                                                         \
    X(dwfl_module_getsymtab)                                                                       \
    X(dwfl_module_getsym_info)                                                                     \
    X(dwfl_module_getsrc)                                                                          \
    X(dwfl_lineinfo)                                                                               \
    X(dwfl_linecu)                                                                                 \
    X(dwfl_build_id_find_debuginfo)                                                                \
    X(dwfl_offline_section_address)                                                                \
    X(dwarf_getscopes)                                                                             \
    X(dwarf_getscopes_die)                                                                         \
    X(dwarf_tag)                                                                                   \
    X(dwarf_attr)                                                                                  \
    X(dwarf_attr_integrate)                                                                        \
    X(dwarf_formstring)                                                                            \
    X(dwarf_formudata)                                                                             \
    X(dwarf_getsrcfiles)                                                                           \
    X(dwarf_getsrc_die)                                                                            \
    X(dwarf_linesrc)                                                                               \
    X(dwarf_lineno)                                                                                \
    X(dwarf_nextcu)                                                                                \
    X(dwarf_offdie)                                                                                \
    X(dwarf_ranges)                                                                                \
    X(dwarf_haspc)                                                                                 \
    X(dwarf_child)                                                                                 \
    X(dwarf_siblingof)                                                                             \
    X(dwfl_module_getdwarf)                                                                        \
    X(dwarf_filesrc)                                                                               \
    X(dwelf_elf_gnu_build_id)                                                                      \
    X(elf_begin)                                                                                   \
    X(elf_end)

/* Every libdw/libdwfl/libelf function this file uses, taken with dlsym: the tracer has no
 * DT_NEEDED on libdw.  Written once by the loading thread before g_dw_state becomes 2
 * (release), read only after seeing 2 (acquire). */
static struct hs_dw_api {
#define HS_DW_MEMBER(f) __typeof__(f) *f;
    HS_DW_FUNCS(HS_DW_MEMBER)
#undef HS_DW_MEMBER
} g_dw;

/* Loads libdw, without g_lock (R5: dlopen takes the loader lock and may reach our dlopen hook).
 * Threads that race each dlopen it themselves (dlopen is reference-counted) rather than wait
 * for one another: a thread waiting here could hold the loader lock (a constructor or
 * destructor that symbolizes) that the loading thread needs.  Only publishing the table is
 * exclusive, and that is a plain copy. */
static void dw_ensure_loaded(void)
{
    int s = atomic_load_explicit(&g_dw_state, memory_order_acquire);
    if (s >= 2)
        return;
    struct hs_dw_api api;
    memset(&api, 0, sizeof(api));
    bool ok = false;
    const char *soname = atomic_load(&g_libdw_soname);
    loader_begin();
    void *h = soname != NULL && soname[0] != '\0' ? dlopen(soname, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (h != NULL) {
        ok = true;
#define HS_DW_LOAD(f)                                                                              \
    api.f = (__typeof__(f) *)dlsym(h, #f);                                                         \
    if (api.f == NULL)                                                                             \
        ok = false;
        HS_DW_FUNCS(HS_DW_LOAD)
#undef HS_DW_LOAD
        /* the 6-argument dwfl_report_elf (dlsym gives the default version, this one, anyway) */
        void *v = dlvsym(h, "dwfl_report_elf", "ELFUTILS_0.156");
        if (v != NULL)
            api.dwfl_report_elf = (__typeof__(dwfl_report_elf) *)v;
        /* The handle is kept even when something is missing: a dlclose here would go through
         * the tracer's dlclose hook for nothing. */
    }
    loader_end();
    int zero = 0;
    if (atomic_compare_exchange_strong(&g_dw_state, &zero, 1)) {
        if (ok)
            g_dw = api;
        atomic_store_explicit(&g_dw_state, ok ? 2 : 3, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&g_dw_state, memory_order_acquire) == 1)
        sched_yield(); /* another thread is copying the table: it waits on nothing */
}

static bool dw_ready(void)
{
    return atomic_load_explicit(&g_dw_state, memory_order_acquire) == 2;
}

/* ---- find_elf / find_debuginfo callbacks.  Called by libdwfl under g_lock; they only open
 * local files (R5, R6). */

/* Modules are always reported with dwfl_report_elf, which installs the ELF, so this is never
 * asked for anything; it must not be dwfl_build_id_find_elf (which can reach debuginfod). */
static int cb_find_elf(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                       char **file_name, Elf **elfp)
{
    (void)mod, (void)userdata, (void)modname, (void)base, (void)file_name;
    *elfp = NULL;
    return -1;
}

static int cb_section_address(Dwfl_Module *mod, void **userdata, const char *modname,
                              Dwarf_Addr base, const char *secname, GElf_Word shndx,
                              const GElf_Shdr *shdr, Dwarf_Addr *addr)
{
    /* only ET_REL files ask; loaded objects never are */
    return g_dw.dwfl_offline_section_address(mod, userdata, modname, base, secname, shndx, shdr,
                                             addr);
}

static uint32_t g_crc_table[256];

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
    if (g_crc_table[1] == 0) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            g_crc_table[i] = c;
        }
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = g_crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* Does the candidate debug file belong to mod?  By build-id when the module has one, else by
 * the .gnu_debuglink CRC of the whole file. */
static bool debug_file_matches(Dwfl_Module *mod, int fd, GElf_Word crc)
{
    const unsigned char *bits = NULL;
    GElf_Addr vaddr;
    int n = g_dw.dwfl_module_build_id(mod, &bits, &vaddr);
    if (n > 0) {
        Elf *elf = g_dw.elf_begin(fd, ELF_C_READ_MMAP, NULL);
        if (elf == NULL)
            return false;
        const void *id = NULL;
        ssize_t len = g_dw.dwelf_elf_gnu_build_id(elf, &id);
        bool same = len == n && memcmp(id, bits, (size_t)n) == 0;
        g_dw.elf_end(elf);
        return same;
    }
    if (crc == 0)
        return false;
    unsigned char buf[65536];
    uint32_t c = 0;
    ssize_t r;
    off_t pos = 0;
    while ((r = pread(fd, buf, sizeof(buf), pos)) > 0) {
        c = crc32_update(c, buf, (size_t)r);
        pos += r;
    }
    return r == 0 && c == crc;
}

/* Opens dir/sub/name (dir and sub may be NULL) if it is a matching debug file other than the
 * main file; returns the fd (O_CLOEXEC) and sets *found to a malloc'd copy of the path. */
static int try_debug_file(Dwfl_Module *mod, const struct stat *main_st, const char *dir,
                          const char *sub, const char *name, GElf_Word crc, char **found)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s%s%s%s%s", dir != NULL ? dir : "",
                     dir != NULL ? "/" : "", sub != NULL ? sub : "", sub != NULL ? "/" : "", name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (main_st != NULL && st.st_dev == main_st->st_dev && st.st_ino == main_st->st_ino) ||
        !debug_file_matches(mod, fd, crc)) {
        close(fd);
        return -1;
    }
    *found = strdup(path);
    if (*found == NULL) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The first debug root of the colon-separated list roots into root (an absolute directory, or ""
 * to skip); returns the rest of the list, NULL after the last. */
static const char *next_debug_root(const char *roots, char *root, size_t size)
{
    const char *end = strchr(roots, ':');
    size_t rlen = end != NULL ? (size_t)(end - roots) : strlen(roots);
    const char *r = roots;
    if (rlen > 0 && (*r == '+' || *r == '-')) /* libdwfl's CRC-check prefixes */
        r++, rlen--;
    root[0] = '\0';
    if (rlen > 0 && r[0] == '/' && rlen < size) {
        memcpy(root, r, rlen);
        root[rlen] = '\0';
    }
    return end != NULL ? end + 1 : NULL;
}

static const char *debug_roots(void)
{
    return g_debuginfo_path != NULL ? g_debuginfo_path : "/usr/lib/debug";
}

/* <root>/.build-id/xx/rest.debug for each debug root, by the module's build-id.  Opened here, not
 * by dwfl_build_id_find_debuginfo: that one attaches an Elf of its own to the descriptor, which
 * then could not be moved out of the program's way. */
static int find_by_build_id(Dwfl_Module *mod, char **found)
{
    const unsigned char *bits = NULL;
    GElf_Addr vaddr;
    int n = g_dw.dwfl_module_build_id(mod, &bits, &vaddr);
    if (n < 2 || n > 64)
        return -1;
    static const char digits[] = "0123456789abcdef";
    char hex[2 * 64 + 1], sub[32], name[2 * 64 + 8];
    for (int i = 0; i < n; i++) {
        hex[2 * i] = digits[bits[i] >> 4];
        hex[2 * i + 1] = digits[bits[i] & 15];
    }
    hex[2 * n] = '\0';
    snprintf(sub, sizeof(sub), ".build-id/%.2s", hex);
    snprintf(name, sizeof(name), "%s.debug", hex + 2);
    int fd = -1;
    for (const char *roots = debug_roots(); fd < 0 && roots != NULL;) {
        char root[PATH_MAX];
        roots = next_debug_root(roots, root, sizeof(root));
        if (root[0] != '\0')
            fd = try_debug_file(mod, NULL, root, sub, name, 0, found);
    }
    return fd;
}

/* .gnu_debuglink in the places GDB and libdwfl look: the object's directory, its .debug/
 * subdirectory, and <root>/<directory> for each debug root (default /usr/lib/debug). */
static int find_by_debuglink(Dwfl_Module *mod, const char *file_name, const char *link,
                             GElf_Word crc, char **found)
{
    const char *slash = strrchr(file_name, '/');
    if (slash == NULL)
        return -1;
    char dir[PATH_MAX];
    size_t dlen = (size_t)(slash - file_name);
    if (dlen >= sizeof(dir))
        return -1;
    memcpy(dir, file_name, dlen);
    dir[dlen] = '\0';
    struct stat main_st;
    bool have_st = stat(file_name, &main_st) == 0;
    const struct stat *mst = have_st ? &main_st : NULL;

    int fd = try_debug_file(mod, mst, dir[0] ? dir : "", NULL, link, crc, found);
    if (fd < 0)
        fd = try_debug_file(mod, mst, dir[0] ? dir : "", ".debug", link, crc, found);
    for (const char *roots = debug_roots(); fd < 0 && roots != NULL;) {
        char root[PATH_MAX];
        roots = next_debug_root(roots, root, sizeof(root));
        if (root[0] != '\0')
            fd = try_debug_file(mod, mst, root, dir[0] == '/' ? dir + 1 : dir, link, crc, found);
    }
    return fd;
}

/* Our find_debuginfo: local build-id directories, then .gnu_debuglink.  Never debuginfod. */
static int cb_find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
                             Dwarf_Addr base, const char *file_name, const char *debuglink,
                             GElf_Word crc, char **debuginfo_file_name)
{
    /* Asked for the module's debug file, libdwfl passes its .gnu_debuglink (a bare file name) and
     * that section's CRC, or no name; asked for a dwz alternate file once the module's DWARF is
     * open, the .gnu_debugaltlink name (a path) and no CRC.  The alternate file is left to
     * dwfl_build_id_find_debuginfo (which only opens <root>/.build-id/xx/rest.debug files, here by
     * the DWARF's altlink build-id), then to libdw's dwarf_getalt (local files only too).  Its
     * descriptor carries libdw's own Elf, so it stays where open put it (a rare file: Debian's
     * dwz'd -dbgsym packages).  A debug link whose CRC happens to be 0 goes that way too, found
     * just the same. */
    if (debuglink != NULL && (crc == 0 || strchr(debuglink, '/') != NULL))
        return g_dw.dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name,
                                                 debuglink, crc, debuginfo_file_name);
    char *found = NULL;
    int fd = find_by_build_id(mod, &found);
    if (fd < 0 && (debuglink == NULL || debuglink[0] == '\0' || file_name == NULL))
        return -1;
    if (fd < 0)
        fd = find_by_debuglink(mod, file_name, debuglink, crc, &found);
    if (fd < 0) {
        char *canon = realpath(file_name, NULL);
        if (canon != NULL && strcmp(canon, file_name) != 0)
            fd = find_by_debuglink(mod, canon, debuglink, crc, &found);
        free(canon);
    }
    if (fd >= 0) {
        free(*debuginfo_file_name);
        *debuginfo_file_name = found;
    }
    return fd_out_of_the_way(fd);
}

static const Dwfl_Callbacks g_callbacks = {
    .find_elf = cb_find_elf,
    .find_debuginfo = cb_find_debuginfo,
    .section_address = cb_section_address,
    .debuginfo_path = &g_debuginfo_path,
};

/* Creates the module's Dwfl from its file on disk.  Under g_lock: file I/O only, no loader
 * call (R5). */
static void module_setup_dwfl(hs_mod *m)
{
    m->dw_state = -1;
    if (m->path[0] != '/')
        return; /* the vdso, or a path we could not make absolute */
    Dwfl *dwfl = g_dw.dwfl_begin(&g_callbacks);
    if (dwfl == NULL)
        return;
    /* Opened here rather than by libdw, to put it out of the program's way; libdw keeps it
     * (consumes it). */
    int fd = fd_out_of_the_way(open(m->path, O_RDONLY | O_CLOEXEC));
    if (fd < 0) {
        g_dw.dwfl_end(dwfl);
        return;
    }
    g_dw.dwfl_report_begin(dwfl);
    /* add_p_vaddr: the module's addresses are the file's plus the load bias (ET_EXEC: bias 0) */
    Dwfl_Module *dm = g_dw.dwfl_report_elf(dwfl, m->path, m->path, fd, m->bias, true);
    g_dw.dwfl_report_end(dwfl, NULL, NULL);
    if (dm == NULL) {
        /* Not closed: libdw may have closed it already (it does when it decompressed the file),
         * and the number may be someone else's by now.  One descriptor per module that failed,
         * at most (a module is not set up twice). */
        g_dw.dwfl_end(dwfl);
        return;
    }
    if (m->bid_len > 0) {
        const unsigned char *bits = NULL;
        GElf_Addr vaddr;
        int n = g_dw.dwfl_module_build_id(dm, &bits, &vaddr);
        if (n > 0 && (n != m->bid_len || memcmp(bits, m->bid, (size_t)n) != 0)) {
            /* the file on disk is not the one that was mapped: its symbols would lie */
            g_dw.dwfl_end(dwfl);
            return;
        }
    }
    m->dwfl = dwfl;
    m->dmod = dm;
    m->dw_state = 1;
}

/* DW_AT_linkage_name (demangled), else DW_AT_name, else the raw linkage name; NULL if none.
 * dwarf_attr_integrate follows DW_AT_abstract_origin and DW_AT_specification. */
static const char *die_name(Dwarf_Die *die)
{
    Dwarf_Attribute at;
    const char *link = g_dw.dwarf_formstring(
        g_dw.dwarf_attr_integrate(die, DW_AT_linkage_name, &at));
    if (link == NULL)
        link = g_dw.dwarf_formstring(g_dw.dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &at));
    const char *d = demangle(link);
    if (d != NULL)
        return d;
    const char *name = g_dw.dwarf_formstring(g_dw.dwarf_attr_integrate(die, DW_AT_name, &at));
    if (name != NULL)
        return intern(name);
    return link != NULL ? intern(link) : NULL;
}

static bool is_function_scope(Dwarf_Die *die)
{
    int tag = g_dw.dwarf_tag(die);
    return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine ||
           tag == DW_TAG_entry_point;
}

/* A source path as a string to keep: relative paths are joined to the CU's DW_AT_comp_dir, as
 * addr2line prints them. */
static const char *source_path(const char *src, Dwarf_Die *cu)
{
    if (src == NULL)
        return NULL;
    if (src[0] != '/' && cu != NULL) {
        Dwarf_Attribute at;
        const char *dir = g_dw.dwarf_formstring(g_dw.dwarf_attr(cu, DW_AT_comp_dir, &at));
        char buf[PATH_MAX];
        if (dir != NULL && dir[0] != '\0') {
            int n = snprintf(buf, sizeof(buf), "%s%s%s", dir,
                             dir[strlen(dir) - 1] == '/' ? "" : "/", src);
            if (n > 0 && (size_t)n < sizeof(buf))
                return intern(buf);
        }
    }
    return intern(src);
}

/* The module's function symbols (.symtab, else .dynsym, plus MiniDebugInfo), sorted by address
 * once: libdwfl's own address-to-symbol lookup scans the whole table on every call, which made
 * the final snapshot of a program with a large stripped library (clang's libLLVM, 100,000
 * symbols) cost seconds.  Aliases at one address keep the global one first. */
/* Sorted address ranges searched for the ones containing an address: the ELF symbols and the
 * compile units of a module.  Records of any type, sorted by their `lo` field, each with a `hi`
 * (end); beside them, the prefix maximum of the ends, so that a search down from the last range
 * starting at or below an address stops as soon as no earlier range can reach it. */
static uintptr_t span_field(const void *v, size_t i, size_t stride, size_t off)
{
    uintptr_t x;
    memcpy(&x, (const char *)v + i * stride + off, sizeof(x));
    return x;
}

/* The prefix maximum of the n records' ends (malloc'd, untraced: R1); NULL when out of memory. */
static uintptr_t *spans_maxend(const void *v, size_t n, size_t stride, size_t hi_off)
{
    uintptr_t *mx = malloc(n * sizeof(*mx));
    for (size_t i = 0; mx != NULL && i < n; i++) {
        uintptr_t hi = span_field(v, i, stride, hi_off);
        mx[i] = i > 0 && mx[i - 1] > hi ? mx[i - 1] : hi;
    }
    return mx;
}

/* The number of the n records that start at or below a. */
static size_t spans_upto(const void *v, size_t n, size_t stride, size_t lo_off, uintptr_t a)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (span_field(v, mid, stride, lo_off) <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return hi;
}

typedef struct hs_esym {
    uintptr_t lo, hi; /* [lo, hi); hi == lo for a symbol without a size */
    const char *name; /* in libdwfl's copy of the string table, alive as long as the Dwfl */
    uint32_t rank;    /* binding (global, weak, local), then table order: ties are stable */
} hs_esym;

static int esym_cmp(const void *x, const void *y)
{
    const hs_esym *a = x, *b = y;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return a->rank < b->rank ? -1 : a->rank > b->rank;
}

/* Under g_lock.  malloc'd memory is untraced here (R1); it is never freed, like the module. */
static void module_build_syms(hs_mod *m)
{
    m->syms_state = -1;
    int n = g_dw.dwfl_module_getsymtab(m->dmod);
    if (n <= 1)
        return;
    hs_esym *v = malloc((size_t)n * sizeof(*v));
    if (v == NULL)
        return;
    size_t k = 0;
    for (int i = 1; i < n; i++) {
        GElf_Sym sym;
        GElf_Addr addr;
        GElf_Word shndx;
        const char *name = g_dw.dwfl_module_getsym_info(m->dmod, i, &sym, &addr, &shndx, NULL,
                                                        NULL);
        if (name == NULL || name[0] == '\0' || addr == 0 || shndx == SHN_UNDEF)
            continue;
        int type = GELF_ST_TYPE(sym.st_info);
        if (type != STT_FUNC && type != STT_GNU_IFUNC && !(type == STT_NOTYPE && sym.st_size > 0))
            continue;
        int bind = GELF_ST_BIND(sym.st_info);
        uint32_t pref = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2;
        v[k++] = (hs_esym){ (uintptr_t)addr, (uintptr_t)(addr + sym.st_size), name,
                            pref << 28 | (uint32_t)i };
    }
    if (k == 0) {
        free(v);
        return;
    }
    qsort(v, k, sizeof(*v), esym_cmp);
    uintptr_t *mx = spans_maxend(v, k, sizeof(*v), offsetof(hs_esym, hi));
    if (mx == NULL) {
        free(v);
        return;
    }
    m->syms = v;
    m->syms_maxend = mx;
    m->nsyms = k;
    m->syms_state = 1;
    g_syms_bytes += (size_t)n * sizeof(*v) + k * sizeof(*mx);
}

/* The symbol for a, as libdwfl's dwfl_module_addrinfo chooses it: the closest sized symbol
 * containing a (aliases: the global one); failing that, the closest symbol without a size below
 * a, unless a sized symbol ends between the two (a is then in code no symbol names).  NULL if
 * none.  The search for a symbol without a size is bounded (64 addresses down).  Under g_lock. */
static const char *elf_symbol(hs_mod *m, uintptr_t a)
{
    if (m->syms_state == 0)
        module_build_syms(m);
    if (m->syms_state < 0)
        return NULL;
    const hs_esym *v = m->syms;
    size_t hi = spans_upto(v, m->nsyms, sizeof(*v), offsetof(hs_esym, lo), a);
    /* Containing: down while some symbol at or below still ends past a. */
    for (size_t i = hi; i > 0 && m->syms_maxend[i - 1] > a;) {
        i--;
        if (v[i].hi > a && v[i].hi != v[i].lo) {
            size_t first = i;
            while (first > 0 && v[first - 1].lo == v[i].lo)
                first--;
            for (size_t j = first;; j++)   /* aliases, the global one first */
                if (v[j].hi > a && v[j].hi != v[j].lo)
                    return show_name(v[j].name);
        }
    }
    const hs_esym *sizeless = NULL;
    uintptr_t max_end = 0;                   /* of the sized symbols seen, all ending by a */
    for (size_t i = hi, steps = 0; i > 0 && steps < 64; steps++) {
        i--;
        if (v[i].hi != v[i].lo) {
            if (v[i].hi > max_end)
                max_end = v[i].hi;
        } else if (sizeless == NULL || v[i].lo == sizeless->lo) {
            sizeless = &v[i];                /* the lowest index of its address: the global one */
        } else {
            break;
        }
    }
    return sizeless != NULL && sizeless->lo >= max_end ? show_name(sizeless->name) : NULL;
}

/* ---- the compile unit of an address, when libdwfl's answer is wrong ----
 * libdw 0.188 finds the CU of an address through .debug_aranges.  rustc's aranges keep entries
 * at address 0 for the functions the linker dropped, and dwfl_module_addrdie then answers a CU
 * that does not contain the address (in a Rust program, compiler_builtins' for the whole of
 * main): no function name, no inlined frames, and a line from the wrong line table.  So the
 * answer is checked (dwarf_haspc), and when it is wrong or missing the CU is looked up in an index
 * of every CU's own ranges (DW_AT_low_pc/high_pc or DW_AT_ranges), built once per module on its
 * first miss; newer elfutils build their aranges that way themselves. */
typedef struct hs_curange {
    uintptr_t lo, hi; /* [lo, hi), DWARF addresses */
    Dwarf_Off die;    /* the CU's DIE */
} hs_curange;

static int curange_cmp(const void *x, const void *y)
{
    const hs_curange *a = x, *b = y;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return a->die < b->die ? -1 : a->die > b->die;
}

/* Under g_lock.  malloc'd memory is untraced here (R1); it is never freed, like the module. */
static void module_build_cus(hs_mod *m)
{
    m->cus_state = -1;
    Dwarf_Addr bias = 0;
    Dwarf *dw = g_dw.dwfl_module_getdwarf(m->dmod, &bias);
    if (dw == NULL)
        return;
    hs_curange *v = NULL;
    size_t n = 0, cap = 0, hsz;
    Dwarf_Off off = 0, next;
    while (g_dw.dwarf_nextcu(dw, off, &next, &hsz, NULL, NULL, NULL) == 0) {
        Dwarf_Die cu;
        Dwarf_Addr base, lo, hi;
        ptrdiff_t o = 0;
        if (g_dw.dwarf_offdie(dw, off + hsz, &cu) != NULL)
            while ((o = g_dw.dwarf_ranges(&cu, o, &base, &lo, &hi)) > 0) {
                if (lo == 0 || hi <= lo)
                    continue;            /* empty, or code the linker dropped */
                if (n == cap) {
                    size_t ncap = cap ? cap * 2 : 64;
                    hs_curange *nv = realloc(v, ncap * sizeof(*v));
                    if (nv == NULL) {
                        free(v);
                        return;
                    }
                    v = nv;
                    cap = ncap;
                }
                v[n++] = (hs_curange){ (uintptr_t)lo, (uintptr_t)hi, off + hsz };
            }
        off = next;
    }
    if (n > 0)
        qsort(v, n, sizeof(*v), curange_cmp);
    uintptr_t *mx = n > 0 ? spans_maxend(v, n, sizeof(*v), offsetof(hs_curange, hi)) : NULL;
    if (mx == NULL) {
        free(v);
        return;
    }
    m->cus = v;
    m->cus_maxend = mx;
    m->ncus = n;
    m->cus_dw = dw;
    m->cus_bias = (uintptr_t)bias;
    m->cus_state = 1;
    g_syms_bytes += cap * sizeof(*v) + n * sizeof(*mx);
}

/* The CU that contains a (a process address), in *out, with its bias; NULL if none.  Under
 * g_lock. */
static Dwarf_Die *cu_containing(hs_mod *m, uintptr_t a, Dwarf_Die *out, Dwarf_Addr *bias)
{
    if (m->cus_state == 0)
        module_build_cus(m);
    if (m->cus_state < 0 || a < m->cus_bias)
        return NULL;
    uintptr_t d = a - m->cus_bias;
    size_t hi = spans_upto(m->cus, m->ncus, sizeof(*m->cus), offsetof(hs_curange, lo), d);
    for (size_t i = hi; i > 0 && m->cus_maxend[i - 1] > d; i--)
        if (m->cus[i - 1].hi > d && g_dw.dwarf_offdie(m->cus_dw, m->cus[i - 1].die, out) != NULL) {
            *bias = m->cus_bias;
            return out;
        }
    return NULL;
}

/* The innermost subprogram, inlined subroutine or lexical block under parent that contains pc,
 * looking through namespaces and types (where Rust and C++ nest functions); false if none.
 * dwarf_getscopes gives up on a whole CU when an inlined instance's abstract origin lies in
 * another CU (rustc's cross-crate inlining), though the concrete chain is all we need. */
static bool innermost_die(Dwarf_Die *parent, Dwarf_Addr pc, Dwarf_Die *out, int depth)
{
    Dwarf_Die c;
    if (depth > 64 || g_dw.dwarf_child(parent, &c) != 0)
        return false;
    do {
        switch (g_dw.dwarf_tag(&c)) {
        case DW_TAG_subprogram:
        case DW_TAG_inlined_subroutine:
        case DW_TAG_lexical_block:
        case DW_TAG_entry_point:
            if (g_dw.dwarf_haspc(&c, pc) > 0) {
                *out = c;
                innermost_die(&c, pc, out, depth + 1);
                return true;
            }
            break;
        case DW_TAG_namespace:
        case DW_TAG_module:
        case DW_TAG_structure_type:
        case DW_TAG_class_type:
        case DW_TAG_union_type:
        case DW_TAG_enumeration_type:
            if (innermost_die(&c, pc, out, depth + 1))
                return true;
            break;
        default:
            break;
        }
    } while (g_dw.dwarf_siblingof(&c, &c) == 0);
    return false;
}

/* Frames for a, innermost first, from the module's DWARF (or its symbols).  Under g_lock. */
static void frames_from_dwfl(hs_mod *m, uintptr_t a, hs_fbuf *b)
{
    Dwfl_Module *dm = m->dmod;
    uint64_t offset = a - m->bias;

    /* the compile unit: libdwfl's, unless it does not contain a */
    Dwarf_Addr bias = 0;
    Dwarf_Die *cudie = g_dw.dwfl_module_addrdie(dm, a, &bias), own;
    bool own_cu = cudie == NULL || g_dw.dwarf_haspc(cudie, a - bias) <= 0;
    if (own_cu) {
        Dwarf_Addr own_bias;
        Dwarf_Die *c = cu_containing(m, a, &own, &own_bias);
        if (c != NULL) {
            cudie = c;
            bias = own_bias;
        } else {
            own_cu = false;   /* no CU claims it (one without ranges?): libdwfl's answer, if any */
        }
    }

    /* the innermost location: the line table row for a (libdwfl's lookup uses libdwfl's CU) */
    const char *src = NULL;
    int line = 0;
    if (!own_cu) {
        Dwfl_Line *ln = g_dw.dwfl_module_getsrc(dm, a);
        Dwarf_Addr la;
        const char *s = ln != NULL ? g_dw.dwfl_lineinfo(ln, &la, &line, NULL, NULL, NULL) : NULL;
        if (s != NULL)
            src = source_path(s, g_dw.dwfl_linecu(ln));
    } else if (cudie != NULL) {
        Dwarf_Line *ln = g_dw.dwarf_getsrc_die(cudie, a - bias);
        const char *s = ln != NULL ? g_dw.dwarf_linesrc(ln, NULL, NULL) : NULL;
        if (s != NULL && g_dw.dwarf_lineno(ln, &line) == 0)
            src = source_path(s, cudie);
    }
    if (src == NULL || line < 0)
        line = 0;

    /* the scope chain of the innermost DIE containing a */
    Dwarf_Die *scopes = NULL;
    int ns = 0;
    if (cudie != NULL) {
        ns = g_dw.dwarf_getscopes(cudie, a - bias, &scopes);
        if (ns > 0) {
            /* dwarf_getscopes follows an inlined instance into its abstract definition; the
             * chain of concrete (physically enclosing) scopes comes from the DIE itself */
            Dwarf_Die inner = scopes[0];
            free(scopes); /* malloc'd by libdw (R1: untraced) */
            scopes = NULL;
            ns = g_dw.dwarf_getscopes_die(&inner, &scopes);
        }
        if (ns <= 0) {
            free(scopes);
            scopes = NULL;
            ns = 0;
            Dwarf_Die inner;
            if (innermost_die(cudie, a - bias, &inner, 0) &&
                (ns = g_dw.dwarf_getscopes_die(&inner, &scopes)) <= 0) {
                free(scopes);
                scopes = NULL;
                ns = 0;
            }
        }
    }

    const char *elfsym = NULL;
    bool elfsym_done = false;
#define HS_ELFSYM() (elfsym_done ? elfsym : (elfsym_done = true, elfsym = elf_symbol(m, a)))

    /* frame 0: the function of the innermost function scope */
    int j = 0;
    while (j < ns && !is_function_scope(&scopes[j]))
        j++;
    const char *fn = j < ns ? die_name(&scopes[j]) : NULL;
    if (fn == NULL && (j >= ns || g_dw.dwarf_tag(&scopes[j]) != DW_TAG_inlined_subroutine))
        fn = HS_ELFSYM();
    fbuf_push(b, src != NULL ? src : m->path, src != NULL ? (unsigned)line : 0, fn, m, offset);

    /* one more frame per inlined subroutine: its caller, at its call site */
    Dwarf_Files *files = NULL;
    bool have_files = false, files_done = false;
    for (int i = 0; i < ns; i++) {
        if (g_dw.dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine)
            continue;
        int k = i + 1;
        while (k < ns && !is_function_scope(&scopes[k]))
            k++;
        fn = k < ns ? die_name(&scopes[k]) : NULL;
        if (fn == NULL && (k >= ns || g_dw.dwarf_tag(&scopes[k]) != DW_TAG_inlined_subroutine))
            fn = HS_ELFSYM();
        if (!files_done) {
            files_done = true;
            have_files = g_dw.dwarf_getsrcfiles(cudie, &files, NULL) == 0;
        }
        const char *cfile = NULL;
        unsigned cline = 0;
        Dwarf_Attribute at;
        Dwarf_Word val;
        if (have_files &&
            g_dw.dwarf_formudata(g_dw.dwarf_attr(&scopes[i], DW_AT_call_file, &at), &val) == 0)
            cfile = source_path(g_dw.dwarf_filesrc(files, val, NULL, NULL), cudie);
        if (cfile != NULL &&
            g_dw.dwarf_formudata(g_dw.dwarf_attr(&scopes[i], DW_AT_call_line, &at), &val) == 0)
            cline = val <= UINT_MAX ? (unsigned)val : 0;
        fbuf_push(b, cfile != NULL ? cfile : m->path, cfile != NULL ? cline : 0, fn, m, offset);
    }
#undef HS_ELFSYM
    free(scopes);
}

#else /* !HS_HAVE_LIBDW */

static void dw_ensure_loaded(void)
{
    atomic_store(&g_dw_state, 3);
}

#endif

/* ---------------------------------------------------------------------------------------------
 * hs_sym_resolve
 */
typedef struct hs_dladdr {
    int state;  /* 0: not asked, 1: asked */
    bool ok;
    uintptr_t fbase;
    char sname[1024]; /* copied at once: dli_sname points into the object's string table */
} hs_dladdr;

/* dladdr without g_lock (R5: it takes the loader lock).  The symbol name is copied at once; a
 * dlclose of that very library by another thread between dladdr's return and the copy is the
 * one window this fallback cannot close (the libdw backend reads names from its own mapping of
 * the file and has no such window). */
static void ask_dladdr(uintptr_t a, hs_dladdr *d)
{
    Dl_info info;
    d->state = 1;
    d->ok = false;
    d->sname[0] = '\0';
    loader_begin();
    int found = dladdr((void *)a, &info);
    if (found == 0) {
        loader_end();
        return;
    }
    d->ok = true;
    d->fbase = (uintptr_t)info.dli_fbase;
    if (info.dli_sname != NULL) {
        size_t n = strnlen(info.dli_sname, sizeof(d->sname) - 1);
        memcpy(d->sname, info.dli_sname, n);
        d->sname[n] = '\0';
    }
    loader_end();
}

/* The single frame of the fallback: object path, line 0, nearest exported symbol from dladdr
 * if dladdr found the same object. */
static void frames_from_dladdr(hs_mod *m, uintptr_t a, const hs_dladdr *d, hs_fbuf *b)
{
    const char *fn = NULL;
    /* dli_fbase is where the object's first segment is mapped: at or after the load bias, and
     * below its code */
    if (d->ok && d->fbase >= m->bias && d->fbase < m->end && d->sname[0] != '\0')
        fn = show_name(d->sname);
    fbuf_push(b, m->path, 0, fn, m, a - m->bias);
}

int hs_sym_resolve(uintptr_t addr, int is_return, const hs_sym_frame **out)
{
    /* Returned when even the cache cannot be filled (out of memory, R4). */
    static const hs_sym_frame unknown = {HS_SYM_UNKNOWN, 0, "", "", "", 0};
    uintptr_t a = is_return && addr != 0 ? addr - 1 : addr; /* the call instruction */
    if (out == NULL)
        return 1;
    *out = &unknown;

    /* Loader work first, without g_lock (R5). */
    dw_ensure_loaded();

    bool refreshed = false;
    hs_dladdr dl;
    dl.state = 0;
    for (;;) {
        pthread_mutex_lock(&g_lock);
        hs_centry *e = cache_find(a);
        if (e != NULL) {
            /* A hit is trusted: the caller refreshes the module list before a batch, and a
             * refresh that finds a new module drops the cached results in its range. */
            *out = e->frames;
            int n = e->nframes;
            pthread_mutex_unlock(&g_lock);
            return n;
        }
        if (!refreshed) {
            /* A miss: has a library been loaded or unloaded since the last walk (maybe at the
             * addresses of an unloaded one)?  The walk stops at its first callback when
             * nothing changed.  Then look for the C++ demangler in what is loaded now.  Both
             * without g_lock (R5). */
            pthread_mutex_unlock(&g_lock);
            refreshed = true;
            hs_sym_refresh_modules();
            demangler_find();
            continue;
        }
        hs_mod *m = module_find(a);
        hs_fbuf *b = malloc(sizeof(*b));
        if (b == NULL) {
            pthread_mutex_unlock(&g_lock);
            return 1;
        }
        b->n = 0;
        if (m == NULL) {
            fbuf_push(b, HS_SYM_UNKNOWN, 0, "", NULL, a);
        } else {
#if HS_HAVE_LIBDW
            if (dw_ready()) {
                if (m->dw_state == 0)
                    module_setup_dwfl(m);
                if (m->dw_state > 0)
                    frames_from_dwfl(m, a, b);
            }
#endif
            if (b->n == 0) {
                if (dl.state == 0) {
                    /* dladdr needs the loader lock: ask without g_lock, then start over */
                    pthread_mutex_unlock(&g_lock);
                    free(b);
                    ask_dladdr(a, &dl);
                    continue;
                }
                frames_from_dladdr(m, a, &dl, b);
            }
        }
        e = cache_insert(a, b->f, b->n);
        int n = 1;
        if (e != NULL) {
            *out = e->frames;
            n = e->nframes;
        }
        update_memory();
        pthread_mutex_unlock(&g_lock);
        free(b);
        return n;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Configuration (for tests and tracer options) and fork handlers.
 */
void hs_sym_set_debuginfo_path(const char *path)
{
    char *copy = path != NULL ? strdup(path) : NULL;
    pthread_mutex_lock(&g_lock); /* libdwfl reads it through g_callbacks, under g_lock */
    char *old = g_debuginfo_path;
    g_debuginfo_path = copy;
    pthread_mutex_unlock(&g_lock);
    free(old);
}

void hs_sym_set_libdw_soname(const char *soname)
{
    atomic_store(&g_libdw_soname, soname != NULL ? soname : "libdw.so.1");
}

int hs_sym_backend(void)
{
    switch (atomic_load_explicit(&g_dw_state, memory_order_acquire)) {
    case 2:
        return 1;
    case 3:
        return 0;
    default:
        return -1;
    }
}

void hs_sym_atfork_prepare(void)
{
    pthread_mutex_lock(&g_lock);
}

void hs_sym_atfork_parent(void)
{
    pthread_mutex_unlock(&g_lock);
}

void hs_sym_atfork_child(void)
{
    /* The child has one thread; the lock was held by the forking thread (prepare).  Start it
     * afresh; everything it protects is consistent and stays valid in the child, cache
     * included.  Work another parent thread had in flight without g_lock (publishing the libdw
     * table, searching the demangler) does not exist in the child: let it be redone. */
    static const pthread_mutex_t init = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&g_lock, &init, sizeof(g_lock));
    int loading = 1;
    atomic_compare_exchange_strong(&g_dw_state, &loading, 0);
    atomic_store(&g_demangle_busy, 0);
}
