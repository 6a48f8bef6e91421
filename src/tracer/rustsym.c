/*
 * rustsym.c - Rust symbol names, for the symbolizer and allocation-site trimming.
 *
 * Two manglings exist.  The legacy one is Itanium-shaped, _ZN <len><ident>... 17h<16 hex> E,
 * with $..$ escapes inside identifiers; it is demangled here in full (the C++ demangler is not
 * in a Rust process, and it would keep the hash).  The v0 one (_R...) is only read far enough to
 * name the crate a function belongs to, which is what trimming needs; such names are shown
 * as they are.  Both parsers are bounded by the input and never read past its end.
 */
#include "rustsym.h"

#include <stdbool.h>
#include <string.h>

typedef struct out {
    char *p;
    size_t n, cap;
    bool ok;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->n + n >= o->cap) {
        o->ok = false;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
    o->p[o->n] = '\0';
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* The $..$ escapes of legacy identifiers. */
static const struct {
    const char *esc, *s;
} escapes[] = {
    { "$SP$", "@" }, { "$BP$", "*" }, { "$RF$", "&" }, { "$LT$", "<" }, { "$GT$", ">" },
    { "$LP$", "(" }, { "$RP$", ")" }, { "$C$", "," },
};

/* One legacy identifier (its n bytes at s) into o. */
static void legacy_ident(out *o, const char *s, size_t n)
{
    size_t i = 0;
    if (n >= 2 && s[0] == '_' && s[1] == '$')
        i = 1;                                  /* "_$" starts an identifier beginning with $ */
    while (i < n && o->ok) {
        if (s[i] == '.') {
            if (i + 1 < n && s[i + 1] == '.') {
                put(o, "::", 2);
                i += 2;
            } else {
                put(o, ".", 1);
                i++;
            }
            continue;
        }
        if (s[i] != '$') {
            put(o, s + i, 1);
            i++;
            continue;
        }
        const char *end = memchr(s + i + 1, '$', n - i - 1);
        if (end == NULL) {
            o->ok = false;
            return;
        }
        size_t len = (size_t)(end - (s + i)) + 1;
        bool done = false;
        for (size_t e = 0; e < sizeof(escapes) / sizeof(escapes[0]) && !done; e++)
            if (strlen(escapes[e].esc) == len && memcmp(s + i, escapes[e].esc, len) == 0) {
                put(o, escapes[e].s, strlen(escapes[e].s));
                done = true;
            }
        if (!done && len >= 4 && len <= 10 && s[i + 1] == 'u') {   /* $u7e$: a code point */
            unsigned long cp = 0;
            for (size_t k = i + 2; k < i + len - 1; k++) {
                if (!is_hex(s[k])) {
                    o->ok = false;
                    return;
                }
                cp = cp * 16 + (unsigned long)(s[k] <= '9' ? s[k] - '0' : s[k] - 'a' + 10);
            }
            char u[4];
            size_t un;
            if (cp == 0 || (cp >= 0xd800 && cp < 0xe000)) {   /* no NUL, no surrogate */
                o->ok = false;
                return;
            }
            if (cp < 0x80) {
                u[0] = (char)cp;
                un = 1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xc0 | cp >> 6);
                u[1] = (char)(0x80 | (cp & 0x3f));
                un = 2;
            } else if (cp < 0x10000) {
                u[0] = (char)(0xe0 | cp >> 12);
                u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
                u[2] = (char)(0x80 | (cp & 0x3f));
                un = 3;
            } else if (cp < 0x110000) {
                u[0] = (char)(0xf0 | cp >> 18);
                u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
                u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
                u[3] = (char)(0x80 | (cp & 0x3f));
                un = 4;
            } else {
                o->ok = false;
                return;
            }
            put(o, u, un);
            done = true;
        }
        if (!done) {
            o->ok = false;
            return;
        }
        i += len;
    }
}

