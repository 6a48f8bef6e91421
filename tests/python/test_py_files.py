"""Snapshot files between Python and the heapsnap command: Snapshot.dump() writes heapsnap's file
format, `heapsnap top` / `diff` read it and print the same statistics as Python; Snapshot.load()
reads the native tracer's files."""
import json
import os
import subprocess
import sys

import pytest

from pyhelpers import BUILD, CLI, heapsnap_mod, line_of, pkg_path, run_script  # noqa: F401

PY = sys.executable

SCRIPT = """
    import json, os, sys
    import heapsnap as tracemalloc
    tracemalloc.start(4)
    def grow(n, size):
        return [bytes(size + i % 7) for i in range(n)]       # GROW
    first = grow(300, 1000)
    s1 = tracemalloc.take_snapshot()
    second = grow(500, 2000)
    table = {i: str(i) * 10 for i in range(2000)}            # TABLE
    s2 = tracemalloc.take_snapshot()
    s1.dump(sys.argv[1])
    s2.dump(sys.argv[2])
    out = {
        "lineno": [str(s) for s in s2.statistics("lineno")],
        "filename": [str(s) for s in s2.statistics("filename")],
        "cumulative": [str(s) for s in s2.statistics("lineno", cumulative=True)],
        "diff": [str(s) for s in s2.compare_to(s1, "lineno")],
        "included": [str(s) for s in s2.filter_traces(
            [tracemalloc.Filter(True, "*script.py")]).statistics("lineno")],
        "meta": s2.meta, "pid": os.getpid(),
    }
    print(json.dumps(out))
"""


def cli(*args):
    r = subprocess.run([str(CLI)] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("[ ")
    body = lines[1:]
    # a diff header spans two lines
    if body and body[0].startswith("  -> "):
        body = body[1:]
    return body


@pytest.fixture(scope="module")
def dumped(pkg_path, tmp_path_factory):
    if not CLI.exists():
        pytest.fail("%s is missing: build it first (make B=%s)" % (CLI, BUILD))
    tmp = tmp_path_factory.mktemp("files")
    f1, f2 = tmp / "one.hsnap", tmp / "two.hsnap"
    r = run_script(PY, pkg_path, SCRIPT, tmp, [f1, f2])
    return f1, f2, json.loads(r.stdout)


def test_top_reads_python_dumps(dumped):
    f1, f2, out = dumped
    assert cli("top", "-l", "0", f2) == out["lineno"]
    assert cli("top", "-l", "0", "--by", "filename", f2) == out["filename"]
    assert cli("top", "-l", "0", "--cumulative", f2) == out["cumulative"]
    assert cli("top", "-l", "0", "--include", "*script.py", f2) == out["included"]
    grow = line_of(SCRIPT, "GROW")
    assert any(l.startswith("%s:%d: size=" % (f2.parent / "script.py", grow))
               for l in out["lineno"])


def test_diff_reads_python_dumps(dumped):
    f1, f2, out = dumped
    assert cli("diff", "-l", "0", f1, f2) == out["diff"]


def test_traceback_listing_and_meta(dumped, heapsnap_mod):
    f1, f2, out = dumped
    body = cli("top", "--by", "traceback", "-l", "1", f2)
    script = str(f2.parent / "script.py")
    # the CLI prints a traceback key by its allocation site, then the frames oldest first with
    # their source lines (Python prints the oldest frame: SPEC's deliberate difference)
    assert body[0].startswith("%s:%d: " % (script, line_of(SCRIPT, "GROW")))
    assert '  File "%s", line %d' % (script, line_of(SCRIPT, "GROW")) in body
    assert "    return [bytes(size + i % 7) for i in range(n)]       # GROW" in body
    meta = out["meta"]
    assert meta["pid"] == out["pid"] and meta["kind"] == "api"
    assert os.path.realpath(meta["program"]) == os.path.realpath(PY)
    assert meta["argv"][1].endswith("script.py")
    assert meta["traced_current"] > 500 * 2000
    back = heapsnap_mod.Snapshot.load(f2)
    assert back.meta["pid"] == out["pid"]
    assert [str(s) for s in back.statistics("lineno")] == out["lineno"]
    assert back.traceback_limit == 4


def test_load_native_snapshot(heapsnap_mod, tmp_path):
    lib = BUILD / "libheapsnap.so"
    if not lib.exists():
        pytest.fail("%s is missing: build it first (make B=%s)" % (lib, BUILD))
    out = tmp_path / "ls.hsnap"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEAPSNAP_")}
    env.update(LD_PRELOAD=str(lib), HEAPSNAP_FRAMES="6", HEAPSNAP_OUTPUT=str(out))
    r = subprocess.run(["ls", "-la", "/usr/lib"], env=env, capture_output=True, timeout=120)
    assert r.returncode == 0 and out.exists()
    snap = heapsnap_mod.Snapshot.load(out)
    stats = snap.statistics("lineno")
    assert stats and snap.traceback_limit == 6
    assert [str(s) for s in stats] == cli("top", "-l", "0", out)
    assert all(t.traceback.total_nframe >= len(t.traceback) for t in snap.traces)


def test_leaks_reads_a_series_of_python_dumps(pkg_path, tmp_path):
    src = """
        import sys, time
        import heapsnap as tracemalloc
        tracemalloc.start(3)
        cache = []
        for i in range(6):
            cache.extend(bytes(1000 + i) for _ in range(200))      # GROWS
            scratch = [bytes(500) for _ in range(300)]             # COMES_AND_GOES
            tracemalloc.take_snapshot().dump("%s/%02d.hsnap" % (sys.argv[1], i))
            time.sleep(0.01)
    """
    out = tmp_path / "series"
    out.mkdir()
    run_script(PY, pkg_path, src, tmp_path, [out])
    r = subprocess.run([str(CLI), "leaks", str(out)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    first = [l for l in r.stdout.splitlines() if l.startswith("#")]
    assert first[0].startswith("#1 %s:%d" % (tmp_path / "script.py", line_of(src, "GROWS")))
    assert "COMES_AND_GOES" not in r.stdout
