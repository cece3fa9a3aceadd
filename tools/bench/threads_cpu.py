"""N CPU-bound threads (default 4) doing pure-Python work."""
import sys
import threading

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 4
WORK = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000_000


def spin(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


if __name__ == "__main__":
    ts = [threading.Thread(target=spin, args=(WORK // THREADS,), name=f"spin-{k}")
          for k in range(THREADS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("done", THREADS)
