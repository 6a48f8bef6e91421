/*
 * symbolize.h - turn return addresses of the traced process into source frames, inside the
 * process, off the allocation path.
 *
 * Backed by elfutils libdw, opened with dlopen the first time a snapshot is symbolized (so a
 * traced process that never takes one never loads it), with a fallback to dladdr (object and
 * nearest exported symbol) when libdw cannot be loaded.  Results are cached per address and never
 * freed: a pointer returned stays valid for the life of the process.  The module list is kept
 * across dlclose, so frames of an unloaded library stay resolvable.  No debuginfod lookup ever.
 *
 * Locking: one symbolizer lock, taken inside these calls.  The caller holds no tracer lock while
 * calling them (libdw and dl_iterate_phdr may take the loader lock and allocate) and has set the
 * reentrancy guard, so allocations made here are not traced.
 */
#ifndef HS_SYMBOLIZE_H
#define HS_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/common.h"

typedef struct hs_sym_frame {
    const char *filename;   /* DWARF source path; object path when no line info; "<unknown>" */
    unsigned int lineno;    /* 0 when unknown */
    const char *function;   /* demangled when possible; "" when unknown */
    const char *object;     /* path of the ELF object; "" when unknown */
    const char *build_id;   /* lowercase hex GNU build-id of the object; "" when unknown */
    uint64_t offset;        /* address - the object's load bias (the file's own address) */
} hs_sym_frame;

/* Resolves one address into frames, innermost first: with inlining, frames[0] is the innermost
 * inlined function and the last frame is the real (out-of-line) function containing addr.
 * is_return: addr is a return address, so addr - 1 is looked up (the call instruction).
 * Sets *out to an immutable cached array and returns its length (always >= 1). */
HS_HIDDEN int hs_sym_resolve(uintptr_t addr, int is_return, const hs_sym_frame **out);

/* Adds the currently loaded modules (dl_iterate_phdr) to the symbolizer's list, which keeps
 * modules after they are unloaded.  Called before a batch of resolves, and by the dlclose hook
 * before the real dlclose. */
HS_HIDDEN void hs_sym_refresh_modules(void);

/* Bytes the symbolizer holds (cache and libdw state), for hs_get_tracer_memory(). */
HS_HIDDEN size_t hs_sym_memory(void);

/* Configuration, for tests and tracer options.  Call before the first hs_sym_resolve().
 *
 * Debug roots searched for separate debug files, colon-separated absolute directories, each
 * used as <root>/.build-id/xx/rest.debug and <root>/<object's directory>/<gnu_debuglink>
 * (besides the object's own directory and its .debug/ subdirectory).  NULL: /usr/lib/debug. */
HS_HIDDEN void hs_sym_set_debuginfo_path(const char *path);

/* The libdw to dlopen (NULL: "libdw.so.1"; "" or a name that does not load: the dladdr
 * fallback).  The string must live for the process. */
HS_HIDDEN void hs_sym_set_libdw_soname(const char *soname);

/* Which backend resolves: 1 libdw, 0 the dladdr fallback, -1 not decided yet (no resolve). */
HS_HIDDEN int hs_sym_backend(void);

/* Notes on hs_sym_frame values (in addition to the field comments above):
 *  - offset is computed from the address looked up (addr - 1 for return addresses), so that
 *    `addr2line -i -f -e object 0x<offset>` prints the same frames; every frame of one address
 *    has the same object, build_id and offset.  With no module, offset is that address.
 *  - An address in a known module without line info: filename = object, lineno 0, function =
 *    the nearest ELF symbol or "".  No known module: "<unknown>", 0, "", "", "".
 *  - A cache hit is trusted: call hs_sym_refresh_modules() before a batch of resolves (a miss
 *    checks for newly loaded objects by itself).
 *  - hs_sym_memory() counts the cache, the interned strings and the module list; libdw's own
 *    heap (its CU, line and abbreviation tables) is not counted: it cannot be measured. */

/* Fork handlers: prepare takes the symbolizer lock, parent releases it, child re-initialises it. */
HS_HIDDEN void hs_sym_atfork_prepare(void);
HS_HIDDEN void hs_sym_atfork_parent(void);
HS_HIDDEN void hs_sym_atfork_child(void);

#endif
