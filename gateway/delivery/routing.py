"""RQ job bodies and their enqueuers, in pairs. Only ids cross the queue.

Every job loads state, checks it, acts, and records the new state in guarded
updates, so running it twice is harmless: workers may be killed at any line and
the sweeper re-enqueues whatever was left behind (transactional outbox,
ARCHITECTURE.md). A route job routes a batch when a backlog waits behind it
(`route`, `route_many`): the same guarded writes, made in bulk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.errors import DuplicateKeyError
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Retry, get_current_job
from rq.job import Job

from gateway import gridcache, jsonlog, telemetry
from gateway.delivery import cases, locating, queues, workflow
from gateway.delivery.escalation import schedule_escalation
from gateway.delivery.outbound_sms import queue_sms
from gateway.extensions import redis_store
from gateway.records import tallies
from gateway.records.people import Reporter
from gateway.records.reports import Location, Report
from gateway.records.updates import bulk_in_pieces
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


ROUTE_JOB = "route-"  # a route job's id: this, then its report's id


def route_job_id(report_id: str) -> str:
    return f"{ROUTE_JOB}{report_id}"


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
    (report, station), however many times this runs. Answers the report's station.

    A route job on a queue with a backlog behind it takes up to BATCH - 1 more of the
    queue's route jobs and routes them with its own in one go (`route_many`).
    `wait`: when another run is placing it right now, wait for it and answer its
    station (the SMS handler, for the receipt); a queued job just leaves it to that run.
    """
    if wait:
        return _route_inline(report_id)
    more, origin = _take_backlog()
    try:
        answers = route_many([report_id, *more], more)
        if more:
            log.info("route batch %s: %d reports", report_id, len(answers),
                     extra=_job_log_extra(report_id))
        return answers.get(report_id, "routing")
    except Exception:
        # This job is retried by RQ; the ones it took go back to their queue.
        for other, request in more.items():
            with jsonlog.under(request):
                enqueue_route(other, origin or queues.ROUTINE)
        raise


# Route jobs taken from a queue at once when a backlog waits (routine and urgent
# queues; a critical job is routed alone, at once). One batch reads and writes
# each collection once for all its reports (bulk), instead of ~10 round trips a
# report: the store's work per report falls several-fold (docs/performance.md:
# SecantusDB CPU per report 6.0 ms in batches of 100, 4.4 ms in batches of 200).
BATCH = 200
BATCHED_QUEUES = (queues.URGENT, queues.ROUTINE)

# Pop up to ARGV[1] route job ids from the head of the queue KEYS[1] (stopping at a job
# that is not a route job) and delete their RQ job hashes: they are run here instead.
# Each id comes with its job's meta (the request id it was queued under).
_TAKE_BACKLOG_LUA = """
local taken = {}
for _ = 1, tonumber(ARGV[1]) do
  local id = redis.call('lindex', KEYS[1], 0)
  if not id or string.sub(id, 1, string.len(ARGV[2])) ~= ARGV[2] then break end
  redis.call('lpop', KEYS[1])
  taken[#taken + 1] = id
  taken[#taken + 1] = redis.call('hget', ARGV[3] .. id, 'meta') or ''
  redis.call('del', ARGV[3] .. id)
end
return taken
"""


def _take_backlog() -> tuple[dict[str, str | None], str | None]:
    """Up to BATCH - 1 route jobs waiting behind the running one on its queue, taken off
    the queue (report id → the request id it was queued under), and the queue's name.

    A worker killed before routing them leaves them `received` and off every queue:
    the sweeper queues them again (`sweep`), as for any report whose job was lost.
    """
    job = get_current_job()
    if job is None or job.origin not in BATCHED_QUEUES:
        return {}, None
    queue = queues.queue(job.origin)
    try:
        taken = redis_store.conn.eval(_TAKE_BACKLOG_LUA, 1, queue.key, BATCH - 1, ROUTE_JOB,
                                      Job.redis_job_namespace_prefix)
    except RedisError:
        return {}, job.origin
    more: dict[str, str | None] = {}
    for raw_id, raw_meta in zip(taken[::2], taken[1::2], strict=True):
        job_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        meta = queue.serializer.loads(raw_meta) if raw_meta else {}
        more[job_id.removeprefix(ROUTE_JOB)] = (meta or {}).get("request_id")
    return more, job.origin


