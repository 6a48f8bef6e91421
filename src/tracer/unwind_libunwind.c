/*
 * unwind_libunwind.c - the general path of stack capture, for the stacks the fast unwinder
 * (unwind_cfi.c) leaves (signal frames, CFA expressions, code without unwind information):
 * libunwind's unw_step, which interprets any DWARF rule.
 *
 * Not unw_backtrace: its per-thread cache of frame layouts (the x86-64 "trace" cache) outlives
 * dlclose, and unw_flush_cache does not reach it.  With a library loaded where another was
 * unloaded, it stepped with the old library's frame sizes: stacks stopped early, and with a frame
 * size far off it read past the top of the stack and crashed the program (tests/progs/dlswap,
 * 7 of 150 runs).  unw_step's own cache of DWARF rules is flushed at every dlclose
 * (hs_unwind_slow_forget).
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "unwind.h"

void hs_unwind_slow_init(void)
{
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
}

void hs_unwind_slow_forget(void)
{
    unw_flush_cache(unw_local_addr_space, 0, 0);
}

__attribute__((noinline)) int hs_unwind_slow(uintptr_t *pcs, int max)
{
    unw_context_t uc;
    unw_cursor_t cur;
    if (max <= 0 || unw_getcontext(&uc) < 0 || unw_init_local(&cur, &uc) < 0)
        return 0;
    int n = 0;
    while (n < max && unw_step(&cur) > 0) {
        unw_word_t ip;
        if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        pcs[n++] = (uintptr_t)ip;
    }
    return n;
}
