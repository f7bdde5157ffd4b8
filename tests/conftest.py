"""Fixtures: real redis-server and SecantusDB on free ports, settings → app → client.

Set MONGODB_URI to run the same suite against a real MongoDB instead of the
SecantusDB this starts.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from deploy.processes import Stack
from gateway.app import create_app
from gateway.privacy.crypto import Keyring
from gateway.settings import Settings

TEST_DATA_KEYS = f"test1:{Keyring.generate_key()}"


@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(MongoDB URI without a database, Redis URL) of servers started for this run."""
    stack = Stack(tmp_path_factory.mktemp("stores-logs"))
    try:
        redis = stack.redis()
        mongo_uri = os.environ.get("MONGODB_URI")
        if not mongo_uri:
            mongo_uri = f"mongodb://127.0.0.1:{stack.secantus().port}"
        yield mongo_uri, f"redis://127.0.0.1:{redis.port}/0"
    finally:
        stack.stop()


def with_database(uri: str, name: str) -> str:
    """`uri` pointed at database `name`, keeping host, credentials and options."""
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture
def settings(stores: tuple[str, str]) -> Settings:
    mongo_uri, redis_url = stores
    return Settings(
        mongodb_uri=with_database(mongo_uri, f"sg_test_{uuid.uuid4().hex[:12]}"),
        redis_url=redis_url,
        testing=True,
        token_cache_s=0,
        data_keys=TEST_DATA_KEYS,
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    from mongoengine.connection import get_db

    from gateway.extensions import redis_store
    from gateway.startup import ensure_indexes

    app = create_app(settings)
    redis_store.conn.flushdb()
    ensure_indexes()
    yield app
    get_db().client.drop_database(get_db().name)
    redis_store.conn.flushdb()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def county(app: Flask):  # type: ignore[no-untyped-def]
    """The sample county, loaded, with its tokens (built once, then restored: county_template)."""
    from mongoengine.connection import get_db

    from gateway import gridcache
    from tests.county_template import load_county

    built = load_county(get_db(), app.config["SAFEGRID"])
    gridcache.bump_version()
    return built


@pytest.fixture
def sendsms():
    """Kannel's sendsms interface, played by a recording HTTP server on loopback."""
    from tests.fakes import recording_server

    with recording_server() as server:
        yield server



@pytest.fixture(autouse=True)
def _no_make_run_settings(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The CLI reads `var/safegrid.env` when `make run` wrote one in the checkout; the tests
    point it at the test's own directory instead, so a running `make run` never leaks in."""
    from gateway.cli import common

    monkeypatch.setattr(common, "LOCAL_ENV_FILE", tmp_path / "var" / "safegrid.env")
