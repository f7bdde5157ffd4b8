"""App intake benchmark: POST /api/v1/reports on gunicorn vs raw pymongo inserts.

In one run, against the same SecantusDB: raw pymongo single-document inserts
per second (the baseline), then POST /reports per second through gunicorn,
both with the same number of concurrent clients; prints the ratio. Then counts
database round trips per report in-process with a pymongo command listener.
Targets (ARCHITECTURE.md): ≤ 2 round trips per report, ratio ≥ 0.5.

Three more figures say where the rest goes, measured in the same rounds. The
store's own limit: raw pymongo inserts of the very document a report is stored
as (sealed details, a fresh code) into a collection with the reports
collection's indexes (two unique) — what intake would reach if the app cost
nothing. The web tier's floor: the same requests to the same gunicorn settings
serving bench/floor_wsgi.py, which does nothing. And CPU per report of each
process during the intake rounds (client, web workers, store, Redis), read
from /proc, since on two cores every process's CPU is everyone's time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.collection import Collection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.county import count_round_trips, load_sample_county, stores  # noqa: E402
from deploy.processes import app_env  # noqa: E402

DETAILS = "村东头新来的外地人带着一个哭闹的小男孩，孩子说不认识他，穿红色外套，上了一辆白色面包车。"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The child processes of `pid` (gunicorn's workers)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def timed(n: int, clients: int, one: Callable[[int], object]) -> float:
    """Calls per second of `one(i)` for i in range(n) over `clients` threads."""
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(n)))
    return n / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=600, help="operations per measurement")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker-class", default="gevent", choices=("gevent", "gthread"),
                        help="gunicorn's worker class (SafeGrid runs gevent)")
    args = parser.parse_args()

    counter = count_round_trips()
    from gateway import sample
    from gateway.settings import Settings

    with stores() as started:
        stack, mongo, redis = started.stack, started.mongo, started.redis
        mongo_uri, redis_url = started.mongo_uri, started.redis_url
        county, data_keys = load_sample_county(mongo_uri, redis_url, "bench")
        token = next(t for who, t in county.tokens.items() if who.startswith("reporter"))
        web = stack.gunicorn(app_env(mongo_uri, redis_url, data_keys), workers=args.web_workers,
                             threads=4, worker_class=args.worker_class)
        floor = stack.gunicorn({}, workers=args.web_workers, threads=4, app="bench.floor_wsgi:app",
                               worker_class=args.worker_class)

        raw: Collection[dict[str, Any]] = MongoClient(mongo_uri).bench.raw_inserts
        raw.insert_one({"warm": True})
        doc = {"category": "CHILD", "details": DETAILS, "source": "app", "status": "received"}
        # The store's limit: the reports collection's indexes on a scratch collection.
        from gateway.intake.reports import NewReport, report_document

        reports_like = raw.database.reports_like
        for name, info in raw.database.reports.index_information().items():
            if name != "_id_":
                reports_like.create_index(info["key"], name=name, unique=info.get("unique", False))
        a_reporter = raw.database.reporters.find_one({}, {"_id": 1})
        assert a_reporter is not None, "the sample county has reporters"
        reporter_id = str(a_reporter["_id"])

        def report_insert(i: int) -> None:
            reports_like.insert_one(report_document(NewReport(
                reporter_id=reporter_id, client_id=f"ceiling-{uuid.uuid4()}", category="CHILD",
                details=DETAILS, source="app", lat=county.seat[0] + 0.001, lon=county.seat[1])))

        local = threading.local()
        host, port = "127.0.0.1", web.port
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def post(i: int, port: int | None = port) -> None:
            # http.client with keep-alive: the load generator's own CPU stays small
            # next to the server's on this 2-core machine.
            if getattr(local, "port", None) != port:
                local.conn, local.port = http.client.HTTPConnection(host, port, timeout=30), port
            body = json.dumps({
                "client_id": f"bench-{uuid.uuid4()}", "category": "CHILD", "details": DETAILS,
                "location": {"lat": county.seat[0] + 0.001, "lon": county.seat[1]}})
            local.conn.request("POST", "/api/v1/reports", body=body, headers=headers)
            resp = local.conn.getresponse()
            text = resp.read()
            if resp.status != 201:
                raise RuntimeError(f"POST /reports answered {resp.status}: {text!r}")

        for i in range(20):  # warm gunicorn workers: token cache, grid snapshot
            post(i)
        processes = {"client": [os.getpid()], "web workers": children(web.proc.pid),
                     "store": [mongo.proc.pid], "redis": [redis.proc.pid]}
        cpu_used = dict.fromkeys(processes, 0.0)
        # Interleaved rounds: this machine is shared, so each ratio compares
        # measurements taken seconds apart; the best round of each is reported too.
        baselines, ceilings, floors, intakes = [], [], [], []
        for _ in range(args.rounds):
            baselines.append(timed(args.n, args.clients,
                                   lambda i: raw.insert_one({**doc, "client_id": f"raw-{i}"})))
            ceilings.append(timed(args.n, args.clients, report_insert))
            floors.append(timed(args.n, args.clients, lambda i: post(i, floor.port)))
            before_cpu = {k: sum(map(cpu_seconds, pids)) for k, pids in processes.items()}
            intakes.append(timed(args.n, args.clients, post))
            for k, pids in processes.items():
                cpu_used[k] += sum(map(cpu_seconds, pids)) - before_cpu[k]

        # Round trips per report, counted in-process with the same code path.
        from gateway.app import create_app

        client = create_app(Settings(mongodb_uri=mongo_uri, redis_url=redis_url,
                                     token_cache_s=30, data_keys=data_keys)).test_client()
        headers = {"Authorization": f"Bearer {token}"}
        body = {"category": "CHILD", "details": DETAILS, "grid_code": sample.cell_code(0, 0, 0)}
        client.post("/api/v1/reports", json={**body, "client_id": "warm-0000-0000"},
                    headers=headers)
        before, reports = counter.count, 50
        for i in range(reports):
            client.post("/api/v1/reports", json={**body, "client_id": f"count-{i:08d}"},
                        headers=headers)
        trips = (counter.count - before) / reports
        before = counter.count
        for i in range(reports):  # retries of the same client ids
            client.post("/api/v1/reports", json={**body, "client_id": f"count-{i:08d}"},
                        headers=headers)
        retry_trips = (counter.count - before) / reports

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    ratios = sorted(i / b for i, b in zip(intakes, baselines, strict=True))
    ratio = ratios[len(ratios) // 2]
    store_limit = median([c / b for c, b in zip(ceilings, baselines, strict=True)])
    app_share = median([i / c for i, c in zip(intakes, ceilings, strict=True)])
    web_floor = median([f / b for f, b in zip(floors, baselines, strict=True)])
    reports = args.n * args.rounds
    print(f"clients: {args.clients}, operations: {args.n} x {args.rounds} rounds, "
          f"gunicorn workers: {args.web_workers}")
    print(f"raw pymongo insert_one:      {max(baselines):8.1f} /s best  (baseline)")
    print(f"POST /api/v1/reports:        {max(intakes):8.1f} /s best")
    print("ratio per round:             " + "  ".join(f"{r:.2f}" for r in ratios))
    print(f"ratio intake / baseline:     {ratio:8.2f}   median (target >= 0.50: "
          f"{'met' if ratio >= 0.5 else 'NOT met'})")
    print(f"store's limit (raw report insert, reports' indexes) / baseline: {store_limit:.2f} "
          f"median; best {max(ceilings):.1f} /s")
    print(f"intake / store's limit:      {app_share:8.2f}   median")
    print(f"web tier's floor (gunicorn, an app that does nothing) / baseline: {web_floor:.2f} "
          f"median; best {max(floors):.1f} /s")
    print("CPU per report in the intake rounds (us): " + ", ".join(
        f"{k} {v / reports * 1e6:.0f}" for k, v in cpu_used.items()))
    print(f"DB round trips per report:   {trips:8.2f}   (target <= 2: "
          f"{'met' if trips <= 2 else 'NOT met'})")
    print(f"DB round trips per retry:    {retry_trips:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
