"""Lab 11 - a reliable task queue: first in memory, then on a real Redis server.

What the lab shows:

  1. tasks serialised as JSON, not pickle: a payload is data that a worker
     validates, never code that unpickling would run (lab 14 shows why);
     a malformed payload goes straight to the dead-letter queue;
  2. exponential backoff with jitter: the delay before retry n is
     min(cap, base * 2**(n-1)), and "equal jitter" picks it uniformly in
     [delay/2, delay], so failing clients do not retry in lock-step;
  3. one queue interface with two implementations:
       MemoryQueue - a deque, a heap of delayed retries and a condition
                     variable (no server, for tests);
       RedisQueue  - lists, a sorted set and a Lua script on redis-server;
  4. reliable dequeue: a worker takes a task with BLMOVE, which moves it
     atomically from the ready list to a processing list; it is removed from
     there only when the worker acks (result stored) or fails it (retry
     scheduled or dead-lettered), so a worker that crashes mid-task leaves
     the task in "processing", from where recovery puts it back;
  5. a pool of worker threads, plus a scheduler thread that moves due
     retries back to the ready list;
  6. a dead-letter queue after max_attempts failures, and results kept with
     a time-to-live.

The same workload runs on both queues; at the end every task has a result
or is in the dead-letter queue (none lost, none twice), every queue is
empty, and the results expire after their TTL (1 s).  For Redis the lab
starts its own redis-server on 127.0.0.1 at a free port, with persistence
off, and stops it at the end, also on failure.

Needs the redis Python package (labs/requirements.txt) and the redis-server
program (Debian package redis-server); `make deps` installs both.  Run it
from anywhere:

    .venv/shared/bin/python labs/lab11.py

The last line is "VERIFY lab11: ... ok" (exit status 0) or a line with FAIL
and the reason (non-zero exit status).
"""

import collections
import contextlib
import dataclasses
import heapq
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

try:
    import redis
except ImportError:
    print("FAIL lab11: the redis Python package is not installed for %s "
          "(run `make deps`, then use .venv/<shape>/bin/python)" % sys.executable)
    sys.exit(1)

FAILURES = []


def heading(title):
    print()
    print("== " + title + " " + "=" * max(0, 66 - len(title)))


def check(condition, what):
    """Record a failed check; the VERIFY line at the end reports them."""
    if not condition:
        FAILURES.append(what)
        print("  !! check failed: " + what)
    return condition


# --------------------------------------------------------------------------
# Tasks as JSON
# --------------------------------------------------------------------------

class MalformedTask(ValueError):
    """A payload that is not a valid task: dead-lettered, never executed."""


class PermanentError(Exception):
    """A failure that retrying cannot fix: dead-lettered at once."""


@dataclasses.dataclass
class Task:
    name: str
    args: dict
    id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex[:12])
    attempt: int = 0          # failed attempts so far
    max_attempts: int = 4

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw):
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise MalformedTask("not JSON: %s" % exc) from None
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) != set(fields):
            raise MalformedTask("wrong fields: %r" % (sorted(data) if isinstance(data, dict) else data))
        for name, kind in fields.items():
            if not isinstance(data[name], kind) or isinstance(data[name], bool):
                raise MalformedTask("field %r is not %s" % (name, kind.__name__))
        return cls(**data)

    def retried(self):
        return dataclasses.replace(self, attempt=self.attempt + 1)


# --------------------------------------------------------------------------
# Backoff
# --------------------------------------------------------------------------

class Backoff:
    """delay(n) = min(cap, base * 2**(n-1)); equal jitter: uniform in [d/2, d]."""

    def __init__(self, base=0.02, cap=0.2, rng=None):
        self.base, self.cap = base, cap
        self.rng = rng or random.Random()

    def ceiling(self, attempt):
        return min(self.cap, self.base * 2 ** (attempt - 1))

    def delay(self, attempt):
        d = self.ceiling(attempt)
        return d / 2 + self.rng.uniform(0, d / 2)


