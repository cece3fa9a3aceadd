#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_bpf.sh - what the eBPF backend costs the process it is attached to.
#
# For each python3.11 build shape and each probe family, runs a fixed
# workload (tests/fixtures/bpf_bench.py, timed by the workload itself from
# a go signal to its end) alone and with `archtrace -p PID record --bpf`
# attached before the go signal, alternating (plain first on odd rounds,
# attached first on even ones), RUNS times each, and prints the median
# times, the ratio of the medians and the median of the per-round ratios:
#   gil      two CPU-bound threads; GIL uprobes only    target <= 1.05
#   imports  import-heavy rounds; import probes only    target <= 1.05
#            (USDT on Debian's static build, uprobes on a shared one)
#   sample   one CPU-bound thread; perf_event at 99 Hz  target <= 1.01
# GC probes are always attached (they fire a few times per second here).
# Ratios, not absolute times: these machines are shared.
#
# Usage: tools/bench_bpf.sh [RUNS]     (default 5)
# Env:   ARCHTRACE    the archtrace binary (default build/archtrace)
#        BPF_ATTACH   the attach command instead of archtrace's, with {pid},
#                     {dir} and {flags} replaced (it must stop by itself
#                     when the target exits)
#        SHAPES       "static shared" (default), CASES "gil imports sample"
# Exit status: 0, 1 when a run failed, 2 for bad usage.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${1:-5}
ARCHTRACE=${ARCHTRACE:-$ROOT/build/archtrace}
FIX="$ROOT/tests/fixtures/bpf_bench.py"
ATTACH=${BPF_ATTACH:-"$ARCHTRACE -p {pid} record --bpf -q -o {dir}/session {flags}"}
SHAPES=${SHAPES:-static shared}
CASES=${CASES:-gil imports sample}
case "$RUNS" in '' | *[!0-9]*) echo "usage: tools/bench_bpf.sh [RUNS]" >&2; exit 2 ;; esac
[ "$RUNS" -ge 1 ] || { echo "usage: tools/bench_bpf.sh [RUNS]" >&2; exit 2; }
if [ -z "${BPF_ATTACH:-}" ] && [ ! -x "$ARCHTRACE" ]; then
	echo "bench_bpf: $ARCHTRACE not built (make)" >&2
	exit 1
fi

shape_python() {
	if [ "$1" = static ]; then
		[ -x /usr/bin/python3.11 ] && echo /usr/bin/python3.11
		return
	fi
	python3.11 -c 'import sys, sysconfig; print(sys.executable if sysconfig.get_config_var("Py_ENABLE_SHARED") else "")' 2>/dev/null
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# case -> workload mode, archtrace flags, target ratio
case_mode() { case $1 in gil) echo threads ;; imports) echo imports ;; sample) echo cpu ;; esac; }
case_flags() {
	case $1 in
	gil) echo "--no-imports --no-sample" ;;
	imports) echo "--no-gil --no-sample" ;;
	sample) echo "--no-gil --no-imports --rate 99" ;;
	esac
}
case_target() { case $1 in sample) echo 1.01 ;; *) echo 1.05 ;; esac; }

# wait_line FILE PREFIX SECS: the first line of FILE starting with PREFIX
wait_line() {
	local i line
	for ((i = 0; i < $3 * 50; i++)); do
		line=$(grep -m1 "^$2" "$1" 2>/dev/null) && { echo "$line"; return 0; }
		sleep 0.02
	done
	return 1
}

# wait_attached PID: its perf_event fds (one per uprobe, per CPU) stop
# changing for 0.3 s (at most 15 s)
wait_attached() {
	local i n last=-1 same=0
	for ((i = 0; i < 750; i++)); do
		kill -0 "$1" 2>/dev/null || return 1
		n=$(ls -l "/proc/$1/fd" 2>/dev/null | grep -c 'perf_event')
		if [ "$n" -gt 0 ] && [ "$n" = "$last" ]; then
			same=$((same + 1))
			[ "$same" -ge 15 ] && return 0
		else
			same=0
		fi
		last=$n
		sleep 0.02
	done
	return 1
}

