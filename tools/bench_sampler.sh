#!/bin/sh
# SPDX-License-Identifier: MIT
# bench_sampler.sh - what one sample of the ptrace/process_vm_readv sampler
# costs (issue 24), as JSON lines on stdout.
#
#   tools/bench_sampler.sh [ARCHTRACE [PYTHON]]     (default build/archtrace, python3)
#   ROUNDS=3 SECONDS_PER_RUN=4 tools/bench_sampler.sh build-s/archtrace .venv/static/bin/python
#
# Each line is one measurement, the median of ROUNDS runs of
# `archtrace -p PID record -q -o DIR [--rate HZ] -d SECS` attached to a
# fresh target (tools/bench/threads_deep.py or deep_stack.py):
#   {"metric": "us_per_thread_sample", ...}  (a) the sampler's own clock
#       (busy_s of the recording: time inside the sampling passes, not the
#       waits) / thread-samples, 4 busy threads x 10 frames at 1 kHz;
#   {"metric": "all_in_us", ...}  (b) the archtrace process's user + system
#       CPU (wait4 rusage: start-up, sampling, waits, writing the session
#       and the report it renders) / thread-samples, 4 x 10 at 100 Hz and
#       1 kHz, and deep-50 (1 thread x 50 frames) at 1 kHz;
#   {"metric": "max_rate_hz", ...}  (c) samples per second achieved on one
#       busy thread when --rate 250000 is asked.
# "per tick" figures divide by sampling passes (one pass samples every
# thread) instead.  The script only reads the recordings: it needs python3
# (stdlib) to run, and a Python 3.11 target interpreter.
ARCHTRACE_ROOT=${ARCHTRACE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
export ARCHTRACE_ROOT
exec python3 - "$@" <<'PYEOF'
import json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.environ.get("ARCHTRACE_ROOT") or os.getcwd()
args = sys.argv[1:]
AT = os.path.abspath(args[0]) if args else os.path.join(ROOT, "build", "archtrace")
PY = args[1] if len(args) > 1 else "python3"
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECS = float(os.environ.get("SECONDS_PER_RUN", "4"))
BENCH = os.path.join(ROOT, "tools", "bench")


def shape():
    """static or shared: whether the interpreter's executable maps a libpython."""
    out = subprocess.run([PY, "-c", "import re; print(any(re.search(r'/libpython3[^/]*\\.so', l) for l in open('/proc/self/maps')))"],
                         capture_output=True, text=True).stdout.strip()
    return "shared" if out == "True" else "static"


def record(prog, rate, native=False):
    """One recording of a fresh target; a dict of figures, or None."""
    tmp = tempfile.mkdtemp(prefix="bench_sampler.")
    try:
        target = subprocess.Popen([PY, *prog], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        time.sleep(0.5)             # threads started, stacks at depth
        argv = [AT, "-p", str(target.pid), "record", "-q", "-o", os.path.join(tmp, "s"),
                "-d", str(SECS), "--rate", str(rate)] + (["--native"] if native else [])
        with open(os.path.join(tmp, "err"), "wb") as err:
            tool = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
            _, status, usage = os.wait4(tool.pid, 0)
        target.kill()
        target.wait()
        if os.waitstatus_to_exitcode(status) != 0:
            msg = open(os.path.join(tmp, "err")).read()
            if "invalid --rate" in msg:
                return {"refused": msg.strip()}
            sys.stderr.write(f"bench_sampler: {' '.join(argv)} failed:\n" + msg)
            return None
        rep = subprocess.run([AT, "report", "--format", "json", "--idle", os.path.join(tmp, "s")],
                             capture_output=True, text=True)
        procs = json.loads(rep.stdout).get("processes", [])
        s = (procs[0].get("samples") or {}) if procs else {}
        ticks, tsamples = s.get("count", 0), s.get("thread_samples", 0)
        busy = sum(st.get("count", 0) for st in s.get("stacks", []) if not st.get("idle"))
        if not ticks or not tsamples:
            return None
        cpu = usage.ru_utime + usage.ru_stime
        busy_us = (s.get("us_per_sample") or 0) * ticks
        return {"ticks": ticks, "thread_samples": tsamples, "busy_thread_samples": busy,
                "missed": s.get("missed", 0), "achieved_hz": s.get("achieved_hz"),
                "us_per_tick": busy_us / ticks, "us_per_thread_sample": busy_us / tsamples,
                "all_in_us": cpu * 1e6 / tsamples, "all_in_us_per_tick": cpu * 1e6 / ticks,
                "tool_cpu_ms": cpu * 1e3}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def median_of(prog, rate, **kw):
    runs = [r for r in (record(prog, rate, **kw) for _ in range(ROUNDS)) if r]
    if not runs:
        return None
    if "refused" in runs[0]:
        return runs[0]
    return {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]} | {"rounds": len(runs)}


def emit(metric, workload, rate, res, **extra):
    line = {"metric": metric, "workload": workload, "rate_hz": rate, "shape": SHAPE, "python": PY}
    line.update(extra)
    if res is None:
        line["error"] = "no recording"
    elif "refused" in res:
        line["error"] = res["refused"]
    else:
        line["value"] = res[{"us_per_thread_sample": "us_per_thread_sample", "all_in_us": "all_in_us",
                             "max_rate_hz": "achieved_hz"}[metric]]
        line.update(res)
    print(json.dumps(line), flush=True)


SHAPE = shape()
RUN_SECS = str(SECS + 3)
deep4 = [os.path.join(BENCH, "threads_deep.py"), "4", "10", RUN_SECS]
deep50 = [os.path.join(BENCH, "deep_stack.py"), "50", "1000000000"]
one = [os.path.join(BENCH, "deep_stack.py"), "2", "1000000000"]   # <module>, descend, spin

r1k = median_of(deep4, 1000)
emit("us_per_thread_sample", "4 threads x 10 frames", 1000, r1k, goal="<= 5")
emit("all_in_us", "4 threads x 10 frames", 100, median_of(deep4, 100), goal="<= 10")
emit("all_in_us", "4 threads x 10 frames", 1000, r1k, goal="<= 10")
emit("all_in_us", "deep-50", 1000, median_of(deep50, 1000))
top = median_of(one, 250000)
if top and "refused" in top:       # a CLI that caps --rate lower: its cap
    emit("max_rate_hz", "1 thread, short stack", 250000, top, goal=">= 200000")
    top, rate = median_of(one, 100000), 100000
else:
    rate = 250000
emit("max_rate_hz", "1 thread, short stack", rate, top, goal=">= 200000")
PYEOF