# --------------------------------------------------------------------------
# Queue 1: in memory
# --------------------------------------------------------------------------

class OffsetClock:
    """time.time() plus an offset the lab can advance (to expire results)."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self):
        return time.time() + self.offset

    def advance(self, seconds):
        self.offset += seconds


class MemoryQueue:
    """The queue interface on a deque, a heap and a dict, guarded by one lock."""

    kind = "memory"

    def __init__(self, backoff, result_ttl=1.0, clock=time.time):
        self.backoff, self.result_ttl, self.clock = backoff, result_ttl, clock
        self.cond = threading.Condition()
        self.ready = collections.deque()   # raw JSON; taken from the right
        self.processing = []               # raw JSON held by a worker
        self.delayed = []                  # heap of (ready_at, seq, raw)
        self.dead = []                     # dead-letter records (JSON)
        self.results = {}                  # task id -> (expires_at, JSON)
        self.seq = 0

    def enqueue(self, raw):
        with self.cond:
            self.ready.appendleft(raw)
            self.cond.notify()

    def reserve(self, timeout):
        """Move one task from ready to processing; None after timeout."""
        with self.cond:
            if not self.ready:
                self.cond.wait(timeout)
            if not self.ready:
                return None
            raw = self.ready.pop()
            self.processing.append(raw)
            return raw

    def ack(self, raw, task, value):
        record = json.dumps({"id": task.id, "value": value, "attempts": task.attempt + 1})
        with self.cond:
            self.results[task.id] = (self.clock() + self.result_ttl, record)
            self.processing.remove(raw)

    def fail(self, raw, task, error, permanent=False):
        """Schedule a retry with backoff, or dead-letter; returns the delay or None."""
        with self.cond:
            self.processing.remove(raw)
            if task is None or permanent or task.attempt + 1 >= task.max_attempts:
                self.dead.append(dead_record(raw, task, error))
                return None
            delay = self.backoff.delay(task.attempt + 1)
            self.seq += 1
            heapq.heappush(self.delayed, (self.clock() + delay, self.seq, task.retried().to_json()))
            return delay

    def promote_due(self):
        moved = 0
        with self.cond:
            while self.delayed and self.delayed[0][0] <= self.clock():
                _, _, raw = heapq.heappop(self.delayed)
                self.ready.appendleft(raw)
                moved += 1
            if moved:
                self.cond.notify_all()
        return moved

    def requeue_processing(self):
        """Crash recovery: put every task held by a (dead) worker back in front."""
        with self.cond:
            n = len(self.processing)
            self.ready.extend(reversed(self.processing))
            self.processing.clear()
            self.cond.notify_all()
            return n

    def get_result(self, task_id):
        with self.cond:
            entry = self.results.get(task_id)
            if entry is None or entry[0] <= self.clock():
                self.results.pop(task_id, None)
                return None
            return json.loads(entry[1])

    def result_ttl_left(self, task_id):
        with self.cond:
            entry = self.results.get(task_id)
            return None if entry is None else entry[0] - self.clock()

    def dead_letters(self):
        with self.cond:
            return [json.loads(d) for d in self.dead]

    def lengths(self):
        with self.cond:
            return {"ready": len(self.ready), "processing": len(self.processing),
                    "delayed": len(self.delayed), "dead": len(self.dead)}

    def peek_processing(self):
        with self.cond:
            return list(self.processing)

    def expire_results(self, seconds):
        """Let `seconds` pass for the results (the clock is injectable)."""
        self.clock.advance(seconds)


def dead_record(raw, task, error):
    return json.dumps({"id": task.id if task else None, "error": error,
                       "attempts": task.attempt + 1 if task else 0, "payload": raw})


# --------------------------------------------------------------------------
# Queue 2: Redis
# --------------------------------------------------------------------------

# Move up to ARGV[2] retries whose time (score) has come from the delayed
# sorted set to the ready list, atomically: no task can be moved twice.
PROMOTE_LUA = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, raw in ipairs(due) do
    redis.call('ZREM', KEYS[1], raw)
    redis.call('LPUSH', KEYS[2], raw)
end
return #due
"""


