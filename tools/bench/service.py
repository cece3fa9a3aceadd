# SPDX-License-Identifier: MIT
"""service.py - one of the many processes of the agent's bench: a service
that mostly waits and now and then works, as most Python processes on a
host do.

    python service.py READY_FILE SECONDS

Every 50 ms it builds and sorts a small list (a few ms of CPU a second);
writes its pid to READY_FILE when it starts.
"""
import os
import sys
import time


def work():
    return sorted(str(i * 7919 % 1000) for i in range(2000))


def main():
    ready, seconds = sys.argv[1], float(sys.argv[2])
    with open(ready + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(ready + ".tmp", ready)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        work()
        time.sleep(0.05)


if __name__ == "__main__":
    main()
