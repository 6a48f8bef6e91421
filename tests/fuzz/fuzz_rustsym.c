/*
 * fuzz_rustsym.c - libFuzzer target for the Rust symbol parsers (src/tracer/rustsym.c), which run
 * inside the traced process on names read from any ELF file it maps.
 *
 * The unit is compiled in here (it is tracer code, outside the core sources the fuzz rule links).
 * Properties checked, not only "no crash" (ASan sees any read past the name):
 *  - a name is demangled only if it starts with _ZN, into a NUL-terminated string shorter than
 *    the buffer;
 *  - output is never cut: into a smaller buffer the same name demangles to the same string when
 *    it fits and fails when it does not;
 *  - the same of v0 names (_R) and their demangler;
 *  - a v0 crate is found only for names starting with _R, and its bytes occur in the name.
 * Input: the name (bytes up to the first NUL).  Seeds: tests/fuzz/corpus/fuzz_rustsym/.
 */
#include "fuzz.h"
#include "tracer/rustsym.c"

#include <string.h>

/* A demangler's properties on one name (see above). */
static void check_demangler(int (*dm)(const char *, char *, size_t), const char *name,
                            const char *prefix)
{
    char out[512], small[64];
    memset(out, 'x', sizeof(out));
    if (!dm(name, out, sizeof(out)))
        return;
    CHECK(strncmp(name, prefix, strlen(prefix)) == 0);
    size_t len = strnlen(out, sizeof(out));
    CHECK(len < sizeof(out));
    int fits = dm(name, small, sizeof(small));
    CHECK(fits == (len < sizeof(small)));
    CHECK(!fits || strcmp(small, out) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *name = malloc(size + 1);
    CHECK(name != NULL);
    memcpy(name, data, size);
    name[size] = '\0';

    check_demangler(hs_rust_demangle, name, "_ZN");
    check_demangler(hs_rust_v0_demangle, name, "_R");
    char crate[64];
    if (hs_rust_v0_crate(name, crate, sizeof(crate))) {
        CHECK(strncmp(name, "_R", 2) == 0);
        CHECK(crate[0] != '\0' && strstr(name, crate) != NULL);
    }
    free(name);
    return 0;
}
