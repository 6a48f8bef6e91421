/*
 * libnoharm_dl.c - a library loaded and unloaded with dlopen/dlclose by noharm_dl.c.  Its
 * constructor allocates while the loader runs it (one block kept, one freed by the destructor),
 * and dl_alloc allocates for the program.  Blocks of it outlive the library.
 */
#include <stdlib.h>
#include <string.h>

static char *scratch;
void *dl_ctor_block;

__attribute__((constructor)) static void dl_ctor(void)
{
    dl_ctor_block = malloc(777);                 /* SITE:ctor */
    scratch = strdup("freed by the destructor");
}

__attribute__((destructor)) static void dl_dtor(void)
{
    free(scratch);
}

void *dl_alloc(size_t n)
{
    void *p = malloc(n);                         /* SITE:dl */
    memset(p, 0, n);
    return p;
}
