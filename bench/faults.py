"""Fault drill: reports at a steady rate while RQ workers are killed and Redis restarts.

Starts its own stack (Redis with AOF in a data dir, SecantusDB, gunicorn, RQ
workers, `safegrid cron` with a short sweep), posts reports over HTTP across
the sample county's cells and categories, `kill -9`s a random worker at
random moments (a replacement starts at once: a real, short outage) and
crashes Redis once mid-run (restarted on the same port and data dir after a
gap longer than redis-py's own retry budget, so clients do see it). The
client retries a 503 with the same client_id, as the API asks. Then it waits
(bounded) until every report is routed and every expected dispatch exists and
is delivered, and counts: reports sent, dispatches found, duplicates, losses,
and the delay from a report's storing to its dispatch.

A process that exits by itself (not killed by the drill) is restarted after
1 s, as systemd's `Restart=always` does in production, and is reported.

    .venv/bin/python bench/faults.py [--reports 500] [--rate 10] [--kills 10] [--seed N]
                                     [--leg reports|sms|alert|all] [--sms 200] [--sms-kills 8]
                                     [--alert-people 3000] [--alert-kills 6]

`--leg sms` (bench/faults_sms.py): inbound SMS through the webhook with workers
killed and Redis restarted; every SMS must have exactly one outcome.

`--leg alert` (bench/faults_alert.py): a missing-child alert fanned out through real
Kannel and fakesmsc while the workers sending it are killed and Redis restarted; nobody
missed at the carrier, and no more messages twice than the requests in flight at the
kills.

Exits non-zero on any loss or duplicate (ARCHITECTURE.md: "Nothing lost").
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.county import load_sample_county  # noqa: E402
from deploy.processes import Service, Stack, app_env  # noqa: E402

DETAILS = "村口小卖部旁一名男子带着两个不会说本地话的孩子，孩子神情紧张，说要去外省。"
TARGET_S = 1.0  # ARCHITECTURE.md: stored → dispatch in inbox, p99 ≤ 1 s at 20 reports/s
RESTART_SEC = 1.0  # deploy/systemd/safegrid-route@.service: RestartSec=1
PROBE_WAIT_S = 15.0


# --- numbers --------------------------------------------------------------------------------

def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


# --- the stack ------------------------------------------------------------------------------

@dataclass
class Running:
    """A started SafeGrid: its processes, where they listen, and the sample county's tokens."""

    stack: Stack
    env: dict[str, str]
    redis: Service
    redis_port: int
    redis_dir: Path | None
    mongo_uri: str
    redis_url: str
    web: Service
    tokens: dict[str, str]
    workers: list[Service] = field(default_factory=list)
    cron: Service | None = None
    spawned: int = 0
    lanes: dict[int, str] = field(default_factory=dict)  # worker pid → its lane

    @property
    def port(self) -> int:
        assert self.web.port is not None
        return self.web.port

    def add_worker(self, lane: str = "route") -> Service:
        """A `safegrid worker --lane LANE` (as Stack.lanes starts them for `make run`)."""
        self.spawned += 1
        service = self.stack.worker(self.env, name=f"worker-{self.spawned}-{lane}", lane=lane)
        self.workers.append(service)
        self.lanes[service.proc.pid] = lane
        return service

    def lane_of(self, service: Service) -> str:
        return self.lanes.get(service.proc.pid, "route")


def start_stack(stack_dir: Path, *, workers: int = 2, redis_data: bool = True,
                mongo_storage: str = ":memory:", web_workers: int = 2, web_threads: int = 4,
                cron: bool = True, extra_env: Mapping[str, str] | None = None,
                fast_workers: int = 1) -> Running:
    """Redis, SecantusDB, the sample county (loaded in this process), gunicorn, workers, cron.

    Workers in lanes as `make run` starts them: `fast_workers` on the fast lane
    (SMS, critical, the sweeper) and `workers` routing workers.

    This process stays configured (`startup.configure`) against the same stores,
    so the caller can read reports and dispatches with the product's documents.
    """
    stack = Stack(stack_dir / "logs")
    try:
        redis_dir = stack_dir / "redis" if redis_data else None
        redis = stack.redis(data_dir=redis_dir)
        assert redis.port is not None
        mongo = stack.secantus(storage=mongo_storage)
        mongo_uri = f"mongodb://127.0.0.1:{mongo.port}/safegrid"
        redis_url = f"redis://127.0.0.1:{redis.port}/0"
        county, data_keys = load_sample_county(mongo_uri, redis_url, "drill")
        env = app_env(mongo_uri, redis_url, data_keys, **(extra_env or {}))
        web = stack.gunicorn(env, workers=web_workers, threads=web_threads)
        running = Running(stack, env, redis, redis.port, redis_dir, mongo_uri, redis_url, web,
                          dict(county.tokens))
        for _ in range(fast_workers):
            running.add_worker("fast")
        for _ in range(workers):
            running.add_worker("route")
        if cron:
            running.cron = stack.cron(env)
        return running
    except BaseException:
        stack.stop()
        raise


