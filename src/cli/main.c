/*
 * main.c - the heapsnap command: run a program under the allocation tracer, snapshot it over
 * time, and say what grows.  Each subcommand lives in its own cmd_*.c.
 */
#include "cli.h"

#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    { "run", cmd_run, "run a program with the tracer; snapshots go to a folder" },
    { "snapshot", cmd_snapshot, "ask a traced process for a snapshot now" },
    { "top", cmd_top, "where a snapshot's live memory was allocated, largest first" },
    { "diff", cmd_diff, "what changed between two snapshots, largest change first" },
    { "leaks", cmd_leaks, "call sites whose live memory grows steadily over snapshots" },
    { "timeline", cmd_timeline, "traced memory and RSS over time" },
    { "export", cmd_export, "folded stacks, JSON or pprof for other tools" },
    { "info", cmd_info, "what a snapshot says about itself" },
};

static int usage(FILE *f, int status)
{
    fprintf(f, "usage: heapsnap COMMAND [options] [args]\n"
               "       heapsnap COMMAND --help\n\n"
               "Trace every allocation of a native program, take snapshots of its live memory,\n"
               "and find what grows.\n\nCommands:\n");
    for (size_t i = 0; i < HS_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nA leak hunt:\n"
               "  heapsnap run --interval 1 -o out -- ./service --port 8080\n"
               "  heapsnap leaks out\n"
               "  heapsnap diff out/<pid>/000001-interval.hsnap out/<pid>/000010-interval.hsnap\n"
               "\nheapsnap %s; the manual: man heapsnap (docs/heapsnap.1)\n", hs_version());
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr, EXIT_USAGE);
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0)
        return usage(stdout, EXIT_OK);
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("heapsnap %s\n", hs_version());
        return EXIT_OK;
    }
    for (size_t i = 0; i < HS_ARRAY_LEN(commands); i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    cli_error("'%s' is not a heapsnap command; see heapsnap --help", cmd);
    return EXIT_USAGE;
}
