/*
 * dlprog.c - dlopen a library, allocate through it, dlclose it, exit with the blocks alive.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    void *h = dlopen(argv[1], RTLD_NOW);
    if (h == NULL) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    void *(*plug_alloc)(size_t) = (void *(*)(size_t))dlsym(h, "plug_alloc");
    void *kept = plug_alloc(4096);
    dlclose(h);
    /* Reuse the address range the library had. */
    printf("%s\n", kept != NULL ? "plugged" : "failed");
    return 0;
}
