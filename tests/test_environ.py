"""The tracer's variables out of the traced program's environment (issue 4, item 1).

When children are not followed (`heapsnap run` without --follow-fork, or HEAPSNAP_FOLLOW_FORK=0),
the program sees the environment it would see untraced, LD_PRELOAD aside: its output through
printenv is the untraced output plus the LD_PRELOAD line.  An exec of the process's own is still
followed, through every member of the exec family and through wrappers (sh -c 'exec ...', env,
nice); an exec into a clean environment, a failed exec and the children it does not follow see
exactly what they would untraced.  `heapsnap snapshot PID` still finds the process's folder.
"""
import os
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD, LIB, Snapshot, clean_env, site_line, ROOT

HEAPSNAP = BUILD / "heapsnap"
PROGS = BUILD / "progs"
PRINTENV = PROGS / "printenv"
PRINTENV_C = ROOT / "tests" / "progs" / "printenv.c"


def run(argv, env, timeout=60, **kw):
    return subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True,
                          timeout=timeout, **kw)


def without_preload(text):
    return "".join(l for l in text.splitlines(True) if not l.startswith("LD_PRELOAD="))


def traced_and_plain(tmp, argv, *run_opts, **env):
    """argv untraced, then under `heapsnap run -q -o DIR run_opts...`, in the same environment."""
    e = clean_env(PATH=f"{PROGS}:/usr/bin:/bin", SOME_SETTING="kept", **env)
    plain = run(argv, e)
    out = tmp / "o"
    traced = run([HEAPSNAP, "run", "-q", "-o", out, *run_opts, "--", *argv], e)
    assert traced.returncode == plain.returncode, traced.stderr
    assert traced.stderr == plain.stderr
    return plain, traced, out


def finals(out):
    return sorted(Path(out).glob("*/*-final.hsnap"))


def assert_printenv_traced(out):
    """One process folder, whose final snapshot is printenv's, with its block."""
    assert len([d for d in Path(out).iterdir() if d.is_dir()]) == 1
    [f] = finals(out)
    s = Snapshot(f)
    assert s.meta["program"] == str(PRINTENV)
    assert [t["size"] for t in s.at("printenv.c", site_line(PRINTENV_C, "printenv"))] == [4242]


# ---- what the program sees --------------------------------------------------------------------------

def test_run_program_sees_its_untraced_environment(tmp):
    plain, traced, out = traced_and_plain(tmp, [PRINTENV])
    assert "HEAPSNAP_" not in traced.stdout
    assert without_preload(traced.stdout) == plain.stdout
    assert traced.stdout.count("LD_PRELOAD=") == 1
    assert traced.stdout.endswith("-- envp is environ\n")     # main's envp is libc's environ
    assert_printenv_traced(out)


@pytest.mark.parametrize("follow,hidden", [("0", True), ("1", False), (None, False)],
                         ids=["follow-0", "follow-1", "library-default"])
def test_environment_activation(tmp, follow, hidden):
    """The same without run: HEAPSNAP_FOLLOW_FORK=0 hides the variables; with forks followed
    (the library's default) they stay, for the children."""
    out = tmp / "p.hsnap"
    extra = {} if follow is None else {"HEAPSNAP_FOLLOW_FORK": follow}
    plain = run([PRINTENV], clean_env())
    traced = run([PRINTENV], clean_env(LD_PRELOAD=LIB, HEAPSNAP_FRAMES=8, HEAPSNAP_OUTPUT=out,
                                       **extra))
    assert traced.returncode == 0 and traced.stderr == ""
    if hidden:
        assert without_preload(traced.stdout) == plain.stdout
    else:
        assert f"HEAPSNAP_OUTPUT={out}\n" in traced.stdout
        assert "HEAPSNAP_FRAMES=8\n" in traced.stdout
    assert Snapshot(out).meta["program"] == str(PRINTENV)


def test_follow_fork_keeps_the_variables(tmp):
    plain, traced, out = traced_and_plain(tmp, [PRINTENV], "--follow-fork")
    for name in ("HEAPSNAP_FRAMES", "HEAPSNAP_DIR", "HEAPSNAP_FOLLOW_FORK", "HEAPSNAP_PID"):
        assert f"\n{name}=" in traced.stdout
    assert_printenv_traced(out)


# ---- exec --------------------------------------------------------------------------------------------

EXEC_FORMS = ["execve", "execv", "execvp", "execvpe", "execl", "execlp", "execle", "fexecve",
              "execveat", "execve-copy", "execle-copy"]


