/*
 * unwind_cfi.c - the fast path of stack capture on x86-64: each frame is stepped with the call
 * frame rule of its return address, read once from the object's .eh_frame and kept in a cache.
 *
 * A rule here is what nearly every frame of compiled code needs: the caller's stack pointer (the
 * CFA) is the stack pointer or the frame pointer plus a constant, the return address is the word
 * below the CFA, and the caller's frame pointer is unchanged or saved at a constant offset from
 * the CFA.  A step is then two or three loads, against libunwind's cursor set-up and per-frame
 * bookkeeping.  Anything else (a signal frame, a CFA computed by a DWARF expression or held in
 * another register, code with no unwind information, an object the loader does not know) makes
 * the whole stack go to libunwind (unwind_libunwind.c), which handles it as before.
 *
 * Rules are found with glibc's _dl_find_object (lock-free, no loader lock, no allocation) and the
 * binary-search table of .eh_frame_hdr; the CFA program is interpreted up to the address.  The
 * cache is shared by all threads without a lock: an entry is two words, the rule and the address
 * sealed with a hash of the rule and of a generation, so a torn or stale entry never matches.
 * dlclose bumps the generation: another object may later be loaded at the same addresses.  The
 * fast path takes no lock and makes no loader call but the lock-free _dl_find_object, so a fork
 * need not wait for it: only libunwind's walks count as loader uses (hooks.c).
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tracer.h"
#include "unwind.h"

/* ---- rules -------------------------------------------------------------------------------------
 * One 64-bit word, laid out for the walk's critical path: bits 0-31 the CFA offset, 32-34 the kind,
 * 35-63 where the caller's frame pointer is saved, in words below the CFA (0: unchanged). */
enum { R_NONE, R_SP, R_BP, R_STOP, R_SLOW };
#define RULE(kind, cfa_off, bp_words) \
    ((uint64_t)(uint32_t)(cfa_off) | (uint64_t)(kind) << 32 | (uint64_t)(bp_words) << 35)
#define RULE_KIND(r) ((int)(((r) >> 32) & 7))
#define RULE_CFA_OFF(r) ((uintptr_t)(uint32_t)(r))
#define RULE_BP_WORDS(r) ((uintptr_t)((r) >> 35))
#define MAX_CFA_OFF 0x7fffffff
#define MAX_BP_WORDS 0x1fffffff

/* DWARF register numbers (x86-64 psABI). */
#define DW_RBP 6
#define DW_RSP 7

/* ---- reading .eh_frame ------------------------------------------------------------------------ */

typedef struct cursor { const uint8_t *p, *end; int bad; } cursor;

static uint64_t get_uleb(cursor *c)
{
    uint64_t v = 0;
    for (int shift = 0; c->p < c->end; shift += 7) {
        uint8_t b = *c->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    c->bad = 1;
    return 0;
}

static int64_t get_sleb(cursor *c)
{
    uint64_t v = 0;
    int shift = 0;
    while (c->p < c->end) {
        uint8_t b = *c->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) {
            if (shift < 64 && (b & 0x40))
                v |= ~(uint64_t)0 << shift;
            return (int64_t)v;
        }
    }
    c->bad = 1;
    return 0;
}

static uint64_t get_fixed(cursor *c, int size)
{
    if (c->end - c->p < size) {
        c->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, c->p, (size_t)size);          /* little-endian */
    c->p += size;
    return v;
}

#define DW_EH_PE_omit 0xff

/* A pointer in encoding enc (DW_EH_PE_*).  Applications other than absolute and pc-relative are
 * refused (c->bad): .eh_frame of x86-64 objects does not use them where this reads. */
