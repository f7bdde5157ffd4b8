"""Revoking a person's tokens takes effect at once in every process, token cache or not."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.access.tokens import hash_token, token_cache
from gateway.records.tokens import ApiToken
from tests.helpers import auth, token_of

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def settings(settings):  # type: ignore[override]
    return settings.with_(token_cache_s=30)  # as in production: tokens cached per process


def file(client, token: str, n: int) -> int:
    return client.post("/api/v1/reports", headers=auth(token), json={
        "client_id": f"revocation-{n:04d}", "category": "OTHER"}).status_code


def safegrid_in_another_process(settings, tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MONGODB_URI": settings.mongodb_uri, "REDIS_URL": settings.redis_url,
           "SAFEGRID_DATA_KEYS": settings.data_keys, "PYTHONPATH": str(ROOT)}
    return subprocess.run(  # noqa: S603 - our own CLI, with fixed arguments
        [sys.executable, "-c", "from gateway.cli.main import main; main()", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


def refused_soon(client, token: str, first_n: int) -> int:
    """File until refused: the revocation crosses Redis to this process's listener thread
    (far sooner than the 30 s the token would otherwise stay cached)."""
    deadline = time.monotonic() + 20
    n, status = first_n, file(client, token, first_n)
    while status == 201 and time.monotonic() < deadline:
        time.sleep(0.05)
        n += 1
        status = file(client, token, n)
    return status


def test_a_token_cached_here_stops_working_when_another_process_deactivates_its_holder(
        client, county, settings, tmp_path):
    token = token_of(county, "reporter 张秀英")
    quiet = ApiToken.objects(token_hash=hash_token(token))
    # A revocation nobody announces is not seen while the cache holds the token (the
    # listener's own start empties the cache once, so try again until it is settled)...
    cached = False
    for n in range(1, 40, 2):
        assert file(client, token, n) == 201  # now cached in this process
        quiet.update(set__revoked=True)
        cached = file(client, token, n + 1) == 201
        quiet.update(set__revoked=False)
        if cached:
            break
        token_cache.clear()  # it cached the refusal: forget it and try again
    assert cached
    # ...but deactivation, in another process, is announced and seen at once.
    done = safegrid_in_another_process(settings, tmp_path, "people", "deactivate",
                                       "--phone", "+8613800001001")
    assert done.returncode == 0, done.stderr
    assert refused_soon(client, token, 100) == 401


def test_without_redis_the_cache_is_trusted_rather_than_refusing_reports(
        client, county, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from gateway.access import tokens

    token = token_of(county, "reporter 张秀英")
    assert file(client, token, 6) == 201

    class Away:
        def __getattr__(self, name: str) -> None:
            raise RedisConnectionError("Redis is away")

    with monkeypatch.context() as away:
        away.setattr(tokens.redis_store, "_conn", Away())
        who = tokens.principal_for(token, 30)
    assert who is not None
    assert who.role == "reporter"
