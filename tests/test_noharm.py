"""No harm to any traced program (issue 4, part 2).

Each case runs a program of tests/progs untraced and under `heapsnap run`, and asserts that its
standard output, its standard error (without run's own "heapsnap:" lines) and its exit status are
the same, under a timeout that catches deadlocks (the hung processes' stacks are printed with
gdb when it is there).  Then it checks that the snapshot is right: the blocks the program says it
left, at the lines marked SITE:<name> in its source.
"""
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, LIB, ROOT, Snapshot, clean_env, site_line

HEAPSNAP = BUILD / "heapsnap"
PROGS = BUILD / "progs"
SRC = ROOT / "tests" / "progs"
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
TIMEOUT = 30
# Messages of the tracer inside the program ("heapsnap: <pid>: ..."), relayed by run.
TRACER_MESSAGE = re.compile(r"^heapsnap: \d+: ", re.M)


# ---- running a program both ways ------------------------------------------------------------------

def _stacks(pgid):
    """Every thread's stack of every process in a process group, for a timeout's message."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                pids.append(d.name)
    if shutil.which("gdb") is None:
        return f"processes {pids} (gdb is not installed: no stacks)"
    out = []
    for pid in pids:
        r = subprocess.run(["gdb", "-q", "-batch", "-p", pid, "-ex", "thread apply all bt 25"],
                           capture_output=True, text=True, timeout=120)
        out.append(f"---- pid {pid}\n" + "\n".join(
            l for l in r.stdout.splitlines() if l.startswith(("#", "Thread"))))
    return "\n".join(out)


def run(argv, env=None, timeout=TIMEOUT, cwd=None):
    """Runs argv in a process group of its own; on timeout, fails with the stacks of the group."""
    argv = [str(a) for a in argv]
    p = subprocess.Popen(argv, env=env if env is not None else clean_env(), cwd=cwd,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, errors="replace",
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stacks = _stacks(p.pid)
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        pytest.fail(f"{' '.join(argv)}: still running after {timeout} s (deadlock?)\n{stacks}")
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def status(returncode):
    """A shell's view of an exit status: 128+N when signal N killed the process."""
    return 128 - returncode if returncode < 0 else returncode


def without_run_lines(text):
    return "".join(l for l in text.splitlines(True) if not l.startswith("heapsnap:"))


def with_ulimit(argv, ulimit_v):
    if ulimit_v is None:
        return list(argv)
    return ["bash", "-c", f'ulimit -v {ulimit_v} && exec "$@"', "bash", *argv]


def run_both(argv, out, *run_opts, env=None, ulimit_v=None, timeout=TIMEOUT, quiet_tracer=True):
    """The program untraced, then under `heapsnap run -o out run_opts...`: the same output and
    status.  Returns the traced run."""
    env = clean_env(**(env or {}))
    plain = run(with_ulimit(argv, ulimit_v), env=env, timeout=timeout)
    traced = run(with_ulimit([HEAPSNAP, "run", "-o", out, *run_opts, "--", *argv], ulimit_v),
                 env=env, timeout=timeout)
    assert traced.stdout == plain.stdout, "stdout changed under heapsnap"
    assert without_run_lines(traced.stderr) == plain.stderr, "stderr changed under heapsnap"
    assert status(traced.returncode) == status(plain.returncode), "exit status changed"
    if quiet_tracer:
        assert not TRACER_MESSAGE.search(traced.stderr), traced.stderr
    return traced


# ---- reading the output folder ----------------------------------------------------------------------

def proc_dirs(out):
    return sorted((p for p in Path(out).iterdir() if p.is_dir()), key=lambda p: int(p.name))


def final(d):
    [f] = sorted(Path(d).glob("*-final.hsnap"))
    return Snapshot(f)


def finals_of(out, program):
    """The final snapshots of the processes of out that ran program."""
    snaps = [final(d) for d in proc_dirs(out) if list(d.glob("*-final.hsnap"))]
    return [s for s in snaps if s.meta["program"] == str(program)]


def sizes_at(snap, source, name):
    return sorted(t["size"] for t in snap.at(Path(source).name, site_line(source, name)))


