/*
 * fuzz_args.c - libFuzzer target for the heapsnap command's argument parsing, every subcommand:
 * the parse-only entry points cli_parse_<cmd> (src/cli/cli.h), which touch no file, process or
 * environment variable, so nothing here runs a program, writes a file or reads the file system.
 *
 * Two kinds of input, chosen by the first byte:
 *  - raw (even): the rest split into an argv at NUL bytes, for the subcommand the first byte
 *    names.  Checked: the result is CLI_PROCEED, EXIT_OK or EXIT_USAGE; no leak, no bad read
 *    (ASan), no undefined behaviour (UBSan); on CLI_PROCEED every field is within its
 *    documented range and every path or pattern points at one of the argv strings; and a
 *    second parse of a fresh copy gives the same answer (the parsers restart getopt_long).
 *  - modelled (odd): a list of options with values taken from the input, written in the forms
 *    users write (--name VALUE, --name=VALUE, -lVALUE, -l VALUE, abbreviated long names), for
 *    top, diff, leaks and run.  A model written here from the documentation (strtol-like strict
 *    numbers with the documented ranges, the last value wins, filters in order with --lineno and
 *    --all-frames applied to every pattern) says whether the line is accepted and what it means;
 *    the parser must agree exactly.
 *
 * Seeds: tests/fuzz/corpus/fuzz_args/; dictionary tests/fuzz/fuzz_args.dict.
 */
#include "cli/cli.h"
#include "fuzz.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define MAX_ARGS 64

static const char *const commands[] = { "run", "snapshot", "top", "diff", "leaks", "timeline",
                                        "export", "info" };

/* The argv of one input: strings owned here, an array getopt_long may permute. */
typedef struct args {
    char *v[MAX_ARGS + 2];
    char *own[MAX_ARGS + 2];     /* the same strings, in their original order, for freeing */
    int n;
} args;

static void args_add(args *a, const char *s, size_t len)
{
    CHECK(a->n < MAX_ARGS + 1);
    char *c = malloc(len + 1);
    CHECK(c != NULL);
    memcpy(c, s, len);
    c[len] = '\0';
    a->v[a->n] = a->own[a->n] = c;
    a->v[++a->n] = NULL;
}

static void args_free(args *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->own[i]);
    a->n = 0;
}

/* p is one of the argument strings, or inside one (an --opt=VALUE value). */
static int in_args(const args *a, const char *p)
{
    for (int i = 0; i < a->n; i++)
        if (p >= a->own[i] && p <= a->own[i] + strlen(a->own[i]))
            return 1;
    return 0;
}

/* A permutation of the original strings, as getopt_long leaves argv. */
static void check_permutation(const args *a)
{
    for (int i = 0; i < a->n; i++) {
        int found = 0;
        for (int j = 0; j < a->n; j++)
            found += a->v[j] == a->own[i];
        CHECK(found == 1);
    }
    CHECK(a->v[a->n] == NULL);
}

static void check_opts(const args *a, const cli_analysis_opts *o)
{
    CHECK(o->key == HS_KEY_FILENAME || o->key == HS_KEY_LINENO || o->key == HS_KEY_TRACEBACK);
    CHECK(o->limit >= 0 && o->limit <= 1L << 40);
    CHECK(o->traceback_limit == HS_ALL_FRAMES ||
          (o->traceback_limit >= -HS_MAX_FRAMES && o->traceback_limit <= HS_MAX_FRAMES));
    CHECK(o->lineno == HS_ANY_LINE || (o->lineno >= 0 && o->lineno <= 1 << 30));
    CHECK(o->nfilters == 0 || o->filters != NULL);
    for (size_t i = 0; i < o->nfilters; i++) {
        const hs_filter *f = &o->filters[i];
        if (f->filename_pattern == NULL) {
            CHECK(f->has_domain && f->inclusive);       /* --domain */
        } else {
            CHECK(!f->has_domain && in_args(a, f->filename_pattern));
            CHECK(f->lineno == o->lineno && f->all_frames == o->all_frames);
        }
    }
    /* The filters are usable as they are. */
    hs_snapshot *s = hs_snapshot_new(4);
    CHECK(s != NULL);
    hs_frame fr = { "a.c", 1, "f", "", 0 };
    CHECK(hs_snapshot_add_trace(s, 0, 10, &fr, 1, 1) == 0);
    hs_snapshot *r = hs_snapshot_filter_traces(s, o->filters, o->nfilters);
    CHECK(r != NULL && hs_snapshot_count(r) <= 1);
    hs_snapshot_free(r);
    hs_snapshot_free(s);
}

