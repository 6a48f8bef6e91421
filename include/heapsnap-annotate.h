/*
 * heapsnap-annotate.h - annotate a custom allocator without depending on heapsnap.
 *
 * A program with its own arena or pool calls HS_TRACK(domain, ptr, size) when it hands out a
 * block and HS_UNTRACK(domain, ptr) when it takes one back.  The program builds and links without
 * libheapsnap: the calls are weak references that return HS_ENOTTRACING when heapsnap is not
 * loaded, and record into the given domain (not 0, which is the malloc family) when it is.
 */
#ifndef HEAPSNAP_ANNOTATE_H
#define HEAPSNAP_ANNOTATE_H
#ifndef HEAPSNAP_WEAK
#define HEAPSNAP_WEAK 1
#endif
#include "heapsnap.h"
#endif