static uintptr_t get_encoded(cursor *c, uint8_t enc)
{
    const uint8_t *field = c->p;
    uint64_t v;
    switch (enc & 0x0f) {
    case 0x00: v = get_fixed(c, 8); break;                          /* absptr */
    case 0x01: v = get_uleb(c); break;
    case 0x02: v = get_fixed(c, 2); break;
    case 0x03: v = get_fixed(c, 4); break;
    case 0x04: v = get_fixed(c, 8); break;
    case 0x09: v = (uint64_t)get_sleb(c); break;
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)get_fixed(c, 2); break;
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)get_fixed(c, 4); break;
    case 0x0c: v = get_fixed(c, 8); break;
    default: c->bad = 1; return 0;
    }
    switch (enc & 0x70) {
    case 0x00: break;
    case 0x10: v += (uintptr_t)field; break;                        /* pcrel */
    default: c->bad = 1; return 0;
    }
    return (uintptr_t)v;
}

/* Skips a pointer in encoding enc without applying it (a personality routine's address). */
static void skip_encoded(cursor *c, uint8_t enc)
{
    cursor tmp = *c;
    (void)get_encoded(&tmp, (uint8_t)(enc & 0x0f));
    *c = tmp;
}

/* ---- the CFA program -------------------------------------------------------------------------- */

enum { K_SAME, K_OFFSET, K_UNDEF, K_OTHER };
typedef struct reg_rule { int kind; int64_t off; } reg_rule;
typedef struct row {
    int cfa_reg;                             /* DW_RSP, DW_RBP, or -1: anything else */
    int64_t cfa_off;
    reg_rule bp, ra;
} row;

typedef struct cie {
    const uint8_t *insns, *end;
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    int has_aug_data, signal;
} cie;

static reg_rule *tracked(row *r, uint64_t reg, uint64_t ra_reg)
{
    if (reg == DW_RBP)
        return &r->bp;
    if (reg == ra_reg)
        return &r->ra;
    return NULL;
}

/* Sets reg's rule when it is one the walk follows (the frame pointer, the return address). */
static void set_rule(row *r, const cie *ci, uint64_t reg, reg_rule rule)
{
    reg_rule *rr = tracked(r, reg, ci->ra_reg);
    if (rr != NULL)
        *rr = rule;
}

/* Runs insns, moving loc, until the row for pc is reached.  init is the CIE's row (for
 * DW_CFA_restore), NULL while running the CIE's own instructions.  0, or -1 when unreadable. */
