"""The lab 15 service, tested through HTTP with fastapi's TestClient."""

import sys
import time

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from labs.lab15 import app as app_module
from labs.lab15 import confighook
from labs.lab15.settings import Settings, SettingError


def metric(text, name, **labels):
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def test_health_reports_python_and_build_shape(client):
    r = client.get("/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert body["python"] == sys.version.split()[0]
    assert body["build"] in ("static", "shared")
    assert body["served_by"] == "lab15", "the stamp plugin adds served_by"


def test_config_module_comes_from_the_import_hook(client):
    body = client.get("/config").json()
    assert body["module"] == "lab15_config"
    assert body["origin"] == "synthetic:lab15_config"
    assert body["loader"] == "ConfigLoader" and body["finder"] == "ConfigFinder"
    assert body["settings"]["fernet_key"].startswith("<set"), "the secret is masked"
    import lab15_config
    assert isinstance(lab15_config.__spec__.loader, confighook.ConfigLoader)
    assert not hasattr(lab15_config, "__file__"), "a synthetic module has no file"


def test_environment_overrides_reach_settings(monkeypatch):
    monkeypatch.setenv("LAB15_TOP_N", "7")
    monkeypatch.setenv("LAB15_SERVICE_NAME", "edge-1")
    s = Settings.load()
    assert (s.top_n, s.service_name) == (7, "edge-1")
    assert s.sources["TOP_N"] == "env LAB15_TOP_N" and s.sources["MAX_TEXT"] == "default"


@pytest.mark.parametrize("field, value, message", [
    ("top_n", 0, "top_n: must be between 1 and 50"),
    ("max_text", "many", "max_text: expected int"),
    ("service_name", "Bad Name", "service_name: must match"),
    ("plugins", "stamp,telnet", "plugins: unknown ['telnet']"),
])
def test_setting_descriptors_reject_bad_values(settings, field, value, message):
    with pytest.raises(SettingError, match=message.replace("[", r"\[").replace("]", r"\]")):
        setattr(settings, field, value)


def test_echo_validation_errors(client):
    too_long = client.post("/echo", json={"text": "x" * 41})
    assert too_long.status_code == 422
    err = too_long.json()["detail"][0]
    assert err["type"] == "string_too_long" and err["loc"] == ["body", "text"]
    assert err["ctx"]["max_length"] == 40, "the limit comes from the settings"

    bad_repeat = client.post("/echo", json={"text": "hi", "repeat": 9})
    assert bad_repeat.json()["detail"][0]["type"] == "less_than_equal"

    missing = client.post("/echo", json={})
    assert missing.json()["detail"][0]["type"] == "missing"

    loud = client.post("/echo", json={"text": "hi", "repeat": 4, "shout": True})
    assert loud.status_code == 422
    assert "shouting is limited to 3 repeats" in loud.json()["detail"][0]["msg"]


def test_plugins_transform_request_and_response(client):
    r = client.post("/echo", json={"text": "card 4111-1111-1111-1234", "repeat": 2,
                                   "shout": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] == "CARD ****-****-****-1234 CARD ****-****-****-1234", \
        "upper ran on the request, redact on the response"
    assert body["served_by"] == "lab15"
    hooks = client.app.state.pm.hook
    assert [i.plugin_name for i in hooks.transform_response.get_hookimpls()] == \
        ["redact", "stamp", "hook-counter"], "trylast first in the list, then tryfirst, wrapper"


def test_without_plugins_nothing_is_transformed(settings):
    settings.plugins = ""
    with TestClient(app_module.create_app(settings)) as c:
        body = c.post("/echo", json={"text": "4111 1111 1111 1234", "shout": True}).json()
    assert body == {"text": "4111 1111 1111 1234", "length": 19}


def test_encryption_round_trip_and_tampering(client):
    token = client.post("/encrypt", json={"plaintext": "meet at noon"}).json()["token"]
    assert token.startswith("gAAAAA"), "a Fernet token (version byte 0x80)"
    back = client.post("/decrypt", json={"token": token})
    assert back.status_code == 200 and back.json()["plaintext"] == "meet at noon"
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    bad = client.post("/decrypt", json={"token": tampered})
    assert bad.status_code == 400 and bad.json()["detail"] == "invalid or tampered token"


def test_metrics_endpoint_counts_requests(client):
    for _ in range(3):
        client.get("/health")
    client.post("/echo", json={"text": ""})
    client.post("/encrypt", json={"plaintext": "x"})
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert metric(text, "lab15_http_requests_total", route="/health", status="200") == 3
    assert metric(text, "lab15_http_requests_total", route="/echo", status="422") == 1
    assert metric(text, "lab15_http_request_duration_seconds_count", route="/health") == 3
    assert metric(text, "lab15_crypto_operations_total", op="encrypt", outcome="ok") == 1
    # 3 x /health + 1 x /encrypt went through transform_response
    assert metric(text, "lab15_plugin_hook_calls_total", hook="transform_response") == 4


def test_memory_endpoint_shows_the_top_allocation_site(client):
    held = client.post("/alloc", json={"kib": 8192}).json()
    assert held["held_bytes"] == 8192 * 1024
    body = client.get("/memory", params={"top": 3}).json()
    assert len(body["top"]) == 3
    first = body["top"][0]
    assert first["file"] == app_module.__file__, body["top"]
    assert first["size"] >= 8192 * 1024 and body["traced_current"] >= first["size"]
    with open(app_module.__file__) as f:
        assert "bytearray(req.kib * 1024)" in f.read().splitlines()[first["line"] - 1]
    client.delete("/alloc")
    after = client.get("/memory", params={"top": 1}).json()["top"][0]
    assert after["size"] < 1024 * 1024, "freed memory is no longer traced"


def test_asyncio_fanout_runs_concurrently(client):
    body = client.get("/fanout", params={"n": 10, "delay": 0.05}).json()
    assert body["results"] == [i * i for i in range(10)]
    assert body["elapsed"] < body["sequential_would_take"] / 2, body


def test_asyncio_timeout_gives_504(client):
    t0 = time.perf_counter()
    r = client.get("/slow", params={"delay": 5})
    assert r.status_code == 504 and "0.2" in r.json()["detail"]
    assert time.perf_counter() - t0 < 2
    assert client.get("/slow", params={"delay": 0.01}).json()["slept"] == 0.01
