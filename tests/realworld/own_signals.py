# SPDX-License-Identifier: MIT
"""own_signals.py - a program with its own SIGPROF profiler (setitimer
ITIMER_PROF) and a SIGUSR1 handler, for test_realworld: every signal it
asks for must reach its handler, under archtrace too."""
import os
import signal

prof = 0
usr1 = 0


def on_prof(signum, frame):
    global prof
    prof += 1


def on_usr1(signum, frame):
    global usr1
    usr1 += 1


signal.signal(signal.SIGPROF, on_prof)
signal.signal(signal.SIGUSR1, on_usr1)
signal.setitimer(signal.ITIMER_PROF, 0.002, 0.002)
x = 0
while prof < 50:                      # CPU time: the profiler's ticks
    x += sum(range(1000))
signal.setitimer(signal.ITIMER_PROF, 0, 0)
for _ in range(20):
    os.kill(os.getpid(), signal.SIGUSR1)
print("prof>=50", prof >= 50, "usr1", usr1)
