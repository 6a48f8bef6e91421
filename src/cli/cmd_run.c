/*
 * cmd_run.c - `heapsnap run [options] -- PROGRAM [ARGS...]`: run a program with the tracer
 * preloaded, its snapshots going to one folder.
 *
 * The program's standard streams, exit status and signals are its own: run waits for it, exits
 * with its status (128+N when signal N killed it), and forwards the signals that are sent to run
 * itself.  Signals from the terminal reach the whole process group, the program included, so run
 * does not forward those a second time.  Everything inside the traced process is configured
 * through the environment (HEAPSNAP_*, see src/tracer/tracer.c); run checks beforehand whether
 * the program can be traced at all.
 */
#include "cli.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>

extern char **environ;

#define DEFAULT_FRAMES 16

static pid_t child = -1;

static void forward(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    /* kill() and sigqueue() from someone else: pass it on.  From the terminal or the kernel: the
     * program got it too. */
    if (child > 0 && (si->si_code == SI_USER || si->si_code == SI_QUEUE) && si->si_pid != child)
        kill(child, sig);
}

/* The signals a process manager or a user sends (kill, sigqueue) that run passes on: every one
 * a program may handle, but not SIGCHLD (run's own) or job control (sent to the whole process
 * group by the terminal already). */
static int forwarded(int sig)
{
    switch (sig) {
    case SIGINT: case SIGTERM: case SIGHUP: case SIGQUIT: case SIGUSR1: case SIGUSR2:
    case SIGWINCH: case SIGALRM: case SIGPWR: case SIGURG: case SIGVTALRM: case SIGPROF:
        return 1;
    default:
        return sig >= SIGRTMIN && sig <= SIGRTMAX;
    }
}

static int usage(int status)
{
    FILE *f = status ? stderr : stdout;
    fprintf(f,
            "usage: heapsnap run [options] -- PROGRAM [ARGS...]\n"
            "Run PROGRAM with the allocation tracer; snapshots go to one folder per process.\n\n"
            "Options:\n"
            "  -n, --frames N        traceback limit, 1 to %d (default %d)\n"
            "  -o, --output DIR      output folder, created 0700; must be new or empty\n"
            "                        (default: ./heapsnap.<program>.<pid>)\n"
            "  --interval SECONDS    also take a snapshot every SECONDS (fractions allowed)\n"
            "  --alloc-fn PATTERN    a wrapper function to trim from allocation sites, as a\n"
            "                        glob (repeatable): --alloc-fn xmalloc --alloc-fn 'g_malloc*'\n"
            "  --follow-fork         trace forked and spawned children too, each in DIR/<pid>\n"
            "  -q, --quiet           no messages of heapsnap's own\n"
            "  -h, --help            this help\n\n"
            "Inside DIR/<pid>/: <seq>-<interval|request|final>.hsnap, timeline.tsv, heapsnap.log.\n"
            "Exit status: the program's (128+N if signal N killed it); 2 for heapsnap's own usage\n"
            "errors, 126 if PROGRAM cannot be executed, 127 if it is not found.\n",
            HS_MAX_FRAMES, DEFAULT_FRAMES);
    return status;
}

/* PROGRAM as execvp would find it; NULL and errno when not found. */
static char *resolve_program(const char *prog)
{
    if (strchr(prog, '/') != NULL)
        return access(prog, F_OK) == 0 ? strdup(prog) : NULL;
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    int saw_eacces = 0;
    for (const char *p = path;;) {
        const char *e = strchr(p, ':');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char cand[PATH_MAX];
        if (snprintf(cand, sizeof(cand), "%.*s%s%s", (int)len, p, len ? "/" : "", prog) <
            (int)sizeof(cand)) {
            struct stat st;
            if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
                if (access(cand, X_OK) == 0)
                    return strdup(cand);
                saw_eacces = 1;
            }
        }
        if (e == NULL)
            break;
        p = e + 1;
    }
    errno = saw_eacces ? EACCES : ENOENT;
    return NULL;
}

/* Why the program cannot be traced, or NULL when it can: heapsnap enters a process through the
 * dynamic loader's LD_PRELOAD, which a static binary has no loader for, and which the loader
 * ignores for set-user-ID and set-group-ID programs. */
