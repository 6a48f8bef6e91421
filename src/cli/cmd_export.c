/*
 * cmd_export.c - `heapsnap export SNAPSHOT --format folded|json|pprof [-o FILE] [--base OLD]`:
 * a snapshot (or its difference from OLD) for other tools.  The writers are in src/output/.
 */
#include "cli.h"
#include "../output/export.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_parse_export(int argc, char **argv, cli_export_args *a)
{
    static const struct option longopts[] = {
        { "format", required_argument, NULL, OPT_FORMAT },
        { "output", required_argument, NULL, 'o' },
        { "base", required_argument, NULL, OPT_BASE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *format = NULL;
    a->output = a->base = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_FORMAT:
            format = optarg;
            break;
        case 'o':
            a->output = optarg;
            break;
        case OPT_BASE:
            a->base = optarg;
            break;
        default: {
            FILE *f = c == 'h' ? stdout : stderr;
            fprintf(f, "usage: heapsnap export SNAPSHOT --format folded|json|pprof [-o FILE] "
                       "[--base OLD]\n"
                       "  folded  live bytes per stack, oldest frame first (flamegraph.pl,\n"
                       "          speedscope, inferno); with --base two columns: OLD NEW\n"
                       "  json    the whole snapshot (docs/JSON.md)\n"
                       "  pprof   gzipped profile.proto with inuse_space and inuse_objects\n"
                       "          (go tool pprof, Pyroscope, Parca, Grafana)\n"
                       "  -o FILE write there instead of standard output\n"
                       "  --base OLD  export the difference from snapshot OLD\n");
            return c == 'h' ? EXIT_OK : EXIT_USAGE;
        }
        }
    }
    if (optind != argc - 1) {
        cli_error("export: expected one snapshot");
        return EXIT_USAGE;
    }
    a->path = argv[optind];
    if (format == NULL) {
        cli_error("export: --format folded, json or pprof is required");
        return EXIT_USAGE;
    }
    if (strcmp(format, "folded") == 0)
        a->format = CLI_FORMAT_FOLDED;
    else if (strcmp(format, "json") == 0)
        a->format = CLI_FORMAT_JSON;
    else if (strcmp(format, "pprof") == 0)
        a->format = CLI_FORMAT_PPROF;
    else {
        cli_error("export: --format %s: expected folded, json or pprof", format);
        return EXIT_USAGE;
    }
    return CLI_PROCEED;
}

int cmd_export(int argc, char **argv)
{
    cli_export_args a;
    int prc = cli_parse_export(argc, argv, &a);
    if (prc != CLI_PROCEED)
        return prc;
    const char *output = a.output, *base_path = a.base;
    int (*writer)(const hs_snapshot *, const hs_snapshot *, FILE *) =
        a.format == CLI_FORMAT_FOLDED ? hs_export_folded
        : a.format == CLI_FORMAT_JSON ? hs_export_json : hs_export_pprof;
    if (a.format == CLI_FORMAT_PPROF && output == NULL && isatty(1)) {
        cli_error("export: pprof is binary; use -o FILE or redirect standard output");
        return EXIT_USAGE;
    }
    hs_snapshot *s = cli_load(a.path), *base = NULL;
    if (s == NULL || (base_path != NULL && (base = cli_load(base_path)) == NULL)) {
        hs_snapshot_free(s);
        return EXIT_USAGE;
    }
    /* To a file: written beside it, then renamed, so a failure leaves no half file. */
    FILE *out = stdout;
    char tmp[4200];
    if (output != NULL) {
        snprintf(tmp, sizeof(tmp), "%s.tmp.%d", output, (int)getpid());
        out = fopen(tmp, "wxe");
        if (out == NULL) {
            cli_error("export: %s: %s", tmp, strerror(errno));
            hs_snapshot_free(s);
            hs_snapshot_free(base);
            return EXIT_USAGE;
        }
    }
    int r = writer(s, base, out);
    if (r == 0 && fflush(out) != 0)
        r = -errno;
    if (output != NULL) {
        if (fclose(out) != 0 && r == 0)
            r = -errno;
        if (r == 0 && rename(tmp, output) < 0)
            r = -errno;
        if (r != 0)
            unlink(tmp);
    }
    if (r != 0)
        cli_error("export: %s: %s", output ? output : "standard output", strerror(-r));
    hs_snapshot_free(s);
    hs_snapshot_free(base);
    return r == 0 ? EXIT_OK : EXIT_USAGE;
}
