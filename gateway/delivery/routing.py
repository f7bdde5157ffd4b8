"""RQ job bodies and their enqueuers, in pairs. Only ids cross the queue.

Every job loads state, checks it, acts, and records the new state in one
guarded single-document update, so running it twice is harmless: workers may
be killed at any line and the sweeper re-enqueues whatever was left behind
(transactional outbox, ARCHITECTURE.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Retry, get_current_job

from gateway import gridcache, telemetry
from gateway.delivery import cases, locating, queues, workflow
from gateway.delivery.escalation import schedule_escalation
from gateway.delivery.outbound_sms import queue_sms
from gateway.extensions import redis_store
from gateway.records import tallies
from gateway.records.people import Reporter
from gateway.records.reports import Location, Report
from gateway.runtime import escalation, rules, settings
from grid import importer, jurisdiction
from grid.documents import Dispatch, utcnow
from grid.escalation import OVERDUE_STATES
from grid.rules import PRIORITIES
from grid.snapshot import GridSnapshot, Placement
from sms import replies

log = logging.getLogger(__name__)

# A routing failure is almost always the store or Redis blinking: retry soon.
ROUTE_RETRY = Retry(max=5, interval=[1, 2, 5, 10, 30])


def route_job_id(report_id: str) -> str:
    return f"route-{report_id}"


def enqueue_route(report_id: str, priority: str,
                  also: Callable[[Pipeline], None] | None = None) -> list[Any] | None:
    """Queue `route(report_id)` on its priority's queue; None when Redis is unreachable.

    `also` may add commands of its own to the same pipeline (still one Redis round
    trip); their answers are at the end of the list returned. A report that could
    not be queued is not lost: it is stored as `received`, and the sweeper queues it again.
    """
    try:
        # One pipeline: one Redis round trip per report instead of two.
        with redis_store.conn.pipeline() as pipe:
            queues.queue(queues.BY_PRIORITY[priority]).enqueue(
                route,
                report_id,
                job_id=route_job_id(report_id),
                retry=ROUTE_RETRY,
                result_ttl=600,
                failure_ttl=7 * 24 * 3600,
                pipeline=pipe,
            )
            if also is not None:
                also(pipe)
            return list(pipe.execute())
    except RedisError:
        log.warning("could not queue report %s; the sweeper will", report_id, exc_info=True)
        return None


def _job_log_extra(report_id: str) -> dict[str, str]:
    job = get_current_job()
    return {"job_id": job.id if job else "-", "report_id": report_id}


def route(report_id: str, *, wait: bool = False) -> str:
    """Place a stored report on the grid and hand it to its station: one Dispatch per
    (report, station), however many times this runs.

    `wait`: when another run is placing it right now, wait for it and answer its
    station (the SMS handler, for the receipt); a queued job just leaves it to that run.
    """
    extra = _job_log_extra(report_id)
    report = Report.objects(id=ObjectId(report_id)).first()
    if report is None:
        log.error("route: no report %s", report_id, extra=extra)
        return "missing"
    if report.status != "received":
        # Routed already (the SMS handler routes inline, then this queued job runs).
        return str(report.station_code)
    # One run at a time per report. The SMS handler routes inline while the route job
    # queued by filing the report runs on a routing worker (another lane): both at
    # once could each join the clue and text the station twice.
    lock, token = ROUTING_LOCK.format(report_id=report_id), secrets.token_hex(8)
    if not _take(lock, token):
        if not wait:
            # Left to that run; should it die, the sweeper re-queues the report.
            return "routing"
        station = _wait_for_other_run(report_id, lock, token)
        if station is not None:
            return station
    # Redis commands of the run's end (the latency metric) ride the lock's release.
    last: list[Callable[[Pipeline], None]] = []
    try:
        return _route(report, extra, last)
    finally:
        _release(lock, token, last)


ROUTING_LOCK = "safegrid:routing:{report_id}"
# Longer than a route takes under load (p99 ~1 s); a run killed while holding it
# delays its report by at most this much (a route outliving it is merely run twice).
ROUTING_LOCK_S = 10
ROUTED_WAIT_S = 15.0


def _take(lock: str, token: str) -> bool:
    return bool(redis_store.conn.set(lock, token, nx=True, ex=ROUTING_LOCK_S))


def _wait_for_other_run(report_id: str, lock: str, token: str) -> str | None:
    """The station another run placed the report at; None once this run holds the lock
    (the other died)."""
    deadline = time.monotonic() + ROUTED_WAIT_S
    while time.monotonic() < deadline:
        time.sleep(0.05)
        done = Report.objects(id=ObjectId(report_id)).only("status", "station_code").first()
        if done is not None and done.status != "received":
            return str(done.station_code)
        if _take(lock, token):
            return None
    # An SMS whose handler fails is re-queued by the sweeper.
    raise RuntimeError(f"report {report_id} is being routed by another run")


# Delete the lock only if it still holds this run's token, in one step on the server.
_RELEASE_LUA = ('if redis.call("get", KEYS[1]) == ARGV[1] then '
                'return redis.call("del", KEYS[1]) else return 0 end')


def _release(lock: str, token: str,
             also: list[Callable[[Pipeline], None]] | tuple[()] = ()) -> None:
    """Drop the lock if it is still this run's (it may have expired and been taken), with
    `also`'s commands in the same round trip."""
    with contextlib.suppress(RedisError), redis_store.conn.pipeline(transaction=False) as pipe:
        for add in also:
            add(pipe)
        pipe.eval(_RELEASE_LUA, 1, lock, token)
        pipe.execute()


