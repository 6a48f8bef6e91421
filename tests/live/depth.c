/*
 * depth.c - traceback limits on a deep recursion: limit 1 keeps the allocation site, limit 10
 * keeps ten frames, and total_nframe counts the whole walked stack in both.
 */
#include "live.h"

static int alloc_line, recursion_line;

__attribute__((noinline)) static void *recurse(int n)
{
    if (n == 0) {
        alloc_line = __LINE__ + 1;
        return malloc(77);
    }
    recursion_line = __LINE__ + 1;
    void *p = recurse(n - 1);
    __asm__ volatile("" ::: "memory");   /* no tail call */
    return p;
}

static hs_traceback *traced_block(int limit, void **block)
{
    CHECK_EQ(hs_start(limit), 0);
    *block = recurse(20);
    hs_traceback *tb = hs_get_object_traceback(*block);
    CHECK(tb != NULL);
    return tb;
}

int main(void)
{
    void *b1, *b10;
    hs_traceback *t1 = traced_block(1, &b1);
    CHECK_EQ(t1->nframes, 1);
    CHECK_SITE(t1, "depth.c", alloc_line);
    CHECK(t1->total_nframe >= 22);          /* 21 recurse frames, main, and libc's start */
    hs_stop();

    hs_traceback *t10 = traced_block(10, &b10);
    CHECK_EQ(t10->nframes, 10);
    CHECK_SITE(t10, "depth.c", alloc_line);
    for (int i = 1; i < 10; i++) {
        CHECK_STR(live_base(t10->frames[i].filename), "depth.c");
        CHECK_EQ(t10->frames[i].lineno, recursion_line);
        CHECK_STR(t10->frames[i].function, "recurse");
    }
    CHECK_EQ(t10->total_nframe, t1->total_nframe);

    /* Past the capture depth (limit + 32) total_nframe is capped there. */
    hs_stop();
    CHECK_EQ(hs_start(1), 0);
    void *deep = recurse(200);
    hs_traceback *td = hs_get_object_traceback(deep);
    CHECK(td != NULL);
    CHECK_EQ(td->nframes, 1);
    CHECK(td->total_nframe >= 28 && td->total_nframe <= 33);
    hs_traceback_free(td);
    hs_traceback_free(t1);
    hs_traceback_free(t10);
    free(b1), free(b10), free(deep);
    hs_stop();
    printf("depth: ok\n");
    return 0;
}
