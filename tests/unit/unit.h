/*
 * unit.h - what every unit test includes: cmocka, the public header, and the internal snapshot
 * header, plus helpers to build snapshots from literals as SPEC.md writes them.
 */
#ifndef HS_UNIT_H
#define HS_UNIT_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "heapsnap.h"
#include "snapshot/snapshot.h"

/* A frame literal: F("a.c", 2). */
#define F(file, line) ((hs_frame){ .filename = (file), .lineno = (line), .function = "", .object = "", .address = 0 })

/* Adds a trace whose frames are given most recent first, as SPEC.md writes them. */
static inline void add_trace(hs_snapshot *s, unsigned dom, size_t size, size_t n, const hs_frame *f)
{
    assert_int_equal(hs_snapshot_add_trace(s, dom, size, f, n, n), 0);
}
#define ADD(s, dom, size, ...)                                                   \
    do {                                                                         \
        const hs_frame f_[] = { __VA_ARGS__ };                                   \
        add_trace((s), (dom), (size), sizeof(f_) / sizeof(f_[0]), f_);           \
    } while (0)

#endif
