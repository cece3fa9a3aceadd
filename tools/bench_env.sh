#!/bin/sh
# SPDX-License-Identifier: MIT
# bench_env.sh - one bench virtual environment per CPython 3.11 build shape
# (.venv/bench-static, .venv/bench-shared) with the tools archtrace is
# compared with.  A venv keeps its interpreter binary, so the plain run,
# archtrace and memray all run the same python.  Idempotent.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/tools/bench-requirements.txt"
stamp_of() { sha256sum "$req" | cut -c1-16; }

make_env() {
    shape=$1 py=$2
    dir="$root/.venv/bench-$shape"
    if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$(stamp_of)" ]; then
        echo "bench-env: $shape ready"; return 0
    fi
    "$py" -m venv --clear "$dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
    # optional: installs only where a wheel or a compiler works
    "$dir/bin/python" -m pip install -q --disable-pip-version-check gil_load scalene \
        >/dev/null 2>&1 || echo "bench-env: $shape: gil_load/scalene not installed (optional)"
    stamp_of > "$dir/.stamp"
    echo "bench-env: $shape installed"
}

make_env static /usr/bin/python3.11
shared=$(python3.11 -c 'import sys, sysconfig; print(sys.executable if sysconfig.get_config_var("Py_ENABLE_SHARED") else "")' 2>/dev/null || true)
if [ -n "$shared" ]; then make_env shared "$shared"; else echo "bench-env: no shared-libpython python3.11, skipped"; fi
