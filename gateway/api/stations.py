"""Police stations and county duty desks, kept by the county's administrators.

`safegrid grid import` still creates stations from GeoJSON; the rules for these
endpoints live in gateway/enrolment/stations.py. A station's inbox is in
gateway/api/dispatches.py.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from marshmallow import Schema, fields, validate
from mongoengine.queryset import QuerySet

from gateway.access.tokens import current_principal, require
from gateway.api.dispatches import PagedBlueprint, QuerySetPage
from gateway.api.schemas import StrictSchema, UtcDateTime, error_responses
from gateway.enrolment import stations
from gateway.enrolment.checks import Reach
from grid.documents import Station

blp = PagedBlueprint("stations", __name__,
                     description="Police stations, kept by administrators")


def _reach() -> Reach:
    return Reach.of(current_principal())


class StationQuerySchema(StrictSchema):
    county = fields.String(validate=validate.Length(6, 6))
    kind = fields.String(validate=validate.OneOf(stations.KINDS))
    active = fields.Boolean()


class StationPatchSchema(StrictSchema):
    name = fields.String()
    county_bureau = fields.String(allow_none=True)
    kind = fields.String(metadata={"enum": list(stations.KINDS)})
    duty_phone = fields.String(allow_none=True, metadata={
        "description": "the duty officer's mobile, texted new clues"})
    chief_phone = fields.String(allow_none=True, metadata={
        "description": "the chief's (所长) mobile, texted escalations"})


class StationInSchema(StationPatchSchema):
    code = fields.String(required=True, metadata={"description": "unique; at most 32 characters"})
    name = fields.String(required=True)
    county_code = fields.String(metadata={
        "description": "6-digit adcode; an admin of one county may leave it out"})


class StationOutSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    county_code = fields.String(required=True)
    county_bureau = fields.String(allow_none=True)
    kind = fields.String()
    duty_phone = fields.String(allow_none=True)
    chief_phone = fields.String(allow_none=True)
    active = fields.Boolean()
    updated_at = UtcDateTime(allow_none=True)


STATION = StationOutSchema()


@blp.route("/stations")
class Stations(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 422)
    @blp.arguments(StationQuerySchema, location="query")
    @blp.response(200, StationOutSchema(many=True))
    @blp.paginate(QuerySetPage)
    def get(self, query: dict[str, Any]) -> QuerySet:
        """Stations of your county; paged."""
        return stations.list_stations(_reach(), query)

    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 409, 415, 422)
    @blp.arguments(StationInSchema)
    @blp.response(201, STATION)
    def post(self, data: dict[str, Any]) -> Station:
        """Add a station (cells are assigned by the grid import)."""
        return stations.enrol_station(_reach(), data)


@blp.route("/stations/<string:code>")
class OneStation(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, STATION)
    def get(self, code: str) -> Station:
        """One station of your county."""
        return stations.get_station(_reach(), code)

    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 415, 422)
    @blp.arguments(StationPatchSchema)
    @blp.response(200, STATION)
    def patch(self, data: dict[str, Any], code: str) -> Station:
        """Change a station's name, bureau, kind or duty and chief phones (audited)."""
        return stations.change_station(_reach(), code, data)


@blp.route("/stations/<string:code>/deactivate")
class DeactivateStation(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409)
    @blp.response(200, STATION)
    def post(self, code: str) -> Station:
        """Deactivate a station that holds no grid cells (409 while it does)."""
        return stations.set_active(_reach(), code, False)


@blp.route("/stations/<string:code>/reactivate")
class ReactivateStation(MethodView):
    @require("admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, STATION)
    def post(self, code: str) -> Station:
        """Reactivate a station."""
        return stations.set_active(_reach(), code, True)
