"""Legal hold (司法保全) of a report, set or lifted by a supervisor of its county.

The rule and its audit live in gateway/custody/legal_hold.py.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gateway.access.tokens import current_principal, require
from gateway.api.schemas import NOT_BLANK, StrictSchema, error_responses
from gateway.custody.legal_hold import hold_in_county

blp = Blueprint("legal_hold", __name__, description="Keeping reports from anonymisation")


class HoldInSchema(StrictSchema):
    hold = fields.Boolean(required=True, metadata={"description": "true sets, false lifts"})
    reason = fields.String(required=True, validate=(validate.Length(1, 500), NOT_BLANK),
                           metadata={"description": "why (audited), e.g. a case number"})


class HoldOutSchema(Schema):
    report_code = fields.String(required=True)
    legal_hold = fields.Boolean(required=True)


@blp.route("/reports/<string:code>/legal-hold")
class LegalHold(MethodView):
    @require("supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409, 415)
    @blp.arguments(HoldInSchema)
    @blp.response(200, HoldOutSchema)
    def put(self, data: dict[str, Any], code: str) -> dict[str, Any]:
        """Set or lift a report's legal hold (supervisors of its county; audited)."""
        code = hold_in_county(current_principal(), code, data["hold"], data["reason"])
        return {"report_code": code, "legal_hold": data["hold"]}
