#!/usr/bin/env bash
# C contract tests for hakmem: builds tests/c/*.c and *.cpp into tests/build/ and runs each one,
# preloading the given library.
#
#   bash tests/run_c_tests.sh target/release/libhakmem.so   # under hakmem
#   bash tests/run_c_tests.sh none                          # on glibc's malloc (must pass too)
#   bash tests/run_c_tests.sh LIB fork_from_threads large_blocks   # only these checks
#
# One line per check ("ok   name", "FAIL name: reason", "skip name: reason"), failure details
# indented below it, and a final "c-tests: N passed, M failed" line; exits 1 if any check failed.
# Environment: HAKMEM_TEST_LIB (library when no argument), HAKMEM_TEST_TIMEOUT (seconds per
# program, default 120), CC / CXX (default gcc / g++).
set -u
source "$(dirname "$0")/common.sh"
cd "$HK_ROOT" || exit 2

LIBARG=${1:-${HAKMEM_TEST_LIB:-}}
if [ -z "$LIBARG" ]; then
    echo "usage: bash tests/run_c_tests.sh <path/to/libhakmem.so | none> [check-name ...]" >&2
    exit 2
fi
shift || true
ONLY=("$@")

ulimit -c 0 2>/dev/null
CC=${CC:-gcc}
CXX=${CXX:-g++}
CFLAGS="-O2 -g -pthread"
SRC=tests/c
LOGS=$HK_BUILD/logs
mkdir -p "$HK_BUILD" "$LOGS"
[ ${#ONLY[@]} -eq 0 ] && rm -rf "${LOGS:?}"/* # keep other checks' logs when only some run
HK_TIMINGS=$LOGS/timings.txt
: >"$HK_TIMINGS"

if ! hk_resolve_lib "$LIBARG"; then
    hk_fail library "$LIBARG not found (build it with 'make lib', or pass 'none' to test glibc)"
    hk_summary c-tests
    exit 1
fi
if [ -n "$HK_LIB" ]; then
    echo "# c-tests: LD_PRELOAD=$HK_LIB"
else
    echo "# c-tests: no LD_PRELOAD (glibc malloc)"
fi

selected() { # selected NAME: is NAME (or its base before '[') among the requested checks?
    [ ${#ONLY[@]} -eq 0 ] && return 0
    local n
    for n in "${ONLY[@]}"; do
        [ "$1" = "$n" ] || [ "${1%%\[*}" = "$n" ] && return 0
    done
    return 1
}

# ---------------------------------------------------------------- build
# Rebuilds a target when it is missing or older than its source or hk_test.h.
stale() { [ ! -e "$1" ] || [ "$2" -nt "$1" ] || [ "$SRC/hk_test.h" -nt "$1" ]; }
BUILT=()
build_one() { # build_one SOURCE
    local src=$1 base name out compiler flags=()
    base=$(basename "$src")
    name=${base%.*}
    case "$base" in
        *.cpp) compiler=$CXX ;;
        *) compiler=$CC ;;
    esac
    case "$name" in
        libhk_*) out=$HK_BUILD/$name.so flags=(-shared -fPIC) ;;
        *) out=$HK_BUILD/$name ;;
    esac
    if stale "$out" "$src"; then
        # shellcheck disable=SC2086
        if ! $compiler $CFLAGS "${flags[@]}" -o "$out" "$src" -ldl >"$LOGS/build-$name.log" 2>&1; then
            rm -f "$out"
            hk_fail "build:$name" "$compiler failed: $(grep -m1 -i 'error' "$LOGS/build-$name.log" | cut -c1-200)" \
                "$LOGS/build-$name.log"
            return
        fi
    fi
    case "$name" in libhk_*) ;; *) BUILT+=("$name") ;; esac
}
echo "# building tests/c into tests/build (gcc/g++ $CFLAGS)"
for src in "$SRC"/libhk_*.c; do # helper shared objects first
    [ -e "$src" ] && build_one "$src"
