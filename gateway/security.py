"""Abuse controls and browser hardening: rate limits, security headers, strict CORS.

`init_rate_limits` binds the limiter of `gateway.extensions` to Redis, and
`RateLimitDocs` documents its 429s in /openapi.json; `init_app` adds the headers
every response carries and answers CORS. docs/security.md says which threat each
control answers. CORS is implemented here (a few lines) rather than with
flask-cors, so the allow-list semantics are exact and visible.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from apispec import APISpec, BasePlugin
from flask import Flask, Response, request
from flask_limiter import ExemptionScope, RateLimitExceeded
from flask_limiter.util import get_qualified_name
from flask_smorest import abort
from limits import parse_many
from redis.exceptions import RedisError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import Rule

from gateway.access.tokens import request_principal
from gateway.custody import unsealing
from gateway.extensions import (
    AUTH_FAILURES_SCOPES,
    limiter,
    limiter_storage,
    redis_store,
    skip_limiter_when,
    trust_valid_credentials,
)
from gateway.settings import Settings

LIMIT_SETTINGS = (
    "rate_limit_auth_failures", "rate_limit_auth_failures_address", "rate_limit_login",
    "rate_limit_public", "rate_limit_sms_webhook",
)
# A slow Redis must not hold a request: the limiter then fails open (extensions.limiter).
REDIS_TIMEOUT_S = 0.5

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()"
)
HSTS = "max-age=31536000"  # one year (ASVS 14.4.5 asks for at least ~six months)

CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_HEADERS = ("Authorization", "Content-Type")
# CORS-safelisted request headers a browser may still list in a preflight.
_SAFELISTED = {"accept", "accept-language", "content-language"}
CORS_MAX_AGE_S = 600
CORS_EXPOSE = "Retry-After, Location, WWW-Authenticate"
_DEFAULT_PORTS = {"http": 80, "https": 443}

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


# --- Rate limits -------------------------------------------------------------


def init_rate_limits(app: Flask, settings: Settings) -> None:
    """Bind `extensions.limiter` to Redis at `settings.redis_url`; JSON 429 with Retry-After."""
    for name in LIMIT_SETTINGS:
        value = getattr(settings, name)
        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"SAFEGRID_{name.upper()}={value!r} is not a rate limit like '30/minute;300/hour'"
            ) from None
    storage_uri, storage_options = limiter_storage(settings)
    # flask-limiter merges each app's storage options into the last one's: start afresh, so
    # a Sentinel app's options never reach a plain Redis storage (tests make both).
    limiter._storage_options.clear()
    app.config.update(
        RATELIMIT_ENABLED=settings.rate_limits_enabled,
        RATELIMIT_STORAGE_URI=storage_uri,
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": REDIS_TIMEOUT_S,
                                   "socket_timeout": REDIS_TIMEOUT_S, **storage_options},
    )
    limiter.init_app(app)
    trust_valid_credentials(lambda: request_principal() is not None)
    skip_limiter_when(_nothing_to_count(app))
    # The limiter is one object per process; each app gets fresh storage, so a
    # "Redis is down" flag left by an earlier app (tests) must not carry over.
    limiter._storage_dead = False
    app.register_error_handler(RateLimitExceeded, _too_many_requests)


def _retry_after_s(exc: RateLimitExceeded) -> int:
    window_s = int(exc.limit.limit.get_expiry())
    current = limiter.current_limit
    if current is None:
        return window_s
    try:
        left = math.ceil(current.reset_at - time.time())
    except Exception:  # noqa: BLE001 - storage trouble: the whole window is a safe answer
        return window_s
    return max(1, min(window_s, left))


def _too_many_requests(exc: RateLimitExceeded) -> tuple[dict[str, Any], int, dict[str, str]]:
    """flask-smorest's error shape, and when to come back."""
    retry = _retry_after_s(exc)
    body = {"code": 429, "status": "Too Many Requests",
            "message": f"{exc.description}; retry after {retry} s"}
    return body, 429, {"Retry-After": str(retry)}


# --- Rate limits in /openapi.json --------------------------------------------

