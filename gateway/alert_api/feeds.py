"""The Atom feed of open alerts for CAP consumers, at /cap/alerts.atom: a plain Flask
blueprint outside the OpenAPI document (an Atom feed is no JSON API), like open311/."""

from __future__ import annotations

from flask import Blueprint, Response

from gateway.alerts import cap
from gateway.extensions import public_limit

blp = Blueprint("cap_feeds", __name__, url_prefix="/cap")


@blp.get("/alerts.atom")
@public_limit
def alerts_atom() -> Response:
    """Open alerts, newest first, each linking to its CAP 1.2 document."""
    return Response(cap.atom_feed(), mimetype=cap.ATOM_MIMETYPE,
                    headers={"Cache-Control": "public, max-age=30"})
