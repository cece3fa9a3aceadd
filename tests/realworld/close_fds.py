# SPDX-License-Identifier: MIT
"""close_fds.py - closes every file descriptor it has (os.closerange(0,
maxfd), stdout included), then allocates and exits with status 7: a
daemon's start-up, for test_realworld.  Whatever archtrace keeps open in
the process is gone too, and the program must not notice."""
import os
import resource
import sys

print("closing", flush=True)
maxfd = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
os.closerange(0, min(maxfd, 65536))
data = [bytes(5000) for _ in range(2000)]  # AFTER_CLOSE
sys.audit("archtrace.snapshot", "closed")
total = sum(len(d) for d in data)
os._exit(7 if total == 10_000_000 else 1)
