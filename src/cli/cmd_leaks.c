/*
 * cmd_leaks.c - `heapsnap leaks SNAPSHOTS...|DIR`: the call sites whose live memory grows
 * steadily over a series of snapshots, largest growth first, with how fast and how sure.
 * The method is in docs/LEAKS.md; the engine in src/analysis/leaks.c.
 */
#include "cli.h"
#include "../analysis/leaks.h"
#include "../output/export.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static int usage(int status)
{
    FILE *f = status ? stderr : stdout;
    fprintf(f, "usage: heapsnap leaks [options] SNAPSHOT... | DIR\n"
               "Call sites whose live memory grows steadily across snapshots of one process\n"
               "(at least 4), largest growth first.  A folder is searched for *.hsnap files;\n"
               "snapshots are grouped by process and ordered by time.\n\n"
               "Options:\n"
               "  --by lineno|traceback   group by (default: traceback)\n%s"
               "  --min-confidence C    report suspects with confidence >= C (default 0.5)\n"
               "  --fail-on-leak        exit with status 1 when a suspect is found\n"
               "  -h, --help            this help\n", cli_analysis_help);
    return status;
}

static void print_text(const cli_analysis_opts *o, const cli_series *g, const hs_leak_report *r)
{
    size_t n = hs_leaks_count(r);
    printf("[ pid %lld: %zu snapshots over %.1f s, %s .. %s ]\n", g->pid, g->n,
           hs_leaks_duration(r), g->paths[0], g->paths[g->n - 1]);
    if (n == 0) {
        printf("No call site grows steadily across these snapshots.\n");
        return;
    }
    size_t shown = o->limit > 0 && (size_t)o->limit < n ? (size_t)o->limit : n;
    char tb[1 << 15];
    for (size_t i = 0; i < shown; i++) {
        const hs_leak_suspect *s = hs_leaks_get(r, i);
        const hs_frame *site = s->traceback->nframes ? &s->traceback->frames[0] : NULL;
        char grow[32], rate[32], per[32], last[32];
        hs_format_size(grow, sizeof(grow), (double)s->size_growth, 1);
        hs_format_size(rate, sizeof(rate), s->rate_bytes_per_second, 0);
        hs_format_size(per, sizeof(per), s->rate_bytes_per_snapshot, 0);
        hs_format_size(last, sizeof(last), (double)s->size_last, 0);
        printf("\n#%zu %s:%u", i + 1, site ? site->filename : "<unknown>", site ? site->lineno : 0);
        if (site && site->function[0])
            printf(" in %s", site->function);
        printf("\n   %s in %+lld blocks (now %s in %zu), %s/s, %s per snapshot\n", grow,
               s->count_growth, last, s->count_last, rate, per);
        printf("   confidence %.2f = trend %.2f x steadiness %.2f x ending %.2f x support %.2f\n",
               s->confidence, s->trend, s->steadiness, s->ending, s->support);
        hs_traceback_format(s->traceback, o->traceback_limit, 0, tb, sizeof(tb));
        fputs(tb, stdout);
    }
    if (shown < n)
        printf("\n(%zu more; --limit 0 shows all)\n", n - shown);
}

