/*
 * hooks_exec.c - the tracer's variables: out of the program's environment, and handed on to
 * the program an exec replaces it with.
 *
 * A traced program should see the environment it would see untraced (LD_PRELOAD aside): a
 * program that copies its environment allocates per variable, so five more variables change what
 * it allocates (docs/AGREEMENT.md).  When children are not followed, hs_env_hide() removes the
 * HEAPSNAP_* entries from `environ` once the tracer has read them.  It moves pointers only: the
 * strings stay where they are, so /proc/PID/environ, where `heapsnap snapshot PID` finds the
 * output folder, still shows them.  Copies are kept in static memory.
 *
 * An exec keeps the process (same pid, same output folder), and `heapsnap run -- sh -c 'exec
 * prog'`, `env` and `nice` must still trace prog.  So the exec family is interposed: execve,
 * execv, execvp, execvpe, execl, execlp, execle, fexecve and execveat (glibc's execv, execvp and
 * execl* call its internal execve directly, never through the PLT, so each has its own hook).  An
 * exec made by the process that hid the variables gets them back, appended to a copy of its
 * envp (entries the envp already defines win), when the program it starts will load the tracer:
 *   - the tracer came in through LD_PRELOAD (`heapsnap run`, a service's environment): when the
 *     envp given, `environ` or an array of the program's own making, still preloads this library
 *     (an LD_PRELOAD entry that names it).  Shells build envp from their variables, so `sh -c
 *     'exec prog'` is followed; a program that gives what it runs a clean environment (env -i,
 *     env -u LD_PRELOAD, a sandbox) gets exactly that, with no HEAPSNAP_* it never saw;
 *   - the program is linked with libheapsnap: when envp is the process's `environ` (the
 *     variables were there before they were hidden); an envp of its own making is its choice.
 * A process that did not hide them (a forked child, a vfork child: another pid) execs with its
 * envp untouched, so what it runs is not traced: children are not followed.  The copy of envp is
 * built without malloc (on the stack; mmap beyond HS_ENV_STACK entries), environ is never
 * changed, and the real function's result and errno are returned as they are.
 *
 * With HEAPSNAP_FOLLOW_FORK=1 nothing is hidden: forked and spawned children must inherit the
 * variables to trace, so the hooks below only pass their arguments through.
 */
#include "tracer.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

#define HS_ENV_PREFIX "HEAPSNAP_"
#define HS_ENV_SAVED 32                     /* distinct tracer variables kept for exec */
#define HS_ENV_STACK 512                    /* envp entries copied on the stack */

static const char *saved[HS_ENV_SAVED];     /* "NAME=value", the first of each name */
static int nsaved;
static char saved_buf[16384];               /* their copies (the original when it does not fit) */
static pid_t saved_pid;                     /* the process that hid them */
static char lib_base[256];                  /* this library's file name, for LD_PRELOAD */
static int preloaded;                       /* this process got the tracer through LD_PRELOAD */

/* ---- the real functions ------------------------------------------------------------------------
 * Resolved in the constructor (hs_exec_init), before main: an exec in a vfork child must not
 * call dlsym, which may lock and allocate in memory the parent shares. */
static struct {
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execv)(const char *, char *const[]);
    int (*execvp)(const char *, char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
    int (*execveat)(int, const char *, char *const[], char *const[], int);
} real;

static void resolve_all(void)
{
    int g = hs_guard_enter();
    *(void **)&real.execve = dlsym(RTLD_NEXT, "execve");
    *(void **)&real.execv = dlsym(RTLD_NEXT, "execv");
    *(void **)&real.execvp = dlsym(RTLD_NEXT, "execvp");
    *(void **)&real.execvpe = dlsym(RTLD_NEXT, "execvpe");
    *(void **)&real.fexecve = dlsym(RTLD_NEXT, "fexecve");
    *(void **)&real.execveat = dlsym(RTLD_NEXT, "execveat");
    if (g)
        hs_guard_leave();
}

/* Only an exec from a library constructor that runs before ours gets here unresolved. */
#define REAL(name) (HS_UNLIKELY(real.name == NULL) ? resolve_all() : (void)0, real.name)

