"""python -m labs.lab15 [--host H] [--port N] [--verify]

Without --verify: serve the lab 15 app with uvicorn on 127.0.0.1, port from
--port, else the LAB15_PORT environment variable, else 8015.

With --verify: run the pytest suite in labs/lab15/tests in this process,
then serve the app with uvicorn on a free loopback port for a moment and
fetch /health and /metrics over real HTTP; print the VERIFY line.

Also runnable by path from any directory: python .../labs/lab15/__main__.py
"""

import argparse
import os
import socket
import sys
import threading
import time
import urllib.request

if not __package__:
    # Run by path: make the repository root importable, so `labs.lab15` is.
    _root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path[0] = _root
    __package__ = "labs.lab15"

NEEDED = ("fastapi", "pydantic", "uvicorn", "httpx", "pluggy", "prometheus_client",
          "cryptography", "pytest")


def missing_packages():
    import importlib.util
    return [name for name in NEEDED if importlib.util.find_spec(name) is None]


def heading(title):
    print()
    print("== " + title + " " + "=" * max(0, 66 - len(title)))


class Tally:
    """A pytest plugin that counts outcomes, so --verify can report them."""

    def __init__(self):
        self.passed, self.failed, self.skipped = [], [], []

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failed.append(report.nodeid)
        elif report.when == "call" and report.passed:
            self.passed.append(report.nodeid)
        elif report.skipped:
            self.skipped.append(report.nodeid)


def run_tests():
    import pytest
    tests = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests")
    tally = Tally()
    t0 = time.perf_counter()
    code = pytest.main(["-q", "-p", "no:cacheprovider", tests], plugins=[tally])
    return int(code), tally, time.perf_counter() - t0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smoke_test_uvicorn():
    """Serve the app in a thread with uvicorn; fetch two pages; shut down."""
    import uvicorn

    from labs.lab15.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            return "uvicorn did not start on 127.0.0.1:%d" % port
        base = "http://127.0.0.1:%d" % port
        with urllib.request.urlopen(base + "/health", timeout=5) as r:
            health = r.read().decode()
        with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
            metrics = r.read().decode()
        print("  GET %s/health  -> %s" % (base, health))
        line = [m for m in metrics.splitlines() if m.startswith("lab15_http_requests_total")]
        print("  GET %s/metrics -> %s" % (base, line[0] if line else "(no request counter)"))
        if '"status":"ok"' not in health or 'route="/health"' not in metrics:
            return "unexpected answers from the served app"
        return None
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def verify():
    print("Lab 15: a FastAPI service with an import hook, descriptors, asyncio, "
          "tracemalloc, pluggy, Prometheus and Fernet (CPython %s)" % sys.version.split()[0])
    heading("1. the pytest suite (labs/lab15/tests), in this process")
    code, tally, secs = run_tests()
    print("  pytest exit status %d: %d passed, %d failed, %d skipped in %.1f s"
          % (code, len(tally.passed), len(tally.failed), len(tally.skipped), secs))
    if code != 0 or tally.failed:
        print("FAIL lab15: pytest: %d failed: %s" % (len(tally.failed), ", ".join(tally.failed)[:200]))
        return 1
    if len(tally.passed) < 8:
        print("FAIL lab15: only %d tests passed, the lab needs at least 8" % len(tally.passed))
        return 1
    heading("2. the app served by uvicorn over real HTTP")
    problem = smoke_test_uvicorn()
    if problem:
        print("FAIL lab15: %s" % problem)
        return 1
    print()
    print("VERIFY lab15: %d pytest tests passed (validation, plugins, metrics, encryption, "
          "memory, import hook, asyncio) and uvicorn served /health and /metrics ... ok"
          % len(tally.passed))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m labs.lab15",
                                     description="serve or verify the lab 15 service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: $LAB15_PORT, else 8015)")
    parser.add_argument("--verify", action="store_true",
                        help="run the test suite and a uvicorn smoke test")
    args = parser.parse_args(argv)

    missing = missing_packages()
    if missing:
        print("FAIL lab15: package(s) %s not installed for %s (run `make deps`, then use "
              ".venv/<shape>/bin/python)" % (", ".join(missing), sys.executable))
        return 1
    if args.verify:
        return verify()

    port = args.port
    if port is None:
        try:
            port = int(os.environ.get("LAB15_PORT", "8015"))
        except ValueError:
            print("FAIL lab15: LAB15_PORT must be a number, not %r" % os.environ["LAB15_PORT"])
            return 2
    import uvicorn

    from labs.lab15.app import create_app
    try:
        app = create_app()
    except ValueError as exc:  # a SettingError from a bad LAB15_* variable
        print("FAIL lab15: bad configuration: %s" % exc)
        return 2
    print("lab15: serving on http://%s:%d (docs at /docs, metrics at /metrics); "
          "Ctrl-C stops" % (args.host, port))
    uvicorn.run(app, host=args.host, port=port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
