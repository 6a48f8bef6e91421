/*
 * service.c - a request loop that leaks slowly, run as a plain program: `heapsnap run` (or the
 * environment alone) finds the leak without changing this code.
 *
 * Three things allocate here: the sessions library's history (grows forever: the leak), a
 * lookup cache that fills to a bound and then stays flat (warm-up, not a leak), and per-request
 * scratch buffers that are freed at once (churn).
 *
 *   service [ITERATIONS [DELAY_MS]]     default 200 iterations, 10 ms apart
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sessions.h"

#define CACHE_SLOTS 64

static char *cache[CACHE_SLOTS];      /* fills once, then is only read */

static const char *lookup(unsigned key)
{
    unsigned slot = key % CACHE_SLOTS;
    if (cache[slot] == NULL) {
        cache[slot] = malloc(512);
        snprintf(cache[slot], 512, "value-%u", key);
    }
    return cache[slot];
}

static void handle(session *s, unsigned i)
{
    char *scratch = malloc(2048 + i % 512);          /* per-request garbage */
    snprintf(scratch, 2048, "GET /item/%u HTTP/1.1\r\nHost: example\r\nX-Trace: %s\r\n", i,
             lookup(i));
    session_request(s, scratch);
    free(scratch);
}

int main(int argc, char **argv)
{
    unsigned iterations = argc > 1 ? (unsigned)atoi(argv[1]) : 200;
    long delay_ms = argc > 2 ? atol(argv[2]) : 10;
    session *s = session_new();
    for (unsigned i = 0; i < iterations; i++) {
        handle(s, i);
        struct timespec ts = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
    printf("served %u requests\n", iterations);
    return 0;
}
