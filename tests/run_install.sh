#!/usr/bin/env bash
# hakmem as a user installs and uses it: `make install` into a temporary PREFIX (and a DESTDIR
# staging tree), then pkg-config, a C program linked with -lhakmem, the launcher (running
# python3, refusing static and setuid programs), glibc's introspection API, HAKMEM_STATS_FILE
# for a program that closes stderr, a Rust program with hakmem as its global allocator, and
# `make uninstall`. Run by `make test-install` (part of `make test`) from the repository root:
#
#   bash tests/run_install.sh
#
# One line per check ("ok   name" / "FAIL name: reason" / "skip name: reason"), then
# "install-tests: N passed, M failed"; exits 1 if any check failed. Needs a built library (make).
set -u
source "$(dirname "$0")/common.sh"
cd "$HK_ROOT" || exit 2

CC=${CC:-gcc}
MAKE=${MAKE:-make}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-install.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
logs=$HK_BUILD/install
mkdir -p "$logs"
rm -f "$logs"/*

installed=(lib/libhakmem.so.$VERSION lib/libhakmem.so.${VERSION%%.*} lib/libhakmem.so include/hakmem.h
           lib/pkgconfig/hakmem.pc bin/hakmem)

# ---------------------------------------------------------------- make install / uninstall
if ! $MAKE -s install PREFIX="$prefix" >"$logs/install.log" 2>&1; then
    hk_fail make_install "make install PREFIX=$prefix failed" "$logs/install.log"
    hk_summary install-tests
    exit 1
fi
missing=()
for f in "${installed[@]}"; do [ -e "$prefix/$f" ] || missing+=("$f"); done
soname=$(LC_ALL=C readelf -dW "$prefix/lib/libhakmem.so.$VERSION" 2>/dev/null | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
if [ ${#missing[@]} -gt 0 ]; then
    hk_fail make_install "missing under PREFIX: ${missing[*]}"
elif [ "$soname" != "libhakmem.so.${VERSION%%.*}" ]; then
    hk_fail make_install "libhakmem.so.$VERSION has SONAME '$soname', expected libhakmem.so.${VERSION%%.*}"
elif [ "$(readlink "$prefix/lib/libhakmem.so.${VERSION%%.*}")" != "libhakmem.so.$VERSION" ] ||
    [ "$(readlink "$prefix/lib/libhakmem.so")" != "libhakmem.so.${VERSION%%.*}" ]; then
    hk_fail make_install "the SONAME links are wrong: $(ls -l "$prefix/lib" | tr '\n' ' ')"
else
    hk_ok make_install
fi

stage=$tmp/stage
if $MAKE -s install PREFIX=/opt/hakmem DESTDIR="$stage" >"$logs/destdir.log" 2>&1 &&
    grep -qx 'prefix=/opt/hakmem' "$stage/opt/hakmem/lib/pkgconfig/hakmem.pc" &&
    $MAKE -s uninstall PREFIX=/opt/hakmem DESTDIR="$stage" >>"$logs/destdir.log" 2>&1 &&
    [ -z "$(find "$stage" -not -type d)" ]; then
    hk_ok make_install_destdir_and_uninstall
else
    find "$stage" -not -type d >>"$logs/destdir.log" 2>&1
    hk_fail make_install_destdir_and_uninstall \
        "DESTDIR staging must keep prefix=/opt/hakmem in hakmem.pc, and uninstall must remove every file" "$logs/destdir.log"
fi

# ---------------------------------------------------------------- pkg-config and linking
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
if ! command -v pkg-config >/dev/null; then
    hk_fail pkg_config "pkg-config is not installed (bash scripts/setup.sh installs it)"
else
    flags=$(pkg-config --cflags --libs hakmem 2>"$logs/pkg-config.err" | sed 's/ *$//')
    if [ "$flags" = "-I$prefix/include -L$prefix/lib -lhakmem" ] &&
        [ "$(pkg-config --modversion hakmem)" = "$VERSION" ]; then
        hk_ok pkg_config
    else
        hk_fail pkg_config "pkg-config --cflags --libs hakmem gave '$flags'" "$logs/pkg-config.err"
    fi
    # shellcheck disable=SC2046
    if ! $CC -O2 -Wall -Werror -o "$tmp/linked" tests/install/linked.c $(pkg-config --cflags --libs hakmem) \
        -Wl,-rpath,"$prefix/lib" >"$logs/linked-cc.log" 2>&1; then
        hk_fail linked_program_and_mallinfo2 "$CC with pkg-config's flags failed" "$logs/linked-cc.log"
    else
        hk_run no "$logs/linked" -- "$tmp/linked"
        needed=$(LC_ALL=C readelf -dW "$tmp/linked" | grep -c 'NEEDED.*\[libhakmem\.so\.'"${VERSION%%.*}"'\]')
        if [ "$HK_RC" -eq 0 ] && [ "$needed" = 1 ] && grep -q '^linked: ok' "$logs/linked.out"; then
            hk_ok linked_program_and_mallinfo2
        else
            hk_fail linked_program_and_mallinfo2 "$(hk_describe_rc "$HK_RC"), NEEDED libhakmem.so.${VERSION%%.*}: $needed" \
                "$logs/linked.out" "$logs/linked.err"
        fi
    fi
fi

# ---------------------------------------------------------------- the launcher
launcher=$prefix/bin/hakmem
out=$("$launcher" --version 2>&1)
if [ "$out" = "hakmem $VERSION" ] && [ "$(scripts/hakmem --version)" = "hakmem $VERSION" ]; then
    hk_ok launcher_version
else
    hk_fail launcher_version "hakmem --version printed '$out', expected 'hakmem $VERSION' (the VERSION in scripts/hakmem must follow Cargo.toml)"
fi

# both ways: installed (finds ../lib) and from the build tree (finds ../target/release)
for way in installed build-tree; do
    l=$launcher
    [ "$way" = build-tree ] && l=$HK_ROOT/scripts/hakmem
    hk_run no "$logs/python-$way" -- "$l" --stats=json --profile lean -- python3 -c 'print(sum(len(str(i)) for i in range(100000)))'
    n=$(hk_stats_allocs "$logs/python-$way.err")
    if [ "$HK_RC" -eq 0 ] && grep -qx 488890 "$logs/python-$way.out" && [ -n "$n" ] && [ "$n" -gt 0 ]; then
        hk_ok "launcher_runs_python3[$way]"
    else
        hk_fail "launcher_runs_python3[$way]" "$(hk_describe_rc "$HK_RC"), allocs '${n:-none}'" \
            "$logs/python-$way.out" "$logs/python-$way.err"
    fi
done

hk_run no "$logs/preload-append" LD_PRELOAD=/nonexistent/first.so -- "$launcher" sh -c 'echo "$LD_PRELOAD"'
if grep -qx "/nonexistent/first.so:$(readlink -f "$prefix/lib/libhakmem.so.${VERSION%%.*}")" "$logs/preload-append.out"; then
    hk_ok launcher_appends_to_ld_preload
else
    hk_fail launcher_appends_to_ld_preload "LD_PRELOAD in the program was not the old value + ':' + the library" \
        "$logs/preload-append.out"
fi

echo 'int main(void) { return 0; }' >"$tmp/tiny.c"
if $CC -O1 -static -o "$tmp/static" "$tmp/tiny.c" 2>"$logs/static-cc.log"; then
    hk_run no "$logs/static" -- "$launcher" --stats "$tmp/static"
    if [ "$HK_RC" -ne 0 ] && grep -q 'hakmem: refusing to run .*statically linked' "$logs/static.err"; then
        hk_ok launcher_refuses_static_program
    else
        hk_fail launcher_refuses_static_program "$(hk_describe_rc "$HK_RC"); expected a refusal naming a static program" \
            "$logs/static.err"
    fi
else
    hk_fail launcher_refuses_static_program "$CC -static failed (install libc6-dev: bash scripts/setup.sh)" "$logs/static-cc.log"
fi
$CC -O1 -o "$tmp/setuid" "$tmp/tiny.c" && chmod u+s "$tmp/setuid"
if [ -u "$tmp/setuid" ]; then
    hk_run no "$logs/setuid" -- "$launcher" "$tmp/setuid"
    if [ "$HK_RC" -ne 0 ] && grep -q 'hakmem: refusing to run .*setuid' "$logs/setuid.err"; then
        hk_ok launcher_refuses_setuid_program
    else
        hk_fail launcher_refuses_setuid_program "$(hk_describe_rc "$HK_RC")" "$logs/setuid.err"
    fi
else
    hk_skip launcher_refuses_setuid_program "this file system does not keep the setuid bit"
fi

# ---------------------------------------------------------------- HAKMEM_STATS_FILE
$CC -O1 -o "$tmp/closes_stderr" tests/install/closes_stderr.c
hk_run no "$logs/stats-file" "HAKMEM_STATS_FILE=$tmp/stats-%p.txt" -- "$launcher" "$tmp/closes_stderr"
files=("$tmp"/stats-*.txt)
if [ "$HK_RC" -eq 0 ] && [ ${#files[@]} -eq 1 ] && [ -f "${files[0]}" ] &&
    [[ ${files[0]} =~ /stats-[0-9]+\.txt$ ]] && grep -q "hakmem $VERSION statistics" "${files[0]}" &&
    grep -qE '^ +total +[1-9]' "${files[0]}"; then
    hk_ok stats_file_for_program_closing_stderr
else
    hk_fail stats_file_for_program_closing_stderr "$(hk_describe_rc "$HK_RC"); files: ${files[*]}" "$logs/stats-file.err" "${files[0]}"
fi
if command -v sort >/dev/null; then
    rm -f "$tmp"/stats-*.txt
    printf 'b\na\n' >"$tmp/sort.in"
    hk_run no "$logs/stats-sort" "HAKMEM_STATS_FILE=$tmp/stats-sort.json" -- "$launcher" --stats=json sort "$tmp/sort.in"
    if [ "$HK_RC" -eq 0 ] && [ "$(tr '\n' ' ' <"$logs/stats-sort.out")" = "a b " ] &&
        [ -n "$(hk_stats_allocs "$tmp/stats-sort.json")" ] && ! grep -q '"hakmem"' "$logs/stats-sort.err"; then
        hk_ok "stats_file_json[sort]"
    else
        hk_fail "stats_file_json[sort]" "$(hk_describe_rc "$HK_RC"); no JSON statistics in the file" "$logs/stats-sort.err"
    fi
fi

# ---------------------------------------------------------------- a Rust program
if cargo build -q --release -p hakmem --example threads >"$logs/rust-build.log" 2>&1; then
    hk_run no "$logs/rust" -- target/release/examples/threads
    if [ "$HK_RC" -eq 0 ] && grep -qE 'threads: 80000 values; hakmem served [1-9][0-9]* allocations' "$logs/rust.out" &&
        grep -q "hakmem $VERSION statistics" "$logs/rust.err" && ! grep -q libhakmem "$logs/rust.err"; then
        hk_ok rust_global_allocator_program
    else
        hk_fail rust_global_allocator_program "$(hk_describe_rc "$HK_RC")" "$logs/rust.out" "$logs/rust.err"
    fi
else
    hk_fail rust_global_allocator_program "cargo build -p hakmem --example threads failed" "$logs/rust-build.log"
fi

# ---------------------------------------------------------------- make uninstall
$MAKE -s uninstall PREFIX="$prefix" >"$logs/uninstall.log" 2>&1
left=$(find "$prefix" -not -type d)
if [ -z "$left" ]; then
    hk_ok make_uninstall
else
    hk_fail make_uninstall "left behind: $left" "$logs/uninstall.log"
fi

hk_summary install-tests
