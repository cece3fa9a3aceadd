"""The lab 15 service: create_app(settings) builds a FastAPI application.

Each app has its own settings, plugin manager, Prometheus registry and
Fernet key, so tests can build as many as they like.  tracemalloc is
started by the app's lifespan (and stopped again if the app started it).
"""

import asyncio
import contextlib
import sys
import time
import tracemalloc

import prometheus_client
from cryptography.fernet import Fernet, InvalidToken
from fastapi import FastAPI, HTTPException, Query, Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import BaseModel, Field, create_model, model_validator

from . import confighook, plugins
from .settings import Settings


def build_shape():
    """'shared' when libpython is a separate .so in this process, else 'static'."""
    with open("/proc/self/maps") as f:
        return "shared" if "libpython3" in f.read() else "static"


class EchoBase(BaseModel):
    repeat: int = Field(1, ge=1, le=5)
    shout: bool = False

    @model_validator(mode="after")
    def shouting_is_short(self):
        if self.shout and self.repeat > 3:
            raise ValueError("shouting is limited to 3 repeats")
        return self


class EncryptIn(BaseModel):
    plaintext: str = Field(min_length=1, max_length=4096)


class DecryptIn(BaseModel):
    token: str = Field(min_length=1)


class AllocIn(BaseModel):
    kib: int = Field(ge=1, le=65536)


def make_metrics():
    registry = CollectorRegistry()
    return registry, {
        "requests": Counter("lab15_http_requests", "HTTP requests",
                            ["method", "route", "status"], registry=registry),
        "latency": Histogram("lab15_http_request_duration_seconds", "request latency",
                             ["route"], registry=registry),
        "plugin_calls": Counter("lab15_plugin_hook_calls", "plugin hook calls",
                                ["hook"], registry=registry),
        "crypto": Counter("lab15_crypto_operations", "Fernet operations",
                          ["op", "outcome"], registry=registry),
        "held": Gauge("lab15_held_bytes", "bytes held by /alloc", registry=registry),
    }


def create_app(settings=None):
    settings = settings or Settings.load()
    fernet = Fernet(settings.fernet_key or Fernet.generate_key())
    registry, metrics = make_metrics()
    pm = plugins.make_plugin_manager(settings, metrics["plugin_calls"])
    held = []  # what /alloc keeps alive

    # The request model for /echo is built at run time: its limit is a setting.
    EchoIn = create_model(
        "EchoIn", __base__=EchoBase,
        text=(str, Field(min_length=1, max_length=settings.max_text)))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start()
        try:
            yield
        finally:
            held.clear()
            if started:
                tracemalloc.stop()

    app = FastAPI(title="lab15", lifespan=lifespan)
    app.state.settings, app.state.pm, app.state.registry = settings, pm, registry

    def respond(route, body):
        pm.hook.transform_response(route=route, body=body)
        return body

    @app.middleware("http")
    async def measure(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = route.path if route is not None else "<unmatched>"
        metrics["requests"].labels(request.method, path, str(response.status_code)).inc()
        metrics["latency"].labels(path).observe(time.perf_counter() - t0)
        return response

    @app.get("/health")
    async def health():
        return respond("/health", {"status": "ok", "python": sys.version.split()[0],
                                   "build": build_shape()})

    @app.get("/config")
    async def config():
        spec = settings.module.__spec__
        return respond("/config", {
            "module": spec.name, "origin": spec.origin,
            "loader": type(spec.loader).__name__,
            "finder": type(confighook.install()).__name__,
            "settings": settings.public(), "sources": settings.sources})

    @app.post("/echo")
    async def echo(req: EchoIn):
        payload = req.model_dump()
        pm.hook.transform_request(route="/echo", payload=payload)
        text = " ".join([payload["text"]] * payload["repeat"])
        return respond("/echo", {"text": text, "length": len(text)})

    @app.post("/encrypt")
    async def encrypt(req: EncryptIn):
        token = fernet.encrypt(req.plaintext.encode()).decode()
        metrics["crypto"].labels("encrypt", "ok").inc()
        return respond("/encrypt", {"token": token})

    @app.post("/decrypt")
    async def decrypt(req: DecryptIn):
        try:
            plaintext = fernet.decrypt(req.token.encode()).decode()
        except InvalidToken:
            metrics["crypto"].labels("decrypt", "invalid").inc()
            raise HTTPException(status_code=400, detail="invalid or tampered token")
        metrics["crypto"].labels("decrypt", "ok").inc()
        return respond("/decrypt", {"plaintext": plaintext})

    @app.get("/fanout")
    async def fanout(n: int = Query(5, ge=1, le=50), delay: float = Query(0.05, ge=0, le=1)):
        async def lookup(i):
            await asyncio.sleep(delay)  # a stand-in for a network call
            return i * i

        t0 = time.perf_counter()
        results = await asyncio.gather(*(lookup(i) for i in range(n)))
        elapsed = time.perf_counter() - t0
        return respond("/fanout", {"results": results, "elapsed": elapsed,
                                   "sequential_would_take": n * delay})

    @app.get("/slow")
    async def slow(delay: float = Query(ge=0, le=10)):
        try:
            async with asyncio.timeout(settings.request_timeout):  # new in 3.11
                await asyncio.sleep(delay)
        except TimeoutError:
            raise HTTPException(status_code=504, detail="gave up after %gs"
                                % settings.request_timeout)
        return respond("/slow", {"slept": delay})

    @app.post("/alloc")
    async def alloc(req: AllocIn):
        held.append(bytearray(req.kib * 1024))  # the allocation /memory should show
        total = sum(len(b) for b in held)
        metrics["held"].set(total)
        return respond("/alloc", {"held_bytes": total, "blocks": len(held)})

    @app.delete("/alloc")
    async def free():
        held.clear()
        metrics["held"].set(0)
        return respond("/alloc", {"held_bytes": 0, "blocks": 0})

    @app.get("/memory")
    async def memory(top: int = Query(None, ge=1, le=50)):
        if not tracemalloc.is_tracing():
            raise HTTPException(status_code=503, detail="tracemalloc is not tracing")
        snapshot = tracemalloc.take_snapshot().filter_traces([
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
        ])
        stats = snapshot.statistics("lineno")[: top or settings.top_n]
        current, peak = tracemalloc.get_traced_memory()
        return respond("/memory", {
            "traced_current": current, "traced_peak": peak,
            "top": [{"file": s.traceback[0].filename, "line": s.traceback[0].lineno,
                     "size": s.size, "count": s.count} for s in stats]})

    @app.get("/metrics")
    async def metrics_endpoint():
        return Response(prometheus_client.generate_latest(registry),
                        media_type=prometheus_client.CONTENT_TYPE_LATEST)

    return app
