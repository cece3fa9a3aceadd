#!/bin/sh
# SPDX-License-Identifier: MIT
# bench_alloc.sh - what allocation tracking costs, against the plain run and
# tracemalloc, on both CPython 3.11 build shapes.
#
#   tools/bench_alloc.sh [-n RUNS] [-s SAMPLE_BYTES] [--shape static|shared|all]
#
# Runs tests/fixtures/alloc_bench.py (~6.5 million allocations) RUNS times
# (default 7) per mode, the modes interleaved run by run so that a change in
# the machine's load hits them all alike: plain, -X tracemalloc=1, archtrace
# exact, archtrace --alloc-sample, archtrace --alloc-depth 25.  archtrace runs
# with its other features off (--no-gil --no-imports --no-sample) so the
# table is the cost of allocation tracking alone.  Prints, per shape, the
# median wall time and peak RSS (GNU time's %M: the largest process, i.e.
# the target) with their ratios to the plain run, the spread of the
# per-run ratios (each run against the plain run of the same round, whose
# load it shared: first and third quartile), the tables archtrace
# itself keeps in the target, the time `archtrace report` takes to make the
# top-5 from the recorded data, and whether the sampled top-5 has the exact
# run's order with sizes within 10%.  Exit status 0 unless a run failed.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARCHTRACE=${ARCHTRACE_BIN:-$ROOT/build/archtrace}
FIXTURE=$ROOT/tests/fixtures/alloc_bench.py
RUNS=7
SAMPLE=1024
SHAPE=all
while [ $# -gt 0 ]; do
    case $1 in
    -n) RUNS=$2; shift 2 ;;
    -s) SAMPLE=$2; shift 2 ;;
    --shape) SHAPE=$2; shift 2 ;;
    -h|--help) sed -n '3,20p' "$0"; exit 0 ;;
    *) echo "bench_alloc: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$ARCHTRACE" ] || { echo "bench_alloc: $ARCHTRACE not built (make)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench_alloc: needs GNU time (apt-get install time)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/bench_alloc.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

python_of() {
    case $1 in
    static) [ -x /usr/bin/python3.11 ] && echo /usr/bin/python3.11 ;;
    shared) python3.11 -c 'import sys,sysconfig; print(sys.executable if sysconfig.get_config_var("Py_ENABLE_SHARED") else "")' 2>/dev/null ;;
    esac
}

# run MODE PY RUN: one timed run, "wall_s maxrss_kb" appended to WORK/MODE
run() {
    mode=$1 py=$2 i=$3
    json=$WORK/$mode.$i.json
    case $mode in
    plain)  set -- "$py" "$FIXTURE" ;;
    tm)     set -- "$py" -X tracemalloc=1 "$FIXTURE" ;;
    exact)  set -- "$ARCHTRACE" -q --no-gil --no-imports --no-sample --json "$json" "$py" "$FIXTURE" ;;
    sample) set -- "$ARCHTRACE" -q --no-gil --no-imports --no-sample --alloc-sample "$SAMPLE" --json "$json" "$py" "$FIXTURE" ;;
    depth)  set -- "$ARCHTRACE" -q --no-gil --no-imports --no-sample --alloc-depth 25 --json "$json" "$py" "$FIXTURE" ;;
    esac
    /usr/bin/time -f "%e %M" -o "$WORK/t" "$@" >/dev/null 2>"$WORK/err" || {
        echo "bench_alloc: $mode run failed:" >&2; cat "$WORK/err" >&2; return 1; }
    cat "$WORK/t" >> "$WORK/$mode"
}

median() {   # column of WORK/$1
    awk -v c="$2" '{print $c}' "$WORK/$1" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'
}

quartiles() {  # "q1-q3" of MODE's wall time / the same round's plain wall time
    paste -d' ' "$WORK/$1" "$WORK/plain" | awk '{print $1 / $3}' | sort -g |
        awk '{v[NR]=$1} END {printf "%.2f-%.2f", v[int((NR+3)/4)], v[int((3*NR+3)/4)]}'
}