def _route(report: Report, extra: dict[str, str],
           last: list[Callable[[Pipeline], None]]) -> str:
    snapshot = gridcache.current()  # one snapshot for placing and for the recipients
    placement = _place(report, snapshot)
    if placement is None:
        # No cell and no county desk at all: fail loudly; RQ retries, the sweeper re-queues.
        raise RuntimeError(f"report {report.id}: the grid has no station to route to")
    placement = _in_force_when_made(placement, report, snapshot)
    rule = rules().rule_for(report.category)
    cell = snapshot.cells.get(placement.cell_code or "")
    cell_name = cell.name if cell else None
    station = snapshot.stations.get(placement.station_code)
    county = cell.county_code if cell else (station.county_code if station else None)
    case_id, opened = cases.attach(report, placement.cell_code, snapshot)
    # The dispatches that hold the report, for it to name in this job's last write.
    joined: list[ObjectId] = []
    clues: list[tuple[str, dt.datetime]] = []  # (station, when) of the dispatches made here
    for station_code in _recipients(snapshot, placement, rule.extra_recipients, county):
        if not opened and _join_case_dispatch(case_id, station_code, report, rule.priority,
                                              joined):
            continue  # the station already works this case: the report joins its dispatch
        created = ensure_dispatch(report, station_code, rule.priority, cell_name,
                                  placement.cell_code, placement.flags, case_id, named=joined)
        if created is not None:
            dispatch_id, deadline = created
            clues.append((station_code, utcnow()))  # a new clue at this station
            # In the inbox from its first write; now the duty-phone SMS and the
            # SLA check. Should this die here, the escalation sweeper still finds
            # the dispatch by its deadline.
            workflow.announce_delivery(dispatch_id, report.id, report.code, report.category,
                                       station_code, cell_name)
            schedule_escalation(dispatch_id, deadline, 0)
    routed_at = utcnow()
    where: dict[str, Any] = {
        "set__case_id": case_id, "set__cell_code": placement.cell_code,
        "set__station_code": placement.station_code, "set__placed_by": placement.method,
        "set__priority": rule.priority, "set__routed_at": routed_at,
        "add_to_set__flags": list(placement.flags), "add_to_set__dispatch_ids": joined,
    }
    newly_routed = Report.objects(id=report.id, status="received").update_one(
        set__status="routed", **where)
    first = newly_routed
    if not newly_routed:
        # Its station acknowledged it from the inbox (where the dispatch is from its first
        # write) before this last write: keep that status, and record where it went.
        first = Report.objects(id=report.id, routed_at=None).update_one(**where)
    if newly_routed:  # stored → routed, once per report (docs/metrics.md)
        took = (routed_at - report.created_at).total_seconds()
        last.append(lambda pipe: telemetry.observe_in(pipe, "route_seconds", took))
    if first:  # the run that recorded the routing counts it for the figures, once
        tallies.count_report(report.created_at, report.category, placement.cell_code,
                             placement.station_code, county, report.reporter_id, clues)
    log.info("routed to %s via %s", placement.station_code, placement.method, extra=extra)
    return placement.station_code


