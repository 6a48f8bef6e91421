/*
 * module.c - heapsnap._heapsnap, the C half of the Python package: tracemalloc's module functions
 * over the tracer in pytrace.c, and SnapshotData, a Python object that owns one heapsnap snapshot
 * (include/heapsnap.h) and runs the engine on it: statistics, compare_to, filter_traces, dump and
 * load.  heapsnap/__init__.py builds tracemalloc's classes (Snapshot, Statistic, Traceback, ...)
 * on top of it; nothing is grouped, compared or filtered in Python.
 *
 * Frames cross into Python as tracemalloc's raw tuples: a trace is (domain, size, frames,
 * total_nframe) and frames is ((filename, lineno), ...), most recent first.  A trace given
 * without a total_nframe (None) is stored with total_nframe 0 and read back as None.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "analysis/leaks.h"
#include "pynative.h"
#include "pytrace.h"
#include "snapshot/snapshot.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* ---- SnapshotData ---------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    hs_snapshot *s;
    PyObject **tbcache;     /* frames tuple per store traceback id, made on first use */
    size_t ntbcache;
    PyObject *strcache;     /* dict: address of a store string -> str */
} SnapshotData;

static PyTypeObject SnapshotData_Type;

static PyObject *data_wrap(hs_snapshot *s)
{
    SnapshotData *d = PyObject_New(SnapshotData, &SnapshotData_Type);
    if (d == NULL) {
        hs_snapshot_free(s);
        return NULL;
    }
    d->s = s;
    d->tbcache = NULL;
    d->ntbcache = 0;
    d->strcache = NULL;
    return (PyObject *)d;
}

static void data_dealloc(SnapshotData *d)
{
    if (d->tbcache != NULL) {
        for (size_t i = 0; i < d->ntbcache; i++)
            Py_XDECREF(d->tbcache[i]);
        PyMem_Free(d->tbcache);
    }
    Py_XDECREF(d->strcache);
    hs_snapshot_free(d->s);
    PyObject_Free(d);
}

/* A str for a UTF-8 string of the snapshot (surrogates for bytes that are not UTF-8), shared
 * per distinct string when the cache is given. */
static PyObject *py_str(PyObject **cache, const char *s)
{
    PyObject *key = NULL;
    if (cache != NULL) {
        if (*cache == NULL && (*cache = PyDict_New()) == NULL)
            return NULL;
        key = PyLong_FromVoidPtr((void *)s);
        if (key == NULL)
            return NULL;
        PyObject *v = PyDict_GetItemWithError(*cache, key);
        if (v != NULL) {
            Py_DECREF(key);
            Py_INCREF(v);
            return v;
        }
        if (PyErr_Occurred()) {
            Py_DECREF(key);
            return NULL;
        }
    }
    PyObject *v = PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "surrogateescape");
    if (v != NULL && key != NULL && PyDict_SetItem(*cache, key, v) < 0)
        Py_CLEAR(v);
    Py_XDECREF(key);
    return v;
}

/* ((filename, lineno), ...) of a traceback, most recent first; an empty traceback reads as
 * <unknown>:0, the frame tracemalloc stores when it knows nothing. */
static PyObject *frames_tuple(PyObject **cache, const hs_traceback *tb)
{
    size_t n = tb->nframes ? tb->nframes : 1;
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *fn = tb->nframes ? tb->frames[i].filename : "<unknown>";
        unsigned int line = tb->nframes ? tb->frames[i].lineno : 0;
        PyObject *name = py_str(cache, fn);
        PyObject *f = name ? Py_BuildValue("(NI)", name, line) : NULL;
        if (f == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, f);
    }
    return t;
}

/* The frames tuple of a trace's traceback, cached per traceback of the snapshot's store. */
static PyObject *data_frames(SnapshotData *d, const hs_traceback *pub)
{
    const hs_tb *tb = hs_tb_of(pub);
    size_t ntbs = hs_store_tb_count(d->s->store);
    int owned = tb->id < ntbs && hs_store_tb_at(d->s->store, tb->id) == tb;
    if (!owned)
        return frames_tuple(&d->strcache, pub);
    if (d->ntbcache < ntbs) {
        PyObject **c = PyMem_Realloc(d->tbcache, ntbs * sizeof(*c));
        if (c == NULL)
            return PyErr_NoMemory();
        memset(c + d->ntbcache, 0, (ntbs - d->ntbcache) * sizeof(*c));
        d->tbcache = c;
        d->ntbcache = ntbs;
    }
    if (d->tbcache[tb->id] == NULL &&
        (d->tbcache[tb->id] = frames_tuple(&d->strcache, pub)) == NULL)
        return NULL;
    Py_INCREF(d->tbcache[tb->id]);
    return d->tbcache[tb->id];
}