static const char *untraceable(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return NULL;
    if (st.st_mode & (S_ISUID | S_ISGID))
        return "it is set-user-ID or set-group-ID, and the loader ignores LD_PRELOAD for it";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    Elf64_Ehdr eh;
    const char *why = NULL;
    ssize_t n = pread(fd, &eh, sizeof(eh), 0);
    if (n >= 2 && memcmp(&eh, "#!", 2) == 0)
        goto out;                             /* a script: its interpreter decides */
    if (n != (ssize_t)sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
        goto out;                             /* not something we know: let exec decide */
    int interp = 0;
    for (int i = 0; i < eh.e_phnum && i < 4096; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (Elf64_Off)i * sizeof(ph))) !=
            (ssize_t)sizeof(ph))
            break;
        if (ph.p_type == PT_INTERP)
            interp = 1;
    }
    if (!interp)
        why = "it is statically linked (no dynamic loader to preload heapsnap into)";
out:
    close(fd);
    return why;
}

/* libheapsnap.so beside the heapsnap binary (build tree) or in ../lib (installed). */
static int find_library(char *out, size_t len)
{
    const char *env = getenv("HEAPSNAP_LIBRARY");
    if (env != NULL && *env != '\0') {
        snprintf(out, len, "%s", env);
        return access(out, R_OK) == 0 ? 0 : -1;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    *slash = '\0';
    static const char *const rel[] = { "/libheapsnap.so", "/../lib/libheapsnap.so",
                                       "/../lib/x86_64-linux-gnu/libheapsnap.so",
                                       "/../lib64/libheapsnap.so" };
    for (size_t i = 0; i < HS_ARRAY_LEN(rel); i++) {
        char cand[PATH_MAX + 64];
        snprintf(cand, sizeof(cand), "%s%s", exe, rel[i]);
        char real[PATH_MAX];
        if (realpath(cand, real) != NULL && access(real, R_OK) == 0) {
            snprintf(out, len, "%s", real);
            return 0;
        }
    }
    return -1;
}

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int empty = 1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

/* The newest snapshot file of a process folder, and whether a final one is there. */
static int newest_snapshot(const char *dir, char *out, size_t len, int *has_final, int *count)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    char best[256] = "";
    *has_final = 0;
    *count = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n < 7 || strcmp(e->d_name + n - 6, ".hsnap") != 0)
            continue;
        ++*count;
        if (strstr(e->d_name, "-final.") != NULL)
            *has_final = 1;
        if (strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof(best), "%s", e->d_name);
    }
    closedir(d);
    if (best[0] == '\0')
        return -1;
    snprintf(out, len, "%s/%s", dir, best);
    return 0;
}

/* Relays the traced processes' messages and says where their snapshots are. */
static void summarize(const char *outdir, pid_t pid, int status)
{
    DIR *d = opendir(outdir);
    if (d == NULL)
        return;
    int processes = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char sub[PATH_MAX], log[PATH_MAX + 32];
        if (snprintf(sub, sizeof(sub), "%s/%s", outdir, e->d_name) >= (int)sizeof(sub))
            continue;
        processes++;
        snprintf(log, sizeof(log), "%s/heapsnap.log", sub);
        FILE *f = fopen(log, "re");
        if (f != NULL) {
            char line[1024];
            int shown = 0;
            while (fgets(line, sizeof(line), f) != NULL && shown < 20) {
                fputs(line, stderr);
                shown++;
            }
            fclose(f);
        }
        if (atoll(e->d_name) == (long long)pid && WIFSIGNALED(status)) {
            char last[PATH_MAX + 300];
            int has_final, count;
            if (newest_snapshot(sub, last, sizeof(last), &has_final, &count) == 0)
                cli_note("killed by signal %d: no final snapshot; the last one is %s",
                         WTERMSIG(status), last);
            else
                cli_note("killed by signal %d before any snapshot was taken (use --interval "
                         "to have periodic ones)", WTERMSIG(status));
        }
    }
    closedir(d);
    if (processes > 0)
        cli_note("snapshots of %d process%s in %s", processes, processes == 1 ? "" : "es",
                 outdir);
}

static int set_env(const char *name, const char *value)
{
    if (setenv(name, value, 1) < 0) {
        cli_error("run: %s: %s", name, strerror(errno));
        return -1;
    }
    return 0;
}

