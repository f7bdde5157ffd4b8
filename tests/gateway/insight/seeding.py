"""Raw reports and dispatches for the figures' tests, and the counts they should give,
worked out here from the raw documents without the product's code."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId

from gateway.insight.tallies import recount
from gateway.records.reports import Report
from gateway.sample import COUNTY, COUNTY_DESK, TOWNSHIPS, cell_code
from grid.documents import Dispatch
from grid.figures import Period

BEIJING = ZoneInfo("Asia/Shanghai")
STATION_OF_TOWNSHIP = {t[0]: t[2] for t in TOWNSHIPS}
CATS = ("CHILD", "WOMAN", "LABOUR", "OTHER")


def insert_reports(docs: list[dict[str, Any]]) -> None:
    """Insert report documents as the intake and route job leave them, and recount."""
    for i, doc in enumerate(docs):
        doc.setdefault("_id", ObjectId())
        doc.setdefault("code", f"T{i:06d}")
        doc.setdefault("reporter_id", ObjectId())
        doc.setdefault("client_id", f"seed-{i}")
        doc.setdefault("status", "routed")
        doc.setdefault("source", "app")
        doc.setdefault("routed_at", doc["created_at"])
    if docs:
        Report._get_collection().insert_many(docs)
    # Loaded behind the route job's back: the figures' tallies are recounted from them,
    # as after restoring a backup.
    first = min(d["created_at"] for d in docs) + dt.timedelta(hours=8)
    last = max(d["created_at"] for d in docs) + dt.timedelta(hours=8)
    recount(Period(first.date(), last.date() + dt.timedelta(days=1)))


def report(cell: str | None, category: str, at: dt.datetime, **more: Any) -> dict[str, Any]:
    station = STATION_OF_TOWNSHIP[cell[:9]] if cell else COUNTY_DESK[0]
    return {"cell_code": cell, "station_code": station, "category": category,
            "created_at": at, **more}


def random_reports(seed: int, n: int, start: dt.datetime, days: int) -> list[dict[str, Any]]:
    """`n` reports over the sample county's cells, a few unplaced; skewed, so some cells
    have many and some 1–4."""
    rnd = random.Random(seed)  # noqa: S311 (test data, not secrets)
    cells = [cell_code(t, v, g) for t in range(3) for v in range(4) for g in range(4)]
    weights = [rnd.choice((0, 0, 1, 1, 3, 8)) for _ in cells]
    out = []
    for _ in range(n):
        at = start + dt.timedelta(seconds=rnd.randrange(days * 86400))
        cell = None if rnd.random() < 0.03 else rnd.choices(cells, weights)[0]
        out.append(report(cell, rnd.choice(CATS), at))
    return out


def local_bucket(at: dt.datetime, every: str) -> dt.date:
    day = at.replace(tzinfo=dt.UTC).astimezone(BEIJING).date()
    return day - dt.timedelta(days=day.weekday()) if every == "week" else day.replace(day=1)


def township_of(cell: str | None) -> str | None:
    return None if cell is None else cell[:9] + "000"


def shown(n: int) -> int | str:
    """What a count of `n` must be published as (docs/insight.md), written out again."""
    if n == 0:
        return 0
    if n < 5:
        return "<5"
    return (n // 5) * 5


def dispatch(station: str, created: dt.datetime, *, ack_after_s: float | None = None,
             sla_s: int = 1800, **more: Any) -> dict[str, Any]:
    doc = {"_id": ObjectId(), "report_id": ObjectId(), "report_code": "D000000",
           "station_code": station, "priority": "urgent", "category": "WOMAN",
           "status": "acknowledged" if ack_after_s is not None else "delivered",
           "reported_at": created, "created_at": created,
           "ack_deadline": created + dt.timedelta(seconds=sla_s), "escalation_level": 0}
    if ack_after_s is not None:
        doc["acknowledged_at"] = created + dt.timedelta(seconds=ack_after_s)
    doc.update(more)
    return doc


def insert_dispatches(docs: list[dict[str, Any]]) -> None:
    """Insert dispatch documents and recount the figures' tallies of their months."""
    if docs:
        Dispatch._get_collection().insert_many(docs)
        first = min(d["created_at"] for d in docs) + dt.timedelta(hours=8)
        last = max(d["created_at"] for d in docs) + dt.timedelta(hours=8)
        recount(Period(first.date(), last.date() + dt.timedelta(days=1)))


__all__ = ["COUNTY"]
