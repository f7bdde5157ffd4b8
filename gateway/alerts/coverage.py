"""Where an alert has reached, and what is swept: for the issuing officer's map and the app."""

from __future__ import annotations

from typing import Any

from gateway import gridcache
from gateway.access.tokens import Principal
from gateway.alerts.fanout import texted_by_cell
from gateway.alerts.issuing import get_alert
from gateway.alerts.records import OPEN_STATUSES, Alert
from gateway.errors import Refusal
from gateway.records.people import Reporter
from sms.records import Sighting


def reached_cells(alert: Alert) -> set[str]:
    """The cells of the rings already sent (in memory, from the ring geometry)."""
    sent = [r.radius_m for r in alert.rings if r.sent_at is not None]
    if not sent:
        return set()
    loc = alert.last_seen
    return gridcache.current().coverage.covered(loc.lat, loc.lon, max(sent))


def coverage(principal: Principal, code: str) -> dict[str, Any]:
    """GeoJSON of the cells reached, each `swept` or not, with recipients and counts."""
    alert = get_alert(principal, code)
    snapshot = gridcache.current()
    reached = reached_cells(alert)
    swept = {c for c in Sighting.objects(alert_code=code, kind="swept", state="linked")
             .distinct("cell_code") if c}
    texted = texted_by_cell(code)
    features: list[dict[str, Any]] = []
    for cell in sorted(reached | (swept & set(snapshot.cells))):
        info = snapshot.cells[cell]
        features.append({
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in
                                                             snapshot.rings[cell]]]},
            "properties": {"code": cell, "name": info.name, "station": info.station_code,
                           "state": "swept" if cell in swept else "not_swept",
                           "texted": texted.get(cell, 0)}})
    done = sum(1 for f in features if f["properties"]["state"] == "swept")
    return {"type": "FeatureCollection", "features": features,
            "properties": {"alert": code, "status": alert.status,
                           "reached": len(reached), "swept": done,
                           "not_swept": len(features) - done,
                           "texted": sum(texted.values()),
                           "rings_sent": sum(1 for r in alert.rings if r.sent_at)}}


def active_for(principal: Principal) -> list[Alert]:
    """Open alerts whose sent rings cover the calling reporter's home cell."""
    if principal.subject_id is None:
        raise Refusal(403, "only a reporter's own token shows the alerts of their cell")
    me = Reporter.objects(id=principal.subject_id).only("home_cell").first()
    if me is None or not me.home_cell:
        return []
    return [alert for alert in Alert.objects(status__in=OPEN_STATUSES).order_by("-issued_at")
            if me.home_cell in reached_cells(alert)]