# run_once PYTHON CASE ATTACHED -> the workload's elapsed seconds
run_once() {
	local py=$1 cs=$2 attached=$3 dir ppid pid apid cmd line i
	dir=$(mktemp -d)
	"$py" "$FIX" "$(case_mode "$cs")" "$dir/go" >"$dir/out" 2>"$dir/err" &
	ppid=$!
	if ! line=$(wait_line "$dir/out" ready 30); then
		echo "bench_bpf: the workload did not start: $(head -c 300 "$dir/err")" >&2
		kill "$ppid" 2>/dev/null; wait "$ppid" 2>/dev/null; rm -rf "$dir"; return 1
	fi
	pid=${line#ready }
	if [ "$attached" = 1 ]; then
		cmd=${ATTACH//\{pid\}/$pid}
		cmd=${cmd//\{dir\}/$dir}
		cmd=${cmd//\{flags\}/$(case_flags "$cs")}
		sh -c "exec $cmd" >"$dir/attach.log" 2>&1 &
		apid=$!
		if ! wait_attached "$apid"; then
			echo "bench_bpf: attaching failed: $(head -c 300 "$dir/attach.log")" >&2
			kill "$ppid" 2>/dev/null; wait "$ppid" 2>/dev/null
			kill -INT "$apid" 2>/dev/null; wait "$apid" 2>/dev/null; rm -rf "$dir"; return 1
		fi
	fi
	touch "$dir/go"
	wait "$ppid"
	if [ "$attached" = 1 ]; then
		for ((i = 0; i < 500; i++)); do kill -0 "$apid" 2>/dev/null || break; sleep 0.02; done
		kill -INT "$apid" 2>/dev/null
		wait "$apid" 2>/dev/null
	fi
	line=$(grep -m1 '^elapsed' "$dir/out")
	rm -rf "$dir"
	[ -n "$line" ] || { echo "bench_bpf: the workload failed" >&2; return 1; }
	echo "${line#elapsed }"
}

status=0
printf '%-7s %-8s %11s %11s %7s %11s %7s  %s\n' SHAPE PROBES "PLAIN (s)" "BPF (s)" RATIO "PAIR RATIO" TARGET ""
for shape in $SHAPES; do
	py=$(shape_python "$shape")
	if [ -z "$py" ]; then
		echo "$shape: skipped: no $shape-libpython python3.11"
		continue
	fi
	for cs in $CASES; do
		plain=() bpf=() pairs=() failed=0
		for ((r = 1; r <= RUNS; r++)); do
			if [ $((r % 2)) = 1 ]; then
				p=$(run_once "$py" "$cs" 0) && b=$(run_once "$py" "$cs" 1) || failed=1
			else
				b=$(run_once "$py" "$cs" 1) && p=$(run_once "$py" "$cs" 0) || failed=1
			fi
			[ "$failed" = 1 ] && break
			plain+=("$p"); bpf+=("$b")
			pairs+=("$(awk -v a="$b" -v b="$p" 'BEGIN { printf "%.4f", a / b }')")
		done
		if [ "$failed" = 1 ]; then
			printf '%-7s %-8s failed\n' "$shape" "$cs"
			status=1
			continue
		fi
		mp=$(printf '%s\n' "${plain[@]}" | median)
		mb=$(printf '%s\n' "${bpf[@]}" | median)
		mr=$(printf '%s\n' "${pairs[@]}" | median)
		ratio=$(awk -v a="$mb" -v b="$mp" 'BEGIN { printf "%.3f", a / b }')
		target=$(case_target "$cs")
		met=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print (r <= t) ? "met" : "NOT met" }')
		printf '%-7s %-8s %11.3f %11.3f %7s %11.3f %7s  %s\n' "$shape" "$cs" "$mp" "$mb" "$ratio" "$mr" "<=$target" "$met"
	done
done
exit $status