static int run_cfa(const cie *ci, const uint8_t *insns, const uint8_t *end, uintptr_t loc,
                   uintptr_t pc, row *r, const row *init)
{
    row stack[8];
    int depth = 0;
    cursor c = { insns, end, 0 };
    while (c.p < c.end && !c.bad) {
        uint8_t op = *c.p++;
        uint64_t reg, delta = 0;
        switch (op & 0xc0) {
        case 0x40:                                                   /* advance_loc */
            delta = (op & 0x3f) * ci->code_align;
            goto advance;
        case 0x80:                                                   /* offset */
            reg = op & 0x3f;
            set_rule(r, ci, reg, (reg_rule){ K_OFFSET, (int64_t)get_uleb(&c) * ci->data_align });
            continue;
        case 0xc0:                                                   /* restore */
            reg = op & 0x3f;
            goto restore;
        }
        switch (op) {
        case 0x00: continue;                                         /* nop */
        case 0x01: {                                                 /* set_loc */
            uintptr_t to = get_encoded(&c, ci->fde_enc);
            if (to > pc)
                return c.bad ? -1 : 0;
            loc = to;
            continue;
        }
        case 0x02: delta = get_fixed(&c, 1) * ci->code_align; goto advance;
        case 0x03: delta = get_fixed(&c, 2) * ci->code_align; goto advance;
        case 0x04: delta = get_fixed(&c, 4) * ci->code_align; goto advance;
        case 0x05:                                                   /* offset_extended */
            reg = get_uleb(&c);
            set_rule(r, ci, reg, (reg_rule){ K_OFFSET, (int64_t)get_uleb(&c) * ci->data_align });
            continue;
        case 0x06: reg = get_uleb(&c); goto restore;                 /* restore_extended */
        case 0x07:                                                   /* undefined */
            set_rule(r, ci, get_uleb(&c), (reg_rule){ K_UNDEF, 0 });
            continue;
        case 0x08:                                                   /* same_value */
            set_rule(r, ci, get_uleb(&c), (reg_rule){ K_SAME, 0 });
            continue;
        case 0x09:                                                   /* register */
            set_rule(r, ci, get_uleb(&c), (reg_rule){ K_OTHER, 0 });
            (void)get_uleb(&c);
            continue;
        case 0x0a:                                                   /* remember_state */
            if (depth == (int)HS_ARRAY_LEN(stack))
                return -1;
            stack[depth++] = *r;
            continue;
        case 0x0b:                                                   /* restore_state */
            if (depth == 0)
                return -1;
            {
                /* The CFA is not part of the remembered state... by DWARF; GCC and every
                 * unwinder treat it as part of it, and so does this one. */
                *r = stack[--depth];
            }
            continue;
        case 0x0c:                                                   /* def_cfa */
            reg = get_uleb(&c);
            r->cfa_reg = (reg == DW_RSP || reg == DW_RBP) ? (int)reg : -1;
            r->cfa_off = (int64_t)get_uleb(&c);
            continue;
        case 0x0d:                                                   /* def_cfa_register */
            reg = get_uleb(&c);
            r->cfa_reg = (reg == DW_RSP || reg == DW_RBP) ? (int)reg : -1;
            continue;
        case 0x0e: r->cfa_off = (int64_t)get_uleb(&c); continue;     /* def_cfa_offset */
        case 0x0f:                                                   /* def_cfa_expression */
            r->cfa_reg = -1;
            c.p += get_uleb(&c);
            continue;
        case 0x10:                                                   /* expression */
        case 0x16:                                                   /* val_expression */
            set_rule(r, ci, get_uleb(&c), (reg_rule){ K_OTHER, 0 });
            c.p += get_uleb(&c);
            continue;
        case 0x11:                                                   /* offset_extended_sf */
            reg = get_uleb(&c);
            set_rule(r, ci, reg, (reg_rule){ K_OFFSET, get_sleb(&c) * ci->data_align });
            continue;
        case 0x12:                                                   /* def_cfa_sf */
            reg = get_uleb(&c);
            r->cfa_reg = (reg == DW_RSP || reg == DW_RBP) ? (int)reg : -1;
            r->cfa_off = get_sleb(&c) * ci->data_align;
            continue;
        case 0x13: r->cfa_off = get_sleb(&c) * ci->data_align; continue;  /* def_cfa_offset_sf */
        case 0x14:                                                   /* val_offset */
            set_rule(r, ci, get_uleb(&c), (reg_rule){ K_OTHER, 0 });
            (void)get_uleb(&c);
            continue;
        case 0x15:                                                   /* val_offset_sf */
            set_rule(r, ci, get_uleb(&c), (reg_rule){ K_OTHER, 0 });
            (void)get_sleb(&c);
            continue;
        case 0x2e: (void)get_uleb(&c); continue;                     /* GNU_args_size */
        case 0x2f:                                                   /* GNU_negative_offset_extended */
            reg = get_uleb(&c);
            set_rule(r, ci, reg, (reg_rule){ K_OFFSET, -(int64_t)get_uleb(&c) * ci->data_align });
            continue;
        default:
            return -1;                                               /* unknown: refuse */
        }
    advance:
        if (loc + delta > pc)
            return c.bad ? -1 : 0;
        loc += delta;
        continue;
    restore:
        if (init == NULL)
            return -1;
        if (tracked(r, reg, ci->ra_reg) != NULL)
            set_rule(r, ci, reg, *tracked((row *)init, reg, ci->ra_reg));
        continue;
    }
    return c.bad ? -1 : 0;
}

