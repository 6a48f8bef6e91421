/*
 * folded.c - snapshots as folded stacks, the text format of flamegraph.pl (stackcollapse output),
 * inferno and speedscope.
 *
 * One line per distinct traceback, frames oldest first separated by ';', a space, and the live
 * bytes of every trace with that traceback:
 *
 *     main (prog.c:40);load (prog.c:12);xstrdup (util.c:7) 4096
 *
 * - A frame is `function (file:line)`, or `file:line` when its function is "" (unknown).  Every
 *   frame ends in ':<digits>' or ')', never in a space followed by digits, so the count column(s)
 *   at the end of a line cannot be mistaken for part of the stack.
 * - In names, ';' (the frame separator) becomes ',' and control characters (newline, tab, and the
 *   rest of 0x00-0x1F, 0x7F) become '?', so every line stays one parseable line.  Other bytes are
 *   copied as they are (UTF-8 or not).
 * - Tracebacks that are one statistic key (equal (filename, lineno) frame by frame, SPEC section
 *   7) are one line, their bytes summed; the function shown is that of the first traceback met.
 *   A traceback with no frame is shown as the single frame `<unknown>:0`.
 * - Lines are sorted by that key (SPEC section 3 key order: oldest frame first), so equal
 *   snapshots give equal files.  Tracebacks of 0 bytes (only malloc(0) blocks) are kept.
 *
 * With a base snapshot, the line is flamegraph.pl's differential form (as difffolded.pl writes
 * it): `stack <base bytes> <bytes>`.  flamegraph.pl then draws the widths of the second column
 * and colours frames by the difference (red grew, blue shrank); `flamegraph.pl --negate` draws the
 * base's widths instead.  The difference of a line is the second column minus the first.  Stacks
 * present on one side only have 0 in the other column; stacks 0 in both are left out.
 */
#include "export.h"
#include "../analysis/analysis.h"

#include <errno.h>
#include <stdlib.h>

static void put_name(FILE *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        unsigned char c = *p;
        if (c == ';')
            c = ',';
        else if (c < 0x20 || c == 0x7f)
            c = '?';
        putc(c, out);
    }
}

static void put_frame(FILE *out, const hs_frame *f)
{
    int named = f->function != NULL && f->function[0] != '\0';
    if (named) {
        put_name(out, f->function);
        fputs(" (", out);
    }
    put_name(out, f->filename != NULL ? f->filename : "<unknown>");
    fprintf(out, ":%u", f->lineno);
    if (named)
        putc(')', out);
}

static void put_stack(FILE *out, const hs_traceback *tb)
{
    const hs_frame *frames;
    size_t n = hs_key_frames(tb, &frames);
    for (size_t i = n; i-- > 0;) {
        put_frame(out, &frames[i]);
        if (i > 0)
            putc(';', out);
    }
}

static int by_key(const void *a, const void *b)
{
    const hs_statistic *x = *(const hs_statistic *const *)a, *y = *(const hs_statistic *const *)b;
    return hs_tb_key_cmp(x->traceback, y->traceback);
}

/* Reports the stream's state after writing: 0, or a negative errno. */
static int stream_result(FILE *out)
{
    errno = 0;
    if (fflush(out) != 0 || ferror(out))
        return errno > 0 ? -errno : -EIO;
    return 0;
}

hs_stats *hs_export_stats(const hs_snapshot *s, const hs_snapshot *base, int *err)
{
    hs_stats *st = base != NULL ? hs_snapshot_compare_to(s, base, HS_KEY_TRACEBACK, 0)
                                : hs_snapshot_statistics(s, HS_KEY_TRACEBACK, 0);
    if (st == NULL)
        *err = errno > 0 ? -errno : -ENOMEM;
    return st;
}

int hs_export_folded(const hs_snapshot *s, const hs_snapshot *base, FILE *out)
{
    if (s == NULL || out == NULL)
        return -EINVAL;
    int err;
    hs_stats *st = hs_export_stats(s, base, &err);
    if (st == NULL)
        return err;
    size_t n = hs_stats_count(st);
    const hs_statistic **order = NULL;
    if (n > 0 && (order = hs_malloc(n * sizeof(*order))) == NULL) {
        hs_stats_free(st);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = hs_stats_get(st, i);
    if (n > 1)
        qsort(order, n, sizeof(*order), by_key);

    for (size_t i = 0; i < n; i++) {
        const hs_statistic *x = order[i];
        if (base != NULL) {
            /* compare_to: size is the new side's, size_diff = size - old size. */
            unsigned long long now = x->size;
            unsigned long long old = now - (unsigned long long)x->size_diff;   /* mod 2^64: exact */
            if (now == 0 && old == 0)
                continue;
            put_stack(out, x->traceback);
            fprintf(out, " %llu %llu\n", old, now);
        } else {
            put_stack(out, x->traceback);
            fprintf(out, " %llu\n", (unsigned long long)x->size);
        }
    }
    hs_free(order);
    hs_stats_free(st);
    return stream_result(out);
}
