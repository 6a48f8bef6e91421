"""Helpers and fixtures of the Python package tests, imported by each test module (a conftest.py
here would take the module name `conftest` from tests/conftest.py in a whole-suite run): the
package built for an interpreter (under $HEAPSNAP_BUILD/python/<tag>, by setup.py, which is
incremental), and helpers that run a script under that interpreter with the package on its
path.

The package is built for Debian's python3 (the one running pytest) and, for the version tests, for
every pyenv CPython 3.9-3.13 found (HEAPSNAP_PYTHONS="path path ..." overrides the list).  pyenv's
3.12+ have no setuptools: Debian's (pure Python) is put on their path for the build only.
"""
import glob
import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("HEAPSNAP_BUILD", ROOT / "build"))
CLI = BUILD / "heapsnap"
DEBIAN_SETUPTOOLS = "/usr/lib/python3/dist-packages"


def _tag(python):
    out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return out


def build_package(python):
    """Builds heapsnap for `python`; returns the directory to put on sys.path."""
    tag = "py" + _tag(python)
    if python != sys.executable:
        tag += "-" + hashlib.sha1(python.encode()).hexdigest()[:8]
    base = BUILD / "python" / tag
    env = dict(os.environ, HEAPSNAP_BUILD_BASE=str(base))
    if not _has_setuptools(python):
        env["PYTHONPATH"] = DEBIAN_SETUPTOOLS
    r = subprocess.run([python, "setup.py", "-q", "build", "--build-base", str(base)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, "build for %s failed:\n%s%s" % (python, r.stdout, r.stderr)
    libs = glob.glob(str(base / "lib.*"))
    assert len(libs) == 1, libs
    return libs[0]


def _has_setuptools(python):
    return subprocess.run([python, "-c", "import setuptools"], capture_output=True).returncode == 0


def other_pythons():
    """pyenv's CPython 3.9-3.13 other than the running one's version."""
    env = os.environ.get("HEAPSNAP_PYTHONS")
    if env is not None:
        return env.split()
    found = []
    here = "%d.%d" % sys.version_info[:2]
    for minor in (9, 10, 11, 12, 13):
        pattern = os.path.expanduser("~/.pyenv/versions/3.%d.*/bin/python3" % minor)
        cands = sorted(glob.glob(pattern))
        if cands and "3.%d" % minor != here:
            found.append(cands[-1])
    return found


@pytest.fixture(scope="session")
def pkg_path():
    """The package built for the interpreter running the tests; also importable here."""
    path = build_package(sys.executable)
    if path not in sys.path:
        sys.path.insert(0, path)
    return path


@pytest.fixture(scope="session")
def heapsnap_mod(pkg_path):
    import heapsnap
    assert heapsnap.__file__.startswith(pkg_path), heapsnap.__file__
    return heapsnap


_BUILT = {}


def _interp_id(python):
    return "py" + _tag(python) if os.path.exists(python) else python


@pytest.fixture(scope="session", params=[sys.executable] + other_pythons(), ids=_interp_id)
def interp(request):
    """(python, package path) for Debian's python3 and each pyenv CPython found."""
    python = request.param
    if python not in _BUILT:
        _BUILT[python] = build_package(python)
    return python, _BUILT[python]


def run_script(python, path, source, tmp_path, args=(), timeout=120, env=None, name="script.py"):
    """Runs `source` (dedented) as a file under `python` with `path` first on sys.path.
    Returns the CompletedProcess; asserts success."""
    script = tmp_path / name
    script.write_text(textwrap.dedent(source))
    e = {k: v for k, v in os.environ.items() if not k.startswith("HEAPSNAP_") and k != "LD_PRELOAD"}
    e["PYTHONPATH"] = path
    e.update(env or {})
    r = subprocess.run([python, str(script)] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout, env=e, cwd=tmp_path)
    assert r.returncode == 0, "script failed (%d):\n%s\n%s" % (r.returncode, r.stdout, r.stderr)
    return r


def line_of(source, marker):
    """The line number of the line carrying `# marker` in the dedented source."""
    for i, line in enumerate(textwrap.dedent(source).splitlines(), 1):
        if line.rstrip().endswith("# " + marker):
            return i
    raise KeyError(marker)