class RedisQueue:
    """The queue interface on Redis keys <prefix>:ready|processing|delayed|dead."""

    kind = "redis"

    def __init__(self, client, backoff, result_ttl=1.0, prefix="lab11"):
        self.r, self.backoff, self.result_ttl = client, backoff, result_ttl
        self.k = {name: "%s:%s" % (prefix, name)
                  for name in ("ready", "processing", "delayed", "dead")}
        self.prefix = prefix
        self.promote_script = client.register_script(PROMOTE_LUA)

    def result_key(self, task_id):
        return "%s:result:%s" % (self.prefix, task_id)

    def enqueue(self, raw):
        self.r.lpush(self.k["ready"], raw)

    def reserve(self, timeout):
        # BLMOVE ready processing RIGHT LEFT: pop the oldest, and in the same
        # atomic step push it on the processing list.
        return self.r.blmove(self.k["ready"], self.k["processing"], timeout, "RIGHT", "LEFT")

    def ack(self, raw, task, value):
        record = json.dumps({"id": task.id, "value": value, "attempts": task.attempt + 1})
        with self.r.pipeline(transaction=True) as p:  # MULTI ... EXEC
            p.set(self.result_key(task.id), record, px=int(self.result_ttl * 1000))
            p.lrem(self.k["processing"], 1, raw)
            p.execute()

    def fail(self, raw, task, error, permanent=False):
        with self.r.pipeline(transaction=True) as p:
            p.lrem(self.k["processing"], 1, raw)
            if task is None or permanent or task.attempt + 1 >= task.max_attempts:
                p.lpush(self.k["dead"], dead_record(raw, task, error))
                delay = None
            else:
                delay = self.backoff.delay(task.attempt + 1)
                p.zadd(self.k["delayed"], {task.retried().to_json(): time.time() + delay})
            p.execute()
        return delay

    def promote_due(self):
        return self.promote_script(keys=[self.k["delayed"], self.k["ready"]],
                                   args=[repr(time.time()), 100])

    def requeue_processing(self):
        n = 0
        while self.r.lmove(self.k["processing"], self.k["ready"], "RIGHT", "RIGHT") is not None:
            n += 1
        return n

    def get_result(self, task_id):
        raw = self.r.get(self.result_key(task_id))
        return None if raw is None else json.loads(raw)

    def result_ttl_left(self, task_id):
        ms = self.r.pttl(self.result_key(task_id))
        return None if ms < 0 else ms / 1000.0

    def dead_letters(self):
        return [json.loads(d) for d in reversed(self.r.lrange(self.k["dead"], 0, -1))]

    def lengths(self):
        return {"ready": self.r.llen(self.k["ready"]),
                "processing": self.r.llen(self.k["processing"]),
                "delayed": self.r.zcard(self.k["delayed"]),
                "dead": self.r.llen(self.k["dead"])}

    def peek_processing(self):
        return self.r.lrange(self.k["processing"], 0, -1)

    def expire_results(self, seconds):
        """Results expire on the server: just wait."""
        time.sleep(seconds)


# --------------------------------------------------------------------------
# The handlers and the worker pool
# --------------------------------------------------------------------------

def h_square(args, task):
    return args["x"] * args["x"]


def h_flaky(args, task):
    # Fails its first `fail_times` attempts, like a service that is briefly down.
    if task.attempt < args["fail_times"]:
        raise ConnectionError("flaky: attempt %d failed" % (task.attempt + 1))
    return "ok after %d retries" % task.attempt


def h_poison(args, task):
    raise ValueError("poison: cannot process %r" % (args,))


HANDLERS = {"square": h_square, "flaky": h_flaky, "poison": h_poison}