done
for src in "$SRC"/*.c "$SRC"/*.cpp; do
    case "$(basename "$src")" in libhk_*) continue ;; esac
    [ -e "$src" ] && build_one "$src"
done

has_built() { local n; for n in "${BUILT[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }

# ---------------------------------------------------------------- plain contract tests
# Programs that are driven specially further down.
SPECIAL=" invalid_free_reported double_free_checked overflow_checked heap_attacks "

for name in "${BUILT[@]}"; do
    case "$SPECIAL" in *" $name "*) continue ;; esac
    selected "$name" || continue
    log=$LOGS/$name
    hk_run yes "$log" -- "$HK_BUILD/$name"
    if [ "$HK_RC" -ne 0 ]; then
        hk_fail "$name" "$(hk_describe_rc "$HK_RC"): $(grep -m1 -E 'FAIL|error|invalid|abort' "$log.err" | cut -c1-220)" \
            "$log.err" "$log.out"
        continue
    fi
    if [ -f "$SRC/$name.expect" ]; then
        missing=""
        while IFS= read -r line; do
            [ -z "$line" ] && continue
            grep -qxF -- "$line" "$log.out" || missing="$missing [$line]"
        done <"$SRC/$name.expect"
        if [ -n "$missing" ]; then
            hk_fail "$name" "exited 0 but these stages never reported: $missing" "$log.out" "$log.err"
            continue
        fi
    fi
    hk_ok "$name"
done

# ---------------------------------------------------------------- proof that the library is used
if selected preload_bindings; then
    if [ -z "$HK_LIB" ]; then
        hk_skip preload_bindings "no library given"
    elif has_built random_ops_shadow && has_built posix_memalign_rules; then
        dir=$LOGS/ld_debug
        rm -rf "$dir"
        mkdir -p "$dir"
        bad=""
        # (whether the programs pass is their own checks' business; only the bindings count here)
        for prog in random_ops_shadow posix_memalign_rules; do
            hk_run yes "$LOGS/bindings-$prog" LD_DEBUG=bindings "LD_DEBUG_OUTPUT=$dir/$prog" -- "$HK_BUILD/$prog"
        done
        cat "$dir"/* >"$LOGS/bindings.txt" 2>/dev/null
        # every binding of a malloc-family symbol, from the program, libc or ld.so, must go to the
        # library (the library's own references, e.g. through dlsym(RTLD_NEXT), are not counted)
        grep -vF "binding file $HK_LIB [0]" "$LOGS/bindings.txt" >"$LOGS/bindings-others.txt"
        : >"$LOGS/bindings-wrong.txt"
        for sym in malloc free calloc realloc posix_memalign aligned_alloc memalign valloc pvalloc \
            malloc_usable_size reallocarray; do
            lines=$(grep -F "normal symbol \`$sym'" "$LOGS/bindings-others.txt")
            if [ -z "$lines" ]; then
                bad="$bad $sym:no-binding-seen"
            elif echo "$lines" | grep -vqF "to $HK_LIB [0]"; then
                echo "$lines" | grep -vF "to $HK_LIB [0]" | head -n 3 >>"$LOGS/bindings-wrong.txt"
                other=$(echo "$lines" | grep -vF "to $HK_LIB [0]" | head -n1 | sed 's/.* to \([^ ]*\) .*/\1/')
                bad="$bad $sym->$other"
            fi
        done
        if [ -z "$bad" ]; then
            hk_ok preload_bindings
        else
            hk_fail preload_bindings "malloc-family symbols not all bound to $HK_LIB:$bad" "$LOGS/bindings-wrong.txt"
        fi
    fi
fi

if selected stats_json; then
    if [ -z "$HK_LIB" ]; then
        hk_skip stats_json "no library given"
    elif has_built alignment_all_sizes; then
        log=$LOGS/stats_json
        hk_run yes "$log" HAKMEM_STATS=json -- "$HK_BUILD/alignment_all_sizes"
        n=$(hk_stats_allocs "$log.err")
        if [ -z "$n" ]; then
            hk_fail stats_json "HAKMEM_STATS=json printed no {\"hakmem\":...,\"allocs\":N} line on stderr (alignment_all_sizes: $(hk_describe_rc "$HK_RC"))" "$log.err"
        elif [ "$n" -le 0 ]; then
            hk_fail stats_json "stats line says allocs=$n, expected > 0" "$log.err"
        else
            hk_ok stats_json
        fi
    fi
fi

# ---------------------------------------------------------------- negative tests (hakmem only)
# line_with ERRFILE WORDS... : is there one line in ERRFILE holding all WORDS?
line_with() {
    local f=$1
    shift
    local pat
    local lines
    lines=$(grep -F -- "$1" "$f")
    shift
    for pat in "$@"; do lines=$(echo "$lines" | grep -F -- "$pat"); done
    [ -n "$lines" ]
}
# address_in ERRFILE OUTFILE: the "target=0x..." address from stdout appears on stderr's message line
address_in() {
    local hex
    hex=$(sed -n 's/^target=0x0*\([0-9a-fA-F]*\)$/\1/p' "$2" | head -n1)
    [ -n "$hex" ] && grep -qiE "0x0*$hex([^0-9a-f]|$)" "$1"
}

for mode in stack interior realloc_stack usable_interior unmapped realloc_unmapped large_interior large_double; do
    for variant in abort report; do
        name="invalid_free_reported[$mode]"
        [ "$variant" = report ] && name="invalid_free_reported[$mode,report]"
        selected "$name" || continue
        if [ -z "$HK_LIB" ]; then
            hk_skip "$name" "hakmem only (glibc reports invalid pointers differently)"
            continue
        fi
        has_built invalid_free_reported || continue
        log=$LOGS/invalid_free-$mode-$variant
        if [ "$variant" = abort ]; then
            hk_run yes "$log" -u HAKMEM_INVALID_FREE -- "$HK_BUILD/invalid_free_reported" "$mode"
            want_rc=134
        else
            hk_run yes "$log" HAKMEM_INVALID_FREE=report -- "$HK_BUILD/invalid_free_reported" "$mode"
            want_rc=0
        fi
        why=""
        [ "$HK_RC" -eq "$want_rc" ] || why="expected exit status $want_rc, got $(hk_describe_rc "$HK_RC")"
        if ! line_with "$log.err" hakmem "invalid pointer"; then
            why="${why:+$why; }no stderr line containing 'hakmem' and 'invalid pointer'"
        elif ! address_in "$log.err" "$log.out"; then
            why="${why:+$why; }message does not show the address $(sed -n 's/^target=//p' "$log.out")"
        fi
        if [ "$variant" = report ] && [ "$HK_RC" -eq 0 ] && ! grep -qx continued "$log.out"; then
            why="${why:+$why; }program did not carry on after the report"
        fi
        if [ -z "$why" ]; then hk_ok "$name"; else hk_fail "$name" "$why" "$log.err" "$log.out"; fi
    done
