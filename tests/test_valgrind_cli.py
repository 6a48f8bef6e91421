"""The heapsnap command under valgrind memcheck, analysing large snapshots (issue 4, part 3).

tests/progs/bigheap runs under `heapsnap run` and keeps BLOCKS live blocks from 1024 distinct
call stacks (plus pool blocks in domain 7), growing over PHASES phases; a snapshot is asked for
after each phase.  The plain (non-sanitized) build of the command then reads them under valgrind
for every analysis: top by each key, cumulative, filtered; diff; leaks over the series; timeline;
export in every format; info.  Any memcheck error, or a definite or indirect leak at exit, fails
the run (exit status 99).  Each run's output is also checked against what the program did.

CI size: 40000 blocks, 5 phases (well under a minute in all).  HEAPSNAP_BIG_TESTS=1: 400000
blocks, 8 phases.
"""
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, ROOT, clean_env, site_line

HEAPSNAP = BUILD / "heapsnap"
BIGHEAP = BUILD / "progs" / "bigheap"
SOURCE = ROOT / "tests" / "progs" / "bigheap.c"
BIG = os.environ.get("HEAPSNAP_BIG_TESTS") == "1"
BLOCKS, PHASES = (1_000_000, 8) if BIG else (100_000, 5)
TIMEOUT = 1800 if BIG else 120
VALGRIND = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect"]

pytestmark = pytest.mark.skipif(shutil.which("valgrind") is None,
                                reason="valgrind is not installed")


def live_blocks(phases):
    """Blocks of the malloc family alive after `phases` phases (one in 16 is freed again)."""
    per = BLOCKS // PHASES
    return phases * (per - len(range(0, per, 16)))


