"""Missing-child alerts: issue, read, update, found, cancel (supervisors, county desk)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from gateway.access.tokens import current_principal, require
from gateway.alert_api.schemas import (
    ActiveAlertSchema,
    AlertCancelSchema,
    AlertInSchema,
    AlertOutSchema,
    AlertUpdateSchema,
    CoverageSchema,
)
from gateway.alerts import cap, coverage, issuing
from gateway.alerts.records import Alert
from gateway.extensions import public_limit
from gateway.fields import error_responses

blp = Blueprint("alerts", __name__, description="Missing-child rapid alerts (寻人)")
ALERT = AlertOutSchema()
ISSUERS = ("supervisor", "officer")  # officers of the county desk only: issuing.issuer


@blp.route("/alerts")
class Alerts(MethodView):
    @require(*ISSUERS)
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 409, 415, 422)
    @blp.arguments(AlertInSchema)
    @blp.response(201, ALERT)
    def post(self, data: dict[str, Any]) -> Alert:
        """Issue an alert (supervisor, or an officer of the county desk); audited."""
        return issuing.issue(current_principal(), data)


@blp.route("/alerts/active")
class ActiveAlerts(MethodView):
    @require("reporter")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403)
    @blp.response(200, ActiveAlertSchema(many=True))
    def get(self) -> list[Alert]:
        """Open alerts that have reached your cell, newest first (the app's 寻人 list)."""
        return coverage.active_for(current_principal())


@blp.route("/alerts/<string:code>/coverage")
class AlertCoverage(MethodView):
    @require(*ISSUERS)
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, CoverageSchema)
    def get(self, code: str) -> dict[str, Any]:
        """GeoJSON of the cells reached, swept and not yet swept, with counts (the map)."""
        return coverage.coverage(current_principal(), code)


@blp.route("/alerts/<string:code>/cap.xml")
class AlertCap(MethodView):
    @public_limit
    @blp.doc(responses={"200": {
        "description": "the alert's current step as an OASIS CAP 1.2 document: msgType Alert "
                       "(issued), Update (updated; found, with responseType AllClear) or "
                       "Cancel; public, like the alert SMS (no photo link, no officer)",
        "content": {cap.CAP_MIMETYPE: {"schema": {"type": "string"}}}}})
    @error_responses(blp, 404)
    def get(self, code: str) -> Response:
        """An alert as OASIS CAP 1.2 XML, for other alerting systems."""
        return Response(cap.cap_document(cap.public_alert(code)), mimetype=cap.CAP_MIMETYPE)


@blp.route("/alerts/<string:code>")
class OneAlert(MethodView):
    @require(*ISSUERS)
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, ALERT)
    def get(self, code: str) -> Alert:
        """One alert of your county."""
        return issuing.get_alert(current_principal(), code)


@blp.route("/alerts/<string:code>/update")
class UpdateAlert(MethodView):
    @require(*ISSUERS)
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409, 415, 422)
    @blp.arguments(AlertUpdateSchema)
    @blp.response(200, ALERT)
    def post(self, data: dict[str, Any], code: str) -> Alert:
        """News on an open alert, for everyone it reached (one SMS: say what to shorten)."""
        return issuing.update(current_principal(), code, data)


@blp.route("/alerts/<string:code>/found")
class AlertFound(MethodView):
    @require(*ISSUERS)
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409)
    @blp.response(200, ALERT)
    def post(self, code: str) -> Alert:
        """The child is found: the alert ends and its rings stop widening."""
        return issuing.found(current_principal(), code)


@blp.route("/alerts/<string:code>/cancel")
class CancelAlert(MethodView):
    @require(*ISSUERS)
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409, 415, 422)
    @blp.arguments(AlertCancelSchema)
    @blp.response(200, ALERT)
    def post(self, data: dict[str, Any], code: str) -> Alert:
        """Withdraw an alert, with the reason."""
        return issuing.cancel(current_principal(), code, data)
