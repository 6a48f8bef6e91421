/*
 * export_json.c - a snapshot as one JSON document (`heapsnap export --format json`), or with a
 * base snapshot the per-traceback difference.  The schema, version 1, is docs/JSON.md, section
 * "export --format json"; change both together, and bump "version" on any change a reader could
 * trip on (removing or retyping a field; adding one is compatible).
 *
 * Snapshot form: every trace in snapshot order, each naming its traceback by index into
 * "tracebacks", which holds each distinct traceback once (in order of first use), so a million
 * traces of ten call sites cost ten tracebacks.  Diff form: hs_snapshot_compare_to(s, base,
 * HS_KEY_TRACEBACK, 0) in its order, each entry with its traceback inline.
 */
#include "export.h"
#include "../analysis/analysis.h"

#include <errno.h>
#include <stdint.h>

static void put_meta(hs_json *j, const hs_snapshot_meta *m)
{
    hs_json_begin_object(j);
    hs_json_key(j, "timestamp");
    hs_json_double(j, m->timestamp);
    hs_json_key(j, "elapsed");
    hs_json_double(j, m->elapsed);
    hs_json_key(j, "pid");
    hs_json_int(j, m->pid);
    hs_json_key(j, "ppid");
    hs_json_int(j, m->ppid);
    hs_json_key(j, "program");
    hs_json_string(j, m->program != NULL ? m->program : "");
    hs_json_key(j, "argc");
    hs_json_uint(j, m->argv != NULL ? m->argc : 0);
    hs_json_key(j, "argv");
    hs_json_begin_array(j);
    for (size_t i = 0; m->argv != NULL && i < m->argc; i++)
        hs_json_string(j, m->argv[i] != NULL ? m->argv[i] : "");
    hs_json_end_array(j);
    hs_json_key(j, "kind");
    hs_json_string(j, m->kind != NULL ? m->kind : "");
    hs_json_key(j, "traced_current");
    hs_json_uint(j, m->traced_current);
    hs_json_key(j, "traced_peak");
    hs_json_uint(j, m->traced_peak);
    hs_json_key(j, "tracer_memory");
    hs_json_uint(j, m->tracer_memory);
    hs_json_key(j, "lost_blocks");
    hs_json_uint(j, m->lost_blocks);
    hs_json_key(j, "lost_bytes");
    hs_json_uint(j, m->lost_bytes);
    hs_json_key(j, "unknown_frees");
    hs_json_uint(j, m->unknown_frees);
    hs_json_key(j, "tracer_oom");
    hs_json_bool(j, m->tracer_oom);
    hs_json_key(j, "trimmed");
    hs_json_bool(j, m->trimmed);
    hs_json_end_object(j);
}

/* {"total_nframe": n, "frames": [...]} */
static void put_traceback(hs_json *j, const hs_traceback *tb)
{
    hs_json_begin_object(j);
    hs_json_key(j, "total_nframe");
    hs_json_uint(j, tb->total_nframe);
    hs_json_key(j, "frames");
    hs_json_traceback(j, tb);
    hs_json_end_object(j);
}

static int stream_result(FILE *out)
{
    errno = 0;
    if (fflush(out) != 0 || ferror(out))
        return errno > 0 ? -errno : -EIO;
    return 0;
}

