"""The bureau's figures over a year of synthetic reports: each figure for one county and
for the whole data set, next to a raw count and a raw $group over the same reports in the
same run, on SecantusDB (or MONGODB_URI's server).

Loads 2,000 grid cells in 20 counties (5 townships of 20 cells; 5 stations and a
desk each), 5,000 mandated units with two reporters each, `--reports` reports
over 12 months (skewed towards hot cells, 2 % placed by no cell) and one dispatch
a report, with insert_many in batches before the indexes are built, and prints
the load rate; then recounts the report tallies from the reports (what the route
job keeps as it routes) and times it. Then times each figure (best of `--repeat`)
and the baselines, and prints the ratio figure / baseline, the memory of this
process and of the database server, and what the figures' two report indexes cost
a single report insert (the route path's write; the tally is one more round trip,
tests/gateway/insight/test_tallies.py).

    python bench/insight.py [--reports 1000000] [--repeat 3] [--cache 4G]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bson import ObjectId

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.processes import Stack  # noqa: E402

COUNTIES = 20
TOWNSHIPS = 5
CELLS_PER_TOWNSHIP = 20
UNITS = 5000
BATCH = 10_000
YEAR_START = dt.datetime(2025, 1, 1) - dt.timedelta(hours=8)  # 1 January, Beijing
CATEGORIES = ("CHILD", "WOMAN", "ORIGIN", "LABOUR", "ADOPT", "BIRTH", "ABUSE", "ONLINE",
              "OTHER", "UNCLASSIFIED")
SLA_S = {"critical": 300, "urgent": 1800, "routine": 86400}


def county_code(c: int) -> str:
    return f"{530100 + c:06d}"


def build_grid() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stations and grid cells as raw documents: 100 cells a county, each 0.5 × 1 km."""
    stations, cells = [], []
    for c in range(COUNTIES):
        county = county_code(c)
        stations.append({"code": f"{county}-XJ", "name": "刑侦大队值班室", "county_code": county,
                         "kind": "county_desk", "active": True})
        for t in range(TOWNSHIPS):
            township = f"{county}{t + 1:03d}"
            station = f"{county}-S{t}"
            stations.append({"code": station, "name": f"第{t + 1}派出所", "county_code": county,
                             "kind": "station", "active": True})
            for g in range(CELLS_PER_TOWNSHIP):
                lon = 100 + c * 0.2 + t * 0.03 + (g % 5) * 0.005
                lat = 25 + (g // 5) * 0.009
                ring = [[lon, lat], [lon + 0.005, lat], [lon + 0.005, lat + 0.009],
                        [lon, lat + 0.009], [lon, lat]]
                cells.append({"code": f"{township}{g // 5 + 1:03d}{g % 5 + 1:03d}",
                              "name": f"网格{g + 1}", "ring": ring, "neighbours": [],
                              "village_code": f"{township}{g // 5 + 1:03d}",
                              "township_code": f"{township}000", "county_code": county,
                              "station_code": station})
    return stations, cells


def main() -> int:  # noqa: PLR0915 (one script, read top to bottom)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timings per figure (best)")
    parser.add_argument("--cache", default="4G", help="SecantusDB's WiredTiger cache")
    args = parser.parse_args()
    rnd = random.Random(2026)

    scratch = Path(tempfile.mkdtemp(prefix="safegrid-bench-"))
    stack = Stack(scratch)
    try:
        redis = stack.redis()
        external = os.environ.get("MONGODB_URI")
        # On disk with a 4 GB cache: building an index over a million documents overflows
        # the default 1 GB cache (WT_CACHE_FULL) in the `:memory:` mode the tests use.
        mongo = None if external else stack.secantus(storage=str(scratch / "db"),
                                                     cache_size=args.cache)
        uri = external or f"mongodb://127.0.0.1:{mongo.port if mongo else 0}"
        from gateway import gridcache, startup
        from gateway.insight import counts, duty, response
        from gateway.insight.scope import Scope
        from gateway.privacy.crypto import Keyring
        from gateway.records.people import Reporter
        from gateway.records.reports import Report
        from gateway.records.tallies import Tally
        from gateway.records.units import Unit
        from gateway.settings import Settings
        from grid.documents import GridCell, Station
        from grid.figures import Period

        startup.configure(Settings(mongodb_uri=uri.rstrip("/") + "/bench_insight",
                                   redis_url=f"redis://127.0.0.1:{redis.port}/0",
                                   data_keys=f"bench:{Keyring.generate_key()}"))
        stations, cells = build_grid()
        Station._get_db()["stations"].insert_many(stations)
        GridCell._get_db()["grid_cells"].insert_many(cells)
        gridcache.bump_version()
        station_of = {c["code"]: c["station_code"] for c in cells}
        county_of = {c["code"]: c["county_code"] for c in cells}
        kinds = ("school", "hospital", "clinic", "village_committee", "hotel", "transport")
        units, reporters = [], []
        for u in range(UNITS):
            cell = cells[rnd.randrange(len(cells))]
            code = f"{cell['county_code']}-U{u:05d}"
            units.append({"code": code, "name": f"单位{u}", "type": rnd.choice(kinds),
                          "county_code": cell["county_code"], "cell_code": cell["code"],
                          "active": True})
            for k in range(2):
                reporters.append({"_id": ObjectId(), "phone_index": f"bench:{u}:{k}",
                                  "role": rnd.choice(("teacher", "medical", "grid_worker")),
                                  "county_code": cell["county_code"], "unit": code,
                                  "home_cell": cell["code"], "active": True})
        Unit._get_db()["units"].insert_many(units)
        Reporter._get_db()["reporters"].insert_many(reporters)
        # Hot cells: a few get far more reports (重点地区), many get one or two a month.
        codes = [c["code"] for c in cells]
        weights = [rnd.choice((1, 1, 1, 2, 3, 5, 20)) for _ in codes]
        # Most reports come from a third of the reporters; the rest stay silent.
        active_reporters = [r["_id"] for r in reporters[: len(reporters) // 3]]
        year_s = 365 * 86400

        print(f"loading {args.reports:,} reports and as many dispatches "
              f"(insert_many, {BATCH:,} a batch)", flush=True)
        # The raw collections: mongoengine's _get_collection() would build the indexes first.
        db = Report._get_db()
        reports_col, dispatch_col = db["reports"], db["dispatches"]
        loaded, load_s, dispatch_s = 0, 0.0, 0.0
        while loaded < args.reports:
            n = min(BATCH, args.reports - loaded)
            picked = rnd.choices(codes, weights, k=n)
            batch, dispatches = [], []
            for i, cell in enumerate(picked):
                at = YEAR_START + dt.timedelta(seconds=rnd.randrange(year_s))
                placed = rnd.random() > 0.02
                station = station_of[cell] if placed else f"{county_of[cell]}-XJ"
                category = rnd.choice(CATEGORIES)
                rid = ObjectId()
                batch.append({"_id": rid, "code": f"{loaded + i:07d}",
                              "reporter_id": rnd.choice(active_reporters),
                              "client_id": f"b{loaded + i}", "category": category,
                              "cell_code": cell if placed else None, "station_code": station,
                              "status": "routed", "source": "app", "created_at": at,
                              "routed_at": at + dt.timedelta(seconds=1)})
                priority = rnd.choice(("critical", "urgent", "routine"))
                created = at + dt.timedelta(seconds=2)
                d: dict[str, Any] = {
                    "report_id": rid, "report_code": f"{loaded + i:07d}",
                    "station_code": station, "priority": priority, "category": category,
                    "cell_code": cell if placed else None, "reported_at": at,
                    "created_at": created,
                    "ack_deadline": created + dt.timedelta(seconds=SLA_S[priority]),
                    "escalation_level": rnd.choice((0, 0, 0, 0, 1, 2)),
                    "status": "closed"}
                if rnd.random() < 0.9:
                    d["acknowledged_at"] = created + dt.timedelta(
                        seconds=rnd.lognormvariate(6, 1.2))
                else:
                    d["status"] = "delivered"
                if rnd.random() < 0.03:
                    d["transferred_from"] = f"{county_of[cell]}-S0"
                dispatches.append(d)
            t0 = time.perf_counter()
            reports_col.insert_many(batch, ordered=False)
            t1 = time.perf_counter()
            dispatch_col.insert_many(dispatches, ordered=False)
            load_s += t1 - t0
            dispatch_s += time.perf_counter() - t1
            loaded += n
            if loaded % 100_000 == 0 or loaded == args.reports:
                print(f"  {loaded:,} reports: {loaded / load_s:,.0f} reports/s, "
                      f"{loaded / dispatch_s:,.0f} dispatches/s", flush=True)

        t0 = time.perf_counter()
        startup.ensure_indexes()  # after loading: one build per index, not one per insert
        print(f"indexes built in {time.perf_counter() - t0:.0f} s", flush=True)
        from gateway.insight.tallies import place_days, recount
        t0 = time.perf_counter()
        for half in (Period(dt.date(2025, 1, 1), dt.date(2025, 7, 1)),
                     Period(dt.date(2025, 7, 1), dt.date(2026, 1, 1))):
            recount(half)
        tally_count = Tally.objects.count()
        print(f"tallies recounted from the reports in {time.perf_counter() - t0:.0f} s: "
              f"{tally_count:,} documents for {args.reports:,} reports", flush=True)

        county = county_code(3)
        county_stations = [s["code"] for s in stations if s["county_code"] == county]
        year = Period(dt.date(2025, 1, 1), dt.date(2026, 1, 1))
        month = Period(dt.date(2025, 6, 1), dt.date(2025, 7, 1))

        def best(fn: Callable[[], Any]) -> float:
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            return min(times)

        def match(period: Period, where: str | None) -> dict[str, Any]:
            m: dict[str, Any] = {"created_at": {"$gte": period.utc_start,
                                                "$lt": period.utc_end}}
            if where:
                m["station_code"] = {"$in": county_stations}
            return m

        print(f"\n{'figure':44s} {'scope':22s} {'s':>8s} {'raw count s':>11s} "
              f"{'raw $group s':>12s} {'/ $group':>8s}")
        for where, period, label in ((county, month, "one county, a month"),
                                     (county, year, "one county, 12 months"),
                                     (None, year, "everything, 12 months")):
            scope = Scope(where, period)
            query = match(period, where)
            raw_count = best(functools.partial(reports_col.count_documents, query))
            grouping = [{"$match": query}, {"$group": {"_id": "$cell_code", "n": {"$sum": 1}}}]
            raw_group = best(lambda: list(reports_col.aggregate(grouping)))  # noqa: B023
            figures: list[tuple[str, Callable[[], Any]]] = [
                ("counts by cell × category × month",
                 functools.partial(counts.counts, scope, "cell", "month", None)),
                ("counts by township × category × week",
                 functools.partial(counts.counts, scope, "township", "week", None)),
                ("hotspots, cells", functools.partial(counts.hotspots, scope, None, None)),
                ("hotspots, H3 resolution 7", functools.partial(counts.hotspots, scope, None, 7)),
                ("response times", functools.partial(response.response_times, scope)),
                ("duty compliance", functools.partial(duty.duty, scope)),
            ]
            # The figures must count what the raw count counts (a check, not a timing).
            figure_total = sum(n for _, _, _, _, n in place_days(period, where))
            print(f"{'(check) reports in the tallies: ' + format(figure_total, ','):44s} "
                  f"{label:22s} raw count {reports_col.count_documents(match(period, where)):,}")
            for name, fn in figures:
                took = best(fn)
                print(f"{name:44s} {label:22s} {took:8.2f} {raw_count:11.2f} {raw_group:12.2f} "
                      f"{took / raw_group:8.1f}", flush=True)

        # The route path's write: a report inserted alone, with and without the figures'
        # two indexes (station_code+created_at, created_at), interleaved.
        plain = reports_col.database["bench_plain_reports"]
        for index in reports_col.index_information().values():
            keys = index["key"]
            if keys not in ([("station_code", 1), ("created_at", 1)], [("created_at", 1)],
                            [("_id", 1)]):
                plain.create_index(keys, unique=index.get("unique", False),
                                   sparse=index.get("sparse", False))
        with_idx: list[float] = []
        without_idx: list[float] = []
        for i in range(1000):
            doc = {"code": f"X{i:06d}", "reporter_id": ObjectId(), "client_id": f"x{i}",
                   "category": "OTHER", "cell_code": codes[i % len(codes)],
                   "station_code": station_of[codes[i % len(codes)]], "status": "received",
                   "source": "app", "created_at": YEAR_START + dt.timedelta(seconds=i)}
            for col, out in ((reports_col, with_idx), (plain, without_idx)):
                t0 = time.perf_counter()
                col.insert_one(dict(doc))
                out.append(time.perf_counter() - t0)
        with_idx.sort()
        without_idx.sort()
        print(f"\nsingle report insert, median: {with_idx[500] * 1000:.2f} ms with the figures' "
              f"indexes, {without_idx[500] * 1000:.2f} ms without "
              f"(ratio {with_idx[500] / without_idx[500]:.2f}); round trips per report: 1 "
              "either way here; the route job's tally adds one bulk write")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        server = "n/a"
        if mongo is not None:
            status = Path(f"/proc/{mongo.proc.pid}/status").read_text()
            peak = next(line for line in status.splitlines() if line.startswith("VmHWM"))
            server = f"{int(peak.split()[1]) / 1024:,.0f} MB"
        print(f"memory: this process peak {rss:,.0f} MB; database server peak {server}")
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
