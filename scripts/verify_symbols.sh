#!/usr/bin/env bash
# verify_symbols.sh: prove that a command really ran on a preloaded allocator.
#
# usage: scripts/verify_symbols.sh [--lib PATH | --system] [--timeout SEC] [--quiet] COMMAND [ARGS...]
#
#   --lib PATH     the allocator library to LD_PRELOAD (default target/release/libhakmem.so)
#   --system       no preload: check that COMMAND's malloc binds to glibc's libc.so.6
#   --timeout SEC  kill COMMAND after SEC seconds (default 300)
#   --quiet        print only FAIL lines and the verdict
#
# Checks, one line each ("verify: ok: ..." or "verify: FAIL: ..."):
#   (a) the library is an ELF shared object exporting the whole malloc API (for hakmem, detected
#       by its `hakmem_version` export, also free_sized, free_aligned_sized and the __libc_* aliases;
#       another library may lack reallocarray, since glibc's own calls the preloaded realloc);
#   (b) COMMAND is a dynamically linked, non-setuid/setgid program, it runs with the library
#       preloaded and exits 0, and the dynamic linker's own report (LD_DEBUG=bindings with
#       LD_BIND_NOW=1) shows malloc, free, calloc and realloc bound to the library and to nothing
#       else (a program that brings its own allocator binds them to itself);
#   (c) for hakmem: run with HAKMEM_STATS=json, the library's exit line on stderr
#       ({"hakmem":..., "allocs":N, ...}) shows N > 0 allocations served.
# Exits 0 only when every check holds; 1 when one fails; 2 on a usage error.
set -uo pipefail

CORE_SYMS=(malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc
           pvalloc malloc_usable_size cfree)
HAKMEM_SYMS=(free_sized free_aligned_sized __libc_malloc __libc_free __libc_calloc __libc_realloc
             __libc_memalign __libc_valloc __libc_pvalloc __posix_memalign)
BOUND_SYMS=(malloc free calloc realloc)

lib="target/release/libhakmem.so"
system=0
timeout_s=300
quiet=0

usage() {
    sed -n '2,/^set -uo/p' "$0" | sed -e '/^set -uo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        --lib) [ $# -ge 2 ] || usage; lib=$2; shift 2 ;;
        --lib=*) lib=${1#--lib=}; shift ;;
        --system) system=1; shift ;;
        --timeout) [ $# -ge 2 ] || usage; timeout_s=$2; shift 2 ;;
        --quiet) quiet=1; shift ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) echo "verify: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || usage
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || { echo "verify: --timeout wants whole seconds > 0" >&2; exit 2; }

failures=0
ok() { [ "$quiet" = 1 ] || echo "verify: ok: $*"; }
fail() { echo "verify: FAIL: $*"; failures=$((failures + 1)); }
note() { [ "$quiet" = 1 ] || echo "verify: note: $*"; }
verdict() {
    if [ "$failures" -eq 0 ]; then
        echo "verify: PASS: $1"
        exit 0
    fi
    echo "verify: FAILED: $failures check(s) failed for $1"
    exit 1
}

for tool in nm readelf; do
    command -v "$tool" >/dev/null || { fail "'$tool' not found (install binutils)"; verdict "$*"; }
done

# ---- the library ----------------------------------------------------------------------------
is_hakmem=0
lib_abs=""
if [ "$system" = 1 ]; then
    note "no preload (--system): expecting the C library's own malloc"
