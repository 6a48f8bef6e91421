#!/usr/bin/python3
"""bench/run.py - heapsnap's benchmark suite (issue 5): overhead against an untraced run and
heaptrack on real programs and microbenchmarks, scaling curves, and the targets.

    bench/run.py                 everything; writes bench/RESULTS.md (about 20 minutes of runs)
    bench/run.py --quick         smoke test: small inputs, 1 run, report in build/bench/
    bench/run.py --overhead      only the overhead tables       (--scaling: only the curves)
    bench/run.py --runs 7 --workloads jq,sqlite --tools untraced,heapsnap16,heaptrack
    bench/run.py --rev HEAD      measure a git revision instead of the working tree
    bench/run.py --scaling --update   measure one part again into the last complete run

Python 3 standard library only; run with /usr/bin/python3 (the shebang).  Installs the missing
Debian packages it needs (jq, sqlite3, clang, heaptrack) with apt-get, builds heapsnap with make,
measures private copies of libheapsnap.so and heapsnap (build/bench/hs/), and writes its
generated inputs, programs and raw numbers under build/bench/.  Before measuring it waits (up to
15 minutes) for the 1-minute load average to fall to 0.5, and records it.

How a run is measured (see the "How it is measured" section of the report):
  * each command is spawned by this process, which is a child subreaper (prctl), so every process
    of the run, including orphans, is waited for by it or by a descendant;
  * CPU = user + sys of all of them: the RUSAGE_CHILDREN delta around the run (wait4 adds a
    waited child's own waited-for children to it), checked against the sum of the wait4 rusages;
  * peak RSS = maximum over time of the sum of VmRSS over the whole process tree, sampled every
    20 ms from /proc; ru_maxrss (largest single process) is reported too;
  * wall = from spawn to the last process reaped.
"""
import argparse
import ctypes
import datetime
import json
import math
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
OUT = os.path.join(ROOT, "build", "bench")
# Private copies of the measured build (set by build()), so that a rebuild of build/ by someone
# else during the run cannot change what is measured.
HS_DIR = os.path.join(OUT, "hs")
LIB = os.path.join(HS_DIR, "libheapsnap.so")
HEAPSNAP = os.path.join(HS_DIR, "heapsnap")
MICRO = os.path.join(OUT, "micro")
SNAPSCALE = os.path.join(OUT, "snapscale")
LAUNCH = os.path.join(OUT, "hs-launch")       # its comm name is "hs-launch"
PY = "/usr/bin/python3"

APT_PACKAGES = ["jq", "sqlite3", "clang", "heaptrack"]
REAL_WORKLOADS = ["clang", "jq", "python", "sqlite"]
MICRO_WORKLOADS = ["mixed1", "mixed2", "cross", "realloc"]
ALL_WORKLOADS = REAL_WORKLOADS + MICRO_WORKLOADS
DEFAULT_TOOLS = ["untraced", "heapsnap1", "heapsnap16", "heapsnap64", "heapsnap16-nosnap",
                 "heaptrack"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
T_START = time.monotonic()


def log(msg):
    print("[%6.1f s] %s" % (time.monotonic() - T_START, msg), file=sys.stderr, flush=True)


def rel(path):
    """A path as written in the report: relative to the repository when inside it."""
    if isinstance(path, str) and path.startswith(ROOT + "/"):
        return path[len(ROOT) + 1:]
    return path


# ---- setup ----------------------------------------------------------------------------------------

def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def ensure_packages():
    """apt-get install of what is missing, and only then."""
    missing = []
    for p in APT_PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
        if "install ok installed" not in r.stdout:
            missing.append(p)
    if not missing:
        return
    log("installing " + " ".join(missing))
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sh(sudo + ["apt-get", "update", "-qq"], env=env)
    sh(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, env=env)


def git(*args):
    return subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True,
                          check=True).stdout.strip()


