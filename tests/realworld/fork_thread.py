# SPDX-License-Identifier: MIT
"""fork_thread.py - os.fork() from a thread while four other threads
allocate, RUNS times, for test_realworld.  Each child allocates and exits
0; the parent gives each child 10 s and counts the ones that hung (a
child that forked while another thread held a lock in the allocator or
in archtrace's shim would wait for it forever)."""
import os
import signal
import sys
import threading
import time
import warnings

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 50
warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
sys.setswitchinterval(0.0005)  # the forking thread gets its turns soon
stop = threading.Event()


def churn():
    while not stop.is_set():
        junk = [bytes(i % 700) for i in range(300)]
        del junk


def wait_child(pid, deadline):
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"


def fork_once(results):
    pid = os.fork()
    if pid == 0:
        data = [bytes(100) for _ in range(1000)]
        os._exit(0 if len(data) == 1000 else 3)
    results.append(wait_child(pid, time.monotonic() + 10))


workers = [threading.Thread(target=churn) for _ in range(4)]
for t in workers:
    t.start()
results = []
for _ in range(RUNS):
    t = threading.Thread(target=fork_once, args=(results,))
    t.start()
    t.join()
stop.set()
for t in workers:
    t.join()
print("forks", len(results), "ok", results.count(0), "hung", results.count("hung"))