int hs_rust_demangle(const char *sym, char *buf, size_t cap)
{
    if (sym == NULL || strncmp(sym, "_ZN", 3) != 0 || cap == 0)
        return 0;
    out o = { buf, 0, cap, true };
    buf[0] = '\0';
    const char *p = sym + 3;
    bool hash = false;
    int parts = 0;
    while (*p != 'E') {
        if (*p < '0' || *p > '9')
            return 0;
        size_t n = 0;
        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (size_t)(*p++ - '0');
            if (n > 4096)
                return 0;
        }
        if (n == 0 || strnlen(p, n) < n)
            return 0;
        if (hash)                      /* the hash must be the last part */
            return 0;
        if (n == 17 && p[0] == 'h') {
            hash = true;
            for (int k = 1; k < 17; k++)
                hash = hash && is_hex(p[k]);
            if (!hash)
                return 0;
        } else {
            if (parts++ > 0)
                put(&o, "::", 2);
            legacy_ident(&o, p, n);
        }
        p += n;
    }
    /* A C++ function has its parameter types after the E; Rust has none (".llvm.N" at most). */
    if (!hash || parts == 0 || (p[1] != '\0' && p[1] != '.') || !o.ok)
        return 0;
    return 1;
}

/* ---- v0: the crate of a path ---------------------------------------------------------------- */

typedef struct v0 {
    const char *s;   /* after "_R" */
    size_t n, i;
    int depth;
    out *o;          /* demangling: where the text goes (NULL: parse without printing) */
    size_t steps;    /* demangling: bounds the work backreferences can multiply */
    size_t bound;    /* demangling: lifetimes bound by the binders around here */
} v0;

/* base-62-number: {0-9a-zA-Z} "_"; "_" alone is 0, otherwise the value plus one. */
static bool v0_base62(v0 *v, size_t *val)
{
    size_t x = 0;
    if (v->i < v->n && v->s[v->i] == '_') {
        v->i++;
        *val = 0;
        return true;
    }
    while (v->i < v->n && v->s[v->i] != '_') {
        char c = v->s[v->i++];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'z' ? c - 'a' + 10
              : c >= 'A' && c <= 'Z' ? c - 'A' + 36 : -1;
        if (d < 0 || x > ((size_t)-1 - 62) / 62)
            return false;
        x = x * 62 + (size_t)d;
    }
    if (v->i >= v->n)
        return false;
    v->i++;
    *val = x + 1;
    return true;
}

/* disambiguator: ["s" base-62-number], 0 when absent. */
static bool v0_disambiguator(v0 *v, size_t *dis)
{
    *dis = 0;
    if (v->i < v->n && v->s[v->i] == 's') {
        v->i++;
        if (!v0_base62(v, dis))
            return false;
        ++*dis;
    }
    return true;
}

/* identifier: [disambiguator] ["u"] decimal ["_"] bytes; its bytes in *id, *idn. */
static bool v0_ident(v0 *v, const char **id, size_t *idn, size_t *dis)
{
    if (!v0_disambiguator(v, dis))
        return false;
    if (v->i < v->n && v->s[v->i] == 'u')
        v->i++;
    size_t len = 0;
    if (v->i >= v->n || v->s[v->i] < '0' || v->s[v->i] > '9')
        return false;
    if (v->s[v->i] == '0') {        /* decimal-number: "0" | [1-9] {[0-9]} */
        v->i++;
    } else {
        while (v->i < v->n && v->s[v->i] >= '0' && v->s[v->i] <= '9') {
            len = len * 10 + (size_t)(v->s[v->i++] - '0');
            if (len > v->n)
                return false;
        }
    }
    if (v->i < v->n && v->s[v->i] == '_')
        v->i++;
    if (len > v->n - v->i)
        return false;
    *id = v->s + v->i;
    *idn = len;
    v->i += len;
    return true;
}

/* Follows a path to its crate root, through nested paths, generic arguments, impls and
 * backreferences; false for what has no single crate (a trait definition on a type). */
static bool v0_crate(v0 *v, const char **id, size_t *idn)
{
    if (++v->depth > 64 || v->i >= v->n)
        return false;
    size_t start = v->i;
    char tag = v->s[v->i++];
    size_t dis;
    switch (tag) {
    case 'C':
        return v0_ident(v, id, idn, &dis);
    case 'N':
        if (v->i >= v->n)
            return false;
        v->i++;                       /* the namespace letter */
        return v0_crate(v, id, idn);
    case 'I':
        return v0_crate(v, id, idn);
    case 'M':
    case 'X':
        return v0_disambiguator(v, &dis) && v0_crate(v, id, idn);
    case 'B': {
        size_t at;
        if (!v0_base62(v, &at) || at >= start)
            return false;              /* a backreference points strictly backwards */
        v->i = at;
        return v0_crate(v, id, idn);
    }
    default:
        return false;
    }
}

