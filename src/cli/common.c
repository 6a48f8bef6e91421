/*
 * common.c - the heapsnap command's shared pieces: messages, loading snapshots and folders of
 * snapshots, progress on a terminal, and the analysis options of top, diff and leaks.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_quiet;

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("heapsnap: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void cli_note(const char *fmt, ...)
{
    if (cli_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("heapsnap: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_parse_long(const char *s, long lo, long hi, long *out)
{
    if (s == NULL || *s == '\0')
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

hs_snapshot *cli_load(const char *path)
{
    /* A large file takes a moment: say what is happening, on a terminal only. */
    struct stat st;
    int shown = !cli_quiet && isatty(2) && stat(path, &st) == 0 && st.st_size > (32 << 20);
    if (shown)
        fprintf(stderr, "loading %s (%lld MiB)...", path, (long long)(st.st_size >> 20));
    char err[1024];
    hs_snapshot *s = hs_snapshot_load(path, err, sizeof(err));
    if (shown)
        fputs("\r\033[K", stderr);
    if (s == NULL)
        cli_error("%s", err);
    return s;
}

/* ---- progress ----------------------------------------------------------------------------------- */

static int progress_shown;

void cli_progress(const char *label, size_t done, size_t total)
{
    if (cli_quiet || !isatty(2) || total < 4)
        return;
    fprintf(stderr, "\r%s %zu/%zu", label, done, total);
    progress_shown = 1;
}

void cli_progress_end(void)
{
    if (progress_shown)
        fputs("\r\033[K", stderr);
    progress_shown = 0;
}

/* ---- series of snapshots -------------------------------------------------------------------- */

typedef struct pathlist {
    char **v;
    size_t n, cap;
} pathlist;

static int push_path(pathlist *l, const char *p)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    if ((l->v[l->n] = strdup(p)) == NULL)
        return -1;
    l->n++;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Adds every *.hsnap under dir (a few levels deep: DIR/<pid>/ is the layout of `run`). */
static int walk(pathlist *l, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        cli_error("%s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;                        /* ., .., and temporary files of writers */
        char path[4096];
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
            continue;
        struct stat st;
        if (lstat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < 3)
            rc = walk(l, path, depth + 1);
        else if (S_ISREG(st.st_mode) && ends_with(e->d_name, ".hsnap"))
            rc = push_path(l, path);
    }
    closedir(d);
    return rc;
}

static int cmp_snap_time(const void *a, const void *b)
{
    const hs_snapshot *x = *(hs_snapshot *const *)a, *y = *(hs_snapshot *const *)b;
    const hs_snapshot_meta *mx = hs_snapshot_get_meta(x), *my = hs_snapshot_get_meta(y);
    if (mx->timestamp != my->timestamp)
        return mx->timestamp < my->timestamp ? -1 : 1;
    if (mx->elapsed != my->elapsed)
        return mx->elapsed < my->elapsed ? -1 : 1;
    return 0;
}

int cli_load_series(char **args, int nargs, cli_series **out, size_t *nseries)
{
    pathlist l = { 0 };
    int rc = 0;
    for (int i = 0; i < nargs && rc == 0; i++) {
        struct stat st;
        if (stat(args[i], &st) < 0) {
            cli_error("%s: %s", args[i], strerror(errno));
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            size_t before = l.n;
            rc = walk(&l, args[i], 0);
            if (rc == 0 && l.n == before) {
                cli_error("%s: no snapshots (*.hsnap) in this folder", args[i]);
                rc = -1;
            }
        } else {
            rc = push_path(&l, args[i]);
        }
    }
    cli_series *series = NULL;
    size_t ns = 0;
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        cli_progress("loading", i + 1, l.n);
        hs_snapshot *s = cli_load(l.v[i]);
        if (s == NULL) {
            rc = -1;
            break;
        }
        long long pid = hs_snapshot_get_meta(s)->pid;
        size_t k = 0;
        while (k < ns && series[k].pid != pid)
            k++;
        if (k == ns) {
            cli_series *t = realloc(series, (ns + 1) * sizeof(*t));
            if (t == NULL) {
                hs_snapshot_free(s);
                rc = -1;
                break;
            }
            series = t;
            series[ns++] = (cli_series){ .pid = pid };
        }
        cli_series *g = &series[k];
        hs_snapshot **v = realloc(g->snaps, (g->n + 1) * sizeof(*v));
        char **p = realloc(g->paths, (g->n + 1) * sizeof(*p));
        if (v != NULL)
            g->snaps = v;
        if (p != NULL)
            g->paths = p;
        if (v == NULL || p == NULL) {
            hs_snapshot_free(s);
            rc = -1;
            break;
        }
        g->snaps[g->n] = s;
        g->paths[g->n++] = l.v[i];
        l.v[i] = NULL;
    }
    cli_progress_end();
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    if (rc < 0) {
        cli_free_series(series, ns);
        return -1;
    }
    /* Time order within each process (paths follow their snapshots). */
    for (size_t k = 0; k < ns; k++) {
        cli_series *g = &series[k];
        for (size_t i = 1; i < g->n; i++) {
            for (size_t j = i; j > 0 && cmp_snap_time(&g->snaps[j - 1], &g->snaps[j]) > 0; j--) {
                hs_snapshot *ts = g->snaps[j];
                g->snaps[j] = g->snaps[j - 1];
                g->snaps[j - 1] = ts;
                char *tp = g->paths[j];
                g->paths[j] = g->paths[j - 1];
                g->paths[j - 1] = tp;
            }
        }
    }
    *out = series;
    *nseries = ns;
    return 0;
}

