#!/usr/bin/env bash
# scripts/ab_ops.sh: usage errors exit 2; a round prints every library's throughput, in order.
set -euo pipefail
lib=$(realpath "${1:?usage: test_ab_ops.sh LIB}")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/fake.sh" <<'FAKE'
#!/bin/sh
echo "RESULT ops_per_sec=${FAKE_OPS:-42000000} checksum=0 ops=1"
FAKE
chmod +x "$work/fake.sh"
if bash "$here/ab_ops.sh" 1 "$work/fake.sh" 2>/dev/null; then
  echo "FAIL: ab_ops.sh without a library succeeded" >&2
  exit 1
fi
ln -s "$lib" "$work/a.so"
ln -s "$lib" "$work/b.so"
out=$(FAKE_OPS=42000000 bash "$here/ab_ops.sh" 2 "$work/fake.sh" "$work/a.so" "$work/b.so")
want=$'a 42  b 42  \na 42  b 42  '
if [ "$out" != "$want" ]; then
  echo "FAIL: ab_ops.sh printed [$out], expected [$want]" >&2
  exit 1
fi
echo "ab_ops.sh: ok"