jq_py() {    # python3 expression over a JSON report bound to a (the alloc part)
    python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["processes"][0]["alloc"]; print(eval(sys.argv[2]))' "$1" "$2"
}

# The sampled run's top-5 against the exact run's: same lines in the same
# order and sizes within 10%.
compare_tops() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
def top(path):
    a = json.load(open(path))["processes"][0]["alloc"]
    snap = [s for s in a["snapshots"] if s["label"] == "bench"][0]
    return [(t["file"], t["line"], t["size"]) for t in snap["top"][:5]]
exact, sampled = top(sys.argv[1]), top(sys.argv[2])
same = [e[:2] for e in exact] == [s[:2] for s in sampled]
worst = max(abs(s[2] - e[2]) / e[2] for e, s in zip(exact, sampled))
print("%s, sizes within %.1f%%" % ("same order" if same else "ORDER DIFFERS", 100 * worst))
EOF
}

bench_shape() {
    shape=$1
    py=$(python_of "$shape")
    if [ -z "$py" ]; then
        echo "== $shape: no $shape-libpython CPython 3.11 here, skipped"
        return 0
    fi
    rm -f "$WORK"/plain "$WORK"/tm "$WORK"/exact "$WORK"/sample "$WORK"/depth
    i=1
    while [ $i -le "$RUNS" ]; do
        for mode in plain tm exact sample depth; do
            run $mode "$py" $i
        done
        i=$((i + 1))
    done
    pw=$(median plain 1) pr=$(median plain 2)
    echo "== $shape: $py ($("$py" -c 'import sys; print(sys.version.split()[0])')), median of $RUNS runs, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
    printf '  %-34s %8s %7s %13s %10s %7s\n' MODE "WALL s" RATIO "RUN RATIOS" "RSS MiB" RATIO
    for mode in plain tm exact sample depth; do
        case $mode in
        plain) name="plain" ;;
        tm) name="python -X tracemalloc=1" ;;
        exact) name="archtrace (exact, 1 frame)" ;;
        sample) name="archtrace --alloc-sample $SAMPLE" ;;
        depth) name="archtrace --alloc-depth 25" ;;
        esac
        w=$(median $mode 1) r=$(median $mode 2) q=$(quartiles $mode)
        awk -v n="$name" -v w="$w" -v r="$r" -v pw="$pw" -v pr="$pr" -v q="$q" \
            'BEGIN { printf "  %-34s %8.3f %6.2fx %13s %10.1f %6.2fx\n", n, w, w / pw, q, r / 1024, r / pr }'
    done
    j=$WORK/exact.1.json
    echo "  archtrace's tables in the target (exact run): $(jq_py "$j" '"%.1f MiB resident (shadow %.1f, file %.1f), %.1f MiB private reserved; %d allocations tracked" % (a["overhead"]["resident_bytes"]/2**20, a["overhead"]["shadow_resident_bytes"]/2**20, a["overhead"]["file_resident_bytes"]/2**20, a["overhead"]["private_bytes"]/2**20, a["total_count"])')"
    echo "  sampled top-5 vs exact: $(compare_tops "$WORK/exact.1.json" "$WORK/sample.1.json")"
    dir=$WORK/session
    rm -rf "$dir"
    "$ARCHTRACE" -q --no-gil --no-imports --no-sample -o "$dir" "$py" "$FIXTURE" >/dev/null
    /usr/bin/time -f "%e" -o "$WORK/t" "$ARCHTRACE" report -q --json "$WORK/report.json" "$dir" 2>/dev/null ||
        "$ARCHTRACE" report --json "$WORK/report.json" "$dir" >/dev/null 2>&1
    echo "  archtrace report (top-5 from the recorded data): $(tail -1 "$WORK/t") s"
}

case $SHAPE in
all) bench_shape static; bench_shape shared ;;
static|shared) bench_shape "$SHAPE" ;;
*) echo "bench_alloc: --shape static|shared|all" >&2; exit 2 ;;
esac