def numbers(text):
    return [int(x) for x in re.findall(r"\d+", text)]


def consistent(snap):
    """The snapshot's counters agree with its traces, and nothing was lost."""
    assert int(snap.meta["current"]) == snap.total()
    assert snap.meta["lost_blocks"] == "0" and snap.meta["tracer_oom"] == "0"


# ---- threads ------------------------------------------------------------------------------------

def test_64_threads_freeing_each_others_blocks(tmp):
    src = SRC / "noharm_threads.c"
    r = run_both([PROGS / "noharm_threads", 300], tmp / "o")
    kept_n, kept_bytes, grown_n, grown_bytes = numbers(r.stdout)
    [s] = finals_of(tmp / "o", PROGS / "noharm_threads")
    kept = sizes_at(s, src, "kept")
    grown = sizes_at(s, src, "regrown")
    assert (len(kept), sum(kept)) == (kept_n, kept_bytes)
    assert (len(grown), sum(grown)) == (grown_n, grown_bytes)
    assert sizes_at(s, src, "handed") == []          # every handed-over block was freed
    consistent(s)
    assert s.meta["unknown_frees"] == "0"


def test_std_thread(tmp):
    src = SRC / "noharm_thread.cc"
    r = run_both([PROGS / "noharm_thread"], tmp / "o")
    _, n, nbytes = numbers(r.stdout)
    [s] = finals_of(tmp / "o", PROGS / "noharm_thread")
    kept = sizes_at(s, src, "kept")
    assert (len(kept), sum(kept)) == (n, nbytes) == (8, 8028)
    consistent(s)


# ---- fork, exec, spawn ----------------------------------------------------------------------------

@pytest.mark.parametrize("follow", [False, True], ids=["not-followed", "followed"])
def test_fork_from_a_multithreaded_program(tmp, follow):
    """Forks while 4 other threads allocate; again and again, each run under a timeout.  The
    children (half exit normally, half with _exit) check their own snapshot with the C API."""
    src = SRC / "noharm_mtfork.c"
    forks, reps = (6, 3) if follow else (40, 4)
    for rep in range(reps):
        out = tmp / f"o{rep}"
        opts = ["--follow-fork"] if follow else []
        if rep == 1:
            opts += ["--interval", "0.02"]   # the parent's tracer thread snapshots meanwhile
        r = run_both([PROGS / "noharm_mtfork", forks], out, *opts)
        assert r.stdout.endswith(f"forks {forks} failures 0\n")
        dirs = proc_dirs(out)
        parent = final(dirs[0])
        assert sizes_at(parent, src, "parent") == [4444]
        assert sizes_at(parent, src, "child") == []
        if not follow:
            assert len(dirs) == 1
            continue
        assert len(dirs) == 1 + forks
        for d in dirs[1:]:
            child = final(d)
            assert child.meta["pid"] == d.name
            assert sizes_at(child, src, "child") == [3333]
            assert sizes_at(child, src, "parent") == []   # allocated after the forks


@pytest.mark.parametrize("follow", [False, True], ids=["not-followed", "followed"])
def test_fork_while_another_thread_is_in_the_loader(tmp, follow):
    """A thread is inside dl_iterate_phdr (as C++ exception unwinding is) when another forks;
    the child allocates and ends with _exit, which needs nothing of the loader's."""
    out = tmp / "o"
    r = run_both([PROGS / "noharm_forkloader", 3], out,
                 *(["--follow-fork"] if follow else []), timeout=20, quiet_tracer=not follow)
    assert r.stdout.count("child exited 0") == 3
    # A child forked while the loader's lock may be held cannot unwind safely: heapsnap does not
    # trace it and says so once per child (relayed by run), instead of hanging it.
    assert len(proc_dirs(out)) == 1
    said = [l for l in r.stderr.splitlines() if "inside dl_iterate_phdr; not tracing" in l]
    assert len(said) == (3 if follow else 0), r.stderr


