/*
 * format.c - the text of SPEC section 2, to the character: sizes (fmt(x, sign)), statistic and
 * statistic-diff lines, and traceback listings with source lines.
 *
 * Every function here returns the length of the whole text as snprintf does and writes at most
 * len bytes, always NUL-terminated when len > 0, so a caller can measure with (NULL, 0) first.
 */
#include "analysis.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>

int hs_format_size(char *buf, size_t len, double size, int sign)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    if (size == 0)
        size = 0;          /* -0.0 is 0: fmt(0, sign) is "+0 B" */
    for (size_t u = 0;; u++) {
        double a = size < 0 ? -size : size;
        if (u > 0 && a < 100)
            return sign ? snprintf(buf, len, "%+.1f %s", size, units[u])
                        : snprintf(buf, len, "%.1f %s", size, units[u]);
        if (a < 10 * 1024 || u == HS_ARRAY_LEN(units) - 1)
            return sign ? snprintf(buf, len, "%+.0f %s", size, units[u])
                        : snprintf(buf, len, "%.0f %s", size, units[u]);
        size /= 1024;
    }
}

/* The statistic's key as printed: the allocation site of its traceback (SPEC section 2: also for
 * traceback keys, unlike tracemalloc, which prints the oldest frame). */
static const hs_frame *key_frame(const hs_traceback *tb)
{
    return tb->nframes > 0 ? &tb->frames[0] : &hs_unknown_frame;
}

int hs_stats_format(const hs_stats *st, size_t i, char *buf, size_t len)
{
    if (st == NULL || i >= st->n) {
        if (buf != NULL && len > 0)
            buf[0] = '\0';
        return -EINVAL;
    }
    const hs_statistic *s = &st->items[i];
    const hs_frame *f = key_frame(s->traceback);
    char size[64], diff[64], avg[80] = "";
    hs_format_size(size, sizeof(size), (double)s->size, 0);
    if (s->count != 0) {
        char a[64];
        hs_format_size(a, sizeof(a), (double)s->size / (double)s->count, 0);
        snprintf(avg, sizeof(avg), ", average=%s", a);
    }
    if (!st->diff)
        return snprintf(buf, len, "%s:%u: size=%s, count=%zu%s", f->filename, f->lineno, size,
                        s->count, avg);
    hs_format_size(diff, sizeof(diff), (double)s->size_diff, 1);
    return snprintf(buf, len, "%s:%u: size=%s (%s), count=%zu (%+lld)%s", f->filename, f->lineno,
                    size, diff, s->count, s->count_diff, avg);
}

/* ---- traceback listings ---------------------------------------------------------------------- */

typedef struct out {
    char *buf;
    size_t len;     /* capacity, NUL included */
    size_t pos;     /* length of the whole text so far, also past the capacity */
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->len > 0 && o->pos < o->len - 1) {
        size_t room = o->len - 1 - o->pos;
        memcpy(o->buf + o->pos, s, n < room ? n : room);
    }
    o->pos += n;
}

static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

int hs_traceback_format(const hs_traceback *tb, int limit, int most_recent_first, char *buf,
                        size_t len)
{
    if (tb == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    /* frames[0] is the most recent.  Select frames[lo, hi): a positive limit keeps the `limit`
     * most recent, a negative one drops the |limit| most recent, 0 keeps none. */
    size_t n = tb->nframes, lo = 0, hi = n;
    if (limit > 0)
        hi = (size_t)limit < n ? (size_t)limit : n;
    else if (limit == 0)
        hi = 0;
    else if (limit != HS_ALL_FRAMES)   /* INT_MIN itself cannot be negated */
        lo = (size_t)-limit < n ? (size_t)-limit : n;

    out o = { .buf = buf, .len = len, .pos = 0 };
    hs_linecache_lock();
    for (size_t k = 0; lo + k < hi; k++) {
        /* Oldest first by default: from frames[hi - 1] down to frames[lo]. */
        const hs_frame *f = &tb->frames[most_recent_first ? lo + k : hi - 1 - k];
        char num[32];
        puts_(&o, "  File \"");
        puts_(&o, f->filename);
        snprintf(num, sizeof(num), "\", line %u\n", f->lineno);
        puts_(&o, num);
        size_t n_line;
        const char *line = hs_linecache_getline_unlocked(f->filename, f->lineno, &n_line);
        if (n_line > 0) {
            puts_(&o, "    ");
            put(&o, line, n_line);
            puts_(&o, "\n");
        }
    }
    hs_linecache_unlock();
    if (len > 0)
        buf[o.pos < len - 1 ? o.pos : len - 1] = '\0';
    return o.pos > INT_MAX ? -EOVERFLOW : (int)o.pos;
}
