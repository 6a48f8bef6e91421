/*
 * exiting.c - a program that says it is shutting down with hs_exiting() (looked up with dlsym,
 * so it also runs untraced) and then takes its time, as a service draining its connections
 * would: no periodic snapshot may come after that, and the tracer thread must idle meanwhile.
 *   exiting SECONDS_BEFORE SECONDS_AFTER
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void pause_for(double s)
{
    struct timespec t = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&t, &t) != 0)
        ;
}

int main(int argc, char **argv)
{
    double before = argc > 1 ? atof(argv[1]) : 0.5, after = argc > 2 ? atof(argv[2]) : 2;
    void *keep[100];
    for (int i = 0; i < 100; i++)
        keep[i] = malloc(100 + (size_t)i);
    pause_for(before);
    void (*exiting)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "hs_exiting");
    if (exiting != NULL)
        exiting();
    pause_for(after);
    printf("%s\n", exiting != NULL ? "traced" : "untraced");
    for (int i = 0; i < 100; i++)
        free(keep[i]);
    return 0;
}
