"""What the insight endpoints take and answer."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from gateway.fields import StrictSchema
from gateway.insight.counts import LEVELS
from gateway.insight.tables import FORMATS, TABLES
from grid.figures import GRAINS, MAX_DAYS, SUPPRESSED, WITHHELD
from sms.grammar import CATEGORIES, UNCLASSIFIED

H3_RESOLUTIONS = (0, 15)  # what H3 defines

PUBLISHED = {
    "description": "a count as published (docs/insight.md): 0; \"<5\" for 1 to 4; a "
                   "multiple of 5, n, meaning n to n+4; or \"withheld\" where the figure "
                   "would reveal a smaller one",
    "oneOf": [{"type": "integer", "minimum": 0, "multipleOf": 1},
              {"type": "string", "enum": [SUPPRESSED, WITHHELD]}],
}


def Published(**kwargs: object) -> fields.Raw:  # noqa: N802 (a field, named like one)
    """A published count: an integer or one of the two words."""
    return fields.Raw(metadata=PUBLISHED, **kwargs)  # type: ignore[arg-type]


class ScopeQuerySchema(StrictSchema):
    county = fields.String(load_default=None, validate=validate.Regexp(r"^[0-9]{6}$"),
                           metadata={"description": "6-digit county adcode; supervisors and "
                                     "county administrators get their own county"})
    start = fields.Date(load_default=None, metadata={
        "description": "first day, Beijing time; default 30 days before `end`"})
    end = fields.Date(load_default=None, metadata={
        "description": f"the day after the last, Beijing time (exclusive); default "
                       f"tomorrow; at most {MAX_DAYS} days after `start`"})


class CountsQuerySchema(ScopeQuerySchema):
    by = fields.String(load_default="cell", validate=validate.OneOf(LEVELS))
    every = fields.String(load_default="month", validate=validate.OneOf(GRAINS),
                          metadata={"description": "calendar weeks (from Monday) or months, "
                                                   "Beijing time"})
    category = fields.String(load_default=None, validate=validate.OneOf(
        (*CATEGORIES, UNCLASSIFIED)), metadata={"description": "one category; all when "
                                                "absent, with an all-categories row"})


class HotspotQuerySchema(ScopeQuerySchema):
    category = fields.String(load_default=None, validate=validate.OneOf(
        (*CATEGORIES, UNCLASSIFIED)))
    h3_resolution = fields.Integer(load_default=None, validate=validate.Range(*H3_RESOLUTIONS),
                                   metadata={"description": "H3 hexagons of this resolution "
                                             "instead of grid cells"})


class FigureSchema(Schema):
    """What every figure answers with first: the county (null: all) and the period."""

    county = fields.String(allow_none=True)
    start = fields.Date()
    end = fields.Date()


class CountRowSchema(Schema):
    county = fields.String(allow_none=True)
    area = fields.String(allow_none=True, metadata={
        "description": "cell, township or county code; null: reports no cell placed"})
    category = fields.String(allow_none=True, metadata={"description": "null: all categories"})
    period_start = fields.Date(metadata={"description": "the week's Monday or the month's "
                                         "first day, Beijing time"})
    reports = Published()


class CountsSchema(FigureSchema):
    by = fields.String()
    every = fields.String()
    category = fields.String(allow_none=True)
    rows = fields.List(fields.Nested(CountRowSchema))


class HotspotsSchema(Schema):
    """GeoJSON FeatureCollection of grid cells or H3 hexagons with their reports."""

    type = fields.String(metadata={"enum": ["FeatureCollection"]})
    features = fields.List(fields.Dict(), metadata={
        "description": "Polygon features; properties: cell and name, or h3 and cells; "
                       "reports (a published count)"})
    properties = fields.Dict(metadata={
        "description": "county, start, end, category, h3_resolution, unplaced_reports"})


class StationTimesSchema(Schema):
    station = fields.String()
    clues = Published()
    acknowledged = Published()
    ack_p50_s = fields.Integer(allow_none=True, metadata={
        "description": "median seconds to acknowledge, as the upper bound of its bin "
                       "(30, 60, 120 … 604800 s); null under 5 acknowledged"})
    ack_p90_s = fields.Integer(allow_none=True, metadata={"description": "likewise, p90"})
    within_sla_pct = fields.Integer(allow_none=True, metadata={
        "description": "per cent of the acknowledged clues acknowledged within the SLA, in "
                       "steps of 10; null under 10 acknowledged"})
    escalated = Published()
    transferred_in = Published()
    overdue_now = Published()


class ResponseTimesSchema(FigureSchema):
    stations = fields.List(fields.Nested(StationTimesSchema))


class UnitDutySchema(Schema):
    code = fields.String()
    name = fields.String()
    type = fields.String()
    county = fields.String()
    township = fields.String(allow_none=True)
    cell = fields.String()
    reporters = fields.Integer(metadata={"description": "enrolled reporters of the unit"})
    reports = Published()
    reported_in_90_days = fields.Boolean(metadata={
        "description": "filed at least one report in the 90 days up to `end`"})


class SilentUnitSchema(Schema):
    code = fields.String()
    name = fields.String()
    type = fields.String()
    county = fields.String()
    township = fields.String(allow_none=True)


class TypeShareSchema(Schema):
    type = fields.String()
    units = fields.Integer()
    units_reported = fields.Integer(metadata={"description": "units with a report in the "
                                              "period"})
    reported_pct = fields.Integer(allow_none=True)


class TownshipShareSchema(Schema):
    township = fields.String(allow_none=True)
    units = fields.Integer()
    units_reported = fields.Integer()
    reported_pct = fields.Integer(allow_none=True)


class RoleDutySchema(Schema):
    role = fields.String()
    reporters = fields.Integer()
    reporters_reported = fields.Integer()
    reports = Published()


class DutySchema(FigureSchema):
    silent_since = fields.Date(metadata={"description": "units with no report since this "
                                         "day are listed as silent"})
    units = fields.List(fields.Nested(UnitDutySchema))
    silent_units = fields.List(fields.Nested(SilentUnitSchema))
    by_type = fields.List(fields.Nested(TypeShareSchema))
    by_township = fields.List(fields.Nested(TownshipShareSchema))
    by_role = fields.List(fields.Nested(RoleDutySchema))


class TrendsQuerySchema(ScopeQuerySchema):
    by = fields.String(load_default="township", validate=validate.OneOf(LEVELS))
    category = fields.String(load_default=None, validate=validate.OneOf(
        (*CATEGORIES, UNCLASSIFIED)))


class TrendRowSchema(Schema):
    county = fields.String(allow_none=True)
    area = fields.String(allow_none=True)
    category = fields.String(allow_none=True, metadata={"description": "null: all categories"})
    reports = Published()
    previous = Published()
    change_pct = fields.Integer(allow_none=True, metadata={
        "description": "per cent change, in steps of 10; null unless both periods had at "
                       "least 10 reports"})


class TrendsSchema(FigureSchema):
    previous_start = fields.Date(metadata={"description": "the previous period: the same "
                                           "number of days, ending on `start`"})
    by = fields.String()
    category = fields.String(allow_none=True)
    rows = fields.List(fields.Nested(TrendRowSchema))


class ExportQuerySchema(ScopeQuerySchema):
    format = fields.String(load_default="xlsx", validate=validate.OneOf(FORMATS))
    table = fields.String(load_default=None, validate=validate.OneOf(TABLES), metadata={
        "description": "one table; a CSV without it holds counts by township, a workbook "
                       "every table"})
    every = fields.String(load_default="month", validate=validate.OneOf(GRAINS))


class SummaryQuerySchema(StrictSchema):
    county = fields.String(load_default=None, validate=validate.Regexp(r"^[0-9]{6}$"),
                           metadata={"description": "required for a platform operator"})
    month = fields.String(load_default=None, validate=validate.Regexp(
        r"^20[0-9]{2}-(0[1-9]|1[0-2])$"), metadata={
        "description": "YYYY-MM, Beijing time; default the month before this one"})
