"""Intake: store a report durably first, then queue it for routing.

Costs one database round trip for a new report (the insert); a retried
client id costs one more (reading the report it already made).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError
from redis.client import Pipeline

from gateway import gridcache, telemetry
from gateway.access.tokens import Principal
from gateway.delivery.routing import enqueue_route
from gateway.errors import Refusal
from gateway.privacy.crypto import is_encrypted, keyring
from gateway.records.reports import DETAILS_CONTEXT, Report
from gateway.runtime import rules, settings
from geo.datum import to_wgs84
from grid.documents import utcnow
from sms.grammar import REPORT_CODE_ALPHABET

log = logging.getLogger(__name__)

# Assumed when the app does not say how accurate its fix was (a phone outdoors).
PRECISION_GPS_M = 30.0


def new_report_code() -> str:
    """`R` + 6 random Crockford base32 characters (about 10⁹ codes)."""
    # One 30-bit draw, 5 bits a character: the alphabet has exactly 32 letters, so this
    # is as uniform as six secrets.choice calls, at a sixth of the CPU.
    bits = secrets.randbits(30)
    return "R" + "".join(REPORT_CODE_ALPHABET[(bits >> shift) & 31]
                         for shift in (25, 20, 15, 10, 5, 0))


@dataclass(frozen=True)
class NewReport:
    """A validated report as the app or the SMS gateway hands it over."""

    reporter_id: str
    client_id: str
    category: str
    details: str
    source: str
    lat: float | None = None
    lon: float | None = None
    datum: str = "wgs84"
    accuracy_m: float | None = None
    grid_code: str | None = None
    trust: str = "mandated"
    flags: tuple[str, ...] = ()
    # Further fields stored with the report in the same insert (an Open311 request's origin).
    also: Mapping[str, Any] | None = None


def report_document(new: NewReport) -> dict[str, Any]:
    """The document a new report is stored as: a fresh code, details sealed.

    A plain document of already validated values: mongoengine's per-field
    validation and conversion cost more CPU than the insert itself
    (docs/performance.md), and the API and SMS schemas validate first.
    """
    doc: dict[str, Any] = {
        "code": new_report_code(),
        "reporter_id": ObjectId(new.reporter_id),
        "client_id": new.client_id,
        "category": new.category,
        "details": keyring().encrypt(new.details, context=DETAILS_CONTEXT),
        "status": "received",
        "source": new.source,
        "priority": rules().rule_for(new.category).priority,
        "trust": new.trust,
        "flags": list(new.flags),
        "created_at": utcnow(),
    }
    location = _location(new)
    if location is not None:
        doc["location"] = location
    if new.also:
        doc.update(new.also)
    return doc


def file_report(new: NewReport) -> tuple[dict[str, Any], bool]:
    """Store `new` (or find the report its client id already made) and queue routing.

    Returns the stored report document (as pymongo reads it) and whether it
    was created now.
    """
    collection = Report._get_collection()
    for _ in range(3):
        doc = report_document(new)
        try:
            collection.insert_one(doc)
        except DuplicateKeyError as exc:
            if "client_id" in str(exc.details):
                existing = collection.find_one(
                    {"reporter_id": doc["reporter_id"], "client_id": new.client_id}
                )
                if existing is not None:
                    return _opened(existing), False
            continue  # the random code collided: draw another
        answers = enqueue_route(str(doc["_id"]), doc["priority"],
                                also=_count_filing(new, doc["created_at"]))
        filed = {**doc, "details": new.details}
        if answers is not None and answers[-2] > settings().reports_per_reporter_hour:
            # Stored and queued all the same: the reply only asks the app to slow down.
            filed["slow_down"] = True
        return filed, True
    raise RuntimeError("could not draw a free report code in 3 tries")


def filing_count_key(reporter_id: str, at: dt.datetime) -> str:
    """The Redis counter of a reporter's reports in the clock hour of `at`."""
    return f"safegrid:filed:{reporter_id}:{at:%Y%m%d%H}"


def seconds_to_next_hour(now: dt.datetime | None = None) -> int:
    """When a reporter's hourly filing count starts again."""
    now = now or utcnow()
    return 3600 - (now.minute * 60 + now.second)


def _count_filing(new: NewReport, at: dt.datetime) -> Callable[[Pipeline], None]:
    """Count this report against its reporter's hour, in the enqueue's pipeline (INCR, EXPIRE
    last: the caller reads the INCR's answer), and for /metrics (docs/metrics.md)."""

    def count(pipe: Pipeline) -> None:
        telemetry.count_in(pipe, "reports", channel=new.source, category=new.category)
        telemetry.observe_request_in(pipe, "intake_seconds")  # request start → queued
        key = filing_count_key(new.reporter_id, at)
        pipe.incr(key)
        pipe.expire(key, 2 * 3600)

    return count


def _opened(doc: dict[str, Any]) -> dict[str, Any]:
    """The stored document with its encrypted details readable again."""
    details = doc.get("details")
    if isinstance(details, str) and is_encrypted(details):
        doc = {**doc, "details": keyring().decrypt(details, context=DETAILS_CONTEXT)}
    return doc


def _location(new: NewReport) -> dict[str, object] | None:
    if new.lat is not None and new.lon is not None:
        lat, lon = to_wgs84(new.lat, new.lon, new.datum)
        precision = PRECISION_GPS_M if new.accuracy_m is None else new.accuracy_m
        point: dict[str, object] = {"lat": lat, "lon": lon, "datum": new.datum, "method": "gps",
                                    "precision_m": precision}
        if new.grid_code is not None:
            point["grid_code"] = new.grid_code
        return point
    if new.grid_code is not None:
        return {"method": "grid_code", "grid_code": new.grid_code}
    return None


def file_app_report(principal: Principal, data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A report from the app as the API validated it; refused 422 for an unknown grid code."""
    point = data["location"]
    grid_code = data["grid_code"]
    if grid_code is not None and grid_code not in gridcache.current().cells:
        raise Refusal(422, f"unknown grid code {grid_code}",
                      errors={"json": {"grid_code": [f"no grid cell has code {grid_code}"]}})
    assert principal.subject_id is not None  # require("reporter") let only reporters in
    return file_report(NewReport(
        reporter_id=principal.subject_id,
        client_id=data["client_id"],
        category=data["category"],
        details=data["details"],
        source="app",
        lat=point["lat"] if point else None,
        lon=point["lon"] if point else None,
        datum=point["datum"] if point else "wgs84",
        accuracy_m=point["accuracy_m"] if point else None,
        grid_code=grid_code,
    ))


def own_report(principal: Principal, code: str) -> Report:
    """One of the caller's own reports; anyone else's is refused like a missing one (404)."""
    report = Report.objects(code=code.upper()).first()
    # Someone else's report answers exactly like a missing one: codes are not an oracle.
    if report is None or str(report.reporter_id) != principal.subject_id:
        raise Refusal(404, f"no report {code.upper()} of yours")
    return report
