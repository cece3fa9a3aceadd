# SPDX-License-Identifier: MIT
"""threads64.py [N] - N (64) threads that each allocate and free lists of
bytes objects at the same time, for test_realworld; KEEP names the line
whose blocks stay alive until the marker.  No audit event is raised
while the threads start and run."""
import sys
import threading

N = int(sys.argv[1]) if len(sys.argv) > 1 else 64
kept = [None] * N
barrier = threading.Barrier(N)


def work(i):
    barrier.wait()              # all 64 allocate at once
    for _ in range(20):
        junk = [bytes(100 + i) for _ in range(200)]
        del junk
    kept[i] = [bytes(1000) for _ in range(100)]  # KEEP


threads = [threading.Thread(target=work, args=(i,), name="alloc-%d" % i) for i in range(N)]
for t in threads:
    t.start()
for t in threads:
    t.join()
sys.audit("archtrace.snapshot", "threads64")
print("threads", N, "kept", sum(len(b) for k in kept for b in k))
