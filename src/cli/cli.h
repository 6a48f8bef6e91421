/*
 * cli.h - what the heapsnap command's subcommands share: messages, exit codes, loading snapshot
 * files and folders, and the analysis options of top, diff and leaks.
 */
#ifndef HS_CLI_H
#define HS_CLI_H

#include <stdio.h>

#include "heapsnap.h"
#include "../common/common.h"

enum {
    EXIT_OK = 0,
    EXIT_LEAK = 1,          /* leaks --fail-on-leak found a suspect */
    EXIT_USAGE = 2,         /* heapsnap's own usage errors and bad input files */
};

extern int cli_quiet;

/* "heapsnap: <message>" on stderr (unless quiet, for notes). */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Loads a snapshot; on failure prints the loader's message and returns NULL. */
hs_snapshot *cli_load(const char *path);

/* Snapshot files given as files or folders (searched recursively for *.hsnap), loaded and
 * grouped by pid, each group in time order.  Progress on a terminal only. */
typedef struct cli_series {
    long long pid;
    hs_snapshot **snaps;
    char **paths;
    size_t n;
} cli_series;
int cli_load_series(char **args, int nargs, cli_series **out, size_t *nseries);
void cli_free_series(cli_series *s, size_t n);

/* Progress on stderr when it is a terminal: "label 12/40". */
void cli_progress(const char *label, size_t done, size_t total);
void cli_progress_end(void);

/* The analysis options common to top, diff and leaks. */
typedef struct cli_analysis_opts {
    hs_key_type key;
    int key_given;
    int cumulative;
    long limit;                 /* lines to print; 0 = all */
    int traceback_limit;        /* for the listing; HS_ALL_FRAMES by default */
    int json;
    hs_filter *filters;
    size_t nfilters;
    int lineno;                 /* applied to every pattern filter */
    int all_frames;
} cli_analysis_opts;

/* Parses one analysis option (getopt_long code c with optarg); 1 when it was one, 0 when not,
 * -1 on a bad value (message printed).  cli_analysis_finish applies --lineno/--all-frames. */
int cli_analysis_option(cli_analysis_opts *o, int c, const char *arg);
void cli_analysis_finish(cli_analysis_opts *o);
void cli_analysis_free(cli_analysis_opts *o);
hs_snapshot *cli_apply_filters(const cli_analysis_opts *o, const hs_snapshot *s);
extern const char cli_grouping_help[];   /* --by and --cumulative, as top and diff take them */
extern const char cli_analysis_help[];   /* the other analysis options */

/* Option codes for long options without a short form. */
enum {
    OPT_BY = 1000, OPT_CUMULATIVE, OPT_INCLUDE, OPT_EXCLUDE, OPT_LINENO, OPT_ALL_FRAMES,
    OPT_DOMAIN, OPT_TB_LIMIT, OPT_JSON, OPT_INTERVAL, OPT_ALLOC_FN, OPT_FOLLOW_FORK,
    OPT_HELP, OPT_FAIL_ON_LEAK, OPT_FORMAT, OPT_BASE, OPT_MIN_CONFIDENCE, OPT_TIMEOUT,
};

#define CLI_ANALYSIS_LONGOPTS                                                   \
    { "by", required_argument, NULL, OPT_BY },                                 \
    { "cumulative", no_argument, NULL, OPT_CUMULATIVE },                       \
    { "limit", required_argument, NULL, 'l' },                                 \
    { "include", required_argument, NULL, OPT_INCLUDE },                       \
    { "exclude", required_argument, NULL, OPT_EXCLUDE },                       \
    { "lineno", required_argument, NULL, OPT_LINENO },                         \
    { "all-frames", no_argument, NULL, OPT_ALL_FRAMES },                       \
    { "domain", required_argument, NULL, OPT_DOMAIN },                         \
    { "traceback-limit", required_argument, NULL, OPT_TB_LIMIT },              \
    { "json", no_argument, NULL, OPT_JSON }

/* Strict integer parsing for options; 0 on success. */
int cli_parse_long(const char *s, long lo, long hi, long *out);

/* ---- command lines ---------------------------------------------------------------------------
 * Each subcommand parses and checks its whole command line first, in cli_parse_<cmd>, which acts
 * on nothing but its result and getopt_long's state: no file, process, environment variable or
 * other global is touched, only usage and error messages are printed.  It returns CLI_PROCEED
 * with the result filled in, or the exit status to end with at once (EXIT_OK after --help,
 * EXIT_USAGE after a message), with everything freed.  cmd_<cmd> then does the work.  argv is
 * permuted by getopt_long as usual; the strings in a result point into it.  getopt_long is
 * restarted with optind = 0, so the parsers may run many times in one process (the fuzz target
 * tests/fuzz/fuzz_args.c runs them alone). */
#define CLI_PROCEED (-1)

typedef struct cli_run_args {
    long frames;                /* traceback limit */
    const char *output;         /* NULL: ./heapsnap.<program>.<pid> */
    const char *interval;       /* NULL: no periodic snapshots */
    char alloc_fns[4096];       /* the --alloc-fn patterns joined with ':' (HEAPSNAP_ALLOC_FN) */
    int follow, quiet;
    char **prog_argv;           /* PROGRAM ARGS..., the tail of argv (NULL-terminated) */
} cli_run_args;

typedef struct cli_snapshot_args {
    long pid;
    long timeout;               /* seconds */
} cli_snapshot_args;

typedef struct cli_top_args {   /* top (one path) and diff (OLD NEW) */
    cli_analysis_opts o;        /* free with cli_analysis_free */
    char **paths;
    int npaths;
} cli_top_args;

typedef struct cli_leaks_args {
    cli_analysis_opts o;        /* free with cli_analysis_free */
    double min_confidence;
    int fail_on_leak;
    char **paths;               /* files and folders, at least one */
    int npaths;
} cli_leaks_args;

typedef struct cli_timeline_args {
    long rows;                  /* 0: all */
    const char *path;
} cli_timeline_args;

typedef enum { CLI_FORMAT_FOLDED, CLI_FORMAT_JSON, CLI_FORMAT_PPROF } cli_format;

typedef struct cli_export_args {
    cli_format format;
    const char *path, *output, *base;   /* output, base: NULL when not given */
} cli_export_args;

typedef struct cli_info_args {
    char **paths;               /* at least one */
    int npaths;
} cli_info_args;

int cli_parse_run(int argc, char **argv, cli_run_args *a);
int cli_parse_snapshot(int argc, char **argv, cli_snapshot_args *a);
int cli_parse_top(int argc, char **argv, int diff, cli_top_args *a);
int cli_parse_leaks(int argc, char **argv, cli_leaks_args *a);
int cli_parse_timeline(int argc, char **argv, cli_timeline_args *a);
int cli_parse_export(int argc, char **argv, cli_export_args *a);
int cli_parse_info(int argc, char **argv, cli_info_args *a);

int cmd_run(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_timeline(int argc, char **argv);
int cmd_leaks(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
