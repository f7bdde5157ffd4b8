"""Kannel's webhooks: inbound messages (sms-service get-url/post-url) and delivery reports.

These answer Kannel, not people: a short plain-text body, and an HTTP status
Kannel can act on (403 wrong secret; 200 stored; 202 stored but unreadable,
for a person). The raw message is stored before the answer; everything else
happens in RQ jobs.
"""

from __future__ import annotations

import logging

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from gateway.delivery.outbound_sms import record_delivery
from gateway.extensions import webhook_limit
from gateway.intake.inbound_sms import receive, store_unreadable
from gateway.settings import Settings
from sms.providers import InboundError
from sms.providers.kannel import parse_dlr, parse_inbound, secret_matches

log = logging.getLogger(__name__)

blp = Blueprint("sms", __name__, description="SMS gateway webhooks (Kannel)")
# Per client IP: Kannel is one address, so a flood means a leaked secret (docs/security.md).
webhook_limit(blp)

# Kannel sends an sms-service's answer body back to the sender as an SMS unless
# told otherwise; SafeGrid replies through sendsms, so the body stays empty.
EMPTY = ""


def _strings(where: str, described: dict[str, str]) -> list[dict[str, object]]:
    """OpenAPI parameters: optional strings, as Kannel fills them (any value is taken)."""
    return [{"name": name, "in": where, "required": False, "schema": {"type": "string"},
             "description": text} for name, text in described.items()]


# What the webhooks take and answer, for /openapi.json. Everything is optional and a
# string: a message Kannel hands over is never refused, only stored unread (202).
_INBOUND_QUERY = _strings("query", {
    "id": "Kannel's message id (%I): the idempotency key",
    "from": "the sender's number (%p)",
    "to": "the number it was sent to (%P)",
    "hex": "the message bytes as hex (%e)",
    "coding": "0 GSM-7, 1 8-bit, 2 UCS-2 (%c)",
    "charset": "UTF-8, UTF-16BE or 8-BIT (%C)",
    "ts": "time received, UNIX seconds (%T)",
    "smsc": "smsc-id it came in on (%i)",
    "text": "the text, for GSM-7 messages sent without hex (%a)",
})
_INBOUND_HEADERS = _strings("header", {
    "X-Kannel-From": "the sender's number (post-url)",
    "X-Kannel-To": "the number it was sent to (post-url)",
    "X-Kannel-Time": "time received (post-url)",
    "X-Kannel-SMSC": "smsc-id it came in on (post-url)",
    "X-Kannel-Coding": "0 GSM-7, 1 8-bit, 2 UCS-2 (post-url)",
})
_DLR_QUERY = _strings("query", {
    "ref": "SafeGrid's id of the message, from the dlr-url",
    "status": "1 delivered, 2 failed, 4 buffered, 8 accepted by the SMSC, 16 rejected (%d)",
    "smsc_id": "the SMSC's id of the message (%F)",
    "answer": "the SMSC's answer (%A)",
    "ts": "time of the report, UNIX seconds (%T)",
})
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_INBOUND_RESPONSES = {
    "200": {"description": "stored (a retry of a stored message too); empty body",
            "content": _TEXT},
    "202": {"description": "stored unread, for a person: `stored unread: <reason>`",
            "content": _TEXT},
}
_DLR_RESPONSES = {
    "200": {"description": "recorded; empty body", "content": _TEXT},
    "202": {"description": "unreadable, ignored: `ignored: <reason>`", "content": _TEXT},
}
_SECRET: list[dict[str, list[str]]] = [{"kannelSecret": []}]


def _params() -> dict[str, str]:
    """Query, form and X-Kannel-* headers (lower-cased) in one mapping."""
    params = {k: v for k, v in request.args.items()}
    params.update({k: v for k, v in request.form.items()})
    params.update({k.lower(): v for k, v in request.headers.items()
                   if k.lower().startswith("x-kannel-")})
    return params


def _check_secret(params: dict[str, str]) -> None:
    config: Settings = current_app.config["SAFEGRID"]
    if not secret_matches(params, config.sms_webhook_secret):
        abort(403, message="wrong or missing secret")


@blp.route("/sms/inbound/kannel", methods=["GET", "POST"])
class KannelInbound(MethodView):
    def _handle(self) -> Response:
        params = _params()
        _check_secret(params)
        body = request.get_data() if request.method == "POST" else None
        try:
            sms = parse_inbound(params, body, request.content_type)
        except InboundError as exc:
            # Stored for a person to read. 202, not 4xx: smsbox retries any other
            # answer for up to an hour, and a retry cannot make it readable.
            store_unreadable("kannel", params, exc.reason)
            return Response(f"stored unread: {exc}", status=202, mimetype="text/plain")
        receive("kannel", sms)
        # A retry of a message already stored is answered the same: Kannel may stop.
        return Response(EMPTY, status=200, mimetype="text/plain")

    @blp.doc(description="Kannel sms-service get-url: one mobile-originated message.",
             security=_SECRET, parameters=_INBOUND_QUERY, responses=_INBOUND_RESPONSES)
    @blp.alt_response(403, response="FORBIDDEN")
    def get(self) -> Response:
        """Receive one SMS from Kannel (stored before the answer)."""
        return self._handle()

    @blp.doc(description="Kannel sms-service post-url: the text is the body.",
             security=_SECRET, parameters=_INBOUND_QUERY[:1] + _INBOUND_HEADERS,
             requestBody={"required": False, "content": {
                 "text/plain": {"schema": {"type": "string"}},
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
             }},
             responses=_INBOUND_RESPONSES)
    @blp.alt_response(403, response="FORBIDDEN")
    def post(self) -> Response:
        """Receive one SMS from Kannel, posted (stored before the answer)."""
        return self._handle()


@blp.route("/sms/dlr/kannel", methods=["GET", "POST"])
class KannelDeliveryReport(MethodView):
    def _handle(self) -> Response:
        params = _params()
        _check_secret(params)
        try:
            report = parse_dlr(params)
        except InboundError as exc:
            log.warning("unreadable delivery report: %s", exc)
            return Response(f"ignored: {exc}", status=202, mimetype="text/plain")
        record_delivery(report)
        return Response(EMPTY, status=200, mimetype="text/plain")

    @blp.doc(description="Kannel dlr-url callback for a message SafeGrid sent.",
             security=_SECRET, parameters=_DLR_QUERY, responses=_DLR_RESPONSES)
    @blp.alt_response(403, response="FORBIDDEN")
    def get(self) -> Response:
        """Record a delivery report."""
        return self._handle()

    @blp.doc(description="Kannel dlr-url callback, posted.",
             security=_SECRET, parameters=_DLR_QUERY, responses=_DLR_RESPONSES)
    @blp.alt_response(403, response="FORBIDDEN")
    def post(self) -> Response:
        """Record a delivery report, posted."""
        return self._handle()
