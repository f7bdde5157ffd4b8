"""Linking reports into cases, so a station gets one dispatch per incident, not a flood.

A report joins the open case that is the same incident by the rule of
grid/linking.py (`same_incident`, written out in docs/linking.md): a shared
keyed identifier, or the same category group, place and time, compared with
the case's anchor (the report that opened it) and its latest report's time.

Flat cost: the candidates are a bounded, indexed read of open cases (by
identifier, by the reports' cells among the cases' near cells, within the
window), never of a case's reports; joining is one guarded update of a
fixed-size case; the report names it (`Report.case_id`) in the route job's last
write. A case of 2,000
reports costs what a case of 2 does (bench/linking.py). A batch of reports
(a route job that took a backlog, routing.route_many) makes those reads and
writes once for all its reports, linked one after the other in memory.

Two reports of a new incident routed at the same instant by two workers can
open two cases; both still reach the station (nothing is lost), as two dispatches.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from bson import ObjectId
from mongoengine.queryset import QuerySet
from pymongo import InsertOne, UpdateOne

from gateway.records.reports import Report
from gateway.records.updates import bulk_in_pieces
from gateway.runtime import settings
from grid.documents import MAX_CASE_KEYS, Case
from grid.linking import LinkCandidate, category_group, link_keys, same_incident
from grid.snapshot import GridSnapshot

# Open cases read per question (identifier, place): the newest first. Far more
# than real incidents in one cell within the window; a bound on the work.
CANDIDATES = 50
_SUMMARY = {"category": 1, "reporter": 1, "lat": 1, "lon": 1, "precision_m": 1,
            "cell_code": 1, "near_cells": 1, "keys": 1, "first_at": 1, "last_at": 1,
            "open": 1}


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


def _read_candidates(reports: Sequence[LinkCandidate],
                     snapshot: GridSnapshot) -> dict[ObjectId, dict[str, Any]]:
    """Open cases that may be the incident of any of these reports: bounded, indexed reads
    for the whole batch (one by identifier, one per cell of the batch's reports)."""
    cases = Case._get_collection()
    found: dict[ObjectId, dict[str, Any]] = {}
    keys = sorted({key for report in reports for key in report.keys})
    if keys:
        # `open` checked here, not in the query: SecantusDB uses an index only when one
        # covers every field of the filter, and with `open` in it read every case there
        # is. Closed cases sharing a key are few; a wider read leaves room for them.
        for doc in cases.find({"keys": {"$in": keys}}, _SUMMARY, sort=[("last_at", -1)],
                              limit=CANDIDATES * 4 * len(keys)):
            if doc.get("open"):
                found[doc["_id"]] = doc
    window = dt.timedelta(seconds=settings().case_window_s)
    since: dict[str, dt.datetime] = {}
    for r in reports:
        if r.cell_code is not None and r.cell_code in snapshot.cells:
            since[r.cell_code] = min(since.get(r.cell_code, r.created_at), r.created_at)
    # One read per cell, not one `$in` of them all: SecantusDB's planner scans the whole
    # collection for an `$in` on a compound index (every case ever, closed ones too).
    for cell, first in sorted(since.items()):
        near = {"open": True, "near_cells": cell, "last_at": {"$gte": first - window}}
        for doc in cases.find(near, _SUMMARY, sort=[("last_at", -1)], limit=CANDIDATES):
            found.setdefault(doc["_id"], doc)
    return found


class _Pool:
    """The open cases a batch may join, the batch's new ones among them, indexed by the
    near cells and identifiers they are found by."""

    def __init__(self, found: dict[ObjectId, dict[str, Any]]) -> None:
        self.by_cell: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for doc in found.values():
            self.add(doc)

    def add(self, doc: dict[str, Any]) -> None:
        for cell in doc.get("near_cells") or ():
            self.by_cell[cell].append(doc)
        for key in doc.get("keys") or ():
            self.by_key[key].append(doc)

    def grow(self, doc: dict[str, Any], report: LinkCandidate) -> None:
        """The case took `report`: the next report of the batch sees it as it now is."""
        doc["first_at"] = min(doc["first_at"], report.created_at)
        doc["last_at"] = max(doc["last_at"], report.created_at)
        new_keys = sorted(report.keys - set(doc.get("keys") or ()))
        doc["keys"] = [*(doc.get("keys") or ()), *new_keys][:MAX_CASE_KEYS]
        for key in new_keys:
            self.by_key[key].append(doc)

    def candidates(self, report: LinkCandidate) -> list[dict[str, Any]]:
        """The cases `report` is compared with, newest first, at most CANDIDATES by place."""
        found: dict[ObjectId, dict[str, Any]] = {}
        for key in report.keys:
            for doc in self.by_key.get(key, ()):
                found[doc["_id"]] = doc
        since = report.created_at - dt.timedelta(seconds=settings().case_window_s)
        near = sorted((doc for doc in self.by_cell.get(report.cell_code or "", ())
                       if doc["last_at"] >= since), key=lambda d: d["last_at"], reverse=True)
        for doc in near[:CANDIDATES]:
            found.setdefault(doc["_id"], doc)
        return sorted(found.values(), key=lambda doc: doc["last_at"], reverse=True)


def matching_case(report: LinkCandidate, candidates: Sequence[dict[str, Any]]
                  ) -> dict[str, Any] | None:
    """The open case this report is the same incident as: a shared identifier first,
    else the one with the latest report; None when it is a new incident."""
    window = settings().case_window_s
    best: tuple[int, dict[str, Any]] | None = None
    for case in candidates:
        why = same_incident(report, _anchor(case, report.created_at), window)
        if why is None:
            continue
        rank = 0 if why == "same_identifier" else 1
        if best is None or rank < best[0]:
            best = (rank, case)
    return best[1] if best else None


def attach_many(placed: Sequence[tuple[Report, str | None]], snapshot: GridSnapshot
                ) -> dict[ObjectId, tuple[ObjectId, bool]]:
    """The case of each report (joining or opening one), True for the report that opened it.

    The batch is linked oldest report first, each against the open cases read for
    the whole batch and those its earlier reports opened or joined, as if routed one
    by one; then one write for the new cases and one for the cases joined. The caller
    names the case on each report in its own last write, guarded on the report naming
    no other case (one write of the report less: on SecantusDB every update of a
    report rewrites all eight of its index entries). Idempotent: a report that names
    its case already keeps it.
    """
    linked: dict[ObjectId, tuple[ObjectId, bool]] = {}
    todo: list[tuple[LinkCandidate, Report]] = []
    for report, cell_code in placed:
        if report.case_id is not None:
            linked[report.id] = (report.case_id, False)
        else:
            todo.append((as_candidate(report, cell_code, report_keys(report)), report))
    if not todo:
        return linked
    stored = _read_candidates([candidate for candidate, _ in todo], snapshot)
    known_keys = {case_id: set(doc.get("keys") or ()) for case_id, doc in stored.items()}
    pool = _Pool(stored)
    opened: dict[ObjectId, dict[str, Any]] = {}
    joins: dict[ObjectId, list[LinkCandidate]] = defaultdict(list)
    for candidate, report in sorted(todo, key=lambda item: item[0].created_at):
        case = matching_case(candidate, pool.candidates(candidate))
        if case is None:
            case = _case_doc(report, candidate.cell_code, snapshot, sorted(candidate.keys))
            case["_id"] = ObjectId()
            opened[case["_id"]] = case
            pool.add(case)
            linked[report.id] = (case["_id"], True)
            continue
        pool.grow(case, candidate)
        if case["_id"] in opened:
            case["report_count"] += 1
        else:
            joins[case["_id"]].append(candidate)
        linked[report.id] = (case["_id"], False)
    if opened:
        bulk_in_pieces(Case._get_collection(), [InsertOne(doc) for doc in opened.values()])
    closed = _join(joins, known_keys)
    if closed:
        # Closed since they were read: their reports are linked again without them.
        again = [(report, candidate.cell_code) for candidate, report in todo
                 if linked[report.id][0] in closed]
        linked.update(attach_many(again, snapshot))
    return linked


def _join(joins: dict[ObjectId, list[LinkCandidate]],
          known_keys: dict[ObjectId, set[str]]) -> set[ObjectId]:
    """Add the reports to the stored cases they joined (one write); the ids of those that
    were closed since they were read (guarded on `open`: they take no more reports)."""
    if not joins:
        return set()
    updates = []
    for case_id, reports in joins.items():
        update: dict[str, Any] = {"$inc": {"report_count": len(reports)},
                                  "$max": {"last_at": max(r.created_at for r in reports)},
                                  "$min": {"first_at": min(r.created_at for r in reports)}}
        keys = sorted({key for report in reports for key in report.keys} - known_keys[case_id])
        if keys:
            update["$push"] = {"keys": {"$each": keys, "$slice": MAX_CASE_KEYS}}
        updates.append(UpdateOne({"_id": case_id, "open": True}, update))
    cases = Case._get_collection()
    if bulk_in_pieces(cases, updates)[0] == len(updates):
        return set()
    return {doc["_id"] for doc in cases.find({"_id": {"$in": list(joins)}, "open": False},
                                             {"_id": 1})}


def open_case(report: Report, cell_code: str | None, snapshot: GridSnapshot,
              keys: list[str] | None = None) -> ObjectId:
    """A new case anchored on `report` (not yet claimed by it: the caller names it)."""
    doc = _case_doc(report, cell_code, snapshot,
                    report_keys(report) if keys is None else keys)
    Case._get_collection().insert_one(doc)
    return ObjectId(doc["_id"])


def _case_doc(report: Report, cell_code: str | None, snapshot: GridSnapshot,
              keys: list[str]) -> dict[str, Any]:
    where = report.location
    cell = snapshot.cells.get(cell_code or "")
    near = [cell_code, *sorted(cell.neighbours)] if cell is not None and cell_code else []
    return {"category": report.category, "group": category_group(report.category),
            "anchor_report_id": report.id, "reporter": str(report.reporter_id),
            "lat": where.lat if where else None, "lon": where.lon if where else None,
            "precision_m": where.precision_m if where else None, "cell_code": cell_code,
            "near_cells": near, "keys": keys[:MAX_CASE_KEYS], "report_count": 1,
            "first_at": report.created_at, "last_at": report.created_at, "open": True}


def dispatch_reports(dispatch_id: ObjectId) -> QuerySet:
    """The reports a dispatch holds, oldest first (an indexed read of the reports)."""
    return Report.objects(dispatch_ids=dispatch_id).order_by("created_at")