static PyObject *total_obj(const hs_traceback *tb)
{
    if (tb->total_nframe == 0 && tb->nframes > 0)
        Py_RETURN_NONE;
    return PyLong_FromSize_t(tb->total_nframe ? tb->total_nframe : 1);
}

static Py_ssize_t data_len(SnapshotData *d) { return (Py_ssize_t)hs_snapshot_count(d->s); }

static PyObject *data_item(SnapshotData *d, Py_ssize_t i)
{
    unsigned int domain;
    size_t size;
    const hs_traceback *tb;
    if (i < 0 || hs_snapshot_get(d->s, (size_t)i, &domain, &size, &tb) < 0) {
        PyErr_SetString(PyExc_IndexError, "trace index out of range");
        return NULL;
    }
    PyObject *frames = data_frames(d, tb);
    if (frames == NULL)
        return NULL;
    PyObject *total = total_obj(tb);
    if (total == NULL) {
        Py_DECREF(frames);
        return NULL;
    }
    return Py_BuildValue("(InNN)", domain, (Py_ssize_t)size, frames, total);
}

/* Fills a frame array from a frames sequence ((filename, lineno), ...); the strings point into
 * *keep (a list of bytes objects), which the caller releases after interning. */
static int parse_frames(PyObject *frames, hs_frame **out, size_t *n, PyObject *keep)
{
    PyObject *seq = PySequence_Fast(frames, "a traceback must be a sequence of frames");
    if (seq == NULL)
        return -1;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    hs_frame *f = PyMem_Calloc(len > 0 ? (size_t)len : 1, sizeof(*f));
    if (f == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        PyObject *fn, *line;
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_TypeError, "a frame must be a (filename, lineno) tuple");
            goto fail;
        }
        fn = PyTuple_GET_ITEM(item, 0);
        line = PyTuple_GET_ITEM(item, 1);
        if (!PyUnicode_Check(fn)) {
            PyErr_SetString(PyExc_TypeError, "a frame's filename must be a str");
            goto fail;
        }
        PyObject *b = PyUnicode_AsEncodedString(fn, "utf-8", "surrogateescape");
        if (b == NULL)
            goto fail;
        int rc = PyList_Append(keep, b);
        Py_DECREF(b);
        if (rc < 0)
            goto fail;
        unsigned long ln = PyLong_AsUnsignedLong(line);
        if (ln == (unsigned long)-1 && PyErr_Occurred())
            goto fail;
        if (ln > UINT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "a frame's lineno must fit in 32 bits");
            goto fail;
        }
        f[i] = (hs_frame){ .filename = PyBytes_AS_STRING(b), .lineno = (unsigned int)ln,
                           .function = "", .object = "", .address = 0 };
    }
    Py_DECREF(seq);
    *out = f;
    *n = (size_t)len;
    return 0;
fail:
    Py_DECREF(seq);
    PyMem_Free(f);
    return -1;
}

static int add_raw_trace(hs_snapshot *s, PyObject *trace)
{
    if (!PyTuple_Check(trace) || PyTuple_GET_SIZE(trace) < 3 || PyTuple_GET_SIZE(trace) > 4) {
        PyErr_SetString(PyExc_TypeError,
                        "a trace must be a (domain, size, frames, total_nframe) tuple");
        return -1;
    }
    unsigned long dom = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(trace, 0));
    if (dom == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    if (dom > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "a trace's domain must fit in 32 bits");
        return -1;
    }
    size_t size = PyLong_AsSize_t(PyTuple_GET_ITEM(trace, 1));
    if (size == (size_t)-1 && PyErr_Occurred())
        return -1;
    size_t total = 0;
    if (PyTuple_GET_SIZE(trace) == 4 && PyTuple_GET_ITEM(trace, 3) != Py_None) {
        total = PyLong_AsSize_t(PyTuple_GET_ITEM(trace, 3));
        if (total == (size_t)-1 && PyErr_Occurred())
            return -1;
    }
    PyObject *keep = PyList_New(0);
    if (keep == NULL)
        return -1;
    hs_frame *f;
    size_t n;
    int rc = -1;
    if (parse_frames(PyTuple_GET_ITEM(trace, 2), &f, &n, keep) < 0)
        goto out;
    if (total != 0 && total < n)
        total = n;
    const hs_tb *tb = hs_store_tb(s->store, f, NULL, n, total);
    PyMem_Free(f);
    if (tb == NULL || hs_snapshot_push(s, (unsigned int)dom, size, tb) < 0) {
        PyErr_NoMemory();
        goto out;
    }
    rc = 0;
