/*
 * leaky.c - a plain C program (not linked with heapsnap) for the preload tests: blocks left at
 * exit at known lines, through libc helpers and a wrapper function, an atexit handler that
 * allocates and an ELF destructor that frees, so the final snapshot's moment can be checked.
 * Each line that allocates a block left at exit is marked "SITE:<name>"; the tests find them.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *kept[8];
static void *freed_by_destructor;

__attribute__((noinline)) void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        abort();
    return p;
}

static void late_handler(void)
{
    kept[7] = malloc(777);                       /* SITE:atexit */
}

__attribute__((destructor)) static void late_destructor(void)
{
    free(freed_by_destructor);
}

int main(int argc, char **argv)
{
    (void)argc;
    atexit(late_handler);
    kept[0] = malloc(1000);                      /* SITE:malloc */
    kept[1] = strdup(argv[0]);                   /* SITE:strdup */
    kept[2] = xmalloc(2000);                     /* SITE:xmalloc */
    char *text = NULL;
    if (asprintf(&text, "%s-%d", "asprintf", 12345) < 0)   /* SITE:asprintf */
        return 1;
    kept[3] = text;
    kept[4] = calloc(10, 30);                    /* SITE:calloc */
    freed_by_destructor = malloc(5555);          /* freed by the destructor: not at exit */
    for (int i = 0; i < 100; i++)
        free(malloc(64));                        /* churn: nothing left */
    printf("leaky done\n");
    return 0;
}
