#!/usr/bin/python3
"""agree.py - heapsnap's final snapshot against valgrind memcheck's "in use at exit", on real
programs, byte for byte.  Standard library only; run it with /usr/bin/python3 (or agree.sh).

For each workload it runs the program twice, with the same argv, cwd, standard input, seeds and
environment:
  (a) `build/heapsnap run -q -o DIR -- PROG ARGS`, and reads the live bytes and blocks of
      DIR/<pid>/<seq>-final.hsnap with `heapsnap info`;
  (b) `valgrind --run-libc-freeres=no --run-cxx-freeres=no --leak-check=full
      --show-leak-kinds=all PROG ARGS`, and reads "in use at exit: B bytes in N blocks";
and prints one table row: heapsnap | valgrind | difference | verdict.

A difference is never just reported.  When a workload differs, the known causes (docs/AGREEMENT.md)
are measured on that workload, each by an experiment of its own, and the verdict is
  agree      the numbers are equal, bytes and blocks;
  explained  the difference equals, to the byte and the block, the sum of the measured causes;
  DIFFERS    anything else (the exit status is then 1).
The causes and how each is measured:
  exit-list    heapsnap's final snapshot runs inside glibc's exit-handler walk, before glibc frees
               the calloc'd blocks (1040 bytes, 32 handlers each) that hold the handlers that
               shared-library constructors registered before main.  Measured as final - late,
               where late is a snapshot taken by the first-registered exit handler (the
               late_snapshot.so instrument in this folder), which runs after those frees.
  tracer-libs  libheapsnap.so's dependencies (libunwind, liblzma, libgcc_s) are in the process:
               libunwind's TLS segment makes every thread's DTV 16 bytes bigger, and a dlopen of a
               library already loaded allocates no link map.  Measured by running valgrind again
               with those libraries preloaded by their DT_NEEDED names: valgrind(with them) -
               valgrind.
  sigaltstack  valgrind's synthesized auxiliary vector has no AT_MINSIGSTKSZ, so
               sysconf(_SC_SIGSTKSZ) is smaller under valgrind than natively; a program that sizes
               a buffer by it (LLVM's alternate signal stack: 64 KiB + MINSIGSTKSZ) allocates less
               there.  Measured as (native - valgrind sysconf) x the blocks of that size.
The environment: by default (--env same) both runs give the program the same variables with
values of the same lengths: heapsnap's run also gets the variables the valgrind wrapper adds
(LD_LIBRARY_PATH, GLIBCXX_FORCE_NEW, GLIBCPP_FORCE_NEW), valgrind's run gets whatever heapsnap's
run leaves in the program's environment (measured with env(1) under `heapsnap run`; the tracer
hides its HEAPSNAP_* variables when children are not followed, so usually none) with values of
the same lengths, and LD_PRELOAD is padded with blanks (which the loader skips) to the same
length.  --env plain gives each tool its own
environment; --env both runs both and prints what the environment alone changes.

Usage: agree.sh [--quick] [--only NAME,...] [--env same|plain|both] [--explain] [--json FILE]
                [--workdir DIR] [--build DIR] [--no-make] [--no-heaptrack] [--list]
"""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VG_OPTS = ["--run-libc-freeres=no", "--run-cxx-freeres=no"]
LEAK_OPTS = ["--leak-check=full", "--show-leak-kinds=all", "--num-callers=30"]
DTV_ENTRY = 16                      # sizeof(dtv_t) on x86-64: one more TLS module, 16 more bytes
EXIT_LIST_BLOCK = 1040              # sizeof(struct exit_function_list): 16 + 32 x 32
ALT_STACK_BASE = 64 * 1024          # LLVM: AltStackSize = MINSIGSTKSZ + 64 KiB


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("timeout", 900)
    return subprocess.run([str(c) for c in cmd], **kw)


# ---- workloads ---------------------------------------------------------------------------------

class Workload:
    def __init__(self, name, argv, *, quick=False, stdin=None, env=None, setup=None, needs=(),
                 causes=(), title=None, build=()):
        self.name, self.argv, self.quick, self.stdin = name, argv, quick, stdin
        self.env = env or {}
        self.setup = setup
        self.needs = needs            # (command, Debian package)
        self.causes = causes          # workload-specific causes beyond the generic ones
        self.title = title or name
        self.build = build            # make targets (relative to the build) it needs


def gen_json(cwd, n):
    """A JSON file of n items from a fixed linear congruential sequence (no randomness)."""
    x = 12345
    items = []
    for i in range(n):
        x = (x * 1103515245 + 12345) % 2**31
        items.append({"id": i, "name": f"item{i}", "group": "abcdefg"[x % 7],
                      "tags": ["t%d" % ((x >> s) % 13) for s in (3, 7, 11)],
                      "score": (x % 10000) / 100.0, "active": x % 3 == 0})
    (cwd / "data.json").write_text(json.dumps({"version": 1, "items": items}, indent=1))


JQ_PROGRAM = ('[.items[] | select(.active) | {id, name, group, t: (.tags | join(","))}] '
              '| group_by(.group) | map({group: .[0].group, n: length, '
              'ids: (map(.id) | .[0:5])}) | sort_by(-.n)')