@pytest.mark.parametrize("follow", [False, True], ids=["not-followed", "followed"])
@pytest.mark.parametrize("how", ["fork", "spawn", "system", "vfork"])
def test_start_another_program(tmp, how, follow):
    """fork + exec, posix_spawn, system() and vfork + exec: the child is traced into DIR/<pid>
    only with --follow-fork."""
    child = PROGS / "noharm_child"
    out = tmp / "o"
    r = run_both([PROGS / "noharm_spawn", how, child], out,
                 *(["--follow-fork"] if follow else []))
    assert r.stdout == f"child started by {how}\n{how}: child exited 0\n"
    [parent] = finals_of(out, PROGS / "noharm_spawn")
    assert sizes_at(parent, SRC / "noharm_spawn.c", "parent") == [4321]
    children = finals_of(out, child)
    if not follow:
        assert len(proc_dirs(out)) == 1
        assert children == []
        return
    [c] = children
    assert sizes_at(c, SRC / "noharm_child.c", "child") == [5555]
    # system() runs the child through /bin/sh, which is traced too.
    assert len(proc_dirs(out)) == (3 if how == "system" else 2)


# ---- libraries ----------------------------------------------------------------------------------------

def test_dlopen_dlclose(tmp):
    """A library loaded, used and unloaded three times: its blocks, including those its
    constructor allocated while the loader ran it, keep their file, line and function after the
    dlclose, in a snapshot taken then with the C API and in the final one."""
    api = tmp / "api.hsnap"
    lib = PROGS / "libnoharm_dl.so"
    libsrc = SRC / "libnoharm_dl.c"
    run_both([PROGS / "noharm_dl", lib, 3], tmp / "o", env={"NOHARM_SNAPSHOT": api})
    [fin] = finals_of(tmp / "o", PROGS / "noharm_dl")
    for s in (Snapshot(api), fin):
        assert sizes_at(s, libsrc, "dl") == [1000, 1001, 1002]
        assert sizes_at(s, libsrc, "ctor") == [777, 777, 777]
        for t in s.at("libnoharm_dl.c", site_line(libsrc, "dl")):
            assert t["frames"][0]["function"] == "dl_alloc"
            assert t["frames"][0]["object"] == str(lib)
            assert t["frames"][0]["file"] == str(libsrc)
        for t in s.at("libnoharm_dl.c", site_line(libsrc, "ctor")):
            assert t["frames"][0]["function"] == "dl_ctor"
        assert not [t for t in s.traces if t["size"] == 50]
        consistent(s)


@pytest.fixture
def early_program(tmp):
    """noharm_early linked with libnoharm_early.so, whose constructor allocates."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    exe = tmp / "noharm_early"
    subprocess.run(["cc", "-O0", "-g", "-o", exe, SRC / "noharm_early.c", "-Wl,--no-as-needed",
                    f"-L{PROGS}", "-l:libnoharm_early.so", f"-Wl,-rpath,{PROGS}"], check=True)
    return exe


def test_library_constructor_before_the_tracers(tmp, early_program):
    # The library's constructor does run before heapsnap's.
    r = run([early_program], env=clean_env(LD_PRELOAD=LIB, LD_DEBUG="files"))
    inits = [l.split("calling init: ")[1] for l in r.stderr.splitlines() if "calling init:" in l]
    early = [i for i, name in enumerate(inits) if name.endswith("libnoharm_early.so")]
    tracer = [i for i, name in enumerate(inits) if name.endswith("libheapsnap.so")]
    assert early and tracer and early[0] < tracer[0], inits

    r = run_both([early_program], tmp / "o")
    assert "early block allocated" in r.stdout
    [s] = finals_of(tmp / "o", early_program)
    lib = SRC / "libnoharm_early.c"
    assert sizes_at(s, lib, "early") == [2468]
    assert sizes_at(s, lib, "early-strdup") == [len("allocated in a constructor") + 1]
    [t] = s.at("libnoharm_early.c", site_line(lib, "early"))
    assert t["frames"][0]["function"] == "early_ctor"
    assert sizes_at(s, SRC / "noharm_early.c", "late") == [1357]


def test_preinit_array_allocation_is_traced(tmp, early_program):
    """The program's DT_PREINIT_ARRAY function runs before every constructor, libc's included:
    its allocation is the process's first, and HEAPSNAP_FRAMES promises tracing from there."""
    run_both([early_program], tmp / "o")
    [s] = finals_of(tmp / "o", early_program)
    assert sizes_at(s, SRC / "noharm_early.c", "preinit") == [1122]


