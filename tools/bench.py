#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench.py - archtrace's overhead and accuracy, side by side with the
tools people use today, in one run, alternating, on both build shapes.

For each workload and tool: the median wall-time ratio to the plain run
over >= 5 alternating runs (the order of the tools rotates each round, so
drifting machine load falls on all alike), the peak RSS the tool adds to
the target, samples per second for samplers, and on the
known-split workload the error of the sampled share of hot() against the
program's own thread_time measurement.  Every performance target of the
capability issues (5-9, 24) is checked and stated as met / NOT met with the
measured number.  Ratios, not absolute times: these machines are shared.

Three ways a tool meets a workload:
  run     the tool starts the program (archtrace run, py-spy record --,
          austin, memray run, -X options, gil_load): timed start to exit;
  attach  the program starts gated (tools/bench/gate.py), the tool attaches
          (archtrace -p PID record [--bpf], py-spy record --pid), then the
          go signal: timed go to exit, against the plain gated run;
  dump    gated too; one-shot stack dumps (archtrace -p PID dump, py-spy
          dump) every 100 ms while it runs; their latency is a note.
lab 15 is a server (python -m labs.lab15 --port P): the bench drives it
with HTTP requests from a client thread, then stops it with SIGINT.

    tools/bench.py [--runs N] [--shapes static,shared,3.12,3.13] [--workloads a,b]
                   [--tools SUBSTR,...] [--md FILE]
