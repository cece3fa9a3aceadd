"""Known split of CPU time: hot() takes ~70 %, cold() ~30 % (measured by
the program itself with time.thread_time and printed as SPLIT hot=...)."""
import sys
import time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 40


def work(n):
    total = 0
    for i in range(n):
        total += i % 3
    return total


def hot():
    return work(70_000)


def cold():
    return work(30_000)


if __name__ == "__main__":
    t_hot = t_cold = 0.0
    for _ in range(ROUNDS * 10):
        t0 = time.thread_time()
        hot()
        t1 = time.thread_time()
        cold()
        t2 = time.thread_time()
        t_hot += t1 - t0
        t_cold += t2 - t1
    print(f"SPLIT hot={t_hot / (t_hot + t_cold):.3f} cold={t_cold / (t_hot + t_cold):.3f}")