/* Parses the CIE at p (after its length field, which gave end). */
static int parse_cie(const uint8_t *p, const uint8_t *end, cie *ci)
{
    cursor c = { p, end, 0 };
    if (get_fixed(&c, 4) != 0)               /* CIE id: 0 in .eh_frame */
        return -1;
    uint8_t version = (uint8_t)get_fixed(&c, 1);
    if (version != 1 && version != 3 && version != 4)
        return -1;
    const char *aug = (const char *)c.p;
    size_t aug_len = strnlen(aug, (size_t)(c.end - c.p));
    if (c.p + aug_len >= c.end)
        return -1;
    c.p += aug_len + 1;
    if (version == 4) {
        if (get_fixed(&c, 1) != 8 || get_fixed(&c, 1) != 0)  /* address size, segment size */
            return -1;
    }
    ci->code_align = get_uleb(&c);
    ci->data_align = get_sleb(&c);
    ci->ra_reg = version == 1 ? get_fixed(&c, 1) : get_uleb(&c);
    ci->fde_enc = 0;                         /* absptr when no 'R' */
    ci->has_aug_data = 0;
    ci->signal = 0;
    const uint8_t *aug_end = NULL;
    for (size_t i = 0; i < aug_len && !c.bad; i++) {
        switch (aug[i]) {
        case 'z': {
            if (i != 0)
                return -1;
            uint64_t n = get_uleb(&c);
            if (n > (uint64_t)(c.end - c.p))
                return -1;
            aug_end = c.p + n;
            ci->has_aug_data = 1;
            break;
        }
        case 'L': (void)get_fixed(&c, 1); break;
        case 'P': {
            uint8_t enc = (uint8_t)get_fixed(&c, 1);
            skip_encoded(&c, enc);
            break;
        }
        case 'R': ci->fde_enc = (uint8_t)get_fixed(&c, 1); break;
        case 'S': ci->signal = 1; break;
        default:
            if (aug_end == NULL)
                return -1;                   /* unknown, and no length to skip it by */
            i = aug_len;                     /* the rest is skipped by length */
            break;
        }
    }
    if (c.bad)
        return -1;
    ci->insns = aug_end ? aug_end : c.p;
    ci->end = end;
    return 0;
}

/* The rule for pc in the object whose .eh_frame_hdr is at hdr.  *fde_begin: where the function
 * whose FDE covers pc begins; 0 when none does. */
