#!/usr/bin/env bash
# Installs what hakmem's build, tests and benchmarks need on a fresh Debian/Ubuntu machine.
set -euo pipefail
need=()
for pkg in gcc g++ make python3 binutils valgrind file; do
  case $pkg in
    binutils) command -v objdump >/dev/null || need+=(binutils) ;;
    *) command -v "$pkg" >/dev/null || need+=("$pkg") ;;
  esac
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust from rustup first" >&2; exit 1; }
echo "setup: ok ($(cargo --version))"
