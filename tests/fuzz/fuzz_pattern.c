/*
 * fuzz_pattern.c - libFuzzer target for everything that parses or matches user patterns:
 * hs_fnmatch and compiled globs (src/analysis/fnmatch.c), filter lists
 * (hs_snapshot_filter_traces, SPEC section 5: lineno and all-frames filters, domains,
 * DomainFilters), the CLI's turning of --include/--exclude/--lineno/--all-frames/--domain into
 * filters (src/cli/common.c), and the --alloc-fn list that `run` hands to the tracer
 * (src/tracer/allocfn.c).
 *
 * Properties checked, not only "no crash":
 *  - hs_fnmatch agrees with an independent reference matcher written here from the documented
 *    semantics (Python's fnmatch.fnmatchcase() on bytes: sets split into chunks at '-' as
 *    fnmatch.translate() does, minus the one documented difference), memoised recursion instead
 *    of the greedy last-star algorithm;
 *  - it agrees with the C library's fnmatch(3) (FNM_NOESCAPE, C locale) on every pattern whose
 *    sets hold no '[' (POSIX classes) and do not start with '^' (negation in glibc, a member in
 *    Python): the only places SPEC 5 and fnmatch(3) part ways;
 *  - a pattern with no metacharacter matches exactly itself; any string quoted into a pattern
 *    ([*] [?] [[]) matches exactly that string; `*` matches everything; p matches s implies
 *    `*p`, `p*` and `*p*` match s; a compiled glob gives the same answers as hs_fnmatch;
 *  - hs_snapshot_filter_traces keeps exactly the traces a literal reading of SPEC 5 keeps, in
 *    order, leaves its source unchanged, and is idempotent; malformed filters give EINVAL;
 *  - the CLI's analysis options give filters that keep what the options say: a domain option
 *    keeps only those domains, includes are or'ed, excludes all apply;
 *  - the --alloc-fn patterns `run` joins into HEAPSNAP_ALLOC_FN come back out of the tracer's
 *    parser one for one, and match function names as the patterns say.
 *
 * Seeds: tests/fuzz/corpus/fuzz_pattern/.  Input: PATTERN \0 STRING \0 then bytes that build a
 * small snapshot and filter lists.
 */
#include "analysis/analysis.h"
#include "cli/cli.h"
#include "fuzz.h"
#include "tracer/allocfn.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATTERN 256
#define MAX_STRING 512

/* ---- input ------------------------------------------------------------------------------------ */

/* Bytes up to a NUL (consumed) or the end, at most max; a fresh NUL-terminated copy. */
static char *take_str(input *in, size_t max)
{
    size_t len = 0;
    while (len < in->n && len < max && in->p[len] != 0)
        len++;
    char *s = malloc(len + 1);
    CHECK(s != NULL);
    memcpy(s, in->p, len);
    s[len] = '\0';
    in->p += len;
    in->n -= len;
    if (in->n > 0 && *in->p == 0) {
        in->p++;
        in->n--;
    }
    return s;
}

/* ---- the reference matcher ------------------------------------------------------------------- */

/* A set [ ... ] starting at p[i] == '['; returns the index of its closing ']', or 0 when the '['
 * is a literal (no closing ']'), by fnmatch.translate()'s rule. */
static size_t set_end(const char *p, size_t np, size_t i)
{
    size_t j = i + 1;
    if (j < np && p[j] == '!')
        j++;
    if (j < np && p[j] == ']')
        j++;
    while (j < np && p[j] != ']')
        j++;
    return j < np ? j : 0;
}

/* Membership of c in the set p(i, j): i just after '[', j at ']'.  The items are split into
 * chunks at '-' as fnmatch.translate() does (the search for the next '-' resumes two bytes after
 * the last one, so a '-' right after a range is a member); the last byte of a chunk and the first
 * of the next are the ends of a range; a reversed range is empty.  Python 3.11 also deletes the
 * range's text, which can make a '!' the first byte of the set and a negation; heapsnap does not
 * (fnmatch.c's comment), and neither does this reference. */
