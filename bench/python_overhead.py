#!/usr/bin/env python3
"""Overhead of heapsnap's Python tracer against tracemalloc on an object-heavy workload.

The workload builds lists of dicts and sends them through json.dumps / json.loads (issue 6's
benchmark).  Each measurement runs in a fresh interpreter: untraced, tracemalloc.start(N) and
heapsnap.start(N) for N in (1, 10); the modes are interleaved round by round so that a noisy
neighbour hits them alike, and the table shows medians.

    python3 bench/python_overhead.py [--runs 5] [--scale 1.0] [--path DIR]

--path is put first on sys.path in the children (a build of the heapsnap package).  Overhead is
(traced - untraced) / untraced; the last column is heapsnap's overhead as a fraction of
tracemalloc's at the same frame count (the target is at most 0.5).
"""
import argparse
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
mode, nframe, scale = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
if mode == "tracemalloc":
    import tracemalloc as t
    t.start(nframe)
elif mode == "heapsnap":
    import heapsnap as t
    t.start(nframe)

def make(n):
    return [{"id": i, "name": "item%d" % i, "tags": ["a", "b", str(i)], "score": i * 0.5,
             "nested": {"x": i, "y": [i, i + 1]}} for i in range(n)]

def work(rounds):
    total = 0
    for r in range(rounds):
        data = make(2000)
        text = json.dumps(data)
        back = json.loads(text)
        total += len(back) + len(text)
    return total

t0 = time.perf_counter()
work(max(1, int(40 * scale)))
print(time.perf_counter() - t0)
"""


def run(mode, nframe, scale, path):
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = path + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(nframe), str(scale)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return float(out.strip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--path", default="")
    a = ap.parse_args()
    modes = [("untraced", 1)] + [(m, n) for n in (1, 10) for m in ("tracemalloc", "heapsnap")]
    times = {m: [] for m in modes}
    for _ in range(a.runs):
        for m in modes:
            times[m].append(run(m[0], m[1], a.scale, a.path))
    base = statistics.median(times[("untraced", 1)])
    print("Python %s, %d runs each, medians (seconds)" % (sys.version.split()[0], a.runs))
    print("| mode | nframe | median s | overhead | heapsnap / tracemalloc overhead |")
    print("|---|---|---|---|---|")
    print("| untraced | - | %.3f | - | - |" % base)
    for n in (1, 10):
        ot = statistics.median(times[("tracemalloc", n)]) / base - 1
        for m in ("tracemalloc", "heapsnap"):
            med = statistics.median(times[(m, n)])
            over = med / base - 1
            ratio = "%.2f" % (over / ot) if m == "heapsnap" and ot > 0 else "-"
            print("| %s | %d | %.3f | %+.0f%% (%.2fx) | %s |" % (m, n, med, over * 100,
                                                                med / base, ratio))


if __name__ == "__main__":
    main()
