/* sigstksz.c - prints sysconf(_SC_SIGSTKSZ), which glibc derives from the kernel's
 * AT_MINSIGSTKSZ (the CPU's signal-frame size).  agree.py runs it natively and under valgrind,
 * whose synthesized auxiliary vector has no AT_MINSIGSTKSZ. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    printf("%ld\n", sysconf(_SC_SIGSTKSZ));
    return 0;
}
