#!/usr/bin/env bash
# The first command of the README: install what is missing, build, and show heapsnap finding a
# leak in the example service, with nothing changed in the service's code.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j"$(nproc)"
make -C examples >/dev/null

out=$(mktemp -d)/service.hsnap
echo
echo "== The service, traced through the environment alone; final snapshot: $out"
LD_PRELOAD="$PWD/build/libheapsnap.so" HEAPSNAP_FRAMES=16 HEAPSNAP_OUTPUT="$out" \
    examples/build/service 300 1
echo
echo "== The leak hunt with the C API: a snapshot per iteration, compared with the first,"
echo "   filtered to the sessions library"
examples/build/leak_hunt