out:
    Py_DECREF(keep);
    return rc;
}

static int limit_arg(PyObject *o, int *limit)
{
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    /* tracemalloc stores any number; a heapsnap snapshot keeps it in [1, 65535]. */
    *limit = v < 1 ? 1 : v > HS_MAX_FRAMES ? HS_MAX_FRAMES : (int)v;
    return 0;
}

static PyObject *data_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)type;
    static char *kw[] = { "traces", "traceback_limit", NULL };
    PyObject *traces, *limobj;
    int limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO:SnapshotData", kw, &traces, &limobj) ||
        limit_arg(limobj, &limit) < 0)
        return NULL;
    hs_snapshot *s = hs_snapshot_new(limit);
    if (s == NULL)
        return PyErr_NoMemory();
    PyObject *it = PyObject_GetIter(traces);
    if (it == NULL) {
        hs_snapshot_free(s);
        return NULL;
    }
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        int rc = add_raw_trace(s, item);
        Py_DECREF(item);
        if (rc < 0)
            break;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        hs_snapshot_free(s);
        return NULL;
    }
    return data_wrap(s);
}

static int key_arg(int key, int cumulative, hs_key_type *out)
{
    if (key < HS_KEY_FILENAME || key > HS_KEY_TRACEBACK ||
        (cumulative && key == HS_KEY_TRACEBACK)) {
        PyErr_SetString(PyExc_ValueError, "bad key type");
        return -1;
    }
    *out = (hs_key_type)key;
    return 0;
}

/* A result of the engine as a list of tuples: (size, count, frames), or with diff
 * (size, size_diff, count, count_diff, frames). */
static PyObject *stats_list(hs_stats *st, int diff)
{
    if (st == NULL)
        return errno == ENOMEM ? PyErr_NoMemory() : PyErr_Format(PyExc_ValueError, "bad key");
    PyObject *strs = NULL;
    size_t n = hs_stats_count(st);
    PyObject *l = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; l != NULL && i < n; i++) {
        const hs_statistic *x = hs_stats_get(st, i);
        PyObject *fr = frames_tuple(&strs, x->traceback);
        PyObject *t = NULL;
        if (fr != NULL)
            t = diff ? Py_BuildValue("(nLnLN)", (Py_ssize_t)x->size, x->size_diff,
                                     (Py_ssize_t)x->count, x->count_diff, fr)
                     : Py_BuildValue("(nnN)", (Py_ssize_t)x->size, (Py_ssize_t)x->count, fr);
        if (t == NULL)
            Py_CLEAR(l);
        else
            PyList_SET_ITEM(l, (Py_ssize_t)i, t);
    }
    Py_XDECREF(strs);
    hs_stats_free(st);
    return l;
}

static PyObject *data_statistics(SnapshotData *d, PyObject *args)
{
    int key, cumulative;
    hs_key_type k;
    if (!PyArg_ParseTuple(args, "ip:statistics", &key, &cumulative) ||
        key_arg(key, cumulative, &k) < 0)
        return NULL;
    hs_stats *st;
    Py_BEGIN_ALLOW_THREADS
    st = hs_snapshot_statistics(d->s, k, cumulative);
    Py_END_ALLOW_THREADS
    return stats_list(st, 0);
}

static PyObject *data_compare_to(SnapshotData *d, PyObject *args)
{
    SnapshotData *old;
    int key, cumulative;
    hs_key_type k;
    if (!PyArg_ParseTuple(args, "O!ip:compare_to", &SnapshotData_Type, &old, &key, &cumulative) ||
        key_arg(key, cumulative, &k) < 0)
        return NULL;
    hs_stats *st;
    Py_BEGIN_ALLOW_THREADS
    st = hs_snapshot_compare_to(d->s, old->s, k, cumulative);
    Py_END_ALLOW_THREADS
    return stats_list(st, 1);
}

