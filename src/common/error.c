/*
 * error.c - names for heapsnap's error codes, and the run-time version.
 */
#include "heapsnap.h"

#include <string.h>

const char *hs_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case HS_ENOTTRACING:
        return "not tracing";
    case HS_EBADKEY:
        return "invalid statistic key (or cumulative with the traceback key)";
    case HS_EFORMAT:
        return "not a heapsnap snapshot, or a corrupt one";
    case HS_EVERSION:
        return "snapshot written by a newer heapsnap";
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        const char *d = strerrordesc_np(-err);
        if (d != NULL)
            return d;
    }
    return "unknown error";
}

const char *hs_version(void)
{
    return HEAPSNAP_VERSION_STRING;
}
