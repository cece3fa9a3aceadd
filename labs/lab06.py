"""Lab 06 - what asyncio does underneath `await`.

What the lab shows, with the standard library only:

  1. selectors: the readiness API an event loop is built on (a socketpair
     registered with the default selector);
  2. the event loop's queues: call_soon runs callbacks in FIFO order on the
     next iteration, call_later by deadline;
  3. how `await` drives a Future: a coroutine stepped by hand with send()
     yields the Future it waits for, and resumes with its result - this is
     all a Task does;
  4. Task scheduling: create_task only queues a step; the loop interleaves
     tasks at every await;
  5. async generators: `async for`, async comprehensions, and cleanup with
     aclose();
  6. contextvars: each Task runs in a copy of the context taken when it was
     created, so a ContextVar holds request-scoped state across concurrent
     tasks without leaking between them (the lab's verification).

Targets CPython 3.11.  Run it from anywhere:

    python3 labs/lab06.py

The last line is "VERIFY lab06: ... ok" (exit status 0) or a line with FAIL
and the reason (non-zero exit status).
"""

import asyncio
import contextvars
import selectors
import socket
import sys
import types

FAILURES = []


def heading(title):
    print()
    print("== " + title + " " + "=" * max(0, 66 - len(title)))


def check(condition, what):
    if not condition:
        FAILURES.append(what)
        print("  !! check failed: " + what)


# --- 1. selectors ------------------------------------------------------------

def section_selectors():
    heading("1. selectors: readiness, the layer under the event loop")
    sel = selectors.DefaultSelector()
    left, right = socket.socketpair()
    try:
        left.setblocking(False)
        sel.register(left, selectors.EVENT_READ, data="left-reader")
        print("  selector: %s" % type(sel).__name__)
        ready = sel.select(timeout=0)
        print("  select(timeout=0) before any data: %d ready" % len(ready))
        right.sendall(b"ping")
        ready = sel.select(timeout=1)
        for key, events in ready:
            got = key.fileobj.recv(16)
            print("  after right.sendall(b'ping'): %r is readable (events=%d), recv -> %r"
                  % (key.data, events, got))
        check(len(ready) == 1 and ready[0][0].data == "left-reader",
              "selector reported the socket")
        print("  an event loop = this select() call + a queue of ready callbacks + timers")
    finally:
        sel.close()
        left.close()
        right.close()


# --- 2. the loop's queues ----------------------------------------------------

def section_callbacks():
    heading("2. call_soon and call_later")
    loop = asyncio.new_event_loop()
    order = []
    try:
        # _selector is private; it is read here only to show what is inside.
        print("  loop: %s with %s" % (type(loop).__name__, type(loop._selector).__name__))
        start = loop.time()
        loop.call_later(0.03, order.append, "call_later(0.03)")
        loop.call_later(0.01, order.append, "call_later(0.01)")
        loop.call_soon(order.append, "call_soon #1")
        loop.call_soon(order.append, "call_soon #2")
        handle = loop.call_later(0.02, order.append, "call_later(0.02) - cancelled")
        handle.cancel()
        loop.call_later(0.05, loop.stop)
        print("  scheduled: later 0.03, later 0.01, soon #1, soon #2, later 0.02 (cancelled)")
        loop.run_forever()
        elapsed = loop.time() - start
    finally:
        loop.close()
    for i, what in enumerate(order, 1):
        print("    ran %d: %s" % (i, what))
    print("  loop ran for about %.2fs" % elapsed)
    check(order == ["call_soon #1", "call_soon #2", "call_later(0.01)", "call_later(0.03)"],
          "call_soon FIFO first, then timers by deadline, cancelled handle skipped")


# --- 3. await drives a Future ------------------------------------------------

class Ticket:
    """A minimal awaitable: __await__ returns an iterator (a generator here)
    that yields the object the loop should wait on."""

    def __init__(self, future):
        self.future = future

    def __await__(self):
        result = yield self.future       # hand the Future to whoever drives us
        return "ticket:" + result


@types.coroutine
def legacy_wait(future):
    result = yield future
    return result


async def uses_legacy(future):
    return 2 * await legacy_wait(future)


