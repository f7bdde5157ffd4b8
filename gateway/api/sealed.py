"""A clue's reports, and breaking the seal on a reporter's identity (破封), per person limited.

What is shown, what is audited first and who is told: gateway/custody/unsealing.py.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from gateway.access.tokens import current_principal, require
from gateway.api.schemas import (
    PlacedLocationSchema,
    StrictSchema,
    UtcDateTime,
    error_responses,
)
from gateway.custody import unsealing

blp = Blueprint("sealed", __name__, description="A clue's reports; sealed reporter identity")


class SealedReportSchema(Schema):
    code = fields.String(required=True)
    category = fields.String(required=True)
    details = fields.String()
    status = fields.String()
    trust = fields.String(allow_none=True)
    source = fields.String()
    cell_code = fields.String(allow_none=True)
    placed_by = fields.String(allow_none=True)
    location = fields.Nested(PlacedLocationSchema, allow_none=True)
    flags = fields.List(fields.String(), metadata={
        "description": "e.g. gps_outside_grid (the reporter's GPS was outside the grid: placed "
                       "by their home cell), gps_grid_code_disagree, gps_imprecise (the fix is "
                       "vaguer than its cell: the cell is approximate), gps_imprecise_grid_code "
                       "(a vague fix gave way to the grid code the reporter named)"})
    created_at = UtcDateTime()
    reporter_role = fields.String(metadata={"description": "role only: the identity is sealed"})
    reporter_organisation_kind = fields.String()


class UnsealInSchema(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(10, 500), metadata={
        "description": "why the reporter's identity is needed; audited and shown to the "
                       "county supervisor"})


class IdentitySchema(Schema):
    report_code = fields.String(required=True)
    name = fields.String()
    phone = fields.String()
    role = fields.String()
    organisation = fields.String(allow_none=True)
    contact = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "an Open311 request's contact fields as its client sent them "
                       "(first_name, last_name, email, phone, device_id, account_id)"})


@blp.route("/dispatches/<string:dispatch_id>/reports")
class DispatchReports(MethodView):
    @require("officer", "supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, SealedReportSchema(many=True))
    def get(self, dispatch_id: str) -> list[dict[str, Any]]:
        """The dispatch's reports with their details; reporters as role and kind only."""
        return unsealing.read_reports(current_principal(), dispatch_id)


# The break-glass limit is counted in gateway/custody/unsealing.py, once per person for
# the API and the console together; /openapi.json documents its 429 (gateway/security.py).


@blp.route("/dispatches/<string:dispatch_id>/unseal")
class Unseal(MethodView):
    @require("officer", "supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 415)
    @blp.arguments(UnsealInSchema)
    @blp.response(200, IdentitySchema(many=True))
    def post(self, data: dict[str, str], dispatch_id: str) -> list[dict[str, Any]]:
        """Break the glass: the reporters' names and phones, with a stated reason (audited)."""
        try:
            return unsealing.unseal(current_principal(), dispatch_id, data["reason"],
                                    current_app.config["SAFEGRID"], request.path)
        except unsealing.TooManyUnseals as over:
            abort(429, message=f"{over.message}; retry after {over.retry_after_s} s",
                  headers={"Retry-After": str(over.retry_after_s)})
            raise  # abort() never returns