done

name="double_free_checked"
if selected "$name"; then
    if [ -z "$HK_LIB" ]; then
        hk_skip "$name" "hakmem only (needs HAKMEM_CHECK=1)"
    elif has_built double_free_checked; then
        log=$LOGS/double_free
        hk_run yes "$log" -u HAKMEM_INVALID_FREE HAKMEM_CHECK=1 -- "$HK_BUILD/double_free_checked" 32
        why=""
        [ "$HK_RC" -eq 134 ] || why="expected SIGABRT (exit status 134), got $(hk_describe_rc "$HK_RC")"
        if ! line_with "$log.err" hakmem "double free"; then
            why="${why:+$why; }no stderr line containing 'hakmem' and 'double free'"
        fi
        if [ -z "$why" ]; then hk_ok "$name"; else hk_fail "$name" "$why" "$log.err" "$log.out"; fi
    fi
fi

name="overflow_checked"
if selected "$name"; then
    if [ -z "$HK_LIB" ]; then
        hk_skip "$name" "hakmem only (needs HAKMEM_CHECK=1)"
    elif has_built overflow_checked; then
        log=$LOGS/overflow_checked
        hk_run yes "$log" -u HAKMEM_INVALID_FREE HAKMEM_CHECK=1 -- "$HK_BUILD/overflow_checked"
        if [ "$HK_RC" -eq 0 ]; then
            hk_ok "$name"
        else
            hk_fail "$name" "$(hk_describe_rc "$HK_RC"): $(grep -m1 -E 'FAIL|abort' "$log.err" | cut -c1-220)" "$log.err" "$log.out"
        fi
    fi
fi

# Heap attacks (see tests/c/heap_attacks.c): a forged free-list link stops the process whatever
# HAKMEM_INVALID_FREE says; a double free (or a free of a block never handed out) is reported
# with its address, then aborts, or with HAKMEM_INVALID_FREE=report the heap carries on intact.
for mode in overflow8 overflow16 uaf8 df_now df_later df_remote df_local_remote df_refilled unissued; do
    for variant in abort report; do
        name="heap_attacks[$mode]"
        [ "$variant" = report ] && name="heap_attacks[$mode,report]"
        selected "$name" || continue
        if [ -z "$HK_LIB" ]; then
            hk_skip "$name" "hakmem only (glibc, mimalloc and jemalloc react differently: see README)"
            continue
        fi
        has_built heap_attacks || continue
        log=$LOGS/heap_attacks-$mode-$variant
        if [ "$variant" = abort ]; then
            hk_run yes "$log" -u HAKMEM_INVALID_FREE -- "$HK_BUILD/heap_attacks" "$mode"
        else
            hk_run yes "$log" HAKMEM_INVALID_FREE=report -- "$HK_BUILD/heap_attacks" "$mode"
        fi
        why=""
        case "$mode" in
            overflow* | uaf*)
                [ "$HK_RC" -eq 134 ] || why="expected SIGABRT (exit status 134), got $(hk_describe_rc "$HK_RC")"
                if ! line_with "$log.err" "hakmem: heap corruption detected" "size class"; then
                    why="${why:+$why; }no stderr line 'hakmem: heap corruption detected ... size class ...'"
                fi
                ;;
            *)
                want_rc=134
                [ "$variant" = report ] && want_rc=0
                [ "$HK_RC" -eq "$want_rc" ] || why="expected exit status $want_rc, got $(hk_describe_rc "$HK_RC")"
                if ! line_with "$log.err" "hakmem: free(): double free"; then
                    why="${why:+$why; }no stderr line 'hakmem: free(): double free ...'"
                elif ! address_in "$log.err" "$log.out"; then
                    why="${why:+$why; }message does not show the address $(sed -n 's/^target=//p' "$log.out")"
                fi
                if [ "$variant" = report ] && [ "$HK_RC" -eq 0 ] && ! grep -qx continued "$log.out"; then
                    why="${why:+$why; }program did not carry on after the report"
                fi
                ;;
        esac
        if grep -q GOT_TARGET "$log.out"; then
            why="${why:+$why; }malloc returned the attacker's address"
        fi
        if [ -z "$why" ]; then hk_ok "$name"; else hk_fail "$name" "$why" "$log.err" "$log.out"; fi
    done
done

hk_summary c-tests
