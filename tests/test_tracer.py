"""The tracer on real programs: the C API programs of tests/live (linked with libheapsnap), and
plain programs of tests/progs run with the tracer preloaded through the environment."""
import os
import shutil
import subprocess

import pytest

from conftest import BUILD, LIB, ROOT, Snapshot, clean_env, run_traced, site_line

PROGS = BUILD / "progs"
LEAKY_C = ROOT / "tests" / "progs" / "leaky.c"


@pytest.mark.parametrize("name", ["api_basic", "cxx", "depth", "threads", "fork"])
def test_live_program(name):
    """Each live program checks itself and exits 0; its own process, with a timeout."""
    r = subprocess.run([BUILD / "live" / name], env=clean_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{name}: ok" in r.stdout


def test_final_snapshot_sites_and_moment(tmp):
    out = tmp / "leaky.hsnap"
    r = run_traced([PROGS / "leaky"], out, HEAPSNAP_ALLOC_FN="xmalloc")
    assert r.returncode == 0 and r.stdout == "leaky done\n" and r.stderr == ""
    s = Snapshot(out)
    assert s.meta["kind"] == "final"
    assert s.meta["program"] == str(PROGS / "leaky")
    expected = {"malloc": 1000, "strdup": len(str(PROGS / "leaky")) + 1, "xmalloc": 2000,
                "asprintf": len("asprintf-12345") + 1, "calloc": 300, "atexit": 777}
    for name, size in expected.items():
        hits = s.at("leaky.c", site_line(LEAKY_C, name))
        assert [t["size"] for t in hits] == [size], (name, hits)
    # The block freed by an ELF destructor is gone: the snapshot is taken after destructors.
    assert not [t for t in s.traces if t["size"] == 5555]
    # The snapshot's own counters agree with its traces.
    assert int(s.meta["current"]) == s.total()
    assert s.meta["lost_blocks"] == "0" and s.meta["tracer_oom"] == "0"


def test_alloc_fn_off_keeps_the_wrapper(tmp):
    out = tmp / "leaky.hsnap"
    run_traced([PROGS / "leaky"], out)
    s = Snapshot(out)
    [t] = [t for t in s.traces if t["size"] == 2000]
    assert t["frames"][0]["function"] == "xmalloc"
    assert t["frames"][1]["line"] == site_line(LEAKY_C, "xmalloc")


def test_trim_off_shows_the_runtime(tmp):
    out = tmp / "leaky.hsnap"
    run_traced([PROGS / "leaky"], out, HEAPSNAP_TRIM=0)
    s = Snapshot(out)
    assert s.meta["trimmed"] == "0"
    [t] = [t for t in s.traces if t["size"] == len(str(PROGS / "leaky")) + 1]
    assert "libc.so" in t["frames"][0]["object"]          # strdup itself
    assert any(f["line"] == site_line(LEAKY_C, "strdup") for f in t["frames"])


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.skipif("HEAPSNAP_LIB" in os.environ,
                    reason="a sanitizer build's runtime allocates in the program")
def test_agrees_with_valgrind(tmp):
    out = tmp / "leaky.hsnap"
    run_traced([PROGS / "leaky"], out)
    s = Snapshot(out)
    r = subprocess.run(["valgrind", "--run-libc-freeres=no", "--run-cxx-freeres=no",
                        PROGS / "leaky"], capture_output=True, text=True, env=clean_env(),
                       timeout=120)
    line = [x for x in r.stderr.splitlines() if "in use at exit" in x][0]
    words = line.split(":")[1].split()
    assert int(words[0].replace(",", "")) == s.total()
    assert int(words[3].replace(",", "")) == len(s.traces)


def test_dlclosed_library_stays_resolvable(tmp):
    out = tmp / "dl.hsnap"
    r = run_traced([PROGS / "dlprog", PROGS / "libplug.so"], out)
    assert r.returncode == 0 and r.stdout == "plugged\n", r.stderr
    s = Snapshot(out)
    hits = s.at("libplug.c", site_line(ROOT / "tests" / "progs" / "libplug.c", "plug"))
    assert [t["size"] for t in hits] == [4096]
    assert hits[0]["frames"][0]["function"] == "plug_alloc"
    assert hits[0]["frames"][0]["object"].endswith("libplug.so")


def test_exec_is_followed(tmp):
    """A wrapper script that execs the program: the program's final snapshot is written."""
    out = tmp / "exec.hsnap"
    r = run_traced(["/bin/sh", "-c", f'exec "{PROGS / "leaky"}"'], out)
    assert r.returncode == 0 and r.stdout == "leaky done\n"
    s = Snapshot(out)
    assert s.meta["program"] == str(PROGS / "leaky")
    assert s.at("leaky.c", site_line(LEAKY_C, "malloc"))


def test_forked_child_writes_its_own_snapshot(tmp):
    out = tmp / "fork.hsnap"
    r = run_traced([PROGS / "forker"], out)
    assert r.returncode == 0, r.stderr
    child_pid = int(r.stdout.split()[1])
    src = ROOT / "tests" / "progs" / "forker.c"
    parent, child = Snapshot(out), Snapshot(f"{out}.{child_pid}")
    assert parent.at("forker.c", site_line(src, "parent"))
    assert not parent.at("forker.c", site_line(src, "child"))
    assert child.meta["pid"] == str(child_pid)
    assert child.at("forker.c", site_line(src, "child"))
    assert child.at("forker.c", site_line(src, "parent"))      # inherited


def test_fork_not_followed(tmp):
    out = tmp / "fork.hsnap"
    r = run_traced([PROGS / "forker"], out, HEAPSNAP_FOLLOW_FORK=0)
    assert r.returncode == 0
    assert sorted(os.listdir(tmp)) == ["fork.hsnap"]


@pytest.mark.parametrize("var,value", [("HEAPSNAP_FRAMES", "abc"), ("HEAPSNAP_FRAMES", "0"),
                                       ("HEAPSNAP_FRAMES", "65536"), ("HEAPSNAP_FRAMES", "-3"),
                                       ("HEAPSNAP_TRIM", "yes"), ("HEAPSNAP_FOLLOW_FORK", "2")])
def test_bad_environment(tmp, var, value):
    """One clear message, no tracing, and the program runs as usual."""
    out = tmp / "bad.hsnap"
    e = clean_env(LD_PRELOAD=LIB, HEAPSNAP_FRAMES=4, HEAPSNAP_OUTPUT=out)
    e[var] = value
    r = subprocess.run([PROGS / "leaky"], env=e, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "leaky done\n"
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("heapsnap: ") and var in lines[0], lines
    assert not out.exists()


def test_unwritable_output_is_reported_not_fatal(tmp):
    out = tmp / "no" / "such" / "dir" / "x.hsnap"
    r = run_traced([PROGS / "leaky"], out)
    assert r.returncode == 0 and r.stdout == "leaky done\n"
    assert "final snapshot" in r.stderr and str(out) in r.stderr


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.skipif("HEAPSNAP_LIB" in os.environ, reason="valgrind runs the plain build")
@pytest.mark.parametrize("name", ["api_basic", "cxx", "depth", "threads"])
def test_tracer_under_valgrind(name):
    """The tracer itself under memcheck: no invalid access, no use of uninitialised memory.
    valgrind must not replace heapsnap's malloc (nouserintercepts); libunwind's deliberate
    memory probes are suppressed (tests/valgrind.supp); valgrind refuses pvalloc."""
    r = subprocess.run(["valgrind", "-q", "--error-exitcode=9",
                        f"--suppressions={ROOT / 'tests' / 'valgrind.supp'}",
                        "--soname-synonyms=somalloc=nouserintercepts", BUILD / "live" / name],
                       env=clean_env(HS_NO_PVALLOC=1), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{name}: ok" in r.stdout


def test_annotation_without_dependency(tmp):
    """heapsnap-annotate.h: the program is not linked with heapsnap; alone, HS_TRACK says
    "not tracing"; preloaded, the pool's blocks are traced in their domain, untracked ones gone."""
    prog = PROGS / "arena"
    alone = subprocess.run([prog], env=clean_env(ARENA_EXPECT_UNTRACED=1), capture_output=True,
                           text=True, timeout=60)
    assert alone.returncode == 0, alone.stderr
    out = tmp / "arena.hsnap"
    r = run_traced([prog], out)
    assert r.returncode == 0 and r.stdout == alone.stdout
    s = Snapshot(out)
    pool = sorted(t["size"] for t in s.traces if t["domain"] == 7)
    assert pool == [100 + i for i in range(2, 10)]
    line = site_line(ROOT / "tests" / "progs" / "arena.c", "track")
    assert all(t["frames"][0]["line"] == line for t in s.traces if t["domain"] == 7)
