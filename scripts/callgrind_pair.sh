#!/usr/bin/env bash
# Instructions per malloc+free pair of bench random_mixed under an allocator, from callgrind:
# (Ir(iters=2N) - Ir(iters=N)) / N, so start-up and teardown cancel out.
# usage: scripts/callgrind_pair.sh BINARY [LIB|none] [N] [extra key=value args...]
set -euo pipefail
bin=$1; lib=${2:-none}; n=${3:-200000}; shift 3 || shift $#
ir() {
  local it=$1 out; shift; out=$(mktemp)
  if [ "$lib" = none ]; then
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" iters="$it" "$@" >/dev/null 2>&1
  else
    LD_PRELOAD="$lib" valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" iters="$it" "$@" >/dev/null 2>&1
  fi
  awk '/^summary:/ {print $2}' "$out"; rm -f "$out"
}
a=$(ir "$n" "$@"); b=$(ir $((2 * n)) "$@")
echo "$(basename "$lib"): $(( (b - a) / n )) instructions per pair (Ir $a at iters=$n, $b at iters=$((2 * n)))"
