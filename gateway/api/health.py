"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from mongoengine.connection import get_db

from gateway.extensions import redis_store
from gateway.security import forwarding_warning

blp = Blueprint("health", __name__, description="Liveness and readiness probes")


class HealthSchema(Schema):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String())
    warnings = fields.List(fields.String(), metadata={
        "description": "settings to fix that do not make the process unready"})


@blp.route("/healthz")
class Healthz(MethodView):
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, object]:
        """The process is alive."""
        return {"status": "ok", "checks": {}}


@blp.route("/readyz")
class Readyz(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="MongoDB or Redis unreachable")
    def get(self) -> tuple[dict[str, Any], int]:
        """MongoDB and Redis are reachable (503 otherwise); warnings name settings to fix."""
        checks: dict[str, str] = {}
        try:
            get_db().command("ping")
            checks["mongodb"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["mongodb"] = f"unreachable: {type(exc).__name__}"
        try:
            redis_store.conn.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["redis"] = f"unreachable: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        warning = forwarding_warning()
        body = {"status": "ready" if ready else "not ready", "checks": checks,
                "warnings": [warning] if warning else []}
        return body, 200 if ready else 503
