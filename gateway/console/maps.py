"""The map: the station's cells (the county's, for a supervisor or the county desk) as
polygons from the grid, open clues as markers coloured by priority, and an alert's rings
and swept cells.

No tiles by default: polygons on a plain background work offline on a police
network; `SAFEGRID_MAP_TILES_URL` names the bureau's own tile server. The page's
script (static/map.js) reads GeoJSON from /console/map/data.
"""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.wrappers import Response

from gateway import gridcache
from gateway.console import words
from gateway.console.site import blp, config, page, session, signed_in
from gateway.console.station import overdue
from grid.documents import Dispatch


def _cells(principal_station: str | None, county: str | None) -> list[dict[str, Any]]:
    snapshot = gridcache.current()
    features = []
    for code, info in snapshot.cells.items():
        mine = (info.station_code == principal_station if principal_station
                else info.county_code == county)
        if not mine:
            continue
        features.append({"type": "Feature",
                         "geometry": {"type": "Polygon",
                                      "coordinates": [[list(p) for p in snapshot.rings[code]]]},
                         "properties": {"kind": "cell", "code": code, "name": info.name,
                                        "station": info.station_code}})
    return features


def _centre(ring: list[tuple[float, float]]) -> tuple[float, float]:
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    return (min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2


def _markers(stations: list[str]) -> list[dict[str, Any]]:
    """Open clues at the centre of their cell (the exact point stays on the dispatch page)."""
    snapshot = gridcache.current()
    translate = words.translation(session().language).gettext
    out = []
    for d in Dispatch.objects(station_code__in=stations, status__ne="closed").only(
            "id", "report_code", "priority", "cell_code", "status", "acknowledged_at",
            "ack_deadline", "category").limit(500):
        ring = snapshot.rings.get(d.cell_code or "")
        if not ring:
            continue
        lon, lat = _centre(list(ring))
        out.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                    "properties": {"kind": "dispatch", "id": str(d.id), "code": d.report_code,
                                   "priority": d.priority,
                                   "category": translate(words.CATEGORIES.get(d.category,
                                                                              d.category)),
                                   "overdue": overdue(d)}})
    return out


@blp.get("/map")
@signed_in("officer", "supervisor")
def map_page() -> Response:
    return page("map.html", tiles=config().map_tiles_url, alert=request.args.get("alert", ""))


@blp.get("/map/data")
@signed_in("officer", "supervisor", touch=False)
def map_data() -> dict[str, Any]:
    """GeoJSON for the map: cells and open clues of the station (or the county)."""
    me = session()
    here = gridcache.current().stations.get(me.station_code or "")
    # The county desk has no cells of its own: it works (and alerts) the whole county.
    desk = here is not None and here.kind == "county_desk"
    if me.role == "officer":
        stations = [me.station_code or ""]
    else:
        stations = [s.code for s in gridcache.current().stations.values()
                    if s.county_code == me.county_code]
    county = here.county_code if desk and here else me.county_code
    return {"type": "FeatureCollection",
            "features": _cells(me.station_code if me.role == "officer" and not desk else None,
                               county) + _markers(stations)}