def build(rev):
    """Builds heapsnap (the working tree, or with rev a `git archive` of that revision in
    build/bench/src-SHA), copies libheapsnap.so and heapsnap to build/bench/hs/, and compiles the
    benchmark programs.  Returns a description of what is measured."""
    if rev:
        sha = git("rev-parse", "--verify", rev + "^{commit}")
        src = os.path.join(OUT, "src-" + sha[:12])
        if not os.path.exists(os.path.join(src, "build", "libheapsnap.so")):
            shutil.rmtree(src, ignore_errors=True)
            os.makedirs(src)
            archive = subprocess.Popen(["git", "-C", ROOT, "archive", "--format=tar", sha],
                                       stdout=subprocess.PIPE)
            sh(["tar", "-x", "-C", src], stdin=archive.stdout)
            if archive.wait() != 0:
                raise SystemExit("git archive %s failed" % sha)
        deps = os.path.join(src, "scripts", "install-deps.sh")
        if os.path.exists(deps):
            sh([deps])
        sh(["make", "-s", "-j2", "-C", src, "build/libheapsnap.so", "build/heapsnap"])
        built, include = os.path.join(src, "build"), os.path.join(src, "include")
        desc = "commit %s (`--rev %s`: a `git archive` built in %s)" % (sha[:12], rev, rel(src))
    else:
        deps = os.path.join(ROOT, "scripts", "install-deps.sh")
        if os.path.exists(deps):
            sh([deps])
        sh(["make", "-s", "-j2", "-C", ROOT, "build/libheapsnap.so", "build/heapsnap"])
        built, include = os.path.join(ROOT, "build"), os.path.join(ROOT, "include")
        changed = [line[3:] for line in git("status", "--porcelain", "--", "src", "include",
                                            "Makefile").splitlines()]
        desc = "working tree at commit %s%s" % (
            git("rev-parse", "--short=12", "HEAD"),
            " with uncommitted changes in " + ", ".join(changed) if changed else "")
    os.makedirs(HS_DIR, exist_ok=True)
    for name in ("libheapsnap.so", "heapsnap"):
        shutil.copy2(os.path.join(built, name), os.path.join(HS_DIR, name + ".tmp"))
        os.replace(os.path.join(HS_DIR, name + ".tmp"), os.path.join(HS_DIR, name))
    sh(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", LAUNCH, os.path.join(BENCH, "launch.c")])
    sh(["cc", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-o", MICRO,
        os.path.join(BENCH, "micro.c"), "-lpthread"])
    sh(["cc", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-fno-omit-frame-pointer",
        "-fno-optimize-sibling-calls", "-I" + include, "-o", SNAPSCALE,
        os.path.join(BENCH, "snapscale.c"), "-L" + HS_DIR, "-lheapsnap", "-Wl,-rpath," + HS_DIR])
    return desc


def set_subreaper():
    """Orphans of a run (a grandchild whose parent exits first) are re-parented to us, so that we
    wait for them and their CPU time is counted."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def wait_for_idle(max_load, minutes):
    """Waits until the 1-minute load average is at most max_load, polling every 60 s for up to
    `minutes`.  Returns (load seen first, load when starting, seconds waited)."""
    first = os.getloadavg()
    t0 = time.monotonic()
    load = first
    while load[0] > max_load and time.monotonic() - t0 < minutes * 60:
        log("load average %.2f > %.2f: waiting (%.0f s so far)" % (load[0], max_load,
                                                                   time.monotonic() - t0))
        time.sleep(60)
        load = os.getloadavg()
    return first, load, time.monotonic() - t0


# ---- inputs -----------------------------------------------------------------------------------------

def gen_json(path, n):
    """n small objects, about 70 bytes each (30 MB at n = 430000)."""
    if os.path.exists(path):
        return
    import random
    rng = random.Random(5)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("[")
        for i in range(n):
            f.write('%s{"id":%d,"name":"user%06d","x":%d,"y":%.2f,"tags":["t%d","g%d"]}\n' % (
                "," if i else "", i, rng.randrange(10 ** 6), rng.randrange(11),
                rng.random() * 100, i % 17, i % 5))
        f.write("]\n")
    os.rename(tmp, path)


def gen_sql(path, rows):
    """rows inserted into a table with an index, then GROUP BY queries."""
    text = """\
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL);
CREATE INDEX t_grp ON t(grp);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d)
INSERT INTO t SELECT i, i / 1200, 'n' || (abs(random()) %% 1000000), (i * 7919 %% 100000) / 100.0 FROM c;
SELECT grp, count(*), sum(val) FROM t GROUP BY grp ORDER BY 3 DESC LIMIT 3;
SELECT substr(name, 1, 3) AS p, count(*), avg(val) FROM t GROUP BY p ORDER BY 2 DESC LIMIT 3;
""" % rows
    with open(path, "w") as f:
        f.write(text)


class Sizes:
    def __init__(self, quick):
        self.quick = quick
        self.json_objects = 43000 if quick else 430000        # ~3 MB / ~30 MB
        self.sql_rows = 120000 if quick else 1200000
        self.py_records, self.py_rounds = (6000, 2) if quick else (50000, 4)
        self.mixed_n = 200000 if quick else 2000000
        self.cross_n = 100000 if quick else 1000000
        self.realloc_n = 100000 if quick else 1000000
        self.depth_n = 100000 if quick else 1000000
        self.threads_n = 200000 if quick else 2000000
        self.blocks = [10 ** k for k in range(3, 6 if quick else 8)]
        self.stacks = [10 ** k for k in range(1, 5 if quick else 6)]
        self.stacks_blocks = 10 ** 5 if quick else 10 ** 6
        self.series = (10 ** 4, 20) if quick else (10 ** 5, 100)


def workloads(sz):
    """name -> (argv, extra env, stdin path or None, description)."""
    inp = os.path.join(OUT, "inputs")
    os.makedirs(inp, exist_ok=True)
    data = os.path.join(inp, "data-%d.json" % sz.json_objects)
    sql = os.path.join(inp, "rows-%d.sql" % sz.sql_rows)
    return {
        "clang": ([shutil.which("clang++") or "clang++", "-O1", "-c",
                   os.path.join(BENCH, "workloads", "stl_heavy.cc"), "-o", "{tmp}/stl_heavy.o"],
                  {}, None, "clang++ -O1 -c of an STL-heavy C++ file",
                  lambda: None),
        "jq": ([shutil.which("jq") or "jq", "[.[]|select(.x>5)|.name]|length", data], {}, None,
               "jq over a {json_mb} MB JSON array of %d small objects" % sz.json_objects,
               lambda: gen_json(data, sz.json_objects)),
        "python": ([PY, os.path.join(BENCH, "workloads", "json_dicts.py"), str(sz.py_records),
                    str(sz.py_rounds)], {"PYTHONMALLOC": "malloc"}, None,
                   "python3 json dump/load of dicts, PYTHONMALLOC=malloc", lambda: None),
        "sqlite": ([shutil.which("sqlite3") or "sqlite3", ":memory:", ".read " + sql], {}, None,
                   "sqlite3 :memory:, %d rows with an index, GROUP BY" % sz.sql_rows,
                   lambda: gen_sql(sql, sz.sql_rows)),
        "mixed1": ([MICRO, "mixed", "1", str(sz.mixed_n)], {}, None,
                   "micro: mixed small sizes, 1 thread", lambda: None),
        "mixed2": ([MICRO, "mixed", "2", str(sz.mixed_n)], {}, None,
                   "micro: mixed small sizes, 2 threads", lambda: None),
        "cross": ([MICRO, "cross", str(sz.cross_n)], {}, None,
                  "micro: 2 threads freeing each other's blocks", lambda: None),
        "realloc": ([MICRO, "realloc", str(sz.realloc_n)], {}, None,
                    "micro: realloc growth", lambda: None),
    }


# ---- one measured run ----------------------------------------------------------------------------

def read_stat(pid):
    """(ppid, comm, cpu ticks, starttime) of /proc/pid/stat, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            s = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    lp, rp = s.find("("), s.rfind(")")
    comm = s[lp + 1:rp]
    f = s[rp + 2:].split()
    # fields after comm: state(0) ppid(1) ... utime(11) stime(12) ... starttime(19)
    return int(f[1]), comm, int(f[11]) + int(f[12]), int(f[19])


def read_vmrss_kb(pid):
    try:
        with open("/proc/%d/status" % pid, "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0                                  # a zombie has no VmRSS line


class TreeSampler(threading.Thread):
    """Every `interval` s: finds the processes descending from this one (by their parent pid, as
    /proc/PID/task/*/children is not available on every kernel), sums their VmRSS and keeps the
    largest sum; also keeps, per process, its command name, largest VmRSS and CPU ticks."""

    def __init__(self, interval=0.02, timeout=3600):
        super().__init__(daemon=True)
        self.interval, self.timeout = interval, timeout
        self.me = os.getpid()
        self.procs = {}                       # pid -> dict(comm, start, rss_max, ticks, gone)
        self.not_ours = set()
        self.peak_sum_kb = 0
        self.samples = 0
        self.stop_evt = threading.Event()

    def sample(self):
        pending = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            if pid in self.procs or pid in self.not_ours:
                continue
            st = read_stat(pid)
            if st is not None:
                pending[pid] = st
        changed = True
        while changed and pending:
            changed = False
            for pid, st in list(pending.items()):
                if st[0] == self.me or st[0] in self.procs:
                    self.procs[pid] = dict(comm=st[1], start=st[3], rss_max=0, ticks=st[2],
                                           gone=False)
                    del pending[pid]
                    changed = True
        self.not_ours.update(pending)
        total = 0
        for pid, p in self.procs.items():
            if p["gone"] or p["comm"] == "hs-launch":
                continue
            st = read_stat(pid)
            if st is None or st[3] != p["start"]:
                p["gone"] = True
                continue
            p["comm"], p["ticks"] = st[1], st[2]
            rss = read_vmrss_kb(pid)
            p["rss_max"] = max(p["rss_max"], rss)
            total += rss
        self.peak_sum_kb = max(self.peak_sum_kb, total)
        self.samples += 1

    def run(self):
        t0 = time.monotonic()
        while not self.stop_evt.is_set():
            self.sample()
            if time.monotonic() - t0 > self.timeout:      # a run that never ends
                for pid, p in self.procs.items():
                    if not p["gone"]:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
            self.stop_evt.wait(self.interval)

    def stop(self):
        self.stop_evt.set()
        self.join()


def base_env():
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("HEAPSNAP_")}
    env["LC_ALL"] = "C"
    return env


RUN_COUNTER = [0]


