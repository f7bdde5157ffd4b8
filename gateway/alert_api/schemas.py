"""What the alert endpoints take and answer."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from gateway.alerts.records import ALERT_STATUSES, SEXES
from gateway.fields import NOT_BLANK, PointSchema, StrictSchema, UtcDateTime
from grid.alerts import MAX_RADIUS_M, MAX_RINGS

# What the OpenAPI document promises a photo link looks like (an https URL with a host
# name); marshmallow's Url validator is the real check, and accepts every such string.
PHOTO_URL_PATTERN = (r"^https://[a-z][a-z0-9]{1,20}(\.[a-z][a-z0-9]{1,20}){1,3}"
                     r"(/[A-Za-z0-9_~-]{0,40}){0,4}$")


class ChildSchema(StrictSchema):
    sex = fields.String(required=True, validate=validate.OneOf(SEXES))
    age_years = fields.Integer(required=True, validate=validate.Range(0, 17))
    height_cm = fields.Integer(load_default=None, validate=validate.Range(30, 200))
    clothing = fields.String(load_default=None, validate=validate.Length(max=60), metadata={
        "description": "what the child wears, as short as the SMS needs (红上衣蓝裤子)"})
    photo_url = fields.Url(load_default=None, schemes={"https"}, validate=validate.Length(
        max=500), metadata={"description": "an access-controlled link; never texted",
                            "pattern": PHOTO_URL_PATTERN})


class RingSchema(StrictSchema):
    radius_km = fields.Float(required=True, allow_nan=False, metadata={
        "description": f"more than 0, at most {MAX_RADIUS_M / 1000:g}"})
    after_min = fields.Integer(required=True, metadata={
        "description": "minutes after issuing; 0 for at once"})


class AlertInSchema(StrictSchema):
    child = fields.Nested(ChildSchema, required=True)
    seen_at = fields.AwareDateTime(required=True, default_timezone=None, metadata={
        "description": "when the child was last seen, with its offset; not in the future, "
                       "at most 72 hours ago"})
    location = fields.Nested(PointSchema, load_default=None)
    grid_code = fields.String(load_default=None, validate=validate.Regexp(r"^\d{9,15}$"))
    place = fields.String(load_default=None, validate=validate.Length(max=40), metadata={
        "description": "where, as the SMS says it (城关车站); located by name when neither a "
                       "location nor a grid code is given"})
    rings = fields.List(fields.Nested(RingSchema), load_default=None, validate=validate.Length(
        max=MAX_RINGS), metadata={"description": "default: 1 km at once, 10 km after 30 min, "
                                                  "100 km after 60 min"})


class AlertUpdateSchema(StrictSchema):
    text = fields.String(required=True, validate=NOT_BLANK)


class AlertCancelSchema(StrictSchema):
    reason = fields.String(required=True, validate=[NOT_BLANK, validate.Length(max=500)])


class AlertRingOutSchema(Schema):
    radius_km = fields.Function(lambda r: r.radius_m / 1000, metadata={"type": "number"})
    after_min = fields.Function(lambda r: r.delay_s // 60, metadata={"type": "integer"})
    due_at = UtcDateTime()
    sent_at = UtcDateTime(allow_none=True)


class AlertLocationSchema(Schema):
    lat = fields.Float()
    lon = fields.Float()
    method = fields.String()
    grid_code = fields.String(allow_none=True)


class AlertChildOutSchema(Schema):
    sex = fields.String()
    age_years = fields.Integer()
    height_cm = fields.Integer(allow_none=True)
    clothing = fields.String(allow_none=True)
    photo_url = fields.String(allow_none=True)


class AlertOutSchema(Schema):
    code = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": list(ALERT_STATUSES)})
    child = fields.Nested(AlertChildOutSchema)
    summary = fields.String(metadata={"description": "the child as the SMS says it"})
    last_seen = fields.Nested(AlertLocationSchema)
    last_seen_place = fields.String(allow_none=True)
    seen_at = UtcDateTime()
    cell_code = fields.String(allow_none=True)
    county_code = fields.String()
    station_code = fields.String(metadata={"description": "the issuing station"})
    rings = fields.List(fields.Nested(AlertRingOutSchema))
    update_text = fields.String(allow_none=True)
    issued_at = UtcDateTime()
    updated_at = UtcDateTime()
    ended_at = UtcDateTime(allow_none=True)


class ActiveAlertSchema(Schema):
    """An open alert as a reporter's app shows it (no photo link, no officer)."""

    code = fields.String(required=True)
    status = fields.String(required=True)
    summary = fields.String()
    last_seen_place = fields.String(allow_none=True)
    seen_at = UtcDateTime()
    update_text = fields.String(allow_none=True)
    issued_at = UtcDateTime()


class CoverageSchema(Schema):
    """GeoJSON FeatureCollection: each cell reached, `swept` or `not_swept`, with counts."""

    type = fields.String(metadata={"enum": ["FeatureCollection"]})
    features = fields.List(fields.Dict(), metadata={
        "description": "Polygon features; properties: code, name, station, state "
                       "(swept | not_swept), texted (recipients texted in the cell)"})
    properties = fields.Dict(metadata={
        "description": "alert, status, reached, swept, not_swept, texted, rings_sent"})
