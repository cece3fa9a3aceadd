#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench.py - archtrace's overhead and accuracy, side by side with the
tools people use today, in one run, alternating, on both build shapes.

For each workload and tool: the median wall-time ratio to the plain run
over >= 5 alternating runs, the peak RSS added (max RSS of the run's
process tree minus the plain run's), samples per second achieved and, for
samplers on the known-split workload, the error of the measured share of
hot() against the program's own thread_time measurement.  Each target from
the issues is checked and marked met / NOT met.  Ratios, not absolute
times: these machines are shared.

    tools/bench.py [--runs N] [--shapes static,shared] [--only SUBSTR] [--md FILE]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "tools", "bench")
ARCHTRACE = os.path.join(ROOT, "build", "archtrace")


def venv_python(shape):
    for name in (f"bench-{shape}", shape):
        p = os.path.join(ROOT, ".venv", name, "bin", "python")
        if os.path.exists(p):
            return p
    return "/usr/bin/python3.11" if shape == "static" else shutil.which("python3.11")


def venv_bin(shape, tool):
    p = os.path.join(ROOT, ".venv", f"bench-{shape}", "bin", tool)
    return p if os.path.exists(p) else shutil.which(tool)


# ---- workloads ---------------------------------------------------------------

WORKLOADS = {
    "alloc-loop": ["alloc_loop.py"],
    "threads-2": ["threads_cpu.py", "2", "10000000"],
    "threads-1": ["threads_cpu.py", "1", "5000000"],
    "threads-4": ["threads_cpu.py", "4", "10000000"],
    "known-split": ["known_split.py", "40"],
    "imports": ["imports_heavy.py"],
    "lab04": ["@labs/lab04.py"],
    "lab08": ["@labs/lab08.py"],
    "lab02": ["@labs/lab02.py"],
}


def workload_argv(name):
    args = WORKLOADS[name]
    first = args[0]
    path = os.path.join(ROOT, first[1:]) if first.startswith("@") else os.path.join(BENCH, first)
    return [path] + args[1:]


# ---- tools -------------------------------------------------------------------
# Each tool: (name, workloads it applies to, argv builder, target or None).
# A target is (max ratio, description).

def at(*opts):
    def build(py, wl, tmp):
        return [ARCHTRACE, "-q", "--json", os.path.join(tmp, "at.json"), *opts, "--", py, *wl]
    return build


def plain(py, wl, tmp):
    return [py, *wl]


def xopt(opt):
    return lambda py, wl, tmp: [py, "-X", opt, *wl]


def pyspy(rate):
    def build(py, wl, tmp):
        exe = venv_bin(SHAPE, "py-spy")
        return exe and [exe, "record", "-r", str(rate), "-f", "raw", "-o",
                        os.path.join(tmp, "pyspy.txt"), "--", py, *wl]
    return build


def austin(interval_us):
    def build(py, wl, tmp):
        exe = venv_bin(SHAPE, "austin")
        return exe and [exe, "-i", f"{interval_us}us", "-o", os.path.join(tmp, "austin.txt"), py, *wl]
    return build


def memray(*opts):
    def build(py, wl, tmp):
        if subprocess.run([py, "-c", "import memray"], capture_output=True).returncode:
            return None
        return [py, "-m", "memray", "run", "-q", "-f", "-o", os.path.join(tmp, "m.bin"), *opts, *wl]
    return build


ALLOC = ["alloc-loop", "lab04"]
TOOLS = [
    ("plain", None, plain, None),
    ("archtrace (all, 100 Hz)", ["alloc-loop", "threads-2", "imports", "lab04", "lab08", "lab02"],
     at(), None),
    ("archtrace alloc exact", ALLOC, at("--no-gil", "--no-imports", "--no-sample"), (1.5, "<= 1.5x")),
    ("archtrace alloc --alloc-sample 65536", ALLOC,
     at("--no-gil", "--no-imports", "--no-sample", "--alloc-sample", "65536"), (1.15, "<= 1.15x")),
    ("archtrace alloc --alloc-depth 25", ALLOC,
     at("--no-gil", "--no-imports", "--no-sample", "--alloc-depth", "25"), (3.0, "<= 3x")),
    ("tracemalloc (1 frame)", ALLOC, xopt("tracemalloc=1"), None),
    ("tracemalloc (25 frames)", ["alloc-loop"], xopt("tracemalloc=25"), None),
    ("memray run", ALLOC, memray(), None),
    ("memray --trace-python-allocators", ALLOC, memray("--trace-python-allocators"), None),
    ("archtrace gil only", ["threads-2", "lab08"], at("--no-alloc", "--no-imports", "--no-sample"),
     (1.03, "<= 1.03x")),
    ("archtrace gil only (1 thread)", ["threads-1"], at("--no-alloc", "--no-imports", "--no-sample"),
     (1.02, "unmeasurable (<= 1.02x)")),
    ("archtrace imports only", ["imports", "lab02"], at("--no-alloc", "--no-gil", "--no-sample"),
     (1.3, "<= 1.3x")),
    ("-X importtime", ["imports", "lab02"], xopt("importtime"), None),
    ("archtrace sampler 1 kHz", ["known-split", "threads-4"],
     at("--no-alloc", "--no-gil", "--no-imports", "--rate", "1000"), (1.02, "<= 1.02x")),
    ("archtrace sampler 10 kHz", ["known-split", "threads-4"],
     at("--no-alloc", "--no-gil", "--no-imports", "--rate", "10000"), (1.10, "<= 1.10x")),
    ("py-spy record 1 kHz", ["known-split", "threads-4"], pyspy(1000), None),
    ("austin 1 kHz", ["known-split", "threads-4"], austin(1000), None),
]

