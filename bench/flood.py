"""Flood benchmark: 50 clients post reports flat out for 60 s; does routing keep up?

The stack as `make run` starts it (deploy/processes.Stack via bench/faults.py's
start_stack): Redis with AOF, SecantusDB on disk, gunicorn, one fast-lane worker
(SMS, critical, the sweeper), `--route-workers` routing workers, cron; the sample
county. `--clients` threads post reports back to back for `--seconds`; a
`--critical-share` of them critical (child abduction), the rest urgent and
routine; a registered reporter texts a report through the Kannel webhook every
`--sms-every` seconds. Then it waits until every report is routed (in an inbox).

Printed, with ratios to the issue's targets (issue 18):
- reports stored, and the intake rate;
- drain: time from the flood's end until every report is in an inbox, and its
  ratio to the flood's length (target ≤ 2);
- route jobs/s per routing worker during the flood and the drain;
- stored → inbox for critical reports filed during the backlog (target p99 ≤ 5 s),
  and stored → handled for the SMS;
- route run time per report (a batch job's time over its reports) by the size of
  the clue when the job's first report joined it (from the workers' logs; target:
  flat);
- scaling: route jobs/s with 1, 2 and 4 routing workers on a fresh batch
  (`--scale-reports` each, linking window 1 s so clue size stays out of it).

    .venv/bin/python bench/flood.py [--seconds 60] [--clients 50] [--route-workers 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import secrets
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.faults import (  # noqa: E402
    Http,
    Running,
    percentile,
    reap_orphans,
    start_stack,
    wait_for_workers,
)

SECRET = secrets.token_urlsafe(16)  # the Kannel webhook secret of this run
CRITICAL = ("CHILD", "ORIGIN", "ABUSE")
OTHERS = ("WOMAN", "LABOUR", "ADOPT", "BIRTH", "ONLINE", "OTHER")
DETAILS = "车站附近有人带着几个孩子，孩子不说话，神情紧张。"
SMS_SENDERS = ("+8613800001001", "+8613800001002", "+8613800001003", "+8613800001005")
DRAIN_TARGET = 2.0  # the backlog drains within 2x the flood's length
CRITICAL_TARGET_S = 5.0

_ROUTE_LINE = re.compile(rb"Successfully completed gateway\.delivery\.routing\.route\("
                         rb"'([0-9a-f]{24})'\) job in (\d+):(\d+):([\d.]+)s")
_BATCH_LINE = re.compile(rb"route batch ([0-9a-f]{24}): (\d+) reports")


def figures(values: list[float], unit: str = "s") -> str:
    if not values:
        return "no values"
    parts = [f"{name} {percentile(values, q):.3f} {unit}"
             for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))]
    return "  ".join(parts) + f"  (n={len(values)})"


class Flood:
    """`clients` threads posting reports back to back until `stop` is set."""

    def __init__(self, running: Running, clients: int, critical_share: float,
                 seed: int) -> None:
        from grid.documents import GridCell

        self.http = Http(running.port)
        self.tokens = sorted(t for who, t in running.tokens.items()
                             if who.startswith("reporter"))
        self.cells = [c.code for c in GridCell.objects.only("code")]
        self.clients, self.share, self.seed = clients, critical_share, seed
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.stored = 0
        self.failed: list[str] = []
        self.critical: dict[str, float] = {}  # client_id → monotonic when answered

    def _client(self, n: int) -> None:
        rng = random.Random(self.seed * 1000 + n)
        i = 0
        while not self.stop.is_set():
            i += 1
            critical = rng.random() < self.share
            category = rng.choice(CRITICAL if critical else OTHERS)
            client_id = f"flood-{n:03d}-{i:06d}"
            body = json.dumps({"client_id": client_id, "category": category,
                               "details": DETAILS,
                               "grid_code": rng.choice(self.cells)}).encode()
            try:
                status, data = self.http.request("POST", "/api/v1/reports",
                                                 self.tokens[n % len(self.tokens)], body)
            except (OSError, http.client.HTTPException) as exc:
                status, data = 0, repr(exc).encode()
            with self.lock:
                if status in (200, 201):
                    self.stored += 1
                    if critical:
                        self.critical[client_id] = time.monotonic()
                else:
                    self.failed.append(f"{status} {data[:120]!r}")

    def run(self, seconds: float) -> float:
        threads = [threading.Thread(target=self._client, args=(n,), daemon=True)
                   for n in range(self.clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(seconds)
        self.stop.set()
        for t in threads:
            t.join(60)
        return time.monotonic() - started


def text_reports(running: Running, stop: threading.Event, every_s: float,
                 cells: list[str], sent: list[str]) -> None:
    """A registered reporter's texted report every `every_s`, as Kannel hands it over."""
    client = Http(running.port)
    n = 0
    while not stop.wait(every_s):
        n += 1
        message_id = f"flood-sms-{n:05d}"
        params = {"secret": SECRET, "id": message_id, "from": SMS_SENDERS[n % 4],
                  "to": "10690110", "text": f"R 2 @{cells[n % len(cells)]} 外地媳妇不让出门",
                  "charset": "utf-8", "coding": "0"}
        for _ in range(20):  # Kannel retries the same id until it gets a 2xx
            try:
                status, _ = client.request(
                    "GET", "/sms/inbound/kannel?" + urllib.parse.urlencode(params), "-")
            except (OSError, http.client.HTTPException):
                status = 0
            if status == 200:
                sent.append(message_id)
                break
            time.sleep(0.5)


