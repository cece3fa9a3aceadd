#!/bin/sh
# SPDX-License-Identifier: MIT
# run_fuzz.sh SECONDS BIN... - run each libFuzzer target for a bounded
# time from its seed corpus (tests/fuzz/corpus/<name>, kept in git; new
# inputs go to <bindir>/corpus-<name>), FUZZ_JOBS targets at a time
# (default 2: one per core).  Extra libFuzzer flags for a target may sit
# in tests/fuzz/fuzz_<name>.options.  A crash fails the run; its input is
# kept as <bindir>/crash-<name>-*, to replay with `BIN CRASHFILE`.
# Prints "fuzz <name> ok|FAIL" per target and "fuzz: P passed, F failed".
set -u
secs=$1; shift
jobs=${FUZZ_JOBS:-2}
root=$(cd "$(dirname "$0")/.." && pwd)

# fuzz_one BIN: run it, leave "ok ..." or "FAIL ..." in <bindir>/<name>.result
fuzz_one() {
    bin=$1
    name=$(basename "$bin" | sed 's/^fuzz_//')
    dir=$(dirname "$bin")
    seeds="$root/tests/fuzz/corpus/$name"
    work="$dir/corpus-$name"
    opts="$root/tests/fuzz/fuzz_$name.options"
    extra=$( [ -f "$opts" ] && cat "$opts" )
    log="$dir/$name.log"
    mkdir -p "$work" "$seeds"
    # shellcheck disable=SC2086 # $extra is a list of flags
    if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 $extra \
            -artifact_prefix="$dir/crash-$name-" "$work" "$seeds" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
        echo "ok (${runs:-?} runs in ${secs}s, $cov)" >"$dir/$name.result"
    else
        { echo "FAIL (see $log)"; grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5; } >"$dir/$name.result"
    fi
}

passed=0; failed=0

while [ $# -gt 0 ]; do
    batch=""
    i=0
    while [ $# -gt 0 ] && [ $i -lt "$jobs" ]; do
        fuzz_one "$1" &
        batch="$batch $1"; i=$((i + 1)); shift
    done
    wait
    for bin in $batch; do
        name=$(basename "$bin" | sed 's/^fuzz_//')
        result="$(dirname "$bin")/$name.result"
        echo "fuzz $name $(cat "$result" 2>/dev/null || echo 'FAIL (no result)')"
        if head -1 "$result" 2>/dev/null | grep -q '^ok'; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
    done
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
