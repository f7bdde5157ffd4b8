"""How fast each station takes up its clues (响应时效): acknowledgement times, the SLA,
escalations, transfers, and what is overdue now.

From the station tallies (gateway/records/tallies.py), by the day each clue was
created at the station: clues; acknowledged; acknowledgement time
(`acknowledged_at − created_at`, the clue's clock) as p50 and p90, each the
upper bound of its bin (grid/figures.py: ACK_BINS), from five acknowledged up;
the share of the acknowledged that were acknowledged by `ack_deadline`; clues
escalated at least once; transfers accepted. Overdue now is read live: open,
unacknowledged clues past their deadline at this moment, whatever the period.
Counts are banded like every count of reports (docs/insight.md).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from gateway.insight import tallies
from gateway.insight.scope import Scope, stations_of
from grid.documents import Dispatch, utcnow
from grid.escalation import OVERDUE_STATES
from grid.figures import OVER_LAST_BIN, SMALL, band, bin_percentile, share


def response_times(scope: Scope, now: dt.datetime | None = None) -> dict[str, Any]:
    """One row per station of the scope that received a clue in the period or has one
    overdue now."""
    now = now or utcnow()
    stations = stations_of(scope.county)
    rows: dict[str, dict[str, Any]] = {}
    for code, sums in tallies.station_counts(scope.period, stations).items():
        binned = [sums.get(f"b{i}", 0) for i in range(OVER_LAST_BIN + 1)]
        acked = sums.get("ack", 0)
        enough = acked >= SMALL
        rows[code] = {
            "station": code, "clues": band(sums.get("clues", 0)), "acknowledged": band(acked),
            "ack_p50_s": bin_percentile(binned, 50) if enough else None,
            "ack_p90_s": bin_percentile(binned, 90) if enough else None,
            "within_sla_pct": share(sums.get("within", 0), acked),
            "escalated": band(sums.get("esc", 0)), "transferred_in": band(sums.get("tin", 0)),
            "overdue_now": 0}
    for code, n in overdue_now(stations, now).items():
        rows.setdefault(code, {
            "station": code, "clues": 0, "acknowledged": 0, "ack_p50_s": None,
            "ack_p90_s": None, "within_sla_pct": None, "escalated": 0, "transferred_in": 0,
            "overdue_now": 0})["overdue_now"] = band(n)
    return {"county": scope.county, "start": scope.period.start, "end": scope.period.end,
            "stations": [rows[code] for code in sorted(rows)]}


def overdue_now(stations: list[str] | None, now: dt.datetime) -> dict[str, int]:
    """Open, unacknowledged clues past their deadline, per station: one count a station
    (an equality on the station uses its index; a `$in` of stations made SecantusDB scan
    every open clue of the country)."""
    if stations is None:
        out: dict[str, int] = defaultdict(int)
        match = {"status": {"$in": sorted(OVERDUE_STATES)}, "ack_deadline": {"$lt": now}}
        for row in Dispatch.objects.aggregate([{"$match": match},
                                               {"$group": {"_id": "$station_code",
                                                           "n": {"$sum": 1}}}]):
            out[row["_id"]] += row["n"]
        return dict(out)
    # One read per station and open state, by equalities the (station_code, status,
    # created_at) index covers, the deadline checked here: SecantusDB uses an index only
    # when it covers every field of the filter, so `status $in` + `ack_deadline` beside
    # the station read far more (0.24-0.32 s against 0.04-0.05 s for a county at 200,000
    # clues; docs/performance.md).
    collection = Dispatch._get_collection()
    counts = {code: sum(1 for state in sorted(OVERDUE_STATES)
                        for clue in collection.find({"station_code": code, "status": state},
                                                    {"ack_deadline": 1, "_id": 0})
                        if clue.get("ack_deadline") is not None and clue["ack_deadline"] < now)
              for code in stations}
    return {code: n for code, n in counts.items() if n}
