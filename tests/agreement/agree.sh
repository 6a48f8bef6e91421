#!/usr/bin/env bash
# heapsnap's final snapshot against valgrind memcheck's "in use at exit", on real programs.
# The work is done by agree.py (standard library only); see its header for what it measures.
#   tests/agreement/agree.sh            every workload (several minutes: clang++ under valgrind)
#   tests/agreement/agree.sh --quick    the CI subset (under a minute); exit status 1 on a
#                                       difference that its measured causes do not explain
exec /usr/bin/python3 "$(dirname "$0")/agree.py" "$@"
