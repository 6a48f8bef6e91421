/*
 * noharm_dropuid.c - a service that drops root for nobody, then runs: the tracer can no longer
 * write into its folder (0700, root's), so snapshots are skipped, and nothing may appear on the
 * program's standard error for it.   noharm_dropuid
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
        perror("setuid");
        return 1;
    }
    void *keep[64];
    for (int r = 0; r < 8; r++) {
        for (int i = 0; i < 64; i++)
            keep[i] = malloc(100 + (size_t)i);
        struct timespec t = { 0, 60 * 1000 * 1000 };
        nanosleep(&t, NULL);
        for (int i = 0; i < 64; i++)
            free(keep[i]);
    }
    printf("served as uid %d\n", (int)getuid());
    return 0;
}