async def wait_for_ticket(future):
    value = await Ticket(future)
    return value.upper()


def section_await():
    heading("3. how await drives a Future (a coroutine stepped by hand)")
    loop = asyncio.new_event_loop()
    try:
        fut = loop.create_future()
        coro = wait_for_ticket(fut)
        print("  coro = wait_for_ticket(fut): %s, nothing has run yet" % type(coro).__name__)
        yielded = coro.send(None)        # run until the first suspension
        print("  coro.send(None) ran to the await and yielded: %s (is fut: %s)"
              % (type(yielded).__name__, yielded is fut))
        fut.set_result("42")
        print("  fut.set_result('42'); a Task would now call coro.send(fut.result())")
        try:
            coro.send(fut.result())
            finished = None
        except StopIteration as stop:
            finished = stop.value
        print("  coro.send('42') -> StopIteration, value %r" % finished)
        check(yielded is fut and finished == "TICKET:42", "the coroutine yielded the future and "
              "resumed with its result")

        # asyncio.Future.__await__ does the same: it yields itself.
        fut2 = loop.create_future()
        it = fut2.__await__()
        print("  asyncio.Future.__await__ yields the future itself: %s" % (next(it) is fut2))
        fut2.set_result(None)
        it.close()

        # Before async/await, coroutines were generators; @types.coroutine
        # still makes one awaitable, and it is driven exactly the same way.
        fut3 = loop.create_future()
        legacy = uses_legacy(fut3)
        step = legacy.send(None)
        fut3.set_result(7)
        try:
            legacy.send(fut3.result())
            legacy_value = None
        except StopIteration as stop:
            legacy_value = stop.value
        print("  a @types.coroutine generator, awaited: yielded the future: %s, result %r"
              % (step is fut3, legacy_value))
        check(step is fut3 and legacy_value == 14, "generator-based coroutine driven by send()")
    finally:
        loop.close()


# --- 4. task scheduling ------------------------------------------------------

async def worker(name, steps, log):
    for i in range(steps):
        log.append("%s.%d" % (name, i))
        await asyncio.sleep(0)           # yield to the loop: let others run


async def scheduling_demo():
    log = []
    t1 = asyncio.create_task(worker("A", 3, log), name="A")
    t2 = asyncio.create_task(worker("B", 2, log), name="B")
    log.append("main: tasks created, none has run")
    await asyncio.sleep(0)
    log.append("main: after one await")
    await asyncio.gather(t1, t2)
    log.append("main: both done")
    return log


def section_tasks():
    heading("4. Tasks: create_task queues a step, await interleaves")
    log = asyncio.run(scheduling_demo())
    print("  " + " -> ".join(log[:3]))
    print("  " + " -> ".join(log[3:]))
    check(log[0] == "main: tasks created, none has run" and log[1:3] == ["A.0", "B.0"],
          "tasks start only when main yields")
    check([e for e in log if e[0] in "AB"] == ["A.0", "B.0", "A.1", "B.1", "A.2"],
          "tasks interleave at each await")


# --- 5. async generators -----------------------------------------------------

async def countdown(n, events):
    try:
        while n > 0:
            await asyncio.sleep(0)
            yield n
            n -= 1
    finally:
        events.append("countdown cleanup (finally ran)")


async def agen_demo():
    events = []
    got = []
    async for value in countdown(3, events):
        got.append(value)
    squares = [v * v async for v in countdown(4, events)]
    gen = countdown(10, events)
    first = await gen.__anext__()
    second = await gen.asend(None)
    await gen.aclose()                   # stop early: runs the finally block
    return got, squares, (first, second), events


def section_agen():
    heading("5. async generators")
    got, squares, early, events = asyncio.run(agen_demo())
    print("  async for over countdown(3): %s" % got)
    print("  [v * v async for v in countdown(4)]: %s" % squares)
    print("  countdown(10): __anext__ -> %d, asend(None) -> %d, then aclose()" % early)
    for e in events:
        print("    " + e)
    check(got == [3, 2, 1] and squares == [16, 9, 4, 1] and early == (10, 9),
          "async generators produce values")
    check(len(events) == 3, "each generator ran its cleanup, including the one closed early")


# --- 6. contextvars ----------------------------------------------------------

