"""Rate limits against the real Redis of the fixtures: failed authentication, the SMS
webhook, the login hook, switched off, and Redis down (fail open, counted in memory)."""

from __future__ import annotations

import pytest
from bson import ObjectId
from mongoengine.connection import get_db

from deploy.processes import free_port
from gateway.access.tokens import issue_token
from gateway.app import create_app
from gateway.extensions import login_limit, redis_store

REPORT = "/api/v1/reports/R0000000"
REPORT_POST = "/api/v1/reports"
BAD = {"Authorization": "Bearer sg_not-a-real-token"}
WEBHOOK = "/sms/inbound/kannel"
ATTACKER = {"REMOTE_ADDR": "203.0.113.7"}
GOOD = {"REMOTE_ADDR": "198.51.100.20"}


@pytest.fixture
def settings(settings):  # type: ignore[override]
    return settings.with_(rate_limit_auth_failures="3/minute",
                          rate_limit_auth_failures_address="5/minute",
                          rate_limit_sms_webhook="4/minute",
                          rate_limit_login="2/minute",
                          sms_webhook_secret="s3cret-for-tests")


_bad = iter(range(1_000_000))


def bad_token() -> dict[str, str]:
    """Another made-up token each time: counted by the address, not by one token."""
    return {"Authorization": f"Bearer sg_made-up-{next(_bad)}"}


def good_token() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token('reporter', subject_id=ObjectId())}"}


def assert_429(resp, window_s: int = 60) -> None:
    assert resp.status_code == 429
    assert resp.json["code"] == 429
    assert resp.json["status"] == "Too Many Requests"
    assert "retry after" in resp.json["message"]
    assert 1 <= int(resp.headers["Retry-After"]) <= window_s


def test_failed_authentications_are_limited_per_ip_in_redis(client):
    for _ in range(3):
        assert client.get(REPORT, headers=BAD, environ_base=ATTACKER).status_code == 401
    resp = client.get(REPORT, headers=BAD, environ_base=ATTACKER)
    assert_429(resp)
    assert "failed authentications" in resp.json["message"]
    # Counted in the shared Redis, so every gunicorn worker and host sees the same count.
    assert any(b"auth-failures" in key for key in redis_store.conn.keys("LIMITS*"))
    # A valid token from the same address (a village's NAT) is never refused for it.
    assert client.get(REPORT, headers=good_token(), environ_base=ATTACKER).status_code == 404


def test_a_good_client_is_not_limited(client):
    for _ in range(4):
        client.get(REPORT, headers=BAD, environ_base=ATTACKER)
    assert client.get(REPORT, headers=BAD, environ_base=ATTACKER).status_code == 429
    token = good_token()
    # Answers other than 401 never count, however many.
    for _ in range(10):
        assert client.get(REPORT, headers=token, environ_base=GOOD).status_code == 404
    # A client's own occasional mistake stays under its own limit.
    assert client.get(REPORT, headers=bad_token(), environ_base=GOOD).status_code == 401


def test_ipv6_clients_are_counted_by_their_64(client):
    for n in range(5):
        addr = {"REMOTE_ADDR": f"2001:db8:1:2::{n + 1}"}
        assert client.get(REPORT, headers=bad_token(), environ_base=addr).status_code == 401
    rotated = {"REMOTE_ADDR": "2001:db8:1:2:ffff::9"}
    assert client.get(REPORT, headers=bad_token(), environ_base=rotated).status_code == 429
    other = {"REMOTE_ADDR": "2001:db8:1:3::1"}
    assert client.get(REPORT, headers=bad_token(), environ_base=other).status_code == 401


def test_forwarded_for_is_ignored_unless_a_proxy_is_trusted(client):
    # Without SAFEGRID_PROXY_HOPS a client cannot pick a fresh address per request.
    for n in range(5):
        spoof = {"X-Forwarded-For": f"192.0.2.{n}", **bad_token()}
        assert client.get(REPORT, headers=spoof, environ_base=ATTACKER).status_code == 401
    spoof = {"X-Forwarded-For": "192.0.2.99", **bad_token()}
    assert client.get(REPORT, headers=spoof, environ_base=ATTACKER).status_code == 429


def test_behind_a_trusted_proxy_each_client_has_its_own_count(app, settings):
    client = create_app(settings.with_(proxy_hops=1)).test_client()
    proxy = {"REMOTE_ADDR": "127.0.0.1"}

    def get(client_ip: str) -> int:
        headers = {"X-Forwarded-For": client_ip, **bad_token()}
        return client.get(REPORT, headers=headers, environ_base=proxy).status_code

    assert [get("203.0.113.7") for _ in range(6)] == [401] * 5 + [429]
    assert get("198.51.100.20") == 401


def test_a_replayed_bad_token_is_stopped_without_silencing_its_address(client):
    # One phone behind a village's NAT keeps sending its revoked token...
    for _ in range(3):
        assert client.get(REPORT, headers=BAD, environ_base=ATTACKER).status_code == 401
    resp = client.get(REPORT, headers=BAD, environ_base=ATTACKER)
    assert_429(resp)
    assert "this token" in resp.json["message"]
    # ...its neighbours' own mistakes from the same address are still answered 401,
    assert client.get(REPORT, headers=bad_token(), environ_base=ATTACKER).status_code == 401
    # and a good token from there is never refused at all.
    assert client.post(REPORT_POST, json={"client_id": "nat-0001-abcdef", "category": "CHILD"},
                       headers=good_token(), environ_base=ATTACKER).status_code != 429