SQL = """\
CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER REFERENCES customer(id),
                    amount REAL, placed TEXT);
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 500)
INSERT INTO customer SELECT x, 'customer ' || x, 'city ' || (x % 17) FROM n;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3000)
INSERT INTO orders SELECT x, 1 + (x * 7919) % 500, (x * 31) % 1000 / 10.0,
                          date('2020-01-01', '+' || (x % 365) || ' days') FROM n;
INSERT INTO customer(name, city) VALUES ('late', 'nowhere');
CREATE INDEX orders_customer ON orders(customer);
CREATE INDEX customer_city ON customer(city);
SELECT count(*), sum(amount), max(placed) FROM orders;
SELECT c.city, count(o.id), round(avg(o.amount), 2) FROM customer c JOIN orders o
  ON o.customer = c.id GROUP BY c.city ORDER BY 2 DESC LIMIT 5;
SELECT name FROM customer WHERE id IN (SELECT customer FROM orders WHERE amount > 99)
  ORDER BY name LIMIT 3;
UPDATE orders SET amount = amount * 1.1 WHERE placed < '2020-02-01';
DELETE FROM orders WHERE amount < 1;
SELECT count(*), printf('%.2f', sum(amount)) FROM orders;
"""

PYTHON_SCRIPT = """\
import collections, json, re
counts = collections.Counter()
for i in range(3000):
    counts["k%d" % (i % 97)] += i
text = json.dumps(sorted(counts.items()))
words = re.findall(r"k(\\d+)", text)
print(len(text), len(words), sum(map(int, words)))
"""

PYTHON_LZMA_SCRIPT = """\
import json, lzma, zlib
data = json.dumps(list(range(2000))).encode()
packed = lzma.compress(data)
print(len(packed), len(zlib.compress(data)), lzma.decompress(packed) == data)
"""

SHELL_SCRIPT = """\
# dash: variables, a function, a loop, a here-document, command substitution; ends with exit,
# which dash carries out with _exit.
greet() { printf '%s, %s\\n' "$1" "$2"; }
total=0
for i in 1 2 3 4 5 6 7 8 9 10; do
    total=$((total + i))
    name="n$i"
done
greet hello "$name"
words=$(echo one two three)
set -- $words
cat <<EOT
total=$total args=$# last=$3
EOT
exit 0
"""


def setup_text(filename, text):
    def setup(cwd, ctx):
        (cwd / filename).write_text(text)
    return setup


def setup_git(cwd, ctx):
    env = dict(ctx.base_env(cwd), GIT_AUTHOR_NAME="A U Thor", GIT_AUTHOR_EMAIL="a@example.com",
               GIT_COMMITTER_NAME="A U Thor", GIT_COMMITTER_EMAIL="a@example.com",
               GIT_CONFIG_NOSYSTEM="1")
    repo = cwd / "repo"
    repo.mkdir()
    def git(*args, **kw):
        r = run(["git", *args], cwd=repo, env=kw.pop("env", env))
        if r.returncode != 0:
            raise RuntimeError("git %s: %s" % (" ".join(args), r.stderr.decode()))
    git("init", "-q", "-b", "main", ".")
    for i in range(1, 9):
        with open(repo / "notes.txt", "a") as f:
            f.write("line %d\n" % i)
        (repo / ("file%d.txt" % (i % 3))).write_text("content %d\n" % i * i)
        git("add", "-A")
        date = "2020-01-%02dT12:00:00Z" % i
        git("commit", "-q", "-m", "commit %d\n\nbody of commit %d" % (i, i),
            env=dict(env, GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date))


def setup_exitlist(cwd, ctx):
    cc = ["cc", "-O1", "-g", "-Wall", "-Wextra", "-Werror"]
    r1 = run([*cc, "-fPIC", "-shared", "-o", cwd / "libexitlist.so", HERE / "exitlist_lib.c"])
    r2 = run([*cc, "-o", cwd / "exitlist", HERE / "exitlist_main.c", "-L", cwd, "-lexitlist",
              "-Wl,-rpath," + str(cwd)])
    for r in (r1, r2):
        if r.returncode != 0:
            raise RuntimeError(r.stderr.decode())


def setup_c(exe, source, *libs):
    def setup(cwd, ctx):
        r = run(["cc", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-o", cwd / exe, HERE / source,
                 *libs])
        if r.returncode != 0:
            raise RuntimeError(r.stderr.decode())
    return setup