/* Parses argv for command cmd; checks what the result says.  Returns the status. */
static int parse(int cmd, args *a)
{
    int rc;
    switch (cmd) {
    case 0: {
        cli_run_args r;
        rc = cli_parse_run(a->n, a->v, &r);
        if (rc != CLI_PROCEED)
            break;
        CHECK(r.frames >= 1 && r.frames <= HS_MAX_FRAMES);
        CHECK(r.output == NULL || in_args(a, r.output));
        if (r.interval != NULL) {
            /* A decimal the tracer's HEAPSNAP_INTERVAL rule also takes: digits, at most one
             * '.', at least one digit, a value in (0, 1e7]. */
            const char *s = r.interval;
            CHECK(in_args(a, s));
            CHECK(strspn(s, "0123456789.") == strlen(s));
            const char *dot = strchr(s, '.');
            CHECK(dot == NULL || strchr(dot + 1, '.') == NULL);
            CHECK(strcspn(s, "0123456789") < strlen(s));
            double v = strtod(s, NULL);
            CHECK(v > 0 && v <= 1e7);
        }
        size_t len = strlen(r.alloc_fns);
        CHECK(len < sizeof(r.alloc_fns));
        if (len > 0)                 /* no empty pattern: no leading, trailing or double ':' */
            CHECK(r.alloc_fns[0] != ':' && r.alloc_fns[len - 1] != ':' &&
                  strstr(r.alloc_fns, "::") == NULL);
        CHECK(r.prog_argv >= a->v + 1 && r.prog_argv < a->v + a->n && *r.prog_argv != NULL);
        break;
    }
    case 1: {
        cli_snapshot_args r;
        rc = cli_parse_snapshot(a->n, a->v, &r);
        if (rc == CLI_PROCEED)
            CHECK(r.pid >= 1 && r.pid <= INT_MAX && r.timeout >= 1 && r.timeout <= 86400);
        break;
    }
    case 2:
    case 3: {
        cli_top_args r;
        rc = cli_parse_top(a->n, a->v, cmd == 3, &r);
        if (rc != CLI_PROCEED)
            break;
        CHECK(r.npaths == (cmd == 3 ? 2 : 1));
        for (int i = 0; i < r.npaths; i++)
            CHECK(in_args(a, r.paths[i]));
        CHECK(!(r.o.cumulative && r.o.key == HS_KEY_TRACEBACK));
        check_opts(a, &r.o);
        cli_analysis_free(&r.o);
        break;
    }
    case 4: {
        cli_leaks_args r;
        rc = cli_parse_leaks(a->n, a->v, &r);
        if (rc != CLI_PROCEED)
            break;
        CHECK(r.npaths >= 1 && r.paths + r.npaths == a->v + a->n);
        for (int i = 0; i < r.npaths; i++)
            CHECK(in_args(a, r.paths[i]));
        CHECK(r.o.key != HS_KEY_FILENAME && !r.o.cumulative);
        CHECK(r.min_confidence >= 0 && r.min_confidence <= 1);
        check_opts(a, &r.o);
        cli_analysis_free(&r.o);
        break;
    }
    case 5: {
        cli_timeline_args r;
        rc = cli_parse_timeline(a->n, a->v, &r);
        if (rc == CLI_PROCEED)
            CHECK(r.rows >= 0 && r.rows <= 1L << 30 && in_args(a, r.path));
        break;
    }
    case 6: {
        cli_export_args r;
        rc = cli_parse_export(a->n, a->v, &r);
        if (rc == CLI_PROCEED)
            CHECK((r.format == CLI_FORMAT_FOLDED || r.format == CLI_FORMAT_JSON ||
                   r.format == CLI_FORMAT_PPROF) && in_args(a, r.path) &&
                  (r.output == NULL || in_args(a, r.output)) &&
                  (r.base == NULL || in_args(a, r.base)));
        break;
    }
    default: {
        cli_info_args r;
        rc = cli_parse_info(a->n, a->v, &r);
        if (rc == CLI_PROCEED) {
            CHECK(r.npaths >= 1 && r.paths + r.npaths == a->v + a->n);
            for (int i = 0; i < r.npaths; i++)
                CHECK(in_args(a, r.paths[i]));
        }
        break;
    }
    }
    CHECK(rc == CLI_PROCEED || rc == EXIT_OK || rc == EXIT_USAGE);
    check_permutation(a);
    return rc;
}

