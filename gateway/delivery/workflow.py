"""Working a clue: lifecycle transitions on dispatches, and delivery to the station.

Every transition is one guarded single-document update planned by
grid.lifecycle: the dispatch's `history` gets the audit entry in that same
update (so a crash cannot lose it), and the hash-chained audit log gets a copy
right after. Delivery (here) and escalation (gateway/delivery/escalation.py) are
RQ jobs with deterministic ids; each checks the dispatch's state first, so
running twice is harmless.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
from dataclasses import replace
from typing import Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from gateway import gridcache
from gateway.access.tokens import Principal
from gateway.delivery import queues
from gateway.delivery.cases import dispatch_reports
from gateway.delivery.escalation import (
    cancel_escalation,
    escalate,
    escalation_job_id,
    schedule_escalation,
)
from gateway.delivery.outbound_sms import queue_sms
from gateway.errors import Refusal
from gateway.privacy import audit
from gateway.privacy.crypto import keyring
from gateway.records import tallies
from gateway.records.people import Reporter
from gateway.records.reports import DISPATCH_TEXT_CONTEXT, Report
from gateway.records.updates import update_then_read
from gateway.runtime import escalation, settings
from grid import lifecycle
from grid.documents import Case, Dispatch, Station, utcnow
from grid.figures import ack_bin
from sms import replies

log = logging.getLogger(__name__)


class NotFound(LookupError):
    """No such dispatch."""


def _collection() -> Any:
    return Dispatch._get_collection()


def apply(dispatch_id: str, action: str, *, actor: str, actor_station: str | None,
          target_station: str | None = None, outcome: str | None = None,
          reason: str | None = None, duplicate_of: str | None = None) -> dict[str, Any]:
    """Perform `action` on a dispatch as `actor`; raises NotFound or lifecycle.TransitionError."""
    try:
        oid = ObjectId(dispatch_id)
    except Exception as exc:  # noqa: BLE001 - any malformed id is simply not found
        raise NotFound(dispatch_id) from exc
    doc = _collection().find_one({"_id": oid})
    if doc is None:
        raise NotFound(dispatch_id)
    plan = lifecycle.plan(
        action, doc["status"],
        dispatch_station=doc["station_code"], actor_station=actor_station, actor=actor,
        transfer_to=doc.get("transfer_to"),
        status_before_transfer=doc.get("status_before_transfer"),
        target_station=target_station, outcome=outcome, reason=reason,
        known_stations={code for code, station in gridcache.current().stations.items()
                        if station.active},  # no transfers to a deactivated station
        duplicate_of=doc.get("duplicate_of") if action == "reopen" else duplicate_of,
    )
    plan = _sealed(plan)
    now = utcnow()
    fields: dict[str, object] = dict(plan.set_fields)
    fields.update({name: now for name in plan.stamp})
    if plan.restart_sla:
        fields["ack_deadline"] = fields["next_check_at"] = escalation().deadline(
            doc["priority"], now)
    if plan.answer_window:
        fields["transfer_answer_by"] = escalation().deadline(doc["priority"], now)
    entry = {**plan.audit, "at": now}
    push: dict[str, object] = {name: {**item, "at": now} for name, item in plan.push.items()}
    push["history"] = entry
    try:
        updated = update_then_read(_collection(), {"_id": oid, **plan.guard},
                                   {"$set": fields, "$push": push})
    except DuplicateKeyError as exc:
        # accept_transfer onto a station that already holds this report (e.g. the county desk).
        raise lifecycle.TransitionError(
            "not_allowed", "the receiving station already has a dispatch for this report",
            doc["status"]) from exc
    if updated is None:
        current = _collection().find_one({"_id": oid}, {"status": 1}) or {"status": "gone"}
        raise lifecycle.TransitionError(
            "not_allowed", f"the dispatch changed meanwhile: it is {current['status']}",
            current["status"])
    audit.append(actor, f"dispatch.{action}", f"dispatch:{oid}",
                 {k: v for k, v in plan.audit.items() if k != "action" and v is not None})
    _after(action, updated, plan)
    if action == "accept_transfer":  # delivered to the new station meanwhile
        updated = _collection().find_one({"_id": oid}) or updated
    return dict(updated)


def act(principal: Principal, dispatch_id: str, action: str, **inputs: Any) -> dict[str, Any]:
    """An officer's `action` on a dispatch, refused (Refusal) as the API answers it."""
    try:
        return apply(dispatch_id, action, actor=principal.actor,
                     actor_station=principal.station_code, **inputs)
    except NotFound as exc:
        raise Refusal(404, f"no dispatch {dispatch_id}") from exc
    except lifecycle.TransitionError as exc:
        errors: dict[str, Any] = {"code": exc.code}
        if exc.current_state is not None:
            errors["current_status"] = exc.current_state
        raise Refusal(exc.http_status, exc.message, errors) from exc