static void print_json(const cli_series *g, const hs_leak_report *r, long limit)
{
    hs_json j;
    hs_json_init(&j, stdout, 0);
    hs_json_begin_object(&j);
    hs_json_key(&j, "version");
    hs_json_int(&j, 1);
    hs_json_key(&j, "pid");
    hs_json_int(&j, g->pid);
    hs_json_key(&j, "snapshots");
    hs_json_uint(&j, g->n);
    hs_json_key(&j, "duration_seconds");
    hs_json_double(&j, hs_leaks_duration(r));
    hs_json_key(&j, "suspects");
    hs_json_begin_array(&j);
    size_t n = hs_leaks_count(r);
    if (limit > 0 && (size_t)limit < n)
        n = (size_t)limit;
    for (size_t i = 0; i < n; i++) {
        const hs_leak_suspect *s = hs_leaks_get(r, i);
        static const hs_frame none = { "<unknown>", 0, "", "", 0 };
        const hs_frame *site = s->traceback->nframes ? &s->traceback->frames[0] : &none;
        hs_json_begin_object(&j);
        hs_json_key(&j, "filename");
        hs_json_string(&j, site->filename);
        hs_json_key(&j, "lineno");
        hs_json_uint(&j, site->lineno);
        hs_json_key(&j, "function");
        hs_json_string(&j, site->function);
        hs_json_key(&j, "object");
        hs_json_string(&j, site->object);
        hs_json_key(&j, "size_growth");
        hs_json_int(&j, s->size_growth);
        hs_json_key(&j, "count_growth");
        hs_json_int(&j, s->count_growth);
        hs_json_key(&j, "rate_bytes_per_second");
        hs_json_double(&j, s->rate_bytes_per_second);
        hs_json_key(&j, "rate_bytes_per_snapshot");
        hs_json_double(&j, s->rate_bytes_per_snapshot);
        hs_json_key(&j, "confidence");
        hs_json_double(&j, s->confidence);
        hs_json_key(&j, "factors");
        hs_json_begin_object(&j);
        hs_json_key(&j, "trend");
        hs_json_double(&j, s->trend);
        hs_json_key(&j, "steadiness");
        hs_json_double(&j, s->steadiness);
        hs_json_key(&j, "ending");
        hs_json_double(&j, s->ending);
        hs_json_key(&j, "support");
        hs_json_double(&j, s->support);
        hs_json_end_object(&j);
        hs_json_key(&j, "sizes");
        hs_json_begin_array(&j);
        for (size_t k = 0; k < hs_leaks_snapshots(r); k++)
            hs_json_uint(&j, s->sizes[k]);
        hs_json_end_array(&j);
        hs_json_key(&j, "traceback");
        hs_json_traceback(&j, s->traceback);
        hs_json_end_object(&j);
    }
    hs_json_end_array(&j);
    hs_json_end_object(&j);                  /* which ends the line */
}

int cli_parse_leaks(int argc, char **argv, cli_leaks_args *a)
{
    static const struct option longopts[] = {
        CLI_ANALYSIS_LONGOPTS,
        { "min-confidence", required_argument, NULL, OPT_MIN_CONFIDENCE },
        { "fail-on-leak", no_argument, NULL, OPT_FAIL_ON_LEAK },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    *a = (cli_leaks_args){ .o = { .key = HS_KEY_TRACEBACK, .limit = 10,
                                  .traceback_limit = HS_ALL_FRAMES, .lineno = HS_ANY_LINE },
                           .min_confidence = 0.5 };
    cli_analysis_opts *o = &a->o;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "l:h", longopts, NULL)) != -1) {
        if (c == 'h') {
            cli_analysis_free(o);
            return usage(EXIT_OK);
        }
        if (c == OPT_FAIL_ON_LEAK) {
            a->fail_on_leak = 1;
            continue;
        }
        if (c == OPT_MIN_CONFIDENCE) {
            char *end;
            errno = 0;
            double v = strtod(optarg, &end);
            if (errno || *end || !(v >= 0 && v <= 1)) {
                cli_error("leaks: --min-confidence %s: expected a number from 0 to 1", optarg);
                cli_analysis_free(o);
                return EXIT_USAGE;
            }
            a->min_confidence = v;
            continue;
        }
        int r = cli_analysis_option(o, c, optarg);
        if (r <= 0) {
            cli_analysis_free(o);
            return r < 0 ? EXIT_USAGE : usage(EXIT_USAGE);
        }
    }
    cli_analysis_finish(o);
    if (o->key == HS_KEY_FILENAME || o->cumulative) {
        cli_error("leaks: groups --by traceback or --by lineno, without --cumulative");
        cli_analysis_free(o);
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        cli_error("leaks: expected snapshot files or a folder of them");
        cli_analysis_free(o);
        return usage(EXIT_USAGE);
    }
    a->paths = argv + optind;
    a->npaths = argc - optind;
    return CLI_PROCEED;
}