/* Parses the argv made of data twice, from fresh copies: the same answer both times, and
 * nothing of the first parse (getopt_long's place in a cluster of short options, say) may be
 * read in the second, after the first argv is freed. */
static void raw(const uint8_t *data, size_t size)
{
    int cmd = data[0] / 2 % (int)HS_ARRAY_LEN(commands), rc[2];
    for (int round = 0; round < 2; round++) {
        args a = { .n = 0 };
        args_add(&a, commands[cmd], strlen(commands[cmd]));
        const char *p = (const char *)data + 1, *end = (const char *)data + size;
        while (p < end && a.n < MAX_ARGS) {
            const char *z = memchr(p, 0, (size_t)(end - p));
            size_t len = z ? (size_t)(z - p) : (size_t)(end - p);
            args_add(&a, p, len);
            p += len + 1;
        }
        rc[round] = parse(cmd, &a);
        args_free(&a);
    }
    CHECK(rc[0] == rc[1]);
}

/* ---- the model --------------------------------------------------------------------------------- */

/* strtol's syntax, strictly: optional white space, an optional sign, decimal digits and nothing
 * after; the value in [lo, hi] (overflow is out of range). */
static int model_long(const char *s, long lo, long hi, long *out)
{
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    int neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    if (*s < '0' || *s > '9')
        return -1;
    unsigned long long v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (unsigned)(*s - '0');
        if (v > (1ULL << 62))
            return -1;              /* far beyond every range used */
    }
    if (*s != '\0')
        return -1;
    long long x = neg ? -(long long)v : (long long)v;
    if (x < lo || x > hi)
        return -1;
    *out = (long)x;
    return 0;
}

typedef struct opt_def {
    const char *name;           /* long name */
    char short_name;            /* 0: none */
    int has_arg;
} opt_def;

enum { M_BY, M_CUMULATIVE, M_LIMIT, M_INCLUDE, M_EXCLUDE, M_LINENO, M_ALL_FRAMES, M_DOMAIN,
       M_TB_LIMIT, M_JSON, M_MIN_CONF, M_FAIL, M_N_ANALYSIS };
static const opt_def analysis_opts[M_N_ANALYSIS] = {
    { "by", 0, 1 }, { "cumulative", 0, 0 }, { "limit", 'l', 1 }, { "include", 0, 1 },
    { "exclude", 0, 1 }, { "lineno", 0, 1 }, { "all-frames", 0, 0 }, { "domain", 0, 1 },
    { "traceback-limit", 0, 1 }, { "json", 0, 0 }, { "min-confidence", 0, 1 },
    { "fail-on-leak", 0, 0 },
};

enum { R_FRAMES, R_OUTPUT, R_INTERVAL, R_ALLOC_FN, R_FOLLOW, R_QUIET, R_N };
static const opt_def run_opts[R_N] = {
    { "frames", 'n', 1 }, { "output", 'o', 1 }, { "interval", 0, 1 }, { "alloc-fn", 0, 1 },
    { "follow-fork", 0, 0 }, { "quiet", 'q', 0 },
};

/* Interesting values: the model must hold for the edges. */
static const char *const values[] = {
    "0", "1", "10", "-1", "+3", " 7", "1e3", "0x10", "", "lineno", "traceback", "filename",
    "65535", "65536", "-65535", "-65536", "4294967295", "4294967296", "1099511627776",
    "1099511627777", "1073741824", "1073741825", "0.5", "1.", ".5", "1.2.3", "10000000",
    "10000000.1", "nan", "*.c", "a:b", "--", "-", "1 ", "9223372036854775808", "2147483647",
};