/* filter(specs): specs is a sequence of (inclusive, pattern or None, lineno or -1, all_frames,
 * domain or None); a None pattern makes a DomainFilter. */
static PyObject *data_filter(SnapshotData *d, PyObject *arg)
{
    PyObject *seq = PySequence_Fast(arg, "filters must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    hs_filter *f = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(*f));
    PyObject *keep = PyList_New(0);
    PyObject *res = NULL;
    if (f == NULL || keep == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int inclusive, all_frames, lineno;
        PyObject *pat, *dom;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "pOipO:filter", &inclusive, &pat,
                              &lineno, &all_frames, &dom))
            goto out;
        f[i].inclusive = inclusive;
        f[i].lineno = lineno;
        f[i].all_frames = all_frames;
        if (pat != Py_None) {
            PyObject *b = hs_py_filename_bytes(pat);
            if (b == NULL || PyList_Append(keep, b) < 0) {
                Py_XDECREF(b);
                goto out;
            }
            Py_DECREF(b);
            f[i].filename_pattern = PyBytes_AS_STRING(b);
        }
        if (dom != Py_None) {
            unsigned long v = PyLong_AsUnsignedLong(dom);
            if (v == (unsigned long)-1 && PyErr_Occurred())
                goto out;
            if (v > UINT_MAX) {    /* no trace has it; the caller then filters in Python */
                PyErr_SetString(PyExc_OverflowError, "a filter's domain must fit in 32 bits");
                goto out;
            }
            f[i].has_domain = 1;
            f[i].domain = (unsigned int)v;
        }
    }
    hs_snapshot *s;
    Py_BEGIN_ALLOW_THREADS
    s = hs_snapshot_filter_traces(d->s, f, (size_t)n);
    Py_END_ALLOW_THREADS
    if (s == NULL)
        res = errno == ENOMEM ? PyErr_NoMemory()
                              : PyErr_Format(PyExc_ValueError, "invalid filter");
    else
        res = data_wrap(s);
out:
    PyMem_Free(f);
    Py_XDECREF(keep);
    Py_DECREF(seq);
    return res;
}

static PyObject *data_dump(SnapshotData *d, PyObject *args)
{
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O&:dump", PyUnicode_FSConverter, &path))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = hs_snapshot_dump(d->s, PyBytes_AS_STRING(path));
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        errno = -rc;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    Py_RETURN_NONE;
}

static PyObject *data_load(PyObject *cls, PyObject *args)
{
    (void)cls;
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O&:load", PyUnicode_FSConverter, &path))
        return NULL;
    char err[1024];
    hs_snapshot *s;
    int e;
    Py_BEGIN_ALLOW_THREADS
    s = hs_snapshot_load(PyBytes_AS_STRING(path), err, sizeof(err));
    e = errno;
    Py_END_ALLOW_THREADS
    if (s == NULL) {
        if (e == EINVAL || e == ENOTSUP)   /* not a snapshot, corrupt, or newer */
            PyErr_SetString(PyExc_ValueError, err);
        else if (e == ENOMEM)
            PyErr_NoMemory();
        else {
            errno = e;
            PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        }
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    return data_wrap(s);
}

static PyObject *data_get_limit(SnapshotData *d, void *c)
{
    (void)c;
    return PyLong_FromLong(hs_snapshot_traceback_limit(d->s));
}

static int data_set_limit(SnapshotData *d, PyObject *v, void *c)
{
    (void)c;
    int limit;
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete traceback_limit");
        return -1;
    }
    if (limit_arg(v, &limit) < 0)
        return -1;
    d->s->traceback_limit = limit;
    return 0;
}

