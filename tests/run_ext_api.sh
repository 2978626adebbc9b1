#!/usr/bin/env bash
# The C extension API: a program compiled against include/hakmem.h and linked with -lhakmem.
set -uo pipefail
cd "$(dirname "$0")/.."
lib=${1:-target/release/libhakmem.so}
dir=$(dirname "$lib")
out=tests/build/ext
mkdir -p "$out"
pass=0 fail=0
# the program records the library's SONAME, libhakmem.so.0 (`make` creates this link too)
[ "$(basename "$lib")" = libhakmem.so ] && ln -sf libhakmem.so "$dir/libhakmem.so.0"
if gcc -O2 -Wall -Werror -Iinclude -o "$out/ext_api" tests/ext/ext_api.c -L"$dir" -lhakmem -Wl,-rpath,"$PWD/$dir" 2>"$out/cc.log" \
   && timeout 60 "$out/ext_api" >"$out/run.log" 2>&1 && grep -q "ext_api: ok" "$out/run.log" && grep -q "hakmem .* statistics" "$out/run.log"; then
  echo "ok   ext_api_header_and_link"; pass=$((pass + 1))
else
  echo "FAIL ext_api_header_and_link:"; cat "$out/cc.log" "$out/run.log" 2>/dev/null | tail -20; fail=$((fail + 1))
fi
# The committed header must be the one cbindgen generates from the source (make regenerates it).
if git diff --quiet -- include/hakmem.h 2>/dev/null; then
  echo "ok   header_is_current"; pass=$((pass + 1))
else
  echo "FAIL header_is_current: include/hakmem.h differs from the generated one; commit it"; fail=$((fail + 1))
fi
echo "ext-api: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
