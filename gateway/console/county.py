"""The county supervisor's page (县局督导): overdue clues, escalations, each station's
open count, the missing-child alerts the county issued, with their coverage, and the
insight figures (研判数据).

The figures are the insight room's own (gateway/insight/), called directly, so they
are published exactly as the insight API publishes them: small counts as "<5",
counts banded, totals withheld when they would pin a part, shares in steps of ten
(docs/insight.md). Nothing is counted here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway import gridcache
from gateway.console.site import session
from gateway.delivery import inbox
from gateway.insight import counts, duty, response
from gateway.insight.scope import scope_of
from grid.documents import Dispatch, GridCell
from grid.escalation import OVERDUE_STATES
from grid.figures import LOCAL, next_bucket

SILENT_SHOWN = 20  # the silent units listed by name on the page; the count is all of them


def _county_stations(county: str) -> list[Any]:
    return sorted((s for s in gridcache.current().stations.values() if s.county_code == county),
                  key=lambda s: s.code)


def open_counts(county: str) -> list[tuple[Any, int, int]]:
    """(station, open clues, overdue clues) for each station of the county."""
    stations = _county_stations(county)
    overdue_by = {code: 0 for code in (s.code for s in stations)}
    for d in inbox.county_overdue(session().principal, county).only("station_code"):
        overdue_by[d.station_code] = overdue_by.get(d.station_code, 0) + 1
    opened: dict[str, int] = {}
    for row in Dispatch._get_collection().aggregate([
            {"$match": {"station_code": {"$in": [s.code for s in stations]},
                        "status": {"$ne": "closed"}}},
            {"$group": {"_id": "$station_code", "n": {"$sum": 1}}}]):
        opened[str(row["_id"])] = int(row["n"])
    return [(s, opened.get(s.code, 0), overdue_by.get(s.code, 0)) for s in stations]


def escalations(county: str) -> list[Dispatch]:
    """Open clues that climbed the escalation chain, highest level first."""
    codes = [s.code for s in _county_stations(county)]
    return list(Dispatch.objects(station_code__in=codes, escalation_level__gt=0,
                                 status__in=sorted(OVERDUE_STATES | {"acknowledged"}))
                .order_by("-escalation_level", "ack_deadline").limit(100))


def _month_counts(county: str, today: dt.date) -> dict[str, Any]:
    """The county's reports this calendar month (so far) and last, by category and in all,
    as the insight room publishes them (`counts.counts` by county and month)."""
    this_month = today.replace(day=1)
    previous = (this_month - dt.timedelta(days=1)).replace(day=1)
    scope = scope_of(session().principal, county, previous, next_bucket(this_month, "month"))
    figures = counts.counts(scope, "county", "month", None)
    table: dict[str | None, dict[str, Any]] = {}
    for row in figures["rows"]:
        if row["area"] != county:
            continue
        which = "this" if row["period_start"] == this_month else "previous"
        table.setdefault(row["category"], {"category": row["category"], "this": 0,
                                           "previous": 0})[which] = row["reports"]
    everything = table.pop(None, {"category": None, "this": 0, "previous": 0})
    return {"this_month": this_month, "previous_month": previous,
            "rows": [everything, *(table[c] for c in sorted(table, key=str))]}


def insight_figures(county: str) -> dict[str, Any] | None:
    """The county's figures for the supervisor's page (研判数据), from the insight room:
    reports this month against last, station response times and the reporting duty over
    the last 30 days (the insight API's default period).

    None without a county (nothing to show).
    """
    if not county:
        return None
    today = dt.datetime.now(LOCAL).date()  # the insight room's months are Beijing months
    recent = scope_of(session().principal, county, None, None)
    times = response.response_times(recent)
    compliance = duty.duty(recent)
    return {
        "months": _month_counts(county, today),
        "start": recent.period.start, "end": recent.period.end - dt.timedelta(days=1),
        "stations": times["stations"],
        "units": len(compliance["units"]),
        "silent_since": compliance["silent_since"],
        "silent": len(compliance["silent_units"]),
        "silent_units": compliance["silent_units"][:SILENT_SHOWN],
        "by_township": compliance["by_township"],
        "township_stations": _township_stations(county),
    }


def _township_stations(county: str) -> dict[str, str]:
    """township code → the station(s) whose cells it holds: the grid keeps no township
    names, and the station says where it is."""
    stations = gridcache.current().stations
    serving: dict[str, set[str]] = {}
    for cell in GridCell.objects(county_code=county).only("township_code", "station_code"):
        serving.setdefault(cell.township_code, set()).add(cell.station_code)
    return {township: "、".join(stations[c].name if c in stations else c for c in sorted(codes))
            for township, codes in serving.items()}


def county_context() -> dict[str, Any]:
    county = session().county_code or ""
    return {"county": county, "insight": insight_figures(county),
            "overdue_list": list(inbox.county_overdue(session().principal, county).limit(100)),
            "escalated": escalations(county), "counts": open_counts(county)}
