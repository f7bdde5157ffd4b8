"""Issuing, reading, updating and ending missing-child alerts; who may, and what is refused.

Only a county's supervisor and the officers of its county desk (刑侦值班) issue, update
and end alerts. Every step is one atomic update of the Alert guarded by its status (so two
officers ending it at once end it once) and one audit entry. Issuing queues the first
ring and schedules the others (gateway/alerts/fanout.py).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from mongoengine.errors import NotUniqueError

from gateway import gridcache
from gateway.access.tokens import Principal
from gateway.alerts.fanout import expected_followups, queue_followup, schedule_rings
from gateway.alerts.records import OPEN_STATUSES, Alert, AlertEvent, AlertRing, Child
from gateway.delivery.locating import locate
from gateway.errors import Refusal
from gateway.privacy import audit
from gateway.runtime import settings
from geo.datum import to_wgs84
from grid.alerts import DEFAULT_RINGS, Ring, ring_problems
from grid.documents import utcnow
from grid.snapshot import GridSnapshot
from sms import replies
from sms.encoding import UCS2_SINGLE

# A last-seen time a little ahead is a phone's clock, not a mistake; much older than three
# days is no rapid alert any more (a missing-person case is, which SafeGrid does not run).
CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_AGE = dt.timedelta(hours=72)
CODE_ATTEMPTS = 20


@dataclass(frozen=True)
class Issuer:
    """Who acts on alerts, and for which county and station."""

    actor: str
    county_code: str
    station_code: str


def issuer(principal: Principal, snapshot: GridSnapshot) -> Issuer:
    """The caller as an alert issuer; 403 for anyone but a supervisor or county desk officer."""
    if principal.role == "supervisor" and principal.county_code:
        desk = snapshot.county_desk.get(principal.county_code)
        if desk is None:
            raise Refusal(409, f"county {principal.county_code} has no county desk station "
                               "to issue alerts from")
        return Issuer(principal.actor, principal.county_code, desk)
    station = snapshot.stations.get(principal.station_code or "")
    if principal.role == "officer" and station is not None and station.kind == "county_desk":
        return Issuer(principal.actor, station.county_code, station.code)
    raise Refusal(403, "only supervisors and county desk officers issue, update and end alerts")


def _refuse(field: str, message: str) -> Refusal:
    return Refusal(422, message, errors={"json": {field: [message]}})


def summary_of(child: dict[str, Any]) -> str:
    """The child as the SMS says it: 男孩约5岁，身高约110厘米，红上衣."""
    who = {"male": "男孩", "female": "女孩"}.get(child["sex"], "儿童")
    parts = [f"{who}约{child['age_years']}岁"]
    if child.get("height_cm"):
        parts.append(f"身高约{child['height_cm']}厘米")
    if child.get("clothing"):
        parts.append(child["clothing"].strip())
    return "，".join(parts)


def _place(data: dict[str, Any], snapshot: GridSnapshot, county: str) -> tuple[
        dict[str, Any], str, str | None]:
    """The last-seen point (WGS-84 Location fields), its name for the SMS, and its cell."""
    point, grid_code, name = data.get("location"), data.get("grid_code"), data.get("place")
    label = (name or "").strip()
    if grid_code is not None and grid_code not in snapshot.cells:
        raise _refuse("grid_code", f"no grid cell has code {grid_code}")
    if point is not None:
        lat, lon = to_wgs84(point["lat"], point["lon"], point["datum"])
        cell = grid_code or snapshot.index.locate(lat, lon)
        return ({"lat": lat, "lon": lon, "datum": point["datum"], "method": "gps",
                 "grid_code": cell, "label": label or None},
                label or (snapshot.cells[cell].name if cell else ""), cell)
    if grid_code is not None:
        lat, lon = snapshot.centre(grid_code)
        return ({"lat": lat, "lon": lon, "method": "grid_code", "grid_code": grid_code,
                 "label": label or None}, label or snapshot.cells[grid_code].name, grid_code)
    if label:
        found = locate(label, snapshot, county)
        if found is None:
            raise _refuse("place", f"could not find the place {label!r}: give a location or "
                                   "a grid code")
        cell = snapshot.index.locate(found.lat, found.lon)
        return ({"lat": found.lat, "lon": found.lon, "method": found.method,
                 "precision_m": found.precision_m, "grid_code": cell, "label": found.label},
                label, cell)
    raise _refuse("location", "say where the child was last seen: a location, a grid code "
                              "or a place name")


def _seen_at(value: dt.datetime, now: dt.datetime) -> dt.datetime:
    at = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if at > now + CLOCK_SKEW:
        raise _refuse("seen_at", "the last-seen time is in the future")
    if at < now - MAX_AGE:
        raise _refuse("seen_at", f"the last-seen time is more than {MAX_AGE.days * 24} hours "
                                 "ago: a rapid alert is for a child missing since recently")
    return at


def _rings(data: dict[str, Any]) -> list[Ring]:
    given = data.get("rings")
    if not given:
        return list(DEFAULT_RINGS)
    rings = [Ring(float(r["radius_km"]) * 1000, int(r["after_min"]) * 60) for r in given]
    problems = ring_problems(rings)
    if problems:
        raise Refusal(422, "; ".join(problems), errors={"json": {"rings": problems}})
    return rings


def check_fits(summary: str, place: str, seen_at: dt.datetime) -> None:
    """Refuse a description that the alert SMS could not carry whole, saying by how much.

    The Chinese text is the measure (every catalog's template is no longer); other
    languages cut the place before the description (sms/replies.py `_fit`).
    """
    local = seen_at.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(settings().timezone))
    text = replies.alert("000000", summary, local.time(), place)
    if summary in text and place in text:
        return
    fixed = len(replies.alert("000000", "", local.time(), ""))
    room = UCS2_SINGLE - fixed
    over = len(summary) + len(place) - room
    raise _refuse("child", f"the description and place are {over} characters too long for one "
                           f"SMS: together they may have {room} characters (now "
                           f"{len(summary)} + {len(place)}); shorten the clothing or the place")


def _new_code() -> str:
    return f"{secrets.randbelow(900_000) + 100_000}"


def issue(principal: Principal, data: dict[str, Any]) -> Alert:
    """Issue an alert: validated, stored with its ring schedule, audited; the first ring is
    queued at once, the later ones scheduled (gateway/alerts/fanout.py)."""
    snapshot = gridcache.current()
    who = issuer(principal, snapshot)
    now = utcnow()
    seen_at = _seen_at(data["seen_at"], now)
    rings = _rings(data)
    location, place, cell = _place(data, snapshot, who.county_code)
    summary = summary_of(data["child"])
    check_fits(summary, place, seen_at)
    for _ in range(CODE_ATTEMPTS):
        alert = Alert(
            code=_new_code(), child=Child(**data["child"]), summary=summary,
            last_seen=location, last_seen_place=place, seen_at=seen_at, cell_code=cell,
            county_code=who.county_code, station_code=who.station_code, issued_by=who.actor,
            rings=[AlertRing(radius_m=r.radius_m, delay_s=r.delay_s,
                             due_at=now + dt.timedelta(seconds=r.delay_s)) for r in rings],
            events=[AlertEvent(at=now, actor=who.actor, action="issue")],
            issued_at=now, updated_at=now)
        try:
            alert.save(force_insert=True)
        except NotUniqueError:
            continue  # the six digits were taken: draw again
        break
    else:  # pragma: no cover - 20 collisions in 900,000 codes
        raise Refusal(503, "no free alert code; try again")
    audit.append(who.actor, "alert.issue", f"alert:{alert.code}", {
        "county": who.county_code, "station": who.station_code, "cell": cell,
        "rings_km": [r.radius_m / 1000 for r in rings]})
    schedule_rings(alert)
    return alert


def get_alert(principal: Principal, code: str) -> Alert:
    """An alert of the caller's county (404 for another county's, as for none)."""
    who = issuer(principal, gridcache.current())
    alert = Alert.objects(code=code, county_code=who.county_code).first()
    if alert is None:
        raise Refusal(404, f"no alert {code}")
    return alert


def _step(principal: Principal, code: str, action: str, changes: dict[str, Any],
          text: str | None) -> Alert:
    """One step of an open alert: a single update guarded by its status, then its audit."""
    alert = get_alert(principal, code)
    who = issuer(principal, gridcache.current())
    now = utcnow()
    event = AlertEvent(at=now, actor=who.actor, action=action, text=text)
    done = Alert.objects(id=alert.id, status__in=OPEN_STATUSES).modify(
        new=True, push__events=event, set__updated_at=now,
        **{f"set__{name}": value for name, value in changes.items()})
    if done is None:
        raise Refusal(409, f"alert {code} has ended ({alert.reload().status}): it can no "
                           "longer be updated, found or cancelled")
    audit.append(who.actor, f"alert.{action}", f"alert:{code}",
                 {"status": done.status, "chars": len(text or "")})
    queue_followup(code, expected_followups(done)[-1])
    return done


def update(principal: Principal, code: str, data: dict[str, Any]) -> Alert:
    """News on an open alert (a new description, a new place), for everyone it reached."""
    text = data["text"].strip()
    if not text:
        raise _refuse("text", "say what is new")
    fitted = replies.alert_update(code, text)
    if text not in fitted:
        room = UCS2_SINGLE - len(replies.alert_update(code, ""))
        raise _refuse("text", f"the update is {len(text) - room} characters too long for one "
                              f"SMS: it may have {room} characters")
    return _step(principal, code, "update", {"status": "updated", "update_text": text}, text)


def found(principal: Principal, code: str) -> Alert:
    """The child is found: the alert ends, its rings stop widening."""
    return _step(principal, code, "found", {"status": "found", "ended_at": utcnow()}, None)


def cancel(principal: Principal, code: str, data: dict[str, Any]) -> Alert:
    """The alert is withdrawn (issued in error, the child was never missing)."""
    reason = data["reason"].strip()
    if not reason:
        raise _refuse("reason", "say why the alert is cancelled")
    return _step(principal, code, "cancel", {"status": "cancelled", "ended_at": utcnow()},
                 reason)
