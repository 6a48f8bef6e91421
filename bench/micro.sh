#!/usr/bin/env bash
# Microbenchmarks of the allocation hot path: untraced, and traced at traceback limits 1 and 16.
# Prints nanoseconds per operation, the median of RUNS runs (default 5).  The whole suite, with
# real programs, heaptrack and scaling curves, is bench/run.py.
#   bench/micro.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
make -s build/libheapsnap.so
mkdir -p build/bench
cc -O2 -g -o build/bench/micro bench/micro.c -lpthread
lib=$PWD/build/libheapsnap.so

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() {   # measure FRAMES ARGS...: median ns/op; FRAMES 0 = untraced
    local frames=$1; shift
    for _ in $(seq "$runs"); do
        if [[ $frames == 0 ]]; then build/bench/micro "$@"
        else LD_PRELOAD=$lib HEAPSNAP_FRAMES=$frames build/bench/micro "$@"; fi
    done | median
}

printf '| workload | untraced ns/op | limit 1 ns/op | limit 16 ns/op |\n|---|---|---|---|\n'
for w in "mixed 1 2000000" "mixed 2 2000000" "cross 1000000" "realloc 1000000" \
         "depth 4 1000000" "depth 64 1000000"; do
    # shellcheck disable=SC2086
    printf '| %s | %s | %s | %s |\n' "$w" "$(measure 0 $w)" "$(measure 1 $w)" "$(measure 16 $w)"
done
