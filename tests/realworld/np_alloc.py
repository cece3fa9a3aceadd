# SPDX-License-Identifier: MIT
"""np_alloc.py - numpy arrays allocated on known lines, for test_realworld.

tracemalloc runs from the first line (numpy reports its data buffers to
it through PyTraceMalloc_Track), the program raises
sys.audit("archtrace.snapshot", "numpy") and prints tracemalloc's own top
five at that same moment as TOP5 lines: archtrace's snapshot must name
the same lines in the same order with sizes within 5%.  The sizes differ
by >= 1.3x so the order is not a coin toss.

With --no-tracemalloc it prints, instead, EXPECT lines (the data bytes of
the arrays made on this file's own lines): archtrace alone must count
them as Python memory there, as tracemalloc would.
"""
import sys
import tracemalloc

USE_TM = "--no-tracemalloc" not in sys.argv
if USE_TM:
    tracemalloc.start()

import numpy as np  # noqa: E402


def build():
    keep = []
    keep.append(np.zeros((1000, 2000)))                  # SITE1 16 MB
    keep.append(np.arange(1_500_000, dtype=np.int64))    # SITE2 12 MB
    keep.append(np.ones(1_100_000))                      # SITE3 8.8 MB, in numeric.py
    keep.append(np.empty(800_000) * 2.0)                 # SITE4 6.4 MB (the temporary freed)
    keep.append(np.frombuffer(bytes(5_000_000), np.uint8).copy())  # SITE5 5 MB
    return keep


def expected(arrays):
    lines = [i for i, text in enumerate(open(__file__), 1) if "# SITE" in text and "keep.append" in text]
    for line, a in zip(lines, arrays):
        if "numeric.py" not in open(__file__).readlines()[line - 1]:
            print("EXPECT %s:%d size=%d" % (__file__, line, a.nbytes))


data = build()
sys.audit("archtrace.snapshot", "numpy")
if USE_TM:
    snap = tracemalloc.take_snapshot()
    for stat in snap.statistics("lineno")[:5]:
        f = stat.traceback[0]
        print("TOP5 %s:%d size=%d count=%d" % (f.filename, f.lineno, stat.size, stat.count))
else:
    expected(data)
print("arrays", len(data), "bytes", sum(a.nbytes for a in data))
