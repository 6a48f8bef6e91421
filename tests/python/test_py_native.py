"""Native mode: heapsnap.start(nframe, native=True) in a process where libheapsnap.so is
preloaded.  A tiny C extension, built here with -g, mallocs; its blocks must be traced with
tracebacks that mix Python and C frames in true call order (also through a Python callback
called from C).  Python objects (pymalloc's small blocks, which malloc never sees) are traced
too, at their Python line.  Without the preload, native=True raises a RuntimeError that says how
to run the program.  Every CPython found is tested (the frame walker differs per version)."""
import json
import os
import subprocess
import sys
import sysconfig

import pytest

from conftest import clean_env
from pyhelpers import BUILD, CLI, line_of, run_script, interp, heapsnap_mod, pkg_path  # noqa: F401

EXT = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>

static PyObject *alloc(PyObject *self, PyObject *arg)
{
    size_t n = PyLong_AsSize_t(arg);
    void *p = malloc(n);                                   /* EXT_MALLOC */
    return PyLong_FromVoidPtr(p);
}

static PyObject *alloc_nogil(PyObject *self, PyObject *arg)
{
    size_t n = PyLong_AsSize_t(arg);
    void *p;
    Py_BEGIN_ALLOW_THREADS
    p = malloc(n);                                         /* EXT_NOGIL */
    Py_END_ALLOW_THREADS
    return PyLong_FromVoidPtr(p);
}

static PyObject *release(PyObject *self, PyObject *arg)
{
    free(PyLong_AsVoidPtr(arg));
    Py_RETURN_NONE;
}

static PyObject *call(PyObject *self, PyObject *fn)
{
    return PyObject_CallObject(fn, NULL);                  /* EXT_CALL */
}

