/*
 * test_symbolize.c - tests of src/tracer/symbolize.c in a real process.
 *
 *   test_symbolize              libdw backend (the libraries are found next to the binary)
 *   test_symbolize --fallback   libdw made unloadable: the dladdr fallback
 *
 * Checks: own frames (file, function, line of the call); inlined frames against what
 * `addr2line -i -f -C -e` prints for the same offset; a dlopen'd library, also after dlclose;
 * a stripped library (path, line 0, nearest symbol); debug files by .gnu_debuglink and by
 * build-id; build-ids against `readelf -n`; C++ demangling; unknown addresses; the cache (same
 * pointer); address reuse after dlclose; fork handlers; threads; libdw loaded only on the first
 * resolve and never libdebuginfod.  Failures print both values; the exit status is the verdict.
 */
#include "tracer/symbolize.h"
#include "tracer/rustsym.h"

#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "symtest.h"

static int g_checks, g_fails;
static char g_dir[PATH_MAX];  /* directory of this binary: the test libraries are there */
static char g_exe[PATH_MAX];
static int g_fallback;

#define CHECK(cond) check_true(__FILE__, __LINE__, #cond, (cond))
#define CHECK_STR(got, want) check_str(__FILE__, __LINE__, #got, (got), (want))
#define CHECK_INT(got, want) check_int(__FILE__, __LINE__, #got, (long long)(got), (long long)(want))
#define CHECK_SUFFIX(got, suffix) check_suffix(__FILE__, __LINE__, #got, (got), (suffix))

static void check_true(const char *file, int line, const char *expr, int ok)
{
    g_checks++;
    if (!ok) {
        g_fails++;
        printf("FAIL %s:%d: %s\n", file, line, expr);
    }
}

static void check_str(const char *file, int line, const char *expr, const char *got, const char *want)
{
    g_checks++;
    if (got == NULL || want == NULL || strcmp(got, want) != 0) {
        g_fails++;
        printf("FAIL %s:%d: %s\n     got:      '%s'\n     expected: '%s'\n", file, line, expr,
               got ? got : "(null)", want ? want : "(null)");
    }
}

static void check_int(const char *file, int line, const char *expr, long long got, long long want)
{
    g_checks++;
    if (got != want) {
        g_fails++;
        printf("FAIL %s:%d: %s\n     got:      %lld\n     expected: %lld\n", file, line, expr, got,
               want);
    }
}

static void check_suffix(const char *file, int line, const char *expr, const char *got,
                         const char *suffix)
{
    g_checks++;
    size_t n = got ? strlen(got) : 0, m = strlen(suffix);
    if (got == NULL || n < m || strcmp(got + n - m, suffix) != 0) {
        g_fails++;
        printf("FAIL %s:%d: %s\n     got:      '%s'\n     expected: '...%s'\n", file, line, expr,
               got ? got : "(null)", suffix);
    }
}

static void print_frames(const char *what, const hs_sym_frame *f, int n)
{
    printf("  %s: %d frame(s)\n", what, n);
    for (int i = 0; i < n; i++)
        printf("    #%d %s at %s:%u [%s %s +0x%llx]\n", i, f[i].function, f[i].filename,
               f[i].lineno, f[i].object, f[i].build_id, (unsigned long long)f[i].offset);
}

static int resolve(void *addr, int is_return, const hs_sym_frame **out, const char *what)
{
    int n = hs_sym_resolve((uintptr_t)addr, is_return, out);
    print_frames(what, *out, n);
    return n;
}

static void lib_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", g_dir, name);
}

/* Is an object whose path contains name mapped in this process? */
static int mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, name) != NULL)
            found = 1;
    fclose(f);
    return found;
}

/* `readelf -n obj`'s build-id, lowercase hex. */
static void readelf_build_id(const char *obj, char *out, size_t len)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof(cmd), "readelf -n '%s' 2>/dev/null", obj);
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return;
    char line[1024];
    while (fgets(line, sizeof(line), p) != NULL) {
        char *s = strstr(line, "Build ID:");
        if (s != NULL && out[0] == '\0') {
            s += strlen("Build ID:");
            while (*s == ' ')
                s++;
            size_t n = strcspn(s, " \r\n");
            if (n >= len)
                n = len - 1;
            memcpy(out, s, n);
            out[n] = '\0';
        }
    }
    pclose(p);
}

