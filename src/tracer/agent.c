/*
 * agent.c - the tracer's own thread, for what is not on the allocation path: the timeline,
 * periodic snapshots, and snapshots asked for by `heapsnap snapshot PID`.
 *
 * It runs only when the process has an output folder (HEAPSNAP_DIR, set by `heapsnap run`):
 * DIR/<pid>/ holds <seq>-<interval|request|final>.hsnap, timeline.tsv and heapsnap.log.
 *
 * The thread blocks every signal (the program's handlers never run on it) and holds the
 * reentrancy guard for its whole life (nothing it allocates is traced).  Every file it opens is
 * O_CLOEXEC and O_NOFOLLOW, and moved at once to the top of the descriptor range (hs_fd_high).
 * The three it reads or writes on every tick (timeline.tsv, /proc/self/statm, DIR/<pid>/) stay
 * open there, so that a steady tick opens nothing: an open takes the program's lowest free number
 * for a moment, and the program may be opening a file at that very moment.  (One that could not be
 * moved, the top of the range being full, is closed after use instead of kept.)  The program may
 * close those descriptors (close_range) and reuse the numbers: each is checked to be the same file
 * (device and inode) before use, and reopened when it is not; a number that is no longer ours is
 * never closed.  Requests are files "request.<nonce>" that the requester creates in DIR/<pid>/,
 * which only its owner can write to (0700); a request file must be a regular file of our own
 * user.  The answer is "request.<nonce>.done", written atomically, holding the snapshot's path.
 */
#include "tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS (100 * 1000 * 1000L)        /* timeline period: 100 ms */

static char base_dir[4096];                 /* HEAPSNAP_DIR; "" when the agent is off */
static char proc_dir[4200];                 /* base_dir/<pid> */
static double interval;                     /* seconds between periodic snapshots; 0 = none */
static _Atomic int exiting;                  /* hs_exiting: no more periodic snapshots */
static _Atomic unsigned seq;                /* last snapshot number used in proc_dir */
static _Atomic int skip_warned;               /* a failed snapshot was logged; reset by a good one */
static _Atomic int running;

int hs_agent_enabled(void) { return base_dir[0] != '\0'; }

/* A descriptor kept open between ticks, and the file it was opened on.  kept_lock guards them
 * all and their use: the final snapshot's timeline row is written by a program thread. */
typedef struct kept_fd { int fd; dev_t dev; ino_t ino; } kept_fd;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static kept_fd timeline_fd = { -1, 0, 0 }, statm_fd = { -1, 0, 0 }, dir_fd = { -1, 0, 0 };
static kept_fd stat_fd = { -1, 0, 0 };

static int kept_is_ours(const kept_fd *k)
{
    struct stat st;
    return k->fd >= 0 && fstat(k->fd, &st) == 0 && st.st_dev == k->dev && st.st_ino == k->ino;
}

/* pre: kept_lock.  k's descriptor, reopened from path when it no longer refers to the file it was
 * opened on.  A descriptor that could not be moved out of the program's way is not kept: it is
 * used once, and kept_done closes it. */
static int kept_open(kept_fd *k, const char *path, int flags)
{
    if (kept_is_ours(k))
        return k->fd;
    k->fd = -1;                              /* closed by the program, maybe reused: not ours */
    int low = open(path, flags | O_CLOEXEC, 0600);
    int fd = hs_fd_high(low);
    struct stat st;
    if (fd >= 0 && fd != low && fstat(fd, &st) == 0)
        *k = (kept_fd){ fd, st.st_dev, st.st_ino };
    return fd;
}

/* pre: kept_lock.  After a use of kept_open's descriptor. */
static void kept_done(const kept_fd *k, int fd)
{
    if (fd >= 0 && fd != k->fd)
        close(fd);
}

/* pre: kept_lock.  Closes what is still ours. */
static void kept_close(kept_fd *k)
{
    if (kept_is_ours(k))
        close(k->fd);
    k->fd = -1;
}

/* pre: kept_lock. */
static void kept_close_all(void)
{
    kept_close(&timeline_fd);
    kept_close(&statm_fd);
    kept_close(&stat_fd);
    kept_close(&dir_fd);
}