def workloads(build):
    progs, examples = build / "progs", ROOT / "examples" / "build"
    return [
        Workload("leaky", [progs / "leaky"], quick=True, build=["progs/leaky"],
                 title="build/progs/leaky"),
        Workload("leak_cxx", [progs / "leak_cxx", "20", "0"], quick=True,
                 build=["progs/leak_cxx"], title="build/progs/leak_cxx 20 0"),
        Workload("leak_threads", [progs / "leak_threads", "20", "0"], quick=True,
                 build=["progs/leak_threads"], title="build/progs/leak_threads 20 0"),
        Workload("service", [examples / "service", "50", "0"], quick=True, build=["service"],
                 title="examples/build/service 50 0"),
        Workload("exitlist", ["./exitlist"], quick=True, setup=setup_exitlist,
                 needs=[("cc", "build-essential")],
                 title="exitlist (100 atexit in a library constructor)"),
        Workload("pthread_exit", ["./pthread_exit"], quick=True,
                 setup=setup_c("pthread_exit", "pthread_exit.c", "-lpthread"),
                 needs=[("cc", "build-essential")],
                 title="pthread_exit (a thread ends with pthread_exit)"),
        Workload("dash", ["/bin/sh", "script.sh"], quick=True,
                 setup=setup_text("script.sh", SHELL_SCRIPT), needs=[("sh", "dash")],
                 title="/bin/sh (dash) script.sh"),
        Workload("sqlite3", ["sqlite3", ":memory:"], quick=True, stdin="script.sql",
                 setup=setup_text("script.sql", SQL), needs=[("sqlite3", "sqlite3")],
                 title="sqlite3 :memory: < script.sql"),
        Workload("jq-small", ["jq", "-c", JQ_PROGRAM, "data.json"], quick=True,
                 setup=lambda cwd, ctx: gen_json(cwd, 200), needs=[("jq", "jq")],
                 title="jq (200 items)"),
        Workload("jq", ["jq", "-c", JQ_PROGRAM, "data.json"],
                 setup=lambda cwd, ctx: gen_json(cwd, 20000), needs=[("jq", "jq")],
                 title="jq (20000 items)"),
        Workload("python3", ["/usr/bin/python3", "script.py"], env={"PYTHONHASHSEED": "0"},
                 setup=setup_text("script.py", PYTHON_SCRIPT), needs=[("/usr/bin/python3",
                                                                       "python3")],
                 title="python3 script.py (json, re)"),
        Workload("python3-lzma", ["/usr/bin/python3", "script.py"], env={"PYTHONHASHSEED": "0"},
                 setup=setup_text("script.py", PYTHON_LZMA_SCRIPT),
                 needs=[("/usr/bin/python3", "python3")],
                 title="python3 script.py (lzma, zlib)"),
        Workload("git-log", ["git", "-C", "repo", "log", "--stat"], setup=setup_git,
                 env={"GIT_CONFIG_NOSYSTEM": "1"}, needs=[("git", "git")],
                 title="git log --stat (8 commits)"),
        Workload("clang++", ["clang++", "-O1", "-c", HERE / "stl_heavy.cc", "-o", "stl_heavy.o"],
                 needs=[("clang++", "clang")], causes=["sigaltstack"],
                 title="clang++ -O1 -c stl_heavy.cc"),
    ]


# ---- results of one run ------------------------------------------------------------------------

def hs_totals(heapsnap, snap):
    r = run([heapsnap, "info", snap])
    out = r.stdout.decode()
    b = re.search(r"^live blocks size .*\((\d+) bytes\)", out, re.M)
    n = re.search(r"^live blocks\s+(\d+)\s*$", out, re.M)
    if r.returncode != 0 or not b or not n:
        raise RuntimeError("heapsnap info %s: %s" % (snap, r.stderr.decode() or out))
    return int(b.group(1)), int(n.group(1))


def vg_totals(logfile):
    text = Path(logfile).read_text(errors="replace")
    m = re.search(r"in use at exit: ([\d,]+) bytes in ([\d,]+) blocks", text)
    if not m:
        raise RuntimeError("no HEAP SUMMARY in %s" % logfile)
    return int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))


def vg_records(logfile):
    """valgrind's loss records: [(bytes, blocks, [function, ...])], direct bytes only."""
    recs, cur = [], None
    head = re.compile(r"^==\d+== ([\d,]+)(?: \(([\d,]+) direct, [\d,]+ indirect\))? bytes in "
                      r"([\d,]+) blocks are .* in loss record")
    frame = re.compile(r"^==\d+==    (?:at|by) 0x[0-9A-F]+: (.*)$")
    for line in Path(logfile).read_text(errors="replace").splitlines():
        m = head.match(line)
        if m:
            cur = (int((m.group(2) or m.group(1)).replace(",", "")),
                   int(m.group(3).replace(",", "")), [])
            recs.append(cur)
            continue
        f = frame.match(line)
        if f and cur is not None:
            cur[2].append(f.group(1))
        elif cur is not None and re.match(r"^==\d+== ?$", line):
            cur = None
    return recs


def hs_blocks(heapsnap, snap):
    """Every live block of a snapshot: [(size, [function (object), ...])], allocation site first."""
    r = run([heapsnap, "export", snap, "--format", "json"])
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode())
    doc = json.loads(r.stdout)
    tbs = doc["tracebacks"]
    out = []
    for t in doc["traces"]:
        frames = tbs[t["traceback_index"]]["frames"] if t.get("traceback_index") is not None \
            else []
        out.append((t["size"], ["%s (%s)" % (f["function"] or "?", os.path.basename(
            f["object"]) or "?") for f in frames]))
    return out


