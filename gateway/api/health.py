"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import logging
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from mongoengine.connection import get_db
from redis.sentinel import MasterNotFoundError

from gateway import runtime
from gateway.extensions import no_master_message, redis_store
from gateway.security import forwarding_warning

log = logging.getLogger(__name__)

blp = Blueprint("health", __name__, description="Liveness and readiness probes")


class HealthSchema(Schema):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String())
    warnings = fields.List(fields.String(), metadata={
        "description": "settings to fix that do not make the process unready"})
    reasons = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "for each failed check, a code: `unreachable`, or `no-master` "
                       "(the Redis sentinels name no master); the check's text says more"})


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
        reasons: dict[str, str] = {}
        try:
            get_db().command("ping")
            checks["mongodb"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["mongodb"] = f"unreachable: {type(exc).__name__}"
            reasons["mongodb"] = "unreachable"
        try:
            redis_store.conn.ping()
            checks["redis"] = "ok"
        except MasterNotFoundError:
            message = no_master_message(runtime.settings())
            log.error("not ready: %s", message)
            checks["redis"] = f"no master: {message}"
            reasons["redis"] = "no-master"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["redis"] = f"unreachable: {type(exc).__name__}"
            reasons["redis"] = "unreachable"
        ready = not reasons
        warning = forwarding_warning()
        body = {"status": "ready" if ready else "not ready", "checks": checks,
                "reasons": reasons, "warnings": [warning] if warning else []}
        return body, 200 if ready else 503
