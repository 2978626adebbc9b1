# Shared helpers for tests/run_c_tests.sh and tests/run_real_programs.sh (sourced, not run).
#
# The library argument is a path (relative to the repo root or to the caller's directory) or
# "none": run everything without LD_PRELOAD, i.e. on glibc's malloc. Every check must pass on
# glibc, because glibc keeps all the contracts these tests check. HAKMEM_TEST_LIB can stand in
# for a missing argument.

HK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HK_BUILD=$HK_ROOT/tests/build
HK_TIMEOUT=${HAKMEM_TEST_TIMEOUT:-120}
HK_PASS=0
HK_FAIL=0
HK_SKIP=0
HK_FAILED_NAMES=()

# hk_resolve_lib ARG: sets HK_LIB to an absolute path, or to "" for "none". Returns 1 if missing.
hk_resolve_lib() {
    local arg=$1
    HK_LIB=""
    case "$arg" in
        none | "") return 0 ;;
    esac
    local p
    for p in "$arg" "$HK_ROOT/$arg"; do
        if [ -f "$p" ]; then
            HK_LIB=$(cd "$(dirname "$p")" && pwd)/$(basename "$p")
            return 0
        fi
    done
    return 1
}

hk_ok() {
    HK_PASS=$((HK_PASS + 1))
    printf 'ok   %s\n' "$1"
}
# hk_fail NAME REASON [DETAIL-FILE...]: detail files are shown indented (last lines only).
hk_fail() {
    local name=$1 reason=$2 f
    shift 2
    HK_FAIL=$((HK_FAIL + 1))
    HK_FAILED_NAMES+=("$name")
    printf 'FAIL %s: %s\n' "$name" "$reason"
    for f in "$@"; do
        if [ -s "$f" ]; then
            printf '    | --- %s (last lines) ---\n' "${f#"$HK_ROOT"/}"
            tail -n 25 "$f" | cut -c1-300 | sed 's/^/    | /'
        fi
    done
}
hk_skip() {
    HK_SKIP=$((HK_SKIP + 1))
    printf 'skip %s: %s\n' "$1" "$2"
}

# hk_describe_rc RC: human-readable exit status
hk_describe_rc() {
    local rc=$1
    if [ "$rc" -eq 124 ]; then
        echo "timed out after ${HK_TIMEOUT}s (hang or deadlock?)"
    elif [ "$rc" -gt 128 ] && [ "$rc" -lt 160 ]; then
        echo "killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))) (exit status $rc)"
    else
        echo "exit status $rc"
    fi
}

# hk_run PRELOAD(yes|no) OUTBASE [-u VAR ...] [VAR=value ...] -- CMD [ARGS...]
# Runs CMD under `timeout`, with LD_PRELOAD=$HK_LIB when PRELOAD is yes and a library is set,
# stdout to OUTBASE.out, stderr to OUTBASE.err, stdin from $HK_STDIN (default /dev/null).
# "-u VAR" removes VAR from the environment. Sets HK_RC. The shell's own "Aborted (core dumped)"
# notices are kept out of the output.
hk_run() {
    local preload=$1 base=$2
    shift 2
    local unsets=() sets=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        if [ "$1" = "-u" ]; then
            unsets+=(-u "$2")
            shift 2
        else
            sets+=("$1")
            shift
        fi
    done
    shift
    if [ "$preload" = yes ] && [ -n "$HK_LIB" ]; then
        sets+=("LD_PRELOAD=$HK_LIB")
    else
        unsets+=(-u LD_PRELOAD)
    fi
    HK_RC=0
    local t0=$EPOCHREALTIME
    {
        timeout -k 5 "$HK_TIMEOUT" env "${unsets[@]}" "${sets[@]}" "$@" \
            <"${HK_STDIN:-/dev/null}" >"$base.out" 2>"$base.err"
    } 2>/dev/null || HK_RC=$?
    # wall time of every run, for finding slow checks: $HK_TIMINGS (seconds, exit status, run)
    if [ -n "${HK_TIMINGS:-}" ]; then
        local t1=$EPOCHREALTIME
        awk -v a="$t0" -v b="$t1" -v r="$HK_RC" -v n="${base##*/}" 'BEGIN { printf "%7.2f  rc=%-3d %s\n", b - a, r, n }' >>"$HK_TIMINGS"
    fi
}

# hk_summary LABEL: prints the summary line and returns non-zero if anything failed.
hk_summary() {
    local label=$1
    echo
    if [ "$HK_SKIP" -gt 0 ]; then echo "skipped: $HK_SKIP"; fi
    if [ "$HK_FAIL" -gt 0 ]; then echo "failed: ${HK_FAILED_NAMES[*]}"; fi
    echo "$label: $HK_PASS passed, $HK_FAIL failed"
    [ "$HK_FAIL" -eq 0 ]
}

# hk_stats_allocs FILE: prints N from the first {"hakmem":...,"allocs":N...} line in FILE, or
# nothing if there is no such line.
hk_stats_allocs() {
    grep -m1 '^{"hakmem":' "$1" 2>/dev/null | grep -o '"allocs": *[0-9]*' | head -n1 | grep -o '[0-9]*$'
}
