/*
 * noharm_child.c - the program that noharm_spawn starts: it allocates a block, says which way it
 * was started, and exits normally.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    char *block = malloc(5555);                      /* SITE:child */
    memset(block, 0, 5555);
    printf("child started by %s\n", argc > 1 ? argv[1] : "?");
    return 0;
}
