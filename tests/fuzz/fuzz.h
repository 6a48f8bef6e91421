/*
 * fuzz.h - what the command-line fuzz targets (fuzz_pattern.c, fuzz_args.c) share: a check that
 * names the failed property, and a reader that takes bytes from the input (zeros once it ends).
 */
#ifndef HS_FUZZ_H
#define HS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                         \
    do {                                                                                 \
        if (!(x)) {                                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);       \
            abort();                                                                     \
        }                                                                                \
    } while (0)

typedef struct input {
    const uint8_t *p;
    size_t n;
} input;

static inline unsigned take(input *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

#endif
