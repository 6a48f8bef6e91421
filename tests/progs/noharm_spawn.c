/*
 * noharm_spawn.c - start another program in one of the ways a program can: fork + exec,
 * posix_spawn, system() or vfork + exec, from a process with a second thread that allocates all
 * the while.  The parent allocates a block of its own, waits for the child and prints its status.
 *
 *   noharm_spawn fork|spawn|system|vfork CHILD
 */
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static atomic_int stop;

static void *busy(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop))
        free(malloc(100));
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    const char *mode = argv[1], *child = argv[2];
    char *parent_block = malloc(4321);                   /* SITE:parent */
    memset(parent_block, 0, 4321);
    pthread_t th;
    pthread_create(&th, NULL, busy, NULL);
    char *cargv[] = { (char *)child, (char *)mode, NULL };
    int status = -1;
    pid_t pid = -1;
    fflush(stdout);
    if (strcmp(mode, "fork") == 0) {
        pid = fork();
        if (pid == 0) {
            execve(child, cargv, environ);
            _exit(127);
        }
    } else if (strcmp(mode, "spawn") == 0) {
        int e = posix_spawn(&pid, child, NULL, NULL, cargv, environ);
        if (e != 0) {
            fprintf(stderr, "posix_spawn: %s\n", strerror(e));
            return 1;
        }
    } else if (strcmp(mode, "system") == 0) {
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "'%s' system", child);
        status = system(cmd);
    } else if (strcmp(mode, "vfork") == 0) {
        pid = vfork();
        if (pid == 0) {
            execve(child, cargv, environ);
            _exit(127);
        }
    } else {
        return 2;
    }
    if (pid > 0 && waitpid(pid, &status, 0) != pid)
        return 1;
    atomic_store(&stop, 1);
    pthread_join(th, NULL);
    printf("%s: child exited %d\n", mode, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
