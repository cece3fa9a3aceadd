"""Lab 12 - observability in one process: traces, metrics and logs that agree.

A small "orders" service handles a few requests.  Each request produces:

  * OpenTelemetry spans (SDK TracerProvider, captured by an in-memory
    exporter): a SERVER span, INTERNAL and CLIENT children, a PRODUCER span
    whose context travels in message headers (W3C traceparent + baggage) to
    a CONSUMER span; attributes, events, an exception, an error status, and
    baggage entries copied onto every span by a small SpanProcessor;
  * Prometheus metrics in the lab's own CollectorRegistry: a Counter, a
    Histogram (fixed buckets) and Gauges, read back from the text exposition
    format that generate_latest() produces - what a Prometheus server scrapes;
  * structlog JSON log lines that carry the trace and span id of the span
    that was current when they were logged, so a log line leads to its trace.

The request durations come from a fake clock, so the histogram's buckets,
sum and count are exact.  The lab checks span names, kinds, parentage,
attributes, events and baggage; the scraped metric values; and the trace ids
in the logs.

Needs opentelemetry-api/-sdk, prometheus-client and structlog
(labs/requirements.txt; `make deps` installs them into .venv/).  Run it from
anywhere:

    .venv/shared/bin/python labs/lab12.py

The last line is "VERIFY lab12: ... ok" (exit status 0) or a line with FAIL
and the reason (non-zero exit status).
"""

import io
import json
import sys

try:
    import prometheus_client
    import structlog
    from opentelemetry import baggage, context, propagate, trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as exc:
    print("FAIL lab12: the %s package is not installed for %s (needs opentelemetry-sdk, "
          "prometheus-client, structlog; run `make deps`, then use .venv/<shape>/bin/python)"
          % (exc.name, sys.executable))
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
# Tracing setup
# --------------------------------------------------------------------------

class BaggageToAttributes(SpanProcessor):
    """Copy every baggage entry of the parent context onto each new span.

    Baggage travels with the context (and across processes in the 'baggage'
    header) but is not recorded anywhere by itself; this makes it visible
    on the spans, as baggage.<key> attributes.
    """

    def on_start(self, span, parent_context=None):
        for key, value in baggage.get_all(parent_context).items():
            span.set_attribute("baggage." + key, value)


def make_tracing():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "lab12-orders"}))
    provider.add_span_processor(BaggageToAttributes())
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # export on end()
    return provider, exporter


# --------------------------------------------------------------------------
# Metrics setup
# --------------------------------------------------------------------------

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1)


def make_metrics():
    # Counters and histograms also export a <name>_created timestamp series;
    # switched off here to keep the exposition short.
    prometheus_client.disable_created_metrics()
    registry = CollectorRegistry()  # our own: nothing from the default registry
    m = {
        "requests": Counter("lab12_http_requests", "HTTP requests handled",
                            ["method", "route", "status"], registry=registry),
        "latency": Histogram("lab12_http_request_duration_seconds", "request latency",
                             ["route"], buckets=BUCKETS, registry=registry),
        "in_flight": Gauge("lab12_http_in_flight", "requests being handled",
                           registry=registry),
        "queue": Gauge("lab12_outbox_depth", "messages waiting to be published",
                       registry=registry),
    }
    return registry, m


# --------------------------------------------------------------------------
# Logging setup
# --------------------------------------------------------------------------