int hs_rust_v0_crate(const char *sym, char *buf, size_t cap)
{
    if (sym == NULL || strncmp(sym, "_R", 2) != 0 || cap == 0)
        return 0;
    v0 v = { sym + 2, strlen(sym + 2), 0, 0, NULL, 0, 0 };
    while (v.i < v.n && v.s[v.i] >= '0' && v.s[v.i] <= '9')
        v.i++;                         /* an encoding version */
    const char *id;
    size_t idn;
    if (!v0_crate(&v, &id, &idn) || idn == 0 || idn >= cap)
        return 0;
    memcpy(buf, id, idn);
    buf[idn] = '\0';
    return 1;
}

/* ---- v0: demangling ------------------------------------------------------------------------------
 * The grammar of RFC 2603, printed as rustc-demangle's alternate form (no hashes, no instantiating
 * crate): "<alloc::raw_vec::RawVecInner>::finish_grow", "std::rt::lang_start::<()>".
 * Lifetimes print as '_; a punycode identifier prints as its raw bytes. */

static void v0_put(v0 *v, const char *s, size_t n)
{
    if (v->o != NULL)
        put(v->o, s, n);
}

static void v0_puts(v0 *v, const char *s)
{
    v0_put(v, s, strlen(s));
}

static void v0_putnum(v0 *v, size_t x)
{
    char b[24];
    size_t k = sizeof(b);
    do {
        b[--k] = (char)('0' + x % 10);
        x /= 10;
    } while (x > 0);
    v0_put(v, b + k, sizeof(b) - k);
}

static bool v0_ok(v0 *v)
{
    return (v->o == NULL || v->o->ok) && ++v->steps < 100000;
}

static bool dm_path(v0 *v, bool in_type);
static bool dm_type(v0 *v);

/* B base-62-number, the B already read at start: fn at the earlier position, then back here. */
static bool dm_backref(v0 *v, size_t start, bool (*fn)(v0 *, bool), bool arg)
{
    size_t at, here;
    if (!v0_base62(v, &at) || at >= start)
        return false;
    here = v->i;
    v->i = at;
    bool ok = fn(v, arg);
    v->i = here;
    return ok;
}

static bool dm_type_arg(v0 *v, bool unused)
{
    (void)unused;
    return dm_type(v);
}

/* A lifetime by its index: 0 is erased ('_), k the k-th innermost bound one ('a, 'b, ...). */
static bool dm_lifetime_index(v0 *v, size_t x)
{
    if (x == 0) {
        v0_puts(v, "'_");
        return true;
    }
    if (x > v->bound)
        return false;
    size_t depth = v->bound - x;
    if (depth < 26) {
        char l[2] = { '\'', (char)('a' + depth) };
        v0_put(v, l, 2);
    } else {
        v0_puts(v, "'_");
        v0_putnum(v, depth);
    }
    return true;
}

/* lifetime: "L" base-62-number; *x its index.  Printed unless hide_erased and it is 0. */
static bool dm_lifetime(v0 *v, bool hide_erased, size_t *x)
{
    v->i++;
    if (!v0_base62(v, x))
        return false;
    return (hide_erased && *x == 0) || dm_lifetime_index(v, *x);
}

