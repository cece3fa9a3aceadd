"""Fixtures: a fresh app (own settings, registry, key) for every test."""

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from labs.lab15.app import create_app
from labs.lab15.settings import Settings


@pytest.fixture
def settings(monkeypatch):
    # The tests must not depend on LAB15_* variables of whoever runs them.
    for name in ("SERVICE_NAME", "MAX_TEXT", "TOP_N", "PLUGINS", "REQUEST_TIMEOUT", "FERNET_KEY"):
        monkeypatch.delenv("LAB15_" + name, raising=False)
    return Settings.load(fernet_key=Fernet.generate_key().decode(), max_text=40,
                         request_timeout=0.2)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as c:  # `with` runs the lifespan
        yield c
