/*
 * noharm_fdkeep.c - what the tracer keeps open stays out of the program's descriptor numbers.
 * The program allocates for about a second while the tracer's thread takes snapshots (run it
 * with --interval; each symbolizes, and libdw keeps the files it read open), then opens
 * /dev/null: it must get the lowest free number, the one it gets untraced.  The tracer's thread
 * also opens files for a moment on each tick, so the open is tried a few times, 3 ms apart, and
 * the lowest number is the one printed.  Then the program closes every descriptor above 2
 * (the tracer's thread keeps some open between ticks) and allocates for 0.4 s more: the timeline
 * must go on.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *keep[256];

static void allocate(int i)
{
    free(keep[i % 256]);
    keep[i % 256] = malloc(16 + (size_t)(i % 300));
}

int main(void)
{
    int i = 0;
    for (double end = now() + 1.0; now() < end;)
        for (int k = 0; k < 1000; k++)
            allocate(i++);
    int lowest = -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd >= 0 && (lowest < 0 || fd < lowest))
            lowest = fd;
        if (fd >= 0)
            close(fd);
        usleep(3000);
    }
    printf("lowest free descriptor after the snapshots: %d\n", lowest);
    fflush(stdout);
    close_range(3, ~0U, 0);
    for (double end = now() + 0.4; now() < end;)
        for (int k = 0; k < 1000; k++)
            allocate(i++);
    for (int k = 0; k < 256; k++)
        free(keep[k]);
    return 0;
}
