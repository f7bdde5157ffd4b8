"""Alert fan-out benchmark: issue → every SMS accepted by real Kannel (with fakesmsc).

10,000 grid workers in 400 cells inside the first ring (1 km) and 40,000 in 1,600
cells outside it (within the second ring, 10 km). From issuing until Kannel has
accepted every message of the first ring (every send record `sent`, each one a
`sendsms` answered 202), it reports: seconds, RQ jobs used, database round trips per
1,000 recipients (counted by a pymongo listener in each worker), duplicates and
missed recipients (at the carrier: the messages fakesmsc got). Then the second ring is
opened (as its scheduled job would be, at once) and must add exactly the 40,000 new
recipients, nobody twice.

Workers: `--workers` RQ worker processes on the `alerts` queue; the carrier's rate
is set out of the way (`SAFEGRID_SMS_RATE_PER_S`) to measure SafeGrid and Kannel.

    PYTHONPATH=. python bench/alert.py [--inside 10000 --outside 40000 --workers 4]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.county import count_round_trips, insert_grid_workers, stores  # noqa: E402
from deploy.processes import app_env  # noqa: E402

COUNTY = "530627"
DESK = "530627-XJ"
LAT, LON = 27.44, 104.87
M_PER_DEG = 111_195.0
TRIPS_KEY = "safegrid:bench:alert:trips"
SECRET = "bench-secret"  # noqa: S105 - a throwaway webhook secret for this run


def square(lat: float, lon: float, side_m: float) -> list[list[float]]:
    dlat = side_m / M_PER_DEG / 2
    dlon = dlat / math.cos(math.radians(lat))
    return [[lon - dlon, lat - dlat], [lon + dlon, lat - dlat], [lon + dlon, lat + dlat],
            [lon - dlon, lat + dlat], [lon - dlon, lat - dlat]]


def cells(count: int, side_m: float, ring_from_m: float) -> list[tuple[str, list[list[float]]]]:
    """`count` square cells of `side_m` in a square grid around the point, skipping any
    that come within `ring_from_m` of it (0: none skipped)."""
    out: list[tuple[str, list[list[float]]]] = []
    per_row = math.ceil(math.sqrt(count)) + (2 * math.ceil(ring_from_m / side_m) + 2
                                              if ring_from_m else 0)
    half = per_row * side_m / 2
    for i in range(per_row):
        for j in range(per_row):
            if len(out) == count:
                return out
            x = -half + (i + 0.5) * side_m
            y = -half + (j + 0.5) * side_m
            near = math.hypot(max(abs(x) - side_m / 2, 0), max(abs(y) - side_m / 2, 0))
            if ring_from_m and near <= ring_from_m * 1.05:
                continue
            lat = LAT + y / M_PER_DEG
            lon = LON + x / (M_PER_DEG * math.cos(math.radians(LAT)))
            out.append((f"5306270{'1' if ring_from_m else '0'}{len(out):07d}",
                        square(lat, lon, side_m)))
    return out


def inside_phones(count: int) -> set[str]:
    return {f"+861391{i:07d}" for i in range(count)}


def outside_phones(count: int) -> set[str]:
    return {f"+861392{i:07d}" for i in range(count)}


def populate(inside: int, outside: int) -> None:
    """The grid (400 cells within 1 km, 1,600 between 1 and 10 km), the desk, the people."""
    from grid.documents import GridCell, Station

    Station(code=DESK, name="刑侦大队值班室", county_code=COUNTY, kind="county_desk").save()
    near = cells(400, 70.0, 0)  # a 1.4 km square of 70 m cells: all within 1 km
    far = cells(1600, 150.0, 1000.0)  # around it, out to about 4 km
    GridCell._get_collection().insert_many([
        {"code": code, "name": f"网格{code[-5:]}", "ring": ring, "village_code": code[:12],
         "township_code": code[:9] + "000", "county_code": COUNTY, "station_code": DESK}
        for code, ring in near + far])
    for phones, where in ((inside_phones(inside), near), (outside_phones(outside), far)):
        insert_grid_workers(sorted(phones), [code for code, _ in where], COUNTY)


def worker() -> None:
    """An RQ worker on `alerts` that adds its database round trips to a Redis counter."""
    from rq import Queue, SimpleWorker
    from rq.executions import Execution
    from rq.job import Job

    from gateway.delivery import queues
    from gateway.extensions import redis_store
    from gateway.settings import from_env
    from gateway.startup import configure

    counter = count_round_trips()
    configure(from_env())

    class CountingWorker(SimpleWorker):
        def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
            before = counter.count
            try:
                return bool(super().perform_job(job, queue, execution))
            finally:
                redis_store.conn.incrby(TRIPS_KEY, counter.count - before)

    CountingWorker([queues.queue(queues.ALERTS)], connection=redis_store.conn).work()


def kannel_baseline(url: str, username: str, password: str, n: int, threads: int) -> float:
    """Kannel's own acceptance rate: `n` messages straight from `threads` threads (as many
    requests as the workers keep in flight), no SafeGrid in between, through the same
    client and the same requests the batch jobs make (one prepared text, `PER_REQUEST`
    receivers a request: Kannel's multi-cast). Messages/s."""
    from concurrent.futures import ThreadPoolExecutor

    from gateway.alerts.fanout import PER_REQUEST
    from sms.providers.kannel import KannelProvider

    text = KannelProvider(url, username, password, "10690110").prepare("【寻人000000】基准")

    def send(start: int) -> None:
        text.send_many([f"+86137{i:08d}" for i in range(start, min(start + PER_REQUEST, n))])

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(send, range(0, n, PER_REQUEST)))
    return n / (time.perf_counter() - t0)


