"""The pytest plugin (`pytest --heapsnap-leaks`) on sample test files: a module-level cache that
grows on every call is reported with its line and traceback and fails the run; a bounded
lru_cache, a test that allocates nothing and a test whose memory comes and goes are not; the
marker and the command line set the thresholds; without the option the plugin does nothing."""
import os
import re
import subprocess
import sys
import textwrap

from pyhelpers import line_of, pkg_path  # noqa: F401 (fixtures)

PY = sys.executable

SAMPLE = """
    import functools
    import pytest

    _cache = {}
    _counter = [0]

    def fetch(key):
        if key not in _cache:
            _cache[key] = "value-%d" % key * 20                # GROWS
        return _cache[key]

    def test_module_cache_grows():
        for _ in range(50):
            _counter[0] += 1
            fetch(_counter[0])                                 # CALLER

    @functools.lru_cache(maxsize=64)
    def compute(n):
        return [n] * 30

    def test_bounded_lru_cache():
        for _ in range(200):
            _counter[0] += 1
            compute(_counter[0] % 64)

    def test_no_allocation():
        assert sum(range(100)) == 4950

    def test_comes_and_goes():
        data = [bytes(1000) for _ in range(100)]
        assert len(data) == 100

    @pytest.mark.heapsnap_leaks(threshold=10**9)
    def test_grows_below_its_threshold():
        for _ in range(50):
            _counter[0] += 1
            fetch(_counter[0])

    @pytest.mark.heapsnap_leaks(enabled=False)
    def test_grows_unchecked():
        for _ in range(50):
            _counter[0] += 1
            fetch(_counter[0])

    RUNS = []

    def test_counts_runs():
        RUNS.append(1)

    def test_zz_report_runs():
        with open("runs.txt", "w") as f:
            f.write(str(len(RUNS)))
"""


def run_pytest(pkg_path, tmp_path, *args, installed_plugin=False):
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(SAMPLE))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEAPSNAP_")}
    env["PYTHONPATH"] = pkg_path
    cmd = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "heapsnap.pytest_plugin",
           "--rootdir", str(tmp_path), "test_sample.py"] + list(args)
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


def outcomes(stdout):
    """{test name: PASSED / FAILED} from -v output lines "test_sample.py::name PASSED [ 10%]"."""
    res = {}
    for line in stdout.splitlines():
        m = re.match(r"test_sample\.py::(\w+) (PASSED|FAILED)", line)
        if m:
            res[m.group(1)] = m.group(2)
    return res


def test_leaks_reported_and_fail_the_run(pkg_path, tmp_path):
    r = run_pytest(pkg_path, tmp_path, "--heapsnap-leaks", "-rA", "-vv")   # -q -vv: verbose
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    res = outcomes(out)
    assert res["test_module_cache_grows"] == "FAILED", out
    for name in ("test_bounded_lru_cache", "test_no_allocation", "test_comes_and_goes",
                 "test_grows_below_its_threshold", "test_grows_unchecked", "test_counts_runs"):
        assert res[name] == "PASSED", (name, out)
    src = tmp_path / "test_sample.py"
    grows, caller = line_of(SAMPLE, "GROWS"), line_of(SAMPLE, "CALLER")
    assert "heapsnap: memory kept growing over 5 runs of test_module_cache_grows" in out
    assert "#1 %s:%d: +" % (src, grows) in out
    # the traceback starts at the test function: no pytest or plugin frames
    report = out[out.index("#1 "):]
    report = report[:report.index("heapsnap leak check")]
    assert '  File "%s", line %d' % (src, caller) in report
    assert '  File "%s", line %d' % (src, grows) in report
    assert "pluggy" not in report and "_pytest" not in report
    assert "7 tests checked, 1 leaking" in out     # all 8 but the disabled one
    assert "LEAK test_sample.py::test_module_cache_grows: %s:%d" % (src, grows) in out
    # each checked test ran warm-up + measured times (2 + 5); the disabled one once
    assert (tmp_path / "runs.txt").read_text() == "7"


def test_command_line_settings(pkg_path, tmp_path):
    # a threshold above the growth: nothing leaks
    r = run_pytest(pkg_path, tmp_path, "--heapsnap-leaks", "--heapsnap-leaks-threshold",
                   "100000000")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 leaking" in r.stdout
    # more runs, no warm-up: still found, and the run count shows in the report
    r = run_pytest(pkg_path, tmp_path, "--heapsnap-leaks", "--heapsnap-leaks-runs", "8",
                   "--heapsnap-leaks-warmup", "0", "-k", "module_cache or report_runs")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "over 8 runs of test_module_cache_grows (after 0 warm-up runs)" in r.stdout
    assert (tmp_path / "runs.txt").read_text() == "0"
    r = run_pytest(pkg_path, tmp_path, "--heapsnap-leaks", "--heapsnap-leaks-runs", "2")
    assert r.returncode != 0 and "at least 3 measured runs" in r.stdout + r.stderr


def test_inert_without_the_option(pkg_path, tmp_path):
    r = run_pytest(pkg_path, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "heapsnap leak check" not in r.stdout
    assert (tmp_path / "runs.txt").read_text() == "1"
