"""Marshmallow schemas shared by the API blueprints."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from gateway.fields import NOT_BLANK as NOT_BLANK
from gateway.fields import PointSchema as PointSchema
from gateway.fields import StrictSchema as StrictSchema
from gateway.fields import UtcDateTime as UtcDateTime
from gateway.fields import error_responses as error_responses
from gateway.privacy.crypto import unseal
from gateway.privacy.genetic import refusal
from gateway.records.reports import DISPATCH_TEXT_CONTEXT
from grid.documents import DISPATCH_STATUSES
from grid.lifecycle import OUTCOMES
from sms import replies
from sms.grammar import CATEGORIES, UNCLASSIFIED

GRID_CODE = re.compile(r"^\d{9,15}$")


def null_not_any_object(self: object, field: fields.Field, ret: dict[str, Any],
                        **_: object) -> dict[str, Any]:
    """apispec attribute function: a nullable Nested field is its schema or null.

    For OpenAPI 3.0 apispec writes `anyOf: [{type: object, nullable: true}, $ref]`,
    whose first branch admits any object ({} included, which the API refuses).
    `enum: [null]` narrows that branch to null (OpenAPI 3.0.3's spelling of "null").
    """
    any_of = ret.get("anyOf")
    if not isinstance(field, fields.Nested) or not field.allow_none or not any_of:
        return {}
    null_only = {"type": "object", "nullable": True, "enum": [None]}
    return {"anyOf": [null_only if branch == {"type": "object", "nullable": True} else branch
                      for branch in any_of]}


class ReportInSchema(StrictSchema):
    client_id = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9_.:-]{8,64}$",
                                 error="client_id must be 8-64 letters, digits or _ . : -"),
        metadata={"description": "made by the app; a retry with it returns the same report"},
    )
    category = fields.String(required=True, validate=validate.OneOf((*CATEGORIES, UNCLASSIFIED)))
    details = fields.String(load_default="", validate=validate.Length(max=4000))
    location = fields.Nested(PointSchema, load_default=None)
    grid_code = fields.String(
        load_default=None,
        # Checked in check_grid_code (after the hyphens go); the pattern documents it.
        metadata={"description": "9-15 digits; hyphens are ignored",
                  "pattern": r"^-*(?:[0-9]-*){9,15}$"},
    )

    @pre_load
    def refuse_genetic_data(self, data: object, **_: object) -> object:
        if isinstance(data, dict) and (why := refusal(data)):
            raise ValidationError(why, "_schema")
        return data

    @pre_load
    def strip_grid_code_hyphens(self, data: object, **_: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("grid_code"), str):
            data = {**data, "grid_code": data["grid_code"].replace("-", "").strip()}
        return data

    @validates_schema
    def check_grid_code(self, data: dict[str, object], **_: object) -> None:
        code = data.get("grid_code")
        if code is not None and not GRID_CODE.match(str(code)):
            raise ValidationError("grid_code must be 9 to 15 digits", "grid_code")


class LocationOutSchema(Schema):
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)
    method = fields.String(allow_none=True)
    precision_m = fields.Float(allow_none=True)
    grid_code = fields.String(allow_none=True)


class PlacedLocationSchema(Schema):
    """Where a report was placed and how sure that is, as an officer working it sees it."""

    lat = fields.Float(allow_none=True, metadata={
        "description": "WGS-84; only for officers of the station working the clue"})
    lon = fields.Float(allow_none=True, metadata={
        "description": "WGS-84; only for officers of the station working the clue"})
    datum = fields.String(allow_none=True, metadata={"description": "as the reporter sent it"})
    method = fields.String(allow_none=True, metadata={
        "description": "gps, grid_code, gazetteer, geocoder or reporter_home_cell"})
    precision_m = fields.Float(allow_none=True)
    label = fields.String(allow_none=True, metadata={
        "description": "the place name that placed it"})
    candidates = fields.List(fields.String(), metadata={
        "description": "other places of the same name"})
    grid_code = fields.String(allow_none=True, metadata={"description": "as the reporter gave it"})


class ReportOutSchema(Schema):
    code = fields.String(required=True)
    client_id = fields.String(required=True)
    category = fields.String(required=True)
    details = fields.String()
    status = fields.String(required=True)
    source = fields.String()
    priority = fields.String(allow_none=True)
    location = fields.Nested(LocationOutSchema, allow_none=True)
    cell_code = fields.String(allow_none=True)
    station_code = fields.String(allow_none=True)
    created_at = UtcDateTime(required=True)
    routed_at = UtcDateTime(allow_none=True)
    slow_down = fields.Boolean(metadata={
        "description": "only on a new report, true when its reporter filed more than "
                       "SAFEGRID_REPORTS_PER_REPORTER_HOUR this hour: the report is stored and "
                       "routed, and the app should wait Retry-After seconds before the next"})
    location_note = fields.Function(
        lambda report: replies.location_note(list(
            (report.get("flags") if isinstance(report, dict) else report.flags) or [])),
        metadata={"type": "string", "nullable": True,
                  "description": "set when the report was not placed where the reporter "
                                 "said (e.g. a GPS point outside the grid): how it was placed"})


class DispatchQuerySchema(StrictSchema):
    status = fields.String(validate=validate.OneOf(DISPATCH_STATUSES))
    priority = fields.String(validate=validate.OneOf(("critical", "urgent", "routine")))
    overdue = fields.Boolean(metadata={"description": "only dispatches past their deadline "
                                                      "and still waiting"})


class SealedText(fields.String):
    """Text stored sealed (gateway/privacy/crypto.py), shown in clear to whoever may see it."""

    def __init__(self, context: str, **kwargs: Any) -> None:
        self.context = context
        super().__init__(**kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            value = unseal(value, context=self.context)
        return super()._serialize(value, attr, obj, **kwargs)


class NoteOutSchema(Schema):
    text = SealedText(DISPATCH_TEXT_CONTEXT)
    by = fields.String(allow_none=True)
    station = fields.String(allow_none=True)
    at = UtcDateTime()


class TransferInSchema(StrictSchema):
    to_station = fields.String(required=True, validate=validate.Length(1, 32))
    reason = fields.String(required=True, validate=(validate.Length(1, 500), NOT_BLANK))


class ReasonInSchema(StrictSchema):
    reason = fields.String(required=True, validate=(validate.Length(1, 500), NOT_BLANK))


class NoteInSchema(StrictSchema):
    text = fields.String(required=True, validate=(validate.Length(1, 2000), NOT_BLANK))


class CloseInSchema(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    reason = fields.String(load_default=None, validate=validate.Length(max=500))


class UnlinkInSchema(StrictSchema):
    report = fields.String(required=True, validate=validate.Length(1, 16), metadata={
        "description": "the code of the report to take out of the clue"})
    reason = fields.String(required=True, validate=(validate.Length(1, 500), NOT_BLANK))


class DispatchOutSchema(Schema):
    id = fields.String(required=True)
    report_code = fields.String(required=True)
    report_count = fields.Integer(metadata={
        "description": "how many reports of the linked case this station works; "
                       "GET /dispatches/{id}/reports lists them"})
    case_id = fields.String(allow_none=True)
    station_code = fields.String(required=True)
    priority = fields.String(required=True)
    status = fields.String(required=True)
    category = fields.String(required=True)
    cell_code = fields.String(allow_none=True)
    cell_name = fields.String(allow_none=True)
    flags = fields.List(fields.String())
    reported_at = UtcDateTime(required=True)
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(allow_none=True, metadata={
        "description": "its latest news: when it was made, or when a report last joined it"})
    delivered_at = UtcDateTime(allow_none=True)
    acknowledged_at = UtcDateTime(allow_none=True)
    acknowledged_by = fields.String(allow_none=True)
    ack_deadline = UtcDateTime(allow_none=True)
    escalation_level = fields.Integer()
    transfer_to = fields.String(allow_none=True)
    transfer_reason = SealedText(DISPATCH_TEXT_CONTEXT, allow_none=True)
    transfer_rejection_reason = SealedText(DISPATCH_TEXT_CONTEXT, allow_none=True)
    transferred_from = fields.String(allow_none=True)
    transfer_answer_by = UtcDateTime(allow_none=True, metadata={
        "description": "a pending transfer: by when the receiving station should answer; "
                       "the clue's ack_deadline keeps running meanwhile"})
    outcome = fields.String(allow_none=True)
    duplicate_of = fields.String(allow_none=True, metadata={
        "description": "closed because its case was closed at this dispatch"})
    outcome_reason = SealedText(DISPATCH_TEXT_CONTEXT, allow_none=True)
    closed_at = UtcDateTime(allow_none=True)
    notes = fields.List(fields.Nested(NoteOutSchema))


class UnlinkOutSchema(Schema):
    dispatch = fields.Nested(DispatchOutSchema, required=True, metadata={
        "description": "the clue, without the report"})
    new_dispatch = fields.Nested(DispatchOutSchema, required=True, metadata={
        "description": "the report's own clue at the same station, its deadline counted "
                       "from when the report was first routed"})