def wait_sent(code: str, want: int, timeout: float) -> float:
    """When `want` records of the alert are `sent`. Watched on the batch jobs' Redis counter
    of texted recipients (`alert_recipients`, counted right after each batch's `sent`
    update), then checked once in the store: a count of the send records every 50 ms
    cost SecantusDB 230-300 ms of CPU each at 10,000 records, which slowed what it timed."""
    from gateway import telemetry
    from gateway.alerts.fanout import states
    from gateway.extensions import redis_store

    field = telemetry.series("alert_recipients", {})
    t0 = time.perf_counter()
    while True:
        if int(redis_store.conn.hget(telemetry.COUNTERS, field) or 0) >= want:
            done = time.perf_counter()
            if states(code)["sent"] >= want:
                return done
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"only {states(code)['sent']} of {want} sent after "
                               f"{timeout:.0f} s")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inside", type=int, default=10_000)
    parser.add_argument("--outside", type=int, default=40_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return 0

    from gateway.privacy.crypto import Keyring

    with stores(prefix="safegrid-bench-alert-") as started:
        stack, uri, redis_url = started.stack, started.mongo_uri, started.redis_url
        kannel = stack.kannel("http://127.0.0.1:9/sms/inbound/kannel", SECRET)
        carrier = stack.fakesmsc(kannel)
        env = app_env(uri, redis_url,
                      f"bench:{Keyring.generate_key()}", SAFEGRID_SMS_ENABLED="1",
                      SAFEGRID_SMS_WEBHOOK_SECRET=SECRET,
                      SAFEGRID_KANNEL_SENDSMS_URL=kannel.sendsms_url,
                      SAFEGRID_KANNEL_USERNAME=kannel.username,
                      SAFEGRID_KANNEL_PASSWORD=kannel.password,
                      SAFEGRID_SMS_RATE_PER_S="1000000")
        os.environ.update(env)
        from gateway.settings import from_env
        from gateway.startup import configure

        configure(from_env())
        populate(args.inside, args.outside)
        for n in range(args.workers):
            stack._spawn(f"alert-worker-{n + 1}",
                         [sys.executable, str(Path(__file__).resolve()), "--worker"],
                         env={**os.environ, **env,
                              "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
        time.sleep(3)  # the workers connect

        from gateway.access.tokens import Principal
        from gateway.alerts import issuing
        from gateway.alerts.fanout import SEND_THREADS, AlertSend, open_ring, states
        from gateway.delivery import queues
        from gateway.extensions import redis_store

        boss = Principal(role="supervisor", subject_id=None, station_code=None,
                         county_code=COUNTY, label="bench")
        import datetime as dt
        t0 = time.perf_counter()
        alert = issuing.issue(boss, {
            "child": {"sex": "male", "age_years": 5, "clothing": "红上衣"},
            "seen_at": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10),
            "location": {"lat": LAT, "lon": LON, "datum": "wgs84"}, "place": "城关车站",
            "rings": [{"radius_km": 1, "after_min": 0}, {"radius_km": 10, "after_min": 30}]})
        t1 = wait_sent(alert.code, args.inside, args.timeout)
        first_trips = int(redis_store.conn.get(TRIPS_KEY) or 0)
        first_batches = len(AlertSend.objects(alert_code=alert.code, ring=0).distinct("batch"))
        t2 = time.perf_counter()
        queues.queue(queues.ALERTS).enqueue(open_ring, alert.code, 1)
        t3 = wait_sent(alert.code, args.inside + args.outside, args.timeout)
        time.sleep(1)  # anything more would show up as extra records
        total = states(alert.code)["sent"]
        from gateway.alerts import coverage
        t4 = time.perf_counter()
        mapped = coverage.coverage(boss, alert.code)  # the issuing officer's map, polled
        map_ms = (time.perf_counter() - t4) * 1000
        # Duplicates and missed counted where they matter: the messages the carrier got.
        wanted = inside_phones(args.inside) | outside_phones(args.outside)
        got = Counter(receiver.lstrip("+") for _, receiver, _, text in
                      carrier.read_mt(timeout=120, count=len(wanted)) if alert.code in text)
        per_person = [phone for phone, n in got.items() if n > 1]
        missed = len({p.lstrip("+") for p in wanted} - got.keys())
        trips = int(redis_store.conn.get(TRIPS_KEY) or 0)
        second_batches = len(AlertSend.objects(alert_code=alert.code, ring=1).distinct("batch"))
        baseline = kannel_baseline(kannel.sendsms_url, kannel.username, kannel.password,
                                   min(args.inside, 5000), args.workers * SEND_THREADS)
        first_rate = args.inside / (t1 - t0)
        figures = {
            "first_ring": {"recipients": args.inside, "seconds": round(t1 - t0, 2),
                           "rq_jobs": 1 + first_batches,
                           "db_round_trips_per_1000": round(first_trips / args.inside * 1000,
                                                            1)},
            "second_ring": {"new_recipients": total - args.inside,
                            "seconds": round(t3 - t2, 2), "rq_jobs": 1 + second_batches,
                            "db_round_trips_per_1000": round(
                                (trips - first_trips) / max(1, total - args.inside) * 1000, 1)},
            "kannel_alone_per_s": round(baseline, 1),
            "first_ring_per_s": round(first_rate, 1),
            "ratio_first_ring_to_kannel_alone": round(first_rate / baseline, 2),
            "duplicates": len(per_person),
            "missed": missed,
            "texted_by_the_carrier": sum(got.values()),
            "coverage_map_ms": round(map_ms, 1),
            "coverage_map_texted": mapped["properties"]["texted"],
            "workers": args.workers,
        }
        print(json.dumps(figures, indent=2))
        return 0 if not per_person and not missed and total == len(wanted) else 1


if __name__ == "__main__":
    sys.exit(main())
