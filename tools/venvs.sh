#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# venvs.sh - create the labs' virtual environments, one per python3.11 build shape.
#
# archtrace is tested on two builds of CPython 3.11, and the labs run on both:
#
#   static  Debian's /usr/bin/python3.11 (libpython linked into the executable)
#   shared  a python3.11 that loads libpython3.11.so (the pyenv 3.11 first on
#           PATH on the development machines, /usr/local/bin in python:3.11-slim)
#
# For each shape this makes .venv/<shape> in the repository root from the REAL
# interpreter binary (never a pyenv shim script), so .venv/<shape>/bin/python is
# that same ELF file, and pip-installs labs/requirements.txt into it.  A stamp
# file inside the venv records the interpreter and a hash of requirements.txt:
# when both still match, the shape is left alone and the run takes well under a
# second.  Afterwards the venv is checked: its sys.prefix is the venv, the
# realpath of its sys.executable is the intended binary, and the build shape is
# the intended one (libpython3.11.so mapped or not).
#
# Usage: tools/venvs.sh [static|shared|all]      (default: all)
#
# Prints one line per shape.  Exit status: 0 when every requested shape is
# ready (with "all", a machine without a shared python3.11 only skips that
# shape), 1 when a shape failed, 2 for bad usage.
# Environment: ARCHTRACE_STATIC_PYTHON / ARCHTRACE_SHARED_PYTHON name the
# interpreter to use instead of searching for one.

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQ="$ROOT/labs/requirements.txt"
VENVS="$ROOT/.venv"
STAMP_NAME=archtrace-stamp

usage() {
	echo "usage: tools/venvs.sh [static|shared|all]" >&2
	exit 2
}

case "${1:-all}" in
static) SHAPES="static" ;;
shared) SHAPES="shared" ;;
all) SHAPES="static shared" ;;
-h | --help) echo "usage: tools/venvs.sh [static|shared|all]"; exit 0 ;;
*) usage ;;
esac
[ $# -le 1 ] || usage

# Python snippet: print, one per line, the version, the shape (shared|static),
# the realpath of the base interpreter (the one a venv was made from), the
# realpath of sys.executable and sys.prefix of the interpreter running it.  The shape is
# read from the process's own memory map, which is what a tracer sees too.
PROBE='
import os, sys
maps = open("/proc/self/maps").read()
shape = "shared" if "libpython3" in maps else "static"
base = getattr(sys, "_base_executable", "") or sys.executable
print("%d.%d.%d" % sys.version_info[:3], shape,
      os.path.realpath(base), os.path.realpath(sys.executable), sys.prefix,
      sep="\n")
'

# probe PYTHON -> sets P_VERSION P_SHAPE P_BASE P_EXE P_PREFIX; 1 if it cannot run
probe() {
	local out
	out=$(env -u PYTHONHOME -u PYTHONPATH "$1" -I -c "$PROBE" 2>/dev/null) || return 1
	{
		read -r P_VERSION && read -r P_SHAPE && read -r P_BASE &&
			read -r P_EXE && read -r P_PREFIX
	} <<<"$out" || return 1
	[ -n "${P_PREFIX:-}" ]
}

# find_python SHAPE -> prints the real binary of a python3.11 of that shape
find_python() {
	local shape=$1 cand seen="" c
	local -a cands=()
	if [ "$shape" = static ]; then
		cands+=("${ARCHTRACE_STATIC_PYTHON:-/usr/bin/python3.11}")
	else
		if [ -n "${ARCHTRACE_SHARED_PYTHON:-}" ]; then
			cands+=("$ARCHTRACE_SHARED_PYTHON")
		else
			# pyenv's python3.11 is a shim script: ask it for the real binary.
			if command -v pyenv >/dev/null 2>&1; then
				c=$(pyenv which python3.11 2>/dev/null) && cands+=("$c")
			fi
			if command -v python3.11 >/dev/null 2>&1; then
				c=$(python3.11 -c 'import sys; print(sys.executable)' 2>/dev/null) && cands+=("$c")
			fi
			# pyenv's versions even when its global version is another one
			while IFS= read -r c; do cands+=("$c"); done < <(
				printf "%s\n" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.11*/bin/python3.11 | sort -rV)
			cands+=(/usr/local/bin/python3.11)
		fi
	fi
	for cand in "${cands[@]}"; do
		[ -x "$cand" ] || continue
		case " $seen " in *" $cand "*) continue ;; esac
		seen="$seen $cand"
		probe "$cand" || continue
		case "$P_VERSION" in 3.11.*) ;; *) continue ;; esac
		# a venv's python on PATH: use the interpreter it was made from
		[ "$P_SHAPE" = "$shape" ] || continue
		echo "$P_BASE"
		return 0
	done
	return 1
}

