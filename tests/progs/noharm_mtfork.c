/*
 * noharm_mtfork.c - fork, many times, from a program whose other threads are allocating and
 * freeing all the while (so a fork can happen while one of them is inside malloc or free).
 * When the process is traced (the heapsnap C API is found at run time: this program is not
 * linked with heapsnap), the busy threads also take snapshots with the C API, as a program that
 * watches its own memory would.  Each child allocates a block, and when traced it takes a
 * snapshot and checks that its block is in it with the right size, complaining on stderr
 * otherwise.  Then it exits normally (even children) or with _exit (odd ones).  The output is the
 * same traced or not.
 *
 *   noharm_mtfork [FORKS]     (default 20)
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heapsnap.h"

#define NBUSY 4

static atomic_int stop;
static hs_snapshot *(*api_take)(void);
static void (*api_free)(hs_snapshot *);

static void *busy(void *arg)
{
    unsigned r = (unsigned)(long)arg * 2654435761u + 1;
    void *slots[64] = { 0 };
    while (!atomic_load(&stop)) {
        r = r * 1103515245u + 12345u;
        unsigned k = (r >> 8) % 64;
        free(slots[k]);
        slots[k] = malloc(1 + (r >> 16) % 3000);
        if (api_take != NULL)
            api_free(api_take());
    }
    for (int k = 0; k < 64; k++)
        free(slots[k]);
    return NULL;
}

/* In a traced child: our block must be in a snapshot of our own, and a traceback must be found. */
static void check_with_api(void *block, int i)
{
    int (*is_tracing)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "hs_is_tracing");
    hs_snapshot *(*take)(void) = (hs_snapshot * (*)(void)) dlsym(RTLD_DEFAULT, "hs_take_snapshot");
    size_t (*count)(const hs_snapshot *) =
        (size_t(*)(const hs_snapshot *))dlsym(RTLD_DEFAULT, "hs_snapshot_count");
    int (*get)(const hs_snapshot *, size_t, unsigned *, size_t *, const hs_traceback **) =
        (int (*)(const hs_snapshot *, size_t, unsigned *, size_t *, const hs_traceback **))dlsym(
            RTLD_DEFAULT, "hs_snapshot_get");
    void (*snap_free)(hs_snapshot *) = (void (*)(hs_snapshot *))dlsym(RTLD_DEFAULT, "hs_snapshot_free");
    if (!is_tracing || !take || !count || !get || !snap_free || !is_tracing())
        return;
    hs_snapshot *s = take();
    if (s == NULL) {
        fprintf(stderr, "child %d: hs_take_snapshot failed\n", i);
        return;
    }
    int found = 0;
    for (size_t k = 0; k < count(s); k++) {
        unsigned dom;
        size_t size;
        const hs_traceback *tb;
        if (get(s, k, &dom, &size, &tb) == 0 && size == 3333 && tb->nframes > 0 &&
            strstr(tb->frames[0].filename, "noharm_mtfork.c") != NULL)
            found++;
    }
    if (found != 1)
        fprintf(stderr, "child %d: %d blocks of 3333 bytes from noharm_mtfork.c\n", i, found);
    snap_free(s);
    (void)block;
}

int main(int argc, char **argv)
{
    int forks = argc > 1 ? atoi(argv[1]) : 20;
    int (*is_tracing)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "hs_is_tracing");
    if (is_tracing != NULL && is_tracing()) {
        api_take = (hs_snapshot * (*)(void)) dlsym(RTLD_DEFAULT, "hs_take_snapshot");
        api_free = (void (*)(hs_snapshot *))dlsym(RTLD_DEFAULT, "hs_snapshot_free");
        if (api_free == NULL)
            api_take = NULL;
    }
    pthread_t th[NBUSY];
    for (long i = 0; i < NBUSY; i++)
        pthread_create(&th[i], NULL, busy, (void *)i);
    int failures = 0;
    for (int i = 0; i < forks; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            char *block = malloc(3333);                     /* SITE:child */
            memset(block, 1, 3333);
            char *scratch = strdup("scratch");
            free(scratch);
            check_with_api(block, i);
            printf("child %d\n", i);
            if (i % 2) {
                fflush(stdout);
                _exit(0);
            }
            exit(0);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failures++;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < NBUSY; i++)
        pthread_join(th[i], NULL);
    void *parent_block = malloc(4444);                      /* SITE:parent */
    printf("forks %d failures %d\n", forks, failures);
    (void)parent_block;
    return failures != 0;
}
