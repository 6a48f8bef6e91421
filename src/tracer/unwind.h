/*
 * unwind.h - the stack-capture seam: hs_unwind (unwind_cfi.c) walks the common frames itself and
 * hands the rest to hs_unwind_slow (unwind_libunwind.c).  Small enough to be replaced by a fake
 * in tests.
 */
#ifndef HS_UNWIND_H
#define HS_UNWIND_H

#include <stdint.h>

#include "../common/common.h"

/* Fills pcs with return addresses of the calling thread, most recent first, and returns how many
 * (0 when the stack cannot be read).  The walk begins with the return address of frame: the frame
 * address of a function built with frame pointers (its caller's saved frame pointer, then its
 * return address), further up this thread's stack; then up to max addresses are the program's.
 * Without frame, or when the walk cannot start there (libunwind's), it begins with the caller of
 * hs_unwind, and up to HS_UNWIND_OWN_FRAMES more addresses may be the tracer's own: pcs must have
 * room for max + HS_UNWIND_OWN_FRAMES.
 * pre: the reentrancy guard is held (the unwinder may allocate); no tracer lock is held (it calls
 * dl_iterate_phdr, which takes the loader lock). */
#define HS_UNWIND_OWN_FRAMES 8
typedef struct hs_walk_memo hs_walk_memo;
HS_HIDDEN int hs_unwind(uintptr_t *pcs, int max, const void *frame, hs_walk_memo *memo);

/* A thread's last walk, step by step, so that the next walk can replay the outer frames it shares
 * with it instead of stepping them (unwind_cfi.c).  Owned by one thread (tables.c keeps one per
 * thread, sized for the traceback limit, at most HS_MEMO_STEPS steps); n == 0 is empty.  A walk
 * of max addresses takes up to max + 1 steps, and uses no memo of fewer.  memo may be NULL. */
#define HS_MEMO_STEPS 128
typedef struct hs_walk_state { uintptr_t sp, bp, at; } hs_walk_state;  /* a frame, and its address */
typedef struct hs_walk_step {
    uintptr_t cfa;                           /* the return address was read at cfa - 8 */
    uintptr_t ra;
    uintptr_t bp_at;                         /* the caller's frame pointer was read there (0: not) */
    uintptr_t bp_val;                        /* the caller's frame pointer */
} hs_walk_step;
/* A step starts from the state that the step below it (the next inner one) leads to: {cfa,
 * bp_val, ra - 1}; the innermost step, from first. */
struct hs_walk_memo {
    uint64_t gen;                            /* of the frame rules the steps were taken with */
    int n;                                   /* steps, outermost first */
    int more;                                /* the walk stopped at its limit, not at its end */
    int cap;                                 /* steps that step and scratch hold */
    hs_walk_state first;                     /* the state step[n - 1] starts from */
    hs_walk_step *step;
    hs_walk_step *scratch;                   /* the steps of the walk in progress */
};

/* Once, before the first hs_unwind (guard held). */
HS_HIDDEN void hs_unwind_init(void);

/* libunwind, for the stacks hs_unwind cannot walk itself; same contract as hs_unwind. */
HS_HIDDEN int hs_unwind_slow(uintptr_t *pcs, int max);
HS_HIDDEN void hs_unwind_slow_init(void);
HS_HIDDEN void hs_unwind_slow_forget(void);  /* an object is unloaded: drop libunwind's rules */

/* An object is about to be unloaded: forget the frame rules read from it (another object may be
 * loaded at its addresses).  Any thread, any time. */
HS_HIDDEN void hs_unwind_forget(void);

#endif