def test_a_spray_of_made_up_tokens_meets_the_address_limit(client):
    for _ in range(5):
        assert client.get(REPORT, headers=bad_token(), environ_base=ATTACKER).status_code == 401
    resp = client.get(REPORT, headers=bad_token(), environ_base=ATTACKER)
    assert_429(resp)
    assert "from this address" in resp.json["message"]
    assert client.get(REPORT, headers=bad_token(), environ_base=GOOD).status_code == 401


def test_no_token_at_all_is_counted_by_address(client):
    for _ in range(3):
        assert client.get(REPORT, environ_base=ATTACKER).status_code == 401
    assert_429(client.get(REPORT, environ_base=ATTACKER))
    assert client.get(REPORT, environ_base=GOOD).status_code == 401


def test_sms_webhook_is_limited_per_ip(client):
    params = {"secret": "wrong", "id": "1", "from": "+8613912345678", "text": "x"}
    for _ in range(4):
        assert client.get(WEBHOOK, query_string=params, environ_base=ATTACKER).status_code == 403
    assert_429(client.get(WEBHOOK, query_string=params, environ_base=ATTACKER))
    # Kannel on loopback is another address and keeps its own budget.
    kannel = {"REMOTE_ADDR": "127.0.0.1"}
    assert client.get(WEBHOOK, query_string=params, environ_base=kannel).status_code == 403
    # The API's failed-auth budget is separate from the webhook's.
    assert client.get(REPORT, headers=BAD, environ_base=ATTACKER).status_code == 401


def test_login_limit_decorator_limits_posts_per_ip(app, client):
    # The hook the login endpoint uses, on a stand-in view.
    app.add_url_rule("/api/v1/test-login", "test_login",
                     login_limit(lambda: ({"ok": True}, 200)), methods=["GET", "POST"])
    for _ in range(2):
        assert client.post("/api/v1/test-login", environ_base=ATTACKER).status_code == 200
    resp = client.post("/api/v1/test-login", environ_base=ATTACKER)
    assert_429(resp)
    assert "login attempts" in resp.json["message"]
    assert client.get("/api/v1/test-login", environ_base=ATTACKER).status_code == 200
    assert client.post("/api/v1/test-login", environ_base=GOOD).status_code == 200


def test_limits_are_off_when_disabled(app, settings):
    client = create_app(settings.with_(rate_limits_enabled=False)).test_client()
    for _ in range(8):
        assert client.get(REPORT, headers=BAD, environ_base=ATTACKER).status_code == 401
        resp = client.get(WEBHOOK, query_string={"secret": "wrong"}, environ_base=ATTACKER)
        assert resp.status_code == 403
    assert not redis_store.conn.keys("LIMITS*")


def test_redis_down_fails_open_and_counts_in_memory(settings, caplog):
    down = settings.with_(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = create_app(down).test_client()
    try:
        for _ in range(3):
            assert client.get(REPORT, headers=BAD, environ_base=ATTACKER).status_code == 401
        assert_429(client.get(REPORT, headers=BAD, environ_base=ATTACKER))
        assert any("falling back to in-memory" in r.getMessage() for r in caplog.records)
        # A new app on a live Redis counts there again at once (the process-wide
        # limiter forgets the earlier "storage dead" state).
        live = create_app(settings).test_client()
        redis_store.conn.flushdb()
        assert live.get(REPORT, headers=BAD, environ_base=ATTACKER).status_code == 401
        assert redis_store.conn.keys("LIMITS*")
    finally:
        redis_store.conn.flushdb()
        get_db().client.drop_database(get_db().name)


def test_a_bad_limit_string_stops_the_app_at_start(settings):
    with pytest.raises(ValueError, match="SAFEGRID_RATE_LIMIT_LOGIN"):
        create_app(settings.with_(rate_limit_login="ten a minute"))


def test_an_attacker_behind_the_same_nat_cannot_stop_a_report(client, county):
    from tests.helpers import auth, token_of

    for _ in range(10):
        client.post(REPORT_POST, headers=BAD, environ_base=ATTACKER, json={})
    assert client.get(REPORT, headers=BAD, environ_base=ATTACKER).status_code == 429
    resp = client.post(REPORT_POST, headers=auth(token_of(county, "reporter 张秀英")),
                       environ_base=ATTACKER, json={"client_id": "nat-0001", "category": "CHILD",
                                                    "details": "村口有人抱走小孩"})
    assert resp.status_code == 201, resp.json


def test_the_limiter_skips_only_requests_no_limit_could_count(client, county, monkeypatch):
    """A valid token on an endpoint whose only limit is the failed-auth one costs no limiter
    work; a bad token there, or a valid one where another limit applies, still does."""
    from gateway.extensions import limiter
    from tests.helpers import auth, token_of

    resolved: list[str] = []
    real = limiter.limit_manager.resolve_limits

    def spy(app, endpoint, *args, **kwargs):  # type: ignore[no-untyped-def]
        resolved.append(endpoint)
        return real(app, endpoint, *args, **kwargs)

    monkeypatch.setattr(limiter.limit_manager, "resolve_limits", spy)
    reporter = auth(token_of(county, "reporter 张秀英"))
    report = {"client_id": "skip-0001", "category": "CHILD", "details": "有人抱走小孩"}
    resp = client.post(REPORT_POST, headers=reporter, environ_base=GOOD, json=report)
    assert resp.status_code == 201, resp.json
    assert resolved == []
    assert client.post(REPORT_POST, headers=BAD, environ_base=GOOD, json={}).status_code == 401
    assert resolved == ["reports.Reports"]
    # The login endpoint has a limit of its own: a valid token does not skip it.
    client.post("/api/v1/auth/login", headers=reporter, environ_base=GOOD,
                json={"phone": "+8613800000000", "password": "wrong-password"})
    assert resolved[-1] == "auth.Login"
