#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_imports.sh - what recording import chains costs, on both python3.11 shapes.
#
# For each build shape (static: Debian's /usr/bin/python3.11; shared: a
# python3.11 that loads libpython3.11.so) it runs tests/fixtures/imports_heavy.py
# (about 190 stdlib modules by name, 260-330 imports in all) RUNS times in
# each of three ways, alternating so that load from other work on the machine
# falls on all three alike:
#
#   plain       python imports_heavy.py
#   importtime  python -X importtime imports_heavy.py      (CPython's own timer)
#   archtrace   archtrace -q --no-alloc --no-gil --no-sample python imports_heavy.py
#
# and prints the median wall time of each and the ratios to plain.  The
# target (issue 7) is archtrace <= 1.3x plain.  Then the 10 slowest top-level
# imports side by side: archtrace's cumulative time (--json) against
# -X importtime's, medians of RUNS separate runs of each (separate processes:
# expect run-to-run noise plus archtrace's own cost inside each import;
# tests/test_imports.c compares the two in one process instead).
#
# Usage: tools/bench_imports.sh [static|shared|all]    (default: all)
# Environment: RUNS (default 7), ARCHTRACE (default build/archtrace),
#              AT_PYTHON_STATIC / AT_PYTHON_SHARED (interpreters to use).
# Exit status: 0 when every shape measured met the target, 1 otherwise,
# 2 for bad usage or a missing archtrace.

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-7}
ARCHTRACE=${ARCHTRACE:-$ROOT/build/archtrace}
WORKLOAD=$ROOT/tests/fixtures/imports_heavy.py
TARGET=1.30

case "${1:-all}" in
static) SHAPES="static" ;;
shared) SHAPES="shared" ;;
all) SHAPES="static shared" ;;
*) echo "usage: tools/bench_imports.sh [static|shared|all]" >&2; exit 2 ;;
esac
[ -x "$ARCHTRACE" ] || { echo "bench_imports: $ARCHTRACE is not built (run make)" >&2; exit 2; }

# The real interpreter binary of a shape (never a pyenv shim script), or "".
find_python() {
	local want=$1 cand p
	local env_var=AT_PYTHON_STATIC
	[ "$want" = shared ] && env_var=AT_PYTHON_SHARED
	for cand in "${!env_var:-}" /usr/bin/python3.11 \
		"$(python3.11 -c 'import sys;print(sys.executable)' 2>/dev/null)" \
		"$(ls "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.11*/bin/python3.11 2>/dev/null | tail -1)" \
		/usr/local/bin/python3.11; do
		[ -n "$cand" ] && [ -x "$cand" ] || continue
		p=$("$cand" -c 'import sys
shared = "libpython" in open("/proc/self/maps").read()
print(sys.executable if sys.version_info[:2] == (3, 11) and shared == ('"$([ "$want" = shared ] && echo True || echo False)"') else "")' 2>/dev/null)
		[ -n "$p" ] && { echo "$p"; return; }
	done
	echo ""
}

now_ns() { date +%s%N; }

# Wall time of one run in microseconds; the command's output is discarded.
time_us() {
	local t0 t1
	t0=$(now_ns)
	"$@" >/dev/null 2>&1 || { echo "bench_imports: failed: $*" >&2; echo -1; return; }
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000))
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : int((v[NR/2]+v[NR/2+1])/2)}'; }

# The 10 slowest top-level imports: archtrace (--json) against separate
# -X importtime runs, each the median of RUNS runs taken alternately.
side_by_side() {
	local py=$1 tmp k
	tmp=$(mktemp -d)
	for k in $(seq "$RUNS"); do
		"$ARCHTRACE" -q --no-alloc --no-gil --no-sample --json "$tmp/at.$k.json" "$py" "$WORKLOAD" >/dev/null 2>&1
		"$py" -X importtime "$WORKLOAD" 2>"$tmp/it.$k.txt" >/dev/null
	done
	python3 - "$tmp" "$RUNS" <<-'EOF'
		import json, re, statistics, sys
		tmp, runs = sys.argv[1], int(sys.argv[2])
		it, at = {}, {}
		for k in range(1, runs + 1):
		    seen = set()
		    for line in open("%s/it.%d.txt" % (tmp, k)):
		        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
		        if m and not m.group(3) and m.group(4) not in seen:
		            seen.add(m.group(4))
		            it.setdefault(m.group(4), []).append(int(m.group(2)))
		    report = json.load(open("%s/at.%d.json" % (tmp, k)))
		    seen = set()
		    for p in report["processes"]:
		        for r in p["imports"] or []:
		            if r["depth"] == 0 and r["cumulative_us"] is not None and r["module"] not in seen:
		                seen.add(r["module"])
		                at.setdefault(r["module"], []).append(r["cumulative_us"])
		med = {n: statistics.median(v) for n, v in it.items()}
		print("    %-28s %14s %14s %7s" % ("top-level import", "importtime us", "archtrace us", "ratio"))
		for name in sorted(med, key=lambda n: -med[n])[:10]:
		    a = statistics.median(at[name]) if name in at else None
		    print("    %-28s %14.0f %14s %7s" % (name, med[name], "-" if a is None else "%.0f" % a,
		          "-" if a is None else "%.2f" % (a / med[name])))
	EOF
	rm -rf "$tmp"
}

status=0
printf '%-7s %-44s %5s %12s %12s %12s %9s %9s\n' shape python runs "plain ms" "importtime ms" "archtrace ms" "it/plain" "at/plain"
for shape in $SHAPES; do
	py=$(find_python "$shape")
	if [ -z "$py" ]; then
		echo "$shape: no python3.11 of this shape here, skipped"
		continue
	fi
	# warm the page cache and __pycache__ once, untimed
	"$py" "$WORKLOAD" >/dev/null 2>&1
	: >/tmp/bench_imports.$$.p; : >/tmp/bench_imports.$$.i; : >/tmp/bench_imports.$$.a
	for _ in $(seq "$RUNS"); do
		time_us "$py" "$WORKLOAD" >>/tmp/bench_imports.$$.p
		time_us "$py" -X importtime "$WORKLOAD" >>/tmp/bench_imports.$$.i
		time_us "$ARCHTRACE" -q --no-alloc --no-gil --no-sample "$py" "$WORKLOAD" >>/tmp/bench_imports.$$.a
	done
	p=$(median </tmp/bench_imports.$$.p)
	i=$(median </tmp/bench_imports.$$.i)
	a=$(median </tmp/bench_imports.$$.a)
	rm -f /tmp/bench_imports.$$.[pia]
	line=$(awk -v s="$shape" -v py="$py" -v n="$RUNS" -v p="$p" -v i="$i" -v a="$a" -v t="$TARGET" 'BEGIN {
		printf "%-7s %-44s %5d %12.1f %12.1f %12.1f %9.2f %9.2f", s, py, n, p/1000, i/1000, a/1000, i/p, a/p
		exit (a/p <= t) ? 0 : 1 }')
	ok=$?
	echo "$line $([ $ok = 0 ] && echo ok || echo "OVER ${TARGET}x")"
	[ $ok = 0 ] || status=1
	side_by_side "$py"
done
exit $status