static PyMethodDef methods[] = {
    {"alloc", alloc, METH_O, ""}, {"release", release, METH_O, ""}, {"call", call, METH_O, ""},
    {"alloc_nogil", alloc_nogil, METH_O, ""},
    {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "hsext", "", -1, methods};
PyMODINIT_FUNC PyInit_hsext(void) { return PyModule_Create(&def); }
"""

APP = """
    import json, sys
    import heapsnap
    import hsext
    heapsnap.start(30, native=True)
    def inner():
        return hsext.alloc(123457)                         # PY_INNER
    def outer():
        return inner()                                     # PY_OUTER
    def via_c():
        return hsext.call(lambda: hsext.alloc(65432))      # PY_LAMBDA
    def nogil(size):
        return hsext.alloc_nogil(size)                     # PY_NOGIL
    a = outer()                                            # PY_TOP
    b = via_c()                                            # PY_TOP2
    import threading
    got = []
    ths = [threading.Thread(target=lambda k=k: got.append(nogil(54321 + k))) for k in range(4)]
    for th in ths: th.start()
    for th in ths: th.join()
    objs = [tuple(range(i, i + 20)) for i in range(300)]   # PY_OBJS
    snap = heapsnap.take_snapshot()
    out = {"tracing": heapsnap.is_tracing(), "limit": heapsnap.get_traceback_limit(),
           "memory": heapsnap.get_traced_memory()[0]}
    for t in snap.traces:
        if t.size in (123457, 65432) or 54321 <= t.size < 54325:
            out[str(t.size)] = [[f.filename.rsplit("/", 1)[-1], f.lineno] for f in t.traceback]
    for s in snap.statistics("lineno"):
        f = s.traceback[0]
        if f.filename == __file__ and f.lineno == int(sys.argv[1]):
            out["objs"] = [s.count, s.size]
    tb = heapsnap.get_object_traceback(objs[5])
    out["objtb"] = [tb[-1].filename == __file__, tb[-1].lineno] if tb else None
    snap.dump(sys.argv[2])
    out["tracer_memory"] = heapsnap.get_tracemalloc_memory()
    heapsnap.reset_peak()
    cur, peak = heapsnap.get_traced_memory()
    out["peak_reset"] = peak == cur
    hsext.release(a)
    hsext.release(b)
    after = heapsnap.take_snapshot()
    out["freed"] = sum(1 for t in after.traces if t.size in (123457, 65432))
    heapsnap.clear_traces()
    out["cleared"] = heapsnap.get_traced_memory()[0] < 100000 and heapsnap.is_tracing()
    heapsnap.stop()
    out["stopped"] = heapsnap.is_tracing()
    print(json.dumps(out))
"""


def c_line(marker):
    return next(i for i, l in enumerate(EXT.splitlines(), 1) if "/* %s */" % marker in l)


def build_ext(python, tmp_path):
    src = tmp_path / "hsext.c"
    src.write_text(EXT)
    inc = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                        "['include'], sysconfig.get_config_var('EXT_SUFFIX'))"],
                         capture_output=True, text=True, check=True).stdout.split()
    out = tmp_path / ("hsext" + inc[1])
    subprocess.run(["gcc", "-shared", "-fPIC", "-O0", "-g", "-I" + inc[0], "-o", str(out),
                    str(src)], check=True, timeout=120)
    return src


def test_native_needs_the_preload(interp, tmp_path):
    src = """
        import heapsnap
        try:
            heapsnap.start(5, native=True)
        except RuntimeError as e:
            print(e)
        print(heapsnap.is_tracing())
    """
    out = run_script(*interp, src, tmp_path).stdout
    assert "heapsnap run -- python3 app.py" in out and "LD_PRELOAD" in out
    assert out.splitlines()[-1] == "False"


def test_mixed_python_and_native_frames(interp, tmp_path):
    lib = BUILD / "libheapsnap.so"
    if not lib.exists():
        pytest.fail("%s is missing: build it first (make B=%s)" % (lib, BUILD))
    python, path = interp
    ext = build_ext(python, tmp_path)
    dump = tmp_path / "native.hsnap"
    r = run_script(python, path + os.pathsep + str(tmp_path), APP, tmp_path,
                   [line_of(APP, "PY_OBJS"), dump], env={"LD_PRELOAD": str(lib)}, name="app.py")
    out = json.loads(r.stdout)
    ln = {m: line_of(APP, m) for m in ("PY_INNER", "PY_OUTER", "PY_TOP", "PY_TOP2", "PY_LAMBDA",
                                       "PY_OBJS", "PY_NOGIL")}
    c_malloc, c_call = c_line("EXT_MALLOC"), c_line("EXT_CALL")
    # oldest first; the interpreter's own frames are left out, the C extension's stay
    tb = [tuple(f) for f in out["123457"] if f[0] in ("app.py", "hsext.c")]
    assert tb == [("app.py", ln["PY_TOP"]), ("app.py", ln["PY_OUTER"]),
                  ("app.py", ln["PY_INNER"]), ("hsext.c", c_malloc)], out["123457"]
    assert out["123457"][-1] == ["hsext.c", c_malloc]       # the allocation site is the C line
    # through a Python callback called from C: Python, C, Python, C
    tb = [tuple(f) for f in out["65432"] if f[0] in ("app.py", "hsext.c")]
    assert tb == [("app.py", ln["PY_TOP2"]), ("app.py", ln["PY_LAMBDA"]), ("hsext.c", c_call),
                  ("app.py", ln["PY_LAMBDA"]), ("hsext.c", c_malloc)], out["65432"]
    # malloc with the GIL released, in 4 threads: the threads' own Python frames are still there
    for k in range(4):
        tb = [tuple(f) for f in out[str(54321 + k)] if f[0] in ("app.py", "hsext.c")]
        assert tb[-2:] == [("app.py", ln["PY_NOGIL"]), ("hsext.c", c_line("EXT_NOGIL"))], tb
    # Python objects: pymalloc blocks reported by the extension's hooks, at their Python line
    count, size = out["objs"]
    assert count >= 300 and size >= 300 * (20 * 8)
    assert out["objtb"] == [True, ln["PY_OBJS"]]
    assert out["tracing"] and out["limit"] == 30 and out["memory"] > 123457 + 65432
    assert out["freed"] == 0 and out["stopped"] is False
    assert out["tracer_memory"] > 0 and out["peak_reset"] and out["cleared"]
    # the dump is a native heapsnap snapshot: the CLI shows the C line as the allocation site
    top = subprocess.run([str(CLI), "top", "-l", "0", str(dump)], capture_output=True,
                         text=True, timeout=120)
    assert top.returncode == 0, top.stderr
    # both blocks (123457 + 65432 bytes) were allocated at the C line
    assert "%s:%d: size=184 KiB, count=2" % (ext, c_malloc) in top.stdout, top.stdout


def test_no_periodic_snapshot_of_the_teardown(pkg_path, heapsnap_mod, tmp_path):
    """Under `heapsnap run --interval`, the Python package tells the tracer when the interpreter
    starts shutting down (atexit): no periodic snapshot is taken during the teardown that follows
    (here a module global whose __del__ takes 0.6 s), whose blocks would not be the program's
    steady state.  The final snapshot is still taken at exit."""
    mark = tmp_path / "teardown"
    script = tmp_path / "app.py"
    script.write_text(
        "import sys, time\n"
        "class Slow:\n"
        "    def __del__(self):\n"
        "        open(%r, 'w').write(repr(time.time()))\n"
        "        time.sleep(0.6)\n"
        "keep = [bytes(100) for _ in range(1000)]\n"
        "slow = Slow()\n"
        "time.sleep(0.5)\n" % str(mark))
    boot = ("import runpy, site, sys; site.addsitedir(%r); sys.argv = [%r]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')" % (pkg_path, str(script)))
    out = tmp_path / "out"
    r = subprocess.run([str(CLI), "run", "-q", "--interval", "0.05", "-o", str(out), "--",
                        sys.executable, "-c", boot], env=clean_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    teardown = float(mark.read_text())
    taken = {p.name: heapsnap_mod.Snapshot.load(str(p)).meta["timestamp"]
             for p in sorted(out.glob("*/*.hsnap"))}
    interval = [t for name, t in taken.items() if "interval" in name]
    assert len(interval) >= 2, taken                 # the 0.5 s of the program's life
    assert max(interval) < teardown, (taken, teardown)
    assert any("final" in name for name in taken), taken
