"""Mandated units (强制报告责任单位): enrol, change, deactivate, reactivate, list.

A unit stands in one grid cell, and its county is that cell's. Deactivating a
unit keeps its reporters' link to it (the duty figures of past years still
count them); a deactivated unit takes no new reporters.
"""

from __future__ import annotations

from typing import Any

from mongoengine.errors import NotUniqueError
from mongoengine.queryset import QuerySet

from gateway.enrolment.checks import (
    Problems,
    Reach,
    audit_change,
    taken,
    toggle,
)
from gateway.errors import Refusal
from gateway.records.units import UNIT_TYPES, Unit
from grid.documents import GridCell, utcnow

CODE_MAX = 40
FIELDS = ("code", "name", "type", "county_code", "cell_code", "active")


def view(unit: Unit) -> dict[str, Any]:
    return {name: getattr(unit, name) for name in FIELDS}


def get_unit(reach: Reach, code: str) -> Unit:
    found: Unit = reach.find(Unit, code, "unit")
    return found


def list_units(reach: Reach, filters: dict[str, Any]) -> QuerySet:
    """Units in reach, by county, cell, type and active (the county+type index)."""
    query = reach.base_query(filters)
    if filters.get("type"):
        query["type"] = filters["type"]
    if filters.get("cell"):
        query["cell_code"] = filters["cell"]
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
        problems.choice("type", data.get("type"), UNIT_TYPES, "unknown_type", required=True)
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
        raise taken("code", f"unit {values['code']} exists already") from exc
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
    changed: Unit = toggle(reach, current, active, f"unit:{code}", view)
    return changed
