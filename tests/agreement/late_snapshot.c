/*
 * late_snapshot.c - a measuring instrument for agree.py, not part of the tracer.
 *
 * Preloaded after libheapsnap.so, it interposes __cxa_atexit (through which atexit() and every
 * C++ static destructor are registered) and, at the first registration of the process when that
 * comes before main (from a shared library's constructor), registers one handler of its own
 * first.  glibc runs exit handlers in the reverse order of registration and frees each of its
 * calloc'd exit-function-list blocks once it has walked past it, so this handler runs last of
 * all, after _dl_fini and after those blocks are freed: at the point where valgrind counts
 * "in use at exit".  There it takes a heapsnap snapshot through the public API and writes
 * "BYTES BLOCKS\n" to <this library's path>.<pid> (no variable of its own in the environment,
 * which the program could copy).  When nothing registers before main, __libc_start_main's
 * registration of _dl_fini comes first, and glibc keeps every later handler in its static block
 * or in blocks it frees before _dl_fini: then there is nothing to measure and no file is written.
 *
 * heapsnap's own final snapshot is registered from its ELF destructor, inside _dl_fini, so it
 * runs before glibc has walked the handlers that shared-library constructors registered before
 * main (and before it freed their list blocks).  final - late measures exactly that.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

typedef struct hs_snapshot hs_snapshot;

static char out_path[4096];
static int (*real_cxa_atexit)(void (*)(void *), void *, void *);

static void late_snapshot(void *unused)
{
    (void)unused;
    hs_snapshot *(*take)(void);
    void (*totals)(const hs_snapshot *, size_t *, size_t *);
    void (*release)(hs_snapshot *);
    *(void **)&take = dlsym(RTLD_DEFAULT, "hs_take_snapshot");
    *(void **)&totals = dlsym(RTLD_DEFAULT, "hs_snapshot_totals");
    *(void **)&release = dlsym(RTLD_DEFAULT, "hs_snapshot_free");
    if (take == NULL || totals == NULL || release == NULL || out_path[0] == '\0')
        return;
    hs_snapshot *s = take();
    if (s == NULL)
        return;
    size_t bytes = 0, blocks = 0;
    totals(s, &bytes, &blocks);
    release(s);
    char line[64];
    int n = snprintf(line, sizeof(line), "%zu %zu\n", bytes, blocks);
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (write(fd, line, (size_t)n) != n)
            unlink(out_path);
        close(fd);
    }
}

static int main_started;

/* _start calls it through the executable's GOT: the preloaded definition wins. */
int __libc_start_main(int (*main_fn)(int, char **, char **), int argc, char **argv,
                      void (*init)(void), void (*fini)(void), void (*rtld_fini)(void),
                      void *stack_end)
{
    int (*real)(int (*)(int, char **, char **), int, char **, void (*)(void), void (*)(void),
                void (*)(void), void *);
    *(void **)&real = dlsym(RTLD_NEXT, "__libc_start_main");
    main_started = 1;
    return real(main_fn, argc, argv, init, fini, rtld_fini, stack_end);
}

int __cxa_atexit(void (*fn)(void *), void *arg, void *dso)
{
    static int registered;
    if (real_cxa_atexit == NULL)
        *(void **)&real_cxa_atexit = dlsym(RTLD_NEXT, "__cxa_atexit");
    if (real_cxa_atexit == NULL)
        return -1;
    if (!registered) {
        registered = 1;
        if (main_started)
            return real_cxa_atexit(fn, arg, dso);
        Dl_info info;
        if (dladdr((void *)late_snapshot, &info) != 0 && info.dli_fname != NULL)
            snprintf(out_path, sizeof(out_path), "%s.%d", info.dli_fname, (int)getpid());
        real_cxa_atexit(late_snapshot, NULL, NULL);
    }
    return real_cxa_atexit(fn, arg, dso);
}
