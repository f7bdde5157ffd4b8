"""Security headers on every answer and strict CORS: allow-listed origins only,
preflights answered or refused. The docs page's CSP: tests/gateway/api/test_openapi_docs.py."""

from __future__ import annotations

import pytest
from bson import ObjectId

from gateway.access.tokens import issue_token
from gateway.app import create_app
from gateway.security import API_CSP, parse_origins
from tests.helpers import csp

REPORT = "/api/v1/reports/R0000000"
CONSOLE = "https://console.example.cn"
EVIL = "https://evil.example.com"


def assert_hardened(resp) -> None:
    h = resp.headers
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["X-Frame-Options"] == "DENY"
    assert h["Referrer-Policy"] == "no-referrer"
    assert "camera=()" in h["Permissions-Policy"]
    assert "geolocation=()" in h["Permissions-Policy"]
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]


def access_control(resp) -> list[str]:
    """Names of the CORS headers in an answer."""
    return [name for name, _ in resp.headers.items() if name.startswith("Access-Control-")]


def test_api_answers_carry_every_header(client):
    token = issue_token("reporter", subject_id=ObjectId())
    for resp in (client.get(REPORT),  # 401
                 client.get(REPORT, headers={"Authorization": f"Bearer {token}"}),  # 404
                 client.get("/api/v1/nowhere")):
        assert_hardened(resp)
        assert resp.headers["Content-Security-Policy"] == API_CSP
        assert csp(resp)["default-src"] == ["'none'"]
        assert resp.headers["Cache-Control"] == "no-store"
        assert "Strict-Transport-Security" not in resp.headers  # plain HTTP
        assert not access_control(resp)


def test_non_api_answers_are_hardened_but_cacheable(client):
    resp = client.get("/healthz")
    assert_hardened(resp)
    assert resp.headers["Content-Security-Policy"] == API_CSP
    assert "no-store" not in resp.headers.get("Cache-Control", "")


def test_hsts_over_https_and_when_configured(client, app, settings):
    resp = client.get("/healthz", base_url="https://safegrid.example.cn")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    assert int(resp.headers["Strict-Transport-Security"].split("=")[1]) >= 15724800
    forced = create_app(settings.with_(https_only=True)).test_client()
    assert "Strict-Transport-Security" in forced.get("/healthz").headers


def test_forwarded_proto_counts_only_behind_a_trusted_proxy(app, client, settings):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.1"}
    assert "Strict-Transport-Security" not in client.get("/healthz", headers=forwarded).headers
    behind = create_app(settings.with_(proxy_hops=1)).test_client()
    assert "Strict-Transport-Security" in behind.get("/healthz", headers=forwarded).headers


# --- CORS ---------------------------------------------------------------------


@pytest.fixture
def cors_client(app, settings):
    return create_app(settings.with_(cors_origins=f"{CONSOLE}, https://other.example.cn")
                      ).test_client()


def test_no_cors_headers_by_default(client):
    resp = client.get(REPORT, headers={"Origin": CONSOLE})
    assert not access_control(resp)
    pre = client.options(REPORT, headers={"Origin": CONSOLE,
                                          "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 403
    assert not access_control(pre)


def test_allowed_origin_gets_cors_headers(cors_client):
    resp = cors_client.get(REPORT, headers={"Origin": CONSOLE})
    assert resp.status_code == 401
    assert resp.headers["Access-Control-Allow-Origin"] == CONSOLE
    assert "Origin" in resp.headers["Vary"]
    assert "Retry-After" in resp.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in resp.headers


def test_disallowed_origin_gets_no_cors_headers(cors_client):
    for origin in (EVIL, "null", CONSOLE + ".evil.com", "http://console.example.cn"):
        resp = cors_client.get(REPORT, headers={"Origin": origin})
        assert not access_control(resp), origin
        assert "Origin" in resp.headers["Vary"]


def test_cors_is_for_the_api_only(cors_client):
    resp = cors_client.get("/healthz", headers={"Origin": CONSOLE})
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_preflight_from_an_allowed_origin(cors_client):
    resp = cors_client.options("/api/v1/reports", headers={
        "Origin": CONSOLE, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == CONSOLE
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert int(resp.headers["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in resp.headers
    assert_hardened(resp)


@pytest.mark.parametrize(("origin", "method", "headers"), [
    (EVIL, "POST", "authorization"),
    ("null", "GET", ""),
    (CONSOLE, "TRACE", ""),
    (CONSOLE, "POST", "authorization, x-debug-impersonate"),
])
def test_preflight_refused(cors_client, origin, method, headers):
    resp = cors_client.options("/api/v1/reports", headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers})
    assert resp.status_code == 403
    assert resp.json["code"] == 403
    assert resp.json["status"] == "Forbidden"
    assert resp.json["message"]
    assert "Access-Control-Allow-Methods" not in resp.headers


def test_preflight_is_not_rate_limited(app, settings):
    client = create_app(settings.with_(cors_origins=CONSOLE, rate_limit_auth_failures="1/minute")
                        ).test_client()
    bad = {"Origin": CONSOLE, "Authorization": "Bearer sg_nope"}
    client.get(REPORT, headers=bad)
    assert client.get(REPORT, headers=bad).status_code == 429
    pre = client.options(REPORT, headers={"Origin": CONSOLE,
                                          "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 204
    # The 429 itself is readable by the allowed origin, Retry-After included.
    limited = client.get(REPORT, headers=bad)
    assert limited.headers["Access-Control-Allow-Origin"] == CONSOLE
    assert "Retry-After" in limited.headers


def test_origins_setting_is_exact():
    assert parse_origins("") == frozenset()
    assert parse_origins(" https://A.example.cn:443/ , http://localhost:5173") == {
        "https://a.example.cn", "http://localhost:5173"}
    for bad in ("*", "https://*.example.cn", "https://a.example.cn/app", "ftp://a.example.cn",
                "a.example.cn", "https://u:p@a.example.cn"):
        with pytest.raises(ValueError, match="SAFEGRID_CORS_ORIGINS"):
            parse_origins(bad)