def _place(report: Report, snapshot: GridSnapshot) -> Placement | None:
    """Where a report goes: by its GPS or grid code, else by the reporter's cell and county."""
    config = settings()
    location = report.location
    lat = location.lat if location else None
    lon = location.lon if location else None
    grid_code = location.grid_code if location else None
    if lat is not None or grid_code in snapshot.cells:
        # Inside the grid the reporter is not needed: one database read saved per report.
        direct = snapshot.place(lat=lat, lon=lon, grid_code=grid_code, home_cell=None,
                                county_code=None, nearest_max_m=config.nearest_cell_max_m,
                                precision_m=location.precision_m if location else None)
        if direct is not None and direct.method in ("gps", "grid_code"):
            return direct
    # The reporter's home cell and county are the fallbacks when GPS and grid code fail.
    reporter = Reporter.objects(id=report.reporter_id).only("home_cell", "county_code").first()
    county = reporter.county_code if reporter else None
    named = None
    if lat is None and (grid_code is None or grid_code not in snapshot.cells):
        # No GPS and no usable grid code: a place named in the text, before the home cell.
        named = locating.locate(report.details or "", snapshot, county)
        if named is not None:
            lat, lon = named.lat, named.lon
    placement = snapshot.place(lat=lat, lon=lon, grid_code=grid_code,
                               home_cell=reporter.home_cell if reporter else None,
                               county_code=county, nearest_max_m=config.nearest_cell_max_m)
    if placement is not None and named is not None and placement.method == "gps":
        placement = replace(placement, method=named.method)
        Report.objects(id=report.id, status="received").update_one(
            set__location__lat=named.lat, set__location__lon=named.lon,
            set__location__method=named.method, set__location__precision_m=named.precision_m,
            set__location__label=named.label, set__location__candidates=list(named.candidates))
        # Linking compares this point: the report in hand says where it was placed.
        report.location = Location(
            lat=named.lat, lon=named.lon, method=named.method, precision_m=named.precision_m,
            label=named.label, candidates=list(named.candidates),
            grid_code=report.location.grid_code if report.location else None)
    return placement


def _in_force_when_made(placement: Placement, report: Report,
                        snapshot: GridSnapshot) -> Placement:
    """A report routes by the jurisdiction in force when it was made, not when routed."""
    if placement.cell_code is None:
        return placement
    changed = _latest_jurisdiction_change(snapshot)
    if changed is None or report.created_at >= changed:
        return placement  # the cell's current station was already in force then
    then = jurisdiction.station_for(placement.cell_code, report.created_at)
    if then is None or then == placement.station_code:
        return placement
    return replace(placement, station_code=then,
                   flags=(*placement.flags, "routed_by_earlier_jurisdiction"))


_LATEST_CHANGE: list[tuple[GridSnapshot, float, dt.datetime | None]] = []
LATEST_CHANGE_TTL_S = 10.0


def _latest_jurisdiction_change(snapshot: GridSnapshot) -> dt.datetime | None:
    """jurisdiction.latest_change(), read at most every few seconds per grid snapshot."""
    now = time.monotonic()
    if not _LATEST_CHANGE or _LATEST_CHANGE[0][0] is not snapshot \
            or now - _LATEST_CHANGE[0][1] > LATEST_CHANGE_TTL_S:
        _LATEST_CHANGE[:] = [(snapshot, now, jurisdiction.latest_change())]
    return _LATEST_CHANGE[0][2]


def _recipients(snapshot: GridSnapshot, placement: Placement, extra: tuple[str, ...],
                county_code: str | None) -> list[str]:
    """The responsible station first, then extra recipients the rule names (deduplicated)."""
    stations = [placement.station_code]
    if "county_desk" in extra:
        desk = snapshot.county_desk.get(county_code or "")
        if desk is not None and desk not in stations:
            stations.append(desk)
    return stations