static uint64_t rule_from_hdr(const uint8_t *hdr, uintptr_t pc, uintptr_t *fde_begin)
{
    *fde_begin = 0;
    if (hdr == NULL || hdr[0] != 1)
        return RULE(R_SLOW, 0, 0);
    uint8_t ptr_enc = hdr[1], count_enc = hdr[2], table_enc = hdr[3];
    if (table_enc != 0x3b || ptr_enc == DW_EH_PE_omit || count_enc == DW_EH_PE_omit)
        return RULE(R_SLOW, 0, 0);           /* no binary-search table of the usual form */
    cursor c = { hdr + 4, hdr + 4 + 16, 0 };
    (void)get_encoded(&c, ptr_enc);
    uint64_t count = get_encoded(&c, count_enc);
    if (c.bad || count == 0 || count > (1u << 30))
        return RULE(R_SLOW, 0, 0);
    const int32_t *table = (const int32_t *)c.p;   /* pairs: initial location, FDE; from hdr */
    intptr_t rel = (intptr_t)(pc - (uintptr_t)hdr);
    size_t lo = 0, hi = count;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((intptr_t)table[2 * mid] <= rel)
            lo = mid;
        else
            hi = mid;
    }
    if ((intptr_t)table[2 * lo] > rel)
        return RULE(R_SLOW, 0, 0);
    const uint8_t *fde = hdr + table[2 * lo + 1];

    uint32_t len;
    memcpy(&len, fde, 4);
    if (len == 0 || len == 0xffffffffu)
        return RULE(R_SLOW, 0, 0);
    const uint8_t *fde_end = fde + 4 + len;
    int32_t cie_ptr;
    memcpy(&cie_ptr, fde + 4, 4);
    if (cie_ptr <= 0)
        return RULE(R_SLOW, 0, 0);
    const uint8_t *cie_at = fde + 4 - cie_ptr;
    uint32_t cie_len;
    memcpy(&cie_len, cie_at, 4);
    if (cie_len == 0 || cie_len == 0xffffffffu)
        return RULE(R_SLOW, 0, 0);
    cie ci;
    if (parse_cie(cie_at + 4, cie_at + 4 + cie_len, &ci) < 0 || ci.signal)
        return RULE(R_SLOW, 0, 0);

    c = (cursor){ fde + 8, fde_end, 0 };
    uintptr_t begin = get_encoded(&c, ci.fde_enc);
    uintptr_t range = get_encoded(&c, (uint8_t)(ci.fde_enc & 0x0f));
    if (ci.has_aug_data)
        c.p += get_uleb(&c);
    if (c.bad || c.p > fde_end || pc < begin || pc - begin >= range)
        return RULE(R_SLOW, 0, 0);           /* pc has no FDE: the table's nearest is another's */
    *fde_begin = begin;

    row init = { -1, 0, { K_SAME, 0 }, { K_SAME, 0 } };
    if (run_cfa(&ci, ci.insns, ci.end, begin, UINTPTR_MAX, &init, NULL) < 0)
        return RULE(R_SLOW, 0, 0);
    row r = init;
    if (run_cfa(&ci, c.p, fde_end, begin, pc, &r, &init) < 0)
        return RULE(R_SLOW, 0, 0);

    if (r.ra.kind == K_UNDEF)
        return RULE(R_STOP, 0, 0);           /* the outermost frame (_start, a thread's start) */
    if (r.ra.kind != K_OFFSET || r.ra.off != -8 || r.cfa_reg < 0 || r.cfa_off < 8 ||
        r.cfa_off > MAX_CFA_OFF || (r.cfa_off & 7) != 0)
        return RULE(R_SLOW, 0, 0);
    int64_t bp_words = 0;
    if (r.bp.kind == K_OFFSET) {
        if (r.bp.off >= 0 || (r.bp.off & 7) != 0 || -r.bp.off / 8 > MAX_BP_WORDS)
            return RULE(R_SLOW, 0, 0);
        bp_words = -r.bp.off / 8;
    } else if (r.bp.kind != K_SAME) {
        return RULE(R_SLOW, 0, 0);
    }
    return RULE(r.cfa_reg == DW_RSP ? R_SP : R_BP, r.cfa_off, bp_words);
}

/* ---- the cache -------------------------------------------------------------------------------- */

#define CACHE_BITS 15
typedef struct cache_ent { _Atomic uint64_t key, val; } cache_ent;
static cache_ent *cache;                     /* 2^CACHE_BITS entries, mapped at init */
static _Atomic uint64_t generation;
static int (*find_object)(void *, struct dl_find_object *);

/* One multiply: a torn entry (the key of one write, the rule of another) or one of an older
 * generation matches only if two unrelated 64-bit values happen to be equal. */
static inline uint64_t seal(uint64_t val, uint64_t gen)
{
    return (val ^ gen) * 0x9e3779b97f4a7c15u;
}

/* Return addresses differ in their low bits: a fold is enough, and short on the critical path. */
static inline cache_ent *slot_of(uintptr_t pc)
{
    return &cache[(pc ^ (pc >> CACHE_BITS)) & ((1u << CACHE_BITS) - 1)];
}

/* Is ra the `finish` label of boost.context's make_fcontext (x86-64 SysV ELF), in the versions
 * whose assembly has no CFI at all (Debian 12's 1.74)?  A fiber's first function returns there,
 * into `xor %rdi,%rdi; call _exit`, right after `push %rbp; jmp *%rbx`: the outermost frame of
 * every fiber stack, which otherwise sent each of its walks to libunwind (about 5 us an
 * allocation instead of 60 ns).  The bytes are read with process_vm_readv, which fails instead of
 * faulting if ra is not code after all; this runs once per address (the rule is cached). */
