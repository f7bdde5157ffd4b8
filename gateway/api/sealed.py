"""Reading a clue's reports, and breaking the seal on a reporter's identity (破封).

Officers working a dispatch read its reports: category, details, place, and
who reported only as a role and a kind of organisation. A reporter's name and
phone stay sealed: an officer may "break the glass" with a stated reason; that
read is written to the audit log before anything is shown (no log entry, no
data) and the county supervisor is told by SMS.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from flask import request
from flask.views import MethodView
from flask_limiter import RequestLimit
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gateway import audit, gridcache
from gateway.api.dispatches import visible_dispatch
from gateway.api.schemas import StrictSchema, UtcDateTime, error_responses
from gateway.auth import current_principal, require
from gateway.documents import Officer, Report, Reporter
from gateway.extensions import limit_setting, limiter, per_person, request_principal
from gateway.sms_outbound import queue_sms
from gateway.workflow import supervisor_phone
from grid.documents import Dispatch, utcnow

blp = Blueprint("sealed", __name__, description="A clue's reports; sealed reporter identity")

ORGANISATION_KIND = {
    "grid_worker": "村/社区网格", "teacher": "学校", "medical": "医疗机构",
    "registrar": "婚姻登记机关", "transport": "交通/住宿", "public": "公众",
}


class SealedReportSchema(Schema):
    code = fields.String(required=True)
    category = fields.String(required=True)
    details = fields.String()
    status = fields.String()
    trust = fields.String(allow_none=True)
    source = fields.String()
    cell_code = fields.String(allow_none=True)
    placed_by = fields.String(allow_none=True)
    created_at = UtcDateTime()
    reporter_role = fields.String(metadata={"description": "role only: the identity is sealed"})
    reporter_organisation_kind = fields.String()


class UnsealInSchema(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(10, 500), metadata={
        "description": "why the reporter's identity is needed; audited and shown to the "
                       "county supervisor"})


class IdentitySchema(Schema):
    report_code = fields.String(required=True)
    name = fields.String()
    phone = fields.String()
    role = fields.String()
    organisation = fields.String(allow_none=True)


def _reports(dispatch: Dispatch) -> list[Report]:
    codes = list(dispatch.report_codes or [dispatch.report_code])
    return list(Report.objects(code__in=codes).order_by("created_at"))


@blp.route("/dispatches/<string:dispatch_id>/reports")
class DispatchReports(MethodView):
    @require("officer", "supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, SealedReportSchema(many=True))
    def get(self, dispatch_id: str) -> list[dict[str, Any]]:
        """The dispatch's reports with their details; reporters as role and kind only."""
        principal = current_principal()
        dispatch = visible_dispatch(principal, dispatch_id)
        reports = _reports(dispatch)
        roles = {r.id: r.role for r in Reporter.objects(
            id__in=[rep.reporter_id for rep in reports]).only("role")}
        audit.append(f"{principal.role}:{principal.subject_id}", "dispatch.read_reports",
                     f"dispatch:{dispatch.id}", {"reports": [r.code for r in reports]})
        return [{
            "code": r.code, "category": r.category, "details": r.details, "status": r.status,
            "trust": r.trust, "source": r.source, "cell_code": r.cell_code,
            "placed_by": r.placed_by, "created_at": r.created_at,
            "reporter_role": roles.get(r.reporter_id, "unknown"),
            "reporter_organisation_kind": ORGANISATION_KIND.get(roles.get(r.reporter_id, ""),
                                                                "未知"),
        } for r in reports]


def _unusual_volume(limit: RequestLimit) -> None:
    """Over the break-glass limit: audited, and the supervisor told (once a day per person)."""
    who = per_person()
    audit.append(who, "report.unseal_refused", f"limit:{limit.limit}", {"path": request.path})
    principal = request_principal()
    if principal is None or not principal.subject_id:
        return
    found = Officer.objects(id=ObjectId(principal.subject_id)).only("name", "county_code")
    officer = found.first()  # no Officer for a reporter's or admin's token: no SMS
    phone = supervisor_phone(officer.county_code) if officer else None
    if officer and phone:
        queue_sms(phone,
                  f"【异常破封】{officer.name[:16]}今日查看举报人身份超限，已暂停，请核查审计记录。",
                  "unseal_volume", ref=f"unseal-volume-{who}-{utcnow().date().isoformat()}")


# Per person, not per address: counted before the view, so over the limit nothing is shown.
unseal_limit = limiter.limit(
    limit_setting("rate_limit_unseal"), key_func=per_person, methods=["POST"],
    on_breach=_unusual_volume,
    error_message="too many reporter identities unsealed: your supervisor has been told",
)


@blp.route("/dispatches/<string:dispatch_id>/unseal")
class Unseal(MethodView):
    @unseal_limit
    @require("officer", "supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 415)
    @blp.arguments(UnsealInSchema)
    @blp.response(200, IdentitySchema(many=True))
    def post(self, data: dict[str, str], dispatch_id: str) -> list[dict[str, Any]]:
        """Break the glass: the reporters' names and phones, with a stated reason (audited)."""
        principal = current_principal()
        dispatch = visible_dispatch(principal, dispatch_id)
        reports = _reports(dispatch)
        actor = f"{principal.role}:{principal.subject_id}"
        # Written before anything is shown: if the audit log cannot take it, nothing is.
        entry = audit.append(actor, "report.unseal", f"dispatch:{dispatch.id}",
                             {"reports": [r.code for r in reports], "reason": data["reason"],
                              "station": principal.station_code})
        _tell_supervisor(dispatch, entry.seq)
        people = {p.id: p for p in Reporter.objects(id__in=[r.reporter_id for r in reports])}
        return [{
            "report_code": r.code,
            "name": people[r.reporter_id].name if r.reporter_id in people else "",
            "phone": people[r.reporter_id].phone if r.reporter_id in people else "",
            "role": people[r.reporter_id].role if r.reporter_id in people else "unknown",
            "organisation": people[r.reporter_id].organisation if r.reporter_id in people
            else None,
        } for r in reports]


def _tell_supervisor(dispatch: Dispatch, audit_seq: int) -> None:
    station = gridcache.current().stations.get(dispatch.station_code)
    if station is None:
        return
    phone = supervisor_phone(station.county_code)
    if phone:
        queue_sms(phone,
                  f"【破封提示】{station.name[:16]}查看了线索{dispatch.report_code}"
                  "的举报人身份，请核查审计记录。",
                  "unseal_notice", ref=f"unseal-{dispatch.id}-{audit_seq}")
