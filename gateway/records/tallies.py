"""Report tallies as stored: counters kept as reports are routed, read by the figures.

Two kinds of document in one collection, so one report's two increments are one
bulk write, one round trip on the route path:

- a place tally per (Beijing month, cell, station): `days.<d>.<CATEGORY>` counts
  the reports of day d of the month (the county desk's unplaced reports have
  no cell);
- a reporter tally per (Beijing month, reporter): `days.<d>` counts their reports;
- a station tally per (Beijing month, station): for the clues created on day d,
  how many, acknowledged, within the SLA, escalated, transferred in, and their
  acknowledgement times in bins (grid/figures.py: ACK_BINS); written by the
  route job (clues, in its one bulk write), acknowledging, accepting a transfer
  and the first escalation, each after its guarded transition.

A county's year is at most 12 documents a cell, whatever the number of reports,
so figures read hundreds of small documents instead of every report
(docs/performance.md, "Figures"). The route job increments once per report:
only the run whose guarded write first records the routing does it, so a job
that runs twice counts once. A job that dies between its last write and the
increment leaves the report uncounted: `gateway/insight/tallies.py` recounts a
period from the reports themselves (`safegrid`-free, idempotent).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

import mongoengine as me
from bson import ObjectId
from pymongo import UpdateOne

from gateway.records.updates import bulk_in_pieces

PLACE = "place"
REPORTER = "reporter"
STATION = "station"
OFFSET = dt.timedelta(hours=8)  # Beijing time (grid/figures.py: no summer time)


class Tally(me.Document):
    """Counts of one Beijing month: of a place (cell and station) or of a reporter."""

    id = me.StringField(primary_key=True)
    kind = me.StringField(required=True, choices=(PLACE, REPORTER, STATION))
    month = me.IntField(required=True)  # year × 100 + month, Beijing time
    county = me.StringField()  # the place's county (place tallies)
    cell = me.StringField()
    station = me.StringField()
    reporter_id = me.ObjectIdField()
    # "d" → {"CATEGORY": n} (place), "d" → n (reporter), "d" → {"clues": n, "ack": n,
    # "within": n, "esc": n, "tin": n, "b<i>": n} (station: clues of that day)
    days = me.DictField()

    meta = {"collection": "report_tallies",
            "indexes": [("kind", "county", "month"), ("kind", "month"),
                        ("kind", "station", "month"),
                        # A county's reporters' tallies (the duty figure).
                        ("reporter_id", "month")]}


def station_tally_id(month: int, station: str) -> str:
    return f"{month}:s:{station}"


def station_increment(station: str, clue_created: dt.datetime,
                      counts: dict[str, int]) -> UpdateOne:
    """The upsert adding `counts` (clues, ack, within, esc, tin, b<i>) to a station's tally,
    on the day its clue was created."""
    return _update(_station(station, clue_created, counts))


def move_report(created_at: dt.datetime, from_reporter: ObjectId,
                to_reporter: ObjectId) -> None:
    """Count a report under another reporter (anonymised: under nobody's id), so the
    tallies stay what a recount of the reports gives; one round trip."""
    Tally._get_collection().bulk_write([reporter_increment(created_at, from_reporter, -1),
                                        reporter_increment(created_at, to_reporter, 1)],
                                       ordered=False)


def count_station(station: str, clue_created: dt.datetime, counts: dict[str, int]) -> None:
    """Count a step of a clue (acknowledged, escalated, transferred in): one round trip; the
    caller makes sure it is once (after its guarded transition)."""
    Tally._get_collection().bulk_write([station_increment(station, clue_created, counts)])


def month_and_day(moment: dt.datetime) -> tuple[int, int]:
    """(year × 100 + month, day) of a naive UTC instant in Beijing time."""
    local = moment + OFFSET
    return local.year * 100 + local.month, local.day


def place_id(month: int, cell: str | None, station: str) -> str:
    return f"{month}:p:{cell or '-'}:{station}"


def reporter_tally_id(month: int, reporter_id: ObjectId) -> str:
    return f"{month}:r:{reporter_id}"


# One tally document's increments: (_id, {field: n}, fields set when it is made).
Increment = tuple[str, dict[str, int], dict[str, Any]]


def _station(station: str, clue_created: dt.datetime, counts: dict[str, int]) -> Increment:
    month, day = month_and_day(clue_created)
    return (station_tally_id(month, station), {f"days.{day}.{k}": n for k, n in counts.items()},
            {"kind": STATION, "month": month, "station": station})


def _reporter(created_at: dt.datetime, reporter_id: ObjectId, n: int) -> Increment:
    month, day = month_and_day(created_at)
    return (reporter_tally_id(month, reporter_id), {f"days.{day}": n},
            {"kind": REPORTER, "month": month, "reporter_id": reporter_id})


def _place(created_at: dt.datetime, category: str, cell: str | None, station: str,
           county: str | None) -> Increment:
    month, day = month_and_day(created_at)
    return (place_id(month, cell, station), {f"days.{day}.{category}": 1},
            {"kind": PLACE, "month": month, "county": county, "cell": cell, "station": station})


def _update(increment: Increment, upsert: bool = True) -> UpdateOne:
    tally_id, inc, made = increment
    return UpdateOne({"_id": tally_id}, {"$inc": inc, "$setOnInsert": made}, upsert=upsert)


def reporter_increment(created_at: dt.datetime, reporter_id: ObjectId, n: int) -> UpdateOne:
    """The update adding `n` to a reporter's tally on the day of a report of theirs; an
    increment makes the tally when there is none, a decrement never does."""
    return _update(_reporter(created_at, reporter_id, n), upsert=n > 0)


class Routed(NamedTuple):
    """A routed report as the tallies count it, with the clues (station, created) its
    routing opened."""

    created_at: dt.datetime
    category: str
    cell: str | None
    station: str
    county: str | None
    reporter_id: ObjectId
    clues: Sequence[tuple[str, dt.datetime]] = ()


def count_reports(routed: Sequence[Routed]) -> None:
    """Count routed reports and the clues their routing opened: one round trip, one update
    per tally document however many reports it counts (the caller makes sure each report
    is counted once)."""
    merged: dict[str, Increment] = {}
    for report in routed:
        for tally_id, inc, made in (
                _place(report.created_at, report.category, report.cell, report.station,
                       report.county),
                _reporter(report.created_at, report.reporter_id, 1),
                *(_station(code, at, {"clues": 1}) for code, at in report.clues)):
            counts = merged.setdefault(tally_id, (tally_id, {}, made))[1]
            for name, n in inc.items():
                counts[name] = counts.get(name, 0) + n
    if merged:
        bulk_in_pieces(Tally._get_collection(), [_update(i) for i in merged.values()])
