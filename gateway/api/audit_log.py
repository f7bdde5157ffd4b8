"""The audit trail, for auditors only (read-only; `safegrid audit verify` checks the chain)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gateway.access.tokens import require
from gateway.api.schemas import StrictSchema, UtcDateTime, error_responses
from gateway.privacy import audit
from gateway.privacy.audit import AuditEntry

blp = Blueprint("audit", __name__, description="The hash-chained audit trail (auditors)")


class AuditQuerySchema(StrictSchema):
    # MongoDB integers are signed 64-bit: a larger number is a 422, not a 500.
    after_seq = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**63 - 1))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    subject = fields.String(validate=validate.Length(1, 100))


class AuditEntrySchema(Schema):
    seq = fields.Integer(required=True)
    at = UtcDateTime(required=True)
    actor = fields.String()
    action = fields.String()
    subject = fields.String()
    details = fields.Dict()
    prev_hash = fields.String()
    hash = fields.String()


@blp.route("/audit")
class AuditTrail(MethodView):
    @require("auditor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403)
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditEntrySchema(many=True))
    def get(self, query: dict[str, Any]) -> list[AuditEntry]:
        """Entries after `after_seq`, in order; optionally for one subject."""
        return audit.entries(query["after_seq"], query["limit"], query.get("subject"))