def vg_trace_blocks(logfile):
    """Live blocks at exit from valgrind --trace-malloc=yes: {address: size}."""
    live = {}
    call = re.compile(r"(\w+)\(([^()]*)\)")
    for line in Path(logfile).read_text(errors="replace").splitlines():
        m = re.match(r"^--\d+-- (.*)$", line)
        if not m:
            continue
        body = m.group(1)
        res = re.search(r" = 0x([0-9A-Fa-f]+)\s*$", body)
        calls = call.findall(body)
        if not calls:
            continue
        name, args = calls[0]
        if name == "realloc":
            old = args.split(",")[0]
            if old not in ("0x0", "(nil)"):
                live.pop(int(old, 16), None)
            if res:
                live[int(res.group(1), 16)] = int(args.split(",")[1])
            continue
        if res:
            if name == "calloc":
                a, b = (int(x) for x in args.split(","))
                size = a * b
            elif name == "memalign":
                size = int(re.search(r"size (\d+)", args).group(1))
            else:
                size = int(re.match(r"\s*(\d+)", args).group(1))
            live[int(res.group(1), 16)] = size
        elif re.fullmatch(r"0x[0-9A-Fa-f]+", args.strip()):
            live.pop(int(args, 16), None)
    return live


# ---- the session --------------------------------------------------------------------------------

