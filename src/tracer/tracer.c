/*
 * tracer.c - the tracing lifecycle (SPEC section 1), activation from the environment, fork
 * handling, the final snapshot at exit, and the tracer's messages.
 *
 * Environment (read at the first hooked call, or in the constructor if the environment is not
 * set up yet):
 *   HEAPSNAP_FRAMES=N        start tracing at once with traceback limit N (1..65535)
 *   HEAPSNAP_OUTPUT=PATH     write the final snapshot there (made absolute now; a forked child
 *                            writes PATH.<pid>)
 *   HEAPSNAP_TRIM=0|1        allocation-site trimming (default 1)
 *   HEAPSNAP_ALLOC_FN=P:P    glob patterns of wrapper functions to trim from allocation sites
 *   HEAPSNAP_FOLLOW_FORK=0|1 forked children keep tracing (default 1)
 *   HEAPSNAP_LOG=PATH        where the tracer's messages go (default: standard error)
 *   HEAPSNAP_DIR=DIR         an output folder (`heapsnap run`): DIR/<pid>/ gets the snapshots,
 *                            timeline.tsv and heapsnap.log, and the tracer thread runs (agent.c)
 *   HEAPSNAP_INTERVAL=SEC    with HEAPSNAP_DIR: a snapshot every SEC seconds (fractions allowed)
 *   HEAPSNAP_PID=PID         with HEAPSNAP_FOLLOW_FORK=0: only process PID traces (set by `run`
 *                            so that spawned programs, which run no fork handler, do not)
 * A bad value gives one message and leaves tracing off; the program runs normally.
 * With HEAPSNAP_FOLLOW_FORK=0 the constructor then removes every HEAPSNAP_* variable from
 * environ, so the program sees the environment it would see untraced; an exec of the process's
 * own gets them back (hooks_exec.c).
 */
#include "tracer.h"
#include "symbolize.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;
extern int __cxa_atexit(void (*fn)(void *), void *arg, void *dso);

hs_state hs_st = { .limit = 1, .trim = 1 };
extern _Atomic int hs_env_done;

/* Guards start/stop/clear against each other and against fork (state_lock, taken first). */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static const pthread_mutex_t state_lock_init = PTHREAD_MUTEX_INITIALIZER;

static char output_base[4096];              /* HEAPSNAP_OUTPUT, absolute; "" = none */
static char output_path[4200];              /* this process's final snapshot */
static char log_path[4096];
static int follow_fork = 1;
static int hide_env;                        /* HEAPSNAP_* leave environ in the constructor */

HS_HIDDEN int hs_agent_enabled(void);
HS_HIDDEN int hs_agent_configure(const char *dir, double every);
HS_HIDDEN int hs_agent_write_snapshot(const char *kind, char *path, size_t len);
HS_HIDDEN void hs_agent_start(void);
HS_HIDDEN void hs_agent_after_fork(void);
HS_HIDDEN void hs_agent_close_files(void);
HS_HIDDEN void hs_agent_exiting(void);
/* hooks_exec.c: the tracer's variables out of environ, and back for an exec. */
HS_HIDDEN void hs_exec_init(void);
HS_HIDDEN void hs_env_hide(void);
HS_HIDDEN void hs_env_scrub(void);

void hs_set_log_path(const char *path)
{
    snprintf(log_path, sizeof(log_path), "%s", path);
}
static _Atomic int atfork_done;
static _Atomic int final_done;
static pid_t self_pid;                      /* set at start and in a fork child; a vfork child differs */

/* ---- messages ---------------------------------------------------------------------------------- */

/* One line, "heapsnap: <pid>: ...", to HEAPSNAP_LOG (opened and closed per message: the tracer
 * holds no descriptor of the program's) or to standard error. */
