/*
 * noharm_dl.c - dlopen a library that allocates, keep blocks it allocated, dlclose it; several
 * rounds.  After the last dlclose, when the process is traced (the heapsnap C API is found at
 * run time) and NOHARM_SNAPSHOT is set, a snapshot is taken and written there with the C API.
 *
 *   noharm_dl LIBRARY [ROUNDS]
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "heapsnap.h"

static void api_snapshot(void)
{
    const char *path = getenv("NOHARM_SNAPSHOT");
    hs_snapshot *(*take)(void) = (hs_snapshot * (*)(void)) dlsym(RTLD_DEFAULT, "hs_take_snapshot");
    int (*dump)(const hs_snapshot *, const char *) =
        (int (*)(const hs_snapshot *, const char *))dlsym(RTLD_DEFAULT, "hs_snapshot_dump");
    void (*snap_free)(hs_snapshot *) = (void (*)(hs_snapshot *))dlsym(RTLD_DEFAULT, "hs_snapshot_free");
    if (path == NULL || take == NULL || dump == NULL || snap_free == NULL)
        return;
    hs_snapshot *s = take();
    if (s == NULL || dump(s, path) != 0)
        fprintf(stderr, "noharm_dl: the API snapshot failed\n");
    if (s != NULL)
        snap_free(s);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    void *kept[64];
    if (rounds < 1 || rounds > 64)
        return 2;
    for (int r = 0; r < rounds; r++) {
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
            fprintf(stderr, "%s\n", dlerror());
            return 1;
        }
        void *(*dl_alloc)(size_t) = (void *(*)(size_t))dlsym(h, "dl_alloc");
        kept[r] = dl_alloc(1000 + (size_t)r);
        free(dl_alloc(50));
        if (dlclose(h) != 0) {
            fprintf(stderr, "%s\n", dlerror());
            return 1;
        }
    }
    api_snapshot();
    printf("%d rounds, %s\n", rounds, kept[rounds - 1] != NULL ? "kept" : "lost");
    return 0;
}