Environment (quick mode for development): BENCH_RUNS, BENCH_ONLY
(workloads; the name "extras" stands for the start-up and sampler figures of
tools/bench_startup.sh and tools/bench_sampler.sh), BENCH_TOOLS (tool name substrings), BENCH_SHAPES,
BENCH_REQUESTS (lab 15 requests per run, default 200).  Shapes 3.12 and
3.13 (pyenv's interpreters, no venv) run only the alloc loop, threads-2
and known-split, with archtrace's own tools.  A partial run
(fewer than 5 runs, or a subset) never overwrites the --md file.
"""
import argparse
import glob
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "tools", "bench")
ARCHTRACE = os.environ.get("ARCHTRACE_BIN", os.path.join(ROOT, "build", "archtrace"))
GATE = os.path.join(BENCH, "gate.py")
NOTES_MARK = "<!-- notes below are kept by tools/bench.py -->"


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# ---- interpreters and tools on disk -------------------------------------------

def venv_python(shape):
    if shape in VERSION_SHAPES:
        return version_python(shape)
    for name in (f"bench-{shape}", shape):
        p = os.path.join(ROOT, ".venv", name, "bin", "python")
        if os.path.exists(p):
            return p
    return None


# CPython 3.12 and 3.13 (issue 19): the interpreter itself (the rows below
# need no package), the newest of pyenv's that is not free-threaded.
VERSION_SHAPES = ("3.12", "3.13")
VERSION_WORKLOADS = ("alloc-loop", "threads-2", "known-split")
DEFAULT_SHAPES = ["static", "shared", *VERSION_SHAPES]


def version_python(ver):
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("pyenv") else os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root or os.path.expanduser("~/.pyenv"), "versions", ver + "*",
                                          "bin", "python" + ver)))
    found = [f for f in found if "t/bin/" not in f]
    return found[-1] if found else None


def venv_bin(shape, tool):
    p = os.path.join(ROOT, ".venv", f"bench-{shape}", "bin", tool)
    return p if os.access(p, os.X_OK) else None


def has_module(py, module):
    return subprocess.run([py, "-c", f"import {module}"], capture_output=True).returncode == 0


# ---- workloads ------------------------------------------------------------------

class Workload:
    def __init__(self, name, argv, match=None, gated=True, server=False):
        self.name, self.argv, self.match = name, argv, match
        self.gated, self.server = gated, server

    def args(self, port=0):
        out = []
        for a in self.argv:
            if a.startswith("@"):
                a = os.path.join(ROOT, a[1:])
            elif a.endswith(".py") and "/" not in a:
                a = os.path.join(BENCH, a)
            out.append(a.replace("{port}", str(port)))
        return out


WORKLOADS = [
    # the issue 5 loop (~6.5 million allocations, a top-5 of known sizes), shared with tests
    Workload("alloc-loop", ["@tests/fixtures/alloc_bench.py"], match=r"\bchurn\b"),
    # issue 24's worst case: ~4 allocator calls in a ~40 ns iteration
    Workload("int-1", ["int_heavy.py", "1"], match=r"\bchurn\b"),
    Workload("int-2", ["int_heavy.py", "2"], match=r"\bchurn\b"),
    Workload("int-4", ["int_heavy.py", "4"], match=r"\bchurn\b"),
    Workload("threads-1", ["threads_cpu.py", "1", "10000000"], match=r"\bspin\b"),
    Workload("threads-2", ["threads_cpu.py", "2", "10000000"], match=r"\bspin\b"),
    Workload("threads-4", ["threads_cpu.py", "4", "10000000"], match=r"\bspin\b"),
    Workload("known-split", ["known_split.py", "20"], match=r"\b(hot|cold)\b"),
    Workload("deep-50", ["deep_stack.py", "50", "12000000"], match=r"\bspin\b"),
    Workload("imports", ["imports_heavy.py"], match=r"\bimport_module\b"),
    Workload("lab04", ["@labs/lab04.py"], gated=False),
    Workload("lab08", ["@labs/lab08.py"], match=r"\bburn\b", gated=False),
    Workload("lab02", ["@labs/lab02.py"], gated=False),
    Workload("lab15", ["-m", "labs.lab15", "--port", "{port}"], match=r".", gated=False, server=True),
]
WL = {w.name: w for w in WORKLOADS}


# ---- tools ----------------------------------------------------------------------
# A tool builds its command from a context: py (the interpreter), shape,
# prog (the program's arguments after the interpreter), tmp (a private
# directory), pid (attach/dump kinds: the target).  A build that returns
# None means the tool is not installed for this shape.

class Tool:
    def __init__(self, name, kind, workloads, build, samples=None):
        self.name, self.kind, self.workloads, self.build = name, kind, workloads, build
        self.samples = samples      # where its stacks are: "at-json", "at-session", "pyspy", "austin"


def at_run(*opts):
    def build(c):
        return [ARCHTRACE, "-q", "--json", os.path.join(c["tmp"], "at.json"), *opts, "--",
                c["py"], *c["prog"]]
    return build


def at_record(*opts):
    def build(c):
        return [ARCHTRACE, "-p", str(c["pid"]), "record", "-q", "-o", os.path.join(c["tmp"], "s"), *opts]
    return build


def at_dump(c):
    return [ARCHTRACE, "-p", str(c["pid"]), "dump"]


def plain(c):
    return [c["py"], *c["prog"]]


def xopt(opt):
    return lambda c: [c["py"], "-X", opt, *c["prog"]]


def pyspy_record(rate):
    def build(c):
        exe = venv_bin(c["shape"], "py-spy")
        out = ["-r", str(rate), "-f", "raw", "-o", os.path.join(c["tmp"], "pyspy.txt")]
        if not exe:
            return None
        if c.get("pid"):
            return [exe, "record", "--nonblocking", "-p", str(c["pid"]), *out]
        return [exe, "record", *out, "--", c["py"], *c["prog"]]
    return build


def pyspy_dump(c):
    exe = venv_bin(c["shape"], "py-spy")
    return exe and [exe, "dump", "-p", str(c["pid"])]


def austin(interval_us):
    def build(c):
        exe = venv_bin(c["shape"], "austin")
        # -t: wait up to 1 s for the interpreter to come up (its 100 ms default
        # is too short for a shared-libpython start on a busy machine)
        return exe and [exe, "-s", "-t", "1000", "-i", f"{interval_us}us",
                        "-o", os.path.join(c["tmp"], "austin.txt"), c["py"], *c["prog"]]
    return build


def memray(*opts):
    def build(c):
        if not has_module(c["py"], "memray"):
            return None
        return [c["py"], "-m", "memray", "run", "-q", "-f", "-o", os.path.join(c["tmp"], "m.bin"),
                *opts, *c["prog"]]
    return build


def gil_load(c):
    if not has_module(c["py"], "gil_load"):
        return None
    return [c["py"], "-m", "gil_load", os.path.join(BENCH, "with_gil_load.py"), *c["prog"]]


NO_FEATURES = ("--no-alloc", "--no-gil", "--no-imports")
ALLOC_ONLY = ("--no-gil", "--no-imports", "--no-sample")
SAMPLERS = ["known-split", "threads-4"]

EVERY_WORKLOAD = ["int-1", "int-2", "int-4", "threads-1", "threads-2", "threads-4", "known-split",
                  "alloc-loop", "imports", "deep-50", "lab02", "lab04", "lab08", "lab15"]
GIL_ONLY = ("--no-alloc", "--no-imports", "--no-sample")
DEFAULT_TOOL = "archtrace run (default: all, 100 Hz)"
NO_SERIES_TOOL = "archtrace run (default) without the memory series"


def without_series(c):
    """The default run with the sampler's 10 ms memory reads turned off."""
    return ["env", "ARCHTRACE_NO_MEMORY_SERIES=1", *at_run()(c)]

TOOLS = [
    Tool("plain", "run", None, plain),
    Tool("plain, gated (attach baseline)", "attach", None, None),
    # archtrace run as users type it first, and each feature alone
    Tool(DEFAULT_TOOL, "run", EVERY_WORKLOAD, at_run(), samples="at-json"),
    Tool(NO_SERIES_TOOL, "run", ["int-2", "alloc-loop", "lab04"], without_series),
    Tool("archtrace run --alloc-exact (all)", "run", ["int-1", "alloc-loop", "lab04"], at_run("--alloc-exact")),
    Tool("archtrace run sampling only 1 kHz", "run", SAMPLERS + ["deep-50"],
         at_run(*NO_FEATURES, "--rate", "1000"), samples="at-json"),
    Tool("archtrace run sampling only 10 kHz", "run", SAMPLERS,
         at_run(*NO_FEATURES, "--rate", "10000"), samples="at-json"),
    Tool("archtrace alloc exact", "run", ["int-1", "alloc-loop", "lab04"], at_run(*ALLOC_ONLY, "--alloc-exact")),
    Tool("archtrace alloc default (16 KiB)", "run", ["int-1", "alloc-loop"], at_run(*ALLOC_ONLY)),
    Tool("archtrace alloc --alloc-sample 1024", "run", ["int-1", "alloc-loop"],
         at_run(*ALLOC_ONLY, "--alloc-sample", "1024")),
    Tool("archtrace alloc --alloc-depth 25", "run", ["alloc-loop"],
         at_run(*ALLOC_ONLY, "--alloc-exact", "--alloc-depth", "25")),
    Tool("archtrace gil only", "run", ["int-2", "threads-1", "threads-2", "lab08"], at_run(*GIL_ONLY)),
    # the same run again: how far the GIL figures move between two identical
    # runs of one round (the scheduler's part), beside what default mode moves
    Tool("archtrace gil only, again", "run", ["int-2", "lab08"], at_run(*GIL_ONLY)),
    Tool("archtrace imports only", "run", ["imports", "lab02"], at_run("--no-alloc", "--no-gil", "--no-sample")),
    # archtrace attached to a running process
    Tool("archtrace -p record 100 Hz", "attach", ["lab15"], at_record(), samples="at-session"),
    Tool("archtrace -p record 1 kHz", "attach", SAMPLERS + ["deep-50"], at_record("--rate", "1000"),
         samples="at-session"),
    Tool("archtrace -p record 10 kHz", "attach", SAMPLERS + ["deep-50"], at_record("--rate", "10000"),
         samples="at-session"),
    Tool("archtrace -p record --bpf gil", "attach", ["threads-2"], at_record("--bpf", "--no-imports", "--no-sample")),
    Tool("archtrace -p record --bpf imports", "attach", ["imports"], at_record("--bpf", "--no-gil", "--no-sample")),
    Tool("archtrace -p record --bpf sample 99 Hz", "attach", ["known-split"],
         at_record("--bpf", "--no-gil", "--no-imports", "--rate", "99"), samples="at-session"),
    Tool("archtrace -p record --bpf (all)", "attach", ["lab15"], at_record("--bpf")),
    Tool("archtrace -p dump every 100 ms", "dump", ["threads-4"], at_dump),
    # what people use today
    Tool("py-spy record 100 Hz", "run", ["int-2", "threads-2", "lab08", "lab15"], pyspy_record(100),
         samples="pyspy"),
    Tool("py-spy record 1 kHz", "run", SAMPLERS, pyspy_record(1000), samples="pyspy"),
    Tool("py-spy record --pid 1 kHz", "attach", ["deep-50"], pyspy_record(1000), samples="pyspy"),
    Tool("py-spy dump every 100 ms", "dump", ["threads-4"], pyspy_dump),
    Tool("austin 1 kHz", "run", SAMPLERS, austin(1000), samples="austin"),
    Tool("tracemalloc (1 frame)", "run", ["int-1", "alloc-loop", "lab04"], xopt("tracemalloc=1")),
    Tool("memray run", "run", ["alloc-loop", "lab04", "lab15"], memray()),
    Tool("memray run --trace-python-allocators", "run", ["alloc-loop", "lab04"],
         memray("--trace-python-allocators")),
    Tool("-X importtime", "run", ["imports", "lab02"], xopt("importtime")),
    Tool("gil_load", "run", ["threads-2"], gil_load),
]


def tools_for(wl):
    chosen = [t for t in TOOLS if t.workloads is not None and wl.name in t.workloads]
    chosen = [t for t in chosen if t.kind == "run" or wl.gated or wl.server]
    if not any(t.kind != "run" for t in chosen):
        return [TOOLS[0]] + chosen
    return TOOLS[:2] + chosen


# ---- process helpers --------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def python_in_tree(root):
    """The pid of the Python interpreter in root's process tree (root itself
    for memray; the child of archtrace, py-spy, austin)."""
    kids, todo = children_of(), [root]
    while todo:
        pid = todo.pop(0)
        try:
            exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
        except OSError:
            exe = ""
        if exe.startswith("python"):
            return pid
        todo += kids.get(pid, [])
    return None


def wait_port(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(proc):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


REQUESTS = [("GET", "/health", None), ("POST", "/echo", {"text": "bench", "repeat": 2}),
            ("POST", "/encrypt", {"plaintext": "a secret"}), ("GET", "/config", None)]


def drive_http(port, n):
    """n requests over one keep-alive connection; the number that got a 2xx."""
    ok = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for i in range(n):
            method, path, body = REQUESTS[i % len(REQUESTS)]
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            ok += 200 <= resp.status < 300
    except (OSError, http.client.HTTPException):
        pass
    finally:
        conn.close()
    return ok


def alive(proc):
    """Still running?  Asked without reaping it, so wait_exit gets its rusage."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


RUN_TIMEOUT_S = 180


def kill_tree(pid):
    """SIGKILL pid and everything below it (a tool that hangs, e.g. gil_load)."""
    kids, todo, tree = children_of(), [pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += kids.get(p, [])
    for p in reversed(tree):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def wait_exit(proc, timeout=RUN_TIMEOUT_S):
    """(exit code, peak RSS KiB of its tree, CPU seconds of its tree) as
    wait4 sees them.  After timeout seconds the tree is killed (exit -9)."""
    def overdue():
        log(f"{' '.join(map(str, proc.args[:4]))} ...: still running after {timeout} s, killed")
        kill_tree(proc.pid)
    timer = threading.Timer(timeout, overdue)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def perf_event_fds(pid):
    try:
        return sum("perf_event" in os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def wait_attached(tool, proc):
    """An attaching tool is ready: eBPF when its perf_event fds stop changing
    (up to 15 s; none after 3 s means it attached no probes), ptrace
    samplers after a short settle."""
    if "--bpf" not in tool.name:
        time.sleep(0.3)
        return alive(proc)
    last, same, t0 = -1, 0, time.monotonic()
    while time.monotonic() - t0 < 15 and alive(proc):
        n = perf_event_fds(proc.pid)
        if n == 0 and time.monotonic() - t0 > 3:
            return True
        same = same + 1 if n > 0 and n == last else 0
        if same >= 15:
            return True
        last = n
        time.sleep(0.02)
    return alive(proc)


# ---- one run ------------------------------------------------------------------------

def start(argv, tmp, name):
    out = open(os.path.join(tmp, name + ".out"), "wb")
    err = open(os.path.join(tmp, name + ".err"), "wb")
    return subprocess.Popen(argv, stdout=out, stderr=err, cwd=ROOT)


def read(tmp, name):
    try:
        with open(os.path.join(tmp, name), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def run_plainly(tool, wl, ctx, requests):
    """A 'run' tool: the tool starts the program.  Timed start to exit."""
    port = ctx["port"]
    t0 = time.perf_counter()
    proc = start(tool.build(ctx), ctx["tmp"], "t")
    ok = True
    if wl.server:
        ok = wait_port(port, proc) and drive_http(port, requests) == requests
        target = python_in_tree(proc.pid)
        if target:
            os.kill(target, signal.SIGINT)
    rc, rss, cpu = wait_exit(proc)
    wall = time.perf_counter() - t0
    return {"wall": wall, "rss": rss, "cpu": cpu, "rc": rc if ok else (rc or 1), "tool_cpu": None}


def run_attached(tool, wl, ctx, requests):
    """An 'attach' or 'dump' tool (or the gated plain baseline): the program
    starts, the tool attaches, then the program is let go.  Timed go to exit."""
    tmp, port = ctx["tmp"], ctx["port"]
    go = os.path.join(tmp, "go")
    py, prog = ctx["py"], ctx["prog"]
    argv = [py, *prog] if wl.server else [py, GATE, go, *prog]
    target = start(argv, tmp, "t")
    ready = wait_port(port, target) if wl.server else wait_ready(tmp, target)
    if not ready:
        target.kill()
        wait_exit(target)
        return {"wall": None, "rss": 0, "cpu": 0, "rc": 1, "tool_cpu": None}
    ctx["pid"] = target.pid
    attacher = None
    if tool.kind == "attach" and tool.build:
        attacher = start(tool.build(ctx), tmp, "a")
        if not wait_attached(tool, attacher):
            log(f"{tool.name}: did not attach: {read(tmp, 'a.err')[:200]}")
    dumper, latencies = None, []
    if tool.kind == "dump":
        dumper = threading.Thread(target=dump_loop, args=(tool, ctx, target, latencies))
    t0 = time.perf_counter()
    ok = True
    if wl.server:
        if dumper:
            dumper.start()
        ok = drive_http(port, requests) == requests
        os.kill(target.pid, signal.SIGINT)
    else:
        open(go, "w").close()
        if dumper:
            dumper.start()
    rc, rss, cpu = wait_exit(target)
    wall = time.perf_counter() - t0
    if dumper:
        dumper.join()
    tool_cpu = None
    if attacher:
        deadline = time.monotonic() + 10
        while alive(attacher) and time.monotonic() < deadline:
            time.sleep(0.02)
        if alive(attacher):
            attacher.send_signal(signal.SIGINT)
        arc, _, tool_cpu = wait_exit(attacher)
        if arc != 0:
            log(f"{tool.name}: exit {arc}: {read(tmp, 'a.err')[:200]}")
            rc = rc or arc
    res = {"wall": wall, "rss": rss, "cpu": cpu + (tool_cpu or 0), "rc": rc if ok else (rc or 1),
           "tool_cpu": tool_cpu, "target_cpu": cpu}
    if latencies:
        res["dump_ms"] = statistics.median(latencies) * 1e3
        res["dumps"] = len(latencies)
    return res


def wait_ready(tmp, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(proc):
        if read(tmp, "t.out").startswith("ready"):
            return True
        time.sleep(0.005)
    return False


def dump_loop(tool, ctx, target, latencies):
    while alive(target):
        t0 = time.perf_counter()
        r = subprocess.run(tool.build(ctx), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            latencies.append(time.perf_counter() - t0)
        time.sleep(0.1)


# ---- what a run recorded ----------------------------------------------------------------

def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def session_report(tmp):
    """The JSON report and collapsed stacks of an `archtrace -p PID record -o` session."""
    d = os.path.join(tmp, "s")
    if not os.path.isdir(d):
        return None, []
    js = subprocess.run([ARCHTRACE, "report", "--format", "json", d], capture_output=True, text=True)
    col = subprocess.run([ARCHTRACE, "report", "--format", "collapsed", d], capture_output=True, text=True)
    stacks = []
    for line in col.stdout.splitlines():
        frames, _, count = line.rpartition(" ")
        if count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    try:
        report = json.loads(js.stdout)
    except ValueError:
        report = None
    return report, stacks


def collapsed_file(path):
    stacks = []
    for line in read(*os.path.split(path)).splitlines():
        if not line or line.startswith("#"):
            continue
        frames, _, count = line.rpartition(" ")
        if count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def stacks_of(tool, tmp, res):
    """(list of (frames, count) where count is samples, archtrace's JSON or None)."""
    if tool.samples == "at-json":
        d = load_json(os.path.join(tmp, "at.json")) or {}
        stacks = []
        for p in d.get("processes", []):
            for st in (p.get("samples") or {}).get("stacks", []):
                if not st.get("idle"):
                    stacks.append((st.get("frames", []), st.get("count", 0)))
        return stacks, d
    if tool.samples == "at-session":
        report, stacks = session_report(tmp)
        return stacks, report
    if tool.samples == "pyspy":
        return collapsed_file(os.path.join(tmp, "pyspy.txt")), None
    if tool.samples == "austin":
        # one line per sample; the number is its CPU time in microseconds
        return [(f, 1) for f, _ in collapsed_file(os.path.join(tmp, "austin.txt"))], None
    return [], None


def split_share(stacks):
    hot = cold = 0
    for frames, count in stacks:
        names = " ".join(frames)
        if re.search(r"\bhot\b", names):
            hot += count
        elif re.search(r"\bcold\b", names):
            cold += count
    return hot / (hot + cold) if hot + cold else None


def collect(tool, wl, ctx, res):
    """Per-run numbers beyond wall and RSS: samples/s, split error, notes."""
    tmp = ctx["tmp"]
    if tool.samples and wl.match:
        stacks, report = stacks_of(tool, tmp, res)
        busy = sum(c for f, c in stacks if re.search(wl.match, " ".join(f)))
        if busy and res["wall"]:
            res["rate"] = busy / res["wall"]
        if wl.name == "known-split":
            m = re.search(r"SPLIT hot=([0-9.]+)", read(tmp, "t.out"))
            share = split_share(stacks)
            if m and share is not None:
                truth = float(m.group(1))
                res["err"] = abs(share - truth)
                # what n samples can tell: the binomial standard error of the share
                n = sum(c for f, c in stacks if re.search(r"\b(hot|cold)\b", " ".join(f)))
                res["err_se"] = (truth * (1 - truth) / n) ** 0.5 if n else None
                res["split_n"] = n
        total = sum(c for _, c in stacks)
        res["samples_total"] = total
        if res.get("tool_cpu") and "--bpf" in tool.name:
            res["tool_cpu_ms"] = res["tool_cpu"] * 1e3   # mostly loading/attaching, not samples
        elif res.get("tool_cpu") and total:
            res["us_per_sample"] = res["tool_cpu"] / total * 1e6
        for p in (report or {}).get("processes", []):
            s = p.get("samples") or {}
            if s.get("us_per_sample") is not None:
                res["work_us"] = s["us_per_sample"]
            if s.get("achieved_hz") is not None:
                res["achieved_hz"] = s["achieved_hz"]
                res["missed"] = s.get("missed", 0)
                res["clock"] = s.get("clock", "wall")
    if tool.name.startswith("archtrace") and "-p" not in tool.name:
        d = load_json(os.path.join(tmp, "at.json")) or {}
        for p in d.get("processes", []):
            a = p.get("alloc") or {}
            ov = a.get("overhead") or {}
            if ov.get("resident_bytes") is not None:
                res["tables_mib"] = max(res.get("tables_mib", 0), ov["resident_bytes"] / 2**20)
            g = p.get("gil") or {}
            if g.get("threads") and wl.name == "threads-2":
                res["gil_wait_s"] = sum(t.get("wait_ns", 0) for t in g["threads"]) / 1e9
        if wl.name in GIL_WORKLOADS:
            res["gil"] = gil_figures(d)
        if "alloc" in tool.name and "depth" not in tool.name:
            res["peak_top"] = peak_top(d)
    if "--bpf" in tool.name:
        report, _ = session_report(tmp)
        has = os.path.isdir(os.path.join(tmp, "s")) and any(
            n.endswith(".bpf") for n in os.listdir(os.path.join(tmp, "s")))
        res["bpf_data"] = has
        for p in (report or {}).get("processes", []):
            g = p.get("gil") or {}
            if g.get("source") == "ebpf" and g.get("threads"):
                res["gil_wait_s"] = sum(t.get("wait_ns", 0) for t in g["threads"]) / 1e9
    if "gil_load" in tool.name:
        m = re.search(r"GIL_LOAD held=([0-9.]+) wait=([0-9.]+)", read(tmp, "t.err"))
        if m:
            res["gil_load"] = (float(m.group(1)), float(m.group(2)))


GIL_WORKLOADS = ("int-2", "threads-2", "lab08")


def gil_figures(report):
    """The GIL figures a user reads, of the process with the most Python
    threads: per thread (by name; a repeated name gets #k) wait, hold,
    wait ratio and switches, and the process's totals."""
    procs = [p for p in (report or {}).get("processes", []) if (p.get("gil") or {}).get("threads")]
    if not procs:
        return None
    g = max(procs, key=lambda p: len(p["gil"]["threads"]))["gil"]
    threads, seen = {}, {}
    for t in g["threads"]:
        name = t.get("name") or str(t.get("tid"))
        seen[name] = seen.get(name, 0) + 1
        key = name if seen[name] == 1 else f"{name}#{seen[name]}"
        threads[key] = {"wait": t.get("wait_ns", 0), "hold": t.get("hold_ns", 0),
                        "wait_ratio": t.get("wait_ratio", 0), "switches": t.get("switches", 0)}
    total = {"wait": g.get("wait_ns", 0), "hold": g.get("hold_ns", 0), "wait_ratio": g.get("wait_ratio", 0),
             "switches": g.get("switches", 0)}
    return {"threads": threads, "total": total}


def relative(a, b):
    return abs(a - b) / b if b else (0.0 if a == b else float("inf"))


def gil_movement(runs, ref_runs):
    """How far a tool's GIL figures are from the GIL-only run of the same
    round: per figure (wait, hold, wait_ratio, switches), the median over
    the rounds of the relative difference of the process totals, and of the
    worst thread that held the GIL for >= 5% of the process's hold time
    (threads that barely ran have figures too small to compare)."""
    ref = {r["round"]: r["gil"] for r in ref_runs if r and r.get("gil")}
    per = {}
    for r in runs:
        mine, theirs = r and r.get("gil"), r and ref.get(r["round"])
        if not mine or not theirs:
            continue
        for fig in ("wait", "hold", "wait_ratio", "switches"):
            per.setdefault("total " + fig, []).append(relative(mine["total"][fig], theirs["total"][fig]))
            floor = 0.05 * theirs["total"]["hold"]
            worst = max((relative(t[fig], theirs["threads"][n][fig]) for n, t in mine["threads"].items()
                         if n in theirs["threads"] and theirs["threads"][n]["hold"] >= floor), default=None)
            if worst is not None:
                per.setdefault("thread " + fig, []).append(worst)
    return {k: statistics.median(v) for k, v in per.items()}


def peak_top(report):
    for p in (report or {}).get("processes", []):
        top = (((p.get("alloc") or {}).get("peak") or {}).get("top")) or []
        if top:
            return [(t["file"], t["line"], t["size"]) for t in top[:5]]
    return None


# ---- measuring -------------------------------------------------------------------------

def run_one(tool, wl, shape, py, requests):
    tmp = tempfile.mkdtemp(prefix="archtrace-bench.")
    port = free_port() if wl.server else 0
    ctx = {"py": py, "shape": shape, "prog": wl.args(port), "tmp": tmp, "port": port, "pid": None}
    try:
        if tool.kind == "run" and tool.build(ctx) is None:
            return None
        if tool.kind != "run" and tool.build and tool.build(dict(ctx, pid=1)) is None:
            return None
        res = (run_plainly if tool.kind == "run" else run_attached)(tool, wl, ctx, requests)
        if res["rc"] != 0 and res["wall"] is not None:
            log(f"{shape} {wl.name} {tool.name}: exit {res['rc']}: {read(tmp, 't.err')[-300:].strip()}")
        collect(tool, wl, ctx, res)
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def summarize(runs):
    ok = [r for r in runs if r and r["wall"] is not None]
    s = {"n": len(ok), "fail": sum(1 for r in runs if r and (r["rc"] != 0 or r["wall"] is None))}
    if not ok:
        return s
    walls = [r["wall"] for r in ok]
    s["wall"] = statistics.median(walls)
    s["spread"] = (max(walls) - min(walls)) / 2 / s["wall"]
    s["rss"] = max(r["rss"] for r in ok)
    s["cpu"] = statistics.median(r["cpu"] for r in ok)
    for key in ("rate", "err", "err_se", "split_n", "us_per_sample", "work_us", "tool_cpu_ms", "achieved_hz", "missed", "tables_mib", "dump_ms",
                "gil_wait_s", "samples_total", "tool_cpu", "target_cpu"):
        vals = [r[key] for r in ok if r.get(key) is not None]
        if vals:
            s[key] = statistics.median(vals)
    if any(r.get("clock") == "cpu" for r in ok):
        s["clock"] = "cpu"
    if any("bpf_data" in r for r in ok):
        s["bpf_data"] = any(r.get("bpf_data") for r in ok)
    gl = [r["gil_load"] for r in ok if r.get("gil_load")]
    if gl:
        s["gil_load"] = (statistics.median(g[0] for g in gl), statistics.median(g[1] for g in gl))
    tops = [r["peak_top"] for r in ok if r.get("peak_top")]
    if tops:
        s["peak_top"] = tops[0]
    return s


def paired_ratios(runs, base_runs):
    """Each round runs every tool once, back to back in a rotated order: a
    tool's run is compared with the baseline's run of the same round, so a
    slow minute of the shared host moves both.  Per key (wall, cpu,
    target_cpu): (median of the per-round ratios, half their range relative
    to that median), or (None, None)."""
    base = {r["round"]: r for r in base_runs if r and r["wall"] is not None}
    out = {}
    for key in ("wall", "cpu", "target_cpu"):
        ratios = sorted(r[key] / base[r["round"]][key] for r in runs
                        if r and r["wall"] is not None and r.get(key) and r["round"] in base
                        and base[r["round"]].get(key))
        if not ratios:
            out[key] = (None, None)
            continue
        m = statistics.median(ratios)
        out[key] = (m, (ratios[-1] - ratios[0]) / 2 / m)
    return out


def measure(shapes, workloads, tool_filter, runs, requests):
    rows = []
    for shape in shapes:
        py = venv_python(shape)
        if not py:
            log(f"no {shape} python3.11 venv (.venv/bench-{shape}: tools/bench_env.sh), skipped")
            continue
        for wl in workloads:
            if shape in VERSION_SHAPES and wl.name not in VERSION_WORKLOADS:
                continue
            tools = tools_for(wl)
            if shape in VERSION_SHAPES:                # archtrace's own rows only
                tools = [t for t in tools if t.name.startswith(("plain", "archtrace")) and "--bpf" not in t.name]
            if tool_filter:
                tools = [t for t in tools if t.name.startswith("plain") or
                         any(f in t.name for f in tool_filter)]
            if not any(t.kind != "run" for t in tools):
                tools = [t for t in tools if t.name != TOOLS[1].name]
            results = {t.name: [] for t in tools}
            missing = set()
            t_start = time.monotonic()
            for r in range(runs):
                k = r % len(tools)
                for tool in tools[k:] + tools[:k]:        # rotate the order each round
                    if tool.name in missing:
                        continue
                    res = run_one(tool, wl, shape, py, requests)
                    if res is None:
                        missing.add(tool.name)
                    else:
                        res["round"] = r
                        results[tool.name].append(res)
            log(f"{shape} {wl.name}: {len(tools)} tools x {runs} runs in {time.monotonic() - t_start:.0f} s")
            base = {"run": summarize(results["plain"])}
            base_runs = {"run": results["plain"]}
            if TOOLS[1].name in results:
                base["gated"] = summarize(results[TOOLS[1].name])
                base_runs["gated"] = results[TOOLS[1].name]
            gil_ref = results.get("archtrace gil only")
            for tool in tools:
                if tool.name in missing:
                    rows.append({"wl": wl.name, "tool": tool.name, "shape": shape, "missing": True})
                    continue
                s = summarize(results[tool.name])
                kind = "run" if tool.kind == "run" else "gated"
                b = base.get(kind, {})
                row = {"wl": wl.name, "tool": tool.name, "shape": shape, "kind": tool.kind, **s}
                if s.get("wall") and b.get("wall"):
                    pairs = paired_ratios(results[tool.name], base_runs.get(kind, []))
                    row["ratio"], row["noise"] = pairs["wall"]
                    row["cpu_ratio"] = pairs["cpu"][0]
                    if tool.kind != "run" and tool.build and pairs["target_cpu"][0]:
                        row["target_cpu_ratio"] = pairs["target_cpu"][0]
                    row["rss_added"] = (s["rss"] - b["rss"]) / 1024.0
                    row["rss_ratio"] = s["rss"] / b["rss"] if b["rss"] else None
                if gil_ref and tool.name != "archtrace gil only":
                    row["gil_move"] = gil_movement(results[tool.name], gil_ref) or None
                rows.append(row)
    return rows


# ---- targets (issues 5-9) ----------------------------------------------------------

def find(rows, wl, tool, shape):
    for r in rows:
        if r["wl"] == wl and r["tool"] == tool and r["shape"] == shape:
            return r
    return None


def ratio_target(issue, what, wl, tool, limit):
    """(issue, what, workload, tool, check): the tool's wall ratio <= limit."""
    def check(rows, shape):
        r = find(rows, wl, tool, shape)
        if not r or r.get("ratio") is None:
            return None
        cpu = f"CPU {fmt(r.get('cpu_ratio'), '.2f', 'x')}"
        if r.get("target_cpu_ratio") is not None:
            cpu += f", target's own CPU {r['target_cpu_ratio']:.2f}x"
        number = f"{r['ratio']:.3f}x ({cpu}, runs +-{100 * r['noise']:.0f}%)"
        if r.get("bpf_data") is False:     # the ratio would be the ptrace sampler's
            return (None, number, "no eBPF data: record --bpf wrote no <pid>.bpf")
        near = abs(r["ratio"] - limit) <= r["noise"] * r["ratio"]
        return (r["ratio"] <= limit, number, "within the run-to-run spread" if near else "")
    return (issue, what, wl, tool, check)


def versus_target(issue, what, wl, tool, base_tool, limit):
    """(issue, what, workload, tool, check): tool's wall ratio over base_tool's
    (each a median of paired ratios to the plain run of its round) <= limit."""
    def check(rows, shape):
        r, b = find(rows, wl, tool, shape), find(rows, wl, base_tool, shape)
        if not r or not b or r.get("ratio") is None or not b.get("ratio"):
            return None
        v = r["ratio"] / b["ratio"]
        noise = max(r["noise"], b["noise"])
        number = f"{v:.3f}x ({r['ratio']:.3f}x vs {b['ratio']:.3f}x of plain, runs +-{100 * noise:.0f}%)"
        near = abs(v - limit) <= noise * v
        return (v <= limit, number, "within the run-to-run spread" if near else "")
    return (issue, what, wl, tool, check)


def alloc_rss(rows, shape):
    r = find(rows, "alloc-loop", "archtrace alloc exact", shape)
    if not r or r.get("rss_ratio") is None:
        return None
    tables = f", tables {r['tables_mib']:.1f} MiB" if r.get("tables_mib") is not None else ""
    return (r["rss_ratio"] <= 1.3, f"{r['rss_ratio']:.2f}x RSS{tables}", "")


def alloc_sample_top(rows, shape, tool):
    e = find(rows, "alloc-loop", "archtrace alloc exact", shape)
    s = find(rows, "alloc-loop", tool, shape)
    if not e or not s or not e.get("peak_top") or not s.get("peak_top"):
        return None
    exact, samp = e["peak_top"], s["peak_top"]
    same = [x[:2] for x in exact] == [x[:2] for x in samp]
    worst = max(abs(b[2] - a[2]) / a[2] for a, b in zip(exact, samp) if a[2])
    return (same and worst <= 0.10, f"{'same' if same else 'DIFFERENT'} order, worst size {100 * worst:.1f}%", "")


def report_time(rows, shape):
    return REPORT_TIMES.get(shape)


def acc_target(tool, label):
    return ("8", f"sampled share within +-0.05 [{label}]", "known-split", tool, accuracy(tool))


def rate_target(tool, label):
    return ("8", f"10 kHz sustained >= 95%, 4 threads [{label}]", "threads-4", tool, rate_10k(tool))


def accuracy(tool, limit=0.05):
    def check(rows, shape):
        r = find(rows, "known-split", tool, shape)
        if not r or r.get("err") is None:
            return None
        se = r.get("err_se")
        note = f" (one standard error of a share of {r.get('split_n', 0):.0f} samples: {se:.3f})" if se else ""
        return (r["err"] <= limit, f"error {r['err']:.3f}{note}", "")
    return check


def rate_10k(tool):
    def check(rows, shape):
        r = find(rows, "threads-4", tool, shape)
        if not r:
            return None
        hz = r.get("achieved_hz")
        if hz is None:
            if r.get("rate") is None:
                return None
            hz = r["rate"]
            src = "busy samples/s"
        else:
            src = f"archtrace says, missed {r.get('missed', 0):.0f}"
        return (hz >= 9500, f"{hz:.0f} Hz ({100 * hz / 10000:.1f}%, {src})", "")
    return check


def us_per_sample(rows, shape):
    """What one sample of a 50-deep stack costs: the time the sampler spends
    taking it (its own clock, at 10 kHz, waits excluded: from 2 kHz it polls
    the clock, so its CPU time is a whole CPU whatever a sample costs), and
    the all-in CPU per sample at 1 kHz (timer wake-ups, attaching and the
    report included)."""
    lo = find(rows, "deep-50", "archtrace -p record 1 kHz", shape)
    hi = find(rows, "deep-50", "archtrace -p record 10 kHz", shape)
    if not lo or not hi or hi.get("work_us") is None or lo.get("us_per_sample") is None:
        return None
    return (True, f"{hi['work_us']:.1f} us/sample taking it (10 kHz, sampler's clock); all-in CPU at 1 kHz "
                  f"{lo['us_per_sample']:.0f} us", "reported, no limit")


def bpf_agreement(rows, shape):
    b = find(rows, "threads-2", "archtrace -p record --bpf gil", shape)
    s = find(rows, "threads-2", "archtrace gil only", shape)
    if not b or not s:
        return None
    if b.get("gil_wait_s") is None:
        return (None, "-", "record --bpf reported no GIL waits")
    if not s.get("gil_wait_s"):
        return None
    wb, ws = b["gil_wait_s"], s["gil_wait_s"]
    diff = abs(wb - ws) / ws
    return (diff <= 0.10, f"total wait bpf {wb:.2f} s vs shim {ws:.2f} s ({100 * diff:.0f}%)", "")


INSTRUCTIONS = {}           # (shape, workload, mode) -> instructions executed (callgrind)
INSTR_ITERATIONS = "100000"  # alloc_bench.py iterations under callgrind (~5 s a run)
INSTR_INT_ITERATIONS = "300000"  # int_heavy.py iterations under callgrind
INSTR_MODES = [
    ("plain", None),
    ("exact", ("--alloc-exact",)),
    ("default (16 KiB)", ()),
    ("--alloc-sample 1024", ("--alloc-sample", "1024")),
    ("--alloc-depth 25", ("--alloc-exact", "--alloc-depth", "25")),
    ("default run (all features)", None),   # no ALLOC_ONLY: GIL, imports, 100 Hz sampler too
]


def callgrind_ir(prefix, vg, prog):
    """Instructions prog executes under valgrind (vg) --tool=callgrind, started by
    the command `prefix` (archtrace run, or nothing); None when it failed."""
    tmp = tempfile.mkdtemp(prefix="archtrace-cg.")
    try:
        r = subprocess.run(prefix + [vg, "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out"] + prog,
                           capture_output=True, text=True, cwd=ROOT, timeout=600)
        m = re.search(r"Collected : (\d+)", r.stderr)
        return int(m.group(1)) if r.returncode == 0 and m else None
    except (OSError, subprocess.TimeoutExpired):
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure_instructions(shape):
    """Issue 5's ratios again as instruction counts: unlike wall time on a shared
    machine they do not move from run to run (one run each, fixed hash seed)."""
    py, vg = venv_python(shape), shutil.which("valgrind")
    if not py or not vg:
        return
    progs = {"alloc-loop": [py, os.path.join(ROOT, "tests/fixtures/alloc_bench.py"), INSTR_ITERATIONS],
             "int-1": [py, os.path.join(BENCH, "int_heavy.py"), "1", INSTR_INT_ITERATIONS]}
    os.environ["PYTHONHASHSEED"] = "0"
    try:
        for wl, prog in progs.items():
            for mode, flags in INSTR_MODES:
                tmp = tempfile.mkdtemp(prefix="archtrace-bench.")
                only = () if mode.startswith("default run") else ALLOC_ONLY
                at = [] if mode == "plain" else [ARCHTRACE, "-q", *only, *(flags or ()), "-o",
                                                 os.path.join(tmp, "s"), "--"]
                INSTRUCTIONS[(shape, wl, mode)] = callgrind_ir(at, vg, prog)
                shutil.rmtree(tmp, ignore_errors=True)
                log(f"{shape} {wl}: callgrind {mode}: {INSTRUCTIONS[(shape, wl, mode)]}")
    finally:
        del os.environ["PYTHONHASHSEED"]


def instr_target(mode, limit, wl="alloc-loop"):
    def check(rows, shape):
        plain, ir = INSTRUCTIONS.get((shape, wl, "plain")), INSTRUCTIONS.get((shape, wl, mode))
        if not plain or not ir:
            return None
        n = INSTR_ITERATIONS if wl == "alloc-loop" else INSTR_INT_ITERATIONS
        return (ir / plain <= limit, f"{ir / plain:.3f}x instructions ({ir / 1e6:.0f}M vs {plain / 1e6:.0f}M, "
                f"callgrind, {n} iterations)", "")
    return check


def gil_unmoved(wl):
    """Issue 24: default mode's GIL figures against the GIL-only run of the
    same round, each within 5% (totals and the worst busy thread)."""
    def check(rows, shape):
        r = find(rows, wl, DEFAULT_TOOL, shape)
        if not r or not r.get("gil_move"):
            return None
        m = r["gil_move"]
        worst = max(m.values())
        parts = ", ".join(f"{k} {100 * v:.1f}%" for k, v in sorted(m.items()))
        again = find(rows, wl, "archtrace gil only, again", shape)
        if again and again.get("gil_move"):
            a = again["gil_move"]
            parts += "; two GIL-only runs of a round differ by: worst %.1f%% (%s)" % (
                100 * max(a.values()), ", ".join(f"{k} {100 * v:.1f}%" for k, v in sorted(a.items())))
        return (worst <= 0.05, f"worst {100 * worst:.1f}% ({parts})", "")
    return check


def bpf_rate(rows, shape):
    r = find(rows, "known-split", "archtrace -p record --bpf sample 99 Hz", shape)
    if not r or r.get("achieved_hz") is None:
        return None
    per = " per CPU-second" if r.get("clock") == "cpu" else ""
    return (r["achieved_hz"] >= 0.95 * 99, f"{r['achieved_hz']:.1f} Hz{per} of 99 asked", "")


STARTUP = {}       # shape -> bench_startup.sh's JSON line
SAMPLER = {}       # (shape, metric, workload, rate) -> bench_sampler.sh's JSON line
AGENT = {}         # metric -> bench_agent.py's JSON line (host-wide: one run)
AGENT_PROCESSES = 50


def startup_target(rows, shape):
    j = STARTUP.get(shape)
    if not j or j.get("diff_paired_ms") is None:
        return None
    d = j["diff_paired_ms"]
    return (d <= 5.0, f"+{d:.1f} ms ({j['archtrace_ms']:.1f} vs {j['plain_ms']:.1f} ms, medians of "
                      f"{j['rounds']} paired rounds)", "")


def sampler_target(metric, workload, rate, limit, unit, higher=False):
    def check(rows, shape):
        j = SAMPLER.get((shape, metric, workload, rate))
        if not j:
            return None
        if j.get("value") is None:
            return (None, "-", j.get("error", "no figure"))
        v = j["value"]
        ok = None if limit is None else (v >= limit if higher else v <= limit)
        extra = f" ({j['us_per_tick']:.1f} us per tick)" if metric == "us_per_thread_sample" else ""
        return (ok, f"{v:,.1f} {unit}{extra}", "" if limit is not None else "reported, no limit")
    return check


def agent_target(metric, limit, unit, higher=False):
    """Issue 20: the agent on AGENT_PROCESSES services; host-wide, so
    stated once (on the static row)."""
    def check(rows, shape):
        j = AGENT.get(metric)
        if shape != "static" or not j:
            return None
        v = j.get("value")
        if v is None:
            return (None, "-", "no figure")
        ok = None if limit is None else (v >= limit if higher else v <= limit)
        return (ok, f"{v:,.2f} {unit}", "" if limit is not None else "reported, no limit")
    return check


ISSUE24_DEFAULT = [ratio_target("24", "default run (all features, 100 Hz) <= 1.15x", wl, DEFAULT_TOOL, 1.15)
                   for wl in EVERY_WORKLOAD]

TARGETS = ISSUE24_DEFAULT + [
    ("24", "GIL figures, default vs GIL-only (same round), within 5%", "int-2", DEFAULT_TOOL, gil_unmoved("int-2")),
    ("24", "GIL figures, default vs GIL-only (same round), within 5%", "lab08", DEFAULT_TOOL, gil_unmoved("lab08")),
    ("24", "known-split sampled share error <= 0.02 [default run]", "known-split", DEFAULT_TOOL,
     accuracy(DEFAULT_TOOL, 0.02)),
    ratio_target("24", "exact alloc tracking <= 1.15x", "alloc-loop", "archtrace alloc exact", 1.15),
    ratio_target("24", "exact alloc tracking <= 1.5x", "int-1", "archtrace alloc exact", 1.5),
    ratio_target("24", "--alloc-sample 1024 <= 1.05x", "alloc-loop", "archtrace alloc --alloc-sample 1024", 1.05),
    ratio_target("24", "--alloc-sample 1024 <= 1.05x", "int-1", "archtrace alloc --alloc-sample 1024", 1.05),
    ("24", "exact alloc tracking <= 1.15x [instructions]", "alloc-loop", "callgrind", instr_target("exact", 1.15)),
    ("24", "exact alloc tracking <= 1.5x [instructions]", "int-1", "callgrind", instr_target("exact", 1.5, "int-1")),
    ("24", "default run (all features, 100 Hz) <= 1.15x [instructions]", "int-1", "callgrind",
     instr_target("default run (all features)", 1.15, "int-1")),
    ("24", "default run (all features, 100 Hz) <= 1.15x [instructions]", "alloc-loop", "callgrind",
     instr_target("default run (all features)", 1.15)),
    ("24", "default alloc sampling (16 KiB) <= 1.15x [instructions]", "int-1", "callgrind",
     instr_target("default (16 KiB)", 1.15, "int-1")),
    ("24", "--alloc-sample 1024 <= 1.05x [instructions]", "alloc-loop", "callgrind",
     instr_target("--alloc-sample 1024", 1.05)),
    ("24", "--alloc-sample 1024 <= 1.05x [instructions]", "int-1", "callgrind",
     instr_target("--alloc-sample 1024", 1.05, "int-1")),
    ("24", "default alloc sampling: same top-5 order as exact, sizes +-10%", "alloc-loop",
     "archtrace alloc default (16 KiB)",
     lambda rows, shape: alloc_sample_top(rows, shape, "archtrace alloc default (16 KiB)")),
    ("24", "--alloc-sample 1024: same top-5 order as exact, sizes +-10%", "alloc-loop",
     "archtrace alloc --alloc-sample 1024",
     lambda rows, shape: alloc_sample_top(rows, shape, "archtrace alloc --alloc-sample 1024")),
    ("24", "start-up of archtrace -q PY -c pass <= +5 ms", "start-up", None, startup_target),
    ("24", "sampler: <= 5 us per thread-sample, 4 threads x 10 frames [sampler's clock]", "threads-deep",
     None, sampler_target("us_per_thread_sample", "4 threads x 10 frames", 1000, 5.0, "us")),
    ("24", "sampler: <= 10 us all-in per thread-sample at 100 Hz", "threads-deep", None,
     sampler_target("all_in_us", "4 threads x 10 frames", 100, 10.0, "us")),
    ("24", "sampler: <= 10 us all-in per thread-sample at 1 kHz", "threads-deep", None,
     sampler_target("all_in_us", "4 threads x 10 frames", 1000, 10.0, "us")),
    ("24", "sampler: all-in per sample, 50-deep stack at 1 kHz", "deep-50", None,
     sampler_target("all_in_us", "deep-50", 1000, None, "us")),
    ("24", "sampler: >= 200 kHz sustained on one thread", "deep-2", None,
     sampler_target("max_rate_hz", "1 thread, short stack", 250000, 200000, "Hz", higher=True)),
    ("24", "--bpf sampler achieves >= 95% of the rate asked", "known-split",
     "archtrace -p record --bpf sample 99 Hz", bpf_rate),
    ("5", "peak RSS <= 1.3x plain (tables reported)", "alloc-loop", "archtrace alloc exact", alloc_rss),
    *[versus_target("21", "memory over time costs <= 1% (default run vs the same without the series)", wl,
                    DEFAULT_TOOL, NO_SERIES_TOOL, 1.01) for wl in ("int-2", "alloc-loop", "lab04")],
    ("20", f"agent, {AGENT_PROCESSES} services: every one watched within 30 s", "agent-50", None,
     agent_target("agent_attach_all_s", 30.0, "s")),
    ("20", f"agent, {AGENT_PROCESSES} services: CPU <= 5% of one core (100 Hz, scraped every 1 s)", "agent-50",
     None, agent_target("agent_cpu_pct", 5.0, "%")),
    ("20", f"agent, {AGENT_PROCESSES} services: resident memory <= 256 MB", "agent-50", None,
     agent_target("agent_peak_rss_mb", 256.0, "MB")),
    ("20", f"agent, {AGENT_PROCESSES} services: their own CPU with it <= 1.10x", "agent-50", None,
     agent_target("agent_services_cpu_ratio", 1.10, "x")),
    ("20", f"agent, {AGENT_PROCESSES} services: scrape latency (median)", "agent-50", None,
     agent_target("agent_scrape_ms", None, "ms")),
    ("5", "--alloc-depth 25 <= 3x [instructions]", "alloc-loop", "callgrind", instr_target("--alloc-depth 25", 3.0)),
    ratio_target("5", "--alloc-depth 25 <= 3x", "alloc-loop", "archtrace alloc --alloc-depth 25", 3.0),
    ("5", "top-5 report from recorded data < 0.1 s", "alloc-loop", None, report_time),
    ratio_target("6", "GIL accounting, 2 threads <= 1.03x", "threads-2", "archtrace gil only", 1.03),
    ratio_target("6", "GIL accounting, 1 thread unmeasurable (<= 1.02x)", "threads-1", "archtrace gil only", 1.02),
    ratio_target("7", "200+ stdlib imports <= 1.3x", "imports", "archtrace imports only", 1.3),
    acc_target("archtrace run sampling only 1 kHz", "run 1 kHz"),
    acc_target("archtrace -p record 1 kHz", "-p record 1 kHz"),
    rate_target("archtrace run sampling only 10 kHz", "run"),
    rate_target("archtrace -p record 10 kHz", "-p record"),
    ratio_target("8", "1 kHz costs the target <= 1.02x [-p record]", "threads-4", "archtrace -p record 1 kHz", 1.02),
    ratio_target("8", "1 kHz costs the target <= 1.02x [-p record]", "known-split", "archtrace -p record 1 kHz", 1.02),
    ratio_target("8", "10 kHz costs the target <= 1.10x [-p record]", "threads-4", "archtrace -p record 10 kHz", 1.10),
    ratio_target("8", "10 kHz costs the target <= 1.10x [-p record]", "known-split", "archtrace -p record 10 kHz", 1.10),
    ratio_target("8", "1 kHz <= 1.02x [run, sampling only]", "threads-4", "archtrace run sampling only 1 kHz", 1.02),
    ratio_target("8", "10 kHz <= 1.10x [run, sampling only]", "threads-4", "archtrace run sampling only 10 kHz", 1.10),
    ("8", "cost per sample, 50-deep stack", "deep-50", "archtrace -p record 1 kHz", us_per_sample),
    ratio_target("9", "--bpf GIL uprobes, 2 threads <= 1.05x", "threads-2", "archtrace -p record --bpf gil", 1.05),
    ratio_target("9", "--bpf import probes <= 1.05x", "imports", "archtrace -p record --bpf imports", 1.05),
    ratio_target("9", "--bpf perf_event sampling 99 Hz <= 1.01x", "known-split",
                 "archtrace -p record --bpf sample 99 Hz", 1.01),
    ("9", "--bpf GIL waits agree with the shim's within 10%", "threads-2", "archtrace -p record --bpf gil",
     bpf_agreement),
]

REPORT_TIMES = {}
SHAPES_SEEN = []


def measure_report_time(shape, runs):
    """Issue 5: `archtrace report` makes the top-5 from a recorded alloc session in < 0.1 s."""
    py = venv_python(shape)
    if not py:
        return
    tmp = tempfile.mkdtemp(prefix="archtrace-bench.")
    try:
        d = os.path.join(tmp, "s")
        r = subprocess.run([ARCHTRACE, "-q", *ALLOC_ONLY, "-o", d, "--", py, *WL["alloc-loop"].args()],
                           capture_output=True, cwd=ROOT)
        if r.returncode != 0:
            return
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([ARCHTRACE, "report", "--json", os.path.join(tmp, "r.json"), d],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        REPORT_TIMES[shape] = (t < 0.1, f"{t * 1e3:.0f} ms (archtrace report, text + JSON)", "")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def json_lines(argv, env=None):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=900,
                           env=dict(os.environ, **(env or {})))
    except (OSError, subprocess.TimeoutExpired) as e:
        log(f"{argv[0]}: {e}")
        return []
    out = []
    for line in r.stdout.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    if not out:
        log(f"{' '.join(argv[:2])}: no figures: {r.stderr[-300:]}")
    return out


def measure_startup(shape, rounds):
    """Issue 24: what archtrace -q adds to `PY -c pass` (tools/bench_startup.sh)."""
    py = venv_python(shape)
    if py:
        for j in json_lines([os.path.join(ROOT, "tools", "bench_startup.sh"), "-n", str(rounds),
                             "-a", ARCHTRACE, py]):
            STARTUP[shape] = j
            log(f"{shape} start-up: +{j.get('diff_paired_ms')} ms")


def measure_sampler(shape):
    """Issue 24: the ptrace sampler's per-sample costs (tools/bench_sampler.sh)."""
    py = venv_python(shape)
    if py:
        for j in json_lines([os.path.join(ROOT, "tools", "bench_sampler.sh"), ARCHTRACE, py],
                            {"ROUNDS": "3", "SECONDS_PER_RUN": "3"}):
            SAMPLER[(shape, j["metric"], j["workload"], j["rate_hz"])] = j
            log(f"{shape} sampler {j['metric']} {j['workload']} {j['rate_hz']} Hz: {j.get('value')}")


def measure_agent(shapes):
    """Issue 20: archtrace agent's budget on a host of many services."""
    pys = [p for p in (venv_python(s) for s in shapes if s not in VERSION_SHAPES) if p]
    if pys:
        for j in json_lines([os.path.join(ROOT, "tools", "bench_agent.py"), ARCHTRACE, ",".join(pys),
                             str(AGENT_PROCESSES), "20"]):
            AGENT[j["metric"]] = j
            log(f"agent {j['metric']}: {j.get('value')}")


def check_targets(rows, shapes):
    out = []
    for issue, what, wl, _, check in TARGETS:
        for shape in shapes:
            v = check(rows, shape)
            if v is None and shape in VERSION_SHAPES:
                continue        # 3.12/3.13 run a few rows: the rest is not missing
            if v is None:
                out.append((issue, what, wl, shape, "-", "not measured", ""))
            else:
                ok, number, note = v
                verdict = "not measured" if ok is None else "met" if ok else "NOT met"
                out.append((issue, what, wl, shape, number, verdict, note))
    return out


def verdicts(rows, targets):
    """Put each target's verdict on the table row it was measured on."""
    by_row = {}
    for (issue, what, wl, tool, _), shape in ((t, s) for t in TARGETS for s in SHAPES_SEEN):
        for r in rows:
            if r["wl"] == wl and r["shape"] == shape and r["tool"] == tool:
                v = [x for x in targets if x[:4] == (issue, what, wl, shape)]
                if v:
                    by_row.setdefault(id(r), []).append(f"{v[0][5]} (#{issue}: {what.split(' [')[0]})")
    for r in rows:
        r["verdict"] = "; ".join(by_row.get(id(r), []))


# ---- output ------------------------------------------------------------------------

def fmt(v, spec, unit=""):
    return "-" if v is None else format(v, spec) + unit


def notes_of(r):
    n = []
    if r.get("missing"):
        return "not installed"
    if r.get("fail"):
        n.append(f"{r['fail']} run(s) failed")
    if r.get("achieved_hz") is not None:
        per = " per CPU-second" if r.get("clock") == "cpu" else ""
        n.append(f"archtrace: {r['achieved_hz']:.0f} Hz{per} achieved, {r.get('missed', 0):.0f} missed")
    if r.get("target_cpu_ratio") is not None:
        n.append(f"target's own CPU {r['target_cpu_ratio']:.2f}x")
    if r.get("us_per_sample") is not None:
        n.append(f"{r['us_per_sample']:.1f} us CPU/sample")
    if r.get("tool_cpu_ms") is not None:
        n.append(f"archtrace CPU {r['tool_cpu_ms']:.0f} ms in all, load and attach included")
    if r.get("tables_mib") is not None:
        n.append(f"tables {r['tables_mib']:.1f} MiB resident")
    if r.get("dump_ms") is not None:
        n.append(f"dump {r['dump_ms']:.0f} ms")
    if r.get("gil_load"):
        n.append("gil_load held %.2f wait %.2f" % r["gil_load"])
    if r.get("gil_wait_s") is not None:
        n.append(f"GIL wait {r['gil_wait_s']:.2f} s")
    if r.get("bpf_data") is False:
        n.append("no eBPF data recorded")
    if r.get("gil_move"):
        m = r["gil_move"]
        n.append("GIL figures vs GIL-only: total wait %.1f%%, hold %.1f%%, switches %.1f%%, worst %.1f%%" % (
            100 * m.get("total wait", 0), 100 * m.get("total hold", 0), 100 * m.get("total switches", 0),
            100 * max(m.values())))
    if r.get("verdict"):
        n.append(r["verdict"])
    return "; ".join(n)


def markdown_table(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    lines = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    return "\n".join(lines)


def results_table(rows):
    head = ["workload", "tool", "shape", "runs", "wall ratio", "CPU ratio", "RSS added", "samples/s",
            "share err", "notes"]
    out = []
    for r in rows:
        if r["tool"].startswith("plain"):
            ratio = f"({r['wall']:.2f} s +-{100 * r['spread']:.0f}%)" if r.get("wall") else "-"
            cpu = f"({r['cpu']:.2f} s)" if r.get("cpu") else "-"
        else:
            ratio, cpu = fmt(r.get("ratio"), ".3f", "x"), fmt(r.get("cpu_ratio"), ".3f", "x")
        out.append([r["wl"], r["tool"], r["shape"], r.get("n", 0), ratio, cpu,
                    fmt(r.get("rss_added"), "+.1f", " MiB"), fmt(r.get("rate"), ".0f"),
                    fmt(r.get("err"), ".3f"), notes_of(r)])
    return markdown_table(head, out)


def targets_table(targets):
    head = ["issue", "target", "workload", "shape", "measured", "verdict"]
    return markdown_table(head, [[f"#{i}", w + (f" ({n})" if n else ""), wl, s, m, v]
                                 for i, w, wl, s, m, v, n in targets])


def version_of(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (r.stdout.strip() or r.stderr.strip()).splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not installed"


def machine_lines(shapes):
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = open("/proc/loadavg").read().split()[:3]
    lines = [f"- machine: {os.cpu_count()} CPUs ({cpu}), {mem:.1f} GiB RAM, Linux {os.uname().release}, "
             f"load average at the end {' '.join(load)}"]
    for shape in shapes:
        py = venv_python(shape)
        if not py:
            continue
        v = subprocess.run([py, "-c", "import sys, os; print(sys.version.split()[0], os.path.realpath(sys._base_executable))"],
                           capture_output=True, text=True).stdout.strip()
        mods = subprocess.run([py, "-c", "import importlib.metadata as m\nfor p in ('memray','gil_load'):\n"
                               "  try: print(p, m.version(p))\n  except Exception: print(p, 'not installed')"],
                              capture_output=True, text=True).stdout.split("\n")
        tools = [version_of([venv_bin(shape, "py-spy") or "py-spy", "--version"]),
                 version_of([venv_bin(shape, "austin") or "austin", "-V"])] + [m for m in mods if m]
        lines.append(f"- {shape}: Python {v}; {', '.join(tools)}")
    lines.append(f"- archtrace: {version_of([ARCHTRACE, '--version'])} (build/, `make`)")
    return lines


def write_md(path, rows, targets, shapes, runs, requests, started):
    kept = ""
    try:
        old = open(path).read()
        if NOTES_MARK in old:
            kept = old.split(NOTES_MARK, 1)[1].lstrip("\n")
    except OSError:
        pass
    took = (time.monotonic() - started) / 60
    with open(path, "w") as f:
        f.write("# Benchmarks\n\n")
        f.write(f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} by `make bench` "
                f"(tools/bench.py, {took:.0f} min).\n\n")
        f.write("\n".join(machine_lines(shapes)) + "\n\n")
        f.write(f"The bench runs {runs} rounds; each round runs every tool once, back to back, in an order "
                "that rotates from round to round. Each ratio (wall, CPU) is the median over the rounds of "
                "the tool's run divided by the baseline's run of the same round, so a slow minute of the "
                "shared host moves both sides of a ratio. "
                "`run` tools start the program and are timed start to exit against `plain`; tools that "
                "attach to a running process (`-p`, `--pid`, dumps) are timed from the go signal to the "
                "exit against `plain, gated`, which starts and releases the program the same way. "
                "CPU ratio: user + system CPU seconds of the tool and the program together (for attaching "
                "tools: the program's plus the tool's; the program's own alone is in the notes) over the plain run's; steadier than wall time when "
                "other jobs load the machine, but blind to waiting (GIL handoffs). "
                "RSS added: the peak RSS of the largest process the bench waits for (the target for "
                "attaching tools) minus the plain run's. samples/s: samples of the workload's busy code per "
                "second of wall time, all threads together (idle stacks left out: with the GIL, about one "
                "thread runs at a time, so this is near the asked rate when nothing is missed). "
                "+-N% after a plain time: half the range of its runs; runs +-N% in a target: half the range "
                "of that tool's per-round ratios, the run-to-run noise; a target whose "
                "ratio is within that of its limit is marked so. share err: |sampled share of hot() - the program's own "
                f"thread_time share| on known-split. lab15 is `python -m labs.lab15` serving {requests} HTTP "
                "requests from a client thread of the bench, then stopped with SIGINT.\n\n")
        f.write("## Targets of the capability issues\n\n")
        f.write(targets_table(targets) + "\n\n")
        f.write("## All measurements\n\n")
        f.write(results_table(rows) + "\n\n")
        f.write(NOTES_MARK + "\n\n")
        f.write(kept or "## Notes\n\n(none yet)\n")


def main():
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=int(env("BENCH_RUNS", "5")))
    ap.add_argument("--shapes", default=env("BENCH_SHAPES", ",".join(DEFAULT_SHAPES)))
    ap.add_argument("--workloads", default=env("BENCH_ONLY", ""))
    ap.add_argument("--tools", default=env("BENCH_TOOLS", ""), help="tool name substrings, comma-separated")
    ap.add_argument("--requests", type=int, default=int(env("BENCH_REQUESTS", "200")))
    ap.add_argument("--md", default="", help="write the tables to this Markdown file (full runs only)")
    a = ap.parse_args()
    if not os.access(ARCHTRACE, os.X_OK):
        sys.exit("bench: build/archtrace missing: run make first")
    started = time.monotonic()
    given = [w for w in a.workloads.split(",") if w]
    names = [w for w in given if w != "extras"]     # extras: start-up and sampler figures
    unknown = [n for n in names if n not in WL]
    if unknown:
        sys.exit(f"bench: unknown workload(s) {', '.join(unknown)}; known: {', '.join(WL)}")
    workloads = [WL[n] for n in names] if given else WORKLOADS
    shapes = [s for s in a.shapes.split(",") if s]
    tool_filter = [t for t in a.tools.split(",") if t]
    runs = max(a.runs, 1)
    rows = measure(shapes, workloads, tool_filter, runs, a.requests)
    extras = not given or "extras" in given
    shapes_311 = [s for s in shapes if s not in VERSION_SHAPES]
    if any(w.name == "alloc-loop" for w in workloads):
        for shape in shapes_311:
            measure_report_time(shape, runs)
            measure_instructions(shape)
    if extras and not tool_filter:
        for shape in shapes_311:
            measure_startup(shape, 6 * runs)
            measure_sampler(shape)
        measure_agent(shapes)
    SHAPES_SEEN[:] = shapes
    targets = check_targets(rows, shapes)
    verdicts(rows, targets)
    print(targets_table(targets))
    print()
    print(results_table(rows))
    full = runs >= 5 and not given and not tool_filter and shapes == DEFAULT_SHAPES
    if a.md and full:
        write_md(a.md, rows, targets, shapes, runs, a.requests, started)
        log(f"wrote {a.md}")
    elif a.md:
        log(f"partial run (BENCH_RUNS/BENCH_ONLY/BENCH_TOOLS/BENCH_SHAPES): {a.md} left as it was")
    log(f"took {(time.monotonic() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