void hs_log(const char *fmt, ...)
{
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "heapsnap: %d: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    int fd = 2, opened = 0;
    if (log_path[0] != '\0') {
        /* A log that cannot be opened (the program chrooted, dropped its privileges, used up
         * its descriptors) drops the message: the program's standard error is its own. */
        fd = hs_fd_high(open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (fd < 0)
            return;
        opened = 1;
    }
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(fd, buf + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += w;
    }
    if (opened)
        close(fd);
}

/* ---- lifecycle ---------------------------------------------------------------------------------- */

static void atfork_prepare(void);
static void atfork_parent(void);
static void atfork_child(void);

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int hs_start(int nframes)
{
    if (nframes < 1 || nframes > HS_MAX_FRAMES)
        return -EINVAL;
    hs_hooks_init();
    if (!atomic_load(&hs_guard_ready))
        return -ENOTSUP;
    int g = hs_guard_enter();
    if (!atomic_exchange(&atfork_done, 1))
        pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    pthread_mutex_lock(&state_lock);
    if (!hs_tracing()) {
        hs_live_clear();
        atomic_store(&hs_st.limit, nframes);
        hs_st.start_monotonic = monotonic();
        atomic_store(&hs_st.lost_blocks, 0);
        atomic_store(&hs_st.lost_bytes, 0);
        atomic_store(&hs_st.unknown_frees, 0);
        atomic_store(&hs_st.oom, 0);
        atomic_store(&hs_st.tracing, 1);
    }
    pthread_mutex_unlock(&state_lock);
    if (g)
        hs_guard_leave();
    return 0;
}

void hs_exiting(void)
{
    hs_agent_exiting();
}

void hs_stop(void)
{
    pthread_mutex_lock(&state_lock);
    if (hs_tracing()) {
        atomic_store(&hs_st.tracing, 0);     /* hooks re-check it under the table locks */
        hs_live_clear();
    }
    pthread_mutex_unlock(&state_lock);
}

int hs_is_tracing(void) { return hs_tracing(); }
int hs_get_traceback_limit(void) { return atomic_load(&hs_st.limit); }

void hs_clear_traces(void)
{
    pthread_mutex_lock(&state_lock);
    if (hs_tracing())
        hs_live_clear();
    pthread_mutex_unlock(&state_lock);
}

void hs_get_traced_memory(size_t *current, size_t *peak)
{
    size_t c = 0, p = 0;
    if (hs_tracing()) {
        c = atomic_load(&hs_st.current);
        p = atomic_load(&hs_st.peak);
        if (p < c)
            p = c;
    }
    if (current)
        *current = c;
    if (peak)
        *peak = p;
}

void hs_reset_peak(void)
{
    if (hs_tracing())
        atomic_store(&hs_st.peak, atomic_load(&hs_st.current));
}

size_t hs_get_tracer_memory(void)
{
    return hs_tracing() ? hs_tables_memory() + hs_sym_memory() : 0;
}

int hs_track(unsigned int domain, uintptr_t ptr, size_t size)
{
    if (!hs_tracing())
        return HS_ENOTTRACING;
    int g = hs_guard_enter();
    uint32_t stack = hs_capture_stack(NULL);
    size_t old;
    int replaced;
    int r = hs_live_put(domain, ptr, size, stack, &old, &replaced);
    if (g)
        hs_guard_leave();
    if (r == -ECANCELED)
        return HS_ENOTTRACING;
    if (r == -ENOMEM) {
        atomic_store(&hs_st.oom, 1);
        return -ENOMEM;
    }
    return 0;
}

int hs_untrack(unsigned int domain, uintptr_t ptr)
{
    if (!hs_tracing())
        return HS_ENOTTRACING;
    hs_live_del(domain, ptr, NULL);
    return 0;
}

/* ---- the environment ---------------------------------------------------------------------------- */

/* Strict decimal in [lo, hi]; -1 when s is anything else. */
static long parse_int(const char *s, long lo, long hi)
{
    if (s == NULL || *s == '\0')
        return -1;
    long v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9' || v > hi)
            return -1;
        v = v * 10 + (*c - '0');
    }
    return v < lo || v > hi ? -1 : v;
}

/* Strict non-negative decimal with an optional fraction ("0.5", "2", "10.25"); -1 otherwise. */
static double parse_seconds(const char *s)
{
    if (s == NULL || *s == '\0')
        return -1;
    double v = 0, scale = 0;
    int digits = 0;
    for (const char *c = s; *c; c++) {
        if (*c == '.' && scale == 0) {
            scale = 1;
            continue;
        }
        if (*c < '0' || *c > '9')
            return -1;
        digits++;
        if (scale == 0) {
            v = v * 10 + (*c - '0');
        } else {
            scale /= 10;
            v += (*c - '0') * scale;
        }
    }
    return digits == 0 || v > 1e7 ? -1 : v;
}