def unrouted() -> int:
    from gateway.records.reports import Report

    return int(Report.objects(status="received").count())


def routed_count() -> int:
    """Reports routed so far, from the route jobs' own Redis histogram (one HGET)."""
    from gateway import telemetry
    from gateway.extensions import redis_store

    key = telemetry.HISTOGRAM.format(name="route_seconds")
    return int(redis_store.conn.hget(key, "count") or 0)


def wait_drained(timeout: float, say: Any, backlog: int) -> float | None:
    """Seconds until no report is left unrouted; None if `timeout` passed first.

    Watched on the route jobs' Redis counter, then confirmed in the store: counting the
    unrouted reports in SecantusDB every second cost it 10-30 % of its CPU during a
    drain (an aggregate over thousands of index keys each time), which slowed the very
    routing it timed. The store is asked every 15 s for the progress line, and once the
    counter says the backlog is through."""
    started = time.monotonic()
    routed_before = routed_count()
    last = started
    while True:
        now = time.monotonic()
        if routed_count() - routed_before >= backlog and unrouted() == 0:
            return time.monotonic() - started
        if now - started > timeout:
            return None
        if now - last > 15:
            say(f"{unrouted()} reports not yet routed after {now - started:.0f} s")
            last = now
        time.sleep(0.5)


def route_times(log_dir: Path) -> dict[str, float]:
    """report id → its route job's run time per report it routed, from the workers' logs
    (last run wins): a job that took a backlog with it routed a batch (`route batch`)."""
    found: dict[str, float] = {}
    for log in log_dir.glob("worker-*.log"):
        text = log.read_bytes()
        batch = {rid.decode(): int(n) for rid, n in _BATCH_LINE.findall(text)}
        for rid, h, m, s in _ROUTE_LINE.findall(text):
            took = int(h) * 3600 + int(m) * 60 + float(s)
            found[rid.decode()] = took / batch.get(rid.decode(), 1)
    return found


def by_clue_size(times: dict[str, float]) -> dict[str, list[float]]:
    """Route run times bucketed by how many reports the clue held when this one joined."""
    from gateway.records.reports import Report

    per_case: dict[Any, list[tuple[Any, str]]] = defaultdict(list)
    for r in Report._get_collection().find({"case_id": {"$ne": None},
                                            "client_id": {"$regex": "^flood-"}},
                                           {"case_id": 1, "routed_at": 1}):
        per_case[r["case_id"]].append((r.get("routed_at"), str(r["_id"])))
    buckets: dict[str, list[float]] = defaultdict(list)
    for members in per_case.values():
        members.sort(key=lambda m: (m[0] is None, m[0]))
        for rank, (_, rid) in enumerate(members, 1):
            if rid in times:
                size = ("1-9" if rank < 10 else "10-99" if rank < 100
                        else "100-999" if rank < 1000 else "1000+")
                buckets[size].append(times[rid])
    return buckets


@dataclass
class Scaled:
    """One step of the scaling stage: n routing workers."""

    workers: int
    route_per_s: float
    bare_per_s: float  # bare RQ jobs (os.getpid) on the same workers: RQ's own ceiling
    store_cpu: float  # SecantusDB's CPU seconds per wall second while routing (1.0: a core)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drain_timed(conn: Any, done: Any) -> float:
    """Seconds from `rq resume` until `done()`; workers look every second, hence a
    batch long enough for that second not to matter."""
    from rq.suspension import resume

    started = time.monotonic()
    resume(conn)
    while not done():
        time.sleep(0.05)
    return time.monotonic() - started