def _join_case_dispatch(case_id: ObjectId, station_code: str, report: Report,
                        priority: str, joined: list[ObjectId]) -> bool:
    """Add the report to the station's open dispatch for its case; False if there is none.
    The dispatch joined goes into `joined`, for the report to name in route's last write.

    A report is in at most one dispatch per station: an earlier run that already
    placed it anywhere wins, and a new join always goes to the case's oldest open
    dispatch there (two can exist when two of its reports were routed at once).
    The station learns of the new witness: one SMS to the duty phone (at most one per
    clue every `witness_notice_every_s`, unless the report raises its priority), the
    inbox entry's `updated_at` moves up, and a more urgent report raises the clue's
    priority and brings its deadline forward.

    Flat cost: the report names the dispatch (`Report.dispatch_ids`) and the
    dispatch only counts it, so neither grows with the clue. The report names it
    in route's last write (one round trip less per report): a job that dies in
    between joins again when re-run, so `report_count` may count one report
    twice; the reports listing, read from the reports, stays exact.
    """
    collection = Dispatch._get_collection()
    # The case's dispatches at this station: one, rarely two. Read, then joined by `_id`:
    # SecantusDB answers a findAndModify by scanning the whole collection (250 ms at
    # 20,000 dispatches), an indexed find and an update by `_id` in about a millisecond.
    here = list(collection.find(
        {"case_id": case_id, "station_code": station_code},
        {"_id": 1, "priority": 1, "status": 1, "report_code": 1, "category": 1,
         "ack_deadline": 1, "acknowledged_at": 1, "escalation_level": 1, "created_at": 1,
         "witness_notice_at": 1}))
    if any(d["_id"] in (report.dispatch_ids or ()) for d in here):
        return True  # an earlier run of this job joined it
    open_here = sorted((d for d in here if d["status"] != "closed"),
                       key=lambda d: d["created_at"])
    if not open_here:
        return False
    now = utcnow()
    found = open_here[0]
    notify = _witness_notice_due(found, priority, now)
    if not collection.update_one({"_id": found["_id"], "status": {"$ne": "closed"}},
                                 {"$inc": {"report_count": 1},
                                  "$set": {"updated_at": now,
                                           **({"witness_notice_at": now} if notify else {})}},
                                 ).modified_count:
        return False  # closed since it was read
    joined.append(found["_id"])
    raised = _raise_priority(found, priority, now)
    station = gridcache.current().stations.get(station_code)
    if notify and station is not None and station.duty_phone:
        queue_sms(station.duty_phone,
                  replies.linked_report_notice(found["report_code"], report.code,
                                               found["category"], raised),
                  "linked_notice", ref=f"linked-{found['_id']}-{report.code}",
                  report_id=report.id)
    return True


def _witness_notice_due(dispatch: dict[str, Any], priority: str, now: dt.datetime) -> bool:
    """Whether a report joining this clue texts its duty phone: when the report raises
    the clue's priority, or no such text went out in the last `witness_notice_every_s`
    (in a flood of reports about one incident, one text per clue per window, not one per
    report; the inbox entry rises with every one)."""
    if PRIORITIES.index(priority) < PRIORITIES.index(dispatch["priority"]):
        return True
    last = dispatch.get("witness_notice_at")
    return last is None or (now - last).total_seconds() >= settings().witness_notice_every_s


def _raise_priority(dispatch: dict[str, Any], priority: str, now: dt.datetime) -> bool:
    """A more urgent report joined the clue: its priority, and deadline if still waiting."""
    if PRIORITIES.index(priority) >= PRIORITIES.index(dispatch["priority"]):
        return False
    collection = Dispatch._get_collection()
    raised = collection.update_one(
        {"_id": dispatch["_id"], "priority": dispatch["priority"]},
        {"$set": {"priority": priority},
         "$push": {"history": {"action": "raise_priority", "from": dispatch["priority"],
                               "to": priority, "by": "system:route", "at": now}}})
    if not raised.modified_count:
        return False  # raised meanwhile by another report
    deadline = escalation().deadline(priority, now)
    # Still waiting for its station to take it: then the deadline moves too.
    waiting = (dispatch["status"] in OVERDUE_STATES
               and dispatch.get("acknowledged_at") is None)
    old = dispatch.get("ack_deadline")
    if waiting and (old is None or deadline < old):
        moved = collection.update_one(
            {"_id": dispatch["_id"], "ack_deadline": old},
            {"$set": {"ack_deadline": deadline, "next_check_at": deadline}})
        if moved.modified_count:
            schedule_escalation(str(dispatch["_id"]), deadline,
                                         int(dispatch.get("escalation_level", 0)))
    return True