static int make_absolute(const char *path, char *out, size_t len)
{
    if (path[0] == '/')
        return snprintf(out, len, "%s", path) < (int)len ? 0 : -1;
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return -1;
    return snprintf(out, len, "%s/%s", cwd, path) < (int)len ? 0 : -1;
}

static void set_output_path(void)
{
    if (output_base[0] == '\0')
        output_path[0] = '\0';
    else
        snprintf(output_path, sizeof(output_path), "%s", output_base);
}

/* Before libc's own initialisation (a DT_PREINIT_ARRAY function of the program can allocate)
 * libc's environ is not set yet: the environment is then read from /proc/self/environ into static
 * memory, with plain system calls. */
static char proc_env[32768];
static size_t proc_env_len;

static int load_proc_environ(void)
{
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    for (ssize_t r; got < sizeof(proc_env) - 1 &&
                    (r = read(fd, proc_env + got, sizeof(proc_env) - 1 - got)) != 0;) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    proc_env[got] = '\0';
    proc_env_len = got;
    return 0;
}

/* getenv, or the /proc copy while libc's environ is not set. */
static const char *env_get(const char *name)
{
    if (environ != NULL)
        return getenv(name);
    size_t n = strlen(name);
    for (size_t i = 0; i < proc_env_len; i += strlen(proc_env + i) + 1)
        if (strncmp(proc_env + i, name, n) == 0 && proc_env[i + n] == '=')
            return proc_env + i + n + 1;
    return NULL;
}

void hs_env_activate(void)
{
    static _Atomic int busy;
    if (atomic_exchange(&busy, 1))
        return;                              /* another thread is at it */
    int g = hs_guard_enter();
    if (environ == NULL && load_proc_environ() < 0) {
        atomic_store(&busy, 0);              /* too early and unreadable: try again later */
        if (g)
            hs_guard_leave();
        return;
    }
    const char *log = env_get("HEAPSNAP_LOG");
    if (log != NULL && *log != '\0' && make_absolute(log, log_path, sizeof(log_path)) < 0)
        log_path[0] = '\0';
    const char *frames = env_get("HEAPSNAP_FRAMES");
    const char *output = env_get("HEAPSNAP_OUTPUT");
    const char *trim = env_get("HEAPSNAP_TRIM");
    const char *fns = env_get("HEAPSNAP_ALLOC_FN");
    const char *follow = env_get("HEAPSNAP_FOLLOW_FORK");
    const char *dir = env_get("HEAPSNAP_DIR");
    const char *every = env_get("HEAPSNAP_INTERVAL");
    const char *only_pid = env_get("HEAPSNAP_PID");
    long n = -1;
    int ok = 1;
    double secs = 0;
    if (follow != NULL && parse_int(follow, 0, 0) == 0 && only_pid != NULL &&
        parse_int(only_pid, 1, 1L << 30) != (long)getpid()) {
        /* A program spawned by a traced one, and children are not followed: stay out. */
        atomic_store_explicit(&hs_env_done, 1, memory_order_release);
        if (g)
            hs_guard_leave();
        return;
    }
    if (frames != NULL && (n = parse_int(frames, 1, HS_MAX_FRAMES)) < 0) {
        hs_log("HEAPSNAP_FRAMES=%.40s: not a number from 1 to %d; not tracing", frames,
               HS_MAX_FRAMES);
        ok = 0;
    }
    if (ok && trim != NULL && parse_int(trim, 0, 1) < 0) {
        hs_log("HEAPSNAP_TRIM=%.40s: must be 0 or 1; not tracing", trim);
        ok = 0;
    }
    if (ok && follow != NULL && parse_int(follow, 0, 1) < 0) {
        hs_log("HEAPSNAP_FOLLOW_FORK=%.40s: must be 0 or 1; not tracing", follow);
        ok = 0;
    }
    if (ok && output != NULL && (*output == '\0' ||
                                 make_absolute(output, output_base, sizeof(output_base)) < 0)) {
        hs_log("HEAPSNAP_OUTPUT: not a usable path; not tracing");
        output_base[0] = '\0';
        ok = 0;
    }
    if (ok && every != NULL && ((secs = parse_seconds(every)) <= 0 || dir == NULL)) {
        hs_log("HEAPSNAP_INTERVAL=%.40s: must be a positive number of seconds, with "
               "HEAPSNAP_DIR; not tracing", every);
        ok = 0;
    }
    if (ok && dir != NULL) {
        char abs[4096];
        int r = *dir == '\0' || make_absolute(dir, abs, sizeof(abs)) < 0
                    ? -EINVAL : hs_agent_configure(abs, secs);
        if (r < 0) {
            hs_log("HEAPSNAP_DIR=%.200s: %s; not tracing", dir, hs_strerror(r));
            ok = 0;
        }
    }
    if (ok && fns != NULL && hs_set_alloc_fns(fns) < 0) {
        hs_log("HEAPSNAP_ALLOC_FN: out of memory; not tracing");
        ok = 0;
    }
    if (ok) {
        if (trim != NULL)
            atomic_store(&hs_st.trim, (int)parse_int(trim, 0, 1));
        if (follow != NULL)
            follow_fork = (int)parse_int(follow, 0, 1);
        set_output_path();
        /* Children are not followed: the program need not see our variables (an exec of its
         * own gets them back, hooks_exec.c).  Followed, they must reach its children. */
        hide_env = !follow_fork;
        if (n > 0 && hs_start((int)n) < 0)
            hs_log("cannot start tracing");
    }
    atomic_store_explicit(&hs_env_done, 1, memory_order_release);
    if (g)
        hs_guard_leave();
}