class WorkerPool:
    """N worker threads and one scheduler thread over a queue."""

    def __init__(self, queue, handlers, workers=4):
        self.q, self.handlers, self.n = queue, handlers, workers
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.executions = collections.Counter()      # task id -> handler runs
        self.starts = collections.defaultdict(list)  # task id -> start times
        self.delays = collections.defaultdict(list)  # task id -> backoff chosen
        self.finished = 0                            # acked or dead-lettered
        self.threads = []

    def start(self):
        self.threads = [threading.Thread(target=self.scheduler, name="scheduler")]
        self.threads += [threading.Thread(target=self.worker, name="worker-%d" % i)
                         for i in range(self.n)]
        for t in self.threads:
            t.start()

    def scheduler(self):
        while not self.stop.is_set():
            self.q.promote_due()
            self.stop.wait(0.005)

    def worker(self):
        while not self.stop.is_set():
            raw = self.q.reserve(timeout=0.1)
            if raw is None:
                continue
            try:
                task = Task.from_json(raw)
            except MalformedTask as exc:
                self.q.fail(raw, None, "malformed: %s" % exc)
                self.done()
                continue
            with self.lock:
                self.executions[task.id] += 1
                self.starts[task.id].append(time.monotonic())
            handler = self.handlers.get(task.name)
            try:
                if handler is None:
                    raise PermanentError("no handler for %r" % task.name)
                value = handler(task.args, task)
            except PermanentError as exc:
                self.q.fail(raw, task, str(exc), permanent=True)
                self.done()
            except Exception as exc:
                delay = self.q.fail(raw, task, "%s: %s" % (type(exc).__name__, exc))
                if delay is None:
                    self.done()
                else:
                    with self.lock:
                        self.delays[task.id].append(delay)
            else:
                self.q.ack(raw, task, value)
                self.done()

    def done(self):
        with self.lock:
            self.finished += 1

    def run_until(self, total, deadline_s=20.0):
        """Start, wait until `total` tasks finished (or the deadline), stop."""
        self.start()
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < deadline_s:
                with self.lock:
                    if self.finished >= total:
                        break
                time.sleep(0.01)
        finally:
            self.stop.set()
            for t in self.threads:
                t.join(timeout=5)
        return time.monotonic() - t0


# --------------------------------------------------------------------------
# The workload, run the same way on both queues
# --------------------------------------------------------------------------

def make_workload():
    tasks = [Task("square", {"x": i}) for i in range(20)]
    tasks += [Task("flaky", {"fail_times": 1 + i % 3}) for i in range(6)]
    tasks += [Task("poison", {"n": i}) for i in range(3)]
    tasks += [Task("resize", {"w": 10})]  # no handler: a permanent error
    return tasks