static int is_fcontext_finish(uintptr_t ra)
{
    static const unsigned char code[7] = { 0x55, 0xff, 0xe3, 0x48, 0x31, 0xff, 0xe8 };
    unsigned char got[sizeof(code)];
    struct iovec local = { got, sizeof(got) }, remote = { (void *)(ra - 3), sizeof(got) };
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)sizeof(got) &&
           memcmp(got, code, sizeof(code)) == 0;
}

static __attribute__((noinline)) uint64_t rule_miss(uintptr_t pc, uint64_t gen)
{
    struct dl_find_object fo;
    if (find_object((void *)pc, &fo) != 0)
        return RULE(R_SLOW, 0, 0);           /* not cached: the object may yet be registered */
    uintptr_t begin;
    uint64_t val = rule_from_hdr(fo.dlfo_eh_frame, pc, &begin);
    if (begin == 0) {
        /* pc + 1, the return address, is maybe the first instruction of a function with no code
         * before it: a trampoline that a new context "returns" into (makecontext's
         * __start_context).  Its frame is that function's at entry.  Any other gap between
         * functions still goes to libunwind. */
        uint64_t at_entry = rule_from_hdr(fo.dlfo_eh_frame, pc + 1, &begin);
        if (begin == pc + 1)
            val = at_entry;
        else if (is_fcontext_finish(pc + 1))
            val = RULE(R_STOP, 0, 0);        /* the bottom of a boost.context fiber's stack */
    }
    cache_ent *e = slot_of(pc);
    atomic_store_explicit(&e->val, val, memory_order_relaxed);
    atomic_store_explicit(&e->key, pc ^ seal(val, gen), memory_order_release);
    return val;
}

static inline uint64_t rule_for(uintptr_t pc, uint64_t gen)
{
    cache_ent *e = slot_of(pc);
    uint64_t key = atomic_load_explicit(&e->key, memory_order_acquire);
    uint64_t val = atomic_load_explicit(&e->val, memory_order_relaxed);
    if (HS_LIKELY(key == (pc ^ seal(val, gen)) && val != 0))
        return val;
    return rule_miss(pc, gen);
}

static _Atomic int slow_ready;               /* libunwind set up: its cache may be flushed */

void hs_unwind_forget(void)
{
    atomic_fetch_add_explicit(&generation, 1, memory_order_relaxed);
    if (atomic_load_explicit(&slow_ready, memory_order_acquire)) {
        hs_loader_use_begin();               /* libunwind's lock: not held across a fork */
        hs_unwind_slow_forget();
        hs_loader_use_end();
    }
}

#ifdef HS_UNWIND_CHECK
#include "unwind_check.h"
#define CHECK_COUNT(counter, n) atomic_fetch_add(&(counter), (n))
#else
#define CHECK_COUNT(counter, n) ((void)0)
#endif

/* ---- the walk --------------------------------------------------------------------------------- */

#define MAX_FRAME_BYTES ((uintptr_t)64 << 20)

/* A step takes one frame's state (stack pointer, frame pointer, the address it is at) to its
 * caller's: it looks up the rule of the address, reads the return address below the CFA and
 * perhaps the saved frame pointer.  Each step needs the load of the one before, so a walk is a
 * chain of cache lookups and loads, one link per frame.
 *
 * The memo: much of a stack stays the same from one allocation to the next (main, an event loop,
 * an interpreter's loop).  A walk records its steps in the thread's memo; the next walk, on
 * reaching a state the memo has (the same stack pointer, frame pointer and address), replays the
 * memo's outer steps instead of taking them.  It checks that each word those steps read still
 * holds the value it held, and takes the recorded return addresses.  A step is a function of its
 * state, its rule (fixed within a generation) and the words it reads, so equal words mean equal
 * steps; and each word checked is the one the walk itself would read next, so a replay reads
 * nothing a walk would not.  The checks do not wait on one another: they run in parallel where
 * steps run in sequence.  At the first word that differs the walk goes on stepping from there. */

/* The state after step st. */
static inline hs_walk_state step_after(const hs_walk_step *st)
{
    return (hs_walk_state){ st->cfa, st->bp_val, st->ra - 1 };
}