int cli_parse_run(int argc, char **argv, cli_run_args *a)
{
    static const struct option longopts[] = {
        { "frames", required_argument, NULL, 'n' },
        { "output", required_argument, NULL, 'o' },
        { "interval", required_argument, NULL, OPT_INTERVAL },
        { "alloc-fn", required_argument, NULL, OPT_ALLOC_FN },
        { "follow-fork", no_argument, NULL, OPT_FOLLOW_FORK },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    a->frames = DEFAULT_FRAMES;
    a->output = a->interval = NULL;
    a->alloc_fns[0] = '\0';
    a->follow = a->quiet = 0;
    a->prog_argv = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+n:o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (cli_parse_long(optarg, 1, HS_MAX_FRAMES, &a->frames) < 0) {
                cli_error("run: --frames %s: expected a number from 1 to %d", optarg,
                          HS_MAX_FRAMES);
                return EXIT_USAGE;
            }
            break;
        case 'o':
            a->output = optarg;
            break;
        case OPT_INTERVAL: {
            char *end;
            errno = 0;
            double v = strtod(optarg, &end);
            if (errno || *end || !(v > 0) || v > 1e7 || strspn(optarg, "0123456789.") != strlen(optarg)) {
                cli_error("run: --interval %s: expected a positive number of seconds", optarg);
                return EXIT_USAGE;
            }
            a->interval = optarg;
            break;
        }
        case OPT_ALLOC_FN:
            if (*optarg == '\0' || strchr(optarg, ':') != NULL ||
                strlen(a->alloc_fns) + strlen(optarg) + 2 > sizeof(a->alloc_fns)) {
                cli_error("run: --alloc-fn '%s': expected a non-empty glob without ':'", optarg);
                return EXIT_USAGE;
            }
            if (a->alloc_fns[0])
                strcat(a->alloc_fns, ":");
            strcat(a->alloc_fns, optarg);
            break;
        case OPT_FOLLOW_FORK:
            a->follow = 1;
            break;
        case 'q':
            a->quiet = 1;
            break;
        case 'h':
            return usage(EXIT_OK);
        default:
            return usage(EXIT_USAGE);
        }
    }
    if (optind >= argc) {
        cli_error("run: expected a program to run: heapsnap run [options] -- PROGRAM [ARGS...]");
        return EXIT_USAGE;
    }
    a->prog_argv = argv + optind;
    return CLI_PROCEED;
}

