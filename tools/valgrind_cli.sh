#!/bin/sh
# SPDX-License-Identifier: MIT
# valgrind_cli.sh [ARCHTRACE] - the archtrace CLI under valgrind memcheck:
# record a running Python (-p PID record, with and without --native),
# dump it (also with --locals and --json, and locals.py's variables of
# every kind, and asyncio_tasks.py's tasks with --asyncio), both again
# with --subprocesses from a shell above it, then `report` the session in
# every format, then `run` a short program.  Each step must exit 0 with
# no memory error and no leak
# (definite, indirect or possible; "still reachable" is not a leak).
# Only archtrace itself is checked, not the Python it traces.  Prints
# "valgrind <step> ok|FAIL" per step and "valgrind: N passed, M failed".
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/archtrace}
py=${ARCHTRACE_TEST_PYTHON:-/usr/bin/python3.11}
work=$(mktemp -d /tmp/archtrace-valgrind.XXXXXX)
passed=0; failed=0

target=""
cleanup() {
    [ -n "$target" ] && kill "$target" 2>/dev/null && wait "$target" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Valgrind's notes that are not findings: libunwind-ptrace's _UPT_destroy
# unmaps its "no ELF image" sentinel (MAP_FAILED), which the kernel
# refuses harmlessly and valgrind reports as a warning.
benign='Warning: client syscall munmap tried to modify addresses 0xffffffffffffffff-'

# step NAME ARGS...: run archtrace ARGS under memcheck, output in $work/NAME.*
step() {
    name=$1; shift
    if valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible \
            --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
            --log-file="$work/$name.vg" "$bin" "$@" >"$work/$name.out" 2>"$work/$name.err" &&
            ! grep -v -e "$benign" "$work/$name.vg" | grep -q .; then
        echo "valgrind $name ok"
        passed=$((passed + 1))
    else
        echo "valgrind $name FAIL: archtrace $*"
        sed 's/^/   | /' "$work/$name.vg" "$work/$name.err" | head -40
        failed=$((failed + 1))
    fi
}

"$py" "$root/tests/fixtures/hard_spin.py" "$work/started" 60 >/dev/null &
target=$!
for _ in $(seq 100); do [ -f "$work/started" ] && break; sleep 0.05; done

step record -p "$target" record -d 1 -o "$work/s"
step record-native -p "$target" record --native -d 1 -o "$work/n"
step dump -p "$target" dump
step dump-locals -p "$target" dump --locals --json "$work/d.json"
kill "$target"; wait "$target" 2>/dev/null; target=""

# a program whose frames hold every kind of variable, stopped in them
"$py" "$root/tests/fixtures/locals.py" "$work/locals-ready" >/dev/null &
target=$!
for _ in $(seq 100); do [ -f "$work/locals-ready" ] && break; sleep 0.05; done
step dump-locals-kinds -p "$target" dump --locals --json "$work/l.json"
kill "$target"; wait "$target" 2>/dev/null; target=""

# asyncio tasks on two loops, one in debug mode
"$py" "$root/tests/fixtures/asyncio_tasks.py" "$work/asyncio-ready" >/dev/null &
target=$!
for _ in $(seq 100); do [ -f "$work/asyncio-ready" ] && break; sleep 0.05; done
step dump-asyncio -p "$target" dump --asyncio --json "$work/a.json"
kill "$target"; wait "$target" 2>/dev/null; target=""

# the same under a shell: --subprocesses finds it ("; :" keeps sh from exec'ing)
sh -c "\"$py\" \"$root/tests/fixtures/hard_spin.py\" \"$work/started2\" 60; :" >/dev/null &
target=$!
for _ in $(seq 100); do [ -f "$work/started2" ] && break; sleep 0.05; done
step dump-subprocesses -p "$target" dump --subprocesses
step record-subprocesses -p "$target" record --subprocesses -d 1 -o "$work/t"
pkill -P "$target"; kill "$target"; wait "$target" 2>/dev/null; target=""

step report report "$work/s"
step report-json report --json "$work/r.json" "$work/s"
for fmt in collapsed chrome svg pprof speedscope; do
    step "report-$fmt" report --format "$fmt" --out "$work/r.$fmt" "$work/s"
done
step run -q -o "$work/run" "$py" "$root/tests/fixtures/hard_workload.py"
step report-run report --json "$work/run.json" "$work/run"
step report-run-alloc-pprof report --alloc --format pprof --out "$work/run.pb.gz" "$work/run"

echo "valgrind: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
