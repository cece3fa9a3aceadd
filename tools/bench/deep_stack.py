"""A CPU-bound loop at the bottom of a DEPTH-deep Python stack (default 50):
the sampler's cost per sample is measured on it (issue 8)."""
import sys

DEPTH = int(sys.argv[1]) if len(sys.argv) > 1 else 50
WORK = int(sys.argv[2]) if len(sys.argv) > 2 else 6_000_000


def spin(n):
    total = 0
    for i in range(n):
        total += i % 7
    return total


def descend(level, n):
    if level <= 1:
        return spin(n)
    return descend(level - 1, n)


if __name__ == "__main__":
    # <module> and spin are two of the frames: DEPTH Python frames in all
    print("deep", DEPTH, descend(DEPTH - 2, WORK) > 0)
