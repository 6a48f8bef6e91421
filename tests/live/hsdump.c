/*
 * hsdump.c - test helper: prints a snapshot file in a stable line format for the Python tests.
 *   meta <key> <value>           one per metadata field
 *   trace <domain> <size> <nframes> <total_nframe>
 *   frame <file>:<line> <function> | <object>
 * Exit 2 with the loader's message on a bad file.
 */
#include <stdio.h>

#include "heapsnap.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: hsdump FILE\n");
        return 2;
    }
    char err[512];
    hs_snapshot *s = hs_snapshot_load(argv[1], err, sizeof(err));
    if (s == NULL) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    const hs_snapshot_meta *m = hs_snapshot_get_meta(s);
    printf("meta limit %d\nmeta pid %lld\nmeta program %s\nmeta kind %s\nmeta argc %zu\n",
           hs_snapshot_traceback_limit(s), m->pid, m->program, m->kind, m->argc);
    for (size_t i = 0; i < m->argc; i++)
        printf("meta argv %s\n", m->argv[i]);
    printf("meta current %zu\nmeta peak %zu\nmeta lost_blocks %llu\nmeta unknown_frees %llu\n"
           "meta tracer_oom %d\nmeta trimmed %d\n", m->traced_current, m->traced_peak,
           m->lost_blocks, m->unknown_frees, m->tracer_oom, m->trimmed);
    for (size_t i = 0; i < hs_snapshot_count(s); i++) {
        unsigned dom;
        size_t size;
        const hs_traceback *tb;
        hs_snapshot_get(s, i, &dom, &size, &tb);
        printf("trace %u %zu %zu %zu\n", dom, size, tb->nframes, tb->total_nframe);
        for (size_t f = 0; f < tb->nframes; f++)
            printf("frame %s:%u %s | %s\n", tb->frames[f].filename, tb->frames[f].lineno,
                   tb->frames[f].function, tb->frames[f].object);
    }
    hs_snapshot_free(s);
    return 0;
}
