/*
 * heapwait.c - a plain program for the file tests (tests/test_files.py): "heapwait N" allocates N
 * blocks of 16 to 271 bytes and keeps them, prints "ready <pid>", then waits until its standard
 * input ends and exits 0.  Its snapshots are as large as N makes them, and the test decides when
 * it exits (or kills it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    void **kept = calloc((size_t)n + 1, sizeof(void *));
    if (kept == NULL)
        return 1;
    for (long i = 0; i < n; i++)
        kept[i] = malloc(16 + (size_t)(i % 256));
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char buf[256];
    while (read(0, buf, sizeof(buf)) > 0)
        ;
    return 0;
}