/* ---- fork --------------------------------------------------------------------------------------- */

/* Order: the loader uses (waited for, hooks.c), state_lock, the stack-cache free list, the stack
 * shards, the live shards, the wide table, the symbolizer. */
static void atfork_prepare(void)
{
    hs_loader_fork_prepare();
    pthread_mutex_lock(&state_lock);
    hs_tables_lock_all();
    hs_sym_atfork_prepare();
}

static void atfork_parent(void)
{
    hs_sym_atfork_parent();
    hs_tables_unlock_all();
    pthread_mutex_unlock(&state_lock);
    hs_loader_fork_parent();
}

static void atfork_child(void)
{
    hs_agent_close_files();
    self_pid = getpid();
    atomic_store(&final_done, 0);
    hs_sym_atfork_child();
    hs_tables_reinit_locks();
    int loader_busy = hs_loader_fork_child();
    memcpy(&state_lock, &state_lock_init, sizeof(state_lock));
    if (follow_fork && loader_busy && hs_tracing()) {
        /* Another thread was inside the dynamic loader (dl_iterate_phdr, or a tracer call the
         * fork could not wait for): its lock may be held for good in this child, and unwinding
         * needs it.  Get out of the way. */
        hs_log("forked while another thread was inside dl_iterate_phdr; not tracing this child");
        follow_fork = 0;
    }
    if (!follow_fork) {
        atomic_store(&hs_st.tracing, 0);
        hs_live_clear();
        output_path[0] = '\0';
        hs_env_scrub();
        return;
    }
    if (output_base[0] != '\0')
        snprintf(output_path, sizeof(output_path), "%s.%d", output_base, (int)getpid());
    if (hs_tracing()) {
        int g = hs_guard_enter();
        hs_agent_after_fork();
        if (g)
            hs_guard_leave();
    }
}

/* ---- the final snapshot ------------------------------------------------------------------------- */

/* Runs after every atexit handler and ELF destructor: registered from our own destructor, which
 * runs inside the loader's _dl_fini, itself the first-registered (so last-run) exit handler. */
static void final_snapshot(void *unused)
{
    (void)unused;
    if (!hs_tracing() || (output_path[0] == '\0' && !hs_agent_enabled()) ||
        atomic_exchange(&final_done, 1))
        return;
    int g = hs_guard_enter();
    if (hs_agent_enabled()) {
        char path[4400];
        hs_agent_write_snapshot("final", path, sizeof(path));
        if (g)
            hs_guard_leave();
        return;
    }
    hs_snapshot *s = hs_take_snapshot_kind("final");
    if (s == NULL) {
        hs_log("final snapshot: %s", hs_strerror(-errno));
    } else {
        int r = hs_snapshot_dump(s, output_path);
        if (r < 0)
            hs_log("final snapshot: %s: %s", output_path, hs_strerror(r));
        hs_snapshot_free(s);
    }
    if (g)
        hs_guard_leave();
}