/* A value: one of the edges above, or a few bytes of the input (no NUL). */
static void take_value(input *in, char *buf, size_t cap)
{
    unsigned b = take(in);
    if (b < 0xc0) {
        snprintf(buf, cap, "%s", values[b % HS_ARRAY_LEN(values)]);
        return;
    }
    size_t len = (b - 0xc0) % 12, k = 0;
    while (k < len && k + 1 < cap && in->n > 0) {
        unsigned c = take(in);
        buf[k++] = c ? (char)c : '0';
    }
    buf[k] = '\0';
}

/* Writes option d with value v as a user might, choosing the form from b. */
static void write_opt(args *a, const opt_def *d, const char *v, unsigned b)
{
    char buf[256];
    size_t full = strlen(d->name), abbrev = full;
    if (b & 4)
        abbrev = full > 3 ? full - 1 : full;    /* a prefix; it may be ambiguous, the model knows */
    if (d->short_name && (b & 3) == 1) {
        snprintf(buf, sizeof(buf), "-%c%s", d->short_name, d->has_arg ? v : "");
        args_add(a, buf, strlen(buf));
        return;
    }
    if (d->short_name && (b & 3) == 2) {
        snprintf(buf, sizeof(buf), "-%c", d->short_name);
        args_add(a, buf, strlen(buf));
    } else if (d->has_arg && (b & 3) == 3) {
        snprintf(buf, sizeof(buf), "--%.*s=%s", (int)abbrev, d->name, v);
        args_add(a, buf, strlen(buf));
        return;
    } else {
        snprintf(buf, sizeof(buf), "--%.*s", (int)abbrev, d->name);
        args_add(a, buf, strlen(buf));
    }
    if (d->has_arg)
        args_add(a, v, strlen(v));
}

/* Whether --prefix names exactly one of the command's long options (getopt_long's rule for
 * abbreviations, with an exact match winning). */
static int unique_prefix(const char *prefix, size_t len, const char *const *names, size_t n)
{
    int hits = 0;
    for (size_t i = 0; i < n; i++) {
        if (strlen(names[i]) == len && strncmp(names[i], prefix, len) == 0)
            return 1;
        hits += strncmp(names[i], prefix, len) == 0;
    }
    return hits == 1;
}

typedef struct expect_filter {
    int kind;                   /* M_INCLUDE, M_EXCLUDE, M_DOMAIN */
    char value[64];
    unsigned int domain;
} expect_filter;

