#!/usr/bin/env bash
# Interleaved throughput of one workload under several allocator libraries: each round runs the
# command once under every library in turn and prints the RESULT line's ops_per_sec in millions.
# For quick A/B checks of a change (the runner does the full job: verification, spreads, RSS).
# usage: scripts/ab_ops.sh ROUNDS "bench/build/WORKLOAD key=value..." LIB.so [LIB.so...]
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,5p' "$0" >&2
  exit 2
fi
rounds=$1 cmd=$2
shift 2
for _ in $(seq "$rounds"); do
  for lib in "$@"; do
    # shellcheck disable=SC2086 # the command line is split on purpose
    ops=$(LD_PRELOAD=$lib $cmd | sed -n 's/.*ops_per_sec=\([0-9]*\).*/\1/p')
    printf '%s %d  ' "$(basename "$lib" .so)" $((${ops:-0} / 1000000))
  done
  echo
done
