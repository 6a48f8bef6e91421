/*
 * symlib.c - the symbolizer test's shared library, built in variants (HS_SYMLIB_VARIANT gives
 * each its own build-id): with debug info, stripped, with a .gnu_debuglink debug file, and with
 * a debug file found by build-id.
 */
#include "symtest.h"

#ifndef HS_SYMLIB_VARIANT
#define HS_SYMLIB_VARIANT 0
#endif

int hs_symlib_line; /* line of the call in hs_symlib_site */

__attribute__((noinline)) void *hs_symlib_site(void)
{
    hs_symlib_line = __LINE__ + 1;
    void *p = hs_symtest_pc();
    return p;
}

/* lines[0..2]: see symtest.h; lines[2] is the call of hs_inl_outer here */
__attribute__((noinline)) void *hs_symlib_inline(int *lines)
{
    lines[2] = __LINE__ + 1;
    void *p = hs_inl_outer(lines);
    return p;
}

int hs_symlib_variant(void)
{
    return HS_SYMLIB_VARIANT;
}
