/*
 * fork.c - fork from a multi-threaded program while other threads allocate: the child must not
 * deadlock, keeps tracing (the library follows children by default), sees the blocks it
 * inherited and its own, and can snapshot; the parent goes on unharmed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "live.h"

static _Atomic int stop;

static void *churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        void *p = malloc(64);
        free(p);
        hs_snapshot *s = hs_take_snapshot();   /* holds the locks fork must take */
        hs_snapshot_free(s);
    }
    return NULL;
}

int main(void)
{
    CHECK_EQ(hs_start(4), 0);
    int linherit = __LINE__; char *inherited = malloc(1234);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, churn, NULL), 0);
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            CHECK(hs_is_tracing());
            int lchild = __LINE__; char *mine = malloc(4321);
            hs_traceback *tb = hs_get_object_traceback(inherited);
            CHECK_SITE(tb, "fork.c", linherit);
            hs_traceback_free(tb);
            tb = hs_get_object_traceback(mine);
            CHECK_SITE(tb, "fork.c", lchild);
            hs_traceback_free(tb);
            hs_snapshot *s = hs_take_snapshot();
            CHECK(s != NULL);
            CHECK_EQ(hs_snapshot_get_meta(s)->pid, getpid());
            hs_snapshot_free(s);
            free(mine);
            _exit(0);
        }
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    hs_traceback *tb = hs_get_object_traceback(inherited);
    CHECK_SITE(tb, "fork.c", linherit);
    hs_traceback_free(tb);
    free(inherited);
    hs_stop();
    printf("fork: ok\n");
    return 0;
}
