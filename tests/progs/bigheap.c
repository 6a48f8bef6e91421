/*
 * bigheap.c - a large live heap for the valgrind run of the heapsnap command
 * (tests/test_valgrind_cli.py).  Knows nothing of heapsnap but its annotation macros.
 *
 *   bigheap BLOCKS PHASES
 *
 * Allocates BLOCKS blocks in PHASES equal phases, each from one of 1024 distinct call stacks (a
 * path through a 10-level binary tree of calls), at one of three allocation sites, and keeps them
 * all but one in 16, which are freed again.  Each phase also tracks 10 pool blocks of 48 bytes
 * in domain 7.  After each phase it prints "phase K PID" and waits for a line on standard input,
 * so that the test can take a snapshot there; at the end it frees everything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapsnap-annotate.h"

#define LEVELS 10

static char pool[64 * 10 * 64];

/* Two call sites per level, so each of the 2^LEVELS paths is a distinct stack. */
static void *down(int level, unsigned path, size_t size)
{
    if (level == 0) {
        if (path == 0)
            return malloc(size);                         /* SITE:malloc */
        if (path == 1)
            return calloc(1, size);                      /* SITE:calloc */
        return realloc(NULL, size);                      /* SITE:realloc */
    }
    if (path & 1)
        return down(level - 1, path >> 1, size);
    return down(level - 1, path >> 1, size);
}

int main(int argc, char **argv)
{
    size_t blocks = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    int phases = argc > 2 ? atoi(argv[2]) : 5;
    if (phases < 1 || phases > 64 || blocks < (size_t)phases) {
        fprintf(stderr, "usage: bigheap BLOCKS PHASES (PHASES 1 to 64)\n");
        return 2;
    }
    void **keep = calloc(blocks, sizeof(*keep));
    if (keep == NULL)
        return 1;
    size_t n = 0, per = blocks / (size_t)phases;
    for (int ph = 0; ph < phases; ph++) {
        for (size_t i = 0; i < per; i++, n++) {
            unsigned path = (unsigned)((n * 2654435761u) >> 8) % (1u << LEVELS);
            /* the bits above the path choose the allocation site */
            keep[n] = down(LEVELS, path | (path % 3) << LEVELS, 16 + (n % 64) * 8);
            if (keep[n] == NULL)
                return 1;
            memset(keep[n], 1, 16);
        }
        for (size_t i = n - per; i < n; i += 16) {
            free(keep[i]);
            keep[i] = NULL;
        }
        for (int k = 0; k < 10; k++)
            HS_TRACK(7, pool + (ph * 10 + k) * 64, 48);  /* SITE:track */
        printf("phase %d %d\n", ph, (int)getpid());
        fflush(stdout);
        char line[16];
        if (fgets(line, sizeof(line), stdin) == NULL)
            break;
    }
    for (size_t i = 0; i < n; i++)
        free(keep[i]);
    free(keep);
    return 0;
}