class Session:
    def __init__(self, args):
        self.args = args
        self.build = Path(args.build).resolve()
        self.heapsnap = self.build / "heapsnap"
        self.lib = self.build / "libheapsnap.so"
        self.work = Path(args.workdir).resolve()
        self.valgrind = shutil.which("valgrind")
        self.env_mode = "same"

    # The environment every run starts from; cwd is the workload's folder.
    def base_env(self, cwd):
        return {"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "TZ": "UTC",
                "HOME": str(self.work / "home"), "PWD": str(cwd)}

    def instruments(self):
        """late_snapshot.so and sigstksz, built here from this folder's sources."""
        inst = self.work / "instruments"
        inst.mkdir(parents=True, exist_ok=True)
        self.late = inst / "late_snapshot.so"
        self.sigstksz_bin = inst / "sigstksz"
        for cmd in (["cc", "-O1", "-Wall", "-Wextra", "-fPIC", "-shared", "-o", self.late,
                     HERE / "late_snapshot.c", "-ldl"],
                    ["cc", "-O1", "-Wall", "-o", self.sigstksz_bin, HERE / "sigstksz.c"]):
            r = run(cmd)
            if r.returncode != 0:
                raise RuntimeError(r.stderr.decode())
        # libheapsnap.so's own dependencies (not libc, ld.so, vdso): their names as DT_NEEDED
        # gives them (the loader then records the same names as when it loads them for
        # libheapsnap.so; a full path would make a later dlopen by name add an alias, 38 bytes),
        # and their paths.
        r = run(["ldd", self.lib])
        found = [(m.group(1), m.group(2)) for m in re.finditer(r"^\s*(\S+) => (/\S+)",
                                                               r.stdout.decode(), re.M)
                 if not re.match(r"(libc|ld-linux[^/]*|libdl|libpthread)\.so", m.group(1))]
        self.deps = [name for name, _ in found]
        self.tls_deps = [name for name, path in found if "TLS" in run(
            ["readelf", "-lW", path]).stdout.decode()]

    def probe_env(self):
        """What each tool adds to the program's environment, read with env(1) under each."""
        cwd = self.work / "probe"
        shutil.rmtree(cwd, ignore_errors=True)
        cwd.mkdir(parents=True)
        base = self.base_env(cwd)
        r = run([self.heapsnap, "run", "-q", "-o", cwd / "out", "--", "/usr/bin/env", "-0"],
                cwd=cwd, env=base)
        hs_env = dict(kv.split("=", 1) for kv in r.stdout.decode().split("\0") if "=" in kv)
        r = run([self.valgrind, "-q", *VG_OPTS, "/usr/bin/env", "-0"], cwd=cwd, env=base)
        vg_env = dict(kv.split("=", 1) for kv in r.stdout.decode().split("\0") if "=" in kv)
        self.hs_added = {k: v for k, v in hs_env.items() if base.get(k) != v}
        self.vg_added = {k: v for k, v in vg_env.items() if base.get(k) != v}
        if "LD_PRELOAD" not in self.vg_added or "LD_PRELOAD" not in self.hs_added:
            raise RuntimeError("cannot read the tools' LD_PRELOAD: %r %r" % (self.hs_added,
                                                                           self.vg_added))
        self.vg_preload = self.vg_added["LD_PRELOAD"]
        # LD_PRELOAD's value gets one length in every run of the session.
        longest_user = max(len(str(self.late)), len(":".join(self.deps)))
        self.preload_len = max(len(str(self.lib)), len(self.vg_preload)) + 1 + longest_user + 1

    def _pad(self, tool_part, user):
        """The user part of LD_PRELOAD that makes tool_part:user preload_len long."""
        if self.env_mode == "plain":
            return user
        return user + " " * (self.preload_len - len(tool_part) - 1 - len(user))

    def env_heapsnap(self, cwd, extra, preload=""):
        env = dict(self.base_env(cwd), **extra)
        if self.env_mode == "same":
            env.update({k: v for k, v in self.vg_added.items() if k != "LD_PRELOAD"})
        pre = self._pad(str(self.lib), preload)
        if pre:
            env["LD_PRELOAD"] = pre
        return env

    def env_valgrind(self, cwd, extra, hs_dir, hs_pid, preload=""):
        env = dict(self.base_env(cwd), **extra)
        if self.env_mode == "same":
            for k, v in self.hs_added.items():
                if k == "LD_PRELOAD":
                    continue
                if k == "HEAPSNAP_DIR":
                    v = str(hs_dir)
                elif k == "HEAPSNAP_PID":
                    v = "9" * len(str(hs_pid))
                env[k] = v
        pre = self._pad(self.vg_preload, preload)
        if pre:
            env["LD_PRELOAD"] = pre
        return env

    def check_same_env(self):
        """The self-check of --env same: env(1) sees the same names and value lengths."""
        cwd = self.work / "probe"
        out = cwd / "check"
        shutil.rmtree(out, ignore_errors=True)
        r = run([self.heapsnap, "run", "-q", "-o", out, "--", "/usr/bin/env", "-0"], cwd=cwd,
                env=self.env_heapsnap(cwd, {}))
        pid = next(p.name for p in out.iterdir() if p.is_dir())
        a = sorted((kv.split("=", 1)[0], len(kv.split("=", 1)[1]))
                   for kv in r.stdout.decode().split("\0") if "=" in kv)
        r = run([self.valgrind, "-q", *VG_OPTS, "/usr/bin/env", "-0"], cwd=cwd,
                env=self.env_valgrind(cwd, {}, out, pid))
        b = sorted((kv.split("=", 1)[0], len(kv.split("=", 1)[1]))
                   for kv in r.stdout.decode().split("\0") if "=" in kv)
        if a != b:
            raise RuntimeError("the environments differ:\n heapsnap %r\n valgrind %r" % (a, b))
        return len(a)

    # ---- one workload ------------------------------------------------------------------------

    def run_heapsnap(self, w, cwd, tag, preload=""):
        out = cwd / ("hs-" + tag)
        shutil.rmtree(out, ignore_errors=True)
        env = self.env_heapsnap(cwd, w.env, preload)
        stdin = open(cwd / w.stdin, "rb") if w.stdin else subprocess.DEVNULL
        t = time.monotonic()
        r = run([self.heapsnap, "run", "-q", "-o", out, "--", *w.argv], cwd=cwd, env=env,
                stdin=stdin)
        secs = time.monotonic() - t
        (cwd / ("hs-" + tag + ".stdout")).write_bytes(r.stdout)
        (cwd / ("hs-" + tag + ".stderr")).write_bytes(r.stderr)
        dirs = [p for p in out.iterdir() if p.is_dir()]
        finals = sorted(dirs[0].glob("*-final.hsnap")) if len(dirs) == 1 else []
        if not finals:
            raise RuntimeError("%s: no final snapshot in %s (exit %d): %s" % (
                w.name, out, r.returncode, r.stderr.decode()[-500:]))
        b, n = hs_totals(self.heapsnap, finals[-1])
        return {"bytes": b, "blocks": n, "snapshot": str(finals[-1]), "pid": int(dirs[0].name),
                "dir": str(out), "exit": r.returncode, "seconds": round(secs, 2),
                "stdout": r.stdout}

    def run_valgrind(self, w, cwd, tag, hs, preload="", trace_malloc=False):
        logbase = cwd / ("vg-" + tag + ".log")
        for old in cwd.glob("vg-" + tag + ".log.*"):
            old.unlink()
        env = self.env_valgrind(cwd, w.env, hs["dir"], hs["pid"], preload)
        stdin = open(cwd / w.stdin, "rb") if w.stdin else subprocess.DEVNULL
        opts = [*VG_OPTS, *LEAK_OPTS] + (["--trace-malloc=yes"] if trace_malloc else [])
        t = time.monotonic()
        p = subprocess.Popen([self.valgrind, *opts, "--log-file=%s.%%p" % logbase,
                              *map(str, w.argv)], cwd=cwd, env=env, stdin=stdin,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout, stderr = p.communicate(timeout=1800)
        secs = time.monotonic() - t
        logfile = Path("%s.%d" % (logbase, p.pid))
        if not logfile.exists():
            raise RuntimeError("%s: valgrind wrote no %s: %s" % (w.name, logfile,
                                                                 stderr.decode()[-500:]))
        b, n = vg_totals(logfile)
        return {"bytes": b, "blocks": n, "log": str(logfile), "exit": p.returncode,
                "seconds": round(secs, 2), "stdout": stdout}

    def run_heaptrack(self, w, cwd):
        out = cwd / "ht"
        for old in cwd.glob("ht.*"):
            old.unlink()
        stdin = open(cwd / w.stdin, "rb") if w.stdin else subprocess.DEVNULL
        r = run(["heaptrack", "-o", out, *w.argv], cwd=cwd, env=dict(self.base_env(cwd),
                                                                       **w.env), stdin=stdin)
        files = sorted(cwd.glob("ht.*"))
        data = [f for f in files if f.suffix in (".zst", ".gz")]
        if r.returncode != 0 and not data:
            return None
        if not data:
            return None
        cat = ["zstdcat"] if data[0].suffix == ".zst" else ["zcat"]
        if shutil.which(cat[0]) is None:
            return None
        raw = run([*cat, data[0]]).stdout.decode(errors="replace")
        # heaptrack's own file: "a SIZE TRACE" defines allocation info i (hex, in order), "+ i"
        # an allocation of it, "- i" a deallocation.  Replayed, it gives every block left.
        sizes, live = [], collections.Counter()
        for line in raw.splitlines():
            if line.startswith("a "):
                sizes.append(int(line.split()[1], 16))
            elif line.startswith("+ "):
                live[int(line.split()[1], 16)] += 1
            elif line.startswith("- "):
                live[int(line.split()[1], 16)] -= 1
        printed = run(["heaptrack_print", "-f", data[0], "-p", "0", "-a", "0", "-T", "0",
                       "-l", "0"]).stdout.decode(errors="replace")
        leaked = re.search(r"total memory leaked: (\S+)", printed)
        suppressed = re.search(r"suppressed leaks: (\S+)", printed)
        return {"bytes": sum(sizes[i] * c for i, c in live.items()),
                "blocks": sum(live.values()),
                "printed_leaked": leaked.group(1) if leaked else None,
                "printed_suppressed": suppressed.group(1) if suppressed else None}

    # ---- causes ------------------------------------------------------------------------------

    def cause_exit_list(self, w, cwd, hs):
        late_run = self.run_heapsnap(w, cwd, "late", preload=str(self.late))
        out = Path("%s.%d" % (self.late, late_run["pid"]))
        if not out.exists():
            # Nothing was registered before main, or no exit handler ran (the program ended
            # with _exit): either way no exit-function list is freed after the final snapshot.
            return {"bytes": 0, "blocks": 0, "how": "no handler registered before main, or "
                    "none ran"}
        lb, ln = map(int, out.read_text().split())
        out.unlink()
        c = {"bytes": hs["bytes"] - lb, "blocks": hs["blocks"] - ln,
             "how": "final %d B / %d - late %d B / %d" % (hs["bytes"], hs["blocks"], lb, ln)}
        if (late_run["bytes"], late_run["blocks"]) != (hs["bytes"], hs["blocks"]):
            c["how"] += "; the instrument changed the run: its final %d B / %d" % (
                late_run["bytes"], late_run["blocks"])
        return c

    def cause_tracer_libs(self, w, cwd, hs, vg):
        with_deps = self.run_valgrind(w, cwd, "deps", hs, preload=":".join(self.deps))
        return {"bytes": with_deps["bytes"] - vg["bytes"],
                "blocks": with_deps["blocks"] - vg["blocks"],
                "how": "valgrind with %s preloaded: %d B / %d, without: %d B / %d" % (
                    ", ".join(os.path.basename(d) for d in self.deps), with_deps["bytes"],
                    with_deps["blocks"], vg["bytes"], vg["blocks"])}

    def sigstksz(self):
        if not hasattr(self, "_sigstksz"):
            native = int(run([self.sigstksz_bin]).stdout)
            under = int(run([self.valgrind, "-q", self.sigstksz_bin]).stdout)
            self._sigstksz = (native, under)
        return self._sigstksz

    def cause_sigaltstack(self, w, cwd, hs, vg):
        native, under = self.sigstksz()
        n_hs = sum(1 for size, _ in hs_blocks(self.heapsnap, hs["snapshot"])
                   if size == ALT_STACK_BASE + native)
        n_vg = sum(blocks for b, blocks, _ in vg_records(vg["log"])
                   if blocks and b == (ALT_STACK_BASE + under) * blocks)
        n = min(n_hs, n_vg)
        return {"bytes": n * (native - under), "blocks": 0,
                "how": "sysconf(_SC_SIGSTKSZ) %d natively, %d under valgrind; %d block(s) of "
                       "64 KiB + it (heapsnap %d, valgrind %d)" % (native, under, n, n_hs, n_vg)}

    # ---- explain: the block lists side by side ------------------------------------------------

    def explain(self, w, cwd, hs):
        vg = self.run_valgrind(w, cwd, "trace", hs, trace_malloc=True)
        vsizes = collections.Counter(vg_trace_blocks(vg["log"]).values())
        blocks = hs_blocks(self.heapsnap, hs["snapshot"])
        hsizes = collections.Counter(size for size, _ in blocks)
        only_hs = hsizes - vsizes
        only_vg = vsizes - hsizes
        lines = ["  block sizes only heapsnap has: %s" % dict(sorted(only_hs.items())),
                 "  block sizes only valgrind has: %s" % dict(sorted(only_vg.items()))]
        shown = collections.Counter()
        for size, frames in blocks:
            if only_hs[size] > shown[size] and shown[size] < 3:
                shown[size] += 1
                lines.append("    heapsnap %d B: %s" % (size, " <- ".join(frames[:6])))
        for b, n, frames in vg_records(vg["log"]):
            if n and b % n == 0 and only_vg[b // n] and b // n not in shown:
                shown[b // n] = 1
                lines.append("    valgrind %d x %d B: %s" % (n, b // n, " <- ".join(
                    re.sub(r" \((?:in )?[^()]*\)$", "", f) for f in frames[:7])))
        return "\n".join(lines)

    def one(self, w):
        cwd = self.work / w.name
        shutil.rmtree(cwd, ignore_errors=True)
        cwd.mkdir(parents=True)
        if w.setup:
            w.setup(cwd, self)
        t0 = time.monotonic()
        hs = self.run_heapsnap(w, cwd, "main")
        vg = self.run_valgrind(w, cwd, "main", hs)
        res = {"name": w.name, "title": w.title, "env": self.env_mode,
               "heapsnap": {k: hs[k] for k in ("bytes", "blocks", "seconds", "exit")},
               "valgrind": {k: vg[k] for k in ("bytes", "blocks", "seconds", "exit")},
               "diff": {"bytes": hs["bytes"] - vg["bytes"], "blocks": hs["blocks"] - vg["blocks"]},
               "causes": {}, "notes": []}
        if hs["stdout"] != vg["stdout"]:
            res["notes"].append("the program's output differs between the two runs")
        if hs["exit"] != vg["exit"]:
            res["notes"].append("exit status %d under heapsnap, %d under valgrind" % (
                hs["exit"], vg["exit"]))
        d = res["diff"]
        if d["bytes"] or d["blocks"]:
            causes = {"exit-list": lambda: self.cause_exit_list(w, cwd, hs),
                      "tracer-libs": lambda: self.cause_tracer_libs(w, cwd, hs, vg)}
            if "sigaltstack" in w.causes:
                causes["sigaltstack"] = lambda: self.cause_sigaltstack(w, cwd, hs, vg)
            for name, measure in causes.items():
                try:
                    c = measure()
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                    res["notes"].append("%s: not measured: %s" % (name, e))
                    continue
                if c["bytes"] or c["blocks"]:
                    res["causes"][name] = c
        if self.args.explain and (d["bytes"] or d["blocks"]):
            res["explain"] = self.explain(w, cwd, hs)
        if self.args.heaptrack and shutil.which("heaptrack"):
            ht = self.run_heaptrack(w, cwd)
            if ht:
                res["heaptrack"] = ht
        sb = sum(c["bytes"] for c in res["causes"].values())
        sn = sum(c["blocks"] for c in res["causes"].values())
        if d["bytes"] == 0 and d["blocks"] == 0:
            res["verdict"] = "agree"
        elif (sb, sn) == (d["bytes"], d["blocks"]):
            res["verdict"] = "explained"
        else:
            res["verdict"] = "DIFFERS"
        res["seconds"] = round(time.monotonic() - t0, 2)
        return res


# ---- set-up: packages, build ----------------------------------------------------------------

def ensure_packages(ws, quiet):
    """Installs, with apt-get, the Debian packages of the workloads' missing commands."""
    missing = sorted({pkg for w in ws for cmd, pkg in w.needs if shutil.which(cmd) is None}
                     | ({"valgrind"} if shutil.which("valgrind") is None else set()))
    if not missing:
        return
    if shutil.which("apt-get") is None:
        log("agree: missing %s, and no apt-get" % " ".join(missing))
        return
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if sudo is None:
        log("agree: missing %s; not root and no sudo" % " ".join(missing))
        return
    log("agree: installing %s" % " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run([*sudo, "apt-get", "update", "-qq"], env=env)
    r = run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            env=env)
    if r.returncode != 0 and not quiet:
        log(r.stderr.decode()[-1000:])


def make(build, ws):
    targets = ["libs", str(build.relative_to(ROOT) / "heapsnap")] if build.parent == ROOT \
        else None
    if targets is None:
        return
    progs = sorted({t for w in ws for t in w.build if t.startswith("progs/")})
    # Called from `make check` too: not as part of that make's job server.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = run(["make", "-s", "-C", ROOT, "-j2", *targets,
             *[str(build.relative_to(ROOT) / t) for t in progs]], env=env)
    if r.returncode != 0:
        raise RuntimeError("make: " + r.stderr.decode()[-2000:])
    if any("service" in w.build for w in ws):
        r = run(["make", "-s", "-C", ROOT / "examples", "build/service"], env=env)
        if r.returncode != 0:
            raise RuntimeError("make -C examples: " + r.stderr.decode()[-2000:])