def run_once(argv, env, stdin=None, out_path=os.devnull, timeout=3600):
    """Spawns argv with env (through hs-launch) and waits for it and every process it leaves
    behind.  Returns the measures."""
    RUN_COUNTER[0] += 1
    ru_file = os.path.join(OUT, "tmp", "launch-%d-%d.ru" % (os.getpid(), RUN_COUNTER[0]))
    # hs-launch itself runs in the base environment; what the tool adds (LD_PRELOAD, HEAPSNAP_*,
    # PYTHONMALLOC) is handed to it as NAME=VALUE arguments, set in the program's process only.
    base = base_env()
    extra = ["%s=%s" % (k, v) for k, v in sorted(env.items()) if base.get(k) != v]
    gone = [k for k in base if k not in env]
    if gone:
        raise ValueError("run_once cannot unset %s" % gone)
    argv = [LAUNCH, ru_file] + extra + list(argv)
    env = base
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, stdin or os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    sampler = TreeSampler(timeout=timeout)
    sampler.start()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions)
    status, reaped = None, []
    while True:
        try:
            wpid, st, ru = os.wait4(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        reaped.append((wpid, ru))
        if wpid == pid:
            status = st
    t1 = time.monotonic()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler.stop()
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    cpu_wait4 = sum(r.ru_utime + r.ru_stime for _, r in reaped)
    if abs(cpu - cpu_wait4) > 0.01:
        log("WARNING: RUSAGE_CHILDREN says %.3f s, wait4 %.3f s: %s" % (cpu, cpu_wait4, argv))
    procs = [dict(pid=p, comm=v["comm"], cpu=v["ticks"] / CLK_TCK, rss_max_kb=v["rss_max"])
             for p, v in sorted(sampler.procs.items()) if v["comm"] != "hs-launch"]
    # ru_maxrss: the program's own (hs-launch's wait4), and that of any orphan reaped here
    try:
        with open(ru_file) as f:
            prog_maxrss = int(f.read().split()[0])
        os.unlink(ru_file)
    except (OSError, ValueError, IndexError):
        prog_maxrss = 0
    maxrss = max([prog_maxrss] + [r.ru_maxrss for p, r in reaped if p != pid])
    return dict(
        wall=t1 - t0,
        cpu=cpu,
        user=ru1.ru_utime - ru0.ru_utime,
        sys=ru1.ru_stime - ru0.ru_stime,
        cpu_wait4=cpu_wait4,
        # the sum over processes is at least the largest one (a run shorter than one sampling
        # interval is seen through ru_maxrss alone)
        peak_rss_kb=max(sampler.peak_sum_kb, maxrss),
        peak_rss_sampled_kb=sampler.peak_sum_kb,
        maxrss_kb=maxrss,
        rc=os.waitstatus_to_exitcode(status) if status is not None else None,
        orphans=len(reaped) - 1,              # reaped here besides hs-launch
        samples=sampler.samples,
        procs=procs,
    )


# ---- tools ---------------------------------------------------------------------------------------

def tool_frames(tool):
    """heapsnapN -> N; heapsnapN-nosnap is the same without the final snapshot."""
    return int(tool[len("heapsnap"):].split("-")[0]) if tool.startswith("heapsnap") else 0


def valid_tool(tool):
    if tool in ("untraced", "heaptrack"):
        return True
    if not tool.startswith("heapsnap"):
        return False
    n, _, suffix = tool[len("heapsnap"):].partition("-")
    return n.isdigit() and 1 <= int(n) <= 65535 and suffix in ("", "nosnap")


def tool_command(tool, argv, extra_env, tmp):
    """(argv, env, shown prefix) of a workload under a tool; files go to tmp."""
    env = base_env()
    env.update(extra_env)
    argv = [a.replace("{tmp}", tmp) for a in argv]
    if tool == "untraced":
        return argv, env, ""
    if tool.startswith("heapsnap") and tool.endswith("-nosnap"):
        env.update(LD_PRELOAD=LIB, HEAPSNAP_FRAMES=str(tool_frames(tool)))
        return argv, env, "LD_PRELOAD=%s HEAPSNAP_FRAMES=%d " % (rel(LIB), tool_frames(tool))
    if tool.startswith("heapsnap"):
        env.update(LD_PRELOAD=LIB, HEAPSNAP_FRAMES=str(tool_frames(tool)),
                   HEAPSNAP_OUTPUT=os.path.join(tmp, "final.hsnap"))
        return argv, env, "LD_PRELOAD=%s HEAPSNAP_FRAMES=%d HEAPSNAP_OUTPUT=$TMP/final.hsnap " % (
            rel(LIB), tool_frames(tool))
    if tool == "heaptrack":
        return [shutil.which("heaptrack") or "heaptrack", "-o",
                os.path.join(tmp, "heaptrack")] + argv, env, "heaptrack -o $TMP/heaptrack "
    raise SystemExit("unknown tool %s (untraced, heapsnapN, heaptrack)" % tool)


def shown(argv, extra_env, prefix):
    def q(a):
        a = a.replace("{tmp}", "$TMP").replace(ROOT + "/", "")
        return a if a and all(c.isalnum() or c in "/._-=:,+{}$" for c in a) else "'%s'" % a
    envs = "".join("%s=%s " % kv for kv in sorted(extra_env.items()))
    return envs + prefix + " ".join(q(a) for a in argv)


def measured_run(tool, argv, extra_env, stdin=None, wrap=()):
    """One run of a workload under a tool, in a fresh temporary folder; checks the outcome.
    wrap (such as taskset -c 0) goes before the tool, so that it applies to all its processes."""
    tmp = tempfile.mkdtemp(prefix="run-", dir=os.path.join(OUT, "tmp"))
    try:
        cmd, env, _ = tool_command(tool, argv, extra_env, tmp)
        cmd = list(wrap) + cmd
        out = os.path.join(tmp, "stdout")
        r = run_once(cmd, env, stdin=stdin, out_path=out)
        with open(out, errors="replace") as f:
            text = f.read()
        if r["rc"] != 0:
            raise SystemExit("%s under %s failed (exit %s):\n%s" % (" ".join(cmd), tool, r["rc"],
                                                                     text[-3000:]))
        if tool.startswith("heapsnap") and not tool.endswith("-nosnap"):
            snaps = [n for n in os.listdir(tmp) if n.startswith("final.hsnap")]
            if not snaps:
                raise SystemExit("%s: no final snapshot under %s:\n%s" % (" ".join(cmd), tool,
                                                                           text[-3000:]))
            r["snapshot_bytes"] = sum(os.path.getsize(os.path.join(tmp, n)) for n in snaps)
        if tool == "heaptrack":
            outs = [n for n in os.listdir(tmp) if n.startswith("heaptrack.")]
            if not outs:
                raise SystemExit("heaptrack wrote nothing:\n" + text[-3000:])
            r["heaptrack_file"] = outs[0]
            r["heaptrack_bytes"] = os.path.getsize(os.path.join(tmp, outs[0]))
        r["stdout"] = text[-2000:]
        return r
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ns_per_op(stdout):
    """The number micro prints (heaptrack's own lines around it are skipped)."""
    for line in stdout.splitlines():
        try:
            return float(line.strip())
        except ValueError:
            pass
    return None


# ---- statistics ------------------------------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratios(runs, base, key):
    """Run by run: each run against the untraced run of the same round; None when unavailable."""
    if not base:
        return []
    return [r[key] / b[key] for r, b in zip(runs, base) if b[key] > 0]


# ---- overhead suite --------------------------------------------------------------------------------

def overhead(args, sz, results):
    wls = workloads(sz)
    res = results.setdefault("overhead", {})
    for w in args.workloads:
        argv, extra, stdin, desc, prepare = wls[w]
        prepare()
        if "{json_mb}" in desc:
            desc = desc.replace("{json_mb}", "%.1f" % (os.path.getsize(argv[-1]) / 1e6))
        entry = res[w] = dict(desc=desc, commands={}, runs={t: [] for t in args.tools},
                              load_before=os.getloadavg())
        for t in args.tools:
            entry["commands"][t] = shown(argv, extra, tool_command(t, argv, extra, "$TMP")[2])
        rounds = args.runs + (0 if args.no_warmup else 1)
        for i in range(rounds):
            warm = i == 0 and not args.no_warmup
            for t in args.tools:
                r = measured_run(t, argv, extra, stdin)
                r["ns_op"] = ns_per_op(r["stdout"]) if w in MICRO_WORKLOADS else None
                if not warm:
                    entry["runs"][t].append(r)
                log("%-8s %-11s %-8s wall %6.2f s  cpu %6.2f s  rss %7.1f MiB" % (
                    w, t, "warm-up" if warm else "round %d" % (i if not args.no_warmup else i + 1),
                    r["wall"], r["cpu"], r["peak_rss_kb"] / 1024))
        save(results)


def summarize_overhead(entry):
    """tool -> medians and run-by-run ratio medians."""
    base = entry["runs"].get("untraced")
    out = {}
    for t, runs in entry["runs"].items():
        if not runs:
            continue
        out[t] = dict(
            wall=med([r["wall"] for r in runs]),
            cpu=med([r["cpu"] for r in runs]),
            rss=med([r["peak_rss_kb"] for r in runs]) / 1024,
            maxrss=med([r["maxrss_kb"] for r in runs]) / 1024,
            wall_x=med(ratios(runs, base, "wall")),
            cpu_x=med(ratios(runs, base, "cpu")),
            cpu_x_range=(min(ratios(runs, base, "cpu")), max(ratios(runs, base, "cpu")))
            if ratios(runs, base, "cpu") else None,
            rss_x=med(ratios(runs, base, "peak_rss_kb")),
            ns_op=med([r.get("ns_op") for r in runs]),
            snap=med([r.get("snapshot_bytes") for r in runs]),
            n=len(runs),
        )
    return out


# ---- scaling -----------------------------------------------------------------------------------------

def scaling(args, sz, results):
    sc = results.setdefault("scaling", {})
    runs = max(1, min(args.runs, 3))
    tmproot = os.path.join(OUT, "tmp")

    # 1 and 2. cost per malloc+free pair: the program's own timing of its loop (wall, per pair of
    # one thread) and the CPU of every process of the run divided by all pairs.  heapsnap runs
    # here write no final snapshot, so that its cost does not count as a cost per pair.
    def pair_curve(key, rows, tools):
        """rows: [(label, argv, total pairs, wrap)] -> results["scaling"][key]"""
        curve = sc[key] = dict(tools=tools, rows=[])
        for label, argv, pairs, wrap in rows:
            wall = {t: [] for t in tools}
            cpu = {t: [] for t in tools}
            for i in range(runs + 1):
                for t in tools:
                    r = measured_run(t, argv, {}, wrap=wrap)
                    if i > 0:
                        wall[t].append(ns_per_op(r["stdout"]))
                        cpu[t].append(r["cpu"] / pairs * 1e9)
            cells = {t: dict(wall_ns=med(wall[t]), cpu_ns=med(cpu[t])) for t in tools}
            curve["rows"].append(dict(label=label, argv=argv, cells=cells))
            log("%s %s: %s" % (key, label, "  ".join(
                "%s %.0f/%.0f" % (t, c["wall_ns"], c["cpu_ns"]) for t, c in cells.items())))
        save(results)

    ht = ["heaptrack"] if "heaptrack" in args.tools else []
    n = sz.depth_n
    pair_curve("depth", [(str(d), [MICRO, "depth", str(d), str(n)], n, ())
                         for d in (1, 4, 16, 64)],
               ["untraced"] + ["heapsnap%d-nosnap" % k for k in (1, 4, 16, 64)] + ht)
    n = sz.threads_n
    pair_curve("threads", [
        ("1", [MICRO, "mixed", "1", str(n)], n, ()),
        ("2", [MICRO, "mixed", "2", str(n)], 2 * n, ()),
        ("2 on one core", [MICRO, "mixed", "2", str(n)], 2 * n, ("taskset", "-c", "0")),
    ], ["untraced"] + ["heapsnap%d-nosnap" % k for k in (1, 16, 64)] + ht)

    # 3. snapshots against live blocks (100 stacks) and against distinct stacks
    def snap_point(n, s):
        acc = []
        for i in range(runs if n < 10 ** 7 else 1):
            d = tempfile.mkdtemp(prefix="snap-", dir=tmproot)
            try:
                r = run_once([SNAPSCALE, "blocks", str(n), str(s), "16", d], base_env(),
                             out_path=os.path.join(d, "out.json"))
                if r["rc"] != 0:
                    raise SystemExit("snapscale failed: " + open(os.path.join(d, "out.json")).read())
                with open(os.path.join(d, "out.json")) as f:
                    j = json.loads(f.read().strip().splitlines()[-1])
                j["process_peak_rss_kb"] = r["peak_rss_kb"]
                series = os.path.join(d, "series")
                for name, cmd in (
                        ("top", [HEAPSNAP, "top", os.path.join(d, "full.hsnap")]),
                        ("diff", [HEAPSNAP, "diff", os.path.join(series, "step-0.hsnap"),
                                  os.path.join(series, "step-4.hsnap")]),
                        ("leaks", [HEAPSNAP, "leaks", series])):
                    a = run_once(cmd, base_env())
                    if a["rc"] != 0:
                        raise SystemExit("%s failed" % " ".join(cmd))
                    j[name + "_s"] = a["wall"]
                    j[name + "_cpu_s"] = a["cpu"]
                    j[name + "_rss_kb"] = a["peak_rss_kb"]
                acc.append(j)
            finally:
                shutil.rmtree(d, ignore_errors=True)
        keys = [k for k, v in acc[0].items() if isinstance(v, (int, float))]
        point = {k: med([a[k] for a in acc]) for k in keys}
        point["runs"] = len(acc)
        log("snapshot n=%d s=%d: take %.3f s dump %.3f s file %d B top %.2f diff %.2f leaks %.2f"
            % (n, s, point["take_cold_s"], point["dump_s"], point["file_bytes"], point["top_s"],
               point["diff_s"], point["leaks_s"]))
        return point

    sc["blocks"] = [snap_point(n, 100) for n in sz.blocks]
    save(results)
    sc["stacks"] = [snap_point(sz.stacks_blocks, s) for s in sz.stacks]
    save(results)

    # 4. leaks over a long series
    n, count = sz.series
    acc = []
    for i in range(runs):
        d = tempfile.mkdtemp(prefix="series-", dir=tmproot)
        try:
            r = run_once([SNAPSCALE, "series", str(n), str(count), "100", "16", d], base_env(),
                         out_path=os.path.join(tmproot, "series.json"))
            with open(os.path.join(tmproot, "series.json")) as f:
                j = json.loads(f.read().strip().splitlines()[-1])
            if r["rc"] != 0:
                raise SystemExit("snapscale series failed")
            j["dir_bytes"] = sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d))
            a = run_once([HEAPSNAP, "leaks", d], base_env())
            j["leaks_s"], j["leaks_cpu_s"], j["leaks_rss_kb"] = a["wall"], a["cpu"], a["peak_rss_kb"]
            acc.append(j)
        finally:
            shutil.rmtree(d, ignore_errors=True)
    sc["series"] = {k: med([a[k] for a in acc]) for k, v in acc[0].items()
                    if isinstance(v, (int, float))}
    sc["series"]["runs"] = len(acc)
    log("leaks over %d snapshots of %d blocks: %.2f s" % (count, n, sc["series"]["leaks_s"]))
    save(results)


