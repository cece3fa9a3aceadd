"""Run a script or module under gil_load's GIL monitor and print its numbers.

    python -m gil_load tools/bench/with_gil_load.py SCRIPT [ARGS...]
    python -m gil_load tools/bench/with_gil_load.py -m MODULE [ARGS...]

gil_load needs its preload library (python -m gil_load re-executes the
interpreter with it) and init() before any thread starts; the measured
program then runs as __main__.  The totals go to stderr as one line
"GIL_LOAD held=... wait=..." so stdout stays the program's own.
"""
import os
import runpy
import sys

import gil_load


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    gil_load.init()
    gil_load.start(av_sample_interval=0.001)
    try:
        if sys.argv[1] == "-m":
            sys.argv = sys.argv[2:]
            runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
        else:
            sys.argv = sys.argv[1:]
            runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as exc:
        code = exc.code or 0
    else:
        code = 0
    total, _ = gil_load.get()
    print("GIL_LOAD held=%.3f wait=%.3f" % (total["held"], total["wait"]), file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # gil_load.stop() sometimes never returns (its monitor thread and the
    # stopping thread deadlock; seen on 3.11.7), and without it the monitor
    # thread keeps the interpreter from exiting: leave at once instead.
    os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":
    main()
