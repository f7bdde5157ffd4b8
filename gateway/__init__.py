"""SafeGrid's web application: the Flask app factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, request
from flask_smorest import abort
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from gateway import extensions, security
from gateway.settings import Settings, from_env

log = logging.getLogger(__name__)

API_TITLE = "SafeGrid"
API_VERSION = "v1"


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app for `settings` (from the environment when None)."""
    from gateway import runtime
    from gateway.api import register_blueprints

    settings = settings or from_env()
    app = Flask(__name__)
    app.config.update(
        SAFEGRID=settings,
        TESTING=settings.testing,
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_REDOC_PATH="/docs",
        OPENAPI_REDOC_URL="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js",
        OPENAPI_SWAGGER_UI_PATH="/swagger",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    runtime.configure(settings)
    api = extensions.api
    api.init_app(app)
    api.spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "a token from `safegrid token`"},
    )
    register_blueprints(api)
    _install_guards(app)
    security.init_rate_limits(app, settings)  # extensions.limiter on Redis; JSON 429
    security.init_app(app, settings)  # security headers, strict CORS, proxy hops
    return app


def _install_guards(app: Flask) -> None:
    """Clear 4xx for bad requests and a JSON body for every error, never a bare 500."""

    @app.before_request
    def require_json_body() -> None:
        if request.method in {"POST", "PUT", "PATCH"} and request.path.startswith("/api/"):
            has_body = bool(request.content_length) or request.headers.get("Transfer-Encoding")
            if has_body and not request.is_json:
                got = request.mimetype or "none"
                abort(415, message=f"Content-Type must be application/json, not {got!r}")

    @app.errorhandler(MethodNotAllowed)
    def method_not_allowed(exc: MethodNotAllowed) -> Any:
        # flask-smorest's JSON error drops werkzeug's headers; a 405 must say what is allowed.
        body, status, headers = extensions.api.handle_http_exception(exc)
        return body, status, {**headers, "Allow": ", ".join(exc.valid_methods or ())}

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):
            return extensions.api.handle_http_exception(exc)
        if isinstance(exc, PyMongoError | RedisError):
            log.error("store unavailable on %s %s: %s", request.method, request.path, exc)
            return {"code": 503, "status": "Service Unavailable",
                    "message": "storage is unavailable; retry with the same client_id"}, 503
        log.exception("unhandled error on %s %s", request.method, request.path)
        return {"code": 500, "status": "Internal Server Error",
                "message": "unexpected error; it has been logged"}, 500