int cmd_run(int argc, char **argv)
{
    cli_run_args a;
    int prc = cli_parse_run(argc, argv, &a);
    if (prc != CLI_PROCEED)
        return prc;
    if (a.quiet)
        cli_quiet = 1;
    long frames = a.frames;
    const char *output = a.output, *interval = a.interval;
    const char *alloc_fns = a.alloc_fns;
    int follow = a.follow;
    char **prog_argv = a.prog_argv;

    char *path = resolve_program(prog_argv[0]);
    if (path == NULL) {
        int e = errno;
        cli_error("%s: %s", prog_argv[0], e == EACCES ? "permission denied" : "command not found");
        return e == EACCES ? 126 : 127;
    }
    if (access(path, X_OK) < 0) {
        cli_error("%s: %s", path, strerror(errno));
        free(path);
        return 126;
    }
    const char *why = untraceable(path);

    char lib[PATH_MAX];
    if (why == NULL && find_library(lib, sizeof(lib)) < 0) {
        cli_error("run: cannot find libheapsnap.so beside the heapsnap command or in ../lib "
                  "(set HEAPSNAP_LIBRARY to its path)");
        free(path);
        return EXIT_USAGE;
    }

    /* The output folder: absolute, new or empty, 0700. */
    char outdir[PATH_MAX];
    if (output == NULL) {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            cli_error("run: current folder: %s", strerror(errno));
            free(path);
            return EXIT_USAGE;
        }
        const char *base = strrchr(prog_argv[0], '/');
        if (snprintf(outdir, sizeof(outdir), "%s/heapsnap.%s.%d", cwd,
                     base ? base + 1 : prog_argv[0], (int)getpid()) >= (int)sizeof(outdir))
            outdir[0] = '\0';
    } else if (output[0] == '/') {
        if (snprintf(outdir, sizeof(outdir), "%s", output) >= (int)sizeof(outdir))
            outdir[0] = '\0';
    } else {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            cli_error("run: current folder: %s", strerror(errno));
            free(path);
            return EXIT_USAGE;
        }
        if (snprintf(outdir, sizeof(outdir), "%s/%s", cwd, output) >= (int)sizeof(outdir))
            outdir[0] = '\0';
    }
    if (outdir[0] == '\0') {
        cli_error("run: output folder name too long");
        free(path);
        return EXIT_USAGE;
    }
    if (why == NULL) {
        struct stat st;
        if (lstat(outdir, &st) == 0) {
            if (!S_ISDIR(st.st_mode) || dir_is_empty(outdir) != 1) {
                cli_error("run: %s: %s", outdir,
                          S_ISDIR(st.st_mode) ? "exists and is not empty" : "exists and is not a folder");
                free(path);
                return EXIT_USAGE;
            }
            if (st.st_uid != geteuid() || chmod(outdir, 0700) < 0) {
                cli_error("run: %s: not a folder of yours", outdir);
                free(path);
                return EXIT_USAGE;
            }
        } else if (mkdir(outdir, 0700) < 0) {
            cli_error("run: %s: %s", outdir, strerror(errno));
            free(path);
            return EXIT_USAGE;
        }
    }

    /* The environment of the traced program. */
    for (char **e = environ; e && *e;) {
        if (strncmp(*e, "HEAPSNAP_", 9) == 0 && strncmp(*e, "HEAPSNAP_LIBRARY=", 17) != 0) {
            char name[256];
            size_t n = strcspn(*e, "=");
            snprintf(name, sizeof(name), "%.*s", (int)n, *e);
            unsetenv(name);
            continue;                         /* environ shifted: look at the same slot */
        }
        e++;
    }
    if (why != NULL) {
        cli_note("cannot trace %s: %s; running it untraced", path, why);
    } else {
        char frames_s[16];
        snprintf(frames_s, sizeof(frames_s), "%ld", frames);
        const char *old = getenv("LD_PRELOAD");
        size_t plen = strlen(lib) + (old ? strlen(old) + 1 : 0) + 1;
        char *preload = malloc(plen);
        if (preload == NULL)
            return EXIT_USAGE;
        snprintf(preload, plen, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "");
        if (set_env("LD_PRELOAD", preload) < 0 || set_env("HEAPSNAP_FRAMES", frames_s) < 0 ||
            set_env("HEAPSNAP_DIR", outdir) < 0 ||
            set_env("HEAPSNAP_FOLLOW_FORK", follow ? "1" : "0") < 0 ||
            (interval && set_env("HEAPSNAP_INTERVAL", interval) < 0) ||
            (alloc_fns[0] && set_env("HEAPSNAP_ALLOC_FN", alloc_fns) < 0)) {
            free(preload);
            return EXIT_USAGE;
        }
        free(preload);
    }

    /* Forward signals from the moment the child exists. */
    sigset_t block, old_mask;
    sigemptyset(&block);
    for (int sig = 1; sig < NSIG; sig++)
        if (forwarded(sig))
            sigaddset(&block, sig);
    sigprocmask(SIG_BLOCK, &block, &old_mask);
    fflush(NULL);
    child = fork();
    if (child < 0) {
        cli_error("run: fork: %s", strerror(errno));
        return EXIT_USAGE;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        char pid_s[16];
        snprintf(pid_s, sizeof(pid_s), "%d", (int)getpid());
        if (why == NULL)
            setenv("HEAPSNAP_PID", pid_s, 1);
        execv(path, prog_argv);
        int e = errno;
        if (e == ENOEXEC) {
            /* A script without #!: as the shell would run it. */
            size_t n = 0;
            while (prog_argv[n])
                n++;
            char **sh = calloc(n + 2, sizeof(char *));
            if (sh != NULL) {
                sh[0] = "sh";
                sh[1] = path;
                for (size_t i = 1; i < n; i++)
                    sh[i + 1] = prog_argv[i];
                execv("/bin/sh", sh);
            }
        }
        fprintf(stderr, "heapsnap: %s: %s\n", path, strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }
    struct sigaction sa = { .sa_sigaction = forward, .sa_flags = SA_SIGINFO | SA_RESTART };
    sigfillset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (forwarded(sig))
            sigaction(sig, &sa, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);

    int status;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) {
            cli_error("run: waitpid: %s", strerror(errno));
            return EXIT_USAGE;
        }
    }
    if (why == NULL && !cli_quiet)
        summarize(outdir, child, status);
    free(path);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return EXIT_USAGE;
}
