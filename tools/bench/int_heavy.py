"""The int-heavy loop of issue 24: x += (i * i) % 7919, 6 million
iterations split over N threads (default 1).  Every iteration makes
about four allocator calls (int objects above the small-int cache) in
~40 ns: the worst case for a per-allocation hook."""
import sys
import threading

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 1
TOTAL = int(sys.argv[2]) if len(sys.argv) > 2 else 6_000_000


def churn(n):
    x = 0
    for i in range(n):
        x += (i * i) % 7919
    return x


if __name__ == "__main__":
    ts = [threading.Thread(target=churn, args=(TOTAL // THREADS,), name=f"churn-{k}")
          for k in range(THREADS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("done", THREADS)
