"""Marshmallow fields and schemas every web API of SafeGrid shares.

On the top floor, below api/ and the rooms beside it (open311/, alert_api/), so each of
them may use them; gateway/api/schemas.py names them again for the API's blueprints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from geo.datum import DATUMS
from geo.datum import normalise as normalise_datum

F = TypeVar("F", bound=Callable[..., Any])
# Not only whitespace (the workflow strips text, and blank means missing). The class is
# Python's str.strip() whitespace spelled out, so the documented pattern means the same
# in ECMA regexes, whose \s differs (it has U+FEFF and lacks U+001C-U+001F, U+0085).
NOT_BLANK = validate.Regexp(
    r"^[\s\S]*?[^\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
    error="must not be blank",
)


class UtcDateTime(fields.DateTime):
    """Stored naive UTC datetimes, written with their offset (`+00:00`)."""

    def _serialize(self, value: dt.datetime | None, attr: str | None, obj: object,
                   **kwargs: object) -> str | float | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return super()._serialize(value, attr, obj, **kwargs)


def error_responses(blp: Blueprint, *codes: int) -> Callable[[F], F]:
    """Document flask-smorest's error body (`Error`) for each status a view can answer."""

    def decorator(view: F) -> F:
        for code in codes:
            view = blp.alt_response(code, response=HTTPStatus(code).name)(view)
        return view

    return decorator


class StrictSchema(Schema):
    class Meta:
        # Unknown fields are an error: a typo must not silently drop data.
        unknown = "raise"


class Datum(fields.String):
    """A datum name as clients spell it (`GCJ02`, `gcj-02`, `BD09`), loaded canonical."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalise_datum(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class PointSchema(StrictSchema):
    lat = fields.Float(required=True, validate=validate.Range(-90, 90), allow_nan=False)
    lon = fields.Float(required=True, validate=validate.Range(-180, 180), allow_nan=False)
    datum = Datum(
        load_default="wgs84",
        metadata={"enum": list(DATUMS),
                  "description": "wgs84 (GPS), gcj02 (AMap/Tencent) or bd09 (Baidu); any case, "
                                 "with or without - or _ (GCJ-02, gcj_02)"},
    )
    accuracy_m = fields.Float(
        load_default=None, allow_nan=False, validate=validate.Range(min=0, max=1_000_000),
        metadata={"description": "the phone's horizontal accuracy in metres (Android "
                                 "getAccuracy, iOS horizontalAccuracy); a point less precise "
                                 "than its grid cell is not taken as exact"},
    )