# stamp_for PYTHON -> the text the stamp file must hold
stamp_for() {
	echo "python $1"
	echo "requirements $(sha256sum "$REQ" | cut -d' ' -f1)"
}

# make_shape SHAPE -> prints the shape's one line; returns 0 ok/skipped, 1 failed
make_shape() {
	local shape=$1 py dir log started want vpy
	dir="$VENVS/$shape"
	log="$VENVS/$shape.log"
	started=$(date +%s)
	if ! py=$(find_python "$shape"); then
		if [ "$shape" = shared ]; then
			echo "shared: skipped: no python3.11 with a shared libpython found (pyenv, python3.11 on PATH, ~/.pyenv/versions, /usr/local/bin; set ARCHTRACE_SHARED_PYTHON)"
			[ "$SHAPES" = shared ] && return 1
			return 0
		fi
		echo "static: FAIL: ${ARCHTRACE_STATIC_PYTHON:-/usr/bin/python3.11} is missing or not a statically linked 3.11 (apt-get install python3.11, make deps)"
		return 1
	fi
	want=$(stamp_for "$py")
	vpy="$dir/bin/python"

	if [ -f "$dir/$STAMP_NAME" ] && [ "$(cat "$dir/$STAMP_NAME")" = "$want" ] &&
		probe "$vpy" && [ "$P_EXE" = "$py" ] && [ "$P_SHAPE" = "$shape" ]; then
		echo "$shape: ok: .venv/$shape up to date (python $P_VERSION, $py)"
		return 0
	fi

	# Anything else (new, half-made, other interpreter, new requirements):
	# build it again from nothing; partial upgrades are not worth the doubt.
	mkdir -p "$VENVS"
	rm -rf "$dir"
	: >"$log"
	if ! "$py" -m venv "$dir" >>"$log" 2>&1; then
		echo "$shape: FAIL: '$py -m venv' failed (python3.11-venv missing? make deps); see .venv/$shape.log"
		rm -rf "$dir"
		return 1
	fi
	if ! "$vpy" -m pip install --disable-pip-version-check --no-input \
		-r "$REQ" >>"$log" 2>&1; then
		echo "$shape: FAIL: pip install -r labs/requirements.txt failed: $(grep -E 'ERROR' "$log" | tail -n 1 | cut -c1-160); see .venv/$shape.log"
		return 1
	fi
	if ! probe "$vpy"; then
		echo "$shape: FAIL: .venv/$shape/bin/python does not run; see .venv/$shape.log"
		return 1
	fi
	if [ "$P_PREFIX" != "$(cd "$dir" && pwd -P)" ] && [ "$P_PREFIX" != "$dir" ]; then
		echo "$shape: FAIL: .venv/$shape/bin/python has sys.prefix $P_PREFIX, not the venv"
		return 1
	fi
	if [ "$P_EXE" != "$py" ] || [ "$P_SHAPE" != "$shape" ]; then
		echo "$shape: FAIL: .venv/$shape/bin/python is $P_EXE ($P_SHAPE), expected $py ($shape)"
		return 1
	fi
	printf '%s\n' "$want" >"$dir/$STAMP_NAME"
	echo "$shape: ok: .venv/$shape created (python $P_VERSION, $py) in $(($(date +%s) - started))s"
	return 0
}

if [ ! -f "$REQ" ]; then
	echo "venvs: FAIL: $REQ not found" >&2
	exit 1
fi

# Two `make deps` at once must not build the same venv twice.
mkdir -p "$VENVS"
exec 9>"$VENVS/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi

status=0
for shape in $SHAPES; do
	make_shape "$shape" || status=1
done
exit $status
