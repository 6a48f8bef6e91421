/* libswap2.c - libswap1.c with frames ten times bigger (see there). */
#define PAD 4000
#include "libswap1.c"
