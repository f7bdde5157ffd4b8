"""/metrics for Prometheus, and a request id for every request (docs/metrics.md).

/metrics answers a bearer token equal to SAFEGRID_METRICS_TOKEN (compared in constant
time). Without a token configured it answers only a request from loopback that no
proxy forwarded (no X-Forwarded-For: nginx on the same host would otherwise make
every client look local): a scraper on the host itself. Otherwise 401 (no or wrong
token) or 403 (no token configured, not from loopback).
"""

from __future__ import annotations

import hmac
import ipaddress
import time

from flask import Blueprint, Flask, Response, current_app, request
from flask_smorest import abort
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import jsonlog, telemetry
from gateway.observe.collector import registry
from gateway.settings import Settings

blp = Blueprint("metrics", __name__)
REQUEST_ID_HEADER = "X-Request-Id"


@blp.get("/metrics")
def metrics() -> Response:
    settings: Settings = current_app.config["SAFEGRID"]
    token = settings.metrics_token
    if token:
        presented = request.headers.get("Authorization", "")
        scheme, _, value = presented.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode(), token.encode()):
            abort(401, message="a bearer token for /metrics is required",
                  headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    elif not _from_loopback():
        abort(403, message="/metrics answers loopback only; set SAFEGRID_METRICS_TOKEN")
    return Response(generate_latest(registry()), mimetype=CONTENT_TYPE_LATEST)


def _from_loopback() -> bool:
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    try:
        return ipaddress.ip_address(request.environ.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def init_app(app: Flask) -> None:
    """Serve /metrics; give every request an id (logged, queued with its jobs, echoed)."""
    app.register_blueprint(blp)

    @app.before_request
    def start_request() -> None:
        telemetry.request_started.set(time.perf_counter())
        jsonlog.request_id.set(jsonlog.accept_request_id(request.headers.get(REQUEST_ID_HEADER)))

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        current = jsonlog.request_id.get()
        if current is not None:
            response.headers[REQUEST_ID_HEADER] = current
        return response
