/*
 * cmd_timeline.c - `heapsnap timeline DIR`: the traced memory and RSS recorded every ~100 ms, as
 * a table, and the gap between them (what the tracer does not see: mmap'd memory, allocator
 * fragmentation and metadata, stacks, code, and the tracer itself).
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct row {
    double t;
    size_t cur, peak, rss;
} row;

static void fmt(size_t v, char *buf, size_t len) { hs_format_size(buf, len, (double)v, 0); }

static int show(const char *path, long rows_wanted)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        cli_error("%s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    row *v = NULL;
    size_t n = 0, cap = 0;
    char line[512];
    int lineno = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (lineno == 1 && strncmp(line, "t_seconds", 9) == 0)
            continue;
        row r;
        if (sscanf(line, "%lf\t%zu\t%zu\t%zu", &r.t, &r.cur, &r.peak, &r.rss) != 4) {
            if (strchr(line, '\n') == NULL && feof(f))
                break;                       /* a line being written: stop before it */
            cli_error("%s:%d: not a timeline line", path, lineno);
            fclose(f);
            free(v);
            return EXIT_USAGE;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            row *t = realloc(v, cap * sizeof(*t));
            if (t == NULL) {
                fclose(f);
                free(v);
                return EXIT_USAGE;
            }
            v = t;
        }
        v[n++] = r;
    }
    fclose(f);
    if (n == 0) {
        cli_error("%s: no samples yet", path);
        free(v);
        return EXIT_USAGE;
    }
    printf("%s\n%10s  %12s  %12s  %12s  %12s\n", path, "t (s)", "traced", "peak", "rss",
           "rss - traced");
    size_t step = rows_wanted > 0 && n > (size_t)rows_wanted ? (n + (size_t)rows_wanted - 1) / (size_t)rows_wanted : 1;
    size_t max_gap = 0, max_rss = 0;
    double gap_sum = 0;
    for (size_t i = 0; i < n; i++) {
        size_t gap = v[i].rss > v[i].cur ? v[i].rss - v[i].cur : 0;
        gap_sum += (double)gap;
        if (gap > max_gap)
            max_gap = gap;
        if (v[i].rss > max_rss)
            max_rss = v[i].rss;
        if (i % step != 0 && i != n - 1)
            continue;
        char a[32], b[32], c[32], d[32];
        fmt(v[i].cur, a, sizeof(a));
        fmt(v[i].peak, b, sizeof(b));
        fmt(v[i].rss, c, sizeof(c));
        fmt(gap, d, sizeof(d));
        printf("%10.1f  %12s  %12s  %12s  %12s\n", v[i].t, a, b, c, d);
    }
    char a[32], b[32], c[32];
    fmt(v[n - 1].rss > v[n - 1].cur ? v[n - 1].rss - v[n - 1].cur : 0, a, sizeof(a));
    fmt((size_t)(gap_sum / (double)n), b, sizeof(b));
    fmt(max_gap, c, sizeof(c));
    printf("\n%zu samples over %.1f s.  RSS minus traced memory: %s at the end, %s on average, "
           "%s at most.\n", n, v[n - 1].t - v[0].t, a, b, c);
    printf("The gap is memory the tracer does not count as live blocks: code and stacks,\n"
           "mmap'd regions, the allocator's free lists, fragmentation and metadata, and the\n"
           "tracer's own tables.  A gap that grows while traced memory stays flat points at\n"
           "fragmentation or at memory that does not come from malloc.\n");
    free(v);
    return EXIT_OK;
}

int cli_parse_timeline(int argc, char **argv, cli_timeline_args *a)
{
    static const struct option longopts[] = { { "help", no_argument, NULL, 'h' },
                                              { "rows", required_argument, NULL, 'r' },
                                              { NULL, 0, NULL, 0 } };
    a->rows = 40;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "hr:", longopts, NULL)) != -1) {
        if (c == 'r' && cli_parse_long(optarg, 0, 1L << 30, &a->rows) == 0)
            continue;
        FILE *f = c == 'h' ? stdout : stderr;
        fprintf(f, "usage: heapsnap timeline [--rows N] DIR|DIR/PID|timeline.tsv\n"
                   "Traced memory and RSS over time (every ~100 ms), N rows at most\n"
                   "(default 40, 0: all), and the gap between RSS and traced memory.\n");
        return c == 'h' ? EXIT_OK : EXIT_USAGE;
    }
    if (optind != argc - 1) {
        cli_error("timeline: expected one folder or timeline.tsv");
        return EXIT_USAGE;
    }
    a->path = argv[optind];
    return CLI_PROCEED;
}

int cmd_timeline(int argc, char **argv)
{
    cli_timeline_args a;
    int prc = cli_parse_timeline(argc, argv, &a);
    if (prc != CLI_PROCEED)
        return prc;
    const char *arg = a.path;
    long rows = a.rows;
    struct stat st;
    if (stat(arg, &st) < 0) {
        cli_error("%s: %s", arg, strerror(errno));
        return EXIT_USAGE;
    }
    if (!S_ISDIR(st.st_mode))
        return show(arg, rows);
    char path[4200];
    snprintf(path, sizeof(path), "%s/timeline.tsv", arg);
    if (stat(path, &st) == 0)
        return show(path, rows);
    /* A run folder: one timeline per process. */
    DIR *d = opendir(arg);
    if (d == NULL) {
        cli_error("%s: %s", arg, strerror(errno));
        return EXIT_USAGE;
    }
    int found = 0, rc = EXIT_OK;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.' ||
            snprintf(path, sizeof(path), "%s/%s/timeline.tsv", arg, e->d_name) >= (int)sizeof(path) ||
            stat(path, &st) < 0)
            continue;
        if (found++)
            putchar('\n');
        if (show(path, rows) != EXIT_OK)
            rc = EXIT_USAGE;
    }
    closedir(d);
    if (!found) {
        cli_error("%s: no timeline.tsv in this folder or its process folders", arg);
        return EXIT_USAGE;
    }
    return rc;
}