/* The state the memo's step t starts from. */
static inline hs_walk_state step_state(const hs_walk_memo *m, int t)
{
    return t == m->n - 1 ? m->first : step_after(&m->step[t + 1]);
}

/* Makes the memo the walk just taken, which started from first: the memo's steps [lo, hi]
 * (replayed, or kept from the last walk beyond where this one stopped), below them the `inner`
 * steps this walk took first (scratch[0, inner), innermost first), above them the `outer` steps
 * it took after the replay (scratch[inner, inner + outer)). */
static void memo_store(hs_walk_memo *m, uint64_t gen, hs_walk_state first, int inner, int outer,
                       int lo, int hi, int more)
{
    int kept = hi - lo + 1, n = outer + kept + inner;
    if (n > m->cap) {
        m->n = 0;
        return;
    }
    if (kept > 0 && lo != outer)
        memmove(&m->step[outer], &m->step[lo], (size_t)kept * sizeof(m->step[0]));
    for (int i = 0; i < outer; i++)
        m->step[outer - 1 - i] = m->scratch[inner + i];
    for (int i = 0; i < inner; i++)
        m->step[n - 1 - i] = m->scratch[i];
    m->n = n;
    m->gen = gen;
    m->more = more;
    m->first = first;
}

/* Fills pcs with the return addresses above this function's frame, or from frame's; -1 when a
 * frame needs libunwind.  Never inlined: its own frame is the one described by the rule of its own
 * code.  memo: the thread's, or NULL. */
static __attribute__((noinline)) int cfi_walk(uintptr_t *pcs, int max, const void *frame,
                                              hs_walk_memo *memo)
{
    uintptr_t pc, sp, bp;
    __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2"
                     : "=r"(pc), "=r"(sp), "=r"(bp));
    uint64_t gen = atomic_load_explicit(&generation, memory_order_relaxed);
    int n = 0;
    uintptr_t at = pc;                       /* exact for this frame, pc - 1 for callers */
    if (frame != NULL) {
        /* The hook's frame: its CFA is 16 bytes above, the caller's frame pointer at it. */
        uintptr_t f = (uintptr_t)frame;
        if (f <= sp || f - sp > MAX_FRAME_BYTES || (f & 15) != 0)
            return -1;
        const uintptr_t *fp = frame;
        pc = fp[1];
        bp = fp[0];
        sp = f + 16;
        if (pc == 0)
            return 0;
        pcs[n++] = pc;
        at = pc - 1;
    }
    if (memo != NULL && max >= memo->cap)
        memo = NULL;                         /* a walk takes at most max + 1 steps */
    const hs_walk_step *old = NULL;
    int cur = -1;                            /* the memo's innermost step not yet below sp */
    if (memo != NULL && memo->gen == gen) {
        old = memo->step;
        cur = memo->n - 1;
    }
    const hs_walk_state first = { sp, bp, at };
    int k = 0, inner = -1, lo = 0, hi = -1;  /* steps taken; of them before the replay; replayed */
    for (;;) {
        if (cur >= 0) {
            hs_walk_state o = { 0, 0, 0 };
            while (cur >= 0 && (o = step_state(memo, cur)).sp < sp)
                cur--;
            if (cur >= 0 && o.sp == sp && o.at == at && o.bp == bp) {
                int c = cur, t;
                cur = -1;
                inner = k;
                CHECK_COUNT(check_replays, 1);
                for (t = c; t >= 0; t--) {
                    const hs_walk_step *st = &old[t];
                    if (*(const uintptr_t *)(st->cfa - 8) != st->ra ||
                        (st->bp_at != 0 && *(const uintptr_t *)st->bp_at != st->bp_val))
                        break;
                    if (st->ra == 0 || n == max) {
                        memo_store(memo, gen, first, k, 0, 0, c, memo->more);
                        return n;
                    }
                    pcs[n++] = st->ra;
                    CHECK_COUNT(check_replayed, 1);
                }
                if (t < 0 && !memo->more) {
                    memo_store(memo, gen, first, k, 0, 0, c, 0);
                    return n;
                }
                CHECK_COUNT(check_resumed, 1);
                lo = t + 1;                  /* go on stepping from old[t], or past old[0] */
                hi = c;
                o = t >= 0 ? step_state(memo, t) : step_after(&old[0]);
                sp = o.sp;
                bp = o.bp;
                at = o.at;
            }
        }
        uint64_t r = rule_for(at, gen);
        int kind = RULE_KIND(r);
        int more = 0;
        if (kind == R_STOP)
            goto done;
        if (kind != R_SP && kind != R_BP)
            return -1;
        uintptr_t base = kind == R_SP ? sp : bp;
        uintptr_t cfa = base + RULE_CFA_OFF(r);
        if (cfa <= sp || cfa - sp > MAX_FRAME_BYTES || (cfa & 7) != 0)
            return -1;                       /* not a frame of this stack: let libunwind judge */
        uintptr_t ra = *(const uintptr_t *)(cfa - 8);
        uintptr_t bp_at = RULE_BP_WORDS(r) != 0 ? cfa - 8 * RULE_BP_WORDS(r) : 0;
        uintptr_t next_bp = bp_at != 0 ? *(const uintptr_t *)bp_at : bp;
        if (memo != NULL)
            memo->scratch[k++] = (hs_walk_step){ cfa, ra, bp_at, next_bp };
        sp = cfa;
        bp = next_bp;
        if (ra == 0)
            goto done;
        if (n == max) {
            more = 1;
            goto done;
        }
        pcs[n++] = ra;
        at = ra - 1;
        continue;
    done:
        if (memo != NULL) {
            if (inner < 0)
                memo_store(memo, gen, first, k, 0, 0, -1, more);
            else
                memo_store(memo, gen, first, inner, k - inner, lo, hi, more);
        }
        return n;
    }
}

