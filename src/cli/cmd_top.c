/*
 * cmd_top.c - `heapsnap top SNAPSHOT` and `heapsnap diff OLD NEW`: tracemalloc's statistics and
 * compare_to on snapshot files, as SPEC section 2 lines or as JSON.
 */
#include "cli.h"
#include "../output/export.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *key_name(hs_key_type k)
{
    return k == HS_KEY_FILENAME ? "filename" : k == HS_KEY_TRACEBACK ? "traceback" : "lineno";
}

static void format_time(double ts, char *buf, size_t len)
{
    time_t t = (time_t)ts;
    struct tm tm;
    if (ts <= 0 || gmtime_r(&t, &tm) == NULL)
        snprintf(buf, len, "unknown time");
    else
        strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* "path: pid 42, 2026-11-24 10:00:00 UTC (+12.3 s), 1.2 MiB in 345 blocks" */
static void describe(const char *path, const hs_snapshot *s, char *buf, size_t len)
{
    const hs_snapshot_meta *m = hs_snapshot_get_meta(s);
    char when[64], size[32];
    size_t total, count;
    hs_snapshot_totals(s, &total, &count);
    format_time(m->timestamp, when, sizeof(when));
    hs_format_size(size, sizeof(size), (double)total, 0);
    snprintf(buf, len, "%s: pid %lld, %s (+%.1f s), %s in %zu blocks", path, m->pid, when,
             m->elapsed, size, count);
}

static void print_stats(const cli_analysis_opts *o, const hs_stats *st)
{
    size_t n = hs_stats_count(st);
    if (o->limit > 0 && (size_t)o->limit < n)
        n = (size_t)o->limit;
    char line[8192];
    size_t tbcap = 1 << 16;
    char *tb = malloc(tbcap);
    for (size_t i = 0; i < n; i++) {
        int len = hs_stats_format(st, i, line, sizeof(line));
        fwrite(line, 1, len < (int)sizeof(line) ? (size_t)len : sizeof(line) - 1, stdout);
        fputc('\n', stdout);
        if (o->key == HS_KEY_TRACEBACK && tb != NULL) {
            const hs_traceback *t = hs_stats_get(st, i)->traceback;
            int need = hs_traceback_format(t, o->traceback_limit, 0, tb, tbcap);
            if (need >= (int)tbcap) {
                char *bigger = realloc(tb, (size_t)need + 1);
                if (bigger != NULL) {
                    tb = bigger;
                    tbcap = (size_t)need + 1;
                    hs_traceback_format(t, o->traceback_limit, 0, tb, tbcap);
                }
            }
            fputs(tb, stdout);
        }
    }
    free(tb);
}

static void print_json(const cli_analysis_opts *o, const hs_stats *st)
{
    hs_json j;
    hs_json_init(&j, stdout, 0);
    hs_json_begin_object(&j);
    hs_json_key(&j, "version");
    hs_json_int(&j, 1);
    hs_json_key(&j, "key");
    hs_json_string(&j, key_name(o->key));
    hs_json_key(&j, "cumulative");
    hs_json_bool(&j, o->cumulative);
    hs_json_key(&j, "statistics");
    hs_json_begin_array(&j);
    size_t n = hs_stats_count(st);
    if (o->limit > 0 && (size_t)o->limit < n)
        n = (size_t)o->limit;
    for (size_t i = 0; i < n; i++) {
        const hs_statistic *s = hs_stats_get(st, i);
        hs_json_begin_object(&j);
        hs_json_key(&j, "size");
        hs_json_uint(&j, s->size);
        hs_json_key(&j, "count");
        hs_json_uint(&j, s->count);
        hs_json_key(&j, "size_diff");
        hs_json_int(&j, s->size_diff);
        hs_json_key(&j, "count_diff");
        hs_json_int(&j, s->count_diff);
        hs_json_key(&j, "traceback");
        hs_json_traceback(&j, s->traceback);
        hs_json_end_object(&j);
    }
    hs_json_end_array(&j);
    hs_json_end_object(&j);                  /* which ends the line */
}

static int usage(const char *cmd, int status)
{
    FILE *f = status ? stderr : stdout;
    if (strcmp(cmd, "top") == 0)
        fprintf(f, "usage: heapsnap top [options] SNAPSHOT\n"
                   "Where the live memory of a snapshot was allocated, largest first.\n\n");
    else
        fprintf(f, "usage: heapsnap diff [options] OLD NEW\n"
                   "What changed from OLD to NEW, largest change first.\n\n");
    fprintf(f, "Options:\n%s%s  -h, --help            this help\n", cli_grouping_help,
            cli_analysis_help);
    return status;
}

int cli_parse_top(int argc, char **argv, int diff, cli_top_args *a)
{
    const char *cmd = diff ? "diff" : "top";
    static const struct option longopts[] = {
        CLI_ANALYSIS_LONGOPTS,
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    *a = (cli_top_args){ .o = { .key = HS_KEY_LINENO, .limit = 10,
                                .traceback_limit = HS_ALL_FRAMES, .lineno = HS_ANY_LINE } };
    cli_analysis_opts *o = &a->o;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "l:h", longopts, NULL)) != -1) {
        if (c == 'h') {
            cli_analysis_free(o);
            return usage(cmd, EXIT_OK);
        }
        int r = cli_analysis_option(o, c, optarg);
        if (r <= 0) {
            cli_analysis_free(o);
            return r < 0 ? EXIT_USAGE : usage(cmd, EXIT_USAGE);
        }
    }
    cli_analysis_finish(o);
    int want = diff ? 2 : 1;
    if (argc - optind != want) {
        cli_error("%s: expected %s", cmd, diff ? "two snapshots, OLD and NEW" : "one snapshot");
        cli_analysis_free(o);
        return usage(cmd, EXIT_USAGE);
    }
    if (o->cumulative && o->key == HS_KEY_TRACEBACK) {
        cli_error("%s: --cumulative does not go with --by traceback", cmd);
        cli_analysis_free(o);
        return EXIT_USAGE;
    }
    a->paths = argv + optind;
    a->npaths = want;
    return CLI_PROCEED;
}