/* Compares all frames with `addr2line -i -f -C -e obj 0x<offset>` (binutils), which prints a
 * function line and a file:line line per frame, innermost first. */
static void compare_with_addr2line(const hs_sym_frame *f, int n)
{
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof(cmd), "addr2line -i -f -C -e '%s' 0x%llx", f[0].object,
             (unsigned long long)f[0].offset);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    if (p == NULL)
        return;
    char fn[4096], loc[4096];
    int i = 0;
    while (fgets(fn, sizeof(fn), p) != NULL && fgets(loc, sizeof(loc), p) != NULL) {
        fn[strcspn(fn, "\n")] = '\0';
        loc[strcspn(loc, "\n")] = '\0';
        char *d = strstr(loc, " (discriminator");
        if (d != NULL)
            *d = '\0';
        char *colon = strrchr(loc, ':');
        unsigned line = 0;
        if (colon != NULL) {
            *colon = '\0';
            line = (unsigned)strtoul(colon + 1, NULL, 10);
        }
        printf("    addr2line #%d %s at %s:%u\n", i, fn, loc, line);
        if (i < n) {
            CHECK_STR(f[i].function, fn);
            CHECK_STR(f[i].filename, loc);
            CHECK_INT(f[i].lineno, line);
        }
        i++;
    }
    pclose(p);
    CHECK_INT(n, i);
}

/* ---- the main program's own frames ---------------------------------------------------------- */

static __attribute__((noinline)) void *get_ra(void)
{
    return __builtin_return_address(0);
}

static int g_own_line;
static __attribute__((noinline)) void *own_site(void)
{
    g_own_line = __LINE__ + 1;
    void *ra = get_ra();
    return ra;
}

static int g_inl_lines[3];
static __attribute__((noinline)) void *own_inline_site(void)
{
    g_inl_lines[2] = __LINE__ + 1;
    void *ra = hs_inl_outer(g_inl_lines);
    return ra;
}

static void test_own_frames(void)
{
    printf("== own frames\n");
    const hs_sym_frame *f, *f2;
    void *ra = own_site();
    int n = resolve(ra, 1, &f, "own_site");
    CHECK_INT(n, 1);
    CHECK_STR(f[0].object, g_exe);
    char bid[256];
    readelf_build_id(g_exe, bid, sizeof(bid));
    CHECK(bid[0] != '\0');
    CHECK_STR(f[0].build_id, bid);
    if (!g_fallback) {
        CHECK_SUFFIX(f[0].filename, "/tests/sym/test_symbolize.c");
        CHECK(f[0].filename[0] == '/');
        CHECK_STR(f[0].function, "own_site");
        CHECK_INT(f[0].lineno, g_own_line);
        compare_with_addr2line(f, n);
    } else {
        /* dladdr: the object path as filename, line 0; own_site is static, so not exported */
        CHECK_STR(f[0].filename, g_exe);
        CHECK_INT(f[0].lineno, 0);
    }

    /* cached: the same array, also when asked as (ra - 1, not a return address) */
    int n2 = hs_sym_resolve((uintptr_t)ra, 1, &f2);
    CHECK(f2 == f);
    CHECK_INT(n2, n);
    n2 = hs_sym_resolve((uintptr_t)ra - 1, 0, &f2);
    CHECK(f2 == f);
    CHECK(hs_sym_memory() > 0);

    /* not a return address: ra itself is looked up (the instruction after the call) */
    n2 = resolve(ra, 0, &f2, "own_site, is_return=0");
    CHECK(f2 != f);
    CHECK_INT(f2[0].offset, f[0].offset + 1);
}

