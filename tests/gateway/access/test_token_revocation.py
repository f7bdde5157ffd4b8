"""Cached tokens and revocation: a revoked token stops working at once in every process,
though each process caches token → principal (gateway/access/tokens.py)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from bson import ObjectId

from deploy.processes import ROOT, app_env, find_program
from gateway.access.tokens import Principal, hash_token, issue_token, token_cache
from tests.helpers import auth, token_of

INBOX = "/api/v1/stations/530627-WF/dispatches"


@pytest.fixture
def settings(settings):  # type: ignore[override]
    return settings.with_(token_cache_s=300)  # cached far longer than the test waits


def test_a_revocation_by_another_process_ends_a_cached_token_at_once(client, county, settings):
    officer = token_of(county, "officer 乌峰派出所")
    assert client.get(INBOX, headers=auth(officer)).status_code == 200  # cached now
    # `safegrid revoke-tokens` in a process of its own, as an administrator runs it.
    env = app_env(settings.mongodb_uri, settings.redis_url, settings.data_keys)
    done = subprocess.run([find_program("safegrid"), "revoke-tokens", "--phone", "+8613800003001"],
                          cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    # The announcement crosses Redis to this process's listener thread: wait for it, far
    # less than the 300 s the token would otherwise stay cached.
    deadline = time.monotonic() + 30
    status = client.get(INBOX, headers=auth(officer)).status_code
    while status == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
        status = client.get(INBOX, headers=auth(officer)).status_code
    assert status == 401


def test_a_lookup_that_began_before_a_revocation_is_not_cached(app):
    token = issue_token("reporter", subject_id=ObjectId())
    key = hash_token(token)
    began = token_cache.generation
    token_cache.clear()  # a revocation lands while the lookup reads the store
    token_cache.put(key, Principal("reporter", None, None, None), 300, began)
    assert token_cache.get(key) == (False, None)
    token_cache.put(key, Principal("reporter", None, None, None), 300, token_cache.generation)
    assert token_cache.get(key)[0] is True