# ---- C++ exceptions, longjmp, signals ----------------------------------------------------------------

def test_cxx_exceptions_through_allocating_frames(tmp):
    src = SRC / "noharm_exc.cc"
    r = run_both([PROGS / "noharm_exc", 200], tmp / "o")
    caught, n, nbytes = numbers(r.stdout)
    assert caught == n == 5 * 200 + 1
    [s] = finals_of(tmp / "o", PROGS / "noharm_exc")
    kept = sizes_at(s, src, "survivor")
    assert (len(kept), sum(kept)) == (n, nbytes)
    # What the unwinder destroyed is gone: only the survivors are left in noharm_exc.cc,
    # besides the stdout buffer and the threads' stacks.
    mine = [t for t in s.traces if t["frames"] and t["frames"][0]["file"] == str(src)]
    assert sum(t["size"] for t in mine) - nbytes < 8192, mine
    consistent(s)


def test_longjmp_out_of_allocating_functions(tmp):
    src = SRC / "noharm_jmp.c"
    r = run_both([PROGS / "noharm_jmp"], tmp / "o")
    jumps, n, nbytes = numbers(r.stdout)
    assert jumps == 20
    [s] = finals_of(tmp / "o", PROGS / "noharm_jmp")
    level, raised = sizes_at(s, src, "level"), sizes_at(s, src, "raised")
    assert (len(level), len(raised)) == (60, 10)
    assert (len(level) + len(raised), sum(level) + sum(raised)) == (n, nbytes)
    assert sizes_at(s, src, "after") == [4242]     # still traced after all the jumps
    assert not [t for t in s.traces if t["size"] == 1000]
    consistent(s)


def test_handlers_for_every_signal(tmp):
    r = run_both([PROGS / "noharm_signals"], tmp / "o")
    assert "SIGPROF fired while allocating: yes" in r.stdout
    [s] = finals_of(tmp / "o", PROGS / "noharm_signals")
    assert sizes_at(s, SRC / "noharm_signals.c", "kept") == [2222]
    consistent(s)


@pytest.mark.parametrize("how,code", [("_exit", 7), ("_Exit", 9), ("thread-_exit", 5),
                                      ("abort", 134)])
def test_exit_without_exit(tmp, how, code):
    """_exit, _Exit, _exit from another thread while main allocates, and abort: same status
    (134 for abort, both ways), the atexit handler does not run, the stdio buffer is lost."""
    r = run_both([PROGS / "noharm_exit", how], tmp / "o")
    assert status(r.returncode) == code
    assert r.stdout == "written with write(2)\n"
    [d] = proc_dirs(tmp / "o")
    if how == "abort":
        assert list(d.glob("*.hsnap")) == []
        assert "killed by signal 6" in r.stderr
        return
    s = final(d)
    assert sizes_at(s, SRC / "noharm_exit.c", "kept") == [3456]


@pytest.mark.parametrize("how,code", [("pthread_exit", 0), ("sys_exit", 7)])
def test_last_program_thread_ends_the_process(tmp, how, code):
    """Every program thread ends without exit() (pthread_exit from main, a raw exit system
    call): untraced the process ends there; traced, the tracer's own thread once kept it alive
    for ever.  Same output and status, the atexit handler only where glibc runs it, and a final
    snapshot."""
    r = run_both([PROGS / "noharm_lastthread", how], tmp / "o", "--interval", "0.1",
                 timeout=30)
    assert status(r.returncode) == code
    assert ("atexit handler ran" in r.stdout) == (how == "pthread_exit")
    [d] = proc_dirs(tmp / "o")
    s = final(d)
    if how == "pthread_exit":
        assert sizes_at(s, SRC / "noharm_lastthread.c", "kept") == [4321]


def test_nothing_on_stderr_when_the_log_cannot_be_written(tmp):
    """A program that drops root: its snapshots are skipped (the folder is root's), and the
    tracer's messages, which it cannot log, once went to the program's standard error, one
    per snapshot."""
    run_both([PROGS / "noharm_dropuid"], tmp / "o", "-q", "--interval", "0.05")


