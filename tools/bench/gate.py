"""Start a workload, but let it begin only when told: for attaching tools.

    python tools/bench/gate.py GOFILE SCRIPT [ARGS...]

Prints "ready PID" on stdout, waits until GOFILE exists, then runs SCRIPT
as __main__ with sys.argv = [SCRIPT, ARGS...].  The bench starts the
workload this way both plain and with a tool attached (archtrace -p PID
record, --bpf, py-spy --pid, dumps), so both are timed from the same go
signal to the same exit: what the attaching costs, not the start-up.
"""
import os
import runpy
import sys
import time


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    go, script = sys.argv[1], sys.argv[2]
    print("ready", os.getpid(), flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("gate: no go signal within 60 s")
        time.sleep(0.002)
    sys.argv = sys.argv[2:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