def route_many(report_ids: list[str],
               requests: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """Route these reports in one go; each one's station (or "missing", or "routing" when
    another run holds it right now: left to that run).

    `requests`: the request id each report was filed under, for its log lines and the
    jobs its routing queues (one trail per report, docs/metrics.md); a report not
    named keeps the running job's.
    """
    answers, waiting = _unrouted(report_ids)
    # One run at a time per report. The SMS handler routes inline while the route job
    # queued by filing the report runs on a routing worker (another lane): both at
    # once could each join the clue and text the station twice.
    held = _take_locks([str(report.id) for report in waiting])
    answers.update({str(r.id): "routing" for r in waiting if str(r.id) not in held})
    mine = [report for report in waiting if str(report.id) in held]
    if mine:
        answers.update(_route_holding(mine, requests or {}, held))
    return answers


def _route_inline(report_id: str) -> str:
    """route(wait=True): this report alone, waiting for another run that holds it."""
    answers, waiting = _unrouted([report_id])
    if not waiting:
        return answers[report_id]
    lock, token = ROUTING_LOCK.format(report_id=report_id), secrets.token_hex(8)
    if not _take(lock, token):
        station = _wait_for_other_run(report_id, lock, token)
        if station is not None:
            return station
    return _route_holding(waiting, {}, {report_id: token})[report_id]


def _unrouted(report_ids: list[str]) -> tuple[dict[str, str], list[Report]]:
    """The answers for reports there is nothing to route for (missing: "missing"; routed
    already: their station), and the reports still waiting to be routed: one read."""
    found = {str(r.id): r for r in Report.objects(id__in=[ObjectId(i) for i in report_ids])}
    answers: dict[str, str] = {}
    waiting: list[Report] = []
    for report_id in report_ids:
        report = found.get(report_id)
        if report is None:
            log.error("route: no report %s", report_id, extra=_job_log_extra(report_id))
            answers[report_id] = "missing"
        elif report.status != "received":
            # Routed already (the SMS handler routes inline, then this queued job runs).
            answers[report_id] = str(report.station_code)
        else:
            waiting.append(report)
    return answers, waiting


def _route_holding(reports: list[Report], requests: Mapping[str, str | None],
                   held: dict[str, str]) -> dict[str, str]:
    """Route reports whose locks this run holds (`held`), and let the locks go: the Redis
    commands of the run's end (the latency metric) ride the release."""
    last: list[Callable[[Pipeline], None]] = []
    try:
        return _route(reports, last, requests, held)
    finally:
        _release(held, last)


ROUTING_LOCK = "safegrid:routing:{report_id}"
# Longer than a route takes under load (p99 ~1 s); a run killed while holding it
# delays its report by at most this much (a route outliving it is merely run twice).
# A batch renews its locks at each step (a batch of 200 took up to 12 s in a flood).
ROUTING_LOCK_S = 10
ROUTED_WAIT_S = 15.0


def _take(lock: str, token: str) -> bool:
    return bool(redis_store.conn.set(lock, token, nx=True, ex=ROUTING_LOCK_S))


def _take_locks(report_ids: list[str]) -> dict[str, str]:
    """The routing locks of these reports this run got (report id → token): one round trip."""
    if not report_ids:
        return {}
    tokens = {report_id: secrets.token_hex(8) for report_id in report_ids}
    with redis_store.conn.pipeline(transaction=False) as pipe:
        for report_id, token in tokens.items():
            pipe.set(ROUTING_LOCK.format(report_id=report_id), token, nx=True,
                     ex=ROUTING_LOCK_S)
        got = pipe.execute()
    return {report_id: token for (report_id, token), ok in zip(tokens.items(), got,
                                                               strict=True) if ok}


def _locked(report_ids: list[str]) -> set[str]:
    """Those of these reports whose routing lock some run holds: one round trip."""
    with redis_store.conn.pipeline(transaction=False) as pipe:
        for report_id in report_ids:
            pipe.exists(ROUTING_LOCK.format(report_id=report_id))
        held = pipe.execute()
    return {report_id for report_id, found in zip(report_ids, held, strict=True) if found}


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


# Give the lock another ROUTING_LOCK_S only if it still holds this run's token.
_RENEW_LUA = ('if redis.call("get", KEYS[1]) == ARGV[1] then '
              'return redis.call("expire", KEYS[1], ARGV[2]) else return 0 end')


def _renew(held: Mapping[str, str]) -> None:
    """Keep this run's locks for another ROUTING_LOCK_S: one round trip, at each step of a
    batch, so a batch keeps them however long it takes and a killed one's expire soon."""
    if len(held) < 2:
        return  # one report: its run is shorter than the lock
    with contextlib.suppress(RedisError), redis_store.conn.pipeline(transaction=False) as pipe:
        for report_id, token in held.items():
            pipe.eval(_RENEW_LUA, 1, ROUTING_LOCK.format(report_id=report_id), token,
                      ROUTING_LOCK_S)
        pipe.execute()


# Delete the lock only if it still holds this run's token, in one step on the server.
_RELEASE_LUA = ('if redis.call("get", KEYS[1]) == ARGV[1] then '
                'return redis.call("del", KEYS[1]) else return 0 end')


def _release(held: dict[str, str], also: list[Callable[[Pipeline], None]]) -> None:
    """Drop the locks still this run's (one may have expired and been taken), with
    `also`'s commands in the same round trip."""
    with contextlib.suppress(RedisError), redis_store.conn.pipeline(transaction=False) as pipe:
        for add in also:
            add(pipe)
        for report_id, token in held.items():
            pipe.eval(_RELEASE_LUA, 1, ROUTING_LOCK.format(report_id=report_id), token)
        pipe.execute()


@dataclass
class _Routing:
    """One report of a batch on its way: where it goes, its case, the dispatches it joined
    or made (named in its last write) and the clues (station, when) it opened."""

    report: Report
    placement: Placement
    priority: str
    also_to: tuple[str, ...]  # the rule's extra recipients
    cell_name: str | None
    county: str | None
    request_id: str | None  # the request it was filed under
    case_id: ObjectId | None = None
    opened: bool = False
    joined: list[ObjectId] = field(default_factory=list)
    clues: list[tuple[str, dt.datetime]] = field(default_factory=list)


def _route(reports: list[Report], last: list[Callable[[Pipeline], None]],
           requests: Mapping[str, str | None], held: Mapping[str, str]) -> dict[str, str]:
    snapshot = gridcache.current()  # one snapshot for placing and for the recipients
    batch: list[_Routing] = []
    unplaced: list[str] = []
    for report in sorted(reports, key=lambda r: r.created_at):
        placement = _place(report, snapshot)
        if placement is None:
            unplaced.append(str(report.id))
            continue
        placement = _in_force_when_made(placement, report, snapshot)
        rule = rules().rule_for(report.category)
        cell = snapshot.cells.get(placement.cell_code or "")
        station = snapshot.stations.get(placement.station_code)
        county = cell.county_code if cell else (station.county_code if station else None)
        batch.append(_Routing(report, placement, rule.priority, rule.extra_recipients,
                              cell.name if cell else None, county,
                              requests.get(str(report.id), jsonlog.request_id.get())))
    if batch:
        _renew(held)
        linked = cases.attach_many([(r.report, r.placement.cell_code) for r in batch],
                                   snapshot)
        for routing in batch:
            routing.case_id, routing.opened = linked[routing.report.id]
        _renew(held)
        _deliver(batch, snapshot)
        _renew(held)
        _record(batch, last)
    if unplaced:
        # No cell and no county desk at all: fail loudly; RQ retries, the sweeper re-queues.
        raise RuntimeError(f"reports {', '.join(unplaced)}: the grid has no station to route to")
    return {str(r.report.id): r.placement.station_code for r in batch}


def _record(batch: list[_Routing], last: list[Callable[[Pipeline], None]]) -> None:
    """The batch's last write: each report routed, naming where it went and the dispatches
    that hold it (one bulk write); then the figures' counts, once per report."""
    now = utcnow()
    routed_at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as stored
    reports = Report._get_collection()

    def where(routing: _Routing) -> dict[str, Any]:
        placement = routing.placement
        return {"$set": {"case_id": routing.case_id, "cell_code": placement.cell_code,
                         "station_code": placement.station_code,
                         "placed_by": placement.method, "priority": routing.priority,
                         "routed_at": routed_at},
                "$addToSet": {"flags": {"$each": list(placement.flags)},
                              "dispatch_ids": {"$each": routing.joined}}}

    def mine(routing: _Routing) -> dict[str, Any]:
        # Names no other case: the routing lock keeps a second run off the report, and
        # should a run outlive its lock, the first to write its case wins.
        return {"_id": routing.report.id, "case_id": {"$in": [None, routing.case_id]}}

    updates = []
    for routing in batch:
        update = where(routing)
        update["$set"] = {**update["$set"], "status": "routed"}
        updates.append(UpdateOne({**mine(routing), "status": "received"}, update))
    newly = {r.report.id for r in batch}
    first = set(newly)
    if bulk_in_pieces(reports, updates)[0] < len(updates):
        # Some were acknowledged from the inbox (where the dispatch is from its first
        # write) before this write: they keep that status, and record where they went.
        stored = {doc["_id"]: doc.get("routed_at") for doc in reports.find(
            {"_id": {"$in": list(newly)}}, {"routed_at": 1})}
        newly = {i for i in newly if stored.get(i) == routed_at}
        first = set(newly)
        for routing in batch:
            report_id = routing.report.id
            if report_id not in newly and stored.get(report_id) is None and reports.update_one(
                    {**mine(routing), "routed_at": None}, where(routing)).modified_count:
                first.add(report_id)
    for routing in batch:
        report = routing.report
        if report.id in newly:  # stored → routed, once per report (docs/metrics.md)
            last.append(functools.partial(telemetry.observe_in, name="route_seconds",
                                          seconds=(routed_at - report.created_at).total_seconds()))
        log.info("routed to %s via %s", routing.placement.station_code,
                 routing.placement.method,
                 extra={**_job_log_extra(str(report.id)), "request_id": routing.request_id})
    # The run that recorded the routing counts it for the figures, once.
    tallies.count_reports([
        tallies.Routed(r.report.created_at, r.report.category, r.placement.cell_code,
                       r.placement.station_code, r.county, r.report.reporter_id, r.clues)
        for r in batch if r.report.id in first])


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


# What joining needs to know of a case's dispatches.
_CLUE_FIELDS = {"_id": 1, "case_id": 1, "station_code": 1, "priority": 1, "status": 1,
                "report_code": 1, "category": 1, "ack_deadline": 1, "acknowledged_at": 1,
                "escalation_level": 1, "created_at": 1, "witness_notice_at": 1}


@dataclass
class _NewClue:
    """A dispatch the batch makes: the report it is for, and the batch's later reports of
    the same case that join it."""

    routing: _Routing
    station_code: str
    joiners: list[_Routing] = field(default_factory=list)


def _deliver(batch: list[_Routing], snapshot: GridSnapshot) -> None:
    """Put each report in its stations' inboxes: in the case's open dispatch there, or a
    new one (a clue). A report is in at most one dispatch per station: an earlier run
    that already placed it anywhere wins, and a new join always goes to the case's oldest
    open dispatch there (two can exist when two of its reports were routed at once).

    One read of the dispatches of the cases joined, one bulk write for the new clues and
    one for the joins, whatever the batch's size; a clue's cost stays flat in its size
    (the report names the dispatch, the dispatch only counts it).
    """
    collection = Dispatch._get_collection()
    known: dict[tuple[ObjectId | None, str], list[dict[str, Any]]] = defaultdict(list)
    joined_cases = sorted({r.case_id for r in batch if not r.opened and r.case_id})
    if joined_cases:
        for doc in collection.find({"case_id": {"$in": joined_cases}}, _CLUE_FIELDS):
            known[(doc["case_id"], doc["station_code"])].append(doc)
    new: dict[tuple[ObjectId | None, str], _NewClue] = {}
    joins: dict[ObjectId, list[_Routing]] = defaultdict(list)
    clue_of: dict[ObjectId, dict[str, Any]] = {}
    for routing in batch:
        for station_code in _recipients(snapshot, routing.placement, routing.also_to,
                                        routing.county):
            here = known.get((routing.case_id, station_code), [])
            if any(d["_id"] in (routing.report.dispatch_ids or ()) for d in here):
                continue  # an earlier run of this report joined it
            open_here = sorted((d for d in here if d["status"] != "closed"),
                               key=lambda d: d["created_at"])
            if open_here:
                joins[open_here[0]["_id"]].append(routing)
                clue_of[open_here[0]["_id"]] = open_here[0]
            elif (routing.case_id, station_code) in new:
                new[(routing.case_id, station_code)].joiners.append(routing)
            else:
                new[(routing.case_id, station_code)] = _NewClue(routing, station_code)
    for clue, dispatch in _make_clues(list(new.values())):
        joins[dispatch["_id"]].extend(clue.joiners)
        clue_of[dispatch["_id"]] = dispatch
    _join(joins, clue_of)


def _make_clues(clues: list[_NewClue]) -> list[tuple[_NewClue, dict[str, Any]]]:
    """Create the batch's new dispatches (one bulk upsert on the unique (report, station)),
    announce each (audit, duty-phone SMS, SLA check); each clue with its dispatch."""
    if not clues:
        return []
    now = utcnow()
    collection = Dispatch._get_collection()
    fields = [_clue_fields(c.routing.report, c.routing.priority, c.routing.cell_name,
                           c.routing.placement.cell_code, c.routing.placement.flags,
                           c.routing.case_id, now) for c in clues]
    keys = [{"report_id": c.routing.report.id, "station_code": c.station_code}
            for c in clues]
    # A concurrent run may have created some first: exactly one of each exists.
    _, made = bulk_in_pieces(collection, [UpdateOne(key, {"$setOnInsert": doc}, upsert=True)
                                          for key, doc in zip(keys, fields, strict=True)],
                             duplicates_ok=True)
    out = []
    for i, clue in enumerate(clues):
        routing = clue.routing
        if i not in made:  # a re-run: the report may not name it yet
            existing = collection.find_one(keys[i], _CLUE_FIELDS)
            if existing is not None:
                routing.joined.append(existing["_id"])
                out.append((clue, existing))
            continue
        dispatch = {**fields[i], "_id": made[i], "station_code": clue.station_code}
        routing.joined.append(made[i])
        routing.clues.append((clue.station_code, now))  # a new clue at this station
        # In the inbox from its first write; now the duty-phone SMS and the SLA check.
        # Should this die here, the escalation sweeper still finds it by its deadline.
        with jsonlog.under(routing.request_id):
            workflow.announce_delivery(str(made[i]), routing.report.id, routing.report.code,
                                       routing.report.category, clue.station_code,
                                       routing.cell_name)
            schedule_escalation(str(made[i]), dispatch["ack_deadline"], 0)
        out.append((clue, dispatch))
    return out


def _join(joins: dict[ObjectId, list[_Routing]], clue_of: dict[ObjectId, dict[str, Any]]
          ) -> None:
    """Add the batch's reports to the open dispatches they join (one bulk write).

    The station learns of the new witnesses: one SMS to the duty phone (at most one
    per clue every `witness_notice_every_s`, unless a report raises its priority), the
    inbox entry's `updated_at` moves up, and a more urgent report raises the clue's
    priority and brings its deadline forward. The reports name the dispatch in their
    last write: a batch that dies in between joins again when re-run, so
    `report_count` may count a report twice; the reports listing, read from the
    reports, stays exact.
    """
    if not joins:
        return
    now = utcnow()
    collection = Dispatch._get_collection()
    urgent = {i: min(rs, key=lambda r: PRIORITIES.index(r.priority))
              for i, rs in joins.items() if rs}
    notify = {i for i, r in urgent.items() if _witness_notice_due(clue_of[i], r.priority, now)}
    updates = [UpdateOne({"_id": i, "status": {"$ne": "closed"}},
                         {"$inc": {"report_count": len(joins[i])},
                          "$set": {"updated_at": now,
                                   **({"witness_notice_at": now} if i in notify else {})}})
               for i in urgent]
    if not updates:
        return
    closed: set[ObjectId] = set()
    if bulk_in_pieces(collection, updates)[0] < len(updates):
        closed = {d["_id"] for d in collection.find(
            {"_id": {"$in": list(urgent)}, "status": "closed"}, {"_id": 1})}
    stations = gridcache.current().stations
    for dispatch_id, most in urgent.items():
        found = clue_of[dispatch_id]
        if dispatch_id in closed:  # closed since it was read: each report makes its own
            for routing in joins[dispatch_id]:
                _make_clues([_NewClue(routing, found["station_code"])])
            continue
        for routing in joins[dispatch_id]:
            routing.joined.append(dispatch_id)
        raised = _raise_priority(found, most.priority, now)
        station = stations.get(found["station_code"])
        if dispatch_id in notify and station is not None and station.duty_phone:
            with jsonlog.under(most.request_id):
                queue_sms(station.duty_phone,
                          replies.linked_report_notice(found["report_code"], most.report.code,
                                                       found["category"], raised),
                          "linked_notice", ref=f"linked-{dispatch_id}-{most.report.code}",
                          report_id=most.report.id)


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
) -> tuple[str, dt.datetime] | None:
    """Create the (report, station) dispatch unless it exists (an upsert on a unique key),
    and name it on the report.

    `deadline` defaults to the priority's SLA from now; `history` entries (their
    "at" added) follow the creation's. Returns the new dispatch's id and deadline,
    or None when it existed.
    """
    now = utcnow()
    fields = _clue_fields(report, priority, cell_name, cell_code, flags, case_id, now,
                          deadline=deadline, history=history)
    collection = Dispatch._get_collection()
    key = {"report_id": report.id, "station_code": station_code}
    try:
        result = collection.update_one(key, {"$setOnInsert": fields}, upsert=True)
    except DuplicateKeyError:
        result = None  # a concurrent run created it first: exactly one exists
    dispatch_id = result.upserted_id if result is not None else None
    if dispatch_id is None:  # a re-run: the report may not name it yet
        existing = collection.find_one(key, {"_id": 1})
        if existing is not None:
            _name_on_report(report, existing["_id"])
        return None
    _name_on_report(report, dispatch_id)
    return str(dispatch_id), fields["ack_deadline"]


def _clue_fields(report: Report, priority: str, cell_name: str | None, cell_code: str | None,
                 flags: tuple[str, ...], case_id: ObjectId | None, now: dt.datetime, *,
                 deadline: dt.datetime | None = None,
                 history: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """A new dispatch of `report`, created delivered: the inbox is where a dispatch is
    delivered, and its first write puts it there (not a create and then a transition)."""
    if deadline is None:
        deadline = escalation().deadline(priority, now)
    return {
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


def _name_on_report(report: Report, dispatch_id: ObjectId) -> None:
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
    unqueued = [doc for doc in Report._get_collection().find(
        {"status": "received", "created_at": {"$lte": cutoff}}, {"_id": 1, "category": 1})
        if route_job_id(str(doc["_id"])) not in waiting]
    # A report a run is routing now (its lock held: a batch took its job off the queue)
    # is that run's; should the run have died, its lock expires within ROUTING_LOCK_S
    # and the next sweep takes the report.
    being_routed = _locked([str(doc["_id"]) for doc in unqueued])
    for doc in unqueued:
        report_id = str(doc["_id"])
        if report_id in being_routed:
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

