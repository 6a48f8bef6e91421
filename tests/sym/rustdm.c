/*
 * rustdm.c - the tracer's Rust demanglers (src/tracer/rustsym.c) as a filter, for
 * tests/test_rust.py to compare with binutils' c++filt on every Rust symbol of a real program:
 * one name per line in, its demangled form (or the name itself) per line out.
 */
#include "tracer/rustsym.h"

#include <stdio.h>
#include <string.h>

int main(void)
{
    static char line[65536], out[65536];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (hs_rust_v0_demangle(line, out, sizeof(out)) || hs_rust_demangle(line, out, sizeof(out)))
            puts(out);
        else
            puts(line);
    }
    return 0;
}
