#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run_labs.sh - run the teaching labs on each python3.11 build shape and say which pass.
#
# Each lab runs with its shape's venv python (.venv/<shape>/bin/python, made by
# tools/venvs.sh) from the repository root, under a timeout, with stdout and
# stderr kept in build/labs/<shape>/labNN.log.  A lab passes when it exits 0
# and the last line of its stdout is "VERIFY labNN: ... ok".  A lab that is a
# package (labs/labNN/) passes when its pytest suite passes
# (python -m pytest -q labs/labNN) and then `python -m labs.labNN --verify`
# passes as above.
#
# Usage: tools/run_labs.sh [--shape static|shared|all] [labNN|NN ...]
#        (default: all shapes, labs 01-15)
#
# Output: exactly one line per lab and shape,
#     lab04 static ok
#     lab04 shared FAIL <the lab's FAIL line, "timeout after 120s", "exit 1: ...">
# and a table with the times in build/labs/summary.tsv.
# Exit status: 0 when every lab passed, 1 when any failed, 2 for bad usage.
# Environment: LAB_TIMEOUT (seconds per lab, default 120).

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/build/labs"
TIMEOUT=${LAB_TIMEOUT:-120}
VERIFY_RE='^VERIFY lab ?([0-9][0-9]): .* ok$'

usage() {
	echo "usage: tools/run_labs.sh [--shape static|shared|all] [labNN|NN ...]" >&2
	exit 2
}

SHAPES=all
LABS=()
while [ $# -gt 0 ]; do
	case "$1" in
	--shape) [ $# -ge 2 ] || usage; SHAPES=$2; shift 2 ;;
	--shape=*) SHAPES=${1#--shape=}; shift ;;
	-h | --help) sed -n '3,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) usage ;;
	*)
		n=${1#lab}
		n=${n%.py}
		n=${n%/}
		case "$n" in
		[0-9]) n="0$n" ;;
		[0-9][0-9]) ;;
		*) usage ;;
		esac
		LABS+=("lab$n")
		shift
		;;
	esac
done
case "$SHAPES" in
static | shared) ;;
all) SHAPES="static shared" ;;
*) usage ;;
esac
if [ ${#LABS[@]} -eq 0 ]; then
	for i in $(seq -w 1 15); do LABS+=("lab$i"); done
fi

# one_line TEXT -> the text squeezed to one short line
one_line() {
	tr -s ' \t\r\n' ' ' <<<"$1" | sed 's/^ //; s/ $//' | cut -c1-160
}

# secs_since T0_NS T1_NS -> elapsed seconds with one decimal
secs_since() {
	local ds=$((($2 - $1) / 100000000))
	echo "$((ds / 10)).$((ds % 10))"
}

# run_step LOG STDOUT CMD... -> runs CMD with stdout in STDOUT and stderr in
# STDOUT.err, appends both to LOG, returns its status
run_step() {
	local log=$1 so=$2 err rc t0 t1
	err=$so.err
	shift 2
	t0=$(date +%s%N)
	(cd "$ROOT" && timeout -k 5 "$TIMEOUT" "$@") </dev/null >"$so" 2>"$err"
	rc=$?
	t1=$(date +%s%N)
	{
		echo "\$ $*"
		echo "--- stdout ---"
		cat "$so"
		echo "--- stderr ---"
		cat "$err"
		echo "--- exit $rc after $(secs_since "$t0" "$t1")s ---"
		echo
	} >>"$log"
	return $rc
}

# verdict LAB RC STDOUT -> prints "ok" or "FAIL reason"
verdict() {
	local lab=$1 rc=$2 so=$3 last failline errline
	last=$(tail -n 1 "$so")
	errline=$(grep -v '^[[:space:]]*$' "$so.err" 2>/dev/null | tail -n 1)
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "FAIL timeout after ${TIMEOUT}s"
		return
	fi
	failline=$(grep -E '(^|[^A-Z])FAIL([^A-Z]|$)' "$so" | tail -n 1)
	failline=${failline#FAIL }
	if [ "$rc" -eq 0 ] && [[ $last =~ $VERIFY_RE ]] && [ "lab${BASH_REMATCH[1]}" = "$lab" ]; then
		echo "ok"
	elif [ -n "$failline" ]; then
		echo "FAIL $(one_line "$failline")"
	elif [ "$rc" -ne 0 ]; then
		echo "FAIL exit $rc: $(one_line "${errline:-${last:-no output}}")"
	else
		echo "FAIL no VERIFY line at the end (last: $(one_line "${last:-no output}"))"
	fi
}

mkdir -p "$OUT"
SUMMARY="$OUT/summary.tsv"
printf 'lab\tshape\tstatus\tseconds\n' >"$SUMMARY"
status=0
for shape in $SHAPES; do
	py="$ROOT/.venv/$shape/bin/python"
	dir="$OUT/$shape"
	mkdir -p "$dir"
	for lab in "${LABS[@]}"; do
		log="$dir/$lab.log"
		: >"$log"
		t0=$(date +%s%N)
		if [ ! -x "$py" ]; then
			result="FAIL no .venv/$shape: run tools/venvs.sh (make deps)"
		elif [ -f "$ROOT/labs/$lab.py" ]; then
			run_step "$log" "$dir/$lab.out" "$py" "labs/$lab.py"
			result=$(verdict "$lab" $? "$dir/$lab.out")
		elif [ -f "$ROOT/labs/$lab/__main__.py" ]; then
			result=ok
			if [ -d "$ROOT/labs/$lab/tests" ]; then
				run_step "$log" "$dir/$lab.pytest.out" "$py" -m pytest -q -p no:cacheprovider "labs/$lab"
				rc=$?
				if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
					result="FAIL pytest: timeout after ${TIMEOUT}s"
				elif [ $rc -ne 0 ]; then
					result="FAIL pytest exit $rc: $(one_line "$(grep -E '(failed|error)' "$dir/$lab.pytest.out" | tail -n 1)")"
				fi
			fi
			if [ "$result" = ok ]; then
				run_step "$log" "$dir/$lab.out" "$py" -m "labs.$lab" --verify
				result=$(verdict "$lab" $? "$dir/$lab.out")
			fi
		else
			result="FAIL missing"
		fi
		rm -f "$dir/$lab".out "$dir/$lab".out.err "$dir/$lab".pytest.out "$dir/$lab".pytest.out.err
		secs=$(secs_since "$t0" "$(date +%s%N)")
		printf '%s\t%s\t%s\t%s\n' "$lab" "$shape" "${result%% *}" "$secs" >>"$SUMMARY"
		echo "$lab $shape $result"
		[ "$result" = ok ] || status=1
	done
done
exit $status
