/*
 * libplug.c - a library that allocates, loaded with dlopen by dlprog.c.  Its blocks outlive
 * dlclose, so the final snapshot must still resolve its frames.
 */
#include <stdlib.h>

void *plug_alloc(size_t n)
{
    return malloc(n);                            /* SITE:plug */
}