SHAPE = "static"


# ---- measuring ---------------------------------------------------------------

def run_once(argv):
    """Wall seconds and peak RSS (KiB) of the whole process tree."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss, proc.returncode, out.decode(errors="replace")


def share_from_frames(stacks):
    """Share of hot() among samples that are in hot() or cold()."""
    hot = cold = 0
    for frames, count in stacks:
        names = " ".join(frames)
        if re.search(r"\bhot\b", names):
            hot += count
        elif re.search(r"\bcold\b", names):
            cold += count
    return hot / (hot + cold) if hot + cold else None


def sampler_stats(tool, tmp):
    """(samples per second, list of (frames, count)) from a sampler's output."""
    if tool.startswith("archtrace"):
        try:
            d = json.load(open(os.path.join(tmp, "at.json")))
        except (OSError, ValueError):
            return None, []
        for p in d.get("processes", []):
            s = p.get("samples")
            if s:
                dur = s.get("duration_s") or 0
                stacks = [(st.get("frames", []), st.get("count", 0)) for st in s.get("stacks", [])]
                return (s.get("count", 0) / dur if dur else None), stacks
        return None, []
    path = os.path.join(tmp, "pyspy.txt" if tool.startswith("py-spy") else "austin.txt")
    stacks = []
    try:
        for line in open(path, errors="replace"):
            line = line.rstrip()
            if not line or line.startswith("#"):
                continue
            frames, _, count = line.rpartition(" ")
            if count.isdigit():
                stacks.append((frames.split(";"), int(count)))
    except OSError:
        pass
    return None, stacks


def measure(workloads, runs, shapes, only):
    results = []
    for shape in shapes:
        global SHAPE
        SHAPE = shape
        py = venv_python(shape)
        if not py:
            print(f"bench: no {shape} python3.11, skipped", file=sys.stderr)
            continue
        for wl in workloads:
            tools = [t for t in TOOLS if t[1] is None or wl in t[1]]
            if only:
                tools = [t for t in tools if t[0] == "plain" or only in t[0]]
            rows = {t[0]: {"wall": [], "rss": [], "rate": [], "err": [], "fail": 0} for t in tools}
            for r in range(runs):
                for name, _, build, _ in tools:
                    tmp = tempfile.mkdtemp(prefix="archtrace-bench.")
                    argv = build(py, workload_argv(wl), tmp)
                    if not argv:
                        rows[name]["fail"] = -1
                        shutil.rmtree(tmp, ignore_errors=True)
                        continue
                    wall, rss, rc, out = run_once(argv)
                    row = rows[name]
                    if rc != 0:
                        row["fail"] += 1
                    row["wall"].append(wall)
                    row["rss"].append(rss)
                    m = re.search(r"SPLIT hot=([0-9.]+)", out)
                    if wl == "known-split" and m and name != "plain":
                        rate, stacks = sampler_stats(name, tmp)
                        share = share_from_frames(stacks)
                        if rate:
                            row["rate"].append(rate)
                        if share is not None:
                            row["err"].append(abs(share - float(m.group(1))))
                    shutil.rmtree(tmp, ignore_errors=True)
                print(f"bench: {shape} {wl} run {r + 1}/{runs}", file=sys.stderr)
            base = rows["plain"]
            for name, _, _, target in tools:
                row = rows[name]
                if row["fail"] == -1 or not row["wall"]:
                    results.append((wl, name, shape, None, None, None, None, "not installed"))
                    continue
                ratio = statistics.median(row["wall"]) / statistics.median(base["wall"])
                rss_added = (max(row["rss"]) - max(base["rss"])) / 1024.0
                rate = statistics.median(row["rate"]) if row["rate"] else None
                err = statistics.median(row["err"]) if row["err"] else None
                verdict = ""
                if row["fail"]:
                    verdict = f"{row['fail']} run(s) failed"
                elif target:
                    ok = ratio <= target[0]
                    verdict = f"{'met' if ok else 'NOT met'} ({target[1]})"
                if err is not None and name.startswith("archtrace"):
                    verdict += f"; accuracy {'met' if err <= 0.05 else 'NOT met'} (+-0.05)"
                results.append((wl, name, shape, ratio, rss_added, rate, err, verdict))
    return results


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(results):
    head = ["workload", "tool", "shape", "wall ratio", "RSS added MiB", "samples/s", "share err", "target"]
    rows = [[wl, name, shape, fmt(ratio, ".2f"), fmt(rss, ".1f"), fmt(rate, ".0f"), fmt(err, ".3f"), v]
            for wl, name, shape, ratio, rss, rate, err, v in results]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join(lines)


def machine_shape():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Linux {os.uname().release}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--shapes", default="static,shared")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--only", default="", help="only tools whose name contains this")
    ap.add_argument("--md", default="", help="also write the table to this Markdown file")
    a = ap.parse_args()
    if not os.access(ARCHTRACE, os.X_OK):
        sys.exit("bench: build/archtrace missing: run make first")
    wls = [w for w in a.workloads.split(",") if w in WORKLOADS and os.path.exists(workload_argv(w)[0])]
    results = measure(wls, max(a.runs, 1), a.shapes.split(","), a.only)
    text = table(results)
    print(text)
    if a.md:
        with open(a.md, "w") as f:
            f.write("# Benchmarks\n\n")
            f.write(f"Measured {time.strftime('%Y-%m-%d')} on {machine_shape()} by `make bench` "
                    f"(tools/bench.py, median of {a.runs} alternating runs per tool; ratios to the plain "
                    "run of the same interpreter; RSS added is the peak RSS of the run's process tree "
                    "minus the plain run's).\n\n")
            f.write(text + "\n")


if __name__ == "__main__":
    main()
