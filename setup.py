"""Build of the heapsnap Python package: the C extension heapsnap._heapsnap (python/*.c plus the
engine in src/common, src/snapshot and src/analysis) and the package in python/heapsnap.
Metadata is in pyproject.toml.

    python3 -m venv --system-site-packages .venv && .venv/bin/pip install --no-build-isolation .
    python3 setup.py build_ext --inplace        # for tests: the module lands in python/heapsnap
"""
import glob
import os

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

PTH = "heapsnap-native.pth"


class BuildWithPth(build_py):
    """Also puts python/heapsnap-native.pth at the top of the build, so that it is installed
    into site-packages: under `heapsnap run`, Python frames then appear in native tracebacks
    with no change to the program (heapsnap/_boot.py)."""

    def run(self):
        super().run()
        self.copy_file(os.path.join("python", PTH), os.path.join(self.build_lib, PTH))

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, PTH)]

HERE = os.path.dirname(os.path.abspath(__file__))


def sources():
    os.chdir(HERE)   # setuptools wants paths relative to setup.py
    engine = []
    for part in ("common", "snapshot", "analysis"):
        engine += sorted(glob.glob(os.path.join("src", part, "*.c")))
    return sorted(glob.glob(os.path.join("python", "*.c"))) + engine


def headers():
    """What a change must rebuild the extension for (setuptools does not track includes)."""
    found = []
    for pattern in (("python", "*.h"), ("include", "*.h"), ("src", "*", "*.h")):
        found += glob.glob(os.path.join(*pattern))
    return sorted(found)


# Warnings are errors in this project; HEAPSNAP_NO_WERROR=1 builds anyway on another compiler.
WARN = ["-Wall", "-Wextra", "-Wshadow", "-Wno-missing-field-initializers"]
if os.environ.get("HEAPSNAP_NO_WERROR") != "1":
    WARN.append("-Werror")

# Object files and the build tree go under build/python (beside make's output, removed by
# `make clean`); HEAPSNAP_BUILD_BASE moves them (the tests build under their own directory).
BUILD_BASE = os.environ.get("HEAPSNAP_BUILD_BASE", os.path.join("build", "python"))

setup(
    options={"build": {"build_base": BUILD_BASE}},
    cmdclass={"build_py": BuildWithPth},
    package_dir={"": "python"},
    packages=["heapsnap"],
    ext_modules=[
        Extension(
            "heapsnap._heapsnap",
            sources=sources(),
            depends=headers(),
            include_dirs=["include", "src", "python"],
            define_macros=[("_GNU_SOURCE", None)],
            extra_compile_args=["-std=gnu11", "-fvisibility=hidden", "-O2"] + WARN,
            libraries=["m", "dl"],
        )
    ],
)
