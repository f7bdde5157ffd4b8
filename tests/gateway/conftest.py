"""Fixtures for the gateway's tests."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gateway.cli.main import main


@pytest.fixture
def run(settings, monkeypatch, app):
    """`safegrid ARGS...` against the test's stores; returns click's Result."""
    monkeypatch.setenv("MONGODB_URI", settings.mongodb_uri)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("SAFEGRID_DATA_KEYS", settings.data_keys)

    def run(*args: str):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return run
