/*
 * unwind_libunwind.c - stack capture with libunwind's fast path: unw_backtrace walks the stack
 * with a per-thread cache of frame layouts, so a repeated call site costs a few loads per frame.
 * The slow path (full DWARF interpretation) is libunwind's own fallback.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "unwind.h"

void hs_unwind_init(void)
{
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
}

__attribute__((noinline)) int hs_unwind(uintptr_t *pcs, int max)
{
    if (max <= 0)
        return 0;
    int n = unw_backtrace((void **)pcs, max);
    return n < 0 ? 0 : n;
}
