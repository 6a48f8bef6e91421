/*
 * api_basic.c - SPEC section 1 on a live process: the worked example, the lifecycle rules, the
 * malloc family's recorded sizes, realloc corner cases, tracking, and object tracebacks.
 */
#include <malloc.h>
#include <stdint.h>
#include <unistd.h>

#include "live.h"

static void expect_mem(size_t cur, size_t peak, int line)
{
    size_t c, p;
    hs_get_traced_memory(&c, &p);
    if (c != cur || p != peak) {
        fprintf(stderr, "api_basic.c:%d: traced memory (%zu, %zu), expected (%zu, %zu)\n", line,
                c, p, cur, peak);
        exit(1);
    }
}
#define EXPECT_MEM(c, p) expect_mem((c), (p), __LINE__)

static void check_site(const void *p, int line)
{
    hs_traceback *tb = hs_get_object_traceback(p);
    if (tb == NULL) {
        fprintf(stderr, "api_basic.c:%d: no traceback\n", line);
        exit(1);
    }
    CHECK_SITE(tb, "api_basic.c", line);
    hs_traceback_free(tb);
}

static void worked_example(void)
{
    CHECK_EQ(hs_start(1), 0);
    int l1 = __LINE__; char *p = malloc(100);
    EXPECT_MEM(100, 100);
    check_site(p, l1);
    int l2 = __LINE__; char *p2 = realloc(p, 300);
    EXPECT_MEM(300, 300);
    check_site(p2, l2);
    char *q = malloc(50);
    EXPECT_MEM(350, 350);
    free(p2);
    EXPECT_MEM(50, 350);
    hs_reset_peak();
    EXPECT_MEM(50, 50);
    free(q);
    EXPECT_MEM(0, 50);
    hs_stop();
}

static void lifecycle(void)
{
    CHECK_EQ(hs_get_traceback_limit(), 1);
    CHECK(hs_start(0) < 0);
    CHECK(hs_start(65536) < 0);
    CHECK(hs_start(-1) < 0);
    CHECK_EQ(hs_is_tracing(), 0);
    EXPECT_MEM(0, 0);
    CHECK_EQ(hs_get_tracer_memory(), 0);
    errno = 0;
    CHECK(hs_take_snapshot() == NULL);
    CHECK_EQ(errno, EINVAL);

    CHECK_EQ(hs_start(5), 0);
    CHECK_EQ(hs_start(3), 0);               /* already tracing: no change */
    CHECK_EQ(hs_get_traceback_limit(), 5);
    CHECK(hs_start(0) < 0);                 /* an error even while tracing */
    CHECK_EQ(hs_get_traceback_limit(), 5);
    char *a = malloc(10);
    EXPECT_MEM(10, 10);
    CHECK(hs_get_tracer_memory() > 0);      /* tables exist once something is traced */

    /* clear_traces: the block becomes unknown; its free is ignored. */
    hs_clear_traces();
    EXPECT_MEM(0, 0);
    CHECK(hs_get_object_traceback(a) == NULL);
    free(a);
    EXPECT_MEM(0, 0);

    /* stop drops everything; start again begins afresh. */
    char *b = malloc(20);
    hs_stop();
    CHECK_EQ(hs_is_tracing(), 0);
    EXPECT_MEM(0, 0);
    CHECK(hs_get_object_traceback(b) == NULL);
    hs_stop();                              /* no-op when off */
    CHECK_EQ(hs_start(2), 0);
    CHECK_EQ(hs_get_traceback_limit(), 2);
    EXPECT_MEM(0, 0);
    free(b);                                /* allocated before: ignored */
    EXPECT_MEM(0, 0);
    hs_stop();
    CHECK_EQ(hs_get_traceback_limit(), 2);  /* the n of the last successful start */
}

static volatile size_t huge = SIZE_MAX / 2;   /* volatile: the compiler must not see it */

static void family(void)
{
    CHECK_EQ(hs_start(1), 0);
    long ps = sysconf(_SC_PAGESIZE);
    void *m = malloc(0);
    EXPECT_MEM(0, 0);
    check_site(m, __LINE__ - 2);
    int lc = __LINE__; void *c = calloc(3, 7);
    EXPECT_MEM(21, 21);
    check_site(c, lc);
    errno = 0;
    CHECK(calloc(huge, 4) == NULL);  /* overflow: nothing recorded */
    EXPECT_MEM(21, 21);
    void *pm = NULL;
    CHECK_EQ(posix_memalign(&pm, 64, 100), 0);
    EXPECT_MEM(121, 121);
    CHECK(posix_memalign(&pm, 3, 100) != 0); /* bad alignment fails, nothing recorded */
    EXPECT_MEM(121, 121);
    void *aa = aligned_alloc(32, 64);
    void *ma = memalign(128, 10);
    void *va = valloc(5);
    /* pvalloc is recorded as the whole page it promises (valgrind refuses pvalloc itself). */
    void *pv = getenv("HS_NO_PVALLOC") ? valloc((size_t)ps) : pvalloc(5);
    EXPECT_MEM(121 + 64 + 10 + 5 + (size_t)ps, 121 + 64 + 10 + 5 + (size_t)ps);
    int lr = __LINE__; void *ra = reallocarray(NULL, 4, 5);
    check_site(ra, lr);
    size_t base = 121 + 64 + 10 + 5 + (size_t)ps;
    EXPECT_MEM(base + 20, base + 20);
    errno = 0;
    CHECK(reallocarray(ra, huge, 4) == NULL);  /* overflow: ra keeps its trace */
    CHECK_EQ(errno, ENOMEM);
    EXPECT_MEM(base + 20, base + 20);
    int lr2 = __LINE__; ra = reallocarray(ra, 2, 5);
    EXPECT_MEM(base + 10, base + 20);
    /* A failing realloc keeps the old trace. */
    CHECK(realloc(ra, (size_t)1 << 46) == NULL);   /* 64 TiB: refused */
    EXPECT_MEM(base + 10, base + 20);
    check_site(ra, lr2);
    /* realloc(p, 0): glibc frees p and returns NULL; the trace goes. */
    CHECK(realloc(ra, 0) == NULL);
    EXPECT_MEM(base, base + 20);
    free(NULL);
    EXPECT_MEM(base, base + 20);
    free(m), free(c), free(pm), free(aa), free(ma), free(va), free(pv);
    EXPECT_MEM(0, base + 20);
    hs_stop();
}

