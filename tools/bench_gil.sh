#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_gil.sh - what archtrace's GIL accounting costs a CPU-bound workload.
#
# For each python3.11 build shape and for a 2-thread and a 1-thread
# pure-Python workload (tests/fixtures/gil_work.py, fixed work), runs the
# plain interpreter and the same under archtrace with the GIL accounting
# only (--no-alloc --no-imports --no-sample), alternating, RUNS times
# each, and prints median times and their ratio (traced / plain):
#   work   the workload's own perf_counter around its work: the cost of
#          the GIL hooks alone
#   cpu    its process_time over the same span: steadier than wall time
#          when other jobs load the machine
#   wall   the whole command, start to exit: adds archtrace's session,
#          the preload and the report
# Targets (issue 6): 2 threads <= 1.03 (work), 1 thread ~1.00.
#
# Usage: tools/bench_gil.sh [RUNS]   (default 5; env ARCHTRACE, ITERS)
# Exit status: 0, 1 when a run failed, 2 for bad usage.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${1:-5}
ARCHTRACE=${ARCHTRACE:-$ROOT/build/archtrace}
WORK="$ROOT/tests/fixtures/gil_work.py"
OPTS="-q --no-alloc --no-imports --no-sample"
case "$RUNS" in '' | *[!0-9]*) echo "usage: tools/bench_gil.sh [RUNS]" >&2; exit 2 ;; esac
[ "$RUNS" -ge 1 ] || { echo "usage: tools/bench_gil.sh [RUNS]" >&2; exit 2; }
[ -x "$ARCHTRACE" ] || { echo "bench_gil: $ARCHTRACE not built (make)" >&2; exit 1; }

shape_python() {
	if [ "$1" = static ]; then
		[ -x /usr/bin/python3.11 ] && echo /usr/bin/python3.11
		return
	fi
	python3.11 -c 'import sys, sysconfig; print(sys.executable if sysconfig.get_config_var("Py_ENABLE_SHARED") else "")' 2>/dev/null
}

# median FILE COLUMN -> the median of that column of FILE
median() {
	awk -v c="$2" '{ print $c }' "$1" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# run_once PYTHON THREADS ITERS [archtrace] -> "work cpu wall" in seconds
run_once() {
	local py=$1 threads=$2 iters=$3 traced=${4:-} t0 t1 out dir
	dir=$(mktemp -d)
	t0=$(date +%s%N)
	if [ -n "$traced" ]; then
		out=$(cd "$dir" && "$ARCHTRACE" $OPTS "$py" "$WORK" "$threads" "$iters") || { rm -rf "$dir"; return 1; }
	else
		out=$(cd "$dir" && "$py" "$WORK" "$threads" "$iters") || { rm -rf "$dir"; return 1; }
	fi
	t1=$(date +%s%N)
	rm -rf "$dir"
	set -- $out
	echo "$2 $4 $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')"
}

status=0
printf '%-7s %-10s %9s %9s %6s   %9s %9s %6s   %9s %9s %6s\n' SHAPE WORKLOAD "WORK" "TRACED" RATIO "CPU" "TRACED" RATIO "WALL" "TRACED" RATIO
for shape in static shared; do
	py=$(shape_python "$shape")
	if [ -z "$py" ]; then
		echo "$shape: skipped: no $shape-libpython python3.11"
		continue
	fi
	for threads in 2 1; do
		iters=${ITERS:-$((20000000 / threads))}
		plain=$(mktemp) traced=$(mktemp)
		for ((i = 0; i < RUNS; i++)); do
			# alternate, so drifting machine load hits both sides alike
			if ! run_once "$py" "$threads" "$iters" >>"$plain" ||
				! run_once "$py" "$threads" "$iters" traced >>"$traced"; then
				echo "$shape: a run of $threads thread(s) failed" >&2
				status=1
				break
			fi
		done
		if [ "$(wc -l <"$traced")" -lt 1 ]; then
			rm -f "$plain" "$traced"
			continue
		fi
		line=$(printf '%-7s %-10s' "$shape" "$threads thread$([ "$threads" = 1 ] || echo s)")
		for col in 1 2 3; do          # work, cpu, wall
			mp=$(median "$plain" $col) mt=$(median "$traced" $col)
			line+=$(printf ' %8.3fs %8.3fs %6.3f  ' "$mp" "$mt" "$(awk -v a="$mt" -v b="$mp" 'BEGIN { print a / b }')")
		done
		rm -f "$plain" "$traced"
		echo "$line"
	done
done
echo "medians of $RUNS alternating runs; GIL accounting only ($OPTS)"
exit $status