HS_HIDDEN void hs_exec_init(void)
{
    if (real.execve == NULL)
        resolve_all();
    Dl_info info;
    const char *name = "libheapsnap.so";
    if (dladdr((void *)hs_exec_init, &info) != 0 && info.dli_fname != NULL &&
        info.dli_fname[0] != '\0')
        name = info.dli_fname;
    const char *slash = strrchr(name, '/');
    snprintf(lib_base, sizeof(lib_base), "%s", slash ? slash + 1 : name);
}

/* ---- hiding ------------------------------------------------------------------------------------ */

static int preloads_us(char *const *envp);

static int is_ours(const char *entry) { return strncmp(entry, HS_ENV_PREFIX, 9) == 0; }

/* The length of "NAME=" in entry (the whole entry when it has no '='). */
static size_t name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) + 1 : strlen(entry);
}

static int defines(char *const *envp, const char *entry)
{
    size_t n = name_len(entry);
    for (; *envp != NULL; envp++)
        if (strncmp(*envp, entry, n) == 0)
            return 1;
    return 0;
}

/* Removes every HEAPSNAP_* entry from environ, in place: no lock and no allocation.  With save,
 * keeps them for exec. */
static void remove_ours(int save)
{
    if (environ == NULL)
        return;
    size_t used = 0;
    char **w = environ;
    for (char **r = environ; *r != NULL; r++) {
        if (!is_ours(*r)) {
            *w++ = *r;
            continue;
        }
        if (!save || nsaved == HS_ENV_SAVED)
            continue;
        int dup = 0;
        for (int i = 0; i < nsaved && !dup; i++)
            dup = name_len(saved[i]) == name_len(*r) && strncmp(saved[i], *r, name_len(*r)) == 0;
        if (dup)
            continue;
        size_t n = strlen(*r) + 1;
        if (n <= sizeof(saved_buf) - used) {
            memcpy(saved_buf + used, *r, n);
            saved[nsaved++] = saved_buf + used;
            used += n;
        } else {
            saved[nsaved++] = *r;
        }
    }
    *w = NULL;
}

/* In the constructor, once the variables are read, when children are not followed. */
HS_HIDDEN void hs_env_hide(void)
{
    if (saved_pid != 0 || environ == NULL)
        return;
    preloaded = preloads_us(environ);
    remove_ours(1);
    saved_pid = getpid();
}

/* In a fork child that does not trace (one thread): what it execs must not trace either. */
HS_HIDDEN void hs_env_scrub(void)
{
    remove_ours(0);
}

/* ---- the environment of an exec ---------------------------------------------------------------- */

/* Whether envp preloads this library: an LD_PRELOAD entry with an element (separated by ':' or
 * blanks, as the loader reads it) whose file name is ours. */
static int preloads_us(char *const *envp)
{
    size_t blen = strlen(lib_base);
    for (; *envp != NULL; envp++) {
        if (strncmp(*envp, "LD_PRELOAD=", 11) != 0)
            continue;
        for (const char *p = *envp + 11; *p != '\0';) {
            size_t len = strcspn(p, ": \t");
            const char *end = p + len, *base = p;
            for (const char *c = p; c < end; c++)
                if (*c == '/')
                    base = c + 1;
            if (blen > 0 && (size_t)(end - base) == blen && memcmp(base, lib_base, blen) == 0)
                return 1;
            p = *end ? end + 1 : end;
        }
    }
    return 0;
}

typedef struct env_copy {
    char *stack[HS_ENV_STACK];
    char **map;                             /* mmap'd when the stack array is too small */
    size_t map_len;
} env_copy;

/* The envp to exec with: envp itself, or a copy in c with the saved variables appended.  Calls
 * nothing that allocates or locks; keeps errno. */
