"""Mandated units (强制报告责任单位), kept by the county's administrators.

The rules live in gateway/enrolment/units.py.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from marshmallow import Schema, fields, validate
from mongoengine.queryset import QuerySet

from gateway.access.tokens import current_principal, require
from gateway.api.dispatches import PagedBlueprint, QuerySetPage
from gateway.api.schemas import StrictSchema, UtcDateTime, error_responses
from gateway.enrolment import units
from gateway.enrolment.checks import Reach
from gateway.records.units import UNIT_TYPES, Unit

blp = PagedBlueprint("units", __name__, description="Mandated units, kept by administrators")


def _reach() -> Reach:
    return Reach.of(current_principal())


class UnitQuerySchema(StrictSchema):
    county = fields.String(validate=validate.Length(6, 6))
    cell = fields.String(validate=validate.Length(1, 15))
    type = fields.String(validate=validate.OneOf(UNIT_TYPES))
    active = fields.Boolean()


class UnitInSchema(StrictSchema):
    code = fields.String(required=True, metadata={
        "description": "e.g. the unified social credit code; unique; at most 40 characters"})
    name = fields.String(required=True)
    type = fields.String(required=True, metadata={"enum": list(UNIT_TYPES)})
    cell_code = fields.String(required=True, metadata={
        "description": "the grid cell it stands in (its county is the unit's)"})


class UnitPatchSchema(StrictSchema):
    name = fields.String()
    type = fields.String(metadata={"enum": list(UNIT_TYPES)})
    cell_code = fields.String()


class UnitOutSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    type = fields.String(required=True)
    county_code = fields.String(required=True)
    cell_code = fields.String(required=True)
    active = fields.Boolean()
    created_at = UtcDateTime(allow_none=True)
    updated_at = UtcDateTime(allow_none=True)


UNIT = UnitOutSchema()


@blp.route("/units")
class Units(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 422)
    @blp.arguments(UnitQuerySchema, location="query")
    @blp.response(200, UnitOutSchema(many=True))
    @blp.paginate(QuerySetPage)
    def get(self, query: dict[str, Any]) -> QuerySet:
        """Units of your county by type, cell and active; paged."""
        return units.list_units(_reach(), query)

    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 409, 415, 422)
    @blp.arguments(UnitInSchema)
    @blp.response(201, UNIT)
    def post(self, data: dict[str, Any]) -> Unit:
        """Enrol a unit (409 code_taken; 422 unknown_cell, unknown_type, too_long…)."""
        return units.enrol_unit(_reach(), data)


@blp.route("/units/<string:code>")
class OneUnit(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, UNIT)
    def get(self, code: str) -> Unit:
        """One unit of your county."""
        return units.get_unit(_reach(), code)

    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 415, 422)
    @blp.arguments(UnitPatchSchema)
    @blp.response(200, UNIT)
    def patch(self, data: dict[str, Any], code: str) -> Unit:
        """Change a unit's name, type or cell (audited)."""
        return units.change_unit(_reach(), code, data)


@blp.route("/units/<string:code>/deactivate")
class DeactivateUnit(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, UNIT)
    def post(self, code: str) -> Unit:
        """Deactivate a unit: it takes no new reporters; its reporters keep the link."""
        return units.set_active(_reach(), code, False)


@blp.route("/units/<string:code>/reactivate")
class ReactivateUnit(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, UNIT)
    def post(self, code: str) -> Unit:
        """Reactivate a unit."""
        return units.set_active(_reach(), code, True)
