"""The SLA clock of a clue: checking it when due, and climbing the escalation chain.

A dispatch's acknowledgement deadline comes from `grid.escalation.EscalationPolicy`
(`runtime.escalation()`); this module schedules the RQ job that checks it and,
past it, tells the next person up the chain (station duty officer, station chief,
county duty desk, county supervisor) by SMS, again and again until someone
acknowledges. Each check is guarded on the escalation level it was scheduled
for, so a duplicate or stale job does nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Any

from bson import ObjectId
from rq.exceptions import NoSuchJobError
from rq.job import Job

from gateway import gridcache, telemetry
from gateway.delivery import queues
from gateway.delivery.outbound_sms import queue_sms
from gateway.privacy import audit
from gateway.records import tallies
from gateway.records.people import Officer
from gateway.records.updates import update_then_read
from gateway.runtime import escalation
from grid.documents import Dispatch, Station, utcnow
from grid.escalation import overdue
from sms import replies

log = logging.getLogger(__name__)


def _collection() -> Any:
    return Dispatch._get_collection()


def escalation_job_id(dispatch_id: str, level: int) -> str:
    return f"escalate-{dispatch_id}-{level}"


def schedule_escalation(dispatch_id: str, at: dt.datetime, level: int) -> None:
    """Check the dispatch at `at` (naive UTC) and escalate from `level` if still waiting."""
    queues.queue(queues.CRITICAL).enqueue_at(
        at.replace(tzinfo=dt.UTC), escalate, dispatch_id, level,
        job_id=escalation_job_id(dispatch_id, level), result_ttl=600,
        failure_ttl=7 * 24 * 3600)


def cancel_escalation(dispatch_id: str, level: int) -> None:
    """Drop the scheduled check of a dispatch that no longer waits (closed). Idempotent.

    A check that runs anyway finds the dispatch closed and does nothing.
    """
    job_id = escalation_job_id(dispatch_id, level)
    queue = queues.queue(queues.CRITICAL)
    queue.scheduled_job_registry.remove(job_id)
    with contextlib.suppress(NoSuchJobError):  # never scheduled, or already run
        Job.fetch(job_id, connection=queue.connection).delete()


def escalate(dispatch_id: str, level: int) -> str:
    """Climb one step up the chain if the dispatch is still unacknowledged past its deadline.

    Guarded on `escalation_level == level`, so a duplicate or stale run does nothing.
    """
    oid = ObjectId(dispatch_id)
    doc = _collection().find_one({"_id": oid})
    if doc is None or doc.get("escalation_level", 0) != level:
        return "stale"
    now = utcnow()
    if not overdue(doc["status"], doc.get("ack_deadline"), now,
                   acknowledged=doc.get("acknowledged_at") is not None):
        return "not_due"  # acknowledged or closed, or a deadline restarted (its own job runs)
    next_check = doc.get("next_check_at")
    if next_check is not None and now < next_check:
        schedule_escalation(dispatch_id, next_check, level)  # too early: a sweep ran ahead
        return "not_due"
    policy = escalation()
    next_level, role, delay = policy.next_step(level)
    entry = {"action": "escalate", "from": doc["status"], "to": doc["status"], "by": "system",
             "level": next_level, "role": role, "at": now}
    updated = update_then_read(
        _collection(), {"_id": oid, "escalation_level": level, "status": doc["status"]},
        {"$set": {"escalation_level": next_level,
                  "next_check_at": now + dt.timedelta(seconds=delay)},
         "$push": {"history": entry}})
    if updated is None:
        return "stale"
    telemetry.count("escalations", level=next_level)
    if level == 0:  # the clue's first escalation: the station's figure counts it once
        tallies.count_station(doc["station_code"], doc["created_at"], {"esc": 1})
    audit.append("system:escalation", "dispatch.escalate", f"dispatch:{oid}",
                 {"level": next_level, "role": role, "status": doc["status"]})
    phone = _phone_for(role, updated)
    deadline = doc.get("ack_deadline") or now
    minutes = max(1, int((now - deadline).total_seconds() // 60))
    if phone:
        queue_sms(phone, replies.escalation_notice(doc["report_code"], doc["category"], minutes,
                                                   next_level),
                  "escalation", ref=f"escalate-{oid}-{next_level}", report_id=doc["report_id"])
    else:
        log.error("escalation level %d (%s) for dispatch %s has no phone to reach",
                  next_level, role, oid)
    schedule_escalation(dispatch_id, now + dt.timedelta(seconds=delay), next_level)
    return role


def _phone_for(role: str, dispatch: dict[str, Any]) -> str | None:
    """Who to text at this step of the chain: the owning station's, a transfer pending or not.

    The clue is the owning station's until another station accepts it; a request
    to transfer it does not hand its deadline over.
    """
    station_code = dispatch["station_code"]
    snapshot = gridcache.current()
    station = snapshot.stations.get(station_code)
    county = station.county_code if station else None
    if role == "station_duty_officer":
        return station.duty_phone if station else None
    if role == "station_chief":
        doc = Station.objects(code=station_code).only("chief_phone").first()
        return doc.chief_phone if doc else None
    if role == "county_duty_desk":
        desk = snapshot.stations.get(snapshot.county_desk.get(county or "", ""))
        return desk.duty_phone if desk else None
    if role == "county_supervisor":
        return supervisor_phone(county)
    return None


def supervisor_phone(county_code: str | None) -> str | None:
    """The county supervisor's phone (escalations, break-glass notices), if one is on file."""
    supervisor = Officer.objects(role="supervisor", county_code=county_code,
                                 phone__exists=True).only("phone").first()
    return supervisor.phone if supervisor else None


