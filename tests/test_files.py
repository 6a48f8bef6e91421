"""Files and access (issue 4, part 4).

Every defence of the output files is tested by planting what another user could plant: symlinks
and files owned by `nobody` (the tests run as root, so they can play both sides).  A victim file
or folder must stay exactly as it was, and the traced program must run as it does untraced.
Then: a SIGKILL in the middle of writing a snapshot leaves the earlier snapshots intact and no
torn file under a final name; the snapshot request channel refuses other users; output folders
are 0700 and files 0600 whatever the umask; and no environment value ends up in a file.

(A full disk is tested in test_cli.py, test_full_disk_skips_snapshots_and_tracing_goes_on.)

HEAPSNAP_KILL_POINTS=N sets how many processes are killed while writing (default 4; try 40).
"""
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD, LIB, Snapshot, clean_env, run_traced

HEAPSNAP = BUILD / "heapsnap"
PROGS = BUILD / "progs"
NOBODY = 65534
VICTIM_DATA = b"the victim's own data\n"
KILL_POINTS = int(os.environ.get("HEAPSNAP_KILL_POINTS", "4"))

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="plays another user: needs root")


def hs(*args, timeout=60, env=None, **kw):
    return subprocess.run([str(HEAPSNAP), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env or clean_env(), **kw)


# ---- what "another user" plants, and the victims ---------------------------------------------------

def plant_symlink(link, target):
    os.symlink(target, link)
    os.lchown(link, NOBODY, NOBODY)


def plant_folder(path, mode=0o777):
    path.mkdir()
    os.chown(path, NOBODY, NOBODY)
    path.chmod(mode)


@pytest.fixture
def victim(tmp):
    v = tmp / "victim"
    v.write_bytes(VICTIM_DATA)
    v.chmod(0o644)
    return v


@pytest.fixture
def victim_dir(tmp):
    d = tmp / "victim-dir"
    d.mkdir()
    (d / "keep").write_bytes(VICTIM_DATA)
    os.chown(d, NOBODY, NOBODY)
    return d


def assert_intact(victim):
    st = victim.lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644, oct(st.st_mode)
    assert st.st_nlink == 1
    assert victim.read_bytes() == VICTIM_DATA


def assert_dir_intact(d):
    assert sorted(p.name for p in d.iterdir()) == ["keep"]
    assert (d / "keep").read_bytes() == VICTIM_DATA
    assert d.stat().st_uid == NOBODY


def start_waiting(argv, env, **kw):
    """Starts heapwait (possibly under run); returns the Popen and the traced pid once ready."""
    p = subprocess.Popen([str(a) for a in argv], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    line = p.stdout.readline()
    if not line.startswith("ready "):
        p.kill()
        pytest.fail(f"{argv}: said {line!r}, not ready: {p.communicate()}")
    return p, int(line.split()[1])


def finish(p, timeout=60):
    out, err = p.communicate("", timeout=timeout)
    return p.returncode, out, err


def wait_for(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def exec_after(tmp, plant, argv, env, timeout=60):
    """Forks, lets plant(pid) run before the child execs argv (so it can use the pid, as an
    attacker who guesses it would), and returns (status, stdout, stderr)."""
    out_path, err_path = tmp / "exec-after.out", tmp / "exec-after.err"
    r, w = os.pipe()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        pid = os.fork()
        if pid == 0:                                   # the child: wait for the go, then exec
            try:
                os.close(w)
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                os.read(r, 1)
                os.execve(str(argv[0]), [str(a) for a in argv], env)
            finally:
                os._exit(127)
    os.close(r)
    try:
        plant(pid)
    finally:
        os.close(w)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"{argv}: still running after {timeout} s")
        time.sleep(0.02)
    return os.waitstatus_to_exitcode(status), out_path.read_text(), err_path.read_text()


# ---- HEAPSNAP_OUTPUT: the final name and the temporary name ----------------------------------------

def test_output_final_name_planted_as_a_symlink(tmp, victim):
    """The snapshot is written to a new temporary file and renamed over the final name: a
    symlink planted there is replaced, never followed."""
    out = tmp / "snap.hsnap"
    plant_symlink(out, victim)
    r = run_traced([PROGS / "leaky"], out)
    assert (r.returncode, r.stdout, r.stderr) == (0, "leaky done\n", "")
    assert_intact(victim)
    assert not out.is_symlink() and out.stat().st_uid == 0
    assert Snapshot(out).meta["kind"] == "final"


@pytest.mark.parametrize("planted", [8, 64])
def test_output_temporary_names_planted_as_symlinks(tmp, victim, planted):
    """The temporary name (".<name>.tmp.<pid>.<n>") is predictable, so it is created with
    O_CREAT|O_EXCL|O_NOFOLLOW: a planted one is skipped for the next n.  After 64 planted names
    the snapshot is given up, with a message, and the program is unharmed."""
    d = tmp / "d"
    d.mkdir()
    out = d / "snap.hsnap"
    env = clean_env(LD_PRELOAD=LIB, HEAPSNAP_FRAMES=8, HEAPSNAP_OUTPUT=out)
    p, pid = start_waiting([PROGS / "heapwait", 100], env)
    links = [d / f".snap.hsnap.tmp.{pid}.{n}" for n in range(planted)]
    for link in links:
        plant_symlink(link, victim)
    status, _, err = finish(p)
    assert status == 0
    assert_intact(victim)
    for link in links:
        assert link.is_symlink() and os.readlink(link) == str(victim)
    others = sorted(p.name for p in d.iterdir() if p not in links)
    if planted < 64:
        assert err == ""
        assert others == ["snap.hsnap"]
        assert len(Snapshot(out).traces) >= 100
    else:
        assert others == []
        lines = err.splitlines()
        assert len(lines) == 1 and "final snapshot" in lines[0] and "File exists" in lines[0], err


def test_log_planted_as_a_symlink(tmp, victim):
    """HEAPSNAP_LOG is opened O_NOFOLLOW for each message: a planted link is refused and the
    message is dropped (the program's standard error is its own, so it does not go there)."""
    log = tmp / "tracer.log"
    plant_symlink(log, victim)
    out = tmp / "missing" / "x.hsnap"            # unwritable: the final snapshot logs a message
    r = run_traced([PROGS / "leaky"], out, HEAPSNAP_LOG=log)
    assert r.returncode == 0 and r.stdout == "leaky done\n"
    assert r.stderr == "", r.stderr
    assert_intact(victim)
    assert log.is_symlink()


# ---- heapsnap run -o DIR, and HEAPSNAP_DIR/<pid> -----------------------------------------------------

@pytest.mark.parametrize("kind", ["symlink", "someone-elses-folder"])
def test_run_output_folder_planted(tmp, victim_dir, kind):
    """run -o DIR takes DIR only when it is new, or an empty folder of the caller's (which it
    makes 0700): not a symlink, not someone else's folder.  It refuses before starting anything."""
    out = tmp / "out"
    if kind == "symlink":
        plant_symlink(out, victim_dir)
    else:
        plant_folder(out, 0o777)
    r = hs("run", "-o", out, "--", PROGS / "leaky")
    assert r.returncode == 2 and r.stdout == ""
    assert "not a folder" in r.stderr and str(out) in r.stderr, r.stderr
    assert_dir_intact(victim_dir)
    if kind == "symlink":
        assert out.is_symlink() and os.readlink(out) == str(victim_dir)
    else:
        st = out.lstat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (NOBODY, 0o777)
        assert list(out.iterdir()) == []


def test_run_takes_an_empty_folder_of_its_own_and_closes_it(tmp):
    out = tmp / "out"
    out.mkdir()
    out.chmod(0o777)
    r = hs("run", "-q", "-o", out, "--", PROGS / "leaky")
    assert r.returncode == 0 and r.stdout == "leaky done\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


@pytest.mark.parametrize("kind", ["symlink", "someone-elses-folder"])
def test_process_folder_planted_in_a_shared_folder(tmp, victim_dir, kind):
    """A service traced with HEAPSNAP_DIR pointing to a shared sticky folder (as /var/tmp is):
    another user who guesses the pid plants DIR/<pid> first.  The tracer refuses it (a symlink
    or a folder that is not its own), says so once, and the program runs untraced and unharmed."""
    base = tmp / "shared"
    base.mkdir()
    base.chmod(0o1777)

    def plant(pid):
        if kind == "symlink":
            plant_symlink(base / str(pid), victim_dir)
        else:
            plant_folder(base / str(pid), 0o777)

    env = clean_env(LD_PRELOAD=LIB, HEAPSNAP_FRAMES=8, HEAPSNAP_DIR=base,
                    HEAPSNAP_INTERVAL="0.05")
    status, out, err = exec_after(tmp, plant, [PROGS / "leaky"], env)
    assert (status, out) == (0, "leaky done\n")
    lines = err.splitlines()
    assert len(lines) == 1 and "HEAPSNAP_DIR" in lines[0] and "not tracing" in lines[0], err
    assert_dir_intact(victim_dir)
    [planted] = list(base.iterdir())
    if kind == "symlink":
        assert planted.is_symlink()
    else:
        assert list(planted.iterdir()) == []


# ---- the snapshot request channel --------------------------------------------------------------------

@pytest.fixture
def shared_tmp():
    """A folder that every user can enter (pytest's own tmp is 0700), so that only the output
    folder's own mode keeps another user out."""
    d = Path(tempfile.mkdtemp(prefix="heapsnap-files-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def traced_run(shared_tmp):
    """heapwait under heapsnap run, waiting; yields (pid, its folder)."""
    out = shared_tmp / "out"
    p, pid = start_waiting([HEAPSNAP, "run", "-q", "-o", out, "--", PROGS / "heapwait", 1000],
                           clean_env())
    try:
        yield pid, out / str(pid)
    finally:
        status, _, err = finish(p)
        assert status == 0, err


def as_nobody(argv, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60,
                          env=clean_env(), user=NOBODY, group=NOBODY, extra_groups=[], **kw)


def request_snapshots(procdir):
    return sorted(p.name for p in procdir.glob("*-request.hsnap"))


def test_snapshot_request_refused_to_another_user(traced_run):
    pid, procdir = traced_run
    r = as_nobody([HEAPSNAP, "snapshot", "--timeout", "3", pid])
    assert r.returncode == 2 and r.stdout == ""
    assert f"process {pid}: Permission denied" in r.stderr, r.stderr
    # Knowing the folder does not help: it is 0700, so no request file can be put there.
    assert stat.S_IMODE(procdir.stat().st_mode) == 0o700
    assert stat.S_IMODE(procdir.parent.stat().st_mode) == 0o700
    r = as_nobody(["/bin/sh", "-c", f': > "{procdir}/request.x"'])
    assert r.returncode != 0 and "Permission denied" in r.stderr
    time.sleep(0.3)                                   # 3 ticks of the tracer thread
    assert request_snapshots(procdir) == []
    # The channel itself works, for the owner.
    r = hs("snapshot", pid)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).parent == procdir
    assert len(request_snapshots(procdir)) == 1


def test_request_files_planted_in_the_process_folder(traced_run, victim):
    """Whoever can write into DIR/<pid> (only its owner, as above): the tracer thread answers a
    request only when it is a regular file of its own user, and writes its answer through a new
    temporary file renamed into place."""
    pid, procdir = traced_run
    # A request of another user's, and a request that is a symlink: removed, never answered.
    other = procdir / "request.other"
    other.write_text("")
    os.chown(other, NOBODY, NOBODY)
    plant_symlink(procdir / "request.link", victim)
    wait_for(lambda: not other.exists() and not (procdir / "request.link").is_symlink(),
             what="the tracer thread to remove the planted requests")
    time.sleep(0.3)
    assert request_snapshots(procdir) == []
    assert not list(procdir.glob("request.*"))
    assert_intact(victim)

    # A genuine request whose answer's temporary name is planted: no answer, victim intact.
    plant_symlink(procdir / "request.t1.tmp", victim)
    (procdir / "request.t1").write_text("")
    wait_for(lambda: not (procdir / "request.t1").exists(), what="request.t1 to be taken")
    time.sleep(0.3)
    assert not (procdir / "request.t1.done").exists()
    assert (procdir / "request.t1.tmp").is_symlink()
    assert_intact(victim)

    # A genuine request whose answer's final name is planted: the answer replaces the link.
    done = procdir / "request.d1.done"
    plant_symlink(done, victim)
    (procdir / "request.d1").write_text("")
    wait_for(lambda: not done.is_symlink(), what="the answer to request.d1")
    assert_intact(victim)
    assert stat.S_IMODE(done.stat().st_mode) == 0o600
    answer = Path(done.read_text().strip())
    assert answer.parent == procdir and answer.name.endswith("-request.hsnap")
    assert Snapshot(answer).meta["kind"] == "request"
    assert len(request_snapshots(procdir)) == 2       # t1 and d1

    r = hs("snapshot", pid)
    assert r.returncode == 0, r.stderr
    assert len(request_snapshots(procdir)) == 3


# ---- SIGKILL while a snapshot is being written -----------------------------------------------------

TEMP_NAME = re.compile(r"^\.\d{6}-interval\.hsnap\.tmp\.\d+\.\d+$")


def final_names(d):
    return sorted(p.name for p in d.glob("[0-9]*.hsnap"))


def test_sigkill_while_writing_snapshots(tmp):
    """A program with a million live blocks takes a snapshot every 0.2 s (each about 5 MB, written
    and synced); it is killed at several points, most while a temporary file is being written.
    Every snapshot under a final name then loads, and those that were there before the kill are
    byte for byte what they were."""
    mid_write = 0
    for i in range(KILL_POINTS):
        out = tmp / f"o{i}"
        p, pid = start_waiting([HEAPSNAP, "run", "-q", "--interval", "0.2", "-o", out, "--",
                                PROGS / "heapwait", 1000000], clean_env())
        d = out / str(pid)
        wait_for(lambda: len(final_names(d)) >= 1 + i % 2, timeout=120, what="snapshots")
        before = {n: (d / n).read_bytes() for n in final_names(d)}
        if i % 2 == 0:
            # The moment a temporary file appears, plus 0 to 2 ms (writing takes a few).
            deadline = time.monotonic() + 60
            while not any(n.startswith(".") for n in os.listdir(d)):
                assert time.monotonic() < deadline, "no temporary file: not written atomically?"
                time.sleep(0.0005)
            time.sleep((i // 2 % 3) / 1000)
        else:
            time.sleep((i * 37 % 200) / 1000)
        os.kill(pid, signal.SIGKILL)
        status, _, err = finish(p)
        assert status == 128 + signal.SIGKILL, err
        leftovers = [n for n in os.listdir(d) if n.startswith(".")]
        assert all(TEMP_NAME.match(n) for n in leftovers), leftovers
        mid_write += bool(leftovers)
        after = final_names(d)
        assert set(before) <= set(after)
        for n in before:
            assert (d / n).read_bytes() == before[n], f"{n} changed"
        for n in after:
            info = hs("info", d / n)
            assert info.returncode == 0 and "live blocks" in info.stdout, info.stderr
        shutil.rmtree(out)
    assert mid_write >= KILL_POINTS // 4, f"only {mid_write} kills landed while writing"


# ---- modes and contents -----------------------------------------------------------------------------

def umask_zero():
    os.umask(0)


def test_modes_and_no_environment_values(tmp):
    """With umask 0, every folder heapsnap makes is 0700 and every file 0600 (snapshots,
    timeline, log, request answers); and a secret in the environment is in no file."""
    secret = "s3cr3t-" + os.urandom(12).hex()
    env = clean_env(SERVICE_API_TOKEN=secret, HEAPSNAP_SECRET_LOOKALIKE=secret)
    out = tmp / "o"
    p = subprocess.Popen([HEAPSNAP, "run", "--follow-fork", "--interval", "0.05", "-o", out,
                          "--", "/bin/sh", "-c",
                          f'"{PROGS / "forker"}" && exec "{PROGS / "heapwait"}" 500'],
                         env=env, preexec_fn=umask_zero, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = ""
    while not line.startswith("ready"):
        line = p.stdout.readline()
        assert line, p.communicate(timeout=60)
    pid = int(line.split()[1])
    r = hs("snapshot", pid)
    assert r.returncode == 0, r.stderr
    status, _, err = finish(p)
    assert status == 0, err
    # HEAPSNAP_OUTPUT and HEAPSNAP_LOG (a message is logged: the output is unwritable).
    log = tmp / "tracer.log"
    single = tmp / "single.hsnap"
    for output in (single, tmp / "missing" / "x.hsnap"):
        r = subprocess.run([PROGS / "leaky"], capture_output=True, text=True, timeout=60,
                           preexec_fn=umask_zero,
                           env=clean_env(LD_PRELOAD=LIB, HEAPSNAP_FRAMES=4, HEAPSNAP_OUTPUT=output,
                                         HEAPSNAP_LOG=log, SERVICE_API_TOKEN=secret))
        assert r.returncode == 0 and r.stdout == "leaky done\n"
    assert "final snapshot" in log.read_text()

    dirs = [out, *[p for p in out.rglob("*") if p.is_dir()]]
    files = [p for p in out.rglob("*") if not p.is_dir()] + [single, log]
    assert len(dirs) >= 4, dirs                       # out, sh (then heapwait), forker, its child
    kinds = {p.name.split("-", 1)[-1] for p in files}
    assert {"final.hsnap", "interval.hsnap", "request.hsnap", "timeline.tsv"} <= kinds, kinds
    for d in dirs:
        assert stat.S_IMODE(d.lstat().st_mode) == 0o700, d
    for f in files:
        st = f.lstat()
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, f
        assert secret.encode() not in f.read_bytes(), f"{f} holds an environment value"