static void test_own_inline(void)
{
    if (g_fallback)
        return;
    printf("== own inlined frames\n");
    const hs_sym_frame *f;
    void *ra = own_inline_site();
    int n = resolve(ra, 1, &f, "own_inline_site");
    CHECK_INT(n, 3);
    if (n != 3)
        return;
    CHECK_STR(f[0].function, "hs_inl_inner");
    CHECK_SUFFIX(f[0].filename, "/tests/sym/symtest.h");
    CHECK_INT(f[0].lineno, g_inl_lines[0]);
    CHECK_STR(f[1].function, "hs_inl_outer");
    CHECK_SUFFIX(f[1].filename, "/tests/sym/symtest.h");
    CHECK_INT(f[1].lineno, g_inl_lines[1]);
    CHECK_STR(f[2].function, "own_inline_site");
    CHECK_SUFFIX(f[2].filename, "/tests/sym/test_symbolize.c");
    CHECK_INT(f[2].lineno, g_inl_lines[2]);
    for (int i = 0; i < n; i++) {
        CHECK_STR(f[i].object, f[0].object);
        CHECK(f[i].offset == f[0].offset);
    }
    compare_with_addr2line(f, n);
}

/* ---- the dlopen'd library, resolved only after dlclose ------------------------------------- */

static void test_library_after_dlclose(void)
{
    printf("== library resolved after dlclose\n");
    char path[PATH_MAX];
    lib_path(path, sizeof(path), "libhssym.so");
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL);
    if (h == NULL) {
        printf("     dlopen: %s\n", dlerror());
        return;
    }
    void *(*site)(void) = (void *(*)(void))dlsym(h, "hs_symlib_site");
    void *(*inl)(int *) = (void *(*)(int *))dlsym(h, "hs_symlib_inline");
    int *line = dlsym(h, "hs_symlib_line");
    CHECK(site != NULL && inl != NULL && line != NULL);
    if (site == NULL || inl == NULL || line == NULL)
        return;
    void *ra = site();
    int site_line = *line;
    int lines[3];
    void *ra_inl = inl(lines);
    char bid[256];
    readelf_build_id(path, bid, sizeof(bid));

    hs_sym_refresh_modules(); /* what the tracer's dlclose hook does */
    dlclose(h);
    CHECK(dlopen(path, RTLD_NOW | RTLD_NOLOAD) == NULL); /* really unloaded */

    const hs_sym_frame *f;
    int n = resolve(ra, 1, &f, "hs_symlib_site after dlclose");
    CHECK_INT(n, 1);
    CHECK_STR(f[0].object, path);
    CHECK_STR(f[0].build_id, bid);
    if (!g_fallback) {
        CHECK_STR(f[0].function, "hs_symlib_site");
        CHECK_SUFFIX(f[0].filename, "/tests/sym/symlib.c");
        CHECK_INT(f[0].lineno, site_line);
        compare_with_addr2line(f, n);

        n = resolve(ra_inl, 1, &f, "hs_symlib_inline after dlclose");
        CHECK_INT(n, 3);
        if (n == 3) {
            CHECK_STR(f[0].function, "hs_inl_inner");
            CHECK_INT(f[0].lineno, lines[0]);
            CHECK_STR(f[1].function, "hs_inl_outer");
            CHECK_INT(f[1].lineno, lines[1]);
            CHECK_STR(f[2].function, "hs_symlib_inline");
            CHECK_SUFFIX(f[2].filename, "/tests/sym/symlib.c");
            CHECK_INT(f[2].lineno, lines[2]);
        }
        compare_with_addr2line(f, n);
    } else {
        /* the library is gone: dladdr knows nothing any more, the module list still does */
        CHECK_STR(f[0].filename, path);
        CHECK_INT(f[0].lineno, 0);
    }

    /* Address reuse: another library loaded where this one was.  Lookups then prefer the
     * newest module, and cached results in its range are dropped. */
    char spath[PATH_MAX];
    lib_path(spath, sizeof(spath), "libhssym-stripped.so");
    void *h2 = dlopen(spath, RTLD_NOW | RTLD_LOCAL);
    CHECK(h2 != NULL);
    Dl_info di;
    if (h2 != NULL && dladdr(ra, &di) != 0 && di.dli_fname != NULL &&
        strcmp(di.dli_fname, spath) == 0) {
        hs_sym_refresh_modules();
        n = resolve(ra, 1, &f, "old address, now inside the stripped library");
        CHECK_STR(f[0].object, spath);
        CHECK_INT(f[0].lineno, 0);
    } else {
        printf("  (address reuse not exercised: the new library was mapped elsewhere)\n");
    }
    if (h2 != NULL)
        dlclose(h2);
}