def add_trace_context(logger, method_name, event_dict):
    """structlog processor: the current span's ids, as the log's trace link."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


def make_logger(stream):
    return structlog.wrap_logger(
        structlog.PrintLogger(file=stream),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_trace_context,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
    ).bind(service="orders")


# --------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


ORDERS = {42: {"id": 42, "item": "keyboard", "qty": 1}}


class OrdersService:
    def __init__(self, tracer, metrics, log, clock):
        self.tracer, self.m, self.log, self.clock = tracer, metrics, log, clock
        self.outbox = []  # (headers, body) messages "sent" to a broker

    def get_order(self, order_id, work_s):
        """Handle GET /orders/{id}; `work_s` is how long the fake work takes."""
        route = "/orders/{id}"
        start = self.clock()
        self.m["in_flight"].inc()
        with self.tracer.start_as_current_span(
                "GET " + route, kind=SpanKind.SERVER,
                attributes={"http.request.method": "GET", "http.route": route,
                            "url.path": "/orders/%d" % order_id}) as span:
            self.log.info("request started", path="/orders/%d" % order_id)
            try:
                order = self.load_order(order_id)
                status = 200
                self.publish("order.viewed", {"order_id": order_id})
            except KeyError as exc:
                status = 404
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, "order not found"))
                self.log.warning("order not found", order_id=order_id)
                order = None
            span.set_attribute("http.response.status_code", status)
            self.clock.advance(work_s)
            elapsed = self.clock() - start
            self.m["requests"].labels("GET", route, str(status)).inc()
            self.m["latency"].labels(route).observe(elapsed)
            self.log.info("request finished", status=status, duration_s=round(elapsed, 6))
        self.m["in_flight"].dec()
        return status, order

    def load_order(self, order_id):
        with self.tracer.start_as_current_span("load_order", kind=SpanKind.INTERNAL) as span:
            span.set_attribute("order.id", order_id)
            span.add_event("cache miss", {"cache.key": "order:%d" % order_id})
            with self.tracer.start_as_current_span(
                    "SELECT orders", kind=SpanKind.CLIENT,
                    attributes={"db.system.name": "sqlite",
                                "db.query.text": "SELECT * FROM orders WHERE id = ?"}):
                self.log.debug("query", table="orders")
                return ORDERS[order_id]

    def publish(self, topic, body):
        with self.tracer.start_as_current_span("publish " + topic, kind=SpanKind.PRODUCER,
                                               attributes={"messaging.destination.name": topic}):
            headers = {}
            propagate.inject(headers)  # traceparent, tracestate, baggage
            self.outbox.append((headers, json.dumps(body)))
            self.m["queue"].set(len(self.outbox))


def consume(tracer, log, headers, body):
    """A consumer, as if in another process: its context comes from headers."""
    parent = propagate.extract(headers)
    token = context.attach(parent)  # makes the baggage current as well
    try:
        with tracer.start_as_current_span("process order.viewed", kind=SpanKind.CONSUMER,
                                          attributes={"messaging.operation.type": "process"}):
            log.info("message processed", body=json.loads(body))
    finally:
        context.detach(token)


# --------------------------------------------------------------------------
# The lab
# --------------------------------------------------------------------------

def section_run(service, tracer, log, log_stream):
    heading("1. handle three requests and one message")
    token = context.attach(baggage.set_baggage(
        "tenant.id", "acme", baggage.set_baggage("user.tier", "gold")))
    try:
        print("  GET /orders/42  -> %s" % (service.get_order(42, work_s=0.007),))
        print("  GET /orders/42  -> %s" % (service.get_order(42, work_s=0.04),))
        print("  GET /orders/404 -> %s" % (service.get_order(404, work_s=0.003),))
    finally:
        context.detach(token)
    log.info("outside any span")
    headers, body = service.outbox[0]
    print("  message headers, as the consumer receives them:")
    for k in sorted(headers):
        print("      %s: %s" % (k, headers[k]))
    check(set(headers) >= {"traceparent", "baggage"}, "inject() wrote traceparent and baggage headers")
    consume(tracer, log, headers, body)
    return headers


def span_tree(spans):
    by_id = {s.context.span_id: s for s in spans}
    children = {}
    roots = []
    for s in sorted(spans, key=lambda s: s.start_time):
        pid = s.parent.span_id if s.parent else None
        (children.setdefault(pid, []) if pid in by_id else roots).append(s)

    def show(s, depth):
        attrs = ", ".join("%s=%s" % (k, v) for k, v in s.attributes.items())
        print("  %s%-22s %-9s %s" % ("  " * depth, s.name, s.kind.name, attrs))
        for e in s.events:
            attrs = {k: v for k, v in e.attributes.items() if k != "exception.stacktrace"}
            if "exception.stacktrace" in e.attributes:
                attrs["exception.stacktrace"] = "(%d lines)" % len(
                    e.attributes["exception.stacktrace"].splitlines())
            print("  %s    event: %s %s" % ("  " * depth, e.name, attrs))
        for c in children.get(s.context.span_id, []):
            show(c, depth + 1)

    for r in roots:
        print("  trace %032x%s" % (r.context.trace_id, "  (remote parent)" if r.parent else ""))
        show(r, 1)


def section_spans(exporter, headers):
    heading("2. the spans the in-memory exporter captured")
    spans = exporter.get_finished_spans()
    span_tree(spans)
    names = [s.name for s in spans]
    print("  %d spans, in the order they ended: %s" % (len(spans), names))
    check(len(spans) == 12, "12 spans: 4 per found order, 3 for the 404, 1 consumer")

    roots = [s for s in spans if s.kind == SpanKind.SERVER]
    check(len(roots) == 3 and all(s.parent is None for s in roots), "three SERVER root spans")
    first = roots[0]
    kids = {s.name: s for s in spans if s.parent and s.parent.span_id == first.context.span_id}
    check(set(kids) == {"load_order", "publish order.viewed"},
          "the SERVER span's children are load_order and the PRODUCER span")
    load = kids.get("load_order")
    sel = [s for s in spans if s.parent and load and s.parent.span_id == load.context.span_id]
    check(len(sel) == 1 and sel[0].kind == SpanKind.CLIENT and sel[0].name == "SELECT orders",
          "load_order has one CLIENT child, SELECT orders")
    check(all(s.context.trace_id == first.context.trace_id for s in [first, *kids.values(), *sel]),
          "a request's spans share one trace id")
    check(load is not None and [e.name for e in load.events] == ["cache miss"]
          and load.attributes.get("order.id") == 42, "load_order has its event and attributes")

    notfound = roots[2]
    check(notfound.status.status_code == StatusCode.ERROR
          and notfound.attributes.get("http.response.status_code") == 404
          and [e.name for e in notfound.events] == ["exception"],
          "the 404 request is an ERROR span with an exception event")

    consumer = [s for s in spans if s.kind == SpanKind.CONSUMER]
    producer = [s for s in spans if s.kind == SpanKind.PRODUCER][0]
    check(len(consumer) == 1 and consumer[0].parent.is_remote
          and consumer[0].parent.span_id == producer.context.span_id
          and consumer[0].context.trace_id == producer.context.trace_id,
          "the CONSUMER span's remote parent is the PRODUCER span, same trace")
    print("  traceparent %s" % headers["traceparent"])
    print("  producer    00-%032x-%016x-%02x  (version-trace id-parent span id-flags)"
          % (producer.context.trace_id, producer.context.span_id, producer.context.trace_flags))
    print("  the 404's inner spans show the KeyError too: start_as_current_span() records")
    print("  an exception that escapes it, and sets the span's status to ERROR")
    with_baggage = [s for s in spans if s.attributes.get("baggage.tenant.id") == "acme"
                    and s.attributes.get("baggage.user.tier") == "gold"]
    check(len(with_baggage) == len(spans),
          "every span (the consumer's too, via the header) carries the baggage")
    print("  spans with baggage.tenant.id=acme and baggage.user.tier=gold: %d of %d"
          % (len(with_baggage), len(spans)))
    return spans


def sample(families, name, labels=None):
    for fam in families:
        for s in fam.samples:
            if s.name == name and (labels is None or all(s.labels.get(k) == v
                                                         for k, v in labels.items())):
                return s.value
    return None


def section_metrics(registry):
    heading("3. the Prometheus exposition, scraped with generate_latest()")
    text = prometheus_client.generate_latest(registry).decode()
    for line in text.splitlines():
        print("  " + line)
    fams = list(text_string_to_metric_families(text))
    route = {"route": "/orders/{id}"}
    ok200 = sample(fams, "lab12_http_requests_total", {"status": "200"})
    nf404 = sample(fams, "lab12_http_requests_total", {"status": "404"})
    check(ok200 == 2 and nf404 == 1, "requests_total: 2 with status 200, 1 with 404")
    buckets = [sample(fams, "lab12_http_request_duration_seconds_bucket",
                      dict(route, le=le)) for le in ("0.005", "0.01", "0.025", "0.05", "0.1", "+Inf")]
    print()
    print("  durations 0.007, 0.040, 0.003 s -> cumulative buckets (le 0.005 .. +Inf) %s"
          % [int(b) if b is not None else None for b in buckets])
    check(buckets == [1, 2, 2, 3, 3, 3], "histogram buckets are cumulative and exact")
    total = sample(fams, "lab12_http_request_duration_seconds_sum", route)
    count = sample(fams, "lab12_http_request_duration_seconds_count", route)
    check(count == 3 and total is not None and abs(total - 0.05) < 1e-9,
          "histogram _sum is 0.05 s over _count 3")
    check(sample(fams, "lab12_http_in_flight") == 0 and sample(fams, "lab12_outbox_depth") == 2,
          "gauges: 0 in flight, 2 messages in the outbox")
    check("# TYPE lab12_http_requests_total counter" in text,
          "the exposition declares the counter type")


def section_logs(log_stream, spans):
    heading("4. structlog JSON lines, linked to their spans")
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    for rec in lines:
        print("  " + json.dumps(rec, sort_keys=True))
    by_span = {format(s.context.span_id, "016x"): s for s in spans}
    linked = [r for r in lines if "trace_id" in r]
    good = [r for r in linked if r["span_id"] in by_span
            and format(by_span[r["span_id"]].context.trace_id, "032x") == r["trace_id"]]
    print()
    print("  %d lines, %d inside a span; %d name a span the exporter captured, with its trace id"
          % (len(lines), len(linked), len(good)))
    check(len(lines) == 12 and len(linked) == 11 and len(good) == 11,
          "every log line inside a span carries that span's trace and span id")
    outside = [r for r in lines if r["event"] == "outside any span"]
    check(len(outside) == 1 and "trace_id" not in outside[0],
          "a line logged outside any span has no trace id")
    query = [r for r in lines if r["event"] == "query"]
    check(query and by_span[query[0]["span_id"]].name == "SELECT orders",
          "a log line inside SELECT orders names that span")
    consumer_line = [r for r in lines if r["event"] == "message processed"]
    check(consumer_line and by_span[consumer_line[0]["span_id"]].kind == SpanKind.CONSUMER,
          "the consumer's log line names the CONSUMER span")


def main():
    print("Lab 12: OpenTelemetry traces, Prometheus metrics and structlog logs "
          "in CPython %s" % sys.version.split()[0])
    provider, exporter = make_tracing()
    registry, metrics = make_metrics()
    log_stream = io.StringIO()
    log = make_logger(log_stream)
    tracer = provider.get_tracer("lab12.orders")
    service = OrdersService(tracer, metrics, log, FakeClock())
    headers = section_run(service, provider.get_tracer("lab12.worker"), log, log_stream)
    spans = section_spans(exporter, headers)
    section_metrics(registry)
    section_logs(log_stream, spans)
    provider.shutdown()
    print()
    if FAILURES:
        print("FAIL lab12: %d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        return 1
    print("VERIFY lab12: 12 spans with kinds, parentage, attributes, events and baggage; "
          "scraped counter/histogram/gauges exact; logs carry trace ids ... ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
