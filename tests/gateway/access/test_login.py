"""App login: scrypt passwords, short-lived access tokens, one-time refresh, logout, lockout."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.records.tokens import ApiToken
from tests.helpers import auth

OFFICER = "+8613800003001"  # 乌峰派出所值班民警
REPORTER = "+8613800001001"


@pytest.fixture
def settings(settings):  # type: ignore[override]
    return settings.with_(login_max_failures=3, rate_limit_login="1000/minute")


def login(client, phone, password):
    return client.post("/api/v1/auth/login", json={"phone": phone, "password": password})


def inbox(client, token):
    return client.get("/api/v1/stations/530627-WF/dispatches", headers=auth(token))


def test_login_gives_a_short_lived_token_that_works(client, county):
    resp = login(client, OFFICER, county.password)
    assert resp.status_code == 200, resp.json
    assert resp.json["role"] == "officer"
    assert resp.json["expires_in"] == 15 * 60
    assert inbox(client, resp.json["access_token"]).status_code == 200
    # A refresh token is not an access token.
    assert inbox(client, resp.json["refresh_token"]).status_code == 401


def test_reporters_log_in_by_phone_too(client, county):
    resp = login(client, "13800001001", county.password)  # national format is fine
    assert resp.status_code == 200
    assert resp.json["role"] == "reporter"


def test_expired_access_tokens_are_refused(client, county):
    token = login(client, OFFICER, county.password).json["access_token"]
    ApiToken.objects(kind="access").update(
        set__expires_at=dt.datetime(2020, 1, 1))
    resp = inbox(client, token)
    assert resp.status_code == 401
    assert "expired" in resp.json["message"]


@pytest.mark.parametrize(("phone", "password"), [(OFFICER, "wrong"), ("+8613899999999", "x")])
def test_wrong_credentials_get_the_same_401(client, county, phone, password):
    resp = login(client, phone, password)
    assert resp.status_code == 401
    assert resp.json["message"] == "wrong phone or password"


def test_repeated_wrong_passwords_lock_the_account(client, county):
    for _ in range(3):
        assert login(client, OFFICER, "wrong").status_code == 401
    locked = login(client, OFFICER, county.password)
    assert locked.status_code == 423
    assert login(client, REPORTER, county.password).status_code == 200  # others unaffected


def test_refresh_is_good_once_and_a_replay_ends_the_login(client, county):
    first = login(client, OFFICER, county.password).json
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    assert inbox(client, second.json["access_token"]).status_code == 200
    replay = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    # The whole family is revoked, including the pair the thief may hold.
    assert inbox(client, second.json["access_token"]).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={
        "refresh_token": second.json["refresh_token"]}).status_code == 401


def test_logout_revokes_the_login(client, county):
    tokens = login(client, OFFICER, county.password).json
    resp = client.post("/api/v1/auth/logout", headers=auth(tokens["access_token"]))
    assert resp.status_code == 204
    assert inbox(client, tokens["access_token"]).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={
        "refresh_token": tokens["refresh_token"]}).status_code == 401


def test_passwords_are_stored_as_scrypt_hashes(county):
    from gateway.records.people import Officer

    stored = Officer._get_collection().find_one(
        {"_id": Officer.by_phone(OFFICER).first().id})["password_hash"]
    assert stored.startswith("scrypt$")
    assert county.password not in stored