/* ---- a library resolved once while loaded, then again after dlclose (its Dwfl is reused) ---- */

static void *g_dbglink_ra; /* resolved and cached while libhssym-dbglink.so was loaded */

static void test_debuglink_library(void)
{
    printf("== library with a .gnu_debuglink debug file\n");
    char path[PATH_MAX];
    lib_path(path, sizeof(path), "libhssym-dbglink.so");
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL);
    if (h == NULL)
        return;
    void *(*site)(void) = (void *(*)(void))dlsym(h, "hs_symlib_site");
    void *(*inl)(int *) = (void *(*)(int *))dlsym(h, "hs_symlib_inline");
    int *line = dlsym(h, "hs_symlib_line");
    void *ra = site();
    int site_line = *line;
    int lines[3];
    void *ra_inl = inl(lines);
    g_dbglink_ra = ra;

    hs_sym_refresh_modules();
    const hs_sym_frame *f;
    int n = resolve(ra, 1, &f, "hs_symlib_site while loaded");
    CHECK_INT(n, 1);
    CHECK_STR(f[0].object, path);
    if (!g_fallback) {
        CHECK_STR(f[0].function, "hs_symlib_site");
        CHECK_SUFFIX(f[0].filename, "/tests/sym/symlib.c");
        CHECK_INT(f[0].lineno, site_line);
    } else {
        CHECK_STR(f[0].function, "hs_symlib_site");
        CHECK_STR(f[0].filename, path);
    }
    dlclose(h);
    n = resolve(ra_inl, 1, &f, "hs_symlib_inline after dlclose");
    if (!g_fallback) {
        CHECK_INT(n, 3);
        if (n == 3) {
            CHECK_STR(f[2].function, "hs_symlib_inline");
            CHECK_INT(f[2].lineno, lines[2]);
            CHECK_INT(f[0].lineno, lines[0]);
        }
    } else {
        CHECK_INT(n, 1);
        CHECK_STR(f[0].filename, path);
    }
}

static void test_buildid_library(void)
{
    printf("== library with a debug file found by build-id\n");
    char path[PATH_MAX];
    lib_path(path, sizeof(path), "libhssym-buildid.so");
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL);
    if (h == NULL)
        return;
    void *(*site)(void) = (void *(*)(void))dlsym(h, "hs_symlib_site");
    int *line = dlsym(h, "hs_symlib_line");
    void *ra = site();
    int site_line = *line;
    hs_sym_refresh_modules(); /* as the tracer does before symbolizing a snapshot */
    const hs_sym_frame *f;
    int n = resolve(ra, 1, &f, "hs_symlib_site");
    CHECK_INT(n, 1);
    CHECK_STR(f[0].object, path);
    char bid[256];
    readelf_build_id(path, bid, sizeof(bid));
    CHECK_STR(f[0].build_id, bid);
    CHECK_STR(f[0].function, "hs_symlib_site");
    if (!g_fallback) {
        CHECK_SUFFIX(f[0].filename, "/tests/sym/symlib.c");
        CHECK_INT(f[0].lineno, site_line);
    }
    /* Address reuse: libhssym-dbglink.so (same code layout) was unloaded and this library
     * took its addresses: the result cached for the old library's address must be gone. */
    if (ra == g_dbglink_ra) {
        CHECK(f[0].object != NULL && strstr(f[0].object, "dbglink") == NULL);
        printf("  (address reuse exercised: the dbglink library's cached address was dropped)\n");
    } else {
        printf("  (address reuse not exercised: the new library was mapped elsewhere)\n");
    }
    dlclose(h);
}

