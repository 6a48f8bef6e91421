"""Shared fixtures for the tests that run real programs: where the build is, and helpers to run a
program under the tracer and read back the snapshot it wrote."""
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("HEAPSNAP_BUILD", ROOT / "build"))
LIB = Path(os.environ.get("HEAPSNAP_LIB", BUILD / "libheapsnap.so"))
HSDUMP = BUILD / "live" / "hsdump"


def clean_env(**extra):
    """The environment without any HEAPSNAP_ or LD_PRELOAD of the caller's, plus extra."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HEAPSNAP_") and k != "LD_PRELOAD"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_traced(argv, out, frames=8, timeout=60, **env):
    """Runs argv with the tracer preloaded, the final snapshot going to out."""
    e = clean_env(LD_PRELOAD=LIB, HEAPSNAP_FRAMES=frames, HEAPSNAP_OUTPUT=out, **env)
    return subprocess.run([str(a) for a in argv], env=e, capture_output=True, text=True,
                          timeout=timeout)


class Snapshot:
    """A snapshot file as hsdump prints it."""

    def __init__(self, path):
        r = subprocess.run([HSDUMP, str(path)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        self.meta, self.traces = {}, []
        for line in r.stdout.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "meta":
                key, _, value = rest.partition(" ")
                if key == "argv":
                    self.meta.setdefault("argv", []).append(value)
                else:
                    self.meta[key] = value
            elif kind == "trace":
                dom, size, nframes, total = map(int, rest.split())
                self.traces.append({"domain": dom, "size": size, "nframes": nframes,
                                    "total": total, "frames": []})
            elif kind == "frame":
                m = re.match(r"(.*):(\d+) (.*) \| (.*)$", rest)
                self.traces[-1]["frames"].append(
                    {"file": m.group(1), "line": int(m.group(2)), "function": m.group(3),
                     "object": m.group(4)})

    def total(self):
        return sum(t["size"] for t in self.traces)

    def at(self, filename, line):
        """Traces whose allocation site is filename (base name):line."""
        return [t for t in self.traces if t["frames"]
                and os.path.basename(t["frames"][0]["file"]) == filename
                and t["frames"][0]["line"] == line]


def site_line(source, name):
    """The line of source marked with a SITE:name comment."""
    for i, line in enumerate(Path(source).read_text().splitlines(), 1):
        if re.search(rf"SITE:{re.escape(name)}\b", line):
            return i
    raise KeyError(name)


@pytest.fixture
def tmp(tmp_path):
    return tmp_path