# ---- accounting self-check -----------------------------------------------------------------------

def accounting_check():
    """A grandchild that is waited for, and one that is orphaned: both must be counted."""
    burn = ("%s -c 'import time\nt = time.process_time()\n"
            "while time.process_time() - t < 0.3: pass'" % PY)
    out = {}
    for name, cmd in (("waited", "%s & wait" % burn), ("orphaned", "%s & exit 0" % burn)):
        r = run_once(["/bin/sh", "-c", cmd], base_env())
        out[name] = dict(cpu=r["cpu"], cpu_wait4=r["cpu_wait4"], orphans=r["orphans"],
                         ok=r["cpu"] >= 0.28)
    return out


# ---- report ------------------------------------------------------------------------------------------

def first_line(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except Exception:                           # noqa: BLE001 - a version string is optional
        return "?"


def lib_digest():
    """Identifies the libheapsnap.so measured (another build must not replace it mid-run)."""
    import hashlib
    with open(LIB, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def machine_info():
    cpu = "?"
    cores = 0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and cpu == "?":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("processor"):
                cores += 1
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1024 / 1024)
    pretty = "?"
    if os.path.exists("/etc/os-release"):
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip().strip('"')
    deb = open("/etc/debian_version").read().strip() if os.path.exists("/etc/debian_version") else "?"
    return dict(
        cpu=cpu, cores=cores, memory=mem, kernel=platform.release(), os=pretty, debian=deb,
        versions={
            "clang++": first_line(["clang++", "--version"]),
            "jq": first_line(["jq", "--version"]),
            "sqlite3": first_line(["sqlite3", "--version"]).split(" ")[0],
            "python3": first_line([PY, "--version"]),
            "heaptrack": first_line(["heaptrack", "--version"]),
            "heaptrack compressor": "zstd" if shutil.which("zstd") else "gzip",
        })


def fx(x, d=2):
    return "–" if x is None else ("%.*f" % (d, x))


def fr(x):
    return "–" if x is None else "%.2f×" % x


def fbytes(n):
    if n is None:
        return "–"
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return "%.1f %s" % (n / div, unit)
    return "%d B" % n


def fsec(s):
    if s is None:
        return "–"
    return "%.0f ms" % (s * 1e3) if s < 1 else "%.2f s" % s


def targets(results):
    """[(target, measured, verdict)]"""
    rows = []
    ov = results.get("overhead", {})
    ratios16 = []
    for w in REAL_WORKLOADS:
        if w not in ov:
            continue
        s = summarize_overhead(ov[w])
        hs, ht = s.get("heapsnap16"), s.get("heaptrack")
        if not hs or not ht or hs["cpu_x"] is None or ht["cpu_x"] is None:
            continue
        ratios16.append(hs["cpu_x"])
        oh, oht = hs["cpu_x"] - 1, ht["cpu_x"] - 1
        ns = s.get("heapsnap16-nosnap")
        rows.append(("CPU overhead at 16 frames ≤ ½ heaptrack's: %s" % w,
                     "%+.0f %% vs heaptrack %+.0f %% (limit %+.0f %%)%s" % (
                         oh * 100, oht * 100, oht * 50,
                         "; without the final snapshot %+.0f %%" % ((ns["cpu_x"] - 1) * 100)
                         if ns and ns["cpu_x"] is not None else ""),
                     "met" if oh <= oht / 2 else "**not met**"))
    if ratios16:
        g = math.exp(sum(math.log(x) for x in ratios16) / len(ratios16))
        rows.append(("aim: CPU ratio at 16 frames ≤ 1.5× overall",
                     "geometric mean %.2f×, worst %.2f×" % (g, max(ratios16)),
                     "met" if max(ratios16) <= 1.5 else "**not met**"))
    sc = results.get("scaling", {})
    big = [p for p in sc.get("blocks", []) if p["blocks"] >= 10 ** 5]
    if big:
        per = [(p["blocks"], (p["tracer_mem_blocks"] - p["tracer_mem_stacks"]) / p["blocks"])
               for p in big]
        rows.append(("tracer memory ≤ 32 B per live block plus the stack table",
                     ", ".join("%.1f B at %s" % (b, sci(n)) for n, b in per),
                     "met" if all(b <= 32 for _, b in per) else "**not met**" + (
                         " (met at %s)" % ", ".join(sci(n) for n, b in per if b <= 32)
                         if any(b <= 32 for _, b in per) else "")))
    one = [p for p in sc.get("blocks", []) if p["blocks"] == 10 ** 6]
    if one:
        t = one[0]["take_cold_s"] + one[0]["dump_s"]
        rows.append(("snapshot of 1 M live blocks < 0.5 s (100 stacks)",
                     "%s (take %s + dump %s)" % (fsec(t), fsec(one[0]["take_cold_s"]),
                                                 fsec(one[0]["dump_s"])),
                     "met" if t < 0.5 else "**not met**"))
    many = [p for p in sc.get("stacks", []) if p["blocks"] == 10 ** 6]
    if many:
        worst = max(many, key=lambda p: p["stacks"])
        t = worst["take_cold_s"] + worst["dump_s"]
        rows.append(("same, 1 M blocks from %s distinct stacks" % sci(worst["stacks"]),
                     "%s (take %s + dump %s)" % (fsec(t), fsec(worst["take_cold_s"]),
                                                 fsec(worst["dump_s"])),
                     "met" if t < 0.5 else "**not met**"))
    se = sc.get("series")
    if se and se.get("blocks") == 10 ** 5 and se.get("snapshots") == 100:
        rows.append(("`leaks` over 100 snapshots of 10^5 blocks < 5 s",
                     fsec(se["leaks_s"]), "met" if se["leaks_s"] < 5 else "**not met**"))
    return rows


def sci(n):
    n = int(n)
    k = int(round(math.log10(n))) if n > 0 else 0
    return "10^%d" % k if 10 ** k == n else str(n)


def report(args, results, path):
    m = results["machine"]
    L = []
    a = L.append
    a("# heapsnap benchmark results")
    a("")
    a("This file is written by `bench/run.py` (issue 5). To regenerate it on an idle machine:")
    a("")
    a("```sh")
    a("bench/run.py   # ~20 min of runs on 2 cores, after up to 15 min waiting for an idle machine")
    a("```")
    a("")
    a("`bench/run.py --quick` is a smoke test (small inputs, one run, report in `build/bench/`); "
      "`--overhead` or `--scaling` run one half; `--runs`, `--workloads` and `--tools` narrow it "
      "(`bench/run.py --help`). Every run's raw numbers are in `build/bench/results.json`.")
    a("")
    a("## Machine and run")
    a("")
    a("| | |")
    a("|---|---|")
    a("| date | %s |" % results["date"])
    a("| CPU | %s, %d cores |" % (m["cpu"], m["cores"]))
    a("| memory | %s |" % m["memory"])
    a("| kernel | %s |" % m["kernel"])
    a("| OS | %s (debian_version %s) |" % (m["os"], m["debian"]))
    a("| heapsnap measured | %s; libheapsnap.so sha256 %s…%s |" % (
        results["measured"], results["lib_start"],
        "" if results.get("lib_end") == results["lib_start"] else
        " **(changed during the run: %s…)**" % results.get("lib_end")))
    for k, v in m["versions"].items():
        a("| %s | %s |" % (k, v))
    ld = results["load"]
    a("| load average (1, 5, 15 min) | %s at start%s; %s at the end |" % (
        "%.2f %.2f %.2f" % tuple(ld["start"]),
        "" if ld["waited_s"] < 1 else " (%.2f %.2f %.2f before waiting %.0f s)" % (
            tuple(ld["first"]) + (ld["waited_s"],)),
        "%.2f %.2f %.2f" % tuple(ld["end"])))
    if results.get("overhead"):
        a("| 1-min load average before each workload | %s |" % ", ".join(
            "%s %.2f" % (w, e["load_before"][0]) for w, e in results["overhead"].items()))
    a("| command | `%s` |" % results.get("command", " ".join(["bench/run.py"] + sys.argv[1:])))
    a("| duration | %.1f min |" % (results["duration_s"] / 60))
    for u in results.get("updates", []):
        a("| %s measured again | %s by `%s`, %.1f min; load average %.2f %.2f %.2f at start, "
          "%.2f %.2f %.2f at the end; same libheapsnap.so%s |" % (
              u["part"], u["date"], u["command"], u["duration_s"] / 60,
              *u["load"]["start"], *u["load"]["end"],
              "" if u["lib_end"] == results["lib_start"] else " **until it changed**"))
    a("")
    a("## How it is measured")
    a("")
    a("- Each (workload, tool) is run %d time%s%s, interleaved run by run (untraced, heapsnap…, "
      "heaptrack, untraced, …). Tables show medians. A ratio is taken run by run against the "
      "untraced run of the same round, and the median of those ratios is shown." % (
          args.runs, "s" if args.runs > 1 else "",
          "" if args.no_warmup else " after one warm-up round"))
    a("- Tools: *heapsnapN* is traceback limit N with the final snapshot written; "
      "*heapsnap16-nosnap* is limit 16 without a final snapshot, which separates the cost of "
      "the allocation path from the cost of the snapshot at exit.")
    a("- **CPU** = user + sys of every process of the run: the harness is a child subreaper, "
      "waits for every process (orphans included), and takes the `RUSAGE_CHILDREN` delta "
      "(`wait4` folds a child's waited-for descendants into it).")
    a("- **Peak RSS** = the largest sum of `VmRSS` over the whole process tree, sampled from "
      "`/proc` every 20 ms. **ru_maxrss** is the largest single process, for reference.")
    a("- heapsnap runs preload `build/bench/hs/libheapsnap.so` (a copy of the build measured, see "
      "above) with `HEAPSNAP_FRAMES=N` and write a final snapshot to `HEAPSNAP_OUTPUT` (its cost "
      "is included). heaptrack runs are `heaptrack -o "
      "FILE PROG ARGS`: its shell script, the program, `heaptrack_interpret` and the compressor "
      "are all counted.")
    a("- Wall time is from spawn to the last process reaped; the machine is shared, so CPU time is "
      "the steadier figure.")
    a("")

    if results["args"].get("quick"):
        a("**`--quick` run:** the inputs are small, so start-up costs (heaptrack's interpreter "
          "above all) dominate the ratios and the verdicts below mean nothing.")
        a("")
    tg = targets(results)
    if tg:
        a("## Targets (issue 5, item 4)")
        a("")
        a("| target | measured | verdict |")
        a("|---|---|---|")
        for t in tg:
            a("| %s | %s | %s |" % t)
        a("")

    ov = results.get("overhead", {})
    if ov:
        a("## Overhead")
        a("")
        a("Medians; × = median of the run-by-run ratios to untraced, with the smallest and largest "
          "of those ratios for CPU. ns/op is the microbenchmark's own timing of its loop (per pair "
          "or step, per thread); the microbenchmarks' untraced runs are so short that their "
          "ratios mostly measure process start and exit, so ns/op is the figure to compare "
          "there. *snapshot* is the size of the final snapshot file.")
        a("")
        a("| workload | tool | wall | wall × | CPU | CPU × | peak RSS Σ | RSS × | ru_maxrss | "
          "ns/op | snapshot |")
        a("|---|---|---|---|---|---|---|---|---|---|---|")
        for w, entry in ov.items():
            s = summarize_overhead(entry)
            for t in entry["runs"]:
                if t not in s:
                    continue
                x = s[t]
                rng = x["cpu_x_range"]
                a("| %s | %s | %s s | %s | %s s | %s | %s MiB | %s | %s MiB | %s | %s |" % (
                    w, t, fx(x["wall"]), fr(x["wall_x"]), fx(x["cpu"]),
                    fr(x["cpu_x"]) + (" (%.2f–%.2f)" % rng if rng and t != "untraced" and
                                      x["n"] > 1 else ""),
                    fx(x["rss"], 0), fr(x["rss_x"]), fx(x["maxrss"], 0),
                    fx(x["ns_op"], 0) if x["ns_op"] is not None else "",
                    fbytes(x["snap"]) if x["snap"] else ""))
        a("")
        a("Summary in the issue's layout. *final snapshot* = CPU of heapsnap16 − CPU of "
          "heapsnap16-nosnap (medians): the cost of writing the snapshot at exit, mostly "
          "symbolization.")
        a("")
        a("| workload | untraced wall | untraced CPU | heapsnap16 CPU × | without final snapshot "
          "CPU × | final snapshot | heaptrack wall × | heaptrack CPU × | heaptrack peak RSS "
          "(untraced) | heapsnap16 peak RSS |")
        a("|---|---|---|---|---|---|---|---|---|---|")
        for w, entry in ov.items():
            s = summarize_overhead(entry)
            u, h, k = s.get("untraced"), s.get("heapsnap16"), s.get("heaptrack")
            ns = s.get("heapsnap16-nosnap")
            if not u:
                continue
            a("| %s | %s s | %s s | %s | %s | %s | %s | %s | %s | %s |" % (
                w, fx(u["wall"]), fx(u["cpu"]), fr(h and h["cpu_x"]), fr(ns and ns["cpu_x"]),
                ("%s s CPU" % fx(h["cpu"] - ns["cpu"])) if h and ns else "–",
                fr(k and k["wall_x"]), fr(k and k["cpu_x"]),
                ("%s MiB (%s)" % (fx(k["rss"], 0), fx(u["rss"], 0))) if k else "–",
                ("%s MiB" % fx(h["rss"], 0)) if h else "–"))
        a("")
        # heaptrack's processes
        rows = []
        for w, entry in ov.items():
            runs = entry["runs"].get("heaptrack") or []
            if not runs:
                continue
            comms = {}
            for r in runs:
                per = {}
                for p in r["procs"]:
                    name = {"heaptrack_inter": "heaptrack_interpret"}.get(p["comm"], p["comm"])
                    c = per.setdefault(name, [0.0, 0])
                    c[0] += p["cpu"]
                    c[1] = max(c[1], p["rss_max_kb"])
                for c, v in per.items():
                    comms.setdefault(c, []).append(v)
            total = med([r["cpu"] for r in runs])
            seen = sum(med([v[0] for v in vs]) for vs in comms.values())
            rows.append((w, ", ".join("%s %s s / %s MiB" % (
                c, fx(med([v[0] for v in vs])), fx(med([v[1] for v in vs]) / 1024, 0))
                for c, vs in sorted(comms.items(), key=lambda kv: -med([v[0] for v in kv[1]]))),
                fx(seen), fx(total), str(sum(r["orphans"] for r in runs))))
        if rows:
            a("### heaptrack's processes")
            a("")
            a("What `/proc` showed of each process of a heaptrack run (median CPU last seen, in "
              "steps of 1/%d s, and largest VmRSS), against the CPU counted through "
              "`wait4`/`RUSAGE_CHILDREN`. The counted total is at least the sum seen, so "
              "`heaptrack_interpret` (and the compressor) are included. Orphans: processes "
              "re-parented to the harness and reaped by it." % CLK_TCK)
            a("")
            a("| workload | processes: CPU / peak VmRSS | sum seen in /proc | counted | orphans |")
            a("|---|---|---|---|---|")
            for r in rows:
                a("| %s | %s | %s s | %s s | %s |" % r)
            a("")
        chk = results.get("accounting_check")
        if chk:
            a("Self-check of the accounting, at start: a shell whose child burns 0.3 s of CPU "
              "was counted %.2f s when the shell waits for it, and %.2f s when the shell exits "
              "first and the child is orphaned (%d orphan reaped by the harness)." % (
                  chk["waited"]["cpu"], chk["orphaned"]["cpu"], chk["orphaned"]["orphans"]))
            a("")

    sc = results.get("scaling", {})
    def pair_table(curve, first):
        names = [t.replace("-nosnap", "").replace("heapsnap", "heapsnap limit ")
                 for t in curve["tools"]]
        a("| %s | " % first + " | ".join(names) + " |")
        a("|---|" + "---|" * len(names))
        for row in curve["rows"]:
            a("| %s | " % row["label"] + " | ".join(
                "%s / %s" % (fx(row["cells"][t]["wall_ns"], 0), fx(row["cells"][t]["cpu_ns"], 0))
                for t in curve["tools"]) + " |")
        a("")

    nruns = max(1, min(args.runs, 3))
    if sc.get("depth"):
        d = sc["depth"]
        a("## Scaling: cost per malloc+free pair against stack depth and traceback limit")
        a("")
        a("`%s`: D frames of recursion (plus main and 3 C-runtime frames), then malloc+free "
          "pairs. Each cell is *wall / CPU* in ns per pair: the program's own timing of its loop, "
          "then the CPU time of every process of the run (heaptrack's interpreter included) "
          "divided by the pairs; median of %d. heapsnap runs here write no final snapshot." % (
              shown([rel(MICRO), "depth", "D", d["rows"][0]["argv"][-1]], {}, ""), nruns))
        a("")
        pair_table(d, "stack depth D")
    if sc.get("threads"):
        d = sc["threads"]
        a("## Scaling: threads")
        a("")
        a("`%s`: each of T threads does %s malloc+free pairs of mixed small sizes. Cells as "
          "above: *wall / CPU* ns per pair, wall being per pair of one thread (threads run in "
          "parallel) and CPU per pair of all threads. The last row runs the whole command under "
          "`taskset -c 0` (heaptrack's interpreter too): the threads then take turns on one core "
          "instead of running at the same time." %
          (shown([rel(MICRO), "mixed", "T", d["rows"][0]["argv"][-1]], {}, ""),
           sci(int(d["rows"][0]["argv"][-1]))))
        a("")
        pair_table(d, "threads")

    def snap_table(points, title, intro):
        a("## " + title)
        a("")
        a(intro)
        a("")
        a("| live blocks | stacks | alloc / block | take (first) | dump | take (again) | file | "
          "file B / block | tracer mem | ÷ N | before the blocks | (after − before) / N | top | "
          "diff | leaks (5) |")
        a("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for p in points:
            n = p["blocks"]
            a("| %s | %s | %.0f ns | %s | %s | %s | %s | %.1f | %s | %.1f B | %s | %.1f B | %s | %s "
              "| %s |" % (
                sci(n), sci(p["stacks"]), p["alloc_s"] / n * 1e9, fsec(p["take_cold_s"]),
                fsec(p["dump_s"]), fsec(p["take_warm_s"]), fbytes(p["file_bytes"]),
                p["file_bytes"] / n, fbytes(p["tracer_mem_blocks"]),
                p["tracer_mem_blocks"] / n, fbytes(p["tracer_mem_stacks"]),
                (p["tracer_mem_blocks"] - p["tracer_mem_stacks"]) / n,
                fsec(p["top_s"]), fsec(p["diff_s"]), fsec(p["leaks_s"])))
        a("")

    common = ("`build/bench/snapscale blocks N S 16 DIR` (bench/snapscale.c, linked with "
              "libheapsnap): N live blocks of 16–72 bytes from S distinct call stacks, made by a "
              "tree of ten trampolines. *alloc / block* is the traced malloc through the "
              "trampolines. *take (first)* is the first `hs_take_snapshot` (it loads libdw and "
              "symbolizes), *dump* its `hs_snapshot_dump`, *take (again)* a second take. "
              "*tracer mem* is `hs_get_tracer_memory()` (bytes mapped by the tracer) once "
              "the blocks exist; *before the blocks* is the same once every stack is interned and "
              "before the blocks are allocated: the stack table (16 shards, each with a 1 MiB "
              "record arena mapped at its first stack), the live table at its minimum "
              "(32 shards × 1024 entries × 12 B), the unwinder's rule cache (512 KiB; counted "
              "since 2026-11-25) and the thread's block; *(after − before) / N* is the live table's cost "
              "per block, the figure the memory target is about. *top*, *diff* and "
              "*leaks* are the wall times of `heapsnap top` on that snapshot, `heapsnap diff` of "
              "0.8 N against N blocks, and `heapsnap leaks` over 5 snapshots from 0.8 N to N. "
              "Median of %d run%s%s." % (max(1, min(args.runs, 3)), "s" if min(args.runs, 3) > 1 else "",
                            " (one at 10^7)" if min(args.runs, 3) > 1 else ""))
    if sc.get("blocks"):
        snap_table(sc["blocks"], "Scaling: snapshots against live blocks (100 stacks)", common)
    if sc.get("stacks"):
        snap_table(sc["stacks"], "Scaling: snapshots against distinct stacks (%s live blocks)" %
                   sci(sc["stacks"][0]["blocks"]), "Same program and columns.")
    se = sc.get("series")
    if se:
        a("## leaks over a long series")
        a("")
        a("`build/bench/snapscale series %d %d 100 16 DIR`: %d snapshots of about %s live blocks "
          "(10 %% churn between snapshots over 99 sites, one site leaking), %s on disk in all; "
          "then `heapsnap leaks DIR`." % (se["blocks"], se["snapshots"], se["snapshots"],
                                           sci(se["blocks"]), fbytes(se["dir_bytes"])))
        a("")
        a("| snapshots | blocks each | take + dump, all | `leaks` wall | `leaks` CPU | `leaks` "
          "peak RSS |")
        a("|---|---|---|---|---|---|")
        a("| %d | %s | %s | %s | %s | %s MiB |" % (
            se["snapshots"], sci(se["blocks"]), fsec(se["take_total_s"] + se["dump_total_s"]),
            fsec(se["leaks_s"]), fsec(se["leaks_cpu_s"]), fx(se["leaks_rss_kb"] / 1024, 0)))
        a("")

    if ov:
        a("## Commands")
        a("")
        a("Run from the top of the repository; `$TMP` is a fresh folder per run. The inputs are "
          "generated under `build/bench/inputs/` by `bench/run.py`.")
        a("")
        a("```sh")
        for w, entry in ov.items():
            a("# %s: %s" % (w, entry["desc"]))
            for t, c in entry["commands"].items():
                a(c)
        a("```")
        a("")
    # Sections other tools write (bench/python_overhead.py's table) are kept from the old file.
    kept = ""
    try:
        with open(path) as f:
            text = f.read()
        i = text.find(KEPT_SECTIONS)
        if i >= 0:
            kept = "\n" + text[i:]
    except OSError:
        pass
    with open(path, "w") as f:
        f.write("\n".join(L) + kept)
    return path


KEPT_SECTIONS = "## Python: heapsnap against tracemalloc"


RESULTS_JSON = [os.path.join(OUT, "results.json")]


def save(results):
    with open(RESULTS_JSON[0], "w") as f:
        json.dump(results, f, indent=1, default=str)


# ---- main ----------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="workloads: %s\ntools: untraced, heapsnapN (traceback limit N, "
                                        "final snapshot written), heapsnapN-nosnap (no final "
                                        "snapshot), heaptrack" % ", ".join(ALL_WORKLOADS))
    ap.add_argument("--quick", action="store_true", help="small inputs, 1 run, no warm-up")
    ap.add_argument("--runs", type=int, help="measured runs per (workload, tool) (default 5)")
    ap.add_argument("--workloads", help="comma-separated (default: all)")
    ap.add_argument("--tools", help="comma-separated (default: %s)" % ",".join(DEFAULT_TOOLS))
    ap.add_argument("--overhead", action="store_true", help="only the overhead tables")
    ap.add_argument("--scaling", action="store_true", help="only the scaling curves")
    ap.add_argument("--no-warmup", action="store_true", help="skip the warm-up round")
    ap.add_argument("--rev", help="measure this git revision (built from `git archive` in "
                                  "build/bench/) instead of the working tree")
    ap.add_argument("--max-load", type=float, default=0.5,
                    help="wait while the 1-minute load average is above this (default 0.5)")
    ap.add_argument("--wait-minutes", type=float, default=None,
                    help="longest wait for --max-load (default 15; 0 with --quick)")
    ap.add_argument("--update", action="store_true",
                    help="with --overhead or --scaling: measure that part again, replace it in "
                         "the last complete run's build/bench/results.json (same build only) and "
                         "rewrite bench/RESULTS.md")
    ap.add_argument("-o", "--output", help="the report (default bench/RESULTS.md for a complete "
                                           "run, else build/bench/RESULTS-partial.md)")
    args = ap.parse_args()
    if args.update and (args.quick or args.overhead == args.scaling or args.workloads or
                        args.tools or (args.runs or 5) < 5):
        ap.error("--update takes one of --overhead and --scaling, and the default workloads, "
                 "tools and runs")
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    if args.quick:
        args.no_warmup = True
    args.workloads = args.workloads.split(",") if args.workloads else list(ALL_WORKLOADS)
    args.tools = args.tools.split(",") if args.tools else list(DEFAULT_TOOLS)
    for w in args.workloads:
        if w not in ALL_WORKLOADS:
            ap.error("unknown workload %s" % w)
    for t in args.tools:
        if not valid_tool(t):
            ap.error("unknown tool %s" % t)
    do_overhead = not args.scaling or args.overhead
    do_scaling = not args.overhead or args.scaling
    complete = (not args.quick and do_overhead and do_scaling and args.runs >= 5 and
                args.workloads == ALL_WORKLOADS and args.tools == DEFAULT_TOOLS)
    complete = complete or args.update
    output = args.output or (os.path.join(BENCH, "RESULTS.md") if complete else
                             os.path.join(OUT, "RESULTS-quick.md" if args.quick
                                          else "RESULTS-partial.md"))
    RESULTS_JSON[0] = os.path.join(OUT, "results.json" if complete else "results-quick.json"
                                   if args.quick else "results-partial.json")
    command = " ".join(["bench/run.py"] + sys.argv[1:])
    if args.wait_minutes is None:
        args.wait_minutes = 0 if args.quick else 15

    ensure_packages()
    measured = build(args.rev)
    set_subreaper()
    os.makedirs(os.path.join(OUT, "tmp"), exist_ok=True)
    sz = Sizes(args.quick)
    for w in args.workloads:                   # inputs before the load check
        workloads(sz)[w][4]()

    old = None
    if args.update:
        try:
            with open(RESULTS_JSON[0]) as f:
                old = json.load(f)
        except (OSError, ValueError):
            raise SystemExit("--update: no complete run in %s" % rel(RESULTS_JSON[0]))
        if not (old.get("overhead") and old.get("scaling")):
            raise SystemExit("--update: %s is not a complete run" % rel(RESULTS_JSON[0]))
        if "command" not in old:
            old["command"] = "bench/run.py" + (" --rev " + old["args"]["rev"]
                                               if old["args"].get("rev") else "")
        if old.get("lib_start") != lib_digest():
            raise SystemExit("--update: libheapsnap.so differs from the one measured in %s; "
                             "run the whole suite" % rel(RESULTS_JSON[0]))

    first, start, waited = wait_for_idle(args.max_load, args.wait_minutes)
    log("load average %.2f %.2f %.2f" % start)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results = dict(date=now, machine=machine_info(), args=vars(args), command=command,
                   load=dict(first=first, start=start, waited_s=waited), lib_start=lib_digest(),
                   measured=measured)
    results["accounting_check"] = accounting_check()
    log("accounting check: %s" % json.dumps(results["accounting_check"]))
    t0 = time.monotonic()
    if do_overhead:
        overhead(args, sz, results)
    if do_scaling:
        scaling(args, sz, results)
    results["duration_s"] = time.monotonic() - t0
    results["load"]["end"] = os.getloadavg()
    results["lib_end"] = lib_digest()
    if results["lib_end"] != results["lib_start"]:
        log("WARNING: build/libheapsnap.so changed during the run")
    if old is not None:
        part = "overhead" if do_overhead else "scaling"
        old[part] = results[part]
        old.setdefault("updates", []).append(dict(
            part=part, date=now, command=command, load=results["load"],
            duration_s=results["duration_s"], lib_end=results["lib_end"]))
        results = old
        args = argparse.Namespace(**old["args"])
    save(results)
    path = report(args, results, output)
    log("report: %s" % rel(path))
    for t in targets(results):
        log("target: %s: %s -> %s" % t)


if __name__ == "__main__":
    main()
