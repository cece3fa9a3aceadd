#!/bin/sh
# SPDX-License-Identifier: MIT
# realworld_deps.sh - fetch the third-party source distributions that
# tests/test_realworld.c runs (tests/realworld/requirements.txt, pinned by
# version and hash) into build/realworld/ and unpack each one there, so the
# tests run offline.  Already unpacked: nothing to do (no network).
#
# Usage: tools/realworld_deps.sh          (from any directory)
# Needs .venv/static (tools/venvs.sh) for its pip.  Exit 0 when every
# project is unpacked, 1 otherwise (with the reason).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/tests/realworld/requirements.txt"
dest="$root/build/realworld"
pip="$root/.venv/static/bin/python"

# name==version pairs of the requirements file, as NAME-VERSION
wanted=$(sed -n 's/^\([A-Za-z0-9_.-]*\)==\([^ ;]*\).*/\1-\2/p' "$req")
missing=""
for p in $wanted; do
    [ -f "$dest/$p/PKG-INFO" ] || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "realworld: ok: $(echo $wanted) unpacked in build/realworld"
    exit 0
fi
if [ ! -x "$pip" ]; then
    echo "realworld: FAIL: no .venv/static/bin/python to download with (tools/venvs.sh)"
    exit 1
fi
mkdir -p "$dest/sdist"
# --require-hashes: what is unpacked is byte for byte what was pinned
if ! "$pip" -m pip download --disable-pip-version-check --no-input --quiet --no-deps \
        --no-binary :all: --require-hashes -r "$req" -d "$dest/sdist" >"$dest/download.log" 2>&1; then
    echo "realworld: FAIL: pip download failed: $(grep ERROR "$dest/download.log" | tail -n 1); see build/realworld/download.log"
    exit 1
fi
for p in $missing; do
    rm -rf "${dest:?}/$p"
    if ! tar -xzf "$dest/sdist/$p.tar.gz" -C "$dest"; then
        echo "realworld: FAIL: cannot unpack build/realworld/sdist/$p.tar.gz"
        exit 1
    fi
done
echo "realworld: ok: $(echo $missing) downloaded and unpacked in build/realworld"