/* SPEC section 1, track: replacing counts once; untrack leaves peak; not tracing is distinct. */
static void tracking(void)
{
    CHECK_EQ(hs_track(5, 0x1000, 10), HS_ENOTTRACING);
    CHECK_EQ(hs_untrack(5, 0x1000), HS_ENOTTRACING);
    CHECK(HS_ENOTTRACING < 0 && HS_ENOTTRACING < -4095);
    CHECK_EQ(hs_start(1), 0);
    CHECK_EQ(hs_track(5, 0x1000, 10), 0);
    EXPECT_MEM(10, 10);
    CHECK_EQ(hs_track(5, 0x1000, 30), 0);   /* same (dom, ptr): replaced */
    EXPECT_MEM(30, 30);
    CHECK_EQ(hs_track(6, 0x1000, 5), 0);    /* another domain: another block */
    CHECK_EQ(hs_track(0, 0, 7), 0);         /* address 0 of domain 0 is a valid key too */
    EXPECT_MEM(42, 42);
    CHECK_EQ(hs_untrack(5, 0x1000), 0);
    EXPECT_MEM(12, 42);
    CHECK_EQ(hs_untrack(5, 0x1000), 0);     /* nothing tracked: still success */
    CHECK_EQ(hs_untrack(9, 0x2000), 0);
    EXPECT_MEM(12, 42);
    hs_snapshot *s = hs_take_snapshot();
    CHECK(s != NULL);
    CHECK_EQ(hs_snapshot_count(s), 2);
    int seen6 = 0;
    for (size_t i = 0; i < hs_snapshot_count(s); i++) {
        unsigned dom;
        size_t size;
        const hs_traceback *tb;
        CHECK_EQ(hs_snapshot_get(s, i, &dom, &size, &tb), 0);
        if (dom == 6) {
            seen6 = 1;
            CHECK_EQ(size, 5);
            CHECK_STR(live_base(tb->frames[0].filename), "api_basic.c");
        }
    }
    CHECK(seen6);
    hs_snapshot_free(s);
    hs_stop();
}

static void snapshot_contents(void)
{
    CHECK_EQ(hs_start(3), 0);
    int l = __LINE__; void *blocks[10];
    for (int i = 0; i < 10; i++)
        blocks[i] = malloc(100 + (size_t)i);   /* line l + 2 */
    hs_snapshot *s = hs_take_snapshot();
    CHECK(s != NULL);
    CHECK_EQ(hs_snapshot_traceback_limit(s), 3);
    size_t total = 0, mine = 0;
    for (size_t i = 0; i < hs_snapshot_count(s); i++) {
        unsigned dom;
        size_t size;
        const hs_traceback *tb;
        hs_snapshot_get(s, i, &dom, &size, &tb);
        total += size;
        if (tb->nframes > 0 && strcmp(live_base(tb->frames[0].filename), "api_basic.c") == 0 &&
            tb->frames[0].lineno == (unsigned)l + 2) {
            mine++;
            CHECK(tb->nframes <= 3);
            CHECK(tb->total_nframe >= tb->nframes);
            CHECK_STR(tb->frames[0].function, "snapshot_contents");
        }
    }
    CHECK_EQ(mine, 10);
    const hs_snapshot_meta *m = hs_snapshot_get_meta(s);
    CHECK_EQ(m->traced_current, total);
    CHECK_EQ(m->pid, getpid());
    CHECK_STR(m->kind, "api");
    CHECK(m->argc >= 1);
    CHECK_STR(live_base(m->argv[0]), "api_basic");
    CHECK_STR(live_base(m->program), "api_basic");
    /* The snapshot is the tracer's own memory: freeing it changes nothing traced. */
    size_t c0, p0, c1, p1;
    hs_get_traced_memory(&c0, &p0);
    hs_snapshot_free(s);
    hs_get_traced_memory(&c1, &p1);
    CHECK_EQ(c0, c1);
    CHECK_EQ(p0, p1);
    for (int i = 0; i < 10; i++)
        free(blocks[i]);
    hs_stop();
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    setvbuf(stderr, NULL, _IONBF, 0);
    lifecycle();
    worked_example();
    family();
    tracking();
    snapshot_contents();
    printf("api_basic: ok\n");
    return 0;
}
