#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# screenshots.sh - remake the pictures in docs/img/ from the labs: a CPU
# flame graph and the GIL timeline of lab 08, a memory flame graph, the
# HTML report and the memory plot of lab 04, labs 05, 11 and 14 seen from
# outside, and `archtrace top` watching lab 08.  Everything is rendered offline by
# Debian's chromium: the SVGs directly, the Chrome trace JSON in the
# Performance panel of chromium's own DevTools (driven by playwright-core),
# the terminal through tmux and a small ANSI-to-HTML step.
#
#   tools/screenshots.sh                 # all pictures into docs/img/
#   BUILD=build-x tools/screenshots.sh   # use (and make) another build dir
#
# Installs what is missing (Debian packages, playwright-core from npm into
# the build dir) and says what it installs.  Intermediate files (traces,
# sessions, pages) stay in $BUILD/screenshots/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
work="$root/$build/screenshots"
out=${OUT:-$root/docs/img}
python=${PYTHON:-$root/.venv/static/bin/python}
python_shared=${PYTHON_SHARED:-$root/.venv/shared/bin/python}
archtrace="$root/$build/archtrace"
helpers="$root/tools/screenshots"
# command (or file) needed -> Debian package that brings it
needs="chromium:chromium tmux:tmux node:nodejs npm:npm
/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf:fonts-dejavu-core"
playwright_version=1.65.1
top_cols=100
top_rows=30

say() { printf 'screenshots: %s\n' "$*"; }
# Print an archtrace command before running it, as docs/SCREENSHOTS.md shows.
# fd 3 is the terminal's stderr, so the line shows whatever "$@" is sent to.
exec 3>&2
run() { printf '  $ %s\n' "${*//$root\//}" >&3; "$@"; }

install_missing_debian() {
    local missing="" need what
    for need in $needs; do
        what=${need%%:*}
        case "$what" in
            /*) [ -e "$what" ] ;;
            *) command -v "$what" >/dev/null ;;
        esac || missing="$missing ${need#*:}"
    done
    [ -z "$missing" ] && return 0
    say "installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

install_playwright() {
    local dir="$work/node"
    if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
        say "installing playwright-core@$playwright_version (npm) into $build/screenshots/node"
        mkdir -p "$dir"
        npm install --prefix "$dir" --no-audit --no-fund --silent \
            "playwright-core@$playwright_version" >/dev/null
    fi
    # node resolves imports next to the script, so the driver runs from there
    cp "$helpers/devtools_timeline.mjs" "$dir/"
}

prepare() {
    install_missing_debian
    [ -x "$python" ] || { say "creating the labs' virtual environments"; "$root/tools/venvs.sh"; }
    say "building archtrace ($build/)"
    make -C "$root" -s -j2 BUILD="$build" >/dev/null
    mkdir -p "$work" "$out"
    install_playwright
}

# chromium --screenshot of a local file at a fixed window size.
shoot() {   # file png width height
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --force-device-scale-factor=1 --window-size="$3,$4" \
        --screenshot="$2" "file://$1" >>"$work/chromium.log" 2>&1
    say "wrote ${2#"$root"/} (${3}x$4)"
}

svg_height() { sed -n 's/.*<svg[^>]* height="\([0-9]*\)".*/\1/p' "$1" | head -n 1; }

lab08_trace_and_cpu_flamegraph() {
    say "lab 08 under archtrace: Chrome trace and session"
    rm -rf "$work/lab08.session"
    (cd "$root" && run "$archtrace" -q -o "$work/lab08.session" --format chrome \
        --out "$work/lab08.trace.json" "$python" labs/lab08.py) >"$work/lab08.out"
    (cd "$root" && run "$archtrace" report --format svg --out "$work/lab08-cpu.svg" \
        "$work/lab08.session") >"$work/lab08-report.txt" 2>&1
    shoot "$work/lab08-cpu.svg" "$out/flamegraph-cpu.png" 1200 "$(svg_height "$work/lab08-cpu.svg")"
}

lab04_memory_flamegraph() {
    if ! "$archtrace" --help 2>&1 | grep -- '--alloc ' >/dev/null; then
        say "skipping the memory flame graph: this archtrace has no --alloc yet"
        return 0
    fi
    say "lab 04 under archtrace: memory flame graph"
    (cd "$root" && run "$archtrace" -q --format svg --alloc --alloc-depth 16 \
        --out "$work/lab04-mem.svg" "$python" labs/lab04.py) >"$work/lab04.out"
    shoot "$work/lab04-mem.svg" "$out/flamegraph-memory.png" 1200 "$(svg_height "$work/lab04-mem.svg")"
}

# lab 04's session as one HTML page, and its memory over time on its own
lab04_html_report() {
    if ! "$archtrace" --help 2>&1 | grep -- 'html' >/dev/null; then
        say "skipping the HTML report: this archtrace has no --format html yet"
        return 0
    fi
    say "lab 04 under archtrace: the HTML report and the memory plot"
    rm -rf "$work/lab04.session"
    (cd "$root" && run "$archtrace" -q -o "$work/lab04.session" "$python" labs/lab04.py) >"$work/lab04-html.out"
    (cd "$root" && run "$archtrace" -q report --format html --out "$work/lab04.html" "$work/lab04.session")
    (cd "$root" && run "$archtrace" -q report --format svg --memory-plot --out "$work/lab04-memory.svg" \
        "$work/lab04.session")
    shoot "$work/lab04.html" "$out/report-html.png" 1200 1800
    shoot "$work/lab04-memory.svg" "$out/memory-plot.png" 960 "$(svg_height "$work/lab04-memory.svg")"
}

# A terminal text (what a command printed) as a picture.
text_shot() {   # text png title
    local lines cols
    lines=$(wc -l <"$1")
    cols=$(awk '{ if (length($0) > n) n = length($0) } END { print n }' "$1")
    python3 "$helpers/ansi2html.py" "$1" "$1.html" "$3"
    shoot "$1.html" "$2" $(( (cols * 963 + 99) / 100 + 32 )) $(( lines * 20 + 28 ))
}

# Labs 05, 11 and 14 seen from outside (issue 22): lab 05's comparator
# called by libc's qsort in one merged stack (the lab paused in its first
# comparison), lab 11's workers waiting in Redis outside the GIL, lab 14's
# cryptography as native time in OpenSSL.
lab_views() {
    say "labs 05, 11 and 14 from outside"
    local ready="$work/lab05.ready" pid
    rm -f "$ready"
    # the shared build: Debian's static one strips _ctypes' symbols ([unknown])
    (cd "$root" && exec "$python_shared" tests/fixtures/lab05_paused.py "$ready" "$root/labs/lab05.py") \
        >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do [ -e "$ready" ] && break; sleep 0.1; done
    run "$archtrace" -p "$pid" dump --native | sed -n '/in section_qsort$/,$p' | sed "s|$root/||" >"$work/lab05.txt"
    kill "$pid" 2>/dev/null || true
    text_shot "$work/lab05.txt" "$out/lab05-qsort.png" "archtrace -p PID dump --native (lab 05)"
    (cd "$root" && run "$archtrace" --idle --top 8 "$python" labs/lab11.py) 2>&1 >/dev/null |
        sed -n '/^GIL, pid/,/^  timeline/p;/by thread (idle/,/more threads/p' | sed "s|$root/||" >"$work/lab11.txt"
    text_shot "$work/lab11.txt" "$out/lab11-redis.png" "archtrace --idle (lab 11)"
    (cd "$root" && run "$archtrace" --native --rate 1000 "$python" labs/lab14.py) 2>&1 >/dev/null |
        sed -n '/native code by library/,/more libraries/p' | sed "s|$root/||" >"$work/lab14.txt"
    text_shot "$work/lab14.txt" "$out/lab14-crypto.png" "archtrace --native (lab 14)"
}

timelines() {
    local mode
    for mode in gil run; do
        node "$work/node/devtools_timeline.mjs" "$work/lab08.trace.json" \
            "$out/timeline-$mode.png" "$mode" | sed 's/^/screenshots: /'
    done
}

# The top screen is ready once two threads show a non-zero GIL wait, i.e.
# lab 08's two CPU-bound threads are taking turns with the GIL.
top_ready() {
    awk '/^ *[0-9]+ / { n = 0
            for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]$/) v[++n] = $i
            if (n >= 3 && v[2] > 0) waiting++ }
         END { exit !(waiting >= 2) }' "$1"
}

