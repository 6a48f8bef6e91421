"""examples/python: the service whose HTTP helper keeps every response's headers.  The leak must be
found both ways the example's README shows: the tracemalloc recipe (heapsnap as tracemalloc,
compare_to with an inclusive Filter on the helper's files), and `heapsnap run --interval` +
`heapsnap leaks`, with the program unchanged."""
import subprocess
import sys

from conftest import clean_env
from pyhelpers import CLI, ROOT, pkg_path  # noqa: F401 (fixtures)

PY = sys.executable
EXAMPLE = ROOT / "examples" / "python"
HELPER = EXAMPLE / "vendor" / "httphelper.py"


def leak_line():
    for i, line in enumerate(HELPER.read_text().splitlines(), 1):
        if "headers = {k.lower()" in line:
            return i
    raise AssertionError("no headers line in the helper")


def env_with(path):
    return clean_env(PYTHONPATH=path)


def test_tracemalloc_recipe_finds_the_helper_line(pkg_path):
    r = subprocess.run([PY, str(EXAMPLE / "service.py"), "300", "--hunt", "100"],
                       env=env_with(pkg_path), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    blocks = [b for b in r.stdout.split("[ after ")[1:]]
    assert len(blocks) == 3 and r.stdout.rstrip().endswith("served 300 requests")
    site = "%s:%d: size=" % (HELPER, leak_line())
    counts = []
    for b in blocks:
        top = b.splitlines()[1]
        assert top.startswith(site), b
        counts.append(int(top.split("count=")[1].split()[0]))
    assert counts[0] > 0 and counts[1] > counts[0] and counts[2] > counts[1]   # it keeps growing


def test_heapsnap_run_and_leaks_find_the_helper_line(pkg_path, tmp_path):
    # The program is unchanged: site.addsitedir() processes the build's heapsnap-native.pth as
    # an installed package's would be (see test_py_install for the pip-installed case).
    boot = ("import runpy, site, sys; site.addsitedir(%r); sys.argv = [%r, '1500']; "
            "runpy.run_path(sys.argv[0], run_name='__main__')"
            % (pkg_path, str(EXAMPLE / "service.py")))
    out = tmp_path / "out"
    r = subprocess.run([str(CLI), "run", "-q", "--interval", "0.3", "-o", str(out), "--", PY,
                        "-c", boot], env=env_with(""), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([str(CLI), "leaks", str(out)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    first = [l for l in r.stdout.splitlines() if l.startswith("#1 ")]
    assert first and first[0].startswith("#1 %s:%d in " % (HELPER, leak_line())), r.stdout
    assert "service.py\", line" in r.stdout     # the traceback goes back to the service loop