int cmd_leaks(int argc, char **argv)
{
    cli_leaks_args a;
    int rc = cli_parse_leaks(argc, argv, &a);
    if (rc != CLI_PROCEED)
        return rc;
    cli_analysis_opts o = a.o;          /* owns the filters from here */
    cli_series *series;
    size_t ns;
    if (cli_load_series(a.paths, a.npaths, &series, &ns) < 0) {
        cli_analysis_free(&o);
        return EXIT_USAGE;
    }
    int found = 0, analysed = 0;
    rc = EXIT_OK;
    for (size_t k = 0; k < ns; k++) {
        cli_series *g = &series[k];
        /* A final snapshot is taken after destructors and atexit handlers, when the program
         * has torn its state down: it says nothing about growth while it ran.  Leave it out
         * when the others are enough. */
        size_t running = 0;
        for (size_t i = 0; i < g->n; i++)
            running += strcmp(hs_snapshot_get_meta(g->snaps[i])->kind, "final") != 0;
        if (running >= 4 && running < g->n) {
            size_t w = 0;
            for (size_t i = 0; i < g->n; i++) {
                if (strcmp(hs_snapshot_get_meta(g->snaps[i])->kind, "final") == 0) {
                    hs_snapshot_free(g->snaps[i]);
                    free(g->paths[i]);
                    continue;
                }
                g->snaps[w] = g->snaps[i];
                g->paths[w++] = g->paths[i];
            }
            g->n = w;
        }
        if (g->n < 4) {
            /* Among several processes (run --follow-fork), a short-lived one (a shell, a helper
             * started with system()) is left out with a note; alone, it is an error. */
            if (ns > 1) {
                cli_note("leaks: process %lld left out: it has %zu snapshot%s, and at least 4 "
                         "are needed to see a trend", g->pid, g->n, g->n == 1 ? "" : "s");
            } else {
                cli_error("leaks: process %lld has %zu snapshot%s; at least 4 are needed to see "
                          "a trend (take more with run --interval or heapsnap snapshot)", g->pid,
                          g->n, g->n == 1 ? "" : "s");
                rc = EXIT_USAGE;
            }
            continue;
        }
        /* Filters first, then the verdict on what is left. */
        hs_snapshot **f = calloc(g->n, sizeof(*f));
        int ok = f != NULL;
        for (size_t i = 0; ok && i < g->n; i++)
            ok = (f[i] = cli_apply_filters(&o, g->snaps[i])) != NULL;
        hs_leak_opts lo = { .key = o.key, .min_confidence = a.min_confidence, .min_growth = 1 };
        hs_leak_report *r = ok ? hs_leaks_analyze((const hs_snapshot *const *)f, g->n, &lo) : NULL;
        if (r == NULL) {
            if (ok)
                cli_error("leaks: %s", strerror(errno));
            rc = EXIT_USAGE;
        } else {
            if (o.json)
                print_json(g, r, o.limit);
            else {
                if (analysed)
                    putchar('\n');
                print_text(&o, g, r);
            }
            analysed++;
            found |= hs_leaks_count(r) > 0;
            hs_leaks_free(r);
        }
        for (size_t i = 0; f != NULL && i < g->n; i++)
            hs_snapshot_free(f[i]);
        free(f);
    }
    cli_free_series(series, ns);
    cli_analysis_free(&o);
    if (rc == EXIT_OK && analysed == 0) {
        cli_error("leaks: no process has the 4 snapshots needed to see a trend (take more with "
                  "run --interval or heapsnap snapshot)");
        rc = EXIT_USAGE;
    }
    if (rc == EXIT_OK && a.fail_on_leak && found)
        rc = EXIT_LEAK;
    return fflush(stdout) == 0 ? rc : EXIT_USAGE;
}
