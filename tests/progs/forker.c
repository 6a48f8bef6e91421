/*
 * forker.c - fork, and both processes exit normally with a block each left: with the library's
 * default (follow forks) the child writes its own final snapshot at HEAPSNAP_OUTPUT.<pid>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    void *parent_block = malloc(111);            /* SITE:parent */
    pid_t pid = fork();
    if (pid == 0) {
        void *child_block = malloc(222);         /* SITE:child */
        printf("child %d\n", (int)getpid());
        (void)child_block;
        exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    (void)parent_block;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
