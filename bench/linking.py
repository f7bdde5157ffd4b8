"""Linking cost against the size of the clue: a route job for a report joining a clue of
2 reports, and one joining a clue of 2,000, against the same SecantusDB in the same run.

Both clues are built by the route job itself (one report after another, in two
cells far apart), then new reports join each in turn, interleaved, so the
machine's noise falls on both alike. Prints milliseconds per route job, the
ratio large/small (flat cost: about 1.0) and database round trips per job.

    python -m bench.linking [--size 2000] [--joins 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from bson import ObjectId

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.county import count_round_trips, load_sample_county, stores  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2000, help="reports in the large clue")
    parser.add_argument("--joins", type=int, default=60, help="timed joins per clue")
    args = parser.parse_args()

    counter = count_round_trips()
    with stores() as started:
        load_sample_county(started.mongo_uri, started.redis_url, "bench")
        from gateway.delivery.routing import route
        from gateway.records.people import Reporter
        from gateway.records.reports import Report
        from gateway.sample import cell_code
        from grid.documents import utcnow

        reporter = Reporter.objects.first().id
        numbers = iter(range(10_000_000))
        small, large = cell_code(0, 0, 0), cell_code(2, 3, 3)  # other townships

        def report_in(cell: str) -> str:
            # As intake stores it: received, placed by the grid code the reporter gave.
            n = next(numbers)
            doc = {"_id": ObjectId(), "code": f"B{n:06d}", "reporter_id": reporter,
                   "client_id": f"bench-link-{n:08d}", "category": "WOMAN",
                   "location": {"method": "grid_code", "grid_code": cell},
                   "status": "received", "source": "app", "trust": "mandated", "flags": [],
                   "created_at": utcnow()}
            Report._get_collection().insert_one(doc)
            return str(doc["_id"])

        began = time.monotonic()
        for _ in range(2):
            route(report_in(small))
        for i in range(args.size):
            route(report_in(large))
            if (i + 1) % 500 == 0:
                print(f"  built {i + 1} of {args.size} ({time.monotonic() - began:.0f} s)",
                      flush=True)
        timings: dict[str, list[float]] = {small: [], large: []}
        trips: dict[str, list[int]] = {small: [], large: []}
        for _ in range(args.joins):
            for cell in (small, large):  # interleaved: the same noise on both
                report_id = report_in(cell)
                before, t0 = counter.count, time.perf_counter()
                route(report_id)
                timings[cell].append(time.perf_counter() - t0)
                trips[cell].append(counter.count - before)
        cases = {c: Report._get_collection().distinct("case_id", {"cell_code": c})
                 for c in (small, large)}

    ms = {c: statistics.median(t) * 1000 for c, t in timings.items()}
    print(f"route job, report joining a clue of 2 (+{args.joins}):     "
          f"{ms[small]:7.2f} ms median (baseline), {statistics.mean(trips[small]):.1f} "
          f"round trips, {len(cases[small])} case(s)")
    print(f"route job, report joining a clue of {args.size} (+{args.joins}): "
          f"{ms[large]:7.2f} ms median, {statistics.mean(trips[large]):.1f} round trips, "
          f"{len(cases[large])} case(s)")
    print(f"ratio large/small: {ms[large] / ms[small]:.2f}  (flat: ~1.0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