/* top, diff or leaks (cmd 2, 3, 4), modelled. */
static void modelled_analysis(int cmd, input *in)
{
    args a = { .n = 0 };
    args_add(&a, commands[cmd], strlen(commands[cmd]));
    static const char *const top_names[] = { "by", "cumulative", "limit", "include", "exclude",
                                             "lineno", "all-frames", "domain",
                                             "traceback-limit", "json", "help" };
    static const char *const leaks_names[] = { "by", "cumulative", "limit", "include",
                                               "exclude", "lineno", "all-frames", "domain",
                                               "traceback-limit", "json", "min-confidence",
                                               "fail-on-leak", "help" };
    const char *const *names = cmd == 4 ? leaks_names : top_names;
    size_t nnames = cmd == 4 ? HS_ARRAY_LEN(leaks_names) : HS_ARRAY_LEN(top_names);
    size_t nopt_kinds = cmd == 4 ? M_N_ANALYSIS : M_JSON + 1;

    int ok = 1, key = cmd == 4 ? HS_KEY_TRACEBACK : HS_KEY_LINENO, cumulative = 0, json = 0;
    int all_frames = 0, fail = 0;
    long limit = 10, tb_limit = HS_ALL_FRAMES, lineno = HS_ANY_LINE;
    double min_conf = 0.5;
    expect_filter ef[16];
    size_t nef = 0;
    size_t nopts = take(in) % 12;
    for (size_t i = 0; i < nopts && a.n < MAX_ARGS - 4; i++) {
        unsigned k = take(in) % nopt_kinds, form = take(in);
        const opt_def *d = &analysis_opts[k];
        char v[64];
        take_value(in, v, sizeof(v));
        write_opt(&a, d, v, form);
        /* The model: an abbreviation that is not unique is an error; the first error wins. */
        int short_form = d->short_name && ((form & 3) == 1 || (form & 3) == 2);
        size_t len = strlen(d->name);
        if (!short_form && (form & 4) && len > 3 && !unique_prefix(d->name, len - 1, names, nnames))
            ok = 0;
        if (!ok)
            continue;
        if (short_form && (form & 3) == 1 && v[0] == '\0') {
            /* "-l" with nothing attached takes the next argument: not modelled, stop here */
            args_free(&a);
            return;
        }
        long x;
        switch (k) {
        case M_BY:
            if (strcmp(v, "filename") == 0)
                key = HS_KEY_FILENAME;
            else if (strcmp(v, "lineno") == 0)
                key = HS_KEY_LINENO;
            else if (strcmp(v, "traceback") == 0)
                key = HS_KEY_TRACEBACK;
            else
                ok = 0;
            break;
        case M_CUMULATIVE:
            cumulative = 1;
            break;
        case M_LIMIT:
            if ((ok = model_long(v, 0, 1L << 40, &x) == 0))
                limit = x;
            break;
        case M_INCLUDE:
        case M_EXCLUDE:
            CHECK(nef < HS_ARRAY_LEN(ef));
            ef[nef].kind = (int)k;
            snprintf(ef[nef++].value, sizeof(ef[0].value), "%s", v);
            break;
        case M_LINENO:
            if ((ok = model_long(v, 0, 1L << 30, &x) == 0))
                lineno = x;
            break;
        case M_ALL_FRAMES:
            all_frames = 1;
            break;
        case M_DOMAIN:
            if ((ok = model_long(v, 0, 0xffffffffL, &x) == 0)) {
                CHECK(nef < HS_ARRAY_LEN(ef));
                ef[nef].kind = M_DOMAIN;
                ef[nef++].domain = (unsigned)x;
            }
            break;
        case M_TB_LIMIT:
            if ((ok = model_long(v, -HS_MAX_FRAMES, HS_MAX_FRAMES, &x) == 0))
                tb_limit = x;
            break;
        case M_JSON:
            json = 1;
            break;
        case M_MIN_CONF: {
            char *end;
            errno = 0;
            double c = strtod(v, &end);
            if ((ok = errno == 0 && *end == '\0' && c >= 0 && c <= 1))
                min_conf = c;
            break;
        }
        default:
            fail = 1;
        }
    }
    int npaths = cmd == 3 ? 2 : 1;
    if (cmd == 4)
        npaths = 1 + (int)(take(in) % 3);
    for (int i = 0; i < npaths; i++) {
        char p[32];
        snprintf(p, sizeof(p), "s%d.hsnap", i);
        args_add(&a, p, strlen(p));
    }
    if (cmd == 4 ? key == HS_KEY_FILENAME || cumulative : cumulative && key == HS_KEY_TRACEBACK)
        ok = 0;

    cli_analysis_opts *o;
    cli_top_args t;
    cli_leaks_args l;
    int rc;
    if (cmd == 4) {
        rc = cli_parse_leaks(a.n, a.v, &l);
        o = &l.o;
    } else {
        rc = cli_parse_top(a.n, a.v, cmd == 3, &t);
        o = &t.o;
    }
    CHECK(rc == (ok ? CLI_PROCEED : EXIT_USAGE));
    if (rc == CLI_PROCEED) {
        CHECK((int)o->key == key && o->cumulative == cumulative && o->json == json);
        CHECK(o->limit == limit && o->traceback_limit == tb_limit && o->lineno == lineno);
        CHECK(o->all_frames == all_frames && o->nfilters == nef);
        for (size_t i = 0; i < nef; i++) {
            const hs_filter *f = &o->filters[i];
            if (ef[i].kind == M_DOMAIN) {
                CHECK(f->filename_pattern == NULL && f->has_domain && f->inclusive &&
                      f->domain == ef[i].domain);
            } else {
                CHECK(f->filename_pattern != NULL && strcmp(f->filename_pattern, ef[i].value) == 0);
                CHECK(f->inclusive == (ef[i].kind == M_INCLUDE) && !f->has_domain);
                CHECK(f->lineno == lineno && f->all_frames == all_frames);
            }
        }
        if (cmd == 4) {
            CHECK(l.min_confidence == min_conf && l.fail_on_leak == fail && l.npaths == npaths);
            cli_analysis_free(&l.o);
        } else {
            CHECK(t.npaths == npaths);
            cli_analysis_free(&t.o);
        }
    }
    check_permutation(&a);
    args_free(&a);
}

