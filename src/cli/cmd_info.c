/*
 * cmd_info.c - `heapsnap info SNAPSHOT...`: what a snapshot says about itself.
 */
#include "cli.h"

#include <getopt.h>
#include <string.h>
#include <time.h>

static void size_line(const char *label, size_t v)
{
    char buf[32];
    hs_format_size(buf, sizeof(buf), (double)v, 0);
    printf("%-17s %s (%zu bytes)\n", label, buf, v);
}

static int info_one(const char *path)
{
    hs_snapshot *s = cli_load(path);
    if (s == NULL)
        return EXIT_USAGE;
    const hs_snapshot_meta *m = hs_snapshot_get_meta(s);
    size_t total, count;
    hs_snapshot_totals(s, &total, &count);
    char when[64] = "unknown";
    time_t t = (time_t)m->timestamp;
    struct tm tm;
    if (m->timestamp > 0 && gmtime_r(&t, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf("snapshot          %s\n", path);
    printf("program           %s\n", m->program[0] ? m->program : "(unknown)");
    printf("arguments        ");
    for (size_t i = 0; i < m->argc; i++)
        printf(" %s", m->argv[i]);
    printf("\npid               %lld (parent %lld)\n", m->pid, m->ppid);
    printf("taken             %s, %.3f s after tracing started (%s)\n", when, m->elapsed,
           m->kind[0] ? m->kind : "unknown kind");
    printf("traceback limit   %d\n", hs_snapshot_traceback_limit(s));
    size_line("live blocks size", total);
    printf("live blocks       %zu\n", count);
    size_line("traced current", m->traced_current);
    size_line("traced peak", m->traced_peak);
    size_line("tracer memory", m->tracer_memory);
    printf("trimming          %s\n", m->trimmed ? "on" : "off");
    printf("not recorded      %llu blocks, %llu bytes%s\n", m->lost_blocks, m->lost_bytes,
           m->tracer_oom ? " (the tracer ran short of memory)" : "");
    printf("unknown frees     %llu (blocks freed that were allocated before tracing)\n",
           m->unknown_frees);
    hs_snapshot_free(s);
    return EXIT_OK;
}

int cli_parse_info(int argc, char **argv, cli_info_args *a)
{
    static const struct option longopts[] = { { "help", no_argument, NULL, 'h' },
                                              { NULL, 0, NULL, 0 } };
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        FILE *f = c == 'h' ? stdout : stderr;
        fprintf(f, "usage: heapsnap info SNAPSHOT...\n"
                   "Program, arguments, pid, time, traceback limit, totals, traced memory,\n"
                   "tracer memory and completeness counters of each snapshot.\n");
        return c == 'h' ? EXIT_OK : EXIT_USAGE;
    }
    if (optind >= argc) {
        cli_error("info: expected a snapshot file");
        return EXIT_USAGE;
    }
    a->paths = argv + optind;
    a->npaths = argc - optind;
    return CLI_PROCEED;
}

int cmd_info(int argc, char **argv)
{
    cli_info_args a;
    int rc = cli_parse_info(argc, argv, &a);
    if (rc != CLI_PROCEED)
        return rc;
    rc = EXIT_OK;
    for (int i = 0; i < a.npaths; i++) {
        if (i > 0)
            putchar('\n');
        if (info_one(a.paths[i]) != EXIT_OK)
            rc = EXIT_USAGE;
    }
    return rc;
}
