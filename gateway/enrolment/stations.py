"""Police stations (派出所) and county duty desks: enrol, change, deactivate, list.

`safegrid grid import` creates and updates stations from GeoJSON as before;
this is for the ones an administrator keeps by hand. A station is deactivated
only while no grid cell routes to it (409 otherwise: move its cells in the
next grid import first), so no new clue is routed to a station that is gone;
nor transferred to it (gateway/delivery/workflow.py). Its dispatches and
officers are kept. Every change bumps the grid snapshot's version, so every
process sees it.
"""

from __future__ import annotations

from typing import Any

from mongoengine.errors import NotUniqueError
from mongoengine.queryset import QuerySet

from gateway import gridcache
from gateway.enrolment.checks import (
    Problems,
    Reach,
    audit_change,
    set_and_unset,
    taken,
    toggle,
)
from gateway.errors import Refusal
from grid.documents import GridCell, Station, utcnow

CODE_MAX = 32
FIELDS = ("code", "name", "county_code", "county_bureau", "kind", "duty_phone",
          "chief_phone", "active")
KINDS = ("station", "county_desk")


def view(station: Station) -> dict[str, Any]:
    return {name: getattr(station, name) for name in FIELDS}


def get_station(reach: Reach, code: str) -> Station:
    found: Station = reach.find(Station, code, "station")
    return found


def list_stations(reach: Reach, filters: dict[str, Any]) -> QuerySet:
    query = reach.base_query(filters)
    if filters.get("kind"):
        query["kind"] = filters["kind"]
    return Station.objects(**query).order_by("county_code", "code")


def _changes(data: dict[str, Any], creating: bool) -> dict[str, Any]:
    problems = Problems()
    out: dict[str, Any] = {}
    if creating:
        problems.text("code", data.get("code"), required=True, max_length=CODE_MAX)
        out["code"] = (data.get("code") or "").strip()
    if creating or "name" in data:
        problems.text("name", data.get("name"), required=True)
        out["name"] = (data.get("name") or "").strip()
    if "county_bureau" in data:
        problems.text("county_bureau", data["county_bureau"], required=False)
        out["county_bureau"] = data["county_bureau"]
    if "kind" in data:
        problems.choice("kind", data["kind"], KINDS, "unknown_kind")
        out["kind"] = data["kind"]
    for name in ("duty_phone", "chief_phone"):
        if name in data:  # institutional numbers, printed on notices: kept in clear
            out[name] = problems.phone(name, data[name], required=False)
    problems.raise_any()
    return out


def enrol_station(reach: Reach, data: dict[str, Any]) -> Station:
    county = reach.county_for(data.get("county_code"))
    values = _changes(data, creating=True)
    try:
        station = Station(**values, county_code=county, active=True,
                          updated_at=utcnow()).save(force_insert=True)
    except NotUniqueError as exc:
        raise taken("code", f"station {values['code']} exists already") from exc
    gridcache.bump_version()
    audit_change(reach, "station.enrol", f"station:{station.code}", None, view(station))
    return station


def change_station(reach: Reach, code: str, data: dict[str, Any]) -> Station:
    current = get_station(reach, code)
    values = _changes(data, creating=False)
    if not values:
        return current
    changed = Station.objects(id=current.id).modify(new=True, set__updated_at=utcnow(),
                                                    **set_and_unset(values))
    if changed is None:
        raise Refusal(404, f"no station {code} in your county")
    gridcache.bump_version()
    audit_change(reach, "station.change", f"station:{code}", view(current), view(changed))
    return changed


def set_active(reach: Reach, code: str, active: bool) -> Station:
    """Deactivate (only without cells) or reactivate a station; idempotent, audited."""
    current = get_station(reach, code)
    if not active:
        cells = GridCell.objects(station_code=code).count()
        if cells:
            raise Refusal(409, f"station {code} still holds {cells} grid cells: move them to "
                               "another station (grid import) before deactivating it",
                          {"cells": cells})
    changed: Station = toggle(reach, current, active, f"station:{code}", view)
    gridcache.bump_version()
    return changed
