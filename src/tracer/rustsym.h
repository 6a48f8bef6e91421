/*
 * rustsym.h - Rust symbol names (rustsym.c): legacy demangling, and the crate of a v0 name.
 */
#ifndef HS_RUSTSYM_H
#define HS_RUSTSYM_H

#include <stddef.h>

#include "../common/common.h"

/* A legacy-mangled Rust name (_ZN...17h<hash>E, maybe followed by ".llvm.N") demangled into
 * buf, without the hash: "alloc::raw_vec::finish_grow".  Returns 1, or 0 when sym is not such a
 * name (a C++ name, with its parameter types, is not) or it does not fit in cap bytes. */
HS_HIDDEN int hs_rust_demangle(const char *sym, char *buf, size_t cap);

/* A v0-mangled Rust name (_R...) demangled into buf, as rustc-demangle's alternate form without
 * the instantiating crate: "<alloc::raw_vec::RawVecInner>::finish_grow".  Returns 1, or 0 when
 * sym is not such a name or the result does not fit in cap bytes. */
HS_HIDDEN int hs_rust_v0_demangle(const char *sym, char *buf, size_t cap);

/* The crate of a v0-mangled Rust function (_R...) into buf: "alloc" for
 * _RNvMs4_NtCs..._5alloc7raw_vec...  Returns 1, or 0 when there is no single crate to name. */
HS_HIDDEN int hs_rust_v0_crate(const char *sym, char *buf, size_t cap);

#endif