static int set_has(const char *p, size_t i, size_t j, unsigned char c)
{
    int neg = p[i] == '!';
    size_t start = i + (size_t)neg;
    size_t a[MAX_PATTERN], b[MAX_PATTERN], m = 0;   /* chunk t is p[a[t] .. b[t]) */
    int trailing_dash = 0;
    size_t ci = i;
    for (size_t k = i + (neg ? 2 : 1);;) {
        size_t d = k;
        while (d < j && p[d] != '-')
            d++;
        if (k >= j || d >= j)
            break;
        a[m] = ci;
        b[m++] = d;
        ci = d + 1;
        k = d + 3;
    }
    if (ci < j) {
        a[m] = ci;
        b[m++] = j;
    } else if (m > 0) {
        trailing_dash = 1;              /* "a-]": the '-' is a member */
    } else {
        a[m] = ci;                      /* no chunk at all: "[]" cannot happen, "[!]" neither */
        b[m++] = j;
    }
    a[0] = start > a[0] ? start : a[0]; /* the '!' is no member */
    int hit = trailing_dash && c == '-';
    for (size_t t = 0; t < m && !hit; t++) {
        for (size_t q = a[t]; q < b[t] && !hit; q++) {
            int range_end = t > 0 && q == a[t];
            int range_start = t + 1 < m && q + 1 == b[t];
            if (!range_end && !range_start)
                hit = (unsigned char)p[q] == c;
        }
        if (t > 0) {
            unsigned char lo = (unsigned char)p[b[t - 1] - 1], hi = (unsigned char)p[a[t]];
            if (lo <= c && c <= hi)
                hit = 1;
        }
    }
    return hit != neg;
}

typedef struct ref {
    const char *p, *s;
    size_t np, ns;
    unsigned char *memo;      /* (np + 1) x (ns + 1): 0 unknown, 1 no, 2 yes */
} ref;

static int ref_at(ref *r, size_t pi, size_t si)
{
    unsigned char *m = &r->memo[pi * (r->ns + 1) + si];
    if (*m != 0)
        return *m == 2;
    int res;
    if (pi == r->np) {
        res = si == r->ns;
    } else if (r->p[pi] == '*') {
        res = ref_at(r, pi + 1, si) || (si < r->ns && ref_at(r, pi, si + 1));
    } else if (si == r->ns) {
        res = 0;
    } else if (r->p[pi] == '?') {
        res = ref_at(r, pi + 1, si + 1);
    } else if (r->p[pi] == '[' && set_end(r->p, r->np, pi) != 0) {
        size_t j = set_end(r->p, r->np, pi);
        res = set_has(r->p, pi + 1, j, (unsigned char)r->s[si]) && ref_at(r, j + 1, si + 1);
    } else {
        res = r->p[pi] == r->s[si] && ref_at(r, pi + 1, si + 1);
    }
    *m = res ? 2 : 1;
    return res;
}

static int ref_match(const char *p, const char *s)
{
    ref r = { p, s, strlen(p), strlen(s), NULL };
    r.memo = calloc((r.np + 1) * (r.ns + 1), 1);
    CHECK(r.memo != NULL);
    int res = ref_at(&r, 0, 0);
    free(r.memo);
    return res;
}

/* Whether fnmatch(3) promises the same answer.  Not when a set holds a '[' (glibc reads
 * [:class:], [=c=] and [.c.] there) or starts with '^' (glibc negates; Python takes it as a
 * member).  Nor after a '[' that closes nowhere, which is a literal '[' for POSIX, Python and
 * heapsnap, but which glibc 2.36 first reads as a set to the end of the pattern: a '[' there can
 * start a class, and a final '-' makes a range ending at the NUL and the whole match fail
 * (fnmatch("[*-", "[-", 0) is FNM_NOMATCH). */