static PyObject *data_meta(SnapshotData *d, PyObject *unused)
{
    (void)unused;
    const hs_snapshot_meta *m = hs_snapshot_get_meta(d->s);
    PyObject *argv = PyList_New(0);
    for (size_t i = 0; argv != NULL && i < m->argc; i++) {
        PyObject *a = py_str(NULL, m->argv[i]);
        if (a == NULL || PyList_Append(argv, a) < 0)
            Py_CLEAR(argv);
        Py_XDECREF(a);
    }
    if (argv == NULL)
        return NULL;
    PyObject *program = py_str(NULL, m->program);
    PyObject *kind = py_str(NULL, m->kind);
    if (program == NULL || kind == NULL) {
        Py_XDECREF(program);
        Py_XDECREF(kind);
        Py_DECREF(argv);
        return NULL;
    }
    return Py_BuildValue("{sd,sd,sL,sL,sN,sN,sN,sn,sn,sn,sK,sK,sK,si,si}", "timestamp",
                         m->timestamp, "elapsed", m->elapsed, "pid", m->pid, "ppid", m->ppid,
                         "program", program, "argv", argv, "kind", kind, "traced_current",
                         (Py_ssize_t)m->traced_current, "traced_peak", (Py_ssize_t)m->traced_peak,
                         "tracer_memory", (Py_ssize_t)m->tracer_memory, "lost_blocks",
                         m->lost_blocks, "lost_bytes", m->lost_bytes, "unknown_frees",
                         m->unknown_frees, "tracer_oom", m->tracer_oom, "trimmed", m->trimmed);
}

/* set_time(timestamp, elapsed): what the snapshot says about when it was taken (the leak verdict
 * fits growth against these). */
static PyObject *data_set_time(SnapshotData *d, PyObject *args)
{
    double ts, el;
    if (!PyArg_ParseTuple(args, "dd:set_time", &ts, &el))
        return NULL;
    d->s->meta.timestamp = ts;
    d->s->meta.elapsed = el;
    Py_RETURN_NONE;
}

static PyObject *data_totals(SnapshotData *d, PyObject *unused)
{
    (void)unused;
    size_t size, count;
    hs_snapshot_totals(d->s, &size, &count);
    return Py_BuildValue("(nn)", (Py_ssize_t)size, (Py_ssize_t)count);
}

static PyMethodDef data_methods[] = {
    { "statistics", (PyCFunction)data_statistics, METH_VARARGS,
      "statistics(key, cumulative) -> [(size, count, frames)]" },
    { "compare_to", (PyCFunction)data_compare_to, METH_VARARGS,
      "compare_to(old, key, cumulative) -> [(size, size_diff, count, count_diff, frames)]" },
    { "filter", (PyCFunction)data_filter, METH_O,
      "filter([(inclusive, pattern, lineno, all_frames, domain)]) -> SnapshotData" },
    { "dump", (PyCFunction)data_dump, METH_VARARGS, "dump(path): write a heapsnap file" },
    { "load", (PyCFunction)data_load, METH_VARARGS | METH_CLASS,
      "load(path) -> SnapshotData: read a heapsnap file" },
    { "meta", (PyCFunction)data_meta, METH_NOARGS, "the snapshot's metadata as a dict" },
    { "totals", (PyCFunction)data_totals, METH_NOARGS, "(total size, number of traces)" },
    { "set_time", (PyCFunction)data_set_time, METH_VARARGS,
      "set_time(timestamp, elapsed): the snapshot's time (seconds since the Epoch, since start)" },
    { NULL, NULL, 0, NULL },
};

static PyGetSetDef data_getset[] = {
    { "traceback_limit", (getter)data_get_limit, (setter)data_set_limit, NULL, NULL },
    { NULL, NULL, NULL, NULL, NULL },
};

static PySequenceMethods data_as_sequence = {
    .sq_length = (lenfunc)data_len,
    .sq_item = (ssizeargfunc)data_item,
};

static PyTypeObject SnapshotData_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "heapsnap._heapsnap.SnapshotData",
    .tp_basicsize = sizeof(SnapshotData),
    .tp_dealloc = (destructor)data_dealloc,
    .tp_as_sequence = &data_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A heapsnap snapshot: raw traces, and the analysis engine over them.",
    .tp_methods = data_methods,
    .tp_getset = data_getset,
    .tp_new = data_new,
};

/* ---- module functions ------------------------------------------------------------------------ */

