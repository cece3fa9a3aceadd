#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench_agent.py - what `archtrace agent` costs on a host of many Python
processes (issue 20's budget), one JSON line per figure.

    tools/bench_agent.py ARCHTRACE PY[,PY...] [N] [SECONDS]

Starts N (default 50) tools/bench/service.py processes, spread over the
interpreters given (a service that works a few ms every 50 ms), then the
agent with --metrics, --profiles (every 5 s) and the default 100 Hz, and
a scrape of /metrics every second as Prometheus would.  Measured: the
time until every service is watched, then over SECONDS (default 20) the
agent's CPU (utime + stime from /proc, as % of one core), its resident
memory at the end and its peak (VmHWM), the scrape latency (median),
the services' own CPU with and without the agent (the same services,
the SECONDS before the agent started) as the ratio of the two, what a
process the agent does not watch pays per call of a function it probes
host-wide (pthread_cond_timedwait in libc, from a small C program: ns a
call without and with the agent), and how long the agent takes to
detach from all of them and exit on SIGINT.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICE = os.path.join(ROOT, "tools", "bench", "service.py")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


# A process that is not Python: the agent's libc uprobes still fire in it.
COND_LOOP = r'''
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
int main(void)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    struct timespec past = { 1, 0 }, t0, t1;
    int n = 200000, bad = 0;
    pthread_mutex_lock(&m);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);   /* its own CPU: other load aside */
    for (int i = 0; i < n; i++)
        bad += pthread_cond_timedwait(&c, &m, &past) != ETIMEDOUT;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    printf("%.1f %d\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n, bad);
    return 0;
}
'''


def cond_loop_ns(binary):
    """CPU ns per pthread_cond_timedwait call (already timed out: a futex
    call that returns at once), best of 5."""
    best = None
    for _ in range(5):
        out = subprocess.run([binary], capture_output=True, text=True, check=True).stdout.split()
        best = float(out[0]) if best is None else min(best, float(out[0]))
    return best


def build_cond_loop(tmp):
    src, binary = os.path.join(tmp, "cond_loop.c"), os.path.join(tmp, "cond_loop")
    with open(src, "w") as f:
        f.write(COND_LOOP)
    subprocess.run(["cc", "-O2", "-o", binary, src, "-lpthread"], check=True)
    return binary


def emit(metric, value, **extra):
    print(json.dumps({"metric": metric, "value": value, **extra}), flush=True)


def start_services(pys, n, tmp, seconds):
    procs = []
    for i in range(n):
        ready = os.path.join(tmp, f"s{i}.ready")
        procs.append((subprocess.Popen([pys[i % len(pys)], SERVICE, ready, str(seconds)]), ready))
    deadline = time.monotonic() + 60
    while not all(os.path.exists(r) for _, r in procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p, _ in procs]


def services_cpu(procs):
    return sum(cpu_s(p.pid) for p in procs if p.poll() is None)


def scrape(addr):
    t0 = time.monotonic()
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as r:
        text = r.read().decode()
    return text, time.monotonic() - t0


def watched(text):
    m = re.search(r"^archtrace_agent_processes_watched (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0


def start_agent(archtrace, tmp):
    log = open(os.path.join(tmp, "agent.log"), "w+")
    agent = subprocess.Popen([archtrace, "agent", "-q", "--metrics", "127.0.0.1:0", "--profiles",
                              os.path.join(tmp, "profiles"), "--interval", "5"], stderr=log)
    for _ in range(100):
        log.seek(0)
        m = re.search(r"metrics at http://([^/]+)/metrics", log.read())
        if m:
            return agent, m.group(1)
        time.sleep(0.1)
    agent.kill()
    sys.exit("bench_agent: the agent did not start")


def main():
    archtrace, pys = sys.argv[1], sys.argv[2].split(",")
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 20.0
    with tempfile.TemporaryDirectory() as tmp:
        procs = start_services(pys, n, tmp, 3 * seconds + 120)
        try:
            cond_loop = build_cond_loop(tmp)
            before = services_cpu(procs)
            time.sleep(seconds)
            alone = services_cpu(procs) - before
            cond_alone = cond_loop_ns(cond_loop)
            t0 = time.monotonic()
            agent, addr = start_agent(archtrace, tmp)
            while time.monotonic() - t0 < 60 and watched(scrape(addr)[0]) < n:
                time.sleep(0.2)
            attach_s = time.monotonic() - t0
            emit("agent_attach_all_s", round(attach_s, 2), processes=n)
            cond_watched = cond_loop_ns(cond_loop)
            emit("agent_unwatched_cond_wait_ns", round(cond_watched - cond_alone, 1), processes=n,
                 without=cond_alone, during=cond_watched)
            a0, s0, w0, lat = cpu_s(agent.pid), services_cpu(procs), time.monotonic(), []
            while time.monotonic() - w0 < seconds:
                lat.append(scrape(addr)[1])
                time.sleep(1)
            wall = time.monotonic() - w0
            emit("agent_cpu_pct", round(100 * (cpu_s(agent.pid) - a0) / wall, 2), processes=n, seconds=round(wall, 1))
            emit("agent_rss_mb", round(status_kb(agent.pid, "VmRSS") / 1024, 1), processes=n)
            emit("agent_peak_rss_mb", round(status_kb(agent.pid, "VmHWM") / 1024, 1), processes=n)
            lat.sort()
            emit("agent_scrape_ms", round(1000 * lat[len(lat) // 2], 1), processes=n)
            watched_cpu = services_cpu(procs) - s0
            emit("agent_services_cpu_ratio", round(watched_cpu / alone, 3) if alone > 0 else None, processes=n)
            t0 = time.monotonic()
            agent.send_signal(2)
            try:
                agent.wait(timeout=600)
                emit("agent_exit_s", round(time.monotonic() - t0, 1), processes=n)
            except subprocess.TimeoutExpired:
                agent.kill()
                emit("agent_exit_s", None, processes=n, error="still detaching after 600 s")
        finally:
            for p in procs:
                p.kill()
            for p in procs:
                p.wait()


if __name__ == "__main__":
    main()
