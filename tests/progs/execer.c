/*
 * execer.c - a plain program for the environment tests (tests/test_environ.py): replaces itself
 * with PROG through one member of the exec family.
 *
 *   execer HOW PROG [ARG]   HOW: execve execv execvp execvpe execl execlp execle fexecve
 *                           execveat (each given the process's environ), execve-copy and
 *                           execle-copy (a copy of it, made by the program), execve-clean
 *                           (an environment of the program's own, without LD_PRELOAD); the
 *                           execl forms always pass ARG ("" when there is none)
 *   execer fail             every member, failing: prints each errno, then checks that environ
 *                           is unchanged and prints it
 * For execvp and execlp, PROG without a '/' is looked up in PATH.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static char **copy_environ(void)
{
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **copy = calloc(n + 1, sizeof(char *));
    if (copy != NULL)
        memcpy(copy, environ, n * sizeof(char *));
    return copy;
}

static void report(const char *what, int r)
{
    int e = errno;
    printf("%s: %d %s\n", what, r, r == -1 ? strerrorname_np(e) : "-");
}

/* Every exec failing: the results and errno must be libc's, and environ untouched. */
static int fail_all(void)
{
    char **before = copy_environ(), **saved = environ;
    char *const argv[] = { "x", NULL };
    report("execve missing", execve("/nonexistent/x", argv, environ));
    report("execve folder", execve("/", argv, environ));
    report("execve not executable", execve("/etc/hostname", argv, environ));
    report("execv missing", execv("/nonexistent/x", argv));
    report("execvp missing", execvp("heapsnap-no-such-program", argv));
    report("execvpe missing", execvpe("heapsnap-no-such-program", argv, environ));
    report("execl missing", execl("/nonexistent/x", "x", "y", (char *)NULL));
    report("execlp missing", execlp("heapsnap-no-such-program", "x", (char *)NULL));
    report("execle missing", execle("/nonexistent/x", "x", (char *)NULL, environ));
    report("fexecve bad fd", fexecve(-1, argv, environ));
    report("execveat missing", execveat(AT_FDCWD, "/nonexistent/x", argv, environ, 0));
    report("execveat bad flags", execveat(AT_FDCWD, "/bin/true", argv, environ, -1));
    /* An argument list beyond the kernel's limit. */
    size_t len = 128 * 1024 - 1, count = 40;
    char *big = malloc(len + 1);
    char **bigv = calloc(count + 1, sizeof(char *));
    if (big == NULL || bigv == NULL)
        return 1;
    memset(big, 'a', len);
    big[len] = '\0';
    for (size_t i = 0; i < count; i++)
        bigv[i] = big;
    report("execve too long", execve("/bin/true", bigv, environ));
    report("execv too long", execv("/bin/true", bigv));
    int same = environ == saved;
    for (size_t i = 0; same && before[i] != NULL; i++)
        same = environ[i] == before[i];
    printf("environ unchanged: %s\n", same ? "yes" : "no");
    for (char **e = environ; *e != NULL; e++)
        printf("%s\n", *e);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "fail") == 0)
        return fail_all();
    if (argc < 3) {
        fprintf(stderr, "usage: execer HOW PROG [ARG] | execer fail\n");
        return 2;
    }
    const char *how = argv[1], *prog = argv[2];
    const char *arg = argc > 3 ? argv[3] : "";
    char *args[] = { argv[2], argv[3], NULL };
    if (strcmp(how, "execve") == 0)
        execve(prog, args, environ);
    else if (strcmp(how, "execv") == 0)
        execv(prog, args);
    else if (strcmp(how, "execvp") == 0)
        execvp(prog, args);
    else if (strcmp(how, "execvpe") == 0)
        execvpe(prog, args, environ);
    else if (strcmp(how, "execl") == 0)
        execl(prog, prog, arg, (char *)NULL);
    else if (strcmp(how, "execlp") == 0)
        execlp(prog, prog, arg, (char *)NULL);
    else if (strcmp(how, "execle") == 0)
        execle(prog, prog, arg, (char *)NULL, environ);
    else if (strcmp(how, "fexecve") == 0) {
        int fd = open(prog, O_RDONLY | O_CLOEXEC);
        fexecve(fd, args, environ);
    } else if (strcmp(how, "execveat") == 0)
        execveat(AT_FDCWD, prog, args, environ, 0);
    else if (strcmp(how, "execve-copy") == 0)
        execve(prog, args, copy_environ());
    else if (strcmp(how, "execle-copy") == 0)
        execle(prog, prog, arg, (char *)NULL, copy_environ());
    else if (strcmp(how, "execve-clean") == 0) {
        char *const clean[] = { "PATH=/usr/bin:/bin", "EXECER=clean", NULL };
        execve(prog, args, clean);
    } else {
        fprintf(stderr, "execer: unknown HOW %s\n", how);
        return 2;
    }
    fprintf(stderr, "execer: %s %s: %s\n", how, prog, strerror(errno));
    return 127;
}
