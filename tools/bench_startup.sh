#!/bin/sh
# SPDX-License-Identifier: MIT
# bench_startup.sh - what `archtrace -q PY -c pass` adds to the start-up of a plain `PY -c pass`.
#
# For each python given, runs ROUNDS paired rounds, plain and under
# archtrace alternating (plain first on odd rounds, archtrace first on
# even ones, so a drift of the machine's load hits both alike), times each
# run's wall clock from fork to exit, and prints one JSON object per line:
#   {"python": PY, "archtrace": BIN, "args": [...], "rounds": N,
#    "plain_ms": median, "archtrace_ms": median, "diff_ms": difference of
#    the medians, "diff_paired_ms": median of the per-round differences,
#    "plain_min_ms", "archtrace_min_ms", "failed": runs that did not exit 0}
# Ratios and differences, not absolute times: these machines are shared.
#
# Usage: tools/bench_startup.sh [-n ROUNDS] [-a ARCHTRACE] [-x ARGS] [PY...]
#   -n ROUNDS     paired rounds (default 30)
#   -a ARCHTRACE  the archtrace binary (default $ARCHTRACE, else build/archtrace)
#   -x ARGS       archtrace's options, one word each (default "-q")
#   PY            interpreters (default: the python3.11 on PATH, resolved past
#                 pyenv's shim, and /usr/bin/python3.11)
# Exit status: 0; 1 when a run failed to start or exited non-zero; 2 bad usage.
# POSIX sh around python3's standard library (time.perf_counter_ns, os.posix_spawn).

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=30
BIN=${ARCHTRACE:-$ROOT/build/archtrace}
XARGS=-q
while getopts n:a:x: opt; do
	case $opt in
	n) ROUNDS=$OPTARG ;;
	a) BIN=$OPTARG ;;
	x) XARGS=$OPTARG ;;
	*) echo "usage: tools/bench_startup.sh [-n ROUNDS] [-a ARCHTRACE] [-x ARGS] [PY...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
case $ROUNDS in '' | *[!0-9]*) echo "bench_startup: -n wants a number" >&2; exit 2 ;; esac
[ -x "$BIN" ] || { echo "bench_startup: $BIN not built (make)" >&2; exit 1; }
if [ $# -eq 0 ]; then
	set --
	# the interpreter itself, not a launcher in front of it (pyenv's shim
	# is a shell script that costs more than the start-up measured here)
	p=$(python3.11 -c 'import sys; print(sys.executable)' 2>/dev/null) && [ -n "$p" ] && set -- "$p"
	[ -x /usr/bin/python3.11 ] && [ "${1:-}" != /usr/bin/python3.11 ] && set -- "$@" /usr/bin/python3.11
fi
[ $# -ge 1 ] || { echo "bench_startup: no python3.11 found" >&2; exit 1; }

exec python3 - "$ROUNDS" "$BIN" "$XARGS" "$@" <<'PYEOF'
import json, os, statistics, sys, time

rounds, binary, xargs, pythons = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(), sys.argv[4:]
devnull = os.open(os.devnull, os.O_RDWR)
fa = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]


def run(argv):
    """Wall ms from spawn to reaped exit, and whether it exited 0."""
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=fa)
    _, st = os.waitpid(pid, 0)
    return (time.perf_counter_ns() - t0) / 1e6, os.waitstatus_to_exitcode(st) == 0


status = 0
for py in pythons:
    plain_argv = [py, "-c", "pass"]
    at_argv = [binary] + xargs + [py, "-c", "pass"]
    run(plain_argv), run(at_argv)                       # warm the page cache
    plain, at, diffs, failed = [], [], [], 0
    for r in range(rounds):
        order = (plain_argv, at_argv) if r % 2 == 0 else (at_argv, plain_argv)
        got = {}
        for argv in order:
            ms, ok = run(argv)
            failed += not ok
            got[argv is at_argv] = ms
        plain.append(got[False])
        at.append(got[True])
        diffs.append(got[True] - got[False])
    if failed:
        status = 1
    mp, ma = statistics.median(plain), statistics.median(at)
    print(json.dumps({"python": py, "archtrace": binary, "args": xargs, "rounds": rounds,
                      "plain_ms": round(mp, 2), "archtrace_ms": round(ma, 2),
                      "diff_ms": round(ma - mp, 2), "diff_paired_ms": round(statistics.median(diffs), 2),
                      "plain_min_ms": round(min(plain), 2), "archtrace_min_ms": round(min(at), 2),
                      "failed": failed}), flush=True)
sys.exit(status)
PYEOF