/* ---- the seam --------------------------------------------------------------------------------- */

static int fast_ok;

void hs_unwind_init(void)
{
    hs_unwind_slow_init();
    atomic_store_explicit(&slow_ready, 1, memory_order_release);
    *(void **)&find_object = dlsym(RTLD_DEFAULT, "_dl_find_object");
    if (find_object == NULL)
        return;
    cache = hs_map(sizeof(cache_ent) << CACHE_BITS);   /* counted as the tracer's memory */
    fast_ok = cache != NULL;
}

__attribute__((noinline)) int hs_unwind(uintptr_t *pcs, int max, const void *frame,
                                        hs_walk_memo *memo)
{
    if (max <= 0)
        return 0;
    int room = max + HS_UNWIND_OWN_FRAMES;   /* a walk from here records the tracer's frames */
    if (HS_LIKELY(fast_ok)) {
        int want = frame != NULL ? max : room;
        int n = cfi_walk(pcs, want, frame, memo);
        if (n >= 0) {
#ifdef HS_UNWIND_CHECK
            unwind_check(pcs, n, want);
#endif
            return n;
        }
    }
    CHECK_COUNT(check_slow, 1);
    /* libunwind needs several KiB of stack to step through a signal frame: on an alternate
     * signal stack of the usual size (SIGSTKSZ, 8 KiB: a handler for stack overflow) it would
     * overflow it.  There, with less than 16 KiB left, the stack is not walked. */
    stack_t ss;
    if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK)) {
        uintptr_t sp = (uintptr_t)__builtin_frame_address(0), lo = (uintptr_t)ss.ss_sp;
        if (sp < lo || sp - lo < 16384)
            return 0;
    }
    /* libunwind checks addresses by reading and writing a pipe, and read and write are
     * cancellation points: a thread with a cancellation pending must not be cancelled inside
     * malloc (which is not one) with the tracer's state half-way.  Off around the walk. */
    int cancel_state;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    hs_loader_use_begin();                   /* libunwind: no walk in flight across a fork */
    int n = hs_unwind_slow(pcs, room);
    hs_loader_use_end();
    pthread_setcancelstate(cancel_state, NULL);
    return n;
}
