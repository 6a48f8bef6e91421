/*
 * noharm_daemon.c - becomes a daemon the classic way: fork (the parent exits), setsid, fork
 * again (the session leader exits with _exit), chdir /, umask 0, close every descriptor from 0
 * to 1023 and open /dev/null as 0, 1 and 2.  The daemon then makes a pipe of its own (it gets
 * the lowest free descriptors, 3 and 4), writes a message into it, lets a new thread allocate,
 * and reads the message back: nobody else may read from or write to its descriptors.  It
 * allocates, opens a file (descriptor 3 again), and writes RESULT atomically: its pid and what
 * it saw.  It exits normally.
 *
 *   noharm_daemon RESULT      (an absolute path)
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        free(malloc(100 + (size_t)i));
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] != '/')
        return 2;
    const char *result = argv[1];
    printf("daemonizing\n");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid > 0)
        return 0;                                  /* the original process */
    if (setsid() < 0)
        _exit(1);
    pid = fork();
    if (pid < 0)
        _exit(1);
    if (pid > 0)
        _exit(0);                                  /* the session leader */
    if (chdir("/") < 0)
        _exit(1);
    umask(0);
    for (int fd = 0; fd < 1024; fd++)
        close(fd);
    int nul = open("/dev/null", O_RDWR);           /* 0 */
    if (nul != 0 || dup(0) != 1 || dup(0) != 2)
        _exit(1);

    int p[2];
    if (pipe(p) < 0)
        _exit(1);
    static const char msg[] = "message through the daemon's own pipe";
    if (write(p[1], msg, sizeof(msg) - 1) != (ssize_t)sizeof(msg) - 1)
        _exit(1);
    pthread_t th;
    if (pthread_create(&th, NULL, worker, NULL) != 0)
        _exit(1);
    pthread_join(th, NULL);
    close(p[1]);
    char got[200] = "";
    ssize_t n = read(p[0], got, sizeof(got) - 1);
    got[n > 0 ? n : 0] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if (got[i] < ' ' || got[i] > '~')
            got[i] = '?';                          /* keep the result file printable */
    close(p[0]);

    char *block = malloc(6543);                    /* SITE:daemon */
    memset(block, 'd', 6543);
    char *lines = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&lines, &len);
    for (int i = 0; i < 100; i++) {
        char *s = strdup("temporary");
        fprintf(mem, "%d %s\n", i, s);
        free(s);
    }
    fclose(mem);

    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", result);
    FILE *f = fopen(tmp, "w");                     /* gets descriptor 3 */
    if (f == NULL)
        _exit(1);
    fprintf(f, "pid %d\npipe fds %d %d\npipe read back \"%s\"\nfile fd %d\ncwd-root %s\n"
               "lines %zu\nblock %c\n", (int)getpid(), p[0], p[1], got, fileno(f),
            access(".", F_OK) == 0 && getcwd(tmp + 4100, 100) && strcmp(tmp + 4100, "/") == 0
                ? "yes" : "no",
            len, block[6542]);
    fclose(f);
    char fin[4200];
    snprintf(fin, sizeof(fin), "%s.tmp", result);
    if (rename(fin, result) < 0)
        _exit(1);
    free(lines);
    return 0;
}