@pytest.mark.parametrize("how", EXEC_FORMS)
def test_exec_family_hands_the_variables_on(tmp, how):
    """An exec by the traced process: the new program is traced into the same folder, and sees
    its untraced environment too."""
    prog = "printenv" if how in ("execvp", "execlp") else PRINTENV     # looked up in PATH
    plain, traced, out = traced_and_plain(tmp, [PROGS / "execer", how, prog])
    assert plain.returncode == 0 and plain.stdout.endswith("-- envp is environ\n")
    assert "HEAPSNAP_" not in traced.stdout
    assert without_preload(traced.stdout) == plain.stdout
    assert_printenv_traced(out)


def test_exec_into_a_clean_environment(tmp):
    """An environment the program made without LD_PRELOAD: exactly that, and not traced."""
    plain, traced, out = traced_and_plain(tmp, [PROGS / "execer", "execve-clean", PRINTENV])
    assert plain.stdout.startswith("PATH=/usr/bin:/bin\nEXECER=clean\n--")
    assert traced.stdout == plain.stdout
    assert finals(out) == []


def test_failed_exec_is_libcs_and_leaves_environ(tmp):
    """Each exec fails as it does untraced (result and errno), environ is left as it was, and
    tracing goes on."""
    plain, traced, out = traced_and_plain(tmp, [PROGS / "execer", "fail"])
    assert plain.returncode == 0
    assert "environ unchanged: yes\n" in plain.stdout
    assert "execve too long: -1 E2BIG\n" in plain.stdout
    assert "execvp missing: -1 ENOENT\n" in plain.stdout
    assert without_preload(traced.stdout) == plain.stdout
    [f] = finals(out)
    assert Snapshot(f).meta["program"] == str(PROGS / "execer")


@pytest.mark.parametrize("script,followed", [
    ("exec env FOO=1 nice -n 1 printenv", True),
    ("exec env printenv", True),
    ("exec env -u LD_PRELOAD printenv", False),
    ("exec env -i printenv", False),
], ids=["env-nice", "env", "env-u-preload", "env-i"])
def test_exec_through_wrappers(tmp, script, followed):
    plain, traced, out = traced_and_plain(tmp, ["/bin/sh", "-c", script])
    assert "HEAPSNAP_" not in traced.stdout
    assert without_preload(traced.stdout) == plain.stdout
    if followed:
        assert_printenv_traced(out)
    else:
        assert traced.stdout == plain.stdout
        assert finals(out) == []


# ---- children that are not followed -------------------------------------------------------------------

def test_children_not_followed_see_no_variables(tmp):
    """sh forks for every command but the last; those children are not traced, and neither they
    nor what they exec see a HEAPSNAP_* variable."""
    script = "printenv; printenv | cat; (printenv); true"
    plain, traced, out = traced_and_plain(tmp, ["/bin/sh", "-c", script])
    assert plain.stdout.count("-- envp is environ") == 3
    assert "HEAPSNAP_" not in traced.stdout
    assert without_preload(traced.stdout) == plain.stdout
    assert len([d for d in out.iterdir() if d.is_dir()]) == 1   # sh's own folder only
    [f] = finals(out)
    assert Path(Snapshot(f).meta["program"]).name in ("dash", "sh", "bash")


def test_children_followed_see_the_variables(tmp):
    script = "printenv; true"
    plain, traced, out = traced_and_plain(tmp, ["/bin/sh", "-c", script], "--follow-fork")
    assert "\nHEAPSNAP_DIR=" in traced.stdout
    assert len([d for d in out.iterdir() if d.is_dir()]) == 2


# ---- heapsnap snapshot PID ---------------------------------------------------------------------------

def test_snapshot_request_finds_the_folder_after_hiding_and_exec(tmp):
    """The variables are gone from the program's environ but not from /proc/PID/environ (the
    strings stay where they are), and an exec hands them on: `heapsnap snapshot PID` works."""
    out = tmp / "o"
    p = subprocess.Popen([HEAPSNAP, "run", "-q", "-o", out, "--", "/bin/sh", "-c",
                          f'exec "{PROGS / "heapwait"}" 100'], env=clean_env(),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        line = p.stdout.readline()
        if not line.startswith("ready "):
            p.kill()
            pytest.fail(f"said {line!r}, not ready: {p.communicate()}")
        pid = int(line.split()[1])
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"HEAPSNAP_DIR={out}".encode() in environ
        r = run([HEAPSNAP, "snapshot", pid], clean_env())
        assert r.returncode == 0, r.stderr
        snap = Path(r.stdout.strip())
        assert snap.parent == out / str(pid)
        assert Snapshot(snap).meta["program"] == str(PROGS / "heapwait")
    finally:
        p.communicate("", timeout=60)
    assert p.returncode == 0
