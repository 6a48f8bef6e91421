"""The fast unwinder (src/tracer/unwind_cfi.c) against libunwind.

A check build of the tracer (build/uwcheck/libheapsnap.so, `make check` builds it) walks every
stack twice, with the fast unwinder and with libunwind, and counts the stacks whose frames differ
(src/tracer/unwind_check.h).  Each program here, real ones included, must end with no difference,
and the fast unwinder must have walked nearly all of its stacks itself: a fallback that quietly
took every stack would pass the comparison and lose the speed.  The same goes for the walk memo
(a walk replays the outer frames it shares with the thread's last one): its replays are checked
like any walk, and the tests that count on it assert that it was used."""
import collections
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT, clean_env

CHECK_LIB = BUILD / "uwcheck" / "libheapsnap.so"
PROGS = BUILD / "progs"
REPORT = re.compile(r"heapsnap unwind check: (\d+) stacks, (\d+) differ, (\d+) left to libunwind; "
                    r"memo: (\d+) replays, (\d+) frames replayed, (\d+) walks stepped on after a replay")
Report = collections.namedtuple("Report", "stacks differ slow replays replayed resumed")

pytestmark = pytest.mark.skipif(not CHECK_LIB.exists(), reason="make check builds " + str(CHECK_LIB))


def run_checked(argv, tmp_path, frames=16, timeout=300, stdin=None, cwd=None):
    """Runs argv under the check build; returns the Report of every process."""
    log = tmp_path / "check.log"
    env = clean_env(LD_PRELOAD=CHECK_LIB, HEAPSNAP_FRAMES=frames, HS_UNWIND_CHECK_LOG=log,
                    HEAPSNAP_OUTPUT=tmp_path / "final.hsnap", PYTHONMALLOC="malloc")
    r = subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True,
                       timeout=timeout, stdin=stdin, cwd=cwd)
    text = log.read_text() if log.exists() else ""
    reports = [Report(*map(int, m.groups())) for m in REPORT.finditer(text)]
    assert reports, "no check report (exit %d): %s" % (r.returncode, r.stderr[-2000:])
    for rep in reports:
        assert rep.differ == 0, text[-4000:]
    return r, reports


def total(reports, field):
    return sum(getattr(rep, field) for rep in reports)


def assert_mostly_fast(reports, at_least=0.95):
    stacks, slow = total(reports, "stacks"), total(reports, "slow")
    assert stacks > 0
    assert stacks - slow >= at_least * stacks, "%d of %d stacks left to libunwind" % (slow, stacks)


def assert_memo_used(reports):
    """Some walks replayed frames from the memo (and were checked like the others)."""
    assert total(reports, "replayed") > 0, reports


@pytest.mark.parametrize("prog,args", [
    ("leak_threads", ["20", "0"]),
    ("leak_cxx", ["20", "0"]),
    ("noharm_exc", []),
    ("noharm_threads", []),
    ("noharm_thread", []),
    ("noharm_jmp", []),                      # longjmp out of allocating frames: the memo's stale
    ("noharm_mtfork", []),                   # frames must fail their check; threads that fork
])
def test_test_programs(tmp_path, prog, args):
    _, reports = run_checked([PROGS / prog] + args, tmp_path)
    assert_mostly_fast(reports)


def test_signal_handlers(tmp_path):
    """Handlers that allocate: the signal frame goes to libunwind, and the stacks agree."""
    r, reports = run_checked([PROGS / "noharm_signals"], tmp_path)
    assert total(reports, "stacks") > 0


def test_library_reloaded_at_the_same_address(tmp_path):
    """libswap1 and libswap2 are the same code with other frame sizes, loaded in turn, mostly at the
    same address: rules read from one must be forgotten at dlclose, by the fast unwinder and by
    libunwind (whose unw_backtrace cache did not forget them: stacks stopped early, and the
    program crashed in 7 of 150 runs under load)."""
    r, reports = run_checked([PROGS / "dlswap", PROGS / "libswap1.so", PROGS / "libswap2.so", "20"],
                             tmp_path)
    m = re.search(r"loaded where the last one was (\d+)", r.stdout)
    assert m and int(m.group(1)) >= 5, r.stdout      # else the case is not exercised
    assert total(reports, "stacks") >= 20 * 50
    assert total(reports, "slow") == 0


