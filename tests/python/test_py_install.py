"""The README's install: a virtual environment over Debian's python3 and
`pip install --no-build-isolation .` from the repository, with no network."""
import os
import subprocess
import sys

from pyhelpers import BUILD, CLI, ROOT


def test_pip_install_in_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=300)
    env = dict(os.environ, HEAPSNAP_BUILD_BASE=str(BUILD / "python" / "pip"),
               PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-build-isolation",
                        str(ROOT)], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    code = ("import heapsnap as tracemalloc; tracemalloc.start(); x = bytes(50000); "
            "s = tracemalloc.take_snapshot().statistics('lineno')[0]; "
            "print(heapsnap_file := tracemalloc.__file__); print(s.size >= 50000)")
    r = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    where, ok = r.stdout.split()
    assert where.startswith(str(venv)) and ok == "True"
    # without the preload, the .pth imports nothing
    r = subprocess.run([str(venv / "bin" / "python"), "-c",
                        "import sys; print('heapsnap' in sys.modules)"],
                       capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "False", r.stdout + r.stderr
    # the pytest plugin is registered through the entry point: no -p needed
    (tmp_path / "test_leak.py").write_text(
        "KEEP = []\n"
        "def test_grows():\n"
        "    KEEP.append(bytes(10000))\n")
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p",
                        "no:cacheprovider", "--heapsnap-leaks", "test_leak.py"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 tests checked, 1 leaking" in r.stdout
    assert "test_leak.py:3: +" in r.stdout
    # `heapsnap run -- python app.py`: the installed heapsnap-native.pth joins the preloaded
    # tracer, so native tracebacks show the Python frames, with no change to the program
    (tmp_path / "app.py").write_text(
        "import time, zlib\n"
        "def make():\n"
        "    return [zlib.compressobj(9) for _ in range(3)]\n"
        "keep = make()\n"
        "time.sleep(1.0)\n")
    out = tmp_path / "out"
    r = subprocess.run([str(CLI), "run", "-q", "--interval", "0.2", "-o", str(out), "--",
                        str(venv / "bin" / "python"), "app.py"], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    snaps = sorted(out.glob("*/*-interval.hsnap"))
    assert snaps, list(out.rglob("*"))
    r = subprocess.run([str(CLI), "top", "--by", "traceback", "-l", "1", "--include", "*libz*",
                        str(snaps[-1])], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [l.strip() for l in r.stdout.splitlines()]
    app = str(tmp_path / "app.py")
    want = ['File "%s", line 4' % app, 'File "%s", line 3' % app]
    got = [l for l in lines if l.startswith('File "%s"' % app)]
    assert got[:1] == want[:1] and want[1] in got, r.stdout
    assert lines[-1].startswith('File "') and "libz.so" in lines[-1], r.stdout