static int top_or_diff(int argc, char **argv, int diff)
{
    const char *cmd = diff ? "diff" : "top";
    cli_top_args a;
    int rc = cli_parse_top(argc, argv, diff, &a);
    if (rc != CLI_PROCEED)
        return rc;
    const cli_analysis_opts *o = &a.o;
    int want = a.npaths;
    rc = EXIT_USAGE;
    hs_snapshot *raw[2] = { NULL, NULL }, *f[2] = { NULL, NULL };
    hs_stats *st = NULL;
    for (int i = 0; i < want; i++) {
        if ((raw[i] = cli_load(a.paths[i])) == NULL ||
            (f[i] = cli_apply_filters(o, raw[i])) == NULL)
            goto out;
    }
    if (diff) {                              /* what users get wrong: say it, compare anyway */
        const hs_snapshot_meta *m0 = hs_snapshot_get_meta(raw[0]), *m1 = hs_snapshot_get_meta(raw[1]);
        if (m0->pid != 0 && m1->pid != 0 && m0->pid != m1->pid)
            cli_note("diff: OLD is of process %lld and NEW of process %lld: the difference "
                     "between two processes, not growth", m0->pid, m1->pid);
        else if (m0->timestamp > 0 && m1->timestamp > 0 && m1->timestamp < m0->timestamp)
            cli_note("diff: NEW was taken %.1f s before OLD: growth shows as negative",
                     m0->timestamp - m1->timestamp);
    }
    st = diff ? hs_snapshot_compare_to(f[1], f[0], o->key, o->cumulative)
              : hs_snapshot_statistics(f[0], o->key, o->cumulative);
    if (st == NULL) {
        cli_error("%s: %s", cmd, strerror(errno));
        goto out;
    }
    if (o->json) {
        print_json(o, st);
    } else {
        char first[8192], second[8192];
        describe(a.paths[0], raw[0], first, sizeof(first));
        if (diff) {
            describe(a.paths[1], raw[1], second, sizeof(second));
            printf("[ %s\n  -> %s; top %ld by %s%s ]\n", first, second, o->limit,
                   key_name(o->key), o->nfilters ? ", filtered" : "");
        } else {
            printf("[ %s; top %ld by %s%s ]\n", first, o->limit, key_name(o->key),
                   o->nfilters ? ", filtered" : "");
        }
        print_stats(o, st);
    }
    rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_USAGE;
out:
    hs_stats_free(st);
    for (int i = 0; i < 2; i++) {
        hs_snapshot_free(f[i]);
        hs_snapshot_free(raw[i]);
    }
    cli_analysis_free(&a.o);
    return rc;
}

int cmd_top(int argc, char **argv) { return top_or_diff(argc, argv, 0); }
int cmd_diff(int argc, char **argv) { return top_or_diff(argc, argv, 1); }