RETRY_AFTER_HEADER = {
    "description": "seconds to wait before trying again",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


def _applicable_limits(app: Flask, endpoint: str, method: str) -> list[Any]:
    """Every limit that can refuse `method` on `endpoint`, as flask-limiter resolves a
    request: application limits (the failed-auth one, exempt outside /api/), limits
    decorated on the view or on its MethodView method, and the blueprint's limits when
    no decorated limit overrides them; each for its methods. Needs a request context.
    """
    manager = limiter.limit_manager
    blueprint = endpoint.rpartition(".")[0] or None
    view = app.view_functions[endpoint]
    view_class = getattr(view, "view_class", None)
    handler = getattr(view_class, method.lower(), None) if view_class else None
    scope = manager.exemption_scope(app, endpoint, blueprint)
    limits = [] if scope & ExemptionScope.APPLICATION else list(manager.application_limits)
    if not scope & ExemptionScope.DEFAULT:
        limits += manager.default_limits
    decorated = [*manager.decorated_limits(get_qualified_name(view)),
                 *(manager.decorated_limits(get_qualified_name(handler)) if handler else [])]
    limits += decorated
    if blueprint and not any(limit.override_defaults for limit in decorated):
        limits += manager.blueprint_limits(app, blueprint)
    return [limit for limit in limits if not limit.methods or method.lower() in limit.methods]


# Limits a room counts itself rather than the limiter, by endpoint and method: the
# break-glass limit is one count for the API and the console (gateway/custody/unsealing.py).
ROOM_LIMITS: dict[tuple[str, str], str] = {
    ("sealed.Unseal", "post"): unsealing.LIMIT_MESSAGE,
}


def limit_messages(app: Flask, rule: Rule, method: str) -> list[str]:
    """What each limit that can refuse `method` on `rule` says (empty: never 429)."""
    with app.test_request_context(rule.rule, method=method.upper()):
        messages = []
        for limit in _applicable_limits(app, rule.endpoint, method):
            if limit.exempt_when and limit.exempt_when():
                continue
            message = limit.error_message
            text = str(message() if callable(message) else message or "rate limit exceeded")
            if text not in messages:
                messages.append(text)
    room = ROOM_LIMITS.get((rule.endpoint, method.lower()))
    if room is not None and room not in messages:
        messages.append(room)
    return messages


def _nothing_to_count(app: Flask) -> Callable[[], bool]:
    """A request filter: true for a request that no limit can count.

    That is a request with a valid token to an endpoint whose only limits are the
    failed-authentication ones, which exempt valid tokens anyway. Skipping the
    limiter for it saves its per-request resolution (135 → 67 µs of CPU, 5 % of
    app intake's; docs/performance.md); any other limit on the endpoint (login,
    unseal, the SMS webhook, a default) keeps the limiter in the loop.
    """
    only_auth_failures: dict[tuple[str, str], bool] = {}

    def check() -> bool:
        endpoint = request.endpoint
        if endpoint is None or endpoint not in app.view_functions:
            return False
        key = (endpoint, request.method)
        if key not in only_auth_failures:
            only_auth_failures[key] = all(
                limit.scope in AUTH_FAILURES_SCOPES
                for limit in _applicable_limits(app, endpoint, request.method))
        return only_auth_failures[key] and request_principal() is not None

    return check


class RateLimitDocs(BasePlugin):
    """apispec plugin: every operation a rate limit can refuse documents its 429.

    One place for all limits: the limiter itself says which apply (limit_messages),
    so a limit added on a view, a blueprint or the whole app is documented without
    touching the view. The 429 is the JSON `Error` with a `Retry-After` header, as
    `_too_many_requests` answers. Errors a view documents by description alone
    (login's 401 and 423) get the same `Error` body, which is what the app sends.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app

    def init_spec(self, spec: APISpec) -> None:
        super().init_spec(spec)
        spec.components.header("Retry-After", RETRY_AFTER_HEADER)

    def operation_helper(self, path: str | None = None, operations: dict[str, Any] | None = None,
                         **kwargs: Any) -> None:
        rule = kwargs.get("rule")
        if not isinstance(rule, Rule) or not operations:
            return
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                if (str(code).startswith("4") and isinstance(response, dict)
                        and "content" not in response and "$ref" not in response):
                    response["content"] = {"application/json": {"schema": "Error"}}
            messages = limit_messages(self.app, rule, method)
            if messages and not {"429", 429} & set(responses):
                responses["429"] = {
                    "description": "Too Many Requests: " + "; ".join(messages)
                                   + ". Try again after `Retry-After` seconds.",
                    "headers": {"Retry-After": "Retry-After"},
                    "content": {"application/json": {"schema": "Error"}},
                }


# --- Security headers and CORS ---------------------------------------------


def parse_origins(value: str) -> frozenset[str]:
    """Exact origins from a comma-separated list; ValueError for anything else (no '*')."""
    origins = set()
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if "*" in item:
            raise ValueError(f"SAFEGRID_CORS_ORIGINS lists exact origins; {item!r} has a wildcard")
        parts = urlsplit(item.rstrip("/"))
        try:
            port = parts.port
        except ValueError:
            port = -1
        if (parts.scheme not in _DEFAULT_PORTS or not parts.hostname or port == -1
                or parts.path or parts.query or parts.fragment or parts.username):
            raise ValueError(
                f"SAFEGRID_CORS_ORIGINS: {item!r} is not an origin like https://console.example.cn"
            )
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        netloc = host if port in (None, _DEFAULT_PORTS[parts.scheme]) else f"{host}:{port}"
        origins.add(f"{parts.scheme}://{netloc}")
    return frozenset(origins)


def _doc_path(prefix: str | None, path: str | None) -> str | None:
    if not path:
        return None
    return "/" + "/".join(p.strip("/") for p in (prefix or "", path) if p.strip("/"))


def _docs_csp(body: str) -> str:
    """What the Swagger UI page needs, all from this origin: its script and stylesheet
    (served by SafeGrid, gateway/app.py), the page's own inline bootstrap script
    (by hash, computed from the page served), inline styles (React sets style
    attributes), data: images (the stylesheet's icons) and the spec. No third-party
    origin; still no framing, no forms, no <base>."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(body)
    ]
    return "; ".join((
        "default-src 'none'",
        " ".join(["script-src 'self'", *hashes]),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ))


# --- Behind a proxy ------------------------------------------------------------

# Set (for a day) when a request arrived with X-Forwarded-For while SAFEGRID_PROXY_HOPS is 0.
FORWARDED_UNTRUSTED_KEY = "safegrid:proxy:forwarded-without-hops"
FORWARDED_UNTRUSTED_TTL_S = 24 * 3600
FORWARDED_WARNING = (
    "requests arrive with X-Forwarded-For but SAFEGRID_PROXY_HOPS is 0: per-address limits "
    "count the proxy's address, so one abuser can slow everyone behind it; set "
    "SAFEGRID_PROXY_HOPS to the number of proxies in front (1 behind nginx; docs/security.md)"
)


def forwarding_warning() -> str | None:
    """What /readyz says when a proxy forwards requests SafeGrid was not told to trust."""
    try:
        seen = redis_store.conn.exists(FORWARDED_UNTRUSTED_KEY)
    except RedisError:
        return None  # /readyz reports Redis itself
    return FORWARDED_WARNING if seen else None


def _watch_for_untrusted_proxy(app: Flask) -> None:
    """Remember that a proxy is in front while no hop is trusted (one Redis write a process)."""
    noted: list[bool] = []

    @app.before_request
    def note_forwarded() -> None:
        if noted or "X-Forwarded-For" not in request.headers:
            return
        try:
            redis_store.conn.set(FORWARDED_UNTRUSTED_KEY, "1", ex=FORWARDED_UNTRUSTED_TTL_S)
        except RedisError:
            return  # try again on the next forwarded request
        noted.append(True)


def init_app(app: Flask, settings: Settings) -> None:
    """Security headers on every response; CORS only for allow-listed origins on /api/."""
    if settings.proxy_hops > 0:
        # Trust exactly this many proxies' X-Forwarded-For/-Proto: the real client
        # address for per-IP limits, and request.is_secure for HSTS.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops,
        )
    else:
        _watch_for_untrusted_proxy(app)
    allowed = parse_origins(settings.cors_origins)
    prefix = app.config.get("OPENAPI_URL_PREFIX")
    docs_paths = {
        p for p in (_doc_path(prefix, app.config.get("OPENAPI_REDOC_PATH")),
                    _doc_path(prefix, app.config.get("OPENAPI_SWAGGER_UI_PATH")),
                    _doc_path(prefix, app.config.get("OPENAPI_RAPIDOC_PATH")))
        if p
    }
    docs_paths |= {p + "/" for p in docs_paths}

    def cors_origin() -> str | None:
        """The request's Origin when it may call this path cross-origin, else None."""
        origin = request.headers.get("Origin")
        if origin and request.path.startswith("/api/") and origin.lower() in allowed:
            return origin
        return None

    @app.before_request
    def answer_preflight() -> Response | None:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        if not request.headers.get("Origin"):
            return None
        origin = cors_origin()
        if origin is None:
            abort(403, message="cross-origin requests from this origin are not allowed")
        method = request.headers["Access-Control-Request-Method"].strip().upper()
        if method not in CORS_METHODS:
            abort(403, message=f"method {method[:20]!r} is not allowed cross-origin")
        asked = {h.strip().lower()
                 for h in request.headers.get("Access-Control-Request-Headers", "").split(",")
                 if h.strip()}
        refused = sorted(asked - {h.lower() for h in CORS_HEADERS} - _SAFELISTED)
        if refused:
            names = ", ".join(refused)[:200]
            abort(403, message=f"request headers not allowed cross-origin: {names}")
        response = Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = ", ".join(CORS_METHODS)
        response.headers["Access-Control-Allow-Headers"] = ", ".join(CORS_HEADERS)
        response.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_S)
        response.vary.update(("Access-Control-Request-Method", "Access-Control-Request-Headers"))
        return response

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Permissions-Policy"] = PERMISSIONS_POLICY
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Cross-Origin-Resource-Policy"] = "same-origin"
        if "Content-Security-Policy" not in headers:  # a page may bring its own
            if (request.path in docs_paths and response.mimetype == "text/html"
                    and not response.is_streamed):
                headers["Content-Security-Policy"] = _docs_csp(response.get_data(as_text=True))
            else:
                headers["Content-Security-Policy"] = API_CSP
        if request.path.startswith("/api/"):
            headers.setdefault("Cache-Control", "no-store")
        if settings.https_only or request.is_secure:
            headers["Strict-Transport-Security"] = HSTS
        if allowed and request.path.startswith("/api/"):
            response.vary.add("Origin")
            origin = cors_origin()
            if origin is not None:
                # No Allow-Credentials: the API takes bearer tokens, never cookies.
                headers["Access-Control-Allow-Origin"] = origin
                headers["Access-Control-Expose-Headers"] = CORS_EXPOSE
        return response
