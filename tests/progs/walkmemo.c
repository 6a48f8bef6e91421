/*
 * walkmemo.c - allocation stacks that share more or less with the stack before them, for the
 * stack-walk memo (src/tracer/unwind_cfi.c):
 *   - the same call site again (the whole memo replays);
 *   - two callers with the same code and frame size at the same depth (the memo's state matches,
 *     then a return address differs: the walk goes on stepping from there);
 *   - recursion of changing depth (more or fewer frames before the shared part);
 *   - stacks deeper than the traceback limit (a memo cut at the limit, then a walk that needs
 *     more of it);
 *   - a frame whose size changes (alloca: nothing below it matches);
 *   - three threads, each with its own memo.
 *     usage: walkmemo ROUNDS
 */
#include <alloca.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink;
static int rounds;

__attribute__((noinline)) static void leaf(size_t n)
{
    void *p = malloc(n);
    sink = p;
    free(p);
}

__attribute__((noinline)) static void via_a(size_t n)
{
    leaf(n);
    __asm__ volatile("");                    /* no tail call: via_a stays on the stack */
}

__attribute__((noinline)) static void via_b(size_t n)
{
    leaf(n);
    __asm__ volatile("");
}

__attribute__((noinline)) static void down(int depth, int which, size_t n)
{
    if (depth > 0)
        down(depth - 1, which, n);
    else if (which)
        via_b(n);
    else
        via_a(n);
    __asm__ volatile("");
}

__attribute__((noinline)) static void shifted(int pad, int depth, int which, size_t n)
{
    char *b = alloca(16 + 16 * (size_t)pad);
    b[0] = 0;
    sink = b;
    down(depth, which, n);
}

static void *work(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < rounds; i++) {
        int r = rand_r(&seed);
        leaf(16);
        leaf(16);
        down(r % 5, r & 1, 32);
        down(r % 5, (r >> 1) & 1, 32);
        down(40 + r % 30, (r >> 3) & 1, 48);
        down(r % 3, 0, 40);
        shifted((r >> 5) % 4, r % 3, (r >> 7) & 1, 24);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atoi(argv[1]) : 1000;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, work, (void *)(uintptr_t)(i + 1)) != 0)
            return 1;
    work((void *)(uintptr_t)7);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    printf("done\n");
    return 0;
}
