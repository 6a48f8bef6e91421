/*
 * libswap1.c - one of two libraries dlswap loads in turn at the same address.  libswap2.c is this
 * file with bigger frames: the same code at the same offsets, so the same return addresses, but
 * other frame rules (CFA offsets relative to %rsp).
 */
#include <stdlib.h>
#include <string.h>

#ifndef PAD
#define PAD 400
#endif

__attribute__((noinline)) static void *leaf(size_t n, int depth)
{
    volatile char pad[PAD];
    memset((char *)pad, depth, sizeof pad);
    return malloc(n + (size_t)(pad[depth % PAD] & 1));
}

__attribute__((noinline)) void *swap_alloc(size_t n, int depth)
{
    volatile char pad[PAD];
    pad[0] = (char)depth;
    void *p = depth > 0 ? swap_alloc(n, depth - 1) : leaf(n, depth);
    return pad[0] == (char)depth ? p : NULL;
}
