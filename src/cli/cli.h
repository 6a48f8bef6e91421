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
extern const char cli_analysis_help[];

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

int cmd_run(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_timeline(int argc, char **argv);
int cmd_leaks(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
