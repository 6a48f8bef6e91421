#!/usr/bin/env bash
# The first command of the README: install what is missing, build, and show heapsnap finding a
# leak in the example service, with nothing changed in the service's code.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j"$(nproc)"
make -s -C examples

out=$(mktemp -d)/out
echo
echo "== heapsnap run: the service, a snapshot every half second ($out)"
build/heapsnap run --interval 0.5 -o "$out" -- examples/build/service 400 10
echo
echo "== heapsnap leaks: what grows?"
build/heapsnap leaks --traceback-limit 4 "$out"
echo
echo "== The same hunt with the C API: a snapshot per iteration, compared with the first,"
echo "   filtered to the sessions library"
examples/build/leak_hunt