def wait_for_workers(running: Running, count: int | None = None, timeout: float = 60.0) -> None:
    """Until `count` RQ workers (default: all started) have registered in Redis (they
    import, connect, then listen)."""
    import redis as redis_lib
    from rq import Worker

    count = len(running.workers) if count is None else count
    conn = redis_lib.Redis.from_url(running.redis_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            pids = {w.proc.pid for w in running.workers}
            if sum(1 for w in Worker.all(connection=conn) if w.pid in pids) >= count:
                return
            time.sleep(0.1)
    finally:
        conn.close()
    tails = "\n".join(f"--- {w.name} ---\n{w.log_tail(15)}" for w in running.workers)
    raise TimeoutError(f"{count} RQ workers did not start within {timeout:.0f} s\n{tails}")


def token_for(tokens: Mapping[str, str], prefix: str) -> str:
    return next(t for who, t in tokens.items() if who.startswith(prefix))


# --- what to send, and where each report must go -------------------------------------------

@dataclass(frozen=True)
class PlannedReport:
    index: int
    client_id: str
    token: str
    category: str
    cell_code: str
    by: str  # "gps" or "grid_code"
    body: bytes
    expected: tuple[str, ...]  # stations that must each get exactly one dispatch


def plan_reports(count: int, rng: random.Random, tokens: Mapping[str, str],
                 prefix: str) -> list[PlannedReport]:
    """`count` reports spread over every cell of the sample county and every category.

    The stations each must reach come from the data and the rules, not from the
    router: the cell's station, plus the county desk when the category's rule
    names `county_desk` (child categories).
    """
    from gateway import runtime
    from grid.documents import GridCell, Station
    from sms.grammar import CATEGORIES, UNCLASSIFIED

    cells = sorted(GridCell.objects.only("code", "ring", "station_code", "county_code"),
                   key=lambda c: c.code)
    desks = {s.county_code: s.code for s in Station.objects(kind="county_desk")}
    reporters = sorted(t for who, t in tokens.items() if who.startswith("reporter"))
    categories = (*CATEGORIES, UNCLASSIFIED)
    rules = runtime.rules()
    planned = []
    for i in range(count):
        cell = cells[i % len(cells)]
        category = categories[rng.randrange(len(categories))]
        client_id = f"{prefix}-{i:05d}"
        body: dict[str, Any] = {"client_id": client_id, "category": category,
                                "details": DETAILS}
        by = "gps" if i % 2 else "grid_code"
        if by == "gps":
            lons = [float(p[0]) for p in cell.ring]
            lats = [float(p[1]) for p in cell.ring]
            body["location"] = {"lat": (min(lats) + max(lats)) / 2,
                                "lon": (min(lons) + max(lons)) / 2}
        else:
            body["grid_code"] = cell.code
        expected = [cell.station_code]
        if "county_desk" in rules.rule_for(category).extra_recipients:
            expected.append(desks[cell.county_code])
        planned.append(PlannedReport(i, client_id, reporters[i % len(reporters)], category,
                                     cell.code, by, json.dumps(body).encode(), tuple(expected)))
    return planned


# --- the client -----------------------------------------------------------------------------

class Http:
    """Keep-alive http.client connections, one per thread (cheap next to the server's CPU)."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout
        self.local = threading.local()

    def request(self, method: str, path: str, token: str, body: bytes | None = None
                ) -> tuple[int, bytes]:
        conn: http.client.HTTPConnection | None = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self.local.conn = conn
        headers = {"Authorization": f"Bearer {token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            raise
        if resp.will_close:
            conn.close()
            self.local.conn = None
        return resp.status, data


@dataclass
class Sent:
    """What the client saw for one planned report."""

    status: int = 0  # the final answer: 201 created, 200 already made by this client_id
    code: str | None = None
    attempts: int = 0
    retries_503: int = 0
    connection_errors: int = 0
    due: float = 0.0  # monotonic: when the steady rate wanted it sent
    started: float = 0.0
    answered: float = 0.0  # monotonic: the final answer arrived
    error: str | None = None


def post_report(client: Http, report: PlannedReport, *, give_up_after_s: float = 120.0,
                sent: Sent | None = None) -> Sent:
    """POST one report; on 503 or a dropped connection, retry with the SAME client_id."""
    sent = sent or Sent()
    sent.started = time.monotonic()
    deadline = sent.started + give_up_after_s
    pause = 0.1
    while True:
        sent.attempts += 1
        try:
            status, data = client.request("POST", "/api/v1/reports", report.token, report.body)
        except (OSError, http.client.HTTPException) as exc:
            sent.connection_errors += 1
            sent.error = f"connection: {exc!r}"
        else:
            if status in (200, 201):
                sent.status, sent.code = status, json.loads(data)["code"]
                sent.answered, sent.error = time.monotonic(), None
                return sent
            if status != 503:
                sent.status, sent.error = status, data[:300].decode("utf-8", "replace")
                sent.answered = time.monotonic()
                return sent
            sent.retries_503 += 1
            sent.error = "503"
        if time.monotonic() + pause > deadline:
            sent.answered = time.monotonic()
            return sent
        time.sleep(pause)
        pause = min(1.0, pause * 2)


def send_at_rate(client: Http, plan: list[PlannedReport], rate_per_s: float, *,
                 threads: int = 16, started: float | None = None,
                 on_answer: Callable[[PlannedReport, Sent], None] | None = None) -> list[Sent]:
    """Send `plan` open-loop: report i is due at `started + i / rate`, whatever came before."""
    t0 = (started if started is not None else time.monotonic()) + 0.05
    results = [Sent(due=t0 + i / rate_per_s) for i in range(len(plan))]
    lock = threading.Lock()
    cursor = [0]

    def run() -> None:
        while True:
            with lock:
                i = cursor[0]
                cursor[0] += 1
            if i >= len(plan):
                return
            wait = results[i].due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            post_report(client, plan[i], sent=results[i])
            if on_answer is not None:
                on_answer(plan[i], results[i])

    pool = [threading.Thread(target=run, name=f"sender-{n}", daemon=True)
            for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return results


def dispatch_codes(client: Http, dispatch: dict[str, Any], token: str) -> list[str]:
    """The codes of the reports an inbox entry holds: its own, and those of a linked
    case from the dispatch's reports (one more request, only when it holds more)."""
    if dispatch.get("report_count", 1) <= 1:
        return [dispatch["report_code"]]
    status, data = client.request("GET", f"/api/v1/dispatches/{dispatch['id']}/reports", token)
    if status != 200:
        raise RuntimeError(f"reports of {dispatch['id']}: {status} {data[:200]!r}")
    return [r["code"] for r in json.loads(data)]


def inbox(client: Http, station: str, token: str, page_size: int = 100) -> list[dict[str, Any]]:
    """Every dispatch the station inbox API lists, all pages."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        status, data = client.request(
            "GET", f"/api/v1/stations/{station}/dispatches?page={page}&page_size={page_size}",
            token)
        if status != 200:
            raise RuntimeError(f"inbox {station} page {page}: {status} {data[:200]!r}")
        batch = json.loads(data)
        items.extend(batch)
        if len(batch) < page_size:
            return items
        page += 1


# --- what the store holds -------------------------------------------------------------------

@dataclass
class Appearance:
    """A report in one dispatch of a station: since when, and is that dispatch delivered."""

    dispatch_id: Any
    at: dt.datetime | None  # the dispatch's creation, or when the report joined it
    delivered_at: dt.datetime | None
    status: str
    joined: bool  # joined a linked case's dispatch rather than creating one


@dataclass
class StoreState:
    """Reports and dispatches as the database holds them, keyed for checking.

    Since linked cases (gateway/delivery/cases.py) a station gets one dispatch per case,
    and each report names the dispatches that hold it (`dispatch_ids`); a report
    has reached a station when exactly one of that station's dispatches holds it.
    """

    reports: dict[str, dict[str, Any]]  # client_id → report
    extra_reports: int  # a client_id stored more than once (the unique index forbids it)
    appearances: dict[tuple[str, str], list[Appearance]]  # (client_id, station) → ...
    dispatches: int
    orphan_codes: int  # dispatches that name no stored report, or reports no dispatch
    split_cases: int  # (case, station) pairs with more than one open dispatch


def read_store() -> StoreState:
    from gateway.records.reports import Report
    from grid.documents import Dispatch

    by_client: dict[str, dict[str, Any]] = {}
    extra = 0
    reports = list(Report._get_collection().find(
        {}, {"client_id": 1, "code": 1, "status": 1, "created_at": 1, "routed_at": 1,
             "dispatch_ids": 1}))
    for doc in reports:
        if doc["client_id"] in by_client:
            extra += 1
        by_client[doc["client_id"]] = doc
    known_codes = {doc["code"] for doc in reports}
    appearances: dict[tuple[str, str], list[Appearance]] = {}
    orphans = 0
    per_case: Counter[tuple[Any, str]] = Counter()
    dispatches: dict[Any, dict[str, Any]] = {}
    for doc in Dispatch._get_collection().find(
            {}, {"report_code": 1, "station_code": 1, "status": 1, "created_at": 1,
                 "delivered_at": 1, "case_id": 1}):
        dispatches[doc["_id"]] = doc
        if doc.get("case_id") is not None:
            per_case[(doc["case_id"], doc["station_code"])] += 1
        if doc["report_code"] not in known_codes:
            orphans += 1
    # A report names the dispatches that hold it; one it joined (not its own) since
    # it was routed.
    for report in reports:
        for dispatch_id in report.get("dispatch_ids") or ():
            doc = dispatches.get(dispatch_id)
            if doc is None:
                orphans += 1
                continue
            joined = report["code"] != doc["report_code"]
            appearances.setdefault((report["client_id"], doc["station_code"]), []).append(
                Appearance(doc["_id"], report.get("routed_at") if joined else doc["created_at"],
                           doc.get("delivered_at"), doc["status"], joined))
    split = sum(1 for n in per_case.values() if n > 1)
    return StoreState(by_client, extra, appearances, len(dispatches), orphans, split)


def seconds(later: dt.datetime | None, earlier: dt.datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


# --- the drill ------------------------------------------------------------------------------

@dataclass
class Fault:
    at: float  # seconds since the load started
    what: str
    detail: str = ""


@dataclass
class DrillResult:
    seed: int
    reports_planned: int
    rate_per_s: float
    # the client's view
    sent_201: int = 0
    answered_200: int = 0  # a retry found the report its client_id had already made
    not_acknowledged: int = 0  # gave up or got an error other than 503
    client_errors: list[str] = field(default_factory=list)
    retries_503: int = 0
    connection_errors: int = 0
    reports_retried: int = 0
    max_post_s: float = 0.0  # slowest POST, retries included
    max_send_lag_s: float = 0.0  # how far the sender fell behind the steady rate
    load_s: float = 0.0
    # faults
    kills: int = 0
    kills_mid_job: int = 0
    orphans_reaped: int = 0  # a killed worker's forked RQ scheduler left running
    redis_restarts: int = 0
    redis_down_s: float = 0.0
    unexpected_exits: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    # the store's view
    unique_reports_stored: int = 0
    reports_stored_twice: int = 0
    reports_routed: int = 0
    expected_dispatches: int = 0
    dispatches_found: int = 0  # dispatch documents (one per linked case and station)
    reports_in_dispatches: int = 0  # expected (report, station) pairs found in a dispatch
    joined_case: int = 0  # of those, by joining a linked case's dispatch
    duplicates: int = 0  # a report in more than one dispatch of the same station
    duplicate_pairs: list[tuple[str, str]] = field(default_factory=list)
    # one linked case with two dispatches at one station (concurrent routing): a re-run of
    # any of its reports' route jobs then adds that report to the other dispatch too
    split_cases: int = 0
    unexpected_dispatches: int = 0  # to a station the rules do not name
    orphan_dispatches: int = 0  # report codes in dispatches naming no stored report
    acknowledged_not_stored: list[str] = field(default_factory=list)
    unrouted: list[str] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (client_id, station)
    undelivered: list[tuple[str, str]] = field(default_factory=list)  # still `new`
    # stored → dispatch created (in the inbox), and → delivered; seconds
    inbox_delays: list[float] = field(default_factory=list)
    delivered_delays: list[float] = field(default_factory=list)
    worst: str = ""
    # longest a dispatch sat in the inbox as `new` before the delivery job delivered it
    worst_undelivered_gap: str = ""
    settled_s: float | None = None  # after the last report was answered; None: timed out
    # what the inbox API lists, per station: report codes
    http_inbox: dict[str, set[str]] = field(default_factory=dict)
    db_inbox: dict[str, set[str]] = field(default_factory=dict)
    expected_pairs: list[tuple[str, str]] = field(default_factory=list)  # (code, station)
    # diagnostics
    route_runs: int = 0
    sweep_requeues: int = 0
    intake_not_queued: int = 0  # stored, answered 201, but Redis refused the route job
    rq: dict[str, dict[str, int]] = field(default_factory=dict)
    failed_jobs: list[str] = field(default_factory=list)
    scheduler: str = ""  # who holds RQ's scheduler lock at the end, and is it alive
    scheduled_probe_s: float | None = None  # an enqueue_in(1 s) job ran after this; None: not
    log_dir: str = ""
    machine_load: tuple[float, float] = (0.0, 0.0)  # 1-min load average, load start / end

    @property
    def losses(self) -> int:
        """Acknowledged but not stored, (report, station) pairs missing, and reports left
        unrouted though all their dispatches exist: each lost thing counted once."""
        short = {client_id for client_id, _ in self.missing}
        return (len(self.acknowledged_not_stored) + len(self.missing)
                + sum(1 for client_id in self.unrouted if client_id not in short))

    @property
    def ok(self) -> bool:
        return (self.losses == 0 and self.duplicates == 0 and self.reports_stored_twice == 0
                and self.unexpected_dispatches == 0 and not self.undelivered
                and self.not_acknowledged == 0)

    def summary(self) -> str:
        p = percentile
        lines = [
            f"seed {self.seed}: {self.reports_planned} reports at {self.rate_per_s:g}/s "
            f"over {self.load_s:.1f} s",
            f"faults: {self.kills} worker kill -9 ({self.kills_mid_job} mid-job, "
            f"{self.orphans_reaped} orphaned RQ scheduler children reaped), "
            f"{self.redis_restarts} Redis crash+restart ({self.redis_down_s:.1f} s down), "
            f"{len(self.unexpected_exits)} processes exited by themselves",
            f"reports sent (201):          {self.sent_201}",
            f"answered 200 on a retry:     {self.answered_200}",
            f"never acknowledged:          {self.not_acknowledged}",
            f"503 retries (same client_id):{self.retries_503:5d}  over {self.reports_retried} "
            f"reports; connection errors {self.connection_errors}",
            f"slowest POST:                {self.max_post_s:.3f} s  "
            f"(sender lag max {self.max_send_lag_s:.3f} s)",
            f"unique reports stored:       {self.unique_reports_stored}  "
            f"(stored twice: {self.reports_stored_twice})",
            f"reports routed:              {self.reports_routed}",
            f"(report, station) expected:  {self.expected_dispatches}",
            f"(report, station) found:     {self.reports_in_dispatches}  "
            f"({self.joined_case} by joining a linked case's dispatch)",
            f"dispatch documents:          {self.dispatches_found}  (one per case and station; "
            f"{self.split_cases} cases split over 2+ dispatches of a station)",
            f"duplicates:                  {self.duplicates}  "
            f"(a report in 2+ dispatches of one station)",
            f"to a wrong station / orphan: {self.unexpected_dispatches} / "
            f"{self.orphan_dispatches}",
            f"losses:                      {self.losses}  (acknowledged but not stored "
            f"{len(self.acknowledged_not_stored)}; (report, station) missing "
            f"{len(self.missing)}; reports unrouted {len(self.unrouted)})",
            f"undelivered (still new):     {len(self.undelivered)}",
            f"stored → in inbox:           p50 {fmt_s(p(self.inbox_delays, 50))}  "
            f"p99 {fmt_s(p(self.inbox_delays, 99))}  worst {fmt_s(p(self.inbox_delays, 100))}",
            f"stored → delivered:          p50 {fmt_s(p(self.delivered_delays, 50))}  "
            f"p99 {fmt_s(p(self.delivered_delays, 99))}  "
            f"worst {fmt_s(p(self.delivered_delays, 100))}",
            f"worst:                       {self.worst}",
            f"longest new → delivered:     {self.worst_undelivered_gap}",
            f"settled after the load:      {fmt_s(self.settled_s)}"
            + ("" if self.settled_s is not None else "  (TIMED OUT)"),
            f"routings logged:             {self.route_runs}  "
            f"({self.route_runs / max(1, self.unique_reports_stored):.2f} per report); "
            f"sweeper re-queued {self.sweep_requeues}; intake could not queue "
            f"{self.intake_not_queued} (Redis down)",
        ]
        for queue, counts in sorted(self.rq.items()):
            if any(counts.values()):
                lines.append(f"rq {queue:12s}               " + ", ".join(
                    f"{k} {v}" for k, v in counts.items()))
        lines.append(f"RQ scheduler at the end:     {self.scheduler}")
        lines.append("enqueue_in(1 s) probe:       " + (
            f"ran after {self.scheduled_probe_s:.1f} s" if self.scheduled_probe_s is not None
            else f"NOT run within {PROBE_WAIT_S:.0f} s (no live RQ scheduler: retries, SLA "
                 "checks and other scheduled jobs wait)"))
        lines += [f"failed job: {f}" for f in self.failed_jobs[:5]]
        lines += [f"exited by itself: {e}" for e in self.unexpected_exits[:5]]
        lines += [f"missing: {c} → {s}" for c, s in self.missing[:10]]
        lines += [f"duplicate: {c} → {s}" for c, s in self.duplicate_pairs[:10]]
        lines += [f"unrouted: {c}" for c in self.unrouted[:10]]
        lines += [f"undelivered: {c} → {s}" for c, s in self.undelivered[:10]]
        lines += [f"client error: {e}" for e in self.client_errors[:5]]
        lines.append("timeline: " + "; ".join(f"{f.at:.1f}s {f.what}{f.detail}"
                                              for f in self.faults))
        lines.append(f"machine load average at the start / end of the load: "
                     f"{self.machine_load[0]:.1f} / {self.machine_load[1]:.1f} on "
                     f"{os.cpu_count()} CPUs (shared machine: delays include others' work)")
        lines.append(f"logs: {self.log_dir}")
        return "\n".join(lines)


class Chaos:
    """Kills workers, crashes Redis, and restarts whatever exits by itself (like systemd)."""

    def __init__(self, running: Running, rng: random.Random, result: DrillResult,
                 t0: float) -> None:
        self.running = running
        self.rng = rng
        self.result = result
        self.t0 = t0
        self.lock = threading.Lock()
        self.killed: set[int] = set()  # pids the drill killed on purpose
        # (when, job id) for each worker killed while RQ said it ran that job
        self.killed_jobs: list[tuple[float, str]] = []
        self.redis_down = threading.Event()
        self.stop = threading.Event()
        self.dead_since: dict[int, float] = {}

    def note(self, what: str, detail: str = "") -> None:
        self.result.faults.append(Fault(time.monotonic() - self.t0, what, detail))

    def _running_job(self, pid: int) -> str | None:
        """The id of the job RQ says this worker process is running ("" for none; None:
        Redis did not say)."""
        import redis as redis_lib
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        from rq import Worker

        conn = redis_lib.Redis(port=self.running.redis_port, socket_timeout=0.5,
                               socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
        try:
            for worker in Worker.all(connection=conn):
                if worker.pid == pid:
                    return worker.get_current_job_id() or ""
            return ""
        except Exception:  # noqa: BLE001 - Redis down or a half-written worker hash
            return None
        finally:
            conn.close()

    def kill_worker(self, wait_s: float = 60.0, lane: str | None = None) -> None:
        """SIGKILL a random live worker (of `lane`, if given); when none lives (all died
        while Redis was down and wait for it to return), wait for the supervisor to bring
        one back, then kill it."""
        deadline = time.monotonic() + wait_s
        while True:
            with self.lock:
                alive = [w for w in self.running.workers if w.proc.poll() is None
                         and (lane is None or self.running.lane_of(w) == lane)]
                victim = self.rng.choice(alive) if alive else None
            if victim is not None:
                break
            if time.monotonic() > deadline:
                self.note("kill skipped", " (no worker alive)")
                return
            time.sleep(0.1)
        job = self._running_job(victim.proc.pid)
        busy = bool(job)
        self.killed.add(victim.proc.pid)
        victim.kill()  # SIGKILL to the worker process, as a crash or the OOM killer does
        if job:
            self.killed_jobs.append((time.monotonic(), job))
        # RQ forks its scheduler from the worker that holds the scheduler lock; that
        # child survives its parent's SIGKILL. In production systemd kills the unit's
        # cgroup before restarting it; the drill does the same to the process group.
        orphan = False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(victim.proc.pid, 0)
            orphan = True
            os.killpg(victim.proc.pid, signal.SIGKILL)
        with self.lock:
            self.running.workers.remove(victim)
            replacement = self.running.add_worker(self.running.lane_of(victim))
        self.result.kills += 1
        self.result.kills_mid_job += int(busy)
        self.result.orphans_reaped += int(orphan)
        self.note("kill -9", f" {victim.name}{f' (busy: {job})' if busy else ''}"
                  f"{' +orphan' if orphan else ''} → {replacement.name}")

    def crash_redis(self, down_s: float, graceful: bool) -> None:
        running = self.running
        self.redis_down.set()
        started = time.monotonic()
        if graceful:
            running.redis.stop()
        else:
            running.redis.kill()
        self.note("redis " + ("stopped" if graceful else "kill -9"))
        time.sleep(down_s)
        running.redis = running.stack.redis(running.redis_port, running.redis_dir)
        self.result.redis_down_s = time.monotonic() - started
        self.result.redis_restarts += 1
        self.redis_down.clear()
        self.note("redis up", f" after {self.result.redis_down_s:.1f} s")

    def supervise(self) -> None:
        """Restart a worker or cron that exited by itself, after RestartSec=1, and report it."""
        while not self.stop.is_set():
            with self.lock:
                services = [*self.running.workers,
                            *([self.running.cron] if self.running.cron else []),
                            self.running.web]
            now = time.monotonic()
            for service in services:
                pid = service.proc.pid
                if service.proc.poll() is None or pid in self.killed:
                    continue
                if pid not in self.dead_since:
                    self.dead_since[pid] = now
                    tail = " | ".join(service.log_tail(6).splitlines()[-3:])
                    self.result.unexpected_exits.append(
                        f"{service.name} (pid {pid}) exited {service.proc.returncode} at "
                        f"{now - self.t0:.1f} s: {tail[-400:]}")
                    self.note("exited by itself", f" {service.name}")
                    continue
                if now - self.dead_since[pid] < RESTART_SEC or self.redis_down.is_set():
                    continue
                self.killed.add(pid)  # handled
                with self.lock:
                    if service in self.running.workers:
                        self.running.workers.remove(service)
                        new = self.running.add_worker(self.running.lane_of(service))
                    elif service is self.running.cron:
                        new = self.running.cron = self.running.stack.cron(self.running.env)
                    else:
                        continue  # gunicorn: reported only
                self.note("restarted", f" {service.name} → {new.name}")
            self.stop.wait(0.2)


def run_fault_drill(stack_dir: Path, reports: int = 500, rate_per_s: float = 10.0,
                    kills: int = 10, redis_restart: bool = True, seed: int | None = None, *,
                    workers: int = 2, redis_down_s: float = 5.0, redis_graceful: bool = False,
                    settle_timeout_s: float = 120.0, sweep_s: int = 2,
                    case_window_s: int | None = 2,
                    progress: Callable[[str], None] | None = None) -> DrillResult:
    """Run the drill against a stack of its own under `stack_dir`; see the module docstring.

    Redis is crashed with SIGKILL by default (AOF everysec: up to a second of
    writes may be lost), or stopped with SIGTERM when `redis_graceful`.

    `case_window_s`: reports of one category in neighbouring cells within this
    window join one case (one dispatch per case and station). The production
    default (6 h) would link nearly all of hundreds of reports sent within a
    minute to 48 cells; 2 s keeps a mix of new dispatches and joins, so both
    paths are under fire. None: the settings' default.
    """
    seed = random.SystemRandom().randrange(1 << 31) if seed is None else seed
    rng = random.Random(seed)
    say = progress or (lambda _msg: None)
    result = DrillResult(seed=seed, reports_planned=reports, rate_per_s=rate_per_s,
                         log_dir=str(stack_dir / "logs"))
    say(f"starting the stack under {stack_dir} (seed {seed})")
    env = {"SAFEGRID_SWEEP_AFTER_S": str(sweep_s), "SAFEGRID_SWEEP_INTERVAL_S": str(sweep_s)}
    if case_window_s is not None:
        env["SAFEGRID_CASE_WINDOW_S"] = str(case_window_s)
    running = start_stack(stack_dir, workers=workers, extra_env=env)
    try:
        wait_for_workers(running)
        plan = plan_reports(reports, rng, running.tokens, f"drill{seed}")
        client = Http(running.port)
        load_s = reports / rate_per_s
        # Fault times: kills spread over the load, the Redis crash in its middle third.
        kill_at = sorted(rng.uniform(0.05, 0.98) * load_s for _ in range(kills))
        events: list[tuple[float, str]] = [(t, "kill") for t in kill_at]
        if redis_restart:
            events.append((rng.uniform(0.35, 0.6) * load_s, "redis"))
        events.sort()

        load_before = os.getloadavg()[0]
        t0 = time.monotonic()
        chaos = Chaos(running, rng, result, t0)
        supervisor = threading.Thread(target=chaos.supervise, name="supervisor", daemon=True)
        supervisor.start()

        def faults() -> None:
            for at, what in events:
                wait = t0 + at - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if what == "kill":
                    chaos.kill_worker()
                else:
                    threading.Thread(target=chaos.crash_redis, name="redis-crash",
                                     args=(redis_down_s, redis_graceful), daemon=True).start()

        chaos_thread = threading.Thread(target=faults, name="chaos", daemon=True)
        chaos_thread.start()
        say(f"sending {reports} reports at {rate_per_s:g}/s with {kills} kills"
            f"{' and a Redis crash' if redis_restart else ''}")
        sent = send_at_rate(client, plan, rate_per_s, started=t0)
        chaos_thread.join()
        while chaos.redis_down.is_set():
            time.sleep(0.1)
        load_done = time.monotonic()
        result.load_s = load_done - t0
        result.machine_load = (load_before, os.getloadavg()[0])
        _count_client(result, plan, sent)

        say("waiting for every report to be routed and delivered")
        acknowledged = {p.client_id for p, s in zip(plan, sent, strict=True)
                        if s.status in (200, 201)}
        deadline = load_done + settle_timeout_s
        while True:
            state = read_store()
            if _complete(plan, acknowledged, state):
                result.settled_s = time.monotonic() - load_done
                break
            if time.monotonic() > deadline:
                break
            time.sleep(1.0)
        chaos.stop.set()
        supervisor.join(5)
        _count_store(result, plan, acknowledged, read_store())
        supervisor_token = token_for(running.tokens, "supervisor")
        for station in sorted({s for p in plan for s in p.expected}):
            result.http_inbox[station] = {
                code for d in inbox(client, station, supervisor_token)
                for code in dispatch_codes(client, d, supervisor_token)}
        _count_rq(result, running)
    finally:
        spawned = list(running.stack.services)
        running.stack.stop()
        reap_orphans(spawned)
    return result


def reap_orphans(services: Iterable[Service]) -> int:
    """SIGKILL what is left in the process groups of workers and cron we started.

    A worker that died (killed, or exited on its own) can leave its forked RQ
    scheduler running; each service was started in its own session, so its
    process group holds exactly that leftover. Returns how many groups had one.
    """
    reaped = 0
    for service in services:
        if not (service.name.startswith("worker") or service.name == "cron"):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(service.proc.pid, signal.SIGKILL)
            reaped += 1
    return reaped


def _count_client(result: DrillResult, plan: list[PlannedReport], sent: list[Sent]) -> None:
    for p, s in zip(plan, sent, strict=True):
        result.sent_201 += s.status == 201
        result.answered_200 += s.status == 200
        if s.status not in (200, 201):
            result.not_acknowledged += 1
            result.client_errors.append(f"{p.client_id}: {s.status} {s.error}")
        result.retries_503 += s.retries_503
        result.connection_errors += s.connection_errors
        result.reports_retried += s.attempts > 1
        result.max_post_s = max(result.max_post_s, s.answered - s.started)
        result.max_send_lag_s = max(result.max_send_lag_s, s.started - s.due)


def _complete(plan: list[PlannedReport], acknowledged: set[str], state: StoreState) -> bool:
    for p in plan:
        report = state.reports.get(p.client_id)
        if report is None:
            if p.client_id in acknowledged:
                return False  # lost, or not visible yet
            continue
        if report["status"] == "received":
            return False
        for station in p.expected:
            found = state.appearances.get((p.client_id, station))
            if not found or any(a.status == "new" for a in found):
                return False
    return True


def _count_store(result: DrillResult, plan: list[PlannedReport], acknowledged: set[str],
                 state: StoreState) -> None:
    result.unique_reports_stored = len(state.reports)
    result.reports_stored_twice = state.extra_reports
    result.orphan_dispatches = state.orphan_codes
    result.dispatches_found = state.dispatches
    result.split_cases = state.split_cases
    planned = {p.client_id: p for p in plan}
    worst = (-1.0, "")
    gap = (-1.0, "")
    for client_id, report in state.reports.items():
        p = planned.get(client_id)
        if p is None:
            continue
        if report["status"] == "received":
            result.unrouted.append(client_id)
        else:
            result.reports_routed += 1
        for station in p.expected:
            result.expected_dispatches += 1
            result.expected_pairs.append((report["code"], station))
            found = state.appearances.get((client_id, station), [])
            if not found:
                result.missing.append((client_id, station))
                continue
            result.reports_in_dispatches += 1
            result.duplicates += len(found) - 1
            if len(found) > 1:
                result.duplicate_pairs.append((client_id, station))
            first = min(found, key=lambda a: a.at or dt.datetime.max)
            result.joined_case += first.joined
            if any(a.status == "new" for a in found):
                result.undelivered.append((client_id, station))
            delay = seconds(first.at, report["created_at"])
            if delay is not None:
                result.inbox_delays.append(delay)
                if delay > worst[0]:
                    worst = (delay, f"{delay:.3f} s: {report['code']} ({p.category}, {p.by}) "
                                    f"→ {station}{' (joined its case)' if first.joined else ''}")
            if first.delivered_at is not None and first.at is not None:
                delivered = seconds(max(first.delivered_at, first.at), report["created_at"])
                assert delivered is not None
                result.delivered_delays.append(delivered)
                waited = seconds(first.delivered_at, first.at)
                if not first.joined and waited is not None and waited > gap[0]:
                    gap = (waited, f"{waited:.3f} s: {report['code']} → {station}")
    result.worst = worst[1]
    result.worst_undelivered_gap = gap[1]
    for (client_id, station), found in state.appearances.items():
        p = planned.get(client_id)
        if p is None or station not in p.expected:
            result.unexpected_dispatches += len(found)
        code = state.reports[client_id]["code"]
        result.db_inbox.setdefault(station, set()).add(code)
    result.acknowledged_not_stored = sorted(acknowledged - set(state.reports))


# A report's routing, as the routing module logs it (JSON lines, gateway/jsonlog.py).
_ROUTED = re.compile(rb'"logger": "gateway\.delivery\.routing", "message": "routed to ')
_SWEEP = re.compile(rb"sweep: re-queued (\d+) unrouted reports")


def _count_rq(result: DrillResult, running: Running) -> None:
    """Queue lengths, leftovers in RQ's registries, failed jobs; route runs from the logs."""
    import redis as redis_lib
    from rq.job import Job
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    from gateway.delivery.queues import WORKER_QUEUES

    conn = redis_lib.Redis.from_url(running.redis_url)
    try:
        for name in WORKER_QUEUES:
            started = StartedJobRegistry(name, connection=conn)
            failed = FailedJobRegistry(name, connection=conn)
            scheduled = ScheduledJobRegistry(name, connection=conn)
            # zcard, not count(): count() would clean the registry up as a side effect.
            result.rq[name] = {"queued": int(conn.llen(f"rq:queue:{name}")),
                               "started": int(conn.zcard(started.key)),
                               "failed": int(conn.zcard(failed.key)),
                               "scheduled": int(conn.zcard(scheduled.key))}
            for raw in conn.zrange(failed.key, 0, 4):
                job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
                try:
                    job = Job.fetch(job_id, connection=conn)
                    last = (job.exc_info or "").strip().splitlines()[-1:] or ["?"]
                    result.failed_jobs.append(f"{name}/{job_id}: {last[0][:200]}")
                except Exception as exc:  # noqa: BLE001 - a diagnostic only
                    result.failed_jobs.append(f"{name}/{job_id}: ({exc})")
        result.scheduler = _scheduler_state(conn)
        result.scheduled_probe_s = _probe_scheduler(conn)
    finally:
        conn.close()
    for log in Path(result.log_dir).glob("worker-*.log"):
        text = log.read_bytes()
        result.route_runs += len(_ROUTED.findall(text))
        result.sweep_requeues += sum(int(n) for n in _SWEEP.findall(text))
    for log in Path(result.log_dir).glob("gunicorn-*.log"):
        result.intake_not_queued += log.read_bytes().count(b"could not queue report")


def _scheduler_state(conn: Any) -> str:
    """The holder of RQ's scheduler lock for `critical`, its pid and whether it lives."""
    from rq.scheduler import SCHEDULER_KEY_TEMPLATE, SCHEDULER_LOCKING_KEY_TEMPLATE

    lock = SCHEDULER_LOCKING_KEY_TEMPLATE % "critical"
    holder = conn.get(lock)
    if holder is None:
        return "nobody holds the lock"
    name = holder.decode()
    info = conn.hgetall(SCHEDULER_KEY_TEMPLATE % name)
    pid = int(info.get(b"pid", b"0") or 0)
    alive = False
    if pid:
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
            alive = True
        except (ProcessLookupError, PermissionError):
            alive = False
    return (f"lock held by {name[:8]} (pid {pid or '?'}, "
            f"{'alive' if alive else 'NOT running'}), expires in {conn.ttl(lock)} s")


def _probe_scheduler(conn: Any) -> float | None:
    """Seconds until a job enqueued with `enqueue_in(1 s)` has run; None if it did not."""
    from rq import Queue

    job = Queue("critical", connection=conn).enqueue_in(dt.timedelta(seconds=1), "os.getpid")
    started = time.monotonic()
    while time.monotonic() - started < PROBE_WAIT_S:
        if job.get_status(refresh=True) == "finished":
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=500)
    parser.add_argument("--rate", type=float, default=10.0, help="reports per second")
    parser.add_argument("--kills", type=int, default=10, help="worker kill -9s (at least)")
    parser.add_argument("--no-redis-restart", action="store_true")
    parser.add_argument("--redis-down", type=float, default=5.0,
                        help="seconds Redis stays down (redis-py alone retries ~5 s)")
    parser.add_argument("--redis-graceful", action="store_true",
                        help="SIGTERM Redis (AOF flushed) instead of SIGKILL")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--settle-timeout", type=float, default=120.0)
    parser.add_argument("--sweep", type=int, default=2,
                        help="SAFEGRID_SWEEP_AFTER_S and _INTERVAL_S for the workers and cron")
    parser.add_argument("--case-window", type=int, default=2,
                        help="seconds within which nearby reports of a category link into one "
                             "case; -1: the settings' default (6 h)")
    parser.add_argument("--dir", type=Path, default=None, help="where logs and Redis data go")
    parser.add_argument("--leg", choices=("reports", "sms", "alert", "all"), default="all",
                        help="reports over the API, inbound SMS through the webhook, an "
                             "alert's fan-out, or all three")
    parser.add_argument("--alert-people", type=int, default=3000,
                        help="grid workers the alert leg's alert reaches")
    parser.add_argument("--alert-kills", type=int, default=6,
                        help="worker kill -9s (alert leg)")
    parser.add_argument("--sms", type=int, default=200, help="inbound SMS in the SMS leg")
    parser.add_argument("--sms-rate", type=float, default=10.0, help="SMS per second")
    parser.add_argument("--sms-kills", type=int, default=8, help="worker kill -9s (SMS leg)")
    args = parser.parse_args()
    say = lambda msg: print(f"==> {msg}", file=sys.stderr, flush=True)  # noqa: E731
    ok = True
    if args.leg in ("sms", "all"):
        from bench.faults_sms import run_sms_drill

        sms_dir = (args.dir / "sms") if args.dir else Path(tempfile.mkdtemp(
            prefix="safegrid-faults-sms-"))
        sms = run_sms_drill(sms_dir, messages=args.sms, rate_per_s=args.sms_rate,
                            kills=args.sms_kills, redis_restart=not args.no_redis_restart,
                            seed=args.seed, redis_down_s=args.redis_down,
                            settle_timeout_s=args.settle_timeout, sweep_s=args.sweep,
                            progress=say)
        print(sms.summary())
        print(f"SMS leg: {'ok' if sms.ok else 'FAILED'}")
        ok = ok and sms.ok
    if args.leg in ("alert", "all"):
        from bench.faults_alert import run_alert_drill

        alert_dir = (args.dir / "alert") if args.dir else Path(tempfile.mkdtemp(
            prefix="safegrid-faults-alert-"))
        alert = run_alert_drill(alert_dir, people=args.alert_people, kills=args.alert_kills,
                                redis_restart=not args.no_redis_restart, seed=args.seed,
                                redis_down_s=args.redis_down, sweep_s=args.sweep,
                                settle_timeout_s=args.settle_timeout, progress=say)
        print(alert.summary())
        print(f"alert leg: {'ok' if alert.ok else 'FAILED'}")
        ok = ok and alert.ok
    if args.leg in ("sms", "alert"):
        return 0 if ok else 1

    stack_dir = args.dir or Path(tempfile.mkdtemp(prefix="safegrid-faults-"))
    result = run_fault_drill(
        stack_dir, reports=args.reports, rate_per_s=args.rate, kills=args.kills,
        redis_restart=not args.no_redis_restart, seed=args.seed, workers=args.workers,
        redis_down_s=args.redis_down, redis_graceful=args.redis_graceful,
        settle_timeout_s=args.settle_timeout, sweep_s=args.sweep,
        case_window_s=None if args.case_window < 0 else args.case_window,
        progress=say)
    print(result.summary())
    print(f"reports leg: {'ok' if result.ok else 'FAILED'}")
    return 0 if ok and result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