static int export_snapshot(const hs_snapshot *s, hs_json *j)
{
    /* Index in "tracebacks" of each store traceback (SIZE_MAX: not listed yet), and the list.
     * A trace whose traceback is not in the store (never made by heapsnap) gets its own entry. */
    size_t ntbs = hs_store_tb_count(s->store);
    size_t *index = NULL;
    const hs_traceback **list = NULL;
    size_t nlist = 0;
    if (ntbs > 0 && (index = hs_malloc(ntbs * sizeof(*index))) == NULL)
        return -ENOMEM;
    if (s->ntraces > 0 && (list = hs_malloc(s->ntraces * sizeof(*list))) == NULL) {
        hs_free(index);
        return -ENOMEM;
    }
    for (size_t i = 0; i < ntbs; i++)
        index[i] = SIZE_MAX;

    hs_json_begin_object(j);
    hs_json_key(j, "version");
    hs_json_int(j, 1);
    hs_json_key(j, "type");
    hs_json_string(j, "snapshot");
    hs_json_key(j, "traceback_limit");
    hs_json_int(j, s->traceback_limit);
    hs_json_key(j, "meta");
    put_meta(j, &s->meta);
    hs_json_key(j, "traces");
    hs_json_begin_array(j);
    for (size_t i = 0; i < s->ntraces; i++) {
        const hs_trace_rec *t = &s->traces[i];
        size_t k;
        if (hs_store_owns(s->store, ntbs, t->tb)) {
            if (index[t->tb->id] == SIZE_MAX) {
                index[t->tb->id] = nlist;
                list[nlist++] = &t->tb->pub;
            }
            k = index[t->tb->id];
        } else {
            k = nlist;
            list[nlist++] = &t->tb->pub;
        }
        hs_json_begin_object(j);
        hs_json_key(j, "domain");
        hs_json_uint(j, t->domain);
        hs_json_key(j, "size");
        hs_json_uint(j, t->size);
        hs_json_key(j, "traceback_index");
        hs_json_uint(j, k);
        hs_json_end_object(j);
    }
    hs_json_end_array(j);
    hs_json_key(j, "tracebacks");
    hs_json_begin_array(j);
    for (size_t i = 0; i < nlist; i++)
        put_traceback(j, list[i]);
    hs_json_end_array(j);
    hs_json_end_object(j);
    hs_free(list);
    hs_free(index);
    return 0;
}

static int export_diff(const hs_snapshot *s, const hs_snapshot *base, hs_json *j)
{
    hs_stats *st = hs_snapshot_compare_to(s, base, HS_KEY_TRACEBACK, 0);
    if (st == NULL)
        return errno > 0 ? -errno : -ENOMEM;
    hs_json_begin_object(j);
    hs_json_key(j, "version");
    hs_json_int(j, 1);
    hs_json_key(j, "type");
    hs_json_string(j, "diff");
    hs_json_key(j, "key");
    hs_json_string(j, "traceback");
    hs_json_key(j, "traceback_limit");
    hs_json_int(j, s->traceback_limit);
    hs_json_key(j, "meta");
    put_meta(j, &s->meta);
    hs_json_key(j, "base");
    hs_json_begin_object(j);
    hs_json_key(j, "traceback_limit");
    hs_json_int(j, base->traceback_limit);
    hs_json_key(j, "meta");
    put_meta(j, &base->meta);
    hs_json_end_object(j);
    hs_json_key(j, "diff");
    hs_json_begin_array(j);
    for (size_t i = 0; i < hs_stats_count(st); i++) {
        const hs_statistic *x = hs_stats_get(st, i);
        hs_json_begin_object(j);
        hs_json_key(j, "size");
        hs_json_uint(j, x->size);
        hs_json_key(j, "size_diff");
        hs_json_int(j, x->size_diff);
        hs_json_key(j, "count");
        hs_json_uint(j, x->count);
        hs_json_key(j, "count_diff");
        hs_json_int(j, x->count_diff);
        hs_json_key(j, "traceback");
        put_traceback(j, x->traceback);
        hs_json_end_object(j);
    }
    hs_json_end_array(j);
    hs_json_end_object(j);
    hs_stats_free(st);
    return 0;
}

int hs_export_json_ex(const hs_snapshot *s, const hs_snapshot *base, FILE *out, int pretty)
{
    if (s == NULL || out == NULL)
        return -EINVAL;
    hs_json j;
    hs_json_init(&j, out, pretty);
    int err = base != NULL ? export_diff(s, base, &j) : export_snapshot(s, &j);
    if (err < 0)
        return err;
    return stream_result(out);
}

int hs_export_json(const hs_snapshot *s, const hs_snapshot *base, FILE *out)
{
    return hs_export_json_ex(s, base, out, 1);
}