void cli_free_series(cli_series *s, size_t n)
{
    for (size_t k = 0; s != NULL && k < n; k++) {
        for (size_t i = 0; i < s[k].n; i++) {
            hs_snapshot_free(s[k].snaps[i]);
            free(s[k].paths[i]);
        }
        free(s[k].snaps);
        free(s[k].paths);
    }
    free(s);
}

/* ---- analysis options --------------------------------------------------------------------------- */

const char cli_grouping_help[] =
    "  --by filename|lineno|traceback   group by (default: lineno)\n"
    "  --cumulative          every frame of a traceback counts, not only the allocation site\n";

const char cli_analysis_help[] =
    "  -l, --limit N         print the N largest (default 10; 0: all)\n"
    "  --include PATTERN     keep traces whose allocation site's file matches (repeatable)\n"
    "  --exclude PATTERN     drop traces whose allocation site's file matches (repeatable)\n"
    "  --lineno N            patterns match only at line N\n"
    "  --all-frames          patterns match any frame, not only the allocation site\n"
    "  --domain D            keep only domain D (0: the malloc family)\n"
    "  --traceback-limit K   frames in a traceback listing (negative: drop the K most recent)\n"
    "  --json                machine-readable output (docs/JSON.md)\n";

static int add_filter(cli_analysis_opts *o, hs_filter f)
{
    hs_filter *v = realloc(o->filters, (o->nfilters + 1) * sizeof(*v));
    if (v == NULL)
        return -1;
    o->filters = v;
    o->filters[o->nfilters++] = f;
    return 0;
}

int cli_analysis_option(cli_analysis_opts *o, int c, const char *arg)
{
    long v;
    switch (c) {
    case OPT_BY:
        if (strcmp(arg, "filename") == 0)
            o->key = HS_KEY_FILENAME;
        else if (strcmp(arg, "lineno") == 0)
            o->key = HS_KEY_LINENO;
        else if (strcmp(arg, "traceback") == 0)
            o->key = HS_KEY_TRACEBACK;
        else {
            cli_error("--by %s: expected filename, lineno or traceback", arg);
            return -1;
        }
        o->key_given = 1;
        return 1;
    case OPT_CUMULATIVE:
        o->cumulative = 1;
        return 1;
    case 'l':
        if (cli_parse_long(arg, 0, 1L << 40, &v) < 0) {
            cli_error("--limit %s: expected a number, 0 or more", arg);
            return -1;
        }
        o->limit = v;
        return 1;
    case OPT_INCLUDE:
    case OPT_EXCLUDE:
        if (add_filter(o, (hs_filter){ .inclusive = c == OPT_INCLUDE, .filename_pattern = arg,
                                       .lineno = HS_ANY_LINE }) < 0)
            return -1;
        return 1;
    case OPT_LINENO:
        if (cli_parse_long(arg, 0, 1L << 30, &v) < 0) {
            cli_error("--lineno %s: expected a line number", arg);
            return -1;
        }
        o->lineno = (int)v;
        return 1;
    case OPT_ALL_FRAMES:
        o->all_frames = 1;
        return 1;
    case OPT_DOMAIN:
        if (cli_parse_long(arg, 0, 0xffffffffL, &v) < 0) {
            cli_error("--domain %s: expected a domain number", arg);
            return -1;
        }
        if (add_filter(o, (hs_filter){ .inclusive = 1, .lineno = HS_ANY_LINE, .has_domain = 1,
                                       .domain = (unsigned)v }) < 0)
            return -1;
        return 1;
    case OPT_TB_LIMIT:
        if (cli_parse_long(arg, -HS_MAX_FRAMES, HS_MAX_FRAMES, &v) < 0) {
            cli_error("--traceback-limit %s: expected a number from -%d to %d", arg,
                      HS_MAX_FRAMES, HS_MAX_FRAMES);
            return -1;
        }
        o->traceback_limit = (int)v;
        return 1;
    case OPT_JSON:
        o->json = 1;
        return 1;
    default:
        return 0;
    }
}

void cli_analysis_finish(cli_analysis_opts *o)
{
    for (size_t i = 0; i < o->nfilters; i++) {
        if (o->filters[i].filename_pattern == NULL)
            continue;
        o->filters[i].all_frames = o->all_frames;
        o->filters[i].lineno = o->lineno;
    }
}

void cli_analysis_free(cli_analysis_opts *o)
{
    free(o->filters);
    o->filters = NULL;
}

/* --domain keeps only the domains named, whatever the patterns say.  In one filter list an
 * inclusive DomainFilter would be or'ed with the --include patterns (SPEC section 5, as in
 * tracemalloc), so the domains go first, in a pass of their own, and the patterns then filter
 * what is left. */
hs_snapshot *cli_apply_filters(const cli_analysis_opts *o, const hs_snapshot *s)
{
    size_t n = o->nfilters, nd = 0;
    hs_filter *v = malloc((n + 1) * sizeof(*v));
    hs_snapshot *f = NULL;
    if (v == NULL) {
        errno = ENOMEM;
    } else {
        for (size_t i = 0; i < n; i++)
            if (o->filters[i].filename_pattern == NULL)
                v[nd++] = o->filters[i];
        for (size_t i = 0, w = nd; i < n; i++)
            if (o->filters[i].filename_pattern != NULL)
                v[w++] = o->filters[i];
        if (nd > 0 && nd < n) {
            hs_snapshot *d = hs_snapshot_filter_traces(s, v, nd);
            if (d != NULL) {
                f = hs_snapshot_filter_traces(d, v + nd, n - nd);
                int e = errno;
                hs_snapshot_free(d);
                errno = e;
            }
        } else {
            f = hs_snapshot_filter_traces(s, v, n);
        }
        free(v);
    }
    if (f == NULL)
        cli_error("filtering: %s", strerror(errno));
    return f;
}
