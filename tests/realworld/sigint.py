# SPDX-License-Identifier: MIT
"""sigint.py MODE - Ctrl-C (SIGINT to its process group), for
test_realworld.  It first prints how SIGINT was set up when it started.
MODE show: exits there.  Otherwise it prints "ready" (the test then sends
the signal) and sleeps; MODE handle: catches KeyboardInterrupt, prints and
exits 42; MODE default: the interrupt ends it the default way (killed by
SIGINT, status 130)."""
import signal
import sys
import time

mode = sys.argv[1]
print("sigint ignored at start:", signal.getsignal(signal.SIGINT) == signal.SIG_IGN, flush=True)
if mode == "show":
    sys.exit(0)
print("ready", flush=True)
try:
    time.sleep(30)
except KeyboardInterrupt:
    if mode != "handle":
        raise
    print("interrupted", flush=True)
    sys.exit(42)
print("no interrupt came")
sys.exit(1)