def run_workload(q):
    label = q.kind
    tasks = make_workload()
    by_id = {t.id: t for t in tasks}
    for t in tasks:
        q.enqueue(t.to_json())
    q.enqueue("{this is not json")  # a malformed payload

    print("  enqueued %d tasks (20 square, 6 flaky, 3 poison, 1 without handler)"
          " + 1 malformed payload" % len(tasks))
    print("  one payload as stored: %s" % tasks[0].to_json())

    # A worker that crashes: it takes a task and dies before acking.
    crashed = q.reserve(timeout=1.0)
    held = q.peek_processing()
    print("  a worker took %s and crashed; processing list now: %d item(s)"
          % (Task.from_json(crashed).id, len(held)))
    check(held == [crashed], "%s: a reserved task sits in the processing list" % label)
    recovered = q.requeue_processing()
    print("  recovery after the crash moved %d task(s) back to ready" % recovered)
    check(recovered == 1 and q.lengths()["processing"] == 0,
          "%s: crash recovery requeues the held task" % label)

    pool = WorkerPool(q, HANDLERS, workers=4)
    total = len(tasks) + 1
    elapsed = pool.run_until(total)
    print("  4 workers finished %d/%d payloads in %.2f s" % (pool.finished, total, elapsed))
    lengths = q.lengths()
    print("  queue lengths now: %s" % lengths)

    results = {tid: q.get_result(tid) for tid in by_id}
    done = {tid for tid, r in results.items() if r is not None}
    dead = q.dead_letters()
    dead_ids = [d["id"] for d in dead if d["id"] is not None]
    malformed = [d for d in dead if d["id"] is None]
    for d in dead:
        print("  dead letter: id=%-12s attempts=%d error=%s"
              % (d["id"], d["attempts"], d["error"][:60]))

    squares_ok = all(results[t.id] and results[t.id]["value"] == t.args["x"] ** 2
                     for t in tasks if t.name == "square")
    flaky = [t for t in tasks if t.name == "flaky"]
    flaky_ok = all(results[t.id] and results[t.id]["attempts"] == t.args["fail_times"] + 1
                   for t in flaky)
    poison_ids = {t.id for t in tasks if t.name in ("poison", "resize")}
    check(squares_ok, "%s: every square task has the right result" % label)
    check(flaky_ok, "%s: flaky tasks succeed after exactly fail_times retries" % label)
    check(set(dead_ids) == poison_ids and len(malformed) == 1,
          "%s: poison, unhandled and malformed payloads are dead-lettered" % label)
    check(done.isdisjoint(dead_ids) and len(done) + len(dead_ids) == len(tasks),
          "%s: every task completed or dead-lettered, none lost, none twice" % label)
    check(lengths == {"ready": 0, "processing": 0, "delayed": 0, "dead": 5},
          "%s: ready, processing and delayed are empty at the end" % label)
    poison_runs = [pool.executions[t.id] for t in tasks if t.name == "poison"]
    check(poison_runs == [4, 4, 4] and all(d["attempts"] == 4 for d in dead if d["id"] in
                                           {t.id for t in tasks if t.name == "poison"}),
          "%s: poison tasks ran max_attempts (4) times" % label)
    check(pool.executions[tasks[-1].id] == 1, "%s: a permanent error is not retried" % label)

    # Retries never start before their backoff delay has passed.
    gaps_ok = True
    t = flaky[2]  # fail_times = 3
    starts, delays = pool.starts[t.id], pool.delays[t.id]
    for i, d in enumerate(delays):
        gap = starts[i + 1] - starts[i]
        print("  flaky %s retry %d: backoff %.3f s, next attempt started %.3f s later"
              % (t.id, i + 1, d, gap))
        gaps_ok = gaps_ok and gap >= d - 0.002
    check(len(delays) == 3 and gaps_ok, "%s: retries wait at least their backoff" % label)

    # Results carry a TTL.
    ttl = q.result_ttl_left(tasks[0].id)
    print("  result of %s: %s, expires in %.3f s" % (tasks[0].id, results[tasks[0].id], ttl or -1))
    check(ttl is not None and 0 < ttl <= q.result_ttl, "%s: results have a TTL" % label)
    q.expire_results(q.result_ttl + 0.15)
    left = [tid for tid in done if q.get_result(tid) is not None]
    how = "the clock advanced, no sleep" if q.kind == "memory" else "slept; the server expires keys"
    print("  %.2f s later (%s): %d of %d results left"
          % (q.result_ttl + 0.15, how, len(left), len(done)))
    check(not left, "%s: every result expired after its TTL" % label)


def section_serialisation():
    heading("1. tasks are JSON documents, validated before they run")
    t = Task("square", {"x": 7}, id="demo0000001")
    raw = t.to_json()
    print("  Task(...).to_json() = %s" % raw)
    back = Task.from_json(raw)
    check(back == t, "a task survives a JSON round trip")
    bad = ['{"name": "square"}', '[1, 2]', '{not json',
           raw.replace('"attempt":0', '"attempt":"0"')]
    for payload in bad:
        try:
            Task.from_json(payload)
            print("  accepted?! %s" % payload)
            check(False, "malformed payload %r rejected" % payload)
        except MalformedTask as exc:
            print("  rejected %-40s -> %s" % (payload[:40], exc))