/* ---- stripped library: path, line 0, nearest (dynamic) symbol ------------------------------ */

static void test_stripped_library(void)
{
    printf("== stripped library\n");
    char path[PATH_MAX];
    lib_path(path, sizeof(path), "libhssym-stripped.so");
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL);
    if (h == NULL)
        return;
    void *(*site)(void) = (void *(*)(void))dlsym(h, "hs_symlib_site");
    void *ra = site();
    hs_sym_refresh_modules(); /* as the tracer does before symbolizing a snapshot */
    const hs_sym_frame *f;
    int n = resolve(ra, 1, &f, "hs_symlib_site in the stripped library");
    CHECK_INT(n, 1);
    CHECK_STR(f[0].filename, path);
    CHECK_INT(f[0].lineno, 0);
    CHECK_STR(f[0].function, "hs_symlib_site");
    CHECK_STR(f[0].object, path);
    char bid[256];
    readelf_build_id(path, bid, sizeof(bid));
    CHECK(bid[0] != '\0');
    CHECK_STR(f[0].build_id, bid);
    dlclose(h);
}

/* ---- C++: demangled names --------------------------------------------------------------------- */

static void test_cxx_demangle(void)
{
    printf("== C++ demangling\n");
    char path[PATH_MAX];
    lib_path(path, sizeof(path), "libhssymcxx.so");
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL);
    if (h == NULL) {
        printf("     dlopen: %s\n", dlerror());
        return;
    }
    void *(*entry)(void) = (void *(*)(void))dlsym(h, "hs_symcxx_entry");
    int *line = dlsym(h, "hs_symcxx_line");
    void *ra = entry();
    const hs_sym_frame *f;
    int n = resolve(ra, 1, &f, "Widget::frob");
    CHECK_INT(n, 1);
    CHECK_STR(f[0].function, "hs_symtest::Widget::frob(int)");
    CHECK_STR(f[0].object, path);
    if (!g_fallback) {
        CHECK_SUFFIX(f[0].filename, "/tests/sym/symcxx.cc");
        CHECK_INT(f[0].lineno, *line);
    }
    dlclose(h);
}

/* ---- Rust names: legacy demangling, the crate of a v0 name ---------------------------------- */

/* fn (a Rust name function of rustsym.h) on sym gives want, or fails when want is NULL. */
static void check_name(int (*fn)(const char *, char *, size_t), const char *sym,
                       const char *want)
{
    char buf[256];
    int ok = fn(sym, buf, sizeof(buf));
    CHECK_INT(ok, want != NULL);
    if (want != NULL && ok)
        CHECK_STR(buf, want);
}
#define check_demangle(sym, want) check_name(hs_rust_demangle, sym, want)
#define check_crate(sym, want) check_name(hs_rust_v0_crate, sym, want)
#define check_v0(sym, want) check_name(hs_rust_v0_demangle, sym, want)

