#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check_layers.py - the arrows between tracer/'s rooms run one way.

Each room of tracer/ (tracer/README.md) may include its own headers and
those of the rooms below it, never one above: the data flows from the
readers of a target (remote/, bpf/) through the session (session/) to the
renderers (report/, top/), and only cli/ sees everything.  cli/options.h,
the parsed request, is the one header every room may read.

Prints every include that breaks the rule ("FILE:LINE: ROOM may not
include HEADER") and exits 1 when there is one; 0 otherwise.
Usage: tools/check_layers.py [TRACER_DIR]
"""
import os
import re
import sys

# room -> the rooms it may include besides itself
MAY_INCLUDE = {
    "out": set(),
    "session": {"out"},
    "remote": {"session", "out"},
    "bpf": {"remote", "session", "out"},
    "report": {"session", "out"},
    "top": {"remote", "session", "out"},
    "agent": {"bpf", "remote", "session", "report", "out"},
    "cli": {"out", "session", "remote", "bpf", "report", "top", "agent"},
}
EVERYONE_MAY = {"cli/options.h"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([A-Za-z0-9_]+\.h)"')


def violations(tracer):
    rooms = sorted(d for d in os.listdir(tracer) if os.path.isdir(os.path.join(tracer, d)))
    for room in rooms:
        if room not in MAY_INCLUDE:
            yield f"{tracer}/{room}: a room the layering does not know (add it to tools/check_layers.py)"
            continue
        for name in sorted(os.listdir(os.path.join(tracer, room))):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(tracer, room, name)
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target, header = m.group(1), f"{m.group(1)}/{m.group(2)}"
                    if target == room or target in MAY_INCLUDE[room] or header in EVERYONE_MAY:
                        continue
                    if target in MAY_INCLUDE:
                        yield f"{path}:{lineno}: {room}/ may not include {header}"


def main():
    tracer = sys.argv[1] if len(sys.argv) > 1 else "tracer"
    bad = list(violations(tracer))
    for v in bad:
        print(v)
    sys.stdout.flush()
    if bad:
        print(f"check_layers: {len(bad)} include(s) against the direction of tracer/README.md", file=sys.stderr)
        return 1
    print("check_layers: tracer/ rooms include only downwards")
    return 0


if __name__ == "__main__":
    sys.exit(main())
