"""Lab 08 - the GIL, and getting real parallelism from processes.

What the lab shows, with the standard library only:

  1. the GIL: two threads running a CPU-bound pure-Python loop take about
     as long as one thread doing all the work (they take turns holding the
     GIL, switching every sys.getswitchinterval() seconds), while threads
     that sleep or wait on I/O overlap fine;
  2. multiprocessing.Pool (fork start method): the same work split over two
     worker processes, each with its own interpreter and its own GIL; the
     lab collects the worker pids to prove more than one process ran;
  3. concurrent.futures.ProcessPoolExecutor with as_completed(): results in
     the order they finish;
  4. multiprocessing.shared_memory: workers write straight into one shared
     buffer instead of pickling results back;
  5. mmap IPC: an anonymous shared mapping inherited over fork.

Machine-readable lines (for tests that run this lab under archtrace):
    THREADS wall=<seconds>       the 2-thread CPU-bound phase
    PROCESSES wall=<seconds>     the same work on a 2-process Pool
    WORKERS <n>                  distinct worker pids seen in the Pool phase
    SPEEDUP threads/processes=<ratio>
The work is sized from a short calibration so that the threaded phase
takes about 2 s (at least about 1.5 s), long enough for an outside tool to
measure GIL waits.  The lab checks results and worker pids, never a speed
threshold: the speedup depends on how many idle cores the machine has.

Targets CPython 3.11 on Linux (fork).  Run it from anywhere:

    python3 labs/lab08.py

The last line is "VERIFY lab08: ... ok" (exit status 0) or a line with FAIL
and the reason (non-zero exit status).
"""

import concurrent.futures
import mmap
import multiprocessing
import os
import struct
import sys
import threading
import time
from multiprocessing import shared_memory

FAILURES = []

WORKERS = 2           # threads in phase 1, processes in phases 2-4
CHUNKS = 4            # the total work is split into this many equal chunks
THREAD_TARGET_S = 2.2  # aim for this long a threaded phase


def heading(title):
    print()
    print("== " + title + " " + "=" * max(0, 66 - len(title)), flush=True)


def check(condition, what):
    if not condition:
        FAILURES.append(what)
        print("  !! check failed: " + what)


def burn(start, stop):
    """CPU-bound, pure Python: the sum of range(start, stop), one add at a
    time, so the interpreter holds the GIL for the whole loop."""
    total = 0
    for i in range(start, stop):
        total += i
    return total


def expected_sum(start, stop):
    return (start + stop - 1) * (stop - start) // 2


def burn_with_pid(bounds):
    """Pool task: do one chunk and say which process did it."""
    start, stop = bounds
    return os.getpid(), burn(start, stop)


def chunks(total, parts):
    step = total // parts
    return [(k * step, (k + 1) * step) for k in range(parts)]


def calibrate():
    """Measure this machine's loop speed to size the work."""
    burn(0, 200_000)                      # warm up: let the loop specialise
    n = 2_000_000
    best = None
    for _ in range(2):                    # best of two, to dodge a busy moment
        t0 = time.perf_counter()
        burn(0, n)
        elapsed = time.perf_counter() - t0
        best = elapsed if best is None else min(best, elapsed)
    rate = n / max(best, 1e-6)
    total = int(rate * THREAD_TARGET_S)
    total = max(4_000_000, total - total % (CHUNKS * 100_000))
    return rate, total


# --- 1. threads and the GIL --------------------------------------------------

