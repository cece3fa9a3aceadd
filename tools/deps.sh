#!/bin/sh
# SPDX-License-Identifier: MIT
# deps.sh - install the Debian 12 packages archtrace's build, tests and labs
# need, and only those that are missing.  Without root, print the exact
# apt-get line and fail.  The Dockerfile installs the same list (a test
# checks they agree): keep the list in tools/debian-packages.txt.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
list="$here/debian-packages.txt"

packages=$(grep -v '^#' "$list" | tr -s ' \n' ' ')
missing=""
for p in $packages; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -z "$missing" ]; then
    echo "deps: all $(echo $packages | wc -w) Debian packages present"
    exit 0
fi

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run as root: apt-get update && $cmd" >&2
    exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
