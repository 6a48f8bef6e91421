/*
 * unwind.h - the stack-capture seam.  One implementation per file, chosen at build time
 * (unwind_libunwind.c today; a frame-pointer unwinder can sit beside it), and small enough to be
 * replaced by a fake in tests.
 */
#ifndef HS_UNWIND_H
#define HS_UNWIND_H

#include <stdint.h>

#include "../common/common.h"

/* Fills pcs[0..max) with return addresses of the calling thread, most recent first, beginning
 * with the caller of hs_unwind.  Returns how many (0 when the stack cannot be read).
 * pre: the reentrancy guard is held (the unwinder may allocate); no tracer lock is held (it calls
 * dl_iterate_phdr, which takes the loader lock). */
HS_HIDDEN int hs_unwind(uintptr_t *pcs, int max);

/* Once, before the first hs_unwind (guard held). */
HS_HIDDEN void hs_unwind_init(void);

#endif
