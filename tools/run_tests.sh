#!/bin/sh
# SPDX-License-Identifier: MIT
# run_tests.sh - run the Criterion test binaries (one at a time: the
# integration tests measure timing on a 2-core machine), optionally the
# labs on both build shapes, and print one closing line with the totals.
#   tools/run_tests.sh [--labs] BIN...
set -u
labs=0
if [ "${1:-}" = "--labs" ]; then labs=1; shift; fi

passed=0; failed=0; skipped=0; broken=""
for bin in "$@"; do
    name=$(basename "$bin")
    echo "== $name"
    log=$(mktemp)
    # --jobs 1: tests that time GIL waits or sampling rates need the cores
    "$bin" --jobs 1 --short-filename >"$log" 2>&1
    status=$?
    grep -E '^\[(FAIL|SKIP|----)\]|Synthesis' "$log" | sed 's/^/   /'
    line=$(grep 'Synthesis:' "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "   $name: no result (exit $status); last output:"; tail -20 "$log" | sed 's/^/   | /'
        failed=$((failed + 1)); broken="$broken $name"
    else
        t=$(echo "$line" | sed -n 's/.*Tested: \([0-9]*\).*/\1/p')
        p=$(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
        f=$(echo "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
        s=$(grep -c '^\[SKIP\]' "$log")
        passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
        [ "$f" -ne 0 ] || [ "$status" -ne 0 ] && broken="$broken $name"
        [ "$status" -ne 0 ] && [ "$f" -eq 0 ] && failed=$((failed + 1))
        : "$t"
    fi
    rm -f "$log"
done

if [ "$labs" = 1 ]; then
    echo "== labs (both build shapes)"
    out=$(mktemp)
    "$(dirname "$0")/run_labs.sh" --shape all | tee "$out"
    lp=$(grep -c ' ok$' "$out"); lf=$(grep -c ' FAIL' "$out")
    passed=$((passed + lp)); failed=$((failed + lf))
    [ "$lf" -ne 0 ] && broken="$broken labs"
    rm -f "$out"
fi

[ -n "$broken" ] && echo "failing:$broken"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