def hs(*args):
    return subprocess.run([str(HEAPSNAP), *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT, env=clean_env())


def vg(*args, status=0):
    """Runs heapsnap under valgrind; fails on a memcheck error or leak, or another status."""
    r = subprocess.run([*VALGRIND, str(HEAPSNAP), *map(str, args)], capture_output=True,
                       text=True, timeout=TIMEOUT, env=clean_env())
    assert r.returncode != 99, f"valgrind: heapsnap {' '.join(map(str, args))}\n{r.stderr}"
    assert r.returncode == status, (args, r.returncode, r.stderr[-2000:])
    assert "==" not in r.stderr, r.stderr[-2000:]        # nothing from valgrind at all
    return r


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Runs bigheap under the tracer with a snapshot after each phase: (run folder, process
    folder, the snapshots in order)."""
    out = tmp_path_factory.mktemp("bigheap") / "out"
    p = subprocess.Popen([str(HEAPSNAP), "run", "-q", "-o", str(out), "--", str(BIGHEAP),
                          str(BLOCKS), str(PHASES)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, env=clean_env())
    snaps = []
    try:
        for k in range(PHASES):
            line = p.stdout.readline().split()
            assert line[:2] == ["phase", str(k)], line
            r = hs("snapshot", line[2])
            assert r.returncode == 0, r.stderr
            snaps.append(Path(r.stdout.strip()))
            p.stdin.write("\n")
            p.stdin.flush()
        p.stdin.close()
        assert p.wait(timeout=TIMEOUT) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return out, snaps[0].parent, snaps


def header_and_lines(stdout):
    """The "[ ... ]" header (one line, two for diff) and the lines after it."""
    lines = stdout.splitlines()
    assert lines[0].startswith("[ ")
    end = next(i for i, l in enumerate(lines) if l.endswith(" ]"))
    return "\n".join(lines[:end + 1]), lines[end + 1:]


def info_blocks(stdout):
    return [int(m) for m in re.findall(r"^live blocks +(\d+)$", stdout, re.M)]


def stat_count(line):
    return int(line.split("count=")[1].split()[0].rstrip(","))


def test_info(series):
    _, _, snaps = series
    r = vg("info", *snaps)
    blocks = info_blocks(r.stdout)
    # each phase's blocks, 10 pool blocks per phase in domain 7, and a few more (the array of
    # blocks, stdio's buffers)
    assert len(blocks) == PHASES
    for k, b in enumerate(blocks):
        assert 1 <= b - live_blocks(k + 1) - 10 * (k + 1) <= 5, blocks


@pytest.mark.parametrize("key", ["lineno", "filename", "traceback"])
def test_top_by_key(series, key):
    _, _, snaps = series
    r = vg("top", "--by", key, "-l", "0", snaps[-1])
    head, lines = header_and_lines(r.stdout)
    stats = [l for l in lines if not l.startswith("  ")]
    assert sum(stat_count(l) for l in stats) == info_blocks(hs("info", snaps[-1]).stdout)[0]
    if key == "lineno":
        counts = {l.split(": size=")[0]: stat_count(l) for l in stats}
        assert sum(counts.get(f"{SOURCE}:{site_line(SOURCE, name)}", 0)
                   for name in ("malloc", "calloc", "realloc")) == live_blocks(PHASES), counts
        assert counts[f"{SOURCE}:{site_line(SOURCE, 'track')}"] == 10 * PHASES
    if key == "traceback":
        # 1024 paths through the tree of calls (each at one site), the pool's stack, a few more
        sites = {f"{SOURCE}:{site_line(SOURCE, n)}" for n in ("malloc", "calloc", "realloc")}
        tree = [l for l in stats if l.split(": size=")[0] in sites]
        assert len(tree) == 1024 and len(stats) <= 1024 + 6
        assert f'  File "{SOURCE}", line {site_line(SOURCE, "calloc")}' in lines


def test_top_cumulative(series):
    _, _, snaps = series
    r = vg("top", "--cumulative", "--by", "filename", snaps[-1])
    _, lines = header_and_lines(r.stdout)
    first = lines[0]
    # every frame counts: bigheap.c has 12 frames in each traceback of the tree
    assert first.startswith(f"{SOURCE}:0:") and stat_count(first) >= 12 * live_blocks(PHASES)


def test_top_filtered(series):
    _, _, snaps = series
    inc = vg("top", "--include", "*/bigheap.c", "--lineno", site_line(SOURCE, "calloc"),
             "-l", "0", snaps[-1])
    _, lines = header_and_lines(inc.stdout)
    assert len(lines) == 1 and lines[0].startswith(f"{SOURCE}:{site_line(SOURCE, 'calloc')}:")
    exc = vg("top", "--exclude", "*/bigheap.c", "--all-frames", "-l", "0", snaps[-1])
    _, lines = header_and_lines(exc.stdout)
    assert lines == []                     # every stack goes through bigheap.c


def test_domain_and_include(series):
    """--domain keeps only that domain, also together with --include (the patterns do not
    widen it); found by fuzz_pattern."""
    _, _, snaps = series
    track = f"{SOURCE}:{site_line(SOURCE, 'track')}"
    for extra in ([], ["--include", "*/bigheap.c"], ["--include", "*nothing*"]):
        r = vg("top", "--json", "--domain", "7", *extra, snaps[-1])
        stats = json.loads(r.stdout)["statistics"]
        if extra[-1:] == ["*nothing*"]:
            assert stats == []
        else:
            assert [(s["traceback"][0]["filename"] + ":" + str(s["traceback"][0]["lineno"]),
                     s["count"], s["size"]) for s in stats] == [(track, 10 * PHASES,
                                                                 480 * PHASES)]


def test_diff(series):
    _, _, snaps = series
    r = vg("diff", "--by", "filename", snaps[0], snaps[-1])
    _, lines = header_and_lines(r.stdout)
    grown = live_blocks(PHASES) - live_blocks(1) + 10 * (PHASES - 1)
    assert lines[0].startswith(f"{SOURCE}:0:") and f"(+{grown})" in lines[0], lines[0]
    r = vg("diff", "--by", "traceback", "--traceback-limit", "3", "-l", "5", snaps[0], snaps[-1])
    assert r.stdout.count('  File "') == 5 * 3


def test_leaks(series):
    out, d, snaps = series
    r = vg("leaks", "--fail-on-leak", "-l", "3", d, status=1)
    assert f"{PHASES} snapshots" in r.stdout and "#3 " in r.stdout and "#4 " not in r.stdout
    j = vg("leaks", "--json", "--by", "lineno", "-l", "0", *snaps)
    report = json.loads(j.stdout)
    sites = {(s["filename"], s["lineno"]) for s in report["suspects"]}
    assert (str(SOURCE), site_line(SOURCE, "malloc")) in sites


def test_timeline(series):
    out, _, _ = series
    r = vg("timeline", "--rows", "0", out)
    assert "RSS minus traced memory" in r.stdout


@pytest.mark.parametrize("fmt", ["folded", "json", "pprof"])
def test_export(series, tmp_path, fmt):
    _, _, snaps = series
    target = tmp_path / f"export.{fmt}"
    vg("export", snaps[-1], "--format", fmt, "-o", target)
    data = target.read_bytes()
    if fmt == "folded":
        total = sum(int(l.rsplit(b" ", 1)[1]) for l in data.splitlines())
        size = int(next(l for l in hs("info", snaps[-1]).stdout.splitlines()
                        if l.startswith("live blocks size")).split("(")[1].split()[0])
        assert total == size
    elif fmt == "json":
        assert len(json.loads(data)["traces"]) > 0
    else:
        assert data[:2] == b"\x1f\x8b"          # gzip
    base = tmp_path / f"base.{fmt}"
    vg("export", snaps[-1], "--format", fmt, "--base", snaps[0], "-o", base)
    assert base.stat().st_size > 0