def ensure_dispatch(
    report: Report,
    station_code: str,
    priority: str,
    cell_name: str | None,
    cell_code: str | None,
    flags: tuple[str, ...],
    case_id: ObjectId,
    *,
    deadline: dt.datetime | None = None,
    history: tuple[dict[str, Any], ...] = (),
    named: list[ObjectId] | None = None,
) -> tuple[str, dt.datetime] | None:
    """Create the (report, station) dispatch unless it exists (an upsert on a unique key).

    `deadline` defaults to the priority's SLA from now; `history` entries (their
    "at" added) follow the creation's. The report names the dispatch either way:
    here, or, given `named`, in the caller's own write of the report (route's
    last one: a re-run finds the dispatch and names it then).
    Returns the new dispatch's id and deadline, or None when it existed.
    """
    now = utcnow()
    if deadline is None:
        deadline = escalation().deadline(priority, now)
    # Created delivered: the inbox is where a dispatch is delivered, and this
    # write puts it there (one round trip, not a create and then a transition).
    fields = {
        "report_code": report.code,
        "case_id": case_id,
        "report_count": 1,
        "priority": priority,
        "status": "delivered",
        "delivered_at": now,
        "category": report.category,
        "cell_code": cell_code,
        "cell_name": cell_name,
        "flags": list(flags),
        "reported_at": report.created_at,
        "created_at": now,
        "updated_at": now,
        "ack_deadline": deadline,
        "next_check_at": deadline,
        "escalation_level": 0,
        "history": [{"action": "create", "to": "new", "by": "system:route", "at": now},
                    {"action": "deliver", "from": "new", "to": "delivered", "by": "system:route",
                     "at": now}, *({**entry, "at": now} for entry in history)],
    }
    collection = Dispatch._get_collection()
    key = {"report_id": report.id, "station_code": station_code}
    try:
        result = collection.update_one(key, {"$setOnInsert": fields}, upsert=True)
    except DuplicateKeyError:
        result = None  # a concurrent run of this job created it first: exactly one exists
    dispatch_id = result.upserted_id if result is not None else None
    if dispatch_id is None:  # a re-run: the report may not name it yet
        existing = collection.find_one(key, {"_id": 1})
        if existing is not None:
            _name_on_report(report, existing["_id"], named)
        return None
    _name_on_report(report, dispatch_id, named)
    return str(dispatch_id), deadline


def _name_on_report(report: Report, dispatch_id: ObjectId, named: list[ObjectId] | None) -> None:
    if named is not None:
        named.append(dispatch_id)
    else:
        Report._get_collection().update_one({"_id": report.id},
                                            {"$addToSet": {"dispatch_ids": dispatch_id}})


def sweep(older_than_s: int | None = None) -> int:
    """Re-queue reports stored but not routed for a while (the outbox sweeper). Idempotent."""
    config = settings()
    age = config.sweep_after_s if older_than_s is None else older_than_s
    cutoff = utcnow() - dt.timedelta(seconds=age)
    count = 0
    # Reports whose route job still waits in a queue keep their place (a backlog).
    waiting = queues.pending_job_ids(tuple(queues.BY_PRIORITY.values()))
    # Plain documents, not mongoengine's: a flood leaves thousands unrouted, and building
    # a Document for each cost seconds of the fast lane every sweep.
    for doc in Report._get_collection().find(
            {"status": "received", "created_at": {"$lte": cutoff}}, {"_id": 1, "category": 1}):
        report_id = str(doc["_id"])
        if route_job_id(report_id) in waiting:
            continue
        if enqueue_route(report_id, rules().rule_for(doc.get("category")).priority) is not None:
            count += 1
    if count:
        log.warning("sweep: re-queued %d unrouted reports", count)
        telemetry.count("sweeper_found", count, kind="report")
    if importer.apply_due_generations():
        gridcache.bump_version()  # a future-dated jurisdiction came into force
    delivered, checks = workflow.sweep_dispatches()
    if delivered or checks:
        log.warning("sweep: %d dispatches to deliver, %d escalation checks", delivered, checks)
        telemetry.count("sweeper_found", delivered, kind="delivery")
        telemetry.count("sweeper_found", checks, kind="escalation_check")
    return count

