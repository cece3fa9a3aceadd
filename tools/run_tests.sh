#!/bin/sh
# SPDX-License-Identifier: MIT
# run_tests.sh - everything `make test` runs, in order, with one closing
# line that counts all of it and one with the time of each part:
#   1. the Criterion test binaries, one at a time (the integration tests
#      measure timing on a 2-core machine);
#   2. --labs: the labs on both build shapes;
#   3. --fuzz SECS "BIN...": each libFuzzer target for SECS seconds
#      (beside step 5, which times nothing either);
#   4. --asan DIR "NAME[:FILTER]...": the named test binaries once more
#      against the ASan+UBSan archtrace and shim in DIR (ARCHTRACE_BIN,
#      ARCHTRACE_SHIM), optionally only the tests matching FILTER;
#   5. --valgrind BIN: tools/valgrind_cli.sh on the CLI BIN;
# --parallel "NAME...": these binaries run two tests at a time (they
# time nothing: damaged sessions, output formats, value readers); the
# others one at a time.
# and, when test_pythons is among the binaries, the CPythons the tests used.
#   tools/run_tests.sh [--labs] [--fuzz SECS BINS] [--asan DIR TESTS] [--valgrind BIN] [--parallel NAMES] BIN...
set -u
tools=$(cd "$(dirname "$0")" && pwd)
labs=0; fuzz_secs=""; fuzz_bins=""; asan_dir=""; asan_tests=""; vg_bin=""; parallel=""
while [ $# -gt 0 ]; do
    case $1 in
        --labs) labs=1; shift ;;
        --fuzz) fuzz_secs=$2; fuzz_bins=$3; shift 3 ;;
        --asan) asan_dir=$2; asan_tests=$3; shift 3 ;;
        --valgrind) vg_bin=$2; shift 2 ;;
        --parallel) parallel=" $2 "; shift 2 ;;
        *) break ;;
    esac
done

passed=0; failed=0; skipped=0; broken=""; times=""
now() { date +%s; }
t_all=$(now)

# note_time PART START: "PART Ns" for the closing line
note_time() { times="$times${times:+, }$1 $(( $(now) - $2 ))s"; }

# count PART P F: add a part's own pass/fail counts
count() {
    passed=$((passed + $2)); failed=$((failed + $3))
    [ "$3" -ne 0 ] && broken="$broken $1"
}

# criterion LABEL BIN [FILTER]: one test binary, its failures shown
criterion() {
    label=$1; bin=$2; filter=${3:-}
    echo "== $label"
    log=$(mktemp); t_bin=$(now)
    # --jobs 1: tests that time GIL waits or sampling rates need the cores
    jobs=1
    case "$parallel" in *" $(basename "$bin") "*) jobs=2 ;; esac
    if [ -n "$filter" ]; then
        "$bin" --jobs "$jobs" --short-filename --filter "$filter" >"$log" 2>&1
    else
        "$bin" --jobs "$jobs" --short-filename >"$log" 2>&1
    fi
    status=$?
    grep -E '^\[(FAIL|SKIP|----)\]|Synthesis' "$log" | sed 's/^/   /'
    line=$(grep 'Synthesis:' "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "   $label: no result (exit $status); last output:"; tail -20 "$log" | sed 's/^/   | /'
        failed=$((failed + 1)); broken="$broken $label"
    else
        p=$(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
        f=$(echo "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
        s=$(grep -c '^\[SKIP\]' "$log")
        passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
        if [ "$f" -ne 0 ] || [ "$status" -ne 0 ]; then broken="$broken $label"; fi
        # a binary that died after its tests (exit != 0) counts as one failure
        if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
            echo "   $label: exit $status after the tests; last output:"
            grep -v '^\[\(PASS\|RUN \)\]' "$log" | tail -8 | sed 's/^/   | /'
            failed=$((failed + 1))
        fi
    fi
    echo "   ($(( $(now) - t_bin ))s)"
    rm -f "$log"
}

# a part whose script prints "ok"/"FAIL" lines and a "<kind>: P passed, F failed" total
scripted() {
    part=$1; shift
    out=$(mktemp)
    "$@" | tee "$out"
    p=$(sed -n "s/^$part: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p" "$out")
    f=$(sed -n "s/^$part: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p" "$out")
    [ -z "$p" ] && { p=0; f=1; echo "   $part: no total line"; }
    count "$part" "$p" "$f"
    rm -f "$out"
}

t0=$(now)
pythons=""
for bin in "$@"; do
    criterion "$(basename "$bin")" "$bin"
    # test_pythons logs each interpreter it found: the closing lines name them
    [ "$(basename "$bin")" = test_pythons ] &&
        pythons=$("$bin" --jobs 1 --verbose 2>&1 | sed -n 's/^\[----\] python \([^:]*\): .*(\(.*\))$/\2/p' | sort | paste -sd, - | sed 's/,/, /g')
done
note_time tests "$t0"

if [ "$labs" = 1 ]; then
    echo "== labs (both build shapes)"
    t0=$(now); out=$(mktemp)
    "$tools/run_labs.sh" --shape all | tee "$out"
    count labs "$(grep -c ' ok$' "$out")" "$(grep -c ' FAIL' "$out")"
    rm -f "$out"; note_time labs "$t0"
fi

if [ -n "$asan_dir" ]; then
    t0=$(now)
    asan_dir=$(cd "$asan_dir" && pwd)
    bindir=$(dirname "${1:-build/tests/x}")
    export ARCHTRACE_BIN="$asan_dir/archtrace" ARCHTRACE_SHIM="$asan_dir/libarchtrace.so"
    # the oldest and the newest layout: 3.11's static build and 3.13 (the
    # plain run covered all four; memory errors are archtrace's, not a shape's)
    export ARCHTRACE_TEST_SHAPES=static,3.13
    set -f # the filters are Criterion patterns, not file names
    for spec in $asan_tests; do
        name=${spec%%:*}; filter=""
        [ "$name" != "$spec" ] && filter=${spec#*:}
        criterion "$name (ASan)" "$bindir/$name" "$filter"
    done
    set +f
    unset ARCHTRACE_BIN ARCHTRACE_SHIM ARCHTRACE_TEST_SHAPES
    note_time asan "$t0"
fi

# fuzzing and valgrind time nothing: side by side (the fuzz targets' lines
# are kept and shown after valgrind's)
fuzz_out=""
if [ -n "$fuzz_bins" ]; then
    fuzz_out=$(mktemp); t_fuzz=$(now)
    # shellcheck disable=SC2086 # a list of binaries
    "$tools/run_fuzz.sh" "$fuzz_secs" $fuzz_bins >"$fuzz_out" 2>&1 &
    fuzz_pid=$!
fi

if [ -n "$vg_bin" ]; then
    echo "== valgrind (the CLI: record, dump, report, run)"
    t0=$(now)
    scripted valgrind "$tools/valgrind_cli.sh" "$vg_bin"
    note_time valgrind "$t0"
fi

if [ -n "$fuzz_out" ]; then
    wait "$fuzz_pid"
    echo "== fuzz (${fuzz_secs}s per target, beside valgrind)"
    scripted fuzz cat "$fuzz_out"
    rm -f "$fuzz_out"
    note_time fuzz "$t_fuzz"
fi

[ -n "$broken" ] && echo "failing:$broken"
echo "time: $times; total $(( $(now) - t_all ))s"
[ -n "$pythons" ] && echo "interpreters: $pythons"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
