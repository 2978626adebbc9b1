#!/usr/bin/env bash
# git under the allocator, for tests/run_real_programs.sh: clones the bare repository SRC into
# WORK, repacks it from scratch with two threads (delta search), checks every object, and prints
# digests of the history, the objects and the tree; they depend only on SRC.
#   bash tests/real/git_workload.sh SRC WORK
set -euo pipefail
src=$1 work=$2
rm -rf "$work"
# the serving side's stderr comes back as "remote: ..." lines: drop its statistics line
git clone -q --no-local "$src" "$work" 2>&1 | { grep -v '^remote: {"hakmem":' || true; } >&2
cd "$work"
git -c pack.threads=2 -c pack.window=20 repack -a -d -f -q
git fsck --strict --no-progress
echo "history $(git log --all --stat --format='%H %P%n%an %at%n%s' | sha256sum | cut -c1-16)"
echo "objects $(git rev-list --all --objects | sort | sha256sum | cut -c1-16)"
echo "tree $(git archive --format=tar HEAD | sha256sum | cut -c1-16)"
echo "blame $(git blame -w --line-porcelain README.md | grep -c '^author ')"
echo "git: done"
