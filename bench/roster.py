"""Roster import: a generated 100,000-reporter XLSX into a county of 2,000 grid cells, next to
raw `insert_many` of the same documents against the same SecantusDB in the same run.

The import runs in a child process of its own (`--child`), so its peak RSS is the
import's: reading the workbook, checking every row, sealing names and phones,
writing in chunks. Database round trips are counted there with a pymongo command
listener. The baseline is `insert_many` in chunks of 1,000 into a collection with
the reporters' indexes: before the import, of reporter documents shaped as the
sample county's; after it, of the very documents the import wrote (new ids).
The ratio uses the mean of the two. A second import of the same file (every row
`unchanged`) is timed too.

Targets (issue 12): import ≥ 0.3 × the raw rate, ≤ 5 round trips per 1,000 rows,
peak RSS ≤ 400 MB.

`--retry-writes false` turns retryable writes off for both sides alike (the
product keeps them on; SecantusDB records every retryable write statement, see
tests/county_template.py): the same figures within this machine's noise.

    python -m bench.roster [--rows 100000] [--cells 2000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pymongo import MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.county import count_round_trips, load_sample_county, stores  # noqa: E402

COUNTY = "530627"
ROLES = ("grid_worker", "teacher", "medical", "other")
LANGS = ("zh", "zh", "zh", "en")


def cell_codes(n: int) -> list[str]:
    return [f"{COUNTY}9{i:08d}" for i in range(n)]


def add_cells(db, n: int) -> None:
    """`n` more cells in the county (as `safegrid grid import` stores them)."""
    ring = [[104.8, 27.4], [104.81, 27.4], [104.81, 27.41], [104.8, 27.41], [104.8, 27.4]]
    db.grid_cells.insert_many([
        {"code": code, "name": f"第{i}网格", "ring": ring, "neighbours": [],
         "village_code": code[:12], "township_code": code[:9], "county_code": COUNTY,
         "station_code": f"{COUNTY}-WF"} for i, code in enumerate(cell_codes(n))])


def workbook(rows: int, cells: list[str]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("人员")
    sheet.append(["姓名", "手机号", "角色", "网格编码", "语言"])
    for i in range(rows):
        role = ROLES[i % len(ROLES)]
        sheet.append([f"报告人{i:06d}", 13700000000 + i,  # numbers stored as numbers
                      role, cells[i % len(cells)], LANGS[i % len(LANGS)]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def child(path: str) -> None:
    """Import the file once, twice; print seconds, round trips and peak RSS as JSON."""
    counter = count_round_trips()
    from gateway.enrolment.checks import Reach
    from gateway.enrolment.imports import import_roster
    from gateway.settings import from_env
    from gateway.startup import configure

    configure(from_env())
    data = Path(path).read_bytes()
    figures: dict[str, object] = {}
    for run in ("first", "again"):
        before, t0 = counter.count, time.perf_counter()
        summary = import_roster(Reach.operator("bench"), data, county=COUNTY).summary
        figures[run] = {"seconds": time.perf_counter() - t0, "trips": counter.count - before,
                        "summary": summary}
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def baseline(uri: str, docs: list[dict]) -> float:
    """Raw insert_many of `docs` in chunks of 1,000 into a scratch collection with the
    reporters' indexes (the same work for the store as the import's inserts): docs/s."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    db = client.get_default_database()
    scratch = db["bench_raw_reporters"]
    scratch.drop()
    for name, index in db.reporters.index_information().items():
        if name != "_id_":
            scratch.create_index(index["key"], unique=index.get("unique", False),
                                 sparse=index.get("sparse", False))
    t0 = time.perf_counter()
    for start in range(0, len(docs), 1000):
        scratch.insert_many([{k: v for k, v in d.items() if k != "_id"}
                             for d in docs[start:start + 1000]], ordered=False)
    rate = len(docs) / (time.perf_counter() - t0)
    scratch.drop()
    client.close()
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--retry-writes", choices=("true", "false"), default="true",
                        help="retryable writes for the import and the baseline alike")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0

    with stores(uri_options=f"?retryWrites={args.retry_writes}") as started:
        root, uri, redis_url = started.stack.log_dir, started.mongo_uri, started.redis_url
        _, data_keys = load_sample_county(uri, redis_url, "bench")
        client: MongoClient[dict[str, Any]] = MongoClient(uri)
        db = client.get_default_database()
        add_cells(db, args.cells)
        t0 = time.perf_counter()
        data = workbook(args.rows, cell_codes(args.cells))
        print(f"workbook: {args.rows:,} rows, {len(data) / 1e6:.1f} MB "
              f"({time.perf_counter() - t0:.0f} s to write)", flush=True)
        path = root / "roster.xlsx"
        path.write_bytes(data)
        # The documents the import will write, for the baseline: built as it builds them.
        sample_docs = list(db.reporters.find({}, {"_id": 0}).limit(1))
        before_docs = [dict(sample_docs[0], phone_index=f"{i:064x}") for i in range(args.rows)]
        raw_before = baseline(uri, before_docs)
        env = {**os.environ, "MONGODB_URI": uri, "REDIS_URL": redis_url,
               "SAFEGRID_DATA_KEYS": data_keys}
        done = subprocess.run([sys.executable, __file__, "--child", str(path)], env=env,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        written = list(db.reporters.find({"county_code": COUNTY, "name": {"$exists": True}},
                                         {"_id": 0}))
        raw_after = baseline(uri, written[:args.rows])
        client.close()

    raw = (raw_before + raw_after) / 2
    first, again = figures["first"], figures["again"]
    rate = args.rows / first["seconds"]
    print(f"\nroster import, {args.rows:,} reporters, {args.cells:,} cells (SecantusDB)")
    print(f"raw insert_many, chunks of 1,000:  {raw_before:,.0f} /s before, "
          f"{raw_after:,.0f} /s after the import")
    print(f"import (XLSX → reporters):          {rate:,.0f} rows/s "
          f"({first['seconds']:.1f} s) {first['summary']}")
    print(f"ratio import / raw:                 {rate / raw:.2f}   (target ≥ 0.3)")
    print(f"round trips per 1,000 rows:         {first['trips'] * 1000 / args.rows:.2f}   "
          f"(target ≤ 5)")
    print(f"re-import, all unchanged:           {args.rows / again['seconds']:,.0f} rows/s, "
          f"{again['trips'] * 1000 / args.rows:.2f} round trips per 1,000 rows")
    print(f"peak RSS of the importing process:  {figures['peak_rss_mb']:.0f} MB   "
          f"(target ≤ 400)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