static void test_rust_names(void)
{
    printf("== Rust names\n");
    /* legacy: the hash dropped, escapes decoded, ".llvm.N" allowed after the E */
    check_demangle("_ZN4leak4main17h68d97aefc12db3cbE", "leak::main");
    check_demangle("_ZN5alloc7raw_vec11finish_grow17ha93ccb8778961274E",
                   "alloc::raw_vec::finish_grow");
    check_demangle("_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17h71acb6ed29efb28bE"
                   ".llvm.6050256095453133333",
                   "std::rt::lang_start::{{closure}}");
    check_demangle("_ZN9hashbrown3map28HashMap$LT$K$C$V$C$S$C$A$GT$6insert17h9e3ecfa3626595efE",
                   "hashbrown::map::HashMap<K,V,S,A>::insert");
    check_demangle("_ZN70_$LT$alloc..vec..Vec$LT$T$C$A$GT$$u20$as$u20$core..ops..drop..Drop$GT$"
                   "4drop17h0123456789abcdefE",
                   "<alloc::vec::Vec<T,A> as core::ops::drop::Drop>::drop");
    check_demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE", "core::ptr::drop_in_place");
    /* not Rust legacy: C++ (parameters after the E), no hash, bad hash, truncated, bad escape */
    check_demangle("_ZN5alloc3fooEv", NULL);
    check_demangle("_ZN3foo3barE", NULL);
    check_demangle("_ZN3foo17hxyz456789abcdefgE", NULL);
    check_demangle("_ZN3foo17h0123456789abcdefEi", NULL);
    check_demangle("_ZN3foo3b", NULL);
    check_demangle("_ZN3foo99", NULL);
    check_demangle("_ZN5$XX$a17h0123456789abcdefE", NULL);
    check_demangle("_ZN17h0123456789abcdef3fooE", NULL);   /* the hash is last */
    check_demangle("_Z3foov", NULL);
    check_demangle("main", NULL);
    char small[8];
    CHECK_INT(hs_rust_demangle("_ZN4leak4main17h68d97aefc12db3cbE", small, sizeof(small)), 0);

    /* v0: the crate through nested paths, impls, generic arguments and backreferences */
    check_crate("_RNvNtCsjrHSEGnQ3l9_3std2rt19lang_start_internal", "std");
    check_crate("_RNvMs4_NtCslNYArtu3iFV_5alloc7raw_vecNtB5_11RawVecInner11finish_grow"
                "CsjrHSEGnQ3l9_3std", "alloc");
    check_crate("_RNvNvNtCslNYArtu3iFV_5alloc3fmt6format12format_inner", "alloc");
    check_crate("_RNvCs15kBYyAo9fc_7mycrate4main", "mycrate");
    check_crate("_RINvNtC3foo3bar3bazpE", "foo");
    check_crate("_RNvNtB2_3bar3baz", NULL);             /* a backreference forwards */
    check_crate("_RNvYNtC3foo3BarNtC4core5Debug3fmt", NULL);   /* <T as Trait>: no single crate */
    check_crate("_RNvC", NULL);
    check_crate("_RNvC99foo", NULL);
    check_crate("_ZN3std2rt10lang_startE", NULL);

    /* v0 demangling (tests/test_rust.py compares every symbol of real programs with c++filt) */
    check_v0("_RNvNtCsjrHSEGnQ3l9_3std2rt19lang_start_internal", "std::rt::lang_start_internal");
    check_v0("_RNvMs4_NtCslNYArtu3iFV_5alloc7raw_vecNtB5_11RawVecInner11finish_grow"
             "CsjrHSEGnQ3l9_3std", "<alloc::raw_vec::RawVecInner>::finish_grow");
    check_v0("_RNCNCNvNtNtCsjrHSEGnQ3l9_3std3sys9backtrace10__print_fmts_00B9_",
             "std::sys::backtrace::_print_fmt::{closure#1}::{closure#0}");
    check_v0("_RINvNtC3foo3bar3bazpE", "foo::bar::baz::<_>");
    check_v0("_RINvC3foo3barAhj4_E", "foo::bar::<[u8; 4: usize]>");
    check_v0("_RINvC3foo3barFG_RL0_hEuE", "foo::bar::<for<'a> fn(&'a u8)>");
    check_v0("_RINvC3foo3barDINtC4core2FnTEEp6OutputuEL_E",
             "foo::bar::<dyn core::Fn<(), Output = ()>>");
    check_v0("_RNvC3foo3bar.llvm.1234", "foo::bar");
    check_v0("_RNvB_3bar", NULL);                      /* a backreference to itself */
    check_v0("_RNvC3foo", NULL);                       /* truncated */
    check_v0("_R1NvC3foo3bar", NULL);                  /* a later encoding version */
    check_v0("_RINvC3foo3barZE", NULL);                /* no such type */
    CHECK_INT(hs_rust_v0_demangle("_RNvNtCsjrHSEGnQ3l9_3std2rt19lang_start_internal", small,
                                  sizeof(small)), 0);
}