@pytest.mark.parametrize("frames", [1, 16, 64, 100])
def test_walk_memo(tmp_path, frames):
    """Stacks that share more or less with the one before (tests/progs/walkmemo.c), in three
    threads: whole replays, replays cut short by a return address that differs (two callers of
    the same frame size), memos cut at the limit, frames that move.  Limit 100 walks further than
    a memo holds: no memo, plain walks."""
    r, reports = run_checked([PROGS / "walkmemo", "1500"], tmp_path, frames=frames)
    assert r.returncode == 0 and r.stdout == "done\n"
    assert total(reports, "stacks") >= 3 * 1500 * 7
    assert total(reports, "slow") == 0
    if frames < 100:
        assert_memo_used(reports)
        assert total(reports, "resumed") > 0, reports


def test_makecontext_stacks(tmp_path):
    """Coroutines on makecontext stacks: the outermost frame is glibc's __start_context, entered
    by a made-up return address at its first instruction.  Walked fast (they all went to
    libunwind, 70 times slower per allocation), and the same frames as libunwind's."""
    r, reports = run_checked([PROGS / "contexts", "2000"], tmp_path)
    assert r.returncode == 0 and r.stdout == "done\n"
    assert total(reports, "stacks") >= 2 * 2000
    assert_mostly_fast(reports, at_least=0.99)


def test_boost_context_fibers(tmp_path):
    """boost.context fibers: a fiber's stack ends in make_fcontext's `finish`, which has no
    unwind information in Debian's boost.  Walked fast (they all went to libunwind, about 30
    times slower per allocation), and the same frames as libunwind's."""
    r, reports = run_checked([PROGS / "fibers", "500"], tmp_path)
    assert r.returncode == 0 and r.stdout == "10000 switches, 2000 blocks kept\n"
    assert total(reports, "stacks") >= 500 * 20
    assert_mostly_fast(reports, at_least=0.99)


def real(name):
    path = shutil.which(name)
    if path is None:
        pytest.skip(name + " is not installed")
    return path


def test_python(tmp_path):
    _, reports = run_checked([real("python3"), ROOT / "bench" / "workloads" / "json_dicts.py",
                              "1000", "1"], tmp_path)
    assert_mostly_fast(reports)
    assert_memo_used(reports)


def test_sqlite(tmp_path):
    script = tmp_path / "s.sql"
    script.write_text("CREATE TABLE t(a INTEGER, b TEXT);\n"
                      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000)\n"
                      "INSERT INTO t SELECT x, printf('row %d', x) FROM c;\n"
                      "CREATE INDEX tb ON t(b);\n"
                      "SELECT count(*), sum(length(b)) FROM t GROUP BY a % 7;\n")
    with open(script) as f:
        _, reports = run_checked([real("sqlite3"), ":memory:"], tmp_path, stdin=f)
    assert_mostly_fast(reports)


def test_shell_and_children(tmp_path):
    """dash forks and execs: every process reports, none differs."""
    _, reports = run_checked([real("sh"), "-c", "for i in 1 2 3; do echo $i | cat; done; ls / >/dev/null"],
                             tmp_path)
    assert len(reports) >= 2
    assert_mostly_fast(reports, at_least=0.9)


def test_jq(tmp_path):
    data = tmp_path / "d.json"
    data.write_text("[" + ",".join('{"x": %d, "name": "n%d"}' % (i % 11, i) for i in range(5000)) + "]")
    _, reports = run_checked([real("jq"), "[.[]|select(.x>5)|.name]|length", data], tmp_path)
    assert_mostly_fast(reports)
    assert_memo_used(reports)


@pytest.mark.parametrize("frames", [1, 64])
def test_clang(tmp_path, frames):
    """A C++ compiler: deep stacks through one big library (libclang-cpp)."""
    src = tmp_path / "t.cc"
    src.write_text("#include <map>\n#include <string>\n"
                   "int f(const std::string &s) { std::map<std::string, int> m; m[s] = 1;\n"
                   "  return m.size(); }\n")
    _, reports = run_checked([real("clang++"), "-O1", "-c", src, "-o", tmp_path / "t.o"], tmp_path,
                             frames=frames)
    assert_mostly_fast(reports)
    assert_memo_used(reports)


def test_perl(tmp_path):
    _, reports = run_checked([real("perl"), "-e",
                              "my %h; $h{$_} = [1 .. 5] for 1 .. 5000; print scalar(keys %h)"],
                             tmp_path)
    assert_mostly_fast(reports)


def test_node(tmp_path):
    """A JIT: stacks through generated code (no unwind information) go to libunwind, the others
    are walked fast; node's worker threads too."""
    _, reports = run_checked([real("node"), "-e",
                              "let a = []; for (let i = 0; i < 20000; i++) a.push({x: i, s: 'v' + i});"
                              " console.log(a.length)"], tmp_path)
    assert_mostly_fast(reports, at_least=0.9)
