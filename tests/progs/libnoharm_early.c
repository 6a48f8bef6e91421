/*
 * libnoharm_early.c - a library linked into noharm_early (not loaded with dlopen): its
 * constructor allocates as the program starts, before heapsnap's own constructor has run.
 */
#include <stdlib.h>
#include <string.h>

void *early_block;
char *early_string;

__attribute__((constructor)) static void early_ctor(void)
{
    early_block = malloc(2468);                  /* SITE:early */
    early_string = strdup("allocated in a constructor");   /* SITE:early-strdup */
    free(malloc(10));
}
