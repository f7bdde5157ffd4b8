"""Legal hold (司法保全): a supervisor keeps a report from being anonymised.

A report under hold is never anonymised by retention (gateway/retention.py),
whatever its outcome, until the hold is lifted. Only a supervisor of the
county whose station holds the report may set or lift it, with a reason;
both are audited.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from gateway import gridcache
from gateway.api.schemas import NOT_BLANK, StrictSchema, error_responses
from gateway.auth import current_principal, require
from gateway.documents import Report
from gateway.retention import set_hold

blp = Blueprint("legal_hold", __name__, description="Keeping reports from anonymisation")


class HoldInSchema(StrictSchema):
    hold = fields.Boolean(required=True, metadata={"description": "true sets, false lifts"})
    reason = fields.String(required=True, validate=(validate.Length(1, 500), NOT_BLANK),
                           metadata={"description": "why (audited), e.g. a case number"})


class HoldOutSchema(Schema):
    report_code = fields.String(required=True)
    legal_hold = fields.Boolean(required=True)


@blp.route("/reports/<string:code>/legal-hold")
class LegalHold(MethodView):
    @require("supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409, 415)
    @blp.arguments(HoldInSchema)
    @blp.response(200, HoldOutSchema)
    def put(self, data: dict[str, Any], code: str) -> dict[str, Any]:
        """Set or lift a report's legal hold (supervisors of its county; audited)."""
        principal = current_principal()
        report = Report.objects(code=code.upper()).only("code", "station_code", "flags").first()
        station = gridcache.current().stations.get(report.station_code or "") if report else None
        if report is None or station is None or station.county_code != principal.county_code:
            # Another county's report answers like a missing one: codes are not an oracle.
            abort(404, message=f"no report {code.upper()} in your county")
        if "anonymised" in (report.flags or []):
            abort(409, message=f"{report.code} is already anonymised: nothing is left to hold")
        set_hold(report.code, data["hold"], actor=f"supervisor:{principal.subject_id}",
                 reason=data["reason"])
        return {"report_code": report.code, "legal_hold": data["hold"]}