else
    if [ ! -e "$lib" ]; then
        fail "library $lib does not exist"
    elif [ ! -f "$lib" ]; then
        fail "library $lib is not a regular file"
    elif [ ! -r "$lib" ]; then
        fail "library $lib is not readable"
    elif [ "$(head -c 4 "$lib" | od -An -c | tr -d ' \n')" != '177ELF' ]; then
        fail "library $lib is not an ELF file"
    else
        lib_abs=$(realpath "$lib")
        elf_type=$(LC_ALL=C readelf -hW "$lib_abs" 2>/dev/null | sed -n 's/^ *Type: *\([A-Z]*\).*/\1/p')
        if [ "$elf_type" != DYN ]; then
            fail "library $lib is an ELF file of type ${elf_type:-unknown}, not a shared object"
            lib_abs=""
        elif LC_ALL=C readelf -dW "$lib_abs" 2>/dev/null | grep -q 'FLAGS_1.*PIE'; then
            fail "library $lib is a position-independent executable, not a shared library"
            lib_abs=""
        elif [[ $lib_abs == *[[:space:]:]* ]]; then
            fail "library path $lib_abs contains a space or ':' (LD_PRELOAD would split it)"
            lib_abs=""
        else
            ok "library $lib_abs is an ELF shared object"
        fi
    fi
    if [ -n "$lib_abs" ]; then
        # Defined functions (text, weak or indirect) in the dynamic symbol table.
        exported=$(nm -D --defined-only "$lib_abs" 2>/dev/null |
                   awk '$2 ~ /^[TtWwi]$/ { sub(/@.*/, "", $3); print $3 }' | sort -u)
        if ! grep -qx malloc <<<"$exported"; then
            fail "library $lib_abs does not export malloc: it is not a malloc replacement"
            lib_abs=""
        else
            grep -qx hakmem_version <<<"$exported" && is_hakmem=1
            want=("${CORE_SYMS[@]}")
            [ "$is_hakmem" = 1 ] && want+=("${HAKMEM_SYMS[@]}")
            missing=()
            for s in "${want[@]}"; do grep -qx -- "$s" <<<"$exported" || missing+=("$s"); done
            # glibc's reallocarray calls the preloaded realloc, so a peer may go without it
            # (tcmalloc 2.10 does); hakmem must export it.
            if [ "$is_hakmem" = 0 ] && [[ " ${missing[*]} " == *" reallocarray "* ]]; then
                missing=("${missing[@]/reallocarray}")
                read -ra missing <<<"${missing[*]}"
                note "library does not export reallocarray: glibc's reallocarray calls its realloc"
            fi
            what="core malloc API (${#CORE_SYMS[@]} symbols)"
            [ "$is_hakmem" = 1 ] && what="hakmem API (${#want[@]} symbols: core, C23 sized frees, __libc_* aliases)"
            if [ ${#missing[@]} -eq 0 ]; then
                ok "library exports the $what"
            else
                fail "library does not export: ${missing[*]}"
            fi
        fi
    fi
fi

# ---- the program ----------------------------------------------------------------------------
prog=$1
if [[ $prog != */* ]]; then
    prog=$(command -v -- "$prog" 2>/dev/null || true)
    if [ -z "$prog" ] || [ ! -f "$prog" ]; then
        fail "command '$1' not found in PATH"
        verdict "$*"
    fi
fi
if [ ! -f "$prog" ]; then
    fail "program $prog does not exist"
    verdict "$*"
fi
prog_abs=$(realpath "$prog")

# A script runs its interpreter: check that ELF file instead (LD_PRELOAD applies to it).
elf=$prog_abs
if [ "$(head -c 2 "$prog_abs")" = '#!' ]; then
    read -r interp interp_arg < <(head -n 1 "$prog_abs" | sed 's/^#! *//')
    if [ "$(basename "${interp:-}")" = env ] && [ -n "${interp_arg:-}" ]; then
        interp=$(command -v -- "${interp_arg%% *}" 2>/dev/null || true)
    fi
    if [ -n "${interp:-}" ] && [ -f "$interp" ]; then
        note "program $prog_abs is a script run by $interp; checking that interpreter"
        elf=$(realpath "$interp")
    else
        fail "program $prog_abs is a script whose interpreter '${interp:-}' was not found"
        verdict "$*"
    fi
fi

# Whether LD_PRELOAD can reach the program's malloc (ELF, dynamically linked, not setuid/setgid)
# is decided in one place, the launcher's check, which prints one line per reason.
runnable=1
if why=$(sh "$(dirname "$0")/hakmem" --can-preload "$elf"); then
    ok "$why"
else
    while IFS= read -r line; do fail "$line"; done <<<"$why"
    runnable=0
fi

if [ "$runnable" = 0 ] || { [ "$system" = 0 ] && [ -z "$lib_abs" ]; }; then
    note "not running the command: the checks above must hold first"
    verdict "$*"
fi

# ---- the run --------------------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/verify_symbols.XXXXXX") || { fail "mktemp failed"; verdict "$*"; }
pid=""
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

# The subshell execs COMMAND itself, so no helper process (env, timeout) runs under the library
# or adds its own bindings and stats line to the report.
(
    export LD_BIND_NOW=1 LD_DEBUG=bindings LD_DEBUG_OUTPUT="$tmp/ld"
    if [ "$system" = 1 ]; then
        unset LD_PRELOAD
    else
        export LD_PRELOAD="$lib_abs"
        [ "$is_hakmem" = 1 ] && export HAKMEM_STATS=json
    fi
    exec "$@"
) >"$tmp/stdout" 2>"$tmp/stderr" </dev/null &
pid=$!
timed_out=0
deadline=$((SECONDS + timeout_s))
while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        timed_out=1
        kill -KILL "$pid" 2>/dev/null
        break
    fi
    sleep 0.05
done
wait "$pid" 2>/dev/null  # no "Killed" job message on a timeout
status=$?
show_output() {
    [ -s "$tmp/stderr" ] && tail -n 5 "$tmp/stderr" | grep -v '^{"hakmem":' | sed 's/^/verify:   stderr: /'
    [ -s "$tmp/stdout" ] && tail -n 3 "$tmp/stdout" | sed 's/^/verify:   stdout: /'
    return 0
}
if [ "$status" -eq 0 ]; then
    ok "command exited 0 under ${lib_abs:-the system allocator}"
elif [ "$timed_out" = 1 ]; then
    fail "command did not finish within ${timeout_s}s (killed)"
    show_output
elif [ "$status" -gt 128 ]; then
    fail "command was killed by signal $((status - 128)) ($(kill -l $((status - 128)) 2>/dev/null || echo '?'))"
    show_output
else
    fail "command exited with status $status"
    show_output
fi

# One line per binding of a core symbol: FROM <tab> TO <tab> SYMBOL.
bt='`'
sq="'"
bindings=$(cat "$tmp"/ld.* 2>/dev/null |
           sed -nE "s/^ *[0-9]+:[[:space:]]*binding file (.*) \[[0-9]+\] to (.*) \[[0-9]+\]: (normal|protected) symbol ${bt}(malloc|free|calloc|realloc)${sq}.*$/\1\t\2\t\4/p")
if [ -z "$(ls "$tmp"/ld.* 2>/dev/null)" ]; then
    fail "the dynamic linker wrote no LD_DEBUG report (secure-mode process, or not run by ld.so)"
    verdict "$*"
fi

# Is TARGET (a path as ld.so prints it) the expected allocator?
is_expected() {
    if [ "$system" = 1 ]; then
        [[ $(basename "$1") == libc.so.6 ]]
    else
        [ "$1" = "$lib_abs" ] || { [ -e "$1" ] && [ "$(realpath "$1")" = "$lib_abs" ]; }
    fi
}
expected_name=${lib_abs:-libc.so.6}
declare -A seen_targets=()
while IFS=$'\t' read -r from to sym; do
    [ -n "$sym" ] || continue
    key="$sym"$'\t'"$to"
    [ -n "${seen_targets[$key]+x}" ] || seen_targets[$key]="$from"
done <<<"$bindings"
binding_failures=$failures
for sym in "${BOUND_SYMS[@]}"; do
    good=0
    others=()
    for key in "${!seen_targets[@]}"; do
        [ "${key%%$'\t'*}" = "$sym" ] || continue
        to=${key#*$'\t'}
        if is_expected "$to"; then
            good=1
        else
            others+=("$to (used by ${seen_targets[$key]})")
        fi
    done
    if [ ${#others[@]} -gt 0 ]; then
        own=""
        for o in "${others[@]}"; do
            case $o in "$prog_abs "*|"$1 "*|"$prog "*|"$elf "*) own=": the program brings its own allocator" ;; esac
        done
        fail "$sym binds to ${others[*]}, not to $expected_name$own"
    elif [ "$good" = 0 ]; then
        fail "no binding of $sym to $expected_name in the dynamic linker's report"
    fi
done
if [ "$failures" -eq "$binding_failures" ]; then
    ok "${BOUND_SYMS[*]} bind to $expected_name and nothing else ($(grep -c . <<<"$bindings") bindings reported by ld.so)"
fi

# ---- (c) hakmem's own account of the run ------------------------------------------------------
if [ "$system" = 1 ]; then
    :
elif [ "$is_hakmem" = 1 ]; then
    stats=$(grep -E '^\{"hakmem":' "$tmp/stderr" || true)
    if [ -z "$stats" ]; then
        fail "HAKMEM_STATS=json: no {\"hakmem\":...} line on stderr at exit"
    else
        allocs=$(grep -oE '"allocs": *[0-9]+' <<<"$stats" | grep -oE '[0-9]+$' | sort -n | tail -n 1)
        if [ -z "$allocs" ]; then
            fail "HAKMEM_STATS=json: the stats line has no \"allocs\" count: $(head -n 1 <<<"$stats" | cut -c1-200)"
        elif [ "$allocs" -gt 0 ]; then
            ok "hakmem served the run: \"allocs\":$allocs"
        else
            fail "hakmem reports \"allocs\":0: the run's allocations did not reach it"
        fi
    fi
else
    note "(c) skipped: $lib_abs does not export hakmem_version, so it has no HAKMEM_STATS report"
fi

verdict "$*"
