#!/usr/bin/env bash
# Installs what hakmem's build, tests and benchmarks need on a fresh Debian/Ubuntu machine:
# a C/C++ toolchain for the test and benchmark programs, python3 for the runner, valgrind for
# instruction counts, binutils for the symbol checks, pkg-config and the static C library for the
# install tests, the real programs the tests run, and tcmalloc (Debian's libtcmalloc-minimal4) for
# the benchmark runner to compare against.
set -euo pipefail
need=()
for pair in gcc:gcc g++:g++ make:make python3:python3 objdump:binutils valgrind:valgrind file:file \
            sqlite3:sqlite3 xz:xz-utils perl:perl pkg-config:pkg-config; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null || need+=("$pkg")
done
[ -e /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 ] || need+=(libtcmalloc-minimal4)
# the static C library, for the tests that check that static programs are refused (gcc -static)
[ -e "$(gcc -print-file-name=libc.a 2>/dev/null)" ] && [ "$(gcc -print-file-name=libc.a 2>/dev/null)" != libc.a ] ||
  need+=(libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust (stable) with rustup first" >&2; exit 1; }
echo "setup: ok ($(cargo --version))"
