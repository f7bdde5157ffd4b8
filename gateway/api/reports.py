"""Reports filed from the app (强制报告 and grid workers' reports)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from gateway.access.tokens import current_principal, require
from gateway.api.schemas import ReportInSchema, ReportOutSchema, error_responses
from gateway.intake.reports import file_app_report, own_report, seconds_to_next_hour
from gateway.records.reports import Report

blp = Blueprint("reports", __name__, description="Suspicion reports filed by reporters")
# Schema instances, made once: flask-smorest would build a class's instance per request.
REPORT_OUT = ReportOutSchema()


@blp.route("/reports")
class Reports(MethodView):
    @require("reporter")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 415)
    @blp.arguments(ReportInSchema())
    @blp.response(201, REPORT_OUT, description="the report was stored now")
    @blp.alt_response(200, schema=REPORT_OUT, description="this client_id already made it")
    def post(self, data: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """File a report; idempotent on `client_id`. Always stored: past its reporter's
        hourly budget the answer is still 201, with `slow_down` and `Retry-After`."""
        report, created = file_app_report(current_principal(), data)
        headers = {"Retry-After": str(seconds_to_next_hour())} if report.get("slow_down") else {}
        return report, 201 if created else 200, headers


@blp.route("/reports/<string:code>")
class ReportByCode(MethodView):
    @require("reporter")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, REPORT_OUT)
    def get(self, code: str) -> Report:
        """One of the caller's own reports, with its status."""
        return own_report(current_principal(), code)