REQUEST_ID = contextvars.ContextVar("request_id", default="-")
USER = contextvars.ContextVar("user", default="anonymous")


def log_line(trail, message):
    """Deep helpers read the context; nobody passes request ids around."""
    trail.append("%-7s %-6s %s" % (REQUEST_ID.get(), USER.get(), message))


async def load_profile(trail):
    await asyncio.sleep(0.002)
    log_line(trail, "profile loaded")
    return USER.get()


async def handle_request(rid, user, delay, trail):
    REQUEST_ID.set(rid)
    USER.set(user)
    log_line(trail, "start")
    await asyncio.sleep(delay)           # other requests run meanwhile
    who = await load_profile(trail)
    log_line(trail, "done")
    return rid, REQUEST_ID.get(), who


async def context_demo():
    trail = []
    # The three requests overlap; the delays make the interleaving visible.
    requests = [("req-1", "alice", 0.03), ("req-2", "bob", 0.01), ("req-3", "carol", 0.02)]
    results = await asyncio.gather(*(handle_request(r, u, d, trail) for r, u, d in requests))
    outside = (REQUEST_ID.get(), USER.get())

    # A Task copies the context when created: it sees values set before,
    # and its own changes stay inside it.
    REQUEST_ID.set("parent")

    async def child():
        seen = REQUEST_ID.get()
        REQUEST_ID.set("child-changed")
        return seen

    child_saw = await asyncio.create_task(child())
    parent_after = REQUEST_ID.get()
    return trail, results, requests, outside, child_saw, parent_after


def section_contextvars():
    heading("6. contextvars: request-scoped state in concurrent tasks")
    trail, results, requests, outside, child_saw, parent_after = asyncio.run(context_demo())
    print("  three overlapping requests; each line is logged by a helper that reads")
    print("  the ContextVars (request id, user) - nothing is passed down explicitly:")
    for line in trail:
        print("    " + line)
    ok = True
    for (rid, seen, who), (want_rid, want_user, _) in zip(results, requests):
        good = rid == seen == want_rid and who == want_user
        ok = ok and good
        print("  %s finished with request_id=%s user=%s  %s"
              % (rid, seen, who, "ok" if good else "LEAKED"))
    per_line = all(line.split()[0] in ("req-1", "req-2", "req-3") for line in trail)
    consistent = all(
        (line.split()[0], line.split()[1]) in
        [(r, u) for r, u, _ in requests] for line in trail)
    print("  after gather, the caller's context still has request_id=%r user=%r" % outside)
    print("  a child task saw the parent's value %r; its own change stayed inside it:"
          " parent still has %r" % (child_saw, parent_after))
    order = [line.split()[0] for line in trail if line.endswith("done")]
    print("  finish order (by delay): %s" % order)
    check(ok and per_line and consistent, "every log line carries its own request's id and user")
    check(outside == ("-", "anonymous"), "nothing leaked into the caller's context")
    check(child_saw == "parent" and parent_after == "parent",
          "create_task copies the context; changes do not flow back")
    check(order == ["req-2", "req-3", "req-1"], "the requests really overlapped")
    return len(results)


def main():
    print("Lab 06: asyncio internals in CPython %s" % sys.version.split()[0])
    if sys.version_info[:2] != (3, 11):
        print("FAIL lab06: this lab targets CPython 3.11, not %s" % sys.version.split()[0])
        return 1
    section_selectors()
    section_callbacks()
    section_await()
    section_tasks()
    section_agen()
    n = section_contextvars()
    print()
    if FAILURES:
        print("FAIL lab06: %d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        return 1
    print("VERIFY lab06: ContextVars kept request-scoped state in %d concurrent tasks without "
          "leaking; loop queues, await/Future and async generators ... ok" % n)
    return 0


def run():
    """Run main(); an unexpected exception still ends in a FAIL line."""
    try:
        return main()
    except Exception as exc:  # report, do not hide: traceback, then FAIL
        import traceback
        traceback.print_exc(file=sys.stdout)
        print("FAIL lab06: unexpected %s: %s" % (type(exc).__name__, exc))
        return 1


if __name__ == "__main__":
    sys.exit(run())
