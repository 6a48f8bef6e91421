/*
 * noharm_hello.c - allocates, prints to both streams, exits 4.  The test also builds it
 * statically and installs a set-user-ID copy: programs heapsnap cannot trace.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    char *s = strdup(argc > 1 ? argv[1] : "hello");
    char *t = malloc(strlen(s) + 16);
    sprintf(t, "%s from a program", s);
    puts(t);
    fprintf(stderr, "%s, on stderr\n", s);
    free(t);
    free(s);
    return 4;
}
