#!/usr/bin/env bash
# test_verify_symbols.sh LIB: checks that scripts/verify_symbols.sh passes a normal dynamic program
# under LIB and fails, with the right reason, for every way a run can escape the allocator:
# static programs, setuid/setgid programs, a program with its own malloc, and a missing, non-ELF
# or non-allocator library. One line per case, then "N passed, M failed"; exits 1 on any failure.
set -uo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 LIB" >&2
    exit 2
fi
LIB=$1
here=$(cd "$(dirname "$0")" && pwd)
verify="$here/verify_symbols.sh"
CC=${CC:-gcc}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_verify_symbols.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0

# expect NAME EXPECTED_RC REGEX -- verify_symbols.sh ARGS...
expect() {
    local name=$1 want_rc=$2 regex=$3
    shift 4
    local out rc
    out=$(bash "$verify" "$@" 2>&1)
    rc=$?
    if [ "$want_rc" = 0 ] && [ "$rc" -eq 0 ] && grep -qE -- "$regex" <<<"$out"; then
        echo "test: pass: $name"
        passed=$((passed + 1))
    elif [ "$want_rc" != 0 ] && [ "$rc" -ne 0 ] && grep -E -- "$regex" <<<"$out" | grep -q 'FAIL'; then
        echo "test: pass: $name ($(grep -E -- "$regex" <<<"$out" | grep -m1 FAIL | sed 's/^verify: FAIL: //'))"
        passed=$((passed + 1))
    else
        echo "test: FAIL: $name: exit $rc, wanted $([ "$want_rc" = 0 ] && echo 0 || echo 'non-zero') and output matching /$regex/"
        sed 's/^/    /' <<<"$out"
        failed=$((failed + 1))
    fi
}

skip() { echo "test: skip: $*"; }

# A well-behaved program that uses all four core functions.
cat >"$tmp/normal.c" <<'EOF'
#include <stdlib.h>
#include <string.h>
int main(void)
{
    char *p = malloc(100);
    int *z = calloc(10, sizeof *z);
    if (!p || !z || z[9] != 0)
        return 1;
    memset(p, 'x', 100);
    p = realloc(p, 5000);
    if (!p || p[99] != 'x')
        return 1;
    free(p);
    free(z);
    return 0;
}
EOF
# A program that brings its own malloc/free/calloc/realloc (a bump allocator over a static arena).
cat >"$tmp/own_malloc.c" <<'EOF'
#include <stddef.h>
#include <string.h>
static _Alignas(16) char arena[1 << 22];
static size_t used;
void *malloc(size_t n)
{
    size_t need = (n + 31) & ~(size_t)15;
    if (need > sizeof arena - used)
        return NULL;
    char *p = arena + used + 16;
    used += need;
    memcpy(p - 16, &n, sizeof n);
    return p;
}
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b)
{
    size_t n = a * b;
    void *p = malloc(n);
    if (p)
        memset(p, 0, n);
    return p;
}
void *realloc(void *p, size_t n)
{
    void *q = malloc(n);
    if (p && q) {
        size_t old;
        memcpy(&old, (char *)p - 16, sizeof old);
        memcpy(q, p, old < n ? old : n);
    }
    return q;
}
int main(void)
{
    char *p = malloc(64);
    p = realloc(p, 128);
    free(calloc(4, 4));
    free(p);
    return 0;
}
EOF
cat >"$tmp/exit3.c" <<'EOF'
#include <stdlib.h>
int main(void) { free(malloc(10)); return 3; }
EOF

if ! "$CC" -O1 -o "$tmp/normal" "$tmp/normal.c" || ! "$CC" -O1 -o "$tmp/own_malloc" "$tmp/own_malloc.c" ||
    ! "$CC" -O1 -o "$tmp/exit3" "$tmp/exit3.c"; then
    echo "test: FAIL: cannot compile the test programs with $CC"
    echo "0 passed, 1 failed"
    exit 1
fi

# 1. The positive case: a normal dynamic program under LIB.
expect "dynamic program runs on $LIB" 0 'verify: PASS' -- --lib "$LIB" "$tmp/normal"

# 2. Statically linked programs never see LD_PRELOAD.
if "$CC" -O1 -static -o "$tmp/static" "$tmp/normal.c" 2>/dev/null; then
    expect "static program is refused" 1 'statically linked' -- --lib "$LIB" "$tmp/static"
else
    skip "static program: '$CC -static' failed (no static libc installed)"
fi
if "$CC" -O1 -static-pie -o "$tmp/static_pie" "$tmp/normal.c" 2>/dev/null; then
    expect "static-pie program is refused" 1 'statically linked' -- --lib "$LIB" "$tmp/static_pie"
else
    skip "static-pie program: '$CC -static-pie' failed"
fi

# 3. setuid/setgid programs run in secure mode, which ignores LD_PRELOAD (the bit itself is
#    checked, so this holds when the test runs as root too).
cp "$tmp/normal" "$tmp/setuid" && chmod u+s "$tmp/setuid"
if [ -u "$tmp/setuid" ]; then
    expect "setuid program is refused" 1 'setuid' -- --lib "$LIB" "$tmp/setuid"
else
    skip "setuid program: this file system does not keep the setuid bit"
fi
cp "$tmp/normal" "$tmp/setgid" && chmod g+s "$tmp/setgid"
if [ -g "$tmp/setgid" ]; then
    expect "setgid program is refused" 1 'setgid' -- --lib "$LIB" "$tmp/setgid"
else
    skip "setgid program: this file system does not keep the setgid bit"
fi

# 4. A program with its own allocator: its malloc binds to itself, not to LIB.
expect "program with its own malloc is refused" 1 'brings its own allocator' -- --lib "$LIB" "$tmp/own_malloc"

# 5. A run that fails is not a verified run.
expect "program exiting non-zero is refused" 1 'exited with status 3' -- --lib "$LIB" "$tmp/exit3"

# 6. Bad library paths.
expect "missing library path is refused" 1 'does not exist' -- --lib "$tmp/no-such-lib.so" "$tmp/normal"
echo "not a library" >"$tmp/not_elf.so"
expect "non-ELF library is refused" 1 'not an ELF file' -- --lib "$tmp/not_elf.so" "$tmp/normal"
libm=""
for cand in /lib/x86_64-linux-gnu/libm.so.6 /usr/lib/x86_64-linux-gnu/libm.so.6 /lib64/libm.so.6 /usr/lib64/libm.so.6; do
    [ -f "$cand" ] && { libm=$cand; break; }
done
if [ -z "$libm" ]; then
    echo 'int not_an_allocator(void) { return 1; }' >"$tmp/nomalloc.c"
    "$CC" -shared -fPIC -o "$tmp/libnomalloc.so" "$tmp/nomalloc.c" && libm="$tmp/libnomalloc.so"
fi
expect "library without malloc ($libm) is refused" 1 'does not export malloc' -- --lib "$libm" "$tmp/normal"
expect "executable given as library is refused" 1 'not a shared (object|library)' -- --lib "$tmp/normal" "$tmp/normal"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