/* const: "p" | backref | type const-data; const-data = ["n"] {hex} "_". */
static bool dm_const(v0 *v, bool unused)
{
    (void)unused;
    if (v->i >= v->n || ++v->depth > 64)
        return false;
    size_t start = v->i;
    char c = v->s[v->i++];
    bool ok = true;
    if (c == 'p') {
        v0_puts(v, "_");
    } else if (c == 'B') {
        ok = dm_backref(v, start, dm_const, false);
    } else if (strchr("abchijlmnostxy", c) != NULL) {
        if (v->i < v->n && v->s[v->i] == 'n') {
            v0_puts(v, "-");
            v->i++;
        }
        unsigned long long x = 0;
        int digits = 0;
        while (v->i < v->n && is_hex(v->s[v->i])) {
            char h = v->s[v->i++];
            if (++digits > 16)
                return false;
            x = x * 16 + (unsigned)(h <= '9' ? h - '0' : h - 'a' + 10);
        }
        if (v->i >= v->n || v->s[v->i] != '_')
            return false;
        v->i++;
        if (c == 'b') {
            v0_puts(v, x ? "true" : "false");
        } else if (c == 'c') {        /* as c++filt: 'a': char, '\n': char, '\u{2764}': char */
            char ch = (char)x;
            v0_puts(v, "'");
            if (x == '\n' || x == '\t' || x == '\r') {
                v0_puts(v, x == '\n' ? "\\n" : x == '\t' ? "\\t" : "\\r");
            } else if (x >= 0x20 && x < 0x7f) {
                v0_put(v, &ch, 1);
            } else {
                char h[17];
                int k = 16;
                h[16] = '\0';
                do {
                    h[--k] = "0123456789abcdef"[x % 16];
                    x /= 16;
                } while (x > 0);
                v0_puts(v, "\\u{");
                v0_puts(v, h + k);
                v0_puts(v, "}");
            }
            v0_puts(v, "': char");
        } else {
            static const char *const ints[] = { ['a' - 'a'] = "i8", ['h' - 'a'] = "u8",
                ['i' - 'a'] = "isize", ['j' - 'a'] = "usize", ['l' - 'a'] = "i32",
                ['m' - 'a'] = "u32", ['n' - 'a'] = "i128", ['o' - 'a'] = "u128",
                ['s' - 'a'] = "i16", ['t' - 'a'] = "u16", ['x' - 'a'] = "i64",
                ['y' - 'a'] = "u64" };
            v0_putnum(v, (size_t)x);
            v0_puts(v, ": ");
            v0_puts(v, ints[c - 'a']);
        }
    } else {
        return false;
    }
    v->depth--;
    return ok && v0_ok(v);
}

/* generic-arg: lifetime | "K" const | type. */
static bool dm_generic_arg(v0 *v)
{
    if (v->i >= v->n)
        return false;
    size_t x;
    if (v->s[v->i] == 'L')
        return dm_lifetime(v, false, &x);
    if (v->s[v->i] == 'K') {
        v->i++;
        return dm_const(v, false);
    }
    return dm_type(v);
}

/* {item} "E", separated by sep. */
static bool dm_list(v0 *v, bool (*item)(v0 *), const char *sep, size_t *count)
{
    size_t k = 0;
    while (v->i < v->n && v->s[v->i] != 'E') {
        if (k++ > 0)
            v0_puts(v, sep);
        if (!item(v) || !v0_ok(v))
            return false;
    }
    if (v->i >= v->n)
        return false;
    v->i++;
    if (count != NULL)
        *count = k;
    return true;
}

/* binder: ["G" base-62-number]: that many lifetimes more, printed "for<'a, 'b> ".  *count is
 * how many, for the caller to unbind. */
static bool dm_binder(v0 *v, size_t *count)
{
    *count = 0;
    if (v->i < v->n && v->s[v->i] == 'G') {
        v->i++;
        if (!v0_base62(v, count) || *count >= 1000)
            return false;
        ++*count;
        v->steps += *count;           /* the loop below is work the step bound must see */
        if (!v0_ok(v))
            return false;
        v0_puts(v, "for<");
        for (size_t k = 0; k < *count; k++) {
            if (k > 0)
                v0_puts(v, ", ");
            v->bound++;
            dm_lifetime_index(v, 1);
        }
        v0_puts(v, "> ");
    }
    return true;
}

/* A path that ends in generic arguments is printed with its '<' left open (returns *open), for
 * a dyn trait's associated-type bindings to join them: "FnOnce<(), Output = ()>". */
static bool dm_path_open(v0 *v, bool *open)
{
    *open = false;
    if (v->i < v->n && v->s[v->i] == 'B') {
        size_t start = v->i++, at, here;
        if (!v0_base62(v, &at) || at >= start || ++v->depth > 64)
            return false;
        here = v->i;
        v->i = at;
        bool ok = dm_path_open(v, open);
        v->i = here;
        v->depth--;
        return ok;
    }
    if (v->i < v->n && v->s[v->i] == 'I') {
        v->i++;
        if (!dm_path(v, true))
            return false;
        v0_puts(v, "<");
        *open = true;
        return dm_list(v, dm_generic_arg, ", ", NULL);
    }
    return dm_path(v, true);
}