def test_allocating_handler_on_a_small_alternate_stack(tmp):
    """A handler on an 8 KiB alternate signal stack allocates: libunwind's walk through the
    signal frame overflowed that stack (SIGSEGV); there the stack is not walked."""
    r = run_both([PROGS / "noharm_altstack"], tmp / "o")
    assert r.stdout == "handled 100\n"


def test_no_cancellation_inside_malloc(tmp):
    """A deferred cancellation pending while the thread allocates through frames without unwind
    tables: libunwind's address checks (a pipe's read and write) were cancellation points inside
    malloc, so the thread was cancelled in its first malloc."""
    r = run_both([PROGS / "noharm_cancel", "10"], tmp / "o", timeout=120)
    assert r.stdout == "cancelled at the cancellation point: 10 of 10\n"


# ---- the malloc API's corners and running out of memory ------------------------------------------

def test_malloc_api_corners(tmp):
    src = SRC / "noharm_edge.c"
    r = run_both([PROGS / "noharm_edge"], tmp / "o")
    assert "realloc(p, 0): NULL\n" in r.stdout
    assert "errno changed by successful calls: 0 times\n" in r.stdout
    [s] = finals_of(tmp / "o", PROGS / "noharm_edge")
    expected = {"zero": [0], "zero-realloc": [0], "failed-realloc": [555],
                "posix_memalign": [200], "aligned_alloc": [256], "memalign": [300],
                "valloc": [400], "pvalloc": [os.sysconf("SC_PAGESIZE")]}
    for name, sizes in expected.items():
        assert sizes_at(s, src, name) == sizes, name
    assert not [t for t in s.traces if t["size"] == 100]       # realloc(p, 0) freed it
    consistent(s)
    assert s.meta["unknown_frees"] == "0"