static PyObject *m_start(PyObject *m, PyObject *args, PyObject *kwds)
{
    (void)m;
    static char *kw[] = { "", "native", NULL };
    int nframe = 1, native = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i$p:start", kw, &nframe, &native) ||
        (native ? hs_py_start_native(nframe) : hs_py_start(nframe)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *m_stop(PyObject *m, PyObject *u)
{
    (void)m, (void)u;
    hs_py_stop();
    Py_RETURN_NONE;
}

static PyObject *m_is_tracing(PyObject *m, PyObject *u)
{
    (void)m, (void)u;
    return PyBool_FromLong(hs_py_is_tracing());
}

static PyObject *m_get_traceback_limit(PyObject *m, PyObject *u)
{
    (void)m, (void)u;
    return PyLong_FromLong(hs_py_traceback_limit());
}

static PyObject *m_clear_traces(PyObject *m, PyObject *u)
{
    (void)m, (void)u;
    hs_py_clear_traces();
    Py_RETURN_NONE;
}

static PyObject *m_get_traced_memory(PyObject *m, PyObject *u)
{
    (void)m, (void)u;
    size_t cur, peak;
    hs_py_traced_memory(&cur, &peak);
    return Py_BuildValue("(nn)", (Py_ssize_t)cur, (Py_ssize_t)peak);
}

static PyObject *m_reset_peak(PyObject *m, PyObject *u)
{
    (void)m, (void)u;
    hs_py_reset_peak();
    Py_RETURN_NONE;
}

static PyObject *m_get_tracemalloc_memory(PyObject *m, PyObject *u)
{
    (void)m, (void)u;
    return PyLong_FromSize_t(hs_py_tracer_memory());
}

static PyObject *m_get_object_traceback(PyObject *m, PyObject *obj)
{
    (void)m;
    return hs_py_object_traceback(obj);
}

static PyObject *m_native_attach(PyObject *m, PyObject *u)
{
    (void)m, (void)u;
    int r = hs_py_native_attach();
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *m_native_exiting(PyObject *m, PyObject *u)
{
    (void)m, (void)u;
    if (hs_pyn_loaded() && hs_native.exiting != NULL)
        hs_native.exiting();
    Py_RETURN_NONE;
}

static PyObject *m_take_snapshot(PyObject *m, PyObject *u)
{
    (void)m, (void)u;
    hs_snapshot *s = hs_py_take_snapshot();
    return s != NULL ? data_wrap(s) : NULL;
}

static PyObject *m_format_size(PyObject *m, PyObject *args)
{
    (void)m;
    double size;
    int sign;
    if (!PyArg_ParseTuple(args, "dp:format_size", &size, &sign))
        return NULL;
    char buf[64];
    hs_format_size(buf, sizeof(buf), size, sign);
    return PyUnicode_FromString(buf);
}

/* leaks(snapshots, key, min_confidence, min_growth): the engine's leak verdict over a series of
 * SnapshotData (docs/LEAKS.md), as a list of dicts, largest growth first. */
static PyObject *m_leaks(PyObject *m, PyObject *args)
{
    (void)m;
    PyObject *list;
    int key;
    double min_conf;
    Py_ssize_t min_growth;
    if (!PyArg_ParseTuple(args, "Oidn:leaks", &list, &key, &min_conf, &min_growth))
        return NULL;
    PyObject *seq = PySequence_Fast(list, "snapshots must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    const hs_snapshot **snaps = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(*snaps));
    PyObject *res = NULL;
    hs_leak_report *r = NULL;
    if (snaps == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyObject_TypeCheck(o, &SnapshotData_Type)) {
            PyErr_SetString(PyExc_TypeError, "leaks() takes SnapshotData objects");
            goto out;
        }
        snaps[i] = ((SnapshotData *)o)->s;
    }
    hs_leak_opts opts;
    hs_leak_opts_init(&opts);
    opts.key = (hs_key_type)key;
    opts.min_confidence = min_conf;
    opts.min_growth = min_growth > 0 ? (size_t)min_growth : 1;
    Py_BEGIN_ALLOW_THREADS
    r = hs_leaks_analyze(snaps, (size_t)n, &opts);
    Py_END_ALLOW_THREADS
    if (r == NULL) {
        if (errno == ENOMEM)
            PyErr_NoMemory();
        else
            PyErr_SetString(PyExc_ValueError, "leaks() needs at least 4 snapshots and a valid "
                                              "key and min_confidence");
        goto out;
    }
    size_t ns = hs_leaks_snapshots(r);
    res = PyList_New(0);
    PyObject *strs = NULL;
    for (size_t i = 0; res != NULL && i < hs_leaks_count(r); i++) {
        const hs_leak_suspect *x = hs_leaks_get(r, i);
        PyObject *sizes = PyList_New((Py_ssize_t)ns);
        for (size_t k = 0; sizes != NULL && k < ns; k++) {
            PyObject *v = PyLong_FromSize_t(x->sizes[k]);
            if (v == NULL)
                Py_CLEAR(sizes);
            else
                PyList_SET_ITEM(sizes, (Py_ssize_t)k, v);
        }
        PyObject *fr = sizes ? frames_tuple(&strs, x->traceback) : NULL;
        PyObject *d = fr ? Py_BuildValue(
            "{sN,sN,sL,sL,sn,sn,sn,sn,sd,sd,sd,sd,sd,sd,sd}", "frames", fr, "sizes", sizes,
            "size_growth", x->size_growth, "count_growth", x->count_growth, "size_first",
            (Py_ssize_t)x->size_first, "size_last", (Py_ssize_t)x->size_last, "count_first",
            (Py_ssize_t)x->count_first, "count_last", (Py_ssize_t)x->count_last,
            "rate_bytes_per_second", x->rate_bytes_per_second, "rate_bytes_per_snapshot",
            x->rate_bytes_per_snapshot, "confidence", x->confidence, "trend", x->trend,
            "steadiness", x->steadiness, "ending", x->ending, "support", x->support)
                         : NULL;
        if (d == NULL) {
            Py_XDECREF(sizes);
            Py_CLEAR(res);
        } else if (PyList_Append(res, d) < 0) {
            Py_CLEAR(res);
        }
        Py_XDECREF(d);
    }
    Py_XDECREF(strs);
out:
    hs_leaks_free(r);
    PyMem_Free(snaps);
    Py_DECREF(seq);
    return res;
}

static PyMethodDef module_methods[] = {
    { "start", (PyCFunction)(void (*)(void))m_start, METH_VARARGS | METH_KEYWORDS,
      "start(nframe=1, /, *, native=False): start tracing Python allocations; native=True: "
      "with the preloaded heapsnap tracer, every malloc too, Python and native frames mixed" },
    { "stop", m_stop, METH_NOARGS, "stop tracing and drop the traces" },
    { "is_tracing", m_is_tracing, METH_NOARGS, "True while tracing" },
    { "get_traceback_limit", m_get_traceback_limit, METH_NOARGS,
      "the frame limit of tracebacks" },
    { "clear_traces", m_clear_traces, METH_NOARGS, "drop every trace, keep tracing" },
    { "get_traced_memory", m_get_traced_memory, METH_NOARGS,
      "(current, peak) traced memory in bytes" },
    { "reset_peak", m_reset_peak, METH_NOARGS, "set the peak to the current size" },
    { "get_tracemalloc_memory", m_get_tracemalloc_memory, METH_NOARGS,
      "bytes used by the tracer's tables" },
    { "_get_object_traceback", m_get_object_traceback, METH_O,
      "the frames where obj was allocated, or None" },
    { "_take_snapshot", m_take_snapshot, METH_NOARGS, "all traces as a SnapshotData" },
    { "_native_attach", m_native_attach, METH_NOARGS,
      "join a preloaded heapsnap tracer that is already tracing (native mode)" },
    { "_native_exiting", m_native_exiting, METH_NOARGS,
      "the interpreter is shutting down: the preloaded tracer takes no more periodic snapshots" },
    { "format_size", m_format_size, METH_VARARGS, "format_size(size, sign): '10.0 KiB'" },
    { "leaks", m_leaks, METH_VARARGS,
      "leaks(snapshots, key, min_confidence, min_growth) -> [dict]: growing sites" },
    { NULL, NULL, 0, NULL },
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "heapsnap._heapsnap",
    "The C half of heapsnap: Python allocation tracing and the snapshot engine.", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__heapsnap(void)
{
    if (PyType_Ready(&SnapshotData_Type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    Py_INCREF(&SnapshotData_Type);
    if (PyModule_AddObject(m, "SnapshotData", (PyObject *)&SnapshotData_Type) < 0 ||
        PyModule_AddIntConstant(m, "KEY_FILENAME", HS_KEY_FILENAME) < 0 ||
        PyModule_AddIntConstant(m, "KEY_LINENO", HS_KEY_LINENO) < 0 ||
        PyModule_AddIntConstant(m, "KEY_TRACEBACK", HS_KEY_TRACEBACK) < 0 ||
        PyModule_AddIntConstant(m, "MAX_NFRAME", HS_PY_MAX_NFRAME) < 0 ||
        PyModule_AddStringConstant(m, "VERSION", HEAPSNAP_VERSION_STRING) < 0) {
        Py_DECREF(&SnapshotData_Type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