/* _exit and _Exit: programs that end this way (shells, daemons after fork) still leave a final
 * snapshot, as valgrind still counts what is in use at exit.  Skipped in a vfork child (it
 * shares the parent's memory: its pid differs from ours), and when this thread is inside the
 * tracer already (a signal handler calling _exit interrupted a hook that holds a lock). */
__attribute__((visibility("default"), noreturn)) void _exit(int status)
{
    if (hs_tracing() && !hs_guard_held() && getpid() == self_pid)
        final_snapshot(NULL);
    static void (*real_exit)(int) __attribute__((noreturn));
    if (real_exit == NULL)
        *(void **)&real_exit = dlsym(RTLD_NEXT, "_exit");
    if (real_exit != NULL)
        real_exit(status);
    for (;;)
        syscall(SYS_exit_group, status);
}

__attribute__((visibility("default"), noreturn)) void _Exit(int status)
{
    _exit(status);
}

__attribute__((constructor)) static void hs_init(void)
{
    self_pid = getpid();
    hs_hooks_init();
    if (!atomic_load(&hs_env_done))
        hs_env_activate();
    int g = hs_guard_enter();
    hs_exec_init();
    /* Here rather than where the variables are read: that can be inside the program's first
     * malloc, called by setenv while it rearranges environ.  A constructor runs outside libc. */
    if (hide_env)
        hs_env_hide();
    hs_agent_start();
    if (g)
        hs_guard_leave();
}

/* The final snapshot must come after every exit handler.  Exit handlers run last-registered
 * first, and libraries' constructors register theirs before main (before the loader's _dl_fini
 * is registered): so the final snapshot is registered at the first __cxa_atexit call of the
 * process if that comes before main's start-up (library constructors), ahead of all of them.
 * Otherwise (no library registered one; glibc's own registrations bypass the PLT) the destructor
 * below registers it, to run right after _dl_fini, which then is the first-registered. */
static _Atomic int final_registered;
static _Atomic int main_started;            /* __libc_start_main has registered _dl_fini */

typedef int (*main_fn)(int, char **, char **);

/* Only notes that the program's start-up began: from here on, an exit handler registered first
 * would run before _dl_fini, so the destructor below registers the final snapshot instead. */
__attribute__((visibility("default"))) int __libc_start_main(main_fn main, int argc, char **argv,
                                                            void (*init)(void), void (*fini)(void),
                                                            void (*rtld_fini)(void), void *stack_end)
{
    static int (*real)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void),
                       void *);
    atomic_store(&main_started, 1);
    *(void **)&real = dlsym(RTLD_NEXT, "__libc_start_main");
    return real(main, argc, argv, init, fini, rtld_fini, stack_end);
}

static void register_final(int (*real)(void (*)(void *), void *, void *))
{
    if (!atomic_exchange(&final_registered, 1))
        real(final_snapshot, NULL, NULL);
}

__attribute__((visibility("default"))) int __cxa_atexit(void (*fn)(void *), void *arg, void *dso)
{
    static int (*real)(void (*)(void *), void *, void *);
    if (HS_UNLIKELY(real == NULL)) {
        int g = hs_guard_enter();
        *(void **)&real = dlsym(RTLD_NEXT, "__cxa_atexit");
        if (g)
            hs_guard_leave();
        if (real == NULL)
            return -1;
    }
    if (HS_UNLIKELY(!atomic_load_explicit(&final_registered, memory_order_relaxed)) &&
        !atomic_load_explicit(&main_started, memory_order_relaxed)) {
        int g = hs_guard_enter();
        register_final(real);
        if (g)
            hs_guard_leave();
    }
    return real(fn, arg, dso);
}

__attribute__((destructor)) static void hs_fini(void)
{
    if (!atomic_load(&final_registered) && hs_tracing() &&
        (output_path[0] != '\0' || hs_agent_enabled())) {
        atomic_store(&final_registered, 1);
        int g = hs_guard_enter();
        __cxa_atexit(final_snapshot, NULL, NULL);
        if (g)
            hs_guard_leave();
    }
}
