/*
 * json.c - the streaming JSON writer behind every JSON heapsnap writes (export --format json and
 * the CLI's --json outputs): the caller says begin/end/key/value, the writer puts the commas,
 * colons, indentation and escapes.
 *
 * Output rules:
 *  - Strings: '"' and '\\' are escaped, control characters (U+0000..U+001F) as \b \f \n \r \t or
 *    \u00XX; everything else is copied as is, so valid UTF-8 stays readable.  Bytes that are not
 *    valid UTF-8 (stray continuation bytes, truncated sequences, overlong forms, surrogates, values
 *    above U+10FFFF, bytes F5..FF) become U+FFFD, one per maximal invalid subpart as Unicode
 *    recommends (so "\xE2\x82" is one U+FFFD, "\xFF\xFF" two).  Paths are bytes, not text; this
 *    keeps the output valid JSON whatever they hold.
 *  - Doubles: %.17g (round-trips every double), whatever the locale's decimal point; NaN and
 *    infinities are not JSON and are written as null.
 *  - Compact mode puts no whitespace at all; pretty mode indents by two spaces, one member or
 *    element per line, "key": value, and empty containers as {} and [].  Either way a top-level
 *    value is followed by a newline, so compact output is also JSON Lines.
 *  - Nesting deeper than the 64 levels the writer tracks still produces valid JSON: levels past
 *    the 63rd share one "nothing written yet" flag, which is exact because a container's end
 *    marks its parent as written to.  heapsnap never nests that deep.
 * Write errors are left in the FILE's error flag for the caller (ferror) to report.
 */
#include "export.h"

#include <math.h>
#include <stdio.h>

#define HS_JSON_LEVELS ((int)sizeof(((hs_json *)0)->first))

static unsigned char *first_at(hs_json *j, int depth)
{
    if (depth < 0)
        depth = 0;
    if (depth >= HS_JSON_LEVELS)
        depth = HS_JSON_LEVELS - 1;
    return &j->first[depth];
}

static void indent(hs_json *j)
{
    putc('\n', j->out);
    for (int i = 0; i < j->depth; i++)
        fputs("  ", j->out);
}

void hs_json_init(hs_json *j, FILE *out, int pretty)
{
    memset(j, 0, sizeof(*j));
    j->out = out;
    j->pretty = pretty != 0;
    memset(j->first, 1, sizeof(j->first));
}

/* Before any value or key: the separator from the previous sibling, and the indentation. */
static void before_item(hs_json *j)
{
    if (j->pending_key) {
        j->pending_key = 0;
        return;
    }
    unsigned char *first = first_at(j, j->depth);
    if (j->depth == 0) {
        *first = 0;     /* top-level values are separated by the newline after each */
        return;
    }
    if (!*first)
        putc(',', j->out);
    *first = 0;
    if (j->pretty)
        indent(j);
}

/* After a complete value: a top-level one ends its line. */
static void after_value(hs_json *j)
{
    if (j->depth == 0)
        putc('\n', j->out);
}

static void begin(hs_json *j, int c)
{
    before_item(j);
    putc(c, j->out);
    j->depth++;
    *first_at(j, j->depth) = 1;
}

static void end(hs_json *j, int c)
{
    if (j->depth <= 0)
        return;                     /* unbalanced: nothing sensible to close */
    int empty = *first_at(j, j->depth);
    j->pending_key = 0;
    j->depth--;
    *first_at(j, j->depth) = 0;     /* the container was an item of its parent (levels may share) */
    if (j->pretty && !empty)
        indent(j);
    putc(c, j->out);
    after_value(j);
}

void hs_json_begin_object(hs_json *j) { begin(j, '{'); }
void hs_json_end_object(hs_json *j) { end(j, '}'); }
void hs_json_begin_array(hs_json *j) { begin(j, '['); }
void hs_json_end_array(hs_json *j) { end(j, ']'); }

