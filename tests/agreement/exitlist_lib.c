/* exitlist_lib.c - a shared library whose constructor registers 100 exit handlers, as C++
 * libraries do for their static objects (libLLVM registers about 3000).  They are registered
 * before main, so glibc keeps them in calloc'd blocks of 32 (1040 bytes each) that it frees only
 * when exit() walks past them. */
#include <stdlib.h>

static int calls;

static void handler(void)
{
    calls++;
}

__attribute__((constructor)) static void register_many(void)
{
    for (int i = 0; i < 100; i++)
        atexit(handler);
}

int exitlist_calls(void)
{
    return calls;
}
