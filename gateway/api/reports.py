"""Reports filed from the app (强制报告 and grid workers' reports)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort

from gateway import gridcache
from gateway.api.schemas import ReportInSchema, ReportOutSchema, error_responses
from gateway.auth import current_principal, require
from gateway.documents import Report
from gateway.intake import NewReport, file_report

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
    def post(self, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """File a report; idempotent on `client_id`."""
        principal = current_principal()
        point = data["location"]
        grid_code = data["grid_code"]
        if grid_code is not None and grid_code not in gridcache.current().cells:
            abort(422, message=f"unknown grid code {grid_code}",
                  errors={"json": {"grid_code": [f"no grid cell has code {grid_code}"]}})
        assert principal.subject_id is not None
        report, created = file_report(NewReport(
            reporter_id=principal.subject_id,
            client_id=data["client_id"],
            category=data["category"],
            details=data["details"],
            source="app",
            lat=point["lat"] if point else None,
            lon=point["lon"] if point else None,
            datum=point["datum"] if point else "wgs84",
            grid_code=grid_code,
        ))
        return report, 201 if created else 200


@blp.route("/reports/<string:code>")
class ReportByCode(MethodView):
    @require("reporter")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, REPORT_OUT)
    def get(self, code: str) -> Report:
        """One of the caller's own reports, with its status."""
        report = Report.objects(code=code.upper()).first()
        # Someone else's report answers exactly like a missing one: codes are not an oracle.
        if report is None or str(report.reporter_id) != current_principal().subject_id:
            abort(404, message=f"no report {code.upper()} of yours")
        return report
