"""pytest plugin: leak checks for test suites (`pytest --heapsnap-leaks`).

Each selected test function runs a few times to warm up (caches fill, imports happen), then
several more times with a heapsnap snapshot after each run.  heapsnap's leak verdict (the one of
`heapsnap leaks`, run in C: trend x steadiness x ending x support over the series) names the
tracebacks whose memory kept growing; a test with such a suspect growing at least the threshold
per run fails, and the report shows the growing line and its traceback.

Options (and the same keywords on the marker, per test):

    --heapsnap-leaks                 turn the checks on (off by default: the plugin is inert)
    --heapsnap-leaks-runs N          measured runs after the warm-up (default 5; at least 3)
    --heapsnap-leaks-warmup N        warm-up runs (default 2)
    --heapsnap-leaks-threshold B     bytes per run a site must grow by to count (default 512)
    --heapsnap-leaks-confidence C    the verdict's minimum confidence, 0..1 (default 0.5)
    --heapsnap-leaks-frames N        traceback depth (default 10)

    @pytest.mark.heapsnap_leaks(runs=8, threshold=4096)   # per test
    @pytest.mark.heapsnap_leaks(enabled=False)            # never checked

Fixtures are set up once and shared by the runs of a test.  Coroutine tests are not checked.
The plugin's own allocations (this package's files) are left out of the snapshots.
"""
import gc
import inspect
import os

import pytest

_DEFAULTS = {"runs": 5, "warmup": 2, "threshold": 512, "confidence": 0.5, "frames": 10}
_KEY = "heapsnap_leaks"


def pytest_addoption(parser):
    group = parser.getgroup("heapsnap", "memory leak checks with heapsnap")
    group.addoption("--heapsnap-leaks", action="store_true", default=False,
                    help="run each test several times and fail the tests whose traced memory "
                         "keeps growing")
    group.addoption("--heapsnap-leaks-runs", type=int, default=None, metavar="N",
                    help="measured runs per test (default %d)" % _DEFAULTS["runs"])
    group.addoption("--heapsnap-leaks-warmup", type=int, default=None, metavar="N",
                    help="warm-up runs per test (default %d)" % _DEFAULTS["warmup"])
    group.addoption("--heapsnap-leaks-threshold", type=int, default=None, metavar="BYTES",
                    help="growth per run that counts as a leak (default %d)"
                         % _DEFAULTS["threshold"])
    group.addoption("--heapsnap-leaks-confidence", type=float, default=None, metavar="C",
                    help="minimum confidence of the leak verdict, 0..1 (default %.1f)"
                         % _DEFAULTS["confidence"])
    group.addoption("--heapsnap-leaks-frames", type=int, default=None, metavar="N",
                    help="traceback depth (default %d)" % _DEFAULTS["frames"])


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "heapsnap_leaks(runs=None, warmup=None, threshold=None, confidence=None, frames=None, "
        "enabled=True): settings of heapsnap's leak check for this test")
    config._heapsnap_leaks = {"checked": 0, "leaking": []}


def _settings(item):
    config = item.config
    s = {}
    for name, default in _DEFAULTS.items():
        v = config.getoption("heapsnap_leaks_" + name)
        s[name] = default if v is None else v
    s["enabled"] = True
    for mark in reversed(list(item.iter_markers(_KEY))):   # closest marker last, so it wins
        for k, v in mark.kwargs.items():
            if k not in s:
                raise pytest.UsageError("heapsnap_leaks marker: unknown setting %r" % k)
            s[k] = v
    if s["runs"] < 3:
        raise pytest.UsageError("heapsnap leak check: at least 3 measured runs are needed")
    if s["warmup"] < 0 or s["threshold"] < 1 or not 0 <= s["confidence"] <= 1:
        raise pytest.UsageError("heapsnap leak check: bad warmup, threshold or confidence")
    return s


def _measure(run, s):
    """Warm-up runs, then a snapshot before and after each measured run; the suspects."""
    import heapsnap

    own = heapsnap.Filter(False, os.path.join(os.path.dirname(heapsnap.__file__), "*"))

    def snapshot():
        gc.collect()
        snap = heapsnap.take_snapshot().filter_traces([own])
        # Growth is judged per run, not per second: a run's duration is noise here.
        snap._data.set_time(0.0, float(len(snaps)))
        return snap

    was_tracing = heapsnap.is_tracing()
    if not was_tracing:
        heapsnap.start(s["frames"])
    try:
        for _ in range(s["warmup"]):
            run()
        snaps = []
        snaps.append(snapshot())
        for _ in range(s["runs"]):
            run()
            snaps.append(snapshot())
    finally:
        if not was_tracing:
            heapsnap.stop()
    return heapsnap.leaks(snaps, "traceback", s["confidence"], s["threshold"] * s["runs"])


def _test_frames(traceback):
    """The traceback from the test function on: the frames of pytest and of this plugin, which
    every test shares, are left out."""
    import heapsnap

    own = os.path.dirname(heapsnap.__file__) + os.sep
    frames = list(traceback)
    for i in range(len(frames) - 1, -1, -1):
        if frames[i].filename.startswith(own):
            return heapsnap.Traceback(tuple(f._frame for f in frames[i + 1:])[::-1])
    return traceback


def _report(name, suspects, s):
    # (a suspect's "per snapshot" rate is its growth per run)
    lines = ["heapsnap: memory kept growing over %d runs of %s (after %d warm-up runs):"
             % (s["runs"], name, s["warmup"])]
    for i, sus in enumerate(suspects[:5], 1):
        lines.append("#%d %s" % (i, sus))
        lines.append("   confidence %.2f = trend %.2f x steadiness %.2f x ending %.2f x "
                     "support %.2f" % (sus.confidence, sus.trend, sus.steadiness, sus.ending,
                                       sus.support))
        lines.extend(_test_frames(sus.traceback).format())
    if len(suspects) > 5:
        lines.append("... and %d more growing sites" % (len(suspects) - 5))
    return "\n".join(lines)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if not pyfuncitem.config.getoption("heapsnap_leaks"):
        return None
    s = _settings(pyfuncitem)
    fn = pyfuncitem.obj
    if not s["enabled"] or inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        return None
    args = {a: pyfuncitem.funcargs[a] for a in pyfuncitem._fixtureinfo.argnames}
    suspects = _measure(lambda: fn(**args), s)
    state = pyfuncitem.config._heapsnap_leaks
    state["checked"] += 1
    if suspects:
        state["leaking"].append((pyfuncitem.nodeid, suspects[0]))
        pyfuncitem.user_properties.append(("heapsnap_leak", str(suspects[0])))
        pytest.fail(_report(pyfuncitem.name, suspects, s), pytrace=False)
    return True


def pytest_terminal_summary(terminalreporter, config):
    state = getattr(config, "_heapsnap_leaks", None)
    if not config.getoption("heapsnap_leaks") or state is None:
        return
    terminalreporter.section("heapsnap leak check")
    terminalreporter.write_line("%d tests checked, %d leaking" % (state["checked"],
                                                                  len(state["leaking"])))
    for nodeid, top in state["leaking"]:
        terminalreporter.write_line("LEAK %s: %s" % (nodeid, top))
