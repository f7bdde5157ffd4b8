"""Bringing a database written when cases listed their reports up to reports naming them.

Before linking cost the same for any clue size, a case held its reports' ids
(`Case.report_ids`, plus the `cells` they were in) and a dispatch its reports'
codes (`Dispatch.report_codes`): arrays that grew with the clue and were
rewritten on every join. Now each report names its case (`case_id`) and the
dispatches that hold it (`dispatch_ids`); a case keeps a fixed-size summary
anchored on its first report, and a dispatch a count.

`upgrade` moves an older database over: run at every start (gateway/startup.py)
and cheap once done, because the old index on `report_ids` is its marker: it is
dropped last, so an upgrade that stops half-way is done again, whole, by the
next start. Every step is idempotent.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import OperationFailure

from gateway.records.reports import Report
from grid.documents import Case, Dispatch, GridCell
from grid.linking import category_group

log = logging.getLogger(__name__)

OLD_INDEXES = ("report_ids_1", "open_1_category_1_cells_1_last_at_-1")


def pending() -> bool:
    """True when the store still has cases written the old way (their index is the marker)."""
    return "report_ids_1" in _indexes(Case._get_collection())


def upgrade() -> int:
    """Move an older database's case and dispatch arrays onto the reports; returns the
    number of cases moved (0 when there was nothing to do)."""
    if not pending():
        return 0
    moved = sum(_move_case(case) for case in Case._get_collection().find(
        {"report_ids": {"$exists": True}}, {"report_ids": 1, "cells": 1}))
    dispatches = Dispatch._get_collection()
    reports = Report._get_collection()
    for doc in dispatches.find({"report_count": {"$exists": False}},
                               {"report_id": 1, "report_codes": 1}):
        codes = doc.get("report_codes") or []
        if codes:
            reports.update_many({"code": {"$in": codes}},
                                {"$addToSet": {"dispatch_ids": doc["_id"]}})
        reports.update_one({"_id": doc["report_id"]}, {"$addToSet": {"dispatch_ids": doc["_id"]}})
        dispatches.update_one({"_id": doc["_id"]}, {"$set": {"report_count": max(1, len(codes))},
                                                    "$unset": {"report_codes": ""}})
    collection = Case._get_collection()
    for name in OLD_INDEXES:  # the marker goes last
        if name in _indexes(collection):
            collection.drop_index(name)
    log.info("moved %d cases' reports onto the reports (case_id, dispatch_ids)", moved)
    return moved


def _move_case(case: dict[str, Any]) -> int:
    """One old case: its reports name it, and it keeps a summary anchored on the first."""
    reports = Report._get_collection()
    ids = list(case.get("report_ids") or [])
    if ids:
        reports.update_many({"_id": {"$in": ids}, "case_id": None},
                            {"$set": {"case_id": case["_id"]}})
    first = reports.find_one({"_id": {"$in": ids}}, sort=[("created_at", 1)]) if ids else None
    summary: dict[str, Any] = {"report_count": max(1, len(ids))}
    if first is not None:
        where = first.get("location") or {}
        cell_code = first.get("cell_code")
        cell = GridCell.objects(code=cell_code).only("neighbours").first() if cell_code else None
        summary.update({
            "group": category_group(first["category"]), "anchor_report_id": first["_id"],
            "reporter": str(first.get("reporter_id")), "lat": where.get("lat"),
            "lon": where.get("lon"), "precision_m": where.get("precision_m"),
            "cell_code": cell_code,
            "near_cells": [cell_code, *sorted(cell.neighbours)] if cell is not None else
            list(case.get("cells") or [])})
    Case._get_collection().update_one({"_id": case["_id"]}, {
        "$set": summary, "$unset": {"report_ids": "", "cells": ""}})
    return 1


def _indexes(collection: Collection[Any]) -> dict[str, Any]:
    try:
        return dict(collection.index_information())
    except OperationFailure:  # the collection does not exist yet
        return {}
