"""Issuing and ending a missing-child alert (寻人) from the supervisor's page or the county
desk's alert page, and its live coverage for the map: the same functions as the alert API
(gateway/alerts/), the form checked by the API's own schema, so the console can issue
nothing the API would refuse.

Who may is the API's rule (`issuing.issuer`): the county's supervisor and the officers of
its county desk (刑侦值班). Other officers get a 403 page; a supervisor keeps the alerts on
the county page, a desk officer has them on /console/alerts.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from flask import g, redirect, request, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from gateway import gridcache
from gateway.alert_api.schemas import AlertInSchema
from gateway.alerts import coverage, issuing
from gateway.alerts.records import OPEN_STATUSES, Alert
from gateway.console import words
from gateway.console.county import county_context
from gateway.console.site import blp, config, page, page_error, session, signed_in
from gateway.console.station import overdue
from gateway.console.words import N_
from gateway.errors import Refusal

ALERT_CODE = re.compile(r"^\d{6}$")
FIELD_MAX = 200


def _coverage_counts(alerts: list[Alert]) -> dict[str, dict[str, Any]]:
    """Reached, swept and texted counts of each open alert (the coverage the map draws)."""
    return {a.code: coverage.coverage(session().principal, a.code)["properties"]
            for a in alerts if a.status in OPEN_STATUSES}


ISSUERS = ("supervisor", "officer")  # officers of the county desk only: _issuer_county


def _issuer_county() -> str | None:
    """The county the logged-in person issues alerts for (the API's rule), None if they may
    not. A supervisor of a county without a desk station still sees the page; issuing
    there is refused by the room, with its reason."""
    try:
        return issuing.issuer(session().principal, gridcache.current()).county_code
    except Refusal as refused:
        if refused.status == 409 and session().role == "supervisor":
            return session().county_code
        return None


def _not_an_issuer() -> Response:
    return page_error(403, N_("只有督导员和县局刑侦值班民警可以发布和结束寻人协查。"))


def _alerts_context() -> dict[str, Any]:
    """The county's alerts with their coverage, for the person's county as an issuer."""
    county = _issuer_county() or session().county_code or ""
    alerts = list(Alert.objects(county_code=county).order_by("-issued_at").limit(20))
    return {"alerts": alerts, "covered": _coverage_counts(alerts), "sexes": words.SEXES,
            "county": county}


def _county_page(status: int = 200, **extra: Any) -> Response:
    return page("county.html", status, overdue=overdue,
                **{**county_context(), **_alerts_context()}, **extra)


def _alert_page(status: int = 200, **extra: Any) -> Response:
    """Where the person works alerts: the county page (supervisor), the alert page (desk)."""
    if session().role == "supervisor":
        return _county_page(status, **extra)
    return page("alerts.html", status, **_alerts_context(), **extra)


def _back(done: str, anchor: str = "") -> Response:
    target = "console.county" if session().role == "supervisor" else "console.alerts_page"
    return redirect(url_for(target, done=done) + anchor, code=303)


def may_issue_alerts() -> bool:
    """For the menu: may the logged-in person reach the alert page."""
    return getattr(g, "console_session", None) is not None and _issuer_county() is not None


@blp.get("/county")
@signed_in("supervisor")
def county() -> Response:
    """The supervisor's page: overdue, escalations, stations, alerts, the insight figures."""
    return _county_page(done=request.args.get("done"))


@blp.get("/alerts")
@signed_in(*ISSUERS)
def alerts_page() -> Response:
    """The county's alerts, for the supervisor and the county desk's officers."""
    if _issuer_county() is None:
        return _not_an_issuer()
    if session().role == "supervisor":  # their alerts are on the county page
        return redirect(url_for("console.county") + "#alerts-h", code=303)
    return _alert_page(done=request.args.get("done"))


def _form_alert() -> dict[str, Any]:
    """The alert form as the API's AlertInSchema takes it (seen_at in the bureau's zone)."""
    zone = ZoneInfo(config().timezone)
    raw_seen = request.form.get("seen_at", "").strip()[:FIELD_MAX]
    try:
        seen = dt.datetime.fromisoformat(raw_seen).replace(tzinfo=zone) if raw_seen else (
            dt.datetime.now(zone))
    except ValueError:
        seen = None
    body: dict[str, Any] = {
        "child": {"sex": request.form.get("sex", "")[:FIELD_MAX],
                  "age_years": request.form.get("age_years", "")[:FIELD_MAX]},
        "seen_at": seen.isoformat() if seen else raw_seen,
    }
    clothing = request.form.get("clothing", "").strip()[:FIELD_MAX]
    if clothing:
        body["child"]["clothing"] = clothing
    for name in ("grid_code", "place"):
        value = request.form.get(name, "").strip()[:FIELD_MAX]
        if value:
            body[name] = value
    return body


def _problems(errors: Any) -> str:
    """marshmallow's messages, flattened: 'child.age_years: …; seen_at: …'."""
    out: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list):
            out.append(f"{prefix}: {'; '.join(str(v) for v in value)}")
    walk("", errors)
    return "; ".join(out)


@blp.post("/county/alerts")
@signed_in(*ISSUERS)
def issue_alert() -> Response:
    if _issuer_county() is None:
        return _not_an_issuer()
    translate = words.translation(session().language).gettext
    try:
        data = AlertInSchema().load(_form_alert())
    except ValidationError as exc:
        problem = translate(N_("寻人协查没有发出：")) + _problems(exc.messages)
        return _alert_page(422, problem=problem)
    alert = issuing.issue(session().principal, data)
    return _back("issued", f"#alert-{alert.code}")


def _code(code: str) -> str | None:
    return code if ALERT_CODE.match(code) else None


@blp.post("/county/alerts/<code>/found")
@signed_in(*ISSUERS)
def alert_found(code: str) -> Response:
    if _issuer_county() is None:
        return _not_an_issuer()
    if _code(code) is None:
        return page_error(404, N_("没有这个寻人协查。"))
    issuing.found(session().principal, code)
    return _back("found")


@blp.post("/county/alerts/<code>/cancel")
@signed_in(*ISSUERS)
def alert_cancel(code: str) -> Response:
    if _issuer_county() is None:
        return _not_an_issuer()
    if _code(code) is None:
        return page_error(404, N_("没有这个寻人协查。"))
    reason = request.form.get("reason", "").strip()
    if not reason or len(reason) > 500:
        return _alert_page(422, problem=words.translation(session().language).gettext(
            N_("撤销寻人协查须写明原因（最多500字）。")))
    issuing.cancel(session().principal, code, {"reason": reason})
    return _back("cancelled")


@blp.get("/alerts/<code>/coverage")
@signed_in(*ISSUERS, touch=False)
def alert_coverage(code: str) -> Any:
    """The alert's coverage GeoJSON (cells reached, swept or not) and its rings, for the map."""
    if _issuer_county() is None:
        return {"message": "only supervisors and county desk officers see alert coverage"}, 403
    if _code(code) is None:
        return {"message": "no such alert"}, 404
    covered = coverage.coverage(session().principal, code)
    alert = issuing.get_alert(session().principal, code)
    covered["properties"]["centre"] = [alert.last_seen.lon, alert.last_seen.lat]
    covered["properties"]["rings"] = [{"radius_m": r.radius_m, "sent": r.sent_at is not None}
                                      for r in alert.rings]
    return covered


@blp.context_processor
def _alert_menu() -> dict[str, Any]:
    return {"may_issue_alerts": may_issue_alerts}
