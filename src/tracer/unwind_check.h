/*
 * unwind_check.h - a test build's cross-check of the fast unwinder (unwind_cfi.c): every stack it
 * walks is walked again by libunwind, and the two must name the same frames (apart from those of
 * libheapsnap and libunwind themselves).  Built only with -DHS_UNWIND_CHECK (tests/test_unwind.py).
 * Differences and a summary at exit go to the file HS_UNWIND_CHECK_LOG names (appended to: many
 * programs close their stderr before exit), or to stderr.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

static FILE *check_out(void)
{
    static FILE *f;
    if (f == NULL) {
        const char *path = getenv("HS_UNWIND_CHECK_LOG");
        int fd = path ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : -1;
        f = fd >= 0 ? fdopen(fd, "a") : stderr;
        if (f == NULL)
            f = stderr;
        setvbuf(f, NULL, _IONBF, 0);
    }
    return f;
}

static _Atomic unsigned long check_stacks, check_differ, check_slow;
static _Atomic unsigned long check_replays, check_replayed, check_resumed;   /* the walk memo */
#include <link.h>

static int check_foreign(uintptr_t pc)
{
    struct dl_find_object fo, self;
    if (find_object((void *)pc, &fo) != 0 || find_object((void *)&hs_unwind, &self) != 0)
        return 1;
    if (fo.dlfo_link_map == self.dlfo_link_map)
        return 0;
    const char *name = fo.dlfo_link_map->l_name;
    return name == NULL || strstr(name, "libunwind") == NULL;
}

static int check_keep(const uintptr_t *in, int n, uintptr_t *out)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (check_foreign(in[i]))
            out[k++] = in[i];
    return k;
}

static void check_print(const char *who, const uintptr_t *pcs, int n)
{
    for (int i = 0; i < n; i++) {
        Dl_info info;
        const char *f = "?", *s = "?";
        if (dladdr((void *)pcs[i], &info) != 0) {
            f = info.dli_fname ? info.dli_fname : "?";
            s = info.dli_sname ? info.dli_sname : "?";
        }
        fprintf(check_out(), "  %s #%d %#lx %s %s\n", who, i, (unsigned long)pcs[i], f, s);
    }
}

/* Both lists are cut at max before the tracer's and libunwind's frames are dropped: compare the
 * shorter, and the lengths only when neither was cut. */
static int check_same(const uintptr_t *a, int na, int n, int max, const uintptr_t *b, int nb, int m,
                      int ref_max)
{
    int k = na < nb ? na : nb;
    for (int i = 0; i < k; i++)
        if (a[i] != b[i])
            return 0;
    return !(n < max && m < ref_max && na != nb);
}

static void unwind_check(const uintptr_t *pcs, int n, int max)
{
    uintptr_t ref[512], a[512], b[512];
    if (max > 512 - HS_UNWIND_OWN_FRAMES)
        max = 512 - HS_UNWIND_OWN_FRAMES;
    int ref_max = max + HS_UNWIND_OWN_FRAMES;   /* libunwind walks the tracer's frames too */
    hs_loader_use_begin();
    int m = hs_unwind_slow(ref, ref_max);
    hs_loader_use_end();
    int na = check_keep(pcs, n < max ? n : max, a), nb = check_keep(ref, m, b);
    atomic_fetch_add(&check_stacks, 1);
    int same = check_same(a, na, n, max, b, nb, m, ref_max);
    if (!same && atomic_fetch_add(&check_differ, 1) < 5) {
        fprintf(check_out(), "heapsnap unwind check: stacks differ (pid %d)\n", (int)getpid());
        check_print("cfi", a, na);
        check_print("libunwind", b, nb);
    }
}

__attribute__((destructor)) static void unwind_check_report(void)
{
    fprintf(check_out(),
            "heapsnap unwind check: %lu stacks, %lu differ, %lu left to libunwind; "
            "memo: %lu replays, %lu frames replayed, %lu walks stepped on after a replay\n",
            (unsigned long)check_stacks, (unsigned long)check_differ, (unsigned long)check_slow,
            (unsigned long)check_replays, (unsigned long)check_replayed,
            (unsigned long)check_resumed);
}