def section_backoff():
    heading("2. exponential backoff with equal jitter")
    b = Backoff(base=0.02, cap=0.2, rng=random.Random(11))
    print("  %-8s %-14s %s" % ("retry", "ceiling (s)", "three jittered draws (s)"))
    ok = True
    for n in range(1, 7):
        draws = [b.delay(n) for _ in range(3)]
        ok = ok and all(b.ceiling(n) / 2 <= d <= b.ceiling(n) for d in draws)
        print("  %-8d %-14.3f %s" % (n, b.ceiling(n), "  ".join("%.3f" % d for d in draws)))
    check(ok, "jittered delays lie in [ceiling/2, ceiling]")
    check([b.ceiling(n) for n in range(1, 7)] == [0.02, 0.04, 0.08, 0.16, 0.2, 0.2],
          "the ceiling doubles up to the cap")


def section_memory():
    heading("3. the workload on MemoryQueue")
    clock = OffsetClock()
    q = MemoryQueue(Backoff(rng=random.Random(3)), result_ttl=1.0, clock=clock)
    run_workload(q)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def redis_server(exe, workdir):
    """Run redis-server on a free loopback port; always stop it afterwards."""
    log_path = os.path.join(workdir, "redis.log")
    for _ in range(3):  # a free port can be taken before the server binds it
        port = free_port()
        log = open(log_path, "w")
        proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--daemonize", "no",
                                 "--dir", workdir, "--logfile", ""],
                                stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True,
                             socket_connect_timeout=1)
        try:
            answered = False
            deadline = time.monotonic() + 10
            while not answered and proc.poll() is None and time.monotonic() < deadline:
                try:
                    answered = client.ping()
                except redis.ConnectionError:
                    time.sleep(0.02)
            if answered:
                yield client, port, proc
                return
        finally:
            client.close()
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
    with open(log_path) as f:
        tail = f.read().strip().splitlines()[-1:] or ["(no output)"]
    raise RuntimeError("redis-server did not start: %s" % tail[0])


def section_redis():
    heading("4. the same workload on a real redis-server")
    exe = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if exe is None:
        print("FAIL lab11: the redis-server program is not installed "
              "(Debian package redis-server; run `make deps`)")
        return False
    with tempfile.TemporaryDirectory(prefix="lab11-") as workdir:
        try:
            with redis_server(exe, workdir) as (client, port, proc):
                info = client.info("server")
                print("  started %s (pid %d) on 127.0.0.1:%d: redis %s, persistence off"
                      % (exe, proc.pid, port, info["redis_version"]))
                q = RedisQueue(client, Backoff(rng=random.Random(3)), result_ttl=1.0)
                run_workload(q)
                keys = sorted(client.keys("lab11:*"))
                print("  keys left on the server: %s" % keys)
                check(keys == ["lab11:dead"], "redis: only the dead-letter list is left")
                pid = proc.pid
        except (RuntimeError, redis.RedisError) as exc:
            print("FAIL lab11: redis: %s: %s" % (type(exc).__name__, exc))
            return False
    gone = not os.path.exists("/proc/%d" % pid)
    print("  redis-server stopped: %s" % gone)
    check(gone, "redis: the lab's redis-server was stopped")
    return True


def main():
    print("Lab 11: a reliable task queue, in memory and on Redis (redis-py %s), "
          "CPython %s" % (redis.__version__, sys.version.split()[0]))
    section_serialisation()
    section_backoff()
    section_memory()
    if not section_redis():
        return 1
    print()
    if FAILURES:
        print("FAIL lab11: %d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        return 1
    print("VERIFY lab11: memory and redis queues: every task completed or dead-lettered, "
          "none lost, BLMOVE crash recovery, backoff honoured, results expired after TTL ... ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
