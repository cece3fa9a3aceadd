# SPDX-License-Identifier: MIT
"""check.py - the questions test_realworld.c asks archtrace's JSON report.

Usage: python3 check.py REPORT.json DIR CHECK [ARGS...]

DIR is the test's temp dir (side files the programs wrote).  Prints "ok"
and exits 0, or prints what is wrong and exits 1.  Checks:

  pytest_toolz    toolz's modules imported from the unpacked sdist, its test
                  modules through pytest's assertion-rewriting hook
  procs           every pid in DIR/ids (mp_starts.py) is a process of the
                  report with the parent pid the child itself saw, complete;
                  the forkserver is one too, a child of the main process
  asyncio         asyncio imported, the tasks' memory seen, stacks sampled
  threads64 N     N allocating threads: KEEP's blocks at the marker, GIL
                  figures for every thread under its threading name
  close_fds       after closing every fd: the marker and the exit recorded
  forks N         N forked children of the main process, each complete
  numpy_python    np_alloc.py --no-tracemalloc: each EXPECT line (DIR/out)
                  in the marker's Python top with its arrays' bytes (within
                  1%), and not in the native top
  ran SCRIPT      a complete process ran SCRIPT, its allocations and
                  imports recorded
"""
import json
import os
import sys


def fail(msg):
    print(msg)
    sys.exit(1)


def need(cond, msg):
    if not cond:
        fail(msg)


def imported(procs):
    return {i["module"]: i for p in procs for i in (p.get("imports") or [])}


def main_proc(procs, script):
    mine = [p for p in procs if any(script in a for a in p["argv"])]
    need(mine, "no process ran %s: %s" % (script, [p["argv"] for p in procs]))
    return mine[0]


def snapshot(proc, label):
    alloc = proc.get("alloc") or fail("no allocation data for %d" % proc["pid"])
    snaps = [s for s in alloc["snapshots"] if s["label"] == label]
    need(snaps, "no snapshot %r: %s" % (label, [s["label"] for s in alloc["snapshots"]]))
    return snaps[0]


def line_of(script, tag):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), script)
    return [i for i, t in enumerate(open(path), 1) if "# " + tag in t][0]


def check_pytest_toolz(report, procs, _dir):
    mods = imported(procs)
    for m in ("pytest", "toolz", "toolz.itertoolz", "toolz.functoolz", "toolz.dicttoolz", "toolz.curried"):
        need(m in mods, "%s not among the imports" % m)
    origin = mods["toolz"]["origin"] or ""
    need(origin.endswith("build/realworld/toolz-1.0.0/toolz/__init__.py"),
         "toolz came from %s, not the unpacked sdist" % origin)
    tests = [m for m in mods if m.startswith("test_")]
    need(len(tests) >= 8, "toolz's test modules: %s" % tests)
    hooks = {mods[m]["loader"] for m in tests}
    need(hooks == {"AssertionRewritingHook"}, "test modules loaded by %s" % hooks)


def check_procs(report, procs, dir_):
    by_pid = {p["pid"]: p for p in procs}
    rows = [line.split() for line in open(os.path.join(dir_, "ids"))]
    main = int(rows[0][1])
    need(main in by_pid, "the main process %d is not in the report: %s" % (main, sorted(by_pid)))
    kinds = set()
    for kind, pid, ppid in rows[1:]:
        pid, ppid = int(pid), int(ppid)
        need(pid in by_pid, "%s child %d is not in the report (have %s)" % (kind, pid, sorted(by_pid)))
        need(by_pid[pid]["ppid"] == ppid, "%s child %d: report says parent %s, it saw %d"
             % (kind, pid, by_pid[pid]["ppid"], ppid))
        kinds.add(kind)
        if kind == "forkserver":
            need(ppid in by_pid, "the forkserver %d is not in the report" % ppid)
            need(by_pid[ppid]["ppid"] == main, "the forkserver's parent is %s, not %d" % (by_pid[ppid]["ppid"], main))
            need(any("forkserver" in a for a in by_pid[ppid]["argv"]), "forkserver argv %s" % by_pid[ppid]["argv"])
        else:
            need(ppid == main, "%s child %d's parent %d is not the main process" % (kind, pid, ppid))
        need(by_pid[pid]["forked"] == (kind != "spawn"), "%s child %d forked=%s" % (kind, pid, by_pid[pid]["forked"]))
        need(by_pid[pid]["complete"], "%s child %d: its exit was not recorded" % (kind, pid))
    need(kinds == {"fork", "spawn", "forkserver", "pool"}, "children seen: %s" % kinds)


