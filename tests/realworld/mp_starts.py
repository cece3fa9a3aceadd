# SPDX-License-Identifier: MIT
"""mp_starts.py - one child per multiprocessing start method (fork, spawn,
forkserver) and a ProcessPoolExecutor, for test_realworld.

stdout is the same on every run (no pids); each child's pid and parent pid
go to the file named by argv[1] as "KIND PID PPID" lines, which the test
compares with archtrace's processes[] (the forkserver's children have the
forkserver process for parent).
"""
import concurrent.futures
import multiprocessing as mp
import os
import sys


def child(q, kind):
    q.put((kind, os.getpid(), os.getppid(), sum(range(1000))))


def pool_task(x):
    return x * x, os.getpid(), os.getppid()


def main(ids_path):
    rows = []
    for method in ("fork", "spawn", "forkserver"):
        ctx = mp.get_context(method)
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(q, method))
        p.start()
        kind, pid, ppid, total = q.get(timeout=60)
        p.join(60)
        print(method, "child exit", p.exitcode, "sum", total)
        rows.append((kind, pid, ppid))
    with concurrent.futures.ProcessPoolExecutor(max_workers=2) as ex:
        results = list(ex.map(pool_task, range(8)))
    print("pool", [r for r, _, _ in results])
    rows += sorted({("pool", pid, ppid) for _, pid, ppid in results})
    with open(ids_path, "w") as f:
        f.write("main %d %d\n" % (os.getpid(), os.getppid()))
        for row in rows:
            f.write("%s %d %d\n" % row)


if __name__ == "__main__":
    main(sys.argv[1])