# Officers' free text may name victims and suspects: sealed in the dispatch. The
# history and the audit log, which are never rewritten (the audit is hash-chained),
# keep only its SHA-256, enough to prove what was said without holding it.
SEALED_TEXT_FIELDS = ("transfer_reason", "transfer_rejection_reason", "outcome_reason",
                      "reopen_reason")


def seal_text(value: object) -> object:
    """An officer's free text sealed for storage (None stays None: it clears a reason)."""
    if not isinstance(value, str):
        return value  # None clears a reason
    return keyring().encrypt(value, context=DISPATCH_TEXT_CONTEXT)


def _sealed(plan: lifecycle.Plan) -> lifecycle.Plan:
    """`plan` with its free text sealed, and only digested in its audit entry."""
    reason = plan.audit.get("reason")
    entry = {k: v for k, v in plan.audit.items() if k != "reason"}
    if isinstance(reason, str):
        entry["reason_sha256"] = hashlib.sha256(reason.encode("utf-8")).hexdigest()
    return replace(
        plan,
        set_fields={k: seal_text(v) if k in SEALED_TEXT_FIELDS else v
                    for k, v in plan.set_fields.items()},
        push={name: {**item, "text": seal_text(item["text"])} if "text" in item else item
              for name, item in plan.push.items()},
        audit=entry,
    )


def _after(action: str, dispatch: dict[str, Any], plan: lifecycle.Plan) -> None:
    """What follows a transition: the reports' status, notices, the next SLA check."""
    report_id = dispatch["report_id"]
    if action == "acknowledge":
        # "received" too: an officer can acknowledge from the inbox before the route job's
        # last write has marked the report routed.
        Report.objects(id=report_id, status__in=("received", "routed")).update_one(
            set__status="acknowledged")
        _count_acknowledged(dispatch)
    elif action == "close":
        _close_everywhere(dispatch)
    elif action == "close_duplicate":
        cancel_escalation(str(dispatch["_id"]), int(dispatch.get("escalation_level", 0)))
    elif action == "reopen":
        _reopen_everywhere(dispatch)
    elif action == "request_transfer":
        target = Station.objects(code=dispatch["transfer_to"]).only("duty_phone").first()
        source = gridcache.current().stations.get(dispatch["station_code"])
        if target is not None and target.duty_phone:
            queue_sms(target.duty_phone,
                      replies.transfer_request_notice(dispatch["report_code"],
                                                      source.name if source else ""),
                      "transfer_notice",
                      ref=f"transfer-{dispatch['_id']}-{len(dispatch.get('history', []))}")
    elif action == "accept_transfer":
        # The reports are held by the new station now: their status says so.
        Report.objects(dispatch_ids=dispatch["_id"], station_code=dispatch["transferred_from"]
                       ).update(set__station_code=dispatch["station_code"])
        deliver(str(dispatch["_id"]))
        tallies.count_station(dispatch["station_code"], dispatch["created_at"], {"tin": 1})
    if plan.restart_sla and dispatch.get("ack_deadline") is not None:
        # From the level the clue stood at: the chain above the station keeps climbing.
        schedule_escalation(str(dispatch["_id"]), dispatch["ack_deadline"],
                            int(dispatch.get("escalation_level", 0)))


def _count_acknowledged(dispatch: dict[str, Any]) -> None:
    """The station's tally: one more clue acknowledged, its time binned, within the SLA or
    not (docs/insight.md)."""
    acked, created = dispatch["acknowledged_at"], dispatch["created_at"]
    deadline = dispatch.get("ack_deadline")
    counts = {"ack": 1, f"b{ack_bin((acked - created).total_seconds())}": 1}
    if deadline is not None and acked <= deadline:
        counts["within"] = 1
    tallies.count_station(dispatch["station_code"], created, counts)


def _close_everywhere(dispatch: dict[str, Any]) -> None:
    """A closed case is closed everywhere: its reports, and every other dispatch of them.

    Each report held by the dispatch takes the case's outcome (its reporter told
    once, by SMS for an SMS report); every other open dispatch of those reports
    (the county desk's copy, another station's) is closed as `duplicate_of` this
    one, its escalation cancelled; the case stops taking new reports.
    """
    others: set[ObjectId] = set()
    for report in dispatch_reports(dispatch["_id"]).only("id", "code", "dispatch_ids"):
        closed = Report.objects(id=report.id, status__in=("received", "routed", "acknowledged")
                                ).update_one(set__status="closed", set__outcome=dispatch["outcome"])
        if closed:
            _tell_reporter_closed(report.id, report.code)
        others.update(report.dispatch_ids or ())
    cancel_escalation(str(dispatch["_id"]), int(dispatch.get("escalation_level", 0)))
    others.discard(dispatch["_id"])
    for other in _collection().find({"_id": {"$in": sorted(others)},
                                     "status": {"$ne": "closed"}}, {"_id": 1}):
        # A copy closed meanwhile by its own station stays as that station closed it.
        with contextlib.suppress(lifecycle.TransitionError):
            apply(str(other["_id"]), "close_duplicate", actor="system:case_closed",
                  actor_station=None, duplicate_of=str(dispatch["_id"]))
    if dispatch.get("case_id") is not None and _collection().find_one(
            {"case_id": dispatch["case_id"], "status": {"$ne": "closed"}}, {"_id": 1}) is None:
        Case.objects(id=dispatch["case_id"]).update_one(set__open=False)