static char *const *exec_env(char *const *envp, env_copy *c)
{
    c->map = NULL;
    if (nsaved == 0 || envp == NULL || getpid() != saved_pid)
        return envp;
    if (preloaded ? !preloads_us(envp) : envp != (char *const *)environ)
        return envp;
    int e = errno;
    size_t n = 0;
    while (envp[n] != NULL)
        n++;
    size_t need = n + (size_t)nsaved + 1;
    char **out = c->stack;
    if (need > HS_ENV_STACK) {
        c->map_len = need * sizeof(char *);
        void *m = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (m == MAP_FAILED) {
            errno = e;
            return envp;                    /* the program's exec as it asked, untraced */
        }
        out = c->map = m;
    }
    memcpy(out, envp, n * sizeof(char *));
    for (int i = 0; i < nsaved; i++)
        if (!defines(envp, saved[i]))
            out[n++] = (char *)saved[i];
    out[n] = NULL;
    errno = e;
    return out;
}

/* The result of the real call, errno as it left it. */
static int done(int r, env_copy *c)
{
    if (c->map != NULL) {
        int e = errno;
        munmap(c->map, c->map_len);
        errno = e;
    }
    return r;
}

/* ---- the hooks ---------------------------------------------------------------------------------- */

#define HOOK __attribute__((visibility("default")))

HOOK int execve(const char *path, char *const argv[], char *const envp[])
{
    env_copy c;
    return done(REAL(execve)(path, argv, exec_env(envp, &c)), &c);
}

HOOK int execv(const char *path, char *const argv[])
{
    env_copy c;
    char *const *env = exec_env(environ, &c);
    if (env == environ)
        return REAL(execv)(path, argv);
    return done(REAL(execve)(path, argv, env), &c);
}

HOOK int execvpe(const char *file, char *const argv[], char *const envp[])
{
    env_copy c;
    return done(REAL(execvpe)(file, argv, exec_env(envp, &c)), &c);
}

HOOK int execvp(const char *file, char *const argv[])
{
    env_copy c;
    char *const *env = exec_env(environ, &c);
    if (env == environ)
        return REAL(execvp)(file, argv);
    return done(REAL(execvpe)(file, argv, env), &c);
}

HOOK int fexecve(int fd, char *const argv[], char *const envp[])
{
    env_copy c;
    return done(REAL(fexecve)(fd, argv, exec_env(envp, &c)), &c);
}

HOOK int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
    env_copy c;
    char *const *env = exec_env(envp, &c);
    if (REAL(execveat) == NULL)             /* a libc without the wrapper (before 2.34) */
        return done((int)syscall(SYS_execveat, dirfd, path, argv, env, flags), &c);
    return done(real.execveat(dirfd, path, argv, env, flags), &c);
}

/* The execl family: the argument list into an array on the stack, as libc does, then the
 * matching v-form above (E2BIG, as libc, when the list is too long to be an argv). */
static long count_args(va_list *ap)
{
    long argc = 1;
    for (; va_arg(*ap, const char *) != NULL; argc++)
        if (argc == INT_MAX)
            return -1;
    return argc;
}

/* argv[0] = arg, argv[1..argc] from the list (argv[argc] gets its NULL). */
static void fill_args(char **argv, long argc, const char *arg, va_list *ap)
{
    argv[0] = (char *)arg;
    for (long i = 1; i <= argc; i++)
        argv[i] = va_arg(*ap, char *);
}

#define ARGV_FROM_LIST(arg, argv)                                                              \
    va_list ap;                                                                                \
    va_start(ap, arg);                                                                         \
    long argc = count_args(&ap);                                                               \
    va_end(ap);                                                                                \
    if (argc < 0) {                                                                            \
        errno = E2BIG;                                                                         \
        return -1;                                                                             \
    }                                                                                          \
    char *argv[argc + 1];                                                                      \
    va_start(ap, arg);                                                                         \
    fill_args(argv, argc, arg, &ap)

HOOK int execl(const char *path, const char *arg, ...)
{
    ARGV_FROM_LIST(arg, argv);
    va_end(ap);
    return execv(path, argv);
}

HOOK int execlp(const char *file, const char *arg, ...)
{
    ARGV_FROM_LIST(arg, argv);
    va_end(ap);
    return execvp(file, argv);
}

HOOK int execle(const char *path, const char *arg, ...)
{
    ARGV_FROM_LIST(arg, argv);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return execve(path, argv, envp);
}
