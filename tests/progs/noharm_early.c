/*
 * noharm_early.c - linked with libnoharm_early.so (by the test: `make live` builds it alone, and
 * then the weak references below are null): that library's constructor allocates before
 * heapsnap's constructor runs.  Earlier still, the program's own pre-initialisation function
 * allocates (DT_PREINIT_ARRAY runs before every library's constructor).  Nothing is freed.
 */
#include <stdio.h>
#include <stdlib.h>

extern void *early_block __attribute__((weak));
extern char *early_string __attribute__((weak));

static void *preinit_block;

static void preinit(int argc, char **argv, char **envp)
{
    (void)argc, (void)argv, (void)envp;
    preinit_block = malloc(1122);                /* SITE:preinit */
}
__attribute__((section(".preinit_array"), used)) static void (*const preinit_fn)(int, char **, char **) =
    preinit;

int main(void)
{
    if (&early_block == NULL || &early_string == NULL) {
        puts("not linked with libnoharm_early.so");
        return 3;
    }
    void *late = malloc(1357);                   /* SITE:late */
    printf("preinit block %s, early block %s, early string \"%s\", late block %s\n",
           preinit_block != NULL ? "allocated" : "missing",
           early_block != NULL ? "allocated" : "missing", early_string,
           late != NULL ? "allocated" : "missing");
    return 0;
}
