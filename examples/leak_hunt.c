/*
 * leak_hunt.c - the classic tracemalloc leak hunt, with heapsnap's C API: run the service loop,
 * take a snapshot every iteration, compare it with the first one by traceback, keep only the
 * sessions library's frames with an inclusive filter, and print the top 10 differences.
 *
 *   make -C examples && examples/build/leak_hunt
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapsnap.h"
#include "service/sessions.h"

static void handle(session *s, unsigned i)
{
    char scratch[256];
    snprintf(scratch, sizeof(scratch), "GET /item/%u HTTP/1.1\r\nHost: example\r\n", i);
    session_request(s, scratch);
}

int main(void)
{
    if (hs_start(16) < 0) {
        fprintf(stderr, "leak_hunt: cannot start tracing\n");
        return 1;
    }
    session *s = session_new();
    hs_snapshot *first = hs_take_snapshot();
    hs_filter only_sessions = { .inclusive = 1, .filename_pattern = "*/sessions.c",
                                .lineno = HS_ANY_LINE };
    for (unsigned iter = 1; iter <= 5; iter++) {
        for (unsigned i = 0; i < 1000; i++)
            handle(s, iter * 1000 + i);
        hs_snapshot *now = hs_take_snapshot();
        hs_snapshot *a = hs_snapshot_filter_traces(now, &only_sessions, 1);
        hs_snapshot *b = hs_snapshot_filter_traces(first, &only_sessions, 1);
        hs_stats *diff = hs_snapshot_compare_to(a, b, HS_KEY_TRACEBACK, 0);
        printf("[ iteration %u: top 10 differences in sessions.c ]\n", iter);
        char line[1024];
        for (size_t i = 0; i < hs_stats_count(diff) && i < 10; i++) {
            hs_stats_format(diff, i, line, sizeof(line));
            printf("%s\n", line);
        }
        if (iter == 5 && hs_stats_count(diff) > 0) {
            /* Read the biggest one's traceback down to the line that allocates. */
            char tb[8192];
            hs_traceback_format(hs_stats_get(diff, 0)->traceback, 4, 0, tb, sizeof(tb));
            printf("\nbiggest growth, 4 most recent frames, oldest first:\n%s", tb);
        }
        hs_stats_free(diff);
        hs_snapshot_free(a);
        hs_snapshot_free(b);
        hs_snapshot_free(now);
    }
    hs_snapshot_free(first);
    hs_stop();
    return 0;
}
