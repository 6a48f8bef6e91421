/*
 * contexts.c - coroutines on makecontext stacks that allocate, the way some servers and emulators
 * run their tasks.  Each coroutine's stack starts in glibc's __start_context, whose address is the
 * return address of the coroutine's function (the frame below it has no unwind information).
 *     usage: contexts ROUNDS
 */
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#define STACK_SIZE (256 * 1024)

static ucontext_t main_ctx, co_ctx[2];
static void *volatile sink;
static int rounds;

__attribute__((noinline)) static void work(int depth, size_t n)
{
    if (depth > 0) {
        work(depth - 1, n);
        __asm__ volatile("");                /* no tail call */
        return;
    }
    void *p = malloc(n);
    sink = p;
    free(p);
}

static void coroutine(int which)
{
    for (int i = 0;; i++) {
        work(i % 6, 16 + 16 * (size_t)which);
        swapcontext(&co_ctx[which], which ? &main_ctx : &co_ctx[1]);
    }
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atoi(argv[1]) : 1000;
    for (int i = 0; i < 2; i++) {
        if (getcontext(&co_ctx[i]) != 0)
            return 1;
        co_ctx[i].uc_stack.ss_sp = malloc(STACK_SIZE);
        co_ctx[i].uc_stack.ss_size = STACK_SIZE;
        co_ctx[i].uc_link = NULL;
        makecontext(&co_ctx[i], (void (*)(void))coroutine, 1, i);
    }
    for (int r = 0; r < rounds; r++)
        swapcontext(&main_ctx, &co_ctx[0]);
    printf("done\n");
    return 0;
}
