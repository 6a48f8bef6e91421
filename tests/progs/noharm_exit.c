/*
 * noharm_exit.c - ways to end that skip the usual exit path.  The program allocates a block,
 * registers an atexit handler (which must not run), leaves a line in the stdio buffer (which is
 * lost) and writes one with write(2) (which is not), then ends:
 *
 *   noharm_exit _exit          _exit(7)
 *   noharm_exit _Exit          _Exit(9)
 *   noharm_exit thread-_exit   another thread calls _exit(5) while the main thread allocates
 *   noharm_exit abort          abort(): killed by SIGABRT, status 134 in a shell
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void at_exit(void)
{
    static const char msg[] = "atexit handler ran\n";
    write(1, msg, sizeof(msg) - 1);
}

static void *ender(void *arg)
{
    (void)arg;
    usleep(20000);
    _exit(5);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    char *kept = malloc(3456);                     /* SITE:kept */
    memset(kept, 0, 3456);
    atexit(at_exit);
    printf("in the stdio buffer, never flushed\n");
    static const char msg[] = "written with write(2)\n";
    write(1, msg, sizeof(msg) - 1);
    if (strcmp(argv[1], "_exit") == 0)
        _exit(7);
    if (strcmp(argv[1], "_Exit") == 0)
        _Exit(9);
    if (strcmp(argv[1], "abort") == 0)
        abort();
    if (strcmp(argv[1], "thread-_exit") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, ender, NULL);
        for (;;)
            free(malloc(100));
    }
    return 2;
}