/* ---- an unloaded library deleted, or replaced by another build, on disk ---------------------- */

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int ok = in != NULL && out != NULL;
    while (ok && (n = fread(buf, 1, sizeof(buf), in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in != NULL)
        fclose(in);
    if (out != NULL && fclose(out) != 0)
        ok = 0;
    return ok;
}

static void test_gone_from_disk(void)
{
    printf("== unloaded libraries deleted / replaced on disk\n");
    char tmpl[] = "/tmp/hssymtest.XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    if (dir == NULL)
        return;
    char orig[PATH_MAX], other[PATH_MAX], gone[PATH_MAX + 32], repl[PATH_MAX + 32];
    lib_path(orig, sizeof(orig), "libhssym.so");
    lib_path(other, sizeof(other), "libhssym-buildid.so");
    snprintf(gone, sizeof(gone), "%s/libgone.so", dir);
    snprintf(repl, sizeof(repl), "%s/libreplaced.so", dir);
    CHECK(copy_file(orig, gone) && copy_file(orig, repl));
    void *hg = dlopen(gone, RTLD_NOW | RTLD_LOCAL), *hr = dlopen(repl, RTLD_NOW | RTLD_LOCAL);
    CHECK(hg != NULL && hr != NULL);
    if (hg == NULL || hr == NULL)
        return;
    void *ra_g = ((void *(*)(void))dlsym(hg, "hs_symlib_site"))();
    void *ra_r = ((void *(*)(void))dlsym(hr, "hs_symlib_site"))();
    char bid[256];
    readelf_build_id(orig, bid, sizeof(bid));
    hs_sym_refresh_modules();
    dlclose(hg);
    dlclose(hr);
    CHECK(unlink(gone) == 0);
    char tmp[PATH_MAX + 64];
    snprintf(tmp, sizeof(tmp), "%s.new", repl);
    CHECK(copy_file(other, tmp) && rename(tmp, repl) == 0); /* another build-id */

    /* less information, never wrong information: path, line 0, no function */
    const hs_sym_frame *f;
    int n = resolve(ra_g, 1, &f, "deleted library");
    CHECK_INT(n, 1);
    CHECK_STR(f[0].object, gone);
    CHECK_STR(f[0].filename, gone);
    CHECK_INT(f[0].lineno, 0);
    CHECK_STR(f[0].function, "");
    CHECK_STR(f[0].build_id, bid);
    n = resolve(ra_r, 1, &f, "replaced library");
    CHECK_INT(n, 1);
    CHECK_STR(f[0].object, repl);
    CHECK_STR(f[0].filename, repl);
    CHECK_INT(f[0].lineno, 0);
    CHECK_STR(f[0].function, "");
    CHECK_STR(f[0].build_id, bid);
    unlink(repl);
    rmdir(dir);
}

/* ---- nothing there ---------------------------------------------------------------------------- */

static void test_unknown(void)
{
    printf("== unknown addresses\n");
    volatile char on_stack[32];
    const hs_sym_frame *f, *f2;
    int n = resolve((char *)&on_stack[16], 1, &f, "stack address");
    CHECK_INT(n, 1);
    CHECK_STR(f[0].filename, "<unknown>");
    CHECK_INT(f[0].lineno, 0);
    CHECK_STR(f[0].function, "");
    CHECK_STR(f[0].object, "");
    CHECK_STR(f[0].build_id, "");
    CHECK(hs_sym_resolve((uintptr_t)&on_stack[16], 1, &f2) == 1 && f2 == f);
    n = resolve(NULL, 1, &f, "NULL");
    CHECK_INT(n, 1);
    CHECK_STR(f[0].filename, "<unknown>");
    /* An anonymous mapping is not code: unknown, even where an unloaded library's data was
     * (the deleted library's code range could still claim it: see the design notes). */
    void *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(page != MAP_FAILED);
    n = resolve((char *)page + 16, 1, &f, "anonymous page");
    CHECK_INT(n, 1);
    CHECK(strcmp(f[0].filename, "<unknown>") == 0 || strstr(f[0].object, "/tmp/hssymtest") != NULL);
    munmap(page, 4096);
    /* a data address of a loaded object: not code either */
    static int data_var;
    n = resolve(&data_var, 0, &f, "data variable");
    CHECK_STR(f[0].filename, "<unknown>");
}

/* ---- fork handlers ---------------------------------------------------------------------------- */

static void test_fork(void)
{
    printf("== fork handlers\n");
    const hs_sym_frame *f;
    void *ra = own_site();
    hs_sym_resolve((uintptr_t)ra, 1, &f);
    hs_sym_atfork_prepare();
    pid_t pid = fork();
    if (pid == 0) {
        hs_sym_atfork_child();
        const hs_sym_frame *g;
        int ok = hs_sym_resolve((uintptr_t)ra, 1, &g) >= 1 && g == f; /* cache kept */
        ok = ok && hs_sym_resolve((uintptr_t)get_ra() , 1, &g) >= 1;   /* and usable */
        _exit(ok ? 0 : 1);
    }
    hs_sym_atfork_parent();
    CHECK(pid > 0);
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(hs_sym_resolve((uintptr_t)ra, 1, &f) >= 1); /* the parent's lock was released */
}

/* ---- threads ---------------------------------------------------------------------------------- */

#define NTHREADS 4
#define NADDR 64
static const hs_sym_frame *g_thread_res[NTHREADS][NADDR];

static void *thread_main(void *arg)
{
    long t = (long)arg;
    for (int i = 0; i < NADDR; i++) {
        int k = (i * 7 + (int)t * 13) % NADDR;
        hs_sym_resolve((uintptr_t)&test_own_frames + (uintptr_t)k, 0, &g_thread_res[t][k]);
    }
    return NULL;
}

static void test_threads(void)
{
    printf("== threads\n");
    pthread_t th[NTHREADS];
    for (long t = 0; t < NTHREADS; t++)
        CHECK(pthread_create(&th[t], NULL, thread_main, (void *)t) == 0);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    int same = 1;
    for (int t = 1; t < NTHREADS; t++)
        for (int k = 0; k < NADDR; k++)
            if (g_thread_res[t][k] != g_thread_res[0][k])
                same = 0;
    CHECK(same);
    if (!g_fallback)
        CHECK_STR(g_thread_res[0][5][0].function, "test_own_frames");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_fallback = argc > 1 && strcmp(argv[1], "--fallback") == 0;
    ssize_t len = readlink("/proc/self/exe", g_exe, sizeof(g_exe) - 1);
    if (len <= 0) {
        printf("cannot read /proc/self/exe\n");
        return 1;
    }
    g_exe[len] = '\0';
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", g_exe);
    snprintf(g_dir, sizeof(g_dir), "%s", dirname(tmp));

    char dbg[PATH_MAX + 32];
    snprintf(dbg, sizeof(dbg), "/usr/lib/debug:%s/debugroot", g_dir);
    hs_sym_set_debuginfo_path(dbg);
    if (g_fallback)
        hs_sym_set_libdw_soname("libhs-no-such-libdw.so.1");

    CHECK_INT(hs_sym_backend(), -1);
    CHECK_INT(mapped("libdw"), 0); /* not before the first resolve */
    hs_sym_refresh_modules();
    CHECK_INT(mapped("libdw"), 0);

    test_own_frames();
    CHECK_INT(hs_sym_backend(), g_fallback ? 0 : 1);
    CHECK_INT(mapped("libdw"), g_fallback ? 0 : 1);
    test_own_inline();
    test_library_after_dlclose();
    test_debuglink_library();
    test_buildid_library();
    test_stripped_library();
    test_cxx_demangle();
    test_rust_names();
    test_gone_from_disk();
    test_unknown();
    test_fork();
    test_threads();

    CHECK_INT(mapped("libdebuginfod"), 0); /* never, whatever DEBUGINFOD_URLS says */
    printf("%s: %d checks, %d failed (%s backend)\n", g_fails ? "FAILED" : "OK", g_checks,
           g_fails, g_fallback ? "dladdr" : "libdw");
    return g_fails ? 1 : 0;
}