/* dyn-trait: path {"p" undisambiguated-identifier type}. */
static bool dm_dyn_trait(v0 *v)
{
    bool open;
    if (!dm_path_open(v, &open))
        return false;
    while (v->i < v->n && v->s[v->i] == 'p') {
        v->i++;
        const char *id;
        size_t idn, dis;
        if (v->i < v->n && v->s[v->i] == 's')
            return false;             /* an undisambiguated identifier */
        if (!v0_ident(v, &id, &idn, &dis))
            return false;
        v0_puts(v, open ? ", " : "<");
        open = true;
        v0_put(v, id, idn);
        v0_puts(v, " = ");
        if (!dm_type(v))
            return false;
    }
    if (open)
        v0_puts(v, ">");
    return true;
}

static bool dm_type(v0 *v)
{
    static const char *const basic[26] = {
        ['a' - 'a'] = "i8",    ['b' - 'a'] = "bool",  ['c' - 'a'] = "char", ['d' - 'a'] = "f64",
        ['e' - 'a'] = "str",   ['f' - 'a'] = "f32",   ['h' - 'a'] = "u8",   ['i' - 'a'] = "isize",
        ['j' - 'a'] = "usize", ['l' - 'a'] = "i32",   ['m' - 'a'] = "u32",  ['n' - 'a'] = "i128",
        ['o' - 'a'] = "u128",  ['p' - 'a'] = "_",     ['s' - 'a'] = "i16",  ['t' - 'a'] = "u16",
        ['u' - 'a'] = "()",    ['v' - 'a'] = "...",   ['x' - 'a'] = "i64",  ['y' - 'a'] = "u64",
        ['z' - 'a'] = "!",
    };
    if (v->i >= v->n || ++v->depth > 64)
        return false;
    size_t start = v->i;
    char c = v->s[v->i];
    bool ok = true;
    if (c >= 'a' && c <= 'z') {
        v->i++;
        if (basic[c - 'a'] == NULL)
            return false;
        v0_puts(v, basic[c - 'a']);
    } else if (c == 'A' || c == 'S') {
        v->i++;
        v0_puts(v, "[");
        ok = dm_type(v);
        if (ok && c == 'A') {
            v0_puts(v, "; ");
            ok = dm_const(v, false);
        }
        v0_puts(v, "]");
    } else if (c == 'T') {
        v->i++;
        size_t k = 0;
        v0_puts(v, "(");
        ok = dm_list(v, dm_type, ", ", &k);
        v0_puts(v, k == 1 ? ",)" : ")");
    } else if (c == 'R' || c == 'Q') {
        v->i++;
        v0_puts(v, "&");
        size_t x = 0;
        if (v->i < v->n && v->s[v->i] == 'L') {
            ok = dm_lifetime(v, true, &x);
            if (x != 0)
                v0_puts(v, " ");
        }
        if (c == 'Q')
            v0_puts(v, "mut ");
        ok = ok && dm_type(v);
    } else if (c == 'P' || c == 'O') {
        v->i++;
        v0_puts(v, c == 'P' ? "*const " : "*mut ");
        ok = dm_type(v);
    } else if (c == 'F') {
        v->i++;
        size_t nb;
        ok = dm_binder(v, &nb);
        if (ok && v->i < v->n && v->s[v->i] == 'U') {
            v->i++;
            v0_puts(v, "unsafe ");
        }
        if (ok && v->i < v->n && v->s[v->i] == 'K') {
            v->i++;
            v0_puts(v, "extern \"");
            if (v->i < v->n && v->s[v->i] == 'C') {
                v->i++;
                v0_puts(v, "C");
            } else {
                const char *id;
                size_t idn, dis;
                ok = v0_ident(v, &id, &idn, &dis) && dis == 0;
                for (size_t k = 0; ok && k < idn; k++)
                    v0_put(v, id[k] == '_' ? "-" : &id[k], 1);
            }
            v0_puts(v, "\" ");
        }
        v0_puts(v, "fn(");
        ok = ok && dm_list(v, dm_type, ", ", NULL);
        v0_puts(v, ")");
        if (ok && v->i < v->n && v->s[v->i] == 'u') {
            v->i++;                   /* returns (): nothing shown */
        } else if (ok) {
            v0_puts(v, " -> ");
            ok = dm_type(v);
        }
        v->bound -= nb;
    } else if (c == 'D') {
        v->i++;
        size_t nb, x = 0;
        v0_puts(v, "dyn ");
        ok = dm_binder(v, &nb) && dm_list(v, dm_dyn_trait, " + ", NULL);
        v->bound -= nb;
        if (ok && v->i < v->n && v->s[v->i] == 'L') {
            if (v->i + 1 < v->n && v->s[v->i + 1] != '_')
                v0_puts(v, " + ");   /* the object lifetime, unless erased */
            ok = dm_lifetime(v, true, &x);
        } else {
            ok = false;
        }
    } else if (c == 'B') {
        v->i++;
        ok = dm_backref(v, start, dm_type_arg, false);
    } else {
        ok = dm_path(v, true);
    }
    v->depth--;
    return ok && v0_ok(v);
}