/* Creates proc_dir (0700) for the current pid, or checks that the one there is ours. */
static int make_proc_dir(void)
{
    snprintf(proc_dir, sizeof(proc_dir), "%s/%d", base_dir, (int)getpid());
    if (mkdir(proc_dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (lstat(proc_dir, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
        return -EPERM;                      /* a link or someone else's folder: refuse it */
    char log[4300];
    snprintf(log, sizeof(log), "%s/heapsnap.log", proc_dir);
    hs_set_log_path(log);
    return 0;
}

/* The kernel's directory entry (getdents64). */
struct dirent64_raw { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; };

/* Calls fn with the name of each entry of proc_dir until it returns nonzero.  The folder is read
 * through its kept descriptor, directly: a DIR's closedir would close a number that may no longer
 * be ours. */
static void each_name(int (*fn)(const char *name, void *arg), void *arg)
{
    _Alignas(8) char buf[4096];
    long got;
    int stop = 0;
    pthread_mutex_lock(&kept_lock);
    int dfd = kept_open(&dir_fd, proc_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    int rewound = dfd >= 0 && lseek(dfd, 0, SEEK_SET) == 0;
    while (rewound && !stop && (got = syscall(SYS_getdents64, dfd, buf, sizeof(buf))) > 0) {
        for (long off = 0; off < got && !stop;) {
            const struct dirent64_raw *e = (const struct dirent64_raw *)(buf + off);
            off += e->reclen;
            stop = fn(e->name, arg);
        }
    }
    kept_done(&dir_fd, dfd);
    pthread_mutex_unlock(&kept_lock);
}

static int note_seq(const char *name, void *arg)
{
    unsigned n, *max = arg;
    if (sscanf(name, "%6u-", &n) == 1 && strstr(name, ".hsnap") && n > *max)
        *max = n;
    return 0;
}

/* Continues numbering after the snapshots already there (an exec keeps the pid). */
static void scan_seq(void)
{
    unsigned max = 0;
    each_name(note_seq, &max);
    atomic_store(&seq, max);
}

int hs_agent_configure(const char *dir, double every)
{
    if (snprintf(base_dir, sizeof(base_dir), "%s", dir) >= (int)sizeof(base_dir))
        return -ENAMETOOLONG;
    interval = every;
    int r = make_proc_dir();
    if (r < 0)
        base_dir[0] = '\0';
    return r;
}

int hs_agent_snapshot_path(const char *kind, char *buf, size_t len)
{
    if (!hs_agent_enabled())
        return -ENOENT;
    unsigned n = atomic_fetch_add(&seq, 1) + 1;
    if (snprintf(buf, len, "%s/%06u-%s.hsnap", proc_dir, n, kind) >= (int)len)
        return -ENAMETOOLONG;
    return 0;
}

/* Takes and writes one snapshot; the path written, or "" on failure (logged once per kind of
 * failure: a full disk is one warning, then silence while it stays full). */
static void timeline_tick(void);

int hs_agent_write_snapshot(const char *kind, char *path, size_t len)
{
    path[0] = '\0';
    if (strcmp(kind, "final") == 0)
        timeline_tick();                     /* the last row (and the only one of a short run) */
    char p[4400];
    if (hs_agent_snapshot_path(kind, p, sizeof(p)) < 0)
        return -ENOENT;
    hs_snapshot *s = hs_take_snapshot_kind(kind);
    if (s != NULL && strcmp(kind, "interval") == 0 && atomic_load(&exiting)) {
        hs_snapshot_free(s);                 /* the program began shutting down meanwhile */
        return -ECANCELED;
    }
    if (s == NULL) {
        int e = errno;
        hs_log("%s snapshot: %s", kind, hs_strerror(-e));
        return -e;
    }
    int r = hs_snapshot_dump(s, p);
    hs_snapshot_free(s);
    if (r < 0) {                 /* said once, until a snapshot is written again */
        if (!atomic_exchange(&skip_warned, 1))
            hs_log("%s: %s; snapshot skipped, tracing goes on", p, hs_strerror(r));
        return r;
    }
    atomic_store(&skip_warned, 0);
    snprintf(path, len, "%s", p);
    return 0;
}

/* Appends one line to the timeline, creating it with a header line first. */
static void timeline_append(const char *header, const char *line)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/timeline.tsv", proc_dir);
    int fd = kept_open(&timeline_fd, path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW);
    if (fd < 0)
        return;
    struct stat st;
    if ((fstat(fd, &st) != 0 || st.st_size != 0 || write(fd, header, strlen(header)) >= 0) &&
        write(fd, line, strlen(line)) < 0) {
        /* A full disk: the timeline has a gap; nothing else to do. */
    }
    kept_done(&timeline_fd, fd);
}

static size_t rss_bytes(void)
{
    char buf[128];
    int fd = kept_open(&statm_fd, "/proc/self/statm", O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    kept_done(&statm_fd, fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    unsigned long size, resident;
    if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
        return 0;
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Whether this thread is all that is left of the program: the main thread has exited (a zombie,
 * which /proc/self/stat still counts) and one thread lives, this one.  Untraced, the program
 * would have ended there: glibc's last thread calls exit(0), and a raw exit of the last thread
 * ends the process with the main thread's status.  *code: that status (field 52).  The other
 * threads are then gone and cannot allocate: reading the file under kept_lock suffices. */
static int agent_is_last(int *code)
{
    char buf[1024];
    pthread_mutex_lock(&kept_lock);
    int fd = kept_open(&stat_fd, "/proc/self/stat", O_RDONLY);
    ssize_t n = fd >= 0 ? pread(fd, buf, sizeof(buf) - 1, 0) : -1;
    if (fd >= 0)
        kept_done(&stat_fd, fd);
    pthread_mutex_unlock(&kept_lock);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');          /* the name may hold spaces and parentheses */
    if (p == NULL || p[1] != ' ' || p[2] != 'Z')
        return 0;
    long field[53] = { 0 };
    int k = 3;                                   /* p + 2 is field 3, the state */
    for (const char *q = p + 2; k < 52 && (q = strchr(q, ' ')) != NULL; q++)
        field[++k] = strtol(q + 1, NULL, 10);    /* fields 4 .. 52, later ones ignored */
    if (k < 52 || field[20] != 2)
        return 0;
    *code = (int)(field[52] >> 8 & 0xff);
    return 1;
}

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void timeline_tick(void)
{
    size_t cur, peak;
    hs_get_traced_memory(&cur, &peak);
    char line[160];
    pthread_mutex_lock(&kept_lock);
    snprintf(line, sizeof(line), "%.3f\t%zu\t%zu\t%zu\n", monotonic() - hs_st.start_monotonic,
             cur, peak, rss_bytes());
    timeline_append("t_seconds\ttraced_current\ttraced_peak\trss\n", line);
    pthread_mutex_unlock(&kept_lock);
}

/* Answers every pending request: a regular file of ours named request.<nonce>. */
typedef struct requests { char names[8][256]; int n; } requests;

static int note_request(const char *name, void *arg)
{
    requests *r = arg;
    size_t len = strlen(name);
    if (strncmp(name, "request.", 8) == 0 && len >= 9 && len < 200 && strchr(name + 8, '.') == NULL)
        memcpy(r->names[r->n++], name, len + 1);             /* len < 200 */
    return r->n == 8;
}

static void serve_requests(void)
{
    requests rq = { .n = 0 };
    each_name(note_request, &rq);
    for (int i = 0; i < rq.n; i++) {
        char req[4500], done[4600], tmp[4600], path[4400];
        if (snprintf(req, sizeof(req), "%s/%s", proc_dir, rq.names[i]) >= (int)sizeof(req))
            continue;
        struct stat st;
        if (lstat(req, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
            unlink(req);
            continue;
        }
        unlink(req);
        hs_agent_write_snapshot("request", path, sizeof(path));
        /* The answer: the path, or an empty line when the snapshot failed. */
        if (snprintf(done, sizeof(done), "%s.done", req) >= (int)sizeof(done) ||
            snprintf(tmp, sizeof(tmp), "%s.tmp", req) >= (int)sizeof(tmp))
            continue;
        int fd = hs_fd_high(open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (fd < 0)
            continue;
        size_t len = strlen(path);
        path[len] = '\n';
        int ok = write(fd, path, len + 1) == (ssize_t)(len + 1);
        close(fd);
        if (!ok || rename(tmp, done) < 0)
            unlink(tmp);
    }
}

/* Sleeps until `when` on CLOCK_MONOTONIC (rounded up to the next nanosecond, so that monotonic()
 * is then at least `when`). */
static void sleep_until(double when)
{
    time_t sec = (time_t)when;
    long ns = (long)((when - (double)sec) * 1e9) + 1;
    if (ns >= 1000000000L) {
        sec++;
        ns -= 1000000000L;
    }
    struct timespec t = { .tv_sec = sec, .tv_nsec = ns };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
        ;
}

/* The next timeline row after the one due at `due`: one period on, or now when that is already
 * past (a snapshot took longer than a tick): one row then, not one per tick missed. */
static double next_row(double due, double period, double now)
{
    due += period;
    return due < now ? now : due;
}

/* When the periodic snapshot after one that began at `began` and ended at `now` is due: the
 * first point of the schedule start + k * period after the thread has idled as long as that
 * snapshot took.  Points missed meanwhile are skipped, not made up, and however short the period,
 * snapshots take at most half of the thread's time. */
static double next_snapshot(double start, double period, double began, double now)
{
    double after = now + (now - began);
    double due = start + (double)(long long)((after - start) / period) * period;
    while (due <= after)
        due += period;                        /* (once, or twice after rounding) */
    return due;
}

static void *agent_main(void *arg)
{
    (void)arg;
    pthread_setspecific(hs_guard_key, HS_THREAD_SEALED);   /* for life: nothing here is traced */
    /* Every file this thread opens briefly takes the lowest free descriptor number until
     * hs_fd_high moves it.  A program that has just started or forked is the one likely to close
     * everything and reopen 0, 1 and 2 (a daemon), and it must get those numbers: so the thread
     * opens nothing during its first 20 ms.  (This narrows the window; it does not close it.)
     * Timeline rows (and requests) come every 100 ms from the start; periodic snapshots every
     * `interval` from the start, on their own schedule, not rounded to the rows'. */
    double start = monotonic(), tick = start;
    double snap_due = interval > 0 ? start + interval : 0;
    sleep_until(start + 0.02);
    scan_seq();
    while (hs_tracing()) {
        double now = monotonic();
        if (now >= tick) {
            timeline_tick();
            serve_requests();
            tick = next_row(tick, TICK_NS / 1e9, monotonic());
            int code;
            if (agent_is_last(&code)) {
                /* The program's threads have all exited (pthread_exit from main, a raw exit):
                 * this thread alone would keep the process alive for ever.  End it as the
                 * program would have ended: exit(0) as glibc's last thread does (atexit
                 * handlers, destructors and the final snapshot run here, traced), or the main
                 * thread's status. */
                pthread_setspecific(hs_guard_key, NULL);
                if (code == 0)
                    exit(0);
                _exit(code);                  /* (our _exit takes the final snapshot) */
            }
        }
        if (snap_due > 0 && atomic_load(&exiting))
            snap_due = 0;                     /* the program is shutting down: no more */
        double began = monotonic();
        if (snap_due > 0 && began >= snap_due) {
            char path[4400];
            hs_agent_write_snapshot("interval", path, sizeof(path));
            snap_due = next_snapshot(start, interval, began, monotonic());
        }
        sleep_until(snap_due > 0 && snap_due < tick ? snap_due : tick);
    }
    pthread_mutex_lock(&kept_lock);          /* tracing stopped: nothing kept for a later start */
    kept_close_all();
    pthread_mutex_unlock(&kept_lock);
    atomic_store(&running, 0);
    return NULL;
}

/* Starts the thread with every signal blocked (it inherits the mask set around creation). */
void hs_agent_start(void)
{
    if (!hs_agent_enabled() || !hs_tracing() || atomic_exchange(&running, 1))
        return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    if (pthread_create(&t, &attr, agent_main, NULL) != 0) {
        atomic_store(&running, 0);
        hs_log("cannot start the tracer thread: no timeline, interval or request snapshots");
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void hs_agent_exiting(void)
{
    atomic_store(&exiting, 1);
}

/* In a forked child, first thing, traced or not: its copies of the parent's files (timeline,
 * folder, the parent's /proc/self/statm) go, and the lock starts afresh (the fork may have caught
 * the parent's tracer thread holding it). */
void hs_agent_close_files(void)
{
    static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&kept_lock, &fresh, sizeof(kept_lock));
    kept_close_all();
}

/* In a forked child that keeps tracing: its own folder, and a thread of its own (the parent's
 * did not survive the fork). */
void hs_agent_after_fork(void)
{
    atomic_store(&running, 0);
    atomic_store(&exiting, 0);               /* the child is a program of its own */
    if (!hs_agent_enabled())
        return;
    if (make_proc_dir() < 0) {
        base_dir[0] = '\0';
        return;
    }
    atomic_store(&seq, 0);
    hs_agent_start();
}
