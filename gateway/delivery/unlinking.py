"""Unlinking: an officer takes a report out of a clue it does not belong to.

Linking is a rule (docs/linking.md) and a rule can be wrong about one incident.
The station holding the clue (or the county's supervisor) takes the report out
with a reason: it leaves its case and every dispatch of it, and becomes a case
of its own with its own dispatch at the same station(s). That dispatch must be
acknowledged under a running SLA: its deadline counts from when the report was
first routed, never restarted, so unlinking cannot buy a clue time.

Each step is one guarded single-document update, in an order that leaves
nothing lost if it stops half-way: the report moves to its new case first, so
closing the old clue no longer closes it; then each old dispatch lets it go (a
history entry, the audit log) and a new one takes it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bson import ObjectId

from gateway import gridcache
from gateway.access.tokens import Principal
from gateway.delivery import cases, routing, workflow
from gateway.delivery.escalation import schedule_escalation
from gateway.delivery.visibility import held_dispatch
from gateway.errors import Refusal
from gateway.privacy import audit
from gateway.records.reports import Report
from gateway.runtime import escalation
from grid.documents import Case, Dispatch, utcnow


def _refuse(code: str, message: str, status: str | None) -> Refusal:
    errors: dict[str, Any] = {"code": code}
    if status is not None:
        errors["current_status"] = status
    return Refusal(409, message, errors)


def unlink(principal: Principal, dispatch_id: str, report_code: str,
           reason: str) -> tuple[Dispatch, Dispatch]:
    """Take `report_code` out of the clue; returns (the clue, the report's new dispatch).

    Refusal 404/403 as for the other actions on a dispatch; 409 when the clue is
    closed, does not hold the report, or holds nothing else.
    """
    dispatch = held_dispatch(principal, dispatch_id)
    if dispatch.status == "closed":
        raise _refuse("not_allowed", "cannot unlink from a closed clue", dispatch.status)
    report = Report.objects(code=report_code.strip().upper()).first()
    if report is None or dispatch.id not in (report.dispatch_ids or ()):
        raise _refuse("not_in_clue", f"report {report_code} is not in this clue",
                      dispatch.status)
    if cases.dispatch_reports(dispatch.id).limit(2).count(with_limit_and_skip=True) < 2:
        raise _refuse("only_report", "the clue's only report cannot leave it", dispatch.status)
    old_case = report.case_id
    new_case = cases.open_case(report, report.cell_code, gridcache.current())
    moved = Report._get_collection().update_one(
        {"_id": report.id, "case_id": old_case, "dispatch_ids": dispatch.id},
        {"$set": {"case_id": new_case, "dispatch_ids": []}})
    if not moved.modified_count:
        Case.objects(id=new_case).delete()
        raise _refuse("not_in_clue", f"report {report_code} left this clue meanwhile",
                      dispatch.status)
    if old_case is not None:
        Case.objects(id=old_case).update_one(dec__report_count=1)
    digest = hashlib.sha256(reason.encode("utf-8")).hexdigest()
    new_dispatch: Dispatch | None = None
    for old in Dispatch.objects(id__in=list(report.dispatch_ids or ())):
        made = _leave(old, report, new_case, principal, reason, digest)
        if old.id == dispatch.id:
            new_dispatch = made
    after = Dispatch.objects(id=dispatch.id).first()
    assert new_dispatch is not None and after is not None  # noqa: PT018 - set in the loop above
    return after, new_dispatch


def _leave(old: Dispatch, report: Report, new_case: ObjectId, principal: Principal,
           reason: str, digest: str) -> Dispatch:
    """The report leaves `old`; a dispatch of its new case at the same station takes it."""
    now = utcnow()
    rest = cases.dispatch_reports(old.id).first()
    if rest is None:
        # A copy that held only this report (the county desk's): it moves with it.
        Dispatch._get_collection().update_one({"_id": old.id}, {
            "$set": {"case_id": new_case},
            "$push": {"history": _entry(principal, "unlink", digest, now,
                                        report_code=report.code)}})
        Report._get_collection().update_one({"_id": report.id},
                                            {"$addToSet": {"dispatch_ids": old.id}})
        audit.append(principal.actor, "dispatch.unlink", f"dispatch:{old.id}",
                     {"report": report.code, "moved_with_it": True, "reason_sha256": digest})
        return Dispatch.objects(id=old.id).first()
    update: dict[str, Any] = {
        "$inc": {"report_count": -1}, "$set": {"updated_at": now},
        "$push": {"history": _entry(principal, "unlink", digest, now, report_code=report.code,
                                    to_case=str(new_case))}}
    if old.report_id == report.id:
        # The clue was known by this report: it goes by its next one now (first, so
        # the report's own dispatch at this station can be made).
        update["$set"].update({"report_id": rest.id, "report_code": rest.code,
                               "reported_at": rest.created_at})
    Dispatch._get_collection().update_one({"_id": old.id}, update)
    # The deadline of the report's own matter counts from its first routing.
    routed_at = report.routed_at or report.created_at
    priority = report.priority or old.priority
    deadline = escalation().deadline(priority, routed_at)
    cell = gridcache.current().cells.get(report.cell_code or "")
    routing.ensure_dispatch(
        report, old.station_code, priority, cell.name if cell else None, report.cell_code,
        tuple(report.flags or ()), new_case, deadline=deadline,
        history=(_entry(principal, "unlinked_from", digest, now,
                        from_dispatch=str(old.id)),))
    made = Dispatch.objects(report_id=report.id, station_code=old.station_code).first()
    # Why it was unlinked, readable by the station on the new clue (sealed, like notes).
    Dispatch._get_collection().update_one({"_id": made.id}, {"$push": {"notes": {
        "text": workflow.seal_text(reason), "by": principal.actor,
        "station": principal.station_code, "at": now}}})
    audit.append(principal.actor, "dispatch.unlink", f"dispatch:{old.id}",
                 {"report": report.code, "to_dispatch": str(made.id), "reason_sha256": digest})
    workflow.announce_delivery(str(made.id), report.id, report.code, report.category,
                               old.station_code, made.cell_name)
    schedule_escalation(str(made.id), deadline, 0)
    return made


def _entry(principal: Principal, action: str, digest: str, now: Any,
           **fields: str) -> dict[str, Any]:
    # The reason only as its digest: history and audit are never rewritten.
    return {"action": action, "by": principal.actor, "station": principal.station_code,
            "reason_sha256": digest, "at": now, **fields}
