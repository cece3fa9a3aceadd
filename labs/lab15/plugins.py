"""Plugins: pluggy hooks that transform requests and responses.

Every hook gets a dict and changes it in place; pluggy calls the
implementations last-registered-first, tryfirst ones before and trylast ones
after the rest.  HookCounter is a wrapper (wrapper=True): it runs around
every call of every hook and counts them in a Prometheus counter.
"""

import re

import pluggy

PROJECT = "lab15"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Hooks:
    @hookspec
    def transform_request(self, route, payload):
        """Change the validated request payload (a dict) in place."""

    @hookspec
    def transform_response(self, route, body):
        """Change the response body (a dict) in place."""


class UpperPlugin:
    """Upper-cases the /echo text when the request asks to shout."""

    name = "upper"

    @hookimpl
    def transform_request(self, route, payload):
        if route == "/echo" and payload.get("shout"):
            payload["text"] = payload["text"].upper()


class StampPlugin:
    """Adds who served the response; tryfirst, so later plugins see the stamp."""

    name = "stamp"

    def __init__(self, service_name):
        self.service_name = service_name

    @hookimpl(tryfirst=True)
    def transform_response(self, route, body):
        body["served_by"] = self.service_name


CARD = re.compile(r"\b(?:\d{4}[- ]){3}(\d{4})\b")


class RedactPlugin:
    """Masks card-like numbers in every string of a response; runs last."""

    name = "redact"

    @hookimpl(trylast=True)
    def transform_response(self, route, body):
        for key, value in body.items():
            if isinstance(value, str):
                body[key] = CARD.sub(lambda m: "****-****-****-" + m.group(1), value)


class HookCounter:
    """Counts every hook call, by hook name, around all implementations."""

    name = "hook-counter"

    def __init__(self, counter):
        self.counter = counter

    @hookimpl(wrapper=True)
    def transform_request(self, route, payload):
        self.counter.labels("transform_request").inc()
        return (yield)

    @hookimpl(wrapper=True)
    def transform_response(self, route, body):
        self.counter.labels("transform_response").inc()
        return (yield)


def make_plugin_manager(settings, counter):
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(Hooks)
    available = {
        "upper": lambda: UpperPlugin(),
        "stamp": lambda: StampPlugin(settings.service_name),
        "redact": lambda: RedactPlugin(),
    }
    for name in settings.plugins:
        pm.register(available[name](), name=name)
    pm.register(HookCounter(counter), name=HookCounter.name)
    return pm
