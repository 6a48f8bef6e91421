"""Rust programs under the tracer: a leak found at the user's line through inlined frames, std's
allocation code trimmed from the site, names demangled, panics unwinding through allocating
frames, and no change to the program.  Built here with Debian's rustc (scripts/install-deps.sh
installs it), at -O0 and -O, and with any other rustc on PATH (rustup's) at -O."""
import json
import re
import os
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT, clean_env, site_line

HEAPSNAP = BUILD / "heapsnap"
SRC = ROOT / "tests" / "progs" / "leak_rust.rs"


def compilers():
    found = []
    for c in ("/usr/bin/rustc", shutil.which("rustc")):
        if c and os.path.exists(c) and os.path.realpath(c) not in map(os.path.realpath, found):
            found.append(c)
    return found


def builds():
    cs = compilers()
    if not cs:
        return [pytest.param((None, None), id="no-rustc")]
    out = [pytest.param((cs[0], "0"), id="first-O0"), pytest.param((cs[0], "2"), id="first-O2")]
    out += [pytest.param((c, "2"), id=f"other{i}-O2") for i, c in enumerate(cs[1:])]
    return out


@pytest.fixture(params=builds())
def prog(request, tmp_path):
    rustc, opt = request.param
    if rustc is None:
        pytest.fail("no rustc: scripts/install-deps.sh installs Debian's")
    exe = tmp_path / "leak_rust"
    r = subprocess.run([rustc, "-g", "-C", f"opt-level={opt}", "-o", str(exe), str(SRC)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return exe


def env():
    e = clean_env()
    e.pop("RUST_BACKTRACE", None)
    return e


def test_rust_leak_at_the_users_line(prog, tmp_path):
    plain = subprocess.run([str(prog), "150", "10"], capture_output=True, text=True, env=env(),
                           timeout=120)
    assert plain.returncode == 0, plain.stderr
    assert "caught 3" in plain.stdout
    out = tmp_path / "o"
    r = subprocess.run([str(HEAPSNAP), "run", "-q", "--interval", "0.2", "-o", str(out), "--",
                        str(prog), "150", "10"], capture_output=True, text=True, env=env(),
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == plain.stdout and r.stderr == plain.stderr

    j = json.loads(subprocess.run([str(HEAPSNAP), "leaks", "--json", str(out)],
                                  capture_output=True, text=True, timeout=120).stdout)
    sites = {(os.path.basename(s["filename"]), s["lineno"]) for s in j["suspects"]}
    assert ("leak_rust.rs", site_line(SRC, "leak")) in sites, j["suspects"]
    assert ("leak_rust.rs", site_line(SRC, "session")) in sites, j["suspects"]
    assert ("leak_rust.rs", site_line(SRC, "trait")) in sites, j["suspects"]
    # std's allocation code (alloc::, hashbrown inside std, raw_vec) is trimmed from every site,
    # but not the program's own impl on a std type; the bounded cache and the per-request strings
    # are not reported
    assert sites <= {("leak_rust.rs", site_line(SRC, n)) for n in ("leak", "session", "trait")}, \
        j["suspects"]
    call = next(i for i, l in enumerate(SRC.read_text().splitlines(), 1)
                if "handle(i * 10 + k" in l)
    remember = next(i for i, l in enumerate(SRC.read_text().splitlines(), 1)
                    if "sess.seen.remember(i)" in l)
    for s in j["suspects"]:
        tb = s["traceback"]
        if tb[0]["lineno"] == site_line(SRC, "trait"):
            assert tb[0]["function"] == \
                "<alloc::vec::Vec<alloc::string::String> as leak_rust::Remember>::remember", tb[0]
            assert (os.path.basename(tb[1]["filename"]), tb[1]["lineno"]) == \
                ("leak_rust.rs", remember), tb
            tb = tb[1:]
        # the site, then its caller in main, whether handle was inlined (-O) or not (-O0)
        assert tb[0]["function"] == "leak_rust::handle", tb[0]
        assert (os.path.basename(tb[1]["filename"]), tb[1]["lineno"]) == ("leak_rust.rs", call), tb
        assert all(not f["function"].startswith(("_ZN", "_R")) or f["lineno"] == 0 for f in tb), tb


def test_rust_names_demangle_as_cxxfilt_does(prog):
    """Every Rust symbol of the program (legacy _ZN...17h<hash>E and v0 _R...), through the
    tracer's demanglers, reads as binutils' c++filt prints it without the hashes it adds."""
    syms = subprocess.run(["nm", "--defined-only", str(prog)], capture_output=True, text=True,
                          check=True).stdout.split()
    names = sorted({s for s in syms if s.startswith("_R")
                    or re.fullmatch(r"_ZN.*17h[0-9a-f]{16}E(\..*)?", s)})
    assert len(names) > 100
    text = "\n".join(names) + "\n"
    mine = subprocess.run([str(BUILD / "sym" / "rustdm")], input=text, capture_output=True,
                          text=True, check=True).stdout.splitlines()
    ref = subprocess.run(["c++filt"], input=text, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    ref = [re.sub(r"::h[0-9a-f]{16}$", "", re.sub(r"\[[0-9a-f]+\]", "", r)) for r in ref]
    differ = [(n, m, r) for n, m, r in zip(names, mine, ref) if m != r and n != r]
    assert not differ, differ[:5]
    assert sum(m != n for n, m in zip(names, mine)) == len(names)   # every one demangled
