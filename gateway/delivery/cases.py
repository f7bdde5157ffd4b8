"""Linking reports into cases, so a station gets one dispatch per incident, not a flood.

A report joins the open case that is the same incident by the rule of
grid/linking.py (`same_incident`, written out in docs/linking.md): a shared
keyed identifier, or the same category group, place and time, compared with
the case's anchor (the report that opened it) and its latest report's time.

Flat cost: the candidates are a bounded, indexed read of open cases (by
identifier, by the report's cell among the cases' near cells, within the
window), never of a case's reports; joining is one guarded update of a
fixed-size case, then one of the report (`Report.case_id`). A case of 2,000
reports costs what a case of 2 does (bench/linking.py).

Two reports of a new incident routed at the same instant by two workers can
open two cases; both still reach the station (nothing is lost), as two dispatches.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bson import ObjectId
from mongoengine.queryset import QuerySet

from gateway.records.reports import Report
from gateway.runtime import settings
from grid.documents import MAX_CASE_KEYS, Case
from grid.linking import LinkCandidate, category_group, link_keys, same_incident
from grid.snapshot import GridSnapshot

# Open cases read per question (identifier, place): the newest first. Far more
# than real incidents in one cell within the window; a bound on the work.
CANDIDATES = 50
_SUMMARY = {"category": 1, "reporter": 1, "lat": 1, "lon": 1, "precision_m": 1,
            "cell_code": 1, "keys": 1, "first_at": 1, "last_at": 1}


def _key() -> bytes | None:
    raw = settings().link_key
    return bytes.fromhex(raw) if raw else None


def report_keys(report: Report) -> list[str]:
    """The report's keyed identifiers (empty when no linking key is configured)."""
    key = _key()
    return sorted(link_keys(report.details or "", key)) if key else []


def as_candidate(report: Report, cell_code: str | None, keys: list[str]) -> LinkCandidate:
    """What the linking rule needs to know about a report."""
    where = report.location
    return LinkCandidate(
        str(report.id), report.category, cell_code, report.created_at, frozenset(keys),
        lat=where.lat if where else None, lon=where.lon if where else None,
        precision_m=where.precision_m if where else None, reporter=str(report.reporter_id))


def _anchor(case: dict[str, Any], at: dt.datetime) -> LinkCandidate:
    """A case as one side of the rule: its anchor, at the time of its report nearest `at`."""
    nearest = min(max(at, case["first_at"]), case["last_at"])
    return LinkCandidate(
        str(case["_id"]), case["category"], case.get("cell_code"), nearest,
        frozenset(case.get("keys") or ()), lat=case.get("lat"), lon=case.get("lon"),
        precision_m=case.get("precision_m"), reporter=case.get("reporter"))


def _candidates(report: LinkCandidate, snapshot: GridSnapshot) -> list[dict[str, Any]]:
    """Open cases that may be this incident: bounded, indexed reads, newest first."""
    cases = Case._get_collection()
    found: dict[ObjectId, dict[str, Any]] = {}
    if report.keys:
        # `open` checked here, not in the query: SecantusDB uses an index only when one
        # covers every field of the filter, and with `open` in it read every case there
        # is. Closed cases sharing a key are few; a wider read leaves room for them.
        for doc in cases.find({"keys": {"$in": sorted(report.keys)}}, {**_SUMMARY, "open": 1},
                              sort=[("last_at", -1)], limit=CANDIDATES * 4):
            if doc.get("open") and len(found) < CANDIDATES:
                found[doc["_id"]] = doc
    if report.cell_code is not None and report.cell_code in snapshot.cells:
        since = report.created_at - dt.timedelta(seconds=settings().case_window_s)
        for doc in cases.find({"open": True, "near_cells": report.cell_code,
                               "last_at": {"$gte": since}}, _SUMMARY,
                              sort=[("last_at", -1)], limit=CANDIDATES):
            found.setdefault(doc["_id"], doc)
    return sorted(found.values(), key=lambda doc: doc["last_at"], reverse=True)


def matching_case(report: LinkCandidate, snapshot: GridSnapshot) -> dict[str, Any] | None:
    """The open case this report is the same incident as: a shared identifier first,
    else the one with the latest report; None when it is a new incident."""
    window = settings().case_window_s
    best: tuple[int, dict[str, Any]] | None = None
    for case in _candidates(report, snapshot):
        why = same_incident(report, _anchor(case, report.created_at), window)
        if why is None:
            continue
        rank = 0 if why == "same_identifier" else 1
        if best is None or rank < best[0]:
            best = (rank, case)
    return best[1] if best else None


def attach(report: Report, cell_code: str | None, snapshot: GridSnapshot) -> tuple[ObjectId, bool]:
    """The case this report belongs to (joining or opening one); True when it opened it.

    Idempotent: a report that names its case already keeps it.
    """
    if report.case_id is not None:
        return report.case_id, False
    keys = report_keys(report)
    candidate = as_candidate(report, cell_code, keys)
    cases = Case._get_collection()
    case = matching_case(candidate, snapshot)
    if case is not None:
        update: dict[str, Any] = {"$inc": {"report_count": 1},
                                  "$max": {"last_at": report.created_at},
                                  "$min": {"first_at": report.created_at}}
        new_keys = [k for k in keys if k not in set(case.get("keys") or ())]
        if new_keys:
            update["$push"] = {"keys": {"$each": new_keys, "$slice": MAX_CASE_KEYS}}
        # Guarded on `open`: a case closed since it was read takes no more reports.
        if cases.update_one({"_id": case["_id"], "open": True}, update).modified_count:
            if _claim(report, case["_id"]):
                return case["_id"], False
            cases.update_one({"_id": case["_id"]}, {"$inc": {"report_count": -1}})
            return _held(report), False
    case_id = open_case(report, cell_code, snapshot, keys)
    if _claim(report, case_id):
        return case_id, True
    cases.delete_one({"_id": case_id})  # another run of this job placed it first
    return _held(report), False


def open_case(report: Report, cell_code: str | None, snapshot: GridSnapshot,
              keys: list[str] | None = None) -> ObjectId:
    """A new case anchored on `report` (not yet claimed by it: see `attach`)."""
    where = report.location
    cell = snapshot.cells.get(cell_code or "")
    near = [cell_code, *sorted(cell.neighbours)] if cell is not None and cell_code else []
    doc = {"category": report.category, "group": category_group(report.category),
           "anchor_report_id": report.id, "reporter": str(report.reporter_id),
           "lat": where.lat if where else None, "lon": where.lon if where else None,
           "precision_m": where.precision_m if where else None, "cell_code": cell_code,
           "near_cells": near, "keys": (report_keys(report) if keys is None else keys)
           [:MAX_CASE_KEYS], "report_count": 1, "first_at": report.created_at,
           "last_at": report.created_at, "open": True}
    Case._get_collection().insert_one(doc)
    return ObjectId(doc["_id"])


def _claim(report: Report, case_id: ObjectId) -> bool:
    """Name the case on the report, unless a concurrent run of the job named one first."""
    claimed = Report._get_collection().update_one(
        {"_id": report.id, "case_id": None}, {"$set": {"case_id": case_id}})
    return bool(claimed.modified_count)


def _held(report: Report) -> ObjectId:
    doc = Report._get_collection().find_one({"_id": report.id}, {"case_id": 1})
    return ObjectId(doc["case_id"])


def dispatch_reports(dispatch_id: ObjectId) -> QuerySet:
    """The reports a dispatch holds, oldest first (an indexed read of the reports)."""
    return Report.objects(dispatch_ids=dispatch_id).order_by("created_at")
