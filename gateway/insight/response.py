"""How fast each station takes up its clues (响应时效): acknowledgement times, the SLA,
escalations, transfers, and what is overdue now.

Over the dispatches a station received in the period (by `created_at`):
acknowledgement time is `acknowledged_at − created_at` (the clue's clock: a
transfer does not restart it for these figures); p50 and p90 are given from
five acknowledged clues up. Within SLA: acknowledged by `ack_deadline`, among
the clues whose deadline is decided (acknowledged, or unacknowledged past it);
a copy closed as a duplicate of another station's dispatch is not counted.
Transfers: clues this station accepted from another. Overdue now: open clues
past their deadline at this moment, whatever the period. Counts are banded
like every count of reports (docs/insight.md).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from gateway.insight.scope import Scope, stations_of
from grid.documents import Dispatch, utcnow
from grid.escalation import OVERDUE_STATES
from grid.figures import SMALL, band, percentile, share


def response_times(scope: Scope, now: dt.datetime | None = None) -> dict[str, Any]:
    """One row per station of the scope that received a clue in the period or has one
    overdue now."""
    now = now or utcnow()
    stations = stations_of(scope.county)
    match: dict[str, Any] = {"created_at": {"$gte": scope.period.utc_start,
                                            "$lt": scope.period.utc_end}}
    if stations is not None:
        match["station_code"] = {"$in": stations}
    acked = {"$ifNull": ["$acknowledged_at", False]}
    pipeline = [
        {"$match": match},
        {"$group": {
            "_id": "$station_code",
            "clues": {"$sum": 1},
            "ack_ms": {"$push": {"$cond": [acked, {"$subtract": ["$acknowledged_at",
                                                               "$created_at"]}, None]}},
            "within": {"$sum": {"$cond": [{"$and": [acked, {"$lte": ["$acknowledged_at",
                                                                      "$ack_deadline"]}]},
                                          1, 0]}},
            "late_open": {"$sum": {"$cond": [{"$and": [
                {"$not": [acked]}, {"$not": [{"$ifNull": ["$duplicate_of", False]}]},
                {"$lt": ["$ack_deadline", now]}]}, 1, 0]}},
            "escalated": {"$sum": {"$cond": [{"$gt": ["$escalation_level", 0]}, 1, 0]}},
            "transferred_in": {"$sum": {"$cond": [{"$ifNull": ["$transferred_from", False]},
                                                  1, 0]}},
        }},
    ]
    rows: dict[str, dict[str, Any]] = {}
    for row in Dispatch.objects.aggregate(pipeline):
        times = [ms / 1000 for ms in row["ack_ms"] if ms is not None]
        decided = len(times) + row["late_open"]
        enough = len(times) >= SMALL
        rows[row["_id"]] = {
            "station": row["_id"], "clues": band(row["clues"]),
            "acknowledged": band(len(times)),
            "ack_p50_s": _seconds(percentile(times, 50)) if enough else None,
            "ack_p90_s": _seconds(percentile(times, 90)) if enough else None,
            "within_sla_pct": share(row["within"], decided),
            "escalated": band(row["escalated"]), "transferred_in": band(row["transferred_in"]),
            "overdue_now": 0}
    for code, n in overdue_now(stations, now).items():
        rows.setdefault(code, {
            "station": code, "clues": 0, "acknowledged": 0, "ack_p50_s": None,
            "ack_p90_s": None, "within_sla_pct": None, "escalated": 0, "transferred_in": 0,
            "overdue_now": 0})["overdue_now"] = band(n)
    return {"county": scope.county, "start": scope.period.start, "end": scope.period.end,
            "stations": [rows[code] for code in sorted(rows)]}


def overdue_now(stations: list[str] | None, now: dt.datetime) -> dict[str, int]:
    """Open, unacknowledged clues past their deadline, per station."""
    match: dict[str, Any] = {"status": {"$in": sorted(OVERDUE_STATES)},
                             "ack_deadline": {"$lt": now}}
    if stations is not None:
        match["station_code"] = {"$in": stations}
    out: dict[str, int] = defaultdict(int)
    for row in Dispatch.objects.aggregate([{"$match": match},
                                           {"$group": {"_id": "$station_code",
                                                       "n": {"$sum": 1}}}]):
        out[row["_id"]] += row["n"]
    return dict(out)


def _seconds(value: float | None) -> int | None:
    return None if value is None else round(value)
