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

from gateway.extensions import webhook_limit
from gateway.settings import Settings
from gateway.sms_inbound import receive, store_unreadable
from gateway.sms_outbound import record_delivery
from sms.providers import InboundError
from sms.providers.kannel import parse_dlr, parse_inbound, secret_matches

log = logging.getLogger(__name__)

blp = Blueprint("sms", __name__, description="SMS gateway webhooks (Kannel)")
# Per client IP: Kannel is one address, so a flood means a leaked secret (docs/security.md).
webhook_limit(blp)

# Kannel sends an sms-service's answer body back to the sender as an SMS unless
# told otherwise; SafeGrid replies through sendsms, so the body stays empty.
EMPTY = ""


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

    @blp.doc(description="Kannel sms-service get-url: one mobile-originated message.")
    def get(self) -> Response:
        """Receive one SMS from Kannel (stored before the answer)."""
        return self._handle()

    @blp.doc(description="Kannel sms-service post-url: the text is the body.")
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

    @blp.doc(description="Kannel dlr-url callback for a message SafeGrid sent.")
    def get(self) -> Response:
        """Record a delivery report."""
        return self._handle()

    @blp.doc(description="Kannel dlr-url callback, posted.")
    def post(self) -> Response:
        """Record a delivery report, posted."""
        return self._handle()
