"""Mandated units (强制报告责任单位): enrol, change, deactivate, reactivate, list.

A unit stands in one grid cell, and its county is that cell's. Deactivating a
unit keeps its reporters' link to it (the duty figures of past years still
count them); a deactivated unit takes no new reporters.
"""

from __future__ import annotations

from typing import Any

from mongoengine.errors import NotUniqueError
from mongoengine.queryset import QuerySet

from gateway.enrolment.checks import Problems, Reach, audit_change
from gateway.errors import Refusal
from gateway.records.units import UNIT_TYPES, Unit
from grid.documents import GridCell, utcnow

CODE_MAX = 40
FIELDS = ("code", "name", "type", "county_code", "cell_code", "active")


def view(unit: Unit) -> dict[str, Any]:
    return {name: getattr(unit, name) for name in FIELDS}


def get_unit(reach: Reach, code: str) -> Unit:
    found = Unit.objects(code=code).first()
    if found is None or not reach.covers(found.county_code):
        raise Refusal(404, f"no unit {code} in your county")
    return found


def list_units(reach: Reach, filters: dict[str, Any]) -> QuerySet:
    """Units in reach, by county, cell, type and active (the county+type index)."""
    query: dict[str, Any] = {}
    county = reach.check_filter(filters.get("county"))
    if county:
        query["county_code"] = county
    if filters.get("type"):
        query["type"] = filters["type"]
    if filters.get("cell"):
        query["cell_code"] = filters["cell"]
    if filters.get("active") is True:
        query["active__ne"] = False
    elif filters.get("active") is False:
        query["active"] = False
    return Unit.objects(**query).order_by("county_code", "type", "code")


def _changes(reach: Reach, data: dict[str, Any], creating: bool) -> dict[str, Any]:
    problems = Problems()
    out: dict[str, Any] = {}
    if creating:
        problems.text("code", data.get("code"), required=True, max_length=CODE_MAX)
        out["code"] = (data.get("code") or "").strip()
    if creating or "name" in data:
        problems.text("name", data.get("name"), required=True)
        out["name"] = (data.get("name") or "").strip()
    if creating or "type" in data:
        if not data.get("type"):
            problems.add("type", "required", "must not be empty")
        problems.choice("type", data.get("type") or None, UNIT_TYPES, "unknown_type")
        out["type"] = data.get("type")
    if creating or "cell_code" in data:
        code = data.get("cell_code")
        cell = GridCell.objects(code=code).only("county_code").first() if code else None
        if not code:
            problems.add("cell_code", "required", "the grid cell the unit stands in")
        elif cell is None or not reach.covers(cell.county_code):
            problems.add("cell_code", "unknown_cell", f"no grid cell {code} in your county")
        else:
            out["cell_code"], out["county_code"] = code, cell.county_code
    problems.raise_any()
    return out


def enrol_unit(reach: Reach, data: dict[str, Any]) -> Unit:
    values = _changes(reach, data, creating=True)
    now = utcnow()
    try:
        unit = Unit(**values, active=True, created_at=now, updated_at=now).save(
            force_insert=True)
    except NotUniqueError as exc:
        raise Refusal(409, f"unit {values['code']} exists already",
                      {"fields": [{"field": "code", "code": "code_taken",
                                   "message": "a unit with this code exists"}]}) from exc
    audit_change(reach, "unit.enrol", f"unit:{unit.code}", None, view(unit))
    return unit


def change_unit(reach: Reach, code: str, data: dict[str, Any]) -> Unit:
    current = get_unit(reach, code)
    values = _changes(reach, data, creating=False)
    if not values:
        return current
    changed = Unit.objects(id=current.id).modify(
        new=True, set__updated_at=utcnow(), **{f"set__{k}": v for k, v in values.items()})
    if changed is None:
        raise Refusal(404, f"no unit {code} in your county")
    audit_change(reach, "unit.change", f"unit:{code}", view(current), view(changed))
    return changed


def set_active(reach: Reach, code: str, active: bool) -> Unit:
    """Deactivate or reactivate a unit; idempotent, audited when it changes."""
    current = get_unit(reach, code)
    guard = {"active__ne": False} if not active else {"active": False}
    changed = Unit.objects(id=current.id, **guard).modify(
        new=True, set__active=active, set__updated_at=utcnow())
    if changed is None:
        return current
    audit_change(reach, f"unit.{'reactivate' if active else 'deactivate'}", f"unit:{code}",
                 view(current), view(changed))
    return changed
