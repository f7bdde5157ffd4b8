"""SafeGrid's web application: the Flask app factory (the top floor of gateway/).

`create_app(settings)` binds the process (gateway/startup.py), registers every
blueprint (gateway/api/routes.py), serves the docs' assets and installs the
guards that give every error a JSON body. Nothing imports this module but
`wsgi.py`, the tests and the benchmarks.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, redirect, request, send_from_directory
from flask_smorest import abort
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Response

from gateway import bodies, extensions, security, startup
from gateway.alert_api import feeds as alert_feeds
from gateway.alert_api import views as alert_views
from gateway.api.routes import PREFIX, register_blueprints
from gateway.console import alerting as console_alerting  # noqa: F401 - the console's routes
from gateway.console import downloads as console_downloads  # noqa: F401
from gateway.console import entry as console_entry  # noqa: F401
from gateway.console import maps as console_maps  # noqa: F401
from gateway.console import site as console_site
from gateway.console import station as console_station  # noqa: F401
from gateway.errors import Refusal
from gateway.insight_api import views as insight_views
from gateway.observe import views as observe_views
from gateway.open311 import views as open311_views
from gateway.settings import Settings, from_env

log = logging.getLogger(__name__)

API_TITLE = "SafeGrid"
API_VERSION = "v1"

# Swagger UI's files come from the swagger-ui-bundle package and are served by
# SafeGrid itself: the docs page loads nothing from another origin (docs/security.md,
# 4.4). The version is in the path, so the files can be cached for long.
SWAGGER_UI_VERSION = swagger_ui_path.name.removeprefix("swagger-ui-")
SWAGGER_UI_ASSETS = f"/static/swagger-ui/{SWAGGER_UI_VERSION}/"
# Only what flask-smorest's page loads: not the bundle's demo index.html (its
# initializer points at the public petstore), nor its source maps.
SWAGGER_UI_FILES = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}
)
ASSET_MAX_AGE_S = 365 * 86400


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app for `settings` (from the environment when None)."""
    settings = settings or from_env()
    # Named after the package (as when the factory lived in gateway/__init__.py): the
    # app's root path and logger name stay those of `gateway`.
    app = Flask("gateway")
    app.config.update(
        SAFEGRID=settings,
        TESTING=settings.testing,
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        # No ReDoc: the one Python package shipping its script brings another web
        # framework, so /docs redirects to Swagger UI (below) rather than use a CDN.
        OPENAPI_SWAGGER_UI_PATH="/swagger",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_UI_ASSETS,
        # No "valid" badge: Swagger UI would send the spec's URL to validator.swagger.io.
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    startup.configure(settings)
    api = extensions.api
    # RateLimitDocs: a 429 on every operation a rate limit can refuse, in one place.
    api.init_app(app, spec_kwargs={"extra_plugins": [security.RateLimitDocs(app)]})
    api.spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "a token from `safegrid token`"},
    )
    register_blueprints(api)
    # Missing-child alerts: a room beside api/ (which holds its 12 modules), same Api.
    api.register_blueprint(alert_views.blp, url_prefix=PREFIX)
    # The bureau's figures: a room beside api/ too, same Api.
    api.register_blueprint(insight_views.blp, url_prefix=PREFIX)
    # A separate standard API (form bodies, XML, its own error list): outside the
    # OpenAPI document, see gateway/open311/__init__.py.
    app.register_blueprint(open311_views.blp)
    observe_views.init_app(app)  # /metrics; the request id, before any other hook runs
    app.register_blueprint(alert_feeds.blp)  # the CAP Atom feed: not JSON, outside /api
    # The police console's pages (/console/): HTML, outside the OpenAPI document.
    app.register_blueprint(console_site.blp)
    _serve_docs_assets(app)
    _install_guards(app)
    bodies.init_app(app, settings)  # size, nesting and Unicode, before any parser
    security.init_rate_limits(app, settings)  # extensions.limiter on Redis; JSON 429
    security.init_app(app, settings)  # security headers, strict CORS, proxy hops
    return app


def _serve_docs_assets(app: Flask) -> None:
    """Swagger UI's script and stylesheet, from this origin; /docs (once ReDoc) leads there."""

    @app.get(SWAGGER_UI_ASSETS + "<name>")
    def swagger_ui_asset(name: str) -> Response:
        if name not in SWAGGER_UI_FILES:
            abort(404, message="no such Swagger UI file")
        return send_from_directory(str(swagger_ui_path), name, max_age=ASSET_MAX_AGE_S)

    @app.get("/docs")
    def docs() -> Response:
        return redirect("/swagger", code=302)


def _install_guards(app: Flask) -> None:
    """Clear 4xx for bad requests and a JSON body for every error, never a bare 500."""

    @app.before_request
    def name_the_route() -> None:
        # For the access log (deploy/gunicorn_logging.py): the template, never the path.
        if request.url_rule is not None:
            request.environ["safegrid.route"] = request.url_rule.rule

    @app.before_request
    def require_json_body() -> None:
        if request.method in {"POST", "PUT", "PATCH"} and request.path.startswith("/api/"):
            has_body = bool(request.content_length) or request.headers.get("Transfer-Encoding")
            upload = request.path in bodies.UPLOADS and request.mimetype == "multipart/form-data"
            if has_body and not request.is_json and not upload:
                got = request.mimetype or "none"
                abort(415, message=f"Content-Type must be application/json, not {got!r}")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        # flask-smorest's JSON body, with every key of its `errors` made text: a form field
        # named "\r" reaches webargs as None, and None beside str keys cannot be sorted
        # into JSON (a 500 where the client sent a bad form).
        body, status, headers = extensions.api.handle_http_exception(exc)
        if isinstance(body, dict) and "errors" in body:
            body = {**body, "errors": _text_keys(body["errors"])}
        return body, status, headers

    @app.errorhandler(MethodNotAllowed)
    def method_not_allowed(exc: MethodNotAllowed) -> Any:
        # flask-smorest's JSON error drops werkzeug's headers; a 405 must say what is allowed.
        body, status, headers = extensions.api.handle_http_exception(exc)
        return body, status, {**headers, "Allow": ", ".join(exc.valid_methods or ())}

    @app.errorhandler(Refusal)
    def refused(exc: Refusal) -> Any:
        # A room below refused the request: the same JSON body as an abort() in a view.
        extra: dict[str, Any] = {}
        if exc.errors is not None:
            extra["errors"] = exc.errors
        try:
            abort(exc.status, message=exc.message, **extra)
        except HTTPException as http:
            return extensions.api.handle_http_exception(http)

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


def _text_keys(value: Any) -> Any:
    """`value` with every dict key, at any depth, as text (None as "")."""
    if isinstance(value, dict):
        return {("" if key is None else str(key)): _text_keys(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_text_keys(item) for item in value]
    return value
