"""Unlinking: an officer takes a report out of a clue it does not belong to.

Linking is a rule (docs/linking.md) and a rule can be wrong about one incident.
The station holding the clue (or the county's supervisor) takes the report out
with a reason: it leaves its case and every dispatch of it, and becomes a case
of its own with its own dispatch at the same station(s). That dispatch must be
acknowledged under a running SLA: its deadline counts from when the report was
first routed, never restarted, so unlinking cannot buy a clue time.

Each step is one guarded single-document update, in an order that leaves
nothing lost if it stops half-way: the new dispatches are made first (the
report is then in both clues' inboxes), then the report moves to its new case
in one update (closing the old clue no longer closes it), then each old
dispatch lets it go (its count, a history entry, the audit log) and the new
one is announced to the station.
"""

from __future__ import annotations

import datetime as dt
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
from gateway.records.updates import update_then_read
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
    olds = list(Dispatch.objects(id__in=list(report.dispatch_ids or ())))
    new_case = cases.open_case(report, report.cell_code, gridcache.current())
    now = utcnow()
    digest = hashlib.sha256(reason.encode("utf-8")).hexdigest()
    # First the new dispatches, so that whatever happens next the report is in an inbox.
    made = {old.id: _take(old, report, new_case, principal, digest, now) for old in olds}
    moved = Report._get_collection().update_one(
        {"_id": report.id, "case_id": old_case},
        {"$set": {"case_id": new_case, "dispatch_ids": sorted(made.values())}})
    if not moved.modified_count:  # another officer unlinked it at the same moment
        Case.objects(id=new_case).delete()
        raise _refuse("not_in_clue", f"report {report_code} left this clue meanwhile",
                      dispatch.status)
    if old_case is not None:
        Case.objects(id=old_case).update_one(dec__report_count=1)
    # Acknowledged with the old clue; its own clue waits for an acknowledgement.
    Report.objects(id=report.id, status="acknowledged").update_one(set__status="routed")
    for old in olds:
        _let_go(old, made[old.id], report, new_case, principal, reason, digest, now)
    return (Dispatch.objects(id=dispatch.id).get(), Dispatch.objects(id=made[dispatch.id]).get())


def _take(old: Dispatch, report: Report, new_case: ObjectId, principal: Principal,
          digest: str, now: dt.datetime) -> ObjectId:
    """The dispatch of the new case that takes the report at `old`'s station."""
    rest = cases.dispatch_reports(old.id).filter(id__ne=report.id).first()
    if rest is None:
        return old.id  # a copy that held only this report (the county desk's) moves with it
    if old.report_id == report.id:
        # The clue was known by this report: it goes by its next one now (first, so
        # the report's own dispatch at this station can be made).
        Dispatch._get_collection().update_one(
            {"_id": old.id, "report_id": report.id},
            {"$set": {"report_id": rest.id, "report_code": rest.code,
                      "reported_at": rest.created_at}})
    # The deadline of the report's own matter counts from its first routing.
    priority = report.priority or old.priority
    deadline = escalation().deadline(priority, report.routed_at or report.created_at)
    cell = gridcache.current().cells.get(report.cell_code or "")
    routing.ensure_dispatch(
        report, old.station_code, priority, cell.name if cell else None, report.cell_code,
        tuple(report.flags or ()), new_case, deadline=deadline,
        history=(_entry(principal, "unlinked_from", digest, now, from_dispatch=str(old.id)),))
    return Dispatch.objects(report_id=report.id, station_code=old.station_code).get().id


def _let_go(old: Dispatch, made: ObjectId, report: Report, new_case: ObjectId,
            principal: Principal, reason: str, digest: str, now: dt.datetime) -> None:
    """`old` lets the report go: its history and count, the audit log, and the new
    dispatch announced to the station under its running deadline."""
    collection = Dispatch._get_collection()
    entry = _entry(principal, "unlink", digest, now, report_code=report.code,
                   to_dispatch=str(made))
    if made == old.id:
        collection.update_one({"_id": old.id}, {"$set": {"case_id": new_case},
                                                "$push": {"history": entry}})
        audit.append(principal.actor, "dispatch.unlink", f"dispatch:{old.id}",
                     {"report": report.code, "moved_with_it": True, "reason_sha256": digest})
        return
    collection.update_one({"_id": old.id}, {"$inc": {"report_count": -1},
                                            "$set": {"updated_at": now},
                                            "$push": {"history": entry}})
    # Why it was unlinked, readable by the station on the new clue (sealed, like notes).
    taken = update_then_read(
        collection, {"_id": made}, {"$push": {"notes": {"text": workflow.seal_text(reason),
                                                        "by": principal.actor,
                                                        "station": principal.station_code,
                                                        "at": now}}}) or {}
    audit.append(principal.actor, "dispatch.unlink", f"dispatch:{old.id}",
                 {"report": report.code, "to_dispatch": str(made), "reason_sha256": digest})
    workflow.announce_delivery(str(made), report.id, report.code, report.category,
                               old.station_code, taken.get("cell_name"))
    schedule_escalation(str(made), taken["ack_deadline"], 0)


def _entry(principal: Principal, action: str, digest: str, now: dt.datetime,
           **fields: str) -> dict[str, Any]:
    # The reason only as its digest: history and audit are never rewritten.
    return {"action": action, "by": principal.actor, "station": principal.station_code,
            "reason_sha256": digest, "at": now, **fields}