# One run of top on lab 08 in a private tmux server; leaves the coloured
# capture in top.ans and fails if the contention never showed.
capture_top() {
    local -a tmux=(tmux -S "$work/tmux.sock")
    local i ready=1
    "${tmux[@]}" new-session -d -s top -x "$top_cols" -y "$top_rows" \
        "cd '$root' && '$archtrace' top -- '$python' labs/lab08.py; sleep 60" || return 1
    for i in $(seq 1 120); do
        sleep 0.25
        "${tmux[@]}" capture-pane -t top -p >"$work/top.txt" 2>/dev/null || break
        if top_ready "$work/top.txt"; then
            "${tmux[@]}" capture-pane -t top -e -p >"$work/top.ans" && ready=0
            break
        fi
    done
    "${tmux[@]}" send-keys -t top q 2>/dev/null && sleep 1
    stop_tmux
    return $ready
}

top_screen() {
    # a build without top says "top is not available in this build"
    if ! (cd "$work" && timeout 20 "$archtrace" top -- true </dev/null >/dev/null 2>&1); then
        say "skipping top: this archtrace has no top yet"
        return 0
    fi
    say "archtrace top on lab 08 in tmux ${top_cols}x$top_rows"
    printf '  $ %s\n' "$build/archtrace top -- ${python#"$root"/} labs/lab08.py"
    if ! capture_top && ! capture_top; then
        say "warning: the top screen never showed two threads waiting for the GIL" \
            "(last screen: ${work#"$root"/}/top.txt); docs/img/top.png left as it was"
        return 0
    fi
    python3 "$helpers/ansi2html.py" "$work/top.ans" "$work/top.html" "archtrace top"
    # DejaVu Sans Mono at 16 px: 9.63 px a cell, 20 px a line, 14/16 px padding
    shoot "$work/top.html" "$out/top.png" $(( (top_cols * 963 + 99) / 100 + 32 )) \
        $(( top_rows * 20 + 28 ))
}

stop_tmux() {
    tmux -S "$work/tmux.sock" kill-server 2>/dev/null || true
    rm -f "$work/tmux.sock"
}
trap stop_tmux EXIT

prepare
lab08_trace_and_cpu_flamegraph
timelines
lab04_memory_flamegraph
lab04_html_report
lab_views
top_screen
say "done: $(cd "$out" && ls ./*.png | tr '\n' ' ')"