/* run, modelled. */
static void modelled_run(input *in)
{
    args a = { .n = 0 };
    args_add(&a, "run", 3);
    static const char *const names[] = { "frames", "output", "interval", "alloc-fn",
                                         "follow-fork", "quiet", "help" };
    int ok = 1, follow = 0, quiet = 0;
    long frames = 16;
    const char *output = NULL;
    char out_buf[64], interval[64] = "", fns[4096] = "";
    size_t nopts = take(in) % 10;
    for (size_t i = 0; i < nopts && a.n < MAX_ARGS - 4; i++) {
        unsigned k = take(in) % R_N, form = take(in);
        const opt_def *d = &run_opts[k];
        char v[64];
        take_value(in, v, sizeof(v));
        if (d->has_arg && d->short_name && (form & 3) == 1 && v[0] == '\0')
            form &= ~3u;                        /* "-n" alone would take the next argument */
        write_opt(&a, d, v, form);
        int short_form = d->short_name && ((form & 3) == 1 || (form & 3) == 2);
        size_t len = strlen(d->name);
        if (!short_form && (form & 4) && len > 3 && !unique_prefix(d->name, len - 1, names,
                                                                     HS_ARRAY_LEN(names)))
            ok = 0;
        if (!ok)
            continue;
        long x;
        switch (k) {
        case R_FRAMES:
            if ((ok = model_long(v, 1, HS_MAX_FRAMES, &x) == 0))
                frames = x;
            break;
        case R_OUTPUT:
            snprintf(out_buf, sizeof(out_buf), "%s", v);
            output = out_buf;
            break;
        case R_INTERVAL: {
            /* digits with at most one '.', some digit, a value in (0, 1e7] */
            const char *dot = strchr(v, '.');
            double s = strtod(v, NULL);
            ok = v[0] != '\0' && strspn(v, "0123456789.") == strlen(v) &&
                 (dot == NULL || strchr(dot + 1, '.') == NULL) &&
                 strcspn(v, "0123456789") < strlen(v) && s > 0 && s <= 1e7;
            if (ok)
                snprintf(interval, sizeof(interval), "%s", v);
            break;
        }
        case R_ALLOC_FN:
            if ((ok = v[0] != '\0' && strchr(v, ':') == NULL)) {
                if (fns[0])
                    strcat(fns, ":");
                strcat(fns, v);
            }
            break;
        case R_FOLLOW:
            follow = 1;
            break;
        default:
            quiet = 1;
        }
    }
    args_add(&a, "--", 2);
    args_add(&a, "prog", 4);
    args_add(&a, "-x", 2);
    cli_run_args r;
    int rc = cli_parse_run(a.n, a.v, &r);
    CHECK(rc == (ok ? CLI_PROCEED : EXIT_USAGE));
    if (rc == CLI_PROCEED) {
        CHECK(r.frames == frames && r.follow == follow && r.quiet == quiet);
        CHECK((output == NULL) == (r.output == NULL));
        CHECK(output == NULL || strcmp(output, r.output) == 0);
        CHECK(interval[0] ? r.interval && strcmp(r.interval, interval) == 0 : r.interval == NULL);
        CHECK(strcmp(r.alloc_fns, fns) == 0);
        CHECK(r.prog_argv == a.v + a.n - 2 && strcmp(r.prog_argv[0], "prog") == 0 &&
              strcmp(r.prog_argv[1], "-x") == 0 && r.prog_argv[2] == NULL);
    }
    args_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0) {
        raw(data, size);
        return 0;
    }
    input in = { data + 1, size - 1 };
    int cmd = data[0] / 2 % 4;
    if (cmd == 0)
        modelled_run(&in);
    else
        modelled_analysis(cmd + 1, &in);
    return 0;
}
