/*
 * sessions.c - a small "third-party" library with a classic slow leak: every request's headers
 * are remembered in a per-session history that nothing ever prunes.  The leak is reachable: no
 * pointer is lost, so valgrind and LeakSanitizer report nothing at exit.
 */
#include <stdlib.h>
#include <string.h>

#include "sessions.h"

struct session {
    char **history;                 /* every header block ever seen, never pruned */
    size_t n, cap;
};

session *session_new(void)
{
    return calloc(1, sizeof(session));
}

static char *copy_headers(const char *headers)
{
    size_t n = strlen(headers) + 1;
    char *h = malloc(n);
    memcpy(h, headers, n);
    return h;
}

void session_request(session *s, const char *headers)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->history = realloc(s->history, s->cap * sizeof(char *));
    }
    s->history[s->n++] = copy_headers(headers);
}