def scaling(running: Running, counts: tuple[int, ...], reports: int, say: Any) -> list[Scaled]:
    """Route jobs/s with n routing workers on fresh reports, before the flood.

    UNCLASSIFIED (urgent), which the flood does not use, and a linking window of
    1 s for these workers, so clue size stays out of it. The reports are stored
    and queued while RQ is suspended (`rq suspend`: this process alone stores
    only ~40 a second, which capped the first version of this stage), then timed
    from the resume to the last one routed. The same for bare RQ jobs, and the
    store's CPU use meanwhile: what limits routing, RQ or the store.
    """
    from rq import Queue
    from rq.suspension import suspend

    from gateway.extensions import redis_store
    from gateway.intake.reports import NewReport, file_report
    from gateway.records.people import Reporter
    from gateway.records.reports import Report
    from grid.documents import GridCell, utcnow

    conn = redis_store.conn
    reporter = str(Reporter.objects(role="grid_worker").first().id)
    cells = [c.code for c in GridCell.objects.only("code")]
    store = next(s for s in running.stack.services if s.name.startswith("secantus"))
    env = {**running.env, "SAFEGRID_CASE_WINDOW_S": "1"}
    urgent = Queue("urgent", connection=conn)
    results = []
    for n in counts:
        workers = [running.stack.worker(env, name=f"worker-scale{n}-{i}", lane="route")
                   for i in range(n)]
        running.workers.extend(workers)
        suspend(conn)
        wait_for_workers(running)
        with conn.pipeline() as pipe:
            for _ in range(reports * 5):
                urgent.enqueue("os.getpid", result_ttl=0, pipeline=pipe)
            pipe.execute()
        bare = reports * 5 / _drain_timed(conn, lambda: urgent.count == 0
                                          and not urgent.started_job_registry.count)
        suspend(conn)
        prefix = f"scale{n}-"
        filed_from = utcnow()
        for i in range(reports):
            file_report(NewReport(reporter_id=reporter, client_id=f"{prefix}{i:05d}",
                                  category="UNCLASSIFIED", details=DETAILS,
                                  source="app", grid_code=cells[i % len(cells)]))
        cpu = _cpu_seconds(store.proc.pid)
        # Counted by status and time, which the reports' (status, created_at) index covers:
        # with a client-id prefix as well, SecantusDB read every report every 50 ms.
        took = _drain_timed(conn, lambda since=filed_from: not Report.objects(
            status="received", created_at__gte=since).count())
        step = Scaled(n, reports / took, bare, (_cpu_seconds(store.proc.pid) - cpu) / took)
        results.append(step)
        say(f"{n} routing workers: {step.route_per_s:.1f} route jobs/s, bare RQ jobs "
            f"{step.bare_per_s:.0f}/s, store CPU {step.store_cpu:.2f} s/s")
        for w in workers:
            w.stop()
            running.workers.remove(w)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the flood")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--route-workers", type=int, default=2)
    parser.add_argument("--critical-share", type=float, default=0.02)
    parser.add_argument("--sms-every", type=float, default=2.0, help="seconds; 0: no SMS")
    parser.add_argument("--case-window", type=int, default=-1,
                        help="linking window in seconds; -1: the settings' default (6 h)")
    parser.add_argument("--drain-timeout", type=float, default=None,
                        help="seconds to wait for the drain (default: 5x the flood)")
    parser.add_argument("--scale", default="1,2,4",
                        help="routing worker counts for the scaling stage; '' to skip")
    parser.add_argument("--scale-reports", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    def say(msg: str) -> None:
        print(f"==> {msg}", file=sys.stderr, flush=True)

    stack_dir = Path(tempfile.mkdtemp(prefix="safegrid-flood-"))
    env = {"SAFEGRID_SMS_WEBHOOK_SECRET": SECRET}
    if args.case_window >= 0:
        env["SAFEGRID_CASE_WINDOW_S"] = str(args.case_window)
    running = start_stack(stack_dir, workers=0, mongo_storage=str(stack_dir / "mongo"),
                          extra_env=env)
    try:
        scale_counts = tuple(int(n) for n in args.scale.split(",") if n)
        scaled = scaling(running, scale_counts, args.scale_reports, say) if scale_counts else []
        for _ in range(args.route_workers):
            running.add_worker("route")
        wait_for_workers(running)
        from gateway.records.reports import Report
        from sms.records import InboundMessage

        flood = Flood(running, args.clients, args.critical_share, args.seed)
        stop_sms = threading.Event()
        texted: list[str] = []
        sms = threading.Thread(target=text_reports, daemon=True,
                               args=(running, stop_sms, args.sms_every, flood.cells, texted))
        if args.sms_every > 0:
            sms.start()
        load_before = os.getloadavg()[0]
        say(f"flood: {args.clients} clients for {args.seconds:g} s")
        flood_s = flood.run(args.seconds)
        routed_in_flood = flood.stored - unrouted()
        backlog = unrouted()
        say(f"flood over: {flood.stored} stored, {backlog} not yet routed; draining")
        drain_s = wait_drained(args.drain_timeout or 5 * args.seconds, say, backlog)
        stop_sms.set()
        sms.join(10)
        load_after = os.getloadavg()[0]
        left = unrouted()
        drained_n = backlog - left

        reports = {d["client_id"]: d for d in Report._get_collection().find(
            {"client_id": {"$in": list(flood.critical)}},
            {"client_id": 1, "created_at": 1, "routed_at": 1})}
        critical = [(d["routed_at"] - d["created_at"]).total_seconds()
                    for d in reports.values() if d.get("routed_at")]
        handled = [(m.handled_at - m.received_at).total_seconds()
                   for m in InboundMessage.objects(message_id__in=texted)
                   if m.handled_at and m.received_at]
        sms_unhandled = len(texted) - len(handled)
        times = route_times(stack_dir / "logs")
        clue = by_clue_size(times)
    finally:
        spawned = list(running.stack.services)
        running.stack.stop()
        reap_orphans(spawned)

    rw = args.route_workers
    print(f"flood: {args.clients} clients for {flood_s:.1f} s; {rw} routing workers + 1 fast "
          f"lane; SecantusDB on disk; linking window "
          f"{'6 h (default)' if args.case_window < 0 else f'{args.case_window} s'}")
    print(f"reports stored:              {flood.stored} ({flood.stored / flood_s:.1f}/s); "
          f"refused/failed {len(flood.failed)} {flood.failed[:2]}")
    print(f"routed during the flood:     {routed_in_flood} "
          f"({routed_in_flood / flood_s:.1f}/s, {routed_in_flood / flood_s / rw:.1f}/s per "
          f"routing worker)")
    print(f"backlog at the flood's end:  {backlog}")
    if drain_s is not None:
        print(f"drain:                       {drain_s:.1f} s = {drain_s / flood_s:.2f} x the "
              f"flood (target ≤ {DRAIN_TARGET:g}: "
              f"{'met' if drain_s / flood_s <= DRAIN_TARGET else 'NOT met'}); "
              f"{drained_n / max(drain_s, 1e-9):.1f} route jobs/s, "
              f"{drained_n / max(drain_s, 1e-9) / rw:.1f}/s per routing worker")
    else:
        print(f"drain:                       NOT done: {left} of {backlog} still unrouted "
              f"after {args.drain_timeout or 5 * args.seconds:g} s "
              f"(ratio > {(args.drain_timeout or 5 * args.seconds) / flood_s:.1f})")
    crit_p99 = percentile(critical, 99)
    print(f"critical stored → inbox:     {figures(critical)}"
          + (f"  p99/target {crit_p99 / CRITICAL_TARGET_S:.2f}" if crit_p99 else ""))
    print(f"SMS stored → handled:        {figures(handled)}  (texted {len(texted)}, "
          f"unhandled {sms_unhandled})")
    print(f"route run time per report:   {figures(list(times.values()))}")
    smallest = clue.get("1-9")
    for size in ("1-9", "10-99", "100-999", "1000+"):
        if size in clue:
            mean = sum(clue[size]) / len(clue[size])
            ratio = (f"  x{mean / (sum(smallest) / len(smallest)):.1f} of 1-9"
                     if smallest else "")
            print(f"  joined a clue of {size:7s}   mean {mean * 1000:7.1f} ms  "
                  f"{figures(clue[size])}{ratio}")
    if scaled:
        base, bare = scaled[0].route_per_s, scaled[0].bare_per_s
        print("scaling (fresh reports, linking window 1 s; bare RQ jobs on the same workers):")
        for step in scaled:
            print(f"  {step.workers} routing worker{'s' if step.workers > 1 else ' '}  "
                  f"route {step.route_per_s:6.1f} jobs/s (x{step.route_per_s / base:.2f}, "
                  f"{step.route_per_s / step.workers:.1f}/s per worker)   bare RQ "
                  f"{step.bare_per_s:6.0f} jobs/s (x{step.bare_per_s / bare:.2f})   "
                  f"SecantusDB CPU {step.store_cpu:.2f} s/s, "
                  f"{step.store_cpu / step.route_per_s * 1000:.1f} ms per route job")
    print(f"machine load (1 min) before / after: {load_before:.1f} / {load_after:.1f} on "
          f"{os.cpu_count()} CPUs (shared machine: compare ratios)")
    print(f"logs: {stack_dir / 'logs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
