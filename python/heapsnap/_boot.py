"""Run at interpreter start-up by heapsnap-native.pth (installed beside the package), which
imports it only when libheapsnap is in LD_PRELOAD: other interpreters pay one string search.

Under `heapsnap run -- python3 app.py` (libheapsnap.so preloaded and tracing), this joins the
tracer in native mode, so that its tracebacks show Python frames among the native ones, with no
change to the program.  Anywhere else it does nothing.  HEAPSNAP_PYTHON=0 turns it off.  It must
never break the interpreter's start-up: every failure is silent.
"""
import os


def attach():
    if "libheapsnap" not in os.environ.get("LD_PRELOAD", ""):
        return False
    if os.environ.get("HEAPSNAP_PYTHON", "1") == "0":
        return False
    try:
        from heapsnap import _heapsnap
        if not _heapsnap._native_attach():
            return False
        # The interpreter's teardown (modules, then every object) comes after the atexit
        # handlers: a periodic snapshot taken in it would show the blocks of the teardown.
        import atexit
        atexit.register(_heapsnap._native_exiting)
        return True
    except Exception:
        return False


attach()