static int glibc_comparable(const char *p)
{
    size_t np = strlen(p);
    for (size_t i = 0; i < np; i++) {
        if (p[i] != '[')
            continue;
        size_t j = set_end(p, np, i);
        if (j == 0)
            return strchr(p + i + 1, '[') == NULL && p[np - 1] != '-';
        size_t first = i + 1 + (p[i + 1] == '!');
        if (p[first] == '^' || memchr(p + i + 1, '[', j - i - 1) != NULL)
            return 0;
        i = j;
    }
    return 1;
}

/* ---- matching properties ---------------------------------------------------------------------- */

static char *concat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *r = malloc(la + lb + lc + 1);
    CHECK(r != NULL);
    memcpy(r, a, la);
    memcpy(r + la, b, lb);
    memcpy(r + la + lb, c, lc + 1);
    return r;
}

/* A pattern that matches exactly s: each metacharacter inside a one-byte set. */
static char *quote(const char *s)
{
    char *q = malloc(strlen(s) * 3 + 1), *w = q;
    CHECK(q != NULL);
    for (; *s; s++) {
        if (*s == '*' || *s == '?' || *s == '[') {
            *w++ = '[';
            *w++ = *s;
            *w++ = ']';
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return q;
}

static void check_match(const char *p, const char *s)
{
    int got = hs_fnmatch(p, s);
    CHECK(got == 0 || got == 1);
    CHECK(got == ref_match(p, s));
    if (glibc_comparable(p))
        CHECK(got == (fnmatch(p, s, FNM_NOESCAPE) == 0));

    /* No metacharacter: the pattern is the string. */
    if (strpbrk(p, "*?[") == NULL) {
        CHECK(got == (strcmp(p, s) == 0));
        CHECK(hs_fnmatch(p, p) == 1);
    }
    char *qs = quote(s), *qp = quote(p);
    CHECK(hs_fnmatch(qs, s) == 1);
    CHECK(hs_fnmatch(qp, s) == (strcmp(p, s) == 0));
    free(qs);
    free(qp);

    CHECK(hs_fnmatch("*", s) == 1);
    CHECK(hs_fnmatch("", s) == (*s == '\0'));
    if (got) {
        char *a = concat3("*", p, ""), *b = concat3("", p, "*"), *c = concat3("*", p, "*");
        CHECK(hs_fnmatch(a, s) && hs_fnmatch(b, s) && hs_fnmatch(c, s));
        free(a);
        free(b);
        free(c);
    }
    CHECK(hs_fnmatch(NULL, s) == 0 && hs_fnmatch(p, NULL) == 0);

    /* Compiled once, matched many times, the same answers. */
    hs_glob g;
    CHECK(hs_glob_compile(&g, p) == 0);
    CHECK(hs_glob_match(&g, s) == got);
    CHECK(hs_glob_match(&g, p) == hs_fnmatch(p, p));
    CHECK(hs_glob_match(&g, "") == hs_fnmatch(p, ""));
    hs_glob copy = g;                       /* a short pattern's glob may be copied */
    if (g.heap == NULL)
        CHECK(hs_glob_match(&copy, s) == got);
    hs_glob_free(&g);
}

/* ---- filters ------------------------------------------------------------------------------------- */

#define MAX_TRACES 24
#define MAX_FRAMES 4
#define MAX_FILTERS 8

typedef struct model_trace {
    unsigned int domain;
    size_t size;
    size_t nframes;
    hs_frame frames[MAX_FRAMES];
} model_trace;

typedef struct model {
    const char *names[8];       /* file names frames and patterns are drawn from */
    model_trace t[MAX_TRACES];
    size_t n;
} model;

static void build_model(model *m, input *in, const char *pattern, const char *string)
{
    static const char *const fixed[] = { "a.c", "b.c", "src/x/a.c", "<unknown>", "", "[a].c" };
    m->names[0] = pattern;
    m->names[1] = string;
    for (size_t i = 0; i < HS_ARRAY_LEN(fixed); i++)
        m->names[2 + i] = fixed[i];
    m->n = take(in) % (MAX_TRACES + 1);
    for (size_t i = 0; i < m->n; i++) {
        model_trace *t = &m->t[i];
        unsigned b = take(in);
        t->domain = b & 3;
        t->size = take(in) * 8u + 1;
        t->nframes = (b >> 2) % (MAX_FRAMES + 1);
        for (size_t k = 0; k < t->nframes; k++) {
            unsigned f = take(in);
            t->frames[k] = (hs_frame){ .filename = m->names[f & 7], .lineno = (f >> 3) % 4,
                                       .function = "", .object = "", .address = 0 };
        }
    }
}

static hs_snapshot *model_snapshot(const model *m)
{
    hs_snapshot *s = hs_snapshot_new(MAX_FRAMES);
    CHECK(s != NULL);
    for (size_t i = 0; i < m->n; i++)
        CHECK(hs_snapshot_add_trace(s, m->t[i].domain, m->t[i].size, m->t[i].frames,
                                    m->t[i].nframes, m->t[i].nframes) == 0);
    return s;
}

/* SPEC section 5, read literally, with the reference matcher.  An empty traceback reads as the
 * single frame <unknown>:0 (analysis.h). */
static int ref_frame_hit(const hs_filter *f, const hs_frame *fr)
{
    return (f->lineno == HS_ANY_LINE || (int)fr->lineno == f->lineno) &&
           ref_match(f->filename_pattern, fr->filename);
}

static int ref_filter_keeps(const hs_filter *f, const model_trace *t)
{
    if (f->filename_pattern == NULL)
        return (t->domain == f->domain) != !f->inclusive;
    static const hs_frame unknown = { "<unknown>", 0, "", "", 0 };
    const hs_frame *frames = t->nframes ? t->frames : &unknown;
    size_t n = t->nframes ? t->nframes : 1;
    int keep;
    if (!f->all_frames) {
        keep = ref_frame_hit(f, &frames[0]) != !f->inclusive;
    } else {
        int h = 0;
        for (size_t k = 0; k < n; k++)
            h |= ref_frame_hit(f, &frames[k]);
        keep = f->inclusive ? h : !h;
    }
    if (f->has_domain)
        keep = f->inclusive ? keep && t->domain == f->domain : keep || t->domain != f->domain;
    return keep;
}

static int ref_list_keeps(const hs_filter *f, size_t nf, const model_trace *t)
{
    int any_inclusive = 0, included = 0;
    for (size_t i = 0; i < nf; i++) {
        int k = ref_filter_keeps(&f[i], t);
        if (f[i].inclusive) {
            any_inclusive = 1;
            included |= k;
        } else if (!k) {
            return 0;
        }
    }
    return !any_inclusive || included;
}

/* The snapshot holds exactly the model's traces whose keep[] is set, in order. */
static void check_kept(const hs_snapshot *s, const model *m, const int *keep)
{
    size_t j = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (!keep[i])
            continue;
        unsigned int dom;
        size_t size;
        const hs_traceback *tb;
        CHECK(hs_snapshot_get(s, j++, &dom, &size, &tb) == 0);
        const model_trace *t = &m->t[i];
        CHECK(dom == t->domain && size == t->size && tb->nframes == t->nframes);
        for (size_t k = 0; k < t->nframes; k++)
            CHECK(strcmp(tb->frames[k].filename, t->frames[k].filename) == 0 &&
                  tb->frames[k].lineno == t->frames[k].lineno);
    }
    CHECK(hs_snapshot_count(s) == j);
}

static const char *pick_pattern(const model *m, unsigned b)
{
    static const char *const more[] = { "*", "*.c", "?.c", "[ab].c", "*/a.c", "<unknown>",
                                        "[!a]*", "b.c" };
    return b & 8 ? more[b & 7] : m->names[b & 7];
}

/* Arbitrary filter lists through the C API. */
static void check_filter_list(const model *m, const hs_snapshot *s, input *in)
{
    hs_filter f[MAX_FILTERS];
    size_t nf = take(in) % (MAX_FILTERS + 1);
    for (size_t i = 0; i < nf; i++) {
        unsigned a = take(in), b = take(in);
        f[i] = (hs_filter){ .inclusive = a & 1, .all_frames = (a >> 1) & 1,
                            .lineno = (int)((a >> 2) % 5) - 1, .domain = (a >> 5) & 3 };
        switch (b >> 6) {
        case 0:                                 /* a DomainFilter */
            f[i].has_domain = 1;
            break;
        case 1:                                 /* a Filter with a domain */
            f[i].has_domain = 1;
            /* fall through */
        default:
            f[i].filename_pattern = pick_pattern(m, b);
        }
    }
    int keep[MAX_TRACES];
    for (size_t i = 0; i < m->n; i++)
        keep[i] = ref_list_keeps(f, nf, &m->t[i]);

    hs_snapshot *r = hs_snapshot_filter_traces(s, f, nf);
    CHECK(r != NULL);
    check_kept(r, m, keep);
    CHECK(hs_snapshot_traceback_limit(r) == hs_snapshot_traceback_limit(s));
    int all[MAX_TRACES];
    for (size_t i = 0; i < m->n; i++)
        all[i] = 1;
    check_kept(s, m, all);                      /* the source is unchanged */
    hs_snapshot *again = hs_snapshot_filter_traces(r, f, nf);
    CHECK(again != NULL);
    check_kept(again, m, keep);                 /* idempotent */
    hs_snapshot_free(again);
    hs_snapshot_free(r);

    /* Malformed lists are refused, not guessed at. */
    if (nf > 0) {
        hs_filter bad = f[0];
        bad.filename_pattern = NULL;
        bad.has_domain = 0;
        errno = 0;
        CHECK(hs_snapshot_filter_traces(s, &bad, 1) == NULL && errno == EINVAL);
        bad.filename_pattern = "*";
        bad.lineno = -2 - (int)(take(in) % 1000);
        errno = 0;
        CHECK(hs_snapshot_filter_traces(s, &bad, 1) == NULL && errno == EINVAL);
    }
}

/* The CLI's analysis options: what each option says, whatever the mix. */
static void check_cli_filters(const model *m, const hs_snapshot *s, input *in)
{
    cli_analysis_opts o = { .key = HS_KEY_LINENO, .lineno = HS_ANY_LINE };
    const char *inc[MAX_FILTERS], *exc[MAX_FILTERS];
    unsigned int doms[MAX_FILTERS];
    size_t ninc = 0, nexc = 0, ndoms = 0;
    int lineno = HS_ANY_LINE, all_frames = 0;
    char numbuf[MAX_FILTERS][16];
    size_t nopts = take(in) % (MAX_FILTERS + 1);
    for (size_t i = 0; i < nopts; i++) {
        unsigned b = take(in);
        switch (b & 7) {
        case 0: case 1: case 2:
            CHECK(cli_analysis_option(&o, OPT_INCLUDE, inc[ninc++] = pick_pattern(m, b >> 3)) == 1);
            break;
        case 3: case 4:
            CHECK(cli_analysis_option(&o, OPT_EXCLUDE, exc[nexc++] = pick_pattern(m, b >> 3)) == 1);
            break;
        case 5:
            snprintf(numbuf[i], sizeof(numbuf[i]), "%u", (b >> 3) & 3);
            CHECK(cli_analysis_option(&o, OPT_DOMAIN, numbuf[i]) == 1);
            doms[ndoms++] = (b >> 3) & 3;
            break;
        case 6:
            snprintf(numbuf[i], sizeof(numbuf[i]), "%u", (b >> 3) % 4);
            CHECK(cli_analysis_option(&o, OPT_LINENO, numbuf[i]) == 1);
            lineno = (int)((b >> 3) % 4);
            break;
        default:
            CHECK(cli_analysis_option(&o, OPT_ALL_FRAMES, NULL) == 1);
            all_frames = 1;
        }
    }
    cli_analysis_finish(&o);

    int keep[MAX_TRACES];
    for (size_t i = 0; i < m->n; i++) {
        const model_trace *t = &m->t[i];
        static const hs_frame unknown = { "<unknown>", 0, "", "", 0 };
        const hs_frame *frames = t->nframes ? t->frames : &unknown;
        size_t n = !t->nframes ? 1 : all_frames ? t->nframes : 1;
        int in_domain = ndoms == 0, included = ninc == 0, excluded = 0;
        for (size_t d = 0; d < ndoms; d++)
            in_domain |= t->domain == doms[d];
        for (size_t k = 0; k < n; k++) {
            if (lineno != HS_ANY_LINE && (int)frames[k].lineno != lineno)
                continue;
            for (size_t p = 0; p < ninc; p++)
                included |= ref_match(inc[p], frames[k].filename);
            for (size_t p = 0; p < nexc; p++)
                excluded |= ref_match(exc[p], frames[k].filename);
        }
        keep[i] = in_domain && included && !excluded;
    }
    hs_snapshot *r = cli_apply_filters(&o, s);
    CHECK(r != NULL);
    check_kept(r, m, keep);
    hs_snapshot_free(r);
    cli_analysis_free(&o);
}

/* ---- --alloc-fn ---------------------------------------------------------------------------- */

/* The patterns `run --alloc-fn` accepts come back out of the tracer's HEAPSNAP_ALLOC_FN parser
 * one for one, in order; a function name is trimmed when one of them matches the name as shown
 * or the name without the parameter list it ends with. */
static void check_alloc_fns(const char *pattern, const char *string, input *in)
{
    const char *pats[4] = { pattern, string, "xmalloc", "g_malloc*" };
    char run[] = "run", opt[] = "--alloc-fn", dd[] = "--", prog[] = "prog";
    char *argv[16];
    int argc = 0;
    argv[argc++] = run;
    const char *given[4];
    size_t want = 0;
    int valid = 1;
    unsigned b = take(in);
    for (size_t i = 0; i < 4; i++) {
        if (!(b >> i & 1))
            continue;
        argv[argc++] = opt;
        argv[argc++] = (char *)pats[i];
        given[want++] = pats[i];
        valid &= pats[i][0] != '\0' && strchr(pats[i], ':') == NULL;
    }
    argv[argc++] = dd;
    argv[argc++] = prog;
    argv[argc] = NULL;
    cli_run_args a;
    int rc = cli_parse_run(argc, argv, &a);
    if (!valid) {
        CHECK(rc == EXIT_USAGE);
        return;
    }
    CHECK(rc == CLI_PROCEED && a.prog_argv == argv + argc - 1);
    hs_alloc_fns list;
    CHECK(hs_alloc_fns_parse(&list, a.alloc_fns) == 0);
    CHECK(list.n == want);
    for (size_t i = 0; i < want; i++)
        CHECK(strcmp(list.v[i], given[i]) == 0);

    /* Names: string as it is, and string with a parameter list and a qualifier. */
    static const char *const params[] = { "", "(int)", "(int (*)(int)) const", "()" };
    const char *suffix = params[(b >> 4) & 3];
    char *fn = concat3(string, suffix, "");
    int expect = 0;
    for (size_t i = 0; i < want; i++)
        expect |= ref_match(given[i], fn) || (*suffix && ref_match(given[i], string));
    int got = hs_alloc_fns_match(&list, fn);
    if (strpbrk(string, "()") == NULL)      /* otherwise the name's own parentheses count */
        CHECK(got == (fn[0] != '\0' && expect));
    free(fn);
    hs_alloc_fns_free(&list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = { data, size };
    char *pattern = take_str(&in, MAX_PATTERN);
    char *string = take_str(&in, MAX_STRING);
    check_match(pattern, string);
    check_match(string, pattern);

    model m;
    build_model(&m, &in, pattern, string);
    hs_snapshot *s = model_snapshot(&m);
    check_filter_list(&m, s, &in);
    check_cli_filters(&m, s, &in);
    hs_snapshot_free(s);

    check_alloc_fns(pattern, string, &in);
    free(pattern);
    free(string);
    return 0;
}
