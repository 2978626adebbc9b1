#!/usr/bin/env bash
# Real programs under hakmem: each is run without and with LD_PRELOAD of the given library, and
# stdout, stderr (minus hakmem's own HAKMEM_STATS line) and the exit status must be identical.
# Every run with the library must also prove the library was loaded and its malloc used: it is
# run with HAKMEM_STATS=json and LD_DEBUG=bindings (to files), and must print a
# {"hakmem":...,"allocs":N} line with N > 0 on stderr, or, where the program closes stderr before
# exit, show ld.so binding malloc to the library.
#
#   bash tests/run_real_programs.sh target/release/libhakmem.so
#   bash tests/run_real_programs.sh none          # both runs on glibc (checks the checks)
#   bash tests/run_real_programs.sh LIB sqlite3   # only the named checks
#
# Programs: python3 (tests/real/alloc_heavy.py, with pymalloc and with PYTHONMALLOC=malloc),
# g++ compiling and linking tests/real/stl_program.cpp (object files and executables compared)
# and the compiled program, sqlite3 (tests/real/sqlite_workload.sql), sort --parallel=2,
# xz -T2, gzip, perl (tests/real/perl_workload.pl), awk, a JVM (tests/real/Threads.java), Node.js
# worker threads (tests/real/workers.js), git (tests/real/git_workload.sh), the PostgreSQL server
# under pgbench, and CPython's own regression tests. Missing programs are skipped.
set -u
source "$(dirname "$0")/common.sh"
cd "$HK_ROOT" || exit 2

LIBARG=${1:-${HAKMEM_TEST_LIB:-}}
if [ -z "$LIBARG" ]; then
    echo "usage: bash tests/run_real_programs.sh <path/to/libhakmem.so | none> [check-name ...]" >&2
    exit 2
fi
shift || true
ONLY=("$@")

