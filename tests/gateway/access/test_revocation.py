"""Revoking a person's tokens takes effect at once in every process, token cache or not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.access.tokens import hash_token
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


def test_a_token_cached_here_stops_working_when_another_process_deactivates_its_holder(
        client, county, settings, tmp_path):
    token = token_of(county, "reporter 张秀英")
    assert file(client, token, 1) == 201  # now cached in this process
    # A revocation nobody announces is not seen while the cache holds the token...
    quiet = ApiToken.objects(token_hash=hash_token(token))
    quiet.update(set__revoked=True)
    assert file(client, token, 2) == 201
    quiet.update(set__revoked=False)
    # ...but deactivation, in another process, is seen at once.
    done = safegrid_in_another_process(settings, tmp_path, "people", "deactivate",
                                       "--phone", "+8613800001001")
    assert done.returncode == 0, done.stderr
    assert file(client, token, 3) == 401


def test_revoke_tokens_from_the_command_line_is_seen_at_once_too(
        client, county, settings, tmp_path):
    token = token_of(county, "reporter 李国强")
    assert file(client, token, 4) == 201
    done = safegrid_in_another_process(settings, tmp_path, "revoke-tokens",
                                       "--phone", "+8613800001002")
    assert done.returncode == 0, done.stderr
    assert file(client, token, 5) == 401


def test_without_redis_the_cache_is_trusted_rather_than_refusing_reports(
        client, county, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from gateway.access import tokens

    token = token_of(county, "reporter 张秀英")
    assert file(client, token, 6) == 201

    class Away:
        def get(self, key: str) -> None:
            raise RedisConnectionError("Redis is away")

    monkeypatch.setattr(tokens.redis_store, "_conn", Away())
    assert tokens.revocation_epoch() is None
    who = tokens.principal_for(token, 30)
    assert who is not None
    assert who.role == "reporter"
