/*
 * noharm_jemalloc.c - run with jemalloc preloaded: says whether jemalloc is the allocator (its
 * mallctl is found at run time), then allocates small, large and huge blocks, aligned ones,
 * grows and shrinks them with realloc, frees some, and keeps one block of each kind.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    int (*mallctl)(const char *, void *, size_t *, void *, size_t) =
        (int (*)(const char *, void *, size_t *, void *, size_t))dlsym(RTLD_DEFAULT, "mallctl");
    const char *version = NULL;
    size_t len = sizeof(version);
    if (mallctl != NULL && mallctl("version", &version, &len, NULL, 0) == 0)
        printf("allocator: jemalloc %.5s\n", version);
    else
        printf("allocator: not jemalloc\n");

    char *small = malloc(48);                              /* SITE:small */
    char *large = malloc(100 * 1024);                      /* SITE:large */
    char *huge = calloc(1, 8 << 20);                       /* SITE:huge */
    void *aligned = NULL;
    int e = posix_memalign(&aligned, 4096, 5000);          /* SITE:aligned */
    char *grown = malloc(10);
    for (size_t n = 20; n < 300000; n = n * 3 / 2)
        grown = realloc(grown, n);                         /* SITE:grown */
    for (int i = 0; i < 10000; i++)
        free(malloc(16 + (size_t)i % 5000));
    printf("blocks: %s; usable size of the small one at least 48: %s; aligned: %s\n",
           small && large && huge && e == 0 && grown ? "all" : "missing",
           malloc_usable_size(small) >= 48 ? "yes" : "no",
           ((unsigned long)aligned % 4096) == 0 ? "yes" : "no");
    return 0;
}
