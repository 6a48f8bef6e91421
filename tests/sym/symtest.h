/*
 * symtest.h - helpers shared by the symbolizer test and its libraries: a noinline function that
 * returns its return address (so the caller gets an address inside itself, at a known line),
 * and two always_inline functions to test the expansion of inlined frames.
 *
 * Each translation unit gets its own static copy of hs_symtest_pc, so that an address taken
 * through it always lies in the object that includes this header.
 */
#ifndef HS_SYMTEST_H
#define HS_SYMTEST_H

static __attribute__((noinline, unused)) void *hs_symtest_pc(void)
{
    return __builtin_return_address(0);
}

/* lines[0] gets the line of the call in hs_inl_inner, lines[1] the line of the call of
 * hs_inl_inner in hs_inl_outer; the caller of hs_inl_outer records lines[2] itself. */
static inline __attribute__((always_inline)) void *hs_inl_inner(int *lines)
{
    lines[0] = __LINE__ + 1;
    return hs_symtest_pc();
}

static inline __attribute__((always_inline)) void *hs_inl_outer(int *lines)
{
    lines[1] = __LINE__ + 1;
    void *p = hs_inl_inner(lines);
    return p;
}

#endif
