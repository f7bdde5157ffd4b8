"""/openapi.json documents every rate-limit and lockout answer; the docs page loads
nothing from another origin.

Which operations a limit can refuse is not listed here: with every limit at one
request, each operation of /openapi.json is called twice without credentials, and
an operation is rate-limited when the second call gets 429. Each of those must
document a 429 whose body schema and headers the real answer matches, and no other
operation may claim one.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs  # installed with schemathesis (dev extra)
import pytest

from gateway.app import SWAGGER_UI_ASSETS
from tests.gateway.test_security_headers import assert_hardened
from tests.helpers import csp

WEBHOOK_SECRET = "s3cret-for-docs-tests"
SOURCES_ALLOWED = {"'self'", "'none'", "'unsafe-inline'", "data:"}
JS_TYPES = {"text/javascript", "application/javascript"}


@pytest.fixture
def settings(settings):  # type: ignore[override]
    return settings.with_(rate_limit_auth_failures="1/hour", rate_limit_login="1/hour",
                          rate_limit_public="1/hour", rate_limit_sms_webhook="1/hour",
                          sms_webhook_secret=WEBHOOK_SECRET)


def resolve(spec: dict[str, Any], node: Any) -> Any:
    """`node` with every local $ref replaced by what it points to."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve(spec, target)
        return {key: resolve(spec, value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(spec, item) for item in node]
    return node


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in spec["paths"].items()
            for method, op in item.items() if method != "parameters"]


def fill(path: str) -> str:
    """A concrete URL for an OpenAPI path: each {param} a plain token the route accepts."""
    return re.sub(r"\{[^}]+\}", "X0000001", path)


def assert_matches_documented(resp, documented: dict[str, Any]) -> None:
    """The answer has the documented JSON body and every required documented header."""
    schema = documented["content"]["application/json"]["schema"]
    jsonschema_rs.validate(schema, resp.json)
    for name, header in documented.get("headers", {}).items():
        if header.get("required"):
            assert name in resp.headers, name
        if name in resp.headers and header["schema"].get("type") == "integer":
            value = resp.headers[name]
            assert value.isdigit(), (name, value)
            jsonschema_rs.validate(header["schema"], int(value))


def test_every_rate_limited_operation_documents_its_429(client):
    spec = client.get("/openapi.json").json
    limited, unlimited = [], []
    for n, (method, path, op) in enumerate(operations(spec)):
        address = {"REMOTE_ADDR": f"198.51.100.{n + 1}"}  # a fresh budget per operation
        url = fill(path)
        first = client.open(url, method=method, environ_base=address)
        second = client.open(url, method=method, environ_base=address)
        name = f"{method} {path}"
        if second.status_code != 429:
            unlimited.append(name)
            assert "429" not in op["responses"], f"{name} documents a 429 it never answers"
            continue
        limited.append(name)
        assert first.status_code != 429, name
        assert "429" in op["responses"], f"{name} can answer 429 but does not document it"
        documented = resolve(spec, op["responses"]["429"])
        assert "Retry-After" in documented["description"]
        assert_matches_documented(second, documented)
        assert second.json["code"] == 429
        assert second.json["status"] == "Too Many Requests"
    # Every limit is reached: failed auth on the API, login, the SMS webhooks; probes are not.
    assert "POST /api/v1/auth/login" in limited
    assert any(name.startswith("GET /api/v1/") for name in limited)
    assert any("/sms/" in name for name in limited)
    assert "GET /healthz" in unlimited


def test_a_real_429_matches_the_documented_shape(client):
    spec = client.get("/openapi.json").json
    documented = resolve(spec, spec["paths"]["/api/v1/auth/login"]["post"]["responses"]["429"])
    assert documented["headers"]["Retry-After"]["required"] is True
    attacker = {"REMOTE_ADDR": "203.0.113.7"}
    body = {"phone": "+8613912345678", "password": "not-the-password"}
    assert client.post("/api/v1/auth/login", json=body, environ_base=attacker).status_code == 401
    resp = client.post("/api/v1/auth/login", json=body, environ_base=attacker)
    assert resp.status_code == 429
    assert resp.mimetype == "application/json"
    assert_matches_documented(resp, documented)
    assert 1 <= int(resp.headers["Retry-After"]) <= 3600
    assert resp.json["message"].endswith(f"retry after {resp.headers['Retry-After']} s")


def test_login_documents_the_lockout_with_the_error_body(client):
    spec = client.get("/openapi.json").json
    responses = spec["paths"]["/api/v1/auth/login"]["post"]["responses"]
    locked = resolve(spec, responses["423"])
    assert "locked" in locked["description"]
    assert locked["content"]["application/json"]["schema"] == spec["components"]["schemas"][
        "Error"]
    # Every documented 4xx says what body comes with it.
    for method, path, op in operations(spec):
        for code, response in op["responses"].items():
            if code.startswith("4"):
                assert "content" in resolve(spec, response), (method, path, code)


# --- The docs page -------------------------------------------------------------


def assets(html: str) -> list[str]:
    """URLs of the page's <script src> and <link href>: what the browser fetches."""
    return re.findall(r'<script[^>]*\bsrc="([^"]+)"', html) + re.findall(
        r'<link[^>]*\bhref="([^"]+)"', html)


def test_swagger_page_loads_only_same_origin_assets(client):
    resp = client.get("/swagger")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    urls = assets(html)
    assert any(u.endswith("swagger-ui-bundle.js") for u in urls), html[:400]
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme, url
        assert not parts.netloc, url
        assert url.startswith(SWAGGER_UI_ASSETS), url
    assert "validator.swagger.io" not in html
    assert '"validatorUrl": null' in html


def test_swagger_assets_are_served_with_their_types(client):
    urls = assets(client.get("/swagger").get_data(as_text=True))
    for url in urls:
        resp = client.get(url)
        assert resp.status_code == 200, url
        assert resp.data, url
        expected = {"text/css"} if url.endswith(".css") else JS_TYPES
        assert resp.mimetype in expected, (url, resp.mimetype)
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "max-age" in resp.headers["Cache-Control"]  # versioned path


@pytest.mark.parametrize("name", [
    "index.html", "swagger-initializer.js", "swagger-ui-bundle.js.map", "..%2F__init__.py",
    "nothing.js",
])
def test_only_the_pages_assets_are_served(client, name):
    resp = client.get(SWAGGER_UI_ASSETS + name)
    assert resp.status_code == 404
    assert resp.json["code"] == 404


def test_docs_page_csp_names_no_other_origin(client):
    resp = client.get("/swagger")
    assert_hardened(resp)
    policy = csp(resp)
    for directive, sources in policy.items():
        for source in sources:
            assert source in SOURCES_ALLOWED or source.startswith("'sha256-"), (directive, source)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"][0] == "'self'"
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert policy["connect-src"] == ["'self'"]  # the spec, from this origin
    assert policy["frame-ancestors"] == ["'none'"]


def test_docs_page_inline_script_is_allowed_by_its_hash(client):
    resp = client.get("/swagger")
    html = resp.get_data(as_text=True)
    inline = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert inline
    assert "SwaggerUIBundle" in inline[0]  # flask-smorest's page still has one to hash
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp(resp)["script-src"]


def test_docs_leads_to_swagger(client):
    resp = client.get("/docs")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/swagger"
