#!/bin/sh
# SPDX-License-Identifier: MIT
# bench_env.sh - one bench virtual environment per CPython 3.11 build shape
# (.venv/bench-static, .venv/bench-shared) with the tools archtrace is
# compared with (tools/bench-requirements.txt) and the labs' packages
# (labs/requirements.txt: lab 15 runs FastAPI under load in the bench).
# A venv keeps its interpreter binary, so the plain run, archtrace, memray
# and gil_load all run the same python.  gil_load is optional: it builds
# from source and needs the interpreter's headers; without it the bench
# says "not installed".  Idempotent: a stamp holds the interpreter and a
# hash of both requirement files.
#
#   tools/bench_env.sh          (env ARCHTRACE_SHARED_PYTHON to pick the shared one)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/tools/bench-requirements.txt"
labs_req="$root/labs/requirements.txt"

# The shape of an interpreter, read from its own memory map: what a tracer sees.
shape_of() {
    "$1" -I -c 'import sys; m = open("/proc/self/maps").read()
print(("shared" if "libpython3" in m else "static") if sys.version_info[:2] == (3, 11) else "")' 2>/dev/null
}

# The real binary (never a pyenv shim script) of a shared-libpython 3.11, or "".
shared_python() {
    for c in "${ARCHTRACE_SHARED_PYTHON:-}" \
        "$(python3.11 -c 'import sys; print(sys.executable)' 2>/dev/null || true)" \
        $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.11*/bin/python3.11 2>/dev/null | sort -rV) \
        /usr/local/bin/python3.11; do
        [ -n "$c" ] && [ -x "$c" ] || continue
        [ "$(shape_of "$c")" = shared ] && { "$c" -I -c 'import sys; print(sys.executable)'; return 0; }
    done
    echo ""
}

stamp_for() {
    echo "python $1"
    cat "$req" "$labs_req" | sha256sum | cut -c1-16
}

make_env() {
    shape=$1 py=$2
    dir="$root/.venv/bench-$shape"
    log="$root/.venv/bench-$shape.log"
    want=$(stamp_for "$py")
    if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$want" ] && [ -x "$dir/bin/python" ]; then
        echo "bench-env: $shape ready ($py)"
        return 0
    fi
    mkdir -p "$root/.venv"
    : >"$log"
    "$py" -m venv --clear "$dir" >>"$log" 2>&1
    if ! "$dir/bin/python" -m pip install --disable-pip-version-check --no-input \
        -r "$req" -r "$labs_req" >>"$log" 2>&1; then
        echo "bench-env: $shape: pip install failed: $(grep ERROR "$log" | tail -n 1 | cut -c1-160); see $log" >&2
        return 1
    fi
    # optional: gil_load compiles a C extension
    if ! "$dir/bin/python" -m pip install --disable-pip-version-check --no-input gil_load >>"$log" 2>&1 ||
        ! "$dir/bin/python" -c 'import gil_load' >>"$log" 2>&1; then
        echo "bench-env: $shape: gil_load not installed (optional; see $log)"
    fi
    printf '%s\n' "$want" >"$dir/.stamp"
    echo "bench-env: $shape installed ($py)"
}

status=0
if [ "$(shape_of /usr/bin/python3.11)" = static ]; then
    make_env static /usr/bin/python3.11 || status=1
else
    echo "bench-env: no static /usr/bin/python3.11, skipped"
fi
shared=$(shared_python)
if [ -n "$shared" ]; then
    make_env shared "$shared" || status=1
else
    echo "bench-env: no shared-libpython python3.11, skipped"
fi
exit $status
