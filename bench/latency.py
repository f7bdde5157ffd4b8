"""Latency benchmark: report stored → dispatch in the station inbox, at a steady rate.

Real Redis (AOF everysec), SecantusDB (on disk by default, like `make run`),
gunicorn and RQ workers as separate processes, the sample county. Reports go
over HTTP at `--rate` per second (open loop) for `--duration` seconds across
every cell and category. Two measurements of the same reports:

- from the database: the dispatch's `created_at` (or, for a report that joined
  its linked case's dispatch, the time of the join) minus the report's
  `created_at`; both naive UTC from this machine's clock. Also until the
  dispatch was delivered (`delivered_at`).
- from the client: the 201 arriving → the report's code listed by
  `GET /stations/<code>/dispatches` (one poller per station, every
  `--poll-interval` s: that resolution is included in these figures).

The baseline, measured in the same run at the same rate on the same workers:
a bare RQ job (`os.getpid`) enqueued on the `critical` queue, from enqueue to
its end (RQ's own timestamps) and until the client holds its result. Target
(ARCHITECTURE.md): p99 ≤ 1 s at 20 reports/s.

    .venv/bin/python bench/latency.py [--rate 20] [--duration 30] [--poll-interval 0.25]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.faults import (  # noqa: E402
    TARGET_S,
    Http,
    PlannedReport,
    Running,
    percentile,
    plan_reports,
    read_store,
    reap_orphans,
    send_at_rate,
    start_stack,
    token_for,
    wait_for_workers,
)


def wait_until_in_inbox(plan: list[PlannedReport], timeout: float) -> None:
    """Until every report is in every inbox it belongs to, or `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_store()
        if all((p.client_id, s) in state.appearances for p in plan for s in p.expected):
            return
        time.sleep(0.5)


_ROUTE_TIME = re.compile(rb"Successfully completed gateway\.delivery\.routing\.route\(.*? job in "
                         rb"(\d+):(\d+):([\d.]+)s")


def route_job_seconds(log_dir: Path) -> list[float]:
    """How long each route job ran, from the RQ workers' logs."""
    found = []
    for log in log_dir.glob("worker-*.log"):
        for h, m, s in _ROUTE_TIME.findall(log.read_bytes()):
            found.append(int(h) * 3600 + int(m) * 60 + float(s))
    return found


def figures(values: list[float]) -> str:
    if not values:
        return "no values"
    p = [percentile(values, q) for q in (50, 90, 99, 100)]
    return "  ".join(f"{name} {v * 1000:7.1f} ms" for name, v in
                     zip(("p50", "p90", "p99", "max"), p, strict=True) if v is not None)


def baseline(running: Running, rate_per_s: float, seconds: float) -> tuple[list[float],
                                                                             list[float]]:
    """Bare RQ jobs at `rate_per_s`: (enqueue → end from RQ's timestamps, → result in hand)."""
    import redis as redis_lib
    from rq import Queue

    conn = redis_lib.Redis.from_url(running.redis_url)
    queue = Queue("critical", connection=conn)
    count = max(1, int(rate_per_s * seconds))
    server: list[float] = []
    client: list[float] = []
    lock = threading.Lock()

    def wait(job: Any, enqueued: float) -> None:
        result = job.latest_result(timeout=30)
        held = time.monotonic() - enqueued
        job.refresh()
        with lock:
            if result is not None and job.ended_at and job.enqueued_at:
                client.append(held)
                server.append((job.ended_at - job.enqueued_at).total_seconds())

    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        for i in range(count):
            delay = t0 + i / rate_per_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            started = time.monotonic()
            job = queue.enqueue("os.getpid", result_ttl=60)
            pool.submit(wait, job, started)
    conn.close()
    return server, client


class InboxPoller:
    """One thread per station polling its inbox; the first moment each report code shows."""

    def __init__(self, client: Http, token: str, stations: list[str], interval: float,
                 page_size: int = 20) -> None:
        self.client, self.token, self.interval, self.page_size = client, token, interval, page_size
        self.seen: dict[tuple[str, str], float] = {}
        self._read: set[tuple[Any, ...]] = set()
        self.requests = 0
        self.errors = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._poll, args=(s,), daemon=True,
                                         name=f"poll-{s}") for s in stations]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            if thread.is_alive():
                thread.join(10)

    def _codes(self, item: dict[str, Any]) -> list[str]:
        """The codes an inbox entry holds; a linked case's from its reports, read again
        only when it changed (a report joined it)."""
        if item.get("report_count", 1) <= 1:
            return [item["report_code"]]
        version = (item["id"], item.get("updated_at"), item.get("report_count"))
        if version in self._read:
            return []
        self._read.add(version)
        status, data = self.client.request("GET", f"/api/v1/dispatches/{item['id']}/reports",
                                           self.token)
        self.requests += 1
        return [r["code"] for r in json.loads(data)] if status == 200 else []

    def _poll(self, station: str) -> None:
        path = f"/api/v1/stations/{station}/dispatches?page_size={self.page_size}"
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                status, data = self.client.request("GET", path, self.token)
            except OSError:
                self.errors += 1
                status, data = 0, b""
            now = time.monotonic()  # the listing reflects some moment before now: conservative
            self.requests += 1
            if status == 200:
                for item in json.loads(data):
                    for code in self._codes(item):
                        self.seen.setdefault((code, station), now)
            else:
                self.errors += 1
            self.stop.wait(max(0.0, self.interval - (now - started)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="reports per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--workers", type=int, default=2, help="RQ worker processes")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--poll-interval", type=float, default=0.25,
                        help="seconds between inbox polls per station; 0: no client polling")
    parser.add_argument("--baseline", type=float, default=10.0,
                        help="seconds of bare RQ jobs before and after the load")
    parser.add_argument("--memory", action="store_true", help="SecantusDB :memory:")
    parser.add_argument("--case-window", type=int, default=2,
                        help="linked-case window in seconds (-1: the settings' 6 h); with "
                             "hundreds of reports a minute on 48 cells, 6 h links nearly all")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    stack_dir = Path(tempfile.mkdtemp(prefix="safegrid-latency-"))
    env = {} if args.case_window < 0 else {"SAFEGRID_CASE_WINDOW_S": str(args.case_window)}
    running = start_stack(stack_dir, workers=args.workers, web_workers=args.web_workers,
                          mongo_storage=":memory:" if args.memory else str(stack_dir / "mongo"),
                          extra_env=env)
    try:
        wait_for_workers(running)
        count = int(args.rate * args.duration)
        plan = plan_reports(count, random.Random(args.seed), running.tokens, "latency")
        client = Http(running.port)
        warm = plan_reports(20, random.Random(0), running.tokens, "warmup")
        send_at_rate(client, warm, 10.0)  # token caches, grid snapshots, connections
        wait_until_in_inbox(warm, 60)  # the baseline must not queue behind the warm-up
        load_before = os.getloadavg()[0]

        base_before = baseline(running, args.rate, args.baseline)
        stations = sorted({s for p in plan for s in p.expected})
        poller = InboxPoller(client, token_for(running.tokens, "supervisor"), stations,
                             args.poll_interval)
        if args.poll_interval > 0:
            poller.start()
        answered: dict[str, float] = {}

        def on_answer(_p: Any, sent: Any) -> None:
            if sent.code:
                answered[sent.code] = sent.answered

        sent = send_at_rate(client, plan, args.rate, on_answer=on_answer)
        load_after = os.getloadavg()[0]
        wait_until_in_inbox(plan, 120)
        time.sleep(max(0.5, 2 * args.poll_interval))
        poller.join()
        base_after = baseline(running, args.rate, args.baseline)
        state = read_store()
    finally:
        spawned = list(running.stack.services)
        running.stack.stop()
        reap_orphans(spawned)

    from gateway import runtime

    by_priority: dict[str, list[float]] = {}
    stored: list[float] = []
    delivered: list[float] = []
    new: list[float] = []
    joined: list[float] = []
    polled: list[float] = []
    missing = 0
    for p in plan:
        report = state.reports.get(p.client_id)
        for station in p.expected:
            found = state.appearances.get((p.client_id, station)) if report else None
            if not found or report is None:
                missing += 1
                continue
            first = min(found, key=lambda a: a.at or dt.datetime.max)
            if first.at is None:
                continue
            delay = (first.at - report["created_at"]).total_seconds()
            stored.append(delay)
            by_priority.setdefault(runtime.rules().rule_for(p.category).priority, []).append(delay)
            (joined if first.joined else new).append(delay)
            if first.delivered_at is not None:
                delivered.append((max(first.delivered_at, first.at)
                                  - report["created_at"]).total_seconds())
            seen = poller.seen.get((report["code"], station))
            if seen is not None and report["code"] in answered:
                polled.append(seen - answered[report["code"]])
    posts = [s.answered - s.started for s in sent if s.status in (200, 201)]
    created = sum(s.status == 201 for s in sent)
    lag = max((s.started - s.due for s in sent), default=0.0)
    base_server = base_before[0] + base_after[0]
    base_client = base_before[1] + base_after[1]
    route_s = route_job_seconds(stack_dir / "logs")
    mean_route = sum(route_s) / len(route_s) if route_s else 0.0
    p99 = percentile(stored, 99)
    p99_base = percentile(base_server, 99)

    print(f"{count} reports at {args.rate:g}/s for {args.duration:g} s (201: {created}, "
          f"sender lag max {lag:.3f} s); {args.workers} RQ workers, gunicorn "
          f"{args.web_workers}x4, SecantusDB {'in memory' if args.memory else 'on disk'}, "
          f"Redis AOF everysec")
    print(f"(report, station) pairs: {len(stored)} ({len(new)} new dispatches, {len(joined)} "
          f"joined a linked case's dispatch), missing {missing}")
    print(f"baseline: bare RQ job enqueue → end       {figures(base_server)}")
    print(f"          (before {figures(base_before[0])})")
    print(f"          (after  {figures(base_after[0])})")
    print(f"baseline: bare RQ job enqueue → result    {figures(base_client)}")
    print(f"POST /api/v1/reports                      {figures(posts)}")
    print(f"route job run time (worker logs)          {figures(route_s)}")
    if mean_route:
        print(f"    capacity ≈ {args.workers} workers / {mean_route * 1000:.0f} ms mean = "
              f"{args.workers / mean_route:.1f} reports/s (offered {args.rate:g}/s)")
    print(f"stored → in inbox (DB timestamps)         {figures(stored)}")
    print(f"    new dispatch                          {figures(new)}")
    print(f"    joined a linked case                  {figures(joined)}")
    for priority in ("critical", "urgent", "routine"):
        if priority in by_priority:
            print(f"    {priority:8s} queue                        "
                  f"{figures(by_priority[priority])}")
    print(f"stored → delivered (DB timestamps)        {figures(delivered)}")
    if args.poll_interval > 0:
        print(f"201 → listed by GET inbox (client)        {figures(polled)}   "
              f"[{len(polled)} pairs seen; polls every {args.poll_interval:g} s per station, "
              f"{poller.requests} GETs, {poller.errors} errors]")
    if p99 is not None:
        verdict = "met" if p99 <= TARGET_S else "NOT met"
        print(f"ratio p99 / target ({TARGET_S:g} s):              {p99 / TARGET_S:6.2f}   "
              f"({verdict})")
        if p99_base:
            print(f"ratio p99 / bare-RQ-job p99:               {p99 / p99_base:6.1f}")
    print(f"machine load average (1 min) at the start / end of the load: {load_before:.1f} / "
          f"{load_after:.1f} on {os.cpu_count()} CPUs (this machine is shared: other test "
          f"runs inflate every figure; compare ratios)")
    print(f"logs: {stack_dir / 'logs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