def check_asyncio(report, procs, _dir):
    p = main_proc(procs, "aio_tasks.py")
    need("asyncio" in imported([p]), "asyncio not imported")
    need(p["alloc"] and p["alloc"]["peak_bytes"] > 5_000_000, "10 000 tasks' memory: %s" % (p["alloc"] or {}).get("peak_bytes"))
    need(p["samples"] and p["samples"]["count"] > 0, "no samples")


def check_threads64(report, procs, _dir, n):
    n = int(n)
    p = main_proc(procs, "threads64.py")
    snap = snapshot(p, "threads64")
    keep = line_of("threads64.py", "KEEP")
    rows = [t for t in snap["top"] if t["file"].endswith("threads64.py") and t["line"] == keep]
    need(rows, "KEEP line %d not in the snapshot's top: %s" % (keep, snap["top"]))
    want = n * 100 * 1033
    need(abs(rows[0]["size"] - want) <= 0.05 * want and rows[0]["count"] >= n * 100,
         "KEEP: %s, expected ~%d bytes in >= %d blocks" % (rows[0], want, n * 100))
    threads = (p["gil"] or {}).get("threads") or []
    names = {t["name"] for t in threads}
    workers = [n for n in names if n and n.startswith("alloc-")]
    need(len(workers) == n, "GIL figures for %d of the %d threads: %s" % (len(workers), n, sorted(names)))


def check_close_fds(report, procs, _dir):
    p = main_proc(procs, "close_fds.py")
    snap = snapshot(p, "closed")
    line = line_of("close_fds.py", "AFTER_CLOSE")
    rows = [t for t in snap["top"] if t["file"].endswith("close_fds.py") and t["line"] == line]
    need(rows and rows[0]["size"] >= 2000 * 5033 * 0.95, "AFTER_CLOSE line %d: %s" % (line, snap["top"]))
    need(p["complete"], "the process is not complete (its exit was not recorded)")
    need(report["exit_status"] == 7, "exit_status %s" % report["exit_status"])


def check_forks(report, procs, _dir, n):
    root = procs[0]
    kids = [p for p in procs if p["forked"] and p["ppid"] == root["pid"]]
    need(len(kids) == int(n), "%d forked children of %d, expected %s" % (len(kids), root["pid"], n))
    incomplete = [p["pid"] for p in kids if not p["complete"]]
    need(not incomplete, "children not complete: %s" % incomplete)


def check_numpy_python(report, procs, dir_):
    snap = snapshot(main_proc(procs, "np_alloc.py"), "numpy")
    top = {(t["file"], t["line"]): t["size"] for t in snap["top"]}
    native = {(t["file"], t["line"]): t["size"] for t in snap["native_top"]}
    want = [line.split()[1:] for line in open(os.path.join(dir_, "out")) if line.startswith("EXPECT")]
    need(len(want) == 4, "np_alloc.py printed %d EXPECT lines" % len(want))
    for where, size in want:
        f, line = where.rsplit(":", 1)
        key, size = (f, int(line)), int(size[5:])
        got = top.get(key, 0)
        need(abs(got - size) <= 0.01 * size, "%s: %d bytes in the Python top, the arrays hold %d (native top: %d)"
             % (where, got, size, native.get(key, 0)))
        need(native.get(key, 0) < 0.01 * size, "%s: still %d bytes of native memory" % (where, native.get(key, 0)))


def check_ran(report, procs, _dir, script):
    p = main_proc(procs, script)
    need(p["complete"], "%s: not complete" % script)
    need(p["alloc"] and p["alloc"]["peak_bytes"] > 0, "%s: no allocation data" % script)
    need(p["imports"], "%s: no imports recorded" % script)


def main():
    report = json.load(open(sys.argv[1]))
    procs = report["processes"]
    need(procs, "no process in the report")
    globals()["check_" + sys.argv[3]](report, procs, sys.argv[2], *sys.argv[4:])
    print("ok")


if __name__ == "__main__":
    main()