def info_counters(path):
    r = subprocess.run([HEAPSNAP, "info", path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    m = re.search(r"^not recorded\s+(\d+) blocks, (\d+) bytes(.*)$", r.stdout, re.M)
    u = re.search(r"^unknown frees\s+(\d+)", r.stdout, re.M)
    return int(m.group(1)), int(m.group(2)), m.group(3), int(u.group(1))


ULIMIT_V = 256 * 1024      # KiB


def test_out_of_memory_c(tmp):
    """Under `ulimit -v`: the program sees NULL as usual and goes on.  Near the limit the
    tracer's own tables cannot grow: the blocks it could not record are counted, and each of
    them is an unknown free later, when the program frees it."""
    src = SRC / "noharm_edge.c"
    r = run_both([PROGS / "noharm_edge", "oom"], tmp / "o", ulimit_v=ULIMIT_V,
                 quiet_tracer=False)
    assert r.stdout == ("hoarded until malloc failed: yes\n"
                        "small blocks in the freed room: all\n"
                        "after freeing: malloc works\n")
    [d] = proc_dirs(tmp / "o")
    [path] = d.glob("*-final.hsnap")
    lost, lost_bytes, note, unknown = info_counters(path)
    assert lost > 0 and lost_bytes == 24 * lost and "short of memory" in note
    assert unknown == lost
    s = Snapshot(path)
    assert sizes_at(s, src, "after-oom") == [100000]
    assert sizes_at(s, src, "hoard") == [] and sizes_at(s, src, "refill") == []
    assert int(s.meta["current"]) == s.total()


def test_out_of_memory_cxx(tmp):
    """std::bad_alloc, nothrow new and the new-handler under `ulimit -v`, as without heapsnap."""
    r = run_both([PROGS / "noharm_oom"], tmp / "o", ulimit_v=ULIMIT_V, quiet_tracer=False)
    assert "new char[1 TiB]: std::bad_alloc\n" in r.stdout
    assert "with a throwing new-handler: std::bad_alloc, handler called 1 time(s)\n" in r.stdout


def test_new_handler_frees_are_seen(tmp):
    """The block that the new-handler frees is gone from the snapshot."""
    src = SRC / "noharm_oom.cc"
    out = tmp / "o"
    r = run(with_ulimit([HEAPSNAP, "run", "-q", "-o", out, "--", PROGS / "noharm_oom"],
                        ULIMIT_V))
    assert r.returncode == 0, r.stderr
    assert "with a releasing new-handler: a block, handler called 1 time(s)\n" in r.stdout
    [s] = finals_of(out, PROGS / "noharm_oom")
    assert sizes_at(s, src, "after") == [4000]
    assert sizes_at(s, src, "rescued") == []             # deleted by the program
    assert sizes_at(s, src, "reserve") == [], "freed by the new-handler, still in the snapshot"
    assert int(s.meta["current"]) == s.total()


# ---- file descriptors and daemons -------------------------------------------------------------------

def test_descriptors_are_the_programs(tmp):
    """The first open gives descriptor 3; after close_range(3, ~0) the program's own pipe is 3
    and 4, and what it writes into it is what it reads back."""
    r = run_both([PROGS / "noharm_fds"], tmp / "o")
    assert r.stdout.startswith("first open: descriptor 3\n")


@pytest.mark.parametrize("nofile", [None, 64])
def test_descriptors_the_tracer_keeps_are_out_of_the_way(tmp, nofile):
    """libdw keeps open the files of every module a snapshot symbolized: after interval
    snapshots, the program's next open still gets descriptor 3, also with only 64 descriptors
    allowed.  The tracer's thread keeps its timeline open between ticks: when the program closes
    every descriptor, the timeline goes on (one header, rows to the end)."""
    out = tmp / "o"
    argv = [PROGS / "noharm_fdkeep"]
    if nofile is not None:
        argv = ["bash", "-c", f'ulimit -n {nofile} && exec "$@"', "bash", *argv]
    r = run_both(argv, out, "--interval", "0.1")
    assert r.stdout == "lowest free descriptor after the snapshots: 3\n"
    [d] = proc_dirs(out)
    assert len(list(d.glob("*-interval.hsnap"))) >= 3
    lines = (d / "timeline.tsv").read_text().splitlines()
    assert [l for l in lines if l.startswith("t_seconds")] == [lines[0]]
    times = [float(l.split("\t")[0]) for l in lines[1:]]
    assert len([t for t in times if 1.15 < t < 1.35]) >= 2, times   # after the close_range



def wait_for(predicate, timeout=TIMEOUT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(0.05)
    return predicate()


def test_daemon_closing_every_descriptor(tmp):
    """Double fork, setsid, chdir /, close 0-1023: the daemon's own descriptors stay its own
    (a pipe through which it talks to itself, the numbers open gives it), its result is the same,
    and with --follow-fork its final snapshot is found in DIR."""
    src = SRC / "noharm_daemon.c"
    plain_result, traced_result = tmp / "plain.result", tmp / "traced.result"
    plain = run([PROGS / "noharm_daemon", plain_result])
    assert wait_for(plain_result.exists), "the untraced daemon wrote no result"
    out = tmp / "o"
    traced = run([HEAPSNAP, "run", "--follow-fork", "-o", out, "--", PROGS / "noharm_daemon",
                  traced_result])
    assert (traced.returncode, traced.stdout) == (plain.returncode, plain.stdout) == \
        (0, "daemonizing\n")
    assert without_run_lines(traced.stderr) == plain.stderr == ""
    assert wait_for(traced_result.exists), "the traced daemon wrote no result"
    pid = numbers(traced_result.read_text().splitlines()[0])[0]
    final_snapshot = out / str(pid)
    assert wait_for(lambda: list(final_snapshot.glob("*-final.hsnap"))), \
        f"no final snapshot of the daemon in {final_snapshot}"
    s = final(final_snapshot)
    assert sizes_at(s, src, "daemon") == [6543]
    assert len(proc_dirs(out)) == 3              # the program, the session leader, the daemon
    assert not [p for p in proc_dirs(out) if (p / "heapsnap.log").exists()]

    def body(path):
        return path.read_text().split("\n", 1)[1]   # without the pid
    assert body(traced_result) == body(plain_result), \
        f"untraced:\n{body(plain_result)}traced:\n{body(traced_result)}"


# ---- programs heapsnap cannot trace ---------------------------------------------------------------

def check_untraceable(tmp, prog, why):
    out = tmp / "o"
    r = run_both([prog], out)
    assert (status(r.returncode), r.stdout) == (4, "hello from a program\n")
    assert f"heapsnap: cannot trace {prog}: {why}" in r.stderr
    assert not out.exists()
    # Said before the program runs: first on a shared stream.
    both = subprocess.run([HEAPSNAP, "run", "-o", out, "--", prog], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT, env=clean_env())
    lines = both.stdout.splitlines()
    assert lines[0].startswith(f"heapsnap: cannot trace {prog}"), lines


def test_static_binary(tmp):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    prog = tmp / "hello-static"
    r = subprocess.run(["cc", "-static", "-O0", "-g", "-o", prog, SRC / "noharm_hello.c"],
                       capture_output=True, text=True)
    if r.returncode != 0 and "cannot find -lc" in r.stderr:
        pytest.skip("no static C library (libc6-dev's libc.a)")
    assert r.returncode == 0, r.stderr
    check_untraceable(tmp, prog, "it is statically linked")


def test_setuid_binary(tmp):
    prog = tmp / "hello-suid"
    shutil.copy(PROGS / "noharm_hello", prog)
    if os.geteuid() == 0:
        os.chown(prog, 65534, -1)          # nobody's, so that it really changes identity
    prog.chmod(0o4755)
    check_untraceable(tmp, prog, "it is set-user-ID")


# ---- another allocator preloaded --------------------------------------------------------------------

needs_jemalloc = pytest.mark.skipif(not JEMALLOC.exists(),
                                    reason="libjemalloc2 is not installed")


@needs_jemalloc
def test_jemalloc_preloaded_before_run(tmp):
    """LD_PRELOAD=jemalloc in the environment of run: run puts heapsnap first, and heapsnap
    traces on top of jemalloc."""
    src = SRC / "noharm_jemalloc.c"
    r = run_both([PROGS / "noharm_jemalloc"], tmp / "o", env={"LD_PRELOAD": JEMALLOC})
    assert r.stdout.startswith("allocator: jemalloc 5.")
    [s] = finals_of(tmp / "o", PROGS / "noharm_jemalloc")
    for name, size in (("small", 48), ("large", 100 * 1024), ("huge", 8 << 20),
                       ("aligned", 5000)):
        assert sizes_at(s, src, name) == [size], name
    assert len(sizes_at(s, src, "grown")) == 1
    consistent(s)


@needs_jemalloc
@pytest.mark.parametrize("prog,args", [("noharm_threads", [300]), ("noharm_exc", [100])])
def test_jemalloc_after_heapsnap_in_ld_preload(tmp, prog, args):
    """LD_PRELOAD=libheapsnap.so:libjemalloc.so.2 with HEAPSNAP_FRAMES and HEAPSNAP_OUTPUT:
    64 threads, and C++ (jemalloc's operator new under heapsnap's)."""
    argv = [PROGS / prog, *args]
    plain = run(argv, env=clean_env(LD_PRELOAD=JEMALLOC))
    out = tmp / "final.hsnap"
    traced = run(argv, env=clean_env(LD_PRELOAD=f"{LIB}:{JEMALLOC}", HEAPSNAP_FRAMES=16,
                                     HEAPSNAP_OUTPUT=out))
    assert (traced.returncode, traced.stdout, traced.stderr) == \
        (plain.returncode, plain.stdout, plain.stderr) and plain.returncode == 0
    s = Snapshot(out)
    if prog == "noharm_threads":
        kept_n, kept_bytes, grown_n, grown_bytes = numbers(plain.stdout)
        kept = sizes_at(s, SRC / "noharm_threads.c", "kept")
        grown = sizes_at(s, SRC / "noharm_threads.c", "regrown")
        assert (len(kept), sum(kept), len(grown), sum(grown)) == \
            (kept_n, kept_bytes, grown_n, grown_bytes)
    else:
        _, n, nbytes = numbers(plain.stdout)
        kept = sizes_at(s, SRC / "noharm_exc.cc", "survivor")
        assert (len(kept), sum(kept)) == (n, nbytes)
    consistent(s)