static bool dm_path_arg(v0 *v, bool in_type)
{
    return dm_path(v, in_type);
}

static bool dm_path(v0 *v, bool in_type)
{
    if (v->i >= v->n || ++v->depth > 64)
        return false;
    size_t start = v->i, dis;
    char tag = v->s[v->i++];
    const char *id;
    size_t idn;
    bool ok = true;
    switch (tag) {
    case 'C':
        ok = v0_ident(v, &id, &idn, &dis);
        if (ok)
            v0_put(v, id, idn);
        break;
    case 'N': {
        if (v->i >= v->n)
            return false;
        char ns = v->s[v->i++];
        if (!((ns >= 'a' && ns <= 'z') || (ns >= 'A' && ns <= 'Z')))
            return false;
        ok = dm_path(v, in_type) && v0_ident(v, &id, &idn, &dis);
        if (!ok)
            break;
        if (ns >= 'A' && ns <= 'Z') {
            v0_puts(v, ns == 'C' ? "::{closure" : ns == 'S' ? "::{shim" : "::{");
            if (ns != 'C' && ns != 'S')
                v0_put(v, &ns, 1);
            if (idn > 0) {
                v0_puts(v, ":");
                v0_put(v, id, idn);
            }
            v0_puts(v, "#");
            v0_putnum(v, dis);
            v0_puts(v, "}");
        } else if (idn > 0) {
            v0_puts(v, "::");
            v0_put(v, id, idn);
        }
        break;
    }
    case 'M':
    case 'X':
    case 'Y': {
        if (tag != 'Y') {             /* the impl's own path is not shown */
            out *o = v->o;
            v->o = NULL;
            ok = v0_disambiguator(v, &dis) && dm_path(v, false);
            v->o = o;
        }
        v0_puts(v, "<");
        ok = ok && dm_type(v);
        if (ok && tag != 'M') {
            v0_puts(v, " as ");
            ok = dm_path(v, true);
        }
        v0_puts(v, ">");
        break;
    }
    case 'I':
        ok = dm_path(v, in_type);
        v0_puts(v, in_type ? "<" : "::<");
        ok = ok && dm_list(v, dm_generic_arg, ", ", NULL);
        v0_puts(v, ">");
        break;
    case 'B':
        ok = dm_backref(v, start, dm_path_arg, in_type);
        break;
    default:
        return false;
    }
    v->depth--;
    return ok && v0_ok(v);
}

int hs_rust_v0_demangle(const char *sym, char *buf, size_t cap)
{
    if (sym == NULL || strncmp(sym, "_R", 2) != 0 || cap == 0)
        return 0;
    out o = { buf, 0, cap, true };
    buf[0] = '\0';
    v0 v = { sym + 2, strlen(sym + 2), 0, 0, &o, 0, 0 };
    if (v.i < v.n && v.s[v.i] >= '0' && v.s[v.i] <= '9')
        return 0;                     /* a later encoding version */
    if (!dm_path(&v, false) || !o.ok)
        return 0;
    /* what may follow: the instantiating crate (a path), then a vendor suffix from '.' */
    if (v.i < v.n && v.s[v.i] != '.') {
        v.o = NULL;
        if (!dm_path(&v, false))
            return 0;
    }
    return v.i == v.n || v.s[v.i] == '.';
}