def section_threads(total):
    heading("1. threads: CPU-bound work under the GIL")
    print("  sys.getswitchinterval() = %gs: a thread waiting for the GIL asks the"
          % sys.getswitchinterval())
    print("  holder to drop it after this long; only one thread runs Python at a time")
    parts = chunks(total, CHUNKS)
    per_thread = [parts[k::WORKERS] for k in range(WORKERS)]
    results = [0] * WORKERS

    def thread_main(k):
        results[k] = sum(burn(a, b) for a, b in per_thread[k])

    threads = [threading.Thread(target=thread_main, args=(k,), name="burn-%d" % k)
               for k in range(WORKERS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    print("THREADS wall=%.3f" % wall)
    print("  %d threads summed range(%d) in %.3fs (%d chunks)" % (WORKERS, total, wall, CHUNKS))
    check(sum(results) == expected_sum(0, total), "threaded sum is correct")

    # Threads that block (sleep, I/O) release the GIL, so they do overlap.
    t0 = time.perf_counter()
    sleepers = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(WORKERS)]
    for t in sleepers:
        t.start()
    for t in sleepers:
        t.join()
    slept = time.perf_counter() - t0
    print("  for contrast: %d threads each sleeping 0.2s finish in %.2fs (the GIL is"
          % (WORKERS, slept))
    print("  released while blocked)")
    return wall, sum(results)


# --- 2. multiprocessing.Pool -------------------------------------------------

def section_pool(total, ctx):
    heading("2. multiprocessing.Pool: one interpreter (and GIL) per worker")
    parts = chunks(total, CHUNKS)
    t0 = time.perf_counter()
    with ctx.Pool(processes=WORKERS) as pool:
        done = pool.map(burn_with_pid, parts, chunksize=1)
    wall = time.perf_counter() - t0
    pids = sorted(set(pid for pid, _ in done))
    value = sum(r for _, r in done)
    print("PROCESSES wall=%.3f" % wall)
    print("  start method %r; parent pid %d; %d chunks done by pids %s"
          % (ctx.get_start_method(), os.getpid(), len(done), pids))
    print("WORKERS %d" % len(pids))
    check(value == expected_sum(0, total), "pool sum is correct")
    check(len(pids) > 1, "more than one worker process ran (saw %d)" % len(pids))
    check(os.getpid() not in pids, "the work ran outside the parent process")
    return wall, pids, value


# --- 3. ProcessPoolExecutor + as_completed -----------------------------------

def section_executor(ctx):
    heading("3. ProcessPoolExecutor and as_completed")
    sizes = [1_600_000, 200_000, 800_000, 400_000]
    order = []
    pids = set()
    with concurrent.futures.ProcessPoolExecutor(max_workers=WORKERS, mp_context=ctx) as ex:
        futures = {ex.submit(burn_with_pid, (0, n)): n for n in sizes}
        for fut in concurrent.futures.as_completed(futures):
            n = futures[fut]
            pid, value = fut.result()
            pids.add(pid)
            order.append(n)
            ok = value == expected_sum(0, n)
            print("  finished: sum(range(%9d)) in pid %d  %s"
                  % (n, pid, "correct" if ok else "WRONG"))
            check(ok, "executor result for %d" % n)
    print("  submitted in order %s; completed in order %s" % (sizes, order))
    print("  (as_completed yields futures as they finish, not as they were submitted)")
    check(sorted(order) == sorted(sizes), "every future completed")
    return pids


# --- 4. shared memory --------------------------------------------------------

def fill_squares(name, first, count):
    """Child: attach to the block by name and write squares into our slice."""
    shm = shared_memory.SharedMemory(name=name)
    try:
        for i in range(first, first + count):
            struct.pack_into("<q", shm.buf, 8 * i, i * i)
    finally:
        shm.close()


def section_shared_memory(ctx):
    heading("4. shared_memory: workers write into one buffer")
    n = 1000
    shm = shared_memory.SharedMemory(create=True, size=8 * n)
    try:
        half = n // WORKERS
        procs = [ctx.Process(target=fill_squares, args=(shm.name, k * half, half))
                 for k in range(WORKERS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        values = [struct.unpack_from("<q", shm.buf, 8 * i)[0] for i in range(n)]
        codes = [p.exitcode for p in procs]
        print("  block %r (%d bytes, under /dev/shm); %d processes each filled %d slots"
              % (shm.name, shm.size, WORKERS, half))
        print("  exit codes %s; values[0:5] = %s, values[-1] = %d"
              % (codes, values[:5], values[-1]))
        check(codes == [0] * WORKERS and values == [i * i for i in range(n)],
              "shared memory holds every worker's squares")
    finally:
        shm.close()
        shm.unlink()


# --- 5. mmap IPC -------------------------------------------------------------

def section_mmap(ctx):
    heading("5. mmap: an anonymous shared mapping across fork")
    region = mmap.mmap(-1, 4096)          # MAP_SHARED | MAP_ANONYMOUS
    try:
        region[:8] = struct.pack("<q", 0)

        def child():
            msg = b"hello from pid %d" % os.getpid()
            region[8:8 + len(msg)] = msg
            struct.pack_into("<q", region, 0, len(msg))   # publish the length last

        p = ctx.Process(target=child)
        p.start()
        p.join()
        length = struct.unpack_from("<q", region, 0)[0]
        msg = bytes(region[8:8 + length])
        print("  child %d wrote %d bytes; the parent reads: %r" % (p.pid, length, msg))
        check(p.exitcode == 0 and msg == b"hello from pid %d" % p.pid,
              "message passed through the shared mapping")
    finally:
        region.close()


def main():
    print("Lab 08: the GIL and multiprocessing in CPython %s (%d CPUs)"
          % (sys.version.split()[0], os.cpu_count() or 0))
    if sys.version_info[:2] != (3, 11):
        print("FAIL lab08: this lab targets CPython 3.11, not %s" % sys.version.split()[0])
        return 1
    ctx = multiprocessing.get_context("fork")
    rate, total = calibrate()
    print("  calibration: %.1f M loop iterations/s in one thread; total work range(%d),"
          % (rate / 1e6, total))
    print("  about %.1fs for one thread" % (total / rate))

    threads_wall, threads_sum = section_threads(total)
    procs_wall, pids, procs_sum = section_pool(total, ctx)
    speedup = threads_wall / procs_wall if procs_wall > 0 else 0.0
    print("SPEEDUP threads/processes=%.2f" % speedup)
    print("  the processes finished %.2fx faster than the threads; with %d idle cores"
          % (speedup, WORKERS))
    print("  this approaches %d (pool start-up and busy cores pull it down)" % WORKERS)
    check(threads_sum == procs_sum, "threads and processes computed the same total")

    exec_pids = section_executor(ctx)
    section_shared_memory(ctx)
    section_mmap(ctx)
    print()
    if FAILURES:
        print("FAIL lab08: %d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        return 1
    print("VERIFY lab08: threads and %d pool workers computed the same correct sum "
          "(%d distinct worker pids; executor pids %d); shared memory and mmap IPC ... ok"
          % (WORKERS, len(pids), len(exec_pids)))
    return 0


def run():
    """Run main(); an unexpected exception still ends in a FAIL line."""
    try:
        return main()
    except Exception as exc:  # report, do not hide: traceback, then FAIL
        import traceback
        traceback.print_exc(file=sys.stdout)
        print("FAIL lab08: unexpected %s: %s" % (type(exc).__name__, exc))
        return 1


if __name__ == "__main__":
    sys.exit(run())
