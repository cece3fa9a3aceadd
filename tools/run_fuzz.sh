#!/bin/sh
# SPDX-License-Identifier: MIT
# run_fuzz.sh SECONDS BIN... - run each libFuzzer target for a bounded
# time from its seed corpus (tests/fuzz/corpus/<name>, kept in git; new
# inputs go to build/fuzz/corpus-<name>).  A crash fails the run and its
# input is kept as build/fuzz/crash-*.
set -u
secs=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
passed=0; failed=0
for bin in "$@"; do
    name=$(basename "$bin" | sed 's/^fuzz_//')
    seeds="$root/tests/fuzz/corpus/$name"
    work="$(dirname "$bin")/corpus-$name"
    mkdir -p "$work" "$seeds"
    log="$(dirname "$bin")/$name.log"
    if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$(dirname "$bin")/crash-$name-" "$work" "$seeds" >"$log" 2>&1; then
        runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1)
        echo "fuzz $name ok ($runs in ${secs}s)"
        passed=$((passed + 1))
    else
        echo "fuzz $name FAIL (see $log)"; grep -E 'ERROR|SUMMARY' "$log" | head -5
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
