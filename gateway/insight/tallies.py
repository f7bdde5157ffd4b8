"""Reading the report tallies (gateway/records/tallies.py) for a period, and recounting them
from the reports themselves.

Reading: the tallies of the months a period touches, days outside it left out,
so a figure has the resolution of a day in Beijing time, as if it had grouped
the reports. Recounting: one aggregation pipeline over the routed reports of
whole months, whose results replace those months' tallies (for a county or for
all); run it after restoring a backup, after loading reports by other means,
or when a route job died between its last write and its count. Routing that
runs meanwhile may be counted twice or not at all for those months: recount
when intake is quiet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from bson import ObjectId

from gateway import gridcache
from gateway.records.reports import Report
from gateway.records.tallies import (
    PLACE,
    REPORTER,
    STATION,
    Tally,
    place_id,
    reporter_tally_id,
    station_tally_id,
)
from grid.documents import Dispatch
from grid.figures import LOCAL_OFFSET, Period, ack_bin

BATCH = 1000


def months_of(period: Period) -> list[int]:
    """year × 100 + month of every Beijing month the period touches."""
    out, day = [], period.start.replace(day=1)
    while day < period.end:
        out.append(day.year * 100 + day.month)
        day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return out


def place_days(period: Period, county: str | None, category: str | None = None,
               ) -> Iterator[tuple[str | None, str | None, str, dt.date, int]]:
    """(cell, county, category, Beijing date, reports) for each day of the period."""
    query: dict[str, Any] = {"kind": PLACE, "month": {"$in": months_of(period)}}
    if county:
        query["county"] = county
    for doc in Tally._get_collection().find(query, {"cell": 1, "county": 1, "month": 1,
                                                   "days": 1}):
        year, month = divmod(doc["month"], 100)
        for day, per_category in (doc.get("days") or {}).items():
            date = dt.date(year, month, int(day))
            if not period.start <= date < period.end:
                continue
            for name, n in per_category.items():
                if n and (category is None or name == category):
                    yield doc.get("cell"), doc.get("county"), name, date, n


def station_counts(period: Period, stations: list[str] | None) -> dict[str, dict[str, int]]:
    """station → its clues of the period: clues, ack, within, esc, tin, b<i> summed."""
    query: dict[str, Any] = {"kind": STATION, "month": {"$in": months_of(period)}}
    if stations is not None:
        query["station"] = {"$in": stations}
    out: dict[str, dict[str, int]] = {}
    for doc in Tally._get_collection().find(query, {"station": 1, "month": 1, "days": 1}):
        year, month = divmod(doc["month"], 100)
        sums = out.setdefault(doc["station"], {})
        for day, counts in (doc.get("days") or {}).items():
            if period.start <= dt.date(year, month, int(day)) < period.end:
                for key, n in counts.items():
                    sums[key] = sums.get(key, 0) + n
    return out


def reporter_counts(period: Period, since: dt.date, reporters: list[ObjectId] | None = None,
                    ) -> dict[ObjectId, tuple[int, int]]:
    """reporter id → (reports in the period, reports from `since` to the period's end), for
    `reporters` (None: everyone)."""
    span = Period(min(period.start, since), period.end)
    months = months_of(span)
    out: dict[ObjectId, list[int]] = {}
    collection = Tally._get_collection()
    if reporters is None:
        docs: Iterator[dict[str, Any]] = collection.find(
            {"kind": REPORTER, "month": {"$in": months}}, {"reporter_id": 1, "month": 1,
                                                          "days": 1})
    else:
        # One indexed equality a reporter: on SecantusDB a `$in` of 500 reporters took
        # 14.7 s over 65,000 tallies, 500 single queries 0.35 s (docs/performance.md).
        docs = (doc for reporter in reporters for doc in collection.find(
            {"reporter_id": reporter, "month": {"$gte": months[0], "$lte": months[-1]}},
            {"reporter_id": 1, "month": 1, "days": 1}))
    for doc in docs:
        year, month = divmod(doc["month"], 100)
        counts = out.setdefault(doc["reporter_id"], [0, 0])
        for day, n in (doc.get("days") or {}).items():
            date = dt.date(year, month, int(day))
            if period.start <= date < period.end:
                counts[0] += n
            if since <= date < period.end:
                counts[1] += n
    return {k: (v[0], v[1]) for k, v in out.items()}


def recount(period: Period, county: str | None = None) -> int:
    """Rebuild the tallies of the whole months `period` touches from the routed reports
    (of `county`'s places, or all; reporters' tallies always all); returns the reports
    counted. Idempotent."""
    months = months_of(period)
    first = dt.datetime(months[0] // 100, months[0] % 100, 1) - dt.timedelta(hours=8)
    last = months[-1]
    end_local = (dt.date(last // 100, last % 100, 28) + dt.timedelta(days=4)).replace(day=1)
    end = dt.datetime.combine(end_local, dt.time()) - dt.timedelta(hours=8)
    local = {"date": "$created_at", "timezone": LOCAL_OFFSET}
    day_key = {"m": {"$add": [{"$multiply": [{"$year": local}, 100]}, {"$month": local}]},
               "d": {"$dayOfMonth": local}}
    match: dict[str, Any] = {"created_at": {"$gte": first, "$lt": end},
                             "routed_at": {"$ne": None}}
    snapshot = gridcache.current()
    if county:
        match["station_code"] = {"$in": [s.code for s in snapshot.stations.values()
                                         if s.county_code == county]}
    places: dict[str, dict[str, Any]] = {}
    for row in Report.objects.aggregate([
        {"$match": match},
        {"$group": {"_id": {**day_key, "c": "$cell_code", "s": "$station_code",
                            "k": "$category"}, "n": {"$sum": 1}}},
    ]):
        key = row["_id"]
        cell, station = key.get("c"), key.get("s") or ""
        info = snapshot.cells.get(cell or "")
        where = info.county_code if info else (
            snapshot.stations[station].county_code if station in snapshot.stations else None)
        doc = places.setdefault(place_id(key["m"], cell, station), {
            "_id": place_id(key["m"], cell, station), "kind": PLACE, "month": key["m"],
            "county": where, "cell": cell, "station": station, "days": {}})
        doc["days"].setdefault(str(key["d"]), {})[key["k"]] = row["n"]
    # A reporter's tally holds their reports wherever they were filed: always every one.
    everyone = {k: v for k, v in match.items() if k != "station_code"}
    reporters: dict[str, dict[str, Any]] = {}
    total = 0
    for row in Report.objects.aggregate([
        {"$match": everyone},
        {"$group": {"_id": {**day_key, "r": "$reporter_id"}, "n": {"$sum": 1}}},
    ]):
        key = row["_id"]
        doc = reporters.setdefault(reporter_tally_id(key["m"], key["r"]), {
            "_id": reporter_tally_id(key["m"], key["r"]), "kind": REPORTER, "month": key["m"],
            "reporter_id": key["r"], "days": {}})
        doc["days"][str(key["d"])] = row["n"]
        total += row["n"]
    collection = Tally._get_collection()
    gone: dict[str, Any] = {"kind": PLACE, "month": {"$in": months}}
    if county:
        gone["county"] = county
    collection.delete_many(gone)
    collection.delete_many({"kind": REPORTER, "month": {"$in": months}})
    stations = _station_docs(first, end, months, county, snapshot)
    collection.delete_many({"kind": STATION, "month": {"$in": months},
                            **({"station": {"$in": list(_county_stations(county, snapshot))}}
                               if county else {})})
    for docs in (list(places.values()), list(reporters.values()), stations):
        for i in range(0, len(docs), BATCH):
            collection.insert_many(docs[i:i + BATCH], ordered=False)
    return total


def _county_stations(county: str | None, snapshot: Any) -> set[str]:
    return {s.code for s in snapshot.stations.values() if county is None
            or s.county_code == county}


def _station_docs(first: dt.datetime, end: dt.datetime, months: list[int], county: str | None,
                  snapshot: Any) -> list[dict[str, Any]]:
    """The station tallies of whole months, from the dispatches as they stand: a clue
    counts at the station that holds it now (the live tallies also count a step at the
    station that made it before a transfer)."""
    match: dict[str, Any] = {"created_at": {"$gte": first, "$lt": end}}
    if county:
        match["station_code"] = {"$in": sorted(_county_stations(county, snapshot))}
    local = {"date": "$created_at", "timezone": LOCAL_OFFSET}
    acked = {"$ifNull": ["$acknowledged_at", False]}
    docs: dict[str, dict[str, Any]] = {}
    for row in Dispatch.objects.aggregate([
        {"$match": match},
        {"$group": {
            "_id": {"s": "$station_code",
                    "m": {"$add": [{"$multiply": [{"$year": local}, 100]}, {"$month": local}]},
                    "d": {"$dayOfMonth": local}},
            "clues": {"$sum": 1},
            "esc": {"$sum": {"$cond": [{"$gt": ["$escalation_level", 0]}, 1, 0]}},
            "tin": {"$sum": {"$cond": [{"$ifNull": ["$transferred_from", False]}, 1, 0]}},
            "within": {"$sum": {"$cond": [{"$and": [acked, {"$lte": [
                "$acknowledged_at", "$ack_deadline"]}]}, 1, 0]}},
            "ack_ms": {"$push": {"$cond": [acked, {"$subtract": ["$acknowledged_at",
                                                                 "$created_at"]}, None]}},
        }},
    ]):
        key = row["_id"]
        if key["m"] not in months:
            continue
        counts: dict[str, int] = {k: row[k] for k in ("clues", "esc", "tin", "within") if row[k]}
        times = [ms / 1000 for ms in row["ack_ms"] if ms is not None]
        if times:
            counts["ack"] = len(times)
        for seconds in times:
            name = f"b{ack_bin(seconds)}"
            counts[name] = counts.get(name, 0) + 1
        doc = docs.setdefault(station_tally_id(key["m"], key["s"]), {
            "_id": station_tally_id(key["m"], key["s"]), "kind": STATION, "month": key["m"],
            "station": key["s"], "days": {}})
        doc["days"][str(key["d"])] = counts
    return list(docs.values())