size_t hs_utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;     /* the allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;                      /* overlong */
        else if (c == 0xED)
            hi = 0x9F;                      /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;                      /* overlong */
        else if (c == 0xF4)
            hi = 0x8F;                      /* above U+10FFFF */
    } else {
        *bad = 1;                           /* 80..C1 (continuation, overlong lead), F5..FF */
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xBF;
        if (i >= n || s[i] < min || s[i] > max) {
            *bad = i;
            return 0;
        }
    }
    return len;
}

static void write_escaped(FILE *out, const char *str)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    putc('"', out);
    size_t i = 0, run = 0;      /* s[run..i) is copied as is */
    while (i < n) {
        unsigned char c = s[i];
        const char *esc = NULL;
        char ubuf[7];
        size_t skip = 1, bad = 0;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c < 0x20) {
            switch (c) {
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            default:
                memcpy(ubuf, "\\u00", 4);
                ubuf[4] = hex[c >> 4];
                ubuf[5] = hex[c & 15];
                ubuf[6] = '\0';
                esc = ubuf;
            }
        } else if (c >= 0x80) {
            size_t len = hs_utf8_seq(s + i, n - i, &bad);
            if (len > 0) {
                i += len;
                continue;
            }
            esc = "\\ufffd";
            skip = bad;
        } else {
            i++;
            continue;
        }
        if (i > run)
            fwrite(s + run, 1, i - run, out);
        fputs(esc, out);
        i += skip;
        run = i;
    }
    if (i > run)
        fwrite(s + run, 1, i - run, out);
    putc('"', out);
}

void hs_json_key(hs_json *j, const char *key)
{
    before_item(j);
    write_escaped(j->out, key != NULL ? key : "");
    fputs(j->pretty ? ": " : ":", j->out);
    j->pending_key = 1;
}

void hs_json_string(hs_json *j, const char *s)
{
    if (s == NULL) {
        hs_json_null(j);
        return;
    }
    before_item(j);
    write_escaped(j->out, s);
    after_value(j);
}

void hs_json_int(hs_json *j, long long v)
{
    before_item(j);
    fprintf(j->out, "%lld", v);
    after_value(j);
}

void hs_json_uint(hs_json *j, unsigned long long v)
{
    before_item(j);
    fprintf(j->out, "%llu", v);
    after_value(j);
}

void hs_json_double(hs_json *j, double v)
{
    if (!isfinite(v)) {
        hs_json_null(j);
        return;
    }
    char tmp[64], buf[64];
    snprintf(tmp, sizeof(tmp), "%.17g", v);
    /* %.17g prints only a sign, digits, an exponent and the locale's decimal point, which may be
     * ',' or even several bytes: whatever is none of the others is that point, written '.'. */
    size_t o = 0;
    for (size_t i = 0; tmp[i] != '\0' && o + 1 < sizeof(buf); i++) {
        char c = tmp[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' || c == 'E')
            buf[o++] = c;
        else if (o == 0 || buf[o - 1] != '.')
            buf[o++] = '.';
    }
    buf[o] = '\0';
    before_item(j);
    fputs(buf, j->out);
    after_value(j);
}

void hs_json_bool(hs_json *j, int v)
{
    before_item(j);
    fputs(v ? "true" : "false", j->out);
    after_value(j);
}

void hs_json_null(hs_json *j)
{
    before_item(j);
    fputs("null", j->out);
    after_value(j);
}

void hs_json_frame(hs_json *j, const hs_frame *f)
{
    hs_json_begin_object(j);
    hs_json_key(j, "filename");
    hs_json_string(j, f->filename != NULL ? f->filename : "<unknown>");
    hs_json_key(j, "lineno");
    hs_json_uint(j, f->lineno);
    hs_json_key(j, "function");
    hs_json_string(j, f->function != NULL ? f->function : "");
    hs_json_key(j, "object");
    hs_json_string(j, f->object != NULL ? f->object : "");
    hs_json_end_object(j);
}

void hs_json_traceback(hs_json *j, const hs_traceback *tb)
{
    hs_json_begin_array(j);
    for (size_t i = 0; tb != NULL && i < tb->nframes; i++)
        hs_json_frame(j, &tb->frames[i]);
    hs_json_end_array(j);
}
