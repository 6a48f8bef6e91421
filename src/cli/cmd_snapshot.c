/*
 * cmd_snapshot.c - `heapsnap snapshot PID`: ask a process running under `heapsnap run` for a
 * snapshot now, and print the file's path.
 *
 * No signal and no file descriptor of the program's is touched: the request is a file
 * "request.<nonce>" in the process's output folder (DIR/<pid>/, mode 0700, so only its owner can
 * ask), which the tracer thread looks for every 100 ms; it answers with "request.<nonce>.done"
 * holding the path.  The folder is found through the process's environment (HEAPSNAP_DIR), which
 * /proc lets only the same user (or root) read.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* HEAPSNAP_DIR from /proc/PID/environ. */
static int find_dir(long pid, char *out, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            cli_error("snapshot: no process %ld", pid);
        else
            cli_error("snapshot: process %ld: %s (it is not yours?)", pid, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (ssize_t r; buf != NULL && (r = read(fd, buf + n, cap - n)) > 0;) {
        n += (size_t)r;
        if (n == cap) {
            char *b = realloc(buf, cap * 2 + 1);
            if (b == NULL)
                break;
            buf = b;
            cap *= 2;
        }
    }
    close(fd);
    int rc = -1;
    if (buf != NULL) {
        buf[n] = '\0';
        for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
            if (strncmp(buf + i, "HEAPSNAP_DIR=", 13) == 0) {
                snprintf(out, len, "%s", buf + i + 13);
                rc = 0;
            }
        }
        free(buf);
    }
    if (rc < 0)
        cli_error("snapshot: process %ld is not running under heapsnap run", pid);
    return rc;
}

int cli_parse_snapshot(int argc, char **argv, cli_snapshot_args *a)
{
    static const struct option longopts[] = { { "help", no_argument, NULL, 'h' },
                                              { "timeout", required_argument, NULL, OPT_TIMEOUT },
                                              { NULL, 0, NULL, 0 } };
    a->timeout = 30;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == OPT_TIMEOUT && cli_parse_long(optarg, 1, 86400, &a->timeout) == 0)
            continue;
        FILE *f = c == 'h' ? stdout : stderr;
        fprintf(f, "usage: heapsnap snapshot [--timeout SECONDS] PID\n"
                   "Ask a process running under `heapsnap run` for a snapshot now; print its path.\n"
                   "Waits at most SECONDS (default 30) for the answer.\n");
        return c == 'h' ? EXIT_OK : EXIT_USAGE;
    }
    if (optind != argc - 1 || cli_parse_long(argv[optind], 1, INT_MAX, &a->pid) < 0) {
        cli_error("snapshot: expected a process id");
        return EXIT_USAGE;
    }
    return CLI_PROCEED;
}

int cmd_snapshot(int argc, char **argv)
{
    cli_snapshot_args a;
    int rc = cli_parse_snapshot(argc, argv, &a);
    if (rc != CLI_PROCEED)
        return rc;
    long pid = a.pid, timeout = a.timeout;
    char dir[PATH_MAX], proc_dir[PATH_MAX + 32];
    if (find_dir(pid, dir, sizeof(dir)) < 0)
        return EXIT_USAGE;
    snprintf(proc_dir, sizeof(proc_dir), "%s/%ld", dir, pid);
    struct stat st;
    if (lstat(proc_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        cli_error("snapshot: process %ld is not traced (no folder %s)", pid, proc_dir);
        return EXIT_USAGE;
    }
    if (st.st_uid != geteuid()) {
        cli_error("snapshot: %s is not yours", proc_dir);
        return EXIT_USAGE;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char req[PATH_MAX + 128], done[PATH_MAX + 160];
    snprintf(req, sizeof(req), "%s/request.%d-%ld", proc_dir, (int)getpid(), (long)now.tv_nsec);
    snprintf(done, sizeof(done), "%s.done", req);
    int fd = open(req, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        cli_error("snapshot: %s: %s", req, strerror(errno));
        return EXIT_USAGE;
    }
    close(fd);
    for (long waited_ms = 0; waited_ms < timeout * 1000; waited_ms += 20) {
        FILE *f = fopen(done, "re");
        if (f != NULL) {
            char path[PATH_MAX + 64] = "";
            char *ok = fgets(path, sizeof(path), f);
            fclose(f);
            unlink(done);
            path[strcspn(path, "\n")] = '\0';
            if (ok == NULL || path[0] == '\0') {
                cli_error("snapshot: process %ld could not write a snapshot; see %s/heapsnap.log",
                          pid, proc_dir);
                return EXIT_USAGE;
            }
            printf("%s\n", path);
            return EXIT_OK;
        }
        if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
            unlink(req);
            cli_error("snapshot: process %ld exited before answering", pid);
            return EXIT_USAGE;
        }
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    unlink(req);
    cli_error("snapshot: process %ld did not answer within %ld s", pid, timeout);
    return EXIT_USAGE;
}
