/*
 * unwind_libunwind.c - the general path of stack capture, for the stacks the fast unwinder
 * (unwind_cfi.c) leaves: unw_backtrace walks the stack with a per-thread cache of frame layouts
 * and falls back to full DWARF interpretation (signal frames, CFA expressions) itself.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "unwind.h"

void hs_unwind_slow_init(void)
{
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
}

__attribute__((noinline)) int hs_unwind_slow(uintptr_t *pcs, int max)
{
    if (max <= 0)
        return 0;
    int n = unw_backtrace((void **)pcs, max);
    return n < 0 ? 0 : n;
}

#ifdef HS_UNWIND_CHECK
/* The check build's third opinion, when its second (unw_backtrace) differs: libunwind's per-thread
 * frame cache (unw_backtrace's) keeps the layouts of an unloaded object's frames and stops early in
 * the object loaded at its addresses next; unw_flush_cache does not reach it.  This walks with
 * unw_step after a flush instead. */
__attribute__((noinline)) int hs_unwind_slow_fresh(uintptr_t *pcs, int max)
{
    unw_flush_cache(unw_local_addr_space, 0, 0);
    unw_context_t uc;
    unw_cursor_t cur;
    if (unw_getcontext(&uc) < 0 || unw_init_local(&cur, &uc) < 0)
        return 0;
    int n = 0;
    while (n < max && unw_step(&cur) > 0) {
        unw_word_t ip;
        if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0)
            break;
        pcs[n++] = (uintptr_t)ip;
    }
    return n;
}
#endif
