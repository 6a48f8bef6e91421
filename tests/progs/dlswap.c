/*
 * dlswap.c - loads two libraries in turn, usually at the same address, and allocates through
 * each: frame rules read from the first must not be used for the second.
 *     usage: dlswap LIB1 LIB2 ROUNDS
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int rounds = atoi(argv[3]), same = 0;
    void *last_base = NULL;
    for (int r = 0; r < rounds; r++) {
        void *h = dlopen(argv[1 + r % 2], RTLD_NOW);
        if (h == NULL) {
            fprintf(stderr, "%s\n", dlerror());
            return 1;
        }
        void *(*swap_alloc)(size_t, int) = (void *(*)(size_t, int))dlsym(h, "swap_alloc");
        Dl_info info;
        if (dladdr((void *)swap_alloc, &info) != 0) {
            same += info.dli_fbase == last_base;
            last_base = info.dli_fbase;
        }
        for (int i = 0; i < 50; i++)
            free(swap_alloc(32, i % 7));
        dlclose(h);
    }
    printf("rounds %d, loaded where the last one was %d\n", rounds, same);
    return 0;
}