ulimit -c 0 2>/dev/null
W=$HK_BUILD/real
LOGS=$W/logs
mkdir -p "$W" "$LOGS"
[ ${#ONLY[@]} -eq 0 ] && rm -rf "${LOGS:?}"/* # keep other checks' logs when only some run
HK_TIMINGS=$LOGS/timings.txt
: >"$HK_TIMINGS"

if ! hk_resolve_lib "$LIBARG"; then
    hk_fail library "$LIBARG not found (build it with 'make lib', or pass 'none' to test glibc)"
    hk_summary real-programs
    exit 1
fi
if [ -n "$HK_LIB" ]; then
    echo "# real-programs: LD_PRELOAD=$HK_LIB"
else
    echo "# real-programs: no LD_PRELOAD (glibc malloc on both sides)"
fi

selected() {
    [ ${#ONLY[@]} -eq 0 ] && return 0
    local n
    for n in "${ONLY[@]}"; do [ "$1" = "$n" ] || [ "${1%%\[*}" = "$n" ] && return 0; done
    return 1
}

# The extra environment of every run with the library: hakmem's statistics line, and ld.so's
# record of where each symbol binds (written to files, not to the program's stderr).
with_env() { # with_env BASE: sets WITH_ENV
    rm -f "$1".lddebug.*
    WITH_ENV=(HAKMEM_STATS=json LD_DEBUG=bindings "LD_DEBUG_OUTPUT=$1.lddebug")
}
# Checks the "with" run's evidence that the library was loaded and its malloc used: a
# {"hakmem":...,"allocs":N>0} line on stderr, or, for programs that close stderr before exit
# (coreutils, xz) or never call malloc themselves, ld.so binding `malloc' to the library.
# Appends to WHY on failure.
confirm_loaded() { # confirm_loaded BASE (the .err file and .lddebug.* files of the run)
    local base=$1 n
    [ -z "$HK_LIB" ] && return 0
    n=$(grep '^{"hakmem":' "$base.err" | grep -o '"allocs": *[0-9]*' | grep -o '[0-9]*$' | sort -n | tail -n1)
    if [ -n "$n" ] && [ "$n" -gt 0 ]; then
        return 0
    fi
    if cat "$base".lddebug.* 2>/dev/null | grep -F "normal symbol \`malloc'" | grep -vF "binding file $HK_LIB " |
        grep -qF "to $HK_LIB [0]"; then
        return 0
    fi
    if [ -n "$n" ]; then
        WHY="${WHY:+$WHY; }HAKMEM_STATS line says allocs=$n and ld.so never bound malloc to the library"
    else
        WHY="${WHY:+$WHY; }library not confirmed: no {\"hakmem\":...,\"allocs\":N} line on stderr and no LD_DEBUG binding of malloc to $HK_LIB"
    fi
}

# run_pair NAME [ENV ...] -- CMD...: runs CMD without and with the library. Leaves
# $LOGS/NAME.without.{out,err} and $LOGS/NAME.with.{out,err,errclean}, RC_WITHOUT, RC_WITH, and
# WHY (empty when exit statuses, stdout and cleaned stderr all match and the library was confirmed).
run_pair() {
    local name=$1 base
    shift
    local envs=()
    while [ "$1" != "--" ]; do
        envs+=("$1")
        shift
    done
    shift
    base=$LOGS/$name
    WHY=""
    hk_run no "$base.without" "${envs[@]}" -- "$@"
    RC_WITHOUT=$HK_RC
    with_env "$base.with"
    hk_run yes "$base.with" "${envs[@]}" "${WITH_ENV[@]}" -- "$@"
    RC_WITH=$HK_RC
    grep -v '^{"hakmem":' "$base.with.err" >"$base.with.errclean"
    if [ "$RC_WITHOUT" -ne 0 ]; then
        WHY="the run without the library failed too ($(hk_describe_rc "$RC_WITHOUT")): the check itself is broken here"
        return
    fi
    if [ "$RC_WITH" -ne "$RC_WITHOUT" ]; then
        WHY="with the library: $(hk_describe_rc "$RC_WITH") (without: $(hk_describe_rc "$RC_WITHOUT"))"
    fi
    if ! cmp -s "$base.without.out" "$base.with.out"; then
        WHY="${WHY:+$WHY; }stdout differs ($(cmp "$base.without.out" "$base.with.out" 2>&1 | head -n1 | sed 's/.*differ: //'))"
        diff -a "$base.without.out" "$base.with.out" | head -n 20 >"$base.diff"
    fi
    if ! cmp -s "$base.without.err" "$base.with.errclean"; then
        WHY="${WHY:+$WHY; }stderr differs"
        diff -a "$base.without.err" "$base.with.errclean" | head -n 20 >>"$base.diff"
    fi
    confirm_loaded "$base.with"
}

report_pair() { # report_pair NAME
    local base=$LOGS/$1
    if [ -z "$WHY" ]; then
        hk_ok "$1"
    else
        hk_fail "$1" "$WHY" "$base.diff" "$base.with.errclean"
    fi
}

# Compare two files produced by the without/with runs (an object file, compressed data ...).
same_file() { # same_file A B LABEL
    if ! cmp -s "$1" "$2"; then
        WHY="${WHY:+$WHY; }$3 differs ($(cmp "$1" "$2" 2>&1 | head -n1 | sed 's/.*differ: //'))"
    fi
}

# ------------------------------------------------------------------ python3
if selected python_alloc_heavy; then
    PY=$(env -u LD_PRELOAD python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
    if [ -z "$PY" ] || [ ! -x "$PY" ]; then
        hk_skip python_alloc_heavy "python3 not found"
    else
        # the real interpreter, not a pyenv shim script; PYTHONMALLOC=malloc sends every object
        # allocation through malloc (default pymalloc only asks malloc for big blocks)
        for pm in default malloc; do
            name="python_alloc_heavy"
            penv=(-u PYTHONMALLOC PYTHONHASHSEED=0)
            if [ "$pm" = malloc ]; then
                name="python_alloc_heavy[PYTHONMALLOC=malloc]"
                penv=(PYTHONMALLOC=malloc PYTHONHASHSEED=0)
            fi
            run_pair "$name" "${penv[@]}" -- "$PY" tests/real/alloc_heavy.py
            grep -q '^all: ' "$LOGS/$name.with.out" || WHY="${WHY:+$WHY; }no final digest line"
            report_pair "$name"
        done
    fi
fi

# ------------------------------------------------------------------ g++ and the program it builds
if selected gxx_compile || selected stl_program_run; then
    if ! command -v g++ >/dev/null; then
        hk_skip gxx_compile "g++ not found"
    else
        GXX=$(command -v g++)
        if selected gxx_compile || [ ! -x "$W/stl_without" ]; then
            name=gxx_compile
            rm -f "$W"/stl_with.o "$W"/stl_without.o "$W"/stl_with "$W"/stl_without
            # compile: same output name for both runs, moved aside after each
            base=$LOGS/$name
            WHY=""
            hk_run no "$base.cc.without" -- "$GXX" -O2 -g0 -frandom-seed=hakmem -pthread -c tests/real/stl_program.cpp -o "$W/stl.o"
            rc0=$HK_RC
            [ -f "$W/stl.o" ] && mv "$W/stl.o" "$W/stl_without.o"
            with_env "$base.cc.with"
            hk_run yes "$base.cc.with" "${WITH_ENV[@]}" -- "$GXX" -O2 -g0 -frandom-seed=hakmem -pthread -c tests/real/stl_program.cpp -o "$W/stl.o"
            rc1=$HK_RC
            [ -f "$W/stl.o" ] && mv "$W/stl.o" "$W/stl_with.o"
            if [ "$rc0" -ne 0 ]; then
                WHY="g++ -c without the library failed ($(hk_describe_rc "$rc0")): the check itself is broken here"
            else
                [ "$rc1" -eq 0 ] || WHY="g++ -c with the library: $(hk_describe_rc "$rc1")"
                [ -f "$W/stl_with.o" ] && same_file "$W/stl_without.o" "$W/stl_with.o" "object file"
                grep -v '^{"hakmem":' "$base.cc.with.err" >"$base.cc.with.errclean"
                cmp -s "$base.cc.without.err" "$base.cc.with.errclean" || WHY="${WHY:+$WHY; }compiler stderr differs"
                confirm_loaded "$base.cc.with"
            fi
            # link (collect2 + ld under the library too)
            hk_run no "$base.ld.without" -- "$GXX" -pthread -o "$W/stl" "$W/stl_without.o"
            rc0=$HK_RC
            [ -f "$W/stl" ] && mv "$W/stl" "$W/stl_without"
            if [ -f "$W/stl_with.o" ]; then
                with_env "$base.ld.with"
                hk_run yes "$base.ld.with" "${WITH_ENV[@]}" -- "$GXX" -pthread -o "$W/stl" "$W/stl_with.o"
                rc1=$HK_RC
                [ -f "$W/stl" ] && mv "$W/stl" "$W/stl_with"
                confirm_loaded "$base.ld.with"
                [ "$rc0" -eq 0 ] || WHY="${WHY:+$WHY; }link without the library failed"
                [ "$rc1" -eq 0 ] || WHY="${WHY:+$WHY; }link with the library: $(hk_describe_rc "$rc1")"
                [ -f "$W/stl_with" ] && [ -f "$W/stl_without" ] && same_file "$W/stl_without" "$W/stl_with" "linked executable"
            fi
            if selected gxx_compile; then
                if [ -z "$WHY" ]; then hk_ok "$name"; else
                    hk_fail "$name" "$WHY" "$base.cc.with.errclean" "$base.ld.with.err"
                fi
            fi
        fi
        if selected stl_program_run; then
            if [ ! -x "$W/stl_without" ]; then
                hk_fail stl_program_run "tests/real/stl_program.cpp did not build without the library" "$LOGS/gxx_compile.cc.without.err"
            else
                run_pair stl_program_run -- "$W/stl_without"
                grep -q '^threads: ' "$LOGS/stl_program_run.with.out" || WHY="${WHY:+$WHY; }output incomplete"
                report_pair stl_program_run
                # the executable linked under the library must behave the same
                if [ -x "$W/stl_with" ]; then
                    run_pair "stl_program_run[built-with-lib]" -- "$W/stl_with"
                    cmp -s "$LOGS/stl_program_run.without.out" "$LOGS/stl_program_run[built-with-lib].with.out" ||
                        WHY="${WHY:+$WHY; }output differs from the glibc-built program"
                    report_pair "stl_program_run[built-with-lib]"
                fi
            fi
        fi
    fi
fi

# ------------------------------------------------------------------ sqlite3
if selected sqlite3; then
    if ! command -v sqlite3 >/dev/null; then
        hk_skip sqlite3 "sqlite3 not installed"
    else
        # a fresh database file per run; the same name, so that nothing in the output differs
        rm -f "$W/sq.db"
        HK_STDIN=tests/real/sqlite_workload.sql hk_run no "$LOGS/sqlite3.without" -- sqlite3 "$W/sq.db"
        RC_WITHOUT=$HK_RC
        rm -f "$W/sq.db"
        with_env "$LOGS/sqlite3.with"
        HK_STDIN=tests/real/sqlite_workload.sql hk_run yes "$LOGS/sqlite3.with" "${WITH_ENV[@]}" -- sqlite3 "$W/sq.db"
        RC_WITH=$HK_RC
        rm -f "$W/sq.db"
        base=$LOGS/sqlite3
        WHY=""
        grep -v '^{"hakmem":' "$base.with.err" >"$base.with.errclean"
        if [ "$RC_WITHOUT" -ne 0 ]; then
            WHY="sqlite3 without the library failed ($(hk_describe_rc "$RC_WITHOUT")): the check itself is broken here"
        else
            [ "$RC_WITH" -eq 0 ] || WHY="with the library: $(hk_describe_rc "$RC_WITH")"
            if ! cmp -s "$base.without.out" "$base.with.out"; then
                WHY="${WHY:+$WHY; }output differs"
                diff -a "$base.without.out" "$base.with.out" | head -n 20 >"$base.diff"
            fi
            cmp -s "$base.without.err" "$base.with.errclean" || WHY="${WHY:+$WHY; }stderr differs"
            grep -qx ok "$base.with.out" || WHY="${WHY:+$WHY; }integrity_check did not say ok"
            confirm_loaded "$base.with"
        fi
        report_pair sqlite3
    fi
fi

# ------------------------------------------------------------------ input data for the tools
INPUT=$W/input.txt
make_input() {
    [ -s "$INPUT" ] && return 0
    # ~25 MB of deterministic, moderately compressible text lines
    env -u LD_PRELOAD awk 'BEGIN {
        x = 12345;
        for (i = 0; i < 400000; i++) {
            x = (x * 1103515245 + 12345) % 2147483648;
            printf "%08d %s-%d %x words %s\n", x % 100000000, substr("alphabetagammadeltaepsilonzetaetatheta", 1 + x % 30, 1 + i % 9), i % 977, x, (i % 5 == 0 ? "and a longer tail of text to compress" : "")
        }
    }' >"$INPUT"
}

if selected sort_parallel; then
    if ! sort --parallel=2 </dev/null >/dev/null 2>&1; then
        hk_skip sort_parallel "sort has no --parallel"
    else
        make_input
        run_pair sort_parallel LC_ALL=C -- sort --parallel=2 -S 64M -k3,3 -k1,1n "$INPUT"
        report_pair sort_parallel
    fi
fi

if selected xz_threads; then
    if ! command -v xz >/dev/null; then
        hk_skip xz_threads "xz not installed"
    else
        make_input
        # 6 MB in 1 MiB blocks: both threads busy; preset 2 keeps it to a few seconds
        head -c 6000000 "$INPUT" >"$W/xz_input.txt"
        run_pair xz_threads -- xz -T2 -2 --block-size=1MiB -c "$W/xz_input.txt"
        if [ -z "$WHY" ]; then
            # and decompress the library's output under the library, multi-threaded
            hk_run yes "$LOGS/xz_threads.unxz" -- xz -d -T2 -c "$LOGS/xz_threads.with.out"
            [ "$HK_RC" -eq 0 ] || WHY="xz -d with the library: $(hk_describe_rc "$HK_RC")"
            same_file "$W/xz_input.txt" "$LOGS/xz_threads.unxz.out" "decompressed data"
        fi
        report_pair xz_threads
    fi
fi

if selected gzip; then
    if ! command -v gzip >/dev/null; then
        hk_skip gzip "gzip not installed"
    else
        make_input
        run_pair gzip -- gzip -6 -n -c "$INPUT"
        if [ -z "$WHY" ]; then
            hk_run yes "$LOGS/gzip.gunzip" -- gzip -d -c "$LOGS/gzip.with.out"
            [ "$HK_RC" -eq 0 ] || WHY="gzip -d with the library: $(hk_describe_rc "$HK_RC")"
            same_file "$INPUT" "$LOGS/gzip.gunzip.out" "decompressed data"
        fi
        report_pair gzip
    fi
fi

if selected perl; then
    if ! command -v perl >/dev/null; then
        hk_skip perl "perl not installed"
    else
        run_pair perl -- perl tests/real/perl_workload.pl
        report_pair perl
    fi
fi

if selected awk; then
    if ! command -v awk >/dev/null; then
        hk_skip awk "awk not installed"
    else
        make_input
        run_pair awk LC_ALL=C -- awk '{ c[$2]++; s[substr($1, 1, 3)] = s[substr($1, 1, 3)] $3 } END {
            n = 0; for (k in c) { n++; t += c[k] * length(k) }
            m = 0; for (k in s) m += length(s[k]);
            print n, t, m }' "$INPUT"
        report_pair awk
    fi
fi

# ------------------------------------------------------------------ a JVM, Node.js, git
# program_check NAME TOOL DONE -- CMD...: skipped without TOOL; else CMD runs without and with
# the library, and the run with it must also end with the line DONE.
program_check() {
    local name=$1 tool=$2 done=$3
    shift 4
    selected "$name" || return 0
    if ! command -v "$tool" >/dev/null || ! "$tool" --version >/dev/null 2>&1; then
        hk_skip "$name" "$tool not installed"
        return 0
    fi
    run_pair "$name" -- "$@"
    grep -qx "$done" "$LOGS/$name.with.out" || WHY="${WHY:+$WHY; }output incomplete"
    report_pair "$name"
}
# the single-file source launcher: javac's compiler runs under the library too
program_check java_threads java 'threads: done' -- java -Xmx256m tests/real/Threads.java
program_check node_workers node 'workers: done' -- node tests/real/workers.js

if selected git; then
    if ! command -v git >/dev/null || ! git rev-parse --git-dir >/dev/null 2>&1; then
        hk_skip git "git not installed, or not run from a git checkout"
    else
        # this repository as the input (no network); each run clones it, repacks it with two
        # threads, checks it and prints digests of its history and tree
        rm -rf "$W/git_src"
        env -u LD_PRELOAD git clone -q --bare --no-local . "$W/git_src" 2>"$LOGS/git.src.err"
        run_pair git -- bash tests/real/git_workload.sh "$W/git_src" "$W/git_work"
        grep -q '^git: done' "$LOGS/git.with.out" || WHY="${WHY:+$WHY; }output incomplete"
        report_pair git
        rm -rf "$W/git_src" "$W/git_work"
    fi
fi

# ------------------------------------------------------------------ PostgreSQL under pgbench
# The server (postmaster and one backend process per client) runs under the library while
# pgbench drives four concurrent clients; the balances must add up afterwards, and the server log
# must show no crash. Only the run with the library: pgbench's timings differ from run to run.
pg_check() {
    local pgbin=$1 d port=54329 as=() why=""
    if [ "$(id -u)" -eq 0 ]; then
        if ! id postgres >/dev/null 2>&1 || ! command -v runuser >/dev/null; then
            hk_skip postgres "running as root, without a postgres user and runuser to run the server as"
            return
        fi
        as=(runuser -u postgres --)
    fi
    # under /tmp, which the server's user can reach wherever the checkout lies
    d=$(mktemp -d /tmp/hakmem-pg.XXXXXX)
    chmod 755 "$d"
    local lib=""
    if [ -n "$HK_LIB" ]; then
        # a copy the server's user can read
        cp "$HK_LIB" "$d/libhakmem.so"
        chmod 644 "$d/libhakmem.so"
        lib=$d/libhakmem.so
    fi
    [ ${#as[@]} -gt 0 ] && chown -R postgres "$d"
    local envs=(env -u LD_PRELOAD HAKMEM_STATS=json PGHOST="$d" PGPORT=$port PGUSER=postgres)
    [ -n "$lib" ] && envs+=(LD_PRELOAD="$lib")
    pg() { # pg LOGNAME CMD...: one step as the server's user, under the library
        local name=$1
        shift
        timeout -k 5 120 "${as[@]}" "${envs[@]}" "$@" >"$LOGS/postgres.$name.out" 2>"$LOGS/postgres.$name.err"
    }
    if ! pg initdb "$pgbin/initdb" -D "$d/data" -A trust -U postgres --no-sync; then
        why="initdb failed"
    elif ! pg start "$pgbin/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 60 start \
        -o "-k $d -p $port -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off"; then
        why="the server did not start"
    else
        pg pgbench_init "$pgbin/pgbench" -i -s 2 -q postgres || why="pgbench -i failed"
        if [ -z "$why" ]; then
            pg pgbench "$pgbin/pgbench" -n -c 4 -j 2 -t 400 postgres || why="pgbench failed"
            grep -q "number of failed transactions: 0 " "$LOGS/postgres.pgbench.out" || why="${why:+$why; }pgbench reports failed transactions"
        fi
        if [ -z "$why" ]; then
            pg check "$pgbin/psql" -Atc "select (select sum(abalance) from pgbench_accounts) = (select sum(delta) from pgbench_history)
                and (select sum(tbalance) from pgbench_tellers) = (select sum(delta) from pgbench_history)
                and (select sum(bbalance) from pgbench_branches) = (select sum(delta) from pgbench_history)
                and (select count(*) from pgbench_history) = 1600
                and (select count(distinct md5(aid::text)) from pgbench_accounts) = 200000" postgres
            [ "$(cat "$LOGS/postgres.check.out")" = t ] || why="balances do not add up after pgbench: $(head -c 200 "$LOGS/postgres.check.out" "$LOGS/postgres.check.err")"
        fi
        pg stop "$pgbin/pg_ctl" -D "$d/data" -m fast -w -t 60 stop || {
            why="${why:+$why; }the server did not stop"
            pg kill "$pgbin/pg_ctl" -D "$d/data" -m immediate -w stop
        }
    fi
    [ -f "$d/server.log" ] && cp "$d/server.log" "$LOGS/postgres.server.log"
    if grep -qE "PANIC|terminated by signal|was terminated|corrupt" "$LOGS/postgres.server.log" 2>/dev/null; then
        why="${why:+$why; }the server log reports a crash"
    fi
    if [ -n "$HK_LIB" ]; then
        local n
        n=$(grep -ho '"allocs": *[0-9]*' "$LOGS"/postgres.*.err "$LOGS/postgres.server.log" 2>/dev/null | grep -o '[0-9]*$' | sort -n | tail -n1)
        [ -n "$n" ] && [ "$n" -gt 0 ] || why="${why:+$why; }library not confirmed: no HAKMEM_STATS line with allocs > 0 from the server or its tools"
    fi
    rm -rf "$d"
    if [ -z "$why" ]; then hk_ok postgres; else hk_fail postgres "$why" "$LOGS/postgres.server.log"; fi
}
if selected postgres; then
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
    if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/postgres" ] || [ ! -x "$PGBIN/pgbench" ]; then
        hk_skip postgres "the PostgreSQL server and pgbench are not installed"
    else
        pg_check "$PGBIN"
    fi
fi

# CPython's own regression tests (a selection that stresses objects, containers, pickling, I/O,
# subprocesses and sqlite) must pass under the library. Skipped where the interpreter ships
# without its test package.
if selected python_regrtest; then
    if ! python3 -c 'import test.libregrtest' >/dev/null 2>&1; then
        hk_skip python_regrtest "python3 has no test package"
    else
        hk_run yes "$LOGS/python_regrtest" PYTHONHASHSEED=0 -- python3 -m test -j2 \
            test_dict test_list test_set test_collections test_itertools test_functools test_pickle \
            test_json test_re test_unicode test_bytes test_io test_array test_struct test_deque \
            test_weakref test_gc test_subprocess test_queue test_zlib test_sqlite3
        if [ "$HK_RC" -eq 0 ] && grep -q "Result: SUCCESS" "$LOGS/python_regrtest.out"; then
            hk_ok python_regrtest
        else
            hk_fail python_regrtest "python3 -m test under the library: $(hk_describe_rc "$HK_RC")" \
                "$LOGS/python_regrtest.out"
        fi
    fi
fi

hk_summary real-programs
