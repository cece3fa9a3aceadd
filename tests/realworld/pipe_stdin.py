# SPDX-License-Identifier: MIT
"""pipe_stdin.py - a filter: reads its stdin (a pipe) to the end, prints
each line's number reversed and a digest of everything, for test_realworld."""
import hashlib
import sys

h = hashlib.sha256()
n = 0
for line in sys.stdin:
    h.update(line.encode())
    n += 1
    if n % 1000 == 0:
        print(line.strip()[::-1])
print("lines", n, "sha256", h.hexdigest())
