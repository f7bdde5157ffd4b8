"""Linking reports into cases, so a station gets one dispatch per matter, not a flood.

A report joins an open case of the same category with a report in the same or
a neighbouring cell within `case_window_s`, or any open case sharing a keyed
identifier (a phone number or vehicle plate named in the details, compared by
HMAC: grid/linking.py). Joining is one atomic update on the case; routing the
same report again finds the case that already holds it.

Two reports of a new matter routed at the same instant by two workers can open
two cases; both still reach the station (nothing is lost), as two dispatches.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from gateway.records.reports import Report
from gateway.runtime import settings
from grid.documents import Case
from grid.linking import link_keys
from grid.snapshot import GridSnapshot


def _key() -> bytes | None:
    raw = settings().link_key
    return bytes.fromhex(raw) if raw else None


def attach(report: Report, cell_code: str | None, snapshot: GridSnapshot) -> tuple[ObjectId, bool]:
    """The case this report belongs to (joining or opening one); True when it opened it."""
    cases = Case._get_collection()
    held = cases.find_one({"report_ids": report.id}, {"_id": 1})
    if held is not None:
        return held["_id"], False
    key = _key()
    keys = sorted(link_keys(report.details or "", key)) if key else []
    alternatives: list[dict[str, Any]] = []
    if keys:
        alternatives.append({"keys": {"$in": keys}})
    if cell_code is not None:
        cell = snapshot.cells.get(cell_code)
        nearby = [cell_code, *(cell.neighbours if cell else ())]
        since = report.created_at - dt.timedelta(seconds=settings().case_window_s)
        alternatives.append({"category": report.category, "cells": {"$in": nearby},
                             "last_at": {"$gte": since}})
    update: dict[str, Any] = {
        "$addToSet": {"report_ids": report.id, "keys": {"$each": keys}},
        "$max": {"last_at": report.created_at},
    }
    if cell_code is not None:
        update["$addToSet"]["cells"] = cell_code
    if alternatives:
        joined = cases.find_one_and_update(
            {"open": True, "$or": alternatives}, update,
            sort=[("last_at", -1)], return_document=ReturnDocument.AFTER, projection={"_id": 1},
        )
        if joined is not None:
            return joined["_id"], False
    doc = {"category": report.category, "cells": [cell_code] if cell_code else [], "keys": keys,
           "report_ids": [report.id], "first_at": report.created_at,
           "last_at": report.created_at, "open": True}
    cases.insert_one(doc)
    return doc["_id"], True
