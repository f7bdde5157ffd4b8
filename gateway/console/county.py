"""The county supervisor's page (县局督导): overdue clues, escalations, each station's
open count, and the missing-child alerts the county issued, with their coverage.

The insight figures (the analytics issue) get a marked place on the page, filled
when that API exists; nothing here computes them.
"""

from __future__ import annotations

from typing import Any

from gateway import gridcache
from gateway.console.site import session
from gateway.delivery import inbox
from grid.documents import Dispatch
from grid.escalation import OVERDUE_STATES


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


def insight_figures(county: str) -> dict[str, Any] | None:
    """INSIGHT FIGURES — the place for the analytics issue's figures (研判数据).

    Another piece of work is building the analytics API; once it lands, read the
    county's figures from it here (a direct call into its room, never HTTP) and
    county.html shows them in its `id="insight"` section. Until then: None, and the
    section says the figures are coming. Nothing is computed here.
    """
    return None


def county_context() -> dict[str, Any]:
    county = session().county_code or ""
    return {"county": county, "insight": insight_figures(county),
            "overdue_list": list(inbox.county_overdue(session().principal, county).limit(100)),
            "escalated": escalations(county), "counts": open_counts(county)}
