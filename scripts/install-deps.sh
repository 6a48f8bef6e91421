#!/usr/bin/env bash
# Installs the Debian packages heapsnap needs to build and test, only those missing, so that a
# second run costs a few dpkg queries.  Needs root (or sudo) when something is missing.
set -euo pipefail

PACKAGES=(
    build-essential pkg-config clang libclang-rt-14-dev   # compilers; clang for the fuzzers
    libunwind-dev libdw-dev libelf-dev                     # stack capture, symbolization
    libcmocka-dev python3 python3-pytest                   # unit and end-to-end tests
    python3-dev python3-venv python3-setuptools python3-wheel  # the Python package (python/)
    valgrind                                               # agreement tests
    sqlite3 jq                                             # their workloads (tests/agreement)
    libprotobuf-c-dev protobuf-c-compiler zlib1g-dev       # export: pprof's profile.proto, gzip
    golang-go                                              # `go tool pprof` reads exports back in tests
    libjemalloc2                                           # another malloc under heapsnap (no-harm tests)
    libboost-context-dev                                   # fibers on their own stacks (unwind tests)
    rustc                                                  # Rust programs under the tracer (tests/test_rust.py)
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
echo "heapsnap: installing ${missing[*]}"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
