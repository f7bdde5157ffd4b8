"""Intake: store a report durably first, then queue it for routing.

Costs one database round trip for a new report (the insert); a retried
client id costs one more (reading the report it already made).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from bson import ObjectId
from mongoengine.errors import NotUniqueError

from gateway.documents import Location, Report
from gateway.jobs import enqueue_route
from geo.datum import to_wgs84
from grid.rules import rule_for
from sms.grammar import REPORT_CODE_ALPHABET

log = logging.getLogger(__name__)

PRECISION_GPS_M = 30.0


def new_report_code() -> str:
    """`R` + 6 random Crockford base32 characters (about 10⁹ codes)."""
    return "R" + "".join(secrets.choice(REPORT_CODE_ALPHABET) for _ in range(6))


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
    grid_code: str | None = None


def file_report(new: NewReport) -> tuple[Report, bool]:
    """Store `new` (or find the report its client id already made) and queue routing.

    Returns the report and whether it was created now.
    """
    location = _location(new)
    for _ in range(3):
        report = Report(
            code=new_report_code(),
            reporter_id=ObjectId(new.reporter_id),
            client_id=new.client_id,
            category=new.category,
            details=new.details,
            location=location,
            source=new.source,
            priority=rule_for(new.category).priority,
        )
        try:
            report.save(force_insert=True)
        except NotUniqueError:
            existing = Report.objects(
                reporter_id=ObjectId(new.reporter_id), client_id=new.client_id
            ).first()
            if existing is not None:
                return existing, False
            continue  # the random code collided: draw another
        enqueue_route(str(report.id), report.priority)
        return report, True
    raise RuntimeError("could not draw a free report code in 3 tries")


def _location(new: NewReport) -> Location | None:
    if new.lat is not None and new.lon is not None:
        lat, lon = to_wgs84(new.lat, new.lon, new.datum)
        return Location(
            lat=lat, lon=lon, datum=new.datum, method="gps",
            precision_m=PRECISION_GPS_M, grid_code=new.grid_code,
        )
    if new.grid_code is not None:
        return Location(method="grid_code", grid_code=new.grid_code)
    return None