def _reopen_everywhere(dispatch: dict[str, Any]) -> None:
    """A reopened clue's reports are worked again, and its case takes new reports again.

    The copies closed as its duplicates stay closed: the reopened clue is the one
    being worked. Reporters are not texted (a closing notice was final to them).
    """
    for report in dispatch_reports(dispatch["_id"]).only("id"):
        Report.objects(id=report.id, status="closed").update_one(
            set__status="acknowledged", unset__outcome=True)
    if dispatch.get("case_id") is not None:
        Case.objects(id=dispatch["case_id"]).update_one(set__open=True)


def _tell_reporter_closed(report_id: ObjectId, code: str) -> None:
    report = Report.objects(id=report_id).only("reporter_id", "source").first()
    reporter = Reporter.objects(id=report.reporter_id).only("phone").first() if report else None
    if report is not None and report.source == "sms" and reporter is not None:
        queue_sms(reporter.phone, replies.closed_notice(code), "closed_notice",
                  ref=f"closed-{report_id}")


# --- delivery ---------------------------------------------------------------------------

def deliver(dispatch_id: str) -> str:
    """Put a new dispatch in its station's inbox and text the duty phone. Idempotent."""
    doc = _collection().find_one({"_id": ObjectId(dispatch_id)})
    if doc is None:
        return "missing"
    if doc["status"] != "new":
        return doc["status"]
    try:
        apply(dispatch_id, "deliver", actor="system:deliver", actor_station=None)
    except lifecycle.TransitionError as exc:
        return exc.current_state or "changed"  # someone acted first: nothing to deliver
    _notify_station(doc["_id"], doc["report_id"], doc["report_code"], doc["category"],
                    doc["station_code"], doc.get("cell_name"))
    return "delivered"


def announce_delivery(dispatch_id: str, report_id: ObjectId, report_code: str, category: str,
                      station_code: str, cell_name: str | None) -> None:
    """For a dispatch created already delivered: the audit entry and the duty-phone SMS."""
    audit.append("system:route", "dispatch.deliver", f"dispatch:{dispatch_id}",
                 {"station": station_code, "to": "delivered"})
    _notify_station(dispatch_id, report_id, report_code, category, station_code, cell_name)


def _notify_station(dispatch_id: object, report_id: ObjectId, report_code: str, category: str,
                    station_code: str, cell_name: str | None) -> None:
    station = gridcache.current().stations.get(station_code)
    if station is not None and station.duty_phone:
        # Code, category and cell only: no victim or reporter details in an SMS.
        queue_sms(station.duty_phone, replies.dispatch_notice(report_code, category, cell_name),
                  "dispatch_notice", ref=f"notice-{dispatch_id}-{station_code}",
                  report_id=report_id)


def enqueue_deliver(dispatch_id: str) -> None:
    queues.queue(queues.CRITICAL).enqueue(deliver, dispatch_id, job_id=f"deliver-{dispatch_id}",
                                          result_ttl=600, failure_ttl=7 * 24 * 3600)


def sweep_dispatches(grace_s: int | None = None) -> tuple[int, int]:
    """Safety net: deliver what was never delivered, escalate what no job is watching.

    Returns (delivered, escalation checks queued). Idempotent.
    """
    now = utcnow()
    if grace_s is None:
        grace_s = settings().sweep_after_s
    cutoff = now - dt.timedelta(seconds=grace_s)
    delivered = 0
    for doc in _collection().find({"status": "new", "created_at": {"$lte": cutoff},
                                   "transferred_at": None}, {"_id": 1}):
        enqueue_deliver(str(doc["_id"]))
        delivered += 1
    for doc in _collection().find({"status": "new", "transferred_at": {"$lte": cutoff}},
                                  {"_id": 1}):
        enqueue_deliver(str(doc["_id"]))
        delivered += 1
    checks = 0
    for doc in _collection().find(
        {"status": {"$in": ["new", "delivered", "transfer_requested"]},
         "next_check_at": {"$lte": cutoff}},
        {"_id": 1, "escalation_level": 1},
    ):
        level = int(doc.get("escalation_level", 0))
        queues.queue(queues.CRITICAL).enqueue(
            escalate, str(doc["_id"]), level, job_id=escalation_job_id(str(doc["_id"]), level),
            result_ttl=600)
        checks += 1
    return delivered, checks
