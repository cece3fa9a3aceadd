"""Allocation-heavy loop: ~6.5 million small allocations from a few lines."""
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 3_000_000


def churn(n):
    keep = []
    for i in range(n):
        t = (i, i + 1)                 # tuple
        s = str(i)                     # str
        d = {"k": i}                   # dict
        lst = [i, s]                   # list
        if i % 100 == 0:
            keep.append((t, s, d, lst))
    return keep


if __name__ == "__main__":
    kept = churn(N)
    print("kept", len(kept))
