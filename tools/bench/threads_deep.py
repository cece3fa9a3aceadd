"""N CPU-bound threads (default 4), each spinning at the bottom of a
DEPTH-deep Python stack (default 10, counting threading's own frames):
the sampler's cost per thread-sample is measured on it (issue 24)."""
import sys
import threading

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 4
DEPTH = int(sys.argv[2]) if len(sys.argv) > 2 else 10
SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0


def spin(deadline):
    import time
    total, now = 0, time.monotonic
    while now() < deadline:
        for i in range(10000):
            total += i * i % 7
    return total


def descend(level, deadline):
    if level <= 1:
        return spin(deadline)
    return descend(level - 1, deadline)


if __name__ == "__main__":
    import time
    end = time.monotonic() + SECONDS
    # Thread._bootstrap, _bootstrap_inner, run and spin are four of the frames
    ts = [threading.Thread(target=descend, args=(max(DEPTH - 4, 1), end), name=f"deep-{k}")
          for k in range(THREADS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("done", THREADS, DEPTH)