# ---- output -------------------------------------------------------------------------------

def fmt(x):
    return "%s / %s" % ("{:,}".format(x["bytes"]), "{:,}".format(x["blocks"]))


def fmt_diff(d):
    if d["bytes"] == 0 and d["blocks"] == 0:
        return "0"
    return "%+d B / %+d" % (d["bytes"], d["blocks"])


def table(results, with_heaptrack):
    head = ["workload", "heapsnap bytes / blocks", "valgrind bytes / blocks", "difference",
            "verdict"] + (["heaptrack bytes / blocks"] if with_heaptrack else [])
    rows = []
    for r in results:
        if "skipped" in r:
            rows.append([r["title"], "-", "-", "-", "skipped: " + r["skipped"]] +
                        (["-"] if with_heaptrack else []))
            continue
        verdict = r["verdict"]
        if r["causes"]:
            verdict += ": " + ", ".join("%s %s" % (k, fmt_diff(c)) for k, c in
                                        r["causes"].items())
        row = [r["title"], fmt(r["heapsnap"]), fmt(r["valgrind"]), fmt_diff(r["diff"]), verdict]
        if with_heaptrack:
            row.append(fmt(r["heaptrack"]) if "heaptrack" in r else "-")
        rows.append(row)
    widths = [max(len(str(x[i])) for x in [head] + rows) for i in range(len(head))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the fast CI subset")
    ap.add_argument("--only", help="comma-separated workload names")
    ap.add_argument("--env", choices=["same", "plain", "both"], default="same")
    ap.add_argument("--explain", action="store_true",
                    help="for a difference, also diff the block lists (valgrind --trace-malloc)")
    ap.add_argument("--json", help="write the results there")
    ap.add_argument("--workdir", default=str(ROOT / "build" / "agreement"))
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--no-make", action="store_true")
    ap.add_argument("--no-heaptrack", dest="heaptrack", action="store_false")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.heaptrack = False
    build = Path(args.build).resolve()
    ws = workloads(build)
    if args.list:
        for w in ws:
            print("%-14s %s%s" % (w.name, w.title, "  (quick)" if w.quick else ""))
        return 0
    if args.only:
        names = args.only.split(",")
        unknown = set(names) - {w.name for w in ws}
        if unknown:
            log("agree: unknown workload(s) %s" % ", ".join(sorted(unknown)))
            return 2
        ws = [w for w in ws if w.name in names]
    elif args.quick:
        ws = [w for w in ws if w.quick]
    t0 = time.monotonic()
    ensure_packages(ws, args.quick)
    if not args.no_make:
        make(build, ws)
    s = Session(args)
    if s.valgrind is None:
        log("agree: valgrind is not installed")
        return 2
    s.work.mkdir(parents=True, exist_ok=True)
    (s.work / "home").mkdir(exist_ok=True)
    s.instruments()
    s.probe_env()
    modes = ["same", "plain"] if args.env == "both" else [args.env]
    all_results = {}
    for mode in modes:
        s.env_mode = mode
        if mode == "same":
            n = s.check_same_env()
            log("agree: --env same: the program sees the same %d variables, values of the same "
                "lengths, under both tools" % n)
        results = []
        for w in ws:
            missing = [cmd for cmd, _ in w.needs if shutil.which(cmd) is None]
            if missing:
                results.append({"name": w.name, "title": w.title, "env": mode,
                                "skipped": "missing " + ", ".join(missing)})
                continue
            log("agree: %s (env %s) ..." % (w.name, mode))
            try:
                r = s.one(w)
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                r = {"name": w.name, "title": w.title, "env": mode, "verdict": "DIFFERS",
                     "error": str(e), "heapsnap": {"bytes": 0, "blocks": 0},
                     "valgrind": {"bytes": 0, "blocks": 0}, "diff": {"bytes": 0, "blocks": 0},
                     "causes": {}, "notes": ["error: " + str(e)]}
            results.append(r)
            log("agree:   %s, %.1f s" % (r.get("verdict"), r.get("seconds", 0)))
        all_results[mode] = results
    if args.env == "both":
        # The plain run differs from the same-environment run in the environment only: what is
        # left of its difference after its measured causes, beyond what is left in the same-
        # environment run, is the environment's doing.
        for a, b in zip(all_results["same"], all_results["plain"]):
            if "diff" not in a or "diff" not in b or b.get("error") or a.get("error"):
                continue
            rest = lambda r, k: r["diff"][k] - sum(c[k] for c in r["causes"].values())
            env = {k: rest(b, k) - rest(a, k) for k in ("bytes", "blocks")}
            if env["bytes"] or env["blocks"]:
                env["how"] = "the same run with the same environment for both tools"
                b["causes"]["environment"] = env
                if a["verdict"] != "DIFFERS" and not b["notes"]:
                    b["verdict"] = "explained"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with_ht = any("heaptrack" in r for rs in all_results.values() for r in rs)
    for mode, results in all_results.items():
        print("\nheapsnap final snapshot vs valgrind memcheck \"in use at exit\" (%s, env %s)\n"
              % (when, mode))
        print(table(results, with_ht))
        for r in results:
            for name, c in r.get("causes", {}).items():
                print("  %s: %s %s (%s)" % (r["name"], name, fmt_diff(c), c["how"]))
            for n in r.get("notes", []):
                print("  %s: note: %s" % (r["name"], n))
            if r.get("explain"):
                print("  %s, block lists:\n%s" % (r["name"], r["explain"]))
            if r.get("heaptrack", {}).get("printed_leaked"):
                ht = r["heaptrack"]
                print("  %s: heaptrack_print says total memory leaked %s, suppressed leaks %s"
                      % (r["name"], ht["printed_leaked"], ht["printed_suppressed"]))
    if args.env == "both":
        print("\nWhat the environment alone changes (difference with each tool's own environment"
              " minus difference with the same environment):")
        for a, b in zip(all_results["same"], all_results["plain"]):
            if "diff" in a and "diff" in b:
                print("  %-14s %s" % (a["name"], fmt_diff(
                    {"bytes": b["diff"]["bytes"] - a["diff"]["bytes"],
                     "blocks": b["diff"]["blocks"] - a["diff"]["blocks"]})))
    total = time.monotonic() - t0
    print("\n%d workload run(s) in %.1f s; libheapsnap.so dependencies: %s (TLS: %s)" % (
        sum(len(v) for v in all_results.values()), total,
        ", ".join(os.path.basename(d) for d in s.deps) or "none",
        ", ".join(os.path.basename(d) for d in s.tls_deps) or "none"))
    if args.json:
        for rs in all_results.values():
            for r in rs:
                r.pop("explain", None)
        Path(args.json).write_text(json.dumps({
            "date": when, "seconds": round(total, 1), "env": args.env,
            "deps": s.deps, "tls_deps": s.tls_deps, "sigstksz": list(s.sigstksz()),
            "results": all_results}, indent=1, default=str))
    judged = all_results["same"] if args.env == "both" else all_results[args.env]
    bad = [r["name"] for r in judged if r.get("verdict") == "DIFFERS"]
    if bad:
        print("DIFFERS: %s" % ", ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
