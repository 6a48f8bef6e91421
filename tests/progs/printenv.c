/*
 * printenv.c - a plain program for the environment tests (tests/test_environ.py): prints the
 * environment main() was given, one entry a line, then whether it is still libc's `environ`, and
 * leaves one block at exit so that its final snapshot is recognisable.
 */
#include <stdio.h>
#include <stdlib.h>

extern char **environ;

int main(int argc, char **argv, char **envp)
{
    (void)argc;
    (void)argv;
    static void *kept;
    kept = malloc(4242);                         /* SITE:printenv */
    for (char **e = envp; *e != NULL; e++)
        printf("%s\n", *e);
    printf("-- envp %s environ\n", envp == environ ? "is" : "is not");
    return kept == NULL;
}
